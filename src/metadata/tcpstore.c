/* SPDX-License-Identifier: Apache-2.0 */
/* PyTorch's TCPStore wire protocol: encoding and bounded decoding
 * (tcpstore.h describes the format). */
#include "metadata/tcpstore.h"

#include <stdlib.h>
#include <string.h>

/* Command bytes by dialect; -1: none. The two numberings differ by the
 * VALIDATE that newer stores put first (and the WATCH_KEY that older ones
 * had before DELETE_KEY, which is why DELETE is 8 in both). */
static const int fy_ts_codes[][2] = {
    [FY_TS_VALIDATE] = {-1, 0}, [FY_TS_SET] = {0, 1},  [FY_TS_GET] = {2, 3},
    [FY_TS_CHECK] = {4, 5},     [FY_TS_WAIT] = {5, 6}, [FY_TS_DELETE] = {8, 8},
    [FY_TS_PING] = {-1, 13},
};

int fy_ts_opcode(fy_ts_dialect d, fy_ts_op op)
{
    if ((d != FY_TS_V1 && d != FY_TS_V2) || (unsigned)op > FY_TS_PING)
        return -1;
    return fy_ts_codes[op][d - 1];
}

static void fy_ts_put(fy_ts_req *req, const void *bytes, size_t n)
{
    if (req->failed)
        return;
    if (req->len + n > req->cap) {
        size_t cap = (req->len + n) * 2 + 64;
        uint8_t *buf = realloc(req->buf, cap);
        if (!buf) {
            req->failed = true;
            return;
        }
        req->buf = buf;
        req->cap = cap;
    }
    memcpy(req->buf + req->len, bytes, n);
    req->len += n;
}

static void fy_ts_put_u64(fy_ts_req *req, uint64_t v)
{
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(v >> (8 * i));
    fy_ts_put(req, le, sizeof(le));
}

static void fy_ts_put_u32(fy_ts_req *req, uint32_t v)
{
    uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    fy_ts_put(req, le, sizeof(le));
}

static void fy_ts_put_bytes(fy_ts_req *req, const void *bytes, size_t n)
{
    fy_ts_put_u64(req, n);
    fy_ts_put(req, bytes, n);
}

/* The arguments after the command byte. */
static void fy_ts_put_args(fy_ts_req *req, fy_ts_op op, const char *key, const void *val,
                           size_t len, uint32_t nonce)
{
    if (op == FY_TS_VALIDATE || op == FY_TS_PING) {
        fy_ts_put_u32(req, op == FY_TS_VALIDATE ? FY_TS_MAGIC : nonce);
        return;
    }
    if (op == FY_TS_CHECK || op == FY_TS_WAIT)
        fy_ts_put_u64(req, 1); /* one key */
    fy_ts_put_bytes(req, key, strlen(key));
    if (op == FY_TS_SET)
        fy_ts_put_bytes(req, val, len);
}

void fy_ts_req_add(fy_ts_req *req, fy_ts_dialect d, fy_ts_op op, const char *key, const void *val,
                   size_t len, uint32_t nonce)
{
    int code = fy_ts_opcode(d, op);
    bool keyed = op != FY_TS_VALIDATE && op != FY_TS_PING;
    if (code < 0 || (keyed && (!key || strlen(key) > FY_TS_KEY_MAX)) ||
        (op == FY_TS_SET && ((!val && len) || len > FY_TS_VALUE_MAX))) {
        req->failed = true;
        return;
    }
    uint8_t byte = (uint8_t)code;
    fy_ts_put(req, &byte, 1);
    fy_ts_put_args(req, op, key, val, len, nonce);
}

void fy_ts_req_free(fy_ts_req *req)
{
    free(req->buf);
    memset(req, 0, sizeof(*req));
}

static uint64_t fy_ts_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* A fixed-size reply of n bytes. */
static int fy_ts_decode_fixed(const uint8_t *buf, size_t n, unsigned size, fy_ts_reply *out,
                              size_t *used)
{
    *used = size;
    if (n < size)
        return 0;
    uint64_t v = fy_ts_le(buf, size);
    out->num = size == 8 ? (int64_t)v : (int64_t)(uint32_t)v;
    return 1;
}

static int fy_ts_decode_value(const uint8_t *buf, size_t n, uint64_t max_value, fy_ts_reply *out,
                              size_t *used)
{
    *used = 0;
    if (n < 8)
        return 0;
    uint64_t len = fy_ts_le(buf, 8);
    if (len > max_value)
        return -1;
    *used = 8 + (size_t)len;
    if (n - 8 < len)
        return 0;
    out->value = buf + 8;
    out->len = len;
    return 1;
}

int fy_ts_decode(fy_ts_reply_kind kind, const uint8_t *buf, size_t n, uint64_t max_value,
                 fy_ts_reply *out, size_t *used)
{
    memset(out, 0, sizeof(*out));
    switch (kind) {
    case FY_TS_R_VALUE:
        return fy_ts_decode_value(buf, n, max_value, out, used);
    case FY_TS_R_I64:
        return fy_ts_decode_fixed(buf, n, 8, out, used);
    case FY_TS_R_U32:
        return fy_ts_decode_fixed(buf, n, 4, out, used);
    case FY_TS_R_BYTE:
        *used = 1;
        if (n < 1)
            return 0;
        out->num = buf[0];
        return buf[0] <= 1 ? 1 : -1;
    }
    *used = 0;
    return -1;
}

uint64_t fy_ts_hash(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}
