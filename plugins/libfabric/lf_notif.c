/* SPDX-License-Identifier: Apache-2.0 */
/* LIBFABRIC notifications: messages on the same endpoint as the RMA.
 * Wire form: magic u32 | name_len u16 | 0 u16 | msg_len u32 | sender's
 * agent name | message. Receive buffers are posted at init and reposted
 * as each is consumed (a provider holds messages arriving meanwhile as
 * unexpected ones); send buffers come from a small pool. All of it on
 * rail 0. A transfer's notification is sent only once all of its RMA
 * completed, on every rail (lf_xfer.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/le.h"
#include "lf_internal.h"

#define FY_LF_NOTIF_MAGIC  0x31544e4cu /* "LNT1" */
#define FY_LF_SEND_WAIT_NS 2000000000u

static uint8_t *fy_lf_buf(const fy_lf_bufs *b, uint32_t slot)
{
    return b->mem + (size_t)slot * FY_LF_NOTIF_BUF;
}

static ferry_status fy_lf_bufs_open(fy_lf *be, fy_lf_bufs *b, size_t count, fy_lf_op_kind kind)
{
    b->count = count;
    b->mem = malloc(count * FY_LF_NOTIF_BUF);
    b->ops = calloc(count, sizeof(*b->ops));
    if (!b->mem || !b->ops)
        return FERRY_ERR_NO_MEMORY;
    for (size_t i = 0; i < count; i++)
        b->ops[i] = (fy_lf_op){.kind = kind, .slot = (uint32_t)i};
    if (!be->rails[0].mr_local)
        return FERRY_OK;
    ferry_status rc =
        fy_lf_mr(&be->rails[0], b->mem, count * FY_LF_NOTIF_BUF, FI_SEND | FI_RECV, &b->mr);
    if (rc == FERRY_OK)
        b->desc = fi_mr_desc(b->mr);
    return rc;
}

static void fy_lf_bufs_close(fy_lf_bufs *b)
{
    if (b->mr)
        fi_close(&b->mr->fid);
    free(b->mem);
    free(b->ops);
    memset(b, 0, sizeof(*b));
}

static ferry_status fy_lf_recv_post(fy_lf *be, fy_lf_op *op)
{
    ssize_t rc = fi_recv(be->rails[0].ep, fy_lf_buf(&be->rx, op->slot), FY_LF_NOTIF_BUF,
                         be->rx.desc, FI_ADDR_UNSPEC, &op->fctx);
    op->busy = rc == 0;
    if (rc == 0)
        return FERRY_OK;
    fy_lf_log(be, FERRY_LOG_ERROR, "fi_recv: %s", fi_strerror((int)-rc));
    return FERRY_ERR_BACKEND;
}

ferry_status fy_lf_notif_open(fy_lf *be, size_t rx_count, size_t tx_count)
{
    ferry_status rc = fy_lf_bufs_open(be, &be->rx, rx_count, FY_LF_OP_RECV);
    if (rc == FERRY_OK)
        rc = fy_lf_bufs_open(be, &be->tx, tx_count, FY_LF_OP_SEND);
    for (size_t i = 0; rc == FERRY_OK && i < rx_count; i++)
        rc = fy_lf_recv_post(be, &be->rx.ops[i]);
    return rc;
}

/* After the endpoint is closed: no buffer is in the provider's hands. */
void fy_lf_notif_close(fy_lf *be)
{
    fy_lf_bufs_close(&be->rx);
    fy_lf_bufs_close(&be->tx);
}

/* A received message: checked (any peer may send anything), delivered. */
static void fy_lf_notif_deliver(fy_lf *be, const uint8_t *p, size_t len)
{
    size_t name_len = len >= FY_LF_NOTIF_HDR ? (size_t)fy_le_get(p + 4, 2) : 0;
    size_t msg_len = len >= FY_LF_NOTIF_HDR ? (size_t)fy_le_get(p + 8, 4) : 0;
    if (!name_len || name_len > FERRY_NAME_MAX || fy_le_get(p, 4) != FY_LF_NOTIF_MAGIC ||
        msg_len > FERRY_NOTIF_MAX_LEN || FY_LF_NOTIF_HDR + name_len + msg_len != len) {
        fy_lf_log(be, FERRY_LOG_WARN, "dropped a malformed notification of %zu bytes", len);
        return;
    }
    char name[FERRY_NAME_MAX + 1];
    memcpy(name, p + FY_LF_NOTIF_HDR, name_len);
    name[name_len] = '\0';
    be->host->notif_deliver(be->host->agent_ctx, name, p + FY_LF_NOTIF_HDR + name_len, msg_len);
}

void fy_lf_notif_done(fy_lf *be, fy_lf_op *op, const struct fi_cq_msg_entry *e, int err)
{
    op->busy = false;
    if (op->kind == FY_LF_OP_SEND) {
        if (op->req)
            fy_lf_req_notified(op->req, err);
        else if (err)
            fy_lf_log(be, FERRY_LOG_WARN, "a notification was not sent: %s", fi_strerror(err));
        op->req = NULL;
        return;
    }
    if (err == FI_ECANCELED)
        return; /* the endpoint is closing */
    if (!err)
        fy_lf_notif_deliver(be, fy_lf_buf(&be->rx, op->slot), e->len);
    fy_lf_recv_post(be, op);
}

static fy_lf_op *fy_lf_tx_slot(fy_lf *be)
{
    for (size_t i = 0; i < be->tx.count; i++)
        if (!be->tx.ops[i].busy)
            return &be->tx.ops[i];
    return NULL;
}

ferry_status fy_lf_notif_post(fy_lf *be, fy_lf_remote *r, const void *msg, size_t len,
                              fy_lf_req *req)
{
    fy_lf_op *op = fy_lf_tx_slot(be);
    if (!op)
        return FERRY_ERR_NO_RESOURCES;
    size_t name_len = strlen(be->host->agent_name);
    uint8_t *p = fy_lf_buf(&be->tx, op->slot);
    fy_le_put(p, FY_LF_NOTIF_MAGIC, 4);
    fy_le_put(p + 4, name_len, 2);
    fy_le_put(p + 6, 0, 2);
    fy_le_put(p + 8, len, 4);
    memcpy(p + FY_LF_NOTIF_HDR, be->host->agent_name, name_len);
    if (len)
        memcpy(p + FY_LF_NOTIF_HDR + name_len, msg, len);
    ssize_t rc = fi_send(be->rails[0].ep, p, FY_LF_NOTIF_HDR + name_len + len, be->tx.desc,
                         r->rails[0].fi_addr, &op->fctx);
    if (rc == -FI_EAGAIN)
        return FERRY_ERR_NO_RESOURCES;
    if (rc) {
        fy_lf_log(be, FERRY_LOG_ERROR, "fi_send to %s: %s", r->name, fi_strerror((int)-rc));
        return FERRY_ERR_BACKEND;
    }
    op->busy = true;
    op->req = req;
    return FERRY_OK;
}

/* A notification alone: waits (bounded) for a send buffer or queue room. */
ferry_status fy_lf_notif_send(void *priv, void *remote, const void *msg, size_t len)
{
    fy_lf *be = priv;
    fy_lf_remote *r = remote;
    if (!r || (len && !msg) || len > FERRY_NOTIF_MAX_LEN)
        return FERRY_ERR_INVALID_PARAM;
    if (!fy_lf_remote_alive(r))
        return FERRY_ERR_REMOTE_DISCONNECT;
    uint64_t until = fy_lf_now_ns() + FY_LF_SEND_WAIT_NS;
    ferry_status rc;
    while ((rc = fy_lf_notif_post(be, r, msg, len, NULL)) == FERRY_ERR_NO_RESOURCES &&
           fy_lf_now_ns() < until && fy_lf_remote_alive(r))
        fy_lf_cq_drain(be);
    if (rc == FERRY_ERR_NO_RESOURCES && !fy_lf_remote_alive(r))
        rc = FERRY_ERR_REMOTE_DISCONNECT;
    if (rc == FERRY_ERR_NO_RESOURCES)
        fy_lf_log(be, FERRY_LOG_ERROR, "notification to %s: no room to send for 2 s", r->name);
    return rc;
}
