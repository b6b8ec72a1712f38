/* SPDX-License-Identifier: Apache-2.0 */
/* HMAC-SHA256 over scattered bytes, the timestamp window and the replay
 * memory of the side channel, and the agent's key with its refusal
 * counter. Internal (fy_*).
 * See docs/side-channel.md, "Authentication". */
#ifndef FY_AUTH_H
#define FY_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <sys/uio.h>

#include "ferry/status.h"
#include "metadata/sc_frame.h"
#include "metadata/wire.h"

#define FY_AUTH_KEY_MIN 16u
#define FY_AUTH_KEY_MAX 256u
/* At most one line a second for a kind of event that peers can trigger at
 * will; the next line says how many were left out. */
typedef struct fy_ratelog {
    atomic_uint_fast64_t next_ns, suppressed;
} fy_ratelog;
bool fy_ratelog_pass(fy_ratelog *r, uint64_t *suppressed);
typedef struct fy_auth {
    uint8_t key[FY_AUTH_KEY_MAX];
    size_t key_len; /* 0: no key, nothing is signed or checked */
    atomic_uint_fast64_t failures;
    fy_ratelog log;
} fy_auth;
/* The key of the config (or env FERRY_AUTH_KEY when NULL): OK,
 * INVALID_PARAM (length outside FY_AUTH_KEY_MIN..MAX). */
ferry_status fy_auth_init(fy_auth *a, const char *config_key);
void fy_auth_fini(fy_auth *a);
/* Counts a refusal and logs it (rate-limited). */
void fy_auth_refused(fy_auth *a, const char *agent, const char *what, const char *why);
/* Writes the MAC of a blob encoded with md.auth and reseals it. */
ferry_status fy_auth_blob_sign(const fy_auth *a, uint8_t *blob, size_t len);

#define FY_AUTH_MAC_LEN   32u
#define FY_AUTH_NONCE_LEN 16u
/* Frames stamped further than this from the receiver's clock are refused. */
#define FY_AUTH_WINDOW_US (30ull * 1000000u)
/* Nonces remembered by a listener; see fy_replay_check. */
#define FY_REPLAY_SLOTS 4096u

/* HMAC-SHA256 with the agent's key of the concatenated parts. */
ferry_status fy_auth_mac(const fy_auth *a, const struct iovec *parts, int n,
                         uint8_t out[FY_AUTH_MAC_LEN]);
/* Computes the MAC of parts and compares it with mac in constant time. */
bool fy_auth_mac_ok(const fy_auth *a, const struct iovec *parts, int n, const uint8_t *mac);
/* NULL when ts_us is within FY_AUTH_WINDOW_US of now, else why not. */
const char *fy_auth_window(uint64_t ts_us, uint64_t now_us);
/* A fresh random nonce. */
void fy_auth_nonce(uint8_t out[FY_AUTH_NONCE_LEN]);

/* True when the MAC at the end of rx's payload (a frame with the auth
 * flag, trailer checked by fy_sc_tail_get) is that of its header and
 * payload, preceded by bind (a request nonce) when not NULL. */
bool fy_sc_rx_signed_ok(const fy_auth *a, const uint8_t *bind, const fy_sc_rx *rx);

/* The MAC of a blob that fy_md_decode reported with md->auth. */
bool fy_auth_blob_ok(const fy_auth *a, const uint8_t *blob, size_t len, const fy_md *md);

/* Nonces of accepted frames within the window, oldest overwritten first.
 * A live nonce that has to be overwritten raises `floor`: frames stamped
 * at or before it are refused from then on, so memory stays bounded and a
 * replay is never accepted just because its nonce was forgotten. */
typedef struct fy_replay {
    struct {
        uint8_t nonce[FY_AUTH_NONCE_LEN];
        uint64_t ts_us;
    } seen[FY_REPLAY_SLOTS];
    size_t next, count;
    uint64_t floor_us;
} fy_replay;

/* NULL (and the nonce is remembered) when the frame is new, else why not. */
const char *fy_replay_check(fy_replay *r, const uint8_t nonce[FY_AUTH_NONCE_LEN], uint64_t ts_us,
                            uint64_t now_us);

#endif
