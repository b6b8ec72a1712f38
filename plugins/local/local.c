/* SPDX-License-Identifier: Apache-2.0 */
/* LOCAL: the built-in backend for transfers inside one agent, DRAM to DRAM.
 *
 * It is the reference implementation of the plugin ABI (include/ferry/plugin.h)
 * and the baseline of the conformance suite, so it is written to be read:
 * every op states what it accepts and why.
 *
 * Loopback only: the "remote" agent is always this agent, remote addresses
 * are our own virtual addresses, and a transfer is a set of memmove() calls
 * (memmove, not memcpy: source and destination of a loopback transfer may
 * overlap). Small transfers run inline in xfer_post; large ones are cut into
 * work items of about `chunk` bytes and copied by a small thread pool.
 *
 * Threading (FERRY_PLUGIN_F_THREAD_SAFE): every op may be called from any
 * thread. Registration, connection info and remotes hold no shared state.
 * Requests share only the pool, guarded by one mutex that is taken once per
 * work item (about `chunk` bytes of copying), never per segment. A request
 * itself belongs to one caller thread at a time, as the agent API says. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ferry/plugin.h"

/* Tests build a second copy as a .so under another name (e.g. LOCAL2) to
 * exercise the loader next to the built-in one. */
#ifndef FY_LOCAL_PLUGIN_NAME
#define FY_LOCAL_PLUGIN_NAME "LOCAL"
#endif
#define FY_LOCAL_VERSION "0.1.0"

/* Limits of the params; beyond them a value is a typo, not a wish. */
#define FY_LOCAL_WORKERS_MAX    256u
#define FY_LOCAL_INLINE_MAX_MAX (1ull << 40) /* 1 TiB: "always inline" */
#define FY_LOCAL_CHUNK_MIN      4096ull
#define FY_LOCAL_CHUNK_MAX      (1ull << 30)

/* A work item also ends after this many segments, so that a transfer of
 * many tiny segments still spreads over the workers. */
#define FY_LOCAL_ITEM_SEGS 16384u

/* Connection info: magic, format version, agent uid, pid (little endian). */
#define FY_LOCAL_INFO_MAGIC   "FYLC"
#define FY_LOCAL_INFO_VERSION 1u
#define FY_LOCAL_INFO_LEN     20u

/* Cost model defaults, used when calibration cannot run. */
#define FY_LOCAL_CAL_BYTES    (4u << 20)
#define FY_LOCAL_CAL_SEGS     4096u
#define FY_LOCAL_CAL_SEG_LEN  64u
#define FY_LOCAL_DEFAULT_BW   5000.0 /* bytes per microsecond: 5 GB/s */
#define FY_LOCAL_DEFAULT_SEG  0.02   /* microseconds per segment */
#define FY_LOCAL_DISPATCH_US  20.0   /* waking a worker and being told it is done */
#define FY_LOCAL_MARGIN_RATIO 0.5    /* memory bandwidth is shared and varies */

#define fy_local_log(host, level, ...) (host)->log((host)->agent_ctx, (level), __VA_ARGS__)

/* A slice of a transfer's byte stream: starts at byte `off` of segment
 * `seg` and runs for `bytes` bytes, across as many segments as needed. */
struct fy_local_item {
    size_t seg;
    uint64_t off;
    uint64_t bytes;
};

struct fy_local;

/* A prepared transfer (the handle returned by xfer_prep). */
struct fy_local_req {
    struct fy_local *be;
    const ferry_plugin_xfer *xfer; /* the core's, valid until release */
    uint64_t total;
    bool pooled; /* decided at prep: workers > 0 && total > inline_max */
    struct fy_local_item *items;
    size_t nitems;
    _Atomic int state; /* ferry_status, published with release order */
    char err[128];     /* xfer_error; written by the owner thread only */

    /* Guarded by the pool lock. */
    struct fy_local_req *q_prev, *q_next;
    bool queued;   /* in the pool's queue: items left to claim */
    bool canceled; /* released while in progress: claim nothing more */
    bool waiting;  /* a release waits for running == 0 */
    size_t next_item, done, running;
    const void *notif; /* the core's, valid until next post or release */
    size_t notif_len;
};

/* Requests with unclaimed items wait in a round-robin queue: a worker takes
 * one item from the head request and moves it to the tail, so a small
 * transfer does not wait behind a large one. */
struct fy_local_pool {
    pthread_mutex_t lock;
    pthread_cond_t work; /* workers: the queue is not empty, or stop */
    pthread_cond_t idle; /* releasers: a canceled request has no running item */
    struct fy_local_req *head, *tail;
    bool stop;
    pthread_t *threads;
    unsigned nthreads;
};

/* The backend's private state; the core allocates and zeroes it. */
struct fy_local {
    const ferry_plugin_host *host;
    unsigned workers;
    uint64_t inline_max;
    uint64_t chunk;
    double bytes_per_us; /* measured memmove bandwidth */
    double seg_us;       /* measured cost of one small segment */
    struct fy_local_pool pool;
};

/* A loaded remote. Only ever ourselves; `be` lets ops check that a handle
 * came from this backend instance and not from another one. */
struct fy_local_remote {
    struct fy_local *be;
};

/* ---- params ----------------------------------------------------------- */

static const ferry_param_spec fy_local_params[] = {
    {"workers", "2",
     "worker threads copying large transfers (0..256); 0: every transfer runs inline in post"},
    {"inline_max", "1048576",
     "bytes (0..1T): a transfer of at most this many bytes is copied inline in post, which "
     "then returns OK"},
    {"chunk", "1048576",
     "bytes per work item when a large transfer is split over the workers (4K..1G)"},
};
#define FY_LOCAL_NUM_PARAMS (sizeof(fy_local_params) / sizeof(fy_local_params[0]))

struct fy_local_range {
    uint64_t min, max;
};
/* Same order as fy_local_params. */
static const struct fy_local_range fy_local_ranges[] = {
    {0, FY_LOCAL_WORKERS_MAX},
    {0, FY_LOCAL_INLINE_MAX_MAX},
    {FY_LOCAL_CHUNK_MIN, FY_LOCAL_CHUNK_MAX},
};
_Static_assert(sizeof(fy_local_ranges) / sizeof(fy_local_ranges[0]) == FY_LOCAL_NUM_PARAMS,
               "one range per param");

/* Binary multiplier of a size suffix, 0 when c is not one. */
static uint64_t fy_local_suffix(char c)
{
    switch (c) {
    case 'k':
    case 'K':
        return 1ull << 10;
    case 'm':
    case 'M':
        return 1ull << 20;
    case 'g':
    case 'G':
        return 1ull << 30;
    case 't':
    case 'T':
        return 1ull << 40;
    default:
        return 0;
    }
}

/* Strict unsigned parse: decimal digits and at most one binary size suffix
 * (K, M, G, T: KiB, MiB, GiB, TiB).
 * strtoull alone would accept spaces, signs ("-1" wraps) and trailing junk. */
static bool fy_local_parse_u64(const char *s, uint64_t *out)
{
    char *end;
    uint64_t v, mul = 1;

    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno)
        return false;
    if (*end) {
        mul = fy_local_suffix(*end);
        if (!mul || end[1] || v > UINT64_MAX / mul)
            return false;
    }
    *out = v * mul;
    return true;
}

static ssize_t fy_local_param_index(const char *key)
{
    for (size_t i = 0; i < FY_LOCAL_NUM_PARAMS; i++)
        if (key && strcmp(key, fy_local_params[i].key) == 0)
            return (ssize_t)i;
    return -1;
}

static ferry_status fy_local_param_set(const ferry_plugin_host *host, const ferry_param *p,
                                       uint64_t *vals)
{
    ssize_t i = fy_local_param_index(p->key);
    uint64_t v;

    if (i < 0) {
        fy_local_log(host, FERRY_LOG_ERROR, "unknown param '%s'", p->key ? p->key : "(null)");
        return FERRY_ERR_INVALID_PARAM;
    }
    if (!fy_local_parse_u64(p->value, &v) || v < fy_local_ranges[i].min ||
        v > fy_local_ranges[i].max) {
        fy_local_log(host, FERRY_LOG_ERROR, "param %s: bad value '%s' (want %llu..%llu)", p->key,
                     p->value ? p->value : "(null)", (unsigned long long)fy_local_ranges[i].min,
                     (unsigned long long)fy_local_ranges[i].max);
        return FERRY_ERR_INVALID_PARAM;
    }
    vals[i] = v;
    return FERRY_OK;
}

/* Defaults first (the core passes every key, but a direct caller may not),
 * then the given values; stops at the first bad one. */
static ferry_status fy_local_parse_params(struct fy_local *be, const ferry_param *params,
                                          size_t num_params)
{
    uint64_t vals[FY_LOCAL_NUM_PARAMS] = {0};
    ferry_status st;

    for (size_t i = 0; i < FY_LOCAL_NUM_PARAMS; i++)
        fy_local_parse_u64(fy_local_params[i].default_value, &vals[i]);
    if (num_params && !params)
        return FERRY_ERR_INVALID_PARAM;
    for (size_t i = 0; i < num_params; i++) {
        st = fy_local_param_set(be->host, &params[i], vals);
        if (st != FERRY_OK)
            return st;
    }
    be->workers = (unsigned)vals[0];
    be->inline_max = vals[1];
    be->chunk = vals[2];
    return FERRY_OK;
}

/* ---- copying ---------------------------------------------------------- */

/* addr..addr+len is a real pointer range: not NULL, no wrap, and (on a
 * 32-bit host) representable as a pointer. */
static bool fy_local_range_ok(uint64_t addr, uint64_t len)
{
    uint64_t end = addr + len;

    return addr != 0 && end >= addr && (uint64_t)(uintptr_t)end == end;
}

static void *fy_local_ptr(uint64_t addr, uint64_t off)
{
    return (void *)(uintptr_t)(addr + off);
}

/* Moves `bytes` bytes of the transfer starting at byte `off` of segment
 * `seg`. The one copy loop, used inline and by the workers. */
static void fy_local_copy(const ferry_plugin_xfer *x, size_t seg, uint64_t off, uint64_t bytes)
{
    bool read = x->op == FERRY_OP_READ;

    for (; bytes; seg++, off = 0) {
        const ferry_plugin_seg *l = &x->local[seg], *r = &x->remote[seg];
        uint64_t n = l->len - off < bytes ? l->len - off : bytes;
        void *dst = fy_local_ptr(read ? l->addr : r->addr, off);
        void *src = fy_local_ptr(read ? r->addr : l->addr, off);

        memmove(dst, src, (size_t)n);
        bytes -= n;
    }
}

static void fy_local_deliver(struct fy_local *be, const void *msg, size_t len)
{
    be->host->notif_deliver(be->host->agent_ctx, be->host->agent_name, msg, len);
}

/* ---- work items --------------------------------------------------------- */

static void fy_local_plan_emit(struct fy_local_item *items, size_t *n, struct fy_local_item *cur)
{
    if (items)
        items[*n] = *cur;
    (*n)++;
    cur->bytes = 0;
}

/* Cuts the transfer into items of at most `chunk` bytes and at most
 * FY_LOCAL_ITEM_SEGS segment pieces: a big segment spans several items,
 * many small ones share one. With items NULL it only counts, so the caller
 * can allocate exactly once (never per segment). */
static size_t fy_local_plan(const ferry_plugin_xfer *x, uint64_t chunk, struct fy_local_item *items)
{
    struct fy_local_item cur = {0, 0, 0};
    size_t n = 0, pieces = 0;

    for (size_t i = 0; i < x->count; i++) {
        for (uint64_t off = 0, len = x->local[i].len; off < len;) {
            uint64_t take = chunk - cur.bytes < len - off ? chunk - cur.bytes : len - off;

            if (cur.bytes == 0)
                cur = (struct fy_local_item){i, off, 0};
            cur.bytes += take;
            off += take;
            if (cur.bytes == chunk || ++pieces == FY_LOCAL_ITEM_SEGS) {
                fy_local_plan_emit(items, &n, &cur);
                pieces = 0;
            }
        }
    }
    if (cur.bytes)
        fy_local_plan_emit(items, &n, &cur);
    return n;
}

static ferry_status fy_local_plan_build(struct fy_local_req *req)
{
    size_t n = fy_local_plan(req->xfer, req->be->chunk, NULL);

    req->items = calloc(n, sizeof(*req->items));
    if (!req->items)
        return FERRY_ERR_NO_MEMORY;
    req->nitems = fy_local_plan(req->xfer, req->be->chunk, req->items);
    return FERRY_OK;
}

/* ---- the pool ----------------------------------------------------------- */
/* Everything below that takes a pool and a request runs with the pool lock
 * held, unless its comment says otherwise. */

static void fy_local_queue_push(struct fy_local_pool *pool, struct fy_local_req *req)
{
    req->q_next = NULL;
    req->q_prev = pool->tail;
    if (pool->tail)
        pool->tail->q_next = req;
    else
        pool->head = req;
    pool->tail = req;
    req->queued = true;
}

static void fy_local_queue_unlink(struct fy_local_pool *pool, struct fy_local_req *req)
{
    if (req->q_prev)
        req->q_prev->q_next = req->q_next;
    else
        pool->head = req->q_next;
    if (req->q_next)
        req->q_next->q_prev = req->q_prev;
    else
        pool->tail = req->q_prev;
    req->q_prev = req->q_next = NULL;
    req->queued = false;
}

/* Takes the next item of the head request and rotates that request to the
 * tail while it has items left (round robin between requests). */
static struct fy_local_req *fy_local_claim(struct fy_local_pool *pool,
                                           const struct fy_local_item **item)
{
    struct fy_local_req *req = pool->head;

    *item = &req->items[req->next_item++];
    req->running++;
    fy_local_queue_unlink(pool, req);
    if (req->next_item < req->nitems)
        fy_local_queue_push(pool, req);
    return req;
}

/* The last item is done: deliver the notification, then publish OK. The
 * notification goes out without the pool lock (the host takes its own
 * locks); `running` still counts this worker, so a concurrent release waits
 * and the request and its notif stay valid. The release store pairs with
 * the acquire load in xfer_check: a poller that sees OK also sees the data
 * (every worker's copy happened before its unlock, which happened before
 * our lock) and the queued notification. */
static void fy_local_complete(struct fy_local_pool *pool, struct fy_local_req *req)
{
    if (req->notif) {
        const void *msg = req->notif;
        size_t len = req->notif_len;

        pthread_mutex_unlock(&pool->lock);
        fy_local_deliver(req->be, msg, len);
        pthread_mutex_lock(&pool->lock);
    }
    atomic_store_explicit(&req->state, FERRY_OK, memory_order_release);
}

static void fy_local_item_done(struct fy_local_pool *pool, struct fy_local_req *req)
{
    req->done++;
    if (req->done == req->nitems && !req->canceled)
        fy_local_complete(pool, req);
    req->running--;
    if (req->running == 0 && req->waiting)
        pthread_cond_broadcast(&pool->idle);
}

static void *fy_local_worker(void *arg)
{
    struct fy_local_pool *pool = arg;
    const struct fy_local_item *item;
    struct fy_local_req *req;
    bool more;

    pthread_mutex_lock(&pool->lock);
    while (!pool->stop) {
        if (!pool->head) {
            pthread_cond_wait(&pool->work, &pool->lock);
            continue;
        }
        req = fy_local_claim(pool, &item);
        more = pool->head != NULL;
        pthread_mutex_unlock(&pool->lock);
        /* Chain wake-up: each worker that leaves work behind wakes one more,
         * instead of the poster waking them all (a thundering herd that
         * also takes the poster's CPU). */
        if (more)
            pthread_cond_signal(&pool->work);
        fy_local_copy(req->xfer, item->seg, item->off, item->bytes);
        pthread_mutex_lock(&pool->lock);
        fy_local_item_done(pool, req);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

/* Queues a posted request (takes the lock). Called by the owner thread
 * while no worker touches the request: it is not queued and not running. */
static void fy_local_submit(struct fy_local_pool *pool, struct fy_local_req *req, const void *notif,
                            size_t notif_len)
{
    pthread_mutex_lock(&pool->lock);
    req->next_item = req->done = 0;
    req->canceled = false;
    req->notif = notif;
    req->notif_len = notif_len;
    atomic_store_explicit(&req->state, FERRY_IN_PROGRESS, memory_order_relaxed);
    fy_local_queue_push(pool, req);
    pthread_mutex_unlock(&pool->lock);
    /* One worker; it wakes the next if items are left (see the worker).
     * After the unlock, so that it does not block on the lock at once. */
    pthread_cond_signal(&pool->work);
}

/* Drops the items nobody claimed and waits for the running ones (takes the
 * lock). Afterwards no worker holds the request. Harmless when the request
 * is not in progress. */
static void fy_local_cancel(struct fy_local_pool *pool, struct fy_local_req *req)
{
    pthread_mutex_lock(&pool->lock);
    if (req->queued)
        fy_local_queue_unlink(pool, req);
    req->canceled = true;
    while (req->running) {
        req->waiting = true;
        pthread_cond_wait(&pool->idle, &pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
}

/* Stops the first n threads and joins them (takes the lock). */
static void fy_local_pool_join(struct fy_local_pool *pool, unsigned n)
{
    pthread_mutex_lock(&pool->lock);
    pool->stop = true;
    pthread_cond_broadcast(&pool->work);
    pthread_mutex_unlock(&pool->lock);
    for (unsigned i = 0; i < n; i++)
        pthread_join(pool->threads[i], NULL);
}

/* Starts the workers with every signal blocked, so that the application's
 * signal handlers never run on a library thread. */
static int fy_local_spawn(struct fy_local_pool *pool, unsigned n)
{
    sigset_t all, old;
    int err = 0;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (pool->nthreads = 0; pool->nthreads < n; pool->nthreads++) {
        err = pthread_create(&pool->threads[pool->nthreads], NULL, fy_local_worker, pool);
        if (err)
            break;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err)
        fy_local_pool_join(pool, pool->nthreads);
    return err;
}

static ferry_status fy_local_pool_start(struct fy_local_pool *pool, unsigned n,
                                        const ferry_plugin_host *host)
{
    ferry_status st = FERRY_ERR_BACKEND;
    int err;

    if (pthread_mutex_init(&pool->lock, NULL))
        return st;
    if (pthread_cond_init(&pool->work, NULL))
        goto destroy_lock;
    if (pthread_cond_init(&pool->idle, NULL))
        goto destroy_work;
    pool->threads = calloc(n, sizeof(*pool->threads));
    if (!pool->threads) {
        st = FERRY_ERR_NO_MEMORY;
        goto destroy_idle;
    }
    err = fy_local_spawn(pool, n);
    if (err) {
        /* The number, not strerror(), which need not be thread-safe. */
        fy_local_log(host, FERRY_LOG_ERROR, "cannot start worker thread: errno %d", err);
        goto free_threads;
    }
    return FERRY_OK;

free_threads:
    free(pool->threads);
destroy_idle:
    pthread_cond_destroy(&pool->idle);
destroy_work:
    pthread_cond_destroy(&pool->work);
destroy_lock:
    pthread_mutex_destroy(&pool->lock);
    return st;
}

static void fy_local_pool_stop(struct fy_local_pool *pool)
{
    fy_local_pool_join(pool, pool->nthreads);
    free(pool->threads);
    pthread_cond_destroy(&pool->idle);
    pthread_cond_destroy(&pool->work);
    pthread_mutex_destroy(&pool->lock);
}

/* ---- cost model --------------------------------------------------------- */

static double fy_local_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Keeps the compiler from dropping copies into memory it sees freed unread. */
static void fy_local_clobber(void *p)
{
    __asm__ __volatile__("" : : "r"(p) : "memory");
}

/* Best of three large memmoves: bytes per microsecond. */
static double fy_local_time_bw(char *buf, size_t n)
{
    double best = 0;

    for (int rep = 0; rep < 3; rep++) {
        double t0 = fy_local_now_us(), dt;

        memmove(buf + n, buf, n);
        fy_local_clobber(buf);
        dt = fy_local_now_us() - t0;
        if (dt > 0 && (best == 0 || dt < best))
            best = dt;
    }
    return best > 0 ? (double)n / best : FY_LOCAL_DEFAULT_BW;
}

/* Microseconds per small segment: what a descriptor costs beyond its bytes. */
static double fy_local_time_seg(char *buf, size_t n)
{
    double t0 = fy_local_now_us(), dt;

    for (size_t i = 0; i < FY_LOCAL_CAL_SEGS; i++)
        memmove(buf + n + i * FY_LOCAL_CAL_SEG_LEN, buf + i * FY_LOCAL_CAL_SEG_LEN,
                FY_LOCAL_CAL_SEG_LEN);
    fy_local_clobber(buf);
    dt = fy_local_now_us() - t0;
    return dt > 0 ? dt / FY_LOCAL_CAL_SEGS : FY_LOCAL_DEFAULT_SEG;
}

/* The figures describe the host, not the agent: measured by the first
 * backend instance of the process, shared by the others. */
static pthread_mutex_t fy_local_cal_lock = PTHREAD_MUTEX_INITIALIZER;
static bool fy_local_cal_done;
static double fy_local_cal_bw, fy_local_cal_seg;

/* Times memmove on a few MiB (a millisecond or so, most of it faulting the
 * pages in): enough to tell a laptop from a server, not a benchmark. The
 * buffer is cache-warm, so the bandwidth is optimistic for transfers larger
 * than the last-level cache; the estimate's margin allows for it. */
static void fy_local_measure(const ferry_plugin_host *host)
{
    size_t n = FY_LOCAL_CAL_BYTES;
    char *buf = malloc(2 * n);

    fy_local_cal_bw = FY_LOCAL_DEFAULT_BW;
    fy_local_cal_seg = FY_LOCAL_DEFAULT_SEG;
    if (!buf) {
        fy_local_log(host, FERRY_LOG_WARN, "no memory to calibrate, using defaults");
        return;
    }
    memset(buf, 0x5a, 2 * n); /* fault the pages in now, not while timing */
    fy_local_cal_bw = fy_local_time_bw(buf, n);
    fy_local_cal_seg = fy_local_time_seg(buf, n);
    free(buf);
}

static void fy_local_calibrate(struct fy_local *be)
{
    pthread_mutex_lock(&fy_local_cal_lock);
    if (!fy_local_cal_done) {
        fy_local_measure(be->host);
        fy_local_cal_done = true;
    }
    be->bytes_per_us = fy_local_cal_bw;
    be->seg_us = fy_local_cal_seg;
    pthread_mutex_unlock(&fy_local_cal_lock);
    fy_local_log(be->host, FERRY_LOG_DEBUG, "memmove %.0f MB/s, %.1f ns per segment",
                 be->bytes_per_us, be->seg_us * 1e3);
}

/* ---- init / fini -------------------------------------------------------- */

static ferry_status fy_local_init(void *priv, const ferry_plugin_host *host,
                                  const ferry_param *params, size_t num_params)
{
    struct fy_local *be = priv;
    ferry_status st;

    /* Without log and notif_deliver there is nobody to tell. */
    if (!be || !host || host->size < sizeof(*host) || !host->log || !host->notif_deliver)
        return FERRY_ERR_INVALID_PARAM;
    be->host = host;
    st = fy_local_parse_params(be, params, num_params);
    if (st != FERRY_OK)
        return st;
    if (be->workers) {
        st = fy_local_pool_start(&be->pool, be->workers, host);
        if (st != FERRY_OK)
            return st;
    }
    fy_local_calibrate(be);
    fy_local_log(host, FERRY_LOG_DEBUG, "workers %u, inline_max %llu, chunk %llu", be->workers,
                 (unsigned long long)be->inline_max, (unsigned long long)be->chunk);
    return FERRY_OK;
}

/* Every request was released before (contract), so the queue is empty and
 * the workers are idle: stopping them only wakes and joins them. */
static void fy_local_fini(void *priv)
{
    struct fy_local *be = priv;

    if (be->workers)
        fy_local_pool_stop(&be->pool);
}

/* ---- registration --------------------------------------------------------- */

/* DRAM needs no pinning or key for a memmove: registration only validates.
 * No region state (*region NULL) and no public bytes. */
static ferry_status fy_local_reg(void *priv, ferry_mem_type type, const ferry_desc *desc,
                                 const void *meta, size_t meta_len, void **region, void **pub,
                                 size_t *pub_len)
{
    (void)priv;
    (void)meta;
    (void)meta_len;
    if (type != FERRY_MEM_DRAM)
        return FERRY_ERR_NOT_SUPPORTED;
    if (!desc || !region || !pub || !pub_len || desc->len == 0 ||
        !fy_local_range_ok(desc->addr, desc->len))
        return FERRY_ERR_INVALID_PARAM;
    *region = NULL;
    *pub = NULL;
    *pub_len = 0;
    return FERRY_OK;
}

static void fy_local_dereg(void *priv, void *region)
{
    (void)priv;
    (void)region;
}

/* ---- connection info and remotes ---------------------------------------- */

static void fy_local_put_le(uint8_t *p, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Who we are: the agent uid tells agents apart; the pid tells a fork()ed
 * child (same uid, copied memory, different address space) from us. */
static void fy_local_info_fill(const ferry_plugin_host *host, uint8_t *p)
{
    memcpy(p, FY_LOCAL_INFO_MAGIC, 4);
    fy_local_put_le(p + 4, FY_LOCAL_INFO_VERSION, 4);
    fy_local_put_le(p + 8, host->agent_uid, 8);
    fy_local_put_le(p + 16, (uint64_t)getpid(), 4);
}

static ferry_status fy_local_conn_info(void *priv, void **info, size_t *len)
{
    struct fy_local *be = priv;
    uint8_t *p;

    if (!info || !len)
        return FERRY_ERR_INVALID_PARAM;
    p = malloc(FY_LOCAL_INFO_LEN);
    if (!p)
        return FERRY_ERR_NO_MEMORY;
    fy_local_info_fill(be->host, p);
    *info = p;
    *len = FY_LOCAL_INFO_LEN;
    return FERRY_OK;
}

/* Same bytes as our own info: the same agent instance in this process. */
static bool fy_local_info_is_self(const ferry_plugin_host *host, const void *info, size_t len)
{
    uint8_t self[FY_LOCAL_INFO_LEN];

    if (!info || len != FY_LOCAL_INFO_LEN)
        return false;
    fy_local_info_fill(host, self);
    return memcmp(self, info, FY_LOCAL_INFO_LEN) == 0;
}

/* Only ourselves is reachable. Any other agent, even in this process, is
 * NOT_SUPPORTED: that is not an error, the agent is simply not served by
 * this backend. */
static ferry_status fy_local_remote_load(void *priv, const char *name, uint64_t uid,
                                         const void *info, size_t len, void **remote)
{
    struct fy_local *be = priv;
    struct fy_local_remote *r;

    if (!remote)
        return FERRY_ERR_INVALID_PARAM;
    if (uid != be->host->agent_uid || !fy_local_info_is_self(be->host, info, len)) {
        fy_local_log(be->host, FERRY_LOG_DEBUG, "agent '%s' is not this agent: not reachable",
                     name ? name : "(null)");
        return FERRY_ERR_NOT_SUPPORTED;
    }
    r = malloc(sizeof(*r));
    if (!r)
        return FERRY_ERR_NO_MEMORY;
    r->be = be;
    *remote = r;
    return FERRY_OK;
}

static void fy_local_remote_unload(void *priv, void *remote)
{
    (void)priv;
    free(remote);
}

static bool fy_local_is_ours(struct fy_local *be, const void *remote)
{
    return remote && ((const struct fy_local_remote *)remote)->be == be;
}

/* Remote addresses are our own virtual addresses: nothing to map. */
static ferry_status fy_local_rregion_load(void *priv, void *remote, ferry_mem_type type,
                                          const ferry_desc *desc, const void *pub, size_t pub_len,
                                          void **rregion)
{
    (void)pub;
    (void)pub_len;
    if (type != FERRY_MEM_DRAM)
        return FERRY_ERR_NOT_SUPPORTED;
    if (!fy_local_is_ours(priv, remote) || !desc || !rregion)
        return FERRY_ERR_INVALID_PARAM;
    *rregion = NULL;
    return FERRY_OK;
}

static void fy_local_rregion_unload(void *priv, void *remote, void *rregion)
{
    (void)priv;
    (void)remote;
    (void)rregion;
}

/* ---- transfers ------------------------------------------------------------ */

static bool fy_local_seg_ok(const ferry_plugin_seg *s)
{
    return s->len == 0 || fy_local_range_ok(s->addr, s->len);
}

/* One pass over the segments: equal lengths, addresses that do not wrap,
 * and a total that fits and matches the core's. Cheap next to the copy, and
 * it keeps the workers from ever walking off an array. */
static ferry_status fy_local_check_segs(const ferry_plugin_xfer *x, uint64_t *total)
{
    uint64_t sum = 0;

    if (x->count && (!x->local || !x->remote))
        return FERRY_ERR_INVALID_PARAM;
    for (size_t i = 0; i < x->count; i++) {
        const ferry_plugin_seg *l = &x->local[i], *r = &x->remote[i];

        if (l->len != r->len || !fy_local_seg_ok(l) || !fy_local_seg_ok(r) ||
            l->len > UINT64_MAX - sum)
            return FERRY_ERR_INVALID_PARAM;
        sum += l->len;
    }
    if (sum != x->total_bytes)
        return FERRY_ERR_INVALID_PARAM;
    *total = sum;
    return FERRY_OK;
}

static ferry_status fy_local_check_xfer(struct fy_local *be, const ferry_plugin_xfer *x,
                                        uint64_t *total)
{
    ferry_status st;

    if (!x)
        return FERRY_ERR_INVALID_PARAM;
    if (x->local_type != FERRY_MEM_DRAM || x->remote_type != FERRY_MEM_DRAM)
        return FERRY_ERR_NOT_SUPPORTED;
    if (x->op != FERRY_OP_READ && x->op != FERRY_OP_WRITE) {
        fy_local_log(be->host, FERRY_LOG_ERROR, "prep: unknown op %d", (int)x->op);
        return FERRY_ERR_INVALID_PARAM;
    }
    if (!fy_local_is_ours(be, x->remote_agent)) {
        fy_local_log(be->host, FERRY_LOG_ERROR, "prep: remote is not this backend's loopback");
        return FERRY_ERR_INVALID_PARAM;
    }
    st = fy_local_check_segs(x, total);
    if (st != FERRY_OK)
        fy_local_log(be->host, FERRY_LOG_ERROR, "prep: inconsistent segments");
    return st;
}

/* Validates once and, for a pooled transfer, cuts it into items now: the
 * arrays do not change until release, so every post reuses the plan and
 * costs O(1) whatever the segment count. */
static ferry_status fy_local_xfer_prep(void *priv, const ferry_plugin_xfer *xfer, void **handle)
{
    struct fy_local *be = priv;
    struct fy_local_req *req;
    uint64_t total = 0;
    ferry_status st;

    if (!handle)
        return FERRY_ERR_INVALID_PARAM;
    st = fy_local_check_xfer(be, xfer, &total);
    if (st != FERRY_OK)
        return st;
    req = calloc(1, sizeof(*req));
    if (!req)
        return FERRY_ERR_NO_MEMORY;
    req->be = be;
    req->xfer = xfer;
    req->total = total;
    req->pooled = be->workers > 0 && total > be->inline_max;
    atomic_init(&req->state, FERRY_ERR_NOT_POSTED);
    if (req->pooled && (st = fy_local_plan_build(req)) != FERRY_OK)
        goto free_req;
    *handle = req;
    return FERRY_OK;

free_req:
    free(req);
    return st;
}

static void fy_local_set_err(struct fy_local_req *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fy_local_set_err(struct fy_local_req *req, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(req->err, sizeof(req->err), fmt, ap);
    va_end(ap);
}

static ferry_status fy_local_run_inline(struct fy_local_req *req, const void *notif, size_t len)
{
    fy_local_copy(req->xfer, 0, 0, req->total);
    if (notif)
        fy_local_deliver(req->be, notif, len);
    atomic_store_explicit(&req->state, FERRY_OK, memory_order_release);
    return FERRY_OK;
}

/* Inline when small (or without workers): OK on return, notification
 * already queued. Otherwise queued for the pool: IN_PROGRESS. */
static ferry_status fy_local_xfer_post(void *priv, void *handle, const void *notif,
                                       size_t notif_len)
{
    struct fy_local_req *req = handle;

    (void)priv;
    if (!req || (!notif && notif_len) || notif_len > FERRY_NOTIF_MAX_LEN)
        return FERRY_ERR_INVALID_PARAM;
    /* The core never reposts an active request; refuse rather than corrupt
     * the pool if it ever did. */
    if (atomic_load_explicit(&req->state, memory_order_acquire) == FERRY_IN_PROGRESS) {
        fy_local_set_err(req, "posted while in progress");
        return FERRY_ERR_REPOST_ACTIVE;
    }
    req->err[0] = '\0';
    if (!req->pooled)
        return fy_local_run_inline(req, notif, notif_len);
    fy_local_submit(&req->be->pool, req, notif, notif_len);
    return FERRY_IN_PROGRESS;
}

/* One atomic load: no lock, no progress to drive. */
static ferry_status fy_local_xfer_check(void *priv, void *handle)
{
    struct fy_local_req *req = handle;

    (void)priv;
    if (!req)
        return FERRY_ERR_INVALID_PARAM;
    return (ferry_status)atomic_load_explicit(&req->state, memory_order_acquire);
}

/* A pooled request may still have items queued or running: cancel waits
 * for the running ones (each at most `chunk` bytes), so no write can land
 * after we return. Its notification is then not delivered, unless the last
 * item had already finished and was delivering it. */
static ferry_status fy_local_xfer_release(void *priv, void *handle)
{
    struct fy_local_req *req = handle;

    (void)priv;
    if (!req)
        return FERRY_OK;
    if (req->pooled)
        fy_local_cancel(&req->be->pool, req);
    free(req->items);
    free(req);
    return FERRY_OK;
}

static const char *fy_local_xfer_error(void *priv, void *handle)
{
    struct fy_local_req *req = handle;

    (void)priv;
    return req ? req->err : "";
}

/* ---- notifications and cost --------------------------------------------- */

/* To ourselves there is no wire: the message is queued before we return. */
static ferry_status fy_local_notif_send(void *priv, void *remote, const void *msg, size_t len)
{
    struct fy_local *be = priv;

    if (!fy_local_is_ours(be, remote) || !msg || len > FERRY_NOTIF_MAX_LEN)
        return FERRY_ERR_INVALID_PARAM;
    fy_local_deliver(be, msg, len);
    return FERRY_OK;
}

/* Bytes over the measured bandwidth (times the workers that can share the
 * transfer: optimistic, memory bandwidth saturates, hence the margin) plus
 * a measured cost per segment, plus a dispatch cost when pooled. */
static ferry_status fy_local_estimate(void *priv, void *handle, ferry_xfer_cost *cost)
{
    struct fy_local *be = priv;
    struct fy_local_req *req = handle;
    double lanes = 1, us;

    if (!req || !cost)
        return FERRY_ERR_INVALID_PARAM;
    if (req->pooled)
        lanes = req->nitems < be->workers ? (double)req->nitems : (double)be->workers;
    us = (double)req->total / (be->bytes_per_us * lanes) + (double)req->xfer->count * be->seg_us;
    if (req->pooled)
        us += FY_LOCAL_DISPATCH_US;
    cost->duration_us = us;
    cost->error_margin_us = us * FY_LOCAL_MARGIN_RATIO;
    cost->method = FERRY_COST_ANALYTICAL;
    return FERRY_OK;
}

/* ---- descriptor ----------------------------------------------------------- */

/* Left NULL, on purpose:
 * supports, mem_types: mem_mask (DRAM, always available) says everything;
 * connect/disconnect:  a loopback needs no connection, remote_load is all;
 * progress, wait_fd, arm: completion comes from inline posts or the pool's
 *             threads; there is nothing to drive, so the agent's progress
 *             thread can skip this backend entirely. */
static const ferry_plugin_ops fy_local_ops = {
    .size = sizeof(ferry_plugin_ops),
    .init = fy_local_init,
    .fini = fy_local_fini,
    .reg = fy_local_reg,
    .dereg = fy_local_dereg,
    .conn_info = fy_local_conn_info,
    .remote_load = fy_local_remote_load,
    .remote_unload = fy_local_remote_unload,
    .rregion_load = fy_local_rregion_load,
    .rregion_unload = fy_local_rregion_unload,
    .xfer_prep = fy_local_xfer_prep,
    .xfer_post = fy_local_xfer_post,
    .xfer_check = fy_local_xfer_check,
    .xfer_release = fy_local_xfer_release,
    .notif_send = fy_local_notif_send,
    .estimate = fy_local_estimate,
    .xfer_error = fy_local_xfer_error,
};

static const ferry_plugin_desc fy_local_desc = {
    .abi_version = FERRY_PLUGIN_ABI_VERSION,
    .flags = FERRY_PLUGIN_F_THREAD_SAFE,
    .name = FY_LOCAL_PLUGIN_NAME,
    .version = FY_LOCAL_VERSION,
    .caps = FERRY_CAP_LOCAL | FERRY_CAP_NOTIF,
    .mem_mask = FERRY_MEM_MASK(FERRY_MEM_DRAM),
    .params = fy_local_params,
    .num_params = FY_LOCAL_NUM_PARAMS,
    .priv_size = sizeof(struct fy_local),
    .ops = &fy_local_ops,
};

FERRY_PLUGIN_DEFINE(LOCAL, fy_local_desc)
