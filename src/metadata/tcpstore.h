/* SPDX-License-Identifier: Apache-2.0 */
/* PyTorch's c10d TCPStore wire protocol: request encoding and an
 * incremental, bounded reply decoder. Pure functions over bytes (no
 * sockets), so the fuzzer drives the decoder alone. The client that uses
 * them is src/sidechannel/sc_tcpstore.c.
 *
 * A request is one command byte, then its arguments: strings and byte
 * vectors as a u64 little-endian length then the bytes, counts as a u64.
 * Replies carry no framing of their own: the client knows which reply a
 * command gets (a u64-length-prefixed value, an i64, one status byte or
 * the u32 nonce of a ping).
 *
 * Two dialects exist. Recent stores (PyTorch 2.x since it validates
 * clients) want a VALIDATE command (a u32 magic) first on every
 * connection and number commands from VALIDATE = 0; older ones (Debian
 * 12's 1.13, early 2.x) have no VALIDATE and number them from SET = 0. The commands this client
 * uses, by dialect, are in fy_ts_opcode(). */
#ifndef FY_METADATA_TCPSTORE_H
#define FY_METADATA_TCPSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FY_TS_MAGIC     0x3C85F7CEu /* VALIDATE's argument */
#define FY_TS_KEY_MAX   1024u       /* bytes of a key this client sends */
#define FY_TS_VALUE_MAX (64u << 20) /* bytes of a value it accepts */

typedef enum fy_ts_dialect {
    FY_TS_UNKNOWN = 0,
    FY_TS_V1 = 1, /* no VALIDATE (PyTorch 1.x, early 2.x) */
    FY_TS_V2 = 2, /* VALIDATE first (recent 2.x) */
} fy_ts_dialect;

typedef enum fy_ts_op {
    FY_TS_VALIDATE,
    FY_TS_SET,
    FY_TS_GET,
    FY_TS_CHECK,
    FY_TS_WAIT,
    FY_TS_DELETE,
    FY_TS_PING,
} fy_ts_op;

/* What a command's reply is. */
typedef enum fy_ts_reply_kind {
    FY_TS_R_VALUE = 0, /* u64 length, then that many bytes (GET) */
    FY_TS_R_I64 = 1,   /* DELETE: keys deleted */
    FY_TS_R_BYTE = 2,  /* CHECK: 0 ready, 1 not; WAIT: 0 stop waiting */
    FY_TS_R_U32 = 3,   /* PING: the nonce sent */
} fy_ts_reply_kind;

/* A request being built: a malloc'd buffer (free()). */
typedef struct fy_ts_req {
    uint8_t *buf;
    size_t len, cap;
    bool failed; /* an allocation failed or a bound was passed */
} fy_ts_req;

/* The command byte of op in a dialect; -1 when it has none (V1 has no
 * VALIDATE nor PING). */
int fy_ts_opcode(fy_ts_dialect d, fy_ts_op op);

/* Appends op's command byte, then (for SET, GET, DELETE) the key and (SET)
 * the value, or (CHECK, WAIT) a count of 1 and the key, or (VALIDATE) the
 * magic, or (PING) nonce. req->failed when the key is longer than
 * FY_TS_KEY_MAX, the value longer than FY_TS_VALUE_MAX, op has no byte in
 * the dialect, or memory ran out. */
void fy_ts_req_add(fy_ts_req *req, fy_ts_dialect d, fy_ts_op op, const char *key, const void *val,
                   size_t len, uint32_t nonce);
void fy_ts_req_free(fy_ts_req *req);

/* A decoded reply. value points into the bytes given to fy_ts_decode. */
typedef struct fy_ts_reply {
    const uint8_t *value;
    uint64_t len;
    int64_t num; /* I64, BYTE, U32 */
} fy_ts_reply;

/* Decodes one reply of kind from buf[0..n): 1 when whole (*used bytes make
 * it, out filled), 0 when more bytes are needed (*used: at least how many
 * in all, or 0 when not known yet), -1 when malformed (a value longer than
 * max_value, a status byte out of range). */
int fy_ts_decode(fy_ts_reply_kind kind, const uint8_t *buf, size_t n, uint64_t max_value,
                 fy_ts_reply *out, size_t *used);

/* A 64-bit FNV-1a of bytes: stands in for etcd's revisions (TCPStore has
 * none) to tell a value written again from the one loaded. */
uint64_t fy_ts_hash(const void *buf, size_t len);

#endif
