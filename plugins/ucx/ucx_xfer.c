/* SPDX-License-Identifier: Apache-2.0 */
/* UCX backend: transfers.
 *
 * Unless both sides serve RMA (param rma=on), a transfer goes as active
 * messages that the target checks (ucx_amw.c). With RMA:
 * a request's segments are cut into chunks of consecutive segments, one per
 * worker (a single chunk unless num_workers > 1 and the batch has at least
 * 2 * split_min segments). Each chunk is one put or get per segment on its
 * worker's endpoint, then one flush of that endpoint. With issuing threads
 * (num_threads), chunk k > 0 is issued by thread k - 1 while the caller
 * issues chunk 0. The data is remotely complete when every put or get has
 * completed, each by its own callback, and every flush too: a flush alone
 * can report success for an endpoint whose peer died with gets still
 * unanswered. Both paths count those completions in ucx_order.c, which
 * sends the notification once the last one is in.
 *
 * Callbacks of puts, gets, flushes and notifications run inside
 * ucp_worker_progress, which only the serialised ops call (the issuing
 * threads never progress), so the counters (here and in
 * ucx_order.c) need no atomics. */
#include <stdio.h>
#include <stdlib.h>

#include "ucx_internal.h"

/* Fails x with err; its detail reads "<what> to <peer>: <why>". */
void fy_ucx_fail_with(fy_ucx_xfer *x, ferry_status err, const char *what, const char *why)
{
    if (x->state == FY_UX_FAILED)
        return; /* the first error is the one reported */
    x->error = err;
    snprintf(x->detail, sizeof(x->detail), "%s to %s: %s", what, x->remote->name, why);
    x->state = FY_UX_FAILED;
}

void fy_ucx_fail(fy_ucx_xfer *x, ucs_status_t st, const char *what)
{
    ferry_status err = x->remote->failed ? FERRY_ERR_REMOTE_DISCONNECT : fy_ucx_status(st);
    fy_ucx_fail_with(x, err >= 0 ? FERRY_ERR_BACKEND : err, what,
                     ucs_status_string(x->remote->failed ? x->remote->failed : st));
}

/* Chunks: how many workers share count segments. */
static unsigned fy_ucx_num_chunks(const fy_ucx *u, size_t count)
{
    size_t n = u->split_min ? count / u->split_min : count;
    if (n > u->num_workers)
        n = u->num_workers;
    return n > 1 ? (unsigned)n : 1u;
}

static void fy_ucx_chunks_init(fy_ucx_xfer *x)
{
    size_t count = x->px->count, n = x->num_chunks;
    for (size_t k = 0; k < n; k++)
        x->chunks[k] = (fy_ucx_chunk){.x = x,
                                      .worker = (unsigned)k,
                                      .first = count * k / n,
                                      .count = count * (k + 1) / n - count * k / n};
}

/* Every key a chunk's segments need, unpacked for its worker's endpoint. */
static ferry_status fy_ucx_chunk_keys(fy_ucx_xfer *x, const fy_ucx_chunk *c)
{
    const ferry_plugin_xfer *px = x->px;
    ferry_status rc = FERRY_OK;
    for (size_t i = c->first; rc == FERRY_OK && i < c->first + c->count; i++)
        rc = px->remote[i].region ? fy_ucx_rkey(x->remote, px->remote[i].region, c->worker)
                                  : FERRY_ERR_NOT_FOUND;
    return rc;
}

/* Prepares the puts or gets: every key each chunk needs, unpacked. */
static ferry_status fy_ucx_rma_prep(fy_ucx_xfer *x)
{
    ferry_status rc = FERRY_OK;
    for (unsigned k = 0; rc == FERRY_OK && k < x->num_chunks; k++)
        rc = fy_ucx_chunk_keys(x, &x->chunks[k]);
    x->epoch = x->remote->epoch;
    return rc;
}

ferry_status fy_ucx_xfer_prep(void *priv, const ferry_plugin_xfer *px, void **handle)
{
    fy_ucx *u = priv;
    fy_ucx_remote *r = px->remote_agent;
    bool am;
    if (!r)
        return FERRY_ERR_INVALID_PARAM;
    ferry_status rc = fy_ucx_eps(r);
    if (rc != FERRY_OK)
        return rc;
    fy_ucx_xfer *x = calloc(1, sizeof(*x));
    unsigned n = fy_ucx_num_chunks(u, px->count);
    fy_ucx_chunk *chunks = x ? calloc(n, sizeof(*chunks)) : NULL;
    if (!chunks) {
        free(x);
        return FERRY_ERR_NO_MEMORY;
    }
    *x = (fy_ucx_xfer){
        .u = u, .px = px, .remote = r, .state = FY_UX_IDLE, .num_chunks = n, .chunks = chunks};
    fy_ucx_chunks_init(x);
    rc = fy_ucx_amw_check(x, &am);
    if (rc == FERRY_OK)
        rc = am ? fy_ucx_amw_prep(x) : fy_ucx_rma_prep(x);
    if (rc != FERRY_OK) {
        fy_ucx_xfer_free(x);
        return rc;
    }
    *handle = x;
    return FERRY_OK;
}

void fy_ucx_xfer_free(fy_ucx_xfer *x)
{
    fy_ucx_amw_free(x);
    free(x->chunks);
    free(x);
}

/* Requests of x that UCX still holds. */
static unsigned fy_ucx_in_flight(const fy_ucx_xfer *x)
{
    unsigned n = x->ord.notif_req != NULL;
    for (unsigned k = 0; x->amw && k < x->amw->num_parts; k++) { /* sends, answers to come */
        const fy_ucx_amw_part *p = &x->amw->parts[k];
        n += (p->req != NULL) + p->waiting + (p->rreq != NULL);
    }
    for (unsigned k = 0; k < x->num_chunks; k++)
        n += (x->chunks[k].req != NULL) + (x->chunks[k].ops != 0);
    return n;
}

/* A request released while UCX still held it: unlink and free it now. */
static void fy_ucx_orphan_free(fy_ucx_xfer *x)
{
    fy_ucx_xfer **link = &x->u->orphans;
    while (*link != x)
        link = &(*link)->next_orphan;
    *link = x->next_orphan;
    fy_ucx_xfer_free(x);
}

/* Common end of request callbacks (slot: where x holds req, or NULL):
 * false when x was orphaned (then it is freed with its last request, and
 * nobody wants the outcome). */
bool fy_ucx_req_done(fy_ucx_xfer *x, void *req, void **slot)
{
    ucp_request_free(req);
    if (slot)
        *slot = NULL;
    if (!x->orphan)
        return true;
    if (!fy_ucx_in_flight(x))
        fy_ucx_orphan_free(x);
    return false;
}

static const char *fy_ucx_op_name(const fy_ucx_xfer *x)
{
    return x->px->op == FERRY_OP_WRITE ? "put" : "get";
}

static void fy_ucx_flush_done(void *req, ucs_status_t st, void *arg)
{
    fy_ucx_chunk *c = arg;
    if (fy_ucx_req_done(c->x, req, &c->req))
        fy_ucx_order_landed(c->x, st, "flush");
}

static void fy_ucx_op_done(void *req, ucs_status_t st, void *arg)
{
    fy_ucx_chunk *c = arg;
    c->ops--;
    if (fy_ucx_req_done(c->x, req, NULL))
        fy_ucx_order_landed(c->x, st, fy_ucx_op_name(c->x));
}

/* One put or get per segment of the chunk, each with its own completion,
 * then a flush of its endpoint. Runs on the caller or on an issuing
 * thread: touches only the chunk and its worker. */
static void fy_ucx_chunk_issue(void *arg)
{
    fy_ucx_chunk *c = arg;
    const ferry_plugin_xfer *px = c->x->px;
    ucp_ep_h ep = c->x->remote->ep[c->worker];
    ucp_request_param_t p = {.op_attr_mask =
                                 UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
                             .cb.send = fy_ucx_op_done,
                             .user_data = c};
    c->issued = UCS_OK;
    c->ops = 0;
    for (size_t i = c->first; i < c->first + c->count; i++) {
        const ferry_plugin_seg *l = &px->local[i], *r = &px->remote[i];
        ucp_rkey_h rkey = ((fy_ucx_rregion *)r->region)->rkeys[c->worker];
        void *buf = (void *)(uintptr_t)l->addr;
        void *req = px->op == FERRY_OP_WRITE ? ucp_put_nbx(ep, buf, l->len, r->addr, rkey, &p)
                                             : ucp_get_nbx(ep, buf, l->len, r->addr, rkey, &p);
        if (UCS_PTR_IS_ERR(req)) {
            c->issued = UCS_PTR_STATUS(req);
            break;
        }
        c->ops += req != NULL; /* NULL: complete already */
    }
    ucp_request_param_t fp = {.op_attr_mask =
                                  UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
                              .cb.send = fy_ucx_flush_done,
                              .user_data = c};
    /* Flushed even after a failed put: what was issued must complete
     * before the request may be released. */
    void *req = ucp_ep_flush_nbx(ep, &fp);
    if (UCS_PTR_IS_ERR(req) && c->issued == UCS_OK)
        c->issued = UCS_PTR_STATUS(req);
    c->req = UCS_PTR_IS_PTR(req) ? req : NULL;
}

static void fy_ucx_issue_all(fy_ucx_xfer *x)
{
    fy_ucx *u = x->u;
    unsigned n = x->num_chunks;
    if (u->pool && n > 1) {
        void *args[FY_UCX_MAX_WORKERS];
        for (unsigned k = 1; k < n; k++)
            args[k - 1] = &x->chunks[k];
        fy_ucx_pool_run(u->pool, fy_ucx_chunk_issue, &x->chunks[0], args, n - 1);
        return;
    }
    for (unsigned k = 0; k < n; k++)
        fy_ucx_chunk_issue(&x->chunks[k]);
}

/* One progress call on each worker that issued a chunk. UCX 1.22 copies
 * a put or get by CMA in its progress, not in ucp_put_nbx (UCX_CMA_TX_*):
 * without this a posted WRITE moved nothing until the caller's next poll,
 * and nothing at all where the caller did not poll again before it waited
 * for its peer (seen: a ping-pong whose last answer never landed). */
static void fy_ucx_rma_nudge(fy_ucx_xfer *x)
{
    for (unsigned k = 0; k < x->num_chunks; k++)
        ucp_worker_progress(x->u->workers[x->chunks[k].worker].h);
}

/* Issues every chunk and counts what is in flight. */
static void fy_ucx_rma_post(fy_ucx_xfer *x)
{
    fy_ucx_issue_all(x);
    for (unsigned k = 0; k < x->num_chunks; k++) {
        const fy_ucx_chunk *c = &x->chunks[k];
        fy_ucx_order_expect(x, (c->req != NULL) + c->ops);
        if (c->issued != UCS_OK)
            fy_ucx_fail(x, c->issued, fy_ucx_op_name(x));
    }
}

ferry_status fy_ucx_xfer_post(void *priv, void *handle, const void *notif, size_t len)
{
    fy_ucx_xfer *x = handle;
    (void)priv;
    ferry_status rc = fy_ucx_eps(x->remote);
    if (rc != FERRY_OK)
        return rc;
    if (!x->amw && x->epoch != x->remote->epoch) /* new endpoints since prep */
        rc = fy_ucx_rma_prep(x);
    if (rc != FERRY_OK)
        return rc;
    x->mark_ns = 0;
    x->detail[0] = '\0';
    fy_ucx_order_begin(x, notif, len, x->amw && fy_ucx_amw_one_message(x));
    if (x->amw)
        fy_ucx_amw_post(x);
    else
        fy_ucx_rma_post(x);
    rc = fy_ucx_order_end(x);
    if (rc == FERRY_IN_PROGRESS && !x->amw)
        fy_ucx_rma_nudge(x);
    return rc;
}

/* Error handling dual and none: whether x has not moved (no part
 * answered, no put, get or flush completed, no state change) for
 * FY_UCX_STALL_NS. Their data endpoints never report a dead or stuck peer,
 * and a peer killed while writing into this worker's shared-memory FIFO
 * can leave a slot of it half written, which stops everything behind it
 * (UCX 1.13 reads that FIFO in order): without this, such a request would
 * stay in progress forever. Peer mode needs none: UCX's keepalive fails
 * the endpoints of a peer that stops answering. */
static bool fy_ucx_stalled(fy_ucx_xfer *x)
{
    if (x->u->errmode == FY_UCX_PEER)
        return false;
    size_t left = x->ord.pending * 8u + (size_t)x->state;
    uint64_t now = fy_ucx_now_ns();
    if (!x->mark_ns || left != x->mark) {
        x->mark = left;
        x->mark_ns = now;
        return false;
    }
    return now - x->mark_ns > FY_UCX_STALL_NS;
}

ferry_status fy_ucx_xfer_check(void *priv, void *handle)
{
    fy_ucx_xfer *x = handle;
    (void)priv;
    if (x->state == FY_UX_DONE)
        return FERRY_OK;
    if (x->state == FY_UX_FAILED)
        return x->error;
    /* In flight when the peer died: its flush may still complete (shared
     * memory does not notice), but the outcome is unknown. */
    if (x->remote->failed != UCS_OK)
        return FERRY_ERR_REMOTE_DISCONNECT;
    if (!fy_ucx_stalled(x))
        return FERRY_IN_PROGRESS;
    fy_ucx_fail_with(x, FERRY_ERR_TIMEOUT, "request",
                     "no progress for 10 s (error handling dual/none: the peer is stuck or gone, "
                     "or this worker's shared memory is)");
    return x->error;
}

/* Waits for the requests in flight: gets write into our memory until they
 * complete, and release must not return before that; a WRITE sent as
 * active messages changes the peer's memory until its last answer, a READ
 * ours until its last answer has landed. A dead peer
 * fails the flushes through the error handler; the bound covers the rest. */
ferry_status fy_ucx_xfer_release(void *priv, void *handle)
{
    fy_ucx *u = priv;
    fy_ucx_xfer *x = handle;
    uint64_t deadline = fy_ucx_now_ns() + FY_UCX_CLOSE_NS;
    while (fy_ucx_in_flight(x) && x->remote->failed == UCS_OK && fy_ucx_now_ns() < deadline)
        fy_ucx_progress_all(u);
    fy_ucx_amw_forget(x); /* an answer that still comes is dropped */
    if (!fy_ucx_in_flight(x)) {
        fy_ucx_xfer_free(x);
        return FERRY_OK;
    }
    /* The peer is not completing them: give the endpoints up. A forced
     * close completes the requests on them (with an error), so their
     * callbacks run now and nothing writes our memory afterwards. */
    UCX_LOG(u, FERRY_LOG_WARN, "release: request to %s still running (%s): closing its endpoints",
            x->remote->name, x->remote->failed ? "peer failed" : "timed out");
    if (x->remote->failed == UCS_OK) {
        x->remote->failed = UCS_ERR_CANCELED;
        fy_ucx_eps_close(x->remote);
    }
    if (!fy_ucx_in_flight(x)) {
        fy_ucx_xfer_free(x);
        return FERRY_ERR_CANCELED;
    }
    /* UCX does not always complete a flush of an endpoint in error mode
     * "none" when it is forced closed. Its peer is gone, so nothing can
     * still arrive for it; x stays with UCX until the last callback (or
     * fini) frees it. */
    x->orphan = true;
    x->next_orphan = u->orphans;
    u->orphans = x;
    return FERRY_ERR_CANCELED;
}

const char *fy_ucx_xfer_error(void *priv, void *handle)
{
    (void)priv;
    return ((fy_ucx_xfer *)handle)->detail;
}
