/* SPDX-License-Identifier: Apache-2.0 */
/* The index arrays a request is made from, as the caller passed them:
 * 32-bit entries (ferry_xfer_make) or 64-bit ones (ferry_xfer_make64,
 * numpy's default integer), copied, narrowed and range-checked in one pass
 * (xfer_idx.c). */
#ifndef FY_CORE_XFER_IDX_H
#define FY_CORE_XFER_IDX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/status.h"

typedef struct fy_idx {
    const void *p; /* NULL: pair i with i (ferry_xfer_create) */
    bool wide;     /* int64_t entries, else uint32_t */
} fy_idx;

/* Entry i, a negative 64-bit one read as huge (no array: i). */
uint64_t fy_idx_at(fy_idx src, size_t i);
/* dst[i] = src entry i (low 32 bits) for n entries; returns the OR of all
 * entries, so that when it is below a list's count every entry is, the
 * usual case decided at memcpy speed. */
uint64_t fy_idx_copy(uint32_t *restrict dst, fy_idx src, size_t n);
/* The exact check, when the OR alone cannot tell: INVALID_PARAM naming the
 * first pair out of range (lcount, rcount), else OK. */
ferry_status fy_idx_check(fy_idx l, size_t lcount, fy_idx r, size_t rcount, size_t n);
/* src as 32-bit entries: src itself when it has them, else a malloc'd
 * narrowed copy in *owned (INVALID_PARAM when an entry does not fit, which
 * no list's index can exceed). */
ferry_status fy_idx_narrow(fy_idx src, size_t n, const char *side, uint32_t **owned,
                           const uint32_t **out);

#endif
