/* SPDX-License-Identifier: Apache-2.0 */
/* UCX backend: connection info, peers, endpoints and remote keys
 * (notifications: ucx_order.c).
 *
 * Connection info is the list of our workers' addresses, then what we
 * serve:
 *   u8 count (1..64), then per worker: u32 length (little-endian), bytes;
 *   u8 flags: bit 0 set when we serve puts and gets (rma=on), bit 1 when
 *   our identity on this host follows (fyp_ident.h: the notification
 *   channel of ucx_local.c), to the end.
 * It arrives from peers inside metadata blobs, so every length is checked
 * before use; UCX itself rejects a garbage address when an endpoint is
 * created, cleanly. Info without the flags byte serves RMA. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/le.h"
#include "ucx_amw_wire.h"
#include "ucx_internal.h"

/* ---- connection info ---- */

#define FY_UCX_INFO_RMA   0x01u /* flags: puts and gets served */
#define FY_UCX_INFO_LOCAL 0x02u /* flags: our identity on this host follows */

ferry_status fy_ucx_conn_info(void *priv, void **info, size_t *len)
{
    fy_ucx *u = priv;
    uint8_t ident[FYP_IDENT_FIXED + FYP_SOCK_MAX];
    size_t ident_len = fy_ucx_local_info(u, ident, sizeof(ident));
    size_t total = 2 + ident_len; /* count, flags, identity */
    for (unsigned k = 0; k < u->num_workers; k++)
        total += 4 + u->workers[k].addr_len;
    uint8_t *b = malloc(total), *p = b;
    if (!b)
        return FERRY_ERR_NO_MEMORY;
    *p++ = (uint8_t)u->num_workers;
    for (unsigned k = 0; k < u->num_workers; k++) {
        size_t n = u->workers[k].addr_len;
        fy_le_put(p, n, 4);
        memcpy(p + 4, u->workers[k].addr, n);
        p += 4 + n;
    }
    *p++ = (u->rma ? FY_UCX_INFO_RMA : 0) | (ident_len ? FY_UCX_INFO_LOCAL : 0);
    memcpy(p, ident, ident_len);
    *info = b;
    *len = total;
    return FERRY_OK;
}

/* Fills r's address table from info; false on malformed bytes. */
static bool fy_ucx_parse_addrs(fy_ucx_remote *r, const uint8_t *b, size_t len)
{
    if (len < 1 || b[0] == 0 || b[0] > FY_UCX_MAX_WORKERS)
        return false;
    r->num_addrs = b[0];
    size_t off = 1;
    for (unsigned k = 0; k < r->num_addrs; k++) {
        if (len - off < 4)
            return false;
        uint64_t n = fy_le_get(b + off, 4);
        off += 4;
        if (n == 0 || n > len - off)
            return false;
        r->addr_off[k] = off;
        r->addr_len[k] = n;
        off += n;
    }
    r->rma = off == len || (b[off] & FY_UCX_INFO_RMA);
    if (off == len)
        return true;
    uint8_t flags = b[off++];
    if (flags & ~(FY_UCX_INFO_RMA | FY_UCX_INFO_LOCAL))
        return false;
    return flags & FY_UCX_INFO_LOCAL ? fy_ucx_local_peer(r, b + off, len - off) : off == len;
}

static void fy_ucx_remote_free(fy_ucx_remote *r)
{
    free(r->addr_blob);
    free(r->addr_off);
    free(r->addr_len);
    free(r->ep);
    free(r);
}

/* ---- parked remotes ----
 *
 * A healthy remote that is unloaded (its metadata invalidated) keeps its
 * endpoints here, for a load of the same instance's connection info to
 * take them back. Why: for each endpoint we create, the peer's UCX makes a
 * reply endpoint of its own, with its own TCP connection to us, and UCX
 * 1.13 closes that only when the connection fails, not when we close our
 * endpoint (gracefully or by force): every invalidate and reload of a live
 * peer left one connection open in each process (measured: 300 rounds,
 * 23 -> 323 open files, each round slower). Parked endpoints bring no new
 * connection. At most FY_UCX_PARKED_MAX are kept (the oldest is closed);
 * one whose peer failed is closed at the next load; fini closes the rest. */
#define FY_UCX_PARKED_MAX 16u

static void fy_ucx_remote_drop(fy_ucx_remote *r)
{
    fy_ucx_eps_close(r);
    fy_ucx_remote_free(r);
}

/* Parked endpoints carry nothing (every transfer on them was released):
 * closed by force, at once, even those to a peer that stopped answering
 * unnoticed (error handling none), where a flushing close waits its bound. */
static void fy_ucx_parked_drop(fy_ucx_remote *r)
{
    if (r->failed == UCS_OK)
        r->failed = UCS_ERR_CANCELED;
    fy_ucx_remote_drop(r);
}

/* Unlinks and returns the parked remote of instance uid with this
 * connection info, or NULL; parked remotes whose peer failed are closed
 * on the way. */
static fy_ucx_remote *fy_ucx_unpark(fy_ucx *u, uint64_t uid, const void *info, size_t len)
{
    fy_ucx_remote **link = &u->parked, *found = NULL;
    while (*link) {
        fy_ucx_remote *r = *link;
        bool same = !found && r->failed == UCS_OK && r->uid == uid && r->info_len == len &&
                    !memcmp(r->addr_blob, info, len);
        if (!same && r->failed == UCS_OK) {
            link = &r->next_parked;
            continue;
        }
        *link = r->next_parked;
        u->num_parked--;
        if (same)
            found = r;
        else
            fy_ucx_parked_drop(r);
    }
    return found;
}

/* Keeps r's endpoints for a reload; closes the oldest beyond the bound. */
static void fy_ucx_park(fy_ucx *u, fy_ucx_remote *r)
{
    r->next_parked = u->parked;
    u->parked = r;
    if (++u->num_parked <= FY_UCX_PARKED_MAX)
        return;
    fy_ucx_remote **link = &u->parked;
    while ((*link)->next_parked)
        link = &(*link)->next_parked;
    fy_ucx_parked_drop(*link);
    *link = NULL;
    u->num_parked--;
}

void fy_ucx_parked_fini(fy_ucx *u)
{
    while (u->parked) {
        fy_ucx_remote *r = u->parked;
        u->parked = r->next_parked;
        fy_ucx_parked_drop(r);
    }
    u->num_parked = 0;
}

ferry_status fy_ucx_remote_load(void *priv, const char *name, uint64_t uid, const void *info,
                                size_t len, void **remote)
{
    fy_ucx *u = priv;
    if (!info || !len)
        return FERRY_ERR_NOT_SUPPORTED; /* the peer has no UCX address for us */
    fy_ucx_remote *r = fy_ucx_unpark(u, uid, info, len);
    if (r) {
        snprintf(r->name, sizeof(r->name), "%s", name);
        *remote = r;
        return FERRY_OK;
    }
    r = calloc(1, sizeof(*r));
    if (!r)
        return FERRY_ERR_NO_MEMORY;
    r->u = u;
    snprintf(r->name, sizeof(r->name), "%s", name);
    r->addr_blob = malloc(len);
    r->addr_off = calloc(FY_UCX_MAX_WORKERS, sizeof(size_t));
    r->addr_len = calloc(FY_UCX_MAX_WORKERS, sizeof(size_t));
    r->ep = calloc(u->num_workers, sizeof(*r->ep));
    if (!r->addr_blob || !r->addr_off || !r->addr_len || !r->ep) {
        fy_ucx_remote_free(r);
        return FERRY_ERR_NO_MEMORY;
    }
    memcpy(r->addr_blob, info, len);
    r->info_len = len;
    r->uid = uid;
    if (!fy_ucx_parse_addrs(r, r->addr_blob, len)) {
        UCX_LOG(u, FERRY_LOG_ERROR, "connection info of %s is malformed (%zu bytes)", name, len);
        fy_ucx_remote_free(r);
        return FERRY_ERR_BAD_METADATA;
    }
    *remote = r;
    return FERRY_OK;
}

/* ---- endpoints ---- */

/* A peer that went away (it exited, was killed, or its host is gone) is
 * no fault of ours: the requests it breaks report it themselves
 * (REMOTE_DISCONNECT with this reason), so a clean shutdown stays quiet.
 * Anything else about an endpoint is worth a warning. */
static ferry_log_level fy_ucx_ep_error_level(ucs_status_t st)
{
    switch (st) {
    case UCS_ERR_CONNECTION_RESET:
    case UCS_ERR_ENDPOINT_TIMEOUT:
    case UCS_ERR_UNREACHABLE:
    case UCS_ERR_CANCELED:
    case UCS_ERR_NOT_CONNECTED:
        return FERRY_LOG_INFO;
    default:
        return FERRY_LOG_WARN;
    }
}

static void fy_ucx_ep_error(void *arg, ucp_ep_h ep, ucs_status_t st)
{
    fy_ucx_remote *r = arg;
    (void)ep;
    if (r->failed == UCS_OK)
        UCX_LOG(r->u, fy_ucx_ep_error_level(st), "peer %s: %s", r->name, ucs_status_string(st));
    r->failed = st;
}

/* An endpoint from our worker k to the peer's worker k modulo its count. */
static ucs_status_t fy_ucx_ep_new(fy_ucx_remote *r, unsigned k, ucp_err_handling_mode_t mode,
                                  ucp_ep_h *ep)
{
    unsigned a = k % r->num_addrs;
    ucp_ep_params_t p = {
        .field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                      UCP_EP_PARAM_FIELD_ERR_HANDLER,
        .address = (const ucp_address_t *)(r->addr_blob + r->addr_off[a]),
        .err_mode = mode,
        .err_handler = {.cb = fy_ucx_ep_error, .arg = r},
    };
    ucs_status_t st = ucp_ep_create(r->u->workers[k].h, &p, ep);
    if (st != UCS_OK)
        *ep = NULL;
    return st;
}

static void fy_ucx_discard(void *req, ucs_status_t st, void *arg)
{
    (void)st, (void)arg;
    ucp_request_free(req);
}

/* Wires the control endpoint up now (a flush forces the connection), so a
 * peer dying before any transfer is noticed too. */
static ucs_status_t fy_ucx_ctl_new(fy_ucx_remote *r)
{
    ucs_status_t st = fy_ucx_ep_new(r, 0, UCP_ERR_HANDLING_MODE_PEER, &r->ctl);
    if (st != UCS_OK)
        return st;
    ucp_request_param_t p = {.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK, .cb.send = fy_ucx_discard};
    void *req = ucp_ep_flush_nbx(r->ctl, &p);
    return UCS_PTR_IS_ERR(req) ? UCS_PTR_STATUS(req) : UCS_OK;
}

/* With RMA on both sides: whether small WRITEs to r go as active messages
 * (ucx_amw.c). Without, everything does. With am_writes=auto they do
 * unless a lane moves puts without the peer's CPU (a kernel's copy such
 * as CMA, or RDMA): elsewhere UCX emulates puts with messages of its own,
 * four a WRITE with the flush where ours cost two. */
static void fy_ucx_amw_choose(fy_ucx_remote *r, unsigned lanes)
{
    fy_ucx *u = r->u;
    if (!u->rma || !r->rma)
        return;
    bool rma_lane = lanes & (FY_UCX_LANE_KERNEL | FY_UCX_LANE_RDMA);
    r->amw = u->amw_mode == FY_UCX_AMW_ON || (u->amw_mode == FY_UCX_AMW_AUTO && !rma_lane);
    if (r->amw && u->amw_max)
        UCX_LOG(u, FERRY_LOG_DEBUG, "WRITEs of up to %zu bytes to %s go as active messages%s",
                u->amw_max, r->name, u->amw_mode == FY_UCX_AMW_ON ? "" : " (no RMA lane)");
}

/* Creates the endpoints on first use, one per worker. */
ferry_status fy_ucx_eps(fy_ucx_remote *r)
{
    if (r->failed != UCS_OK)
        return FERRY_ERR_REMOTE_DISCONNECT;
    if (r->ep[0])
        return FERRY_OK;
    fy_ucx_errmode mode = r->u->errmode;
    ucp_err_handling_mode_t data_mode =
        mode == FY_UCX_PEER ? UCP_ERR_HANDLING_MODE_PEER : UCP_ERR_HANDLING_MODE_NONE;
    ucs_status_t st = UCS_OK;
    for (unsigned k = 0; k < r->u->num_workers && st == UCS_OK; k++)
        st = fy_ucx_ep_new(r, k, data_mode, &r->ep[k]);
    if (st == UCS_OK && mode == FY_UCX_DUAL)
        st = fy_ucx_ctl_new(r);
    if (st != UCS_OK) {
        UCX_LOG(r->u, FERRY_LOG_ERROR, "endpoint to %s: %s", r->name, ucs_status_string(st));
        fy_ucx_eps_close(r);
        return fy_ucx_status(st);
    }
    r->epoch++;
    fy_ucx_amw_choose(r, fy_ucx_lanes(r->u, r->ep[0], r->name));
    return FERRY_OK;
}

/* One close per endpoint (a second one is an error in UCX): flushed for a
 * healthy peer, forced for a failed one; bounded either way. */
static void fy_ucx_close_one(fy_ucx_remote *r, unsigned worker, ucp_ep_h ep)
{
    ucp_request_param_t p = {.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
                             .flags = r->failed != UCS_OK ? UCP_EP_CLOSE_FLAG_FORCE : 0};
    ucs_status_t st =
        fy_ucx_wait(r->u, worker, ucp_ep_close_nbx(ep, &p), fy_ucx_now_ns() + FY_UCX_CLOSE_NS);
    if (st != UCS_OK && st != UCS_ERR_CANCELED && st != UCS_ERR_ENDPOINT_TIMEOUT &&
        st != UCS_ERR_CONNECTION_RESET)
        UCX_LOG(r->u, FERRY_LOG_DEBUG, "closing an endpoint to %s: %s", r->name,
                ucs_status_string(st));
}

void fy_ucx_eps_close(fy_ucx_remote *r)
{
    if (r->ctl)
        fy_ucx_close_one(r, 0, r->ctl);
    r->ctl = NULL;
    for (unsigned k = 0; k < r->u->num_workers; k++) {
        if (r->ep[k])
            fy_ucx_close_one(r, k, r->ep[k]);
        r->ep[k] = NULL;
    }
}

void fy_ucx_remote_unload(void *priv, void *remote)
{
    fy_ucx_remote *r = remote;
    if (r->failed == UCS_OK && r->ep[0])
        fy_ucx_park(priv, r); /* see "parked remotes" */
    else
        fy_ucx_remote_drop(r);
}

/* The same instance's metadata loaded again: a remote whose endpoints
 * failed, or were closed when a release gave up on it (a peer frozen,
 * then resumed), starts over with new endpoints, and its keys are
 * unpacked again for them (epoch). Same instance, same addresses: info
 * holds nothing new. A healthy remote keeps its endpoints. */
ferry_status fy_ucx_remote_refresh(void *priv, void *remote, const void *info, size_t len)
{
    fy_ucx_remote *r = remote;
    (void)priv, (void)info, (void)len;
    if (r->failed == UCS_OK)
        return FERRY_OK;
    UCX_LOG(r->u, FERRY_LOG_INFO, "peer %s loaded again: reconnecting", r->name);
    fy_ucx_eps_close(r); /* forced: it failed */
    r->failed = UCS_OK;
    return fy_ucx_eps(r);
}

ferry_status fy_ucx_connect(void *priv, void *remote)
{
    (void)priv;
    return fy_ucx_eps(remote);
}

ferry_status fy_ucx_disconnect(void *priv, void *remote)
{
    (void)priv;
    fy_ucx_eps_close(remote);
    return FERRY_OK;
}

/* ---- remote regions ---- */

/* A peer's region: its packed key, checked for shape (UCX reads a key
 * without its length), or none (a peer with rma=off publishes none: it
 * is reached by checked active messages only). */
ferry_status fy_ucx_rregion_load(void *priv, void *remote, ferry_mem_type type, const ferry_desc *d,
                                 const void *pub, size_t pub_len, void **rregion)
{
    fy_ucx *u = priv;
    fy_ucx_remote *r = remote;
    (void)type, (void)d;
    if (pub_len ? !fy_ucx_rkey_well_formed(pub, pub_len) : r->rma) {
        UCX_LOG(u, FERRY_LOG_ERROR, "remote key of %s: %zu bytes that are not a UCX key", r->name,
                pub_len);
        return FERRY_ERR_BAD_METADATA;
    }
    fy_ucx_rregion *rr = calloc(1, sizeof(*rr));
    if (rr) {
        rr->packed = malloc(pub_len ? pub_len : 1);
        rr->rkeys = calloc(u->num_workers, sizeof(*rr->rkeys));
    }
    if (!rr || !rr->packed || !rr->rkeys) {
        if (rr)
            free(rr->packed), free(rr->rkeys);
        free(rr);
        return FERRY_ERR_NO_MEMORY;
    }
    if (pub_len)
        memcpy(rr->packed, pub, pub_len);
    rr->packed_len = pub_len;
    *rregion = rr;
    return FERRY_OK;
}

/* Keys unpacked for endpoints that are gone or going. */
static void fy_ucx_rkeys_drop(fy_ucx *u, fy_ucx_rregion *rr)
{
    for (unsigned k = 0; k < u->num_workers; k++) {
        if (rr->rkeys[k])
            ucp_rkey_destroy(rr->rkeys[k]);
        rr->rkeys[k] = NULL;
    }
}

void fy_ucx_rregion_unload(void *priv, void *remote, void *rregion)
{
    fy_ucx_rregion *rr = rregion;
    (void)remote;
    fy_ucx_rkeys_drop(priv, rr);
    free(rr->rkeys);
    free(rr->packed);
    free(rr);
}

/* The key for use on endpoint `worker`, unpacked on first use. */
ferry_status fy_ucx_rkey(fy_ucx_remote *r, fy_ucx_rregion *rr, unsigned worker)
{
    if (rr->epoch != r->epoch) { /* unpacked for endpoints since replaced */
        fy_ucx_rkeys_drop(r->u, rr);
        rr->epoch = r->epoch;
    }
    if (rr->rkeys[worker])
        return FERRY_OK;
    if (!rr->packed_len)
        return FERRY_ERR_NOT_SUPPORTED; /* the peer serves no RMA */
    ucs_status_t st = ucp_ep_rkey_unpack(r->ep[worker], rr->packed, &rr->rkeys[worker]);
    if (st != UCS_OK) {
        UCX_LOG(r->u, FERRY_LOG_ERROR, "remote key of %s: %s", r->name, ucs_status_string(st));
        rr->rkeys[worker] = NULL;
        return FERRY_ERR_BAD_METADATA;
    }
    return FERRY_OK;
}
