/* SPDX-License-Identifier: Apache-2.0 */
/* ferry_mem_alloc / ferry_mem_free: memory handed out by a backend.
 *
 * Why: some transports move memory they mapped themselves much faster than
 * memory the application brings. UCX between two processes of one host is
 * the case in point: an ordinary malloc'd buffer can only be reached through
 * messages (or the kernel's cross-memory copy), while memory UCX allocated
 * is shared, so a put becomes one memcpy into the peer's mapping.
 *
 * The agent records each allocation (address, length, backend, the plugin's
 * handle) in a short list under the agent's write lock: allocations are few
 * and long-lived (a KV cache pool), never on the hot path. */
#include <stdlib.h>

#include "common/api.h"
#include "common/log.h"
#include "core/agent.h"
#include "core/alloc.h"
#include "core/backend.h"
#include "core/handles.h"
#include "core/index.h"
#include "core/plugin_loader.h"
#include "core/sync.h"
#include "ferry/ferry.h"

typedef struct fy_alloc {
    struct fy_alloc *next;
    uint64_t addr, len, dev_id;
    ferry_mem_type type;
    ferry_backend *be;
    void *handle; /* the plugin's */
} fy_alloc;

static bool fy_be_allocates(const ferry_backend *be, ferry_mem_type type)
{
    return FY_OP(be, mem_alloc) && FY_OP(be, mem_free) && (be->mem_mask & FERRY_MEM_MASK(type));
}

static ferry_status fy_alloc_from(ferry_backend *be, fy_alloc *a, void **addr)
{
    fy_be_enter(be);
    ferry_status rc = be->ops->mem_alloc(be->priv, a->type, a->len, a->dev_id, addr, &a->handle);
    fy_be_leave(be);
    if (rc == FERRY_OK)
        a->be = be;
    return rc;
}

/* The named backend, or the first one that can allocate the type and does. */
static ferry_status fy_alloc_pick(ferry_agent *agent, ferry_backend *named, fy_alloc *a,
                                  void **addr)
{
    if (named)
        return fy_be_allocates(named, a->type) ? fy_alloc_from(named, a, addr)
                                               : FERRY_ERR_NOT_SUPPORTED;
    ferry_status rc = FERRY_ERR_NOT_SUPPORTED;
    for (uint32_t i = 0; i < agent->num_backends && rc != FERRY_OK; i++)
        if (fy_be_allocates(agent->backends[i], a->type))
            rc = fy_alloc_from(agent->backends[i], a, addr);
    return rc;
}

FY_API ferry_status ferry_mem_alloc(ferry_agent *agent, ferry_backend *backend, ferry_mem_type type,
                                    uint64_t len, uint64_t dev_id, void **addr)
{
    if (!FY_AGENT_OK(agent) || !addr || !len || (unsigned)type >= FERRY_MEM_TYPE_COUNT ||
        (backend && !fy_be_of(backend, agent, __func__)))
        return FERRY_ERR_INVALID_PARAM;
    fy_alloc *a = calloc(1, sizeof(*a));
    if (!a)
        return FERRY_ERR_NO_MEMORY;
    *a = (fy_alloc){.len = len, .dev_id = dev_id, .type = type};
    void *p = NULL;
    fy_lock_wr(&agent->lock);
    ferry_status rc = fy_alloc_pick(agent, backend, a, &p);
    if (rc == FERRY_OK) {
        a->addr = (uintptr_t)p;
        a->next = agent->allocs;
        agent->allocs = a;
    }
    fy_unlock(&agent->lock, true);
    if (rc != FERRY_OK) {
        FY_ERR("mem_alloc of %llu bytes of %s: %s", (unsigned long long)len,
               ferry_mem_type_name(type), ferry_strerror(rc));
        free(a);
        return rc;
    }
    *addr = p;
    return FERRY_OK;
}

static void fy_alloc_release(fy_alloc *a)
{
    fy_be_enter(a->be);
    a->be->ops->mem_free(a->be->priv, a->handle);
    fy_be_leave(a->be);
    free(a);
}

/* Under the write lock: NOT_FOUND, NOT_ALLOWED (registered inside), or OK
 * with the allocation unlinked into *out. */
static ferry_status fy_alloc_unlink(ferry_agent *agent, uint64_t addr, fy_alloc **out)
{
    fy_alloc **link = &agent->allocs;
    while (*link && (*link)->addr != addr)
        link = &(*link)->next;
    fy_alloc *a = *link;
    if (!a)
        return FERRY_ERR_NOT_FOUND;
    if (fy_index_overlap(&agent->reg.by_type[a->type], a->addr, a->len, a->dev_id))
        return FERRY_ERR_NOT_ALLOWED;
    *link = a->next;
    *out = a;
    return FERRY_OK;
}

FY_API ferry_status ferry_mem_free(ferry_agent *agent, void *addr)
{
    if (!FY_AGENT_OK(agent) || !addr)
        return FERRY_ERR_INVALID_PARAM;
    fy_alloc *a = NULL;
    fy_lock_wr(&agent->lock);
    ferry_status rc = fy_alloc_unlink(agent, (uintptr_t)addr, &a);
    if (rc == FERRY_OK)
        fy_alloc_release(a);
    fy_unlock(&agent->lock, true);
    if (rc == FERRY_ERR_NOT_ALLOWED)
        FY_ERR("mem_free %p: registered regions lie inside it; deregister them first", addr);
    else if (rc == FERRY_ERR_NOT_FOUND)
        FY_ERR("mem_free %p: not an allocation of agent %s", addr, agent->name);
    return rc;
}

void fy_allocs_clear(ferry_agent *agent)
{
    while (agent->allocs) {
        fy_alloc *a = agent->allocs;
        agent->allocs = a->next;
        fy_alloc_release(a);
    }
}
