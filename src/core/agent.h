/* SPDX-License-Identifier: Apache-2.0 */
/* The agent: what every service of src/core works on. The functions are
 * those of the services' own headers; agent.c creates and destroys it. */
#ifndef FY_CORE_AGENT_H
#define FY_CORE_AGENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/backend.h"
#include "core/hlist.h"
#include "core/notif_queue.h"
#include "core/registry.h"
#include "core/sync.h"
#include "core/wake.h"
#include "ferry/agent.h"
#include "metadata/auth.h"
#include "telemetry/tm.h"

struct fy_remote;

struct ferry_agent {
    char name[FERRY_NAME_MAX + 1];
    uint64_t uid;
    ferry_agent_config cfg; /* copy; strings point into the agent */
    char listen_host[256];
    struct fy_sc *sc; /* side channel (src/sidechannel), NULL until used */
    fy_lock lock;
    ferry_backend *backends[FY_MAX_BACKENDS];
    uint32_t num_backends;
    fy_registry reg;
    struct fy_remote **remotes;
    size_t num_remotes, cap_remotes;
    uint64_t last_generation;
    fy_notif_queue notifs;
    fy_hlist prepped, xfers;          /* live handles, released by destroy */
    atomic_uint_fast64_t xfer_errors; /* requests and bytes: per backend, in tm */
    pthread_t progress_tid;
    bool progress_running;
    atomic_bool progress_stop;
    fy_wake progress_wake;   /* wakes the progress thread out of poll() */
    atomic_int inflight;     /* requests posted and not yet seen complete */
    struct fy_alloc *allocs; /* ferry_mem_alloc'd memory, under lock (writer) */
    fy_auth auth;            /* set at create, read-only after (but the counters) */
    fy_tm tm;                /* metrics, ledger, exporters (src/telemetry) */
};

#endif
