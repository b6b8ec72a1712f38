/* SPDX-License-Identifier: Apache-2.0 */
/* Turning segments into GPU work (see cuda_plan.h). */
#include "cuda_plan.h"

size_t fy_cu_merge(fy_cu_item *v, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k && v[k - 1].src + v[k - 1].len == v[i].src &&
            v[k - 1].dst + v[k - 1].len == v[i].dst) {
            v[k - 1].len += v[i].len;
            continue;
        }
        v[k++] = v[i];
    }
    return k;
}

size_t fy_cu_split(const fy_cu_item *v, size_t n, uint64_t chunk, fy_cu_item *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        for (uint64_t off = 0; off < v[i].len; off += chunk, k++) {
            uint64_t left = v[i].len - off;
            if (out)
                out[k] = (fy_cu_item){v[i].src + off, v[i].dst + off, left < chunk ? left : chunk};
        }
    }
    return k;
}

uint64_t fy_cu_auto_chunk(uint64_t total, int sm_count)
{
    /* About 32 warps' worth of items per multiprocessor, in a power of two:
     * KV blocks are powers of two, so they split into equal pieces that
     * start on cache-line (and page) boundaries. Pieces of an odd size
     * would share 128-byte lines between warps: measured on 2xH200, 1024
     * blocks of 128 KiB moved at 0.89 of the peer copy with 31776-byte
     * items. */
    uint64_t target = (uint64_t)(sm_count > 0 ? sm_count : 1) * 32u;
    uint64_t want = total / target, chunk = FY_CU_CHUNK_MIN;
    while (chunk * 2 <= want && chunk < FY_CU_CHUNK_MAX)
        chunk *= 2;
    return chunk;
}

void fy_cu_partition(const fy_cu_item *v, size_t n, uint64_t threshold, fy_cu_item *small,
                     size_t *nsmall, fy_cu_item *big, size_t *nbig)
{
    size_t s = 0, b = 0;
    for (size_t i = 0; i < n; i++) {
        if (threshold && v[i].len >= threshold)
            big[b++] = v[i];
        else
            small[s++] = v[i];
    }
    *nsmall = s;
    *nbig = b;
}

fy_cu_grid fy_cu_grid_for(size_t nitems, int sm_count)
{
    uint64_t sms = sm_count > 0 ? (uint64_t)sm_count : 1;
    uint64_t n = nitems ? nitems : 1;
    /* Threads one block per multiprocessor would give, shared among the
     * items: fewer items, wider groups (32..256). */
    unsigned group = 32;
    while (group < FY_CU_BLOCK && (uint64_t)group * 2 * n <= sms * FY_CU_BLOCK)
        group *= 2;
    uint64_t per_block = FY_CU_BLOCK / group;
    uint64_t blocks = (n + per_block - 1) / per_block;
    uint64_t cap = sms * (2048u / FY_CU_BLOCK);
    return (fy_cu_grid){.blocks = (unsigned)(blocks < cap ? blocks : cap), .group = group};
}
