/* SPDX-License-Identifier: Apache-2.0 */
/* How a request's segments become GPU work (pure functions, tested on any
 * host): copies are merged where contiguous, split into kernel items of
 * similar size, and the launch is shaped for the item count. */
#ifndef FY_CUDA_PLAN_H
#define FY_CUDA_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "fy_cuda_kernel.h"

/* Kernel items are cut at this size at most, and at least at this size
 * when the adaptive rule picks smaller. */
#define FY_CU_CHUNK_MAX (64u * 1024u)
#define FY_CU_CHUNK_MIN (4u * 1024u)

/* Merges neighbours contiguous on both sides, in place, keeping order;
 * returns the new count. */
size_t fy_cu_merge(fy_cu_item *v, size_t n);

/* Cuts copies into items of at most chunk bytes (chunk a multiple of 16, so
 * every piece keeps its copy's alignment). With out NULL only counts. */
size_t fy_cu_split(const fy_cu_item *v, size_t n, uint64_t chunk, fy_cu_item *out);

/* The item size for total bytes on a GPU of sm_count multiprocessors: a
 * power of two, small enough that every multiprocessor gets several items
 * (big copies must not run on a handful of warps), large enough to keep the
 * array small. */
uint64_t fy_cu_auto_chunk(uint64_t total, int sm_count);

/* Copies of at least threshold bytes go to the copy engines (big), the rest
 * to the kernel (small); threshold 0 sends all to the kernel. Keeps order. */
void fy_cu_partition(const fy_cu_item *v, size_t n, uint64_t threshold, fy_cu_item *small,
                     size_t *nsmall, fy_cu_item *big, size_t *nbig);

/* A launch: blocks of FY_CU_BLOCK threads, `group` threads per item. */
typedef struct fy_cu_grid {
    unsigned blocks;
    unsigned group;
} fy_cu_grid;

/* Few items get wide groups (a whole block for one 4 KiB block: latency),
 * many get a warp each; at most 8 blocks per multiprocessor (2048 threads). */
fy_cu_grid fy_cu_grid_for(size_t nitems, int sm_count);

#endif
