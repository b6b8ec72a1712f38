/* SPDX-License-Identifier: Apache-2.0 */
/* Plugin support: checking a transfer's segments, and cutting its bytes
 * into slices for workers. */
#ifndef FYP_SEGS_H
#define FYP_SEGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/plugin.h"

/* [addr, addr + len) is a real pointer range: not NULL, no wrap, and (on a
 * 32-bit host) representable as a pointer. */
bool fyp_range_ok(uint64_t addr, uint64_t len);

/* One pass over x's segments: arrays present, equal lengths on both
 * sides, addresses that do not wrap, and a total that fits and matches
 * x->total_bytes (into *total). FERRY_ERR_INVALID_PARAM otherwise. Cheap
 * next to any copy, and it keeps workers from ever walking off an array. */
ferry_status fyp_segs_check(const ferry_plugin_xfer *x, uint64_t *total);

/* A slice of a transfer's byte stream: starts at byte `off` of segment
 * `seg` and runs for `bytes` bytes, across as many segments as needed. */
typedef struct fyp_slice {
    size_t seg;
    uint64_t off;
    uint64_t bytes;
} fyp_slice;

/* Cuts x's bytes into slices of at most max_bytes bytes and max_pieces
 * segment pieces (a big segment spans several slices, many small ones
 * share one), into out when it is not NULL. Returns how many: call it
 * with NULL to count, allocate once, then again to fill. */
size_t fyp_slices(const ferry_plugin_xfer *x, uint64_t max_bytes, size_t max_pieces,
                  fyp_slice *out);

/* Copies slice s of x with memmove (not memcpy: a loopback's source and
 * destination may overlap), WRITE local to remote, READ remote to local:
 * for backends whose remote addresses are addresses of this process.
 * The one copy loop of such a backend, inline and on workers alike. */
void fyp_slice_memmove(const ferry_plugin_xfer *x, const fyp_slice *s);

#endif
