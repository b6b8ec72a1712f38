/* SPDX-License-Identifier: Apache-2.0 */
/* LIBFABRIC regions: one memory region per registration and rail, its
 * keys and range published to peers. A key is the provider's
 * (FI_MR_PROV_KEY where offered, else one of ours, never reused), bound to
 * exactly the registered range: the target's provider (or NIC) refuses
 * any access outside it, whatever range a peer claims.
 *
 * Published form: magic u32 | addr u64 | len u64 | key u64 per rail, in
 * rail order (one rail: 28 bytes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/le.h"
#include "lf_internal.h"

#define FY_LF_PUB_MAGIC 0x3152464cu /* "LFR1" */
#define FY_LF_ACCESS    (FI_READ | FI_WRITE | FI_REMOTE_READ | FI_REMOTE_WRITE)

/* Registers [buf, buf + len) with the rail's domain (and its endpoint,
 * where the provider binds regions to it). */
ferry_status fy_lf_mr(fy_lf_rail *rail, void *buf, size_t len, uint64_t access, struct fid_mr **mr)
{
    fy_lf *be = rail->be;
    uint64_t key = rail->prov_key ? 0 : ++be->next_key;
    bool events = rail->mr_rma_event && rail->rma_cntr && (access & FI_REMOTE_WRITE);
    int rc = fi_mr_reg(rail->domain, buf, len, access, 0, key, events ? FI_RMA_EVENT : 0, mr, NULL);
    if (rc == 0 && (rail->mr_bind_ep || events)) {
        if (rail->mr_bind_ep)
            rc = fi_mr_bind(*mr, &rail->ep->fid, 0);
        if (rc == 0 && events)
            rc = fi_mr_bind(*mr, &rail->rma_cntr->fid, FI_REMOTE_WRITE | FI_REMOTE_READ);
        if (rc == 0)
            rc = fi_mr_enable(*mr);
        if (rc)
            fi_close(&(*mr)->fid);
    }
    if (rc == 0)
        return FERRY_OK;
    fy_lf_log(be, FERRY_LOG_ERROR, "fi_mr_reg of %zu bytes at %p on rail %u: %s", len, buf,
              rail->index, fi_strerror(-rc));
    return rc == -FI_ENOMEM ? FERRY_ERR_NO_MEMORY : FERRY_ERR_BACKEND;
}

uint32_t fy_lf_reg_pins(void *priv)
{
    return ((fy_lf *)priv)->nrails;
}

static size_t fy_lf_pub_len(uint32_t nkeys)
{
    return FY_LF_PUB_HDR + 8u * nkeys;
}

static void *fy_lf_pub_encode(const fy_lf_region *g)
{
    uint8_t *p = malloc(fy_lf_pub_len(g->nrails));
    if (!p)
        return NULL;
    fy_le_put(p, FY_LF_PUB_MAGIC, 4);
    fy_le_put(p + 4, g->addr, 8);
    fy_le_put(p + 12, g->len, 8);
    for (uint32_t i = 0; i < g->nrails; i++)
        fy_le_put(p + FY_LF_PUB_HDR + 8u * i, fi_mr_key(g->rail[i].mr), 8);
    return p;
}

static void fy_lf_region_free(fy_lf_region *g)
{
    for (uint32_t i = 0; i < g->nrails; i++)
        fi_close(&g->rail[i].mr->fid);
    free(g);
}

/* The region on every rail; NULL rc when it could not be had. */
static fy_lf_region *fy_lf_region_new(fy_lf *be, const ferry_desc *desc, ferry_status *rc)
{
    fy_lf_region *g = calloc(1, sizeof(*g) + be->nrails * sizeof(g->rail[0]));
    *rc = g ? FERRY_OK : FERRY_ERR_NO_MEMORY;
    if (!g)
        return NULL;
    g->addr = desc->addr;
    g->len = desc->len;
    void *buf = (void *)(uintptr_t)desc->addr;
    for (; g->nrails < be->nrails && *rc == FERRY_OK; g->nrails++) {
        *rc = fy_lf_mr(&be->rails[g->nrails], buf, desc->len, FY_LF_ACCESS, &g->rail[g->nrails].mr);
        if (*rc != FERRY_OK)
            break;
        g->rail[g->nrails].desc = fi_mr_desc(g->rail[g->nrails].mr);
    }
    if (*rc == FERRY_OK)
        return g;
    fy_lf_region_free(g);
    return NULL;
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
    ferry_status rc;
    fy_lf_region *g = fy_lf_region_new(be, desc, &rc);
    void *bytes = g ? fy_lf_pub_encode(g) : NULL;
    if (!bytes) {
        if (g)
            fy_lf_region_free(g);
        return g ? FERRY_ERR_NO_MEMORY : rc;
    }
    *region = g;
    *pub = bytes;
    *pub_len = fy_lf_pub_len(g->nrails);
    return FERRY_OK;
}

void fy_lf_dereg(void *priv, void *region)
{
    (void)priv;
    if (region)
        fy_lf_region_free(region);
}

/* The number of keys of a peer's published region: its length must be
 * the header and whole keys, one per rail at least of those we share
 * with it, FY_LF_RAILS_MAX at most; 0 when it is not. */
static uint32_t fy_lf_pub_keys(const uint8_t *p, size_t len, const fy_lf_remote *r)
{
    if (!p || len < fy_lf_pub_len(1) || (len - FY_LF_PUB_HDR) % 8 ||
        fy_le_get(p, 4) != FY_LF_PUB_MAGIC)
        return 0;
    size_t n = (len - FY_LF_PUB_HDR) / 8;
    return n <= FY_LF_RAILS_MAX && (!r || n >= r->nrails) ? (uint32_t)n : 0;
}

/* A peer's region: the bytes are hostile until checked. */
ferry_status fy_lf_rregion_load(void *priv, void *remote, ferry_mem_type type,
                                const ferry_desc *desc, const void *pub, size_t pub_len,
                                void **rregion)
{
    fy_lf *be = priv;
    const uint8_t *p = pub;
    if (type != FERRY_MEM_DRAM)
        return FERRY_ERR_NOT_SUPPORTED;
    uint32_t n = fy_lf_pub_keys(p, pub_len, remote);
    if (!n) {
        fy_lf_log(be, FERRY_LOG_ERROR,
                  "a peer's region key: %zu bytes, not ours (or fewer keys than its rails)",
                  pub_len);
        return FERRY_ERR_BAD_METADATA;
    }
    fy_lf_pub *r = malloc(sizeof(*r) + n * sizeof(r->key[0]));
    if (!r)
        return FERRY_ERR_NO_MEMORY;
    *r = (fy_lf_pub){fy_le_get(p + 4, 8), fy_le_get(p + 12, 8), n};
    for (uint32_t i = 0; i < n; i++)
        r->key[i] = fy_le_get(p + FY_LF_PUB_HDR + 8u * i, 8);
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
