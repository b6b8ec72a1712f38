/* SPDX-License-Identifier: Apache-2.0 */
/* Wire bytes of the SHM plugin (see shm_wire.h). */
#include "shm_wire.h"

#include <string.h>

#include "common/le.h"

size_t fy_shm_conn_encode(const fy_shm_conn *c, uint8_t *out, size_t cap)
{
    size_t n = fyp_ident_encode(FY_SHM_CONN_MAGIC, &c->id, out, cap);
    if (!n || cap - n < 8)
        return 0;
    fy_le_put(out + n, c->probe, 8);
    return n + 8;
}

ferry_status fy_shm_conn_decode(const void *buf, size_t len, fy_shm_conn *out)
{
    fy_shm_conn c;
    if (fyp_ident_decode(FY_SHM_CONN_MAGIC, buf, len, &c.id) != FERRY_OK)
        return FERRY_ERR_BAD_METADATA;
    size_t n = FYP_IDENT_FIXED + strlen(c.id.sock);
    if (len - n < 8) /* decode checked that len >= n */
        return FERRY_ERR_BAD_METADATA;
    c.probe = fy_le_get((const uint8_t *)buf + n, 8);
    *out = c;
    return FERRY_OK;
}

void fy_shm_pub_encode(const fy_shm_pub *p, uint8_t out[FY_SHM_PUB_LEN])
{
    memset(out, 0, FY_SHM_PUB_LEN);
    memcpy(out, "FYSR", 4);
    out[4] = 1;
    out[5] = (uint8_t)p->kind;
    fy_le_put(out + 8, p->addr, 8);
    fy_le_put(out + 16, p->len, 8);
    fy_le_put(out + 24, p->token, 8);
}

ferry_status fy_shm_pub_decode(const void *buf, size_t len, const ferry_desc *desc, fy_shm_pub *out)
{
    const uint8_t *b = buf;
    if (!b || len < FY_SHM_PUB_LEN || memcmp(b, "FYSR", 4) || b[4] != 1 || b[5] > 1)
        return FERRY_ERR_BAD_METADATA;
    fy_shm_pub p = {.kind = (fy_shm_kind)b[5],
                    .addr = fy_le_get(b + 8, 8),
                    .len = fy_le_get(b + 16, 8),
                    .token = fy_le_get(b + 24, 8)};
    if (!desc || p.addr != desc->addr || p.len != desc->len || !p.len || p.addr + p.len < p.addr)
        return FERRY_ERR_BAD_METADATA;
    *out = p;
    return FERRY_OK;
}

void fy_shm_ask_encode(uint64_t token, uint8_t out[FY_SHM_ASK_LEN])
{
    memcpy(out, "FYSQ", 4);
    fy_le_put(out + 4, 0, 4);
    fy_le_put(out + 8, token, 8);
}

bool fy_shm_ask_decode(const uint8_t *buf, size_t len, uint64_t *token)
{
    if (len != FY_SHM_ASK_LEN || memcmp(buf, "FYSQ", 4))
        return false;
    *token = fy_le_get(buf + 8, 8);
    return true;
}

void fy_shm_ans_encode(ferry_status st, uint64_t offset, uint64_t len, uint8_t out[FY_SHM_ANS_LEN])
{
    memcpy(out, "FYSA", 4);
    fy_le_put(out + 4, (uint32_t)(int32_t)st, 4);
    fy_le_put(out + 8, offset, 8);
    fy_le_put(out + 16, len, 8);
}

bool fy_shm_ans_decode(const uint8_t *buf, size_t len, ferry_status *st, uint64_t *offset,
                       uint64_t *rlen)
{
    if (len != FY_SHM_ANS_LEN || memcmp(buf, "FYSA", 4))
        return false;
    *st = (ferry_status)(int32_t)(uint32_t)fy_le_get(buf + 4, 4);
    *offset = fy_le_get(buf + 8, 8);
    *rlen = fy_le_get(buf + 16, 8);
    return true;
}
