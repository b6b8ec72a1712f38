/* SPDX-License-Identifier: Apache-2.0 */
/* Handle validity: a released request or prepared list, a destroyed agent
 * and the backends, lists and requests it owned are refused by every entry
 * point (INVALID_PARAM, or NULL / 0 / "" / no-op) without being read, so
 * that none of these is a use after free (the ASan build checks that);
 * releasing or destroying twice is a clean error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/ferry.h>

#include "harness.h"
#include "testutil.h"

#define LEN (64u * 1024u)

/* Every request entry point on a request that is no longer live. */
static void check_dead_xfer(ferry_xfer *x)
{
    ferry_xfer_telemetry t;
    ferry_xfer_cost c;
    ferry_xfer_telemetry_init(&t);
    ferry_xfer_cost_init(&c);
    FY_CHECK_EQ(ferry_xfer_post(x), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_xfer_status(x), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_xfer_set_notif(x, "n", 1), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_xfer_set_timeout(x, 10), FERRY_ERR_INVALID_PARAM);
    FY_CHECK(ferry_xfer_backend(x) == NULL);
    FY_CHECK_EQ(ferry_xfer_count(x), 0);
    FY_CHECK(!strcmp(ferry_xfer_error(x), ""));
    FY_CHECK_EQ(ferry_xfer_get_telemetry(x, &t), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_xfer_estimate(x, &c), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_xfer_release(x), FERRY_ERR_INVALID_PARAM); /* released twice */
}

static ferry_status prep_pair(tu_loop *lp, ferry_prepped **l, ferry_prepped **r)
{
    ferry_dlist *ll = tu_list1(lp->src, LEN), *rl = tu_list1(lp->dst, LEN);
    ferry_status rc =
        ll && rl ? ferry_prep_dlist(lp->agent, NULL, ll, NULL, l) : FERRY_ERR_NO_MEMORY;
    if (rc == FERRY_OK)
        rc = ferry_prep_dlist(lp->agent, lp->name, rl, NULL, r);
    ferry_dlist_destroy(ll);
    ferry_dlist_destroy(rl);
    return rc;
}

/* A request used after its release, done or still running. */
static void test_released_request(void)
{
    tu_loop lp;
    ferry_xfer *x;
    FY_REQUIRE(tu_loop_open(&lp, "h-xfer", NULL, NULL, 0, LEN) == FERRY_OK);
    FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, LEN, NULL, &x) == FERRY_OK);
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_release(x), FERRY_OK);
    check_dead_xfer(x);
    FY_CHECK_EQ(ferry_xfer_release(NULL), FERRY_OK); /* NULL stays a no-op */
    tu_loop_close(&lp);
}

static void test_released_request_running(void)
{
    const ferry_param slow[] = TU_POOL_PARAMS("1", "4096", "4096");
    tu_loop lp;
    ferry_xfer *x;
    FY_REQUIRE(tu_loop_open(&lp, "h-running", NULL, slow, 3, 16u << 20) == FERRY_OK);
    FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, lp.len, NULL, &x) == FERRY_OK);
    ferry_status rc = ferry_xfer_post(x);
    FY_CHECK(rc == FERRY_IN_PROGRESS || rc == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_release(x), FERRY_OK);
    check_dead_xfer(x);
    tu_loop_close(&lp);
}

/* A prepared list released (twice), then used to make a request. */
static void test_released_prepped(void)
{
    tu_loop lp;
    ferry_prepped *l, *r;
    ferry_xfer *x = NULL;
    uint32_t idx = 0;
    FY_REQUIRE(tu_loop_open(&lp, "h-prepped", NULL, NULL, 0, LEN) == FERRY_OK);
    FY_REQUIRE(prep_pair(&lp, &l, &r) == FERRY_OK);
    ferry_prepped_release(l);
    ferry_prepped_release(l); /* logged, nothing else */
    FY_CHECK_EQ(ferry_prepped_count(l), 0);
    FY_CHECK_EQ(ferry_xfer_make(lp.agent, FERRY_OP_WRITE, l, &idx, r, &idx, 1, NULL, &x),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK(x == NULL);
    FY_CHECK_EQ(ferry_prepped_count(r), 1); /* the other one is alive */
    ferry_prepped_release(r);
    tu_loop_close(&lp);
}

/* A handle of one kind passed as another is not live either. */
static void test_wrong_kind(void)
{
    tu_loop lp;
    ferry_prepped *l, *r;
    FY_REQUIRE(tu_loop_open(&lp, "h-kind", NULL, NULL, 0, LEN) == FERRY_OK);
    FY_REQUIRE(prep_pair(&lp, &l, &r) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_post((ferry_xfer *)l), FERRY_ERR_INVALID_PARAM);
    FY_CHECK(ferry_backend_name((ferry_backend *)r) == NULL);
    FY_CHECK_EQ(ferry_agent_progress((ferry_agent *)lp.be), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_prepped_count(l), 1);
    tu_loop_close(&lp);
}

/* Everything an agent owned, after ferry_agent_destroy (called twice). */
static void test_destroyed_agent(void)
{
    tu_loop lp;
    ferry_xfer *x;
    ferry_prepped *l, *r;
    ferry_backend_caps caps;
    const ferry_param *params;
    size_t n;
    void *blob;
    FY_REQUIRE(tu_loop_open(&lp, "h-agent", NULL, NULL, 0, LEN) == FERRY_OK);
    FY_REQUIRE(prep_pair(&lp, &l, &r) == FERRY_OK);
    FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, LEN, NULL, &x) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_post(x), FERRY_OK);
    ferry_agent *a = lp.agent;
    ferry_backend *be = lp.be;
    ferry_agent_destroy(a);
    ferry_agent_destroy(a); /* logged, nothing else */
    check_dead_xfer(x);
    FY_CHECK_EQ(ferry_prepped_count(l), 0);
    ferry_prepped_release(r);
    FY_CHECK(ferry_backend_name(be) == NULL);
    ferry_backend_caps_init(&caps);
    FY_CHECK_EQ(ferry_backend_get_caps(be, &caps), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_backend_params(be, &params, &n), FERRY_ERR_INVALID_PARAM);
    FY_CHECK(ferry_agent_name(a) == NULL);
    FY_CHECK_EQ(ferry_agent_progress(a), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_md_get_local(a, &blob, &n), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_register(a, NULL, NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_backend_create(a, "LOCAL", NULL, 0, &be), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_notif_dropped(a), 0);
    free(lp.src);
    free(lp.dst);
}

/* A backend of a destroyed agent handed to a live one. */
static void test_dead_backend_elsewhere(void)
{
    tu_loop lp, other;
    ferry_xfer *x = NULL;
    void *mem = NULL;
    FY_REQUIRE(tu_loop_open(&lp, "h-live", NULL, NULL, 0, LEN) == FERRY_OK);
    FY_REQUIRE(tu_loop_open(&other, "h-other", NULL, NULL, 0, LEN) == FERRY_OK);
    ferry_backend *dead = other.be;
    tu_loop_close(&other);
    ferry_xfer_opts opts;
    ferry_xfer_opts_init(&opts);
    opts.backend = dead;
    ferry_dlist *l = tu_list1(lp.src, LEN), *r = tu_list1(lp.dst, LEN);
    FY_REQUIRE(l && r);
    FY_CHECK_EQ(ferry_xfer_create(lp.agent, FERRY_OP_WRITE, l, r, lp.name, &opts, &x),
                FERRY_ERR_INVALID_PARAM);
    ferry_backend_sel sel;
    ferry_backend_sel_init(&sel);
    sel.backends = &dead;
    sel.num_backends = 1;
    opts.backend = NULL;
    opts.sel = &sel;
    FY_CHECK_EQ(ferry_xfer_create(lp.agent, FERRY_OP_WRITE, l, r, lp.name, &opts, &x),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK(x == NULL);
    FY_CHECK_EQ(ferry_mem_alloc(lp.agent, dead, FERRY_MEM_DRAM, 4096, 0, &mem),
                FERRY_ERR_INVALID_PARAM);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    tu_loop_close(&lp);
}

/* The memory of a released request is not handed to the next one at
 * once, so the stale pointer stays refused while new requests are made. */
static void test_released_then_new(void)
{
    tu_loop lp;
    ferry_xfer *x, *y[16];
    FY_REQUIRE(tu_loop_open(&lp, "h-reuse", NULL, NULL, 0, LEN) == FERRY_OK);
    FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, LEN, NULL, &x) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_release(x), FERRY_OK);
    for (size_t i = 0; i < 16; i++) {
        FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, LEN, NULL, &y[i]) == FERRY_OK);
        FY_CHECK(y[i] != x);
    }
    FY_CHECK_EQ(ferry_xfer_post(x), FERRY_ERR_INVALID_PARAM);
    for (size_t i = 0; i < 16; i++)
        FY_CHECK_EQ(ferry_xfer_release(y[i]), FERRY_OK);
    tu_loop_close(&lp);
}

/* Many live handles at once (the registry grows and drops tombstones):
 * released ones are refused, the others keep working. */
static void test_many_handles(void)
{
    enum { N = 3000 };
    tu_loop lp;
    ferry_xfer **x = calloc(N, sizeof(*x));
    FY_REQUIRE(x);
    FY_REQUIRE(tu_loop_open(&lp, "h-many", NULL, NULL, 0, LEN) == FERRY_OK);
    for (size_t i = 0; i < N; i++)
        FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, 64, NULL, &x[i]) == FERRY_OK);
    for (size_t i = 0; i < N; i += 2)
        FY_CHECK_EQ(ferry_xfer_release(x[i]), FERRY_OK);
    size_t dead_ok = 0, live_ok = 0;
    for (size_t i = 1; i < N; i += 2)
        live_ok += ferry_xfer_post(x[i]) == FERRY_OK;
    for (size_t i = 0; i < N; i += 100) /* each one logs a line */
        dead_ok += ferry_xfer_post(x[i]) == FERRY_ERR_INVALID_PARAM;
    FY_CHECK_EQ(live_ok, N / 2);
    FY_CHECK_EQ(dead_ok, N / 100);
    tu_loop_close(&lp); /* releases the live half */
    free(x);
}

int main(void)
{
    FY_RUN(test_released_request);
    FY_RUN(test_released_request_running);
    FY_RUN(test_released_prepped);
    FY_RUN(test_wrong_kind);
    FY_RUN(test_destroyed_agent);
    FY_RUN(test_dead_backend_elsewhere);
    FY_RUN(test_released_then_new);
    FY_RUN(test_many_handles);
    return fy_test_done();
}
