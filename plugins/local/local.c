/* SPDX-License-Identifier: Apache-2.0 */
/* LOCAL: the built-in backend for transfers inside one agent, DRAM to DRAM.
 *
 * It is the reference implementation of the plugin ABI (include/ferry/plugin.h)
 * and the baseline of the conformance suite, so it is written to be read:
 * every op states what it accepts and why. What any plugin could use (the
 * worker pool, strict params, segment checks and slices, memmove costs)
 * lives in plugins/common/, which sees only the public headers too.
 *
 * Loopback only: the "remote" agent is always this agent, remote addresses
 * are our own virtual addresses, and a transfer is a set of memmove() calls
 * (memmove, not memcpy: source and destination of a loopback transfer may
 * overlap). Small transfers run inline in xfer_post; large ones are cut into
 * slices of about `chunk` bytes and copied by a pool of worker threads.
 *
 * Threading (FERRY_PLUGIN_F_THREAD_SAFE): every op may be called from any
 * thread. Registration, connection info and remotes hold no shared state.
 * Requests share only the pool, whose lock is taken once per slice (about
 * `chunk` bytes of copying), never per segment. A request itself belongs to
 * one caller thread at a time, as the agent API says. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/plugin.h"
#include "fyp_memcost.h"
#include "fyp_params.h"
#include "fyp_pool.h"
#include "fyp_segs.h"
#include "fyp_self.h"

/* Tests build a second copy as a .so under another name (e.g. LOCAL2) to
 * exercise the loader next to the built-in one. */
#ifndef FY_LOCAL_PLUGIN_NAME
#define FY_LOCAL_PLUGIN_NAME "LOCAL"
#endif
#define FY_LOCAL_VERSION "0.1.0"

/* A slice also ends after this many segments, so that a transfer of many
 * tiny segments still spreads over the workers. */
#define FY_LOCAL_ITEM_SEGS 16384u

/* Connection info: this magic, then the agent uid and pid (fyp_self.h). */
#define FY_LOCAL_INFO_MAGIC "FYLC"

/* Cost model: waking a worker and being told it is done. */
#define FY_LOCAL_DISPATCH_US 20.0

#define fy_local_log(host, level, ...) (host)->log((host)->agent_ctx, (level), __VA_ARGS__)

struct fy_local;

/* A prepared transfer (the handle returned by xfer_prep). */
struct fy_local_req {
    struct fy_local *be;
    const ferry_plugin_xfer *xfer; /* the core's, valid until release */
    uint64_t total;
    bool pooled; /* decided at prep: workers > 0 && total > inline_max */
    fyp_slice *slices;
    fyp_job job;       /* one item per slice */
    _Atomic int state; /* ferry_status, published with release order */
    char err[128];     /* xfer_error; written by the owner thread only */
    const void *notif; /* the core's, valid until next post or release */
    size_t notif_len;
};

/* The backend's private state; the core allocates and zeroes it. */
struct fy_local {
    const ferry_plugin_host *host;
    unsigned workers;
    uint64_t inline_max;
    uint64_t chunk;
    fyp_memcost cost;
    fyp_pool pool;
};

/* ---- params ----------------------------------------------------------- */

static const ferry_param_spec fy_local_params[] = {
    {"workers", "2",
     "worker threads copying large transfers (0..256); 0: every transfer runs inline in post"},
    {"inline_max", "1048576",
     "bytes (0..1T): a transfer of at most this many bytes is copied inline in post, which "
     "then returns OK"},
    {"chunk", "1048576",
     "bytes per work item when a large transfer is split over the workers (4K..1G)"},
};
#define FY_LOCAL_NUM_PARAMS (sizeof(fy_local_params) / sizeof(fy_local_params[0]))

/* Same order as fy_local_params. 1 TiB of inline_max means "always inline". */
static const fyp_range fy_local_ranges[] = {{0, 256}, {0, 1ull << 40}, {4096, 1ull << 30}};
_Static_assert(sizeof(fy_local_ranges) / sizeof(fy_local_ranges[0]) == FY_LOCAL_NUM_PARAMS,
               "one range per param");

static ferry_status fy_local_parse_params(struct fy_local *be, const ferry_param *params,
                                          size_t num_params)
{
    uint64_t vals[FY_LOCAL_NUM_PARAMS];
    ferry_status st = fyp_params_parse(be->host, fy_local_params, fy_local_ranges,
                                       FY_LOCAL_NUM_PARAMS, params, num_params, vals);

    if (st != FERRY_OK)
        return st;
    be->workers = (unsigned)vals[0];
    be->inline_max = vals[1];
    be->chunk = vals[2];
    return FERRY_OK;
}

/* ---- copying and notifying ------------------------------------------- */

static void fy_local_deliver(struct fy_local *be, const void *msg, size_t len)
{
    be->host->notif_deliver(be->host->agent_ctx, be->host->agent_name, msg, len);
}

/* ---- the pool's jobs ------------------------------------------------------ */

#define fy_local_req_of(j) ((struct fy_local_req *)((char *)(j)-offsetof(struct fy_local_req, job)))

static void fy_local_run_slice(fyp_job *job, size_t i)
{
    struct fy_local_req *req = fy_local_req_of(job);
    fyp_slice_memmove(req->xfer, &req->slices[i]);
}

/* The last slice is done: deliver the notification, then publish OK. The
 * release store pairs with the acquire load in xfer_check: a poller that
 * sees OK also sees the data (every slice happens before this, see
 * fyp_pool.h) and the queued notification. A release meanwhile waits
 * (fyp_pool_cancel), so the request and its notif stay valid. */
static void fy_local_job_done(fyp_job *job)
{
    struct fy_local_req *req = fy_local_req_of(job);

    if (req->notif)
        fy_local_deliver(req->be, req->notif, req->notif_len);
    atomic_store_explicit(&req->state, FERRY_OK, memory_order_release);
}

/* Cuts the transfer into slices now: the arrays do not change until
 * release, so every post reuses them and costs O(1) whatever the segment
 * count. Counted first, so that it allocates once, never per segment. */
static ferry_status fy_local_plan(struct fy_local_req *req)
{
    size_t n = fyp_slices(req->xfer, req->be->chunk, FY_LOCAL_ITEM_SEGS, NULL);

    req->slices = calloc(n ? n : 1, sizeof(*req->slices));
    if (!req->slices)
        return FERRY_ERR_NO_MEMORY;
    req->job = (fyp_job){.run = fy_local_run_slice, .done = fy_local_job_done, .nitems = n};
    (void)fyp_slices(req->xfer, req->be->chunk, FY_LOCAL_ITEM_SEGS, req->slices);
    return FERRY_OK;
}

/* ---- init / fini -------------------------------------------------------- */

static ferry_status fy_local_init(void *priv, const ferry_plugin_host *host,
                                  const ferry_param *params, size_t num_params)
{
    struct fy_local *be = priv;
    ferry_status st;
    int err;

    /* Without log and notif_deliver there is nobody to tell. */
    if (!be || !host || host->size < sizeof(*host) || !host->log || !host->notif_deliver)
        return FERRY_ERR_INVALID_PARAM;
    be->host = host;
    st = fy_local_parse_params(be, params, num_params);
    if (st != FERRY_OK)
        return st;
    if (be->workers && (err = fyp_pool_start(&be->pool, be->workers))) {
        /* The number, not strerror(), which need not be thread-safe. */
        fy_local_log(host, FERRY_LOG_ERROR, "cannot start worker thread: errno %d", err);
        return FERRY_ERR_BACKEND;
    }
    fyp_memcost_get(host, &be->cost);
    fy_local_log(host, FERRY_LOG_DEBUG, "workers %u, inline_max %llu, chunk %llu", be->workers,
                 (unsigned long long)be->inline_max, (unsigned long long)be->chunk);
    return FERRY_OK;
}

/* Every request was released before (contract), so the queue is empty and
 * the workers are idle: stopping them only wakes and joins them. */
static void fy_local_fini(void *priv)
{
    struct fy_local *be = priv;

    if (be->workers)
        fyp_pool_stop(&be->pool);
}

/* ---- registration --------------------------------------------------------- */

/* DRAM needs no pinning or key for a memmove: registration only validates.
 * No region state (*region NULL) and no public bytes. */
static ferry_status fy_local_reg(void *priv, ferry_mem_type type, const ferry_desc *desc,
                                 const void *meta, size_t meta_len, void **region, void **pub,
                                 size_t *pub_len)
{
    (void)priv, (void)meta, (void)meta_len;
    if (type != FERRY_MEM_DRAM)
        return FERRY_ERR_NOT_SUPPORTED;
    if (!desc || !region || !pub || !pub_len || desc->len == 0 ||
        !fyp_range_ok(desc->addr, desc->len))
        return FERRY_ERR_INVALID_PARAM;
    *region = NULL;
    *pub = NULL;
    *pub_len = 0;
    return FERRY_OK;
}

static void fy_local_dereg(void *priv, void *region)
{
    (void)priv, (void)region;
}

/* ---- connection info and remotes ---------------------------------------- */

/* Who we are (see fyp_self.h): the agent uid and the pid. */
static ferry_status fy_local_conn_info(void *priv, void **info, size_t *len)
{
    struct fy_local *be = priv;

    return fyp_self_info(be->host, FY_LOCAL_INFO_MAGIC, info, len);
}

/* Only ourselves is reachable (fyp_self.h). */
static ferry_status fy_local_remote_load(void *priv, const char *name, uint64_t uid,
                                         const void *info, size_t len, void **remote)
{
    struct fy_local *be = priv;

    return fyp_self_remote_load(be->host, FY_LOCAL_INFO_MAGIC, be, name, uid, info, len, remote);
}

/* Remote addresses are our own virtual addresses: nothing to map. */
static ferry_status fy_local_rregion_load(void *priv, void *remote, ferry_mem_type type,
                                          const ferry_desc *desc, const void *pub, size_t pub_len,
                                          void **rregion)
{
    (void)pub, (void)pub_len;
    if (type != FERRY_MEM_DRAM)
        return FERRY_ERR_NOT_SUPPORTED;
    if (!fyp_self_remote_is(remote, priv) || !desc || !rregion)
        return FERRY_ERR_INVALID_PARAM;
    *rregion = NULL;
    return FERRY_OK;
}

static void fy_local_rregion_unload(void *priv, void *remote, void *rregion)
{
    (void)priv, (void)remote, (void)rregion;
}

/* ---- transfers ------------------------------------------------------------ */

static ferry_status fy_local_check_xfer(struct fy_local *be, const ferry_plugin_xfer *x,
                                        uint64_t *total)
{
    ferry_status st;

    if (!x)
        return FERRY_ERR_INVALID_PARAM;
    if (x->local_type != FERRY_MEM_DRAM || x->remote_type != FERRY_MEM_DRAM)
        return FERRY_ERR_NOT_SUPPORTED;
    if (x->op != FERRY_OP_READ && x->op != FERRY_OP_WRITE) {
        fy_local_log(be->host, FERRY_LOG_ERROR, "prep: unknown op %d", (int)x->op);
        return FERRY_ERR_INVALID_PARAM;
    }
    if (!fyp_self_remote_is(x->remote_agent, be)) {
        fy_local_log(be->host, FERRY_LOG_ERROR, "prep: remote is not this backend's loopback");
        return FERRY_ERR_INVALID_PARAM;
    }
    st = fyp_segs_check(x, total);
    if (st != FERRY_OK)
        fy_local_log(be->host, FERRY_LOG_ERROR, "prep: inconsistent segments");
    return st;
}

/* Validates once and, for a pooled transfer, cuts it into slices now. */
static ferry_status fy_local_xfer_prep(void *priv, const ferry_plugin_xfer *xfer, void **handle)
{
    struct fy_local *be = priv;
    struct fy_local_req *req;
    uint64_t total = 0;
    ferry_status st;

    if (!handle)
        return FERRY_ERR_INVALID_PARAM;
    st = fy_local_check_xfer(be, xfer, &total);
    if (st != FERRY_OK)
        return st;
    req = calloc(1, sizeof(*req));
    if (!req)
        return FERRY_ERR_NO_MEMORY;
    req->be = be;
    req->xfer = xfer;
    req->total = total;
    req->pooled = be->workers > 0 && total > be->inline_max;
    atomic_init(&req->state, FERRY_ERR_NOT_POSTED);
    if (req->pooled && (st = fy_local_plan(req)) != FERRY_OK) {
        free(req);
        return st;
    }
    *handle = req;
    return FERRY_OK;
}

static ferry_status fy_local_run_inline(struct fy_local_req *req, const void *notif, size_t len)
{
    fyp_slice_memmove(req->xfer, &(fyp_slice){0, 0, req->total});
    if (notif)
        fy_local_deliver(req->be, notif, len);
    atomic_store_explicit(&req->state, FERRY_OK, memory_order_release);
    return FERRY_OK;
}

/* Inline when small (or without workers): OK on return, notification
 * already queued. Otherwise queued for the pool: IN_PROGRESS. */
static ferry_status fy_local_xfer_post(void *priv, void *handle, const void *notif,
                                       size_t notif_len)
{
    struct fy_local_req *req = handle;

    (void)priv;
    if (!req || (!notif && notif_len) || notif_len > FERRY_NOTIF_MAX_LEN)
        return FERRY_ERR_INVALID_PARAM;
    /* The core never reposts an active request; refuse rather than corrupt
     * the pool if it ever did. */
    if (atomic_load_explicit(&req->state, memory_order_acquire) == FERRY_IN_PROGRESS) {
        snprintf(req->err, sizeof(req->err), "posted while in progress");
        return FERRY_ERR_REPOST_ACTIVE;
    }
    req->err[0] = '\0';
    if (!req->pooled)
        return fy_local_run_inline(req, notif, notif_len);
    req->notif = notif;
    req->notif_len = notif_len;
    atomic_store_explicit(&req->state, FERRY_IN_PROGRESS, memory_order_relaxed);
    fyp_pool_submit(&req->be->pool, &req->job);
    return FERRY_IN_PROGRESS;
}

/* One atomic load: no lock, no progress to drive. */
static ferry_status fy_local_xfer_check(void *priv, void *handle)
{
    struct fy_local_req *req = handle;

    (void)priv;
    if (!req)
        return FERRY_ERR_INVALID_PARAM;
    return (ferry_status)atomic_load_explicit(&req->state, memory_order_acquire);
}

/* A pooled request may still have items queued or running: cancel waits
 * for the running ones (each at most `chunk` bytes), so no write can land
 * after we return. Its notification is then not delivered, unless the last
 * item had already finished and was delivering it. */
static ferry_status fy_local_xfer_release(void *priv, void *handle)
{
    struct fy_local_req *req = handle;

    (void)priv;
    if (!req)
        return FERRY_OK;
    if (req->pooled)
        fyp_pool_cancel(&req->be->pool, &req->job);
    free(req->slices);
    free(req);
    return FERRY_OK;
}

static const char *fy_local_xfer_error(void *priv, void *handle)
{
    struct fy_local_req *req = handle;

    (void)priv;
    return req ? req->err : "";
}

/* ---- notifications and cost --------------------------------------------- */

/* To ourselves there is no wire: the message is queued before we return. */
static ferry_status fy_local_notif_send(void *priv, void *remote, const void *msg, size_t len)
{
    struct fy_local *be = priv;

    if (!fyp_self_remote_is(remote, be) || !msg || len > FERRY_NOTIF_MAX_LEN)
        return FERRY_ERR_INVALID_PARAM;
    fy_local_deliver(be, msg, len);
    return FERRY_OK;
}

/* A copy over as many workers as can share the transfer (optimistic:
 * memory bandwidth saturates, hence fyp_memcost's margin), plus the
 * dispatch to them when pooled. */
static ferry_status fy_local_estimate(void *priv, void *handle, ferry_xfer_cost *cost)
{
    struct fy_local *be = priv;
    struct fy_local_req *req = handle;
    double lanes = 1;

    if (!req || !cost)
        return FERRY_ERR_INVALID_PARAM;
    if (req->pooled)
        lanes = req->job.nitems < be->workers ? (double)req->job.nitems : (double)be->workers;
    fyp_memcost_estimate(&be->cost, req->total, req->xfer->count, lanes,
                         req->pooled ? FY_LOCAL_DISPATCH_US : 0, cost);
    return FERRY_OK;
}

/* ---- descriptor ----------------------------------------------------------- */

/* Left NULL, on purpose:
 * supports, mem_types: mem_mask (DRAM, always available) says everything;
 * connect/disconnect:  a loopback needs no connection, remote_load is all;
 * progress, wait_fd, arm: completion comes from inline posts or the pool's
 *             threads; there is nothing to drive, so the agent's progress
 *             thread can skip this backend entirely. */
static const ferry_plugin_ops fy_local_ops = {
    .size = sizeof(ferry_plugin_ops),
    .init = fy_local_init,
    .fini = fy_local_fini,
    .reg = fy_local_reg,
    .dereg = fy_local_dereg,
    .conn_info = fy_local_conn_info,
    .remote_load = fy_local_remote_load,
    .remote_unload = fyp_self_remote_unload,
    .rregion_load = fy_local_rregion_load,
    .rregion_unload = fy_local_rregion_unload,
    .xfer_prep = fy_local_xfer_prep,
    .xfer_post = fy_local_xfer_post,
    .xfer_check = fy_local_xfer_check,
    .xfer_release = fy_local_xfer_release,
    .notif_send = fy_local_notif_send,
    .estimate = fy_local_estimate,
    .xfer_error = fy_local_xfer_error,
};

static const ferry_plugin_desc fy_local_desc = {
    .abi_version = FERRY_PLUGIN_ABI_VERSION,
    .flags = FERRY_PLUGIN_F_THREAD_SAFE,
    .name = FY_LOCAL_PLUGIN_NAME,
    .version = FY_LOCAL_VERSION,
    .caps = FERRY_CAP_LOCAL | FERRY_CAP_NOTIF,
    .mem_mask = FERRY_MEM_MASK(FERRY_MEM_DRAM),
    .params = fy_local_params,
    .num_params = FY_LOCAL_NUM_PARAMS,
    .priv_size = sizeof(struct fy_local),
    .ops = &fy_local_ops,
};

FERRY_PLUGIN_DEFINE(LOCAL, fy_local_desc)
