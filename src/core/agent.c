/* SPDX-License-Identifier: Apache-2.0 */
/* Agent lifecycle, locking, progress thread, counters.
 *
 * Locking (documented in docs/api/agent.md):
 *  - agent->lock (fy_lock): reader/writer lock. Writers: backend creation,
 *    registration, metadata load/invalidate, prepared-list creation for
 *    remotes is a reader. Readers: prep, make/create. Post, status and
 *    release of a request take no agent lock in RW mode: a request owns its
 *    state and every shared object it points to is refcounted.
 *  - handles_mu: the lists of live prepared lists and requests (for destroy).
 *  - notifs.mu: the notification queue.
 *  - per-backend mutex: only for plugins that are not thread-safe.
 * Lock order: agent->lock, then backend mutex, then notifs.mu/handles_mu. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>
#include <time.h>

#include "core/internal.h"
#include "metadata/sidechannel.h"

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

/* ---- lock ---- */

static void fy_lock_init(fy_lock *l, ferry_sync_mode mode)
{
    l->mode = mode;
    pthread_rwlock_init(&l->rw, NULL);
    pthread_mutex_init(&l->mu, NULL);
}

static void fy_lock_fini(fy_lock *l)
{
    pthread_rwlock_destroy(&l->rw);
    pthread_mutex_destroy(&l->mu);
}

void fy_lock_rd(fy_lock *l)
{
    if (l->mode == FERRY_SYNC_RW)
        pthread_rwlock_rdlock(&l->rw);
    else if (l->mode == FERRY_SYNC_STRICT)
        pthread_mutex_lock(&l->mu);
}

void fy_lock_wr(fy_lock *l)
{
    if (l->mode == FERRY_SYNC_RW)
        pthread_rwlock_wrlock(&l->rw);
    else if (l->mode == FERRY_SYNC_STRICT)
        pthread_mutex_lock(&l->mu);
}

void fy_unlock(fy_lock *l, bool writer)
{
    (void)writer;
    if (l->mode == FERRY_SYNC_RW)
        pthread_rwlock_unlock(&l->rw);
    else if (l->mode == FERRY_SYNC_STRICT)
        pthread_mutex_unlock(&l->mu);
}

void fy_hot_enter(ferry_agent *agent)
{
    if (agent->lock.mode == FERRY_SYNC_STRICT)
        pthread_mutex_lock(&agent->lock.mu);
}

void fy_hot_leave(ferry_agent *agent)
{
    if (agent->lock.mode == FERRY_SYNC_STRICT)
        pthread_mutex_unlock(&agent->lock.mu);
}

/* ---- handle lists ---- */

void fy_link_add(ferry_agent *agent, fy_link *head, fy_link *node)
{
    pthread_mutex_lock(&agent->handles_mu);
    node->next = head->next;
    node->prev = head;
    head->next->prev = node;
    head->next = node;
    pthread_mutex_unlock(&agent->handles_mu);
}

void fy_link_del(ferry_agent *agent, fy_link *node)
{
    pthread_mutex_lock(&agent->handles_mu);
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->next = node->prev = node;
    pthread_mutex_unlock(&agent->handles_mu);
}

/* Pops one node of a list, or NULL when empty. */
static fy_link *fy_link_pop(ferry_agent *agent, fy_link *head)
{
    pthread_mutex_lock(&agent->handles_mu);
    fy_link *node = head->next == head ? NULL : head->next;
    pthread_mutex_unlock(&agent->handles_mu);
    return node;
}

/* ---- progress ---- */

/* Returns the first backend error, else IN_PROGRESS when some backend
 * reported work done (its progress op returned IN_PROGRESS), else OK. */
ferry_status fy_agent_poll(ferry_agent *agent)
{
    ferry_status first = FERRY_OK;
    bool busy = false;
    for (uint32_t i = 0; i < agent->num_backends; i++) {
        ferry_backend *be = agent->backends[i];
        ferry_status (*progress)(void *) = FY_OP(be, progress);
        if (!progress)
            continue;
        fy_be_enter(be);
        ferry_status rc = progress(be->priv);
        fy_be_leave(be);
        if (rc < 0 && first == FERRY_OK)
            first = rc;
        busy |= rc == FERRY_IN_PROGRESS;
    }
    return first == FERRY_OK && busy ? FERRY_IN_PROGRESS : first;
}

FY_API ferry_status ferry_agent_progress(ferry_agent *agent)
{
    if (!FY_AGENT_OK(agent))
        return FERRY_ERR_INVALID_PARAM;
    fy_lock_rd(&agent->lock);
    ferry_status rc = fy_agent_poll(agent);
    fy_unlock(&agent->lock, false);
    return rc == FERRY_IN_PROGRESS ? FERRY_OK : rc;
}

/* poll() set of the progress thread: the wake eventfd, then every
 * backend's wait fd. Returns false when some backend needs progress but
 * has no fd (then only a timed sleep can serve it). */
static bool fy_progress_fds(ferry_agent *agent, struct pollfd *fds, nfds_t *n, bool *any)
{
    bool all_fds = true;
    *n = 1;
    *any = false;
    fds[0] = (struct pollfd){.fd = agent->progress_wake, .events = POLLIN};
    for (uint32_t i = 0; i < agent->num_backends; i++) {
        ferry_backend *be = agent->backends[i];
        if (!FY_OP(be, progress))
            continue;
        *any = true;
        if (be->wait_fd < 0)
            all_fds = false;
        else
            fds[(*n)++] = (struct pollfd){.fd = be->wait_fd, .events = POLLIN};
    }
    return all_fds;
}

/* Arms every backend's fd; false when one has events pending. */
static bool fy_progress_arm(ferry_agent *agent)
{
    for (uint32_t i = 0; i < agent->num_backends; i++) {
        ferry_backend *be = agent->backends[i];
        ferry_status (*arm)(void *) = FY_OP(be, arm);
        if (be->wait_fd < 0 || !arm)
            continue;
        fy_be_enter(be);
        ferry_status rc = arm(be->priv);
        fy_be_leave(be);
        if (rc != FERRY_OK)
            return false;
    }
    return true;
}

/* A backend that needs progress but offers no fd is polled this often
 * while idle: cheap (well under 1% of a core) yet prompt enough for
 * notifications and for peers whose transfers need our progress. */
#define FY_IDLE_POLL_NS 1000000u

static struct timespec fy_ns(uint64_t ns)
{
    return (struct timespec){(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
}

/* How long to sleep: the configured delay while requests are in flight
 * (some transports complete without an fd event); when idle, until an fd
 * fires if every backend has one (not at all if events are pending), else
 * FY_IDLE_POLL_NS; 1 s when no backend needs progress at all. */
static struct timespec fy_progress_nap(ferry_agent *agent, struct pollfd *fds, nfds_t *n)
{
    bool any;
    struct timespec nap;
    fy_lock_rd(&agent->lock);
    bool all_fds = fy_progress_fds(agent, fds, n, &any);
    if (!any)
        nap = fy_ns(1000000000u);
    else if (atomic_load(&agent->inflight) > 0)
        nap = fy_ns((uint64_t)agent->cfg.progress_delay_us * 1000u);
    else if (all_fds)
        nap = fy_progress_arm(agent) ? fy_ns(1000000000u) : fy_ns(0);
    else
        nap = fy_ns(FY_IDLE_POLL_NS);
    fy_unlock(&agent->lock, false);
    return nap;
}

/* After a backend reported work, keep polling without sleeping this long:
 * a peer that is moving data through us (transports that need the
 * target's progress) gets full speed, an idle agent still sleeps. */
#define FY_ACTIVE_SPIN_NS 2000000u

static void *fy_progress_main(void *arg)
{
    ferry_agent *agent = arg;
    struct pollfd fds[FY_MAX_BACKENDS + 1];
    uint64_t last_work = 0;
    while (!atomic_load(&agent->progress_stop)) {
        fy_lock_rd(&agent->lock);
        if (fy_agent_poll(agent) == FERRY_IN_PROGRESS)
            last_work = fy_now_ns();
        fy_unlock(&agent->lock, false);
        if (fy_now_ns() - last_work < FY_ACTIVE_SPIN_NS)
            continue;
        nfds_t n;
        struct timespec nap = fy_progress_nap(agent, fds, &n);
        if ((nap.tv_sec || nap.tv_nsec) && ppoll(fds, n, &nap, NULL) > 0 && fds[0].revents) {
            uint64_t drain;
            if (read(agent->progress_wake, &drain, sizeof(drain)) < 0)
                continue; /* nothing to drain: spurious */
        }
    }
    return NULL;
}

static ferry_status fy_progress_start(ferry_agent *agent)
{
    agent->progress_wake = -1;
    if (!agent->cfg.progress_thread)
        return FERRY_OK;
    agent->progress_wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (agent->progress_wake < 0 ||
        pthread_create(&agent->progress_tid, NULL, fy_progress_main, agent) != 0) {
        FY_ERR("agent %s: cannot start the progress thread", agent->name);
        return FERRY_ERR_NO_RESOURCES;
    }
    agent->progress_running = true;
    return FERRY_OK;
}

/* Wakes the progress thread out of its sleep (stop, or new backend fd). */
void fy_progress_kick(ferry_agent *agent)
{
    uint64_t one = 1;
    if (agent->progress_wake >= 0 && write(agent->progress_wake, &one, sizeof(one)) < 0)
        FY_DBG("progress wake: counter saturated"); /* already awake */
}

static void fy_progress_stop(ferry_agent *agent)
{
    if (agent->progress_running) {
        atomic_store(&agent->progress_stop, true);
        fy_progress_kick(agent);
        pthread_join(agent->progress_tid, NULL);
        agent->progress_running = false;
    }
    if (agent->progress_wake >= 0)
        close(agent->progress_wake);
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

/* Frees what ferry_agent_create set up before any thread started. */
static void fy_agent_free(ferry_agent *agent)
{
    fy_notif_queue_fini(&agent->notifs);
    free(agent->remotes);
    pthread_mutex_destroy(&agent->handles_mu);
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
    fy_notif_queue_init(&agent->notifs, agent->cfg.notif_queue_cap);
    pthread_mutex_init(&agent->handles_mu, NULL);
    agent->prepped.next = agent->prepped.prev = &agent->prepped;
    agent->xfers.next = agent->xfers.prev = &agent->xfers;
    agent->progress_wake = -1;
    /* Recorded first: destroy, which undoes a failed start, checks it. */
    ferry_status rc = fy_handle_add(agent, FY_H_AGENT);
    if (rc != FERRY_OK) {
        fy_agent_free(agent);
        return rc;
    }
    rc = fy_config_auth(agent, config);
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
    while ((node = fy_link_pop(agent, &agent->xfers)))
        ferry_xfer_release((ferry_xfer *)node);
    while ((node = fy_link_pop(agent, &agent->prepped)))
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
    c->tx_bytes = agent->tx_bytes;
    c->rx_bytes = agent->rx_bytes;
    c->tx_requests = agent->tx_requests;
    c->rx_requests = agent->rx_requests;
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
