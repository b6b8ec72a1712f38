/* SPDX-License-Identifier: Apache-2.0 */
/* Run-time discovery of CUDA: the driver is dlopen()ed on first use, never
 * linked, so a build without GPUs or CUDA headers works and one build serves
 * hosts with and without GPUs.
 *
 * These files build into libferry (registration checks of VRAM) and into the
 * CUDA plugin (its own copy: a plugin sees no hidden symbol of libferry).
 * They never log: they return a status and write the reason into a caller's
 * buffer, and the caller logs it once under its own name. */
#ifndef FY_GPU_GPU_H
#define FY_GPU_GPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/status.h"
#include "gpu/cuda_api.h"

/* Where the driver is looked for; FERRY_CUDA_LIB overrides it (a test points
 * it at a mock driver, a site at a driver outside the loader's path). */
#define FY_CUDA_LIB_DEFAULT "libcuda.so.1"

/* A reason, for logs. */
typedef struct fy_gpu_why {
    char msg[256];
} fy_gpu_why;

/* The process-wide driver table: opened and initialised (cuInit) once.
 * NOT_SUPPORTED when there is no usable driver (library absent, a stub
 * library, a symbol missing, cuInit failing, no GPU visible); the same answer
 * every later call. */
ferry_status fy_cuda_get(const fy_cuda **out, fy_gpu_why *why);

/* "CUDA_ERROR_INVALID_VALUE" or "CUresult 123". */
const char *fy_cuda_errname(const fy_cuda *cu, fy_cu_result r);

/* What the driver says about one address. */
typedef struct fy_gpu_ptr {
    int mem_type;         /* FY_CU_MEMORYTYPE_*, 0: not a CUDA pointer */
    int ordinal;          /* device ordinal (VRAM), -1 when unknown */
    bool managed;         /* cuMemAllocManaged memory */
    fy_cu_context ctx;    /* context it was allocated in (NULL: VMM memory) */
    fy_cu_deviceptr base; /* allocation containing it, 0 when unknown */
    size_t size;
} fy_gpu_ptr;

/* Queries addr. Works without a current context: if the driver wants one,
 * the primary context of hint_ordinal is pushed when it is already active
 * (a query must never create a context on a GPU the process does not use). */
ferry_status fy_gpu_ptr_query(const fy_cuda *cu, uint64_t addr, int hint_ordinal, fy_gpu_ptr *out,
                              fy_gpu_why *why);

/* Checks that [addr, addr+len) is device memory of GPU dev_id (this
 * process's ordinal). INVALID_PARAM with the reason otherwise. *range_base
 * and *range_end (may be NULL) get the allocation found, so a caller checking
 * many descriptors of one allocation can skip the driver for the rest. */
ferry_status fy_gpu_check_vram(const fy_cuda *cu, uint64_t addr, uint64_t len, uint64_t dev_id,
                               uint64_t *range_base, uint64_t *range_end, fy_gpu_why *why);

/* 16-byte UUID of a device ordinal (MIG-aware where the driver is). */
ferry_status fy_gpu_uuid(const fy_cuda *cu, int ordinal, uint8_t uuid[16]);
/* Ordinal of the visible device with that UUID; NOT_FOUND when this process
 * does not see it (CUDA_VISIBLE_DEVICES). */
ferry_status fy_gpu_ordinal_of(const fy_cuda *cu, const uint8_t uuid[16], int *ordinal);
/* "GPU-xxxxxxxx-xxxx-..." as nvidia-smi prints it; buf of 41+ bytes. */
void fy_gpu_uuid_str(const uint8_t uuid[16], char *buf, size_t cap);

#endif
