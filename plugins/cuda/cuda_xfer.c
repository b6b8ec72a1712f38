/* SPDX-License-Identifier: Apache-2.0 */
/* Requests of the CUDA plugin.
 *
 * prep does all the work that does not depend on the bytes: it picks the
 * GPU that runs the request (the local side's GPU; for DRAM <-> VRAM the
 * VRAM's), translates both sides into that GPU's address space (opening a
 * peer's allocations through CUDA IPC on first use), merges and cuts the
 * copies into kernel items and uploads them to device memory once, in
 * stream order (prep never waits for the GPU: the first post makes the
 * request's stream wait for the upload's event). A post
 * is then one kernel launch (or one copy-engine call per big segment, or
 * one cuMemcpyBatchAsync) and one event record; completion is an event
 * query, after which the notification leaves. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

ferry_status fy_cu_req_err(fy_cu_req *q, ferry_status rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->err, sizeof(q->err), fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- which GPU runs the request ---- */

static ferry_status fy_cu_exec_local(fy_cu_req *q, int *ordinal)
{
    const ferry_plugin_xfer *px = q->px;
    *ordinal = ((const fy_cu_region *)px->local[0].region)->ordinal;
    for (size_t i = 1; i < px->count; i++)
        if (((const fy_cu_region *)px->local[i].region)->ordinal != *ordinal)
            return fy_cu_req_err(q, FERRY_ERR_NOT_SUPPORTED,
                                 "local descriptors on several GPUs: make one request per GPU");
    return FERRY_OK;
}

/* DRAM here, VRAM there: the VRAM's GPU when this process sees it. */
static ferry_status fy_cu_exec_remote(fy_cu_req *q, int *ordinal)
{
    const ferry_plugin_xfer *px = q->px;
    const fy_cu_rregion *first = px->remote[0].region;
    for (size_t i = 1; i < px->count; i++)
        if (memcmp(((const fy_cu_rregion *)px->remote[i].region)->pub.uuid, first->pub.uuid, 16))
            return fy_cu_req_err(q, FERRY_ERR_NOT_SUPPORTED,
                                 "remote descriptors on several GPUs: make one request per GPU");
    if (fy_gpu_ordinal_of(q->be->cu, first->pub.uuid, ordinal) != FERRY_OK)
        *ordinal = fy_cu_default_ordinal(q->be);
    return FERRY_OK;
}

static ferry_status fy_cu_pick_exec(fy_cu_req *q)
{
    int ordinal;
    ferry_status rc = q->px->local_type == FERRY_MEM_VRAM ? fy_cu_exec_local(q, &ordinal)
                                                          : fy_cu_exec_remote(q, &ordinal);
    if (rc == FERRY_OK)
        rc = fy_cu_dev_ready(q->be, ordinal, &q->dev);
    return rc;
}

/* ---- translation into the executing GPU's address space ---- */

/* A same-process VRAM region: its address as is, reachable by kernels only
 * through peer access when it is another GPU's. */
static ferry_status fy_cu_addr_near(fy_cu_req *q, const fy_cu_rregion *rr, bool *kernel_ok)
{
    if (rr->pub.type != FERRY_MEM_VRAM)
        return FERRY_OK;
    if (rr->ordinal < 0)
        return fy_cu_req_err(q, FERRY_ERR_NOT_SUPPORTED, "a region's GPU is not visible here");
    if (fy_cu_dev_peer(q->be, q->dev, rr->ordinal) != FERRY_OK)
        *kernel_ok = false;
    return FERRY_OK;
}

ferry_status fy_cu_addr_remote(fy_cu_req *q, const ferry_plugin_seg *s, uint64_t *out,
                               bool *kernel_ok)
{
    fy_cu_rregion *rr = s->region;
    if (q->remote->same_process) {
        *out = s->addr;
        return fy_cu_addr_near(q, rr, kernel_ok);
    }
    if (rr->pub.type != FERRY_MEM_VRAM)
        return fy_cu_req_err(q, FERRY_ERR_NOT_SUPPORTED,
                             "%s's DRAM is in another process: CUDA reaches only its VRAM",
                             q->remote->name);
    fy_cu_deviceptr base;
    ferry_status rc = fy_cu_map_get(q->be, q->remote, rr, q->dev, &base, q->err, sizeof(q->err));
    if (rc == FERRY_OK)
        *out = base + (s->addr - rr->pub.alloc_base);
    return rc;
}

static bool fy_cu_seg_ok(const ferry_plugin_seg *l, const ferry_plugin_seg *r)
{
    return l->region && r->region && l->len == r->len && l->len && l->addr + l->len > l->addr &&
           r->addr + r->len > r->addr;
}

/* items[i]: segment i as a copy, source and destination by direction. */
static ferry_status fy_cu_translate(fy_cu_req *q, fy_cu_item *items, bool *kernel_ok)
{
    const ferry_plugin_xfer *px = q->px;
    bool write = px->op == FERRY_OP_WRITE;
    for (size_t i = 0; i < px->count; i++) {
        const ferry_plugin_seg *l = &px->local[i], *r = &px->remote[i];
        uint64_t raddr = 0;
        if (!fy_cu_seg_ok(l, r))
            return fy_cu_req_err(q, FERRY_ERR_INVALID_PARAM, "segment %zu is inconsistent", i);
        ferry_status rc = fy_cu_addr_remote(q, r, &raddr, kernel_ok);
        if (rc != FERRY_OK)
            return rc;
        items[i] = (fy_cu_item){write ? l->addr : raddr, write ? raddr : l->addr, l->len};
    }
    return FERRY_OK;
}

/* ---- the plan ---- */

static ferry_status fy_cu_plan_ce(fy_cu_req *q, fy_cu_item *v, size_t n)
{
    q->ce = v;
    q->nce = n;
    const fy_cuda *cu = q->be->cu;
    if (!q->be->batch || n < 2 || (!cu->MemcpyBatchAsync && !cu->MemcpyBatchAsync12))
        return FERRY_OK;
    q->ce_dst = malloc(n * sizeof(*q->ce_dst));
    q->ce_src = malloc(n * sizeof(*q->ce_src));
    q->ce_len = malloc(n * sizeof(*q->ce_len));
    if (!q->ce_dst || !q->ce_src || !q->ce_len)
        return FERRY_ERR_NO_MEMORY;
    for (size_t i = 0; i < n; i++) {
        q->ce_dst[i] = v[i].dst;
        q->ce_src[i] = v[i].src;
        q->ce_len[i] = (size_t)v[i].len;
    }
    return FERRY_OK;
}

/* The copy into device memory and the event after it, on the upload stream.
 * From pageable memory the driver stages the bytes before returning, so
 * the caller may free items at once; nothing here waits for the GPU. */
static fy_cu_result fy_cu_upload_async(fy_cu_req *q, const fy_cu_item *items, size_t bytes)
{
    const fy_cuda *cu = q->be->cu;
    fy_cu_result r = cu->MemcpyHtoDAsync(q->d_items, items, bytes, q->dev->upload);
    if (r == FY_CUDA_SUCCESS)
        r = cu->EventCreate(&q->uploaded, FY_CU_EVENT_DISABLE_TIMING);
    if (r != FY_CUDA_SUCCESS) {
        q->uploaded = NULL;
        return r;
    }
    return cu->EventRecord(q->uploaded, q->dev->upload);
}

/* Many items go to device memory, once: allocated from the GPU's pool on
 * the upload stream and copied there, so the post path never touches them
 * again. */
static ferry_status fy_cu_upload(fy_cu_req *q, const fy_cu_item *items, size_t n)
{
    const fy_cuda *cu = q->be->cu;
    fy_cu_dev *d = q->dev;
    size_t bytes = n * sizeof(*items);
    if (!fy_cu_push(q->be, d))
        return fy_cu_req_err(q, FERRY_ERR_BACKEND, "GPU %d: no context", d->ordinal);
    fy_cu_result r = d->pool ? cu->MemAllocFromPoolAsync(&q->d_items, bytes, d->pool, d->upload)
                             : cu->MemAlloc(&q->d_items, bytes);
    q->d_pooled = d->pool != NULL && r == FY_CUDA_SUCCESS;
    if (r != FY_CUDA_SUCCESS)
        q->d_items = 0;
    else
        r = fy_cu_upload_async(q, items, bytes);
    fy_cu_pop(q->be);
    if (r != FY_CUDA_SUCCESS)
        return fy_cu_req_err(
            q, r == FY_CUDA_ERROR_OUT_OF_MEMORY ? FERRY_ERR_NO_MEMORY : FERRY_ERR_BACKEND,
            "uploading %zu items to GPU %d: %s", n, d->ordinal, fy_cuda_errname(cu, r));
    return FERRY_OK;
}

static ferry_status fy_cu_plan_items(fy_cu_req *q, const fy_cu_item *v, size_t n)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += v[i].len;
    uint64_t chunk = q->be->chunk ? q->be->chunk : fy_cu_auto_chunk(total, q->dev->sm_count);
    size_t k = fy_cu_split(v, n, chunk, NULL);
    q->nitems = k;
    q->grid = fy_cu_grid_for(k, q->dev->sm_count);
    if (k <= FY_CU_INLINE_MAX) {
        fy_cu_split(v, n, chunk, q->inl.items);
        q->inl.n = k;
        q->inl.group = q->grid.group;
        return FERRY_OK;
    }
    fy_cu_item *items = malloc(k * sizeof(*items));
    if (!items)
        return FERRY_ERR_NO_MEMORY;
    fy_cu_split(v, n, chunk, items);
    ferry_status rc = fy_cu_upload(q, items, k);
    free(items);
    return rc;
}

/* Kernel for the small copies, copy engines for the big ones; the kernel
 * is needed (and NOT_SUPPORTED in a build without it) only when there are
 * small copies. */
static ferry_status fy_cu_plan_kernel(fy_cu_req *q, fy_cu_item *v, size_t n)
{
    fy_cu_item *big = malloc(n * sizeof(*big));
    if (!big)
        return FERRY_ERR_NO_MEMORY;
    size_t nsmall, nbig;
    n = fy_cu_merge(v, n);
    fy_cu_partition(v, n, q->be->ce_threshold, v, &nsmall, big, &nbig);
    ferry_status rc = nsmall ? fy_cu_dev_kernel(q->be, q->dev) : FERRY_OK;
    if (rc != FERRY_OK)
        fy_cu_req_err(q, rc, "no copy kernel for GPU %d (see the log)", q->dev->ordinal);
    else if (nsmall)
        rc = fy_cu_plan_items(q, v, nsmall);
    if (rc == FERRY_OK && nbig)
        return fy_cu_plan_ce(q, big, nbig);
    free(big);
    return rc;
}

static ferry_status fy_cu_plan(fy_cu_req *q)
{
    const ferry_plugin_xfer *px = q->px;
    fy_cu_item *v = malloc(px->count * sizeof(*v));
    bool kernel_ok = true;
    if (!v)
        return FERRY_ERR_NO_MEMORY;
    ferry_status rc = fy_cu_translate(q, v, &kernel_ok);
    bool kernel = rc == FERRY_OK && kernel_ok && q->be->mode == FY_CU_MODE_KERNEL &&
                  px->local_type == FERRY_MEM_VRAM && px->remote_type == FERRY_MEM_VRAM;
    if (rc == FERRY_OK && kernel) {
        rc = fy_cu_plan_kernel(q, v, px->count);
        free(v);
        return rc;
    }
    if (rc == FERRY_OK)
        return fy_cu_plan_ce(q, v, px->count); /* q->ce owns v now */
    free(v);
    return rc;
}

/* ---- prep / release ---- */

void fy_cu_req_free(fy_cu_req *q)
{
    const fy_cuda *cu = q->be->cu;
    if (q->dev && (q->d_items || q->done || q->uploaded) && fy_cu_push(q->be, q->dev)) {
        if (q->d_items && q->d_pooled)
            cu->MemFreeAsync(q->d_items, q->dev->upload);
        else if (q->d_items)
            cu->MemFree(q->d_items); /* synchronous: the upload is done first */
        if (q->done)
            fy_cu_dev_event_give(q->be, q->dev, q->done);
        if (q->uploaded)
            cu->EventDestroy(q->uploaded);
        fy_cu_pop(q->be);
    }
    if (q->idx.p)
        fy_cu_pin_give(q->be, &q->idx);
    free(q->ce);
    free(q->ce_dst);
    free(q->ce_src);
    free(q->ce_len);
    free(q);
}

ferry_status fy_cu_req_event(fy_cu_req *q)
{
    fy_cu_result r = FY_CUDA_ERROR_INVALID_CONTEXT;
    if (fy_cu_push(q->be, q->dev)) {
        r = fy_cu_dev_event_take(q->be, q->dev, &q->done);
        fy_cu_pop(q->be);
    }
    if (r != FY_CUDA_SUCCESS) {
        q->done = NULL;
        return fy_cu_req_err(q, FERRY_ERR_BACKEND, "cuEventCreate: %s",
                             fy_cuda_errname(q->be->cu, r));
    }
    q->stream = fy_cu_dev_stream(q->dev, q->be->nstreams);
    return FERRY_OK;
}

static ferry_status fy_cu_prep_checks(fy_cu *be, const ferry_plugin_xfer *px)
{
    if (!px || !px->count || !px->local || !px->remote || !px->remote_agent ||
        (px->op != FERRY_OP_READ && px->op != FERRY_OP_WRITE))
        return FERRY_ERR_INVALID_PARAM;
    bool vram = px->local_type == FERRY_MEM_VRAM || px->remote_type == FERRY_MEM_VRAM;
    bool known = (px->local_type == FERRY_MEM_DRAM || px->local_type == FERRY_MEM_VRAM) &&
                 (px->remote_type == FERRY_MEM_DRAM || px->remote_type == FERRY_MEM_VRAM);
    if (!vram || !known) {
        fy_cu_log(be, FERRY_LOG_ERROR, "prep: CUDA moves VRAM <-> VRAM and DRAM <-> VRAM only");
        return FERRY_ERR_NOT_SUPPORTED;
    }
    return FERRY_OK;
}

ferry_status fy_cu_xfer_prep(void *priv, const ferry_plugin_xfer *px, void **handle)
{
    fy_cu *be = priv;
    ferry_status rc = fy_cu_prep_checks(be, px);
    if (rc != FERRY_OK)
        return rc;
    fy_cu_req *q = calloc(1, sizeof(*q));
    if (!q)
        return FERRY_ERR_NO_MEMORY;
    *q = (fy_cu_req){.be = be, .px = px, .remote = px->remote_agent, .state = FY_CU_IDLE};
    rc = fy_cu_pick_exec(q);
    if (rc == FERRY_OK)
        rc = fy_cu_plan(q);
    if (rc == FERRY_OK)
        rc = fy_cu_req_event(q);
    if (rc != FERRY_OK) {
        if (q->err[0])
            fy_cu_log(be, FERRY_LOG_ERROR, "prep: %s", q->err);
        fy_cu_req_free(q);
        return rc;
    }
    *handle = q;
    return FERRY_OK;
}

/* GPU work cannot be canceled: wait until nothing of it can still write. */
static void fy_cu_quiesce(fy_cu_req *q)
{
    if (q->gpu_busy && q->be->cu->EventSynchronize(q->done) != FY_CUDA_SUCCESS)
        q->be->cu->StreamSynchronize(q->stream);
    q->gpu_busy = false;
}

ferry_status fy_cu_xfer_release(void *priv, void *handle)
{
    fy_cu_req *q = handle;
    (void)priv;
    if (!q)
        return FERRY_OK;
    fy_cu_quiesce(q);
    fyp_list_remove(&q->be->inflight, &q->link);
    fy_cu_req_free(q);
    return FERRY_OK;
}

/* ---- post ---- */

static fy_cu_result fy_cu_launch(fy_cu_req *q)
{
    const fy_cuda *cu = q->be->cu;
    if (q->strided) {
        void *args[] = {&q->sargs};
        return cu->LaunchKernel(q->dev->k_strided, q->grid.blocks, 1, 1, FY_CU_BLOCK, 1, 1, 0,
                                q->stream, args, NULL);
    }
    if (q->nitems <= FY_CU_INLINE_MAX) {
        void *args[] = {&q->inl};
        return cu->LaunchKernel(q->dev->k_inline, q->grid.blocks, 1, 1, FY_CU_BLOCK, 1, 1, 0,
                                q->stream, args, NULL);
    }
    unsigned long long n = q->nitems;
    unsigned group = q->grid.group;
    void *args[] = {&q->d_items, &n, &group};
    return cu->LaunchKernel(q->dev->k_items, q->grid.blocks, 1, 1, FY_CU_BLOCK, 1, 1, 0, q->stream,
                            args, NULL);
}

static fy_cu_result fy_cu_batch(fy_cu_req *q)
{
    const fy_cuda *cu = q->be->cu;
    fy_cu_memcpy_attrs attrs = {.src_access_order = FY_CU_MEMCPY_SRC_ACCESS_ORDER_STREAM};
    size_t attr_idx = 0, fail_idx = 0;
    if (cu->MemcpyBatchAsync)
        return cu->MemcpyBatchAsync(q->ce_dst, q->ce_src, q->ce_len, q->nce, &attrs, &attr_idx, 1,
                                    q->stream);
    return cu->MemcpyBatchAsync12(q->ce_dst, q->ce_src, q->ce_len, q->nce, &attrs, &attr_idx, 1,
                                  &fail_idx, q->stream);
}

static fy_cu_result fy_cu_copy_engines(fy_cu_req *q)
{
    const fy_cuda *cu = q->be->cu;
    if (q->ce_dst && q->be->batch) {
        fy_cu_result r = fy_cu_batch(q);
        if (r == FY_CUDA_SUCCESS)
            return r;
        /* Refused before anything was queued: plain copies from now on. */
        q->be->batch = false;
        fy_cu_log(q->be, FERRY_LOG_WARN,
                  "cuMemcpyBatchAsync refused a batch (%s): one "
                  "cuMemcpyAsync per segment from now on",
                  fy_cuda_errname(cu, r));
    }
    for (size_t i = 0; i < q->nce; i++) {
        fy_cu_result r =
            cu->MemcpyAsync(q->ce[i].dst, q->ce[i].src, (size_t)q->ce[i].len, q->stream);
        if (r != FY_CUDA_SUCCESS)
            return r;
    }
    return FY_CUDA_SUCCESS;
}

/* The caller's stream (param "stream") first: the copy waits for its work. */
static fy_cu_result fy_cu_join(fy_cu_req *q)
{
    const fy_cuda *cu = q->be->cu;
    if (!q->be->user_stream)
        return FY_CUDA_SUCCESS;
    fy_cu_result r = cu->EventRecord(q->be->join, q->be->user_stream);
    return r == FY_CUDA_SUCCESS ? cu->StreamWaitEvent(q->stream, q->be->join, 0) : r;
}

/* The first post makes the request's stream wait for its items' upload. */
static fy_cu_result fy_cu_join_upload(fy_cu_req *q)
{
    if (!q->uploaded || q->upload_joined)
        return FY_CUDA_SUCCESS;
    fy_cu_result r = q->be->cu->StreamWaitEvent(q->stream, q->uploaded, 0);
    q->upload_joined = r == FY_CUDA_SUCCESS;
    return r;
}

static fy_cu_result fy_cu_issue(fy_cu_req *q)
{
    fy_cu_result r = fy_cu_join(q);
    if (r == FY_CUDA_SUCCESS)
        r = fy_cu_join_upload(q);
    if (r == FY_CUDA_SUCCESS && q->nitems)
        r = fy_cu_launch(q);
    if (r == FY_CUDA_SUCCESS && q->nce)
        r = fy_cu_copy_engines(q);
    if (r == FY_CUDA_SUCCESS)
        r = q->be->cu->EventRecord(q->done, q->stream);
    return r;
}

ferry_status fy_cu_xfer_post(void *priv, void *handle, const void *notif, size_t notif_len)
{
    fy_cu *be = priv;
    fy_cu_req *q = handle;
    if (!q || q->state == FY_CU_RUNNING)
        return q ? FERRY_ERR_REPOST_ACTIVE : FERRY_ERR_INVALID_PARAM;
    q->err[0] = '\0';
    if (!fy_cu_remote_alive(q->remote))
        return fy_cu_req_err(q, FERRY_ERR_REMOTE_DISCONNECT, "agent %s is gone", q->remote->name);
    fy_cu_quiesce(q); /* a failed earlier post may have left work running */
    fy_cu_result r = FY_CUDA_ERROR_INVALID_CONTEXT;
    if (fy_cu_push(be, q->dev)) {
        r = fy_cu_issue(q);
        fy_cu_pop(be);
    }
    if (r != FY_CUDA_SUCCESS) {
        /* Some of it may be queued: release and a repost wait for the stream. */
        q->gpu_busy = true;
        fy_cu_log(be, FERRY_LOG_ERROR, "post on GPU %d: %s", q->dev->ordinal,
                  fy_cuda_errname(be->cu, r));
        return fy_cu_req_err(q, FERRY_ERR_BACKEND, "queueing the copy on GPU %d: %s",
                             q->dev->ordinal, fy_cuda_errname(be->cu, r));
    }
    q->notif = notif;
    q->notif_len = notif_len;
    q->notif_due = notif != NULL;
    q->gpu_busy = true;
    q->state = FY_CU_RUNNING;
    fyp_list_push(&q->be->inflight, &q->link);
    return FERRY_IN_PROGRESS;
}

/* ---- completion ---- */

static ferry_status fy_cu_end(fy_cu_req *q, ferry_status rc)
{
    q->state = rc == FERRY_OK ? FY_CU_DONE : FY_CU_FAILED;
    q->result = rc;
    fyp_list_remove(&q->be->inflight, &q->link);
    return rc;
}

/* Moves a running request on as far as it can without blocking: the GPU
 * work done, then the notification sent, then done. */
static ferry_status fy_cu_advance(fy_cu_req *q)
{
    if (q->gpu_busy) {
        fy_cu_result r = q->be->cu->EventQuery(q->done);
        if (r == FY_CUDA_ERROR_NOT_READY) {
            if (fy_cu_remote_alive(q->remote))
                return FERRY_IN_PROGRESS;
            return fy_cu_end(q, fy_cu_req_err(q, FERRY_ERR_REMOTE_DISCONNECT, "agent %s is gone",
                                              q->remote->name));
        }
        if (r != FY_CUDA_SUCCESS)
            return fy_cu_end(q, fy_cu_req_err(q, FERRY_ERR_BACKEND, "the copy failed on GPU %d: %s",
                                              q->dev->ordinal, fy_cuda_errname(q->be->cu, r)));
        q->gpu_busy = false;
    }
    if (q->notif_due) {
        ferry_status rc = fy_cu_notify(q->be, q->remote, q->notif, q->notif_len, false);
        if (rc == FERRY_IN_PROGRESS)
            return rc;
        if (rc != FERRY_OK)
            return fy_cu_end(q, fy_cu_req_err(q, rc, "notifying %s failed", q->remote->name));
        q->notif_due = false;
    }
    return fy_cu_end(q, FERRY_OK);
}

ferry_status fy_cu_xfer_check(void *priv, void *handle)
{
    fy_cu_req *q = handle;
    (void)priv;
    switch (q->state) {
    case FY_CU_RUNNING:
        return fy_cu_advance(q);
    case FY_CU_DONE:
        return FERRY_OK;
    case FY_CU_FAILED:
        return q->result;
    default:
        return FERRY_ERR_NOT_POSTED;
    }
}

static bool fy_cu_advanced(fyp_link *l)
{
    return fy_cu_advance(FYP_CONTAINER(l, fy_cu_req, link)) != FERRY_IN_PROGRESS;
}

size_t fy_cu_progress_reqs(fy_cu *be)
{
    return fyp_list_sweep(be->inflight, fy_cu_advanced);
}

const char *fy_cu_xfer_error(void *priv, void *handle)
{
    (void)priv;
    return handle ? ((fy_cu_req *)handle)->err : "";
}
