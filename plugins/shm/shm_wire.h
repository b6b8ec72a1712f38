/* SPDX-License-Identifier: Apache-2.0 */
/* The bytes the SHM plugin publishes and reads back. Pure functions, tested
 * on their own (tests/test_shm_wire.c); decoders treat input as hostile.
 * Little endian; a decoder refuses another major version and ignores bytes
 * a newer minor version appends. */
#ifndef FY_SHM_WIRE_H
#define FY_SHM_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/mem.h"
#include "fyp_ident.h"

/* ---- connection info ----
 * the identity of fyp_ident.h behind "FYSC", then u64 probe: the address of
 * 8 bytes holding the agent uid, which a peer reads by cross-memory attach
 * to learn whether the kernel lets it reach this process that way. */
#define FY_SHM_CONN_MAGIC "FYSC"
#define FY_SHM_CONN_MAX   (FYP_IDENT_FIXED + FYP_SOCK_MAX + 8u)

typedef struct fy_shm_conn {
    fyp_ident id;
    uint64_t probe;
} fy_shm_conn;

size_t fy_shm_conn_encode(const fy_shm_conn *c, uint8_t *out, size_t cap);
ferry_status fy_shm_conn_decode(const void *buf, size_t len, fy_shm_conn *out);

/* ---- region keys ----
 * "FYSR" u8 major=1 u8 kind u16 0 | u64 addr | u64 len | u64 token
 * kind 0: ordinary memory, reached by cross-memory attach; kind 1: memory
 * of ferry_mem_alloc (a memfd), whose fd the owner's server hands out for
 * the token. */
#define FY_SHM_PUB_LEN 32u

typedef enum fy_shm_kind { FY_SHM_KIND_CMA = 0, FY_SHM_KIND_MEMFD = 1 } fy_shm_kind;

typedef struct fy_shm_pub {
    fy_shm_kind kind;
    uint64_t addr, len; /* the region, in its owner's address space */
    uint64_t token;     /* memfd: names the region to the owner's server */
} fy_shm_pub;

void fy_shm_pub_encode(const fy_shm_pub *p, uint8_t out[FY_SHM_PUB_LEN]);
/* Also checks the bytes against what the core says the region is. */
ferry_status fy_shm_pub_decode(const void *buf, size_t len, const ferry_desc *desc,
                               fy_shm_pub *out);

/* ---- fd requests (seqpacket, one each way) ----
 * request: "FYSQ" u32 0 | u64 token
 * answer:  "FYSA" i32 status | u64 offset | u64 len, and the memfd
 *          (SCM_RIGHTS) when status is FERRY_OK */
#define FY_SHM_ASK_LEN 16u
#define FY_SHM_ANS_LEN 24u

void fy_shm_ask_encode(uint64_t token, uint8_t out[FY_SHM_ASK_LEN]);
bool fy_shm_ask_decode(const uint8_t *buf, size_t len, uint64_t *token);
void fy_shm_ans_encode(ferry_status st, uint64_t offset, uint64_t len, uint8_t out[FY_SHM_ANS_LEN]);
bool fy_shm_ans_decode(const uint8_t *buf, size_t len, ferry_status *st, uint64_t *offset,
                       uint64_t *rlen);

#endif
