/* SPDX-License-Identifier: Apache-2.0 */
/* Runs the conformance suite (tests/conformance, unchanged) on VRAM.
 *
 * Force-included (-include) into test_conformance.c and cf_setup.c, it
 * turns every DRAM descriptor list of the suite into a VRAM list on GPU 0
 * and its buffers into CUDA managed memory: device memory, as the driver
 * and the CUDA backend see it, that the suite can still fill, copy and
 * compare with plain memset/memcpy/memcmp, the way it checks every backend.
 * The suite's pair topology puts both agents in this process, so the CUDA
 * backend reaches the target's VRAM at its own addresses; the two-process
 * IPC path has its own test (test_cuda_ipc.c). */
#ifndef FY_CF_VRAM_SHIM_H
#define FY_CF_VRAM_SHIM_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/ferry.h>

/* After the enum is declared: from here on "DRAM" means VRAM. */
#define FERRY_MEM_DRAM FERRY_MEM_VRAM

#include "testutil.h" /* its tu_list1() now makes VRAM lists */

/* cf_vram.c (built without this header) */
void *cfv_alloc(size_t len);
void cfv_free(void *p);

#define tu_alloc cfv_alloc
#define free     cfv_free

#endif
