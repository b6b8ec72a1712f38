/* SPDX-License-Identifier: Apache-2.0 */
/* Plugin support: self connection info (see fyp_self.h). */
#include "fyp_self.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FYP_SELF_VERSION 1u

static void fyp_put_le(uint8_t *p, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void fyp_self_put(const ferry_plugin_host *host, const char magic[4], void *out)
{
    uint8_t *p = out;

    memcpy(p, magic, 4);
    fyp_put_le(p + 4, FYP_SELF_VERSION, 4);
    fyp_put_le(p + 8, host->agent_uid, 8);
    fyp_put_le(p + 16, (uint64_t)getpid(), 4);
}

ferry_status fyp_self_info(const ferry_plugin_host *host, const char magic[4], void **info,
                           size_t *len)
{
    uint8_t *p;

    if (!info || !len)
        return FERRY_ERR_INVALID_PARAM;
    p = malloc(FYP_SELF_INFO_LEN);
    if (!p)
        return FERRY_ERR_NO_MEMORY;
    fyp_self_put(host, magic, p);
    *info = p;
    *len = FYP_SELF_INFO_LEN;
    return FERRY_OK;
}

bool fyp_self_info_is(const ferry_plugin_host *host, const char magic[4], const void *info,
                      size_t len)
{
    uint8_t self[FYP_SELF_INFO_LEN];

    if (!info || len != FYP_SELF_INFO_LEN)
        return false;
    fyp_self_put(host, magic, self);
    return memcmp(self, info, FYP_SELF_INFO_LEN) == 0;
}

/* The handle of a loopback remote: which backend it belongs to. */
struct fyp_self_remote {
    const void *owner;
};

ferry_status fyp_self_remote_load(const ferry_plugin_host *host, const char magic[4],
                                  const void *owner, const char *name, uint64_t uid,
                                  const void *info, size_t len, void **remote)
{
    struct fyp_self_remote *r;

    if (!remote)
        return FERRY_ERR_INVALID_PARAM;
    if (uid != host->agent_uid || !fyp_self_info_is(host, magic, info, len)) {
        host->log(host->agent_ctx, FERRY_LOG_DEBUG,
                  "agent '%s' is not this agent: not reachable (local only)",
                  name ? name : "(null)");
        return FERRY_ERR_NOT_SUPPORTED;
    }
    r = malloc(sizeof(*r));
    if (!r)
        return FERRY_ERR_NO_MEMORY;
    r->owner = owner;
    *remote = r;
    return FERRY_OK;
}

bool fyp_self_remote_is(const void *remote, const void *owner)
{
    return remote && ((const struct fyp_self_remote *)remote)->owner == owner;
}

void fyp_self_remote_unload(void *priv, void *remote)
{
    (void)priv;
    free(remote);
}
