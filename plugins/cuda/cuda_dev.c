/* SPDX-License-Identifier: Apache-2.0 */
/* Per-GPU state of the CUDA plugin: the primary context (shared with the
 * CUDA runtime, PyTorch and CuPy, which all use it), streams, the pool item
 * arrays are allocated from, the copy kernels, peer access. Each GPU is set
 * up on first use only. */
#include <string.h>

#include "cuda_internal.h"

#ifdef FY_CUDA_WITH_FATBIN
#include "fy_copy_fatbin.h"
#endif

/* Every driver call runs with the GPU's context pushed and popped again, so
 * the caller's current context (its CUDA runtime device) is left as it was. */
bool fy_cu_push(fy_cu *be, fy_cu_dev *d)
{
    return be->cu->CtxPushCurrent(d->ctx) == FY_CUDA_SUCCESS;
}

void fy_cu_pop(fy_cu *be)
{
    fy_cu_context ignored;
    be->cu->CtxPopCurrent(&ignored);
}

int fy_cu_default_ordinal(const fy_cu *be)
{
    for (int i = 0; i < be->ndev; i++)
        if (be->devs[i].ready)
            return i;
    return 0;
}

fy_cu_stream fy_cu_dev_stream(fy_cu_dev *d, unsigned n)
{
    return d->streams[d->next_stream++ % n];
}

/* Completion events are reused: creating and destroying one per request
 * costs microseconds, which a 16 MiB KV request notices. Called with the
 * GPU's context current. An event given back has completed (release waits
 * for the request's GPU work). */
fy_cu_result fy_cu_dev_event_take(fy_cu *be, fy_cu_dev *d, fy_cu_event *out)
{
    if (d->nevents) {
        *out = d->events[--d->nevents];
        return FY_CUDA_SUCCESS;
    }
    return be->cu->EventCreate(out, FY_CU_EVENT_DISABLE_TIMING);
}

void fy_cu_dev_event_give(fy_cu *be, fy_cu_dev *d, fy_cu_event ev)
{
    if (d->nevents < FY_CU_EVENT_CACHE)
        d->events[d->nevents++] = ev;
    else
        be->cu->EventDestroy(ev);
}

/* A pool for item arrays that keeps its memory (release threshold: all), so
 * allocating at prep and freeing at release cost no device synchronisation,
 * unlike cuMemFree. Without pools the plugin falls back to cuMemAlloc. */
static void fy_cu_dev_pool(fy_cu *be, fy_cu_dev *d)
{
    const fy_cuda *cu = be->cu;
    int supported = 0;
    if (!cu->MemPoolCreate || !cu->MemAllocFromPoolAsync || !cu->MemFreeAsync ||
        cu->DeviceGetAttribute(&supported, FY_CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED, d->dev) !=
            FY_CUDA_SUCCESS ||
        !supported)
        return;
    fy_cu_mempool_props props = {.alloc_type = FY_CU_MEM_ALLOCATION_TYPE_PINNED,
                                 .handle_types = FY_CU_MEM_HANDLE_TYPE_NONE,
                                 .location = {FY_CU_MEM_LOCATION_TYPE_DEVICE, d->ordinal}};
    uint64_t keep = UINT64_MAX;
    if (cu->MemPoolCreate(&d->pool, &props) != FY_CUDA_SUCCESS) {
        d->pool = NULL;
        return;
    }
    cu->MemPoolSetAttribute(d->pool, FY_CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep);
}

static fy_cu_result fy_cu_dev_streams(fy_cu *be, fy_cu_dev *d)
{
    const fy_cuda *cu = be->cu;
    fy_cu_result r = cu->StreamCreate(&d->upload, FY_CU_STREAM_NON_BLOCKING);
    for (unsigned i = 0; i < be->nstreams && r == FY_CUDA_SUCCESS; i++)
        r = cu->StreamCreate(&d->streams[i], FY_CU_STREAM_NON_BLOCKING);
    return r;
}

static fy_cu_result fy_cu_dev_setup(fy_cu *be, fy_cu_dev *d)
{
    const fy_cuda *cu = be->cu;
    fy_cu_result r =
        cu->DeviceGetAttribute(&d->sm_count, FY_CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, d->dev);
    if (r == FY_CUDA_SUCCESS && fy_gpu_uuid(cu, d->ordinal, d->uuid) != FERRY_OK)
        r = FY_CUDA_ERROR_INVALID_DEVICE;
    if (r == FY_CUDA_SUCCESS)
        r = fy_cu_dev_streams(be, d);
    if (r == FY_CUDA_SUCCESS)
        fy_cu_dev_pool(be, d);
    return r;
}

ferry_status fy_cu_dev_ready(fy_cu *be, int ordinal, fy_cu_dev **out)
{
    if (ordinal < 0 || ordinal >= be->ndev) {
        fy_cu_log(be, FERRY_LOG_ERROR, "no GPU %d: this process sees %d", ordinal, be->ndev);
        return FERRY_ERR_INVALID_PARAM;
    }
    fy_cu_dev *d = &be->devs[ordinal];
    if (d->ready) {
        *out = d;
        return FERRY_OK;
    }
    const fy_cuda *cu = be->cu;
    d->ordinal = ordinal;
    fy_cu_result r = cu->DeviceGet(&d->dev, ordinal);
    if (r == FY_CUDA_SUCCESS)
        r = cu->DevicePrimaryCtxRetain(&d->ctx, d->dev);
    if (r != FY_CUDA_SUCCESS) {
        fy_cu_log(be, FERRY_LOG_ERROR, "GPU %d: no context: %s", ordinal, fy_cuda_errname(cu, r));
        return FERRY_ERR_BACKEND;
    }
    d->ready = true; /* from here fy_cu_dev_fini undoes what was made */
    if (!fy_cu_push(be, d))
        r = FY_CUDA_ERROR_INVALID_CONTEXT;
    else {
        r = fy_cu_dev_setup(be, d);
        fy_cu_pop(be);
    }
    if (r != FY_CUDA_SUCCESS) {
        fy_cu_log(be, FERRY_LOG_ERROR, "GPU %d: setup failed: %s", ordinal, fy_cuda_errname(cu, r));
        fy_cu_dev_fini(be, d);
        return FERRY_ERR_BACKEND;
    }
    fy_cu_log(be, FERRY_LOG_DEBUG, "GPU %d ready: %d multiprocessors, %s item pool", ordinal,
              d->sm_count, d->pool ? "stream-ordered" : "no");
    *out = d;
    return FERRY_OK;
}

/* ---- the copy kernels ---- */

#ifdef FY_CUDA_WITH_FATBIN
static ferry_status fy_cu_dev_load(fy_cu *be, fy_cu_dev *d)
{
    const fy_cuda *cu = be->cu;
    if (!fy_cu_push(be, d))
        return FERRY_ERR_BACKEND;
    fy_cu_result r = cu->ModuleLoadData(&d->module, fy_cuda_fatbin);
    if (r == FY_CUDA_SUCCESS)
        r = cu->ModuleGetFunction(&d->k_items, d->module, FY_CU_KERNEL_ITEMS);
    if (r == FY_CUDA_SUCCESS)
        r = cu->ModuleGetFunction(&d->k_inline, d->module, FY_CU_KERNEL_INLINE);
    if (r == FY_CUDA_SUCCESS)
        r = cu->ModuleGetFunction(&d->k_strided, d->module, FY_CU_KERNEL_STRIDED);
    if (r != FY_CUDA_SUCCESS && d->module) {
        cu->ModuleUnload(d->module);
        d->module = NULL;
    }
    fy_cu_pop(be);
    if (r != FY_CUDA_SUCCESS) {
        /* e.g. a GPU older than sm_80 with a driver too old for the PTX */
        fy_cu_log(be, FERRY_LOG_ERROR,
                  "GPU %d: loading the copy kernels failed (%s): use mode=copy_engine", d->ordinal,
                  fy_cuda_errname(cu, r));
        return FERRY_ERR_NOT_SUPPORTED;
    }
    return FERRY_OK;
}
#else
static ferry_status fy_cu_dev_load(fy_cu *be, fy_cu_dev *d)
{
    fy_cu_log(be, FERRY_LOG_ERROR,
              "GPU %d: this build has no copy kernels (nvcc was not found when ferry was built): "
              "create the backend with mode=copy_engine",
              d->ordinal);
    return FERRY_ERR_NOT_SUPPORTED;
}
#endif

ferry_status fy_cu_dev_kernel(fy_cu *be, fy_cu_dev *d)
{
    if (!d->kernel_tried) {
        d->kernel_status = fy_cu_dev_load(be, d);
        d->kernel_tried = true;
    }
    return d->kernel_status;
}

/* ---- peer access ---- */

static bool fy_cu_dev_enable_peer(fy_cu *be, fy_cu_dev *d, fy_cu_dev *o)
{
    const fy_cuda *cu = be->cu;
    int can = 0;
    if (cu->DeviceCanAccessPeer(&can, d->dev, o->dev) != FY_CUDA_SUCCESS || !can)
        return false;
    if (!fy_cu_push(be, d))
        return false;
    fy_cu_result r = cu->CtxEnablePeerAccess(o->ctx, 0);
    fy_cu_pop(be);
    return r == FY_CUDA_SUCCESS || r == FY_CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED;
}

/* Lets kernels on d reach memory of GPU `other` (this process's ordinal).
 * NOT_SUPPORTED when the GPUs cannot be peers: copy engines then stage. */
ferry_status fy_cu_dev_peer(fy_cu *be, fy_cu_dev *d, int other)
{
    if (other == d->ordinal)
        return FERRY_OK;
    if (other < 0 || other >= be->ndev || other >= 64)
        return FERRY_ERR_NOT_SUPPORTED;
    uint64_t bit = 1ull << other;
    if (!(d->peer_tried & bit)) {
        fy_cu_dev *o;
        d->peer_tried |= bit;
        if (fy_cu_dev_ready(be, other, &o) == FERRY_OK && fy_cu_dev_enable_peer(be, d, o))
            d->peer_ok |= bit;
        else
            fy_cu_log(be, FERRY_LOG_INFO, "GPUs %d and %d are not peers: copy engines stage",
                      d->ordinal, other);
    }
    return d->peer_ok & bit ? FERRY_OK : FERRY_ERR_NOT_SUPPORTED;
}

void fy_cu_dev_fini(fy_cu *be, fy_cu_dev *d)
{
    const fy_cuda *cu = be->cu;
    if (!d->ready)
        return;
    if (fy_cu_push(be, d)) {
        for (unsigned i = 0; i < FY_CU_MAX_STREAMS; i++)
            if (d->streams[i])
                cu->StreamDestroy(d->streams[i]);
        if (d->upload)
            cu->StreamDestroy(d->upload);
        if (d->pool)
            cu->MemPoolDestroy(d->pool);
        if (d->module)
            cu->ModuleUnload(d->module);
        while (d->nevents)
            cu->EventDestroy(d->events[--d->nevents]);
        fy_cu_pop(be);
    }
    cu->DevicePrimaryCtxRelease(d->dev);
    memset(d, 0, sizeof(*d));
}
