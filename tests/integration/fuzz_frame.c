/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target for the side-channel frame reader and payload decoders
 * (src/metadata/sc_frame.c): the bytes a hostile peer could send.
 *
 * Input: byte 0 picks the recv() chunk size, byte 1 the frame cap, the rest
 * is the byte stream. Frames are read one after another as the listener
 * does; each whole frame goes through the decoder of its type, and every
 * view a decoder returns must lie inside the payload.
 *
 * Built twice: with libFuzzer (clang, -fsanitize=fuzzer) as fuzz_sc_frame,
 * and with FY_SC_FUZZ_STANDALONE as a plain program that runs the target
 * on generated inputs (random bytes and mutated valid frames), so every
 * build exercises it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metadata/sc_frame.h"

static void check_view(fy_sc_view v, const fy_sc_rx *rx)
{
    if (!v.len)
        return;
    if (v.ptr < rx->payload || v.ptr + v.len > rx->payload + rx->hdr.len)
        abort();
}

static void decode_frame(const fy_sc_rx *rx)
{
    fy_sc_view a = {0}, b = {0};
    uint64_t uid;
    int32_t st;
    fy_sc_err err = FY_SC_OK;
    switch (rx->hdr.type) {
    case FY_SC_LOAD:
        err = fy_sc_load_get(&rx->hdr, rx->payload, &a, &b);
        break;
    case FY_SC_FETCH:
        err = fy_sc_fetch_get(&rx->hdr, rx->payload, &a, &b);
        break;
    case FY_SC_INVALIDATE:
        err = fy_sc_inval_get(&rx->hdr, rx->payload, &uid, &a);
        break;
    case FY_SC_REPLY:
        err = fy_sc_reply_get(&rx->hdr, rx->payload, &st, &a);
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
    while (n + FY_SC_REQ_MAX + FY_SC_HDR_LEN + 64 < cap && next() % 4) {
        uint8_t *p = buf + n + FY_SC_HDR_LEN;
        size_t len = 0;
        fy_sc_type t = (fy_sc_type)(1 + next() % 4);
        if (t == FY_SC_FETCH)
            len = fy_sc_fetch_put(p, "agent", next() % 2 ? "metadata" : "");
        else if (t == FY_SC_INVALIDATE)
            len = fy_sc_inval_put(p, next(), "agent");
        else
            len = random_bytes(p, next() % 64);
        fy_sc_hdr_put(buf + n, t, (uint32_t)len);
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
