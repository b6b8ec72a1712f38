/* SPDX-License-Identifier: Apache-2.0 */
/* The conformance suite's setup layer: everything that depends on how a
 * backend reaches its target, so the suite itself is written once.
 *
 * The suite talks to an initiator agent (which registers local memory and
 * posts requests) and a target (whose memory requests read and write, and
 * which receives notifications from the initiator). Two topologies:
 *   loopback: one agent is both; it loads its own metadata. For backends
 *             with FERRY_CAP_LOCAL only, such as LOCAL.
 *   pair:     two agents in this process, each with its own instance of
 *             the backend; the initiator loads the target's metadata, the
 *             target runs a progress thread as a peer process would. The
 *             default for backends with FERRY_CAP_REMOTE.
 * Both agents run with telemetry on. Memory is DRAM on both sides, so the
 * suite can verify bytes directly. */
#ifndef FY_CONFORMANCE_H
#define FY_CONFORMANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ferry/ferry.h>

#define CF_MAX_PARAMS 16

typedef struct cf_env {
    const char *plugin;
    ferry_param params[CF_MAX_PARAMS];
    size_t num_params;
    bool pair;
    ferry_agent *ini, *tgt; /* the same agent in loopback */
    ferry_backend *ini_be, *tgt_be;
    char ini_name[FERRY_NAME_MAX + 1]; /* sender of notifications, at the target */
    char tgt_name[FERRY_NAME_MAX + 1]; /* remote agent name, at the initiator */
    ferry_backend_caps caps;
} cf_env;

/* Parses "PLUGIN [key=value ...] [--pair|--loopback] [--plugin-dir=DIR]"
 * (DIR becomes FERRY_PLUGIN_DIR) and creates the agents and backends. NOT_FOUND when the plugin is
 * not available (the caller skips), INVALID_PARAM on bad arguments, NOT_SUPPORTED when the backend
 * cannot run the suite (no DRAM, or not the topology's cap). *why says what went wrong. */
ferry_status cf_env_open(cf_env *env, int argc, char **argv, const char **why);
void cf_env_close(cf_env *env);

/* Registers [buf, buf+len) as one region with the target (then publishes
 * its metadata to the initiator) or with the initiator. */
ferry_status cf_register(cf_env *env, bool target, const void *buf, size_t len);
/* Registers every descriptor of list as a region (and publishes). */
ferry_status cf_register_list(cf_env *env, bool target, const ferry_dlist *list);
ferry_status cf_deregister(cf_env *env, bool target, const void *buf, size_t len);

/* Loads the target's current metadata at the initiator as a new generation
 * (invalidating the previous one): handles prepared against the target
 * before then fail with FERRY_ERR_STALE. */
ferry_status cf_publish(cf_env *env);

/* Drives both agents once. */
void cf_progress(cf_env *env);
/* Waits for a posted request (bounded), driving both agents. */
ferry_status cf_wait(cf_env *env, ferry_xfer *x, uint64_t timeout_ms);
ferry_status cf_post_wait(cf_env *env, ferry_xfer *x);
/* Waits for one notification from the initiator at the target, equal to
 * tag, and takes it; drives the agents but never polls a request. */
ferry_status cf_wait_notif(cf_env *env, const void *tag, size_t len, uint64_t timeout_ms);
/* Drives the agents for settle_ms, then takes and counts the target's
 * notifications from the initiator. */
size_t cf_drain_notifs(cf_env *env, unsigned settle_ms);

#endif
