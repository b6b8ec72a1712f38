/* SPDX-License-Identifier: Apache-2.0 */
/* Pinned host buffers for the index arrays of strided requests.
 *
 * The copy kernel reads a request's indices straight from pinned host
 * memory (mapped into every GPU's address space), so making a request
 * costs one memcpy and no upload. Pinning is slow (a system call and page
 * table work per buffer), so the buffers of released requests are kept,
 * a few of them, and the next request of a similar size takes one: an
 * engine making a request per layer allocates nothing in the steady
 * state. */
#include <string.h>

#include "cuda_internal.h"

#define FY_CU_PIN_MIN (16u * 1024u)

static size_t fy_cu_pin_round(size_t bytes)
{
    size_t cap = FY_CU_PIN_MIN;
    while (cap < bytes)
        cap *= 2;
    return cap;
}

/* The smallest kept buffer that holds bytes, or -1. */
static int fy_cu_pin_find(const fy_cu *be, size_t bytes)
{
    int best = -1;
    for (size_t i = 0; i < be->npins; i++)
        if (be->pins[i].cap >= bytes && (best < 0 || be->pins[i].cap < be->pins[best].cap))
            best = (int)i;
    return best;
}

static void fy_cu_pin_free(fy_cu *be, fy_cu_pin *pin)
{
    if (fy_cu_push(be, pin->dev)) {
        be->cu->MemFreeHost(pin->p);
        fy_cu_pop(be);
    }
    pin->p = NULL;
}

/* Portable: a buffer pinned in one GPU's context serves every GPU. */
static ferry_status fy_cu_pin_alloc(fy_cu *be, fy_cu_dev *d, size_t bytes, fy_cu_pin *out)
{
    const fy_cuda *cu = be->cu;
    size_t cap = fy_cu_pin_round(bytes);
    fy_cu_result r = FY_CUDA_ERROR_INVALID_CONTEXT;
    void *p = NULL;
    if (fy_cu_push(be, d)) {
        r = cu->MemHostAlloc(&p, cap, FY_CU_MEMHOSTALLOC_PORTABLE | FY_CU_MEMHOSTALLOC_DEVICEMAP);
        fy_cu_pop(be);
    }
    if (r != FY_CUDA_SUCCESS) {
        fy_cu_log(be, FERRY_LOG_ERROR, "pinning %zu bytes for index arrays: %s", cap,
                  fy_cuda_errname(cu, r));
        return r == FY_CUDA_ERROR_OUT_OF_MEMORY ? FERRY_ERR_NO_MEMORY : FERRY_ERR_BACKEND;
    }
    *out = (fy_cu_pin){p, cap, d};
    return FERRY_OK;
}

ferry_status fy_cu_pin_take(fy_cu *be, fy_cu_dev *d, size_t bytes, fy_cu_pin *out)
{
    int i = fy_cu_pin_find(be, bytes);
    if (i < 0)
        return fy_cu_pin_alloc(be, d, bytes, out);
    *out = be->pins[i];
    be->pins[i] = be->pins[--be->npins];
    return FERRY_OK;
}

/* Kept while there is room; else the smaller of it and the smallest kept
 * one is freed, so the cache drifts towards the sizes in use. */
void fy_cu_pin_give(fy_cu *be, fy_cu_pin *pin)
{
    if (be->npins < FY_CU_PIN_CACHE) {
        be->pins[be->npins++] = *pin;
        pin->p = NULL;
        return;
    }
    size_t small = 0;
    for (size_t i = 1; i < be->npins; i++)
        if (be->pins[i].cap < be->pins[small].cap)
            small = i;
    if (be->pins[small].cap < pin->cap) {
        fy_cu_pin_free(be, &be->pins[small]);
        be->pins[small] = *pin;
        pin->p = NULL;
        return;
    }
    fy_cu_pin_free(be, pin);
}

/* A buffer lent to the core (xfer_idx_alloc) carries its own pin record in
 * front of the bytes handed out, so that xfer_idx_free finds it. */
#define FY_CU_LENT_HEAD 64u

ferry_status fy_cu_pin_lend(fy_cu *be, fy_cu_dev *d, size_t bytes, void **buf)
{
    fy_cu_pin pin;
    ferry_status rc = fy_cu_pin_take(be, d, FY_CU_LENT_HEAD + bytes, &pin);
    if (rc != FERRY_OK)
        return rc;
    memcpy(pin.p, &pin, sizeof(pin));
    *buf = (char *)pin.p + FY_CU_LENT_HEAD;
    return FERRY_OK;
}

void fy_cu_pin_return(fy_cu *be, void *buf)
{
    fy_cu_pin pin;
    memcpy(&pin, (char *)buf - FY_CU_LENT_HEAD, sizeof(pin));
    fy_cu_pin_give(be, &pin);
}

void fy_cu_pin_fini(fy_cu *be)
{
    for (size_t i = 0; i < be->npins; i++)
        fy_cu_pin_free(be, &be->pins[i]);
    be->npins = 0;
}
