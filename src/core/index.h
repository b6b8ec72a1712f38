/* SPDX-License-Identifier: Apache-2.0 */
/* Sorted (dev_id, addr) index of non-overlapping ranges of one memory type
 * (index.c). Local regions (fy_region) and remote ones (fy_rregion) embed
 * an fy_range, and the index holds pointers to those ranges. */
#ifndef FY_CORE_INDEX_H
#define FY_CORE_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "ferry/status.h"

typedef struct fy_range {
    uint64_t addr, len, dev_id;
} fy_range;

typedef struct fy_index {
    fy_range **items;
    size_t count, cap;
} fy_index;

/* The struct of type `type` whose member `member` is the range r. */
#define FY_CONTAINER(r, type, member) ((type *)((char *)(r)-offsetof(type, member)))

fy_range **fy_index_slot(fy_index *ix, const fy_range *item);
fy_range *fy_index_find(const fy_index *ix, uint64_t addr, uint64_t len, uint64_t dev_id);
fy_range *fy_index_exact(const fy_index *ix, uint64_t addr, uint64_t len, uint64_t dev_id);
fy_range *fy_index_overlap(const fy_index *ix, uint64_t addr, uint64_t len, uint64_t dev_id);
ferry_status fy_index_merge(fy_index *ix, fy_range **sorted_new, size_t n);
void fy_index_sort(fy_range **items, size_t n);
void fy_index_free(fy_index *ix);

#endif
