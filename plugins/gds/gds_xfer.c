/* SPDX-License-Identifier: Apache-2.0 */
/* GDS requests: DRAM or VRAM (local) <-> FILE through cuFileRead and
 * cuFileWrite, run by a pool of worker threads (plugins/common's fyp_pool),
 * one descriptor per item, so thread_count descriptors are in flight. A
 * descriptor longer than max_request_size goes in several calls. The first
 * failing call ends the request with FERRY_ERR_IO and cuFile's or the
 * kernel's reason; nothing more of it starts. A VRAM descriptor runs with
 * its GPU's primary context current in the worker, as cuFile requires. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gds_internal.h"

ferry_status fy_gds_gpu_ctx(struct fy_gds *be, uint64_t ordinal)
{
    fy_cu_device dev;
    if (ordinal >= (uint64_t)be->ngpus) {
        fy_gds_log(be, FERRY_LOG_ERROR, "GPU %" PRIu64 " is not visible (%d GPUs)", ordinal,
                   be->ngpus);
        return FERRY_ERR_INVALID_PARAM;
    }
    if (be->ctx[ordinal])
        return FERRY_OK;
    fy_cu_result r = be->cu->DeviceGet(&dev, (int)ordinal);
    if (r == FY_CUDA_SUCCESS)
        r = be->cu->DevicePrimaryCtxRetain(&be->ctx[ordinal], dev);
    if (r == FY_CUDA_SUCCESS)
        return FERRY_OK;
    fy_gds_log(be, FERRY_LOG_ERROR, "GPU %" PRIu64 ": cuDevicePrimaryCtxRetain: %s", ordinal,
               fy_cuda_errname(be->cu, r));
    return FERRY_ERR_BACKEND;
}

/* ---- one descriptor, in a worker ------------------------------------------- */

/* Records the first error of a request: nothing more of it starts. */
void fy_gds_fail_msg(struct fy_gds_req *req, const char *fmt, ...)
{
    if (atomic_exchange(&req->failed, true))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(req->err, sizeof(req->err), fmt, ap);
    va_end(ap);
    fy_gds_log(req->be, FERRY_LOG_ERROR, "%s", req->err);
}

static void fy_gds_fail(struct fy_gds_req *req, size_t i, uint64_t off, ssize_t rc, int errnum)
{
    char name[64];
    bool sys = rc == -1 || rc == 0; /* errno, else -rc is a cuFile status */
    const char *why = sys ? strerror(errnum) : fy_cufile_errname((int)-rc, name, sizeof(name));
    fy_gds_fail_msg(req, "%s fd %d offset %" PRIu64 " (descriptor %zu): %s%s%s%s",
                    req->xfer->op == FERRY_OP_WRITE ? "cuFileWrite" : "cuFileRead",
                    ((const struct fy_gds_file *)req->xfer->remote[i].region)->fd, off, i, why,
                    sys ? " (" : "", sys ? strerrorname_np(errnum) : "", sys ? ")" : "");
}

/* cuFile calls of at most max_io bytes until bytes [from, to) of
 * descriptor i are moved. A read that returns 0 met the end of the file:
 * an error (a READ that returns OK delivered every byte). */
void fy_gds_move(struct fy_gds_req *req, size_t i, uint64_t from, uint64_t to)
{
    const struct fy_gds *be = req->be;
    const ferry_plugin_seg *l = &req->xfer->local[i], *r = &req->xfer->remote[i];
    const struct fy_gds_file *f = r->region;
    bool write = req->xfer->op == FERRY_OP_WRITE;
    void *base = (void *)(uintptr_t)l->addr;
    for (uint64_t done = from; done < to && !atomic_load(&req->failed);) {
        uint64_t n = to - done < be->max_io ? to - done : be->max_io;
        errno = 0;
        ssize_t rc = write ? be->cf.Write(f->fh, base, n, (off_t)(r->addr + done), (off_t)done)
                           : be->cf.Read(f->fh, base, n, (off_t)(r->addr + done), (off_t)done);
        if (rc <= 0) {
            fy_gds_fail(req, i, r->addr + done, rc, rc ? errno : write ? EIO : ENODATA);
            return;
        }
        done += (uint64_t)rc;
    }
}

static void fy_gds_run(fyp_job *job, size_t i)
{
    struct fy_gds_req *req = (struct fy_gds_req *)job;
    struct fy_gds *be = req->be;
    bool vram = req->xfer->local_type == FERRY_MEM_VRAM;
    fy_cu_context ignored;
    if (atomic_load(&req->failed))
        return;
    if (vram && be->cu->CtxPushCurrent(be->ctx[req->xfer->local[i].dev_id]) != FY_CUDA_SUCCESS) {
        fy_gds_fail(req, i, req->xfer->remote[i].addr, -1, EINVAL);
        return;
    }
    fy_gds_move(req, i, 0, req->xfer->local[i].len);
    if (vram)
        be->cu->CtxPopCurrent(&ignored);
}

static void fy_gds_done(fyp_job *job)
{
    struct fy_gds_req *req = (struct fy_gds_req *)job;
    atomic_store(&req->state, atomic_load(&req->failed) ? FERRY_ERR_IO : FERRY_OK);
}

/* ---- the ops ------------------------------------------------------------------ */

static ferry_status fy_gds_check_seg(struct fy_gds *be, const ferry_plugin_xfer *x, size_t i)
{
    const ferry_plugin_seg *l = &x->local[i], *r = &x->remote[i];
    if (!r->region || !l->len || l->len != r->len || r->addr > (uint64_t)INT64_MAX - r->len) {
        fy_gds_log(be, FERRY_LOG_ERROR, "descriptor %zu: %s", i,
                   r->region ? "bad length or range" : "no registered file");
        return FERRY_ERR_INVALID_PARAM;
    }
    return x->local_type == FERRY_MEM_VRAM ? fy_gds_gpu_ctx(be, l->dev_id) : FERRY_OK;
}

static ferry_status fy_gds_check_xfer(struct fy_gds *be, const ferry_plugin_xfer *x)
{
    bool local_ok = x->local_type == FERRY_MEM_DRAM || (x->local_type == FERRY_MEM_VRAM && be->cu);
    if (x->op != FERRY_OP_READ && x->op != FERRY_OP_WRITE)
        return FERRY_ERR_INVALID_PARAM;
    if (!local_ok || x->remote_type != FERRY_MEM_FILE) {
        fy_gds_log(be, FERRY_LOG_ERROR, "moves DRAM or VRAM (local) to and from FILE only");
        return FERRY_ERR_NOT_SUPPORTED;
    }
    for (size_t i = 0; i < x->count; i++) {
        ferry_status rc = fy_gds_check_seg(be, x, i);
        if (rc != FERRY_OK)
            return rc;
    }
    return FERRY_OK;
}

ferry_status fy_gds_xfer_prep(void *priv, const ferry_plugin_xfer *xfer, void **handle)
{
    struct fy_gds *be = priv;
    if (!xfer || !handle)
        return FERRY_ERR_INVALID_PARAM;
    ferry_status rc = fy_gds_check_xfer(be, xfer);
    if (rc != FERRY_OK)
        return rc;
    struct fy_gds_req *req = calloc(1, sizeof(*req));
    if (!req)
        return FERRY_ERR_NO_MEMORY;
    req->be = be;
    req->xfer = xfer;
    req->job.run = fy_gds_run;
    req->job.done = fy_gds_done;
    atomic_init(&req->state, FERRY_ERR_NOT_POSTED);
    *handle = req;
    return FERRY_OK;
}

ferry_status fy_gds_xfer_post(void *priv, void *handle, const void *notif, size_t notif_len)
{
    struct fy_gds *be = priv;
    struct fy_gds_req *req = handle;
    (void)notif; /* no notifications: the caps say so */
    (void)notif_len;
    if (atomic_load(&req->state) == FERRY_IN_PROGRESS)
        return FERRY_ERR_REPOST_ACTIVE;
    if (!req->xfer->count)
        return atomic_exchange(&req->state, FERRY_OK), FERRY_OK;
    atomic_store(&req->failed, false);
    req->canceled = false;
    req->next_seg = 0;
    req->seg_started = 0;
    req->err[0] = '\0';
    atomic_store(&req->state, FERRY_IN_PROGRESS);
    if (be->batches) {
        fy_gds_batch_post(be, req);
        return atomic_load(&req->state);
    }
    req->job.nitems = req->xfer->count;
    fyp_pool_submit(&be->pool, &req->job);
    return FERRY_IN_PROGRESS;
}

ferry_status fy_gds_xfer_check(void *priv, void *handle)
{
    struct fy_gds *be = priv;
    if (be->batches)
        fy_gds_batch_progress(be);
    return atomic_load(&((struct fy_gds_req *)handle)->state);
}

/* Thread mode: the pool drops what no worker took and waits for the
 * calls running (cuFile calls end by themselves: local I/O). Batch mode:
 * gds_batch.c cancels and reaps. */
ferry_status fy_gds_xfer_release(void *priv, void *handle)
{
    struct fy_gds *be = priv;
    struct fy_gds_req *req = handle;
    ferry_status rc = FERRY_OK;
    atomic_store(&req->failed, true); /* a running descriptor stops at its next call */
    if (be->batches)
        rc = fy_gds_batch_release(be, req);
    else
        fyp_pool_cancel(&be->pool, &req->job);
    if (rc == FERRY_OK) /* else cuFile may still hold its I/Os: keep it */
        free(req);
    return rc;
}

const char *fy_gds_xfer_error(void *priv, void *handle)
{
    (void)priv;
    return handle ? ((struct fy_gds_req *)handle)->err : "";
}
