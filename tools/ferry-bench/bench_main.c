/* SPDX-License-Identifier: Apache-2.0 */
/* ferry-bench: a benchmark with nixlbench's options and output.
 *
 * One command measures a real multi-process path: the program starts its
 * target processes (and, for several initiators, its initiator processes)
 * by running itself again with a role, passes buffer addresses over pipes,
 * and the agents exchange metadata over ferry's side channel on
 * 127.0.0.1. A backend that reaches only its own agent (LOCAL) runs
 * initiator and targets in this one process instead. With
 * --etcd_endpoints each process is started apart, on any host, and the
 * processes of one --benchmark_group find each other through etcd, as
 * nixlbench's do (bench_etcd.c).
 *
 *   ferry-bench --backend UCX --op_type READ --start_block_size 4K \
 *               --max_block_size 1M --check_consistency --json rows.jsonl
 *
 * See docs/tools.md for every option. */
#include "bench.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- what a spawned initiator does around each step ---- */

typedef struct fb_pipes {
    int in, out;
} fb_pipes;

/* A spawned initiator: wait for the others, hand results to the parent. */
static void fb_pipe_begin(void *ctx, const fb_step *st)
{
    fb_pipes *p = ctx;
    uint32_t len;
    fb_msg_send(p->out, FB_MSG_READY, &st->idx, sizeof(st->idx));
    free(fb_msg_recv(p->in, FB_MSG_GO, &len));
}

static void fb_pipe_done(void *ctx, const fb_step *st, fb_result *r)
{
    fb_pipes *p = ctx;
    (void)st;
    fb_result_send(p->out, r);
}

/* ---- spawned processes ---- */

/* A spawned target tells the parent where it is. */
static void fb_pipe_announce(void *ctx, ferry_agent *a, const fb_target_info *info)
{
    const fb_pipes *p = ctx;
    (void)a;
    fb_msg_send(p->out, FB_MSG_TARGET, info, sizeof(*info));
}

static int fb_child_main(const fb_config *c)
{
    static char tag[48];
    char kind[16];
    unsigned id;
    fb_pipes p;
    if (!fb_role_parse(c->fb_role, kind, sizeof(kind), &id, &p.in, &p.out))
        fb_exit(FB_EXIT_USAGE, "bad --fb_role %s", c->fb_role);
    snprintf(tag, sizeof(tag), "%s %u", kind, id);
    fb_role_tag = tag;
    if (!strcmp(kind, "target"))
        return fb_target_main(c, id, &(fb_meet){.announce = fb_pipe_announce, .ctx = &p});
    uint32_t len;
    fb_target_info *targets = fb_msg_recv(p.in, FB_MSG_TARGETS, &len);
    if (len != c->topo.nt * sizeof(*targets))
        fb_die("bad target table (%u bytes)", len);
    fb_sink sink = {.begin = fb_pipe_begin, .done = fb_pipe_done, .ctx = &p};
    int rc = fb_initiator_run(c, id, targets, &sink);
    free(targets);
    return rc;
}

static fb_target_info *fb_start_targets(const fb_config *c, int argc, char **argv)
{
    fb_target_info *ti = fb_alloc(c->topo.nt * sizeof(*ti));
    fb_child *ch = fb_alloc(c->topo.nt * sizeof(*ch));
    for (unsigned t = 0; t < c->topo.nt; t++) {
        char role[32];
        snprintf(role, sizeof(role), "target:%u", t);
        ch[t] = fb_spawn(argc, argv, role);
    }
    for (unsigned t = 0; t < c->topo.nt; t++) {
        uint32_t len;
        fb_target_info *info = fb_msg_recv(ch[t].from, FB_MSG_TARGET, &len);
        if (len != sizeof(*info))
            fb_die("target %u: bad message", t);
        ti[t] = *info;
        free(info);
        close(ch[t].to);
        close(ch[t].from);
    }
    free(ch);
    return ti;
}

/* Several initiator processes: start them together at every step and
 * merge what they measured into one row. */
static void fb_coordinate_step(fb_report *rep, const fb_step *st, const fb_child *ch, unsigned n)
{
    uint32_t len;
    for (unsigned i = 0; i < n; i++)
        free(fb_msg_recv(ch[i].from, FB_MSG_READY, &len));
    fb_report_progress(rep, st);
    for (unsigned i = 0; i < n; i++)
        fb_msg_send(ch[i].to, FB_MSG_GO, NULL, 0);
    fb_result all = {0};
    for (unsigned i = 0; i < n; i++) {
        fb_result r;
        fb_result_recv(ch[i].from, &r);
        fb_result_merge(&all, &r);
        fb_result_free(&r);
    }
    fb_report_row(rep, st, &all);
    fb_result_free(&all);
}

static void fb_coordinate(const fb_config *c, fb_report *rep, const fb_target_info *ti, int argc,
                          char **argv)
{
    unsigned n = c->topo.ni;
    fb_child *ch = fb_alloc(n * sizeof(*ch));
    for (unsigned i = 0; i < n; i++) {
        char role[32];
        snprintf(role, sizeof(role), "initiator:%u", i);
        ch[i] = fb_spawn(argc, argv, role);
        fb_msg_send(ch[i].to, FB_MSG_TARGETS, ti, (uint32_t)(c->topo.nt * sizeof(*ti)));
    }
    for (size_t k = 0; k < c->nsteps; k++)
        fb_coordinate_step(rep, &c->steps[k], ch, n);
    for (unsigned i = 0; i < n; i++) {
        close(ch[i].to);
        close(ch[i].from);
    }
    free(ch);
}

/* ---- the parent ---- */

static int fb_parent_main(const fb_config *c, int argc, char **argv)
{
    fb_report rep;
    fb_config_print(c);
    fb_report_begin(&rep, c);
    fb_sink local = fb_report_sink(&rep);
    int rc = FB_EXIT_OK;
    if (c->loopback) {
        rc = fb_initiator_run(c, 0, NULL, &local);
    } else {
        fb_target_info *ti = fb_start_targets(c, argc, argv);
        if (c->topo.ni == 1)
            rc = fb_initiator_run(c, 0, ti, &local);
        else
            fb_coordinate(c, &rep, ti, argc, argv);
        rc = fb_exit_worse(rc, fb_children_wait());
        free(ti);
    }
    rc = fb_exit_worse(rc, fb_report_end(&rep));
    if (c->loopback || c->topo.ni == 1)
        fb_transport_report(c->backend, c->backend_params);
    return rc;
}

int main(int argc, char **argv)
{
    static fb_config c; /* static: what it points to stays reachable until exit */
    fb_prog = "ferry-bench";
    fb_config_parse(&c, argc, argv);
    fb_config_check(&c);
    fb_transport_watch();
    int rc;
    if (c.fb_role) {
        rc = fb_child_main(&c);
    } else {
        fb_config_probe(&c);
        fb_plot_check(&c);
        rc = c.etcd.endpoints ? fb_etcd_main(&c) : fb_parent_main(&c, argc, argv);
    }
    fb_config_free(&c);
    return rc;
}
