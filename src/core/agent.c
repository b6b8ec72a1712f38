/* SPDX-License-Identifier: Apache-2.0 */
/* Agent lifecycle: config, create (every service of src/core, then the
 * side channel), destroy (the reverse), name and counters.
 *
 * Locking (documented in docs/api/agent.md):
 *  - agent->lock (fy_lock): reader/writer lock. Writers: backend creation,
 *    registration, metadata load/invalidate, prepared-list creation for
 *    remotes is a reader. Readers: prep, make/create. Post, status and
 *    release of a request take no agent lock in RW mode: a request owns its
 *    state and every shared object it points to is refcounted.
 *  - prepped.mu, xfers.mu: the lists of live prepared lists and requests
 *    (for destroy).
 *  - notifs.mu: the notification queue.
 *  - per-backend mutex: only for plugins that are not thread-safe.
 * Lock order: agent->lock, then backend mutex, then notifs.mu or a handle list's mu. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/api.h"
#include "common/clock.h"
#include "common/log.h"
#include "core/agent.h"
#include "core/alloc.h"
#include "core/backend.h"
#include "core/handles.h"
#include "core/hlist.h"
#include "core/notif_queue.h"
#include "core/prep.h"
#include "core/progress.h"
#include "core/registry.h"
#include "core/remote.h"
#include "core/sync.h"
#include "core/xfer.h"
#include "metadata/auth.h"
#include "sidechannel/sidechannel.h"
#include "ferry/ferry.h"

/* A deadline of 60 s is far beyond any healthy transfer (a GiB moves in
 * well under a second on every supported transport, even over loopback
 * TCP) yet bounds a wait on a peer that froze without dropping its
 * connection. FERRY_XFER_TIMEOUT_MS: a number of ms, or "none". */
static uint32_t fy_xfer_timeout_default(void)
{
    const char *env = getenv("FERRY_XFER_TIMEOUT_MS");
    char *end;
    if (!env || !*env)
        return FERRY_XFER_TIMEOUT_DEFAULT_MS;
    if (!strcmp(env, "none"))
        return FERRY_TIMEOUT_NONE;
    errno = 0;
    unsigned long long ms = strtoull(env, &end, 10);
    if (errno || *end || *env < '0' || *env > '9' || !ms || ms > FERRY_TIMEOUT_NONE) {
        FY_WARN("FERRY_XFER_TIMEOUT_MS=%s is not a number of ms (1..%u) or \"none\": using %u", env,
                FERRY_TIMEOUT_NONE, FERRY_XFER_TIMEOUT_DEFAULT_MS);
        return FERRY_XFER_TIMEOUT_DEFAULT_MS;
    }
    return (uint32_t)ms;
}

FY_API void ferry_agent_config_init(ferry_agent_config *config)
{
    if (!config)
        return;
    memset(config, 0, sizeof(*config));
    config->size = sizeof(*config);
    config->progress_delay_us = 100;
    config->listen_host = "0.0.0.0";
    config->sync_mode = FERRY_SYNC_RW;
    config->notif_queue_cap = 65536;
    config->sc_timeout_ms = 5000;
    config->sc_max_frame = 256u << 20;
    config->xfer_timeout_ms = fy_xfer_timeout_default();
}

/* ---- create / destroy ---- */

static ferry_status fy_config_check(const ferry_agent_config *cfg)
{
    if (!cfg || cfg->size < offsetof(ferry_agent_config, telemetry) || !cfg->name ||
        !cfg->name[0] || strlen(cfg->name) > FERRY_NAME_MAX) {
        FY_ERR("agent config: NULL, wrong size, or name empty/over %d bytes", FERRY_NAME_MAX);
        return FERRY_ERR_INVALID_PARAM;
    }
    if (cfg->size >= offsetof(ferry_agent_config, notif_queue_cap) &&
        cfg->sync_mode > FERRY_SYNC_NONE) {
        FY_ERR("agent config: unknown sync mode %d", (int)cfg->sync_mode);
        return FERRY_ERR_INVALID_PARAM;
    }
    return FERRY_OK;
}

/* Copies the caller's config, defaulting fields an older caller lacks. */
static void fy_config_copy(ferry_agent *agent, const ferry_agent_config *cfg)
{
    ferry_agent_config_init(&agent->cfg);
    size_t n = cfg->size < sizeof(agent->cfg) ? cfg->size : sizeof(agent->cfg);
    memcpy(&agent->cfg, cfg, n);
    agent->cfg.size = sizeof(agent->cfg);
    agent->cfg.name = agent->name;
    snprintf(agent->listen_host, sizeof(agent->listen_host), "%s",
             cfg->listen_host && cfg->listen_host[0] ? cfg->listen_host : "0.0.0.0");
    agent->cfg.listen_host = agent->listen_host;
    if (!agent->cfg.notif_queue_cap)
        agent->cfg.notif_queue_cap = 65536;
    if (!agent->cfg.sc_timeout_ms)
        agent->cfg.sc_timeout_ms = 5000;
    if (!agent->cfg.sc_max_frame)
        agent->cfg.sc_max_frame = 256u << 20;
    if (!agent->cfg.xfer_timeout_ms)
        agent->cfg.xfer_timeout_ms = fy_xfer_timeout_default();
    const char *env = getenv("FERRY_TELEMETRY");
    if (env && env[0] == '1')
        agent->cfg.telemetry = true;
    agent->cfg.auth_key = NULL; /* the key lives in agent->auth only */
    /* The telemetry strings live in agent->tm's resolved copy only. */
    agent->cfg.telemetry_exporters = agent->cfg.telemetry_dir = NULL;
    agent->cfg.telemetry_metrics = agent->cfg.telemetry_buckets_us = NULL;
    agent->cfg.reg_cap_backends = NULL;
}

/* The key, from the config when the caller's struct has the field. */
static ferry_status fy_config_auth(ferry_agent *agent, const ferry_agent_config *cfg)
{
    bool has = cfg->size >= offsetof(ferry_agent_config, auth_key) + sizeof(cfg->auth_key);
    return fy_auth_init(&agent->auth, has ? cfg->auth_key : NULL);
}

static uint64_t fy_random_uid(void)
{
    uint64_t uid = 0;
    if (getrandom(&uid, sizeof(uid), 0) != sizeof(uid))
        uid = fy_now_ns() ^ ((uint64_t)getpid() << 32);
    return uid ? uid : 1;
}

/* The config's telemetry fields, where the caller's struct has them. */
#define FY_CFG_HAS(cfg, field)                                                                     \
    ((cfg)->size >= offsetof(ferry_agent_config, field) + sizeof((cfg)->field))

static ferry_status fy_agent_telemetry(ferry_agent *agent, const ferry_agent_config *cfg)
{
    fy_tm_settings s = {.telemetry = agent->cfg.telemetry,
                        .cap_agent = agent->cfg.reg_cap_bytes,
                        .status_name = ferry_status_name,
                        .mem_type_name = ferry_mem_type_name};
    if (FY_CFG_HAS(cfg, reg_cap_backends)) {
        s.exporters = cfg->telemetry_exporters;
        s.dir = cfg->telemetry_dir;
        s.ring_slots = cfg->telemetry_ring_slots;
        s.interval_ms = cfg->telemetry_interval_ms;
        s.prom_port = cfg->telemetry_prometheus_port;
        s.metrics = cfg->telemetry_metrics;
        s.buckets_us = cfg->telemetry_buckets_us;
        s.cap_backends = cfg->reg_cap_backends;
    }
    ferry_status rc = fy_tm_init(&agent->tm, agent->name, &s);
    agent->cfg.telemetry = agent->tm.cfg.on; /* the environment may have turned it on */
    agent->cfg.reg_cap_bytes = agent->tm.cfg.cap_agent;
    return rc;
}

/* Frees what ferry_agent_create set up before any thread started. */
static void fy_agent_free(ferry_agent *agent)
{
    fy_notif_queue_fini(&agent->notifs);
    free(agent->remotes);
    fy_hlist_fini(&agent->prepped);
    fy_hlist_fini(&agent->xfers);
    fy_lock_fini(&agent->lock);
    fy_auth_fini(&agent->auth);
    fy_handle_free(agent);
}

FY_API ferry_status ferry_agent_create(const ferry_agent_config *config, ferry_agent **out)
{
    if (!out || fy_config_check(config) != FERRY_OK)
        return FERRY_ERR_INVALID_PARAM;
    ferry_agent *agent = calloc(1, sizeof(*agent));
    if (!agent)
        return FERRY_ERR_NO_MEMORY;
    strcpy(agent->name, config->name);
    fy_config_copy(agent, config);
    agent->uid = fy_random_uid();
    fy_lock_init(&agent->lock, agent->cfg.sync_mode);
    fy_notif_queue_init(&agent->notifs, agent->cfg.notif_queue_cap, agent->name);
    fy_hlist_init(&agent->prepped);
    fy_hlist_init(&agent->xfers);
    agent->progress_wake.fd = -1;
    /* Recorded first: destroy, which undoes a failed start, checks it. */
    ferry_status rc = fy_handle_add(agent, FY_H_AGENT);
    if (rc != FERRY_OK) {
        fy_agent_free(agent);
        return rc;
    }
    rc = fy_config_auth(agent, config);
    if (rc == FERRY_OK)
        rc = fy_agent_telemetry(agent, config);
    if (rc == FERRY_OK)
        rc = fy_progress_start(agent);
    if (rc == FERRY_OK)
        rc = fy_sc_start(agent);
    if (rc != FERRY_OK) {
        ferry_agent_destroy(agent);
        return rc;
    }
    *out = agent;
    return FERRY_OK;
}

static void fy_release_handles(ferry_agent *agent)
{
    fy_link *node;
    while ((node = fy_hlist_first(&agent->xfers)))
        ferry_xfer_release((ferry_xfer *)node);
    while ((node = fy_hlist_first(&agent->prepped)))
        ferry_prepped_release((ferry_prepped *)node);
}

/* A destroyed agent (or one destroyed twice) is refused by the handle
 * registry, like every request, prepared list and backend it owned. */
FY_API void ferry_agent_destroy(ferry_agent *agent)
{
    if (!fy_handle_del(agent, FY_H_AGENT, __func__))
        return;
    fy_sc_stop(agent); /* its threads call into the agent: stop them first */
    fy_progress_stop(agent);
    fy_tm_fini(&agent->tm); /* the exporters read it from their threads */
    fy_release_handles(agent);
    fy_remotes_clear(agent);
    fy_registry_clear(agent);
    fy_allocs_clear(agent);
    for (uint32_t i = agent->num_backends; i-- > 0;)
        fy_backend_destroy(agent->backends[i]);
    fy_agent_free(agent);
}

FY_API const char *ferry_agent_name(const ferry_agent *agent)
{
    return FY_AGENT_OK(agent) ? agent->name : NULL;
}

FY_API void ferry_counters_init(ferry_counters *c)
{
    if (!c)
        return;
    memset(c, 0, sizeof(*c));
    c->size = sizeof(*c);
}

FY_API ferry_status ferry_counters_get(ferry_agent *agent, ferry_counters *c)
{
    if (!FY_AGENT_OK(agent) || !c || c->size < offsetof(ferry_counters, auth_failures))
        return FERRY_ERR_INVALID_PARAM;
    if (c->size >= sizeof(*c))
        c->auth_failures = atomic_load(&agent->auth.failures);
    fy_tm_traffic(&agent->tm, &c->tx_bytes, &c->rx_bytes, &c->tx_requests, &c->rx_requests);
    c->xfer_errors = agent->xfer_errors;
    c->notifs_received = agent->notifs.received;
    c->notifs_dropped = agent->notifs.dropped;
    fy_lock_rd(&agent->lock);
    c->mem_registered = c->regions = 0;
    for (int t = 0; t < FERRY_MEM_TYPE_COUNT; t++) {
        c->mem_registered += agent->reg.bytes[t];
        c->regions += agent->reg.regions[t];
    }
    fy_unlock(&agent->lock, false);
    return FERRY_OK;
}

FY_API ferry_status ferry_metrics_get(ferry_agent *agent, ferry_metrics **out)
{
    if (!FY_AGENT_OK(agent) || !out)
        return FERRY_ERR_INVALID_PARAM;
    return fy_tm_snapshot(&agent->tm, out);
}
