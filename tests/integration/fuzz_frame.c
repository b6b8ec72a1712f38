/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target for the side-channel frame reader and payload decoders
 * (src/metadata/sc_frame.c): the bytes a hostile peer could send.
 *
 * Input: byte 0 picks the recv() chunk size, byte 1 the frame cap, the rest
 * is the byte stream. Frames are read one after another as the listener
 * does; each whole frame goes through the decoder of its type, and every
 * view a decoder returns must lie inside the payload. A frame with the auth
 * flag first has its trailer split off (sender, nonce and MAC must lie
 * inside the payload too), its MAC checked against a fixed key and its
 * nonce put through a replay memory; then a copy is signed with that key
 * and must check out, and fail again with one covered byte flipped.
 *
 * Built twice: with libFuzzer (clang, -fsanitize=fuzzer) as fuzz_sc_frame,
 * and with FY_SC_FUZZ_STANDALONE as a plain program that runs the target
 * on generated inputs (random bytes and mutated valid frames), so every
 * build exercises it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metadata/auth.h"
#include "metadata/sc_frame.h"

#define FUZZ_AUTH_KEY "fuzz-auth-key-0123456789"

static const fy_auth *fuzz_key(void)
{
    static fy_auth key;
    if (!key.key_len && fy_auth_init(&key, FUZZ_AUTH_KEY) != FERRY_OK)
        abort();
    return &key;
}

static void check_view(fy_sc_view v, const fy_sc_rx *rx)
{
    if (!v.len)
        return;
    if (v.ptr < rx->payload || v.ptr + v.len > rx->payload + rx->hdr.len)
        abort();
}

/* The frame's MAC recomputed with the fuzz key on a copy: it must hold,
 * and break when a byte it covers flips. */
static void check_resigned(const fy_sc_rx *rx)
{
    fy_sc_rx copy = *rx;
    size_t body = rx->hdr.len - FY_SC_MAC_LEN;
    copy.payload = malloc(rx->hdr.len);
    if (!copy.payload)
        abort();
    memcpy(copy.payload, rx->payload, rx->hdr.len);
    struct iovec parts[2] = {{copy.hdr_bytes, FY_SC_HDR_LEN}, {copy.payload, body}};
    if (fy_auth_mac(fuzz_key(), parts, 2, copy.payload + body) != FERRY_OK ||
        !fy_sc_rx_signed_ok(fuzz_key(), NULL, &copy))
        abort();
    copy.payload[body ? body / 2 : 0] ^= 0x40;
    if (fy_sc_rx_signed_ok(fuzz_key(), NULL, &copy))
        abort();
    free(copy.payload);
}

/* Splits off the auth trailer; *h becomes the content's header. */
static bool open_auth(const fy_sc_rx *rx, fy_sc_hdr *h)
{
    static fy_replay replay;
    fy_sc_auth auth;
    if (!(rx->hdr.flags & FY_SC_FLAG_AUTH))
        return true;
    if (fy_sc_tail_get(&rx->hdr, rx->payload, h, &auth) != FY_SC_OK)
        return false;
    check_view(auth.sender, rx);
    check_view((fy_sc_view){auth.nonce, FY_SC_NONCE_LEN}, rx);
    check_view((fy_sc_view){auth.mac, FY_SC_MAC_LEN}, rx);
    if (auth.mac + FY_SC_MAC_LEN != rx->payload + rx->hdr.len || h->len > rx->hdr.len)
        abort();
    (void)fy_sc_rx_signed_ok(fuzz_key(), NULL, rx);
    (void)fy_replay_check(&replay, auth.nonce, auth.ts_us, auth.ts_us ^ (auth.ts_us >> 7));
    check_resigned(rx);
    return true;
}

static void decode_frame(const fy_sc_rx *rx)
{
    fy_sc_view a = {0}, b = {0};
    fy_sc_hdr h = rx->hdr;
    uint64_t uid;
    int32_t st;
    fy_sc_err err = FY_SC_OK;
    if (!open_auth(rx, &h))
        return;
    switch (h.type) {
    case FY_SC_LOAD:
        err = fy_sc_load_get(&h, rx->payload, &a, &b);
        break;
    case FY_SC_FETCH:
        err = fy_sc_fetch_get(&h, rx->payload, &a, &b);
        break;
    case FY_SC_INVALIDATE:
        err = fy_sc_inval_get(&h, rx->payload, &uid, &a);
        break;
    case FY_SC_REPLY:
        err = fy_sc_reply_get(&h, rx->payload, &st, &a);
        break;
    default:
        abort(); /* the header check lets no other type through */
    }
    if (err == FY_SC_OK) {
        check_view(a, rx);
        check_view(b, rx);
        char s[FY_SC_STR_MAX + 1];
        fy_sc_view_cstr(a, s);
    }
}

/* Reads frames from data; stops at the first error, like the listener. */
static void read_stream(fy_sc_rx *rx, const uint8_t *data, size_t size, size_t chunk)
{
    size_t off = 0;
    while (off < size) {
        uint8_t *buf;
        size_t want;
        bool done = false;
        if (fy_sc_rx_space(rx, &buf, &want) != FY_SC_OK)
            return;
        size_t n = want < chunk ? want : chunk;
        n = n < size - off ? n : size - off;
        memcpy(buf, data + off, n);
        off += n;
        if (fy_sc_rx_advance(rx, n, &done) != FY_SC_OK)
            return;
        if (done) {
            decode_frame(rx);
            fy_sc_rx_reset(rx);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t chunk = 1 + data[0] % 64;
    uint32_t cap = 1u << (data[1] % 24); /* up to 8 MiB: keeps runs fast */
    fy_sc_rx rx;
    fy_sc_rx_init(&rx, cap);
    read_stream(&rx, data + 2, size - 2, chunk);
    fy_sc_rx_reset(&rx);
    return 0;
}

#ifdef FY_SC_FUZZ_STANDALONE
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

static size_t random_bytes(uint8_t *p, size_t n)
{
    for (size_t k = 0; k < n; k++)
        p[k] = (uint8_t)next();
    return n;
}

/* A stream of valid frames (every type), then a few random byte flips. */
static size_t make_input(uint8_t *buf, size_t cap)
{
    size_t n = 2;
    buf[0] = (uint8_t)next();
    buf[1] = (uint8_t)(10 + next() % 14);
    while (n + FY_SC_REQ_MAX + FY_SC_TAIL_MAX + FY_SC_MAC_LEN + FY_SC_HDR_LEN + 64 < cap &&
           next() % 4) {
        uint8_t *p = buf + n + FY_SC_HDR_LEN;
        size_t len = 0;
        fy_sc_type t = (fy_sc_type)(1 + next() % 4);
        if (t == FY_SC_FETCH)
            len = fy_sc_fetch_put(p, "agent", next() % 2 ? "metadata" : "");
        else if (t == FY_SC_INVALIDATE)
            len = fy_sc_inval_put(p, next(), "agent");
        else
            len = random_bytes(p, next() % 64);
        if (next() % 2) { /* signed with the fuzz key */
            uint8_t nonce[FY_SC_NONCE_LEN];
            random_bytes(nonce, sizeof(nonce));
            len += fy_sc_tail_put(p + len, "fuzzer", nonce, next());
            fy_sc_hdr_put(buf + n, t, (uint32_t)(len + FY_SC_MAC_LEN));
            fy_sc_hdr_set_auth(buf + n);
            struct iovec parts[2] = {{buf + n, FY_SC_HDR_LEN}, {p, len}};
            fy_auth_mac(fuzz_key(), parts, 2, p + len);
            len += FY_SC_MAC_LEN;
        } else {
            fy_sc_hdr_put(buf + n, t, (uint32_t)len);
        }
        n += FY_SC_HDR_LEN + len;
    }
    for (unsigned flips = next() % 4; flips--;)
        buf[2 + next() % (n > 2 ? n - 2 : 1)] ^= (uint8_t)(1u << (next() % 8));
    return n;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 20000;
    static uint8_t buf[8192];
    for (long i = 0; i < iters; i++) {
        size_t n;
        if (i % 2) {
            n = random_bytes(buf, 2 + next() % (sizeof(buf) - 2));
        } else {
            n = make_input(buf, sizeof(buf));
        }
        LLVMFuzzerTestOneInput(buf, n);
    }
    printf("1..1\nok 1 - %ld generated inputs\n", iters);
    return 0;
}
#endif
