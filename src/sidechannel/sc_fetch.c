/* SPDX-License-Identifier: Apache-2.0 */
/* Non-blocking metadata fetches.
 *
 * Each fetch runs on its own joinable thread, so a peer that is slow or not
 * up yet delays only its own fetch. At most FY_SC_MAX_FETCHES run at once.
 * The result of the last fetch of each agent name is kept in a record for
 * ferry_md_fetch_check (at most FY_SC_MAX_RECORDS; the oldest finished one
 * makes room). Finished threads are joined by the next ferry_md_fetch and
 * at stop, so none is ever left unjoined.
 *
 * Locking: t->mu guards the record list, every record's status, running
 * and seq fields, and the counters. A record's request fields (name, host,
 * port, label) are written before its thread starts and only read by it. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sidechannel/sidechannel.h"
#include "common/api.h"
#include "common/log.h"
#include "core/agent.h"
#include "core/handles.h"
#include "ferry/ferry.h"

typedef struct fy_fetch {
    struct fy_fetch *next;
    ferry_agent *agent;
    char name[FERRY_NAME_MAX + 1];
    char label[FY_SC_STR_MAX + 1];
    char host[FY_SC_HOST_MAX + 1];
    uint16_t port;
    ferry_status status;
    char detail[256];  /* ferry_md_error() of its thread when it failed */
    bool running;      /* its thread has not finished */
    bool joinable;     /* tid still to be joined */
    uint64_t done_seq; /* order of completion, for eviction */
    pthread_t tid;
} fy_fetch;

struct fy_sc_fetches {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a fetch finished */
    fy_fetch *head;
    size_t count, running;
    uint64_t seq;
    bool stopping;
};

ferry_status fy_sc_fetches_new(fy_sc_fetches **out)
{
    fy_sc_fetches *t = calloc(1, sizeof(*t));
    if (!t)
        return FERRY_ERR_NO_MEMORY;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&t->mu, NULL);
    *out = t;
    return FERRY_OK;
}

void fy_sc_fetches_free(fy_sc_fetches *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stopping = true; /* no new fetch from here on: the list is fixed */
    pthread_mutex_unlock(&t->mu);
    /* Joined without the lock: the threads need it to finish. */
    for (fy_fetch *f = t->head; f; f = f->next)
        if (f->joinable)
            pthread_join(f->tid, NULL);
    while (t->head) {
        fy_fetch *f = t->head;
        t->head = f->next;
        free(f);
    }
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* ---- the fetch thread ---- */

/* Loads the fetched blob; it must describe the agent that was asked for. */
static ferry_status fy_fetch_load(fy_fetch *f, fy_sc_view blob)
{
    char loaded[FERRY_NAME_MAX + 1];
    if (!blob.len) {
        FY_SC_ERR("%s:%u sent empty metadata for %s", f->host, (unsigned)f->port, f->name);
        return FERRY_ERR_BAD_METADATA;
    }
    ferry_status rc = ferry_md_load(f->agent, blob.ptr, blob.len, loaded, sizeof(loaded));
    if (rc == FERRY_OK && strcmp(loaded, f->name)) {
        FY_SC_ERR("%s:%u answered a fetch of %s with the metadata of %s", f->host,
                  (unsigned)f->port, f->name, loaded);
        rc = FERRY_ERR_BAD_METADATA;
    }
    return rc;
}

static ferry_status fy_fetch_once(fy_fetch *f, uint64_t deadline_ns, bool *lost)
{
    uint8_t req[FY_SC_REQ_MAX];
    struct iovec iov = {req, fy_sc_fetch_put(req, f->name, f->label)};
    fy_sc_reply reply;
    ferry_status rc =
        fy_sc_call(f->agent, f->host, f->port, FY_SC_FETCH, &iov, 1, deadline_ns, &reply);
    *lost = reply.lost;
    if (rc == FERRY_OK && reply.status != FERRY_OK)
        FY_SC_ERR("%s:%u refused the fetch of %s: %s", f->host, (unsigned)f->port, f->name,
                  ferry_strerror(reply.status));
    if (rc == FERRY_OK)
        rc = reply.status;
    if (rc == FERRY_OK)
        rc = fy_fetch_load(f, reply.body);
    fy_sc_reply_free(&reply);
    return rc;
}

/* A fetch is idempotent: a connection reset or closed before the reply (a
 * listener restarting, or shedding load) is tried again after a pause that
 * doubles, all within the one sc_timeout_ms. What ended the last real
 * attempt is the result, not the deadline that stopped the retries. */
static ferry_status fy_fetch_run(fy_fetch *f)
{
    if (!f->host[0])
        return fy_mdsvc_fetch(f->agent, f->name, f->label);
    fy_sc_io io; /* only for its deadline and stop pipe */
    fy_sc_io_init(&io, f->agent, f->host, 0);
    unsigned pause_ms = FY_SC_RETRY_MS;
    bool lost = false;
    ferry_status rc = fy_fetch_once(f, io.deadline_ns, &lost);
    while (rc == FERRY_ERR_IO && lost && fy_sc_pause(&io, pause_ms) == FERRY_OK) {
        FY_SC_DBG("%s:%u: fetch of %s: connection lost, trying again", f->host, (unsigned)f->port,
                  f->name);
        ferry_status again = fy_fetch_once(f, io.deadline_ns, &lost);
        if (again != FERRY_ERR_TIMEOUT)
            rc = again;
        pause_ms = pause_ms < 400 ? pause_ms * 2 : pause_ms;
    }
    return rc;
}

static void *fy_fetch_main(void *arg)
{
    fy_fetch *f = arg;
    fy_log_thread_agent(f->agent->name);
    ferry_status rc = fy_fetch_run(f);
    fy_sc_fetches *t = f->agent->sc->fetches;
    pthread_mutex_lock(&t->mu);
    f->status = rc;
    snprintf(f->detail, sizeof(f->detail), "%s", rc == FERRY_OK ? "" : ferry_md_error());
    f->running = false;
    f->done_seq = ++t->seq;
    t->running--;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* ---- records (under t->mu) ---- */

static fy_fetch *fy_fetch_find(fy_sc_fetches *t, const char *name)
{
    for (fy_fetch *f = t->head; f; f = f->next)
        if (!strcmp(f->name, name))
            return f;
    return NULL;
}

/* Joins threads that have finished: their records stay, their stacks go.
 * A finished thread only has to return, so the join is immediate. */
static void fy_fetch_reap(fy_sc_fetches *t)
{
    for (fy_fetch *f = t->head; f; f = f->next) {
        if (f->joinable && !f->running) {
            pthread_join(f->tid, NULL);
            f->joinable = false;
        }
    }
}

/* Drops the record that finished first (all are reaped, none running). */
static void fy_fetch_evict_oldest(fy_sc_fetches *t)
{
    fy_fetch **oldest = NULL;
    for (fy_fetch **pp = &t->head; *pp; pp = &(*pp)->next)
        if (!(*pp)->running && (!oldest || (*pp)->done_seq < (*oldest)->done_seq))
            oldest = pp;
    if (!oldest)
        return;
    fy_fetch *f = *oldest;
    *oldest = f->next;
    t->count--;
    free(f);
}

static fy_fetch *fy_fetch_record(fy_sc_fetches *t, ferry_agent *agent, const char *name)
{
    fy_fetch *f = fy_fetch_find(t, name);
    if (f)
        return f;
    if (t->count >= FY_SC_MAX_RECORDS)
        fy_fetch_evict_oldest(t);
    f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->agent = agent;
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->next = t->head;
    t->head = f;
    t->count++;
    return f;
}

static ferry_status fy_fetch_launch(fy_sc_fetches *t, fy_fetch *f)
{
    f->status = FERRY_IN_PROGRESS;
    f->running = true;
    if (pthread_create(&f->tid, NULL, fy_fetch_main, f) != 0) {
        FY_SC_ERR("cannot start a thread to fetch %s", f->name);
        f->running = false;
        f->status = FERRY_ERR_NO_RESOURCES;
        f->done_seq = ++t->seq;
        return FERRY_ERR_NO_RESOURCES;
    }
    f->joinable = true;
    t->running++;
    return FERRY_OK;
}

/* Starts a fetch, or joins the one of that name already under way. */
static ferry_status fy_fetch_start(ferry_agent *agent, const char *name, const char *host,
                                   uint16_t port, const char *label)
{
    fy_sc_fetches *t = agent->sc->fetches;
    ferry_status rc = FERRY_OK;
    pthread_mutex_lock(&t->mu);
    fy_fetch_reap(t);
    fy_fetch *f = fy_fetch_find(t, name);
    if (t->stopping)
        rc = FERRY_ERR_NOT_ALLOWED;
    else if (f && f->running)
        goto unlock; /* same agent already on its way */
    else if (t->running >= FY_SC_MAX_FETCHES)
        rc = FERRY_ERR_NO_RESOURCES;
    else if (!(f = fy_fetch_record(t, agent, name)))
        rc = FERRY_ERR_NO_MEMORY;
    if (rc != FERRY_OK)
        goto unlock;
    snprintf(f->host, sizeof(f->host), "%s", host ? host : ""); /* "": the metadata service */
    snprintf(f->label, sizeof(f->label), "%s", label ? label : "");
    f->port = port;
    rc = fy_fetch_launch(t, f);
unlock:
    pthread_mutex_unlock(&t->mu);
    return rc;
}

/* ---- public ---- */

static ferry_status fy_fetch_args(ferry_agent *agent, const char *name, const char *host,
                                  uint16_t port, const char *label)
{
    if (!FY_AGENT_OK(agent) || !name || !name[0] || strlen(name) > FERRY_NAME_MAX ||
        !fy_sc_dest_ok(agent, host, port) || (label && strlen(label) > FY_SC_STR_MAX))
        return FERRY_ERR_INVALID_PARAM;
    /* Results are loaded on the fetch thread: an agent whose caller
     * promised a single thread (FERRY_SYNC_NONE) has no lock to protect it. */
    if (agent->cfg.sync_mode == FERRY_SYNC_NONE) {
        FY_SC_ERR("agent %s: ferry_md_fetch needs a locking sync mode", agent->name);
        return FERRY_ERR_NOT_SUPPORTED;
    }
    return FERRY_OK;
}

FY_API ferry_status ferry_md_fetch(ferry_agent *agent, const char *remote_agent, const char *ip,
                                   uint16_t port, const char *label)
{
    fy_md_detail_clear();
    ferry_status rc = fy_fetch_args(agent, remote_agent, ip, port, label);
    if (rc != FERRY_OK)
        return rc;
    return fy_fetch_start(agent, remote_agent, ip, port, label);
}

FY_API ferry_status ferry_md_fetch_check(ferry_agent *agent, const char *remote_agent)
{
    if (!FY_AGENT_OK(agent) || !agent->sc || !remote_agent)
        return FERRY_ERR_INVALID_PARAM;
    fy_sc_fetches *t = agent->sc->fetches;
    pthread_mutex_lock(&t->mu);
    fy_fetch *f = fy_fetch_find(t, remote_agent);
    ferry_status rc = f ? f->status : FERRY_ERR_NOT_FOUND;
    fy_md_detail_set(f && rc < 0 ? f->detail : "");
    pthread_mutex_unlock(&t->mu);
    return rc;
}

static void fy_deadline_ms(struct timespec *ts, uint32_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    uint64_t ns = (uint64_t)ts->tv_nsec + (uint64_t)ms * 1000000u;
    ts->tv_sec += (time_t)(ns / 1000000000u);
    ts->tv_nsec = (long)(ns % 1000000000u);
}

/* The detail of a wait that ended before the fetch did; not logged: a
 * caller may wait in short slices and try again. */
static void fy_fetch_late(const char *name, uint32_t timeout_ms)
{
    char detail[256];
    snprintf(detail, sizeof(detail), "metadata of %s: still being fetched after %" PRIu32 " ms",
             name, timeout_ms);
    fy_md_detail_set(detail);
}

/* Waits for the record of name to leave IN_PROGRESS. The record is looked
 * up again after every wake-up: it may have been evicted meanwhile. */
static ferry_status fy_fetch_wait_done(fy_sc_fetches *t, const char *name, uint32_t timeout_ms)
{
    struct timespec deadline;
    fy_deadline_ms(&deadline, timeout_ms);
    pthread_mutex_lock(&t->mu);
    fy_fetch *f;
    int err = 0;
    while ((f = fy_fetch_find(t, name)) && f->status == FERRY_IN_PROGRESS && err != ETIMEDOUT)
        err = pthread_cond_timedwait(&t->cv, &t->mu, &deadline);
    ferry_status rc = !f ? FERRY_ERR_NOT_FOUND : f->status;
    fy_md_detail_set(f && rc < 0 ? f->detail : "");
    pthread_mutex_unlock(&t->mu);
    if (rc == FERRY_IN_PROGRESS)
        fy_fetch_late(name, timeout_ms);
    return rc == FERRY_IN_PROGRESS ? FERRY_ERR_TIMEOUT : rc;
}

FY_API ferry_status ferry_md_fetch_wait(ferry_agent *agent, const char *remote_agent,
                                        const char *ip, uint16_t port, const char *label,
                                        uint32_t timeout_ms)
{
    ferry_status rc = ferry_md_fetch(agent, remote_agent, ip, port, label);
    if (rc != FERRY_OK)
        return rc;
    return fy_fetch_wait_done(agent->sc->fetches, remote_agent, timeout_ms);
}
