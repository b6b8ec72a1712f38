/* SPDX-License-Identifier: Apache-2.0 */
/* The sorted index of ranges: per memory type, non-overlapping ranges
 * sorted by (dev_id, addr), so the range covering a descriptor is found by
 * binary search in O(log n). */
#include <stdbool.h>
#include <stdlib.h>

#include "core/index.h"

static int fy_key_cmp(const fy_range *r, uint64_t dev_id, uint64_t addr)
{
    if (r->dev_id != dev_id)
        return r->dev_id < dev_id ? -1 : 1;
    return r->addr < addr ? -1 : r->addr > addr ? 1 : 0;
}

/* Index of the last item with key <= (dev_id, addr), or -1. */
static ptrdiff_t fy_index_floor(const fy_index *ix, uint64_t dev_id, uint64_t addr)
{
    size_t lo = 0, hi = ix->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (fy_key_cmp(ix->items[mid], dev_id, addr) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (ptrdiff_t)lo - 1;
}

fy_range *fy_index_find(const fy_index *ix, uint64_t addr, uint64_t len, uint64_t dev_id)
{
    ptrdiff_t i = fy_index_floor(ix, dev_id, addr);
    if (i < 0)
        return NULL;
    const fy_range *r = ix->items[i];
    bool covers =
        r->dev_id == dev_id && addr - r->addr <= r->len && len <= r->len - (addr - r->addr);
    return covers ? ix->items[i] : NULL;
}

/* Where item sits in the index (NULL when absent). */
fy_range **fy_index_slot(fy_index *ix, const fy_range *r)
{
    ptrdiff_t i = fy_index_floor(ix, r->dev_id, r->addr);
    for (; i >= 0 && fy_key_cmp(ix->items[i], r->dev_id, r->addr) == 0; i--)
        if (ix->items[i] == r)
            return &ix->items[i];
    return NULL;
}

fy_range *fy_index_exact(const fy_index *ix, uint64_t addr, uint64_t len, uint64_t dev_id)
{
    ptrdiff_t i = fy_index_floor(ix, dev_id, addr);
    if (i < 0)
        return NULL;
    const fy_range *r = ix->items[i];
    return r->dev_id == dev_id && r->addr == addr && r->len == len ? ix->items[i] : NULL;
}

/* Any item overlapping [addr, addr+len) on dev_id. */
fy_range *fy_index_overlap(const fy_index *ix, uint64_t addr, uint64_t len, uint64_t dev_id)
{
    ptrdiff_t i = fy_index_floor(ix, dev_id, addr + len - 1);
    if (i < 0)
        return NULL;
    const fy_range *r = ix->items[i];
    return r->dev_id == dev_id && r->addr + r->len > addr ? ix->items[i] : NULL;
}

static int fy_item_cmp(const void *a, const void *b)
{
    const fy_range *x = *(fy_range *const *)a, *y = *(fy_range *const *)b;
    int c = fy_key_cmp(x, y->dev_id, y->addr);
    if (c)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

void fy_index_sort(fy_range **items, size_t n)
{
    qsort(items, n, sizeof(*items), fy_item_cmp);
}

/* Merges n sorted items into the index in one pass. */
ferry_status fy_index_merge(fy_index *ix, fy_range **sorted_new, size_t n)
{
    if (!n)
        return FERRY_OK;
    size_t total = ix->count + n;
    fy_range **out = malloc(total * sizeof(*out));
    if (!out)
        return FERRY_ERR_NO_MEMORY;
    size_t i = 0, j = 0, k = 0;
    while (i < ix->count && j < n)
        out[k++] =
            fy_item_cmp(&ix->items[i], &sorted_new[j]) <= 0 ? ix->items[i++] : sorted_new[j++];
    while (i < ix->count)
        out[k++] = ix->items[i++];
    while (j < n)
        out[k++] = sorted_new[j++];
    free(ix->items);
    ix->items = out;
    ix->count = ix->cap = total;
    return FERRY_OK;
}

void fy_index_free(fy_index *ix)
{
    free(ix->items);
    *ix = (fy_index){0};
}
