/* SPDX-License-Identifier: Apache-2.0 */
/* UCX backend: encoding and parsing of active-message writes, read
 * requests and their answers (format in ucx_amw_wire.h). */
#include <string.h>

#include "common/le.h"
#include "ucx_amw_wire.h"

size_t fy_amw_prefix_len(uint32_t count, size_t from_len, size_t notif_len)
{
    return FY_AMW_FIXED + (size_t)count * FY_AMW_SEG + from_len + notif_len;
}

void fy_amw_prefix_begin(uint8_t *buf, bool read, uint64_t id, uint32_t count, const char *from,
                         size_t from_len, const void *notif, size_t notif_len)
{
    fy_le_put(buf, read ? FY_AMW_READ_MAGIC : FY_AMW_MAGIC, 4);
    fy_le_put(buf + 4, id, 8);
    fy_le_put(buf + 12, count, 4);
    fy_le_put(buf + 16, notif_len, 4);
    fy_le_put(buf + 20, from_len, 2);
    uint8_t *tail = buf + FY_AMW_FIXED + (size_t)count * FY_AMW_SEG;
    memcpy(tail, from, from_len);
    if (notif_len)
        memcpy(tail + from_len, notif, notif_len);
}

void fy_amw_prefix_seg(uint8_t *buf, uint32_t i, uint64_t addr, uint32_t len)
{
    uint8_t *p = buf + FY_AMW_FIXED + (size_t)i * FY_AMW_SEG;
    fy_le_put(p, addr, 8);
    fy_le_put(p + 8, len, 4);
}

void fy_amw_seg(const fy_amw_msg *m, uint32_t i, uint64_t *addr, uint32_t *len)
{
    const uint8_t *p = m->segs + (size_t)i * FY_AMW_SEG;
    *addr = fy_le_get(p, 8);
    *len = (uint32_t)fy_le_get(p + 8, 4);
}

bool fy_amw_peek_id(const uint8_t *b, size_t n, uint64_t *id, bool *read)
{
    if (!b || n < 12)
        return false;
    uint64_t magic = fy_le_get(b, 4);
    if (magic != FY_AMW_MAGIC && magic != FY_AMW_READ_MAGIC)
        return false;
    *read = magic == FY_AMW_READ_MAGIC;
    *id = fy_le_get(b + 4, 8);
    return true;
}

/* The fixed part and the lengths it announces; the data is checked after. */
static bool fy_amw_parse_head(const uint8_t *b, size_t n, fy_amw_msg *m)
{
    if (!fy_amw_peek_id(b, n, &m->id, &m->read) || n < FY_AMW_FIXED)
        return false;
    m->count = (uint32_t)fy_le_get(b + 12, 4);
    m->notif_len = (size_t)fy_le_get(b + 16, 4);
    m->from_len = (size_t)fy_le_get(b + 20, 2);
    if (m->count == 0 || m->count > FY_AMW_MAX_SEGS || m->notif_len > FY_AMW_MAX_NOTIF ||
        m->from_len == 0 || m->from_len > FY_AMW_MAX_FROM || (m->read && m->notif_len))
        return false;
    size_t prefix = fy_amw_prefix_len(m->count, m->from_len, m->notif_len);
    if (prefix > n)
        return false;
    m->segs = b + FY_AMW_FIXED;
    m->from = (const char *)(m->segs + (size_t)m->count * FY_AMW_SEG);
    m->notif = (const uint8_t *)m->from + m->from_len;
    m->data = m->notif + m->notif_len;
    m->data_len = n - prefix;
    return true;
}

bool fy_amw_parse(const uint8_t *b, size_t n, fy_amw_msg *m)
{
    if (!fy_amw_parse_head(b, n, m))
        return false;
    /* The segments' lengths must add up to exactly the data that came:
     * at most 4096 x (2^32 - 1), so the sum cannot overflow. */
    uint64_t sum = 0;
    for (uint32_t i = 0; i < m->count; i++) {
        uint64_t addr;
        uint32_t len;
        fy_amw_seg(m, i, &addr, &len);
        if (addr + len < addr)
            return false; /* wraps around the address space */
        sum += len;
    }
    m->read_len = m->read ? sum : 0;
    return m->read ? m->data_len == 0 && sum <= FY_AMW_MAX_READ : sum == m->data_len;
}

/* Acknowledgements and answers to reads: magic, id, status. */
static void fy_amw_answer_encode(uint8_t out[FY_AMW_ACK_LEN], uint32_t magic, uint64_t id,
                                 int32_t status)
{
    fy_le_put(out, magic, 4);
    fy_le_put(out + 4, id, 8);
    fy_le_put(out + 12, (uint32_t)status, 4);
}

static bool fy_amw_answer_parse(const uint8_t *b, size_t n, uint32_t magic, uint64_t *id,
                                int32_t *status)
{
    if (!b || n != FY_AMW_ACK_LEN || fy_le_get(b, 4) != magic)
        return false;
    *id = fy_le_get(b + 4, 8);
    *status = (int32_t)(uint32_t)fy_le_get(b + 12, 4);
    return true;
}

void fy_amw_ack_encode(uint8_t out[FY_AMW_ACK_LEN], uint64_t id, int32_t status)
{
    fy_amw_answer_encode(out, FY_AMW_ACK_MAGIC, id, status);
}

bool fy_amw_ack_parse(const uint8_t *b, size_t n, uint64_t *id, int32_t *status)
{
    return fy_amw_answer_parse(b, n, FY_AMW_ACK_MAGIC, id, status);
}

void fy_amw_rdata_encode(uint8_t out[FY_AMW_ACK_LEN], uint64_t id, int32_t status)
{
    fy_amw_answer_encode(out, FY_AMW_RDATA_MAGIC, id, status);
}

bool fy_amw_rdata_parse(const uint8_t *b, size_t n, uint64_t *id, int32_t *status)
{
    return fy_amw_answer_parse(b, n, FY_AMW_RDATA_MAGIC, id, status);
}

/* UCX's memory types (host, CUDA, ROCm, ...) stay far below this. */
#define FY_UCX_MEM_TYPES_MAX 32u

bool fy_ucx_rkey_well_formed(const uint8_t *b, size_t n)
{
    if (!b || n < 9)
        return false;
    uint64_t map = fy_le_get(b, 8);
    if (!map || b[8] >= FY_UCX_MEM_TYPES_MAX)
        return false;
    size_t off = 9;
    for (; map; map &= map - 1) { /* one size byte and key per domain */
        if (off >= n || b[off] > n - off - 1)
            return false;
        off += 1u + b[off];
    }
    return true;
}
