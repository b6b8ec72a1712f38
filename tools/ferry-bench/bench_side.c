/* SPDX-License-Identifier: Apache-2.0 */
/* A process's buffer: per thread, one slot per link. The data source (the
 * target for READ, the initiator for WRITE) fills its slots once with a
 * pattern both sides can compute; the receiver clears its slots before a
 * step and, with --check_consistency, verifies every byte after it. */
#include "bench.h"

#include <stdlib.h>

/* Reports of bad slots per check; the first one is the one that matters. */
#define FB_MAX_REPORTS 4

static bool fb_side_is_source(const fb_side *s, const fb_config *c)
{
    return s->initiator == (c->op == FERRY_OP_WRITE);
}

bool fb_side_receives(const fb_side *s, const fb_config *c)
{
    return !fb_side_is_source(s, c);
}

bool fb_link_has(const fb_side *s, const fb_link *l, unsigned peer)
{
    unsigned me = s->initiator ? l->init : l->target, other = s->initiator ? l->target : l->init;
    return me == s->id && (peer == FB_ALL || other == peer);
}

size_t fb_side_slot(const fb_side *s, const fb_link *l, unsigned th)
{
    unsigned stride = s->initiator ? l->lstride : l->rstride;
    return ((size_t)th * s->strides + stride) * s->slot;
}

/* The stream of a link and thread: the same on both of its sides. */
static uint64_t fb_link_seed(const fb_link *l, unsigned th)
{
    return fb_seed(l->init, l->target, th);
}

/* The first len bytes of every slot of this side. */
static void fb_side_fill(fb_side *s, const fb_config *c, size_t len)
{
    for (size_t k = 0; k < c->topo.nlinks; k++) {
        const fb_link *l = &c->topo.links[k];
        for (unsigned th = 0; fb_link_has(s, l, FB_ALL) && th < c->num_threads; th++) {
            size_t off = fb_side_slot(s, l, th);
            fb_mem_fill(&s->mem, off, len, fb_link_seed(l, th), 0);
            if (c->inject_corruption && th == 0)
                fb_mem_flip(&s->mem, off + fb_inject_offset(c)); /* travels like any byte */
        }
    }
}

/* A thread's region is a chunk (spread over --num_files files); a slot's
 * blocks are objects, max_batch_size of them, each up to max_block_size. */
static void fb_side_store(fb_side *s, const fb_config *c, ferry_mem_type type, size_t bytes,
                          ferry_agent *a)
{
    fb_store_cfg sc = {.dir = c->filepath,
                       .filenames = c->filenames,
                       .num_files = (unsigned)c->num_files,
                       .chunk = s->slot * s->strides,
                       .direct = c->storage_enable_direct,
                       .group = s->slot,
                       .per_group = (size_t)c->max_batch_size,
                       .unit = (size_t)c->start_block_size,
                       .unit_max = (size_t)c->max_block_size,
                       .agent = a};
    fb_mem_alloc_store(&s->mem, type, bytes, &sc);
}

void fb_side_step(fb_side *s, const fb_config *c, const fb_step *st)
{
    if (s->mem.type != FERRY_MEM_OBJ)
        return; /* files hold every step's pattern from the start */
    fb_mem_set_unit(&s->mem, (size_t)st->block);
    if (fb_side_is_source(s, c))
        fb_side_fill(s, c, (size_t)(st->block * st->batch));
}

int fb_side_gpu(const fb_config *c, bool initiator, unsigned id)
{
    if ((initiator ? c->itype : c->ttype) != FERRY_MEM_VRAM)
        return -1;
    return fb_gpu_for(initiator ? id : c->topo.ni + id);
}

void fb_side_init(fb_side *s, const fb_config *c, bool initiator, unsigned id, ferry_agent *a)
{
    *s = (fb_side){
        .initiator = initiator,
        .id = id,
        .strides = initiator ? c->topo.istrides[id] : c->topo.tstrides[id],
        .slot = (size_t)(c->max_block_size * c->max_batch_size),
    };
    size_t bytes = s->slot * s->strides * c->num_threads;
    ferry_mem_type type = initiator ? c->itype : c->ttype;
    if (c->mem_alloc && type == FERRY_MEM_DRAM)
        fb_mem_alloc_ferry(&s->mem, a, bytes);
    else if (fb_seg_storage(type))
        fb_side_store(s, c, type, bytes, a);
    else
        fb_mem_alloc(&s->mem, type, fb_side_gpu(c, initiator, id), bytes);
    s->regions = fb_alloc(c->num_threads * sizeof(*s->regions));
    /* Objects are filled step by step (fb_side_step): their size changes. */
    if (fb_side_is_source(s, c) && type != FERRY_MEM_OBJ)
        fb_side_fill(s, c, s->slot);
}

/* One region per thread, so --reregister_mem can redo one thread's. */
void fb_side_register(fb_side *s, const fb_config *c, ferry_agent *a)
{
    size_t per_thread = s->slot * s->strides;
    for (unsigned th = 0; th < c->num_threads; th++)
        s->regions[th] = fb_register(a, &s->mem, th * per_thread, per_thread);
}

void fb_side_deregister(fb_side *s, const fb_config *c, ferry_agent *a)
{
    for (unsigned th = 0; th < c->num_threads; th++) {
        fb_deregister(a, s->regions[th]);
        s->regions[th] = NULL;
    }
}

void fb_side_free(fb_side *s, const fb_config *c)
{
    (void)c;
    fb_mem_free(&s->mem);
    free(s->regions);
    *s = (fb_side){0};
}

void fb_side_clear(fb_side *s, const fb_config *c, unsigned peer, const fb_step *st)
{
    size_t extent = (size_t)(st->block * st->batch);
    for (size_t k = 0; fb_side_receives(s, c) && k < c->topo.nlinks; k++)
        for (unsigned th = 0; fb_link_has(s, &c->topo.links[k], peer) && th < c->num_threads; th++)
            fb_mem_zero(&s->mem, fb_side_slot(s, &c->topo.links[k], th), extent);
}

static void fb_report_bad(const fb_side *s, const fb_config *c, const fb_link *l, unsigned th,
                          const fb_step *st, size_t bad, uint8_t got)
{
    size_t off = fb_side_slot(s, l, th);
    fb_warn("consistency check FAILED at block %llu x batch %llu (%s): initiator %u thread %u "
            "%s target %u: first bad byte at offset %zu of the %llu bytes moved (buffer offset "
            "%zu): got 0x%02x, expected 0x%02x",
            (unsigned long long)st->block, (unsigned long long)st->batch, c->op_type, l->init, th,
            c->op == FERRY_OP_READ ? "<-" : "->", l->target, bad,
            (unsigned long long)(st->block * st->batch), off + bad, got,
            fb_pattern_byte(fb_link_seed(l, th), bad));
}

bool fb_side_check(fb_side *s, const fb_config *c, unsigned peer, const fb_step *st)
{
    size_t extent = (size_t)(st->block * st->batch), bad;
    uint8_t got;
    unsigned reports = 0;
    for (size_t k = 0; fb_side_receives(s, c) && k < c->topo.nlinks; k++) {
        const fb_link *l = &c->topo.links[k];
        for (unsigned th = 0; fb_link_has(s, l, peer) && th < c->num_threads; th++)
            if (!fb_mem_check(&s->mem, fb_side_slot(s, l, th), extent, fb_link_seed(l, th), 0, &bad,
                              &got) &&
                reports++ < FB_MAX_REPORTS)
                fb_report_bad(s, c, l, th, st, bad, got);
    }
    fb_side_clear(s, c, peer, st);
    return reports == 0;
}

bool fb_side_settle(fb_side *s, const fb_config *c, unsigned peer, const fb_step *st)
{
    if (c->check_consistency)
        return fb_side_check(s, c, peer, st);
    fb_side_clear(s, c, peer, st);
    return true;
}
