/* SPDX-License-Identifier: Apache-2.0 */
/* The CUDA driver as the tools use it (mem.c), for the programs beside
 * them that talk to the driver themselves (ferry-cuda-anchor). Needs
 * ferry's src/ on the include path. */
#ifndef FB_CUDA_H
#define FB_CUDA_H

#include "common.h"
#include "gpu/gpu.h"

/* The driver table; exits FB_EXIT_USAGE with the reason when unusable. */
const fy_cuda *fb_cuda(void);
/* Makes GPU dev's primary context current on this thread; fb_cu_pop undoes. */
const fy_cuda *fb_cu_push(int dev);
void fb_cu_pop(void);
/* Dies naming the call, the GPU and the driver's error unless r is success. */
void fb_cu_ok(fy_cu_result r, const char *what, int dev);

#endif
