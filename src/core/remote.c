/* SPDX-License-Identifier: Apache-2.0 */
/* Remote agents: loading peers' metadata blobs, generations, invalidation.
 *
 * A remote is refcounted: the agent's table holds one reference, prepared
 * lists and requests made against it hold one each. Invalidating (or loading
 * a blob of a new instance of the same name) takes it out of the table and
 * clears `valid`, so those handles fail with STALE; its backend state is torn
 * down when the last reference goes. A blob of the same instance (same uid)
 * only adds regions, keeping prepared lists valid; with connection info it
 * also lets each backend reconnect where its connection failed
 * (remote_refresh). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/api.h"
#include "common/log.h"
#include "core/agent.h"
#include "core/backend.h"
#include "core/dlist.h"
#include "core/handles.h"
#include "core/index.h"
#include "core/plugin_loader.h"
#include "core/registry.h"
#include "core/remote.h"
#include "core/sync.h"
#include "metadata/auth.h"
#include "metadata/wire.h"
#include "ferry/ferry.h"

void fy_remote_ref(fy_remote *r)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

static void fy_rregion_free(fy_remote *rem, fy_rregion *rr)
{
    for (uint32_t s = 0; s < rr->num_slots; s++) {
        ferry_backend *be = rem->agent->backends[rr->slots[s].be];
        fy_be_enter(be);
        be->ops->rregion_unload(be->priv, rem->be_remote[rr->slots[s].be], rr->slots[s].priv);
        fy_be_leave(be);
    }
    free(rr->slots);
    free(rr);
}

static void fy_remote_free(fy_remote *rem)
{
    while (rem->retired) {
        fy_rregion *rr = rem->retired;
        rem->retired = rr->next_retired;
        fy_rregion_free(rem, rr);
    }
    for (int t = 0; t < FERRY_MEM_TYPE_COUNT; t++) {
        for (size_t i = 0; i < rem->by_type[t].count; i++)
            fy_rregion_free(rem, fy_rregion_of(rem->by_type[t].items[i]));
        fy_index_free(&rem->by_type[t]);
    }
    for (uint32_t b = 0; b < rem->agent->num_backends; b++) {
        if (!(rem->backend_mask & (1u << b)))
            continue;
        ferry_backend *be = rem->agent->backends[b];
        fy_be_enter(be);
        be->ops->remote_unload(be->priv, rem->be_remote[b]);
        fy_be_leave(be);
    }
    free(rem);
}

void fy_remote_unref(fy_remote *r)
{
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
        fy_remote_free(r);
}

fy_remote *fy_remote_lookup(ferry_agent *agent, const char *name)
{
    for (size_t i = 0; i < agent->num_remotes; i++)
        if (!strcmp(agent->remotes[i]->name, name))
            return agent->remotes[i];
    return NULL;
}

ferry_status fy_remote_uid(ferry_agent *agent, const char *name, uint64_t *uid)
{
    fy_lock_rd(&agent->lock);
    fy_remote *rem = fy_remote_lookup(agent, name);
    if (rem)
        *uid = rem->uid;
    fy_unlock(&agent->lock, false);
    return rem ? FERRY_OK : FERRY_ERR_NOT_FOUND;
}

static void fy_remote_drop(ferry_agent *agent, fy_remote *rem)
{
    for (size_t i = 0; i < agent->num_remotes; i++)
        if (agent->remotes[i] == rem)
            agent->remotes[i] = agent->remotes[--agent->num_remotes];
    atomic_store(&rem->valid, false);
    fy_remote_unref(rem);
}

void fy_remotes_clear(ferry_agent *agent)
{
    while (agent->num_remotes)
        fy_remote_drop(agent, agent->remotes[0]);
}

static ferry_status fy_remote_insert(ferry_agent *agent, fy_remote *rem)
{
    if (agent->num_remotes == agent->cap_remotes) {
        size_t cap = agent->cap_remotes ? agent->cap_remotes * 2 : 8;
        fy_remote **r = realloc(agent->remotes, cap * sizeof(*r));
        if (!r)
            return FERRY_ERR_NO_MEMORY;
        agent->remotes = r;
        agent->cap_remotes = cap;
    }
    agent->remotes[agent->num_remotes++] = rem;
    return FERRY_OK;
}

/* ---- loading ---- */

typedef struct fy_load {
    ferry_agent *agent;
    const fy_md *md;
    fy_remote *rem;
    int local_of[FY_MD_MAX_BACKENDS]; /* blob backend -> local backend index, -1 */
    fy_rregion **fresh;
    size_t num_fresh;
} fy_load;

static ferry_backend *fy_backend_named(ferry_agent *agent, fy_bytes name)
{
    for (uint32_t b = 0; b < agent->num_backends; b++) {
        const char *n = agent->backends[b]->plugin->desc->name;
        if (strlen(n) == name.len && !strncasecmp(n, (const char *)name.ptr, name.len))
            return agent->backends[b];
    }
    return NULL;
}

/* Maps the blob's backends onto local backends that loaded this remote. */
static void fy_load_map(fy_load *ld)
{
    for (uint32_t j = 0; j < FY_MD_MAX_BACKENDS; j++)
        ld->local_of[j] = -1;
    for (uint32_t j = 0; j < ld->md->num_backends; j++) {
        ferry_backend *be = fy_backend_named(ld->agent, ld->md->backends[j].name);
        if (be && (ld->rem->backend_mask & (1u << be->index)))
            ld->local_of[j] = (int)be->index;
    }
}

static ferry_status fy_load_backend(fy_load *ld, ferry_backend *be, const fy_md_backend *mb)
{
    fy_be_enter(be);
    ferry_status rc = be->ops->remote_load(be->priv, ld->rem->name, ld->md->uid, mb->conn.ptr,
                                           mb->conn.len, &ld->rem->be_remote[be->index]);
    fy_be_leave(be);
    if (rc == FERRY_OK)
        ld->rem->backend_mask |= 1u << be->index;
    else if (rc == FERRY_ERR_NOT_SUPPORTED)
        rc = FERRY_OK; /* that peer is simply not reachable through this backend */
    else
        fy_log(FERRY_LOG_ERROR, be->plugin->name, "loading remote %s failed: %s", ld->rem->name,
               ferry_strerror(rc));
    return rc;
}

static ferry_status fy_load_backends(fy_load *ld)
{
    for (uint32_t j = 0; j < ld->md->num_backends; j++) {
        ferry_backend *be = fy_backend_named(ld->agent, ld->md->backends[j].name);
        if (!be || (ld->rem->backend_mask & (1u << be->index)))
            continue;
        ferry_status rc = fy_load_backend(ld, be, &ld->md->backends[j]);
        if (rc != FERRY_OK)
            return rc;
    }
    return FERRY_OK;
}

/* FNV-1a of a region's key bytes: tells a re-registered region (new key,
 * same range) from a repeat. */
static uint64_t fy_pub_hash(fy_bytes pub)
{
    uint64_t h = 1469598103934665603ull;
    for (uint32_t i = 0; i < pub.len; i++)
        h = (h ^ pub.ptr[i]) * 1099511628211ull;
    return h;
}

static ferry_status fy_rregion_load_slot(fy_load *ld, fy_rregion *rr, uint32_t j, size_t i)
{
    uint32_t b = (uint32_t)ld->local_of[j];
    ferry_backend *be = ld->agent->backends[b];
    fy_bytes pub = ld->md->pubs[i * ld->md->num_backends + j];
    ferry_desc d = {rr->range.addr, rr->range.len, rr->range.dev_id};
    fy_be_slot *slots = realloc(rr->slots, (rr->num_slots + 1) * sizeof(*slots));
    if (!slots)
        return FERRY_ERR_NO_MEMORY;
    rr->slots = slots;
    fy_be_slot *s = &slots[rr->num_slots];
    fy_be_enter(be);
    ferry_status rc = be->ops->rregion_load(be->priv, ld->rem->be_remote[b], rr->type, &d, pub.ptr,
                                            pub.len, &s->priv);
    fy_be_leave(be);
    if (rc != FERRY_OK) {
        fy_log(FERRY_LOG_ERROR, be->plugin->name, "remote %s region %#llx: %s", ld->rem->name,
               (unsigned long long)rr->range.addr, ferry_strerror(rc));
        return rc > 0 ? FERRY_ERR_BACKEND : rc;
    }
    s->be = b;
    s->pub_hash = fy_pub_hash(pub);
    rr->num_slots++;
    rr->backend_mask |= 1u << b;
    return FERRY_OK;
}

/* Loads region i's keys for the local backends that reach it and that rr
 * does not hold yet (a known region may gain backends in a later blob). */
static ferry_status fy_rregion_add_slots(fy_load *ld, fy_rregion *rr, size_t i)
{
    const fy_md_region *r = &ld->md->regions[i];
    for (uint32_t j = 0; j < ld->md->num_backends; j++) {
        int b = ld->local_of[j];
        if (!(r->backend_mask & (1u << j)) || b < 0 || (rr->backend_mask & (1u << b)))
            continue;
        ferry_status rc = fy_rregion_load_slot(ld, rr, j, i);
        if (rc != FERRY_OK)
            return rc;
    }
    return FERRY_OK;
}

static ferry_status fy_rregion_build(fy_load *ld, size_t i)
{
    const fy_md_region *r = &ld->md->regions[i];
    fy_rregion *rr = calloc(1, sizeof(*rr));
    if (!rr)
        return FERRY_ERR_NO_MEMORY;
    *rr = (fy_rregion){.range = {r->addr, r->len, r->dev_id}, .type = (ferry_mem_type)r->mem_type};
    ld->fresh[ld->num_fresh++] = rr;
    return fy_rregion_add_slots(ld, rr, i);
}

/* True when the blob lists a key for a backend of rr that differs from the
 * one rr holds: the peer re-registered the range. */
static bool fy_rregion_rekeyed(fy_load *ld, const fy_rregion *rr, size_t i)
{
    for (uint32_t j = 0; j < ld->md->num_backends; j++) {
        int b = ld->local_of[j];
        if (b < 0 || !(ld->md->regions[i].backend_mask & (1u << j)))
            continue;
        for (uint32_t s = 0; s < rr->num_slots; s++)
            if (rr->slots[s].be == (uint32_t)b &&
                rr->slots[s].pub_hash != fy_pub_hash(ld->md->pubs[i * ld->md->num_backends + j]))
                return true;
    }
    return false;
}

/* Replaces a re-registered region in place (same key in the index); the
 * old one is retired, not freed: prepared lists and requests may use it. */
static ferry_status fy_rregion_replace(fy_load *ld, fy_rregion *old, size_t i)
{
    fy_rregion *rr = calloc(1, sizeof(*rr));
    if (!rr)
        return FERRY_ERR_NO_MEMORY;
    *rr = (fy_rregion){.range = old->range, .type = old->type};
    ferry_status rc = fy_rregion_add_slots(ld, rr, i);
    if (rc != FERRY_OK) {
        fy_rregion_free(ld->rem, rr);
        return rc;
    }
    *fy_index_slot(&ld->rem->by_type[old->type], &old->range) = &rr->range;
    old->next_retired = ld->rem->retired;
    ld->rem->retired = old;
    return FERRY_OK;
}

/* Adds region i, the backends a known region lacks, or a new key. */
static ferry_status fy_load_region(fy_load *ld, size_t i)
{
    const fy_md_region *r = &ld->md->regions[i];
    if (!r->len || r->addr > UINT64_MAX - r->len)
        return FERRY_OK; /* malformed entries are ignored, as the codec allows none */
    fy_rregion *known =
        fy_rregion_of(fy_index_exact(&ld->rem->by_type[r->mem_type], r->addr, r->len, r->dev_id));
    if (!known)
        return fy_rregion_build(ld, i);
    if (fy_rregion_rekeyed(ld, known, i))
        return fy_rregion_replace(ld, known, i);
    return fy_rregion_add_slots(ld, known, i);
}

/* Merges the new regions of one memory type into the remote's index. */
static ferry_status fy_load_merge_type(fy_load *ld, ferry_mem_type t, fy_range **tmp)
{
    size_t n = 0;
    for (size_t i = 0; i < ld->num_fresh; i++)
        if (ld->fresh[i]->type == t)
            tmp[n++] = &ld->fresh[i]->range;
    fy_index_sort(tmp, n);
    return fy_index_merge(&ld->rem->by_type[t], tmp, n);
}

static ferry_status fy_load_regions(fy_load *ld)
{
    size_t n = ld->md->num_regions;
    ld->fresh = malloc((n ? n : 1) * sizeof(*ld->fresh));
    if (!ld->fresh)
        return FERRY_ERR_NO_MEMORY;
    ferry_status rc = FERRY_OK;
    for (size_t i = 0; i < n && rc == FERRY_OK; i++)
        rc = fy_load_region(ld, i);
    fy_range **tmp = rc == FERRY_OK ? malloc((ld->num_fresh + 1) * sizeof(*tmp)) : NULL;
    if (rc == FERRY_OK && !tmp)
        rc = FERRY_ERR_NO_MEMORY;
    for (int t = 0; t < FERRY_MEM_TYPE_COUNT && rc == FERRY_OK; t++)
        rc = fy_load_merge_type(ld, (ferry_mem_type)t, tmp);
    free(tmp);
    if (rc == FERRY_OK)
        ld->num_fresh = 0; /* owned by the index now */
    return rc;
}

/* Frees new regions that did not make it into the index. A failed merge
 * may have left some merged: indexes then keep them (they are valid). */
static void fy_load_cleanup(fy_load *ld)
{
    for (size_t i = 0; i < ld->num_fresh; i++) {
        fy_rregion *rr = ld->fresh[i];
        const fy_range *k = &rr->range;
        if (fy_index_exact(&ld->rem->by_type[rr->type], k->addr, k->len, k->dev_id) != k)
            fy_rregion_free(ld->rem, rr);
    }
    free(ld->fresh);
}

static ferry_status fy_load_into(fy_load *ld)
{
    ferry_status rc = fy_load_backends(ld);
    if (rc == FERRY_OK) {
        fy_load_map(ld);
        rc = fy_load_regions(ld);
    }
    fy_load_cleanup(ld);
    return rc;
}

static ferry_status fy_remote_new(ferry_agent *agent, const fy_md *md, fy_remote **out)
{
    fy_remote *rem = calloc(1, sizeof(*rem));
    if (!rem)
        return FERRY_ERR_NO_MEMORY;
    memcpy(rem->name, md->name.ptr, md->name.len);
    rem->uid = md->uid;
    rem->agent = agent;
    rem->generation = ++agent->last_generation;
    atomic_init(&rem->refs, 1);
    atomic_init(&rem->valid, true);
    *out = rem;
    return FERRY_OK;
}

/* A blob of a new instance: a fresh remote replaces any older one. */
static ferry_status fy_load_new_instance(ferry_agent *agent, const fy_md *md, fy_remote *old)
{
    fy_load ld = {.agent = agent, .md = md};
    ferry_status rc = fy_remote_new(agent, md, &ld.rem);
    if (rc == FERRY_OK)
        rc = fy_load_into(&ld);
    if (rc == FERRY_OK)
        rc = fy_remote_insert(agent, ld.rem);
    if (rc != FERRY_OK) {
        if (ld.rem)
            fy_remote_unref(ld.rem);
        return rc;
    }
    if (old)
        fy_remote_drop(agent, old);
    return FERRY_OK;
}

/* The same instance's connection info again: each backend that holds the
 * remote may reconnect (one that gave up on a frozen peer, now resumed). */
static ferry_status fy_load_refresh(fy_load *ld)
{
    for (uint32_t j = 0; j < ld->md->num_backends; j++) {
        ferry_backend *be = fy_backend_named(ld->agent, ld->md->backends[j].name);
        ferry_status (*refresh)(void *, void *, const void *, size_t) =
            be ? FY_OP(be, remote_refresh) : NULL;
        if (!refresh || !(ld->rem->backend_mask & (1u << be->index)))
            continue;
        const fy_md_backend *mb = &ld->md->backends[j];
        fy_be_enter(be);
        ferry_status rc =
            refresh(be->priv, ld->rem->be_remote[be->index], mb->conn.ptr, mb->conn.len);
        fy_be_leave(be);
        if (rc != FERRY_OK) {
            fy_log(FERRY_LOG_ERROR, be->plugin->name, "reconnecting to %s failed: %s",
                   ld->rem->name, ferry_strerror(rc));
            return rc > 0 ? FERRY_ERR_BACKEND : rc;
        }
    }
    return FERRY_OK;
}

static ferry_status fy_md_load_locked(ferry_agent *agent, const fy_md *md)
{
    char name[FERRY_NAME_MAX + 1];
    memcpy(name, md->name.ptr, md->name.len);
    name[md->name.len] = '\0';
    fy_remote *old = fy_remote_lookup(agent, name);
    if (md->has_conn && (!old || old->uid != md->uid))
        return fy_load_new_instance(agent, md, old);
    if (!old) {
        FY_MD_FAIL("partial metadata of %s without connection info: load its full metadata first",
                   name);
        return FERRY_ERR_NOT_FOUND;
    }
    if (old->uid != md->uid) {
        FY_MD_FAIL("partial metadata of another instance of %s: load its full metadata", name);
        return FERRY_ERR_STALE;
    }
    fy_load ld = {.agent = agent, .md = md, .rem = old};
    ferry_status rc = md->has_conn ? fy_load_refresh(&ld) : FERRY_OK;
    return rc == FERRY_OK ? fy_load_into(&ld) : rc;
}

static ferry_status fy_md_check_name(const fy_md *md)
{
    if (md->kind != FY_MD_KIND_AGENT || !md->name.len || md->name.len > FERRY_NAME_MAX ||
        memchr(md->name.ptr, '\0', md->name.len)) {
        FY_MD_FAIL("metadata blob: not agent metadata, or bad agent name");
        return FERRY_ERR_BAD_METADATA;
    }
    return FERRY_OK;
}

/* With a key, only blobs whose MAC is right: the MAC covers the name. */
static ferry_status fy_md_check_auth(ferry_agent *agent, const void *blob, size_t len,
                                     const fy_md *md)
{
    if (!agent->auth.key_len || fy_auth_blob_ok(&agent->auth, blob, len, md))
        return FERRY_OK;
    fy_auth_refused(&agent->auth, agent->name, "a metadata blob",
                    md->auth ? "wrong MAC (another key, or the blob was altered)"
                             : "no MAC (made by an agent without the key)");
    return FERRY_ERR_AUTH;
}

/* An agent's own name is only ever its own: a blob of another instance
 * under it (or, from the network, any blob under it) would redirect this
 * agent's loopback transfers and notifications to someone else. */
static ferry_status fy_md_check_self(ferry_agent *agent, const fy_md *md, bool from_peer)
{
    bool self =
        md->name.len == strlen(agent->name) && !memcmp(md->name.ptr, agent->name, md->name.len);
    if (!self || (!from_peer && md->uid == agent->uid))
        return FERRY_OK;
    FY_MD_FAIL("agent %s: refused metadata under its own name %s", agent->name,
               from_peer ? "sent by a peer" : "from another instance");
    return FERRY_ERR_NOT_ALLOWED;
}

static ferry_status fy_md_load_blob(ferry_agent *agent, const void *blob, size_t len, char *name,
                                    size_t name_cap, bool from_peer)
{
    fy_md_detail_clear();
    if (!FY_AGENT_OK(agent))
        return FERRY_ERR_INVALID_PARAM; /* the handle check logged it */
    if (!blob || !name || !name_cap) {
        FY_MD_FAIL("metadata load: %s", !blob ? "no blob" : "no room for the agent's name");
        return FERRY_ERR_INVALID_PARAM;
    }
    fy_md md;
    ferry_status rc = fy_md_decode(blob, len, &md);
    if (rc != FERRY_OK) {
        FY_MD_FAIL("agent %s: rejected a malformed metadata blob of %zu bytes", agent->name, len);
        return rc;
    }
    rc = fy_md_check_name(&md);
    if (rc == FERRY_OK)
        rc = fy_md_check_auth(agent, blob, len, &md);
    if (rc == FERRY_OK)
        rc = fy_md_check_self(agent, &md, from_peer);
    if (rc == FERRY_OK && md.name.len >= name_cap)
        rc = FERRY_ERR_INVALID_PARAM;
    if (rc == FERRY_OK) {
        fy_lock_wr(&agent->lock);
        rc = fy_md_load_locked(agent, &md);
        fy_unlock(&agent->lock, true);
    }
    if (rc == FERRY_OK) {
        memcpy(name, md.name.ptr, md.name.len);
        name[md.name.len] = '\0';
    }
    fy_md_free(&md);
    return rc;
}

FY_API ferry_status ferry_md_load(ferry_agent *agent, const void *blob, size_t len, char *name,
                                  size_t name_cap)
{
    return fy_md_load_blob(agent, blob, len, name, name_cap, false);
}

ferry_status fy_md_load_peer(ferry_agent *agent, const void *blob, size_t len, char *name,
                             size_t name_cap)
{
    return fy_md_load_blob(agent, blob, len, name, name_cap, true);
}

ferry_status fy_md_invalidate(ferry_agent *agent, const char *remote_agent)
{
    fy_lock_wr(&agent->lock);
    fy_remote *rem = fy_remote_lookup(agent, remote_agent);
    if (rem)
        fy_remote_drop(agent, rem);
    fy_unlock(&agent->lock, true);
    if (!rem)
        FY_ERR("invalidate: no metadata loaded for agent '%s'", remote_agent);
    return rem ? FERRY_OK : FERRY_ERR_NOT_FOUND;
}

FY_API ferry_status ferry_md_invalidate(ferry_agent *agent, const char *remote_agent)
{
    if (!FY_AGENT_OK(agent) || !remote_agent)
        return FERRY_ERR_INVALID_PARAM;
    return fy_md_invalidate(agent, remote_agent);
}

static ferry_status fy_md_covers(const fy_remote *rem, const ferry_dlist *list)
{
    for (size_t i = 0; i < list->count; i++) {
        ferry_desc d = fy_dlist_at(list, i);
        if (!fy_index_find(&rem->by_type[list->type], d.addr, d.len, d.dev_id))
            return FERRY_ERR_NOT_FOUND;
    }
    return FERRY_OK;
}

FY_API ferry_status ferry_md_check(ferry_agent *agent, const char *remote_agent,
                                   const ferry_dlist *list)
{
    if (!FY_AGENT_OK(agent) || !remote_agent)
        return FERRY_ERR_INVALID_PARAM;
    fy_lock_rd(&agent->lock);
    fy_remote *rem = fy_remote_lookup(agent, remote_agent);
    ferry_status rc = rem ? FERRY_OK : FERRY_ERR_NOT_FOUND;
    if (rem && list)
        rc = fy_md_covers(rem, list);
    fy_unlock(&agent->lock, false);
    return rc;
}

FY_API ferry_status ferry_md_generation(ferry_agent *agent, const char *remote_agent,
                                        uint64_t *generation)
{
    if (!FY_AGENT_OK(agent) || !remote_agent || !generation)
        return FERRY_ERR_INVALID_PARAM;
    fy_lock_rd(&agent->lock);
    fy_remote *rem = fy_remote_lookup(agent, remote_agent);
    if (rem)
        *generation = rem->generation;
    fy_unlock(&agent->lock, false);
    return rem ? FERRY_OK : FERRY_ERR_NOT_FOUND;
}

static ferry_status fy_connect_backends(ferry_agent *agent, fy_remote *rem, uint32_t mask)
{
    for (uint32_t b = 0; b < agent->num_backends; b++) {
        ferry_backend *be = agent->backends[b];
        ferry_status (*connect)(void *, void *) = FY_OP(be, connect);
        if (!connect || !(mask & rem->backend_mask & (1u << b)))
            continue;
        fy_be_enter(be);
        ferry_status rc = connect(be->priv, rem->be_remote[b]);
        fy_be_leave(be);
        if (rc != FERRY_OK) {
            fy_log(FERRY_LOG_ERROR, be->plugin->name, "connecting to %s: %s", rem->name,
                   ferry_strerror(rc));
            return rc > 0 ? FERRY_ERR_BACKEND : rc;
        }
    }
    return FERRY_OK;
}

FY_API ferry_status ferry_md_connect(ferry_agent *agent, const char *remote_agent,
                                     const ferry_backend_sel *sel)
{
    if (!FY_AGENT_OK(agent) || !remote_agent)
        return FERRY_ERR_INVALID_PARAM;
    uint32_t mask;
    fy_lock_rd(&agent->lock);
    fy_remote *rem = fy_remote_lookup(agent, remote_agent);
    ferry_status rc = rem ? fy_sel_mask(agent, sel, &mask) : FERRY_ERR_NOT_FOUND;
    if (!rem)
        FY_ERR("connect: no metadata loaded for agent '%s'", remote_agent);
    if (rc == FERRY_OK)
        rc = fy_connect_backends(agent, rem, mask);
    fy_unlock(&agent->lock, false);
    return rc;
}
