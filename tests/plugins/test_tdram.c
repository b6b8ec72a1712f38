/* SPDX-License-Identifier: Apache-2.0 */
/* The core with a loaded plugin that is not thread-safe and completes in
 * its progress op (TDRAM, see tdram.c), alone and next to LOCAL: progress
 * through status, ferry_agent_progress and the progress thread; canceling
 * a pending request; errors at post and at completion; backend choice among
 * two (creation order, forced, selections), registration and
 * deregistration with chosen backends; per-sender notification queues;
 * several threads on a plugin the core must serialise; and deadlines on
 * transfers that never complete (agent default, per request, environment). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/ferry.h>

#include "harness.h"
#include "testutil.h"

#ifndef FY_TEST_PLUGIN_DIR
#error "meson passes the directory of the test plugins"
#endif

#define SENTINEL ((void *)0x5e5e5e5e)
#define LEN      (64u * 1024u)

/* An agent with the named backends (in that order), two registered
 * buffers, and its own metadata loaded. */
typedef struct fx {
    ferry_agent *agent;
    const char *name;
    ferry_backend *be[2];
    uint8_t *src, *dst;
} fx;

static ferry_status fx_open_cfg(fx *f, const ferry_agent_config *cfg, const char *first,
                                const char *second, const ferry_param *tparams, size_t n)
{
    memset(f, 0, sizeof(*f));
    f->name = cfg->name;
    f->src = tu_alloc(LEN);
    f->dst = tu_alloc(LEN);
    if (!f->src || !f->dst)
        return FERRY_ERR_NO_MEMORY;
    tu_fill(f->src, LEN, 42);
    memset(f->dst, 0, LEN);
    ferry_status rc = ferry_agent_create(cfg, &f->agent);
    const char *plugins[2] = {first, second};
    for (int i = 0; i < 2 && rc == FERRY_OK && plugins[i]; i++) {
        bool td = !strcmp(plugins[i], "TDRAM");
        rc = ferry_backend_create(f->agent, plugins[i], td ? tparams : NULL, td ? n : 0, &f->be[i]);
    }
    if (rc == FERRY_OK)
        rc = tu_register(f->agent, f->src, LEN);
    if (rc == FERRY_OK)
        rc = tu_register(f->agent, f->dst, LEN);
    if (rc == FERRY_OK)
        rc = tu_load_self(f->agent);
    return rc;
}

static ferry_status fx_open(fx *f, const char *name, bool progress_thread, const char *first,
                            const char *second, const ferry_param *tparams, size_t n)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = name;
    cfg.progress_thread = progress_thread;
    return fx_open_cfg(f, &cfg, first, second, tparams, n);
}

static void fx_close(fx *f)
{
    ferry_agent_destroy(f->agent);
    free(f->src);
    free(f->dst);
}

/* A WRITE of src into dst, LEN bytes. */
static ferry_status fx_xfer_opts(fx *f, const ferry_xfer_opts *opts, ferry_xfer **x)
{
    ferry_dlist *l = tu_list1(f->src, LEN), *r = tu_list1(f->dst, LEN);
    ferry_status rc = l && r ? ferry_xfer_create(f->agent, FERRY_OP_WRITE, l, r, f->name, opts, x)
                             : FERRY_ERR_NO_MEMORY;
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    return rc;
}

static ferry_status fx_xfer(fx *f, ferry_backend *forced, const ferry_backend_sel *sel,
                            const char *notif, ferry_xfer **x)
{
    ferry_xfer_opts opts;
    ferry_xfer_opts_init(&opts);
    opts.backend = forced;
    opts.sel = sel;
    opts.notif = notif;
    opts.notif_len = notif ? strlen(notif) : 0;
    return fx_xfer_opts(f, &opts, x);
}

static ferry_backend_sel sel_of(ferry_backend *const *backends, size_t n)
{
    ferry_backend_sel sel;
    ferry_backend_sel_init(&sel);
    sel.backends = backends;
    sel.num_backends = n;
    return sel;
}

/* ---- progress ---- */

/* Nothing moves until someone drives progress; polling the request does. */
static void test_status_drives_progress(void)
{
    fx f;
    ferry_xfer *x;
    FY_REQUIRE(fx_open(&f, "td-status", false, "TDRAM", NULL, NULL, 0) == FERRY_OK);
    FY_REQUIRE(fx_xfer(&f, NULL, NULL, "done", &x) == FERRY_OK);
    FY_CHECK(ferry_xfer_backend(x) == f.be[0]);
    FY_CHECK_EQ(ferry_xfer_post(x), FERRY_IN_PROGRESS);
    FY_CHECK(f.dst[0] == 0 && f.dst[LEN - 1] == 0);
    FY_CHECK_EQ(ferry_xfer_status(x), FERRY_OK);
    FY_CHECK(!memcmp(f.src, f.dst, LEN));
    FY_CHECK_EQ(ferry_notif_take_tag(f.agent, f.name, "done", 4, false), FERRY_OK);
    ferry_xfer_release(x);
    fx_close(&f);
}

/* Without a progress thread, looking for notifications drives progress
 * too: a target that only waits for notifications still receives them. */
static void test_notif_take_drives_progress(void)
{
    fx f;
    ferry_xfer *x;
    ferry_notif_batch *b;
    FY_REQUIRE(fx_open(&f, "td-take", false, "TDRAM", NULL, NULL, 0) == FERRY_OK);
    FY_REQUIRE(fx_xfer(&f, NULL, NULL, "done", &x) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_post(x), FERRY_IN_PROGRESS);
    FY_CHECK_EQ(ferry_notif_take_tag(f.agent, f.name, "done", 4, false), FERRY_OK);
    FY_CHECK(!memcmp(f.src, f.dst, LEN));
    FY_CHECK_EQ(ferry_xfer_status(x), FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_post(x), FERRY_IN_PROGRESS);
    FY_REQUIRE(ferry_notif_take(f.agent, NULL, &b) == FERRY_OK);
    FY_CHECK_EQ(ferry_notif_batch_count(b), 1);
    ferry_notif_batch_free(b);
    ferry_xfer_release(x);
    fx_close(&f);
}

static void test_agent_progress_drives(void)
{
    fx f;
    ferry_xfer *x;
    FY_REQUIRE(fx_open(&f, "td-agent-progress", false, "TDRAM", NULL, NULL, 0) == FERRY_OK);
    FY_REQUIRE(fx_xfer(&f, NULL, NULL, "done", &x) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_post(x), FERRY_IN_PROGRESS);
    FY_CHECK_EQ(ferry_agent_progress(f.agent), FERRY_OK);
    FY_CHECK(!memcmp(f.src, f.dst, LEN));
    FY_CHECK_EQ(ferry_notif_take_tag(f.agent, f.name, "done", 4, false), FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_status(x), FERRY_OK);
    ferry_xfer_release(x);
    fx_close(&f);
}

/* With the progress thread, nothing but waiting is needed. */
static void test_progress_thread_drives(void)
{
    fx f;
    ferry_xfer *x;
    FY_REQUIRE(fx_open(&f, "td-thread", true, "TDRAM", NULL, NULL, 0) == FERRY_OK);
    FY_REQUIRE(fx_xfer(&f, NULL, NULL, "done", &x) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_post(x), FERRY_IN_PROGRESS);
    uint64_t deadline = tu_now_ms() + TU_TIMEOUT_MS;
    ferry_status rc;
    while ((rc = ferry_notif_take_tag(f.agent, f.name, "done", 4, false)) != FERRY_OK &&
           tu_now_ms() < deadline)
        tu_sleep_us(200);
    FY_CHECK_EQ(rc, FERRY_OK);
    FY_CHECK(!memcmp(f.src, f.dst, LEN));
    FY_CHECK_EQ(ferry_xfer_status(x), FERRY_OK);
    ferry_xfer_release(x);
    fx_close(&f);
}

/* A backend with a wait fd: the idle progress thread sleeps in poll(),
 * and every post still completes promptly (well under the idle sleep of
 * a second, also in a sequence of posts with idle gaps). */
static void test_progress_thread_wait_fd(void)
{
    fx f;
    ferry_xfer *x;
    ferry_param p[] = {{"fd", "1"}};
    FY_REQUIRE(fx_open(&f, "td-fd", true, "TDRAM", NULL, p, 1) == FERRY_OK);
    FY_REQUIRE(fx_xfer(&f, NULL, NULL, "fd", &x) == FERRY_OK);
    uint64_t t0 = tu_now_ms(), slowest = 0;
    for (int i = 0; i < 20; i++) {
        uint64_t start = tu_now_ms();
        FY_CHECK_EQ(ferry_xfer_post(x), FERRY_IN_PROGRESS);
        /* Not polling the request: only the thread can complete it. */
        ferry_status rc;
        while ((rc = ferry_notif_take_tag(f.agent, f.name, "fd", 2, false)) != FERRY_OK &&
               tu_now_ms() - start < TU_TIMEOUT_MS)
            tu_sleep_us(100);
        FY_CHECK_EQ(rc, FERRY_OK);
        FY_CHECK_EQ(tu_wait(x, TU_TIMEOUT_MS), FERRY_OK);
        if (tu_now_ms() - start > slowest)
            slowest = tu_now_ms() - start;
        if (i % 5 == 4)
            tu_sleep_us(200 * 1000); /* long enough for the thread to fall asleep */
    }
    printf("# 20 posts in %llu ms, slowest %llu ms\n", (unsigned long long)(tu_now_ms() - t0),
           (unsigned long long)slowest);
    FY_CHECK(slowest < 900);
    FY_CHECK(!memcmp(f.src, f.dst, LEN));
    ferry_xfer_release(x);
    fx_close(&f);
}

/* The descriptor claims VRAM, the instance (mem_types) only DRAM. */
static void test_runtime_mem_types(void)
{
    fx f;
    ferry_backend_caps caps;
    uint32_t mask = 0;
    FY_REQUIRE(fx_open(&f, "td-mem", false, "TDRAM", NULL, NULL, 0) == FERRY_OK);
    FY_CHECK_EQ(ferry_plugin_mem_types(f.agent, "TDRAM", &mask), FERRY_OK);
    FY_CHECK_EQ(mask, FERRY_MEM_MASK(FERRY_MEM_DRAM) | FERRY_MEM_MASK(FERRY_MEM_VRAM));
    ferry_backend_caps_init(&caps);
    FY_CHECK_EQ(ferry_backend_get_caps(f.be[0], &caps), FERRY_OK);
    FY_CHECK_EQ(caps.mem_mask, FERRY_MEM_MASK(FERRY_MEM_DRAM));
    ferry_dlist *vram;
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_VRAM, 1, &vram) == FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add(vram, 0x10000, 4096, 0), FERRY_OK);
    FY_CHECK_EQ(ferry_register(f.agent, vram, NULL), FERRY_ERR_NOT_FOUND);
    ferry_dlist_destroy(vram);
    fx_close(&f);
}

/* Released while pending: never copied, never notified. */
static void test_release_pending(void)
{
    fx f;
    ferry_xfer *x;
    FY_REQUIRE(fx_open(&f, "td-release", false, "TDRAM", NULL, NULL, 0) == FERRY_OK);
    FY_REQUIRE(fx_xfer(&f, NULL, NULL, "never", &x) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_post(x), FERRY_IN_PROGRESS);
    FY_CHECK_EQ(ferry_xfer_release(x), FERRY_OK);
    FY_CHECK_EQ(ferry_agent_progress(f.agent), FERRY_OK);
    FY_CHECK(f.dst[0] == 0 && f.dst[LEN - 1] == 0);
    FY_CHECK_EQ(tu_drain_notifs(f.agent, NULL), 0);
    fx_close(&f);
}

/* ---- errors ---- */

static void test_error_at_post(void)
{
    fx f;
    ferry_xfer *x;
    ferry_counters c;
    ferry_param p[] = {{"fail", "post"}};
    FY_REQUIRE(fx_open(&f, "td-fail-post", false, "TDRAM", NULL, p, 1) == FERRY_OK);
    FY_REQUIRE(fx_xfer(&f, NULL, NULL, NULL, &x) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_post(x), FERRY_ERR_BACKEND);
    FY_CHECK_EQ(ferry_xfer_status(x), FERRY_ERR_BACKEND);
    FY_CHECK(strstr(ferry_xfer_error(x), "injected post failure") != NULL);
    ferry_counters_init(&c);
    FY_CHECK_EQ(ferry_counters_get(f.agent, &c), FERRY_OK);
    FY_CHECK_EQ(c.xfer_errors, 1);
    FY_CHECK_EQ(c.tx_requests, 0); /* nothing was started */
    ferry_xfer_release(x);
    fx_close(&f);
}

static void test_error_at_completion(void)
{
    fx f;
    ferry_xfer *x;
    ferry_counters c;
    ferry_param p[] = {{"fail", "complete"}};
    FY_REQUIRE(fx_open(&f, "td-fail-done", false, "TDRAM", NULL, p, 1) == FERRY_OK);
    FY_REQUIRE(fx_xfer(&f, NULL, NULL, "never", &x) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_post(x), FERRY_IN_PROGRESS);
    FY_CHECK_EQ(tu_wait(x, TU_TIMEOUT_MS), FERRY_ERR_IO);
    FY_CHECK_EQ(ferry_xfer_status(x), FERRY_ERR_IO); /* stays */
    FY_CHECK(strstr(ferry_xfer_error(x), "injected I/O error") != NULL);
    FY_CHECK_EQ(tu_drain_notifs(f.agent, NULL), 0);
    /* A failed request may be posted again. */
    FY_CHECK_EQ(ferry_xfer_post(x), FERRY_IN_PROGRESS);
    FY_CHECK_EQ(tu_wait(x, TU_TIMEOUT_MS), FERRY_ERR_IO);
    ferry_counters_init(&c);
    FY_CHECK_EQ(ferry_counters_get(f.agent, &c), FERRY_OK);
    FY_CHECK_EQ(c.xfer_errors, 2);
    ferry_xfer_release(x);
    fx_close(&f);
}

static void test_no_estimator(void)
{
    fx f;
    ferry_xfer *x;
    ferry_xfer_cost cost;
    FY_REQUIRE(fx_open(&f, "td-estimate", false, "TDRAM", NULL, NULL, 0) == FERRY_OK);
    FY_REQUIRE(fx_xfer(&f, NULL, NULL, NULL, &x) == FERRY_OK);
    ferry_xfer_cost_init(&cost);
    FY_CHECK_EQ(ferry_xfer_estimate(x, &cost), FERRY_ERR_NOT_SUPPORTED);
    ferry_xfer_release(x);
    fx_close(&f);
}

/* ---- deadlines ---- */

/* A TDRAM agent whose first `stall` posts never complete, with the given
 * agent deadline (0: the default). */
static ferry_status fx_open_stalling(fx *f, const char *name, bool progress_thread,
                                     uint32_t agent_ms, const char *stall)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = name;
    cfg.progress_thread = progress_thread;
    cfg.xfer_timeout_ms = agent_ms;
    ferry_param p[] = {{"stall", stall}};
    return fx_open_cfg(f, &cfg, "TDRAM", NULL, p, 1);
}

static ferry_status fx_xfer_timeout(fx *f, uint32_t timeout_ms, ferry_xfer **x)
{
    ferry_xfer_opts opts;
    ferry_xfer_opts_init(&opts);
    opts.timeout_ms = timeout_ms;
    opts.notif = "stalled";
    opts.notif_len = 7;
    return fx_xfer_opts(f, &opts, x);
}

/* Polls until the request leaves IN_PROGRESS (its status) or bound_ms pass
 * (IN_PROGRESS); *ms: the time it took. */
static ferry_status poll_until(ferry_xfer *x, uint64_t bound_ms, uint64_t *ms)
{
    uint64_t t0 = tu_now_ms();
    ferry_status rc;
    while ((rc = ferry_xfer_status(x)) == FERRY_IN_PROGRESS && tu_now_ms() - t0 < bound_ms)
        tu_sleep_us(200);
    *ms = tu_now_ms() - t0;
    return rc;
}

/* A post that never completes ends with TIMEOUT once the agent's deadline
 * passes, with the detail; nothing was written; the request can be posted
 * again (and completes), and released. */
static void deadline_agent_default(bool progress_thread)
{
    fx f;
    ferry_xfer *x;
    uint64_t ms;
    FY_REQUIRE(fx_open_stalling(&f, "td-deadline", progress_thread, 200, "1") == FERRY_OK);
    FY_REQUIRE(fx_xfer_timeout(&f, 0, &x) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_post(x), FERRY_IN_PROGRESS);
    FY_CHECK_EQ(poll_until(x, 5000, &ms), FERRY_ERR_TIMEOUT);
    printf("# TIMEOUT after %llu ms (deadline 200 ms)\n", (unsigned long long)ms);
    FY_CHECK(ms >= 190 && ms < 2000);
    FY_CHECK(strstr(ferry_xfer_error(x), "no completion within 200 ms") != NULL);
    FY_CHECK_EQ(ferry_xfer_status(x), FERRY_ERR_TIMEOUT); /* stays */
    FY_CHECK(f.dst[0] == 0 && f.dst[LEN - 1] == 0);
    FY_CHECK_EQ(tu_drain_notifs(f.agent, NULL), 0);
    FY_CHECK_EQ(ferry_xfer_post(x), FERRY_IN_PROGRESS); /* prepared again */
    FY_CHECK_EQ(poll_until(x, 5000, &ms), FERRY_OK);
    FY_CHECK(!memcmp(f.src, f.dst, LEN));
    FY_CHECK_EQ(ferry_xfer_release(x), FERRY_OK);
    fx_close(&f);
}

static void test_deadline_agent_default(void)
{
    deadline_agent_default(false);
}

static void test_deadline_progress_thread(void)
{
    deadline_agent_default(true);
}

/* The request's own timeout beats the agent's, both ways, at make and
 * through ferry_xfer_set_timeout. */
static void test_deadline_request_overrides(void)
{
    fx f;
    ferry_xfer *x;
    uint64_t ms;
    FY_REQUIRE(fx_open_stalling(&f, "td-deadline-req", false, 100000, "3") == FERRY_OK);
    FY_REQUIRE(fx_xfer_timeout(&f, 100, &x) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_post(x), FERRY_IN_PROGRESS);
    FY_CHECK_EQ(poll_until(x, 5000, &ms), FERRY_ERR_TIMEOUT);
    FY_CHECK(ms >= 90 && ms < 2000);
    FY_CHECK(strstr(ferry_xfer_error(x), "within 100 ms") != NULL);
    /* No deadline at all: still running long after the 100 ms. */
    FY_CHECK_EQ(ferry_xfer_set_timeout(x, FERRY_TIMEOUT_NONE), FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_post(x), FERRY_IN_PROGRESS);
    FY_CHECK_EQ(poll_until(x, 400, &ms), FERRY_IN_PROGRESS);
    FY_CHECK_EQ(ferry_xfer_release(x), FERRY_OK); /* cancels it */
    /* A later setter beats the opts. */
    FY_REQUIRE(fx_xfer_timeout(&f, FERRY_TIMEOUT_NONE, &x) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_set_timeout(x, 50), FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_post(x), FERRY_IN_PROGRESS);
    FY_CHECK_EQ(poll_until(x, 5000, &ms), FERRY_ERR_TIMEOUT);
    FY_CHECK(ms < 2000);
    FY_CHECK_EQ(ferry_xfer_release(x), FERRY_OK);
    FY_CHECK(f.dst[0] == 0 && f.dst[LEN - 1] == 0);
    fx_close(&f);
}

/* An agent with no deadline keeps waiting; the request's own one applies. */
static void test_deadline_agent_none(void)
{
    fx f;
    ferry_xfer *x;
    uint64_t ms;
    FY_REQUIRE(fx_open_stalling(&f, "td-deadline-none", false, FERRY_TIMEOUT_NONE, "2") ==
               FERRY_OK);
    FY_REQUIRE(fx_xfer_timeout(&f, 0, &x) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_post(x), FERRY_IN_PROGRESS);
    FY_CHECK_EQ(poll_until(x, 300, &ms), FERRY_IN_PROGRESS);
    FY_CHECK_EQ(ferry_xfer_release(x), FERRY_OK);
    FY_REQUIRE(fx_xfer_timeout(&f, 100, &x) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_post(x), FERRY_IN_PROGRESS);
    FY_CHECK_EQ(poll_until(x, 5000, &ms), FERRY_ERR_TIMEOUT);
    FY_CHECK_EQ(ferry_xfer_release(x), FERRY_OK);
    fx_close(&f);
}

/* The default, and FERRY_XFER_TIMEOUT_MS: ms, "none", or junk (ignored). */
static void test_deadline_env(void)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    FY_CHECK_EQ(cfg.xfer_timeout_ms, FERRY_XFER_TIMEOUT_DEFAULT_MS);
    const struct {
        const char *env;
        uint32_t want;
    } cases[] = {{"1500", 1500},
                 {"none", FERRY_TIMEOUT_NONE},
                 {"12x", FERRY_XFER_TIMEOUT_DEFAULT_MS},
                 {"0", FERRY_XFER_TIMEOUT_DEFAULT_MS},
                 {"-5", FERRY_XFER_TIMEOUT_DEFAULT_MS}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        setenv("FERRY_XFER_TIMEOUT_MS", cases[i].env, 1);
        ferry_agent_config_init(&cfg);
        FY_CHECK_EQ(cfg.xfer_timeout_ms, cases[i].want);
    }
    /* The environment sets the default; a value in the config wins. */
    setenv("FERRY_XFER_TIMEOUT_MS", "100", 1);
    fx f;
    ferry_xfer *x;
    uint64_t ms;
    FY_REQUIRE(fx_open_stalling(&f, "td-deadline-env", false, 0, "1") == FERRY_OK);
    unsetenv("FERRY_XFER_TIMEOUT_MS");
    FY_REQUIRE(fx_xfer_timeout(&f, 0, &x) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_post(x), FERRY_IN_PROGRESS);
    FY_CHECK_EQ(poll_until(x, 5000, &ms), FERRY_ERR_TIMEOUT);
    FY_CHECK(strstr(ferry_xfer_error(x), "within 100 ms") != NULL);
    FY_CHECK_EQ(ferry_xfer_release(x), FERRY_OK);
    fx_close(&f);
}

/* ---- two backends ---- */

static void test_choice_among_two(void)
{
    fx f;
    ferry_xfer *x;
    FY_REQUIRE(fx_open(&f, "two", false, "LOCAL", "TDRAM", NULL, 0) == FERRY_OK);
    ferry_backend *local = f.be[0], *tdram = f.be[1];
    /* Creation order. */
    FY_REQUIRE(fx_xfer(&f, NULL, NULL, NULL, &x) == FERRY_OK);
    FY_CHECK(ferry_xfer_backend(x) == local);
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    ferry_xfer_release(x);
    /* Forced. */
    memset(f.dst, 0, LEN);
    FY_REQUIRE(fx_xfer(&f, tdram, NULL, NULL, &x) == FERRY_OK);
    FY_CHECK(ferry_xfer_backend(x) == tdram);
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    FY_CHECK(!memcmp(f.src, f.dst, LEN));
    ferry_xfer_release(x);
    /* The caller's order. */
    ferry_backend *const order[] = {tdram, local};
    ferry_backend_sel sel = sel_of(order, 2);
    FY_REQUIRE(fx_xfer(&f, NULL, &sel, NULL, &x) == FERRY_OK);
    FY_CHECK(ferry_xfer_backend(x) == tdram);
    ferry_xfer_release(x);
    sel = sel_of(order + 1, 1);
    FY_REQUIRE(fx_xfer(&f, NULL, &sel, NULL, &x) == FERRY_OK);
    FY_CHECK(ferry_xfer_backend(x) == local);
    ferry_xfer_release(x);
    fx_close(&f);

    /* Created the other way round, TDRAM comes first. */
    FY_REQUIRE(fx_open(&f, "two-rev", false, "TDRAM", "LOCAL", NULL, 0) == FERRY_OK);
    FY_REQUIRE(fx_xfer(&f, NULL, NULL, NULL, &x) == FERRY_OK);
    FY_CHECK(ferry_xfer_backend(x) == f.be[0]);
    ferry_xfer_release(x);
    fx_close(&f);
}

/* Deregistering from one backend keeps the region for the other. */
static void test_deregister_one_of_two(void)
{
    fx f;
    ferry_xfer *x = SENTINEL;
    ferry_mem_usage u;
    FY_REQUIRE(fx_open(&f, "dereg-one", false, "LOCAL", "TDRAM", NULL, 0) == FERRY_OK);
    ferry_backend *local = f.be[0], *tdram = f.be[1];
    ferry_backend *const only_td[] = {tdram}, *const only_local[] = {local};
    ferry_backend_sel td_sel = sel_of(only_td, 1), local_sel = sel_of(only_local, 1);
    ferry_dlist *l = tu_list1(f.src, LEN);
    FY_CHECK_EQ(ferry_deregister(f.agent, l, &td_sel), FERRY_OK);
    ferry_mem_usage_init(&u);
    FY_CHECK_EQ(ferry_mem_usage_get(f.agent, &u), FERRY_OK);
    FY_CHECK_EQ(u.regions[FERRY_MEM_DRAM], 2);
    FY_CHECK_EQ(fx_xfer(&f, tdram, NULL, NULL, &x), FERRY_ERR_NOT_FOUND);
    FY_CHECK(x == SENTINEL);
    FY_REQUIRE(fx_xfer(&f, NULL, NULL, NULL, &x) == FERRY_OK);
    FY_CHECK(ferry_xfer_backend(x) == local);
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    ferry_xfer_release(x);
    /* Dropping the last backend drops the region. */
    FY_CHECK_EQ(ferry_deregister(f.agent, l, &local_sel), FERRY_OK);
    FY_CHECK_EQ(ferry_mem_usage_get(f.agent, &u), FERRY_OK);
    FY_CHECK_EQ(u.regions[FERRY_MEM_DRAM], 1);
    FY_CHECK_EQ(u.bytes[FERRY_MEM_DRAM], LEN);
    ferry_dlist_destroy(l);
    fx_close(&f);
}

/* Registering with a chosen backend; the region is reachable through it
 * only. */
static void test_register_chosen_backend(void)
{
    fx f;
    ferry_xfer *x = SENTINEL;
    FY_REQUIRE(fx_open(&f, "reg-chosen", false, "LOCAL", "TDRAM", NULL, 0) == FERRY_OK);
    ferry_backend *local = f.be[0], *tdram = f.be[1];
    uint8_t *extra = tu_alloc(LEN);
    FY_REQUIRE(extra);
    ferry_backend *const only_td[] = {tdram};
    ferry_backend_sel td_sel = sel_of(only_td, 1);
    ferry_dlist *el = tu_list1(extra, LEN);
    FY_REQUIRE(ferry_register(f.agent, el, &td_sel) == FERRY_OK);
    FY_REQUIRE(tu_load_self(f.agent) == FERRY_OK);
    ferry_xfer_opts opts;
    ferry_xfer_opts_init(&opts);
    opts.backend = local;
    ferry_dlist *l = tu_list1(f.src, LEN);
    FY_CHECK_EQ(ferry_xfer_create(f.agent, FERRY_OP_WRITE, l, el, f.name, &opts, &x),
                FERRY_ERR_NOT_FOUND);
    FY_CHECK(x == SENTINEL);
    FY_REQUIRE(ferry_xfer_create(f.agent, FERRY_OP_WRITE, l, el, f.name, NULL, &x) == FERRY_OK);
    FY_CHECK(ferry_xfer_backend(x) == tdram);
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    FY_CHECK(!memcmp(f.src, extra, LEN));
    ferry_xfer_release(x);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(el);
    fx_close(&f);
    free(extra);
}

/* An identical registration adding a backend to a known region, then a
 * reload of the same instance's metadata: the new backend must reach the
 * region (its key travels in the blob). */
static void test_reload_adds_backend_to_known_region(void)
{
    fx f;
    ferry_xfer *x = NULL;
    FY_REQUIRE(fx_open(&f, "reg-grow", false, "LOCAL", "TDRAM", NULL, 0) == FERRY_OK);
    ferry_backend *local = f.be[0], *tdram = f.be[1];
    uint8_t *extra = tu_alloc(LEN);
    FY_REQUIRE(extra);
    ferry_backend *const only_td[] = {tdram}, *const only_local[] = {local};
    ferry_backend_sel td_sel = sel_of(only_td, 1), local_sel = sel_of(only_local, 1);
    ferry_dlist *el = tu_list1(extra, LEN), *l = tu_list1(f.src, LEN);
    FY_REQUIRE(ferry_register(f.agent, el, &td_sel) == FERRY_OK);
    FY_REQUIRE(tu_load_self(f.agent) == FERRY_OK);
    FY_REQUIRE(ferry_register(f.agent, el, &local_sel) == FERRY_OK);
    FY_REQUIRE(tu_load_self(f.agent) == FERRY_OK);
    ferry_xfer_opts opts;
    ferry_xfer_opts_init(&opts);
    opts.backend = local;
    FY_CHECK_EQ(ferry_xfer_create(f.agent, FERRY_OP_WRITE, l, el, f.name, &opts, &x), FERRY_OK);
    ferry_xfer_release(x);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(el);
    fx_close(&f);
    free(extra);
}

/* A region deregistered and registered again at the same addresses gets a
 * new key (a transport's rkey); reloading the same instance's metadata
 * must replace the dead key, or transfers to the region use it. */
static void test_reregistered_region_gets_new_key(void)
{
    fx f;
    ferry_xfer *x = NULL;
    FY_REQUIRE(fx_open(&f, "rereg", false, "TDRAM", NULL, NULL, 0) == FERRY_OK);
    FY_REQUIRE(tu_deregister(f.agent, f.dst, LEN) == FERRY_OK);
    FY_REQUIRE(tu_register(f.agent, f.dst, LEN) == FERRY_OK);
    FY_REQUIRE(tu_load_self(f.agent) == FERRY_OK);
    FY_CHECK_EQ(fx_xfer(&f, NULL, NULL, NULL, &x), FERRY_OK);
    if (x) {
        FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
        FY_CHECK(!memcmp(f.src, f.dst, LEN));
        ferry_xfer_release(x);
    }
    fx_close(&f);
}

/* ---- notifications from two senders ---- */

static void test_per_sender_queues(void)
{
    fx f;
    ferry_notif_batch *b;
    ferry_param p[] = {{"sender", "ghost"}};
    FY_REQUIRE(fx_open(&f, "senders", false, "LOCAL", "TDRAM", p, 1) == FERRY_OK);
    ferry_backend *const only_local[] = {f.be[0]}, *const only_td[] = {f.be[1]};
    ferry_backend_sel local_sel = sel_of(only_local, 1), td_sel = sel_of(only_td, 1);
    FY_CHECK_EQ(ferry_notif_send(f.agent, f.name, "mine-1", 6, &local_sel), FERRY_OK);
    FY_CHECK_EQ(ferry_notif_send(f.agent, f.name, "boo-1", 5, &td_sel), FERRY_OK);
    FY_CHECK_EQ(ferry_notif_send(f.agent, f.name, "mine-2", 6, &local_sel), FERRY_OK);
    FY_CHECK_EQ(ferry_notif_send(f.agent, f.name, "boo-2", 5, &td_sel), FERRY_OK);

    FY_CHECK_EQ(ferry_notif_take_tag(f.agent, f.name, "boo-1", 5, false), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(ferry_notif_take_tag(f.agent, "ghost", "boo-1", 5, false), FERRY_OK);
    FY_REQUIRE(ferry_notif_take(f.agent, "ghost", &b) == FERRY_OK);
    FY_CHECK_EQ(ferry_notif_batch_count(b), 1);
    const char *from;
    const void *msg;
    size_t len;
    FY_CHECK_EQ(ferry_notif_batch_get(b, 0, &from, &msg, &len), FERRY_OK);
    FY_CHECK(!strcmp(from, "ghost") && len == 5 && !memcmp(msg, "boo-2", 5));
    ferry_notif_batch_free(b);
    FY_REQUIRE(ferry_notif_take(f.agent, f.name, &b) == FERRY_OK);
    FY_CHECK_EQ(ferry_notif_batch_count(b), 2);
    FY_CHECK_EQ(ferry_notif_batch_get(b, 1, &from, &msg, &len), FERRY_OK);
    FY_CHECK(!strcmp(from, f.name) && len == 6 && !memcmp(msg, "mine-2", 6));
    ferry_notif_batch_free(b);
    fx_close(&f);
}

/* ---- threads on a plugin that is not thread-safe ---- */

#define TD_THREADS 4
#define TD_ITERS   50

typedef struct td_worker {
    ferry_agent *agent;
    const char *name;
    uint8_t *src, *dst;
    atomic_int *failures;
} td_worker;

static void *td_worker_main(void *arg)
{
    td_worker *w = arg;
    ferry_dlist *l = tu_list1(w->src, 4096), *r = tu_list1(w->dst, 4096);
    bool ok = tu_register(w->agent, w->src, 4096) == FERRY_OK &&
              tu_register(w->agent, w->dst, 4096) == FERRY_OK && tu_load_self(w->agent) == FERRY_OK;
    for (int i = 0; ok && i < TD_ITERS; i++) {
        ferry_xfer *x;
        tu_fill(w->src, 4096, (uint64_t)i);
        ok = ferry_xfer_create(w->agent, FERRY_OP_WRITE, l, r, w->name, NULL, &x) == FERRY_OK;
        if (!ok)
            break;
        ok = tu_post_wait(x) == FERRY_OK && !memcmp(w->src, w->dst, 4096);
        ferry_xfer_release(x);
    }
    if (!ok)
        atomic_fetch_add(w->failures, 1);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    return NULL;
}

static void run_td_threads(bool progress_thread)
{
    ferry_agent_config cfg;
    ferry_agent *agent;
    ferry_backend *be;
    pthread_t tids[TD_THREADS];
    td_worker ws[TD_THREADS];
    atomic_int failures = 0;
    ferry_agent_config_init(&cfg);
    cfg.name = progress_thread ? "td-threads-pt" : "td-threads";
    cfg.progress_thread = progress_thread;
    FY_REQUIRE(ferry_agent_create(&cfg, &agent) == FERRY_OK);
    FY_REQUIRE(ferry_backend_create(agent, "TDRAM", NULL, 0, &be) == FERRY_OK);
    for (int i = 0; i < TD_THREADS; i++) {
        ws[i] = (td_worker){agent, cfg.name, tu_alloc(4096), tu_alloc(4096), &failures};
        FY_REQUIRE(ws[i].src && ws[i].dst);
        FY_REQUIRE(pthread_create(&tids[i], NULL, td_worker_main, &ws[i]) == 0);
    }
    for (int i = 0; i < TD_THREADS; i++)
        pthread_join(tids[i], NULL);
    FY_CHECK_EQ(atomic_load(&failures), 0);
    ferry_agent_destroy(agent);
    for (int i = 0; i < TD_THREADS; i++) {
        free(ws[i].src);
        free(ws[i].dst);
    }
}

static void test_threads_serialised(void)
{
    run_td_threads(false);
}
static void test_threads_serialised_progress(void)
{
    run_td_threads(true);
}

int main(void)
{
    setenv("FERRY_PLUGIN_DIR", FY_TEST_PLUGIN_DIR, 1);
    FY_RUN(test_status_drives_progress);
    FY_RUN(test_notif_take_drives_progress);
    FY_RUN(test_agent_progress_drives);
    FY_RUN(test_progress_thread_drives);
    FY_RUN(test_progress_thread_wait_fd);
    FY_RUN(test_runtime_mem_types);
    FY_RUN(test_release_pending);
    FY_RUN(test_error_at_post);
    FY_RUN(test_error_at_completion);
    FY_RUN(test_no_estimator);
    FY_RUN(test_deadline_agent_default);
    FY_RUN(test_deadline_progress_thread);
    FY_RUN(test_deadline_request_overrides);
    FY_RUN(test_deadline_agent_none);
    FY_RUN(test_deadline_env);
    FY_RUN(test_choice_among_two);
    FY_RUN(test_deregister_one_of_two);
    FY_RUN(test_register_chosen_backend);
    FY_RUN(test_reload_adds_backend_to_known_region);
    FY_RUN(test_reregistered_region_gets_new_key);
    FY_RUN(test_per_sender_queues);
    FY_RUN(test_threads_serialised);
    FY_RUN(test_threads_serialised_progress);
    return fy_test_done();
}
