/* SPDX-License-Identifier: Apache-2.0 */
/* LIBFABRIC transfers. prep checks every segment against its regions on
 * both sides; post issues fi_write/fi_read pieces, up to FY_LF_WINDOW in
 * flight per request, and progress issues the rest as completions come
 * back. With several rails shared with the peer, a segment of
 * striping_threshold bytes or more is cut into one stripe per rail (rail
 * i's endpoint to the peer's rail i, with that rail's keys), and shorter
 * segments go whole on the rails in turn; every piece is cut at the
 * provider's max_msg_size too. Once all of them completed, on every rail,
 * the notification is sent: for a WRITE the data is then at the target,
 * for a READ it has left it.
 *
 * A request fails when the peer's process is seen gone (REMOTE_DISCONNECT),
 * when the provider reports an error, or when no operation of it completed
 * for timeout_ms (TIMEOUT). Its operations may still be out then: release
 * waits for them (release_ms at most), then tears the peer's connection
 * down and keeps their contexts until the provider hands them back (the
 * orphans), so a late completion never touches a freed request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lf_internal.h"

/* ---- prep ---- */

static bool fy_lf_inside(uint64_t addr, uint64_t len, uint64_t base, uint64_t size)
{
    return addr >= base && len <= size && addr - base <= size - len;
}

/* Inside its regions on both sides, with a key for every rail used. */
static bool fy_lf_seg_ok(const ferry_plugin_seg *l, const ferry_plugin_seg *r, uint32_t rails)
{
    const fy_lf_region *g = l->region;
    const fy_lf_pub *p = r->region;
    return g && p && l->len == r->len && fy_lf_inside(l->addr, l->len, g->addr, g->len) &&
           fy_lf_inside(r->addr, r->len, p->addr, p->len) && p->nkeys >= rails &&
           g->nrails >= rails;
}

static ferry_status fy_lf_prep_check(fy_lf *be, const ferry_plugin_xfer *px)
{
    if (px->local_type != FERRY_MEM_DRAM || px->remote_type != FERRY_MEM_DRAM)
        return FERRY_ERR_NOT_SUPPORTED;
    if (!px->remote_agent || (px->count && (!px->local || !px->remote)))
        return FERRY_ERR_INVALID_PARAM;
    const fy_lf_remote *peer = px->remote_agent;
    for (size_t i = 0; i < px->count; i++) {
        if (!fy_lf_seg_ok(&px->local[i], &px->remote[i], peer->nrails)) {
            fy_lf_log(be, FERRY_LOG_ERROR, "prep: segment %zu lies outside its registered region",
                      i);
            return FERRY_ERR_INVALID_PARAM;
        }
    }
    return FERRY_OK;
}

static fy_lf_op *fy_lf_ops_new(fy_lf_req *q)
{
    fy_lf_op *ops = calloc(FY_LF_WINDOW, sizeof(*ops));
    for (uint32_t i = 0; ops && i < FY_LF_WINDOW; i++) {
        ops[i] = (fy_lf_op){.kind = FY_LF_OP_RMA, .req = q, .slot = i};
        q->free[i] = FY_LF_WINDOW - 1 - i;
    }
    q->nfree = FY_LF_WINDOW;
    return ops;
}

ferry_status fy_lf_xfer_prep(void *priv, const ferry_plugin_xfer *px, void **handle)
{
    fy_lf *be = priv;
    ferry_status rc = fy_lf_prep_check(be, px);
    if (rc != FERRY_OK)
        return rc;
    fy_lf_req *q = calloc(1, sizeof(*q));
    if (q)
        q->ops = fy_lf_ops_new(q);
    if (!q || !q->ops) {
        free(q);
        return FERRY_ERR_NO_MEMORY;
    }
    q->be = be;
    q->px = px;
    q->remote = px->remote_agent;
    q->state = FERRY_OK;
    *handle = q;
    return FERRY_OK;
}

/* ---- failing ---- */

static ferry_status fy_lf_map_err(int err)
{
    switch (err) {
    case FI_ECONNREFUSED:
    case FI_ECONNRESET:
    case FI_ECONNABORTED:
    case FI_ENOTCONN:
    case FI_EHOSTUNREACH:
    case FI_ESHUTDOWN:
        return FERRY_ERR_REMOTE_DISCONNECT;
    case FI_EACCES:
    case FI_EKEYREJECTED:
    case FI_EPERM:
        return FERRY_ERR_NOT_ALLOWED;
    case FI_ETIMEDOUT:
        return FERRY_ERR_TIMEOUT;
    case FI_ECANCELED:
        return FERRY_ERR_CANCELED;
    default:
        return FERRY_ERR_BACKEND;
    }
}

/* A provider's error, in the light of what is known of the peer. A lost
 * connection (refused, reset, or operations canceled under us other than
 * by our own teardown in release) marks the peer dead: its process is
 * gone or going (a socket is cut before the process is reaped), or it
 * will come back as a new instance; a reload of the same instance's
 * metadata revives it (remote_refresh). */
static ferry_status fy_lf_judge(fy_lf_remote *r, int err)
{
    ferry_status rc = fy_lf_map_err(err);
    bool ours = rc == FERRY_ERR_CANCELED && fy_lf_now_ns() - r->reset_ns < FY_LF_RESET_NS;
    if (rc == FERRY_ERR_CANCELED && !ours)
        rc = FERRY_ERR_REMOTE_DISCONNECT;
    if (rc == FERRY_ERR_REMOTE_DISCONNECT)
        r->dead = true;
    r->next_check_ns = 0;
    return !ours && !fy_lf_remote_alive(r) ? FERRY_ERR_REMOTE_DISCONNECT : rc;
}

/* The first error ends the request; later ones add nothing. */
static void fy_lf_fail(fy_lf_req *q, ferry_status rc, const char *why)
{
    if (q->state != FERRY_IN_PROGRESS)
        return;
    q->state = rc;
    snprintf(q->err, sizeof(q->err), "%s %s: %s",
             q->px->op == FERRY_OP_WRITE ? "WRITE to" : "READ from", q->remote->name, why);
    fy_lf_log(q->be, FERRY_LOG_ERROR, "%s", q->err);
}

/* ---- issuing ---- */

static uint64_t fy_lf_raddr(const fy_lf_rail *rail, const ferry_plugin_seg *r, uint64_t off)
{
    const fy_lf_pub *p = r->region;
    return (rail->virt_addr ? r->addr : r->addr - p->addr) + off;
}

/* Where the current segment goes: one stripe per rail shared with the
 * peer when it is striping_threshold long or longer (each rail moves a
 * share at once), else whole on the next rail in turn (many short
 * segments spread over the rails). */
static void fy_lf_seg_start(fy_lf_req *q)
{
    uint64_t len = q->px->local[q->seg].len;
    uint32_t n = q->remote->nrails;
    bool striped = n > 1 && len >= q->be->stripe_min;
    q->stripe = striped ? (len + n - 1) / n : len;
    q->rail0 = striped || n == 1 ? 0 : q->be->next_rail++ % n;
}

/* The rail of the piece at q->off, and the bytes left in its stripe. */
static uint32_t fy_lf_piece_rail(const fy_lf_req *q, uint64_t *left)
{
    uint64_t k = q->off / q->stripe, end = (k + 1) * q->stripe;
    uint64_t seg_len = q->px->local[q->seg].len;
    *left = (end < seg_len ? end : seg_len) - q->off;
    return (q->rail0 + (uint32_t)k) % q->remote->nrails;
}

/* One piece of the current segment; -FI_EAGAIN when the queue is full. */
static ssize_t fy_lf_issue_one(fy_lf_req *q, fy_lf_op *op)
{
    const ferry_plugin_seg *l = &q->px->local[q->seg], *r = &q->px->remote[q->seg];
    const fy_lf_pub *p = r->region;
    const fy_lf_region *g = l->region;
    uint64_t left;
    op->rail = fy_lf_piece_rail(q, &left);
    fy_lf_rail *rail = &q->be->rails[op->rail];
    uint64_t max = rail->info->ep_attr->max_msg_size;
    op->len = left < max ? left : max;
    struct iovec iov = {(uint8_t *)(uintptr_t)l->addr + q->off, op->len};
    struct fi_rma_iov rma = {fy_lf_raddr(rail, r, q->off), op->len, p->key[op->rail]};
    void *desc = g->rail[op->rail].desc;
    struct fi_msg_rma msg = {.msg_iov = &iov,
                             .desc = &desc,
                             .iov_count = 1,
                             .addr = q->remote->rails[op->rail].fi_addr,
                             .rma_iov = &rma,
                             .rma_iov_count = 1,
                             .context = &op->fctx};
    /* A WRITE completes once its data is at the target, not when it left
     * here: release may then return, and the notification may follow. */
    if (q->px->op == FERRY_OP_WRITE)
        return fi_writemsg(rail->ep, &msg,
                           FI_COMPLETION | FI_DELIVERY_COMPLETE | rail->write_flags);
    return fi_readmsg(rail->ep, &msg, FI_COMPLETION);
}

/* Issues pieces while the window and the provider's queue have room;
 * returns how many. */
static size_t fy_lf_issue(fy_lf_req *q)
{
    size_t n = 0;
    while (q->state == FERRY_IN_PROGRESS && q->seg < q->px->count && q->nfree) {
        if (q->off == q->px->local[q->seg].len) { /* zero-length or finished segment */
            q->seg++, q->off = 0;
            continue;
        }
        if (q->off == 0)
            fy_lf_seg_start(q);
        fy_lf_op *op = &q->ops[q->free[q->nfree - 1]];
        ssize_t rc = fy_lf_issue_one(q, op);
        if (rc == -FI_EAGAIN)
            break;
        if (rc) {
            fy_lf_fail(q, fy_lf_judge(q->remote, (int)-rc), fi_strerror((int)-rc));
            break;
        }
        q->nfree--, q->inflight++, n++;
        op->busy = true;
        q->off += op->len;
    }
    return n;
}

/* ---- completion ---- */

static void fy_lf_orphan_done(fy_lf *be, fy_lf_op *op)
{
    op->busy = false;
    fy_lf_op *base = op - op->slot;
    for (uint32_t i = 0; i < FY_LF_WINDOW; i++)
        if (base[i].busy)
            return;
    for (size_t i = 0; i < be->norphans; i++) {
        if (be->orphans[i] == base) {
            be->orphans[i] = be->orphans[--be->norphans];
            break;
        }
    }
    free(base);
}

void fy_lf_rma_done(fy_lf *be, fy_lf_op *op, int err, const char *why)
{
    fy_lf_req *q = op->req;
    if (!q) {
        fy_lf_orphan_done(be, op);
        return;
    }
    op->busy = false;
    q->free[q->nfree++] = op->slot;
    q->inflight--;
    q->last_ns = fy_lf_now_ns();
    if (err)
        fy_lf_fail(q, fy_lf_judge(q->remote, err), why);
    else
        be->rails[op->rail].rma_bytes += op->len;
}

void fy_lf_req_notified(fy_lf_req *q, int err)
{
    q->notif_out = false;
    if (err)
        fy_lf_fail(q, fy_lf_judge(q->remote, err), fi_strerror(err));
    else if (q->state == FERRY_IN_PROGRESS)
        q->state = FERRY_OK;
}

/* Everything issued and completed: the notification, or done. */
static void fy_lf_finish(fy_lf_req *q)
{
    if (!q->notif_due) {
        q->state = q->notif_out ? q->state : FERRY_OK;
        return;
    }
    ferry_status rc = fy_lf_notif_post(q->be, q->remote, q->notif, q->notif_len, q);
    if (rc == FERRY_OK) {
        q->notif_due = false;
        q->notif_out = true;
    } else if (rc != FERRY_ERR_NO_RESOURCES) {
        fy_lf_fail(q, rc, "the notification could not be sent");
    }
}

/* A request that stalls, or whose peer died. */
static void fy_lf_watch(fy_lf_req *q)
{
    if (!fy_lf_remote_alive(q->remote)) {
        fy_lf_fail(q, FERRY_ERR_REMOTE_DISCONNECT, "the peer's process is gone");
        return;
    }
    /* Operations out with none completing, or none accepted (the provider
     * answers EAGAIN while it cannot reach the peer): both are a stall. */
    if (fy_lf_now_ns() - q->last_ns > q->be->timeout_ms * 1000000u)
        fy_lf_fail(q, FERRY_ERR_TIMEOUT, "no progress within timeout_ms");
}

/* Moves q on; true when it is no longer active. */
static bool fy_lf_advance(fy_lf_req *q)
{
    if (q->state == FERRY_IN_PROGRESS && fy_lf_issue(q))
        q->last_ns = fy_lf_now_ns();
    if (q->state == FERRY_IN_PROGRESS && q->seg == q->px->count && !q->inflight)
        fy_lf_finish(q);
    if (q->state == FERRY_IN_PROGRESS)
        fy_lf_watch(q);
    return q->state != FERRY_IN_PROGRESS;
}

static bool fy_lf_visit(fyp_link *l)
{
    fy_lf_req *q = FYP_CONTAINER(l, fy_lf_req, link);
    ferry_status before = q->state;
    bool done = fy_lf_advance(q);
    if (done)
        fyp_list_remove(&q->be->active, &q->link);
    return done || q->state != before;
}

size_t fy_lf_xfer_sweep(fy_lf *be)
{
    return fyp_list_sweep(be->active, fy_lf_visit);
}

/* ---- post, check, release ---- */

ferry_status fy_lf_xfer_check(void *priv, void *handle)
{
    (void)priv;
    return ((fy_lf_req *)handle)->state;
}

const char *fy_lf_xfer_error(void *priv, void *handle)
{
    (void)priv;
    fy_lf_req *q = handle;
    return q && q->err[0] ? q->err : NULL;
}

/* Waits (bounded) for the request's operations and notification. */
static void fy_lf_drain_req(fy_lf *be, fy_lf_req *q)
{
    uint64_t until = fy_lf_now_ns() + be->release_ms * 1000000u;
    while ((q->inflight || q->notif_out) && fy_lf_remote_alive(q->remote) && fy_lf_now_ns() < until)
        fy_lf_cq_drain(be);
}

/* Hands the request's operations still out to the backend. */
static void fy_lf_orphan(fy_lf *be, fy_lf_req *q)
{
    for (size_t i = 0; i < be->tx.count; i++)
        if (be->tx.ops[i].req == q)
            be->tx.ops[i].req = NULL;
    if (!q->inflight)
        return;
    if (be->norphans == be->orphans_cap) {
        size_t cap = be->orphans_cap ? 2 * be->orphans_cap : 8;
        fy_lf_op **grown = realloc(be->orphans, cap * sizeof(*grown));
        if (grown)
            be->orphans = grown, be->orphans_cap = cap;
    }
    for (uint32_t i = 0; i < FY_LF_WINDOW; i++)
        q->ops[i].req = NULL;
    /* Without room in the list the contexts are leaked, never freed
     * under the provider. */
    if (be->norphans < be->orphans_cap)
        be->orphans[be->norphans++] = q->ops;
    q->ops = NULL;
}

/* Ends whatever of q is still out: waits (bounded), then cuts the peer's
 * connection and hands the contexts to the backend. CANCELED when it had
 * to cut. q->ops is NULL afterwards if they were handed over. */
static ferry_status fy_lf_abandon(fy_lf *be, fy_lf_req *q)
{
    ferry_status rc = FERRY_OK;
    if (!q->inflight && !q->notif_out)
        return rc;
    fy_lf_drain_req(be, q);
    if (q->inflight) {
        /* Cut the connection: nothing of this request may land later. */
        fy_lf_remote_reset(q->remote);
        fy_lf_cq_drain(be);
        rc = FERRY_ERR_CANCELED;
    }
    fy_lf_orphan(be, q);
    return rc;
}

ferry_status fy_lf_xfer_post(void *priv, void *handle, const void *notif, size_t notif_len)
{
    fy_lf *be = priv;
    fy_lf_req *q = handle;
    if (!fy_lf_remote_alive(q->remote)) {
        fy_lf_log(be, FERRY_LOG_ERROR, "%s's process is gone", q->remote->name);
        snprintf(q->err, sizeof(q->err), "%s's process is gone", q->remote->name);
        return FERRY_ERR_REMOTE_DISCONNECT;
    }
    /* A post after a failure whose operations are still out (timeout_ms):
     * those end first, with fresh contexts for this post. */
    fy_lf_abandon(be, q);
    if (!q->ops && !(q->ops = fy_lf_ops_new(q)))
        return FERRY_ERR_NO_MEMORY;
    q->inflight = 0;
    q->seg = 0, q->off = 0;
    q->notif = notif, q->notif_len = notif_len;
    q->notif_due = notif != NULL;
    q->state = FERRY_IN_PROGRESS;
    q->last_ns = fy_lf_now_ns();
    fy_lf_advance(q);
    if (q->state != FERRY_IN_PROGRESS && !q->inflight && q->state != FERRY_OK)
        return q->state; /* nothing out: nothing started */
    if (q->state == FERRY_IN_PROGRESS)
        fyp_list_push(&be->active, &q->link);
    return q->state == FERRY_OK ? FERRY_OK : FERRY_IN_PROGRESS;
}

ferry_status fy_lf_xfer_release(void *priv, void *handle)
{
    fy_lf *be = priv;
    fy_lf_req *q = handle;
    fyp_list_remove(&be->active, &q->link);
    ferry_status rc = fy_lf_abandon(be, q);
    free(q->ops);
    free(q);
    return rc;
}

void fy_lf_orphans_free(fy_lf *be)
{
    for (size_t i = 0; i < be->norphans; i++)
        free(be->orphans[i]);
    free(be->orphans);
    be->orphans = NULL;
    be->norphans = be->orphans_cap = 0;
}
