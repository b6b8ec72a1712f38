/* SPDX-License-Identifier: Apache-2.0 */
/* Transfer requests (xfer.c). */
#ifndef FY_CORE_XFER_H
#define FY_CORE_XFER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/hlist.h"
#include "core/registry.h"
#include "core/remote.h"
#include "ferry/xfer.h"

enum { FY_X_IDLE, FY_X_RUNNING, FY_X_DONE, FY_X_FAILED };
struct ferry_xfer {
    fy_link link; /* in agent->xfers */
    ferry_agent *agent;
    ferry_backend *be;
    fy_remote *remote;
    void *handle;           /* backend's */
    ferry_plugin_xfer px;   /* op, count and bytes in either form */
    bool strided;           /* handed to the backend as sx, not as segments */
    ferry_plugin_sxfer sx;  /* strided: both lists and the index arrays */
    uint32_t *idx;          /* strided: local[count] then remote[count], a copy */
    bool idx_staged;        /* idx is the backend's (xfer_idx_alloc), not the heap's */
    ferry_plugin_seg *segs; /* segment form: local[count] then remote[count] */
    fy_region **held;
    size_t num_held;
    uint8_t *notif;
    size_t notif_len;
    atomic_int state;
    atomic_bool counted_inflight;
    ferry_status result;
    uint32_t timeout_ms;  /* per post; FERRY_TIMEOUT_NONE: none */
    uint64_t deadline_ns; /* monotonic time of the running post's deadline, 0: none */
    size_t desc_count;    /* descriptors as the caller gave them, before merging */
    uint64_t t_post_ns, start_us, post_us, xfer_us; /* of the last timed post */
    bool timed;                                     /* the current post is (FY_TM_TIME_EVERY) */
    uint32_t untimed_left;                          /* posts before the next timed one */
    char error[512];
};

#endif
