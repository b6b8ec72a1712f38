/* SPDX-License-Identifier: Apache-2.0 */
/* The gather/scatter copy kernels of the CUDA plugin.
 *
 * A request's copies arrive as an array of items (src, dst, len), already
 * cut by the host so that none is much larger than the others. A group of
 * `group` threads (a warp or more, never straddling a block) takes one item
 * at a time, items spread over groups round-robin, so thousands of small KV
 * blocks move in one launch instead of one copy each.
 *
 * Inside an item each thread moves the widest word both addresses allow
 * (16 bytes when source and destination agree modulo 16), with several
 * loads in flight before the first store: NVLink and HBM need many bytes in
 * flight, and peer reads over NVLink have microseconds of latency. */
#include "fy_cuda_kernel.h"

#define FY_UNROLL 4

/* The body: n bytes, a multiple of sizeof(T), both pointers T-aligned. */
template <typename T>
__device__ __forceinline__ void fy_copy_body(char *dst, const char *src, unsigned long long n,
                                             unsigned lane, unsigned group)
{
    T *d = reinterpret_cast<T *>(dst);
    const T *s = reinterpret_cast<const T *>(src);
    const unsigned long long nv = n / sizeof(T), g = group;
    unsigned long long i = lane;
    for (; i + (FY_UNROLL - 1) * g < nv; i += FY_UNROLL * g) {
        T v[FY_UNROLL];
#pragma unroll
        for (int k = 0; k < FY_UNROLL; k++)
            v[k] = s[i + k * g];
#pragma unroll
        for (int k = 0; k < FY_UNROLL; k++)
            d[i + k * g] = v[k];
    }
    for (; i < nv; i += g)
        d[i] = s[i];
}

__device__ __forceinline__ void fy_copy_bytes(char *dst, const char *src, unsigned long long n,
                                              unsigned lane, unsigned group)
{
    for (unsigned long long i = lane; i < n; i += group)
        dst[i] = src[i];
}

/* A head of bytes up to T's alignment, the body in T words, a tail. */
template <typename T>
__device__ __forceinline__ void fy_copy_aligned(char *dst, const char *src, unsigned long long len,
                                                unsigned lane, unsigned group)
{
    const unsigned long long a = sizeof(T);
    unsigned long long mis = reinterpret_cast<unsigned long long>(src) & (a - 1);
    unsigned long long head = mis ? a - mis : 0;
    if (head > len)
        head = len;
    unsigned long long body = (len - head) & ~(a - 1);
    fy_copy_bytes(dst, src, head, lane, group);
    fy_copy_body<T>(dst + head, src + head, body, lane, group);
    fy_copy_bytes(dst + head + body, src + head + body, len - head - body, lane, group);
}

__device__ __forceinline__ void fy_copy_item(const fy_cu_item &it, unsigned lane, unsigned group)
{
    char *dst = reinterpret_cast<char *>(it.dst);
    const char *src = reinterpret_cast<const char *>(it.src);
    const unsigned long long x = it.src ^ it.dst;
    if ((x & 15) == 0)
        fy_copy_aligned<uint4>(dst, src, it.len, lane, group);
    else if ((x & 7) == 0)
        fy_copy_aligned<unsigned long long>(dst, src, it.len, lane, group);
    else if ((x & 3) == 0)
        fy_copy_aligned<unsigned int>(dst, src, it.len, lane, group);
    else
        fy_copy_bytes(dst, src, it.len, lane, group);
}

extern "C" __global__ void __launch_bounds__(FY_CU_BLOCK)
    fy_copy_items(const fy_cu_item *__restrict__ items, unsigned long long n, unsigned group)
{
    const unsigned long long tid = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned lane = threadIdx.x & (group - 1);
    const unsigned long long ngroups = (unsigned long long)gridDim.x * blockDim.x / group;
    for (unsigned long long i = tid / group; i < n; i += ngroups) {
        const fy_cu_item it = items[i];
        fy_copy_item(it, lane, group);
    }
}

/* __grid_constant__: the items are read straight from the parameter space,
 * not copied into every thread's local memory. */
extern "C" __global__ void __launch_bounds__(FY_CU_BLOCK)
    fy_copy_inline(const __grid_constant__ fy_cu_inline_args args)
{
    const unsigned long long tid = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned lane = threadIdx.x & (args.group - 1);
    const unsigned long long ngroups = (unsigned long long)gridDim.x * blockDim.x / args.group;
    for (unsigned long long i = tid / args.group; i < args.n; i += ngroups)
        fy_copy_item(args.items[i], lane, args.group);
}

/* Items computed from the pair index: nothing per block was uploaded. */
extern "C" __global__ void __launch_bounds__(FY_CU_BLOCK)
    fy_copy_strided(const __grid_constant__ fy_cu_strided_args args)
{
    const unsigned long long tid = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned lane = threadIdx.x & (args.group - 1);
    const unsigned long long ngroups = (unsigned long long)gridDim.x * blockDim.x / args.group;
    const unsigned long long n = args.n * args.pieces;
    for (unsigned long long i = tid / args.group; i < n; i += ngroups)
        fy_copy_item(fy_cu_strided_item(&args, i), lane, args.group);
}
