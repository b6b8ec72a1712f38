/* SPDX-License-Identifier: Apache-2.0 */
/* Plugin support: what a copy through host memory costs, for estimates. */
#ifndef FYP_MEMCOST_H
#define FYP_MEMCOST_H

#include <stddef.h>
#include <stdint.h>

#include "ferry/plugin.h"

typedef struct fyp_memcost {
    double bytes_per_us; /* memmove bandwidth */
    double seg_us;       /* what one small segment costs beyond its bytes */
} fyp_memcost;

/* The host's figures: measured by the first caller of the process (a
 * millisecond or so, most of it faulting pages in), shared by the others;
 * defaults when there is no memory to measure with. Thread-safe. */
void fyp_memcost_get(const ferry_plugin_host *host, fyp_memcost *out);

/* An estimate of copying bytes in segs segments over lanes parallel
 * copiers, plus extra_us: bytes over the bandwidth times lanes, plus the
 * cost of each segment. The margin is half of it: the bandwidth is
 * measured cache-warm, memory bandwidth is shared and does not scale with
 * lanes the way the model assumes. */
void fyp_memcost_estimate(const fyp_memcost *c, uint64_t bytes, size_t segs, double lanes,
                          double extra_us, ferry_xfer_cost *out);

#endif
