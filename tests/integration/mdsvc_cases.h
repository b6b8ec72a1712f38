/* SPDX-License-Identifier: Apache-2.0 */
/* The cases every metadata service (etcd, TCPStore) passes alike: publish
 * and fetch, watch until present, labels, invalidation. The including test
 * defines WAIT_MS (its agents' watch timeout) and
 *   static ferry_status svc_open(sc_agent *a, const char *name, const char *key);
 * which opens an agent on its store (key: the auth key, or NULL). */
#ifndef MDSVC_CASES_H
#define MDSVC_CASES_H

#include "harness.h"
#include "sc_util.h"

static ferry_status fetch(sc_agent *a, const char *name, const char *label)
{
    return ferry_md_fetch_wait(a->agent, name, NULL, 0, label, 10000);
}

/* Polls ferry_md_check until it returns want, up to ms. */
static bool check_within(sc_agent *a, const char *name, ferry_status want, unsigned ms)
{
    for (uint64_t end = sc_now_ms() + ms; sc_now_ms() < end; sc_sleep_ms(50))
        if (ferry_md_check(a->agent, name, NULL) == want)
            return true;
    return false;
}

static void test_publish_fetch(void)
{
    sc_agent a, b;
    FY_REQUIRE(svc_open(&a, "pa", NULL) == FERRY_OK);
    FY_REQUIRE(svc_open(&b, "pb", NULL) == FERRY_OK);
    FY_CHECK_EQ(ferry_md_send_local(a.agent, NULL, 0), FERRY_OK);
    FY_CHECK_EQ(fetch(&b, "pa", NULL), FERRY_OK);
    FY_CHECK_EQ(ferry_md_check(b.agent, "pa", a.all), FERRY_OK);
    /* An address still means the side channel: none listens there. */
    FY_CHECK(ferry_md_send_local(a.agent, "127.0.0.1", sc_free_port()) != FERRY_OK);
    sc_close(&b);
    sc_close(&a);
}

/* A fetch started before the peer publishes waits for it (a watch). */
static void test_watch_until_present(void)
{
    sc_agent a, b;
    FY_REQUIRE(svc_open(&b, "wb", NULL) == FERRY_OK);
    FY_CHECK_EQ(ferry_md_fetch(b.agent, "wa", NULL, 0, NULL), FERRY_OK);
    sc_sleep_ms(300);
    FY_CHECK_EQ(ferry_md_fetch_check(b.agent, "wa"), FERRY_IN_PROGRESS);
    FY_REQUIRE(svc_open(&a, "wa", NULL) == FERRY_OK);
    FY_CHECK_EQ(ferry_md_send_local(a.agent, NULL, 0), FERRY_OK);
    FY_CHECK_EQ(ferry_md_fetch_wait(b.agent, "wa", NULL, 0, NULL, 5000), FERRY_OK);
    /* Never published: NOT_FOUND after the watch timeout. */
    uint64_t t0 = sc_now_ms();
    FY_CHECK_EQ(fetch(&b, "nobody", NULL), FERRY_ERR_NOT_FOUND);
    FY_CHECK(sc_now_ms() - t0 >= WAIT_MS - 100 && sc_now_ms() - t0 < WAIT_MS + 2000);
    sc_close(&b);
    sc_close(&a);
}

static void test_partial_label(void)
{
    sc_agent a, b;
    FY_REQUIRE(svc_open(&a, "la", NULL) == FERRY_OK);
    FY_REQUIRE(svc_open(&b, "lb", NULL) == FERRY_OK);
    const ferry_dlist *lists[] = {a.region[1]};
    FY_CHECK_EQ(ferry_md_send_partial(a.agent, lists, 1, true, NULL, "kv1", NULL, 0), FERRY_OK);
    FY_CHECK_EQ(fetch(&b, "la", "kv1"), FERRY_OK);
    FY_CHECK_EQ(ferry_md_check(b.agent, "la", a.region[1]), FERRY_OK);
    FY_CHECK_EQ(ferry_md_check(b.agent, "la", a.region[0]), FERRY_ERR_NOT_FOUND);
    /* Written again with more regions: the reader loads it by itself. */
    const ferry_dlist *both[] = {a.region[0], a.region[1]};
    FY_CHECK_EQ(ferry_md_send_partial(a.agent, both, 2, true, NULL, "kv1", NULL, 0), FERRY_OK);
    bool seen = false;
    for (uint64_t end = sc_now_ms() + 2000; !seen && sc_now_ms() < end; sc_sleep_ms(50))
        seen = ferry_md_check(b.agent, "la", a.region[0]) == FERRY_OK;
    FY_CHECK(seen);
    sc_close(&b);
    sc_close(&a);
}

/* invalidate_local deletes the keys; a peer that loaded them forgets. */
static void test_invalidate(void)
{
    sc_agent a, b;
    FY_REQUIRE(svc_open(&a, "ia", NULL) == FERRY_OK);
    FY_REQUIRE(svc_open(&b, "ib", NULL) == FERRY_OK);
    FY_CHECK_EQ(ferry_md_send_local(a.agent, NULL, 0), FERRY_OK);
    FY_CHECK_EQ(fetch(&b, "ia", NULL), FERRY_OK);
    FY_CHECK_EQ(ferry_md_invalidate_local(a.agent, NULL, 0), FERRY_OK);
    FY_CHECK(check_within(&b, "ia", FERRY_ERR_NOT_FOUND, 2000));
    FY_CHECK_EQ(fetch(&b, "ia", NULL), FERRY_ERR_NOT_FOUND);
    sc_close(&b);
    sc_close(&a);
}

#endif
