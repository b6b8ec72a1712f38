/* SPDX-License-Identifier: Apache-2.0 */
/* etcd as a metadata service (mdsvc.h): the operations over the client of
 * etcd's v3 JSON gateway (src/metadata/etcd.c), which has them all. */
#include "sidechannel/mdsvc.h"

static ferry_status fy_etcd_op_new(const char *endpoints, uint32_t timeout_ms, void **cli)
{
    fy_etcd *c;
    ferry_status rc = fy_etcd_new(endpoints, timeout_ms, &c);
    if (rc == FERRY_OK)
        *cli = c;
    return rc;
}

static ferry_status fy_etcd_op_put(void *cli, const char *key, const void *val, size_t len,
                                   int64_t lease)
{
    return fy_etcd_put(cli, key, val, len, lease);
}

static ferry_status fy_etcd_op_get(void *cli, const char *key, fy_mdsvc_kv *kv)
{
    return fy_etcd_get(cli, key, kv);
}

static ferry_status fy_etcd_op_rev(void *cli, const char *key, fy_mdsvc_kv *kv)
{
    return fy_etcd_get_rev(cli, key, kv);
}

static ferry_status fy_etcd_op_wait(void *cli, const char *key, int64_t start_rev, uint32_t ms)
{
    return fy_etcd_watch_put(cli, key, start_rev, ms);
}

static ferry_status fy_etcd_op_del_prefix(void *cli, const char *prefix)
{
    return fy_etcd_delete_prefix(cli, prefix);
}

static ferry_status fy_etcd_op_grant(void *cli, int64_t ttl_s, int64_t *lease)
{
    return fy_etcd_lease_grant(cli, ttl_s, lease);
}

static ferry_status fy_etcd_op_keepalive(void *cli, int64_t lease)
{
    return fy_etcd_lease_keepalive(cli, lease);
}

static ferry_status fy_etcd_op_revoke(void *cli, int64_t lease)
{
    return fy_etcd_lease_revoke(cli, lease);
}

static void fy_etcd_op_free(void *cli)
{
    fy_etcd_free(cli);
}

const fy_mdsvc_ops fy_mdsvc_etcd_ops = {
    .name = "etcd",
    .new = fy_etcd_op_new,
    .put = fy_etcd_op_put,
    .get = fy_etcd_op_get,
    .rev = fy_etcd_op_rev,
    .wait_put = fy_etcd_op_wait,
    .del_prefix = fy_etcd_op_del_prefix,
    .del = NULL,
    .lease_grant = fy_etcd_op_grant,
    .lease_keepalive = fy_etcd_op_keepalive,
    .lease_revoke = fy_etcd_op_revoke,
    .free = fy_etcd_op_free,
};
