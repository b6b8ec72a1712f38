/* SPDX-License-Identifier: Apache-2.0 */
/* UCX backend: transfers as active messages, the target's side.
 *
 * A peer's message may be hostile: it is parsed whole (ucx_amw_wire.c),
 * and every range checked against the DRAM registered in this backend,
 * before anything is copied or read; a bad one is answered with an error
 * (NOT_FOUND: a range outside registered DRAM; BAD_METADATA: malformed),
 * logged, and nothing of it is used. A WRITE's data is copied and its
 * notification delivered (once, after the data: ucx_order.c) in the
 * handler, then answered; a READ's answer carries the requested bytes,
 * read from our memory as UCX sends.
 *
 * Answers leave from the handler, on the endpoint UCX hands it: that
 * endpoint is valid only while the handler runs (UCX may destroy it
 * before the same progress call returns, when the peer went away right
 * after its message: an answer kept for later then crashed in
 * ucp_am_send_nbx). On TCP this puts the answer's system call between the
 * data landing and the target's application seeing it.
 *
 * An answer to a READ stays listed (u->rdata) until UCX has sent it:
 * deregistration waits for those in flight, so no answer reads memory
 * after its registration is gone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ucx_amw_wire.h"
#include "ucx_internal.h"

/* ---- checks ---- */

/* Whether every range of m lies in DRAM registered here; logs the first
 * that does not. */
static bool fy_ucx_amt_reachable(fy_ucx *u, const fy_amw_msg *m)
{
    for (uint32_t i = 0; i < m->count; i++) {
        uint64_t addr;
        uint32_t len;
        fy_amw_seg(m, i, &addr, &len);
        if (!fy_ucx_dram_holds(u, addr, len)) {
            UCX_LOG(u, FERRY_LOG_WARN,
                    "refused a %s from %.*s: %#llx+%u is not in DRAM registered here",
                    m->read ? "read" : "write", (int)m->from_len, m->from, (unsigned long long)addr,
                    len);
            return false;
        }
    }
    return true;
}

_Static_assert(FY_AMW_MAX_FROM <= FY_UCX_NAME_MAX, "a sender's name fits a notification");

/* Copies a checked WRITE's data; ucx_order.c then delivers the
 * notification that rode with it, before the answer leaves. */
static void fy_ucx_amt_land(fy_ucx *u, const fy_amw_msg *m)
{
    const uint8_t *src = m->data;
    for (uint32_t i = 0; i < m->count; i++) {
        uint64_t addr;
        uint32_t len;
        fy_amw_seg(m, i, &addr, &len);
        memcpy((void *)(uintptr_t)addr, src, len);
        src += len;
    }
    fy_ucx_order_deliver_riding(u, m->from, m->from_len, m->notif, m->notif_len);
}

/* ---- answers to READs ---- */

static void fy_ucx_rdata_unlist(fy_ucx_rdata *rd)
{
    *rd->link = rd->next;
    if (rd->next)
        rd->next->link = rd->link;
}

/* The answer to READ request m (status st): its header, and when st is OK
 * the checked ranges it sends. NULL when out of memory. */
static fy_ucx_rdata *fy_ucx_rdata_new(fy_ucx *u, const fy_amw_msg *m, ferry_status st)
{
    uint32_t count = st == FERRY_OK ? m->count : 0;
    fy_ucx_rdata *rd = calloc(1, sizeof(*rd) + count * sizeof(rd->iov[0]));
    if (!rd)
        return NULL;
    fy_amw_rdata_encode(rd->head, m->id, st);
    for (uint32_t i = 0; i < count; i++) {
        uint64_t addr;
        uint32_t len;
        fy_amw_seg(m, i, &addr, &len);
        rd->iov[i] = (ucp_dt_iov_t){.buffer = (void *)(uintptr_t)addr, .length = len};
    }
    fy_ucx_pack_init(&rd->pack, rd->iov, count);
    rd->next = u->rdata;
    rd->link = &u->rdata;
    if (rd->next)
        rd->next->link = &rd->next;
    u->rdata = rd;
    return rd;
}

static void fy_ucx_rdata_free(fy_ucx_rdata *rd)
{
    fy_ucx_rdata_unlist(rd);
    free(rd);
}

static void fy_ucx_rdata_sent(void *req, ucs_status_t st, void *arg)
{
    (void)st;
    ucp_request_free(req);
    fy_ucx_rdata_free(arg);
}

static void fy_ucx_rdata_send(fy_ucx *u, ucp_ep_h ep, fy_ucx_rdata *rd)
{
    ucp_request_param_t p = {
        .op_attr_mask =
            UCP_OP_ATTR_FIELD_FLAGS | UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
        .flags = UCP_AM_SEND_FLAG_REPLY, /* the reader checks where it came from */
        .cb.send = fy_ucx_rdata_sent,
        .user_data = rd,
    };
    size_t count;
    void *buf = fy_ucx_pack_param(u, &rd->pack, &p, &count);
    void *req = ucp_am_send_nbx(ep, FY_UCX_AM_RDATA, rd->head, sizeof(rd->head), buf, count, &p);
    if (UCS_PTR_IS_PTR(req))
        return; /* fy_ucx_rdata_sent frees rd */
    if (UCS_PTR_IS_ERR(req))
        UCX_LOG(u, FERRY_LOG_WARN, "answering a read: %s", ucs_status_string(UCS_PTR_STATUS(req)));
    fy_ucx_rdata_free(rd);
}

/* ---- acknowledgements of WRITEs ---- */

static void fy_ucx_ack_sent(void *req, ucs_status_t st, void *arg)
{
    (void)st;
    free(arg);
    ucp_request_free(req);
}

/* One acknowledgement: sent at once from the stack where UCX can (a
 * 16-byte message nearly always), from a heap copy otherwise. */
static void fy_ucx_ack_send(fy_ucx *u, ucp_ep_h ep, uint64_t id, ferry_status st)
{
    uint8_t ack[FY_AMW_ACK_LEN];
    fy_amw_ack_encode(ack, id, st);
    ucp_request_param_t p = {.op_attr_mask =
                                 UCP_OP_ATTR_FIELD_FLAGS | UCP_OP_ATTR_FLAG_FORCE_IMM_CMPL,
                             .flags = UCP_AM_SEND_FLAG_EAGER | UCP_AM_SEND_FLAG_REPLY};
    void *req = ucp_am_send_nbx(ep, FY_UCX_AM_ACK, NULL, 0, ack, sizeof(ack), &p);
    if (UCS_PTR_STATUS(req) != UCS_ERR_NO_RESOURCE) {
        if (UCS_PTR_IS_ERR(req))
            UCX_LOG(u, FERRY_LOG_WARN, "answering write %#llx: %s", (unsigned long long)id,
                    ucs_status_string(UCS_PTR_STATUS(req)));
        return;
    }
    uint8_t *copy = malloc(sizeof(ack));
    if (!copy) {
        UCX_LOG(u, FERRY_LOG_WARN, "answering write %#llx: out of memory", (unsigned long long)id);
        return;
    }
    memcpy(copy, ack, sizeof(ack));
    p = (ucp_request_param_t){.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS | UCP_OP_ATTR_FIELD_CALLBACK |
                                              UCP_OP_ATTR_FIELD_USER_DATA,
                              .flags = UCP_AM_SEND_FLAG_EAGER | UCP_AM_SEND_FLAG_REPLY,
                              .cb.send = fy_ucx_ack_sent,
                              .user_data = copy};
    req = ucp_am_send_nbx(ep, FY_UCX_AM_ACK, NULL, 0, copy, sizeof(ack), &p);
    if (!UCS_PTR_IS_PTR(req))
        free(copy);
}

/* ---- the handler ---- */

/* What a well-formed message gets: a WRITE is landed when every range
 * checks; a READ is answered with data when they do. */
static ferry_status fy_ucx_amt_serve(fy_ucx *u, const fy_amw_msg *m)
{
    fy_ucx_order_observe(); /* the sender's use of the memory */
    ferry_status st = fy_ucx_amt_reachable(u, m) ? FERRY_OK : FERRY_ERR_NOT_FOUND;
    if (st == FERRY_OK && !m->read)
        fy_ucx_amt_land(u, m);
    return st;
}

ucs_status_t fy_ucx_amt_recv(void *arg, const void *header, size_t header_len, void *data,
                             size_t len, const ucp_am_recv_param_t *param)
{
    fy_ucx *u = ((fy_ucx_worker *)arg)->u;
    fy_amw_msg m = {0};
    ferry_status st = FERRY_ERR_BAD_METADATA;
    (void)header, (void)header_len;
    if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) {
        UCX_LOG(u, FERRY_LOG_WARN, "dropped a message sent by rendezvous (%zu bytes)", len);
        return UCS_OK; /* UCX drops its data when the handler does not take it */
    }
    /* An answer needs the way back and an id (even of a malformed message). */
    bool answer = param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP &&
                  fy_amw_peek_id(data, len, &m.id, &m.read);
    if (fy_amw_parse(data, len, &m))
        st = fy_ucx_amt_serve(u, &m);
    else
        UCX_LOG(u, FERRY_LOG_WARN, "dropped a malformed message (%zu bytes)", len);
    if (answer && !m.read)
        fy_ucx_ack_send(u, param->reply_ep, m.id, st);
    fy_ucx_rdata *rd = answer && m.read ? fy_ucx_rdata_new(u, &m, st) : NULL;
    if (rd)
        fy_ucx_rdata_send(u, param->reply_ep, rd);
    else if (answer && m.read)
        UCX_LOG(u, FERRY_LOG_WARN, "answering a read: out of memory");
    return UCS_OK;
}

/* ---- teardown ---- */

/* Waits (bounded) until UCX has sent every answer to a READ: called before
 * registered memory goes away. */
void fy_ucx_amt_drain(fy_ucx *u)
{
    uint64_t deadline = fy_ucx_now_ns() + FY_UCX_CLOSE_NS;
    while (u->rdata && fy_ucx_now_ns() < deadline)
        fy_ucx_progress_all(u);
    if (u->rdata)
        UCX_LOG(u, FERRY_LOG_WARN, "answers to reads still unsent after %llu ms",
                (unsigned long long)(FY_UCX_CLOSE_NS / 1000000));
}

/* After the workers are gone: what they never completed. */
void fy_ucx_amt_fini(fy_ucx *u)
{
    while (u->rdata)
        fy_ucx_rdata_free(u->rdata);
}
