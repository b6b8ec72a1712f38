/* SPDX-License-Identifier: Apache-2.0 */
/* The initiator: for each step, prepared lists of its slots and of each
 * target's slots (once, untimed), then per thread warmup and timed
 * iterations. An iteration makes a request by index per link (once, or
 * every time with --recreate_xfer), posts them all and waits for them all.
 * Post and transfer times come from ferry's per-request telemetry; prepare
 * (making the request) and the iteration itself from the clock. At the end
 * of a step each target is told over a notification and answers once it
 * has checked what it received. */
#include "bench.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Where a buffer is, as the agent that owns it sees it. */
typedef struct fb_where {
    uint64_t base;
    ferry_mem_type type;
    int dev;           /* VRAM: the owner's CUDA ordinal */
    const fb_mem *mem; /* a buffer of this process (storage: its layout); NULL: another's */
    size_t off;        /* where base is in mem */
} fb_where;

typedef struct fb_peer {
    char name[FERRY_NAME_MAX + 1];
    const fb_link *link;
    fb_where buf;          /* its buffer, in its own address space */
    fb_side *inproc;       /* loopback: the target's buffer, in this process */
    ferry_prepped *remote; /* this step's list of its slots */
} fb_peer;

typedef struct fb_init {
    const fb_config *cfg;
    ferry_agent *agent;
    fb_side side;
    fb_side *inproc; /* loopback: every target's buffer, by target id */
    fb_peer *peers;  /* one per link of this initiator */
    size_t npeers;
    ferry_prepped *local; /* this step's list of our slots (NULL: --reregister_mem) */
    const fb_step *step;
    bool bad;
} fb_init;

typedef struct fb_worker {
    fb_init *in;
    unsigned th;
    uint64_t iters, warmup; /* this thread's share */
    ferry_xfer **x;         /* per peer */
    ferry_status *rc;       /* per peer: what post said */
    uint32_t *idx;          /* per peer: batch local, then batch remote indices */
    ferry_prepped *tlocal;  /* --reregister_mem: this iteration's local list */
    pthread_barrier_t *bar;
    fb_result res;
} fb_worker;

/* ---- lists ---- */

/* `slots` consecutive slots from base, `batch` blocks from the start of
 * each: descriptor s * batch + j is block j of slot s. */
static ferry_dlist *fb_slot_list(const fb_where *w, size_t slot, size_t slots, const fb_step *st)
{
    ferry_dlist *l;
    fb_ok(ferry_dlist_create(w->type, slots * st->batch, &l), "dlist");
    for (size_t s = 0; s < slots; s++)
        for (uint64_t j = 0; j < st->batch; j++) {
            uint64_t addr = w->base + s * slot + j * st->block, dev = w->dev < 0 ? 0 : w->dev;
            if (w->mem)
                fb_mem_desc(w->mem, w->off + s * slot + j * st->block, &addr, &dev);
            fb_ok(ferry_dlist_add(l, addr, st->block, dev), "dlist add");
        }
    return l;
}

/* A refusal here is usually a combination the backend cannot move (CUDA
 * cannot reach another process's DRAM, for one): say which. */
static ferry_prepped *fb_prep(fb_init *in, const char *agent, const fb_where *w, size_t slots,
                              const fb_step *st)
{
    ferry_dlist *l = fb_slot_list(w, in->side.slot, slots, st);
    ferry_prepped *p;
    ferry_status rc = ferry_prep_dlist(in->agent, agent, l, NULL, &p);
    if (rc != FERRY_OK)
        fb_die("preparing %s's %s slots (%s -> %s with backend %s): %s",
               agent ? agent : ferry_agent_name(in->agent), ferry_mem_type_name(w->type),
               in->cfg->initiator_seg_type, in->cfg->target_seg_type, in->cfg->backend,
               ferry_strerror(rc));
    ferry_dlist_destroy(l);
    return p;
}

static fb_where fb_where_of(const fb_mem *m, size_t off)
{
    uint64_t base = m->ptr ? (uintptr_t)(m->ptr + off) : off; /* storage: no memory */
    return (fb_where){base, m->type, m->dev, m, off};
}

static void fb_step_prep(fb_init *in, const fb_step *st)
{
    const fb_config *c = in->cfg;
    in->step = st;
    fb_where mine = fb_where_of(&in->side.mem, 0);
    if (!c->reregister_mem)
        in->local = fb_prep(in, NULL, &mine, c->num_threads * in->side.strides, st);
    for (size_t p = 0; p < in->npeers; p++) {
        fb_peer *pe = &in->peers[p];
        size_t slots = c->num_threads * c->topo.tstrides[pe->link->target];
        if (pe->inproc)
            fb_side_step(pe->inproc, c, st);
        pe->remote = fb_prep(in, pe->name, &pe->buf, slots, st);
    }
}

static void fb_step_unprep(fb_init *in)
{
    ferry_prepped_release(in->local);
    in->local = NULL;
    for (size_t p = 0; p < in->npeers; p++) {
        ferry_prepped_release(in->peers[p].remote);
        in->peers[p].remote = NULL;
    }
}

/* ---- one iteration ---- */

/* --reregister_mem: this thread's region again, and a list over it. */
static double fb_rereg(fb_worker *w)
{
    fb_init *in = w->in;
    fb_side *s = &in->side;
    size_t per_thread = s->slot * s->strides, off = w->th * per_thread;
    fb_where mine = fb_where_of(&s->mem, off);
    double t0 = fb_now_us();
    fb_deregister(in->agent, s->regions[w->th]);
    s->regions[w->th] = fb_register(in->agent, &s->mem, off, per_thread);
    w->tlocal = fb_prep(in, NULL, &mine, s->strides, in->step);
    return fb_now_us() - t0;
}

static ferry_xfer *fb_make(fb_worker *w, size_t p)
{
    fb_init *in = w->in;
    uint64_t batch = in->step->batch;
    const uint32_t *li = w->idx + 2 * p * batch, *ri = li + batch;
    ferry_xfer_opts o;
    ferry_xfer_opts_init(&o);
    o.skip_merge = true; /* a batch is `batch` descriptors, as in nixlbench */
    ferry_xfer *x;
    ferry_status rc = ferry_xfer_make(in->agent, in->cfg->op, w->tlocal ? w->tlocal : in->local, li,
                                      in->peers[p].remote, ri, batch, &o, &x);
    if (rc != FERRY_OK)
        fb_make_failed(in->cfg->backend, in->cfg->initiator_seg_type, in->cfg->target_seg_type,
                       in->peers[p].name, rc);
    return x;
}

static void fb_finish(fb_worker *w, size_t p, bool timed)
{
    ferry_xfer *x = w->x[p];
    ferry_status rc = fb_xfer_wait(x, w->rc[p]);
    if (rc != FERRY_OK)
        fb_die("transfer with %s: %s (%s)", w->in->peers[p].name, ferry_strerror(rc),
               ferry_xfer_error(x));
    ferry_xfer_telemetry t;
    ferry_xfer_telemetry_init(&t);
    if (timed && ferry_xfer_get_telemetry(x, &t) == FERRY_OK) {
        fb_samples_add(&w->res.post, (double)t.post_us);
        fb_samples_add(&w->res.xfer, (double)t.xfer_us);
    }
    if (w->in->cfg->recreate_xfer) {
        ferry_xfer_release(x);
        w->x[p] = NULL;
    }
}

/* Makes what is missing (timed as prepare), posts every link's request,
 * waits for them all. A reused request's one make counts, warm or not. */
static void fb_iteration(fb_worker *w, bool timed)
{
    fb_init *in = w->in;
    const fb_config *c = in->cfg;
    double t0 = fb_now_us(), extra = c->reregister_mem ? fb_rereg(w) : 0;
    for (size_t p = 0; p < in->npeers; p++) {
        if (w->x[p])
            continue;
        double m0 = fb_now_us();
        w->x[p] = fb_make(w, p);
        if (timed || !c->recreate_xfer)
            fb_samples_add(&w->res.prep, fb_now_us() - m0 + (p ? 0 : extra));
    }
    for (size_t p = 0; p < in->npeers; p++)
        w->rc[p] = fb_ok(ferry_xfer_post(w->x[p]), "post");
    for (size_t p = 0; p < in->npeers; p++)
        fb_finish(w, p, timed);
    ferry_prepped_release(w->tlocal);
    w->tlocal = NULL;
    if (timed)
        fb_samples_add(&w->res.lat, fb_now_us() - t0);
}

/* ---- threads ---- */

static void fb_worker_indices(fb_worker *w)
{
    fb_init *in = w->in;
    const fb_config *c = in->cfg;
    uint64_t batch = in->step->batch;
    for (size_t p = 0; p < in->npeers; p++) {
        const fb_link *l = in->peers[p].link;
        size_t ls = (c->reregister_mem ? 0 : w->th * in->side.strides) + l->lstride;
        size_t rs = (size_t)w->th * c->topo.tstrides[l->target] + l->rstride;
        for (uint64_t j = 0; j < batch; j++) {
            w->idx[2 * p * batch + j] = (uint32_t)(ls * batch + j);
            w->idx[(2 * p + 1) * batch + j] = (uint32_t)(rs * batch + j);
        }
    }
}

static void *fb_worker_main(void *arg)
{
    fb_worker *w = arg;
    for (uint64_t i = 0; i < w->warmup; i++)
        fb_iteration(w, false);
    pthread_barrier_wait(w->bar);
    w->res.t_start = fb_now_us();
    for (uint64_t i = 0; i < w->iters; i++)
        fb_iteration(w, true);
    w->res.t_end = fb_now_us();
    const fb_step *st = w->in->step;
    w->res.bytes = (double)(w->iters * w->in->npeers * st->batch * st->block);
    for (size_t p = 0; p < w->in->npeers; p++)
        ferry_xfer_release(w->x[p]);
    return NULL;
}

static void fb_worker_init(fb_worker *w, fb_init *in, unsigned th, pthread_barrier_t *bar)
{
    const fb_step *st = in->step;
    uint64_t threads = in->cfg->num_threads;
    *w = (fb_worker){.in = in, .th = th, .bar = bar};
    w->iters = st->iters / threads;
    w->warmup = st->warmup / threads;
    w->x = fb_alloc(in->npeers * sizeof(*w->x));
    w->rc = fb_alloc(in->npeers * sizeof(*w->rc));
    w->idx = fb_alloc(in->npeers * 2 * st->batch * sizeof(*w->idx));
    fb_worker_indices(w);
}

static void fb_worker_free(fb_worker *w)
{
    free(w->x);
    free(w->rc);
    free(w->idx);
    fb_result_free(&w->res);
}

static void fb_run_threads(fb_init *in, fb_result *res)
{
    unsigned n = (unsigned)in->cfg->num_threads;
    fb_worker *w = fb_alloc(n * sizeof(*w));
    pthread_t *tids = fb_alloc(n * sizeof(*tids));
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, n);
    for (unsigned th = 0; th < n; th++) {
        fb_worker_init(&w[th], in, th, &bar);
        if (pthread_create(&tids[th], NULL, fb_worker_main, &w[th]))
            fb_die("cannot start thread %u", th);
    }
    for (unsigned th = 0; th < n; th++) {
        pthread_join(tids[th], NULL);
        fb_result_merge(res, &w[th].res);
        fb_worker_free(&w[th]);
    }
    pthread_barrier_destroy(&bar);
    free(tids);
    free(w);
}

/* ---- steps ---- */

/* Every target checks (WRITE) and clears what it received; so do we (READ). */
static bool fb_step_settle(fb_init *in, const fb_step *st)
{
    bool ok = true;
    for (size_t p = 0; p < in->npeers; p++) {
        fb_peer *pe = &in->peers[p];
        bool peer_ok = pe->inproc ? fb_side_settle(pe->inproc, in->cfg, in->side.id, st)
                                  : fb_step_end(in->agent, pe->name, st->idx);
        ok = ok && peer_ok;
    }
    return fb_side_settle(&in->side, in->cfg, FB_ALL, st) && ok;
}

static void fb_step_run(fb_init *in, const fb_step *st, const fb_sink *sink)
{
    fb_result res = {0};
    fb_step_prep(in, st);
    sink->begin(sink->ctx, st);
    fb_run_threads(in, &res);
    fb_step_unprep(in);
    res.bad = !fb_step_settle(in, st);
    in->bad = in->bad || res.bad;
    sink->done(sink->ctx, st, &res);
    fb_result_free(&res);
}

/* ---- set-up ---- */

static void fb_peer_init(fb_init *in, fb_peer *pe, const fb_link *l, const fb_target_info *tg)
{
    const fb_config *c = in->cfg;
    pe->link = l;
    if (c->loopback) {
        pe->inproc = &in->inproc[l->target];
        fb_side_init(pe->inproc, c, false, l->target, in->agent);
        fb_side_register(pe->inproc, c, in->agent);
        pe->buf = fb_where_of(&pe->inproc->mem, 0);
        snprintf(pe->name, sizeof(pe->name), "%s", ferry_agent_name(in->agent));
        return;
    }
    pe->buf = (fb_where){tg[l->target].base, c->ttype, tg[l->target].dev, NULL, 0};
    snprintf(pe->name, sizeof(pe->name), "fb-target-%u", l->target);
    if (tg[l->target].port) /* else linked already, through etcd */
        fb_peer_link(in->agent, pe->name, tg[l->target].port);
}

static void fb_init_setup(fb_init *in, unsigned id, const fb_target_info *targets,
                          const fb_sink *sink)
{
    const fb_config *c = in->cfg;
    char name[64];
    snprintf(name, sizeof(name), c->loopback ? "fb-loop" : "fb-init-%u", id);
    fb_agent_opts o = {.name = name,
                       .backend = c->backend,
                       .params = c->params,
                       .progress = c->enable_pt,
                       .telemetry = true};
    ferry_backend *be;
    in->agent = fb_agent_new(&o, &be);
    fb_side_init(&in->side, c, true, id, in->agent);
    fb_side_register(&in->side, c, in->agent);
    if (sink->link)
        targets = sink->link(sink->link_ctx, in->agent);
    in->inproc = c->loopback ? fb_alloc(c->topo.nt * sizeof(*in->inproc)) : NULL;
    in->peers = fb_alloc(c->topo.nlinks * sizeof(*in->peers));
    for (size_t k = 0; k < c->topo.nlinks; k++)
        if (c->topo.links[k].init == id)
            fb_peer_init(in, &in->peers[in->npeers++], &c->topo.links[k], targets);
    if (c->loopback)
        fb_load_self(in->agent);
}

static void fb_init_teardown(fb_init *in)
{
    const fb_config *c = in->cfg;
    for (size_t p = 0; p < in->npeers; p++) {
        if (!in->peers[p].inproc)
            fb_bye(in->agent, in->peers[p].name);
        else
            fb_side_deregister(in->peers[p].inproc, c, in->agent);
    }
    fb_side_deregister(&in->side, c, in->agent);
    ferry_agent_destroy(in->agent);
    for (size_t p = 0; p < in->npeers; p++)
        if (in->peers[p].inproc)
            fb_side_free(in->peers[p].inproc, c);
    fb_side_free(&in->side, c);
    free(in->inproc);
    free(in->peers);
}

int fb_initiator_run(const fb_config *c, unsigned id, const fb_target_info *targets,
                     const fb_sink *sink)
{
    fb_init in = {.cfg = c};
    fb_init_setup(&in, id, targets, sink);
    for (size_t k = 0; k < c->nsteps; k++)
        fb_step_run(&in, &c->steps[k], sink);
    fb_init_teardown(&in);
    return in.bad ? FB_EXIT_MISMATCH : FB_EXIT_OK;
}
