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

static void fyp_self_fill(const ferry_plugin_host *host, const char magic[4], uint8_t *p)
{
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
    fyp_self_fill(host, magic, p);
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
    fyp_self_fill(host, magic, self);
    return memcmp(self, info, FYP_SELF_INFO_LEN) == 0;
}
