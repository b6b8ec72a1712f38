/* SPDX-License-Identifier: Apache-2.0 */
/* Metadata services: a key-value store every agent reaches (etcd, or
 * PyTorch's TCPStore) that the metadata calls made with no address use.
 * sc_mdsvc.c holds what both share (keys, what was published, the peers
 * followed, the keeper thread); each store is a small table of operations
 * over its own client:
 *
 *   sc_etcd.c      etcd's v3 JSON gateway (client: src/metadata/etcd.c)
 *   sc_tcpstore.c  the TCPStore wire protocol (codec: src/metadata/tcpstore.c)
 *
 * Every operation is bounded by the client's timeout, may be called from
 * any thread at once, and on failure leaves its reason in the thread's
 * detail (fy_md_detail_get) for the caller's error line. */
#ifndef FY_SIDECHANNEL_MDSVC_H
#define FY_SIDECHANNEL_MDSVC_H

#include <stddef.h>
#include <stdint.h>

#include "ferry/status.h"
#include "metadata/etcd.h"

/* A value read back (fy_etcd_kv: bytes to free(), and the revisions the
 * store has; a store without revisions puts a hash of the bytes in
 * mod_rev and 0 in the others). */
typedef fy_etcd_kv fy_mdsvc_kv;

typedef struct fy_mdsvc_ops {
    const char *name; /* "etcd", "TCPStore": in log lines */
    /* A client of the store at where (endpoints as configured, see
     * docs/metadata.md): INVALID_PARAM when they do not parse. */
    ferry_status (*new)(const char *where, uint32_t timeout_ms, void **cli);
    /* lease 0: none. */
    ferry_status (*put)(void *cli, const char *key, const void *val, size_t len, int64_t lease);
    /* NOT_FOUND when absent (kv->header_rev still set where the store has
     * revisions). */
    ferry_status (*get)(void *cli, const char *key, fy_mdsvc_kv *kv);
    /* get's revisions without the value (NULL: the store has none; peers
     * are then followed with get and a hash of the value). */
    ferry_status (*rev)(void *cli, const char *key, fy_mdsvc_kv *kv);
    /* Waits up to ms for key to be written (at or after start_rev where the
     * store has revisions): OK, or TIMEOUT. */
    ferry_status (*wait_put)(void *cli, const char *key, int64_t start_rev, uint32_t ms);
    /* Deletes every key under prefix (NULL: the store deletes one key at a
     * time, with del). */
    ferry_status (*del_prefix)(void *cli, const char *prefix);
    ferry_status (*del)(void *cli, const char *key);
    /* Leases (NULL: the store has none; keys stay until deleted). */
    ferry_status (*lease_grant)(void *cli, int64_t ttl_s, int64_t *lease);
    /* NOT_FOUND when the lease has expired. */
    ferry_status (*lease_keepalive)(void *cli, int64_t lease);
    ferry_status (*lease_revoke)(void *cli, int64_t lease);
    void (*free)(void *cli);
} fy_mdsvc_ops;

extern const fy_mdsvc_ops fy_mdsvc_etcd_ops;
extern const fy_mdsvc_ops fy_mdsvc_tcpstore_ops;

#endif
