/* SPDX-License-Identifier: Apache-2.0 */
/* Prepared descriptor lists and transfer requests.
 *
 * Handle validity: a released request or prepared list, or one of a
 * destroyed agent, is recognised by every function here without being
 * read: calls returning a status return INVALID_PARAM, the others do
 * nothing (NULL, 0, ""), and each logs one error line. */
#ifndef FERRY_XFER_H
#define FERRY_XFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/agent.h"
#include "ferry/mem.h"
#include "ferry/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ferry_xfer_op {
    FERRY_OP_READ = 0,  /* remote -> local */
    FERRY_OP_WRITE = 1, /* local -> remote */
} ferry_xfer_op;

/* A descriptor list validated once against the registry (local side) or a
 * remote agent's loaded metadata, so making requests only picks indices. */
typedef struct ferry_prepped ferry_prepped;
/* A transfer request. */
typedef struct ferry_xfer ferry_xfer;

/* Prepares list for making requests by index.
 * agent_name NULL or "": the local side (checked against the registry).
 * Another name: that remote agent's loaded metadata (own name = loopback,
 * once the agent's own metadata has been loaded).
 * Every descriptor must lie inside one region registered with at least one
 * backend common to all descriptors (in sel, when given).
 * Returns OK, INVALID_PARAM, NOT_FOUND (unknown remote, uncovered
 * descriptor, no common backend), NO_MEMORY. */
ferry_status ferry_prep_dlist(ferry_agent *agent, const char *agent_name, const ferry_dlist *list,
                              const ferry_backend_sel *sel, ferry_prepped **out);
/* Releases a prepared list. Requests made from it stay valid. NULL, or a
 * list released already: no-op (the latter logged). */
void ferry_prepped_release(ferry_prepped *prepped);
size_t ferry_prepped_count(const ferry_prepped *prepped);

typedef struct ferry_xfer_opts {
    size_t size;       /* sizeof(ferry_xfer_opts) */
    const void *notif; /* notification sent after the data (NULL: none) */
    size_t notif_len;
    ferry_backend *backend;       /* force this backend (NULL: choose) */
    const ferry_backend_sel *sel; /* choose among these (NULL: all) */
    bool skip_merge;              /* keep descriptors as given, even if contiguous */
    uint32_t timeout_ms;          /* deadline after each post: 0 = the agent's xfer_timeout_ms,
                                   * FERRY_TIMEOUT_NONE = none */
} ferry_xfer_opts;
void ferry_xfer_opts_init(ferry_xfer_opts *opts);

/* Makes a request from two prepared lists (local side first) and index
 * arrays of equal length n; local[i] and remote[i] must have equal lengths.
 * Adjacent pairs contiguous on both sides are merged unless skip_merge.
 * Returns OK, INVALID_PARAM (bad index, NULL), MISMATCH (length
 * differs), NOT_FOUND (no backend serves both sides), STALE (remote
 * metadata invalidated or reloaded since prep), NO_MEMORY. */
ferry_status ferry_xfer_make(ferry_agent *agent, ferry_xfer_op op, const ferry_prepped *local,
                             const uint32_t *local_idx, const ferry_prepped *remote,
                             const uint32_t *remote_idx, size_t n, const ferry_xfer_opts *opts,
                             ferry_xfer **out);

/* ferry_xfer_make for 64-bit index arrays (numpy's default integer, as
 * Python callers hold them): each entry is narrowed and checked in the pass
 * that copies it, so the caller need not convert first. A negative entry is
 * out of range (INVALID_PARAM). Same returns as ferry_xfer_make. */
ferry_status ferry_xfer_make64(ferry_agent *agent, ferry_xfer_op op, const ferry_prepped *local,
                               const int64_t *local_idx, const ferry_prepped *remote,
                               const int64_t *remote_idx, size_t n, const ferry_xfer_opts *opts,
                               ferry_xfer **out);

/* Makes a request from two plain lists, descriptor i to descriptor i, with
 * remote_agent's memory (own name = loopback). Same errors as make. */
ferry_status ferry_xfer_create(ferry_agent *agent, ferry_xfer_op op, const ferry_dlist *local,
                               const ferry_dlist *remote, const char *remote_agent,
                               const ferry_xfer_opts *opts, ferry_xfer **out);

/* Replaces the notification sent by the next post (NULL/0: none).
 * Returns OK, INVALID_PARAM (too long), REPOST_ACTIVE (the request is in
 * progress: the backend may still read the old one), NOT_SUPPORTED (the
 * serving backend has no notifications), NO_MEMORY. */
ferry_status ferry_xfer_set_notif(ferry_xfer *xfer, const void *notif, size_t notif_len);

/* Replaces the request's deadline from the next post on: timeout_ms after
 * each post (0 = the agent's xfer_timeout_ms, FERRY_TIMEOUT_NONE = none).
 * Returns OK or INVALID_PARAM (not a live request). */
ferry_status ferry_xfer_set_timeout(ferry_xfer *xfer, uint32_t timeout_ms);

/* Posts the request. Returns OK (complete inline), IN_PROGRESS, or an error
 * (nothing was started): REPOST_ACTIVE if still in progress, STALE,
 * REMOTE_DISCONNECT, BACKEND, INVALID_PARAM (not a live request). A request
 * may be reposted once not in progress, also after a TIMEOUT. */
ferry_status ferry_xfer_post(ferry_xfer *xfer);

/* Status: OK (complete), IN_PROGRESS, NOT_POSTED, or the error that ended
 * it (details in ferry_xfer_error). Cheap; drives progress when the agent
 * has no progress thread. The poll that finds the request's deadline
 * passed cancels it through the backend (which may block as long as the
 * backend's release does) and returns TIMEOUT, detail "no completion
 * within N ms": no byte of it is written to local memory afterwards.
 * INVALID_PARAM: not a live request (released, or of a destroyed agent). */
ferry_status ferry_xfer_status(ferry_xfer *xfer);

/* Releases a request. An in-progress request is canceled; release returns
 * only when no backend can still write its memory. Returns OK, or an error
 * when the backend could not cancel cleanly (the handle is freed anyway),
 * INVALID_PARAM when it was released already (or its agent destroyed).
 * NULL: no-op. */
ferry_status ferry_xfer_release(ferry_xfer *xfer);

/* The backend serving the request. */
ferry_backend *ferry_xfer_backend(const ferry_xfer *xfer);
/* Number of descriptors after merging. */
size_t ferry_xfer_count(const ferry_xfer *xfer);
/* The backend's message for the request's last error ("" when none); valid
 * until the next post or release. */
const char *ferry_xfer_error(const ferry_xfer *xfer);

typedef struct ferry_xfer_telemetry {
    size_t size;          /* sizeof(ferry_xfer_telemetry) */
    uint64_t start_us;    /* post time, microseconds since the epoch */
    uint64_t post_us;     /* time spent in post */
    uint64_t xfer_us;     /* post to completion seen */
    uint64_t total_bytes; /* bytes moved per post */
    uint64_t desc_count;  /* descriptors as the caller gave them (before merging) */
} ferry_xfer_telemetry;
void ferry_xfer_telemetry_init(ferry_xfer_telemetry *telem);
/* NO_TELEMETRY when the agent's telemetry is off, NOT_POSTED before the
 * first post, IN_PROGRESS while running (fields so far filled). The times
 * are those of the request's last timed post: its first post and every
 * 256th after it (every post while the event ring exporter is on); while
 * an untimed repost runs, xfer_us is 0 ("not measured"). */
ferry_status ferry_xfer_get_telemetry(const ferry_xfer *xfer, ferry_xfer_telemetry *telem);

typedef enum ferry_cost_method {
    FERRY_COST_ANALYTICAL = 0, /* from a bandwidth/latency model */
    FERRY_COST_MEASURED = 1,   /* from this backend's own history */
} ferry_cost_method;

typedef struct ferry_xfer_cost {
    size_t size; /* sizeof(ferry_xfer_cost) */
    double duration_us;
    double error_margin_us;
    ferry_cost_method method;
} ferry_xfer_cost;
void ferry_xfer_cost_init(ferry_xfer_cost *cost);
/* NOT_SUPPORTED when the backend has no estimator. */
ferry_status ferry_xfer_estimate(const ferry_xfer *xfer, ferry_xfer_cost *cost);

#ifdef __cplusplus
}
#endif
#endif
