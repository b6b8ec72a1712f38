/* SPDX-License-Identifier: Apache-2.0 */
/* VRAM registrations are checked through the CUDA driver before any backend
 * sees them, so a host pointer or a wrong GPU index fails registration with a
 * clear reason instead of a transport error (or silent corruption) later. */
#include "core/vram.h"

#include "common/log.h"
#include "core/dlist.h"
#include "gpu/gpu.h"
#include "ferry/ferry.h"

/* The allocation of the last descriptor checked: descriptors of one
 * allocation (the blocks of a KV cache) cost one driver query in all. */
typedef struct fy_vram_seen {
    uint64_t dev_id, base, end;
    bool valid;
} fy_vram_seen;

static bool fy_vram_known(const fy_vram_seen *s, const ferry_desc *d)
{
    return s->valid && s->dev_id == d->dev_id && d->addr >= s->base && d->addr < s->end &&
           d->len <= s->end - d->addr;
}

static ferry_status fy_vram_check_one(const fy_cuda *cu, const ferry_desc *d, fy_vram_seen *seen)
{
    fy_gpu_why why;
    if (fy_vram_known(seen, d))
        return FERRY_OK;
    ferry_status rc =
        fy_gpu_check_vram(cu, d->addr, d->len, d->dev_id, &seen->base, &seen->end, &why);
    if (rc != FERRY_OK) {
        fy_log(FERRY_LOG_ERROR, "gpu", "register VRAM %#llx+%llu (GPU %llu): %s",
               (unsigned long long)d->addr, (unsigned long long)d->len,
               (unsigned long long)d->dev_id, why.msg);
        return rc;
    }
    seen->dev_id = d->dev_id;
    seen->valid = true;
    return FERRY_OK;
}

ferry_status fy_gpu_check_dlist(const ferry_dlist *list)
{
    if (list->type != FERRY_MEM_VRAM || !list->count)
        return FERRY_OK;
    const fy_cuda *cu;
    fy_gpu_why why;
    if (fy_cuda_get(&cu, &why) != FERRY_OK) {
        fy_log(FERRY_LOG_ERROR, "gpu", "register VRAM: %s", why.msg);
        return FERRY_ERR_NOT_SUPPORTED;
    }
    fy_vram_seen seen = {0};
    for (size_t i = 0; i < list->count; i++) {
        ferry_desc d = fy_dlist_at(list, i);
        ferry_status rc = fy_vram_check_one(cu, &d, &seen);
        if (rc != FERRY_OK)
            return rc;
    }
    return FERRY_OK;
}
