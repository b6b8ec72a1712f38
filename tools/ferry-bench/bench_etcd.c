/* SPDX-License-Identifier: Apache-2.0 */
/* etcd mode: each process of a run is started apart, on this host or
 * another, with the same --etcd_endpoints and --benchmark_group, as
 * nixlbench's are. The group has num_target_dev + 1 processes (one when
 * the backend reaches only its own agent): the first to join is rank 0,
 * the initiator, which prints the table; the next are targets 0, 1, ... in
 * the order they join. Agents' metadata and the targets' buffers go
 * through etcd (rdv.c), in three barriers:
 *
 *   joined     every rank is there, with rank 0's options
 *   published  every rank's metadata (md/<rank>) and every target's buffer
 *              (target/<id>: base, size, GPU) are in etcd
 *   ready      each side has loaded the metadata of the other
 *
 * after which the sweep runs as between spawned processes, over the data
 * path alone; each process leaves the group (its keys go) at its end. */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

typedef struct fb_etcd {
    const fb_config *cfg;
    fb_rdv *rdv;
    unsigned id;             /* a target's id */
    fb_target_info *targets; /* the initiator's view of them */
} fb_etcd;

/* The options that decide which messages flow and how much memory each
 * side has: every rank must run with rank 0's. Backend params may differ
 * (each host has its own devices). */
static void fb_etcd_options(const fb_config *c, char *buf, size_t cap)
{
    snprintf(buf, cap,
             "backend=%s segs=%s/%s op=%s scheme=%s initiators=%u targets=%u "
             "block=%llu-%llu batch=%llu-%llu iter=%llu/%llu ftr=%llu threads=%llu check=%d "
             "recreate=%d reregister=%d",
             c->backend, c->initiator_seg_type, c->target_seg_type, c->op_type, c->scheme,
             c->topo.ni, c->topo.nt, (unsigned long long)c->start_block_size,
             (unsigned long long)c->max_block_size, (unsigned long long)c->start_batch_size,
             (unsigned long long)c->max_batch_size, (unsigned long long)c->num_iter,
             (unsigned long long)c->warmup_iter, (unsigned long long)c->large_blk_iter_ftr,
             (unsigned long long)c->num_threads, c->check_consistency, c->recreate_xfer,
             c->reregister_mem);
}

/* ---- the initiator ---- */

static void fb_etcd_load_target(fb_etcd *e, ferry_agent *a, unsigned t)
{
    char agent[32], key[32];
    uint64_t v[3];
    snprintf(agent, sizeof(agent), "fb-target-%u", t);
    snprintf(key, sizeof(key), "target/%u", t);
    fb_rdv_load_md(e->rdv, a, e->cfg->topo.ni + t, agent);
    fb_rdv_get_u64s(e->rdv, key, v, 3);
    e->targets[t] = (fb_target_info){.base = v[0], .size = v[1], .dev = (int32_t)(int64_t)v[2]};
    fb_ok(ferry_md_connect(a, agent, NULL), "connect"); /* now: no timed transfer pays for it */
}

/* sink->link: one initiator links to every target. */
static const fb_target_info *fb_etcd_link(void *ctx, ferry_agent *a)
{
    fb_etcd *e = ctx;
    unsigned nt = e->cfg->topo.nt;
    fb_rdv_put_md(e->rdv, a);
    fb_rdv_barrier(e->rdv, "published");
    e->targets = fb_alloc(nt * sizeof(*e->targets));
    for (unsigned t = 0; t < nt; t++)
        fb_etcd_load_target(e, a, t);
    fb_rdv_barrier(e->rdv, "ready");
    return e->targets;
}

static int fb_etcd_initiator(fb_etcd *e)
{
    const fb_config *c = e->cfg;
    fb_report rep;
    fb_config_print(c);
    fb_report_begin(&rep, c);
    fb_sink sink = fb_report_sink(&rep);
    if (!c->loopback) {
        sink.link = fb_etcd_link;
        sink.link_ctx = e;
    }
    int rc = fb_initiator_run(c, 0, NULL, &sink);
    rc = fb_exit_worse(rc, fb_report_end(&rep));
    fb_transport_report(c->backend, c->backend_params);
    return rc;
}

/* ---- a target ---- */

/* The initiators this target serves (initiator i is rank i): their
 * metadata, so it can answer them. */
static void fb_etcd_load_initiators(fb_etcd *e, ferry_agent *a)
{
    const fb_topo *t = &e->cfg->topo;
    for (size_t k = 0; k < t->nlinks; k++) {
        char agent[32];
        if (t->links[k].target != e->id)
            continue;
        snprintf(agent, sizeof(agent), "fb-init-%u", t->links[k].init);
        fb_rdv_load_md(e->rdv, a, t->links[k].init, agent);
    }
}

/* A killed initiator says no goodbye: its rank's key going tells. */
static void fb_etcd_watch(void *ctx)
{
    const fb_etcd *e = ctx;
    const fb_topo *t = &e->cfg->topo;
    for (size_t k = 0; k < t->nlinks; k++)
        if (t->links[k].target == e->id)
            fb_rdv_watch(e->rdv, t->links[k].init);
}

static void fb_etcd_announce(void *ctx, ferry_agent *a, const fb_target_info *info)
{
    fb_etcd *e = ctx;
    char key[32];
    uint64_t v[3] = {info->base, info->size, (uint64_t)(int64_t)info->dev};
    snprintf(key, sizeof(key), "target/%u", e->id);
    fb_rdv_put_u64s(e->rdv, key, v, 3);
    fb_rdv_put_md(e->rdv, a);
    fb_rdv_barrier(e->rdv, "published");
    fb_etcd_load_initiators(e, a);
    fb_rdv_barrier(e->rdv, "ready");
}

static int fb_etcd_target(fb_etcd *e, unsigned id)
{
    static char tag[32];
    const fb_config *c = e->cfg;
    snprintf(tag, sizeof(tag), "target %u", id);
    fb_role_tag = tag;
    e->id = id;
    printf("ferry-bench: target %u of group %s (rank %u of %u, etcd %s)\n", id, c->etcd.group,
           fb_rdv_rank(e->rdv), c->topo.ni + c->topo.nt, c->etcd.endpoints);
    fflush(stdout);
    fb_meet meet = {.announce = fb_etcd_announce, .watch = fb_etcd_watch, .ctx = e};
    int rc = fb_target_main(c, id, &meet);
    printf("ferry-bench: target %u: %s\n", id,
           rc == FB_EXIT_OK ? "done" : "done, a consistency check FAILED");
    return rc;
}

/* ---- the process ---- */

int fb_etcd_main(const fb_config *c)
{
    char options[1536];
    fb_etcd_options(c, options, sizeof(options));
    unsigned world = c->loopback ? 1 : c->topo.ni + c->topo.nt;
    fb_etcd e = {.cfg = c, .rdv = fb_rdv_join(&c->etcd, world, options)};
    unsigned rank = fb_rdv_rank(e.rdv);
    int rc = rank < c->topo.ni ? fb_etcd_initiator(&e) : fb_etcd_target(&e, rank - c->topo.ni);
    fb_rdv_leave(e.rdv);
    free(e.targets);
    return rc;
}
