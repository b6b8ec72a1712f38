/* SPDX-License-Identifier: Apache-2.0 */
/* Metadata wire format: encode/decode of agent metadata blobs and
 * serialized descriptor lists. Internal (fy_*), not part of the ABI.
 *
 * The decoded form points into the input buffer (zero copy): an fy_md from
 * fy_md_decode is valid only while that buffer lives. fy_md_encode reads an
 * fy_md whose byte views point anywhere. See docs/wire-format.md. */
#ifndef FY_WIRE_H
#define FY_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/status.h"

#define FY_MD_MAX_BACKENDS 32u
#define FY_MD_MAX_NAME     255u
#define FY_MD_MAX_REGIONS  (1u << 24)
#define FY_MD_MAX_BLOB     (1ull << 30) /* 1 GiB */

typedef enum fy_md_kind {
    FY_MD_KIND_AGENT = 1, /* agent metadata (full or partial) */
    FY_MD_KIND_DLIST = 2, /* a serialized descriptor list */
} fy_md_kind;

typedef struct fy_bytes {
    const uint8_t *ptr; /* NULL when len is 0 */
    uint32_t len;
} fy_bytes;

typedef struct fy_md_backend {
    fy_bytes name; /* plugin name, 1..FY_MD_MAX_NAME bytes */
    fy_bytes conn; /* connection info (empty when !has_conn or none needed) */
} fy_md_backend;

typedef struct fy_md_region {
    uint64_t addr;
    uint64_t len;
    uint64_t dev_id;
    uint32_t mem_type;     /* ferry_mem_type, < FERRY_MEM_TYPE_COUNT */
    uint32_t backend_mask; /* bit b: backends[b] holds this region */
    fy_bytes meta;         /* registration bytes (path, key) */
} fy_md_region;

typedef struct fy_md {
    fy_md_kind kind;
    fy_bytes name; /* agent name (empty for a dlist) */
    uint64_t uid;  /* agent instance uid */
    bool has_conn; /* connection info included (full blob, or partial with it) */
    bool strided;  /* dlist only: the list is strided (see below) */
    uint32_t num_backends;
    fy_md_backend backends[FY_MD_MAX_BACKENDS];
    size_t num_regions;
    fy_md_region *regions;
    /* pubs[r * num_backends + b]: region r's public bytes for backend b
     * (empty when bit b of its mask is clear). NULL when num_backends is 0. */
    fy_bytes *pubs;
    /* dlist only, when strided: regions is empty and these describe it */
    uint64_t stride_base, stride, stride_len, stride_dev;
    uint64_t stride_count;
    uint32_t stride_mem_type;
    /* agent only: an AUTH section (creation time, HMAC-SHA256) ends the
     * blob. The encoder writes a zero MAC: fy_md_mac_parts says what to
     * sign, the signer writes it at mac, then fy_md_reseal. */
    bool auth;
    uint64_t auth_ts_us;     /* creation time, microseconds since the epoch */
    const uint8_t *auth_mac; /* decoded: FY_MD_MAC_LEN bytes inside the buffer */
} fy_md;

#define FY_MD_MAC_LEN 32u

/* Encodes md into a malloc'd buffer. INVALID_PARAM when md breaks a limit
 * above (name too long, too many backends/regions, mem_type out of range,
 * blob over FY_MD_MAX_BLOB), NO_MEMORY. */
ferry_status fy_md_encode(const fy_md *md, void **buf, size_t *len);

/* Decodes buf. On success *md owns arrays (free with fy_md_free) and points
 * into buf. Hostile input returns BAD_METADATA, never reads out of bounds
 * and leaks nothing. */
ferry_status fy_md_decode(const void *buf, size_t len, fy_md *md);

/* The bytes an AUTH section's MAC covers: the header up to its length and
 * checksum fields (which depend on the MAC), then the body up to the MAC
 * itself (every section, and the AUTH section's type, length and time).
 * buf must be a blob whose last section is AUTH (fy_md_encode with auth,
 * or fy_md_decode reported md.auth). *mac points at the MAC field. */
void fy_md_mac_parts(const uint8_t *buf, size_t len, fy_bytes parts[2], size_t *mac_off);

/* Recomputes the checksum after the MAC was written. */
void fy_md_reseal(uint8_t *buf, size_t len);

/* Frees the arrays of a decoded md (not the md itself); NULL-safe. */
void fy_md_free(fy_md *md);

#endif
