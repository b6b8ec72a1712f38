/* SPDX-License-Identifier: Apache-2.0 */
/* Agent-wide counters, the metrics snapshot (per backend counters and
 * histograms, the host-memory ledger). */
#ifndef FERRY_TELEMETRY_H
#define FERRY_TELEMETRY_H

#include <stddef.h>
#include <stdint.h>

#include "ferry/agent.h"
#include "ferry/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ferry_counters {
    size_t size;          /* sizeof(ferry_counters) */
    uint64_t tx_bytes;    /* bytes written by this agent's requests */
    uint64_t rx_bytes;    /* bytes read by this agent's requests */
    uint64_t tx_requests; /* WRITE posts */
    uint64_t rx_requests; /* READ posts */
    uint64_t xfer_errors; /* requests ended with an error */
    uint64_t notifs_received;
    uint64_t notifs_dropped;
    uint64_t mem_registered; /* bytes currently registered */
    uint64_t regions;        /* regions currently registered */
    /* Side-channel frames and metadata blobs refused for a missing or wrong
     * MAC, a timestamp outside the window, or a replayed nonce. */
    uint64_t auth_failures;
} ferry_counters;
void ferry_counters_init(ferry_counters *counters);
/* Fills the fields that counters->size covers (a caller built against an
 * older header gets its fields). INVALID_PARAM when size is too small for
 * the first version's fields. */
ferry_status ferry_counters_get(ferry_agent *agent, ferry_counters *counters);

/* ---- metrics snapshot (docs/telemetry.md) ----
 *
 * A snapshot of every metric of an agent: with telemetry on (config
 * `telemetry`, FERRY_TELEMETRY_ENABLE or NIXL_TELEMETRY_ENABLE), the
 * transfer counters and histograms per backend; always, the host-memory
 * ledger (registered bytes and regions per backend, memory type and GPU)
 * and the host gauges (process RSS, MemAvailable, RLIMIT_MEMLOCK). Names
 * are NIXL's where NIXL has the metric, so that its dashboards work. */

typedef enum ferry_metric_kind {
    FERRY_METRIC_COUNTER = 0,   /* only grows; Prometheus adds _total */
    FERRY_METRIC_GAUGE = 1,     /* a current value */
    FERRY_METRIC_HISTOGRAM = 2, /* bucket counts of microsecond observations */
} ferry_metric_kind;

typedef struct ferry_metric_label {
    const char *key;
    const char *value;
} ferry_metric_label;

/* One series. Owned by its snapshot; strings and arrays live as long as it. */
typedef struct ferry_metric {
    size_t size; /* sizeof(ferry_metric) of the library: fields may be appended */
    const char *name;
    const char *help;
    ferry_metric_kind kind;
    size_t num_labels;
    const ferry_metric_label *labels;
    uint64_t value;         /* counter or gauge; histogram: sum of observations */
    size_t num_buckets;     /* histogram: finite upper bounds (µs) */
    const uint64_t *bounds; /* histogram: upper bounds, increasing */
    const uint64_t *counts; /* histogram: cumulative counts, num_buckets + 1 (last: +Inf) */
    uint64_t count;         /* histogram: observations */
} ferry_metric;

typedef struct ferry_metrics ferry_metrics;

/* Takes a snapshot of the agent's metrics (families filtered by the
 * enabled-metrics list, if any). Returns OK, INVALID_PARAM, NO_MEMORY. */
ferry_status ferry_metrics_get(ferry_agent *agent, ferry_metrics **out);
/* The number of series, and series i (NULL past the end). */
size_t ferry_metrics_count(const ferry_metrics *metrics);
const ferry_metric *ferry_metrics_at(const ferry_metrics *metrics, size_t i);
/* The snapshot in Prometheus' text exposition format (owned by the
 * snapshot, NUL-terminated), as the /metrics endpoint serves it. */
const char *ferry_metrics_text(ferry_metrics *metrics);
/* Frees a snapshot; NULL is a no-op. */
void ferry_metrics_free(ferry_metrics *metrics);

#ifdef __cplusplus
}
#endif
#endif
