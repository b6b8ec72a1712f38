/* SPDX-License-Identifier: Apache-2.0 */
/* Wire bytes of the CUDA plugin (see cuda_meta.h). */
#include "cuda_meta.h"

#include "common/le.h"

#include <string.h>

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
