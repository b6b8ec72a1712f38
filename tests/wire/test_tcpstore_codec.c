/* SPDX-License-Identifier: Apache-2.0 */
/* The TCPStore codec (src/metadata/tcpstore.c), white box: the bytes of
 * each command in both dialects, byte for byte as PyTorch's stores read
 * them (the old dialect is also run against Debian's store by
 * tests/integration/test_tcpstore.c; the recent one only here), and the
 * decoder's answers on whole, partial and hostile replies. */
#include <string.h>

#include "harness.h"
#include "metadata/tcpstore.h"

static bool req_is(fy_ts_dialect d, fy_ts_op op, const char *key, const char *val,
                   const uint8_t *want, size_t want_len)
{
    fy_ts_req req = {0};
    fy_ts_req_add(&req, d, op, key, val, val ? strlen(val) : 0, 0x00C0FFEEu);
    bool ok = !req.failed && req.len == want_len && !memcmp(req.buf, want, want_len);
    fy_ts_req_free(&req);
    return ok;
}

#define LEN1 1, 0, 0, 0, 0, 0, 0, 0

static void test_recent_dialect(void)
{
    const uint8_t validate[] = {0, 0xCE, 0xF7, 0x85, 0x3C};
    const uint8_t ping[] = {13, 0xEE, 0xFF, 0xC0, 0x00};
    const uint8_t set[] = {1, LEN1, 'k', 2, 0, 0, 0, 0, 0, 0, 0, 'v', 'w'};
    const uint8_t get[] = {3, LEN1, 'k'};
    const uint8_t check[] = {5, LEN1, LEN1, 'k'};
    const uint8_t wait[] = {6, LEN1, LEN1, 'k'};
    const uint8_t del[] = {8, LEN1, 'k'};
    FY_CHECK(req_is(FY_TS_V2, FY_TS_VALIDATE, NULL, NULL, validate, sizeof(validate)));
    FY_CHECK(req_is(FY_TS_V2, FY_TS_PING, NULL, NULL, ping, sizeof(ping)));
    FY_CHECK(req_is(FY_TS_V2, FY_TS_SET, "k", "vw", set, sizeof(set)));
    FY_CHECK(req_is(FY_TS_V2, FY_TS_GET, "k", NULL, get, sizeof(get)));
    FY_CHECK(req_is(FY_TS_V2, FY_TS_CHECK, "k", NULL, check, sizeof(check)));
    FY_CHECK(req_is(FY_TS_V2, FY_TS_WAIT, "k", NULL, wait, sizeof(wait)));
    FY_CHECK(req_is(FY_TS_V2, FY_TS_DELETE, "k", NULL, del, sizeof(del)));
}

static void test_old_dialect(void)
{
    const uint8_t set[] = {0, LEN1, 'k', LEN1, 'v'};
    const uint8_t get[] = {2, LEN1, 'k'};
    const uint8_t check[] = {4, LEN1, LEN1, 'k'};
    FY_CHECK(req_is(FY_TS_V1, FY_TS_SET, "k", "v", set, sizeof(set)));
    FY_CHECK(req_is(FY_TS_V1, FY_TS_GET, "k", NULL, get, sizeof(get)));
    FY_CHECK(req_is(FY_TS_V1, FY_TS_CHECK, "k", NULL, check, sizeof(check)));
    FY_CHECK_EQ(fy_ts_opcode(FY_TS_V1, FY_TS_WAIT), 5);
    FY_CHECK_EQ(fy_ts_opcode(FY_TS_V1, FY_TS_DELETE), 8);
    /* No VALIDATE nor PING in the old dialect: the request fails. */
    fy_ts_req req = {0};
    fy_ts_req_add(&req, FY_TS_V1, FY_TS_PING, NULL, NULL, 0, 1);
    FY_CHECK(req.failed);
    fy_ts_req_free(&req);
    FY_CHECK_EQ(fy_ts_opcode(FY_TS_UNKNOWN, FY_TS_SET), -1);
}

/* The probe: an old store reads VALIDATE + PING as a SET whose key length
 * has its top bit set (bytes 1..8, little-endian). */
static void test_probe_bytes(void)
{
    fy_ts_req req = {0};
    fy_ts_req_add(&req, FY_TS_V2, FY_TS_VALIDATE, NULL, NULL, 0, 0);
    fy_ts_req_add(&req, FY_TS_V2, FY_TS_PING, NULL, NULL, 0, 0x00C0FFEEu);
    FY_REQUIRE(!req.failed && req.len == 10);
    FY_CHECK(req.buf[0] == 0 && (req.buf[8] & 0x80));
    fy_ts_req_free(&req);
}

static void test_bounds(void)
{
    char key[FY_TS_KEY_MAX + 2];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    fy_ts_req req = {0};
    fy_ts_req_add(&req, FY_TS_V2, FY_TS_GET, key, NULL, 0, 0);
    FY_CHECK(req.failed);
    fy_ts_req_free(&req);
    fy_ts_req_add(&req, FY_TS_V2, FY_TS_SET, "k", "v", (size_t)FY_TS_VALUE_MAX + 1, 0);
    FY_CHECK(req.failed);
    fy_ts_req_free(&req);
}

static void test_decode(void)
{
    const uint8_t value[] = {3, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c', 0xFF};
    fy_ts_reply rep;
    size_t used = 0;
    FY_CHECK_EQ(fy_ts_decode(FY_TS_R_VALUE, value, 5, 16, &rep, &used), 0);
    FY_CHECK_EQ(fy_ts_decode(FY_TS_R_VALUE, value, 10, 16, &rep, &used), 0);
    FY_CHECK_EQ(used, 11u);
    FY_CHECK_EQ(fy_ts_decode(FY_TS_R_VALUE, value, sizeof(value), 16, &rep, &used), 1);
    FY_CHECK(used == 11 && rep.len == 3 && !memcmp(rep.value, "abc", 3));
    FY_CHECK_EQ(fy_ts_decode(FY_TS_R_VALUE, value, sizeof(value), 2, &rep, &used), -1);
    const uint8_t byte_bad[] = {2};
    FY_CHECK_EQ(fy_ts_decode(FY_TS_R_BYTE, byte_bad, 1, 16, &rep, &used), -1);
    const uint8_t i64[] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    FY_CHECK_EQ(fy_ts_decode(FY_TS_R_I64, i64, 8, 16, &rep, &used), 1);
    FY_CHECK_EQ(rep.num, -1);
    FY_CHECK_EQ(fy_ts_decode((fy_ts_reply_kind)9, i64, 8, 16, &rep, &used), -1);
}

int main(void)
{
    FY_RUN(test_recent_dialect);
    FY_RUN(test_old_dialect);
    FY_RUN(test_probe_bytes);
    FY_RUN(test_bounds);
    FY_RUN(test_decode);
    return fy_test_done();
}
