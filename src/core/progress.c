/* SPDX-License-Identifier: Apache-2.0 */
/* Progress: one pass over the backends (ferry_agent_progress), and the
 * progress thread that makes those passes by itself, sleeping in poll() on
 * the backends' fds (and its wake-up eventfd) while nothing is in flight. */
#include <poll.h>
#include <pthread.h>
#include <time.h>

#include "common/api.h"
#include "common/clock.h"
#include "common/log.h"
#include "core/agent.h"
#include "core/backend.h"
#include "core/handles.h"
#include "core/plugin_loader.h"
#include "core/progress.h"
#include "core/sync.h"
#include "core/wake.h"
#include "ferry/ferry.h"

/* One progress pass; *worked gets the bit of each backend that reported
 * work (IN_PROGRESS). give_way (the progress thread): a backend another
 * thread is in or waiting for is skipped this pass, its caller being the
 * one whose time counts. */
static ferry_status fy_poll_backends(ferry_agent *agent, bool give_way, uint32_t *worked)
{
    ferry_status first = FERRY_OK;
    *worked = 0;
    for (uint32_t i = 0; i < agent->num_backends; i++) {
        ferry_backend *be = agent->backends[i];
        ferry_status (*progress)(void *) = FY_OP(be, progress);
        if (!progress)
            continue;
        if (!give_way)
            fy_be_enter(be);
        else if (!fy_be_try_enter(be))
            continue;
        ferry_status rc = progress(be->priv);
        fy_be_leave(be);
        if (rc < 0 && first == FERRY_OK)
            first = rc;
        if (rc == FERRY_IN_PROGRESS)
            *worked |= 1u << i;
    }
    return first == FERRY_OK && *worked ? FERRY_IN_PROGRESS : first;
}

ferry_status fy_agent_poll(ferry_agent *agent)
{
    uint32_t worked;
    return fy_poll_backends(agent, false, &worked);
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
    fds[0] = (struct pollfd){.fd = agent->progress_wake.fd, .events = POLLIN};
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
 * notifications and for peers whose transfers need our progress. It also
 * bounds a sleep on fds while requests are in flight, so that their
 * deadlines are seen without a caller. */
#define FY_IDLE_POLL_NS   1000000u
#define FY_INFLIGHT_FD_NS 10000000u

static struct timespec fy_ns(uint64_t ns)
{
    return (struct timespec){(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
}

static bool fy_fd_completes(const ferry_backend *be)
{
    return be->wait_fd >= 0 && (be->plugin->desc->flags & FERRY_PLUGIN_F_FD_COMPLETES);
}

/* The backends whose work the progress thread follows by spinning a while
 * (FY_ACTIVE_SPIN_NS): those whose fd does not announce completions. */
static uint32_t fy_spin_mask(ferry_agent *agent)
{
    uint32_t mask = 0;
    for (uint32_t i = 0; i < agent->num_backends; i++)
        if (!fy_fd_completes(agent->backends[i]))
            mask |= 1u << i;
    return mask;
}

/* Whether a backend has requests in flight that only a timed poll sees
 * complete (its fd, if any, stays quiet for them). */
static bool fy_timer_inflight(ferry_agent *agent)
{
    for (uint32_t i = 0; i < agent->num_backends; i++) {
        ferry_backend *be = agent->backends[i];
        if (FY_OP(be, progress) && atomic_load(&be->inflight) > 0 && !fy_fd_completes(be))
            return true;
    }
    return false;
}

/* How long to sleep (not asked while spinning after work): the configured
 * delay while requests are in flight that complete without an fd event;
 * otherwise, when every backend has an fd, until one fires (not at all if
 * events are pending; at most FY_INFLIGHT_FD_NS while requests are in
 * flight), else FY_IDLE_POLL_NS; 1 s when no backend needs progress. */
static struct timespec fy_progress_nap(ferry_agent *agent, struct pollfd *fds, nfds_t *n)
{
    bool any;
    struct timespec nap;
    fy_lock_rd(&agent->lock);
    bool all_fds = fy_progress_fds(agent, fds, n, &any);
    if (!any)
        nap = fy_ns(1000000000u);
    else if (fy_timer_inflight(agent))
        nap = fy_ns((uint64_t)agent->cfg.progress_delay_us * 1000u);
    else if (all_fds)
        nap = !fy_progress_arm(agent)             ? fy_ns(0)
              : atomic_load(&agent->inflight) > 0 ? fy_ns(FY_INFLIGHT_FD_NS)
                                                  : fy_ns(1000000000u);
    else
        nap = fy_ns(FY_IDLE_POLL_NS);
    fy_unlock(&agent->lock, false);
    return nap;
}

/* After a backend of fy_spin_mask reported work, keep polling without
 * sleeping this long: a peer that is moving data through us (transports
 * that need the target's progress) gets full speed, an idle agent still
 * sleeps. */
#define FY_ACTIVE_SPIN_NS 2000000u

/* One pass; returns whether a backend of fy_spin_mask did work. */
static bool fy_progress_pass(ferry_agent *agent)
{
    uint32_t worked;
    fy_lock_rd(&agent->lock);
    fy_poll_backends(agent, true, &worked);
    bool spin_work = (worked & fy_spin_mask(agent)) != 0;
    fy_unlock(&agent->lock, false);
    return spin_work;
}

static void *fy_progress_main(void *arg)
{
    ferry_agent *agent = arg;
    struct pollfd fds[FY_MAX_BACKENDS + 1];
    uint64_t last_work = 0;
    fy_log_thread_agent(agent->name);
    while (!atomic_load(&agent->progress_stop)) {
        if (fy_progress_pass(agent))
            last_work = fy_now_ns();
        if (fy_now_ns() - last_work < FY_ACTIVE_SPIN_NS)
            continue; /* spinning: no lock, no fd set, no sleep */
        nfds_t n;
        fy_wake_sleeping(&agent->progress_wake, true); /* before the nap reads inflight */
        struct timespec nap = fy_progress_nap(agent, fds, &n);
        if ((nap.tv_sec || nap.tv_nsec) && ppoll(fds, n, &nap, NULL) > 0 && fds[0].revents)
            fy_wake_drain(&agent->progress_wake);
        fy_wake_sleeping(&agent->progress_wake, false);
    }
    return NULL;
}

ferry_status fy_progress_start(ferry_agent *agent)
{
    agent->progress_wake.fd = -1;
    if (!agent->cfg.progress_thread)
        return FERRY_OK;
    if (fy_wake_open(&agent->progress_wake) < 0 ||
        pthread_create(&agent->progress_tid, NULL, fy_progress_main, agent) != 0) {
        FY_ERR("agent %s: cannot start the progress thread", agent->name);
        return FERRY_ERR_NO_RESOURCES;
    }
    agent->progress_running = true;
    return FERRY_OK;
}

void fy_progress_stop(ferry_agent *agent)
{
    if (agent->progress_running) {
        atomic_store(&agent->progress_stop, true);
        fy_wake_kick(&agent->progress_wake);
        pthread_join(agent->progress_tid, NULL);
        agent->progress_running = false;
    }
    fy_wake_close(&agent->progress_wake);
}
