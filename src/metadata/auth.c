/* SPDX-License-Identifier: Apache-2.0 */
/* Shared-secret authentication: HMAC-SHA256 through OpenSSL's EVP_MAC, the
 * timestamp window, the replay memory of a listener, blob signing and
 * checking, and the refusal counter with its rate-limited log line.
 *
 * The key is copied into the agent at create and wiped at destroy. MACs
 * are compared with CRYPTO_memcmp so their check takes the same time
 * wherever they differ. */
#include "metadata/auth.h"

#include "common/clock.h"
#include "common/log.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define FY_AUTH_WARN(...) fy_log(FERRY_LOG_WARN, "auth", __VA_ARGS__)

/* ---- rate-limited log lines ---- */

bool fy_ratelog_pass(fy_ratelog *r, uint64_t *suppressed)
{
    uint64_t now = fy_now_ns(), next = atomic_load(&r->next_ns);
    if (now < next || !atomic_compare_exchange_strong(&r->next_ns, &next, now + 1000000000ull)) {
        atomic_fetch_add(&r->suppressed, 1);
        return false;
    }
    *suppressed = atomic_exchange(&r->suppressed, 0);
    return true;
}

/* ---- the key ---- */

ferry_status fy_auth_init(fy_auth *a, const char *config_key)
{
    const char *key = config_key ? config_key : getenv("FERRY_AUTH_KEY");
    size_t n = key ? strlen(key) : 0;
    a->key_len = 0;
    atomic_init(&a->failures, 0);
    atomic_init(&a->log.next_ns, 0);
    atomic_init(&a->log.suppressed, 0);
    if (!n)
        return FERRY_OK;
    if (n < FY_AUTH_KEY_MIN || n > FY_AUTH_KEY_MAX) {
        FY_ERR("auth key (%s) is %zu bytes: it must have %u to %u",
               config_key ? "config" : "FERRY_AUTH_KEY", n, FY_AUTH_KEY_MIN, FY_AUTH_KEY_MAX);
        return FERRY_ERR_INVALID_PARAM;
    }
    memcpy(a->key, key, n);
    a->key_len = n;
    return FERRY_OK;
}

void fy_auth_fini(fy_auth *a)
{
    OPENSSL_cleanse(a->key, sizeof(a->key));
    a->key_len = 0;
}

void fy_auth_refused(fy_auth *a, const char *agent, const char *what, const char *why)
{
    uint64_t more;
    char detail[256];
    atomic_fetch_add(&a->failures, 1);
    snprintf(detail, sizeof(detail), "agent %s: refused %s: %s", agent, what, why);
    fy_md_detail_set(detail);
    if (fy_ratelog_pass(&a->log, &more))
        FY_AUTH_WARN("%s (%llu more refusals since the last line)", detail,
                     (unsigned long long)more);
}

/* ---- HMAC-SHA256 ---- */

static EVP_MAC *fy_hmac;
static pthread_once_t fy_hmac_once = PTHREAD_ONCE_INIT;

/* Fetched once: the algorithm object is shared by every thread. */
static void fy_hmac_fetch(void)
{
    fy_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

static ferry_status fy_auth_mac_run(EVP_MAC_CTX *ctx, const fy_auth *a, const struct iovec *parts,
                                    int n, uint8_t *out)
{
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    size_t got = 0;
    if (!EVP_MAC_init(ctx, a->key, a->key_len, params))
        return FERRY_ERR_UNKNOWN;
    for (int i = 0; i < n; i++)
        if (parts[i].iov_len && !EVP_MAC_update(ctx, parts[i].iov_base, parts[i].iov_len))
            return FERRY_ERR_UNKNOWN;
    if (!EVP_MAC_final(ctx, out, &got, FY_AUTH_MAC_LEN) || got != FY_AUTH_MAC_LEN)
        return FERRY_ERR_UNKNOWN;
    return FERRY_OK;
}

ferry_status fy_auth_mac(const fy_auth *a, const struct iovec *parts, int n,
                         uint8_t out[FY_AUTH_MAC_LEN])
{
    pthread_once(&fy_hmac_once, fy_hmac_fetch);
    EVP_MAC_CTX *ctx = fy_hmac ? EVP_MAC_CTX_new(fy_hmac) : NULL;
    if (!ctx) {
        FY_ERR("OpenSSL: HMAC-SHA256 is not available");
        return FERRY_ERR_NO_MEMORY;
    }
    ferry_status rc = fy_auth_mac_run(ctx, a, parts, n, out);
    EVP_MAC_CTX_free(ctx);
    if (rc != FERRY_OK)
        FY_ERR("OpenSSL: HMAC-SHA256 failed");
    return rc;
}

bool fy_auth_mac_ok(const fy_auth *a, const struct iovec *parts, int n, const uint8_t *mac)
{
    uint8_t want[FY_AUTH_MAC_LEN];
    bool ok = fy_auth_mac(a, parts, n, want) == FERRY_OK &&
              CRYPTO_memcmp(want, mac, FY_AUTH_MAC_LEN) == 0;
    OPENSSL_cleanse(want, sizeof(want));
    return ok;
}

const char *fy_auth_window(uint64_t ts_us, uint64_t now_us)
{
    if (ts_us + FY_AUTH_WINDOW_US < now_us)
        return "timestamp too old (outside the 30 s window)";
    if (ts_us > now_us + FY_AUTH_WINDOW_US)
        return "timestamp in the future (outside the 30 s window)";
    return NULL;
}

void fy_auth_nonce(uint8_t out[FY_AUTH_NONCE_LEN])
{
    /* getrandom does not fail for 16 bytes once the pool is ready; the
     * OpenSSL generator covers the early-boot case. */
    if (getrandom(out, FY_AUTH_NONCE_LEN, GRND_NONBLOCK) != FY_AUTH_NONCE_LEN &&
        RAND_bytes(out, FY_AUTH_NONCE_LEN) != 1)
        FY_ERR("no random bytes for a nonce: replay checks may refuse this frame");
}

/* ---- side-channel frames ---- */

bool fy_sc_rx_signed_ok(const fy_auth *a, const uint8_t *bind, const fy_sc_rx *rx)
{
    struct iovec parts[3] = {
        {(void *)bind, bind ? FY_SC_NONCE_LEN : 0},
        {(void *)rx->hdr_bytes, FY_SC_HDR_LEN},
        {rx->payload, rx->hdr.len - FY_SC_MAC_LEN},
    };
    return fy_auth_mac_ok(a, parts, 3, rx->payload + rx->hdr.len - FY_SC_MAC_LEN);
}

/* ---- metadata blobs ---- */

static void fy_blob_parts(const uint8_t *blob, size_t len, struct iovec iov[2], size_t *mac_off)
{
    fy_bytes parts[2];
    fy_md_mac_parts(blob, len, parts, mac_off);
    for (int i = 0; i < 2; i++)
        iov[i] = (struct iovec){(void *)parts[i].ptr, parts[i].len};
}

ferry_status fy_auth_blob_sign(const fy_auth *a, uint8_t *blob, size_t len)
{
    struct iovec iov[2];
    size_t mac_off;
    fy_blob_parts(blob, len, iov, &mac_off);
    ferry_status rc = fy_auth_mac(a, iov, 2, blob + mac_off);
    if (rc == FERRY_OK)
        fy_md_reseal(blob, len);
    return rc;
}

bool fy_auth_blob_ok(const fy_auth *a, const uint8_t *blob, size_t len, const fy_md *md)
{
    struct iovec iov[2];
    size_t mac_off;
    if (!md->auth)
        return false;
    fy_blob_parts(blob, len, iov, &mac_off);
    return blob + mac_off == md->auth_mac && fy_auth_mac_ok(a, iov, 2, md->auth_mac);
}

/* ---- replay memory ---- */

static bool fy_replay_seen(const fy_replay *r, const uint8_t *nonce)
{
    for (size_t i = 0; i < r->count; i++)
        if (!memcmp(r->seen[i].nonce, nonce, FY_AUTH_NONCE_LEN))
            return true;
    return false;
}

static void fy_replay_add(fy_replay *r, const uint8_t *nonce, uint64_t ts_us, uint64_t now_us)
{
    if (r->count == FY_REPLAY_SLOTS) {
        uint64_t old = r->seen[r->next].ts_us;
        if (old + FY_AUTH_WINDOW_US >= now_us && old > r->floor_us)
            r->floor_us = old; /* forgotten while live: refuse its era */
    } else {
        r->count++;
    }
    memcpy(r->seen[r->next].nonce, nonce, FY_AUTH_NONCE_LEN);
    r->seen[r->next].ts_us = ts_us;
    r->next = (r->next + 1) % FY_REPLAY_SLOTS;
}

const char *fy_replay_check(fy_replay *r, const uint8_t nonce[FY_AUTH_NONCE_LEN], uint64_t ts_us,
                            uint64_t now_us)
{
    const char *why = fy_auth_window(ts_us, now_us);
    if (why)
        return why;
    if (ts_us <= r->floor_us)
        return "timestamp older than the nonces still remembered";
    if (fy_replay_seen(r, nonce))
        return "replayed frame (nonce already seen)";
    fy_replay_add(r, nonce, ts_us, now_us);
    return NULL;
}
