/* SPDX-License-Identifier: Apache-2.0 */
/* ferry-ucx-anchor: the bare UCX path that ferry-pingpong is compared with.
 *
 * The same ping-pong as ferry-pingpong (two processes take turns to put a
 * block whose last 8 bytes carry the turn's number into the other's
 * memory, each spinning on ucp_worker_progress until the answer lands),
 * written against UCP alone. With --flush (the default) each put is
 * followed by ucp_ep_flush_nbx and the next turn waits for that flush, as
 * ferry's completion does; with --noflush it is ucp_put_lat's loop. So
 * ferry-pingpong minus this program is what ferry itself adds, and this
 * program with and without the flush shows what UCX's flush costs on a
 * transport.
 *
 *   ferry-ucx-anchor [--noflush] [--mem_alloc] [--peer_errors] \
 *       [--block_size 8] [--num_iter 10000] [--warmup_iter 1000] [--json F]
 *
 * --mem_alloc: UCX allocates the buffers (shared memory on one host, as
 * ucx_perftest's); --peer_errors: endpoints in UCX's peer error mode (as
 * ucx_perftest -e, ferry's default). UCX_TLS and the other UCX_*
 * variables apply. Built with the UCX plugin, not installed. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <ucp/api/ucp.h>

#include "ferry-bench/pingpong.h"

typedef struct ua_opts {
    const char *json, *fb_role;
    uint64_t block_size, num_iter, warmup_iter;
    bool flush, mem_alloc, peer_errors;
} ua_opts;

enum { UA_MSG_HELLO = 1, UA_MSG_BYE };

/* The hello's fixed part; the worker address and the packed key follow. */
typedef struct ua_hello {
    uint64_t inbox;
    uint32_t addr_len, rkey_len;
} ua_hello;

typedef struct ua_side {
    const ua_opts *o;
    const char *peer;
    ucp_context_h ctx;
    ucp_worker_h worker;
    ucp_mem_h memh;
    uint8_t *buf, *own; /* own: malloc'd buffer (without --mem_alloc) */
    ucp_ep_h ep;
    ucp_rkey_h rkey;
    uint64_t peer_inbox;
    void *flush_req; /* last turn's flush, until complete */
} ua_side;

/* ---- options ---- */

#define OPT(n, k, h) FB_OPT_FIELD(o, n, k, h)

static void ua_parse(ua_opts *o, int argc, char **argv)
{
    *o = (ua_opts){.block_size = 8, .num_iter = 10000, .warmup_iter = 1000, .flush = true};
    const fb_opt table[] = {
        OPT(flush, FB_OPT_BOOL, "flush the endpoint after each put (default; --noflush: not)"),
        OPT(mem_alloc, FB_OPT_BOOL, "buffers UCX allocates (ucp_mem_map ALLOCATE)"),
        OPT(peer_errors, FB_OPT_BOOL, "endpoints in UCX's peer error mode"),
        OPT(block_size, FB_OPT_SIZE, "bytes a turn puts, 8..1M, a multiple of 8 (default 8)"),
        OPT(num_iter, FB_OPT_UINT, "timed round trips (default 10000)"),
        OPT(warmup_iter, FB_OPT_UINT, "untimed round trips first (default 1000)"),
        OPT(json, FB_OPT_STR, "append the result to this file as one JSON object"),
        FB_OPT_HIDDEN_FIELD(o, fb_role, FB_OPT_STR, "internal: role of a spawned process"),
        {NULL, 0, NULL, NULL, 0},
    };
    fb_opts_parse(table, argc, argv);
    fb_pp_check(o->block_size, o->num_iter);
}

static void ua_ok(ucs_status_t st, const char *what)
{
    if (st != UCS_OK)
        fb_die("%s: %s", what, ucs_status_string(st));
}

/* ---- setup ---- */

static void ua_open(ua_side *s)
{
    ucp_config_t *config;
    ua_ok(ucp_config_read(NULL, NULL, &config), "ucp_config_read");
    ucp_params_t p = {.field_mask = UCP_PARAM_FIELD_FEATURES, .features = UCP_FEATURE_RMA};
    ucs_status_t st = ucp_init(&p, config, &s->ctx);
    ucp_config_release(config);
    ua_ok(st, "ucp_init");
    ucp_worker_params_t wp = {.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
                              .thread_mode = UCS_THREAD_MODE_SINGLE};
    ua_ok(ucp_worker_create(s->ctx, &wp, &s->worker), "ucp_worker_create");
    size_t len = (size_t)(2 * s->o->block_size);
    if (!s->o->mem_alloc)
        s->own = fb_alloc_pages(len);
    ucp_mem_map_params_t mp = {
        .field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH |
                      UCP_MEM_MAP_PARAM_FIELD_FLAGS,
        .address = s->own,
        .length = len,
        .flags = s->o->mem_alloc ? UCP_MEM_MAP_ALLOCATE : 0,
    };
    ua_ok(ucp_mem_map(s->ctx, &mp, &s->memh), "ucp_mem_map");
    ucp_mem_attr_t attr = {.field_mask = UCP_MEM_ATTR_FIELD_ADDRESS};
    ua_ok(ucp_mem_query(s->memh, &attr), "ucp_mem_query");
    s->buf = attr.address;
    memset(s->buf, 0, len);
}

/* Sends our worker address, key and inbox; reads the peer's. */
static uint8_t *ua_greet(ua_side *s, int to, int from, uint32_t *len)
{
    ucp_address_t *addr;
    size_t addr_len, rkey_len;
    void *rkey;
    ua_ok(ucp_worker_get_address(s->worker, &addr, &addr_len), "ucp_worker_get_address");
    ua_ok(ucp_rkey_pack(s->ctx, s->memh, &rkey, &rkey_len), "ucp_rkey_pack");
    ua_hello h = {
        .inbox = (uintptr_t)s->buf, .addr_len = (uint32_t)addr_len, .rkey_len = (uint32_t)rkey_len};
    size_t total = sizeof(h) + addr_len + rkey_len;
    uint8_t *msg = fb_alloc(total);
    memcpy(msg, &h, sizeof(h));
    memcpy(msg + sizeof(h), addr, addr_len);
    memcpy(msg + sizeof(h) + addr_len, rkey, rkey_len);
    fb_msg_send(to, UA_MSG_HELLO, msg, (uint32_t)total);
    free(msg);
    ucp_rkey_buffer_release(rkey);
    ucp_worker_release_address(s->worker, addr);
    return fb_msg_recv(from, UA_MSG_HELLO, len);
}

static void ua_ep_error(void *arg, ucp_ep_h ep, ucs_status_t st)
{
    (void)ep;
    fb_die("endpoint to %s: %s", ((ua_side *)arg)->peer, ucs_status_string(st));
}

static void ua_link(ua_side *s, const uint8_t *msg, uint32_t len)
{
    ua_hello h;
    if (len < sizeof(h))
        fb_die("bad hello from %s", s->peer);
    memcpy(&h, msg, sizeof(h));
    if ((uint64_t)sizeof(h) + h.addr_len + h.rkey_len != len)
        fb_die("bad hello from %s", s->peer);
    ucp_ep_params_t ep = {
        .field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                      UCP_EP_PARAM_FIELD_ERR_HANDLER,
        .address = (const ucp_address_t *)(msg + sizeof(h)),
        .err_mode = s->o->peer_errors ? UCP_ERR_HANDLING_MODE_PEER : UCP_ERR_HANDLING_MODE_NONE,
        .err_handler = {.cb = ua_ep_error, .arg = s},
    };
    ua_ok(ucp_ep_create(s->worker, &ep, &s->ep), "ucp_ep_create");
    ua_ok(ucp_ep_rkey_unpack(s->ep, msg + sizeof(h) + h.addr_len, &s->rkey), "ucp_ep_rkey_unpack");
    s->peer_inbox = h.inbox;
}

/* Closes the endpoint (flushed, bounded), then everything else. */
static void ua_close(ua_side *s)
{
    ucp_rkey_destroy(s->rkey);
    ucp_request_param_t p = {.op_attr_mask = 0};
    void *req = ucp_ep_close_nbx(s->ep, &p);
    double deadline = fb_now_us() + FB_TIMEOUT_S * 1e6;
    while (UCS_PTR_IS_PTR(req) && ucp_request_check_status(req) == UCS_INPROGRESS &&
           fb_now_us() < deadline)
        ucp_worker_progress(s->worker);
    if (UCS_PTR_IS_PTR(req))
        ucp_request_free(req);
    ucp_mem_unmap(s->ctx, s->memh);
    free(s->own);
    ucp_worker_destroy(s->worker);
    ucp_cleanup(s->ctx);
}

/* ---- turns ---- */

/* Waits for the last turn's flush (as ferry waits for its request). */
static void ua_settle(ua_side *s)
{
    if (!s->flush_req)
        return;
    ucs_status_t st;
    while ((st = ucp_request_check_status(s->flush_req)) == UCS_INPROGRESS)
        ucp_worker_progress(s->worker);
    ucp_request_free(s->flush_req);
    s->flush_req = NULL;
    ua_ok(st, "flush");
}

static void ua_send(void *side, uint64_t seq)
{
    ua_side *s = side;
    size_t bs = (size_t)s->o->block_size;
    ua_settle(s);
    fb_pp_stamp(s->buf, bs, seq);
    ucp_request_param_t p = {.op_attr_mask = 0};
    void *req = ucp_put_nbx(s->ep, s->buf + bs, bs, s->peer_inbox, s->rkey, &p);
    if (UCS_PTR_IS_ERR(req))
        ua_ok(UCS_PTR_STATUS(req), "ucp_put_nbx");
    if (req)
        ucp_request_free(req); /* completes on its own; the flush covers it */
    if (!s->o->flush)
        return;
    req = ucp_ep_flush_nbx(s->ep, &p);
    if (UCS_PTR_IS_ERR(req))
        ua_ok(UCS_PTR_STATUS(req), "ucp_ep_flush_nbx");
    s->flush_req = req;
}

static void ua_await(void *side, uint64_t seq)
{
    ua_side *s = side;
    double deadline = fb_now_us() + FB_TIMEOUT_S * 1e6;
    for (unsigned n = 0; fb_pp_landed(s->buf, s->o->block_size) != seq; n++) {
        ucp_worker_progress(s->worker);
        if ((n & 4095) == 4095 && fb_now_us() > deadline)
            fb_die("%s did not answer turn %" PRIu64 " in %.0f s", s->peer, seq, FB_TIMEOUT_S);
    }
}

/* ---- the two processes ---- */

static void ua_setup(ua_side *s, int to, int from)
{
    ua_open(s);
    uint32_t len;
    uint8_t *msg = ua_greet(s, to, from, &len);
    ua_link(s, msg, len);
    free(msg);
}

static const fb_pp_ops ua_ops = {.send = ua_send, .await = ua_await};

static int ua_pong_main(const ua_opts *o)
{
    int in, out;
    fb_pp_pong_pipes(o->fb_role, &in, &out);
    ua_side s = {.o = o, .peer = "ping"};
    ua_setup(&s, out, in);
    fb_pp_pong(&ua_ops, &s, o->warmup_iter + o->num_iter);
    ua_settle(&s);
    uint32_t len;
    free(fb_msg_recv(in, UA_MSG_BYE, &len));
    ua_close(&s);
    return FB_EXIT_OK;
}

static void ua_report(const ua_opts *o, fb_samples *half)
{
    json_t *extra = json_pack("{s:s, s:b, s:b}", "anchor", o->flush ? "ucp_put+flush" : "ucp_put",
                              "mem_alloc", o->mem_alloc, "peer_errors", o->peer_errors);
    fb_pp_report(o->flush ? "UCX put + flush" : "UCX put", o->block_size, half, o->json, extra);
}

static int ua_ping_main(const ua_opts *o, int argc, char **argv)
{
    fb_child ch = fb_spawn(argc, argv, "pong:0");
    ua_side s = {.o = o, .peer = "pong"};
    ua_setup(&s, ch.to, ch.from);
    fb_samples half = {0};
    fb_pp_ping(&ua_ops, &s, o->warmup_iter, o->num_iter, &half);
    ua_settle(&s);
    fb_msg_send(ch.to, UA_MSG_BYE, NULL, 0);
    ua_close(&s);
    ua_report(o, &half);
    fb_samples_free(&half);
    return fb_exit_worse(FB_EXIT_OK, fb_children_wait());
}

int main(int argc, char **argv)
{
    fb_prog = "ferry-ucx-anchor";
    ua_opts o;
    ua_parse(&o, argc, argv);
    return o.fb_role ? ua_pong_main(&o) : ua_ping_main(&o, argc, argv);
}
