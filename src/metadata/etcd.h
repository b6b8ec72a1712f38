/* SPDX-License-Identifier: Apache-2.0 */
/* A small client of etcd's v3 JSON gateway (libcurl + jansson): put, get,
 * delete by prefix, leases and one-shot watches. Pure: no agent, no
 * threads of its own; every call is bounded by the client's timeout and
 * may be made from any thread. Endpoints are tried in order starting with
 * the last one that answered; a transport error moves on to the next. */
#ifndef FY_METADATA_ETCD_H
#define FY_METADATA_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/status.h"

#define FY_ETCD_MAX_ENDPOINTS 16u
#define FY_ETCD_MAX_ANSWER    (16u << 20) /* bytes of one answer (etcd stores at most 1.5 MiB) */

typedef struct fy_etcd fy_etcd;

/* A value read back: bytes (malloc'd, free()) and the key's revisions. */
typedef struct fy_etcd_kv {
    uint8_t *val;
    size_t len;
    int64_t create_rev; /* changes when the key is deleted and put again */
    int64_t mod_rev;    /* changes with every put */
    int64_t header_rev; /* the store's revision at the time of the read */
} fy_etcd_kv;

/* endpoints: comma-separated URLs ("http://127.0.0.1:2379"; no scheme
 * means http). INVALID_PARAM when none parses. */
ferry_status fy_etcd_new(const char *endpoints, uint32_t timeout_ms, fy_etcd **out);
void fy_etcd_free(fy_etcd *c);

/* lease 0: none. */
ferry_status fy_etcd_put(fy_etcd *c, const char *key, const void *val, size_t len, int64_t lease);
/* Puts key only when it does not exist, in one transaction (its create
 * revision compared with 0), so that of several callers exactly one
 * creates it: *created says whether this call did. lease 0: none. */
ferry_status fy_etcd_create(fy_etcd *c, const char *key, const void *val, size_t len, int64_t lease,
                            bool *created);
/* NOT_FOUND when the key is absent (kv->header_rev still set). */
ferry_status fy_etcd_get(fy_etcd *c, const char *key, fy_etcd_kv *kv);
/* fy_etcd_get without the value (kv->val empty, to free): the revisions
 * alone, a small answer whatever the value's size. */
ferry_status fy_etcd_get_rev(fy_etcd *c, const char *key, fy_etcd_kv *kv);
/* Number of keys under prefix. */
ferry_status fy_etcd_count(fy_etcd *c, const char *prefix, int64_t *count);
ferry_status fy_etcd_delete_prefix(fy_etcd *c, const char *prefix);
ferry_status fy_etcd_lease_grant(fy_etcd *c, int64_t ttl_s, int64_t *lease);
/* NOT_FOUND when the lease has expired. */
ferry_status fy_etcd_lease_keepalive(fy_etcd *c, int64_t lease);
ferry_status fy_etcd_lease_revoke(fy_etcd *c, int64_t lease);
/* Waits up to timeout_ms for a put of key at or after start_rev: OK when one
 * came, TIMEOUT otherwise. */
ferry_status fy_etcd_watch_put(fy_etcd *c, const char *key, int64_t start_rev, uint32_t timeout_ms);

/* Parses one answer of the gateway into a JSON object (jansson's json_t),
 * NULL when it is not one. Exposed for the fuzz target. */
struct json_t *fy_etcd_parse(const char *text, size_t len);
/* Reads a range answer's first key as fy_etcd_get does (kv->val to free):
 * OK, NOT_FOUND (no key) or BAD_METADATA. Exposed for the fuzz target. */
ferry_status fy_etcd_range_answer(const char *text, size_t len, fy_etcd_kv *kv);
/* Reads the first event of a watch stream's message: 1 a put, 0 none,
 * -1 malformed. Exposed for the fuzz target. */
int fy_etcd_watch_event(const char *text, size_t len);

#endif
