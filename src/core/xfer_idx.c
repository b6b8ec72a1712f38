/* SPDX-License-Identifier: Apache-2.0 */
/* Index arrays of a request made by index: one pass copies them where the
 * request keeps them (narrowing 64-bit entries on the way) and ORs them
 * together, which settles the range check of a whole array in the usual
 * case. Only when the OR reaches a list's count does a second pass look
 * for the entry at fault. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "core/xfer_idx.h"

typedef uint32_t fy_u32x4 __attribute__((vector_size(16)));

uint64_t fy_idx_at(fy_idx src, size_t i)
{
    if (!src.p)
        return i;
    return src.wide ? (uint64_t)((const int64_t *)src.p)[i] : ((const uint32_t *)src.p)[i];
}

/* Four at a time: a 16-byte load, store and OR (memcpy: the caller's array
 * need not be 16-byte aligned). */
static uint64_t fy_copy_or(uint32_t *restrict dst, const uint32_t *restrict src, size_t n)
{
    fy_u32x4 acc = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        fy_u32x4 v;
        memcpy(&v, src + i, sizeof(v));
        memcpy(dst + i, &v, sizeof(v));
        acc |= v;
    }
    uint32_t any = acc[0] | acc[1] | acc[2] | acc[3];
    for (; i < n; i++) {
        dst[i] = src[i];
        any |= src[i];
    }
    return any;
}

/* Four 64-bit entries at a time as two 16-byte loads whose 32-bit halves
 * are shuffled apart: the low halves stored, both ORed. As fast as a
 * memcpy of the input, where 32-byte vector arithmetic compiled for
 * baseline x86-64 ran five times slower. */
static uint64_t fy_narrow_or(uint32_t *restrict dst, const uint64_t *restrict src, size_t n)
{
    size_t i = 0;
    uint64_t any = 0;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    fy_u32x4 low_or = {0, 0, 0, 0}, high_or = {0, 0, 0, 0};
    for (; i + 4 <= n; i += 4) {
        fy_u32x4 a, b; /* two entries each, low half first */
        memcpy(&a, src + i, sizeof(a));
        memcpy(&b, src + i + 2, sizeof(b));
        fy_u32x4 low = __builtin_shufflevector(a, b, 0, 2, 4, 6);
        high_or |= __builtin_shufflevector(a, b, 1, 3, 5, 7);
        low_or |= low;
        memcpy(dst + i, &low, sizeof(low));
    }
    uint64_t high = high_or[0] | high_or[1] | high_or[2] | high_or[3];
    any = high << 32 | (low_or[0] | low_or[1] | low_or[2] | low_or[3]);
#endif
    for (; i < n; i++) {
        any |= src[i];
        dst[i] = (uint32_t)src[i];
    }
    return any;
}

uint64_t fy_idx_copy(uint32_t *restrict dst, fy_idx src, size_t n)
{
    return src.wide ? fy_narrow_or(dst, src.p, n) : fy_copy_or(dst, src.p, n);
}

ferry_status fy_idx_check(fy_idx l, size_t lcount, fy_idx r, size_t rcount, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t a = fy_idx_at(l, i), b = fy_idx_at(r, i);
        if (a < lcount && b < rcount)
            continue;
        /* as the caller's type: a negative 64-bit entry shows as such */
        FY_ERR("make: index pair %zu (%" PRId64 ", %" PRId64 ") out of range (%zu, %zu)", i,
               l.wide ? (int64_t)a : (int64_t)(uint32_t)a,
               r.wide ? (int64_t)b : (int64_t)(uint32_t)b, lcount, rcount);
        return FERRY_ERR_INVALID_PARAM;
    }
    return FERRY_OK;
}

ferry_status fy_idx_narrow(fy_idx src, size_t n, const char *side, uint32_t **owned,
                           const uint32_t **out)
{
    *owned = NULL;
    if (!src.p || !src.wide) {
        *out = src.p;
        return FERRY_OK;
    }
    uint32_t *dst = malloc((n ? n : 1) * sizeof(*dst));
    if (!dst)
        return FERRY_ERR_NO_MEMORY;
    if (fy_narrow_or(dst, src.p, n) >> 32) {
        size_t i = 0;
        while (!(fy_idx_at(src, i) >> 32))
            i++;
        FY_ERR("make: %s index %zu (%" PRId64 ") out of range", side, i,
               (int64_t)fy_idx_at(src, i));
        free(dst);
        return FERRY_ERR_INVALID_PARAM;
    }
    *owned = dst;
    *out = dst;
    return FERRY_OK;
}
