/* SPDX-License-Identifier: Apache-2.0 */
/* UCX backend: the order of a request's messages, in one place.
 *
 * The rule (DESIGN.md, notifications): a notification reaches the target
 * after the data of its request is visible there. UCX orders nothing
 * across endpoints, nor puts against active messages on one endpoint,
 * so the only proof that data is visible is a completion: a put, a get
 * or a flush completed by UCX, or the target's answer to an active
 * message (it answers once the message's ranges are copied or read).
 *
 * Every path counts its data operations here and leaves the notification
 * to this file:
 *
 *   begin    the request is posted: its notification is kept, and the
 *            post itself counts as one operation, so nothing completes
 *            while the path is still issuing;
 *   sending  one more active message (a WRITE or READ part) awaits its
 *            answer;
 *   expect   n more puts, gets or flushes are in flight;
 *   landed   one of them completed (an answer arrived, UCX called back);
 *   end      the path issued everything: the post's own count goes.
 *
 * When the count reaches zero the data is remotely complete, and only
 * then does the notification leave, as an active message of its own on
 * worker 0's endpoint; its completion makes the request DONE. One case
 * needs no message of its own: a WRITE whose data is a single active
 * message carries its notification inside it (the notification "rides"),
 * and the target delivers it after copying the data and before answering
 * (fy_ucx_order_deliver_riding). A notification sent alone
 * (ferry_notif_send) belongs to no request and waits for nothing
 * (notifications are not ordered across transfers).
 *
 * Answers to active messages are counted, not matched to an order: the
 * parts of a request go over several workers at once and may be answered
 * in any order; the last one completes the data.
 *
 * Besides, happens-before marks for ThreadSanitizer (publish/observe): see
 * fy_ucx_order_publish. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ucx_internal.h"

/* ---- happens-before across messages ---- */

/* Between two agents of one process a message and its answer travel
 * through a socket, which orders one side's use of the memory before the
 * other's copy, but which TSan cannot see through: without these marks it
 * reports those uses as races. Each side publishes before it sends and
 * observes after it receives: one atomic add and one load per message. */
static _Atomic uint64_t fy_ucx_hb;

void fy_ucx_order_publish(void)
{
    atomic_fetch_add_explicit(&fy_ucx_hb, 1, memory_order_release);
}

void fy_ucx_order_observe(void)
{
    (void)atomic_load_explicit(&fy_ucx_hb, memory_order_acquire);
}

/* ---- sending a notification ---- */

/* Sends msg to r as an active message on worker 0's endpoint, packed by
 * UCX (u->pack_dt: never zero-copy, see ucx_pack.c); cb (may be NULL)
 * when done. msg must stay valid until then. */
static void *fy_ucx_notif_post(fy_ucx_remote *r, fy_ucx_pack *msg, ucp_send_nbx_callback_t cb,
                               void *arg)
{
    const char *me = r->u->host->agent_name;
    ucp_request_param_t p = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS | UCP_OP_ATTR_FIELD_DATATYPE |
                        (cb ? UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA : 0),
        .flags = UCP_AM_SEND_FLAG_EAGER, /* notifications are small: no rendezvous */
        .datatype = r->u->pack_dt,
        .cb.send = cb,
        .user_data = arg,
    };
    return ucp_am_send_nbx(r->ep[0], FY_UCX_AM_NOTIF, me, strlen(me), msg, 1, &p);
}

static void fy_ucx_order_notif_sent(void *req, ucs_status_t st, void *arg)
{
    fy_ucx_xfer *x = arg;
    if (!fy_ucx_req_done(x, req, &x->ord.notif_req))
        return;
    if (st != UCS_OK)
        fy_ucx_fail(x, st, "notification");
    else if (x->state == FY_UX_NOTIFYING)
        x->state = FY_UX_DONE;
}

/* The data is remotely complete: the notification may leave now, unless
 * there is none or it rode with the data. */
static void fy_ucx_order_data_complete(fy_ucx_xfer *x)
{
    fy_ucx_order *o = &x->ord;
    if (x->state != FY_UX_DATA)
        return; /* failed: no notification for data that may not be there */
    if (!o->notif || o->rides) {
        x->state = FY_UX_DONE;
        return;
    }
    if (fy_ucx_local_notify(x->remote, o->notif, o->notif_len)) {
        x->state = FY_UX_DONE;
        return;
    }
    x->state = FY_UX_NOTIFYING;
    o->iov = (ucp_dt_iov_t){.buffer = (void *)(uintptr_t)o->notif, .length = o->notif_len};
    fy_ucx_pack_init(&o->pack, &o->iov, 1);
    void *req = fy_ucx_notif_post(x->remote, &o->pack, fy_ucx_order_notif_sent, x);
    if (UCS_PTR_IS_ERR(req))
        fy_ucx_fail(x, UCS_PTR_STATUS(req), "notification");
    else if (req)
        o->notif_req = req;
    else
        x->state = FY_UX_DONE;
}

/* ---- a request's data operations ---- */

void fy_ucx_order_begin(fy_ucx_xfer *x, const void *notif, size_t len, bool one_message)
{
    x->ord.notif = notif;
    x->ord.notif_len = len;
    x->ord.rides = notif && one_message;
    x->ord.pending = 1; /* the post itself, until fy_ucx_order_end */
    x->state = FY_UX_DATA;
}

const void *fy_ucx_order_riding(const fy_ucx_xfer *x, size_t *len)
{
    *len = x->ord.rides ? x->ord.notif_len : 0;
    return x->ord.rides ? x->ord.notif : NULL;
}

void fy_ucx_order_sending(fy_ucx_xfer *x)
{
    x->ord.pending++;
    fy_ucx_order_publish(); /* our use of the memory, before the target's copy */
}

void fy_ucx_order_expect(fy_ucx_xfer *x, size_t n)
{
    x->ord.pending += n;
}

void fy_ucx_order_landed(fy_ucx_xfer *x, ucs_status_t st, const char *what)
{
    fy_ucx_order_observe(); /* the target's copies, before ours or the caller's */
    if (st != UCS_OK)
        fy_ucx_fail(x, st, what);
    if (--x->ord.pending == 0)
        fy_ucx_order_data_complete(x);
}

void fy_ucx_order_refused(fy_ucx_xfer *x, ferry_status err, const char *what, const char *why)
{
    fy_ucx_fail_with(x, err, what, why);
    x->ord.pending--;
}

ferry_status fy_ucx_order_end(fy_ucx_xfer *x)
{
    if (--x->ord.pending == 0)
        fy_ucx_order_data_complete(x);
    return x->state == FY_UX_DONE     ? FERRY_OK
           : x->state == FY_UX_FAILED ? x->error
                                      : FERRY_IN_PROGRESS;
}

/* ---- the target's side ---- */

static void fy_ucx_order_deliver(fy_ucx *u, const char *from, const void *msg, size_t len)
{
    fy_ucx_local_before_am(u); /* a peer's earlier notifications through the channel */
    u->host->notif_deliver(u->host->agent_ctx, from, msg, len);
}

void fy_ucx_order_deliver_riding(fy_ucx *u, const char *from, size_t from_len, const void *msg,
                                 size_t len)
{
    fy_ucx_order_publish(); /* the copies, before the answer */
    if (!len)
        return;
    char name[FY_UCX_NAME_MAX + 1];
    memcpy(name, from, from_len);
    name[from_len] = '\0';
    fy_ucx_order_deliver(u, name, msg, len);
}

/* A notification of its own (FY_UCX_AM_NOTIF): the sender's name in the
 * header, the message as data. */
ucs_status_t fy_ucx_notif_recv(void *arg, const void *header, size_t header_len, void *data,
                               size_t len, const ucp_am_recv_param_t *param)
{
    fy_ucx *u = ((fy_ucx_worker *)arg)->u;
    char from[FY_UCX_NAME_MAX + 1];
    if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV || !header_len ||
        header_len > FY_UCX_NAME_MAX) {
        UCX_LOG(u, FERRY_LOG_WARN, "dropped a malformed notification");
        return UCS_OK;
    }
    memcpy(from, header, header_len);
    from[header_len] = '\0';
    fy_ucx_order_deliver(u, from, data, len);
    return UCS_OK;
}

/* ---- a notification alone ---- */

/* Its own copy, freed when UCX is done with it (leaked, small, if UCX
 * never completes it: see fy_ucx_wait). */
typedef struct fy_ucx_lone_notif {
    fy_ucx_pack pack;
    ucp_dt_iov_t iov;
    uint8_t bytes[];
} fy_ucx_lone_notif;

static void fy_ucx_lone_notif_done(void *req, ucs_status_t st, void *arg)
{
    (void)req, (void)st;
    free(arg); /* the request itself is freed by fy_ucx_wait */
}

ferry_status fy_ucx_notif_send(void *priv, void *remote, const void *msg, size_t len)
{
    fy_ucx *u = priv;
    fy_ucx_remote *r = remote;
    ferry_status rc = fy_ucx_eps(r);
    if (rc != FERRY_OK || fy_ucx_local_notify(r, msg, len))
        return rc;
    fy_ucx_lone_notif *n = malloc(sizeof(*n) + len);
    if (!n)
        return FERRY_ERR_NO_MEMORY;
    if (len)
        memcpy(n->bytes, msg, len);
    n->iov = (ucp_dt_iov_t){.buffer = n->bytes, .length = len};
    fy_ucx_pack_init(&n->pack, &n->iov, 1);
    void *req = fy_ucx_notif_post(r, &n->pack, fy_ucx_lone_notif_done, n);
    if (!UCS_PTR_IS_PTR(req))
        free(n); /* sent already, or failed: no callback comes */
    ucs_status_t st = fy_ucx_wait(u, 0, req, fy_ucx_now_ns() + FY_UCX_CLOSE_NS);
    return st == UCS_OK ? FERRY_OK : r->failed ? FERRY_ERR_REMOTE_DISCONNECT : fy_ucx_status(st);
}
