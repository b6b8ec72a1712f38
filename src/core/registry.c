/* SPDX-License-Identifier: Apache-2.0 */
/* Memory registry: per memory type, a sorted index of non-overlapping
 * regions keyed by (dev_id, addr), so the region covering a descriptor is
 * found by binary search in O(log n).
 *
 * Rules (see docs/api/registration.md):
 *  - registering a region identical to a registered one (type, dev_id, addr,
 *    len) counts one more registration and adds any backend it lacks;
 *  - a region overlapping a registered one without being identical is
 *    refused (NOT_ALLOWED): lookups stay unambiguous;
 *  - deregistration names whole regions; a descriptor that is not exactly a
 *    registered region (partial deregistration) is refused (NOT_FOUND);
 *  - regions are refcounted: prepared lists and requests keep the regions
 *    they use mapped until they are released. */
#include <stdlib.h>
#include <string.h>

#include "common/api.h"
#include "common/log.h"
#include "core/agent.h"
#include "core/backend.h"
#include "core/dlist.h"
#include "core/handles.h"
#include "core/index.h"
#include "core/registry.h"
#include "core/sync.h"
#include "core/vram.h"
#include "ferry/ferry.h"

/* ---- regions ---- */

fy_region *fy_region_find(const fy_registry *reg, ferry_mem_type type, uint64_t addr, uint64_t len,
                          uint64_t dev_id)
{
    return fy_region_of(fy_index_find(&reg->by_type[type], addr, len, dev_id));
}

void *fy_slot_priv(const fy_be_slot *slots, uint32_t n, uint32_t be)
{
    for (uint32_t i = 0; i < n; i++)
        if (slots[i].be == be)
            return slots[i].priv;
    return NULL;
}

void fy_region_ref(fy_region *r)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

static void fy_slot_dereg(fy_region *r, fy_be_slot *slot)
{
    ferry_backend *be = r->agent->backends[slot->be];
    fy_be_enter(be);
    be->ops->dereg(be->priv, slot->priv);
    fy_be_leave(be);
    free(slot->pub);
    fy_tm_ledger_sub(&r->agent->tm, slot->be, r->type, r->range.dev_id,
                     r->range.len * be->reg_pins);
}

static void fy_region_free(fy_region *r)
{
    for (uint32_t i = 0; i < r->num_slots; i++)
        fy_slot_dereg(r, &r->slots[i]);
    free(r->slots);
    free(r->meta);
    free(r);
}

void fy_region_unref(fy_region *r)
{
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
        fy_region_free(r);
}

/* Registers r with backend be, appending a slot. passable: a refusal
 * (NOT_SUPPORTED) will not fail the registration, so it is no error. */
static ferry_status fy_region_add_backend(fy_region *r, ferry_backend *be, bool passable)
{
    fy_be_slot *slots = realloc(r->slots, (r->num_slots + 1) * sizeof(*slots));
    if (!slots)
        return FERRY_ERR_NO_MEMORY;
    r->slots = slots;
    fy_be_slot *s = &slots[r->num_slots];
    *s = (fy_be_slot){.be = be->index};
    ferry_desc d = {r->range.addr, r->range.len, r->range.dev_id};
    void *pub = NULL;
    size_t pub_len = 0;
    /* Before the backend pins anything: a cap bounds what is pinned. */
    /* Counted once per registration the backend makes (one per rail). */
    uint64_t pinned = d.len * be->reg_pins;
    ferry_status cap = fy_tm_ledger_check(&r->agent->tm, be->index, r->type, pinned);
    if (cap != FERRY_OK)
        return cap;
    fy_be_enter(be);
    ferry_status rc =
        be->ops->reg(be->priv, r->type, &d, r->meta, r->meta_len, &s->priv, &pub, &pub_len);
    fy_be_leave(be);
    if (rc != FERRY_OK) {
        bool passed = passable && rc == FERRY_ERR_NOT_SUPPORTED;
        fy_log(passed ? FERRY_LOG_INFO : FERRY_LOG_ERROR, be->plugin->name,
               "registering %#llx+%llu %s: %s", (unsigned long long)r->range.addr,
               (unsigned long long)r->range.len, passed ? "passed over" : "failed",
               ferry_strerror(rc));
        return rc > 0 ? FERRY_ERR_BACKEND : rc;
    }
    s->pub = pub;
    s->pub_len = (uint32_t)pub_len;
    r->num_slots++;
    fy_tm_ledger_add(&r->agent->tm, be->index, r->type, d.dev_id, pinned);
    r->backend_mask |= 1u << be->index;
    return FERRY_OK;
}

/* Undoes the last slot added by fy_region_add_backend. */
static void fy_region_drop_last(fy_region *r)
{
    fy_be_slot *s = &r->slots[--r->num_slots];
    r->backend_mask &= ~(1u << s->be);
    fy_slot_dereg(r, s);
}

static fy_region *fy_region_new(ferry_agent *agent, ferry_mem_type type, ferry_desc d,
                                const void *meta, size_t meta_len)
{
    fy_region *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    *r = (fy_region){
        .range = {d.addr, d.len, d.dev_id}, .type = type, .reg_count = 1, .agent = agent};
    atomic_init(&r->refs, 1);
    if (meta_len) {
        r->meta = malloc(meta_len);
        if (!r->meta) {
            free(r);
            return NULL;
        }
        memcpy(r->meta, meta, meta_len);
        r->meta_len = (uint32_t)meta_len;
    }
    return r;
}

/* ---- backend choice ---- */

static uint32_t fy_type_mask(ferry_agent *agent, ferry_mem_type type, uint32_t mask)
{
    for (uint32_t b = 0; b < agent->num_backends; b++)
        if (!(agent->backends[b]->mem_mask & FERRY_MEM_MASK(type)))
            mask &= ~(1u << b);
    return mask;
}

/* ---- register ---- */

typedef struct fy_reg_job {
    ferry_agent *agent;
    const ferry_dlist *list;
    uint32_t mask;
    bool named;       /* the caller named the backends: each must take every region */
    fy_range **fresh; /* new regions' ranges, sorted before merging */
    size_t num_fresh;
    uint64_t fresh_bytes;  /* of the new regions that count against the agent's cap */
    fy_region **grown;     /* existing regions given one more registration */
    uint32_t *grown_slots; /* slots they had before, to undo */
    size_t num_grown;
} fy_reg_job;

/* Adds the backends of mask that r lacks. Where the caller named none, a
 * backend that cannot serve this region though it takes its memory type
 * (NOT_SUPPORTED: GDS on a file cuFile refuses) is passed over as long as
 * another backend holds it; a backend the caller named must take it. */
static ferry_status fy_region_add_mask(fy_region *r, uint32_t mask, bool named)
{
    ferry_status declined = FERRY_OK;
    for (uint32_t b = 0; b < r->agent->num_backends; b++) {
        if (!(mask & (1u << b)) || (r->backend_mask & (1u << b)))
            continue;
        ferry_status rc = fy_region_add_backend(r, r->agent->backends[b], !named);
        if (rc == FERRY_ERR_NOT_SUPPORTED && !named)
            declined = rc;
        else if (rc != FERRY_OK)
            return rc;
    }
    return r->backend_mask ? FERRY_OK : declined;
}

/* The agent's cap, checked before the backends pin the next region. */
static ferry_status fy_reg_ledger(fy_reg_job *job, uint64_t len)
{
    ferry_agent *agent = job->agent;
    uint64_t cap = agent->cfg.reg_cap_bytes;
    if (!cap || !fy_tm_pinned(job->list->type))
        return FERRY_OK;
    uint64_t now = agent->reg.bytes[FERRY_MEM_DRAM] + agent->reg.bytes[FERRY_MEM_VRAM];
    if (now + job->fresh_bytes + len <= cap) {
        job->fresh_bytes += len;
        return FERRY_OK;
    }
    FY_ERR("register: %llu more bytes would pass agent %s's registration cap of %llu bytes "
           "(%llu registered; reg_cap_bytes or FERRY_MAX_REGISTERED_BYTES)",
           (unsigned long long)(job->fresh_bytes + len), agent->name, (unsigned long long)cap,
           (unsigned long long)now);
    return FERRY_ERR_NO_RESOURCES;
}

static ferry_status fy_reg_one_new(fy_reg_job *job, size_t i, ferry_desc d)
{
    ferry_status rc = fy_reg_ledger(job, d.len);
    if (rc != FERRY_OK)
        return rc;
    const void *meta = NULL;
    size_t meta_len = 0;
    if (!job->list->strided)
        ferry_dlist_get_meta(job->list, i, &meta, &meta_len);
    fy_region *r = fy_region_new(job->agent, job->list->type, d, meta, meta_len);
    if (!r)
        return FERRY_ERR_NO_MEMORY;
    job->fresh[job->num_fresh++] = &r->range;
    return fy_region_add_mask(r, job->mask, job->named);
}

static ferry_status fy_reg_one_existing(fy_reg_job *job, fy_region *r)
{
    job->grown[job->num_grown] = r;
    job->grown_slots[job->num_grown++] = r->num_slots;
    r->reg_count++;
    return fy_region_add_mask(r, job->mask, job->named);
}

static ferry_status fy_reg_one(fy_reg_job *job, size_t i)
{
    ferry_desc d = fy_dlist_at(job->list, i);
    fy_index *ix = &job->agent->reg.by_type[job->list->type];
    fy_region *same = fy_region_of(fy_index_exact(ix, d.addr, d.len, d.dev_id));
    if (same)
        return fy_reg_one_existing(job, same);
    if (fy_index_overlap(ix, d.addr, d.len, d.dev_id)) {
        FY_ERR("register %#llx+%llu: overlaps a registered region without matching it",
               (unsigned long long)d.addr, (unsigned long long)d.len);
        return FERRY_ERR_NOT_ALLOWED;
    }
    return fy_reg_one_new(job, i, d);
}

static void fy_reg_undo(fy_reg_job *job)
{
    for (size_t i = 0; i < job->num_fresh; i++)
        fy_region_unref(fy_region_of(job->fresh[i]));
    for (size_t i = job->num_grown; i-- > 0;) {
        fy_region *r = job->grown[i];
        while (r->num_slots > job->grown_slots[i])
            fy_region_drop_last(r);
        r->reg_count--;
    }
}

/* New regions of one list must not overlap each other either. */
static ferry_status fy_reg_check_fresh(fy_reg_job *job)
{
    fy_index_sort(job->fresh, job->num_fresh);
    for (size_t i = 1; i < job->num_fresh; i++) {
        const fy_range *a = job->fresh[i - 1], *b = job->fresh[i];
        if (a->dev_id == b->dev_id && a->addr + a->len > b->addr) {
            FY_ERR("register: descriptors %#llx and %#llx of one list overlap",
                   (unsigned long long)a->addr, (unsigned long long)b->addr);
            return FERRY_ERR_NOT_ALLOWED;
        }
    }
    return FERRY_OK;
}

static ferry_status fy_reg_commit(fy_reg_job *job)
{
    fy_registry *reg = &job->agent->reg;
    ferry_mem_type t = job->list->type;
    ferry_status rc = fy_index_merge(&reg->by_type[t], job->fresh, job->num_fresh);
    if (rc != FERRY_OK)
        return rc;
    uint64_t bytes = 0;
    for (size_t i = 0; i < job->num_fresh; i++)
        bytes += job->fresh[i]->len;
    reg->bytes[t] += bytes;
    reg->regions[t] += job->num_fresh;
    fy_tm_agent_ledger(&job->agent->tm, t, (int64_t)job->num_fresh, (int64_t)bytes);
    return FERRY_OK;
}

static ferry_status fy_reg_run(fy_reg_job *job)
{
    ferry_status rc = FERRY_OK;
    for (size_t i = 0; i < job->list->count && rc == FERRY_OK; i++)
        rc = fy_reg_one(job, i);
    if (rc == FERRY_OK)
        rc = fy_reg_check_fresh(job);
    if (rc == FERRY_OK)
        rc = fy_reg_commit(job);
    if (rc != FERRY_OK)
        fy_reg_undo(job);
    return rc;
}

static ferry_status fy_reg_prepare(ferry_agent *agent, const ferry_dlist *list,
                                   const ferry_backend_sel *sel, fy_reg_job *job)
{
    uint32_t mask;
    ferry_status rc = fy_sel_mask(agent, sel, &mask);
    if (rc != FERRY_OK)
        return rc;
    *job = (fy_reg_job){.agent = agent,
                        .list = list,
                        .mask = fy_type_mask(agent, list->type, mask),
                        .named = sel && sel->backends && sel->num_backends};
    if (!job->mask) {
        FY_ERR("register: no backend of agent %s accepts %s memory", agent->name,
               ferry_mem_type_name(list->type));
        return FERRY_ERR_NOT_FOUND;
    }
    rc = fy_gpu_check_dlist(list); /* VRAM: the CUDA driver vouches for every descriptor */
    if (rc != FERRY_OK)
        return rc;
    size_t n = list->count ? list->count : 1;
    job->fresh = malloc(n * sizeof(*job->fresh));
    job->grown = malloc(n * sizeof(*job->grown));
    job->grown_slots = malloc(n * sizeof(*job->grown_slots));
    return job->fresh && job->grown && job->grown_slots ? FERRY_OK : FERRY_ERR_NO_MEMORY;
}

static void fy_reg_job_free(fy_reg_job *job)
{
    free(job->fresh);
    free(job->grown);
    free(job->grown_slots);
}

FY_API ferry_status ferry_register(ferry_agent *agent, const ferry_dlist *list,
                                   const ferry_backend_sel *sel)
{
    if (!FY_AGENT_OK(agent) || !list)
        return FERRY_ERR_INVALID_PARAM;
    fy_reg_job job = {0};
    fy_lock_wr(&agent->lock);
    ferry_status rc = fy_reg_prepare(agent, list, sel, &job);
    if (rc == FERRY_OK)
        rc = fy_reg_run(&job);
    fy_unlock(&agent->lock, true);
    fy_reg_job_free(&job);
    return rc;
}

/* ---- deregister ---- */

/* Removes regions marked by reg_count 0 from an index in one pass. */
static void fy_index_compact(fy_registry *reg, ferry_mem_type t)
{
    fy_index *ix = &reg->by_type[t];
    size_t k = 0;
    for (size_t i = 0; i < ix->count; i++) {
        fy_region *r = fy_region_of(ix->items[i]);
        if (r->reg_count) {
            ix->items[k++] = &r->range;
            continue;
        }
        reg->bytes[t] -= r->range.len;
        reg->regions[t]--;
        fy_tm_agent_ledger(&r->agent->tm, t, -1, -(int64_t)r->range.len);
        fy_region_unref(r);
    }
    ix->count = k;
}

/* Drops the backends of mask from r; refused while r is in use. */
static ferry_status fy_region_drop_backends(fy_region *r, uint32_t mask)
{
    if (atomic_load(&r->refs) > 1) {
        FY_ERR("deregister from chosen backends: region %#llx is used by prepared lists or "
               "requests; release them first",
               (unsigned long long)r->range.addr);
        return FERRY_ERR_NOT_ALLOWED;
    }
    for (uint32_t i = 0; i < r->num_slots;) {
        if (!(mask & (1u << r->slots[i].be))) {
            i++;
            continue;
        }
        fy_be_slot s = r->slots[i];
        r->slots[i] = r->slots[r->num_slots - 1];
        r->slots[r->num_slots - 1] = s;
        fy_region_drop_last(r);
    }
    if (!r->backend_mask)
        r->reg_count = 0;
    return FERRY_OK;
}

static ferry_status fy_dereg_find_all(ferry_agent *agent, const ferry_dlist *list)
{
    fy_index *ix = &agent->reg.by_type[list->type];
    for (size_t i = 0; i < list->count; i++) {
        ferry_desc d = fy_dlist_at(list, i);
        if (!fy_index_exact(ix, d.addr, d.len, d.dev_id)) {
            FY_ERR("deregister: %#llx+%llu (dev %llu) is not a registered region",
                   (unsigned long long)d.addr, (unsigned long long)d.len,
                   (unsigned long long)d.dev_id);
            return FERRY_ERR_NOT_FOUND;
        }
    }
    return FERRY_OK;
}

static ferry_status fy_dereg_run(ferry_agent *agent, const ferry_dlist *list, uint32_t sel_mask,
                                 bool chosen)
{
    fy_index *ix = &agent->reg.by_type[list->type];
    ferry_status rc = FERRY_OK;
    for (size_t i = 0; i < list->count && rc == FERRY_OK; i++) {
        ferry_desc d = fy_dlist_at(list, i);
        fy_region *r = fy_region_of(fy_index_exact(ix, d.addr, d.len, d.dev_id));
        if (!r || !r->reg_count)
            continue; /* listed twice: already done */
        if (chosen)
            rc = fy_region_drop_backends(r, sel_mask);
        else
            r->reg_count--;
    }
    fy_index_compact(&agent->reg, list->type);
    return rc;
}

FY_API ferry_status ferry_deregister(ferry_agent *agent, const ferry_dlist *list,
                                     const ferry_backend_sel *sel)
{
    if (!FY_AGENT_OK(agent) || !list)
        return FERRY_ERR_INVALID_PARAM;
    uint32_t mask;
    fy_lock_wr(&agent->lock);
    ferry_status rc = fy_sel_mask(agent, sel, &mask);
    if (rc == FERRY_OK)
        rc = fy_dereg_find_all(agent, list);
    if (rc == FERRY_OK)
        rc = fy_dereg_run(agent, list, mask, sel && sel->num_backends);
    fy_unlock(&agent->lock, true);
    return rc;
}

void fy_registry_clear(ferry_agent *agent)
{
    for (int t = 0; t < FERRY_MEM_TYPE_COUNT; t++) {
        fy_index *ix = &agent->reg.by_type[t];
        for (size_t i = 0; i < ix->count; i++)
            fy_region_of(ix->items[i])->reg_count = 0;
        fy_index_compact(&agent->reg, (ferry_mem_type)t);
        fy_index_free(ix);
    }
}

FY_API void ferry_mem_usage_init(ferry_mem_usage *usage)
{
    if (!usage)
        return;
    memset(usage, 0, sizeof(*usage));
    usage->size = sizeof(*usage);
}

FY_API ferry_status ferry_mem_usage_get(ferry_agent *agent, ferry_mem_usage *usage)
{
    if (!FY_AGENT_OK(agent) || !usage || usage->size < sizeof(*usage))
        return FERRY_ERR_INVALID_PARAM;
    fy_lock_rd(&agent->lock);
    memcpy(usage->bytes, agent->reg.bytes, sizeof(usage->bytes));
    memcpy(usage->regions, agent->reg.regions, sizeof(usage->regions));
    fy_unlock(&agent->lock, false);
    return FERRY_OK;
}

FY_API void ferry_backend_sel_init(ferry_backend_sel *sel)
{
    if (!sel)
        return;
    memset(sel, 0, sizeof(*sel));
    sel->size = sizeof(*sel);
}
