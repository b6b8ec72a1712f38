/* SPDX-License-Identifier: Apache-2.0 */
/* Strided requests: a request made by index from two strided lists (every
 * KV block slot of a cache, prepared once) reaches the plugin unexpanded,
 * and the GPU resolves the blocks.
 *
 * Making one costs the core's single pass over the caller's index arrays,
 * which writes them into pinned memory this plugin lends it
 * (xfer_idx_alloc) and the kernel reads in place, one address translation
 * per side and an event: no per-block work on the host, no upload, no
 * device allocation. The copy
 * kernel computes each item's addresses from the pair's indices
 * (fy_cu_strided_item). Requests this path does not take (copy-engine
 * mode, DRAM, blocks big enough for the copy engines, a peer GPU the
 * kernel cannot reach) answer NOT_SUPPORTED, and the core hands them over
 * as segments instead. */
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

static bool fy_cu_strided_fits(const fy_cu *be, const ferry_plugin_sxfer *sx)
{
    bool big = be->ce_threshold && sx->local.len >= be->ce_threshold;
    return be->mode == FY_CU_MODE_KERNEL && sx->local_type == FERRY_MEM_VRAM &&
           sx->remote_type == FERRY_MEM_VRAM && sx->count && sx->local.len && !big &&
           sx->local.len == sx->remote.len && sx->local.region && sx->remote.region &&
           sx->remote_agent && (sx->op == FERRY_OP_READ || sx->op == FERRY_OP_WRITE);
}

/* The remote list's base in the executing GPU's address space, the whole
 * span translated at once (it lies in one region). */
static ferry_status fy_cu_strided_remote(fy_cu_req *q, const ferry_plugin_strided *s,
                                         uint64_t *base)
{
    bool kernel_ok = true;
    ferry_plugin_seg span = {s->base, (s->count - 1) * s->stride + s->len, s->dev_id, s->region};
    ferry_status rc = fy_cu_addr_remote(q, &span, base, &kernel_ok);
    return rc == FERRY_OK && !kernel_ok ? FERRY_ERR_NOT_SUPPORTED : rc;
}

/* The index arrays in pinned memory the kernel reads: where the core put
 * them when it took memory from us (xfer_idx_alloc), else a copy of ours,
 * both side by side (an older core). */
static ferry_status fy_cu_strided_indices(fy_cu_req *q, const ferry_plugin_sxfer *sx)
{
    size_t bytes = sx->count * sizeof(uint32_t);
    if (q->be->core_stages) {
        q->idx_l = (uintptr_t)sx->local_idx;
        q->idx_r = (uintptr_t)sx->remote_idx;
        return FERRY_OK;
    }
    ferry_status rc = fy_cu_pin_take(q->be, q->dev, 2 * bytes, &q->idx);
    if (rc != FERRY_OK)
        return fy_cu_req_err(q, rc, "no pinned memory for %zu index pairs", sx->count);
    memcpy(q->idx.p, sx->local_idx, bytes);
    memcpy((char *)q->idx.p + bytes, sx->remote_idx, bytes);
    q->idx_l = (uintptr_t)q->idx.p;
    q->idx_r = q->idx_l + bytes;
    return FERRY_OK;
}

/* The kernel's arguments, source and destination by direction, and a grid
 * shaped for the item count as for any kernel request. */
static void fy_cu_strided_args_set(fy_cu_req *q, const ferry_plugin_sxfer *sx, uint64_t rbase)
{
    fy_cu *be = q->be;
    uint64_t len = sx->local.len, total = sx->count * len;
    uint64_t chunk = be->chunk ? be->chunk : fy_cu_auto_chunk(total, q->dev->sm_count);
    unsigned long long li = q->idx_l, ri = q->idx_r;
    bool write = sx->op == FERRY_OP_WRITE;
    fy_cu_strided_args *a = &q->sargs;
    a->src = write ? sx->local.base : rbase;
    a->dst = write ? rbase : sx->local.base;
    a->src_stride = write ? sx->local.stride : sx->remote.stride;
    a->dst_stride = write ? sx->remote.stride : sx->local.stride;
    a->src_idx = write ? li : ri;
    a->dst_idx = write ? ri : li;
    a->len = len;
    a->chunk = chunk < len ? chunk : len;
    a->n = sx->count;
    a->pieces = (unsigned)((len + a->chunk - 1) / a->chunk);
    q->nitems = sx->count * a->pieces;
    q->grid = fy_cu_grid_for(q->nitems, q->dev->sm_count);
    a->group = q->grid.group;
}

static ferry_status fy_cu_strided_plan(fy_cu_req *q, const ferry_plugin_sxfer *sx)
{
    int ordinal = ((const fy_cu_region *)sx->local.region)->ordinal;
    uint64_t rbase = 0;
    ferry_status rc = fy_cu_dev_ready(q->be, ordinal, &q->dev);
    if (rc == FERRY_OK && fy_cu_dev_kernel(q->be, q->dev) != FERRY_OK)
        rc = FERRY_ERR_NOT_SUPPORTED; /* the segment form reports it */
    if (rc == FERRY_OK)
        rc = fy_cu_strided_remote(q, &sx->remote, &rbase);
    if (rc == FERRY_OK)
        rc = fy_cu_strided_indices(q, sx);
    if (rc == FERRY_OK)
        fy_cu_strided_args_set(q, sx, rbase);
    return rc;
}

ferry_status fy_cu_xfer_prep_strided(void *priv, const ferry_plugin_sxfer *sx, void **handle)
{
    fy_cu *be = priv;
    if (!sx || !fy_cu_strided_fits(be, sx))
        return FERRY_ERR_NOT_SUPPORTED;
    fy_cu_req *q = calloc(1, sizeof(*q));
    if (!q)
        return FERRY_ERR_NO_MEMORY;
    *q = (fy_cu_req){.be = be, .remote = sx->remote_agent, .strided = true, .state = FY_CU_IDLE};
    ferry_status rc = fy_cu_strided_plan(q, sx);
    if (rc == FERRY_OK)
        rc = fy_cu_req_event(q);
    if (rc != FERRY_OK) {
        if (rc != FERRY_ERR_NOT_SUPPORTED && q->err[0])
            fy_cu_log(be, FERRY_LOG_ERROR, "prep: %s", q->err);
        fy_cu_req_free(q);
        return rc;
    }
    *handle = q;
    return FERRY_OK;
}

/* Pinned memory for the core to put a request's indices in: the kernel
 * reads them there, so making the request copies nothing more. */
ferry_status fy_cu_xfer_idx_alloc(void *priv, const ferry_plugin_sxfer *sx, size_t bytes,
                                  void **buf)
{
    fy_cu *be = priv;
    fy_cu_dev *d = NULL;
    if (!sx || !fy_cu_strided_fits(be, sx))
        return FERRY_ERR_NOT_SUPPORTED;
    int ordinal = ((const fy_cu_region *)sx->local.region)->ordinal;
    if (fy_cu_dev_ready(be, ordinal, &d) != FERRY_OK || fy_cu_dev_kernel(be, d) != FERRY_OK)
        return FERRY_ERR_NOT_SUPPORTED; /* the segment form reports why */
    be->core_stages = true;
    return fy_cu_pin_lend(be, d, bytes, buf);
}

void fy_cu_xfer_idx_free(void *priv, void *buf)
{
    fy_cu_pin_return(priv, buf);
}
