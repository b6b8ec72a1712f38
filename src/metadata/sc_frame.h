/* SPDX-License-Identifier: Apache-2.0 */
/* Side-channel frames: the byte format of docs/side-channel.md and an
 * incremental reader. Pure functions over bytes (no sockets, no agent), so
 * the fuzzer drives them alone. Internal (fy_*), not part of the ABI.
 *
 * A frame is a 12-byte header then `len` payload bytes:
 *   0..3  magic "FYSC"   4 major   5 minor   6 type   7 flags
 *   8..11 payload length, u32 little-endian
 * Strings in payloads are a u16 little-endian length then that many bytes
 * (no terminator, no NUL inside). */
#ifndef FY_SC_FRAME_H
#define FY_SC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FY_SC_HDR_LEN 12u
#define FY_SC_MAJOR   1u
#define FY_SC_MINOR   1u
#define FY_SC_STR_MAX 255u /* names and labels, bytes */
/* Largest FETCH / INVALIDATE payload this version writes. */
#define FY_SC_REQ_MAX (2u * (2u + FY_SC_STR_MAX) + 8u)
/* Header flag: the payload ends with an auth trailer (minor 1). */
#define FY_SC_FLAG_AUTH 0x01u
#define FY_SC_NONCE_LEN 16u
#define FY_SC_MAC_LEN   32u
/* Auth trailer, the last bytes of the payload:
 *   sender name | u16 name length | nonce (16) | u64 time (us) | MAC (32)
 * Read from the end, so the content before it keeps its own layout. The
 * MAC covers the header and every payload byte before it (a REPLY's MAC
 * also covers the nonce of the request it answers). */
#define FY_SC_TAIL_FIXED (2u + FY_SC_NONCE_LEN + 8u + FY_SC_MAC_LEN)
#define FY_SC_TAIL_MAX   (FY_SC_STR_MAX + FY_SC_TAIL_FIXED)
/* Payload buffers start this small and grow only as bytes arrive, so a
 * length field alone never makes the reader allocate much. */
#define FY_SC_RX_CHUNK (64u << 10)

typedef enum fy_sc_type {
    FY_SC_LOAD = 1,       /* label, then a metadata blob to load */
    FY_SC_FETCH = 2,      /* agent name, label: reply with that metadata */
    FY_SC_INVALIDATE = 3, /* instance uid, agent name: forget that agent */
    FY_SC_REPLY = 4,      /* status (i32), then an optional body */
} fy_sc_type;

/* Why bytes were refused. */
typedef enum fy_sc_err {
    FY_SC_OK = 0,
    FY_SC_E_MAGIC,   /* not a side-channel frame */
    FY_SC_E_MAJOR,   /* another major version */
    FY_SC_E_TYPE,    /* unknown frame type */
    FY_SC_E_SIZE,    /* payload length over the receiver's cap */
    FY_SC_E_PAYLOAD, /* payload does not match its type's layout */
    FY_SC_E_NOMEM,   /* the receiver could not allocate the payload */
} fy_sc_err;
const char *fy_sc_err_str(fy_sc_err err);

typedef struct fy_sc_hdr {
    uint8_t major, minor, type, flags;
    uint32_t len;
} fy_sc_hdr;

/* A view of payload bytes (points into the frame). */
typedef struct fy_sc_view {
    const uint8_t *ptr;
    size_t len;
} fy_sc_view;

void fy_sc_hdr_put(uint8_t out[FY_SC_HDR_LEN], fy_sc_type type, uint32_t len);
/* Checks magic, major, type and len <= max_len. */
fy_sc_err fy_sc_hdr_get(const uint8_t in[FY_SC_HDR_LEN], uint32_t max_len, fy_sc_hdr *hdr);

/* ---- payloads: *_put return bytes written; *_get check every length ---- */
size_t fy_sc_str_put(uint8_t *out, const char *s, size_t len);
size_t fy_sc_fetch_put(uint8_t out[FY_SC_REQ_MAX], const char *name, const char *label);
size_t fy_sc_inval_put(uint8_t out[FY_SC_REQ_MAX], uint64_t uid, const char *name);
/* Reply header and status: the body (if any) follows. */
void fy_sc_reply_put(uint8_t out[FY_SC_HDR_LEN + 4], int32_t status, uint32_t body_len);

/* Trailing bytes after the known fields are accepted only from a newer
 * minor version (they are its additions); from ours they are an error. */
fy_sc_err fy_sc_load_get(const fy_sc_hdr *h, const uint8_t *p, fy_sc_view *label, fy_sc_view *blob);
fy_sc_err fy_sc_fetch_get(const fy_sc_hdr *h, const uint8_t *p, fy_sc_view *name,
                          fy_sc_view *label);
fy_sc_err fy_sc_inval_get(const fy_sc_hdr *h, const uint8_t *p, uint64_t *uid, fy_sc_view *name);
fy_sc_err fy_sc_reply_get(const fy_sc_hdr *h, const uint8_t *p, int32_t *status, fy_sc_view *body);

/* ---- auth trailer ---- */
typedef struct fy_sc_auth {
    fy_sc_view sender;    /* name of the agent that signed the frame */
    const uint8_t *nonce; /* FY_SC_NONCE_LEN bytes */
    uint64_t ts_us;       /* wall clock of the sender, us since the epoch */
    const uint8_t *mac;   /* FY_SC_MAC_LEN bytes, the last of the payload */
} fy_sc_auth;

/* Sets the auth flag of a header written by fy_sc_hdr_put. */
void fy_sc_hdr_set_auth(uint8_t hdr[FY_SC_HDR_LEN]);
/* Writes the trailer up to (not including) the MAC; returns its bytes. */
size_t fy_sc_tail_put(uint8_t out[FY_SC_TAIL_MAX], const char *sender,
                      const uint8_t nonce[FY_SC_NONCE_LEN], uint64_t ts_us);
/* Splits the payload of a frame with the auth flag: *inner is h with len
 * cut to the content before the trailer. */
fy_sc_err fy_sc_tail_get(const fy_sc_hdr *h, const uint8_t *p, fy_sc_hdr *inner, fy_sc_auth *a);

/* Copies a string view into out (FY_SC_STR_MAX + 1 bytes) as a C string. */
void fy_sc_view_cstr(fy_sc_view v, char *out);
bool fy_sc_view_eq(fy_sc_view v, const char *s);

/* ---- incremental reader of one frame ----
 * Loop: fy_sc_rx_space says where the next bytes go and how many are
 * wanted (never past the current frame, so pipelined frames stay in the
 * socket); after receiving n of them, fy_sc_rx_advance checks what it can
 * and sets *done when the frame is whole. Then hdr and payload (hdr.len
 * bytes, NULL when 0) are valid until fy_sc_rx_reset. */
typedef struct fy_sc_rx {
    uint32_t max_len;
    bool in_payload;
    size_t got; /* bytes of the current part (header or payload) received */
    uint8_t hdr_bytes[FY_SC_HDR_LEN];
    fy_sc_hdr hdr;
    uint8_t *payload;
    size_t cap;
} fy_sc_rx;

void fy_sc_rx_init(fy_sc_rx *rx, uint32_t max_len);
fy_sc_err fy_sc_rx_space(fy_sc_rx *rx, uint8_t **buf, size_t *n);
/* Bytes the payload buffer grows by in the next fy_sc_rx_space (0: none),
 * so a receiver can account for them first. */
size_t fy_sc_rx_growth(const fy_sc_rx *rx);
fy_sc_err fy_sc_rx_advance(fy_sc_rx *rx, size_t n, bool *done);
/* True while no byte of a frame has arrived. */
bool fy_sc_rx_idle(const fy_sc_rx *rx);
/* Forgets the current frame and frees its payload. */
void fy_sc_rx_reset(fy_sc_rx *rx);

#endif
