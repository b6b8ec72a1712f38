/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by ferry's C tests (unit, plugin and conformance suites):
 * bounded waits, a reproducible PRNG, fill patterns, and short-hands for the
 * few calls every test repeats (an agent with a LOCAL backend, registering a
 * buffer, loading an agent's own metadata for loopback).
 *
 * Helpers return a ferry_status instead of using the FY_* macros: the harness
 * keeps its counters per translation unit, so only the test file itself may
 * check. Every wait is bounded by a deadline and returns FERRY_ERR_TIMEOUT
 * when it passes, so a broken library fails a test instead of hanging it. */
#ifndef FY_TESTUTIL_H
#define FY_TESTUTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ferry/ferry.h>

/* Generous: valgrind runs tests 20-50 times slower. */
#define TU_TIMEOUT_MS 60000u

static inline uint64_t tu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline void tu_sleep_us(unsigned us)
{
    struct timespec ts = {(time_t)(us / 1000000u), (long)(us % 1000000u) * 1000};
    nanosleep(&ts, NULL);
}

/* ---- reproducible randomness (xorshift64*) ---- */

typedef struct tu_rng {
    uint64_t s;
} tu_rng;

static inline tu_rng tu_rng_seed(uint64_t seed)
{
    tu_rng r = {seed ? seed : 0x9e3779b97f4a7c15ull};
    return r;
}

static inline uint64_t tu_rand(tu_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545f4914f6cdd1dull;
}

/* Uniform enough in [lo, hi] for test data. */
static inline uint64_t tu_rand_range(tu_rng *r, uint64_t lo, uint64_t hi)
{
    return lo + tu_rand(r) % (hi - lo + 1);
}

/* The seed tests start from: FY_SEED from the environment, else fixed, so a
 * failure can be replayed. */
static inline uint64_t tu_seed(void)
{
    const char *env = getenv("FY_SEED");
    return env && *env ? strtoull(env, NULL, 0) : 0x5eed5eedull;
}

/* Fills buf with bytes that depend on seed and position: a misplaced copy
 * shows as a mismatch. */
static inline void tu_fill(void *buf, size_t len, uint64_t seed)
{
    tu_rng r = tu_rng_seed(seed);
    uint8_t *p = buf;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v = tu_rand(&r);
        memcpy(p + i, &v, 8);
    }
    for (; i < len; i++)
        p[i] = (uint8_t)tu_rand(&r);
}

/* FNV-1a over 64-bit words (tail bytewise): cheap enough for tens of MiB
 * under valgrind. */
static inline uint64_t tu_hash(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint64_t h = 0xcbf29ce484222325ull, w;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
    }
    for (; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* Page-aligned, so descriptors built on it look like real KV blocks. */
static inline void *tu_alloc(size_t len)
{
    size_t rounded = (len + 4095u) & ~(size_t)4095u;
    return aligned_alloc(4096, rounded ? rounded : 4096);
}

/* ---- agents ---- */

/* An agent named name with a LOCAL backend created from params. cfg may be
 * NULL (defaults); its name is overridden. */
static inline ferry_status tu_agent_with(const char *name, const ferry_agent_config *cfg,
                                         const ferry_param *params, size_t num_params,
                                         ferry_agent **agent, ferry_backend **backend)
{
    ferry_agent_config c;
    ferry_backend *be;
    if (cfg)
        c = *cfg;
    else
        ferry_agent_config_init(&c);
    c.name = name;
    ferry_status rc = ferry_agent_create(&c, agent);
    if (rc != FERRY_OK)
        return rc;
    rc = ferry_backend_create(*agent, "LOCAL", params, num_params, &be);
    if (rc != FERRY_OK) {
        ferry_agent_destroy(*agent);
        *agent = NULL;
        return rc;
    }
    if (backend)
        *backend = be;
    return FERRY_OK;
}

static inline ferry_status tu_agent(const char *name, ferry_agent **agent)
{
    return tu_agent_with(name, NULL, NULL, 0, agent, NULL);
}

/* LOCAL params that send every transfer over `chunk` bytes to the pool. */
#define TU_POOL_PARAMS(workers, inline_max, chunk)                                                 \
    {                                                                                              \
        {"workers", (workers)}, {"inline_max", (inline_max)},                                      \
        {                                                                                          \
            "chunk", (chunk)                                                                       \
        }                                                                                          \
    }

/* ---- memory ---- */

/* One-descriptor DRAM list; NULL when out of memory. */
static inline ferry_dlist *tu_list1(const void *buf, size_t len)
{
    ferry_dlist *l = NULL;
    if (ferry_dlist_create(FERRY_MEM_DRAM, 1, &l) != FERRY_OK)
        return NULL;
    if (ferry_dlist_add(l, (uintptr_t)buf, len, 0) != FERRY_OK) {
        ferry_dlist_destroy(l);
        return NULL;
    }
    return l;
}

static inline ferry_status tu_register(ferry_agent *agent, const void *buf, size_t len)
{
    ferry_dlist *l = tu_list1(buf, len);
    if (!l)
        return FERRY_ERR_NO_MEMORY;
    ferry_status rc = ferry_register(agent, l, NULL);
    ferry_dlist_destroy(l);
    return rc;
}

static inline ferry_status tu_deregister(ferry_agent *agent, const void *buf, size_t len)
{
    ferry_dlist *l = tu_list1(buf, len);
    if (!l)
        return FERRY_ERR_NO_MEMORY;
    ferry_status rc = ferry_deregister(agent, l, NULL);
    ferry_dlist_destroy(l);
    return rc;
}

/* Loads `from`'s full metadata into `into` (the same agent for loopback). */
static inline ferry_status tu_load_md(ferry_agent *into, ferry_agent *from)
{
    void *blob = NULL;
    size_t len = 0;
    char name[FERRY_NAME_MAX + 1];
    ferry_status rc = ferry_md_get_local(from, &blob, &len);
    if (rc == FERRY_OK)
        rc = ferry_md_load(into, blob, len, name, sizeof(name));
    ferry_free(blob);
    return rc;
}

static inline ferry_status tu_load_self(ferry_agent *agent)
{
    return tu_load_md(agent, agent);
}

/* ---- bounded waits ---- */

/* Polls a posted request until it leaves IN_PROGRESS or timeout_ms pass. */
static inline ferry_status tu_wait(ferry_xfer *x, uint64_t timeout_ms)
{
    uint64_t deadline = tu_now_ms() + timeout_ms;
    ferry_status rc;
    while ((rc = ferry_xfer_status(x)) == FERRY_IN_PROGRESS) {
        if (tu_now_ms() > deadline)
            return FERRY_ERR_TIMEOUT;
        tu_sleep_us(50);
    }
    return rc;
}

/* Posts and waits for completion. */
static inline ferry_status tu_post_wait(ferry_xfer *x)
{
    ferry_status rc = ferry_xfer_post(x);
    return rc == FERRY_IN_PROGRESS ? tu_wait(x, TU_TIMEOUT_MS) : rc;
}

/* Waits for one notification from `from` equal to tag and takes it; never
 * polls a request, so it also proves delivery does not need the poller. */
static inline ferry_status tu_wait_notif(ferry_agent *agent, const char *from, const void *tag,
                                         size_t tag_len, uint64_t timeout_ms)
{
    uint64_t deadline = tu_now_ms() + timeout_ms;
    ferry_status rc;
    while ((rc = ferry_notif_take_tag(agent, from, tag, tag_len, false)) == FERRY_ERR_NOT_FOUND) {
        if (tu_now_ms() > deadline)
            return FERRY_ERR_TIMEOUT;
        ferry_agent_progress(agent);
        tu_sleep_us(50);
    }
    return rc;
}

/* Number of queued notifications from `from` (taken, so the queue is empty
 * afterwards); (size_t)-1 on error. */
static inline size_t tu_drain_notifs(ferry_agent *agent, const char *from)
{
    ferry_notif_batch *b = NULL;
    if (ferry_notif_take(agent, from, &b) != FERRY_OK)
        return (size_t)-1;
    size_t n = ferry_notif_batch_count(b);
    ferry_notif_batch_free(b);
    return n;
}

/* ---- metrics ---- */

/* The series of name whose labels include every key/value pair of the
 * NULL-terminated list ap, or NULL. */
static inline const ferry_metric *tu_metric_vfind(const ferry_metrics *m, const char *name,
                                                  va_list ap)
{
    for (size_t i = 0; i < ferry_metrics_count(m); i++) {
        const ferry_metric *mt = ferry_metrics_at(m, i);
        va_list aq;
        va_copy(aq, ap);
        bool all = !strcmp(mt->name, name);
        for (const char *k; all && (k = va_arg(aq, const char *));) {
            const char *v = va_arg(aq, const char *);
            bool has = false;
            for (size_t j = 0; j < mt->num_labels; j++)
                has |= !strcmp(mt->labels[j].key, k) && !strcmp(mt->labels[j].value, v);
            all = has;
        }
        va_end(aq);
        if (all)
            return mt;
    }
    return NULL;
}

/* tu_metric_find(m, name, key, value, ..., NULL) */
static inline const ferry_metric *tu_metric_find(const ferry_metrics *m, const char *name, ...)
{
    va_list ap;
    va_start(ap, name);
    const ferry_metric *mt = tu_metric_vfind(m, name, ap);
    va_end(ap);
    return mt;
}

/* The value of one series of a fresh snapshot (histograms: the count),
 * -1 when absent, -2 when the snapshot failed:
 * tu_metric_value(agent, name, key, value, ..., NULL). */
static inline long long tu_metric_value(ferry_agent *agent, const char *name, ...)
{
    ferry_metrics *m = NULL;
    if (ferry_metrics_get(agent, &m) != FERRY_OK)
        return -2;
    va_list ap;
    va_start(ap, name);
    const ferry_metric *mt = tu_metric_vfind(m, name, ap);
    va_end(ap);
    long long out = !mt                                  ? -1
                    : mt->kind == FERRY_METRIC_HISTOGRAM ? (long long)mt->count
                                                         : (long long)mt->value;
    ferry_metrics_free(m);
    return out;
}

/* ---- a loopback fixture ---- */

/* One agent with a LOCAL backend, two registered buffers (src filled with a
 * pattern, dst zeroed) and its own metadata loaded, so that requests can
 * target its own name. */
typedef struct tu_loop {
    ferry_agent *agent;
    ferry_backend *be;
    const char *name;
    uint8_t *src, *dst;
    size_t len;
} tu_loop;

static inline ferry_status tu_loop_open(tu_loop *lp, const char *name,
                                        const ferry_agent_config *cfg, const ferry_param *params,
                                        size_t n, size_t len)
{
    memset(lp, 0, sizeof(*lp));
    lp->name = name;
    lp->len = len;
    lp->src = tu_alloc(len);
    lp->dst = tu_alloc(len);
    if (!lp->src || !lp->dst)
        return FERRY_ERR_NO_MEMORY;
    tu_fill(lp->src, len, 1);
    memset(lp->dst, 0, len);
    ferry_status rc = tu_agent_with(name, cfg, params, n, &lp->agent, &lp->be);
    if (rc == FERRY_OK)
        rc = tu_register(lp->agent, lp->src, len);
    if (rc == FERRY_OK)
        rc = tu_register(lp->agent, lp->dst, len);
    if (rc == FERRY_OK)
        rc = tu_load_self(lp->agent);
    return rc;
}

static inline void tu_loop_close(tu_loop *lp)
{
    ferry_agent_destroy(lp->agent);
    free(lp->src);
    free(lp->dst);
    memset(lp, 0, sizeof(*lp));
}

/* An ad hoc request between src and dst over their first len bytes. */
static inline ferry_status tu_loop_xfer(tu_loop *lp, ferry_xfer_op op, size_t len,
                                        const char *notif, ferry_xfer **out)
{
    ferry_dlist *l = tu_list1(lp->src, len), *r = tu_list1(lp->dst, len);
    ferry_xfer_opts opts;
    ferry_xfer_opts_init(&opts);
    opts.notif = notif;
    opts.notif_len = notif ? strlen(notif) : 0;
    ferry_status rc =
        l && r ? ferry_xfer_create(lp->agent, op, l, r, lp->name, &opts, out) : FERRY_ERR_NO_MEMORY;
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    return rc;
}

#endif
