/* SPDX-License-Identifier: Apache-2.0 */
/* Plugin support: segments (see fyp_segs.h). */
#include "fyp_segs.h"

#include <string.h>

bool fyp_range_ok(uint64_t addr, uint64_t len)
{
    uint64_t end = addr + len;

    return addr != 0 && end >= addr && (uint64_t)(uintptr_t)end == end;
}

static bool fyp_seg_ok(const ferry_plugin_seg *s)
{
    return s->len == 0 || fyp_range_ok(s->addr, s->len);
}

ferry_status fyp_segs_check(const ferry_plugin_xfer *x, uint64_t *total)
{
    uint64_t sum = 0;

    if (x->count && (!x->local || !x->remote))
        return FERRY_ERR_INVALID_PARAM;
    for (size_t i = 0; i < x->count; i++) {
        const ferry_plugin_seg *l = &x->local[i], *r = &x->remote[i];

        if (l->len != r->len || !fyp_seg_ok(l) || !fyp_seg_ok(r) || l->len > UINT64_MAX - sum)
            return FERRY_ERR_INVALID_PARAM;
        sum += l->len;
    }
    if (sum != x->total_bytes)
        return FERRY_ERR_INVALID_PARAM;
    *total = sum;
    return FERRY_OK;
}

static void fyp_slice_emit(fyp_slice *out, size_t *n, fyp_slice *cur)
{
    if (out)
        out[*n] = *cur;
    (*n)++;
    cur->bytes = 0;
}

size_t fyp_slices(const ferry_plugin_xfer *x, uint64_t max_bytes, size_t max_pieces, fyp_slice *out)
{
    fyp_slice cur = {0, 0, 0};
    size_t n = 0, pieces = 0;

    for (size_t i = 0; i < x->count; i++) {
        for (uint64_t off = 0, len = x->local[i].len; off < len;) {
            uint64_t room = max_bytes - cur.bytes;
            uint64_t take = room < len - off ? room : len - off;

            if (cur.bytes == 0)
                cur = (fyp_slice){i, off, 0};
            cur.bytes += take;
            off += take;
            if (cur.bytes == max_bytes || ++pieces == max_pieces) {
                fyp_slice_emit(out, &n, &cur);
                pieces = 0;
            }
        }
    }
    if (cur.bytes)
        fyp_slice_emit(out, &n, &cur);
    return n;
}

static void *fyp_ptr(uint64_t addr, uint64_t off)
{
    return (void *)(uintptr_t)(addr + off);
}

void fyp_slice_memmove(const ferry_plugin_xfer *x, const fyp_slice *s)
{
    bool read = x->op == FERRY_OP_READ;
    uint64_t bytes = s->bytes, off = s->off;

    for (size_t seg = s->seg; bytes; seg++, off = 0) {
        const ferry_plugin_seg *l = &x->local[seg], *r = &x->remote[seg];
        uint64_t n = l->len - off < bytes ? l->len - off : bytes;

        memmove(fyp_ptr(read ? l->addr : r->addr, off), fyp_ptr(read ? r->addr : l->addr, off),
                (size_t)n);
        bytes -= n;
    }
}
