/* SPDX-License-Identifier: Apache-2.0 */
/* SHM's wire bytes: connection info, region keys and fd requests round
 * trip, and every truncation or damaged field is refused without reading
 * out of bounds. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "shm_wire.h"

static fy_shm_conn sample_conn(void)
{
    fy_shm_conn c = {
        .id = {.uid = 0x1122334455667788ull, .pid = 4242, .starttime = 99, .netns = 7, .pidns = 8},
        .probe = 0x7ffd00001000ull};
    snprintf(c.id.sock, sizeof(c.id.sock), "ferry-shm/4242/1122334455667788/0");
    return c;
}

static void test_conn(void)
{
    fy_shm_conn c = sample_conn(), d;
    uint8_t buf[FY_SHM_CONN_MAX];
    size_t n = fy_shm_conn_encode(&c, buf, sizeof(buf));
    FY_REQUIRE(n == FYP_IDENT_FIXED + strlen(c.id.sock) + 8);
    FY_CHECK_EQ(fy_shm_conn_decode(buf, n, &d), FERRY_OK);
    FY_CHECK(!memcmp(&c, &d, sizeof(c)));
    for (size_t len = 0; len < n; len++)
        FY_CHECK_EQ(fy_shm_conn_decode(buf, len, &d), FERRY_ERR_BAD_METADATA);
    FY_CHECK_EQ(fy_shm_conn_encode(&c, buf, n - 1), 0);
    memcpy(buf, "FYCC", 4); /* the CUDA plugin's identity is not ours */
    FY_CHECK_EQ(fy_shm_conn_decode(buf, n, &d), FERRY_ERR_BAD_METADATA);
}

static void test_pub(void)
{
    fy_shm_pub p = {.kind = FY_SHM_KIND_MEMFD, .addr = 0x10000, .len = 4096, .token = 42}, q;
    ferry_desc d = {0x10000, 4096, 0}, other = {0x10000, 4095, 0};
    uint8_t buf[FY_SHM_PUB_LEN], bad[FY_SHM_PUB_LEN];
    fy_shm_pub_encode(&p, buf);
    FY_CHECK_EQ(fy_shm_pub_decode(buf, sizeof(buf), &d, &q), FERRY_OK);
    FY_CHECK(q.kind == p.kind && q.addr == p.addr && q.len == p.len && q.token == p.token);
    for (size_t len = 0; len < sizeof(buf); len++)
        FY_CHECK_EQ(fy_shm_pub_decode(buf, len, &d, &q), FERRY_ERR_BAD_METADATA);
    /* A key that does not describe the region the core names is refused. */
    FY_CHECK_EQ(fy_shm_pub_decode(buf, sizeof(buf), &other, &q), FERRY_ERR_BAD_METADATA);
    FY_CHECK_EQ(fy_shm_pub_decode(buf, sizeof(buf), NULL, &q), FERRY_ERR_BAD_METADATA);
    memcpy(bad, buf, sizeof(bad));
    bad[5] = 2; /* unknown kind */
    FY_CHECK_EQ(fy_shm_pub_decode(bad, sizeof(bad), &d, &q), FERRY_ERR_BAD_METADATA);
    memcpy(bad, buf, sizeof(bad));
    bad[4] = 2; /* another major version */
    FY_CHECK_EQ(fy_shm_pub_decode(bad, sizeof(bad), &d, &q), FERRY_ERR_BAD_METADATA);
}

static void test_fd_messages(void)
{
    uint8_t ask[FY_SHM_ASK_LEN], ans[FY_SHM_ANS_LEN];
    uint64_t token = 0, off = 0, len = 0;
    ferry_status st = FERRY_OK;
    fy_shm_ask_encode(0xabcdef, ask);
    FY_CHECK(fy_shm_ask_decode(ask, sizeof(ask), &token) && token == 0xabcdef);
    FY_CHECK(!fy_shm_ask_decode(ask, sizeof(ask) - 1, &token));
    fy_shm_ans_encode(FERRY_ERR_NOT_FOUND, 8192, 100, ans);
    FY_CHECK(fy_shm_ans_decode(ans, sizeof(ans), &st, &off, &len));
    FY_CHECK(st == FERRY_ERR_NOT_FOUND && off == 8192 && len == 100);
    FY_CHECK(!fy_shm_ans_decode(ans, sizeof(ans) + 1, &st, &off, &len));
    FY_CHECK(!fy_shm_ans_decode(ask, sizeof(ans), &st, &off, &len));
}

int main(void)
{
    FY_RUN(test_conn);
    FY_RUN(test_pub);
    FY_RUN(test_fd_messages);
    return fy_test_done();
}
