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

/* A request made by index from two strided lists (KV block slots): pair p
 * copies len bytes from src + src_idx[p] * src_stride to dst +
 * dst_idx[p] * dst_stride. Each pair is cut into `pieces` items of at most
 * `chunk` bytes; the GPU resolves the addresses, so the host hands over
 * the index arrays (read by the kernel from pinned host memory) and
 * nothing per block. */
typedef struct fy_cu_strided_args {
    unsigned long long src, dst;
    unsigned long long src_stride, dst_stride;
    unsigned long long len, chunk;
    unsigned long long src_idx, dst_idx; /* addresses of unsigned int[n] */
    unsigned long long n;                /* pairs */
    unsigned int pieces;                 /* items per pair: len / chunk rounded up */
    unsigned int group;                  /* threads per item: 32, 64, 128 or 256 */
} fy_cu_strided_args;

#ifdef __CUDACC__
#define FY_CU_HOST_DEVICE __host__ __device__
#else
#define FY_CU_HOST_DEVICE
#endif

/* Item i of a strided request: the kernel's and the test driver's one
 * definition. */
static inline FY_CU_HOST_DEVICE fy_cu_item fy_cu_strided_item(const fy_cu_strided_args *a,
                                                              unsigned long long i)
{
    const unsigned long long p = i / a->pieces, off = (i - p * a->pieces) * a->chunk;
    const unsigned int *si = (const unsigned int *)(a->src_idx);
    const unsigned int *di = (const unsigned int *)(a->dst_idx);
    fy_cu_item it;
    it.src = a->src + si[p] * a->src_stride + off;
    it.dst = a->dst + di[p] * a->dst_stride + off;
    it.len = a->len - off < a->chunk ? a->len - off : a->chunk;
    return it;
}

/* Threads per block of both kernels; a group never straddles two blocks. */
#define FY_CU_BLOCK 256u

/* fy_copy_items(const fy_cu_item *items, unsigned long long n, unsigned group):
 * items in device memory. fy_copy_inline(fy_cu_inline_args args).
 * fy_copy_strided(fy_cu_strided_args args): pieces * n items. */
#define FY_CU_KERNEL_ITEMS   "fy_copy_items"
#define FY_CU_KERNEL_INLINE  "fy_copy_inline"
#define FY_CU_KERNEL_STRIDED "fy_copy_strided"

#endif
