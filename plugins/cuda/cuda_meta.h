/* SPDX-License-Identifier: Apache-2.0 */
/* The bytes the CUDA plugin puts on the wire and reads back: connection
 * info, region keys ("pub" bytes) and notification datagrams, plus the
 * parsers of the few /proc files it reads. Pure functions with no driver
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
#include "gpu/cuda_api.h"

#define FY_CU_NAME_MAX  255           /* agent names (FERRY_NAME_MAX) */
#define FY_CU_SOCK_MAX  100           /* abstract socket names: sun_path less the NUL */
#define FY_CU_NOTIF_MAX (64u * 1024u) /* FERRY_NOTIF_MAX_LEN */

/* ---- connection info: how a peer on this host reaches us ----
 * "FYCC" u16 major=1 u16 sock_len | u64 uid | u32 pid u32 0 | u64 starttime |
 * boot_id[16] | u64 netns | u64 pidns | sock bytes */
#define FY_CU_CONN_FIXED 64u

typedef struct fy_cu_conn {
    uint64_t uid;
    uint32_t pid;
    uint64_t starttime;  /* of pid, clock ticks after boot: tells a reused pid */
    uint8_t boot_id[16]; /* this boot of this host */
    uint64_t netns;      /* abstract sockets live in a network namespace */
    uint64_t pidns;      /* pids mean something only in one pid namespace */
    char sock[FY_CU_SOCK_MAX + 1];
} fy_cu_conn;

/* Bytes written (FY_CU_CONN_FIXED + strlen(sock)); cap must allow them. */
size_t fy_cu_conn_encode(const fy_cu_conn *c, uint8_t *out, size_t cap);
/* BAD_METADATA on anything malformed. */
ferry_status fy_cu_conn_decode(const void *buf, size_t len, fy_cu_conn *out);

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

/* ---- notification datagrams ----
 * "FYCN" u8 major=1 u8 0 u16 name_len | u64 sender uid | name | message */
#define FY_CU_DGRAM_FIXED 16u
#define FY_CU_DGRAM_MAX   (FY_CU_DGRAM_FIXED + FY_CU_NAME_MAX + FY_CU_NOTIF_MAX)

/* Bytes written, or 0 when a length is out of bounds. */
size_t fy_cu_dgram_encode(uint8_t *out, size_t cap, const char *from, uint64_t uid, const void *msg,
                          size_t len);
/* from gets the sender's name (NUL-terminated); msg points into buf. */
ferry_status fy_cu_dgram_decode(const uint8_t *buf, size_t len, char from[FY_CU_NAME_MAX + 1],
                                uint64_t *uid, const void **msg, size_t *msg_len);

/* ---- /proc ---- */

/* Fields 3 (state: 'R', 'S', 'Z'...) and 22 (starttime) of a
 * /proc/<pid>/stat line; the command name (field 2) may hold spaces and
 * parentheses, so fields are counted after the last ')'. */
bool fy_cu_stat_parse(const char *stat, size_t len, char *state, uint64_t *starttime);
/* /proc/sys/kernel/random/boot_id ("8-4-4-4-12" hex) into 16 bytes. */
bool fy_cu_parse_boot_id(const char *text, uint8_t out[16]);

#endif
