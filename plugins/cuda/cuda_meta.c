/* SPDX-License-Identifier: Apache-2.0 */
/* Wire bytes of the CUDA plugin (see cuda_meta.h). */
#include "cuda_meta.h"

#include "common/le.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- connection info ---- */

size_t fy_cu_conn_encode(const fy_cu_conn *c, uint8_t *out, size_t cap)
{
    size_t sock_len = strnlen(c->sock, FY_CU_SOCK_MAX);
    size_t need = FY_CU_CONN_FIXED + sock_len;
    if (cap < need)
        return 0;
    memcpy(out, "FYCC", 4);
    fy_le_put(out + 4, 1, 2);
    fy_le_put(out + 6, sock_len, 2);
    fy_le_put(out + 8, c->uid, 8);
    fy_le_put(out + 16, c->pid, 4);
    fy_le_put(out + 20, 0, 4);
    fy_le_put(out + 24, c->starttime, 8);
    memcpy(out + 32, c->boot_id, 16);
    fy_le_put(out + 48, c->netns, 8);
    fy_le_put(out + 56, c->pidns, 8);
    memcpy(out + FY_CU_CONN_FIXED, c->sock, sock_len);
    return need;
}

ferry_status fy_cu_conn_decode(const void *buf, size_t len, fy_cu_conn *out)
{
    const uint8_t *p = buf;
    if (!p || len < FY_CU_CONN_FIXED || memcmp(p, "FYCC", 4) || fy_le_get(p + 4, 2) != 1)
        return FERRY_ERR_BAD_METADATA;
    size_t sock_len = (size_t)fy_le_get(p + 6, 2);
    if (!sock_len || sock_len > FY_CU_SOCK_MAX || sock_len > len - FY_CU_CONN_FIXED)
        return FERRY_ERR_BAD_METADATA;
    fy_cu_conn c = {.uid = fy_le_get(p + 8, 8),
                    .pid = (uint32_t)fy_le_get(p + 16, 4),
                    .starttime = fy_le_get(p + 24, 8),
                    .netns = fy_le_get(p + 48, 8),
                    .pidns = fy_le_get(p + 56, 8)};
    memcpy(c.boot_id, p + 32, 16);
    memcpy(c.sock, p + FY_CU_CONN_FIXED, sock_len);
    c.sock[sock_len] = '\0';
    if (memchr(c.sock, '\0', sock_len) || !c.pid)
        return FERRY_ERR_BAD_METADATA;
    *out = c;
    return FERRY_OK;
}

/* ---- region keys ---- */

void fy_cu_pub_encode(const fy_cu_pub *p, uint8_t out[FY_CU_PUB_LEN])
{
    memset(out, 0, FY_CU_PUB_LEN);
    memcpy(out, "FYCR", 4);
    out[4] = 1;
    out[5] = (uint8_t)p->type;
    out[6] = p->ipc ? FY_CU_PUB_F_IPC : 0;
    memcpy(out + 8, p->uuid, 16);
    fy_le_put(out + 24, p->addr, 8);
    fy_le_put(out + 32, p->len, 8);
    fy_le_put(out + 40, p->alloc_base, 8);
    fy_le_put(out + 48, p->alloc_size, 8);
    memcpy(out + 56, p->handle.reserved, FY_CU_IPC_HANDLE_SIZE);
}

/* The allocation must hold the region, without wrapping. */
static bool fy_cu_pub_inside(const fy_cu_pub *p)
{
    return p->alloc_size && p->alloc_base + p->alloc_size > p->alloc_base &&
           p->addr >= p->alloc_base && p->len <= p->alloc_size &&
           p->addr - p->alloc_base <= p->alloc_size - p->len;
}

ferry_status fy_cu_pub_decode(const void *buf, size_t len, ferry_mem_type type,
                              const ferry_desc *desc, fy_cu_pub *out)
{
    const uint8_t *b = buf;
    if (!b || len < FY_CU_PUB_LEN || memcmp(b, "FYCR", 4) || b[4] != 1)
        return FERRY_ERR_BAD_METADATA;
    fy_cu_pub p = {.type = (ferry_mem_type)b[5],
                   .ipc = (b[6] & FY_CU_PUB_F_IPC) != 0,
                   .addr = fy_le_get(b + 24, 8),
                   .len = fy_le_get(b + 32, 8),
                   .alloc_base = fy_le_get(b + 40, 8),
                   .alloc_size = fy_le_get(b + 48, 8)};
    memcpy(p.uuid, b + 8, 16);
    memcpy(p.handle.reserved, b + 56, FY_CU_IPC_HANDLE_SIZE);
    if (p.type != type || (type != FERRY_MEM_DRAM && type != FERRY_MEM_VRAM))
        return FERRY_ERR_BAD_METADATA;
    if (!desc || p.addr != desc->addr || p.len != desc->len || !p.len)
        return FERRY_ERR_BAD_METADATA;
    if (p.ipc && (type != FERRY_MEM_VRAM || !fy_cu_pub_inside(&p)))
        return FERRY_ERR_BAD_METADATA;
    *out = p;
    return FERRY_OK;
}

/* ---- notification datagrams ---- */

size_t fy_cu_dgram_encode(uint8_t *out, size_t cap, const char *from, uint64_t uid, const void *msg,
                          size_t len)
{
    size_t name_len = from ? strlen(from) : 0;
    if (!name_len || name_len > FY_CU_NAME_MAX || len > FY_CU_NOTIF_MAX || (len && !msg))
        return 0;
    size_t need = FY_CU_DGRAM_FIXED + name_len + len;
    if (cap < need)
        return 0;
    memcpy(out, "FYCN", 4);
    out[4] = 1;
    out[5] = 0;
    fy_le_put(out + 6, name_len, 2);
    fy_le_put(out + 8, uid, 8);
    memcpy(out + FY_CU_DGRAM_FIXED, from, name_len);
    if (len)
        memcpy(out + FY_CU_DGRAM_FIXED + name_len, msg, len);
    return need;
}

ferry_status fy_cu_dgram_decode(const uint8_t *buf, size_t len, char from[FY_CU_NAME_MAX + 1],
                                uint64_t *uid, const void **msg, size_t *msg_len)
{
    if (!buf || len < FY_CU_DGRAM_FIXED || memcmp(buf, "FYCN", 4) || buf[4] != 1)
        return FERRY_ERR_BAD_METADATA;
    size_t name_len = (size_t)fy_le_get(buf + 6, 2);
    if (!name_len || name_len > FY_CU_NAME_MAX || name_len > len - FY_CU_DGRAM_FIXED)
        return FERRY_ERR_BAD_METADATA;
    size_t body = len - FY_CU_DGRAM_FIXED - name_len;
    if (body > FY_CU_NOTIF_MAX || memchr(buf + FY_CU_DGRAM_FIXED, '\0', name_len))
        return FERRY_ERR_BAD_METADATA;
    memcpy(from, buf + FY_CU_DGRAM_FIXED, name_len);
    from[name_len] = '\0';
    *uid = fy_le_get(buf + 8, 8);
    *msg = buf + FY_CU_DGRAM_FIXED + name_len;
    *msg_len = body;
    return FERRY_OK;
}

/* ---- /proc ---- */

bool fy_cu_stat_parse(const char *stat, size_t len, char *state, uint64_t *out)
{
    const char *end = stat + len, *p = NULL;
    for (const char *q = stat; q < end; q++)
        if (*q == ')')
            p = q;
    if (!p || end - p < 3 || p[1] != ' ')
        return false;
    *state = p[2];
    /* ") " ends field 2; each space starts the next field, up to 22. */
    unsigned field = 2;
    for (p++; p < end && field < 22; p++)
        if (*p == ' ')
            field++;
    if (p >= end || field != 22 || !isdigit((unsigned char)*p))
        return false;
    uint64_t v = 0;
    for (; p < end && isdigit((unsigned char)*p); p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    return true;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

bool fy_cu_parse_boot_id(const char *text, uint8_t out[16])
{
    unsigned n = 0;
    for (const char *p = text; *p && *p != '\n' && n < 32; p++) {
        if (*p == '-')
            continue;
        int v = hexval(*p);
        if (v < 0)
            return false;
        if (n % 2 == 0)
            out[n / 2] = (uint8_t)(v << 4);
        else
            out[n / 2] |= (uint8_t)v;
        n++;
    }
    return n == 32;
}
