/* SPDX-License-Identifier: Apache-2.0 */
/* UCX backend: small WRITEs as active messages.
 *
 * Why: where UCX has no RMA lane to a peer (TCP: what peer error mode
 * leaves on one host, and what hosts without RDMA use), it emulates a put
 * with active messages, the put and the target's completion. A ferry
 * request also needs the endpoint's flush, which on TCP costs one more
 * request and its answer: four messages a WRITE where ucp_put_lat counts
 * two. Here a small WRITE is one active message with the descriptors, the
 * data and the notification; the target checks every range against the
 * DRAM registered in this backend, copies, delivers the notification and
 * answers with one acknowledgement, which completes the request. Two
 * messages, and the notification needs no message of its own.
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
 * Ids: each WRITE in flight waits in u->amw_waiting under a fresh id; an
 * acknowledgement completes the WRITE waiting under its id, and one for an
 * id nobody waits for (released meanwhile, or forged) is dropped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ucx_amw_wire.h"
#include "ucx_internal.h"

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
    for (char *line = text; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        char *lane = memmem(line, n, "lane[", 5);
        if (!lane)
            continue;
        lanes++;
        tcp += memmem(lane, n - (size_t)(lane - line), ":tcp/", 5) != NULL;
    }
    free(text);
    return lanes > 0 && tcp == lanes;
}

bool fy_ucx_amw_fits(const fy_ucx_xfer *x)
{
    const ferry_plugin_xfer *px = x->px;
    const fy_ucx *u = x->u;
    return x->remote->amw && px->op == FERRY_OP_WRITE && px->local_type == FERRY_MEM_DRAM &&
           px->remote_type == FERRY_MEM_DRAM && px->count <= FY_AMW_MAX_SEGS && u->amw_max &&
           px->total_bytes <= u->amw_max && strlen(u->host->agent_name) <= FY_AMW_MAX_FROM;
}

/* ---- the sender ---- */

/* The head of the message: room for the fixed part, the segment table
 * (written once, here) and the name and notification (written per post). */
ferry_status fy_ucx_amw_prep(fy_ucx_xfer *x)
{
    const ferry_plugin_xfer *px = x->px;
    size_t head = fy_amw_prefix_len((uint32_t)px->count, FY_AMW_MAX_FROM, 0);
    fy_ucx_amw *a = calloc(1, sizeof(*a));
    if (a) {
        a->iov = calloc(px->count + 1, sizeof(*a->iov));
        a->prefix = malloc(head);
        a->prefix_cap = head;
    }
    if (!a || !a->iov || !a->prefix) {
        if (a)
            free(a->iov), free(a->prefix);
        free(a);
        return FERRY_ERR_NO_MEMORY;
    }
    for (size_t i = 0; i < px->count; i++) {
        fy_amw_prefix_seg(a->prefix, (uint32_t)i, px->remote[i].addr, (uint32_t)px->remote[i].len);
        a->iov[i + 1] = (ucp_dt_iov_t){.buffer = (void *)(uintptr_t)px->local[i].addr,
                                       .length = px->local[i].len};
    }
    x->amw = a;
    return FERRY_OK;
}

void fy_ucx_amw_free(fy_ucx_xfer *x)
{
    if (!x->amw)
        return;
    free(x->amw->iov);
    free(x->amw->prefix);
    free(x->amw);
    x->amw = NULL;
}

static fy_ucx_xfer **fy_ucx_amw_bucket(fy_ucx *u, uint64_t id)
{
    return &u->amw_waiting[id % FY_UCX_AMW_BUCKETS];
}

static void fy_ucx_amw_wait(fy_ucx_xfer *x)
{
    fy_ucx_xfer **b = fy_ucx_amw_bucket(x->u, x->amw->id);
    x->amw->next_waiting = *b;
    x->amw->waiting = true;
    *b = x;
}

/* Unlinks and returns the WRITE waiting under id, or NULL. */
static fy_ucx_xfer *fy_ucx_amw_take(fy_ucx *u, uint64_t id)
{
    for (fy_ucx_xfer **link = fy_ucx_amw_bucket(u, id); *link; link = &(*link)->amw->next_waiting) {
        fy_ucx_xfer *x = *link;
        if (x->amw->id == id) {
            *link = x->amw->next_waiting;
            x->amw->waiting = false;
            return x;
        }
    }
    return NULL;
}

/* x no longer waits for an answer (released, or failed). */
void fy_ucx_amw_forget(fy_ucx_xfer *x)
{
    if (x->amw && x->amw->waiting)
        (void)fy_ucx_amw_take(x->u, x->amw->id);
}

static void fy_ucx_amw_sent(void *req, ucs_status_t st, void *arg)
{
    fy_ucx_xfer *x = arg;
    if (!fy_ucx_req_done(x, req, &x->amw->req))
        return;
    if (st != UCS_OK) {
        fy_ucx_amw_forget(x);
        fy_ucx_fail(x, st, "small write");
    }
}

/* The fixed part, the name and the notification of this post. */
static bool fy_ucx_amw_head(fy_ucx_xfer *x)
{
    fy_ucx_amw *a = x->amw;
    const char *me = x->u->host->agent_name;
    uint32_t count = (uint32_t)x->px->count;
    size_t from_len = strlen(me), len = fy_amw_prefix_len(count, from_len, x->notif_len);
    if (len > a->prefix_cap) {
        uint8_t *p = realloc(a->prefix, len); /* keeps the segment table */
        if (!p)
            return false;
        a->prefix = p;
        a->prefix_cap = len;
    }
    fy_amw_prefix_begin(a->prefix, a->id, count, me, from_len, x->notif, x->notif_len);
    a->iov[0] = (ucp_dt_iov_t){.buffer = a->prefix, .length = len};
    return true;
}

/* Sends the WRITE; the target's answer completes it (fy_ucx_amw_ack_recv). */
void fy_ucx_amw_post(fy_ucx_xfer *x)
{
    fy_ucx_amw *a = x->amw;
    a->id = ++x->u->amw_next_id;
    if (!fy_ucx_amw_head(x)) {
        fy_ucx_fail(x, UCS_ERR_NO_MEMORY, "small write");
        return;
    }
    x->state = FY_UX_ACKING;
    fy_ucx_amw_wait(x);
    ucp_request_param_t p = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS | UCP_OP_ATTR_FIELD_DATATYPE |
                        UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
        /* eager: the target copies out of the message in its handler;
         * reply: it answers on the endpoint the message came from */
        .flags = UCP_AM_SEND_FLAG_EAGER | UCP_AM_SEND_FLAG_REPLY,
        .datatype = ucp_dt_make_iov(),
        .cb.send = fy_ucx_amw_sent,
        .user_data = x,
    };
    void *req =
        ucp_am_send_nbx(x->remote->ep[0], FY_UCX_AM_WRITE, NULL, 0, a->iov, x->px->count + 1, &p);
    if (UCS_PTR_IS_ERR(req)) {
        fy_ucx_amw_forget(x);
        fy_ucx_fail(x, UCS_PTR_STATUS(req), "small write");
        return;
    }
    a->req = req; /* NULL: sent already */
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
    fy_ucx_xfer *x = fy_ucx_amw_take(u, id);
    if (!x) {
        UCX_LOG(u, FERRY_LOG_DEBUG, "dropped an answer to small write %llu: nobody waits for it",
                (unsigned long long)id);
        return UCS_OK;
    }
    if (x->state != FY_UX_ACKING)
        return UCS_OK; /* failed meanwhile: the first error stays */
    if (status == FERRY_OK)
        x->state = FY_UX_DONE;
    else if (status == FERRY_ERR_NOT_FOUND)
        fy_ucx_fail_with(x, FERRY_ERR_NOT_FOUND, "small write",
                         "the target has no registered DRAM there");
    else
        fy_ucx_fail_with(x, FERRY_ERR_BACKEND, "small write", "the target refused it as malformed");
    return UCS_OK;
}

/* ---- the target ---- */

/* Checks every range of m, then copies the data and delivers the
 * notification: all or nothing. */
static ferry_status fy_ucx_amw_land(fy_ucx *u, const fy_amw_msg *m)
{
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

void fy_ucx_amw_answers_fini(fy_ucx *u)
{
    fy_ucx_amw_answer_all(u);
    free(u->answers);
    u->answers = NULL;
    u->answers_cap = 0;
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
