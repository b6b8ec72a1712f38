/* SPDX-License-Identifier: Apache-2.0 */
/* Backends: plugin instances inside an agent (backend.c). */
#ifndef FY_CORE_BACKEND_H
#define FY_CORE_BACKEND_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/plugin_loader.h"
#include "ferry/agent.h"
#include "ferry/xfer.h"

#define FY_MAX_BACKENDS 16u

struct ferry_backend {
    ferry_agent *agent;
    fy_plugin *plugin;
    const ferry_plugin_ops *ops;
    uint32_t index; /* position in agent->backends: creation order */
    void *priv;
    bool serialize; /* plugin not thread-safe: every op under mu */
    pthread_mutex_t mu;
    atomic_uint callers; /* threads in fy_be_enter waiting for mu */
    ferry_plugin_host host;
    ferry_param *params; /* effective params, strings owned here */
    size_t num_params;
    uint32_t mem_mask;   /* runtime memory types (ops->mem_types or the descriptor's) */
    int wait_fd;         /* -1 when the backend has none */
    uint32_t reg_pins;   /* the ledger counts a region's bytes this many times (ops->reg_pins) */
    atomic_int inflight; /* this backend's share of agent->inflight */
};
void fy_backend_destroy(ferry_backend *be);
/* A live backend of this agent (a dead one is logged, naming fn). */
bool fy_be_of(const ferry_backend *be, const ferry_agent *agent, const char *fn);
void fy_be_enter(ferry_backend *be);
/* The progress thread's way in: false (nothing taken) while another thread
 * holds the backend or waits for it, so a caller never queues behind the
 * progress thread's passes. */
bool fy_be_try_enter(ferry_backend *be);
void fy_be_leave(ferry_backend *be);
bool fy_be_supports(ferry_backend *be, ferry_mem_type local, ferry_mem_type remote, bool is_remote);
/* The agent's backends a selection names (all of them for NULL or an empty
 * one), as a bit mask of backend indices: OK or INVALID_PARAM. */
ferry_status fy_sel_mask(ferry_agent *agent, const ferry_backend_sel *sel, uint32_t *mask);

#endif
