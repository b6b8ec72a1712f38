/* SPDX-License-Identifier: Apache-2.0 */
/* Building this agent's metadata blobs (full and partial). Loading peers'
 * blobs is in remote.c. */
#include <stdlib.h>
#include <string.h>

#include "common/api.h"
#include "common/clock.h"
#include "common/log.h"
#include "core/agent.h"
#include "core/backend.h"
#include "core/dlist.h"
#include "core/handles.h"
#include "core/md.h"
#include "core/registry.h"
#include "core/sync.h"
#include "metadata/auth.h"
#include "metadata/wire.h"
#include "ferry/ferry.h"

typedef struct fy_md_job {
    ferry_agent *agent;
    uint32_t be_mask;                /* local backends included */
    int blob_index[FY_MAX_BACKENDS]; /* local backend -> index in the blob, -1 */
    fy_region **regions;
    size_t num_regions;
    bool conn;
    fy_md md;
} fy_md_job;

static ferry_status fy_md_add_backend(fy_md_job *job, ferry_backend *be)
{
    fy_md_backend *out = &job->md.backends[job->md.num_backends];
    const char *name = be->plugin->desc->name;
    out->name = (fy_bytes){(const uint8_t *)name, (uint32_t)strlen(name)};
    if (job->conn) {
        void *info = NULL;
        size_t len = 0;
        fy_be_enter(be);
        ferry_status rc = be->ops->conn_info(be->priv, &info, &len);
        fy_be_leave(be);
        if (rc != FERRY_OK)
            return rc > 0 ? FERRY_ERR_BACKEND : rc;
        out->conn = (fy_bytes){info, (uint32_t)len};
    }
    job->blob_index[be->index] = (int)job->md.num_backends++;
    return FERRY_OK;
}

static ferry_status fy_md_add_backends(fy_md_job *job)
{
    for (uint32_t b = 0; b < FY_MAX_BACKENDS; b++)
        job->blob_index[b] = -1;
    for (uint32_t b = 0; b < job->agent->num_backends; b++) {
        if (!(job->be_mask & (1u << b)))
            continue;
        ferry_status rc = fy_md_add_backend(job, job->agent->backends[b]);
        if (rc != FERRY_OK)
            return rc;
    }
    return FERRY_OK;
}

static void fy_md_add_region(fy_md_job *job, size_t i)
{
    const fy_region *r = job->regions[i];
    fy_md_region *out = &job->md.regions[i];
    *out = (fy_md_region){r->range.addr,         r->range.len, r->range.dev_id, r->type, 0,
                          {r->meta, r->meta_len}};
    for (uint32_t s = 0; s < r->num_slots; s++) {
        int j = job->blob_index[r->slots[s].be];
        if (j < 0)
            continue;
        out->backend_mask |= 1u << j;
        job->md.pubs[i * job->md.num_backends + (size_t)j] =
            (fy_bytes){r->slots[s].pub, r->slots[s].pub_len};
    }
}

static ferry_status fy_md_add_regions(fy_md_job *job)
{
    size_t n = job->num_regions, nb = job->md.num_backends;
    job->md.regions = calloc(n ? n : 1, sizeof(*job->md.regions));
    job->md.pubs = nb ? calloc(n ? n * nb : 1, sizeof(*job->md.pubs)) : NULL;
    if (!job->md.regions || (nb && !job->md.pubs))
        return FERRY_ERR_NO_MEMORY;
    job->md.num_regions = n;
    for (size_t i = 0; i < n; i++)
        fy_md_add_region(job, i);
    return FERRY_OK;
}

static void fy_md_job_free(fy_md_job *job)
{
    if (job->conn)
        for (uint32_t j = 0; j < job->md.num_backends; j++)
            free((void *)job->md.backends[j].conn.ptr);
    free(job->md.regions);
    free(job->md.pubs);
    free(job->regions);
}

static ferry_status fy_md_encode_job(fy_md_job *job, void **blob, size_t *len)
{
    ferry_agent *agent = job->agent;
    job->md.kind = FY_MD_KIND_AGENT;
    job->md.name = (fy_bytes){(const uint8_t *)agent->name, (uint32_t)strlen(agent->name)};
    job->md.uid = agent->uid;
    job->md.has_conn = job->conn;
    /* With a key, peers check the blob's MAC, which covers the name. */
    job->md.auth = agent->auth.key_len > 0;
    job->md.auth_ts_us = fy_wall_us();
    void *out = NULL;
    size_t n = 0;
    ferry_status rc = fy_md_add_backends(job);
    if (rc == FERRY_OK)
        rc = fy_md_add_regions(job);
    if (rc == FERRY_OK)
        rc = fy_md_encode(&job->md, &out, &n);
    if (rc == FERRY_OK && job->md.auth)
        rc = fy_auth_blob_sign(&agent->auth, out, n);
    if (rc != FERRY_OK) {
        free(out);
        return rc;
    }
    *blob = out;
    *len = n;
    return FERRY_OK;
}

/* Every registered region, by type then (dev_id, addr). */
static ferry_status fy_md_all_regions(fy_md_job *job)
{
    fy_registry *reg = &job->agent->reg;
    size_t n = 0;
    for (int t = 0; t < FERRY_MEM_TYPE_COUNT; t++)
        n += reg->by_type[t].count;
    job->regions = malloc((n ? n : 1) * sizeof(*job->regions));
    if (!job->regions)
        return FERRY_ERR_NO_MEMORY;
    for (int t = 0; t < FERRY_MEM_TYPE_COUNT; t++)
        for (size_t i = 0; i < reg->by_type[t].count; i++)
            job->regions[job->num_regions++] = fy_region_of(reg->by_type[t].items[i]);
    return FERRY_OK;
}

ferry_status fy_md_get_local(ferry_agent *agent, void **blob, size_t *len)
{
    fy_md_job job = {.agent = agent, .conn = true};
    fy_lock_rd(&agent->lock);
    fy_sel_mask(agent, NULL, &job.be_mask);
    ferry_status rc = fy_md_all_regions(&job);
    if (rc == FERRY_OK)
        rc = fy_md_encode_job(&job, blob, len);
    fy_unlock(&agent->lock, false);
    fy_md_job_free(&job);
    return rc;
}

FY_API ferry_status ferry_md_get_local(ferry_agent *agent, void **blob, size_t *len)
{
    if (!FY_AGENT_OK(agent) || !blob || !len)
        return FERRY_ERR_INVALID_PARAM;
    return fy_md_get_local(agent, blob, len);
}

static int fy_region_order(const void *a, const void *b)
{
    const fy_region *x = *(fy_region *const *)a, *y = *(fy_region *const *)b;
    if (x->type != y->type)
        return x->type < y->type ? -1 : 1;
    if (x->range.dev_id != y->range.dev_id)
        return x->range.dev_id < y->range.dev_id ? -1 : 1;
    return x->range.addr < y->range.addr ? -1 : x->range.addr > y->range.addr;
}

static ferry_status fy_md_cover_list(fy_md_job *job, const ferry_dlist *l, size_t *n)
{
    for (size_t i = 0; i < l->count; i++) {
        ferry_desc d = fy_dlist_at(l, i);
        fy_region *r = fy_region_find(&job->agent->reg, l->type, d.addr, d.len, d.dev_id);
        if (!r) {
            FY_ERR("partial metadata: %#llx+%llu is not registered", (unsigned long long)d.addr,
                   (unsigned long long)d.len);
            return FERRY_ERR_NOT_FOUND;
        }
        /* Consecutive descriptors usually share a region: skip the repeat. */
        if (!*n || job->regions[*n - 1] != r)
            job->regions[(*n)++] = r;
    }
    return FERRY_OK;
}

/* The distinct regions covering every descriptor of the lists. */
static ferry_status fy_md_covering(fy_md_job *job, const ferry_dlist *const *lists, size_t num)
{
    size_t total = 0, n = 0;
    for (size_t k = 0; k < num; k++) {
        if (!lists[k])
            return FERRY_ERR_INVALID_PARAM;
        total += lists[k]->count;
    }
    job->regions = malloc((total ? total : 1) * sizeof(*job->regions));
    if (!job->regions)
        return FERRY_ERR_NO_MEMORY;
    for (size_t k = 0; k < num; k++) {
        ferry_status rc = fy_md_cover_list(job, lists[k], &n);
        if (rc != FERRY_OK)
            return rc;
    }
    qsort(job->regions, n, sizeof(*job->regions), fy_region_order);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!k || job->regions[k - 1] != job->regions[i])
            job->regions[k++] = job->regions[i];
    job->num_regions = k;
    return FERRY_OK;
}

FY_API ferry_status ferry_md_get_partial(ferry_agent *agent, const ferry_dlist *const *lists,
                                         size_t num_lists, bool include_conn_info,
                                         const ferry_backend_sel *sel, void **blob, size_t *len)
{
    if (!FY_AGENT_OK(agent) || !blob || !len || (num_lists && !lists))
        return FERRY_ERR_INVALID_PARAM;
    fy_md_job job = {.agent = agent, .conn = include_conn_info};
    fy_lock_rd(&agent->lock);
    ferry_status rc = fy_sel_mask(agent, sel, &job.be_mask);
    if (rc == FERRY_OK)
        rc = fy_md_covering(&job, lists, num_lists);
    if (rc == FERRY_OK)
        rc = fy_md_encode_job(&job, blob, len);
    fy_unlock(&agent->lock, false);
    fy_md_job_free(&job);
    return rc;
}
