/* SPDX-License-Identifier: Apache-2.0 */
/* Transfers as active messages (plugins/ucx/ucx_amw.c, ucx_amt.c) meet a
 * hostile peer. A bare UCP worker in this process, with no ferry in
 * between, sends hand-made messages over TCP loopback (peer error mode) to
 * a ferry agent's UCX backend, and tries UCX's own puts and gets on it;
 * another agent loads forged metadata of it. The agent must:
 *   - reach nothing but its registered DRAM: no emulated put or get of UCX
 *     is served (rma=off, the default; the same attack on an agent with
 *     rma=on shows what the param opens), a READ request or WRITE outside
 *     registered DRAM is refused, and so is a transfer made from metadata
 *     forged to describe memory never registered, READ and 512 KiB WRITE;
 *   - refuse hostile remote-key bytes when metadata is loaded;
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
#include "ucx_amw_wire.h"

#define AM_WRITE  0x6f /* as plugins/ucx/ucx_internal.h */
#define AM_ACK    0x70
#define AM_READ   0x71
#define AM_RDATA  0x72
#define BUF_LEN   4096u
#define BIG_LEN   (1u << 20) /* the unregistered memory forged metadata points at */
#define FROM      "raw-peer"
#define WAIT_MS   5000u /* an answer that should come */
#define SILENT_MS 300u  /* how long an answer that should not come is awaited */

/* FY_REQUIRE for helpers that return a value: the whole run stops. */
#define MUST(cond)                                                                                 \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("Bail out! %s:%d: %s\n", __FILE__, __LINE__, #cond);                            \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

typedef struct raw {
    ucp_context_h ctx;
    ucp_worker_h w;
    ucp_ep_h ep;
    unsigned acks;
    uint64_t ack_id;
    int32_t ack_status;
    uint8_t rdata[BUF_LEN]; /* the data of the last answer to a read */
    size_t rdata_len;
    void *late[4]; /* buffers a get may still land in: freed after the worker */
    unsigned num_late;
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

/* An answer to a read: counted like an acknowledgement, its data kept. */
static ucs_status_t raw_rdata(void *arg, const void *header, size_t header_len, void *data,
                              size_t len, const ucp_am_recv_param_t *param)
{
    raw *r = arg;
    if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV || len > sizeof(r->rdata) ||
        !fy_amw_rdata_parse(header, header_len, &r->ack_id, &r->ack_status))
        return UCS_OK;
    memcpy(r->rdata, data, len);
    r->rdata_len = len;
    r->acks++;
    return UCS_OK;
}

static void raw_ep_error(void *arg, ucp_ep_h ep, ucs_status_t st)
{
    (void)arg, (void)ep;
    printf("# raw endpoint: %s\n", ucs_status_string(st));
}

/* An agent's UCX worker 0 address, out of its own metadata. */
static uint8_t *agent_ucx_address(ferry_agent *agent, size_t *len)
{
    void *blob = NULL;
    size_t blob_len = 0;
    fy_md md;
    uint8_t *addr = NULL;
    if (ferry_md_get_local(agent, &blob, &blob_len) != FERRY_OK)
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

/* A bare UCP worker with an endpoint to agent. It asks for RMA too: an
 * attacker would, to try UCX's emulated puts and gets on the agent. */
static bool raw_open(raw *r, ferry_agent *agent)
{
    ucp_params_t p = {.field_mask = UCP_PARAM_FIELD_FEATURES,
                      .features = UCP_FEATURE_AM | UCP_FEATURE_RMA};
    ucp_worker_params_t wp = {.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
                              .thread_mode = UCS_THREAD_MODE_SINGLE};
    size_t alen = 0;
    uint8_t *addr = agent_ucx_address(agent, &alen);
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
    ucp_am_handler_param_t rp = ap;
    rp.id = AM_RDATA;
    rp.cb = raw_rdata;
    bool ok = ucp_worker_set_am_recv_handler(r->w, &ap) == UCS_OK &&
              ucp_worker_set_am_recv_handler(r->w, &rp) == UCS_OK &&
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
    ucp_worker_progress(r->w);
    if (r->ep) {
        ucp_request_param_t p = {.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
                                 .flags = UCP_EP_CLOSE_FLAG_FORCE};
        (void)raw_wait(ucp_ep_close_nbx(r->ep, &p));
    }
    if (r->w)
        ucp_worker_destroy(r->w);
    if (r->ctx)
        ucp_cleanup(r->ctx);
    while (r->num_late)
        free(r->late[--r->num_late]);
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

/* A well-formed write message: segments, notification, and data bytes
 * v, v+1...; or (read) a read request for the segments. */
static uint8_t *message_of(bool read, uint64_t id, const wseg *s, uint32_t n, const char *notif,
                           uint8_t v, size_t *len)
{
    size_t nl = notif ? strlen(notif) : 0, head = fy_amw_prefix_len(n, strlen(FROM), nl), data = 0;
    for (uint32_t i = 0; i < n && !read; i++)
        data += s[i].len;
    uint8_t *m = malloc(head + data + 1); /* + 1: room for the "extra byte" case */
    if (!m)
        return NULL;
    fy_amw_prefix_begin(m, read, id, n, FROM, strlen(FROM), notif, nl);
    for (uint32_t i = 0; i < n; i++)
        fy_amw_prefix_seg(m, i, s[i].addr, s[i].len);
    for (size_t k = 0; k < data; k++)
        m[head + k] = (uint8_t)(v + k);
    *len = head + data;
    return m;
}

static uint8_t *message(uint64_t id, const wseg *s, uint32_t n, const char *notif, uint8_t v,
                        size_t *len)
{
    return message_of(false, id, s, n, notif, v, len);
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

/* ---- reads, and what a peer can reach ---- */

static int32_t raw_read(const void *msg, size_t len)
{
    T.r.rdata_len = SIZE_MAX;
    return raw_send(AM_READ, msg, len, UCP_AM_SEND_FLAG_EAGER | UCP_AM_SEND_FLAG_REPLY, true);
}

/* A read request inside registered DRAM gets exactly those bytes; partly
 * outside it NOT_FOUND and no data; malformed BAD_METADATA. */
static void test_read_requests(void)
{
    for (size_t k = 0; k < BUF_LEN; k++)
        T.buf[k] = (uint8_t)(k * 7);
    wseg good[2] = {{at(10), 5}, {at(2000), 11}};
    size_t len;
    uint8_t *m = message_of(true, 300, good, 2, NULL, 0, &len);
    FY_REQUIRE(m);
    FY_CHECK_EQ(raw_read(m, len), FERRY_OK);
    FY_CHECK_EQ(T.r.ack_id, 300u);
    FY_CHECK_EQ(T.r.rdata_len, 16u);
    FY_CHECK(!memcmp(T.r.rdata, T.buf + 10, 5) && !memcmp(T.r.rdata + 5, T.buf + 2000, 11));
    free(m);
    wseg bad[2] = {{at(0), 8}, {(uint64_t)(uintptr_t)T.outside, 8}};
    m = message_of(true, 301, bad, 2, NULL, 0, &len);
    FY_REQUIRE(m);
    FY_CHECK_EQ(raw_read(m, len), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(T.r.rdata_len, 0u);
    m[len] = 0; /* a byte of data: a read request carries none */
    FY_CHECK_EQ(raw_read(m, len + 1), FERRY_ERR_BAD_METADATA);
    FY_CHECK_EQ(T.r.ack_id, 301u);
    FY_CHECK_EQ(T.r.rdata_len, 0u);
    free(m);
}

/* UCX's own get and put from r's worker, aimed at n bytes of target (in
 * this process, served by agent's worker): whether either reached it (the
 * get brought its bytes back, or the put changed them) within SILENT_MS. */
static bool raw_rma_reaches(raw *r, ferry_agent *agent, uint8_t *target, size_t n)
{
    MUST(r->num_late < sizeof(r->late) / sizeof(r->late[0]));
    uint8_t *got = calloc(1, n), *put = malloc(n);
    ucp_mem_map_params_t mp = {.field_mask =
                                   UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH,
                               .address = got,
                               .length = n};
    ucp_mem_h mh;
    void *packed;
    size_t packed_len;
    ucp_rkey_h rkey;
    MUST(got && put && ucp_mem_map(r->ctx, &mp, &mh) == UCS_OK);
    MUST(ucp_rkey_pack(r->ctx, mh, &packed, &packed_len) == UCS_OK);
    MUST(ucp_ep_rkey_unpack(r->ep, packed, &rkey) == UCS_OK);
    memset(target, 0x77, n);
    memset(put, 0x44, n);
    ucp_request_param_t p = {.op_attr_mask = 0};
    uint64_t addr = (uint64_t)(uintptr_t)target;
    void *get_req = ucp_get_nbx(r->ep, got, n, addr, rkey, &p);
    void *put_req = ucp_put_nbx(r->ep, put, n, addr + n / 2, rkey, &p);
    bool got_it = false, put_it = false;
    for (uint64_t end = rt_now_ms() + SILENT_MS; !(got_it && put_it) && rt_now_ms() < end;) {
        ucp_worker_progress(r->w);
        ferry_agent_progress(agent);
        got_it = got[0] == 0x77 && got[n / 2 - 1] == 0x77;
        put_it = target[n / 2] == 0x44;
    }
    printf("# UCX get %s, put %s\n", got_it ? "read it" : "read nothing",
           put_it ? "changed it" : "changed nothing");
    /* Requests the agent never serves stay with UCX until raw_close. */
    if (UCS_PTR_IS_PTR(get_req))
        ucp_request_free(get_req);
    if (UCS_PTR_IS_PTR(put_req))
        ucp_request_free(put_req);
    ucp_rkey_destroy(rkey);
    ucp_rkey_buffer_release(packed);
    (void)ucp_mem_unmap(r->ctx, mh);
    free(put);
    if (r->num_late < sizeof(r->late) / sizeof(r->late[0]))
        r->late[r->num_late++] = got; /* a get may still land there */
    return got_it || put_it;
}

static ferry_agent *agent_with(const char *name, const ferry_param *params, size_t n)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = name;
    ferry_agent *a = NULL;
    ferry_backend *be;
    MUST(ferry_agent_create(&cfg, &a) == FERRY_OK);
    MUST(ferry_backend_create(a, "UCX", params, n, &be) == FERRY_OK);
    return a;
}

/* UCX's emulated get and put do not reach the agent's memory, registered
 * or not: with rma=off its context serves no RMA. The same attack on an
 * agent with rma=on reaches memory it never registered (what that param's
 * warning says, and proof that the attack is a real one). */
static void test_emulated_rma_refused(void)
{
    FY_CHECK(!raw_rma_reaches(&T.r, T.agent, T.outside, 64));
    FY_CHECK(!raw_rma_reaches(&T.r, T.agent, T.buf, 64));
    ferry_param on[] = {{"rma", "on"}};
    ferry_agent *a = agent_with("amw-rma-on", on, 1);
    raw r = {0};
    FY_REQUIRE(raw_open(&r, a));
    FY_CHECK(raw_rma_reaches(&r, a, T.outside, 64));
    raw_close(&r);
    ferry_agent_destroy(a);
}

/* The target's metadata with its region moved onto [addr, addr+len), and
 * (key) its UCX key bytes replaced: a blob for ferry_md_load. */
static void *forged_blob(uint64_t addr, uint64_t len, const fy_bytes *key, size_t *blob_len)
{
    void *blob = NULL, *out = NULL;
    size_t n = 0;
    fy_md md;
    MUST(ferry_md_get_local(T.agent, &blob, &n) == FERRY_OK);
    MUST(fy_md_decode(blob, n, &md) == FERRY_OK && md.num_regions == 1);
    md.regions[0].addr = addr;
    md.regions[0].len = len;
    for (uint32_t b = 0; key && b < md.num_backends; b++) {
        md.regions[0].backend_mask |= 1u << b;
        md.pubs[b] = *key;
    }
    FY_CHECK_EQ(fy_md_encode(&md, &out, blob_len), FERRY_OK);
    fy_md_free(&md);
    free(blob);
    return out;
}

/* Runs x to its end, the target progressing too; its final status. */
static ferry_status run_xfer(ferry_xfer *x)
{
    ferry_status rc = ferry_xfer_post(x);
    for (uint64_t end = rt_now_ms() + WAIT_MS; rc == FERRY_IN_PROGRESS && rt_now_ms() < end;) {
        ferry_agent_progress(T.agent);
        rc = ferry_xfer_status(x);
    }
    return rc;
}

static ferry_status xfer_to_target(ferry_agent *a, ferry_xfer_op op, uint8_t *mine, uint64_t addr,
                                   size_t len)
{
    ferry_dlist *l = fy_t_range_list((uintptr_t)mine, len), *r = fy_t_range_list(addr, len);
    ferry_xfer *x = NULL;
    ferry_status rc =
        l && r ? ferry_xfer_create(a, op, l, r, "amw-target", NULL, &x) : FERRY_ERR_NO_MEMORY;
    if (rc == FERRY_OK)
        rc = run_xfer(x);
    if (x)
        ferry_xfer_release(x);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    return rc;
}

static bool all_of(const uint8_t *p, size_t n, uint8_t v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return false;
    return true;
}

/* Metadata forged to describe memory the target never registered: a READ
 * and a 512 KiB WRITE made from it are refused by the target (NOT_FOUND),
 * nothing read or written; the same region described truly still works. */
static void test_forged_region(void)
{
    ferry_agent *a = agent_with("amw-attacker", NULL, 0);
    uint8_t *mine = malloc(BIG_LEN), *big = malloc(BIG_LEN);
    ferry_dlist *l = mine ? fy_t_range_list((uintptr_t)mine, BIG_LEN) : NULL;
    FY_REQUIRE(big && l && ferry_register(a, l, NULL) == FERRY_OK);
    size_t n;
    void *blob = forged_blob((uintptr_t)big, BIG_LEN, NULL, &n);
    char name[FERRY_NAME_MAX + 1];
    FY_REQUIRE(blob && ferry_md_load(a, blob, n, name, sizeof(name)) == FERRY_OK);
    memset(big, 0x5a, BIG_LEN);
    memset(mine, 0x11, BIG_LEN);
    FY_CHECK_EQ(xfer_to_target(a, FERRY_OP_READ, mine, (uintptr_t)big, 4096), FERRY_ERR_NOT_FOUND);
    FY_CHECK(all_of(mine, 4096, 0x11));
    FY_CHECK_EQ(xfer_to_target(a, FERRY_OP_WRITE, mine, (uintptr_t)big, 512u << 10),
                FERRY_ERR_NOT_FOUND);
    FY_CHECK(all_of(big, BIG_LEN, 0x5a));
    free(blob);
    ferry_dlist_destroy(l);
    ferry_agent_destroy(a);
    free(mine);
    free(big);
}

/* Remote-key bytes that are not a UCX key (1 byte 0xff, 8 random bytes,
 * a size running past the end) are refused when the metadata is loaded,
 * by agents with rma=off and rma=on: never handed to UCX. */
static void test_hostile_keys(void)
{
    static const uint8_t one[] = {0xff}, eight[] = {0x3c, 0x91, 0x07, 0xee, 0x52, 0xa8, 0x19, 0x6d},
                         overrun[] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 200, 1, 2};
    const fy_bytes keys[] = {
        {one, sizeof(one)}, {eight, sizeof(eight)}, {overrun, sizeof(overrun)}};
    ferry_param on[] = {{"rma", "on"}};
    for (int rma = 0; rma < 2; rma++) {
        ferry_agent *a = agent_with(rma ? "amw-keys-on" : "amw-keys", on, (size_t)rma);
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
            size_t n;
            void *blob = forged_blob(at(0), BUF_LEN, &keys[k], &n);
            char name[FERRY_NAME_MAX + 1];
            FY_CHECK_EQ(ferry_md_load(a, blob, n, name, sizeof(name)), FERRY_ERR_BAD_METADATA);
            free(blob);
        }
        ferry_agent_destroy(a);
    }
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
        {{"am_writes", "sometimes"}}, {{"am_write_max", "16777217"}}, {{"am_write_max", "-1"}},
        {{"am_write_max", "4k"}},     {{"am_write_max", "0"}},        {{"am_read_max", "4095"}},
        {{"rma", "maybe"}},           {{"error_handling", "loud"}},   {{"num_workers", "0"}},
        {{"num_threads", "64"}},      {{"split_min", "0"}},           {{"keepalive_ms", "x"}},
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
    ferry_param good[] = {{"rma", "on"}, {"am_writes", "off"}, {"am_write_max", "0"}};
    ferry_backend *be = NULL;
    FY_CHECK_EQ(ferry_backend_create(a, "UCX", good, 3, &be), FERRY_OK);
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
    if (T.outside)
        memset(T.outside, 0, BUF_LEN);
    ferry_dlist *l = T.buf ? fy_t_range_list((uintptr_t)T.buf, BUF_LEN) : NULL;
    if (rc == FERRY_OK)
        rc = l && T.outside ? ferry_register(T.agent, l, NULL) : FERRY_ERR_NO_MEMORY;
    ferry_dlist_destroy(l);
    if (rc != FERRY_OK)
        printf("# setup: %s\n", ferry_status_name(rc));
    return rc == FERRY_OK && raw_open(&T.r, T.agent);
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
    FY_RUN(test_read_requests);
    FY_RUN(test_forged_region);
    FY_RUN(test_hostile_keys);
    FY_RUN(test_emulated_rma_refused);
    FY_RUN(test_still_works);
    FY_RUN(test_bad_params);
    raw_close(&T.r);
    ferry_agent_destroy(T.agent);
    free(T.buf);
    free(T.outside);
    return fy_test_done();
}
