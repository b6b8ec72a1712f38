/* SPDX-License-Identifier: Apache-2.0 */
/* Small WRITEs as active messages (plugins/ucx/ucx_amw.c) meet a hostile
 * sender. A bare UCP worker in this process, with no ferry in between,
 * sends hand-made write messages over TCP loopback (peer error mode) to a
 * ferry agent's UCX backend, and the agent must:
 *   - copy a good message into its registered DRAM, deliver its
 *     notification once, and answer OK;
 *   - refuse a range outside its registered DRAM (answer NOT_FOUND) and a
 *     malformed message (answer BAD_METADATA) without touching memory or
 *     delivering anything, all or nothing;
 *   - answer nothing it cannot address (no readable id), drop forged or
 *     malformed answers sent to it, drop a rendezvous-sent message;
 *   - and keep working afterwards.
 * The message bytes come from the plugin's own codec (ucx_amw_wire.c),
 * then are broken by hand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucp/api/ucp.h>

#include <ferry/ferry.h>

#include "common/le.h"
#include "dlists.h"
#include "harness.h"
#include "metadata/wire.h"
#include "rt_util.h"
#include "ucx/ucx_amw_wire.h"

#define AM_WRITE  0x6f /* as plugins/ucx/ucx_internal.h */
#define AM_ACK    0x70
#define BUF_LEN   4096u
#define FROM      "raw-peer"
#define WAIT_MS   5000u /* an answer that should come */
#define SILENT_MS 300u  /* how long an answer that should not come is awaited */

typedef struct raw {
    ucp_context_h ctx;
    ucp_worker_h w;
    ucp_ep_h ep;
    unsigned acks;
    uint64_t ack_id;
    int32_t ack_status;
} raw;

static struct {
    ferry_agent *agent;
    uint8_t *buf, *outside; /* registered with ferry; not registered */
    raw r;
} T;

/* ---- the bare UCP side ---- */

static ucs_status_t raw_ack(void *arg, const void *header, size_t header_len, void *data,
                            size_t len, const ucp_am_recv_param_t *param)
{
    raw *r = arg;
    (void)header, (void)header_len, (void)param;
    if (fy_amw_ack_parse(data, len, &r->ack_id, &r->ack_status))
        r->acks++;
    return UCS_OK;
}

static void raw_ep_error(void *arg, ucp_ep_h ep, ucs_status_t st)
{
    (void)arg, (void)ep;
    printf("# raw endpoint: %s\n", ucs_status_string(st));
}

/* The agent's UCX worker 0 address, out of its own metadata. */
static uint8_t *agent_ucx_address(size_t *len)
{
    void *blob = NULL;
    size_t blob_len = 0;
    fy_md md;
    uint8_t *addr = NULL;
    if (ferry_md_get_local(T.agent, &blob, &blob_len) != FERRY_OK)
        return NULL;
    if (fy_md_decode(blob, blob_len, &md) == FERRY_OK) {
        for (uint32_t b = 0; b < md.num_backends; b++) {
            fy_bytes c = md.backends[b].conn;
            if (md.backends[b].name.len != 3 || memcmp(md.backends[b].name.ptr, "UCX", 3) ||
                c.len < 5)
                continue;
            uint64_t n = fy_le_get(c.ptr + 1, 4);
            if (n <= c.len - 5 && (addr = malloc(n))) {
                memcpy(addr, c.ptr + 5, n);
                *len = n;
            }
        }
        fy_md_free(&md);
    }
    free(blob);
    return addr;
}

static bool raw_open(raw *r)
{
    ucp_params_t p = {.field_mask = UCP_PARAM_FIELD_FEATURES, .features = UCP_FEATURE_AM};
    ucp_worker_params_t wp = {.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
                              .thread_mode = UCS_THREAD_MODE_SINGLE};
    size_t alen = 0;
    uint8_t *addr = agent_ucx_address(&alen);
    if (!addr || ucp_init(&p, NULL, &r->ctx) != UCS_OK ||
        ucp_worker_create(r->ctx, &wp, &r->w) != UCS_OK) {
        free(addr);
        return false;
    }
    ucp_am_handler_param_t ap = {.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID |
                                               UCP_AM_HANDLER_PARAM_FIELD_CB |
                                               UCP_AM_HANDLER_PARAM_FIELD_ARG,
                                 .id = AM_ACK,
                                 .cb = raw_ack,
                                 .arg = r};
    ucp_ep_params_t ep = {
        .field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                      UCP_EP_PARAM_FIELD_ERR_HANDLER,
        .address = (const ucp_address_t *)addr,
        .err_mode = UCP_ERR_HANDLING_MODE_PEER, /* as the agent's: TCP */
        .err_handler = {.cb = raw_ep_error, .arg = r},
    };
    bool ok = ucp_worker_set_am_recv_handler(r->w, &ap) == UCS_OK &&
              ucp_ep_create(r->w, &ep, &r->ep) == UCS_OK;
    free(addr);
    return ok;
}

static void progress_both(void)
{
    ucp_worker_progress(T.r.w);
    ferry_agent_progress(T.agent);
}

/* Runs req to its end (both sides progressing), bounded. */
static ucs_status_t raw_wait(void *req)
{
    if (!UCS_PTR_IS_PTR(req))
        return UCS_PTR_STATUS(req);
    ucs_status_t st;
    for (uint64_t end = rt_now_ms() + WAIT_MS;
         (st = ucp_request_check_status(req)) == UCS_INPROGRESS && rt_now_ms() < end;)
        progress_both();
    ucp_request_free(req);
    return st;
}

static void raw_close(raw *r)
{
    if (r->ep) {
        ucp_request_param_t p = {.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
                                 .flags = UCP_EP_CLOSE_FLAG_FORCE};
        (void)raw_wait(ucp_ep_close_nbx(r->ep, &p));
    }
    if (r->w)
        ucp_worker_destroy(r->w);
    if (r->ctx)
        ucp_cleanup(r->ctx);
}

/* Sends msg as active message `id` with flags, and waits for an answer:
 * returns its status, or 1 when none came in SILENT_MS (WAIT_MS when
 * expect_answer). */
static int32_t raw_send(unsigned id, const void *msg, size_t len, uint32_t flags,
                        bool expect_answer)
{
    ucp_request_param_t p = {.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS, .flags = flags};
    unsigned acks = T.r.acks;
    FY_CHECK_EQ(raw_wait(ucp_am_send_nbx(T.r.ep, id, NULL, 0, msg, len, &p)), UCS_OK);
    for (uint64_t end = rt_now_ms() + (expect_answer ? WAIT_MS : SILENT_MS);
         T.r.acks == acks && rt_now_ms() < end;)
        progress_both();
    return T.r.acks == acks ? 1 : T.r.ack_status;
}

static int32_t raw_write(const void *msg, size_t len, bool expect_answer)
{
    return raw_send(AM_WRITE, msg, len, UCP_AM_SEND_FLAG_EAGER | UCP_AM_SEND_FLAG_REPLY,
                    expect_answer);
}

/* ---- messages ---- */

typedef struct wseg {
    uint64_t addr;
    uint32_t len;
} wseg;

/* A well-formed message: segments, notification, and data bytes v, v+1... */
static uint8_t *message(uint64_t id, const wseg *s, uint32_t n, const char *notif, uint8_t v,
                        size_t *len)
{
    size_t nl = notif ? strlen(notif) : 0, head = fy_amw_prefix_len(n, strlen(FROM), nl), data = 0;
    for (uint32_t i = 0; i < n; i++)
        data += s[i].len;
    uint8_t *m = malloc(head + data + 1); /* + 1: room for the "extra byte" case */
    if (!m)
        return NULL;
    fy_amw_prefix_begin(m, id, n, FROM, strlen(FROM), notif, nl);
    for (uint32_t i = 0; i < n; i++)
        fy_amw_prefix_seg(m, i, s[i].addr, s[i].len);
    for (size_t k = 0; k < data; k++)
        m[head + k] = (uint8_t)(v + k);
    *len = head + data;
    return m;
}

static size_t notifs_from_raw(const char *want)
{
    ferry_notif_batch *b = NULL;
    size_t hits = 0;
    FY_CHECK_EQ(ferry_notif_take(T.agent, NULL, &b), FERRY_OK);
    for (size_t i = 0; i < ferry_notif_batch_count(b); i++) {
        const char *from;
        const void *msg;
        size_t len;
        FY_CHECK_EQ(ferry_notif_batch_get(b, i, &from, &msg, &len), FERRY_OK);
        FY_CHECK(!strcmp(from, FROM));
        hits += want && len == strlen(want) && !memcmp(msg, want, len);
        FY_CHECK(want && len == strlen(want) && !memcmp(msg, want, len));
    }
    ferry_notif_batch_free(b);
    return hits;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* ---- tests ---- */

static uint64_t at(size_t off)
{
    return (uint64_t)(uintptr_t)(T.buf + off);
}

/* Two ranges land, the notification arrives once, the answer is OK. */
static void test_good_write(void)
{
    wseg s[2] = {{at(100), 8}, {at(3000), 24}};
    size_t len;
    uint8_t *m = message(1, s, 2, "done", 0x40, &len);
    FY_REQUIRE(m);
    memset(T.buf, 0, BUF_LEN);
    FY_CHECK_EQ(raw_write(m, len, true), FERRY_OK);
    FY_CHECK_EQ(T.r.ack_id, 1u);
    for (unsigned k = 0; k < 8; k++)
        FY_CHECK_EQ(T.buf[100 + k], 0x40 + k);
    for (unsigned k = 0; k < 24; k++)
        FY_CHECK_EQ(T.buf[3000 + k], 0x48 + k);
    FY_CHECK_EQ(notifs_from_raw("done"), 1u);
    free(m);
}

/* Outside registered DRAM: NOT_FOUND, nothing copied (the first, good
 * range included), no notification. */
static void test_outside_refused(void)
{
    const wseg cases[][2] = {
        {{at(0), 8}, {(uint64_t)(uintptr_t)T.outside, 8}}, /* unregistered memory */
        {{at(0), 8}, {at(BUF_LEN - 4), 8}},                /* straddles the end */
        {{at(0), 8}, {at(0) - 8, 8}},                      /* just before */
        {{at(0), 8}, {0x1000, 8}},                         /* nowhere */
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t len;
        uint8_t *m = message(10 + c, cases[c], 2, "never", 0x11, &len);
        FY_REQUIRE(m);
        memset(T.buf, 0, BUF_LEN);
        memset(T.outside, 0, BUF_LEN);
        FY_CHECK_EQ(raw_write(m, len, true), FERRY_ERR_NOT_FOUND);
        FY_CHECK_EQ(T.r.ack_id, 10u + c);
        FY_CHECK(all_zero(T.buf, BUF_LEN) && all_zero(T.outside, BUF_LEN));
        FY_CHECK_EQ(notifs_from_raw(NULL), 0u);
        free(m);
    }
}

/* Malformed messages with a readable id: BAD_METADATA, nothing done. */
static void test_malformed_answered(void)
{
    wseg s[1] = {{at(64), 16}};
    size_t len;
    for (unsigned c = 0; c < 8; c++) {
        uint8_t *m = message(100 + c, s, 1, "never", 0x22, &len);
        FY_REQUIRE(m);
        size_t n = len;
        switch (c) {
        case 0:
            n = len - 1;
            break; /* a data byte short */
        case 1:
            m[len] = 0, n = len + 1;
            break; /* a byte too many */
        case 2:
            fy_le_put(m + 12, 0, 4);
            break; /* no segments */
        case 3:
            fy_le_put(m + 12, 5000, 4);
            break; /* too many segments */
        case 4:
            m[20] = m[21] = 0;
            break; /* no sender name */
        case 5:
            fy_le_put(m + 16, 70000, 4);
            break; /* notification too long */
        case 6:
            n = FY_AMW_FIXED - 1;
            break; /* head cut short */
        case 7:    /* a range that wraps the address space */
            fy_amw_prefix_seg(m, 0, UINT64_MAX - 7, 16);
            break;
        }
        memset(T.buf, 0, BUF_LEN);
        FY_CHECK_EQ(raw_write(m, n, true), FERRY_ERR_BAD_METADATA);
        FY_CHECK_EQ(T.r.ack_id, 100u + c);
        FY_CHECK(all_zero(T.buf, BUF_LEN));
        FY_CHECK_EQ(notifs_from_raw(NULL), 0u);
        free(m);
    }
}

/* No id to answer, answers nobody asked for, a rendezvous: dropped. */
static void test_dropped_silently(void)
{
    wseg s[1] = {{at(0), 8}};
    size_t len;
    uint8_t *m = message(200, s, 1, "never", 0x33, &len);
    FY_REQUIRE(m);
    memset(T.buf, 0, BUF_LEN);
    m[0] ^= 0xff; /* bad magic */
    FY_CHECK_EQ(raw_write(m, len, false), 1);
    FY_CHECK_EQ(raw_write(m, 5, false), 1);    /* 5 bytes */
    FY_CHECK_EQ(raw_write(NULL, 0, false), 1); /* empty */
    m[0] ^= 0xff;
    /* Without the reply flag the message lands but cannot be answered. */
    FY_CHECK_EQ(raw_send(AM_WRITE, m, len, UCP_AM_SEND_FLAG_EAGER, false), 1);
    FY_CHECK_EQ(T.buf[0], 0x33);
    FY_CHECK_EQ(notifs_from_raw("never"), 1u);
    memset(T.buf, 0, BUF_LEN);
    /* Rendezvous: the target copies only out of eager messages. */
    FY_CHECK_EQ(raw_send(AM_WRITE, m, len, UCP_AM_SEND_FLAG_RNDV | UCP_AM_SEND_FLAG_REPLY, false),
                1);
    FY_CHECK(all_zero(T.buf, BUF_LEN));
    /* Answers sent to the agent: one for an id it never used, two broken. */
    uint8_t ack[FY_AMW_ACK_LEN];
    fy_amw_ack_encode(ack, 123456, FERRY_OK);
    FY_CHECK_EQ(raw_send(AM_ACK, ack, sizeof(ack), UCP_AM_SEND_FLAG_EAGER, false), 1);
    FY_CHECK_EQ(raw_send(AM_ACK, ack, 3, UCP_AM_SEND_FLAG_EAGER, false), 1);
    ack[0] ^= 1;
    FY_CHECK_EQ(raw_send(AM_ACK, ack, sizeof(ack), UCP_AM_SEND_FLAG_EAGER, false), 1);
    FY_CHECK_EQ(notifs_from_raw(NULL), 0u);
    free(m);
}

/* After all that, a good write still works (and the agent is whole). */
static void test_still_works(void)
{
    test_good_write();
}

/* Bad values of the UCX backend's params fail its creation, cleanly. */
static void test_bad_params(void)
{
    static const ferry_param bad[][1] = {
        {{"am_writes", "sometimes"}}, {{"am_write_max", "1048577"}}, {{"am_write_max", "-1"}},
        {{"am_write_max", "4k"}},     {{"error_handling", "loud"}},  {{"num_workers", "0"}},
        {{"num_threads", "64"}},      {{"split_min", "0"}},          {{"keepalive_ms", "x"}},
    };
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = "amw-params";
    ferry_agent *a = NULL;
    FY_REQUIRE(ferry_agent_create(&cfg, &a) == FERRY_OK);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ferry_backend *be = NULL;
        FY_CHECK_EQ(ferry_backend_create(a, "UCX", bad[i], 1, &be), FERRY_ERR_INVALID_PARAM);
    }
    ferry_param good[] = {{"am_writes", "off"}, {"am_write_max", "0"}};
    ferry_backend *be = NULL;
    FY_CHECK_EQ(ferry_backend_create(a, "UCX", good, 2, &be), FERRY_OK);
    ferry_agent_destroy(a);
}

static bool setup(void)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = "amw-target";
    ferry_param params[] = {{"error_handling", "peer"}};
    ferry_backend *be;
    ferry_status rc = ferry_agent_create(&cfg, &T.agent);
    if (rc == FERRY_OK &&
        (rc = ferry_backend_create(T.agent, "UCX", params, 1, &be)) == FERRY_ERR_NOT_FOUND)
        fy_test_skip_all("UCX plugin not built");
    T.buf = aligned_alloc(4096, BUF_LEN);
    T.outside = aligned_alloc(4096, BUF_LEN);
    ferry_dlist *l = T.buf ? fy_t_range_list((uintptr_t)T.buf, BUF_LEN) : NULL;
    if (rc == FERRY_OK)
        rc = l && T.outside ? ferry_register(T.agent, l, NULL) : FERRY_ERR_NO_MEMORY;
    ferry_dlist_destroy(l);
    if (rc != FERRY_OK)
        printf("# setup: %s\n", ferry_status_name(rc));
    return rc == FERRY_OK && raw_open(&T.r);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!setup()) {
        printf("Bail out! cannot set up the agent and the bare UCP worker\n");
        return 1;
    }
    FY_RUN(test_good_write);
    FY_RUN(test_outside_refused);
    FY_RUN(test_malformed_answered);
    FY_RUN(test_dropped_silently);
    FY_RUN(test_still_works);
    FY_RUN(test_bad_params);
    raw_close(&T.r);
    ferry_agent_destroy(T.agent);
    free(T.buf);
    free(T.outside);
    return fy_test_done();
}
