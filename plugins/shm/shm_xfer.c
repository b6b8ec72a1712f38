/* SPDX-License-Identifier: Apache-2.0 */
/* SHM transfers: prep checks every segment against the regions on both
 * sides, maps the peer's memfd regions it touches and lays out the
 * cross-memory attach vectors; post copies inline (memcpy into or out of
 * the mapping: no system call; process_vm_writev/readv for ordinary
 * memory, up to IOV_MAX segments per call), then sends the notification.
 * A peer cannot stall the copy: its mapping is our memory, and the kernel
 * copies to a stopped process as to a running one. Only the notification
 * can wait (the peer's queue full): the request then stays IN_PROGRESS and
 * progress retries, bounded by the request's deadline. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "fyp_segs.h"
#include "shm_internal.h"

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

/* ---- prep ---- */

static bool fy_shm_inside(uint64_t addr, uint64_t len, uint64_t base, uint64_t size)
{
    return addr >= base && len <= size && addr - base <= size - len;
}

/* Every segment lies inside the region the core matched it with. */
static bool fy_shm_seg_ok(const ferry_plugin_seg *l, const ferry_plugin_seg *r)
{
    const fy_shm_region *g = l->region;
    const fy_shm_rregion *rr = r->region;
    return g && rr && fy_shm_inside(l->addr, l->len, g->addr, g->len) &&
           fy_shm_inside(r->addr, r->len, rr->pub.addr, rr->pub.len);
}

static ferry_status fy_shm_req_fail(fy_shm_req *q, ferry_status rc, const char *what)
{
    snprintf(q->err, sizeof(q->err), "%s", what);
    fy_shm_log(q->be, FERRY_LOG_ERROR, "%s", what);
    return rc;
}

/* Maps the peer's memfd regions and counts the CMA segments. */
static ferry_status fy_shm_prep_segs(fy_shm_req *q, size_t *ncma)
{
    const ferry_plugin_xfer *px = q->px;
    char err[200];
    *ncma = 0;
    for (size_t i = 0; i < px->count; i++) {
        if (!fy_shm_seg_ok(&px->local[i], &px->remote[i]))
            return fy_shm_req_fail(q, FERRY_ERR_INVALID_PARAM,
                                   "prep: a segment lies outside its registered region");
        fy_shm_rregion *rr = px->remote[i].region;
        if (rr->pub.kind == FY_SHM_KIND_CMA) {
            (*ncma)++;
            continue;
        }
        ferry_status rc = fy_shm_map(q->be, q->remote, rr, err, sizeof(err));
        if (rc != FERRY_OK)
            return fy_shm_req_fail(q, rc, err);
    }
    return FERRY_OK;
}

/* The CMA segments' vectors, local and remote side by side. */
static ferry_status fy_shm_prep_iov(fy_shm_req *q, size_t ncma)
{
    const ferry_plugin_xfer *px = q->px;
    q->liov = malloc((ncma ? ncma : 1) * sizeof(*q->liov));
    q->riov = malloc((ncma ? ncma : 1) * sizeof(*q->riov));
    if (!q->liov || !q->riov)
        return FERRY_ERR_NO_MEMORY;
    for (size_t i = 0; i < px->count; i++) {
        const fy_shm_rregion *rr = px->remote[i].region;
        if (rr->pub.kind != FY_SHM_KIND_CMA)
            continue;
        q->liov[q->niov] = (struct iovec){(void *)(uintptr_t)px->local[i].addr, px->local[i].len};
        q->riov[q->niov++] =
            (struct iovec){(void *)(uintptr_t)px->remote[i].addr, px->remote[i].len};
    }
    return FERRY_OK;
}

static ferry_status fy_shm_prep_check(fy_shm *be, const ferry_plugin_xfer *px)
{
    uint64_t total;
    if (!px || !px->remote_agent)
        return FERRY_ERR_INVALID_PARAM;
    if (px->local_type != FERRY_MEM_DRAM || px->remote_type != FERRY_MEM_DRAM)
        return FERRY_ERR_NOT_SUPPORTED;
    if (px->op != FERRY_OP_READ && px->op != FERRY_OP_WRITE) {
        fy_shm_log(be, FERRY_LOG_ERROR, "prep: unknown op %d", (int)px->op);
        return FERRY_ERR_INVALID_PARAM;
    }
    if (fyp_segs_check(px, &total) != FERRY_OK) {
        fy_shm_log(be, FERRY_LOG_ERROR, "prep: inconsistent segments");
        return FERRY_ERR_INVALID_PARAM;
    }
    return FERRY_OK;
}

static void fy_shm_req_free(fy_shm_req *q)
{
    free(q->liov);
    free(q->riov);
    free(q);
}

ferry_status fy_shm_xfer_prep(void *priv, const ferry_plugin_xfer *px, void **handle)
{
    fy_shm *be = priv;
    size_t ncma;
    ferry_status rc = fy_shm_prep_check(be, px);
    if (rc != FERRY_OK || !handle)
        return rc != FERRY_OK ? rc : FERRY_ERR_INVALID_PARAM;
    fy_shm_req *q = calloc(1, sizeof(*q));
    if (!q)
        return FERRY_ERR_NO_MEMORY;
    *q =
        (fy_shm_req){.be = be, .px = px, .remote = px->remote_agent, .state = FERRY_ERR_NOT_POSTED};
    if (!fy_shm_remote_alive(q->remote))
        rc = fy_shm_req_fail(q, FERRY_ERR_REMOTE_DISCONNECT, "prep: the peer is gone");
    if (rc == FERRY_OK)
        rc = fy_shm_prep_segs(q, &ncma);
    if (rc == FERRY_OK)
        rc = fy_shm_prep_iov(q, ncma);
    if (rc != FERRY_OK) {
        fy_shm_req_free(q);
        return rc;
    }
    *handle = q;
    return FERRY_OK;
}

/* ---- post ---- */

static void fy_shm_copy_mapped(const ferry_plugin_xfer *px)
{
    bool write = px->op == FERRY_OP_WRITE;
    for (size_t i = 0; i < px->count; i++) {
        const fy_shm_rregion *rr = px->remote[i].region;
        if (rr->pub.kind == FY_SHM_KIND_CMA)
            continue;
        uint8_t *remote = rr->at + (px->remote[i].addr - rr->pub.addr);
        uint8_t *local = (uint8_t *)(uintptr_t)px->local[i].addr;
        memcpy(write ? remote : local, write ? local : remote, px->local[i].len);
    }
}

/* Cross-memory attach, IOV_MAX segments per call. A short count means a
 * page of the peer's region is no longer mapped there. */
static ferry_status fy_shm_copy_cma(fy_shm_req *q)
{
    pid_t pid = (pid_t)q->remote->id.pid;
    for (size_t i = 0; i < q->niov; i += IOV_MAX) {
        size_t n = q->niov - i < IOV_MAX ? q->niov - i : IOV_MAX;
        size_t want = 0;
        for (size_t k = 0; k < n; k++)
            want += q->liov[i + k].iov_len;
        ssize_t got = q->px->op == FERRY_OP_WRITE
                          ? process_vm_writev(pid, q->liov + i, n, q->riov + i, n, 0)
                          : process_vm_readv(pid, q->liov + i, n, q->riov + i, n, 0);
        if (got == (ssize_t)want)
            continue;
        snprintf(q->err, sizeof(q->err), "cross-memory attach to %.255s (pid %d): %.200s",
                 q->remote->name, (int)pid,
                 got < 0 ? strerror(errno) : "short copy: the peer's region is not mapped");
        return got < 0 && errno == ESRCH ? FERRY_ERR_REMOTE_DISCONNECT : FERRY_ERR_BACKEND;
    }
    return FERRY_OK;
}

/* The data is in place: notify, or leave it to progress if the peer's
 * queue is full. */
static ferry_status fy_shm_finish(fy_shm_req *q)
{
    ferry_status rc = FERRY_OK;
    if (q->notif_due)
        rc = fy_shm_notify(q->be, q->remote, q->notif, q->notif_len, false);
    if (rc == FERRY_IN_PROGRESS) {
        fyp_list_push(&q->be->pending, &q->link);
        return q->state = FERRY_IN_PROGRESS;
    }
    q->notif_due = false;
    fyp_list_remove(&q->be->pending, &q->link);
    if (rc != FERRY_OK)
        snprintf(q->err, sizeof(q->err), "notification to %.255s failed (status %d)",
                 q->remote->name, (int)rc);
    return q->state = rc;
}

ferry_status fy_shm_xfer_post(void *priv, void *handle, const void *notif, size_t notif_len)
{
    fy_shm_req *q = handle;
    (void)priv;
    if (!q || (!notif && notif_len) || notif_len > FERRY_NOTIF_MAX_LEN)
        return FERRY_ERR_INVALID_PARAM;
    if (q->state == FERRY_IN_PROGRESS)
        return FERRY_ERR_REPOST_ACTIVE;
    q->err[0] = '\0';
    if (!fy_shm_remote_alive(q->remote)) {
        snprintf(q->err, sizeof(q->err), "%.255s is gone", q->remote->name);
        return FERRY_ERR_REMOTE_DISCONNECT;
    }
    fy_shm_copy_mapped(q->px);
    ferry_status rc = q->niov ? fy_shm_copy_cma(q) : FERRY_OK;
    if (rc != FERRY_OK)
        return q->state = rc;
    q->notif = notif;
    q->notif_len = notif_len;
    q->notif_due = notif != NULL;
    return fy_shm_finish(q);
}

ferry_status fy_shm_xfer_check(void *priv, void *handle)
{
    fy_shm_req *q = handle;
    (void)priv;
    return q ? q->state : FERRY_ERR_INVALID_PARAM;
}

/* Copies end inside post: nothing can still write; only a notification
 * not yet sent is dropped. */
ferry_status fy_shm_xfer_release(void *priv, void *handle)
{
    fy_shm_req *q = handle;
    (void)priv;
    if (!q)
        return FERRY_OK;
    fyp_list_remove(&q->be->pending, &q->link);
    fy_shm_req_free(q);
    return FERRY_OK;
}

const char *fy_shm_xfer_error(void *priv, void *handle)
{
    fy_shm_req *q = handle;
    (void)priv;
    return q ? q->err : "";
}

static bool fy_shm_retry(fyp_link *l)
{
    return fy_shm_finish(FYP_CONTAINER(l, fy_shm_req, link)) != FERRY_IN_PROGRESS;
}

/* Retries the notifications of requests whose data is in place. */
size_t fy_shm_progress_reqs(fy_shm *be)
{
    return fyp_list_sweep(be->pending, fy_shm_retry);
}
