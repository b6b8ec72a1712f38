/* SPDX-License-Identifier: Apache-2.0 */
/* Opens the CUDA driver at run time and fills the entry-point table.
 *
 * Symbols are looked up by their versioned names (cuMemAlloc_v2, ...): the
 * names cuda.h maps the API to, so each pointer has the signature declared in
 * cuda_api.h whatever the driver's version. cuGetProcAddress would do the
 * same with more ceremony and is not needed for the plain entry points used
 * here. A required symbol missing means a driver too old for ferry: then the
 * whole GPU path reports NOT_SUPPORTED, with the symbol named. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/gpu.h"

typedef struct fy_cu_sym {
    const char *name; /* preferred name */
    const char *alt;  /* fallback name (older drivers), or NULL */
    size_t offset;    /* of the pointer in fy_cuda */
    bool required;
} fy_cu_sym;

#define SYM(field, name, alt)                                                                      \
    {                                                                                              \
        name, alt, offsetof(fy_cuda, field), true                                                  \
    }
#define OPT(field, name, alt)                                                                      \
    {                                                                                              \
        name, alt, offsetof(fy_cuda, field), false                                                 \
    }

static const fy_cu_sym fy_cu_syms[] = {
    SYM(GetErrorName, "cuGetErrorName", NULL),
    SYM(DeviceGetCount, "cuDeviceGetCount", NULL),
    SYM(DeviceGet, "cuDeviceGet", NULL),
    SYM(DeviceGetUuid, "cuDeviceGetUuid_v2", "cuDeviceGetUuid"),
    SYM(DeviceGetAttribute, "cuDeviceGetAttribute", NULL),
    SYM(DeviceGetPCIBusId, "cuDeviceGetPCIBusId", NULL),
    SYM(DeviceCanAccessPeer, "cuDeviceCanAccessPeer", NULL),
    SYM(DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", NULL),
    SYM(DevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease"),
    SYM(DevicePrimaryCtxGetState, "cuDevicePrimaryCtxGetState", NULL),
    SYM(CtxPushCurrent, "cuCtxPushCurrent_v2", NULL),
    SYM(CtxPopCurrent, "cuCtxPopCurrent_v2", NULL),
    SYM(CtxEnablePeerAccess, "cuCtxEnablePeerAccess", NULL),
    SYM(PointerGetAttributes, "cuPointerGetAttributes", NULL),
    SYM(MemGetAddressRange, "cuMemGetAddressRange_v2", NULL),
    SYM(MemAlloc, "cuMemAlloc_v2", NULL),
    SYM(MemFree, "cuMemFree_v2", NULL),
    SYM(MemAllocManaged, "cuMemAllocManaged", NULL),
    SYM(MemHostRegister, "cuMemHostRegister_v2", NULL),
    SYM(MemHostUnregister, "cuMemHostUnregister", NULL),
    SYM(MemHostAlloc, "cuMemHostAlloc", NULL),
    SYM(MemFreeHost, "cuMemFreeHost", NULL),
    SYM(Memcpy, "cuMemcpy", NULL),
    SYM(MemcpyAsync, "cuMemcpyAsync", NULL),
    SYM(MemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2", NULL),
    SYM(MemsetD8, "cuMemsetD8_v2", NULL),
    OPT(MemcpyBatchAsync, "cuMemcpyBatchAsync_v2", NULL),
    OPT(MemPoolCreate, "cuMemPoolCreate", NULL),
    OPT(MemPoolDestroy, "cuMemPoolDestroy", NULL),
    OPT(MemPoolSetAttribute, "cuMemPoolSetAttribute", NULL),
    OPT(MemAllocFromPoolAsync, "cuMemAllocFromPoolAsync", NULL),
    OPT(MemFreeAsync, "cuMemFreeAsync", NULL),
    SYM(StreamCreate, "cuStreamCreate", NULL),
    SYM(StreamDestroy, "cuStreamDestroy_v2", NULL),
    SYM(StreamSynchronize, "cuStreamSynchronize", NULL),
    SYM(StreamWaitEvent, "cuStreamWaitEvent", NULL),
    SYM(StreamGetCtx, "cuStreamGetCtx", NULL),
    SYM(EventCreate, "cuEventCreate", NULL),
    SYM(EventDestroy, "cuEventDestroy_v2", NULL),
    SYM(EventRecord, "cuEventRecord", NULL),
    SYM(EventQuery, "cuEventQuery", NULL),
    SYM(EventSynchronize, "cuEventSynchronize", NULL),
    SYM(EventElapsedTime, "cuEventElapsedTime_v2", "cuEventElapsedTime"),
    SYM(IpcGetMemHandle, "cuIpcGetMemHandle", NULL),
    SYM(IpcOpenMemHandle, "cuIpcOpenMemHandle_v2", "cuIpcOpenMemHandle"),
    SYM(IpcCloseMemHandle, "cuIpcCloseMemHandle", NULL),
    SYM(ModuleLoadData, "cuModuleLoadData", NULL),
    SYM(ModuleUnload, "cuModuleUnload", NULL),
    SYM(ModuleGetFunction, "cuModuleGetFunction", NULL),
    SYM(LaunchKernel, "cuLaunchKernel", NULL),
};

static struct {
    pthread_once_t once;
    ferry_status status;
    fy_gpu_why why;
    fy_cuda cu;
} fy_cu_state = {.once = PTHREAD_ONCE_INIT};

static void fy_cu_set_why(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fy_cu_set_why(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fy_cu_state.why.msg, sizeof(fy_cu_state.why.msg), fmt, ap);
    va_end(ap);
}

/* dlsym into a function-pointer slot (memcpy: ISO C has no cast from void *
 * to a function pointer). */
static bool fy_cu_bind(void *lib, const fy_cu_sym *s, fy_cuda *cu)
{
    void *p = dlsym(lib, s->name);
    if (!p && s->alt)
        p = dlsym(lib, s->alt);
    if (p)
        memcpy((char *)cu + s->offset, &p, sizeof(p));
    return p != NULL || !s->required;
}

static bool fy_cu_bind_all(void *lib, fy_cuda *cu)
{
    for (size_t i = 0; i < sizeof(fy_cu_syms) / sizeof(fy_cu_syms[0]); i++) {
        if (!fy_cu_bind(lib, &fy_cu_syms[i], cu)) {
            fy_cu_set_why("the CUDA driver has no %s: too old for ferry", fy_cu_syms[i].name);
            return false;
        }
    }
    /* The CUDA 12.8 batch copy has the same name without _v2 and one more
     * argument; only one of the two forms is ever used. */
    if (!cu->MemcpyBatchAsync) {
        void *p = dlsym(lib, "cuMemcpyBatchAsync");
        memcpy(&cu->MemcpyBatchAsync12, &p, sizeof(p));
    }
    return true;
}

/* cuInit and the device count; no GPU counts as no usable driver. */
static bool fy_cu_start(void *lib, fy_cuda *cu)
{
    fy_cu_result (*init)(unsigned);
    fy_cu_result (*version)(int *);
    void *p = dlsym(lib, "cuInit"), *q = dlsym(lib, "cuDriverGetVersion");
    memcpy(&init, &p, sizeof(p));
    memcpy(&version, &q, sizeof(q));
    if (!p || !q) {
        fy_cu_set_why("the library has no cuInit: not a CUDA driver");
        return false;
    }
    fy_cu_result r = init(0);
    if (r != FY_CUDA_SUCCESS) {
        fy_cu_set_why("cuInit failed: %s%s", fy_cuda_errname(cu, r),
                      r == FY_CUDA_ERROR_STUB_LIBRARY ? " (the toolkit's stub, not a driver)" : "");
        return false;
    }
    if (version(&cu->driver_version) != FY_CUDA_SUCCESS ||
        cu->DeviceGetCount(&cu->device_count) != FY_CUDA_SUCCESS || cu->device_count <= 0) {
        fy_cu_set_why("the CUDA driver sees no GPU");
        return false;
    }
    return true;
}

static void fy_cu_open(void)
{
    const char *path = getenv("FERRY_CUDA_LIB");
    if (!path || !*path)
        path = FY_CUDA_LIB_DEFAULT;
    fy_cu_state.status = FERRY_ERR_NOT_SUPPORTED;
    /* RTLD_LOCAL: nothing of the driver leaks into the global namespace;
     * the application's own CUDA runtime opens the same library anyway. */
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *err = dlerror();
        fy_cu_set_why("no CUDA driver: %s", err ? err : path);
        return;
    }
    fy_cuda cu = {0};
    if (!fy_cu_bind_all(lib, &cu) || !fy_cu_start(lib, &cu)) {
        dlclose(lib);
        return;
    }
    fy_cu_state.cu = cu; /* the library stays open for the life of the process */
    fy_cu_state.status = FERRY_OK;
}

ferry_status fy_cuda_get(const fy_cuda **out, fy_gpu_why *why)
{
    pthread_once(&fy_cu_state.once, fy_cu_open);
    if (fy_cu_state.status != FERRY_OK) {
        if (why)
            *why = fy_cu_state.why;
        return fy_cu_state.status;
    }
    *out = &fy_cu_state.cu;
    return FERRY_OK;
}

const char *fy_cuda_errname(const fy_cuda *cu, fy_cu_result r)
{
    static __thread char buf[32];
    const char *s = NULL;
    if (cu && cu->GetErrorName(r, &s) == FY_CUDA_SUCCESS && s)
        return s;
    snprintf(buf, sizeof(buf), "CUresult %d", r);
    return buf;
}
