/* SPDX-License-Identifier: Apache-2.0 */
/* The buffers both tools move: DRAM, or VRAM through the CUDA driver.
 *
 * The driver is opened at run time through ferry's own loader
 * (src/gpu/cuda_loader.c, compiled into the tools): the same search,
 * FERRY_CUDA_LIB included, so a mock driver stands in where tests need
 * one, and one build runs on hosts with and without GPUs. Memory comes
 * from cuMemAlloc in the GPU's primary context, which is what the CUDA
 * backend accepts (the CUDA runtime's, PyTorch's allocations live there).
 *
 * The tools never touch VRAM bytes directly: patterns are written and
 * checked through host copies, a bounded chunk at a time. */
#include "fb_cuda.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Host staging per copy: big enough for link speed, small enough that a
 * 4 GiB slot never needs a 4 GiB host copy. */
#define FB_CHUNK    (16u << 20)
#define FB_MAX_GPUS 64

static struct {
    pthread_mutex_t mu;
    fy_cu_context ctx[FB_MAX_GPUS]; /* retained primary contexts */
} fb_gpu = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* ---- the driver ---- */

bool fb_vram_usable(char *why, size_t len)
{
    const fy_cuda *cu;
    fy_gpu_why w;
    if (fy_cuda_get(&cu, &w) == FERRY_OK)
        return true;
    snprintf(why, len, "%s", w.msg);
    return false;
}

const fy_cuda *fb_cuda(void)
{
    const fy_cuda *cu;
    fy_gpu_why w;
    if (fy_cuda_get(&cu, &w) != FERRY_OK)
        fb_exit(FB_EXIT_USAGE, "VRAM needs the CUDA driver: %s", w.msg);
    return cu;
}

int fb_gpu_count(void)
{
    return fb_cuda()->device_count;
}

int fb_gpu_for(unsigned index)
{
    return (int)(index % (unsigned)fb_gpu_count());
}

/* Dies naming the call, the GPU and the driver's error. */
void fb_cu_ok(fy_cu_result r, const char *what, int dev)
{
    if (r != FY_CUDA_SUCCESS)
        fb_die("CUDA %s on GPU %d: %s", what, dev, fy_cuda_errname(fb_cuda(), r));
}

/* Makes GPU dev's primary context current on this thread. It is retained
 * once per process and never released: the tools' processes end soon after
 * their last VRAM use, and a release would destroy a context still in use
 * by a backend that retained it too. */
const fy_cuda *fb_cu_push(int dev)
{
    const fy_cuda *cu = fb_cuda();
    if (dev < 0 || dev >= cu->device_count || dev >= FB_MAX_GPUS)
        fb_exit(FB_EXIT_USAGE, "GPU %d: this process sees %d GPU(s)", dev, cu->device_count);
    pthread_mutex_lock(&fb_gpu.mu);
    fy_cu_result r = FY_CUDA_SUCCESS;
    if (!fb_gpu.ctx[dev]) {
        fy_cu_device d;
        r = cu->DeviceGet(&d, dev);
        if (r == FY_CUDA_SUCCESS)
            r = cu->DevicePrimaryCtxRetain(&fb_gpu.ctx[dev], d);
    }
    pthread_mutex_unlock(&fb_gpu.mu);
    fb_cu_ok(r, "primary context", dev);
    fb_cu_ok(cu->CtxPushCurrent(fb_gpu.ctx[dev]), "push context", dev);
    return cu;
}

void fb_cu_pop(void)
{
    fy_cu_context ignored;
    fb_cuda()->CtxPopCurrent(&ignored);
}

/* cuMemcpy from pageable memory and cuMemsetD8 may return before the
 * device memory holds the bytes, and the backend's streams are not ordered
 * after the legacy stream they ran on. A device-to-host copy on that
 * stream returns only when it and everything before it are done. */
static void fb_cu_fence(const fy_cuda *cu, const fb_mem *m, size_t off)
{
    uint8_t byte;
    fb_cu_ok(cu->Memcpy((uintptr_t)&byte, (uintptr_t)(m->ptr + off), 1), "fence copy", m->dev);
}

/* ---- allocation ---- */

void fb_mem_alloc(fb_mem *m, ferry_mem_type type, int dev, size_t size)
{
    *m = (fb_mem){.type = type, .dev = type == FERRY_MEM_VRAM ? dev : 0, .size = size};
    if (type == FERRY_MEM_DRAM) {
        m->ptr = fb_alloc_pages(size);
        return;
    }
    if (type != FERRY_MEM_VRAM)
        fb_die("memory type %s: the tools allocate DRAM and VRAM only", ferry_mem_type_name(type));
    const fy_cuda *cu = fb_cu_push(dev);
    fy_cu_deviceptr p;
    fy_cu_result r = cu->MemAlloc(&p, size ? size : 1);
    if (r != FY_CUDA_SUCCESS) {
        fb_cu_pop();
        fb_die("cuMemAlloc of %zu bytes on GPU %d: %s", size, dev, fy_cuda_errname(cu, r));
    }
    m->ptr = (uint8_t *)(uintptr_t)p;
    fb_cu_pop();
    fb_mem_zero(m, 0, size); /* as DRAM's pages start: a check never sees old data */
}

void fb_mem_alloc_ferry(fb_mem *m, ferry_agent *a, size_t size)
{
    *m = (fb_mem){.type = FERRY_MEM_DRAM, .size = size, .owner = a};
    void *p = NULL;
    fb_ok(ferry_mem_alloc(a, NULL, FERRY_MEM_DRAM, size ? size : 1, 0, &p),
          "ferry_mem_alloc (--mem_alloc)");
    m->ptr = p;
    memset(m->ptr, 0, size); /* touched now, not inside a timed step */
}

void fb_mem_free(fb_mem *m)
{
    if (m->owner) {
        /* freed with its agent */
    } else if (fb_mem_is_store(m)) {
        fb_store_free(m);
    } else if (m->type == FERRY_MEM_VRAM && m->ptr) {
        const fy_cuda *cu = fb_cu_push(m->dev);
        fb_cu_ok(cu->MemFree((uintptr_t)m->ptr), "cuMemFree", m->dev);
        fb_cu_pop();
    } else {
        free(m->ptr);
    }
    *m = (fb_mem){0};
}

/* ---- bytes through host memory ---- */

static void fb_mem_range(const fb_mem *m, size_t off, size_t len)
{
    if (off > m->size || len > m->size - off)
        fb_die("internal: range %zu+%zu outside a buffer of %zu bytes", off, len, m->size);
}

void fb_mem_zero(const fb_mem *m, size_t off, size_t len)
{
    fb_mem_range(m, off, len);
    if (m->type == FERRY_MEM_DRAM || !len) {
        memset(m->ptr + off, 0, len);
        return;
    }
    if (fb_mem_is_store(m)) {
        uint8_t *v = fb_view(m, off, len, false);
        fb_view_done(m, v, off, len, true);
        return;
    }
    const fy_cuda *cu = fb_cu_push(m->dev);
    fb_cu_ok(cu->MemsetD8((uintptr_t)(m->ptr + off), 0, len), "cuMemsetD8", m->dev);
    fb_cu_fence(cu, m, off);
    fb_cu_pop();
}

uint8_t *fb_view(const fb_mem *m, size_t off, size_t len, bool read)
{
    fb_mem_range(m, off, len);
    if (m->type == FERRY_MEM_DRAM)
        return m->ptr + off;
    uint8_t *v = fb_alloc(len);
    if (read && len && fb_mem_is_store(m)) {
        fb_store_read(m, v, off, len);
    } else if (read && len) {
        const fy_cuda *cu = fb_cu_push(m->dev);
        fb_cu_ok(cu->Memcpy((uintptr_t)v, (uintptr_t)(m->ptr + off), len), "copy to host", m->dev);
        fb_cu_pop();
    }
    return v;
}

void fb_view_done(const fb_mem *m, uint8_t *view, size_t off, size_t len, bool write)
{
    if (m->type == FERRY_MEM_DRAM)
        return;
    if (write && len && fb_mem_is_store(m)) {
        fb_store_write(m, view, off, len);
    } else if (write && len) {
        const fy_cuda *cu = fb_cu_push(m->dev);
        fb_cu_ok(cu->Memcpy((uintptr_t)(m->ptr + off), (uintptr_t)view, len), "copy to GPU",
                 m->dev);
        fb_cu_fence(cu, m, off);
        fb_cu_pop();
    }
    free(view);
}

/* DRAM: the whole range at once, in place; VRAM: a chunk at a time;
 * storage: whole ranges too (objects are written whole). */
static size_t fb_chunk(const fb_mem *m, size_t left)
{
    return m->type != FERRY_MEM_VRAM || left < FB_CHUNK ? left : FB_CHUNK;
}

void fb_mem_fill(const fb_mem *m, size_t off, size_t len, uint64_t seed, uint64_t off0)
{
    for (size_t done = 0, n; done < len; done += n) {
        n = fb_chunk(m, len - done);
        uint8_t *v = fb_view(m, off + done, n, false);
        fb_fill(v, n, seed, off0 + done);
        fb_view_done(m, v, off + done, n, true);
    }
}

bool fb_mem_check(const fb_mem *m, size_t off, size_t len, uint64_t seed, uint64_t off0,
                  size_t *bad, uint8_t *got)
{
    bool ok = true;
    for (size_t done = 0, n; ok && done < len; done += n) {
        n = fb_chunk(m, len - done);
        uint8_t *v = fb_view(m, off + done, n, true);
        size_t at;
        ok = fb_check(v, n, seed, off0 + done, &at);
        if (!ok) {
            *bad = done + at;
            *got = v[at];
        }
        fb_view_done(m, v, off + done, n, false);
    }
    return ok;
}

void fb_mem_flip(const fb_mem *m, size_t off)
{
    uint8_t *v = fb_view(m, off, 1, true);
    v[0] ^= 0xff;
    fb_view_done(m, v, off, 1, true);
}

/* ---- registration ---- */

ferry_dlist *fb_register(ferry_agent *a, const fb_mem *m, size_t off, size_t len)
{
    ferry_dlist *l;
    fb_mem_range(m, off, len);
    if (fb_mem_is_store(m)) {
        l = fb_store_reg_list(m, off, len);
    } else {
        fb_ok(ferry_dlist_create(m->type, 1, &l), "dlist");
        fb_ok(ferry_dlist_add(l, (uintptr_t)(m->ptr + off), len, (uint64_t)m->dev), "dlist add");
    }
    ferry_status rc = ferry_register(a, l, NULL);
    if (rc != FERRY_OK)
        fb_die("register %s memory (%zu bytes%s): %s", ferry_mem_type_name(m->type), len,
               m->type == FERRY_MEM_VRAM ? " on a GPU" : "", ferry_strerror(rc));
    return l;
}
