/* SPDX-License-Identifier: Apache-2.0 */
/* LIBFABRIC regions: one memory region per registration, its key and
 * range published to peers. The key is the provider's (FI_MR_PROV_KEY
 * where offered, else one of ours, never reused), bound to exactly the
 * registered range: the target's provider (or NIC) refuses any access
 * outside it, whatever range a peer claims. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/le.h"
#include "lf_internal.h"

#define FY_LF_PUB_MAGIC 0x3152464cu /* "LFR1" */
#define FY_LF_ACCESS    (FI_READ | FI_WRITE | FI_REMOTE_READ | FI_REMOTE_WRITE)

/* Registers [buf, buf + len) with the domain (and the endpoint, where the
 * provider binds regions to it). */
ferry_status fy_lf_mr(fy_lf *be, void *buf, size_t len, uint64_t access, struct fid_mr **mr)
{
    uint64_t key = be->prov_key ? 0 : ++be->next_key;
    bool events = be->mr_rma_event && be->rma_cntr && (access & FI_REMOTE_WRITE);
    int rc = fi_mr_reg(be->domain, buf, len, access, 0, key, events ? FI_RMA_EVENT : 0, mr, NULL);
    if (rc == 0 && (be->mr_bind_ep || events)) {
        if (be->mr_bind_ep)
            rc = fi_mr_bind(*mr, &be->ep->fid, 0);
        if (rc == 0 && events)
            rc = fi_mr_bind(*mr, &be->rma_cntr->fid, FI_REMOTE_WRITE | FI_REMOTE_READ);
        if (rc == 0)
            rc = fi_mr_enable(*mr);
        if (rc)
            fi_close(&(*mr)->fid);
    }
    if (rc == 0)
        return FERRY_OK;
    fy_lf_log(be, FERRY_LOG_ERROR, "fi_mr_reg of %zu bytes at %p: %s", len, buf, fi_strerror(-rc));
    return rc == -FI_ENOMEM ? FERRY_ERR_NO_MEMORY : FERRY_ERR_BACKEND;
}

static void *fy_lf_pub_encode(const fy_lf_region *g, uint64_t key)
{
    uint8_t *p = malloc(FY_LF_PUB_LEN);
    if (!p)
        return NULL;
    fy_le_put(p, FY_LF_PUB_MAGIC, 4);
    fy_le_put(p + 4, g->addr, 8);
    fy_le_put(p + 12, g->len, 8);
    fy_le_put(p + 20, key, 8);
    return p;
}

ferry_status fy_lf_reg(void *priv, ferry_mem_type type, const ferry_desc *desc, const void *meta,
                       size_t meta_len, void **region, void **pub, size_t *pub_len)
{
    fy_lf *be = priv;
    (void)meta, (void)meta_len;
    if (type != FERRY_MEM_DRAM)
        return FERRY_ERR_NOT_SUPPORTED;
    if (!desc->len || !desc->addr)
        return FERRY_ERR_INVALID_PARAM;
    fy_lf_region *g = calloc(1, sizeof(*g));
    if (!g)
        return FERRY_ERR_NO_MEMORY;
    g->addr = desc->addr;
    g->len = desc->len;
    ferry_status rc = fy_lf_mr(be, (void *)(uintptr_t)desc->addr, desc->len, FY_LF_ACCESS, &g->mr);
    void *bytes = rc == FERRY_OK ? fy_lf_pub_encode(g, fi_mr_key(g->mr)) : NULL;
    if (!bytes) {
        if (rc == FERRY_OK)
            fi_close(&g->mr->fid);
        free(g);
        return rc == FERRY_OK ? FERRY_ERR_NO_MEMORY : rc;
    }
    g->desc = fi_mr_desc(g->mr);
    *region = g;
    *pub = bytes;
    *pub_len = FY_LF_PUB_LEN;
    return FERRY_OK;
}

void fy_lf_dereg(void *priv, void *region)
{
    (void)priv;
    fy_lf_region *g = region;
    if (!g)
        return;
    fi_close(&g->mr->fid);
    free(g);
}

/* A peer's region: the bytes are hostile until checked. */
ferry_status fy_lf_rregion_load(void *priv, void *remote, ferry_mem_type type,
                                const ferry_desc *desc, const void *pub, size_t pub_len,
                                void **rregion)
{
    fy_lf *be = priv;
    (void)remote;
    const uint8_t *p = pub;
    if (type != FERRY_MEM_DRAM)
        return FERRY_ERR_NOT_SUPPORTED;
    if (pub_len != FY_LF_PUB_LEN || fy_le_get(p, 4) != FY_LF_PUB_MAGIC) {
        fy_lf_log(be, FERRY_LOG_ERROR, "a peer's region key: %zu bytes, not ours", pub_len);
        return FERRY_ERR_BAD_METADATA;
    }
    fy_lf_pub *r = malloc(sizeof(*r));
    if (!r)
        return FERRY_ERR_NO_MEMORY;
    *r = (fy_lf_pub){fy_le_get(p + 4, 8), fy_le_get(p + 12, 8), fy_le_get(p + 20, 8)};
    if (r->addr != desc->addr || r->len != desc->len)
        fy_lf_log(be, FERRY_LOG_DEBUG, "region key for [%#llx, +%llu) names [%#llx, +%llu)",
                  (unsigned long long)desc->addr, (unsigned long long)desc->len,
                  (unsigned long long)r->addr, (unsigned long long)r->len);
    *rregion = r;
    return FERRY_OK;
}

void fy_lf_rregion_unload(void *priv, void *remote, void *rregion)
{
    (void)priv, (void)remote;
    free(rregion);
}
