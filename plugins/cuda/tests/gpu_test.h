/* SPDX-License-Identifier: Apache-2.0 */
/* What the GPU tests share: the driver (the real one, or the mock driver
 * when FERRY_CUDA_LIB points at it), the skip rule (exit 77 with a TAP skip
 * plan when there is no driver or no GPU), device memory helpers, random
 * descriptor layouts and a byte-for-byte check.
 *
 * The test's own thread keeps GPU 0's primary context current, like an
 * application after cudaSetDevice(0); ferry must leave it so. */
#ifndef FY_GPU_TEST_H
#define FY_GPU_TEST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/ferry.h>

#include "gpu/gpu.h"
#include "harness.h"
#include "testutil.h"

#define GT_MAX_DEVS 8

/* Set by meson when nvcc built the CUDA plugin's copy kernels; without
 * them kernel mode is NOT_SUPPORTED and the tests use copy engines. */
#ifndef GT_HAVE_KERNELS
#define GT_HAVE_KERNELS 0
#endif
#define GT_KERNEL_MODE (GT_HAVE_KERNELS ? "kernel" : "copy_engine")

typedef struct gt_env {
    const fy_cuda *cu;
    int ndev;
    bool mock;
    fy_cu_context ctx[GT_MAX_DEVS];
} gt_env;

static gt_env GT;

static inline void gt_die(const char *what, fy_cu_result r)
{
    printf("Bail out! %s: %s\n", what, fy_cuda_errname(GT.cu, r));
    fflush(stdout);
    exit(1);
}

static inline fy_cu_context gt_ctx(int ordinal)
{
    fy_cu_device dev;
    if (!GT.ctx[ordinal]) {
        fy_cu_result r = GT.cu->DeviceGet(&dev, ordinal);
        if (r == FY_CUDA_SUCCESS)
            r = GT.cu->DevicePrimaryCtxRetain(&GT.ctx[ordinal], dev);
        if (r != FY_CUDA_SUCCESS)
            gt_die("cuDevicePrimaryCtxRetain", r);
    }
    return GT.ctx[ordinal];
}

/* The driver or a skip: "1..0 # SKIP ..." and exit 77. */
static inline void gt_init_or_skip(void)
{
    fy_gpu_why why;
    if (fy_cuda_get(&GT.cu, &why) != FERRY_OK) {
        char reason[300];
        snprintf(reason, sizeof(reason), "no CUDA GPU here (%s)", why.msg);
        fy_test_skip_all(reason);
    }
    const char *lib = getenv("FERRY_CUDA_LIB");
    GT.mock = lib && strstr(lib, "mock");
    GT.ndev = GT.cu->device_count < GT_MAX_DEVS ? GT.cu->device_count : GT_MAX_DEVS;
    fy_cu_result r = GT.cu->CtxPushCurrent(gt_ctx(0));
    if (r != FY_CUDA_SUCCESS)
        gt_die("cuCtxPushCurrent", r);
    printf("# %d GPU(s), %s driver %d\n", GT.ndev, GT.mock ? "mock" : "CUDA",
           GT.cu->driver_version);
}

/* A GPU's memory; calls on another GPU run in its context, then ours again. */
static inline void *gt_alloc(int ordinal, size_t len)
{
    fy_cu_deviceptr p = 0;
    fy_cu_context ignored;
    GT.cu->CtxPushCurrent(gt_ctx(ordinal));
    fy_cu_result r = GT.cu->MemAlloc(&p, len);
    GT.cu->CtxPopCurrent(&ignored);
    if (r != FY_CUDA_SUCCESS)
        gt_die("cuMemAlloc", r);
    return (void *)(uintptr_t)p;
}

static inline void gt_free(int ordinal, void *p)
{
    fy_cu_context ignored;
    if (!p)
        return;
    GT.cu->CtxPushCurrent(gt_ctx(ordinal));
    GT.cu->MemFree((fy_cu_deviceptr)(uintptr_t)p);
    GT.cu->CtxPopCurrent(&ignored);
}

/* Pinned host memory (what a cudaHostAlloc would give). */
static inline void *gt_host_alloc(size_t len)
{
    void *p = NULL;
    fy_cu_result r = GT.cu->MemHostAlloc(&p, len, FY_CU_MEMHOSTALLOC_PORTABLE);
    if (r != FY_CUDA_SUCCESS)
        gt_die("cuMemHostAlloc", r);
    return p;
}

/* Unified addressing: cuMemcpy takes host and device addresses alike. */
static inline void gt_copy(void *dst, const void *src, size_t len)
{
    fy_cu_result r =
        GT.cu->Memcpy((fy_cu_deviceptr)(uintptr_t)dst, (fy_cu_deviceptr)(uintptr_t)src, len);
    if (r != FY_CUDA_SUCCESS)
        gt_die("cuMemcpy", r);
}

/* Fills any memory with the seed's pattern (see tu_fill). */
static inline void gt_fill(void *p, size_t len, uint64_t seed)
{
    void *h = malloc(len);
    if (!h)
        gt_die("malloc", FY_CUDA_ERROR_OUT_OF_MEMORY);
    tu_fill(h, len, seed);
    gt_copy(p, h, len);
    free(h);
}

/* A host copy of any memory; free() it. */
static inline uint8_t *gt_read(const void *p, size_t len)
{
    uint8_t *h = malloc(len ? len : 1);
    if (!h)
        gt_die("malloc", FY_CUDA_ERROR_OUT_OF_MEMORY);
    gt_copy(h, p, len);
    return h;
}

/* ---- random layouts: n copies of random lengths at random places ---- */

typedef struct gt_layout {
    size_t n;
    uint64_t *len, *soff, *doff;
    size_t ssize, dsize;
} gt_layout;

static inline size_t gt_place(uint64_t *off, const uint64_t *len, size_t n, tu_rng *rng,
                              unsigned align)
{
    size_t *order = malloc(n * sizeof(*order)), pos = 0;
    if (!order)
        gt_die("malloc", FY_CUDA_ERROR_OUT_OF_MEMORY);
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = n; i-- > 1;) {
        size_t j = (size_t)tu_rand_range(rng, 0, i), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (size_t k = 0; k < n; k++) {
        pos +=
            (size_t)tu_rand_range(rng, 0, 3) * align + (align == 1 ? tu_rand_range(rng, 0, 7) : 0);
        off[order[k]] = pos;
        pos += len[order[k]];
        pos = (pos + align - 1) / align * align;
    }
    free(order);
    return pos + 64;
}

/* Lengths in [1, max_len] (multiples of align when align > 1); align 1 also
 * gives odd placements, so the kernel's narrow paths run too. */
static inline void gt_layout_make(gt_layout *lo, size_t n, uint64_t max_len, unsigned align,
                                  uint64_t seed)
{
    tu_rng rng = tu_rng_seed(seed);
    lo->n = n;
    lo->len = malloc(n * sizeof(uint64_t));
    lo->soff = malloc(n * sizeof(uint64_t));
    lo->doff = malloc(n * sizeof(uint64_t));
    if (!lo->len || !lo->soff || !lo->doff)
        gt_die("malloc", FY_CUDA_ERROR_OUT_OF_MEMORY);
    for (size_t i = 0; i < n; i++) {
        uint64_t l = tu_rand_range(&rng, 1, max_len);
        lo->len[i] = align > 1 ? (l + align - 1) / align * align : l;
    }
    lo->ssize = gt_place(lo->soff, lo->len, n, &rng, align);
    lo->dsize = gt_place(lo->doff, lo->len, n, &rng, align);
}

static inline void gt_layout_free(gt_layout *lo)
{
    free(lo->len);
    free(lo->soff);
    free(lo->doff);
}

static inline ferry_dlist *gt_list(ferry_mem_type type, const gt_layout *lo, bool dst,
                                   const void *base, uint64_t dev)
{
    ferry_dlist *l = NULL;
    if (ferry_dlist_create(type, lo->n, &l) != FERRY_OK)
        return NULL;
    for (size_t i = 0; i < lo->n; i++)
        ferry_dlist_add(l, (uintptr_t)base + (dst ? lo->doff[i] : lo->soff[i]), lo->len[i], dev);
    return l;
}

/* The destination after the layout's copies, computed on the host from
 * copies of both buffers taken before the transfer. */
static inline void gt_apply(uint8_t *dst, const uint8_t *src, const gt_layout *lo)
{
    for (size_t i = 0; i < lo->n; i++)
        memcpy(dst + lo->doff[i], src + lo->soff[i], lo->len[i]);
}

/* One list of one region: the whole buffer. */
static inline ferry_dlist *gt_list1(ferry_mem_type type, const void *p, size_t len, uint64_t dev)
{
    ferry_dlist *l = NULL;
    if (ferry_dlist_create(type, 1, &l) == FERRY_OK &&
        ferry_dlist_add(l, (uintptr_t)p, len, dev) != FERRY_OK) {
        ferry_dlist_destroy(l);
        l = NULL;
    }
    return l;
}

static inline ferry_status gt_register(ferry_agent *a, ferry_mem_type type, const void *p,
                                       size_t len, uint64_t dev)
{
    ferry_dlist *l = gt_list1(type, p, len, dev);
    ferry_status rc = l ? ferry_register(a, l, NULL) : FERRY_ERR_NO_MEMORY;
    ferry_dlist_destroy(l);
    return rc;
}

static inline ferry_status gt_deregister(ferry_agent *a, ferry_mem_type type, const void *p,
                                         size_t len, uint64_t dev)
{
    ferry_dlist *l = gt_list1(type, p, len, dev);
    ferry_status rc = l ? ferry_deregister(a, l, NULL) : FERRY_ERR_NO_MEMORY;
    ferry_dlist_destroy(l);
    return rc;
}

#endif
