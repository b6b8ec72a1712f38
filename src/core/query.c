/* SPDX-License-Identifier: Apache-2.0 */
/* ferry_query_mem: what ferry knows of the memory or storage a descriptor
 * list names, in the spirit of NIXL's queryMem (docs/api/query.md).
 *
 * The answers come from the core, not from the backends: the plugin ABI has
 * no query slot, and what a caller wants to know (is this range registered,
 * with which backend; does this file exist and how big is it) is what the
 * core's registry and the file system already say. A backend is asked only
 * about memory types it accepts, so NIXL code that queries a transport
 * backend about files gets NOT_SUPPORTED, as it would from NIXL's UCX. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/api.h"
#include "core/agent.h"
#include "core/backend.h"
#include "core/dlist.h"
#include "core/handles.h"
#include "core/index.h"
#include "core/registry.h"
#include "core/sync.h"
#include "ferry/ferry.h"

FY_API void ferry_mem_info_init(ferry_mem_info *info)
{
    if (!info)
        return;
    memset(info, 0, sizeof(*info));
    info->size = sizeof(*info);
}

/* The types ferry can answer for, and whether backend accepts this one.
 * OBJ is answered by a backend's query op (see fy_query_by_backend). */
static ferry_status fy_query_supported(ferry_mem_type type, const ferry_backend *backend)
{
    if (type != FERRY_MEM_DRAM && type != FERRY_MEM_VRAM && type != FERRY_MEM_FILE &&
        type != FERRY_MEM_OBJ)
        return FERRY_ERR_NOT_SUPPORTED;
    if (backend && !(backend->mem_mask & FERRY_MEM_MASK(type)))
        return FERRY_ERR_NOT_SUPPORTED;
    return FERRY_OK;
}

/* FILE: the path is the entry's metadata bytes. A missing, empty or
 * unusable path (embedded NUL, too long) is "not found", as a file that
 * does not exist: the caller asked about a name, not about an fd. */
static void fy_query_file(const ferry_dlist *list, size_t i, ferry_mem_info *info)
{
    const void *meta;
    size_t len;
    char path[PATH_MAX];
    struct stat st;
    if (ferry_dlist_get_meta(list, i, &meta, &len) != FERRY_OK || len == 0 || len >= sizeof(path) ||
        memchr(meta, '\0', len))
        return;
    memcpy(path, meta, len);
    path[len] = '\0';
    if (stat(path, &st) != 0)
        return;
    info->found = true;
    info->file_size = (uint64_t)st.st_size;
    info->file_mode = (uint32_t)st.st_mode;
    info->file_mtime = (int64_t)st.st_mtime;
}

/* DRAM/VRAM: the one registered region covering the whole descriptor (held
 * by backend, when one is given). Caller holds the agent's lock. */
static void fy_query_region(ferry_agent *agent, ferry_mem_type type, ferry_desc d,
                            const ferry_backend *backend, ferry_mem_info *info)
{
    const fy_region *r = fy_region_find(&agent->reg, type, d.addr, d.len, d.dev_id);
    if (!r || (backend && !(r->backend_mask & (1u << backend->index))))
        return;
    info->found = true;
    info->region_addr = r->range.addr;
    info->region_len = r->range.len;
    info->dev_id = r->range.dev_id;
}

/* The backend that answers for a type only backends know (the one given,
 * else the first accepting the type with a query op), or NULL. */
static ferry_backend *fy_query_backend(ferry_agent *agent, ferry_mem_type type,
                                       const ferry_backend *backend)
{
    for (uint32_t i = 0; i < agent->num_backends; i++) {
        ferry_backend *be = agent->backends[i];
        if ((!backend || be == backend) && (be->mem_mask & FERRY_MEM_MASK(type)) &&
            FY_OP(be, query))
            return be;
    }
    return NULL;
}

/* OBJ: the backend asks its store (e.g. an S3 HEAD), one descriptor at a
 * time; the first error ends the query. */
static ferry_status fy_query_by_backend(ferry_agent *agent, const ferry_dlist *list,
                                        const ferry_backend *backend, ferry_mem_info *res, size_t n)
{
    ferry_status rc = FERRY_OK;
    fy_lock_rd(&agent->lock);
    ferry_backend *be = fy_query_backend(agent, list->type, backend);
    for (size_t i = 0; be && rc == FERRY_OK && i < n; i++) {
        const void *meta = NULL;
        size_t len = 0;
        ferry_desc d = fy_dlist_at(list, i);
        ferry_dlist_get_meta(list, i, &meta, &len);
        ferry_mem_info_init(&res[i]);
        fy_be_enter(be);
        rc = be->ops->query(be->priv, list->type, &d, meta, len, &res[i]);
        fy_be_leave(be);
    }
    fy_unlock(&agent->lock, false);
    return be ? rc : FERRY_ERR_NOT_SUPPORTED;
}

static void fy_query_all(ferry_agent *agent, const ferry_dlist *list, const ferry_backend *backend,
                         ferry_mem_info *res, size_t n)
{
    ferry_mem_type type = list->type;
    for (size_t i = 0; i < n; i++)
        ferry_mem_info_init(&res[i]);
    if (type == FERRY_MEM_FILE) {
        for (size_t i = 0; i < n; i++)
            fy_query_file(list, i, &res[i]);
        return;
    }
    fy_lock_rd(&agent->lock);
    for (size_t i = 0; i < n; i++)
        fy_query_region(agent, type, fy_dlist_at(list, i), backend, &res[i]);
    fy_unlock(&agent->lock, false);
}

/* Copies results into the caller's array, whose entries are infos[0].size
 * bytes apart: a caller built against an older, smaller ferry_mem_info
 * gets the fields it knows. */
static void fy_query_copy_out(const ferry_mem_info *res, size_t n, ferry_mem_info *infos)
{
    size_t stride = infos[0].size;
    size_t copy = stride < sizeof(*res) ? stride : sizeof(*res);
    for (size_t i = 0; i < n; i++) {
        ferry_mem_info *dst = (ferry_mem_info *)((char *)infos + i * stride);
        memcpy(dst, &res[i], copy);
        dst->size = stride;
    }
}

static ferry_status fy_query_check(ferry_agent *agent, const ferry_dlist *list,
                                   const ferry_backend *backend, const ferry_mem_info *infos,
                                   size_t count)
{
    if (!FY_AGENT_OK(agent) || !list || count != ferry_dlist_count(list) || (count && !infos))
        return FERRY_ERR_INVALID_PARAM;
    if (count && infos[0].size < sizeof(ferry_mem_info))
        return FERRY_ERR_INVALID_PARAM;
    if (backend && !fy_be_of(backend, agent, __func__))
        return FERRY_ERR_INVALID_PARAM;
    return fy_query_supported(list->type, backend);
}

FY_API ferry_status ferry_query_mem(ferry_agent *agent, const ferry_dlist *list,
                                    const ferry_backend *backend, ferry_mem_info *infos,
                                    size_t count)
{
    ferry_status rc = fy_query_check(agent, list, backend, infos, count);
    if (rc != FERRY_OK || count == 0)
        return rc;
    if (count > SIZE_MAX / sizeof(ferry_mem_info)) /* a huge strided list */
        return FERRY_ERR_NO_MEMORY;
    ferry_mem_info *res = malloc(count * sizeof(*res));
    if (!res)
        return FERRY_ERR_NO_MEMORY;
    if (list->type == FERRY_MEM_OBJ)
        rc = fy_query_by_backend(agent, list, backend, res, count);
    else
        fy_query_all(agent, list, backend, res, count);
    if (rc == FERRY_OK)
        fy_query_copy_out(res, count, infos);
    free(res);
    return rc;
}
