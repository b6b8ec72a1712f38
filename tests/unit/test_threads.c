/* SPDX-License-Identifier: Apache-2.0 */
/* One agent, many threads. Workers each register their own buffers and
 * loop: prepare, make, post, poll, verify, take their notification, make an
 * ad hoc request, release, and now and then deregister, register again and
 * reload the agent's own metadata. A side thread meanwhile loads and
 * invalidates another agent's metadata, builds partial metadata, reads the
 * counters and takes notifications too, so each notification is taken by
 * whichever thread comes first: in the end every one was seen exactly once.
 * Run with the progress thread off and on, in RW and STRICT modes; the
 * point is a clean ThreadSanitizer run as much as the checks. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/ferry.h>

#include "harness.h"
#include "testutil.h"

#define NTHREADS 8
#define ITERS    32
#define BLOCK    (8u * 1024u)
#define NBLOCKS  16u
#define BUF      (BLOCK * NBLOCKS)

typedef struct shared {
    ferry_agent *agent;
    const char *name;
    const void *peer_blob; /* another agent's metadata, loaded and dropped */
    size_t peer_len;
    atomic_int seen[NTHREADS][ITERS]; /* notifications taken, by tag */
    atomic_int failures;
    atomic_int workers_left;
} shared;

typedef struct worker {
    shared *sh;
    int id;
    uint8_t *src, *dst;
} worker;

/* Threads cannot use the harness macros (its counters are per program and
 * unsynchronised): they count failures and say why on stdout as TAP
 * comments, one printf per line. */
#define W_CHECK(sh, cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("# %s:%d: thread check failed: %s\n", __FILE__, __LINE__, #cond);               \
            atomic_fetch_add(&(sh)->failures, 1);                                                  \
        }                                                                                          \
    } while (0)

static void note_tag(shared *sh, const void *msg, size_t len)
{
    char text[32];
    int t, i;
    if (len >= sizeof(text))
        return;
    memcpy(text, msg, len);
    text[len] = '\0';
    if (sscanf(text, "t%d-%d", &t, &i) == 2 && t >= 0 && t < NTHREADS && i >= 0 && i < ITERS)
        atomic_fetch_add(&sh->seen[t][i], 1);
}

/* ---- worker ---- */

static ferry_status register_own(worker *w)
{
    ferry_status rc = tu_register(w->sh->agent, w->src, BUF);
    if (rc == FERRY_OK)
        rc = tu_register(w->sh->agent, w->dst, BUF);
    if (rc == FERRY_OK)
        rc = tu_load_self(w->sh->agent); /* same instance: adds our regions */
    return rc;
}

static ferry_status deregister_own(worker *w)
{
    ferry_status rc = tu_deregister(w->sh->agent, w->src, BUF);
    ferry_status rc2 = tu_deregister(w->sh->agent, w->dst, BUF);
    return rc != FERRY_OK ? rc : rc2;
}

static ferry_status prep_blocks(worker *w, ferry_prepped **local, ferry_prepped **remote)
{
    ferry_dlist *l = NULL, *r = NULL;
    ferry_status rc =
        ferry_dlist_create_strided(FERRY_MEM_DRAM, (uintptr_t)w->src, BLOCK, NBLOCKS, BLOCK, 0, &l);
    if (rc == FERRY_OK)
        rc = ferry_dlist_create_strided(FERRY_MEM_DRAM, (uintptr_t)w->dst, BLOCK, NBLOCKS, BLOCK, 0,
                                        &r);
    if (rc == FERRY_OK)
        rc = ferry_prep_dlist(w->sh->agent, NULL, l, NULL, local);
    if (rc == FERRY_OK)
        rc = ferry_prep_dlist(w->sh->agent, w->sh->name, r, NULL, remote);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    return rc;
}

/* Waits until our tag was taken, by us or by the side thread. */
static bool wait_seen(worker *w, int iter, const char *tag)
{
    uint64_t deadline = tu_now_ms() + TU_TIMEOUT_MS;
    while (atomic_load(&w->sh->seen[w->id][iter]) == 0) {
        if (ferry_notif_take_tag(w->sh->agent, w->sh->name, tag, strlen(tag), false) == FERRY_OK)
            atomic_fetch_add(&w->sh->seen[w->id][iter], 1);
        else if (tu_now_ms() > deadline)
            return false;
        else
            tu_sleep_us(100);
    }
    return true;
}

/* Blocks in a shuffled order, one posted request, verified, notified. */
static void prepared_round(worker *w, int iter, tu_rng *rng)
{
    shared *sh = w->sh;
    ferry_prepped *pl = NULL, *pr = NULL;
    ferry_xfer *x = NULL;
    uint32_t li[NBLOCKS], ri[NBLOCKS];
    char tag[32];
    snprintf(tag, sizeof(tag), "t%d-%d", w->id, iter);
    for (uint32_t i = 0; i < NBLOCKS; i++)
        li[i] = ri[i] = i;
    for (uint32_t i = NBLOCKS - 1; i > 0; i--) {
        uint32_t j = (uint32_t)tu_rand_range(rng, 0, i), t = ri[i];
        ri[i] = ri[j];
        ri[j] = t;
    }
    ferry_xfer_opts opts;
    ferry_xfer_opts_init(&opts);
    opts.notif = tag;
    opts.notif_len = strlen(tag);
    tu_fill(w->src, BUF, (uint64_t)w->id << 32 | (uint64_t)iter);
    W_CHECK(sh, prep_blocks(w, &pl, &pr) == FERRY_OK);
    W_CHECK(sh, ferry_xfer_make(sh->agent, FERRY_OP_WRITE, pl, li, pr, ri, NBLOCKS, &opts, &x) ==
                    FERRY_OK);
    ferry_prepped_release(pl);
    ferry_prepped_release(pr);
    if (!x)
        return;
    W_CHECK(sh, tu_post_wait(x) == FERRY_OK);
    for (uint32_t i = 0; i < NBLOCKS; i++)
        W_CHECK(sh, !memcmp(w->dst + ri[i] * BLOCK, w->src + li[i] * BLOCK, BLOCK));
    W_CHECK(sh, wait_seen(w, iter, tag));
    W_CHECK(sh, ferry_xfer_release(x) == FERRY_OK);
}

/* An ad hoc READ of a small (inline) range back into src. */
static void adhoc_round(worker *w)
{
    shared *sh = w->sh;
    ferry_dlist *l = tu_list1(w->src, 1000), *r = tu_list1(w->dst + 5000, 1000);
    ferry_xfer *x = NULL;
    W_CHECK(sh, ferry_xfer_create(sh->agent, FERRY_OP_READ, l, r, sh->name, NULL, &x) == FERRY_OK);
    if (x) {
        W_CHECK(sh, tu_post_wait(x) == FERRY_OK);
        W_CHECK(sh, !memcmp(w->src, w->dst + 5000, 1000));
        ferry_xfer_release(x);
    }
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    shared *sh = w->sh;
    tu_rng rng = tu_rng_seed(tu_seed() + (uint64_t)w->id);
    W_CHECK(sh, register_own(w) == FERRY_OK);
    for (int iter = 0; iter < ITERS; iter++) {
        prepared_round(w, iter, &rng);
        adhoc_round(w);
        if (iter % 8 == 7) { /* registration churn */
            W_CHECK(sh, deregister_own(w) == FERRY_OK);
            W_CHECK(sh, register_own(w) == FERRY_OK);
        }
    }
    W_CHECK(sh, deregister_own(w) == FERRY_OK);
    atomic_fetch_sub(&sh->workers_left, 1);
    return NULL;
}

/* ---- side thread ---- */

static void side_round(shared *sh)
{
    char name[FERRY_NAME_MAX + 1];
    uint64_t gen;
    ferry_notif_batch *b = NULL;
    W_CHECK(sh,
            ferry_md_load(sh->agent, sh->peer_blob, sh->peer_len, name, sizeof(name)) == FERRY_OK);
    W_CHECK(sh, ferry_md_check(sh->agent, "threads-peer", NULL) == FERRY_OK);
    W_CHECK(sh, ferry_md_generation(sh->agent, "threads-peer", &gen) == FERRY_OK);
    W_CHECK(sh, ferry_md_invalidate(sh->agent, "threads-peer") == FERRY_OK);
    if (ferry_notif_take(sh->agent, sh->name, &b) == FERRY_OK) {
        for (size_t i = 0; i < ferry_notif_batch_count(b); i++) {
            const char *from;
            const void *msg;
            size_t len;
            if (ferry_notif_batch_get(b, i, &from, &msg, &len) == FERRY_OK)
                note_tag(sh, msg, len);
        }
        ferry_notif_batch_free(b);
    }
    void *blob = NULL;
    size_t len = 0;
    W_CHECK(sh, ferry_md_get_partial(sh->agent, NULL, 0, true, NULL, &blob, &len) == FERRY_OK);
    ferry_free(blob);
    ferry_counters c;
    ferry_counters_init(&c);
    W_CHECK(sh, ferry_counters_get(sh->agent, &c) == FERRY_OK);
    ferry_mem_usage u;
    ferry_mem_usage_init(&u);
    W_CHECK(sh, ferry_mem_usage_get(sh->agent, &u) == FERRY_OK);
    W_CHECK(sh, ferry_agent_progress(sh->agent) == FERRY_OK);
}

static void *side_main(void *arg)
{
    shared *sh = arg;
    uint64_t deadline = tu_now_ms() + 10 * TU_TIMEOUT_MS;
    while (atomic_load(&sh->workers_left) > 0 && tu_now_ms() < deadline) {
        side_round(sh);
        tu_sleep_us(200);
    }
    return NULL;
}

/* ---- the scenario ---- */

static void run_threads(const char *name, ferry_sync_mode mode, bool progress_thread)
{
    static shared sh; /* large; one scenario at a time */
    ferry_agent_config cfg;
    ferry_agent *peer;
    ferry_param pool[] = TU_POOL_PARAMS("2", "16K", "16K");
    pthread_t tids[NTHREADS], side;
    worker ws[NTHREADS];
    void *blob;
    size_t len;

    memset(&sh, 0, sizeof(sh));
    ferry_agent_config_init(&cfg);
    cfg.sync_mode = mode;
    cfg.progress_thread = progress_thread;
    sh.name = name;
    FY_REQUIRE(tu_agent_with(name, &cfg, pool, 3, &sh.agent, NULL) == FERRY_OK);
    FY_REQUIRE(tu_load_self(sh.agent) == FERRY_OK);
    FY_REQUIRE(tu_agent("threads-peer", &peer) == FERRY_OK);
    FY_REQUIRE(ferry_md_get_local(peer, &blob, &len) == FERRY_OK);
    ferry_agent_destroy(peer);
    sh.peer_blob = blob;
    sh.peer_len = len;
    atomic_store(&sh.workers_left, NTHREADS);

    for (int i = 0; i < NTHREADS; i++) {
        ws[i] = (worker){&sh, i, tu_alloc(BUF), tu_alloc(BUF)};
        FY_REQUIRE(ws[i].src && ws[i].dst);
        FY_REQUIRE(pthread_create(&tids[i], NULL, worker_main, &ws[i]) == 0);
    }
    FY_REQUIRE(pthread_create(&side, NULL, side_main, &sh) == 0);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(tids[i], NULL);
    pthread_join(side, NULL);

    FY_CHECK_EQ(atomic_load(&sh.failures), 0);
    int wrong = 0;
    for (int t = 0; t < NTHREADS; t++)
        for (int i = 0; i < ITERS; i++)
            wrong += atomic_load(&sh.seen[t][i]) != 1;
    FY_CHECK_EQ(wrong, 0);
    FY_CHECK_EQ(tu_drain_notifs(sh.agent, NULL), 0);
    FY_CHECK_EQ(ferry_notif_dropped(sh.agent), 0);
    ferry_mem_usage u;
    ferry_mem_usage_init(&u);
    FY_CHECK_EQ(ferry_mem_usage_get(sh.agent, &u), FERRY_OK);
    FY_CHECK_EQ(u.regions[FERRY_MEM_DRAM], 0);
    ferry_counters c;
    ferry_counters_init(&c);
    FY_CHECK_EQ(ferry_counters_get(sh.agent, &c), FERRY_OK);
    FY_CHECK_EQ(c.tx_requests, NTHREADS * ITERS);
    FY_CHECK_EQ(c.rx_requests, NTHREADS * ITERS);
    FY_CHECK_EQ(c.tx_bytes, (uint64_t)NTHREADS * ITERS * BUF);
    ferry_agent_destroy(sh.agent);
    ferry_free(blob);
    for (int i = 0; i < NTHREADS; i++) {
        free(ws[i].src);
        free(ws[i].dst);
    }
}

static void test_threads_rw(void)
{
    run_threads("threads-rw", FERRY_SYNC_RW, false);
}
static void test_threads_rw_progress(void)
{
    run_threads("threads-rw-pt", FERRY_SYNC_RW, true);
}
static void test_threads_strict_progress(void)
{
    run_threads("threads-strict-pt", FERRY_SYNC_STRICT, true);
}

int main(void)
{
    FY_RUN(test_threads_rw);
    FY_RUN(test_threads_rw_progress);
    FY_RUN(test_threads_strict_progress);
    return fy_test_done();
}
