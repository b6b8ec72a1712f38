/* SPDX-License-Identifier: Apache-2.0 */
/* Registration with the CUDA plugin.
 *
 * VRAM: the region's key (pub bytes) carries the CUDA IPC handle of the
 * allocation around it (cuMemGetAddressRange), the region's place in that
 * allocation and the GPU's UUID, so a peer process opens the allocation
 * once and reaches any region inside it: sub-allocations of caching
 * allocators (PyTorch) work, and GPUs are named the same in processes with
 * different CUDA_VISIBLE_DEVICES. Memory that cannot be exported (managed,
 * stream-ordered pools, VMM) is still registered, for this process only.
 *
 * DRAM: pinned with cuMemHostRegister (copy engines then move it at full
 * PCIe speed, asynchronously), unpinned at deregistration. The bytes this
 * backend pinned are counted and logged at INFO level. */
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

static ferry_status fy_cu_reg_fail(fy_cu *be, ferry_status rc, const ferry_desc *d,
                                   const char *what)
{
    fy_cu_log(be, FERRY_LOG_ERROR, "register %#llx+%llu (GPU %llu): %s",
              (unsigned long long)d->addr, (unsigned long long)d->len,
              (unsigned long long)d->dev_id, what);
    return rc;
}

/* The IPC handle of the allocation around the region, when there is one. */
static void fy_cu_reg_export(fy_cu *be, fy_cu_dev *dev, const fy_gpu_ptr *p, fy_cu_pub *pub)
{
    bool inside = p->size && pub->addr >= p->base && pub->len <= p->size &&
                  pub->addr - p->base <= p->size - pub->len;
    fy_cu_result r = FY_CUDA_ERROR_NOT_SUPPORTED;
    if (inside && !p->managed && fy_cu_push(be, dev)) {
        r = be->cu->IpcGetMemHandle(&pub->handle, p->base);
        fy_cu_pop(be);
    }
    if (r == FY_CUDA_SUCCESS) {
        pub->ipc = true;
        pub->alloc_base = p->base;
        pub->alloc_size = p->size;
        return;
    }
    fy_cu_log(be, FERRY_LOG_INFO,
              "VRAM %#llx+%llu cannot be exported through CUDA IPC (%s): reachable from this "
              "process only",
              (unsigned long long)pub->addr, (unsigned long long)pub->len,
              p->managed ? "managed memory"
              : inside   ? fy_cuda_errname(be->cu, r)
                         : "not inside one allocation");
}

static ferry_status fy_cu_reg_vram(fy_cu *be, const ferry_desc *d, fy_cu_region *reg,
                                   fy_cu_pub *pub)
{
    fy_gpu_ptr p;
    fy_gpu_why why;
    fy_cu_dev *dev;
    ferry_status rc = fy_gpu_ptr_query(be->cu, d->addr, (int)d->dev_id, &p, &why);
    if (rc != FERRY_OK)
        return fy_cu_reg_fail(be, rc, d, why.msg);
    if (p.managed && p.ordinal < 0)
        p.ordinal = (int)d->dev_id; /* managed memory of no GPU in particular */
    if ((p.mem_type != FY_CU_MEMORYTYPE_DEVICE && !p.managed) || p.ordinal < 0 ||
        (uint64_t)p.ordinal != d->dev_id)
        return fy_cu_reg_fail(be, FERRY_ERR_INVALID_PARAM, d, "not device memory of that GPU");
    rc = fy_cu_dev_ready(be, p.ordinal, &dev);
    if (rc != FERRY_OK)
        return rc;
    if (p.ctx && p.ctx != dev->ctx && !p.managed)
        return fy_cu_reg_fail(be, FERRY_ERR_NOT_SUPPORTED, d,
                              "allocated in a CUDA context other than the GPU's primary one (the "
                              "runtime's): the copy kernels cannot reach it");
    reg->ordinal = p.ordinal;
    *pub = (fy_cu_pub){.type = FERRY_MEM_VRAM, .addr = d->addr, .len = d->len};
    memcpy(pub->uuid, dev->uuid, 16);
    fy_cu_reg_export(be, dev, &p, pub);
    return FERRY_OK;
}

/* Already pinned by someone else (the application's cudaHostAlloc, another
 * backend, an overlapping region): usable as it is, not ours to unpin. */
static bool fy_cu_reg_borrowed(fy_cu *be, const ferry_desc *d)
{
    fy_gpu_ptr p;
    return fy_gpu_ptr_query(be->cu, d->addr, -1, &p, NULL) == FERRY_OK &&
           p.mem_type == FY_CU_MEMORYTYPE_HOST;
}

static ferry_status fy_cu_reg_dram(fy_cu *be, const ferry_desc *d, fy_cu_region *reg,
                                   fy_cu_pub *pub)
{
    fy_cu_dev *dev;
    ferry_status rc = fy_cu_dev_ready(be, fy_cu_default_ordinal(be), &dev);
    if (rc != FERRY_OK || !fy_cu_push(be, dev))
        return rc != FERRY_OK ? rc : FERRY_ERR_BACKEND;
    /* PORTABLE: pinned for every context; DEVICEMAP: in the GPUs' address
     * space at the same address (unified addressing). */
    fy_cu_result r =
        be->cu->MemHostRegister((void *)(uintptr_t)d->addr, d->len,
                                FY_CU_MEMHOSTREGISTER_PORTABLE | FY_CU_MEMHOSTREGISTER_DEVICEMAP);
    /* The driver answers ALREADY_REGISTERED for memory registered before and
     * INVALID_VALUE for cuMemHostAlloc'd memory (seen with driver 580):
     * either way, memory that is pinned already is used as it is. */
    bool borrowed = r != FY_CUDA_SUCCESS && fy_cu_reg_borrowed(be, d);
    fy_cu_pop(be);
    if (r != FY_CUDA_SUCCESS && !borrowed)
        return fy_cu_reg_fail(
            be, r == FY_CUDA_ERROR_INVALID_VALUE ? FERRY_ERR_INVALID_PARAM : FERRY_ERR_BACKEND, d,
            fy_cuda_errname(be->cu, r));
    reg->pinned = !borrowed;
    if (reg->pinned) {
        be->pinned_bytes += d->len;
        fy_cu_log(be, FERRY_LOG_INFO, "pinned %llu bytes at %#llx (%llu bytes pinned in all)",
                  (unsigned long long)d->len, (unsigned long long)d->addr,
                  (unsigned long long)be->pinned_bytes);
    }
    *pub = (fy_cu_pub){.type = FERRY_MEM_DRAM, .addr = d->addr, .len = d->len};
    return FERRY_OK;
}

ferry_status fy_cu_reg(void *priv, ferry_mem_type type, const ferry_desc *desc, const void *meta,
                       size_t meta_len, void **region, void **pub, size_t *pub_len)
{
    fy_cu *be = priv;
    (void)meta, (void)meta_len;
    if (type != FERRY_MEM_DRAM && type != FERRY_MEM_VRAM)
        return FERRY_ERR_NOT_SUPPORTED;
    if (!desc || !region || !pub || !pub_len || !desc->len || desc->addr + desc->len < desc->addr)
        return FERRY_ERR_INVALID_PARAM;
    fy_cu_region *reg = calloc(1, sizeof(*reg));
    uint8_t *bytes = malloc(FY_CU_PUB_LEN);
    fy_cu_pub p;
    ferry_status rc = reg && bytes ? FERRY_OK : FERRY_ERR_NO_MEMORY;
    if (rc == FERRY_OK) {
        *reg = (fy_cu_region){.type = type, .addr = desc->addr, .len = desc->len, .ordinal = -1};
        rc = type == FERRY_MEM_VRAM ? fy_cu_reg_vram(be, desc, reg, &p)
                                    : fy_cu_reg_dram(be, desc, reg, &p);
    }
    if (rc != FERRY_OK) {
        free(reg);
        free(bytes);
        return rc;
    }
    fy_cu_pub_encode(&p, bytes);
    *region = reg;
    *pub = bytes;
    *pub_len = FY_CU_PUB_LEN;
    return FERRY_OK;
}

void fy_cu_dereg(void *priv, void *region)
{
    fy_cu *be = priv;
    fy_cu_region *reg = region;
    fy_cu_dev *dev;
    if (reg && reg->pinned && fy_cu_dev_ready(be, fy_cu_default_ordinal(be), &dev) == FERRY_OK &&
        fy_cu_push(be, dev)) {
        fy_cu_result r = be->cu->MemHostUnregister((void *)(uintptr_t)reg->addr);
        fy_cu_pop(be);
        if (r == FY_CUDA_SUCCESS)
            be->pinned_bytes -= reg->len;
        fy_cu_log(be, r == FY_CUDA_SUCCESS ? FERRY_LOG_INFO : FERRY_LOG_WARN,
                  "unpinned %llu bytes at %#llx: %s (%llu bytes pinned in all)",
                  (unsigned long long)reg->len, (unsigned long long)reg->addr,
                  fy_cuda_errname(be->cu, r), (unsigned long long)be->pinned_bytes);
    }
    free(reg);
}
