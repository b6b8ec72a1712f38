/* SPDX-License-Identifier: Apache-2.0 */
/* Questions to the CUDA driver about addresses and devices. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gpu/gpu.h"

static ferry_status fy_why(fy_gpu_why *why, ferry_status rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static ferry_status fy_why(fy_gpu_why *why, ferry_status rc, const char *fmt, ...)
{
    if (why) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why->msg, sizeof(why->msg), fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* ---- contexts: borrow a GPU's primary context only if it is active ---- */

/* Pushes the primary context of ordinal when the process already uses that
 * GPU; retaining an inactive one would create a context (hundreds of MiB of
 * GPU memory) just to answer a question. */
static bool fy_gpu_push_active(const fy_cuda *cu, int ordinal, fy_cu_device *dev)
{
    unsigned flags;
    int active = 0;
    fy_cu_context ctx;
    if (ordinal < 0 || ordinal >= cu->device_count || cu->DeviceGet(dev, ordinal) != 0 ||
        cu->DevicePrimaryCtxGetState(*dev, &flags, &active) != 0 || !active)
        return false;
    if (cu->DevicePrimaryCtxRetain(&ctx, *dev) != 0)
        return false;
    if (cu->CtxPushCurrent(ctx) != 0) {
        cu->DevicePrimaryCtxRelease(*dev);
        return false;
    }
    return true;
}

static void fy_gpu_pop_active(const fy_cuda *cu, fy_cu_device dev)
{
    fy_cu_context ignored;
    cu->CtxPopCurrent(&ignored);
    cu->DevicePrimaryCtxRelease(dev);
}

/* ---- pointers ---- */

static fy_cu_result fy_gpu_attrs(const fy_cuda *cu, uint64_t addr, fy_gpu_ptr *out)
{
    unsigned mem_type = 0, managed = 0;
    int ordinal = -1;
    fy_cu_context ctx = NULL;
    int attrs[] = {FY_CU_POINTER_ATTRIBUTE_MEMORY_TYPE, FY_CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
                   FY_CU_POINTER_ATTRIBUTE_IS_MANAGED, FY_CU_POINTER_ATTRIBUTE_CONTEXT};
    void *data[] = {&mem_type, &ordinal, &managed, &ctx};
    fy_cu_result r = cu->PointerGetAttributes(4, attrs, data, (fy_cu_deviceptr)addr);
    if (r == 0)
        *out = (fy_gpu_ptr){
            .mem_type = (int)mem_type, .ordinal = ordinal, .managed = managed != 0, .ctx = ctx};
    return r;
}

/* The allocation around addr. cuMemGetAddressRange may want a context:
 * the one the memory belongs to, else the GPU's primary one if active. */
static void fy_gpu_range(const fy_cuda *cu, uint64_t addr, fy_gpu_ptr *p)
{
    fy_cu_deviceptr base = 0;
    size_t size = 0;
    fy_cu_device dev = 0;
    fy_cu_context ignored;
    if (p->ctx && cu->CtxPushCurrent(p->ctx) == 0) {
        if (cu->MemGetAddressRange(&base, &size, (fy_cu_deviceptr)addr) != 0)
            base = 0, size = 0;
        cu->CtxPopCurrent(&ignored);
    } else if (cu->MemGetAddressRange(&base, &size, (fy_cu_deviceptr)addr) != 0) {
        base = 0, size = 0;
        if (fy_gpu_push_active(cu, p->ordinal, &dev)) {
            if (cu->MemGetAddressRange(&base, &size, (fy_cu_deviceptr)addr) != 0)
                base = 0, size = 0;
            fy_gpu_pop_active(cu, dev);
        }
    }
    p->base = base;
    p->size = size;
}

ferry_status fy_gpu_ptr_query(const fy_cuda *cu, uint64_t addr, int hint_ordinal, fy_gpu_ptr *out,
                              fy_gpu_why *why)
{
    fy_gpu_ptr p = {.ordinal = -1};
    fy_cu_result r = fy_gpu_attrs(cu, addr, &p);
    fy_cu_device dev;
    if (r == FY_CUDA_ERROR_INVALID_CONTEXT && fy_gpu_push_active(cu, hint_ordinal, &dev)) {
        r = fy_gpu_attrs(cu, addr, &p);
        fy_gpu_pop_active(cu, dev);
    }
    if (r != 0)
        return fy_why(why, FERRY_ERR_BACKEND, "cuPointerGetAttributes(%#llx): %s",
                      (unsigned long long)addr, fy_cuda_errname(cu, r));
    if (p.mem_type == FY_CU_MEMORYTYPE_DEVICE)
        fy_gpu_range(cu, addr, &p);
    *out = p;
    return FERRY_OK;
}

static const char *fy_gpu_kind(const fy_gpu_ptr *p)
{
    switch (p->mem_type) {
    case 0:
        return "not CUDA memory (an ordinary host address, or unmapped)";
    case FY_CU_MEMORYTYPE_HOST:
        return "pinned host memory, not device memory";
    default:
        return "not device memory";
    }
}

/* One address of a VRAM descriptor: device memory of GPU dev_id. */
static ferry_status fy_gpu_check_one(const fy_cuda *cu, uint64_t addr, uint64_t dev_id,
                                     fy_gpu_ptr *p, fy_gpu_why *why)
{
    ferry_status rc = fy_gpu_ptr_query(cu, addr, (int)dev_id, p, why);
    if (rc != FERRY_OK)
        return rc;
    /* Managed memory counts as device memory whatever the driver calls it
     * (its pages migrate); its GPU, when the driver names one, must match. */
    if (p->mem_type != FY_CU_MEMORYTYPE_DEVICE && !p->managed)
        return fy_why(why, FERRY_ERR_INVALID_PARAM, "address %#llx is %s", (unsigned long long)addr,
                      fy_gpu_kind(p));
    if (p->managed && p->ordinal < 0)
        return FERRY_OK;
    if (p->ordinal < 0 || (uint64_t)p->ordinal != dev_id)
        return fy_why(why, FERRY_ERR_INVALID_PARAM,
                      "address %#llx is memory of GPU %d, the descriptor says GPU %llu",
                      (unsigned long long)addr, p->ordinal, (unsigned long long)dev_id);
    return FERRY_OK;
}

ferry_status fy_gpu_check_vram(const fy_cuda *cu, uint64_t addr, uint64_t len, uint64_t dev_id,
                               uint64_t *range_base, uint64_t *range_end, fy_gpu_why *why)
{
    if (dev_id >= (uint64_t)cu->device_count)
        return fy_why(why, FERRY_ERR_INVALID_PARAM, "no GPU %llu: this process sees %d",
                      (unsigned long long)dev_id, cu->device_count);
    if (!len || addr + len < addr)
        return fy_why(why, FERRY_ERR_INVALID_PARAM, "empty or wrapping range");
    fy_gpu_ptr p, q;
    ferry_status rc = fy_gpu_check_one(cu, addr, dev_id, &p, why);
    if (rc != FERRY_OK)
        return rc;
    uint64_t end = addr + len;
    bool inside = p.size && addr >= p.base && end <= p.base + p.size;
    /* A range past its allocation must still end in device memory of the
     * same GPU (adjacent allocations work for local copies). */
    if (!inside && (rc = fy_gpu_check_one(cu, end - 1, dev_id, &q, why)) != FERRY_OK)
        return rc;
    if (range_base)
        *range_base = inside ? p.base : addr;
    if (range_end)
        *range_end = inside ? p.base + p.size : end;
    return FERRY_OK;
}

/* ---- devices ---- */

ferry_status fy_gpu_uuid(const fy_cuda *cu, int ordinal, uint8_t uuid[16])
{
    fy_cu_device dev;
    fy_cu_uuid u;
    if (ordinal < 0 || ordinal >= cu->device_count || cu->DeviceGet(&dev, ordinal) != 0 ||
        cu->DeviceGetUuid(&u, dev) != 0)
        return FERRY_ERR_NOT_FOUND;
    memcpy(uuid, u.bytes, 16);
    return FERRY_OK;
}

ferry_status fy_gpu_ordinal_of(const fy_cuda *cu, const uint8_t uuid[16], int *ordinal)
{
    uint8_t u[16];
    for (int i = 0; i < cu->device_count; i++)
        if (fy_gpu_uuid(cu, i, u) == FERRY_OK && !memcmp(u, uuid, 16)) {
            *ordinal = i;
            return FERRY_OK;
        }
    return FERRY_ERR_NOT_FOUND;
}

void fy_gpu_uuid_str(const uint8_t u[16], char *buf, size_t cap)
{
    snprintf(buf, cap, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
             u[14], u[15]);
}
