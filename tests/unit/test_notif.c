/* SPDX-License-Identifier: Apache-2.0 */
/* Notifications: with a transfer (exactly once, after the data), alone,
 * batches, per-sender takes, tag lookups, the bounded queue and its
 * counters. LOCAL delivers to its own agent, under the agent's own name. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/ferry.h>

#include "harness.h"
#include "testutil.h"

#define SENTINEL ((void *)0x5e5e5e5e)
#define KB       1024u
#define MB       (1024u * 1024u)

static ferry_status send_str(tu_loop *lp, const char *msg)
{
    return ferry_notif_send(lp->agent, lp->name, msg, strlen(msg), NULL);
}

/* ---- with a transfer ---- */

/* Inline: queued by the time post returns, exactly once per post. */
static void test_with_inline_transfer(void)
{
    tu_loop lp;
    ferry_xfer *x;
    FY_REQUIRE(tu_loop_open(&lp, "inline", NULL, NULL, 0, 4 * KB) == FERRY_OK);
    FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, lp.len, "tag-1", &x) == FERRY_OK);
    FY_CHECK_EQ(ferry_notif_take_tag(lp.agent, lp.name, "tag-1", 5, false), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(ferry_xfer_post(x), FERRY_OK);
    FY_CHECK_EQ(ferry_notif_take_tag(lp.agent, lp.name, "tag-1", 5, false), FERRY_OK);
    FY_CHECK_EQ(ferry_notif_take_tag(lp.agent, lp.name, "tag-1", 5, false), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(ferry_xfer_status(x), FERRY_OK);
    FY_CHECK_EQ(tu_drain_notifs(lp.agent, NULL), 0); /* polling added none */
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    FY_CHECK_EQ(tu_drain_notifs(lp.agent, lp.name), 1);
    ferry_xfer_release(x);
    tu_loop_close(&lp);
}

/* Pooled, nobody polling the request: when the notification shows up the
 * whole destination is already written; one notification per post. */
static void test_with_pooled_transfer(void)
{
    ferry_param pool[] = TU_POOL_PARAMS("2", "4096", "64K");
    tu_loop lp;
    ferry_xfer *x;
    FY_REQUIRE(tu_loop_open(&lp, "pooled", NULL, pool, 3, 8 * MB) == FERRY_OK);
    FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, lp.len, "pooled-done", &x) == FERRY_OK);
    for (uint64_t round = 0; round < 3; round++) {
        tu_fill(lp.src, lp.len, 10 + round);
        ferry_status rc = ferry_xfer_post(x);
        FY_CHECK(rc == FERRY_IN_PROGRESS || rc == FERRY_OK);
        FY_CHECK_EQ(tu_wait_notif(lp.agent, lp.name, "pooled-done", 11, TU_TIMEOUT_MS), FERRY_OK);
        FY_CHECK(!memcmp(lp.src, lp.dst, lp.len));
        FY_CHECK_EQ(tu_wait(x, TU_TIMEOUT_MS), FERRY_OK);
        FY_CHECK_EQ(tu_drain_notifs(lp.agent, NULL), 0);
    }
    ferry_xfer_release(x);
    tu_loop_close(&lp);
}

/* ---- alone ---- */

static void test_send_alone(void)
{
    tu_loop lp;
    ferry_notif_batch *b;
    FY_REQUIRE(tu_loop_open(&lp, "alone", NULL, NULL, 0, 4 * KB) == FERRY_OK);
    uint8_t bin[5] = {0, 1, 0, 2, 0}; /* binary, with zero bytes */
    FY_CHECK_EQ(ferry_notif_send(lp.agent, lp.name, bin, sizeof(bin), NULL), FERRY_OK);
    FY_CHECK_EQ(ferry_notif_send(lp.agent, lp.name, "", 0, NULL), FERRY_OK);
    ferry_backend_sel sel;
    ferry_backend_sel_init(&sel);
    ferry_backend *const mine[] = {lp.be};
    sel.backends = mine;
    sel.num_backends = 1;
    FY_CHECK_EQ(ferry_notif_send(lp.agent, lp.name, "sel", 3, &sel), FERRY_OK);

    FY_REQUIRE(ferry_notif_take(lp.agent, NULL, &b) == FERRY_OK);
    FY_CHECK_EQ(ferry_notif_batch_count(b), 3);
    const char *from;
    const void *msg;
    size_t len;
    FY_CHECK_EQ(ferry_notif_batch_get(b, 0, &from, &msg, &len), FERRY_OK);
    FY_CHECK(!strcmp(from, "alone") && len == 5 && !memcmp(msg, bin, 5));
    FY_CHECK_EQ(ferry_notif_batch_get(b, 1, &from, &msg, &len), FERRY_OK);
    FY_CHECK_EQ(len, 0);
    FY_CHECK_EQ(ferry_notif_batch_get(b, 2, &from, &msg, &len), FERRY_OK);
    FY_CHECK(len == 3 && !memcmp(msg, "sel", 3));
    ferry_notif_batch_free(b);
    tu_loop_close(&lp);
}

static void test_send_errors(void)
{
    tu_loop lp;
    FY_REQUIRE(tu_loop_open(&lp, "send-errors", NULL, NULL, 0, 4 * KB) == FERRY_OK);
    uint8_t *big = calloc(1, FERRY_NOTIF_MAX_LEN + 1);
    FY_REQUIRE(big);
    FY_CHECK_EQ(ferry_notif_send(NULL, lp.name, "x", 1, NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_notif_send(lp.agent, NULL, "x", 1, NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_notif_send(lp.agent, lp.name, NULL, 1, NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_notif_send(lp.agent, lp.name, big, FERRY_NOTIF_MAX_LEN + 1, NULL),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_notif_send(lp.agent, "nobody", "x", 1, NULL), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(tu_drain_notifs(lp.agent, NULL), 0);
    /* The largest message is fine. */
    FY_CHECK_EQ(ferry_notif_send(lp.agent, lp.name, big, FERRY_NOTIF_MAX_LEN, NULL), FERRY_OK);
    FY_CHECK_EQ(tu_drain_notifs(lp.agent, NULL), 1);
    /* A peer whose metadata is loaded but no backend reaches. */
    ferry_agent *peer;
    FY_REQUIRE(tu_agent("unreachable", &peer) == FERRY_OK);
    FY_CHECK_EQ(tu_load_md(lp.agent, peer), FERRY_OK);
    FY_CHECK_EQ(ferry_notif_send(lp.agent, "unreachable", "x", 1, NULL), FERRY_ERR_NOT_FOUND);
    ferry_agent_destroy(peer);
    /* Invalidated: unknown again. */
    FY_CHECK_EQ(ferry_md_invalidate(lp.agent, lp.name), FERRY_OK);
    FY_CHECK_EQ(send_str(&lp, "x"), FERRY_ERR_NOT_FOUND);
    free(big);
    tu_loop_close(&lp);
}

/* ---- taking ---- */

static void test_take_per_sender(void)
{
    tu_loop lp;
    ferry_notif_batch *b = SENTINEL;
    FY_REQUIRE(tu_loop_open(&lp, "per-sender", NULL, NULL, 0, 4 * KB) == FERRY_OK);
    FY_CHECK_EQ(send_str(&lp, "one"), FERRY_OK);
    FY_CHECK_EQ(send_str(&lp, "two"), FERRY_OK);
    /* Nothing from another sender: an empty batch, the queue untouched. */
    FY_REQUIRE(ferry_notif_take(lp.agent, "someone-else", &b) == FERRY_OK);
    FY_CHECK_EQ(ferry_notif_batch_count(b), 0);
    const char *from = SENTINEL;
    const void *msg;
    size_t len;
    FY_CHECK_EQ(ferry_notif_batch_get(b, 0, &from, &msg, &len), FERRY_ERR_INVALID_PARAM);
    FY_CHECK(from == SENTINEL);
    ferry_notif_batch_free(b);
    /* From the sender: both, oldest first; then none. */
    FY_REQUIRE(ferry_notif_take(lp.agent, lp.name, &b) == FERRY_OK);
    FY_CHECK_EQ(ferry_notif_batch_count(b), 2);
    FY_CHECK_EQ(ferry_notif_batch_get(b, 0, &from, &msg, &len), FERRY_OK);
    FY_CHECK(len == 3 && !memcmp(msg, "one", 3));
    FY_CHECK_EQ(ferry_notif_batch_get(b, 1, &from, &msg, &len), FERRY_OK);
    FY_CHECK(len == 3 && !memcmp(msg, "two", 3));
    FY_CHECK_EQ(ferry_notif_batch_get(b, 2, &from, &msg, &len), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_notif_batch_get(b, 0, NULL, &msg, &len), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_notif_batch_get(b, 0, &from, NULL, &len), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_notif_batch_get(b, 0, &from, &msg, NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_notif_batch_get(NULL, 0, &from, &msg, &len), FERRY_ERR_INVALID_PARAM);
    ferry_notif_batch_free(b);
    FY_CHECK_EQ(tu_drain_notifs(lp.agent, lp.name), 0);

    FY_CHECK_EQ(ferry_notif_take(NULL, NULL, &b), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_notif_take(lp.agent, NULL, NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_notif_batch_count(NULL), 0);
    ferry_notif_batch_free(NULL);
    tu_loop_close(&lp);
}

static void test_take_tag(void)
{
    tu_loop lp;
    FY_REQUIRE(tu_loop_open(&lp, "tags", NULL, NULL, 0, 4 * KB) == FERRY_OK);
    ferry_agent *a = lp.agent;
    const char *me = lp.name;
    FY_CHECK_EQ(send_str(&lp, "req-10:done"), FERRY_OK);
    FY_CHECK_EQ(send_str(&lp, "req-1"), FERRY_OK);
    FY_CHECK_EQ(send_str(&lp, "req-1"), FERRY_OK);
    FY_CHECK_EQ(send_str(&lp, "other"), FERRY_OK);

    /* Exact: "req-10:done" does not equal "req-1". */
    FY_CHECK_EQ(ferry_notif_take_tag(a, me, "req-10", 6, false), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(ferry_notif_take_tag(a, me, "req-1", 5, false), FERRY_OK);
    FY_CHECK_EQ(ferry_notif_take_tag(a, me, "req-1", 5, false), FERRY_OK); /* the duplicate */
    FY_CHECK_EQ(ferry_notif_take_tag(a, me, "req-1", 5, false), FERRY_ERR_NOT_FOUND);
    /* Prefix. */
    FY_CHECK_EQ(ferry_notif_take_tag(a, me, "req-10", 6, true), FERRY_OK);
    FY_CHECK_EQ(ferry_notif_take_tag(a, me, "req-10", 6, true), FERRY_ERR_NOT_FOUND);
    /* A longer tag than the message is no prefix of it. */
    FY_CHECK_EQ(ferry_notif_take_tag(a, me, "other-x", 7, true), FERRY_ERR_NOT_FOUND);
    /* Wrong sender. */
    FY_CHECK_EQ(ferry_notif_take_tag(a, "someone", "other", 5, false), FERRY_ERR_NOT_FOUND);
    /* The empty prefix matches anything: the last one left. */
    FY_CHECK_EQ(ferry_notif_take_tag(a, me, NULL, 0, true), FERRY_OK);
    FY_CHECK_EQ(tu_drain_notifs(a, NULL), 0);

    FY_CHECK_EQ(ferry_notif_take_tag(NULL, me, "x", 1, false), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_notif_take_tag(a, NULL, "x", 1, false), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_notif_take_tag(a, me, NULL, 1, false), FERRY_ERR_INVALID_PARAM);
    tu_loop_close(&lp);
}

/* ---- the bounded queue ---- */

static void test_queue_overflow(void)
{
    ferry_agent_config cfg;
    ferry_counters c;
    tu_loop lp;
    ferry_xfer *x;
    ferry_agent_config_init(&cfg);
    cfg.notif_queue_cap = 4;
    FY_REQUIRE(tu_loop_open(&lp, "overflow", &cfg, NULL, 0, 4 * KB) == FERRY_OK);
    for (int i = 0; i < 10; i++) {
        char msg[16];
        snprintf(msg, sizeof(msg), "n%d", i);
        FY_CHECK_EQ(send_str(&lp, msg), FERRY_OK); /* a full queue is not the sender's error */
    }
    FY_CHECK_EQ(ferry_notif_dropped(lp.agent), 6);
    ferry_counters_init(&c);
    FY_CHECK_EQ(ferry_counters_get(lp.agent, &c), FERRY_OK);
    FY_CHECK_EQ(c.notifs_received, 4);
    FY_CHECK_EQ(c.notifs_dropped, 6);
    /* The oldest four were kept. */
    for (int i = 0; i < 4; i++) {
        char msg[16];
        snprintf(msg, sizeof(msg), "n%d", i);
        FY_CHECK_EQ(ferry_notif_take_tag(lp.agent, lp.name, msg, strlen(msg), false), FERRY_OK);
    }
    /* Room again; a transfer's notification counts the same way. */
    FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, lp.len, "x", &x) == FERRY_OK);
    for (int i = 0; i < 5; i++)
        FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    FY_CHECK_EQ(ferry_notif_dropped(lp.agent), 7);
    FY_CHECK_EQ(tu_drain_notifs(lp.agent, NULL), 4);
    FY_CHECK(!memcmp(lp.src, lp.dst, lp.len)); /* the data went through anyway */
    ferry_xfer_release(x);
    FY_CHECK_EQ(ferry_notif_dropped(NULL), 0);
    tu_loop_close(&lp);
}

/* notif_queue_cap 0 means the default, not "drop everything". */
static void test_queue_cap_zero_is_default(void)
{
    ferry_agent_config cfg;
    tu_loop lp;
    ferry_agent_config_init(&cfg);
    cfg.notif_queue_cap = 0;
    FY_REQUIRE(tu_loop_open(&lp, "cap-zero", &cfg, NULL, 0, 4 * KB) == FERRY_OK);
    for (int i = 0; i < 100; i++)
        FY_CHECK_EQ(send_str(&lp, "m"), FERRY_OK);
    FY_CHECK_EQ(ferry_notif_dropped(lp.agent), 0);
    FY_CHECK_EQ(tu_drain_notifs(lp.agent, NULL), 100);
    tu_loop_close(&lp);
}

int main(void)
{
    FY_RUN(test_with_inline_transfer);
    FY_RUN(test_with_pooled_transfer);
    FY_RUN(test_send_alone);
    FY_RUN(test_send_errors);
    FY_RUN(test_take_per_sender);
    FY_RUN(test_take_tag);
    FY_RUN(test_queue_overflow);
    FY_RUN(test_queue_cap_zero_is_default);
    return fy_test_done();
}
