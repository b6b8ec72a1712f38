/* SPDX-License-Identifier: Apache-2.0 */
/* The slice of the CUDA driver API that ferry uses, declared here so that
 * the build needs no CUDA headers: the driver (libcuda.so.1) is opened at run
 * time, and one build serves hosts with and without GPUs.
 *
 * Every name carries the fy_cu / FY_CU prefix so that this header and the
 * real cuda.h can be included together (tests/gpu/test_cuda_abi.c does, to
 * check each value and layout below against the toolkit's). Values are the
 * driver's ABI: they never change once NVIDIA ships them. */
#ifndef FY_GPU_CUDA_API_H
#define FY_GPU_CUDA_API_H

#include <stddef.h>
#include <stdint.h>

typedef int fy_cu_result;
typedef int fy_cu_device;
typedef unsigned long long fy_cu_deviceptr;
typedef struct fy_cu_ctx_st *fy_cu_context;
typedef struct fy_cu_stream_st *fy_cu_stream;
typedef struct fy_cu_event_st *fy_cu_event;
typedef struct fy_cu_module_st *fy_cu_module;
typedef struct fy_cu_func_st *fy_cu_function;
typedef struct fy_cu_mempool_st *fy_cu_mempool;

#define FY_CU_IPC_HANDLE_SIZE 64
typedef struct fy_cu_ipc_handle {
    char reserved[FY_CU_IPC_HANDLE_SIZE];
} fy_cu_ipc_handle;

typedef struct fy_cu_uuid {
    char bytes[16];
} fy_cu_uuid;

/* CUmemLocation */
typedef struct fy_cu_mem_location {
    int type; /* FY_CU_MEM_LOCATION_TYPE_* */
    int id;
} fy_cu_mem_location;

/* CUmemPoolProps */
typedef struct fy_cu_mempool_props {
    int alloc_type;   /* FY_CU_MEM_ALLOCATION_TYPE_PINNED */
    int handle_types; /* FY_CU_MEM_HANDLE_TYPE_NONE */
    fy_cu_mem_location location;
    void *win32_security_attributes;
    size_t max_size;
    unsigned short usage;
    unsigned char reserved[54];
} fy_cu_mempool_props;

/* CUmemcpyAttributes (cuMemcpyBatchAsync) */
typedef struct fy_cu_memcpy_attrs {
    int src_access_order; /* FY_CU_MEMCPY_SRC_ACCESS_ORDER_* */
    fy_cu_mem_location src_loc_hint;
    fy_cu_mem_location dst_loc_hint;
    unsigned int flags;
} fy_cu_memcpy_attrs;

/* ---- CUresult ---- */
#define FY_CUDA_SUCCESS                              0
#define FY_CUDA_ERROR_INVALID_VALUE                  1
#define FY_CUDA_ERROR_OUT_OF_MEMORY                  2
#define FY_CUDA_ERROR_NOT_INITIALIZED                3
#define FY_CUDA_ERROR_DEINITIALIZED                  4
#define FY_CUDA_ERROR_STUB_LIBRARY                   34
#define FY_CUDA_ERROR_NO_DEVICE                      100
#define FY_CUDA_ERROR_INVALID_DEVICE                 101
#define FY_CUDA_ERROR_INVALID_CONTEXT                201
#define FY_CUDA_ERROR_NO_BINARY_FOR_GPU              209
#define FY_CUDA_ERROR_PEER_ACCESS_UNSUPPORTED        217
#define FY_CUDA_ERROR_INVALID_HANDLE                 400
#define FY_CUDA_ERROR_NOT_FOUND                      500
#define FY_CUDA_ERROR_NOT_READY                      600
#define FY_CUDA_ERROR_ILLEGAL_ADDRESS                700
#define FY_CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED    704
#define FY_CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED 712
#define FY_CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED     713
#define FY_CUDA_ERROR_NOT_SUPPORTED                  801

/* ---- CUpointer_attribute ---- */
#define FY_CU_POINTER_ATTRIBUTE_CONTEXT        1
#define FY_CU_POINTER_ATTRIBUTE_MEMORY_TYPE    2
#define FY_CU_POINTER_ATTRIBUTE_IS_MANAGED     8
#define FY_CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL 9

/* ---- CUmemorytype ---- */
#define FY_CU_MEMORYTYPE_HOST    1
#define FY_CU_MEMORYTYPE_DEVICE  2
#define FY_CU_MEMORYTYPE_UNIFIED 4

/* ---- CUdevice_attribute ---- */
#define FY_CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT     16
#define FY_CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING       41
#define FY_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR 75
#define FY_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR 76
#define FY_CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED   115

/* ---- flags ---- */
#define FY_CU_STREAM_NON_BLOCKING             0x1
#define FY_CU_EVENT_DEFAULT                   0x0
#define FY_CU_EVENT_DISABLE_TIMING            0x2
#define FY_CU_MEMHOSTREGISTER_PORTABLE        0x01
#define FY_CU_MEMHOSTREGISTER_DEVICEMAP       0x02
#define FY_CU_MEMHOSTALLOC_PORTABLE           0x01
#define FY_CU_MEMHOSTALLOC_DEVICEMAP          0x02
#define FY_CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS 0x1
#define FY_CU_MEM_ALLOCATION_TYPE_PINNED      0x1
#define FY_CU_MEM_HANDLE_TYPE_NONE            0x0
#define FY_CU_MEM_LOCATION_TYPE_DEVICE        0x1
#define FY_CU_MEMPOOL_ATTR_RELEASE_THRESHOLD  4
#define FY_CU_MEMCPY_SRC_ACCESS_ORDER_STREAM  0x1
#define FY_CU_MEM_ATTACH_GLOBAL               0x1

/* The entry points, opened once per process (cuda_loader.c). Optional ones
 * (marked) are NULL when the driver is too old to have them. */
typedef struct fy_cuda {
    int driver_version; /* e.g. 13000 */
    int device_count;   /* visible to this process (CUDA_VISIBLE_DEVICES) */

    fy_cu_result (*GetErrorName)(fy_cu_result, const char **);
    fy_cu_result (*DeviceGetCount)(int *);
    fy_cu_result (*DeviceGet)(fy_cu_device *, int);
    fy_cu_result (*DeviceGetUuid)(fy_cu_uuid *, fy_cu_device);
    fy_cu_result (*DeviceGetAttribute)(int *, int, fy_cu_device);
    fy_cu_result (*DeviceGetPCIBusId)(char *, int, fy_cu_device);
    fy_cu_result (*DeviceCanAccessPeer)(int *, fy_cu_device, fy_cu_device);
    fy_cu_result (*DevicePrimaryCtxRetain)(fy_cu_context *, fy_cu_device);
    fy_cu_result (*DevicePrimaryCtxRelease)(fy_cu_device);
    fy_cu_result (*DevicePrimaryCtxGetState)(fy_cu_device, unsigned *, int *);
    fy_cu_result (*CtxPushCurrent)(fy_cu_context);
    fy_cu_result (*CtxPopCurrent)(fy_cu_context *);
    fy_cu_result (*CtxEnablePeerAccess)(fy_cu_context, unsigned);
    fy_cu_result (*PointerGetAttributes)(unsigned, int *, void **, fy_cu_deviceptr);
    fy_cu_result (*MemGetAddressRange)(fy_cu_deviceptr *, size_t *, fy_cu_deviceptr);
    fy_cu_result (*MemAlloc)(fy_cu_deviceptr *, size_t);
    fy_cu_result (*MemFree)(fy_cu_deviceptr);
    fy_cu_result (*MemAllocManaged)(fy_cu_deviceptr *, size_t, unsigned);
    fy_cu_result (*MemHostRegister)(void *, size_t, unsigned);
    fy_cu_result (*MemHostUnregister)(void *);
    fy_cu_result (*MemHostAlloc)(void **, size_t, unsigned);
    fy_cu_result (*MemFreeHost)(void *);
    fy_cu_result (*Memcpy)(fy_cu_deviceptr, fy_cu_deviceptr, size_t);
    fy_cu_result (*MemcpyAsync)(fy_cu_deviceptr, fy_cu_deviceptr, size_t, fy_cu_stream);
    fy_cu_result (*MemcpyHtoDAsync)(fy_cu_deviceptr, const void *, size_t, fy_cu_stream);
    fy_cu_result (*MemsetD8)(fy_cu_deviceptr, unsigned char, size_t);
    /* optional: CUDA 13 form (no failIdx) or CUDA 12.8 form (failIdx) */
    fy_cu_result (*MemcpyBatchAsync)(fy_cu_deviceptr *, fy_cu_deviceptr *, size_t *, size_t,
                                     fy_cu_memcpy_attrs *, size_t *, size_t, fy_cu_stream);
    fy_cu_result (*MemcpyBatchAsync12)(fy_cu_deviceptr *, fy_cu_deviceptr *, size_t *, size_t,
                                       fy_cu_memcpy_attrs *, size_t *, size_t, size_t *,
                                       fy_cu_stream);
    /* optional: stream-ordered allocation (CUDA 11.2) */
    fy_cu_result (*MemPoolCreate)(fy_cu_mempool *, const fy_cu_mempool_props *);
    fy_cu_result (*MemPoolDestroy)(fy_cu_mempool);
    fy_cu_result (*MemPoolSetAttribute)(fy_cu_mempool, int, void *);
    fy_cu_result (*MemAllocFromPoolAsync)(fy_cu_deviceptr *, size_t, fy_cu_mempool, fy_cu_stream);
    fy_cu_result (*MemFreeAsync)(fy_cu_deviceptr, fy_cu_stream);
    fy_cu_result (*StreamCreate)(fy_cu_stream *, unsigned);
    fy_cu_result (*StreamDestroy)(fy_cu_stream);
    fy_cu_result (*StreamSynchronize)(fy_cu_stream);
    fy_cu_result (*StreamWaitEvent)(fy_cu_stream, fy_cu_event, unsigned);
    fy_cu_result (*StreamGetCtx)(fy_cu_stream, fy_cu_context *);
    fy_cu_result (*EventCreate)(fy_cu_event *, unsigned);
    fy_cu_result (*EventDestroy)(fy_cu_event);
    fy_cu_result (*EventRecord)(fy_cu_event, fy_cu_stream);
    fy_cu_result (*EventQuery)(fy_cu_event);
    fy_cu_result (*EventSynchronize)(fy_cu_event);
    fy_cu_result (*EventElapsedTime)(float *, fy_cu_event, fy_cu_event);
    fy_cu_result (*IpcGetMemHandle)(fy_cu_ipc_handle *, fy_cu_deviceptr);
    fy_cu_result (*IpcOpenMemHandle)(fy_cu_deviceptr *, fy_cu_ipc_handle, unsigned);
    fy_cu_result (*IpcCloseMemHandle)(fy_cu_deviceptr);
    fy_cu_result (*ModuleLoadData)(fy_cu_module *, const void *);
    fy_cu_result (*ModuleUnload)(fy_cu_module);
    fy_cu_result (*ModuleGetFunction)(fy_cu_function *, fy_cu_module, const char *);
    fy_cu_result (*LaunchKernel)(fy_cu_function, unsigned, unsigned, unsigned, unsigned, unsigned,
                                 unsigned, unsigned, fy_cu_stream, void **, void **);
} fy_cuda;

#endif
