/* SPDX-License-Identifier: Apache-2.0 */
/* Buffers of the VRAM conformance run (see cf_vram_shim.h): CUDA managed
 * memory on GPU 0, freed through the driver; anything else the suite frees
 * is ordinary heap memory. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "gpu/gpu.h"

#define CFV_MAX 256

static pthread_mutex_t cfv_mu = PTHREAD_MUTEX_INITIALIZER;
static void *cfv_live[CFV_MAX];
static const fy_cuda *cfv_cu;

/* The calling thread gets GPU 0's primary context, as after cudaSetDevice. */
static bool cfv_init(void)
{
    fy_gpu_why why;
    fy_cu_device dev;
    fy_cu_context ctx;
    if (cfv_cu)
        return true;
    if (fy_cuda_get(&cfv_cu, &why) != FERRY_OK) {
        printf("# no CUDA driver for the buffers: %s\n", why.msg);
        cfv_cu = NULL;
        return false;
    }
    if (cfv_cu->DeviceGet(&dev, 0) || cfv_cu->DevicePrimaryCtxRetain(&ctx, dev) ||
        cfv_cu->CtxPushCurrent(ctx)) {
        cfv_cu = NULL;
        return false;
    }
    return true;
}

void *cfv_alloc(size_t len)
{
    fy_cu_deviceptr p = 0;
    pthread_mutex_lock(&cfv_mu);
    int slot = -1;
    for (int i = 0; i < CFV_MAX && slot < 0; i++)
        if (!cfv_live[i])
            slot = i;
    if (slot >= 0 && cfv_init() &&
        cfv_cu->MemAllocManaged(&p, len ? len : 1, FY_CU_MEM_ATTACH_GLOBAL) == FY_CUDA_SUCCESS)
        cfv_live[slot] = (void *)(uintptr_t)p;
    else
        p = 0;
    pthread_mutex_unlock(&cfv_mu);
    return (void *)(uintptr_t)p;
}

void cfv_free(void *ptr)
{
    pthread_mutex_lock(&cfv_mu);
    for (int i = 0; ptr && i < CFV_MAX; i++)
        if (cfv_live[i] == ptr) {
            cfv_live[i] = NULL;
            cfv_cu->MemFree((fy_cu_deviceptr)(uintptr_t)ptr);
            pthread_mutex_unlock(&cfv_mu);
            return;
        }
    pthread_mutex_unlock(&cfv_mu);
    free(ptr);
}
