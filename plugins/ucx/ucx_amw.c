/* SPDX-License-Identifier: Apache-2.0 */
/* UCX backend: small WRITEs as active messages, where UCX emulates RMA.
 *
 * Why: where UCX has no RMA lane to a peer (TCP: what peer error mode
 * leaves on one host, and what hosts without RDMA use), it emulates a put
 * with active messages, the put and the target's completion. A ferry
 * request also needs the endpoint's flush, which on TCP costs one more
 * request and its answer: four messages a WRITE where ucp_put_lat counts
 * two, and a message per descriptor. Here a WRITE of up to am_write_max
 * bytes is one active message with the descriptors, the data and the
 * notification; the target checks every range against the DRAM registered
 * in this backend, copies, delivers the notification and answers with one
 * acknowledgement, which completes the request. Two messages, whatever the
 * number of descriptors (up to 4096 a message; more make more messages,
 * all in flight at once, and then the notification follows the last
 * answer as a message of its own, as after the flush of puts: parts may be
 * copied in any order, the notification must come after all of them).
 * Bigger WRITEs go as puts: with UCX's TCP segments at 256 KiB (ucx.c)
 * those are as fast from about 256 KiB on, and copy once less.
 *
 * The bytes are in ucx_amw_wire.h. A peer's message may be hostile: it is
 * parsed whole, and every range checked, before anything is copied; a bad
 * one is answered with an error and logged. What a peer can reach this way
 * is what its remote keys already reach: memory registered here.
 *
 * The answer leaves after the target's application has seen its data:
 * the handler queues it, and it is sent when the backend is next called
 * (a progress call, a post, a notification, a close), always before UCX
 * runs again, so the endpoint UCX handed the handler is still valid. On
 * TCP every message costs each side a few microseconds of system calls;
 * answering inside the handler would put that on the path between the
 * data landing and the target acting on it (measured: 8 B one way 16 us
 * with the answer in the handler, 9 us without it, on the 2-core VM).
 * The agent's progress thread, having seen work, polls again at once, so
 * an idle target answers within one loop.
 *
 * Ids: each part in flight waits in u->amw_waiting under a fresh id; an
 * acknowledgement settles the part waiting under its id, and one for an
 * id nobody waits for (released meanwhile, or forged) is dropped. Release
 * waits for every answer (bounded, as for puts): until then the peer's
 * memory may still change. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ucx_amw_wire.h"
#include "ucx_internal.h"

/* Happens-before across the messages, for ThreadSanitizer. Between two
 * agents of one process a WRITE message and its answer travel through a
 * socket, which orders the sender's use of the memory before the target's
 * copy and the copy before the sender's use after completion, but which
 * TSan cannot see through: without this it reports those uses as races.
 * Each side publishes before it sends and observes after it receives: one
 * atomic add and one load per message. */
static _Atomic uint64_t fy_ucx_amw_order;

static void fy_ucx_amw_publish(void)
{
    atomic_fetch_add_explicit(&fy_ucx_amw_order, 1, memory_order_release);
}

static void fy_ucx_amw_observe(void)
{
    (void)atomic_load_explicit(&fy_ucx_amw_order, memory_order_acquire);
}

/* ---- the choice ---- */

/* Whether every lane of ep is a TCP lane, read from UCX's description of
 * the endpoint (UCX 1.13 has no query for an endpoint's transports). A
 * format we cannot read counts as "no": the RMA path is always correct. */
bool fy_ucx_ep_tcp_only(ucp_ep_h ep)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return false;
    ucp_ep_print_info(ep, f);
    fclose(f);
    unsigned lanes = 0, tcp = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *lane = strstr(line, "lane[");
        lanes += lane != NULL;
        tcp += lane && strstr(lane, ":tcp/");
    }
    free(text);
    return lanes > 0 && tcp == lanes;
}

bool fy_ucx_amw_fits(const fy_ucx_xfer *x)
{
    const ferry_plugin_xfer *px = x->px;
    const fy_ucx *u = x->u;
    return x->remote->amw && px->op == FERRY_OP_WRITE && px->local_type == FERRY_MEM_DRAM &&
           px->remote_type == FERRY_MEM_DRAM && px->total_bytes && px->total_bytes <= u->amw_max &&
           strlen(u->host->agent_name) <= FY_AMW_MAX_FROM;
}

/* ---- packing ---- */

/* Messages with data (WRITEs, notifications) go out through this generic
 * datatype, so UCX copies them into its own buffers (bcopy) instead of
 * sending from ours (zcopy): UCX 1.13's TCP transport can complete a
 * zero-copy send twice when the peer dies with it in flight, and aborts
 * the process on its assertion (seen in CI: uct_iface.h "comp->count > 0",
 * kill -9 during a 64 MiB WRITE sent as 1 MiB messages). */
void fy_ucx_pack_init(fy_ucx_pack *pk, const ucp_dt_iov_t *iov, size_t num_iov)
{
    *pk = (fy_ucx_pack){.iov = iov, .num_iov = num_iov};
    for (size_t i = 0; i < num_iov; i++)
        pk->len += iov[i].length;
}

static void fy_ucx_pack_seek(fy_ucx_pack *pk, uint64_t at)
{
    pk->cur_iov = 0;
    pk->cur_off = 0;
    pk->cur_at = 0;
    while (pk->cur_iov < pk->num_iov && pk->cur_at + pk->iov[pk->cur_iov].length <= at)
        pk->cur_at += pk->iov[pk->cur_iov++].length;
    if (pk->cur_iov < pk->num_iov) {
        pk->cur_off = (size_t)(at - pk->cur_at);
        pk->cur_at = at;
    }
}

static void *fy_ucx_pack_start(void *ctx, const void *buffer, size_t count)
{
    fy_ucx_pack *pk = (fy_ucx_pack *)(uintptr_t)buffer;
    (void)ctx, (void)count;
    fy_ucx_pack_seek(pk, 0);
    return pk;
}

static size_t fy_ucx_pack_size(void *state)
{
    return (size_t)((fy_ucx_pack *)state)->len;
}

static size_t fy_ucx_pack_some(void *state, size_t offset, void *dest, size_t max)
{
    fy_ucx_pack *pk = state;
    if (offset != pk->cur_at)
        fy_ucx_pack_seek(pk, offset);
    size_t done = 0;
    while (done < max && pk->cur_iov < pk->num_iov) {
        const ucp_dt_iov_t *v = &pk->iov[pk->cur_iov];
        size_t n = v->length - pk->cur_off < max - done ? v->length - pk->cur_off : max - done;
        memcpy((uint8_t *)dest + done, (const uint8_t *)v->buffer + pk->cur_off, n);
        done += n;
        pk->cur_off += n;
        if (pk->cur_off == v->length) {
            pk->cur_iov++;
            pk->cur_off = 0;
        }
    }
    pk->cur_at += done;
    fy_ucx_amw_publish(); /* our reads, before the target's answer */
    return done;
}

static void *fy_ucx_pack_start_unpack(void *ctx, void *buffer, size_t count)
{
    (void)ctx, (void)count;
    return buffer; /* never received into: targets read messages themselves */
}

static ucs_status_t fy_ucx_pack_unpack(void *state, size_t offset, const void *src, size_t len)
{
    (void)state, (void)offset, (void)src, (void)len;
    return UCS_ERR_UNSUPPORTED;
}

static void fy_ucx_pack_finish(void *state)
{
    (void)state;
}

ucs_status_t fy_ucx_amw_init(fy_ucx *u)
{
    static const ucp_generic_dt_ops_t ops = {
        .start_pack = fy_ucx_pack_start,
        .start_unpack = fy_ucx_pack_start_unpack,
        .packed_size = fy_ucx_pack_size,
        .pack = fy_ucx_pack_some,
        .unpack = fy_ucx_pack_unpack,
        .finish = fy_ucx_pack_finish,
    };
    ucs_status_t st = ucp_dt_create_generic(&ops, u, &u->pack_dt);
    u->pack_dt_made = st == UCS_OK;
    return st;
}

void fy_ucx_amw_fini(fy_ucx *u)
{
    fy_ucx_amw_answer_all(u);
    free(u->answers);
    u->answers = NULL;
    u->answers_cap = 0;
}

/* After the workers are gone: no send uses the datatype any more. */
void fy_ucx_amw_dt_fini(fy_ucx *u)
{
    if (u->pack_dt_made)
        ucp_dt_destroy(u->pack_dt);
    u->pack_dt_made = false;
}

/* ---- the sender ---- */

/* A piece: one descriptor (at most am_write_max bytes, as the whole WRITE). */
typedef struct fy_ucx_piece {
    uint64_t laddr, raddr;
    uint32_t len;
} fy_ucx_piece;

/* x's non-empty descriptors into out (NULL: only counted); returns how many. */
static size_t fy_ucx_amw_pieces(const ferry_plugin_xfer *px, fy_ucx_piece *out)
{
    size_t n = 0;
    for (size_t i = 0; i < px->count; i++) {
        if (!px->local[i].len)
            continue;
        if (out)
            out[n] = (fy_ucx_piece){.laddr = px->local[i].addr,
                                    .raddr = px->remote[i].addr,
                                    .len = (uint32_t)px->local[i].len};
        n++;
    }
    return n;
}

/* Groups consecutive pieces into parts of at most FY_AMW_MAX_SEGS; fills
 * parts[k].pieces when parts is not NULL. Returns how many parts. */
static unsigned fy_ucx_amw_group(size_t n, fy_ucx_amw_part *parts)
{
    unsigned k = 0;
    for (size_t first = 0; first < n; first += FY_AMW_MAX_SEGS, k++)
        if (parts)
            parts[k].pieces = (uint32_t)(n - first < FY_AMW_MAX_SEGS ? n - first : FY_AMW_MAX_SEGS);
    return k;
}

/* A part's head (room for the fixed part, its segment table, written now,
 * the name and no notification) and its iov (the head, then its pieces). */
static bool fy_ucx_amw_part_init(fy_ucx_xfer *x, fy_ucx_amw_part *p, ucp_dt_iov_t *iov,
                                 const fy_ucx_piece *pc)
{
    p->x = x;
    p->iov = iov;
    p->head_cap = fy_amw_prefix_len(p->pieces, FY_AMW_MAX_FROM, 0);
    p->head = malloc(p->head_cap);
    if (!p->head)
        return false;
    for (uint32_t i = 0; i < p->pieces; i++) {
        fy_amw_prefix_seg(p->head, i, pc[i].raddr, pc[i].len);
        iov[1 + i] = (ucp_dt_iov_t){.buffer = (void *)(uintptr_t)pc[i].laddr, .length = pc[i].len};
    }
    fy_ucx_pack_init(&p->pack, iov, 1 + (size_t)p->pieces); /* the data; the head per post */
    return true;
}

static ferry_status fy_ucx_amw_build(fy_ucx_xfer *x, fy_ucx_amw *a, const fy_ucx_piece *pc,
                                     size_t n)
{
    a->num_parts = fy_ucx_amw_group(n, NULL);
    a->parts = calloc(a->num_parts, sizeof(*a->parts));
    a->iov = calloc(n + a->num_parts, sizeof(*a->iov));
    if (!a->parts || !a->iov)
        return FERRY_ERR_NO_MEMORY;
    (void)fy_ucx_amw_group(n, a->parts);
    size_t piece = 0, slot = 0;
    for (unsigned k = 0; k < a->num_parts; k++) {
        fy_ucx_amw_part *p = &a->parts[k];
        if (!fy_ucx_amw_part_init(x, p, a->iov + slot, pc + piece))
            return FERRY_ERR_NO_MEMORY;
        piece += p->pieces;
        slot += 1 + (size_t)p->pieces;
    }
    return FERRY_OK;
}

ferry_status fy_ucx_amw_prep(fy_ucx_xfer *x)
{
    size_t n = fy_ucx_amw_pieces(x->px, NULL);
    fy_ucx_piece *pc = malloc(n * sizeof(*pc));
    x->amw = calloc(1, sizeof(*x->amw));
    ferry_status rc = pc && x->amw ? FERRY_OK : FERRY_ERR_NO_MEMORY;
    if (rc == FERRY_OK) {
        (void)fy_ucx_amw_pieces(x->px, pc);
        rc = fy_ucx_amw_build(x, x->amw, pc, n);
    }
    free(pc);
    if (rc != FERRY_OK)
        fy_ucx_amw_free(x);
    return rc;
}

void fy_ucx_amw_free(fy_ucx_xfer *x)
{
    fy_ucx_amw *a = x->amw;
    if (!a)
        return;
    for (unsigned k = 0; a->parts && k < a->num_parts; k++)
        free(a->parts[k].head);
    free(a->parts);
    free(a->iov);
    free(a);
    x->amw = NULL;
}

static fy_ucx_amw_part **fy_ucx_amw_bucket(fy_ucx *u, uint64_t id)
{
    return &u->amw_waiting[id % FY_UCX_AMW_BUCKETS];
}

static void fy_ucx_amw_wait(fy_ucx *u, fy_ucx_amw_part *p)
{
    fy_ucx_amw_part **b = fy_ucx_amw_bucket(u, p->id);
    p->next_waiting = *b;
    p->waiting = true;
    *b = p;
}

/* Unlinks and returns the part waiting under id, or NULL. */
static fy_ucx_amw_part *fy_ucx_amw_take(fy_ucx *u, uint64_t id)
{
    for (fy_ucx_amw_part **link = fy_ucx_amw_bucket(u, id); *link; link = &(*link)->next_waiting) {
        fy_ucx_amw_part *p = *link;
        if (p->id == id) {
            *link = p->next_waiting;
            p->waiting = false;
            return p;
        }
    }
    return NULL;
}

/* x no longer waits for answers (released, or failed). */
void fy_ucx_amw_forget(fy_ucx_xfer *x)
{
    for (unsigned k = 0; x->amw && k < x->amw->num_parts; k++)
        if (x->amw->parts[k].waiting)
            (void)fy_ucx_amw_take(x->u, x->amw->parts[k].id);
}

static void fy_ucx_amw_sent(void *req, ucs_status_t st, void *arg)
{
    fy_ucx_amw_part *p = arg;
    fy_ucx_xfer *x = p->x;
    if (!fy_ucx_req_done(x, req, &p->req))
        return;
    if (st != UCS_OK) {
        fy_ucx_amw_forget(x);
        fy_ucx_fail(x, st, "write message");
    }
}

/* The fixed part and the name of this post, and the notification when
 * the WRITE is one message (else it follows the last answer). */
static bool fy_ucx_amw_head(fy_ucx_xfer *x, fy_ucx_amw_part *p)
{
    const char *me = x->u->host->agent_name;
    size_t notif_len = x->amw->num_parts == 1 ? x->notif_len : 0;
    size_t from_len = strlen(me), len = fy_amw_prefix_len(p->pieces, from_len, notif_len);
    if (len > p->head_cap) {
        uint8_t *h = realloc(p->head, len); /* keeps the segment table */
        if (!h)
            return false;
        p->head = h;
        p->head_cap = len;
    }
    fy_amw_prefix_begin(p->head, p->id, p->pieces, me, from_len, x->notif, notif_len);
    p->pack.len += len - p->iov[0].length;
    p->iov[0] = (ucp_dt_iov_t){.buffer = p->head, .length = len};
    return true;
}

/* Sends one part; false when that failed (x failed with it). */
static bool fy_ucx_amw_send(fy_ucx_xfer *x, fy_ucx_amw_part *p)
{
    p->id = ++x->u->amw_next_id;
    if (!fy_ucx_amw_head(x, p)) {
        fy_ucx_fail(x, UCS_ERR_NO_MEMORY, "write message");
        return false;
    }
    ucp_request_param_t prm = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS | UCP_OP_ATTR_FIELD_DATATYPE |
                        UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
        /* eager: the target copies out of the message in its handler;
         * reply: it answers on the endpoint the message came from */
        .flags = UCP_AM_SEND_FLAG_EAGER | UCP_AM_SEND_FLAG_REPLY,
        .datatype = x->u->pack_dt,
        .cb.send = fy_ucx_amw_sent,
        .user_data = p,
    };
    fy_ucx_amw_wait(x->u, p);
    x->amw->unanswered++;
    fy_ucx_amw_publish(); /* our use of the memory, before the target's copy */
    void *req = ucp_am_send_nbx(x->remote->ep[0], FY_UCX_AM_WRITE, NULL, 0, &p->pack, 1, &prm);
    if (UCS_PTR_IS_ERR(req)) {
        fy_ucx_amw_forget(x);
        fy_ucx_fail(x, UCS_PTR_STATUS(req), "write message");
        return false;
    }
    p->req = req; /* NULL: sent already */
    return true;
}

/* Sends every part; the answers complete the WRITE (fy_ucx_amw_ack_recv). */
void fy_ucx_amw_post(fy_ucx_xfer *x)
{
    x->state = FY_UX_ACKING;
    x->amw->unanswered = 0;
    for (unsigned k = 0; k < x->amw->num_parts; k++)
        if (!fy_ucx_amw_send(x, &x->amw->parts[k]))
            return;
}

/* Every part answered OK: done, or (several parts) the notification now. */
static void fy_ucx_amw_landed(fy_ucx_xfer *x)
{
    if (x->amw->num_parts == 1)
        x->state = FY_UX_DONE; /* its notification came with the data */
    else
        fy_ucx_data_done(x);
}

ucs_status_t fy_ucx_amw_ack_recv(void *arg, const void *header, size_t header_len, void *data,
                                 size_t len, const ucp_am_recv_param_t *param)
{
    fy_ucx *u = arg;
    uint64_t id;
    int32_t status;
    (void)header, (void)header_len;
    if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV ||
        !fy_amw_ack_parse(data, len, &id, &status)) {
        UCX_LOG(u, FERRY_LOG_WARN, "dropped a malformed answer to a small write (%zu bytes)", len);
        return UCS_OK;
    }
    fy_ucx_amw_observe(); /* the target's copies */
    fy_ucx_amw_part *p = fy_ucx_amw_take(u, id);
    if (!p) {
        UCX_LOG(u, FERRY_LOG_DEBUG, "dropped an answer to small write %llu: nobody waits for it",
                (unsigned long long)id);
        return UCS_OK;
    }
    fy_ucx_xfer *x = p->x;
    x->amw->unanswered--;
    if (x->state != FY_UX_ACKING)
        return UCS_OK; /* failed meanwhile: the first error stays */
    if (status == FERRY_ERR_NOT_FOUND)
        fy_ucx_fail_with(x, FERRY_ERR_NOT_FOUND, "write message",
                         "the target has no registered DRAM there");
    else if (status != FERRY_OK)
        fy_ucx_fail_with(x, FERRY_ERR_BACKEND, "write message",
                         "the target refused it as malformed");
    else if (x->amw->unanswered == 0)
        fy_ucx_amw_landed(x);
    return UCS_OK;
}

/* ---- the target ---- */

/* Checks every range of m, then copies the data and delivers the
 * notification: all or nothing. */
static ferry_status fy_ucx_amw_land(fy_ucx *u, const fy_amw_msg *m)
{
    fy_ucx_amw_observe(); /* the sender's use of the memory */
    for (uint32_t i = 0; i < m->count; i++) {
        uint64_t addr;
        uint32_t len;
        fy_amw_seg(m, i, &addr, &len);
        if (!fy_ucx_dram_holds(u, addr, len)) {
            UCX_LOG(u, FERRY_LOG_WARN,
                    "refused a small write from %.*s: %#llx+%u is not in DRAM registered here",
                    (int)m->from_len, m->from, (unsigned long long)addr, len);
            return FERRY_ERR_NOT_FOUND;
        }
    }
    const uint8_t *src = m->data;
    for (uint32_t i = 0; i < m->count; i++) {
        uint64_t addr;
        uint32_t len;
        fy_amw_seg(m, i, &addr, &len);
        memcpy((void *)(uintptr_t)addr, src, len);
        src += len;
    }
    fy_ucx_amw_publish(); /* before the answer */
    if (m->notif_len) {
        char from[FY_AMW_MAX_FROM + 1];
        memcpy(from, m->from, m->from_len);
        from[m->from_len] = '\0';
        u->host->notif_deliver(u->host->agent_ctx, from, m->notif, m->notif_len);
    }
    return FERRY_OK;
}

static void fy_ucx_amw_answered(void *req, ucs_status_t st, void *arg)
{
    (void)st;
    free(arg);
    ucp_request_free(req);
}

/* One answer to the sender: sent at once from the stack where UCX can
 * (a 16-byte message nearly always), from a heap copy otherwise. */
static void fy_ucx_amw_answer_now(fy_ucx *u, ucp_ep_h ep, uint64_t id, ferry_status st)
{
    uint8_t ack[FY_AMW_ACK_LEN];
    fy_amw_ack_encode(ack, id, st);
    ucp_request_param_t p = {.op_attr_mask =
                                 UCP_OP_ATTR_FIELD_FLAGS | UCP_OP_ATTR_FLAG_FORCE_IMM_CMPL,
                             .flags = UCP_AM_SEND_FLAG_EAGER};
    void *req = ucp_am_send_nbx(ep, FY_UCX_AM_ACK, NULL, 0, ack, sizeof(ack), &p);
    if (UCS_PTR_STATUS(req) != UCS_ERR_NO_RESOURCE) {
        if (UCS_PTR_IS_ERR(req))
            UCX_LOG(u, FERRY_LOG_WARN, "answering small write %llu: %s", (unsigned long long)id,
                    ucs_status_string(UCS_PTR_STATUS(req)));
        return;
    }
    uint8_t *copy = malloc(sizeof(ack));
    if (!copy) {
        UCX_LOG(u, FERRY_LOG_WARN, "answering small write %llu: out of memory",
                (unsigned long long)id);
        return;
    }
    memcpy(copy, ack, sizeof(ack));
    p = (ucp_request_param_t){.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS | UCP_OP_ATTR_FIELD_CALLBACK |
                                              UCP_OP_ATTR_FIELD_USER_DATA,
                              .flags = UCP_AM_SEND_FLAG_EAGER,
                              .cb.send = fy_ucx_amw_answered,
                              .user_data = copy};
    req = ucp_am_send_nbx(ep, FY_UCX_AM_ACK, NULL, 0, copy, sizeof(ack), &p);
    if (!UCS_PTR_IS_PTR(req))
        free(copy);
}

/* Queues an answer (sent at once when the queue cannot grow). */
static void fy_ucx_amw_answer_later(fy_ucx *u, ucp_ep_h ep, uint64_t id, ferry_status st)
{
    if (u->num_answers == u->answers_cap) {
        size_t cap = u->answers_cap ? 2 * u->answers_cap : 16;
        fy_ucx_answer *a = realloc(u->answers, cap * sizeof(*a));
        if (!a) {
            fy_ucx_amw_answer_now(u, ep, id, st);
            return;
        }
        u->answers = a;
        u->answers_cap = cap;
    }
    u->answers[u->num_answers++] = (fy_ucx_answer){.ep = ep, .id = id, .status = st};
}

void fy_ucx_amw_answer_all(fy_ucx *u)
{
    for (size_t i = 0; i < u->num_answers; i++)
        fy_ucx_amw_answer_now(u, u->answers[i].ep, u->answers[i].id, u->answers[i].status);
    u->num_answers = 0;
}

ucs_status_t fy_ucx_amw_recv(void *arg, const void *header, size_t header_len, void *data,
                             size_t len, const ucp_am_recv_param_t *param)
{
    fy_ucx *u = arg;
    fy_amw_msg m;
    uint64_t id;
    (void)header, (void)header_len;
    if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) {
        UCX_LOG(u, FERRY_LOG_WARN, "dropped a small write sent by rendezvous (%zu bytes)", len);
        return UCS_OK;
    }
    ferry_status st = FERRY_ERR_BAD_METADATA;
    if (fy_amw_parse(data, len, &m))
        st = fy_ucx_amw_land(u, &m);
    else
        UCX_LOG(u, FERRY_LOG_WARN, "dropped a malformed small write (%zu bytes)", len);
    if (param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP && fy_amw_peek_id(data, len, &id))
        fy_ucx_amw_answer_later(u, param->reply_ep, id, st);
    return UCS_OK;
}
