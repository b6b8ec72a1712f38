/* SPDX-License-Identifier: Apache-2.0 */
/* Authenticated side channel and metadata blobs (shared key, HMAC-SHA256).
 *
 * Agents with the same key exchange metadata and move data; another key,
 * no key, altered, replayed or stale frames, and altered or unsigned blobs
 * are refused with AUTH and counted. Signed frames are also built here by
 * hand, with OpenSSL's one-shot HMAC() over the bytes docs/side-channel.md
 * describes, so the format is checked independently of the library's own
 * signing code. And an agent's own name is refused from the network. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>

#include "sc_util.h"
#include "harness.h"
#include "blob_seal.h"

#define KEY   "0123456789abcdef-shared-secret"
#define OTHER "fedcba9876543210-another-secret"

static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static ferry_status open_keyed(sc_agent *a, const char *name, bool listen, const char *key)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = name;
    cfg.listen = listen;
    cfg.listen_host = "127.0.0.1";
    cfg.sc_timeout_ms = 2000;
    cfg.auth_key = key;
    return sc_open_cfg(a, &cfg);
}

static uint64_t auth_failures(sc_agent *a)
{
    ferry_counters c;
    ferry_counters_init(&c);
    if (ferry_counters_get(a->agent, &c) != FERRY_OK)
        return UINT64_MAX;
    return c.auth_failures;
}

static ferry_status fetch(sc_agent *c, const char *name, sc_agent *l)
{
    return ferry_md_fetch_wait(c->agent, name, "127.0.0.1", sc_port(l), NULL, 3000);
}

/* ---- frames by hand ---- */

static void hmac(const char *key, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                 uint8_t out[32])
{
    uint8_t *buf = malloc(alen + blen + 1);
    unsigned len = 32;
    memcpy(buf, a, alen);
    if (blen)
        memcpy(buf + alen, b, blen);
    HMAC(EVP_sha256(), key, (int)strlen(key), buf, alen + blen, out, &len);
    free(buf);
}

/* A signed frame: header (minor 1, auth flag), content, then
 * sender | u16 sender length | nonce | u64 time | MAC. */
static size_t signed_frame(uint8_t *out, uint8_t type, const uint8_t *content, size_t clen,
                           const char *sender, const uint8_t nonce[16], uint64_t ts_us,
                           const char *key)
{
    size_t slen = strlen(sender), plen = clen + slen + 2 + 16 + 8 + 32;
    sc_hdr(out, 1, type, (uint32_t)plen);
    out[5] = 1;
    out[7] = 1;
    memcpy(out + 12, content, clen);
    uint8_t *p = out + 12 + clen;
    memcpy(p, sender, slen);
    sc_le(p + slen, slen, 2);
    memcpy(p + slen + 2, nonce, 16);
    sc_le(p + slen + 18, ts_us, 8);
    hmac(key, out, 12 + plen - 32, NULL, 0, out + 12 + plen - 32);
    return 12 + plen;
}

static size_t signed_fetch(uint8_t *out, const char *name, const uint8_t nonce[16], uint64_t ts_us,
                           const char *key)
{
    uint8_t content[64];
    size_t n = sc_str(content, name);
    n += sc_str(content + n, "");
    return signed_frame(out, SC_FETCH, content, n, "raw", nonce, ts_us, key);
}

/* Sends a frame on a new connection; reads the reply's status, and
 * whether its MAC (over the request nonce, header, payload) checks out. */
static bool raw_exchange(uint16_t port, const uint8_t *frame, size_t len, const uint8_t nonce[16],
                         int32_t *status, bool *signed_ok)
{
    int fd = sc_raw_connect(port);
    uint8_t h[12], *p = NULL;
    bool ok = fd >= 0 && sc_raw_send(fd, frame, len) && sc_raw_recv(fd, h, 12, 3000);
    uint32_t plen = ok ? (uint32_t)sc_get_le(h + 8, 4) : 0;
    ok = ok && plen >= 4 && plen < (1u << 20) && (p = malloc(plen)) &&
         sc_raw_recv(fd, p, plen, 3000);
    if (ok) {
        *status = (int32_t)(uint32_t)sc_get_le(p, 4);
        *signed_ok = false;
        if ((h[7] & 1) && plen > 32) {
            uint8_t mac[32], hp[28];
            memcpy(hp, nonce, 16);
            memcpy(hp + 16, h, 12);
            hmac(KEY, hp, 28, p, plen - 32, mac);
            *signed_ok = !memcmp(mac, p + plen - 32, 32);
        }
    }
    free(p);
    if (fd >= 0)
        close(fd);
    return ok;
}

/* ---- tests ---- */

/* Same key: fetch, send, a load of the agent's own blob and a loopback
 * transfer through it; the key also comes from FERRY_AUTH_KEY. */
static void test_same_key_end_to_end(void)
{
    sc_agent a, b;
    FY_REQUIRE(open_keyed(&a, "A", true, KEY) == FERRY_OK);
    setenv("FERRY_AUTH_KEY", KEY, 1);
    ferry_status rc = open_keyed(&b, "B", true, NULL);
    unsetenv("FERRY_AUTH_KEY");
    FY_REQUIRE(rc == FERRY_OK);
    FY_CHECK_EQ(fetch(&b, "A", &a), FERRY_OK);
    FY_CHECK_EQ(ferry_md_send_local(a.agent, "127.0.0.1", sc_port(&b)), FERRY_OK);
    FY_CHECK_EQ(ferry_md_check(b.agent, "A", a.all), FERRY_OK);
    FY_CHECK_EQ(ferry_md_invalidate_local(a.agent, "127.0.0.1", sc_port(&b)), FERRY_OK);
    FY_CHECK_EQ(ferry_md_check(b.agent, "A", NULL), FERRY_ERR_NOT_FOUND);
    /* Loopback: A loads its own signed blob and writes region 0 to 1. */
    void *blob;
    size_t len;
    char name[FERRY_NAME_MAX + 1];
    FY_REQUIRE(ferry_md_get_local(a.agent, &blob, &len) == FERRY_OK);
    FY_CHECK_EQ(ferry_md_load(a.agent, blob, len, name, sizeof(name)), FERRY_OK);
    ferry_free(blob);
    memset(a.mem[0], 0x3c, SC_REGION_SIZE);
    ferry_prepped *from = NULL, *to = NULL;
    ferry_xfer *x = NULL;
    FY_CHECK_EQ(ferry_prep_dlist(a.agent, NULL, a.region[0], NULL, &from), FERRY_OK);
    FY_CHECK_EQ(ferry_prep_dlist(a.agent, "A", a.region[1], NULL, &to), FERRY_OK);
    uint32_t idx = 0;
    FY_CHECK_EQ(ferry_xfer_make(a.agent, FERRY_OP_WRITE, from, &idx, to, &idx, 1, NULL, &x),
                FERRY_OK);
    rc = x ? ferry_xfer_post(x) : FERRY_ERR_INVALID_PARAM;
    while (rc == FERRY_IN_PROGRESS)
        rc = ferry_xfer_status(x);
    FY_CHECK_EQ(rc, FERRY_OK);
    FY_CHECK(!memcmp(a.mem[0], a.mem[1], SC_REGION_SIZE));
    ferry_xfer_release(x);
    ferry_prepped_release(from);
    ferry_prepped_release(to);
    FY_CHECK_EQ(auth_failures(&a), 0);
    FY_CHECK_EQ(auth_failures(&b), 0);
    sc_close(&b);
    sc_close(&a);
}

/* A keyed agent with a UCX backend (and its progress thread): NOT_FOUND
 * or BACKEND when UCX is not available here. */
static ferry_status open_ucx(sc_agent *a, const char *name, bool listen)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = name;
    cfg.listen = listen;
    cfg.listen_host = "127.0.0.1";
    cfg.progress_thread = true;
    cfg.auth_key = KEY;
    memset(a, 0, sizeof(*a));
    ferry_backend *be;
    ferry_status rc = ferry_agent_create(&cfg, &a->agent);
    if (rc == FERRY_OK)
        rc = ferry_backend_create(a->agent, "UCX", NULL, 0, &be);
    if (rc == FERRY_OK)
        rc = sc_register(a);
    return rc;
}

/* Two agents with the same key: B fetches A's metadata over the signed
 * side channel and WRITEs into A's memory through UCX. */
static void test_same_key_ucx_transfer(void)
{
    sc_agent a, b;
    ferry_status rc = open_ucx(&a, "A", true);
    if (rc == FERRY_OK)
        rc = open_ucx(&b, "B", false);
    else
        memset(&b, 0, sizeof(b));
    if (rc != FERRY_OK) {
        sc_close(&b);
        sc_close(&a);
        FY_SKIP("no UCX backend here");
    }
    FY_CHECK_EQ(fetch(&b, "A", &a), FERRY_OK);
    memset(b.mem[0], 0x5e, SC_REGION_SIZE);
    ferry_prepped *from = NULL, *to = NULL;
    ferry_xfer *x = NULL;
    uint32_t idx = 0;
    FY_CHECK_EQ(ferry_prep_dlist(b.agent, NULL, b.region[0], NULL, &from), FERRY_OK);
    FY_CHECK_EQ(ferry_prep_dlist(b.agent, "A", a.region[0], NULL, &to), FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_make(b.agent, FERRY_OP_WRITE, from, &idx, to, &idx, 1, NULL, &x),
                FERRY_OK);
    rc = x ? ferry_xfer_post(x) : FERRY_ERR_INVALID_PARAM;
    for (uint64_t end = sc_now_ms() + 5000; rc == FERRY_IN_PROGRESS && sc_now_ms() < end;)
        rc = ferry_xfer_status(x);
    FY_CHECK_EQ(rc, FERRY_OK);
    FY_CHECK(!memcmp(a.mem[0], b.mem[0], SC_REGION_SIZE));
    ferry_xfer_release(x);
    ferry_prepped_release(from);
    ferry_prepped_release(to);
    FY_CHECK_EQ(auth_failures(&a) + auth_failures(&b), 0);
    sc_close(&b);
    sc_close(&a);
}

static void test_key_length(void)
{
    sc_agent a;
    FY_CHECK_EQ(open_keyed(&a, "A", false, "short"), FERRY_ERR_INVALID_PARAM);
    setenv("FERRY_AUTH_KEY", "short", 1);
    FY_CHECK_EQ(open_keyed(&a, "A", false, NULL), FERRY_ERR_INVALID_PARAM);
    unsetenv("FERRY_AUTH_KEY");
}

/* Another key, or none on one side: AUTH, counted where it was seen. */
static void test_key_mismatch(void)
{
    sc_agent l, other, none;
    FY_REQUIRE(open_keyed(&l, "L", true, KEY) == FERRY_OK);
    FY_REQUIRE(open_keyed(&other, "O", true, OTHER) == FERRY_OK);
    FY_REQUIRE(open_keyed(&none, "N", true, NULL) == FERRY_OK);
    FY_CHECK_EQ(fetch(&other, "L", &l), FERRY_ERR_AUTH);
    FY_CHECK(strstr(ferry_md_error(), "authentication failed") != NULL);
    FY_CHECK_EQ(ferry_md_send_local(other.agent, "127.0.0.1", sc_port(&l)), FERRY_ERR_AUTH);
    FY_CHECK_EQ(auth_failures(&l), 2);
    FY_CHECK_EQ(fetch(&none, "L", &l), FERRY_ERR_AUTH); /* unsigned request */
    FY_CHECK_EQ(auth_failures(&l), 3);
    FY_CHECK_EQ(fetch(&l, "N", &none), FERRY_ERR_AUTH); /* unsigned OK reply */
    FY_CHECK_EQ(auth_failures(&l), 4);
    FY_CHECK_EQ(ferry_md_check(l.agent, "N", NULL), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(ferry_md_check(l.agent, "O", NULL), FERRY_ERR_NOT_FOUND);
    sc_close(&none);
    sc_close(&other);
    sc_close(&l);
}

/* Hand-made frames: a good one is served and its reply is signed; an
 * altered, replayed, stale or future one gets AUTH and is counted. */
static void test_raw_frames(void)
{
    sc_agent l;
    FY_REQUIRE(open_keyed(&l, "L", true, KEY) == FERRY_OK);
    uint16_t port = sc_port(&l);
    uint8_t f[512], nonce[16];
    int32_t st = 1;
    bool signed_ok = false;
    memset(nonce, 1, sizeof(nonce));
    size_t n = signed_fetch(f, "L", nonce, wall_us(), KEY);
    FY_CHECK(raw_exchange(port, f, n, nonce, &st, &signed_ok));
    FY_CHECK_EQ(st, FERRY_OK);
    FY_CHECK(signed_ok);
    /* The same bytes again: a replay. */
    FY_CHECK(raw_exchange(port, f, n, nonce, &st, &signed_ok));
    FY_CHECK_EQ(st, FERRY_ERR_AUTH);
    FY_CHECK_EQ(auth_failures(&l), 1);
    /* One content byte altered (the name asked for). */
    nonce[0] = 2;
    n = signed_fetch(f, "L", nonce, wall_us(), KEY);
    f[14] ^= 0x20;
    FY_CHECK(raw_exchange(port, f, n, nonce, &st, &signed_ok));
    FY_CHECK_EQ(st, FERRY_ERR_AUTH);
    /* The wrong key. */
    nonce[0] = 3;
    n = signed_fetch(f, "L", nonce, wall_us(), OTHER);
    FY_CHECK(raw_exchange(port, f, n, nonce, &st, &signed_ok));
    FY_CHECK_EQ(st, FERRY_ERR_AUTH);
    /* Stamped a minute ago, and a minute ahead (correctly signed). */
    nonce[0] = 4;
    n = signed_fetch(f, "L", nonce, wall_us() - 60000000u, KEY);
    FY_CHECK(raw_exchange(port, f, n, nonce, &st, &signed_ok));
    FY_CHECK_EQ(st, FERRY_ERR_AUTH);
    nonce[0] = 5;
    n = signed_fetch(f, "L", nonce, wall_us() + 60000000u, KEY);
    FY_CHECK(raw_exchange(port, f, n, nonce, &st, &signed_ok));
    FY_CHECK_EQ(st, FERRY_ERR_AUTH);
    /* No auth trailer at all. */
    n = sc_fetch_frame(f, "L", "");
    FY_CHECK(raw_exchange(port, f, n, nonce, &st, &signed_ok));
    FY_CHECK_EQ(st, FERRY_ERR_AUTH);
    FY_CHECK_EQ(auth_failures(&l), 6);
    sc_close(&l);
}

static ferry_status load(sc_agent *a, const void *blob, size_t len)
{
    char name[FERRY_NAME_MAX + 1];
    return ferry_md_load(a->agent, blob, len, name, sizeof(name));
}

/* Blobs moved outside the side channel: the MAC is checked at load. */
static void test_blobs(void)
{
    sc_agent k, k2, none;
    FY_REQUIRE(open_keyed(&k, "KEYED", false, KEY) == FERRY_OK);
    FY_REQUIRE(open_keyed(&k2, "PEER1", false, KEY) == FERRY_OK);
    FY_REQUIRE(open_keyed(&none, "NOKEY", false, NULL) == FERRY_OK);
    uint8_t *blob, *copy;
    size_t len;
    FY_REQUIRE(ferry_md_get_local(k2.agent, (void **)&blob, &len) == FERRY_OK);
    copy = malloc(len);
    /* A region address altered, checksum made right again. */
    memcpy(copy, blob, len);
    copy[len / 2] ^= 1;
    fy_t_blob_reseal(copy, len);
    FY_CHECK_EQ(load(&k, copy, len), FERRY_ERR_AUTH);
    /* Another agent's name swapped in (same length), resealed. */
    memcpy(copy, blob, len);
    uint8_t *at = memmem(copy, len, "PEER1", 5);
    FY_REQUIRE(at != NULL);
    memcpy(at, "PEER2", 5);
    fy_t_blob_reseal(copy, len);
    FY_CHECK_EQ(load(&k, copy, len), FERRY_ERR_AUTH);
    FY_CHECK_EQ(ferry_md_check(k.agent, "PEER2", NULL), FERRY_ERR_NOT_FOUND);
    /* The MAC itself altered. */
    memcpy(copy, blob, len);
    copy[len - 1] ^= 0x80;
    fy_t_blob_reseal(copy, len);
    FY_CHECK_EQ(load(&k, copy, len), FERRY_ERR_AUTH);
    FY_CHECK(strstr(ferry_md_error(), "wrong MAC") != NULL);
    FY_CHECK_EQ(auth_failures(&k), 3);
    /* The genuine blob loads; an agent without a key skips the section. */
    FY_CHECK_EQ(load(&k, blob, len), FERRY_OK);
    FY_CHECK_EQ(ferry_md_error()[0], '\0');
    FY_CHECK_EQ(load(&none, blob, len), FERRY_OK);
    ferry_free(blob);
    free(copy);
    /* A blob without a MAC, to a keyed agent. */
    FY_REQUIRE(ferry_md_get_local(none.agent, (void **)&blob, &len) == FERRY_OK);
    FY_CHECK_EQ(load(&k, blob, len), FERRY_ERR_AUTH);
    FY_CHECK(strstr(ferry_md_error(), "no MAC") != NULL);
    FY_CHECK_EQ(auth_failures(&k), 4);
    FY_CHECK_EQ(ferry_md_check(k.agent, "NOKEY", NULL), FERRY_ERR_NOT_FOUND);
    ferry_free(blob);
    sc_close(&none);
    sc_close(&k2);
    sc_close(&k);
}

/* An agent's own name from the network or from another instance is
 * refused; its own genuine blob (loopback) still loads. */
static void test_own_name(void)
{
    sc_agent l, twin;
    FY_REQUIRE(open_keyed(&l, "L", true, NULL) == FERRY_OK);
    FY_REQUIRE(open_keyed(&twin, "L", false, NULL) == FERRY_OK); /* same name, other uid */
    void *blob;
    size_t len;
    uint64_t gen = 0, gen_after = 0;
    FY_REQUIRE(ferry_md_get_local(l.agent, &blob, &len) == FERRY_OK);
    FY_CHECK_EQ(load(&l, blob, len), FERRY_OK);
    ferry_free(blob);
    FY_CHECK_EQ(ferry_md_generation(l.agent, "L", &gen), FERRY_OK);
    /* Over the side channel: LOAD naming the listener. */
    FY_CHECK_EQ(ferry_md_send_local(twin.agent, "127.0.0.1", sc_port(&l)), FERRY_ERR_NOT_ALLOWED);
    /* Directly: a blob of the other instance. */
    FY_REQUIRE(ferry_md_get_local(twin.agent, &blob, &len) == FERRY_OK);
    FY_CHECK_EQ(load(&l, blob, len), FERRY_ERR_NOT_ALLOWED);
    FY_CHECK(strstr(ferry_md_error(), "own name") != NULL);
    ferry_free(blob);
    FY_CHECK_EQ(ferry_md_generation(l.agent, "L", &gen_after), FERRY_OK);
    FY_CHECK_EQ(gen_after, gen);
    /* INVALIDATE naming the listener, even with its own uid. */
    FY_CHECK_EQ(ferry_md_invalidate_local(twin.agent, "127.0.0.1", sc_port(&l)),
                FERRY_ERR_NOT_ALLOWED);
    FY_CHECK_EQ(ferry_md_check(l.agent, "L", NULL), FERRY_OK);
    sc_close(&twin);
    sc_close(&l);
}

int main(void)
{
    FY_RUN(test_same_key_end_to_end);
    FY_RUN(test_same_key_ucx_transfer);
    FY_RUN(test_key_length);
    FY_RUN(test_key_mismatch);
    FY_RUN(test_raw_frames);
    FY_RUN(test_blobs);
    FY_RUN(test_own_name);
    return fy_test_done();
}
