/* SPDX-License-Identifier: Apache-2.0 */
/* Prepared descriptor lists: each descriptor resolved once to the region
 * covering it (local registry or a remote's loaded metadata), so making a
 * request only indexes arrays. A strided list whose whole span lies in one
 * region stays strided: O(1) memory for any number of KV blocks; so does a
 * plain list that is regular (equally spaced blocks of one length). */
#include <stdlib.h>
#include <string.h>

#include "common/api.h"
#include "common/log.h"
#include "core/agent.h"
#include "core/backend.h"
#include "core/dlist.h"
#include "core/handles.h"
#include "core/hlist.h"
#include "core/index.h"
#include "core/prep.h"
#include "core/registry.h"
#include "core/remote.h"
#include "core/sync.h"
#include "ferry/ferry.h"

static uint32_t fy_region_mask(const void *region, bool remote)
{
    return remote ? ((const fy_rregion *)region)->backend_mask
                  : ((const fy_region *)region)->backend_mask;
}

/* The region (local or remote, by the list's side) whose range r is. */
static void *fy_prep_region(const ferry_prepped *p, fy_range *r)
{
    if (!r)
        return NULL;
    return p->remote ? (void *)fy_rregion_of(r) : (void *)fy_region_of(r);
}

/* Holds a reference on each distinct local region (a repeat of the previous
 * one is skipped: consecutive descriptors mostly share a region). */
static void fy_prep_hold(ferry_prepped *p, fy_region *r)
{
    if (p->num_held && p->held[p->num_held - 1] == r)
        return;
    fy_region_ref(r);
    p->held[p->num_held++] = r;
}

static ferry_status fy_prep_resolve(ferry_prepped *p, const fy_index *ix, ferry_desc d, size_t i,
                                    void **region)
{
    *region = fy_prep_region(p, fy_index_find(ix, d.addr, d.len, d.dev_id));
    if (*region)
        return FERRY_OK;
    FY_ERR("prep: descriptor %zu (%#llx+%llu, dev %llu) is not inside a %s region%s%s", i,
           (unsigned long long)d.addr, (unsigned long long)d.len, (unsigned long long)d.dev_id,
           p->remote ? "loaded" : "registered", p->remote ? " of " : "",
           p->remote ? p->remote->name : "");
    return FERRY_ERR_NOT_FOUND;
}

/* A list's regular form: count descriptors of len bytes on dev_id, every
 * stride bytes from base. */
typedef struct fy_regular {
    uint64_t base, stride, len, dev_id;
} fy_regular;

/* Whether a plain list is regular all the same: an engine that hands every
 * block slot of its cache one by one (NIXL's prep_xfer_dlist from an array)
 * builds one. Increasing addresses, so the span cannot wrap. */
static bool fy_plain_regular(const ferry_dlist *l, fy_regular *g)
{
    const ferry_desc *d = l->descs;
    if (l->count < 2 || d[1].addr <= d[0].addr || d[0].addr + d[0].len < d[0].addr)
        return false;
    *g = (fy_regular){d[0].addr, d[1].addr - d[0].addr, d[0].len, d[0].dev_id};
    for (size_t i = 1; i < l->count; i++)
        if (d[i].addr - d[i - 1].addr != g->stride || d[i].addr < d[i - 1].addr ||
            d[i].len != g->len || d[i].dev_id != g->dev_id)
            return false;
    return d[l->count - 1].addr + g->len > d[l->count - 1].addr;
}

static bool fy_list_regular(const ferry_dlist *l, fy_regular *g)
{
    if (l->strided) {
        *g = (fy_regular){l->base, l->stride, l->len, l->dev_id};
        return l->count > 0;
    }
    return fy_plain_regular(l, g);
}

/* Strided fast path (strided lists, and plain ones that are regular): the
 * whole span inside one region, so nothing is stored per descriptor and a
 * make computes each address instead of reading it. */
static bool fy_prep_strided(ferry_prepped *p, const fy_index *ix, const ferry_dlist *l)
{
    fy_regular g;
    if (!fy_list_regular(l, &g) || g.stride < g.len)
        return false;
    uint64_t span = (l->count - 1) * g.stride + g.len;
    void *region = fy_prep_region(p, fy_index_find(ix, g.base, span, g.dev_id));
    if (!region || (!p->remote && !(p->held = malloc(sizeof(*p->held)))))
        return false; /* the plain path resolves (or reports) it */
    p->strided = true;
    p->stride = g.stride;
    p->stride_seg = (fy_pseg){g.base, g.len, g.dev_id, region};
    p->backend_mask &= fy_region_mask(region, p->remote != NULL);
    if (!p->remote)
        fy_prep_hold(p, region);
    return true;
}

static ferry_status fy_prep_plain(ferry_prepped *p, const fy_index *ix, const ferry_dlist *l)
{
    size_t n = l->count ? l->count : 1;
    p->segs = malloc(n * sizeof(*p->segs));
    p->held = p->remote ? NULL : malloc(n * sizeof(*p->held));
    if (!p->segs || (!p->remote && !p->held))
        return FERRY_ERR_NO_MEMORY;
    for (size_t i = 0; i < l->count; i++) {
        ferry_desc d = fy_dlist_at(l, i);
        void *region;
        ferry_status rc = fy_prep_resolve(p, ix, d, i, &region);
        if (rc != FERRY_OK)
            return rc;
        p->segs[i] = (fy_pseg){d.addr, d.len, d.dev_id, region};
        p->backend_mask &= fy_region_mask(region, p->remote != NULL);
        if (!p->remote)
            fy_prep_hold(p, region);
    }
    return FERRY_OK;
}

void fy_prepped_free(ferry_prepped *p)
{
    for (size_t i = 0; i < p->num_held; i++)
        fy_region_unref(p->held[i]);
    if (p->remote)
        fy_remote_unref(p->remote);
    free(p->held);
    free(p->segs);
    fy_handle_free(p);
}

static ferry_status fy_prep_target(ferry_agent *agent, const char *agent_name, ferry_prepped *p,
                                   const fy_index **ix)
{
    if (!agent_name || !agent_name[0]) {
        *ix = &agent->reg.by_type[p->type];
        return FERRY_OK;
    }
    fy_remote *rem = fy_remote_lookup(agent, agent_name);
    if (!rem) {
        FY_ERR("prep: no metadata loaded for agent '%s'", agent_name);
        return FERRY_ERR_NOT_FOUND;
    }
    fy_remote_ref(rem);
    p->remote = rem;
    p->backend_mask &= rem->backend_mask;
    *ix = &rem->by_type[p->type];
    return FERRY_OK;
}

ferry_status fy_prep(ferry_agent *agent, const char *agent_name, const ferry_dlist *list,
                     const ferry_backend_sel *sel, ferry_prepped **out)
{
    ferry_prepped *p = calloc(1, sizeof(*p));
    if (!p)
        return FERRY_ERR_NO_MEMORY;
    *p = (ferry_prepped){.agent = agent, .type = list->type, .count = list->count};
    p->link.next = p->link.prev = &p->link;
    const fy_index *ix = NULL;
    ferry_status rc = fy_sel_mask(agent, sel, &p->backend_mask);
    if (rc == FERRY_OK)
        rc = fy_prep_target(agent, agent_name, p, &ix);
    if (rc == FERRY_OK && !fy_prep_strided(p, ix, list))
        rc = fy_prep_plain(p, ix, list);
    if (rc == FERRY_OK && list->count && !p->backend_mask) {
        FY_ERR("prep: no backend holds every descriptor's region");
        rc = FERRY_ERR_NOT_FOUND;
    }
    if (rc != FERRY_OK) {
        fy_prepped_free(p);
        return rc;
    }
    *out = p;
    return FERRY_OK;
}

FY_API ferry_status ferry_prep_dlist(ferry_agent *agent, const char *agent_name,
                                     const ferry_dlist *list, const ferry_backend_sel *sel,
                                     ferry_prepped **out)
{
    if (!FY_AGENT_OK(agent) || !list || !out)
        return FERRY_ERR_INVALID_PARAM;
    fy_lock_rd(&agent->lock);
    ferry_prepped *p = NULL;
    ferry_status rc = fy_prep(agent, agent_name, list, sel, &p);
    fy_unlock(&agent->lock, false);
    if (rc == FERRY_OK && (rc = fy_handle_add(p, FY_H_PREPPED)) != FERRY_OK)
        fy_prepped_free(p);
    if (rc != FERRY_OK)
        return rc;
    fy_hlist_add(&agent->prepped, &p->link);
    *out = p;
    return FERRY_OK;
}

FY_API void ferry_prepped_release(ferry_prepped *p)
{
    if (!p || !fy_handle_del(p, FY_H_PREPPED, __func__))
        return;
    fy_hlist_del(&p->agent->prepped, &p->link);
    fy_prepped_free(p);
}

FY_API size_t ferry_prepped_count(const ferry_prepped *p)
{
    return FY_PREPPED_OK(p) ? p->count : 0;
}
