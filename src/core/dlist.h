/* SPDX-License-Identifier: Apache-2.0 */
/* Descriptor lists (dlist.c). */
#ifndef FY_CORE_DLIST_H
#define FY_CORE_DLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/mem.h"

struct ferry_dlist {
    ferry_mem_type type;
    bool strided;
    size_t count, cap;
    ferry_desc *descs;
    uint64_t *meta_span; /* per entry: offset << 32 | len; NULL when no entry has meta */
    uint8_t *meta_buf;
    size_t meta_used, meta_cap;
    uint64_t base, stride, len, dev_id; /* strided form */
};
static inline ferry_desc fy_dlist_at(const ferry_dlist *l, size_t i)
{
    if (l->strided)
        return (ferry_desc){l->base + i * l->stride, l->len, l->dev_id};
    return l->descs[i];
}

#endif
