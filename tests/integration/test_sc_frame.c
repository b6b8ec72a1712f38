/* SPDX-License-Identifier: Apache-2.0 */
/* White-box tests of the side-channel frame codec (src/metadata/sc_frame.c,
 * compiled in): header fields and their errors, payload layouts, and the
 * incremental reader fed in every chunking. */
#include <stdlib.h>
#include <string.h>

#include "metadata/sc_frame.h"
#include "harness.h"

static void test_header_roundtrip(void)
{
    uint8_t b[FY_SC_HDR_LEN];
    fy_sc_hdr_put(b, FY_SC_FETCH, 0x01020304u);
    static const uint8_t want[FY_SC_HDR_LEN] = {'F', 'Y', 'S', 'C', 1, 1, 2, 0, 4, 3, 2, 1};
    FY_CHECK(!memcmp(b, want, sizeof(want)));
    fy_sc_hdr h;
    FY_CHECK_EQ(fy_sc_hdr_get(b, UINT32_MAX, &h), FY_SC_OK);
    FY_CHECK_EQ(h.type, FY_SC_FETCH);
    FY_CHECK_EQ(h.len, 0x01020304u);
    FY_CHECK_EQ(h.major, 1);
    FY_CHECK_EQ(h.minor, 1);
    fy_sc_hdr_set_auth(b);
    FY_CHECK_EQ(fy_sc_hdr_get(b, UINT32_MAX, &h), FY_SC_OK);
    FY_CHECK_EQ(h.flags, FY_SC_FLAG_AUTH);
}

/* The auth trailer is read from the end; the content before it keeps its
 * own layout, and every malformed trailer is refused. */
static void test_auth_trailer(void)
{
    uint8_t p[FY_SC_REQ_MAX + FY_SC_TAIL_MAX + FY_SC_MAC_LEN];
    uint8_t nonce[FY_SC_NONCE_LEN];
    memset(nonce, 0x5a, sizeof(nonce));
    fy_sc_hdr h = {1, 1, FY_SC_FETCH, FY_SC_FLAG_AUTH, 0};
    size_t content = fy_sc_fetch_put(p, "target", "");
    size_t tail = fy_sc_tail_put(p + content, "sender", nonce, 0x0102030405060708ull);
    memset(p + content + tail, 0xee, FY_SC_MAC_LEN);
    h.len = (uint32_t)(content + tail + FY_SC_MAC_LEN);
    fy_sc_hdr inner;
    fy_sc_auth a;
    FY_CHECK_EQ(fy_sc_tail_get(&h, p, &inner, &a), FY_SC_OK);
    FY_CHECK_EQ(inner.len, content);
    FY_CHECK(a.sender.len == 6 && !memcmp(a.sender.ptr, "sender", 6));
    FY_CHECK(!memcmp(a.nonce, nonce, sizeof(nonce)));
    FY_CHECK(a.ts_us == 0x0102030405060708ull);
    FY_CHECK(a.mac == p + h.len - FY_SC_MAC_LEN);
    fy_sc_view n, l;
    FY_CHECK_EQ(fy_sc_fetch_get(&inner, p, &n, &l), FY_SC_OK);
    FY_CHECK(fy_sc_view_eq(n, "target"));
    for (uint32_t cut = 0; cut < FY_SC_TAIL_FIXED + 1; cut++) { /* too short for its name */
        fy_sc_hdr t = h;
        t.len = cut;
        FY_CHECK_EQ(fy_sc_tail_get(&t, p + h.len - cut, &inner, &a), FY_SC_E_PAYLOAD);
    }
    size_t name_len_at = h.len - FY_SC_TAIL_FIXED;
    p[name_len_at] = 0; /* empty sender */
    FY_CHECK_EQ(fy_sc_tail_get(&h, p, &inner, &a), FY_SC_E_PAYLOAD);
    p[name_len_at] = 6;
    p[name_len_at - 1] = 0; /* NUL in the sender */
    FY_CHECK_EQ(fy_sc_tail_get(&h, p, &inner, &a), FY_SC_E_PAYLOAD);
}

static void test_header_errors(void)
{
    uint8_t b[FY_SC_HDR_LEN];
    fy_sc_hdr h = {9, 9, 9, 9, 9};
    fy_sc_hdr_put(b, FY_SC_LOAD, 100);
    FY_CHECK_EQ(fy_sc_hdr_get(b, 99, &h), FY_SC_E_SIZE);
    FY_CHECK_EQ(fy_sc_hdr_get(b, 100, &h), FY_SC_OK);
    b[0] = 'f';
    FY_CHECK_EQ(fy_sc_hdr_get(b, 100, &h), FY_SC_E_MAGIC);
    fy_sc_hdr_put(b, FY_SC_LOAD, 1);
    b[4] = 2;
    FY_CHECK_EQ(fy_sc_hdr_get(b, 100, &h), FY_SC_E_MAJOR);
    fy_sc_hdr_put(b, FY_SC_LOAD, 1);
    b[6] = 5;
    FY_CHECK_EQ(fy_sc_hdr_get(b, 100, &h), FY_SC_E_TYPE);
    b[6] = 0;
    FY_CHECK_EQ(fy_sc_hdr_get(b, 100, &h), FY_SC_E_TYPE);
    fy_sc_hdr_put(b, FY_SC_LOAD, 1);
    b[5] = 200; /* newer minor, unknown flags: fine */
    b[7] = 0xff;
    FY_CHECK_EQ(fy_sc_hdr_get(b, 100, &h), FY_SC_OK);
    FY_CHECK_EQ(h.minor, 200);
    FY_CHECK(strcmp(fy_sc_err_str(FY_SC_E_SIZE), "ok") != 0);
}

static void test_payload_roundtrip(void)
{
    uint8_t p[FY_SC_REQ_MAX];
    fy_sc_hdr h = {1, 0, FY_SC_FETCH, 0, 0};
    h.len = (uint32_t)fy_sc_fetch_put(p, "agent-7", "kv");
    fy_sc_view name, label;
    FY_CHECK_EQ(fy_sc_fetch_get(&h, p, &name, &label), FY_SC_OK);
    FY_CHECK(fy_sc_view_eq(name, "agent-7") && fy_sc_view_eq(label, "kv"));
    char s[FY_SC_STR_MAX + 1];
    fy_sc_view_cstr(name, s);
    FY_CHECK(!strcmp(s, "agent-7"));
    h.type = FY_SC_INVALIDATE;
    h.len = (uint32_t)fy_sc_inval_put(p, 0x1122334455667788ull, "a");
    uint64_t uid = 0;
    FY_CHECK_EQ(fy_sc_inval_get(&h, p, &uid, &name), FY_SC_OK);
    FY_CHECK_EQ(uid, 0x1122334455667788ull);
    FY_CHECK(fy_sc_view_eq(name, "a"));
    uint8_t r[FY_SC_HDR_LEN + 4];
    fy_sc_reply_put(r, -15, 0);
    FY_CHECK_EQ(fy_sc_hdr_get(r, 100, &h), FY_SC_OK);
    int32_t st = 0;
    fy_sc_view body;
    FY_CHECK_EQ(fy_sc_reply_get(&h, r + FY_SC_HDR_LEN, &st, &body), FY_SC_OK);
    FY_CHECK_EQ(st, -15);
    FY_CHECK_EQ(body.len, 0);
}

static void test_payload_errors(void)
{
    uint8_t p[FY_SC_REQ_MAX + 8] = {0};
    fy_sc_hdr h = {1, 0, FY_SC_FETCH, 0, 0};
    fy_sc_view a, b;
    uint64_t uid;
    int32_t st;
    h.len = (uint32_t)fy_sc_fetch_put(p, "n", "");
    for (uint32_t cut = 0; cut < h.len; cut++) { /* every truncation */
        fy_sc_hdr t = h;
        t.len = cut;
        FY_CHECK_EQ(fy_sc_fetch_get(&t, p, &a, &b), FY_SC_E_PAYLOAD);
    }
    h.len += 1; /* trailing byte, same minor */
    FY_CHECK_EQ(fy_sc_fetch_get(&h, p, &a, &b), FY_SC_E_PAYLOAD);
    h.minor = FY_SC_MINOR + 1; /* a newer minor's addition */
    FY_CHECK_EQ(fy_sc_fetch_get(&h, p, &a, &b), FY_SC_OK);
    h.len = 4; /* empty name */
    memset(p, 0, 4);
    FY_CHECK_EQ(fy_sc_fetch_get(&h, p, &a, &b), FY_SC_E_PAYLOAD);
    h.len = 7;
    FY_CHECK_EQ(fy_sc_inval_get(&h, p, &uid, &a), FY_SC_E_PAYLOAD);
    h.len = 3;
    FY_CHECK_EQ(fy_sc_reply_get(&h, p, &st, &a), FY_SC_E_PAYLOAD);
    h.len = 1;
    FY_CHECK_EQ(fy_sc_load_get(&h, p, &a, &b), FY_SC_E_PAYLOAD);
}

/* Feeds a frame to the reader in chunks of at most `chunk` bytes. */
static fy_sc_err feed(fy_sc_rx *rx, const uint8_t *bytes, size_t len, size_t chunk, bool *done)
{
    size_t off = 0;
    *done = false;
    while (off < len && !*done) {
        uint8_t *buf;
        size_t want;
        fy_sc_err err = fy_sc_rx_space(rx, &buf, &want);
        if (err != FY_SC_OK)
            return err;
        size_t n = want < chunk ? want : chunk;
        n = n < len - off ? n : len - off;
        memcpy(buf, bytes + off, n);
        off += n;
        err = fy_sc_rx_advance(rx, n, done);
        if (err != FY_SC_OK)
            return err;
    }
    return FY_SC_OK;
}

static void test_reader_chunks(void)
{
    uint8_t frame[FY_SC_HDR_LEN + 300];
    for (size_t i = 0; i < 300; i++)
        frame[FY_SC_HDR_LEN + i] = (uint8_t)i;
    fy_sc_hdr_put(frame, FY_SC_LOAD, 300);
    for (size_t chunk = 1; chunk <= sizeof(frame); chunk += 7) {
        fy_sc_rx rx;
        fy_sc_rx_init(&rx, 1000);
        FY_CHECK(fy_sc_rx_idle(&rx));
        bool done;
        FY_CHECK_EQ(feed(&rx, frame, sizeof(frame), chunk, &done), FY_SC_OK);
        FY_CHECK(done && rx.hdr.len == 300 && !memcmp(rx.payload, frame + 12, 300));
        FY_CHECK(!fy_sc_rx_idle(&rx));
        fy_sc_rx_reset(&rx);
        FY_CHECK(fy_sc_rx_idle(&rx));
    }
}

static void test_reader_limits(void)
{
    fy_sc_rx rx;
    bool done;
    uint8_t frame[FY_SC_HDR_LEN + 16] = {0};
    /* An empty payload completes with the header. */
    fy_sc_hdr_put(frame, FY_SC_REPLY, 0);
    fy_sc_rx_init(&rx, 10);
    FY_CHECK_EQ(feed(&rx, frame, FY_SC_HDR_LEN, 5, &done), FY_SC_OK);
    FY_CHECK(done && rx.payload == NULL);
    fy_sc_rx_reset(&rx);
    /* Over the cap: refused on the header, before any allocation. */
    fy_sc_hdr_put(frame, FY_SC_LOAD, 11);
    FY_CHECK_EQ(feed(&rx, frame, FY_SC_HDR_LEN, 12, &done), FY_SC_E_SIZE);
    FY_CHECK(rx.payload == NULL);
    fy_sc_rx_reset(&rx);
    /* A huge declared length: memory follows the bytes that came. */
    fy_sc_rx_init(&rx, UINT32_MAX);
    fy_sc_hdr_put(frame, FY_SC_LOAD, UINT32_MAX);
    FY_CHECK_EQ(feed(&rx, frame, sizeof(frame), 64, &done), FY_SC_OK);
    FY_CHECK(!done && rx.cap <= FY_SC_RX_CHUNK);
    fy_sc_rx_reset(&rx);
}

int main(void)
{
    FY_RUN(test_header_roundtrip);
    FY_RUN(test_auth_trailer);
    FY_RUN(test_header_errors);
    FY_RUN(test_payload_roundtrip);
    FY_RUN(test_payload_errors);
    FY_RUN(test_reader_chunks);
    FY_RUN(test_reader_limits);
    return fy_test_done();
}
