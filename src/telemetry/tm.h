/* SPDX-License-Identifier: Apache-2.0 */
/* Telemetry of one agent (src/telemetry): counters and histograms per
 * backend, the host-memory ledger, the event ring and the exporters.
 *
 * src/core calls into it and it never calls back: the core pushes what
 * happens (a post, a completion, a registration) and the module keeps its
 * own copy of everything a snapshot shows. Counters are relaxed atomics,
 * written from any thread and read by snapshots and the exporter's thread.
 * The transfer counters are only touched when the agent's telemetry is on:
 * the core tests one flag before calling fy_tm_xfer_*. The ledger (and
 * the caps it enforces) is kept always. */
#ifndef FY_TELEMETRY_TM_H
#define FY_TELEMETRY_TM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ferry/mem.h"
#include "ferry/status.h"
#include "ferry/telemetry.h"

#define FY_TM_BACKENDS    16u /* FY_MAX_BACKENDS of the core */
#define FY_TM_GPUS        16u /* VRAM devices the ledger tells apart; more share the last */
#define FY_TM_BUCKETS_MAX 32u
#define FY_TM_STATUSES    64u /* -status of every ferry_status error, with room */

/* The switches, resolved from the agent's config and the environment
 * (tm_config.c). Strings are copied. */
typedef struct fy_tm_config {
    bool on;         /* counters and histograms */
    bool ring;       /* the event ring exporter */
    bool prometheus; /* the /metrics exporter */
    bool prom_local; /* bind the endpoint to loopback only */
    char dir[512];   /* telemetry directory: rings, shared endpoint's peer files */
    uint32_t ring_slots;
    uint32_t interval_ms; /* how often a rank publishes to the shared endpoint */
    uint16_t prom_port;
    char metrics[512]; /* enabled families: comma-separated globs, "" = all */
    uint64_t bounds_us[FY_TM_BUCKETS_MAX];
    uint32_t num_bounds;
    uint64_t cap_agent;                   /* registered DRAM+VRAM bytes, 0 = none */
    uint64_t cap_backend[FY_TM_BACKENDS]; /* by backend index, filled as backends come */
    char cap_spec[512];                   /* "NAME=SIZE,..." per backend plugin name */
} fy_tm_config;

/* Agent config fields the resolution reads (src/core passes them). */
typedef struct fy_tm_settings {
    bool telemetry;
    const char *exporters, *dir, *metrics, *buckets_us, *cap_backends;
    uint32_t ring_slots, interval_ms;
    uint16_t prom_port;
    uint64_t cap_agent;
    /* Names the core owns, for labels (called from the exporter's thread). */
    const char *(*status_name)(ferry_status rc);
    const char *(*mem_type_name)(ferry_mem_type type);
} fy_tm_settings;

/* Resolves settings and FERRY_TELEMETRY_* / NIXL_TELEMETRY_* /
 * FERRY_MAX_REGISTERED_BYTES into cfg. INVALID_PARAM (logged, naming the
 * variable) for a malformed value. */
ferry_status fy_tm_config_resolve(const fy_tm_settings *s, fy_tm_config *cfg);
/* Parses "123", "4K", "8M", "2G", "1T" (binary units). */
bool fy_tm_parse_size(const char *text, uint64_t *out);
/* Calls fn on each item of a comma-separated list (a NUL-terminated copy,
 * at most 127 bytes; empty items skipped) until fn returns false; whether
 * every call returned true. A NULL list has no items. */
typedef bool (*fy_tm_item_fn)(const char *item, void *arg);
bool fy_tm_each_item(const char *list, fy_tm_item_fn fn, void *arg);
/* A NAME=SIZE item of a per-backend cap list for name (case-insensitive):
 * its size, or 0. */
uint64_t fy_tm_cap_of(const char *spec, const char *name);

typedef struct fy_tm_hist {
    atomic_uint_fast64_t counts[FY_TM_BUCKETS_MAX + 1]; /* per bucket, last: +Inf */
    atomic_uint_fast64_t sum;
} fy_tm_hist;

/* Registered bytes and regions of one (backend, memory type). */
typedef struct fy_tm_ledger {
    atomic_uint_fast64_t bytes, regions;
    atomic_uint_fast64_t registered_total, deregistered_total; /* bytes */
} fy_tm_ledger;

typedef struct fy_tm_backend {
    char name[32]; /* "" until the backend exists */
    atomic_uint_fast64_t tx_bytes, rx_bytes, tx_requests, rx_requests;
    atomic_uint_fast64_t notifs_sent, notifs_received, notifs_dropped;
    atomic_uint_fast64_t errors[FY_TM_STATUSES];
    fy_tm_hist xfer_time, post_time;
    fy_tm_ledger ledger[FERRY_MEM_TYPE_COUNT];
    fy_tm_ledger vram_dev[FY_TM_GPUS];
} fy_tm_backend;

struct fy_ring;
struct fy_prom_server;

typedef struct fy_tm {
    char agent[65];
    char host[65];
    fy_tm_config cfg;
    const char *(*status_name)(ferry_status rc);
    const char *(*mem_type_name)(ferry_mem_type type);
    atomic_uint num_backends; /* published after the backend's name */
    fy_tm_backend be[FY_TM_BACKENDS];
    struct fy_ring *ring;                            /* NULL unless the ring exporter is on */
    struct fy_prom_server *prom;                     /* NULL unless the Prometheus exporter is on */
    struct fy_tm *prom_next;                         /* the endpoint's list of agents */
    fy_tm_ledger agent_ledger[FERRY_MEM_TYPE_COUNT]; /* a region once, whatever holds it */
    uint64_t wall_minus_mono_us; /* at creation: wall clock less the monotonic one */
} fy_tm;

/* The wall-clock time (µs since the epoch) of a monotonic reading: one
 * clock read less per timed post, at the price of NTP's slewing since the
 * agent was created (microseconds a day). */
static inline uint64_t fy_tm_wall_us(const fy_tm *tm, uint64_t mono_ns)
{
    return mono_ns / 1000u + tm->wall_minus_mono_us;
}

/* Sets up tm (resolving the switches) and starts its exporters.
 * INVALID_PARAM for bad settings, IO when the ring file cannot be made. */
ferry_status fy_tm_init(fy_tm *tm, const char *agent, const fy_tm_settings *s);
void fy_tm_fini(fy_tm *tm);
/* A backend of index idx exists, named name. */
void fy_tm_backend_add(fy_tm *tm, uint32_t idx, const char *name);

/* ---- what the core reports ---- */
/* Every post that went out, telemetry on or off: requests, bytes and
 * notifications of its backend (the agent's totals are their sum). */
void fy_tm_count_post(fy_tm *tm, uint32_t be, bool write, uint64_t bytes, bool notif);
/* The agent's totals over its backends: tx and rx bytes, tx and rx requests. */
void fy_tm_traffic(fy_tm *tm, uint64_t *tx_bytes, uint64_t *rx_bytes, uint64_t *tx_requests,
                   uint64_t *rx_requests);
/* Only when cfg.on, for a timed post (FY_TM_TIME_EVERY). now_ns: the
 * monotonic time of the event, which the core has read anyway (an event
 * ring's timestamp comes from it: no clock read of its own). */
void fy_tm_xfer_post(fy_tm *tm, uint32_t be, bool write, uint64_t bytes, uint64_t post_us,
                     uint64_t now_ns);
void fy_tm_xfer_done(fy_tm *tm, uint32_t be, bool write, uint64_t bytes, uint64_t xfer_us,
                     ferry_status rc, uint64_t now_ns);
/* Only when cfg.on, for an untimed post that ended: its status, if an error. */
void fy_tm_xfer_failed(fy_tm *tm, uint32_t be, ferry_status rc);
/* A request's first post and every FY_TM_TIME_EVERY-th after it are timed
 * (every one while the event ring, which stamps each event, is on): the
 * two fine clock reads of a timed post cost twice a small repost. */
#define FY_TM_TIME_EVERY 256u
void fy_tm_notif(fy_tm *tm, uint32_t be, int what); /* FY_TM_NOTIF_* */
enum { FY_TM_NOTIF_SENT, FY_TM_NOTIF_RECEIVED, FY_TM_NOTIF_DROPPED };

/* The ledger: a region of len bytes is (de)registered with backend be.
 * fy_tm_ledger_check: NO_RESOURCES (logged, naming the cap) when len more
 * bytes would pass be's cap. */
/* Memory types the caps count: those a registration pins. */
bool fy_tm_pinned(ferry_mem_type type);
ferry_status fy_tm_ledger_check(fy_tm *tm, uint32_t be, ferry_mem_type type, uint64_t len);
void fy_tm_ledger_add(fy_tm *tm, uint32_t be, ferry_mem_type type, uint64_t dev, uint64_t len);
void fy_tm_ledger_sub(fy_tm *tm, uint32_t be, ferry_mem_type type, uint64_t dev, uint64_t len);
/* The agent-wide ledger (a region counted once): regions (+/-) of bytes. */
void fy_tm_agent_ledger(fy_tm *tm, ferry_mem_type type, int64_t regions, int64_t bytes);

/* ---- snapshots (tm_snapshot.c) ---- */
/* Every series of tm, filtered by cfg.metrics. OK or NO_MEMORY. */
ferry_status fy_tm_snapshot(fy_tm *tm, ferry_metrics **out);
/* Appends the Prometheus sample lines of m (no HELP/TYPE lines) to f. */
void fy_tm_samples(const ferry_metrics *m, FILE *f);
/* The family of a sample line's metric name (suffixes _total, _bucket,
 * _sum, _count stripped), as an index for fy_tm_family_header; -1: none. */
int fy_tm_family_of_line(const char *line);
/* Writes the HELP and TYPE lines of family i. */
void fy_tm_family_header(int i, FILE *f);
/* Writes sample lines (any order, from any number of snapshots and
 * processes) grouped by family, each group under its HELP and TYPE lines;
 * lines of no known family are left out. */
void fy_tm_expose(const char *samples, FILE *out);

/* Host figures (tm_host.c); 0 when unknown. */
uint64_t fy_host_rss_bytes(void);
uint64_t fy_host_mem_available_bytes(void);
uint64_t fy_host_memlock_limit_bytes(void); /* UINT64_MAX: unlimited */

#endif
