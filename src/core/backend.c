/* SPDX-License-Identifier: Apache-2.0 */
/* Backends: instances of plugins inside an agent. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/api.h"
#include "common/log.h"
#include "core/agent.h"
#include "core/backend.h"
#include "core/handles.h"
#include "core/notif_queue.h"
#include "core/plugin_loader.h"
#include "core/sync.h"
#include "core/wake.h"
#include "ferry/ferry.h"

/* What a plugin says while its init runs, down to INFO: a plugin may log
 * the reason of a failure that is normal on this host (no CUDA driver) at
 * INFO, so that a healthy run stays quiet; when init fails, that reason
 * becomes the call's detail (ferry_last_error) all the same. */
static _Thread_local char fy_init_said[512];
static _Thread_local const ferry_backend *fy_init_be;

static void fy_init_note(const ferry_backend *be, ferry_log_level level, const char *fmt,
                         va_list ap)
{
    size_t n = strlen(fy_init_said);
    if (be != fy_init_be || level > FERRY_LOG_INFO || level == FERRY_LOG_ERROR ||
        n + 2 >= sizeof(fy_init_said))
        return; /* ERROR lines are kept by the logger itself */
    if (n)
        n += (size_t)snprintf(fy_init_said + n, sizeof(fy_init_said) - n, "; ");
    vsnprintf(fy_init_said + n, sizeof(fy_init_said) - n, fmt, ap);
}

/* The logger handed to plugins: the backend's name is the line's who. */
static void fy_be_log(void *agent_ctx, ferry_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fy_be_log(void *agent_ctx, ferry_log_level level, const char *fmt, ...)
{
    ferry_backend *be = agent_ctx;
    va_list ap, note;
    va_start(ap, fmt);
    va_copy(note, ap);
    fy_init_note(be, level, fmt, note);
    va_end(note);
    fy_vlog_from(level, be->agent->name, be->plugin->name, fmt, ap);
    va_end(ap);
}

/* The host's notif_deliver: into the agent's queue. */
static void fy_be_notif_deliver(void *agent_ctx, const char *from, const void *msg, size_t len)
{
    ferry_backend *be = agent_ctx;
    bool queued = fy_notif_queue_put(&be->agent->notifs, from, msg, len);
    if (be->agent->cfg.telemetry)
        fy_tm_notif(&be->agent->tm, be->index, queued ? FY_TM_NOTIF_RECEIVED : FY_TM_NOTIF_DROPPED);
}

/* Adaptive: a waiter spins briefly before it sleeps, as the ops it waits
 * for (one progress pass, a status check) take a microsecond or so. */
static void fy_be_mutex_init(pthread_mutex_t *mu)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(mu, &attr);
    pthread_mutexattr_destroy(&attr);
}

void fy_be_enter(ferry_backend *be)
{
    if (!be->serialize)
        return;
    atomic_fetch_add_explicit(&be->callers, 1, memory_order_relaxed);
    pthread_mutex_lock(&be->mu);
    atomic_fetch_sub_explicit(&be->callers, 1, memory_order_relaxed);
}

/* A plain mutex is unfair: a thread that unlocks and relocks at once (the
 * progress thread spinning over its passes) takes it again before a woken
 * waiter runs, and a caller's make or post waited out several passes. */
bool fy_be_try_enter(ferry_backend *be)
{
    if (!be->serialize)
        return true;
    return !atomic_load_explicit(&be->callers, memory_order_relaxed) &&
           pthread_mutex_trylock(&be->mu) == 0;
}

void fy_be_leave(ferry_backend *be)
{
    if (be->serialize)
        pthread_mutex_unlock(&be->mu);
}

bool fy_be_of(const ferry_backend *be, const ferry_agent *agent, const char *fn)
{
    return fy_handle_ok(be, FY_H_BACKEND, fn) && be->agent == agent;
}

bool fy_be_supports(ferry_backend *be, ferry_mem_type local, ferry_mem_type remote, bool is_remote)
{
    const ferry_plugin_desc *d = be->plugin->desc;
    uint32_t need = is_remote ? FERRY_CAP_REMOTE : FERRY_CAP_LOCAL;
    if (!(d->caps & need) || !(be->mem_mask & FERRY_MEM_MASK(local)) ||
        !(be->mem_mask & FERRY_MEM_MASK(remote)))
        return false;
    ferry_status (*supports)(void *, ferry_mem_type, ferry_mem_type) = FY_OP(be, supports);
    return !supports || supports(be->priv, local, remote) == FERRY_OK;
}

static void fy_params_free(ferry_param *params, size_t n)
{
    for (size_t i = 0; params && i < n; i++) {
        free((char *)params[i].key);
        free((char *)params[i].value);
    }
    free(params);
}

static const ferry_param *fy_param_given(const ferry_param *given, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(given[i].key, key))
            return &given[i];
    return NULL;
}

/* Refuses keys the schema does not know and NULL keys or values. */
static ferry_status fy_params_check(const ferry_plugin_desc *d, const ferry_param *given, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bool known = false;
        if (!given[i].key || !given[i].value)
            return FERRY_ERR_INVALID_PARAM;
        for (size_t k = 0; k < d->num_params && !known; k++)
            known = !strcmp(d->params[k].key, given[i].key);
        if (!known) {
            FY_ERR("plugin %s has no param '%s'", d->name, given[i].key);
            return FERRY_ERR_INVALID_PARAM;
        }
    }
    return FERRY_OK;
}

/* Effective params: every schema key, the given value or the default. */
static ferry_status fy_params_build(ferry_backend *be, const ferry_param *given, size_t n)
{
    const ferry_plugin_desc *d = be->plugin->desc;
    ferry_status rc = fy_params_check(d, given, n);
    if (rc != FERRY_OK)
        return rc;
    be->params = calloc(d->num_params ? d->num_params : 1, sizeof(*be->params));
    if (!be->params)
        return FERRY_ERR_NO_MEMORY;
    for (size_t k = 0; k < d->num_params; k++) {
        const ferry_param *g = fy_param_given(given, n, d->params[k].key);
        const char *value = g ? g->value : d->params[k].default_value;
        be->params[k].key = strdup(d->params[k].key);
        be->params[k].value = strdup(value ? value : "");
        be->num_params = k + 1;
        if (!be->params[k].key || !be->params[k].value)
            return FERRY_ERR_NO_MEMORY;
    }
    return FERRY_OK;
}

static ferry_backend *fy_backend_alloc(ferry_agent *agent, fy_plugin *plugin)
{
    ferry_backend *be = calloc(1, sizeof(*be));
    if (!be)
        return NULL;
    be->priv = calloc(1, plugin->desc->priv_size ? plugin->desc->priv_size : 1);
    if (!be->priv) {
        free(be);
        return NULL;
    }
    be->agent = agent;
    be->plugin = plugin;
    be->ops = plugin->desc->ops;
    be->serialize = !(plugin->desc->flags & FERRY_PLUGIN_F_THREAD_SAFE);
    fy_be_mutex_init(&be->mu);
    be->host = (ferry_plugin_host){.size = sizeof(be->host),
                                   .agent_name = agent->name,
                                   .agent_uid = agent->uid,
                                   .agent_ctx = be,
                                   .notif_deliver = fy_be_notif_deliver,
                                   .log = fy_be_log};
    return be;
}

static void fy_backend_free(ferry_backend *be)
{
    fy_params_free(be->params, be->num_params);
    pthread_mutex_destroy(&be->mu);
    free(be->priv);
    fy_handle_free(be);
}

void fy_backend_destroy(ferry_backend *be)
{
    fy_handle_del(be, FY_H_BACKEND, __func__);
    be->ops->fini(be->priv);
    fy_backend_free(be);
}

static ferry_status fy_backend_check_new(ferry_agent *agent, const char *plugin)
{
    if (agent->num_backends == FY_MAX_BACKENDS) {
        FY_ERR("agent %s: at most %u backends", agent->name, FY_MAX_BACKENDS);
        return FERRY_ERR_NO_RESOURCES;
    }
    for (uint32_t i = 0; i < agent->num_backends; i++)
        if (!strcasecmp(agent->backends[i]->plugin->name, plugin)) {
            FY_ERR("agent %s already has a %s backend", agent->name, plugin);
            return FERRY_ERR_NOT_ALLOWED;
        }
    return FERRY_OK;
}

/* Reads what the instance can really do, once, after init. */
static void fy_backend_probe(ferry_backend *be)
{
    uint32_t (*mem_types)(void *) = FY_OP(be, mem_types);
    ferry_status (*wait_fd)(void *, int *) = FY_OP(be, wait_fd);
    be->mem_mask = be->plugin->desc->mem_mask;
    if (mem_types)
        be->mem_mask &= mem_types(be->priv);
    be->wait_fd = -1;
    if (wait_fd && FY_OP(be, arm) && wait_fd(be->priv, &be->wait_fd) != FERRY_OK)
        be->wait_fd = -1;
    uint32_t (*reg_pins)(void *) = FY_OP(be, reg_pins);
    be->reg_pins = reg_pins ? reg_pins(be->priv) : 1;
    be->reg_pins += !be->reg_pins;
}

/* NOT_SUPPORTED: this host lacks what the plugin needs (a driver, a
 * device), which callers probe for: INFO, with the reason kept. */
static void fy_backend_init_failed(const ferry_backend *be, ferry_status rc)
{
    const char *name = be->plugin->name;
    if (fy_init_said[0])
        fy_error_set(name, "%s", fy_init_said);
    if (rc == FERRY_ERR_NOT_SUPPORTED)
        fy_log_fail(FERRY_LOG_INFO, "core", "backend %s: init failed: %s", name,
                    ferry_strerror(rc));
    else
        FY_ERR("backend %s: init failed: %s", name, ferry_strerror(rc));
}

static ferry_status fy_backend_init(ferry_backend *be, const ferry_param *params, size_t n)
{
    ferry_status rc = fy_params_build(be, params, n);
    if (rc != FERRY_OK)
        return rc;
    fy_init_said[0] = '\0';
    fy_init_be = be;
    rc = be->ops->init(be->priv, &be->host, be->params, be->num_params);
    fy_init_be = NULL;
    if (rc != FERRY_OK) {
        fy_backend_init_failed(be, rc);
        return rc > 0 ? FERRY_ERR_BACKEND : rc;
    }
    fy_backend_probe(be);
    return FERRY_OK;
}

FY_API ferry_status ferry_backend_create(ferry_agent *agent, const char *plugin,
                                         const ferry_param *params, size_t num_params,
                                         ferry_backend **out)
{
    if (!FY_AGENT_OK(agent) || !plugin || !out || (num_params && !params))
        return FERRY_ERR_INVALID_PARAM;
    fy_plugin *p;
    ferry_status rc = fy_plugin_usable(plugin, &p);
    if (rc != FERRY_OK)
        return rc;
    fy_lock_wr(&agent->lock);
    rc = fy_backend_check_new(agent, p->name);
    ferry_backend *be = rc == FERRY_OK ? fy_backend_alloc(agent, p) : NULL;
    if (rc == FERRY_OK && !be)
        rc = FERRY_ERR_NO_MEMORY;
    if (rc == FERRY_OK)
        rc = fy_backend_init(be, params, num_params);
    if (rc == FERRY_OK && (rc = fy_handle_add(be, FY_H_BACKEND)) != FERRY_OK)
        be->ops->fini(be->priv); /* initialised: undo it before the free below */
    if (rc == FERRY_OK) {
        be->index = agent->num_backends;
        agent->backends[agent->num_backends++] = be;
        fy_tm_backend_add(&agent->tm, be->index, p->name);
        *out = be;
    } else if (be) {
        fy_backend_free(be);
    }
    fy_unlock(&agent->lock, true);
    if (rc == FERRY_OK)
        fy_wake_kick(&agent->progress_wake); /* it may be asleep, planned without this backend */
    return rc;
}

FY_API void ferry_backend_caps_init(ferry_backend_caps *caps)
{
    if (!caps)
        return;
    memset(caps, 0, sizeof(*caps));
    caps->size = sizeof(*caps);
}

FY_API ferry_status ferry_backend_get_caps(const ferry_backend *be, ferry_backend_caps *caps)
{
    if (!FY_BACKEND_OK(be) || !caps || caps->size < sizeof(*caps))
        return FERRY_ERR_INVALID_PARAM;
    caps->flags = be->plugin->desc->caps;
    caps->mem_mask = be->mem_mask;
    return FERRY_OK;
}

FY_API const char *ferry_backend_name(const ferry_backend *be)
{
    return FY_BACKEND_OK(be) ? be->plugin->desc->name : NULL;
}

FY_API ferry_status ferry_backend_params(const ferry_backend *be, const ferry_param **params,
                                         size_t *count)
{
    if (!FY_BACKEND_OK(be) || !params || !count)
        return FERRY_ERR_INVALID_PARAM;
    *params = be->params;
    *count = be->num_params;
    return FERRY_OK;
}

FY_API ferry_status ferry_backend_find(ferry_agent *agent, const char *plugin, ferry_backend **out)
{
    if (!FY_AGENT_OK(agent) || !plugin || !out)
        return FERRY_ERR_INVALID_PARAM;
    ferry_status rc = FERRY_ERR_NOT_FOUND;
    fy_lock_rd(&agent->lock);
    for (uint32_t i = 0; i < agent->num_backends; i++)
        if (!strcasecmp(agent->backends[i]->plugin->name, plugin)) {
            *out = agent->backends[i];
            rc = FERRY_OK;
        }
    fy_unlock(&agent->lock, false);
    return rc;
}

ferry_status fy_sel_mask(ferry_agent *agent, const ferry_backend_sel *sel, uint32_t *mask)
{
    if (!sel || !sel->num_backends) {
        *mask = agent->num_backends ? (uint32_t)((1ull << agent->num_backends) - 1) : 0;
        return FERRY_OK;
    }
    if (sel->size < sizeof(*sel) || !sel->backends)
        return FERRY_ERR_INVALID_PARAM;
    *mask = 0;
    for (size_t i = 0; i < sel->num_backends; i++) {
        const ferry_backend *be = sel->backends[i];
        if (!fy_be_of(be, agent, __func__))
            return FERRY_ERR_INVALID_PARAM;
        *mask |= 1u << be->index;
    }
    return FERRY_OK;
}
