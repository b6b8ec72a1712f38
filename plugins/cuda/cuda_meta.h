/* SPDX-License-Identifier: Apache-2.0 */
/* The bytes the CUDA plugin puts on the wire and reads back: region keys
 * ("pub" bytes). Connection info and notification datagrams are the
 * host-local channel's (plugins/common/fyp_ident.h, fyp_chan.h). Pure functions with no driver
 * underneath, tested on any host (plugins/cuda/tests/test_cuda_meta.c). Decoders
 * treat their input as hostile: every length is checked before use.
 *
 * All integers are little endian. Each format starts with a magic and a
 * major version; a decoder refuses another major version and ignores bytes
 * a newer minor version appends. */
#ifndef FY_CUDA_META_H
#define FY_CUDA_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/mem.h"
#include "fyp_ident.h"
#include "gpu/cuda_api.h"

/* Connection info is the identity of plugins/common/fyp_ident.h behind
 * this magic. */
#define FY_CU_CONN_MAGIC "FYCC"

/* ---- region keys ----
 * "FYCR" u8 major=1 u8 type u8 flags u8 0 | uuid[16] | u64 addr | u64 len |
 * u64 alloc_base | u64 alloc_size | ipc handle[64]
 * flags bit 0: the handle is valid (VRAM of a cuMemAlloc'd allocation). The
 * handle is the allocation's, so a region inside a caching allocator's block
 * is reached as handle + (addr - alloc_base). */
#define FY_CU_PUB_LEN   120u
#define FY_CU_PUB_F_IPC 0x1u

typedef struct fy_cu_pub {
    ferry_mem_type type; /* DRAM or VRAM */
    bool ipc;
    uint8_t uuid[16];   /* VRAM: the GPU, as any process names it */
    uint64_t addr, len; /* the region, in its owner's address space */
    uint64_t alloc_base, alloc_size;
    fy_cu_ipc_handle handle;
} fy_cu_pub;

void fy_cu_pub_encode(const fy_cu_pub *p, uint8_t out[FY_CU_PUB_LEN]);
/* Checks the bytes against what the core says the region is (type and
 * range). BAD_METADATA when they disagree or are malformed. */
ferry_status fy_cu_pub_decode(const void *buf, size_t len, ferry_mem_type type,
                              const ferry_desc *desc, fy_cu_pub *out);

#endif
