/* SPDX-License-Identifier: Apache-2.0 */
/* UCX backend: encoding and parsing of active-message writes and their
 * acknowledgements (format in ucx_amw_wire.h). */
#include <string.h>

#include "common/le.h"
#include "ucx_amw_wire.h"

size_t fy_amw_prefix_len(uint32_t count, size_t from_len, size_t notif_len)
{
    return FY_AMW_FIXED + (size_t)count * FY_AMW_SEG + from_len + notif_len;
}

void fy_amw_prefix_begin(uint8_t *buf, uint64_t id, uint32_t count, const char *from,
                         size_t from_len, const void *notif, size_t notif_len)
{
    fy_le_put(buf, FY_AMW_MAGIC, 4);
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

bool fy_amw_peek_id(const uint8_t *b, size_t n, uint64_t *id)
{
    if (!b || n < 12 || fy_le_get(b, 4) != FY_AMW_MAGIC)
        return false;
    *id = fy_le_get(b + 4, 8);
    return true;
}

/* The fixed part and the lengths it announces; the data is checked after. */
static bool fy_amw_parse_head(const uint8_t *b, size_t n, fy_amw_msg *m)
{
    if (!fy_amw_peek_id(b, n, &m->id) || n < FY_AMW_FIXED)
        return false;
    m->count = (uint32_t)fy_le_get(b + 12, 4);
    m->notif_len = (size_t)fy_le_get(b + 16, 4);
    m->from_len = (size_t)fy_le_get(b + 20, 2);
    if (m->count == 0 || m->count > FY_AMW_MAX_SEGS || m->notif_len > FY_AMW_MAX_NOTIF ||
        m->from_len == 0 || m->from_len > FY_AMW_MAX_FROM)
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
    return sum == m->data_len;
}

void fy_amw_ack_encode(uint8_t out[FY_AMW_ACK_LEN], uint64_t id, int32_t status)
{
    fy_le_put(out, FY_AMW_ACK_MAGIC, 4);
    fy_le_put(out + 4, id, 8);
    fy_le_put(out + 12, (uint32_t)status, 4);
}

bool fy_amw_ack_parse(const uint8_t *b, size_t n, uint64_t *id, int32_t *status)
{
    if (!b || n != FY_AMW_ACK_LEN || fy_le_get(b, 4) != FY_AMW_ACK_MAGIC)
        return false;
    *id = fy_le_get(b + 4, 8);
    *status = (int32_t)(uint32_t)fy_le_get(b + 12, 4);
    return true;
}
