/* SPDX-License-Identifier: Apache-2.0 */
/* Notifications: taking them from the agent's queue (notif_queue.c) by
 * sender or tag, and sending one alone. */
#include <stdlib.h>
#include <string.h>

#include "common/api.h"
#include "common/log.h"
#include "core/agent.h"
#include "core/backend.h"
#include "core/handles.h"
#include "core/notif_queue.h"
#include "core/plugin_loader.h"
#include "core/remote.h"
#include "core/sync.h"
#include "ferry/ferry.h"

struct ferry_notif_batch {
    size_t count;
    fy_notif **items;
};

static bool fy_match_from(const fy_notif *n, const void *arg)
{
    return !strcmp(n->from, arg);
}

/* Without a progress thread, looking for notifications is what drives
 * their arrival: progress the backends first. */
static void fy_notif_progress(ferry_agent *agent)
{
    if (!agent->progress_running)
        ferry_agent_progress(agent);
}

FY_API ferry_status ferry_notif_take(ferry_agent *agent, const char *remote_agent,
                                     ferry_notif_batch **out)
{
    if (!FY_AGENT_OK(agent) || !out)
        return FERRY_ERR_INVALID_PARAM;
    fy_notif_progress(agent);
    fy_notif_queue *q = &agent->notifs;
    ferry_notif_batch *b = calloc(1, sizeof(*b));
    if (!b)
        return FERRY_ERR_NO_MEMORY;
    pthread_mutex_lock(&q->mu);
    b->items = malloc((q->count ? q->count : 1) * sizeof(*b->items));
    if (b->items)
        b->count = fy_notif_unlink(q, remote_agent ? fy_match_from : NULL, remote_agent, b->items,
                                   q->count);
    pthread_mutex_unlock(&q->mu);
    if (!b->items) {
        free(b);
        return FERRY_ERR_NO_MEMORY;
    }
    *out = b;
    return FERRY_OK;
}

FY_API size_t ferry_notif_batch_count(const ferry_notif_batch *b)
{
    return b ? b->count : 0;
}

FY_API ferry_status ferry_notif_batch_get(const ferry_notif_batch *b, size_t i,
                                          const char **remote_agent, const void **msg, size_t *len)
{
    if (!b || i >= b->count || !remote_agent || !msg || !len)
        return FERRY_ERR_INVALID_PARAM;
    *remote_agent = b->items[i]->from;
    *msg = b->items[i]->msg;
    *len = b->items[i]->len;
    return FERRY_OK;
}

FY_API void ferry_notif_batch_free(ferry_notif_batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->count; i++)
        fy_notif_free(b->items[i]);
    free(b->items);
    free(b);
}

typedef struct fy_tag_query {
    const char *from;
    const void *tag;
    size_t len;
    bool prefix;
} fy_tag_query;

static bool fy_match_tag(const fy_notif *n, const void *arg)
{
    const fy_tag_query *q = arg;
    if (strcmp(n->from, q->from) || n->len < q->len || (!q->prefix && n->len != q->len))
        return false;
    return !q->len || !memcmp(n->msg, q->tag, q->len);
}

FY_API ferry_status ferry_notif_take_tag(ferry_agent *agent, const char *remote_agent,
                                         const void *tag, size_t tag_len, bool prefix)
{
    if (!FY_AGENT_OK(agent) || !remote_agent || (tag_len && !tag))
        return FERRY_ERR_INVALID_PARAM;
    fy_notif_progress(agent);
    fy_tag_query query = {remote_agent, tag, tag_len, prefix};
    fy_notif *found = NULL;
    pthread_mutex_lock(&agent->notifs.mu);
    size_t n = fy_notif_unlink(&agent->notifs, fy_match_tag, &query, &found, 1);
    pthread_mutex_unlock(&agent->notifs.mu);
    fy_notif_free(found);
    return n ? FERRY_OK : FERRY_ERR_NOT_FOUND;
}

FY_API uint64_t ferry_notif_dropped(const ferry_agent *agent)
{
    return FY_AGENT_OK(agent) ? atomic_load(&((ferry_agent *)agent)->notifs.dropped) : 0;
}

/* ---- sending alone ---- */

static ferry_status fy_notif_pick(ferry_agent *agent, fy_remote *rem, const ferry_backend_sel *sel,
                                  ferry_backend **out)
{
    uint32_t mask;
    ferry_status rc = fy_sel_mask(agent, sel, &mask);
    if (rc != FERRY_OK)
        return rc;
    for (uint32_t b = 0; b < agent->num_backends; b++) {
        ferry_backend *be = agent->backends[b];
        if ((mask & rem->backend_mask & (1u << b)) && FY_OP(be, notif_send) &&
            (be->plugin->desc->caps & FERRY_CAP_NOTIF)) {
            *out = be;
            return FERRY_OK;
        }
    }
    FY_ERR("notif send: no backend with notifications reaches %s", rem->name);
    return FERRY_ERR_NOT_FOUND;
}

FY_API ferry_status ferry_notif_send(ferry_agent *agent, const char *remote_agent, const void *msg,
                                     size_t len, const ferry_backend_sel *sel)
{
    if (!FY_AGENT_OK(agent) || !remote_agent || (len && !msg) || len > FERRY_NOTIF_MAX_LEN)
        return FERRY_ERR_INVALID_PARAM;
    fy_lock_rd(&agent->lock);
    fy_remote *rem = fy_remote_lookup(agent, remote_agent);
    ferry_backend *be = NULL;
    ferry_status rc = rem ? fy_notif_pick(agent, rem, sel, &be) : FERRY_ERR_NOT_FOUND;
    if (!rem)
        FY_ERR("notif send: no metadata loaded for agent '%s'", remote_agent);
    if (rc == FERRY_OK) {
        fy_be_enter(be);
        rc = be->ops->notif_send(be->priv, rem->be_remote[be->index], msg, len);
        fy_be_leave(be);
    }
    if (rc == FERRY_OK && agent->cfg.telemetry)
        fy_tm_notif(&agent->tm, be->index, FY_TM_NOTIF_SENT);
    fy_unlock(&agent->lock, false);
    return rc;
}
