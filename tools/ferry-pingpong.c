/* SPDX-License-Identifier: Apache-2.0 */
/* ferry-pingpong: ferry's one-way latency, measured the way ucx_perftest's
 * ucp_put_lat measures UCX's, so the two stand side by side.
 *
 * Two processes: this one (ping) and a pong process it starts. Each
 * registers a buffer of two blocks (one the peer writes into, one it sends
 * from), fetches the other's metadata over ferry's side channel, and then
 * they take turns: ping WRITEs a block whose last 8 bytes carry the turn's
 * number into pong's buffer and polls its own memory until pong's WRITE of
 * the same number lands; pong answers each number it sees. Both sides spin
 * (ferry_agent_progress between looks), as ucp_put_lat does. The figure is
 * half a round trip; a request's own completion (the backend's flush) is
 * waited for outside the timed part, before the request is posted again.
 *
 * With --notif every WRITE carries a notification and the receiver waits
 * for that notification instead of looking at its memory (then checks the
 * data is there): the latency of a WRITE with its notification, what a
 * KV consumer waits for.
 *
 * A dead pong ends the run with the request's error, never a hang (every
 * wait has FB_TIMEOUT_S).
 *
 *   ferry-pingpong --backend UCX --backend_params error_handling=dual,tls=all \
 *       --mem_alloc --block_size 8 --num_iter 10000 --json lat.jsonl
 *
 * Exit codes as ferry-bench's (docs/tools.md). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "ferry-bench/pingpong.h"

typedef struct pp_opts {
    const char *backend, *backend_params, *json, *fb_role;
    uint64_t block_size, num_iter, warmup_iter;
    bool mem_alloc, notif;
} pp_opts;

/* What each side tells the other through the pipe. */
typedef struct pp_hello {
    uint16_t port;  /* side-channel listener */
    uint64_t inbox; /* address of the block the peer writes into */
} pp_hello;

enum { PP_MSG_HELLO = 1, PP_MSG_BYE };

typedef struct pp_side {
    const pp_opts *o;
    const char *name, *peer;
    ferry_agent *agent;
    fb_mem mem; /* inbox block, then outbox block */
    ferry_dlist *regions;
    ferry_xfer *x; /* our outbox -> the peer's inbox */
} pp_side;

/* ---- options ---- */

#define OPT(n, k, h) FB_OPT_FIELD(o, n, k, h)

static void pp_parse(pp_opts *o, int argc, char **argv)
{
    *o = (pp_opts){.backend = "UCX", .block_size = 8, .num_iter = 10000, .warmup_iter = 1000};
    const fb_opt table[] = {
        OPT(backend, FB_OPT_STR, "backend between the two processes (default UCX)"),
        OPT(backend_params, FB_OPT_STR, "backend params, key=value[,key=value]"),
        OPT(block_size, FB_OPT_SIZE, "bytes a turn writes, 8..1M, a multiple of 8 (default 8)"),
        OPT(num_iter, FB_OPT_UINT, "timed round trips (default 10000)"),
        OPT(warmup_iter, FB_OPT_UINT, "untimed round trips first (default 1000)"),
        OPT(mem_alloc, FB_OPT_BOOL, "buffers from ferry_mem_alloc (UCX: memory it maps itself)"),
        OPT(notif, FB_OPT_BOOL, "each WRITE with a notification, awaited instead of the data"),
        OPT(json, FB_OPT_STR, "append the result to this file as one JSON object"),
        FB_OPT_HIDDEN_FIELD(o, fb_role, FB_OPT_STR, "internal: role of a spawned process"),
        {NULL, 0, NULL, NULL, 0},
    };
    fb_opts_parse(table, argc, argv);
    fb_pp_check(o->block_size, o->num_iter);
}

/* ---- one side ---- */

static void pp_open(pp_side *s)
{
    ferry_backend *be;
    fb_agent_opts ao = {
        .name = s->name, .backend = s->o->backend, .params = s->o->backend_params, .listen = true};
    s->agent = fb_agent_new(&ao, &be);
    size_t bytes = (size_t)(2 * s->o->block_size);
    if (s->o->mem_alloc)
        fb_mem_alloc_ferry(&s->mem, s->agent, bytes);
    else
        fb_mem_alloc(&s->mem, FERRY_MEM_DRAM, -1, bytes);
    s->regions = fb_register(s->agent, &s->mem, 0, bytes);
}

/* Tells the peer where we listen and where it writes; learns the same. */
static pp_hello pp_greet(pp_side *s, int to, int from)
{
    pp_hello mine = {.inbox = (uintptr_t)s->mem.ptr};
    fb_ok(ferry_md_listen_port(s->agent, &mine.port), "listen port");
    fb_msg_send(to, PP_MSG_HELLO, &mine, sizeof(mine));
    uint32_t len;
    pp_hello *got = fb_msg_recv(from, PP_MSG_HELLO, &len);
    if (len != sizeof(*got))
        fb_die("bad hello from %s", s->peer);
    pp_hello theirs = *got;
    free(got);
    return theirs;
}

/* Both sides fetch the other's metadata (no send: each loads once). */
static void pp_link(pp_side *s, const pp_hello *peer)
{
    fb_peer_fetch(s->agent, s->peer, peer->port);
    fb_ok(ferry_md_connect(s->agent, s->peer, NULL), "connect");
    ferry_dlist *l, *r;
    size_t bs = (size_t)s->o->block_size;
    fb_ok(ferry_dlist_create(FERRY_MEM_DRAM, 1, &l), "dlist");
    fb_ok(ferry_dlist_create(FERRY_MEM_DRAM, 1, &r), "dlist");
    fb_ok(ferry_dlist_add(l, (uintptr_t)(s->mem.ptr + bs), bs, 0), "dlist add");
    fb_ok(ferry_dlist_add(r, peer->inbox, bs, 0), "dlist add");
    ferry_xfer_opts xo;
    ferry_xfer_opts_init(&xo);
    xo.notif = s->o->notif ? "t" : NULL;
    xo.notif_len = s->o->notif ? 1 : 0;
    ferry_status rc = ferry_xfer_create(s->agent, FERRY_OP_WRITE, l, r, s->peer, &xo, &s->x);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    if (rc != FERRY_OK)
        fb_make_failed(s->o->backend, "DRAM", "DRAM", s->peer, rc);
}

/* Frees what pp_open and pp_link made; a request still in progress (its
 * peer dead) is canceled by the release. */
static void pp_teardown(pp_side *s)
{
    ferry_xfer_release(s->x);
    s->x = NULL;
    fb_deregister(s->agent, s->regions);
    fb_mem_free(&s->mem);
    ferry_agent_destroy(s->agent);
    s->agent = NULL;
}

/* Ends the run on a failed transfer or a dead peer: the agent goes first,
 * so no backend thread outlives it into exit. */
__attribute__((format(printf, 2, 3), noreturn)) static void pp_fail(pp_side *s, const char *fmt,
                                                                    ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pp_teardown(s);
    fb_exit(FB_EXIT_ERROR, "%s", msg);
}

/* Waits for our last turn's request to complete (nothing to wait for
 * before the first). */
static void pp_settle(pp_side *s)
{
    ferry_status rc = ferry_xfer_status(s->x);
    if (rc == FERRY_ERR_NOT_POSTED)
        return;
    rc = fb_xfer_wait(s->x, rc);
    if (rc != FERRY_OK)
        pp_fail(s, "write to %s: %s (%s)", s->peer, ferry_strerror(rc), ferry_xfer_error(s->x));
}

static void pp_send(void *side, uint64_t seq)
{
    pp_side *s = side;
    pp_settle(s);
    fb_pp_stamp(s->mem.ptr, s->o->block_size, seq);
    ferry_status rc = ferry_xfer_post(s->x);
    if (rc < 0)
        pp_fail(s, "post to %s: %s (%s)", s->peer, ferry_strerror(rc), ferry_xfer_error(s->x));
    /* A notification leaves once its request completes, which this side's
     * polling finds (no progress thread here): poll now, in the timed part. */
    if (s->o->notif)
        pp_settle(s);
}

/* Every so many looks, asks whether the backend has found the peer dead:
 * our last request may have completed long ago (a shared-memory put is
 * done when the copy is), so its status alone would not tell. */
static void pp_check_peer(pp_side *s, uint64_t seq, double deadline)
{
    ferry_status rc = ferry_md_connect(s->agent, s->peer, NULL);
    if (rc != FERRY_OK)
        pp_fail(s, "waiting for %s's turn %" PRIu64 ": %s", s->peer, seq, ferry_strerror(rc));
    if (fb_now_us() > deadline)
        pp_fail(s, "%s did not answer turn %" PRIu64 " in %.0f s", s->peer, seq, FB_TIMEOUT_S);
}

/* Whether the peer's turn is in: its data (default) or its notification
 * (--notif; the data must then be there already). */
static bool pp_arrived(pp_side *s, uint64_t seq)
{
    if (!s->o->notif)
        return fb_pp_landed(s->mem.ptr, s->o->block_size) == seq;
    if (ferry_notif_take_tag(s->agent, s->peer, "t", 1, false) != FERRY_OK)
        return false;
    if (fb_pp_landed(s->mem.ptr, s->o->block_size) != seq)
        pp_fail(s, "turn %" PRIu64 "'s notification came before its data", seq);
    return true;
}

/* Spins until the peer's turn seq has arrived; a failed request of ours,
 * a peer found dead or the deadline ends the run. */
static void pp_await(void *side, uint64_t seq)
{
    pp_side *s = side;
    double deadline = fb_now_us() + FB_TIMEOUT_S * 1e6;
    for (unsigned n = 0; !pp_arrived(s, seq); n++) {
        ferry_agent_progress(s->agent);
        if ((n & 255) != 255)
            continue; /* one progress call a look, as ucp_put_lat's loop */
        ferry_status rc = ferry_xfer_status(s->x);
        if (rc < 0 && rc != FERRY_ERR_NOT_POSTED)
            pp_fail(s, "waiting for %s's turn %" PRIu64 ": %s (%s)", s->peer, seq,
                    ferry_strerror(rc), ferry_xfer_error(s->x));
        if ((n & 4095) == 4095)
            pp_check_peer(s, seq, deadline);
    }
}

static void pp_close(pp_side *s)
{
    pp_settle(s);
    pp_teardown(s);
}

static const fb_pp_ops pp_ops = {.send = pp_send, .await = pp_await};

/* ---- the two processes ---- */

static int pp_pong_main(const pp_opts *o)
{
    int in, out;
    fb_pp_pong_pipes(o->fb_role, &in, &out);
    pp_side s = {.o = o, .name = "fp-pong", .peer = "fp-ping"};
    pp_open(&s);
    pp_hello ping = pp_greet(&s, out, in);
    pp_link(&s, &ping);
    fb_pp_pong(&pp_ops, &s, o->warmup_iter + o->num_iter);
    uint32_t len;
    free(fb_msg_recv(in, PP_MSG_BYE, &len)); /* ping saw our last answer */
    pp_close(&s);
    return FB_EXIT_OK;
}

static void pp_report(const pp_opts *o, fb_samples *half)
{
    char what[256];
    snprintf(what, sizeof(what), "%s%s%s%s", o->backend, o->backend_params ? " " : "",
             o->backend_params ? o->backend_params : "", o->notif ? ", WRITE + notification" : "");
    json_t *extra = json_pack("{s:s, s:b, s:b}", "backend", o->backend, "mem_alloc", o->mem_alloc,
                              "notif", o->notif);
    fb_pp_report(what, o->block_size, half, o->json, extra);
}

static int pp_ping_main(const pp_opts *o, int argc, char **argv)
{
    fb_child ch = fb_spawn(argc, argv, "pong:0");
    pp_side s = {.o = o, .name = "fp-ping", .peer = "fp-pong"};
    pp_open(&s);
    pp_hello pong = pp_greet(&s, ch.to, ch.from);
    pp_link(&s, &pong);
    fb_samples half = {0};
    fb_pp_ping(&pp_ops, &s, o->warmup_iter, o->num_iter, &half);
    fb_msg_send(ch.to, PP_MSG_BYE, NULL, 0);
    pp_close(&s);
    pp_report(o, &half);
    fb_samples_free(&half);
    return fb_exit_worse(FB_EXIT_OK, fb_children_wait());
}

int main(int argc, char **argv)
{
    fb_prog = "ferry-pingpong";
    pp_opts o;
    pp_parse(&o, argc, argv);
    if (o.fb_role)
        return pp_pong_main(&o);
    fb_probe(o.backend, o.backend_params, "DRAM", "DRAM");
    return pp_ping_main(&o, argc, argv);
}
