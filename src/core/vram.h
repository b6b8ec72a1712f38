/* SPDX-License-Identifier: Apache-2.0 */
/* The core's check of VRAM registrations (libferry only). */
#ifndef FY_GPU_VRAM_H
#define FY_GPU_VRAM_H

#include "ferry/mem.h"

/* OK for lists of other memory types. A VRAM list passes when every
 * descriptor is device memory of GPU dev_id, as the CUDA driver (opened on
 * first use) says. Logs the first failure once and returns NOT_SUPPORTED
 * (no usable driver), INVALID_PARAM (no such GPU, not device memory, another
 * GPU's memory) or BACKEND (the driver failed to answer). */
ferry_status fy_gpu_check_dlist(const ferry_dlist *list);

#endif
