/* SPDX-License-Identifier: Apache-2.0 */
/* Side-channel frame codec (layout in sc_frame.h and docs/side-channel.md).
 *
 * Every multi-byte field is written and read byte by byte in little-endian
 * order, so the format does not depend on the host's endianness or on
 * struct layout. Readers treat their input as hostile: each field is read
 * only after checking that the bytes behind it exist. */
#include "metadata/sc_frame.h"

#include "common/le.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t fy_sc_magic[4] = {'F', 'Y', 'S', 'C'};

const char *fy_sc_err_str(fy_sc_err err)
{
    switch (err) {
    case FY_SC_OK:
        return "ok";
    case FY_SC_E_MAGIC:
        return "bad magic (not a ferry side-channel frame)";
    case FY_SC_E_MAJOR:
        return "unsupported major version";
    case FY_SC_E_TYPE:
        return "unknown frame type";
    case FY_SC_E_SIZE:
        return "frame larger than sc_max_frame";
    case FY_SC_E_PAYLOAD:
        return "malformed payload";
    case FY_SC_E_NOMEM:
        return "out of memory for the payload";
    }
    return "unknown error";
}

/* A bounds-checked cursor over a payload. */
typedef struct fy_cur {
    const uint8_t *p;
    size_t left;
    bool bad;
} fy_cur;

static uint64_t fy_cur_le(fy_cur *c, unsigned bytes)
{
    if (c->bad || c->left < bytes) {
        c->bad = true;
        return 0;
    }
    uint64_t v = fy_le_get(c->p, bytes);
    c->p += bytes;
    c->left -= bytes;
    return v;
}

/* A string: u16 length, bytes; at most FY_SC_STR_MAX, no NUL inside. */
static fy_sc_view fy_cur_str(fy_cur *c)
{
    size_t len = (size_t)fy_cur_le(c, 2);
    if (c->bad || len > FY_SC_STR_MAX || len > c->left || memchr(c->p, '\0', len)) {
        c->bad = true;
        return (fy_sc_view){NULL, 0};
    }
    fy_sc_view v = {c->p, len};
    c->p += len;
    c->left -= len;
    return v;
}

/* The cursor ended well: no overrun, and leftovers only from a newer minor. */
static fy_sc_err fy_cur_end(const fy_cur *c, const fy_sc_hdr *h)
{
    if (c->bad || (c->left && h->minor <= FY_SC_MINOR))
        return FY_SC_E_PAYLOAD;
    return FY_SC_OK;
}

/* ---- header ---- */

void fy_sc_hdr_put(uint8_t out[FY_SC_HDR_LEN], fy_sc_type type, uint32_t len)
{
    memcpy(out, fy_sc_magic, sizeof(fy_sc_magic));
    out[4] = FY_SC_MAJOR;
    out[5] = FY_SC_MINOR;
    out[6] = (uint8_t)type;
    out[7] = 0; /* flags: see fy_sc_hdr_set_auth; readers ignore unknown bits */
    fy_le_put(out + 8, len, 4);
}

fy_sc_err fy_sc_hdr_get(const uint8_t in[FY_SC_HDR_LEN], uint32_t max_len, fy_sc_hdr *hdr)
{
    if (memcmp(in, fy_sc_magic, sizeof(fy_sc_magic)))
        return FY_SC_E_MAGIC;
    fy_sc_hdr h = {in[4], in[5], in[6], in[7], (uint32_t)fy_le_get(in + 8, 4)};
    if (h.major != FY_SC_MAJOR)
        return FY_SC_E_MAJOR;
    if (h.type < FY_SC_LOAD || h.type > FY_SC_REPLY)
        return FY_SC_E_TYPE;
    if (h.len > max_len)
        return FY_SC_E_SIZE;
    *hdr = h;
    return FY_SC_OK;
}

void fy_sc_hdr_set_auth(uint8_t hdr[FY_SC_HDR_LEN])
{
    hdr[7] |= FY_SC_FLAG_AUTH;
}

/* ---- auth trailer ---- */

size_t fy_sc_tail_put(uint8_t out[FY_SC_TAIL_MAX], const char *sender,
                      const uint8_t nonce[FY_SC_NONCE_LEN], uint64_t ts_us)
{
    size_t n = strlen(sender);
    memcpy(out, sender, n);
    fy_le_put(out + n, n, 2);
    memcpy(out + n + 2, nonce, FY_SC_NONCE_LEN);
    fy_le_put(out + n + 2 + FY_SC_NONCE_LEN, ts_us, 8);
    return n + 2 + FY_SC_NONCE_LEN + 8;
}

fy_sc_err fy_sc_tail_get(const fy_sc_hdr *h, const uint8_t *p, fy_sc_hdr *inner, fy_sc_auth *a)
{
    if (h->len < FY_SC_TAIL_FIXED)
        return FY_SC_E_PAYLOAD;
    const uint8_t *end = p + h->len;
    size_t name_len = (size_t)fy_le_get(end - FY_SC_TAIL_FIXED, 2);
    if (!name_len || name_len > FY_SC_STR_MAX || name_len > h->len - FY_SC_TAIL_FIXED)
        return FY_SC_E_PAYLOAD;
    const uint8_t *name = end - FY_SC_TAIL_FIXED - name_len;
    if (memchr(name, '\0', name_len))
        return FY_SC_E_PAYLOAD;
    a->sender = (fy_sc_view){name, name_len};
    a->nonce = end - FY_SC_MAC_LEN - 8 - FY_SC_NONCE_LEN;
    a->ts_us = fy_le_get(end - FY_SC_MAC_LEN - 8, 8);
    a->mac = end - FY_SC_MAC_LEN;
    *inner = *h;
    inner->len = (uint32_t)(h->len - FY_SC_TAIL_FIXED - name_len);
    return FY_SC_OK;
}

/* ---- payloads ---- */

size_t fy_sc_str_put(uint8_t *out, const char *s, size_t len)
{
    fy_le_put(out, len, 2);
    if (len)
        memcpy(out + 2, s, len);
    return 2 + len;
}

size_t fy_sc_fetch_put(uint8_t out[FY_SC_REQ_MAX], const char *name, const char *label)
{
    size_t n = fy_sc_str_put(out, name, strlen(name));
    return n + fy_sc_str_put(out + n, label, strlen(label));
}

size_t fy_sc_inval_put(uint8_t out[FY_SC_REQ_MAX], uint64_t uid, const char *name)
{
    fy_le_put(out, uid, 8);
    return 8 + fy_sc_str_put(out + 8, name, strlen(name));
}

void fy_sc_reply_put(uint8_t out[FY_SC_HDR_LEN + 4], int32_t status, uint32_t body_len)
{
    fy_sc_hdr_put(out, FY_SC_REPLY, body_len + 4);
    fy_le_put(out + FY_SC_HDR_LEN, (uint32_t)status, 4);
}

fy_sc_err fy_sc_load_get(const fy_sc_hdr *h, const uint8_t *p, fy_sc_view *label, fy_sc_view *blob)
{
    fy_cur c = {p, h->len, false};
    fy_sc_view l = fy_cur_str(&c);
    if (c.bad)
        return FY_SC_E_PAYLOAD;
    /* The blob takes the rest: it carries its own version and checksum. */
    *label = l;
    *blob = (fy_sc_view){c.p, c.left};
    return FY_SC_OK;
}

fy_sc_err fy_sc_fetch_get(const fy_sc_hdr *h, const uint8_t *p, fy_sc_view *name, fy_sc_view *label)
{
    fy_cur c = {p, h->len, false};
    fy_sc_view n = fy_cur_str(&c);
    fy_sc_view l = fy_cur_str(&c);
    if (fy_cur_end(&c, h) != FY_SC_OK || !n.len)
        return FY_SC_E_PAYLOAD;
    *name = n;
    *label = l;
    return FY_SC_OK;
}

fy_sc_err fy_sc_inval_get(const fy_sc_hdr *h, const uint8_t *p, uint64_t *uid, fy_sc_view *name)
{
    fy_cur c = {p, h->len, false};
    uint64_t u = fy_cur_le(&c, 8);
    fy_sc_view n = fy_cur_str(&c);
    if (fy_cur_end(&c, h) != FY_SC_OK || !n.len)
        return FY_SC_E_PAYLOAD;
    *uid = u;
    *name = n;
    return FY_SC_OK;
}

fy_sc_err fy_sc_reply_get(const fy_sc_hdr *h, const uint8_t *p, int32_t *status, fy_sc_view *body)
{
    fy_cur c = {p, h->len, false};
    uint32_t s = (uint32_t)fy_cur_le(&c, 4);
    if (c.bad)
        return FY_SC_E_PAYLOAD;
    *status = (int32_t)s;
    *body = (fy_sc_view){c.left ? c.p : NULL, c.left};
    return FY_SC_OK;
}

void fy_sc_view_cstr(fy_sc_view v, char *out)
{
    size_t n = v.len < FY_SC_STR_MAX ? v.len : FY_SC_STR_MAX;
    if (n)
        memcpy(out, v.ptr, n);
    out[n] = '\0';
}

bool fy_sc_view_eq(fy_sc_view v, const char *s)
{
    return strlen(s) == v.len && (!v.len || !memcmp(v.ptr, s, v.len));
}

/* ---- incremental reader ---- */

void fy_sc_rx_init(fy_sc_rx *rx, uint32_t max_len)
{
    memset(rx, 0, sizeof(*rx));
    rx->max_len = max_len;
}

bool fy_sc_rx_idle(const fy_sc_rx *rx)
{
    return !rx->in_payload && !rx->got;
}

void fy_sc_rx_reset(fy_sc_rx *rx)
{
    free(rx->payload);
    fy_sc_rx_init(rx, rx->max_len);
}

/* The buffer grows geometrically, never past the frame's length: memory
 * follows the bytes actually received, not the length field. */
size_t fy_sc_rx_growth(const fy_sc_rx *rx)
{
    if (!rx->in_payload || rx->got != rx->cap || rx->cap >= rx->hdr.len)
        return 0;
    size_t want = rx->cap ? rx->cap * 2 : FY_SC_RX_CHUNK;
    return (want > rx->hdr.len ? rx->hdr.len : want) - rx->cap;
}

static fy_sc_err fy_sc_rx_grow(fy_sc_rx *rx)
{
    size_t want = rx->cap + fy_sc_rx_growth(rx);
    uint8_t *p = realloc(rx->payload, want);
    if (!p)
        return FY_SC_E_NOMEM;
    rx->payload = p;
    rx->cap = want;
    return FY_SC_OK;
}

fy_sc_err fy_sc_rx_space(fy_sc_rx *rx, uint8_t **buf, size_t *n)
{
    if (!rx->in_payload) {
        *buf = rx->hdr_bytes + rx->got;
        *n = FY_SC_HDR_LEN - rx->got;
        return FY_SC_OK;
    }
    if (fy_sc_rx_growth(rx)) {
        fy_sc_err err = fy_sc_rx_grow(rx);
        if (err != FY_SC_OK)
            return err;
    }
    *buf = rx->payload + rx->got;
    *n = rx->cap - rx->got;
    return FY_SC_OK;
}

/* The header is whole: check it before a single payload byte is read. */
static fy_sc_err fy_sc_rx_header_done(fy_sc_rx *rx, bool *done)
{
    fy_sc_err err = fy_sc_hdr_get(rx->hdr_bytes, rx->max_len, &rx->hdr);
    if (err != FY_SC_OK)
        return err;
    rx->in_payload = true;
    rx->got = 0;
    *done = rx->hdr.len == 0;
    return FY_SC_OK;
}

fy_sc_err fy_sc_rx_advance(fy_sc_rx *rx, size_t n, bool *done)
{
    *done = false;
    rx->got += n;
    if (!rx->in_payload)
        return rx->got == FY_SC_HDR_LEN ? fy_sc_rx_header_done(rx, done) : FY_SC_OK;
    *done = rx->got == rx->hdr.len;
    return FY_SC_OK;
}
