/* SPDX-License-Identifier: Apache-2.0 */
/* What the host code and the copy kernels agree on: kernel names, argument
 * layouts and limits. Included by plugins/cuda/fy_copy.cu (nvcc), by the C
 * host code, and by the mock driver of the tests (which interprets launches
 * of these kernels on the CPU), so it is plain C with fixed-width fields. */
#ifndef FY_CUDA_KERNEL_H
#define FY_CUDA_KERNEL_H

/* One copy: len bytes from src to dst, both addresses the executing GPU can
 * reach (its memory, a peer's through peer access or CUDA IPC, or pinned
 * host memory mapped into the device's address space). */
typedef struct fy_cu_item {
    unsigned long long src;
    unsigned long long dst;
    unsigned long long len;
} fy_cu_item;

/* Requests of at most this many items pass them in the launch's parameter
 * buffer: no upload, no device allocation (the one-block latency path). */
#define FY_CU_INLINE_MAX 16

typedef struct fy_cu_inline_args {
    fy_cu_item items[FY_CU_INLINE_MAX];
    unsigned long long n;
    unsigned int group; /* threads per item: 32, 64, 128 or 256 */
    unsigned int pad;
} fy_cu_inline_args;

/* Threads per block of both kernels; a group never straddles two blocks. */
#define FY_CU_BLOCK 256u

/* fy_copy_items(const fy_cu_item *items, unsigned long long n, unsigned group):
 * items in device memory. fy_copy_inline(fy_cu_inline_args args). */
#define FY_CU_KERNEL_ITEMS  "fy_copy_items"
#define FY_CU_KERNEL_INLINE "fy_copy_inline"

#endif
