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
 * Both agents run with telemetry on. The initiator's memory is DRAM. The
 * target's is DRAM too, or, in storage mode (--store=FILE|BLOCK|OBJ, for
 * local-only storage backends such as POSIX and OBJ), files, volumes or
 * objects the setup layer creates: a store (cf_store) keeps a DRAM mirror
 * of its bytes, so the suite verifies storage the way it verifies memory,
 * after reading the store back into the mirror. */
#ifndef FY_CONFORMANCE_H
#define FY_CONFORMANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ferry/ferry.h>

#define CF_MAX_PARAMS 16
#define CF_PATH_MAX   512

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
    /* storage mode */
    ferry_mem_type store_type; /* the target's memory type: DRAM unless --store */
    bool direct;               /* --direct: files opened with O_DIRECT */
    bool alloc;                /* --alloc: the target's DRAM from its backend's ferry_mem_alloc */
    size_t align;              /* descriptor alignment the suite keeps: 1, or 4096 (O_DIRECT) */
    char dir[CF_PATH_MAX];     /* --dir=DIR, else a temp dir of its own (removed) */
    bool own_dir;
    unsigned next_store; /* names and ids of stores */
} cf_env;

/* The target's bytes: [0, size) of DRAM, a file, a volume or an object. */
typedef struct cf_store {
    ferry_mem_type type;
    uint8_t *mirror; /* DRAM: the memory itself; storage: what was last read or written */
    size_t size;
    uint64_t dev;                /* dev_id of its descriptors: fd, volume id or key index */
    int fd, check_fd;            /* FILE/BLOCK: the one transfers use, and a buffered one */
    char name[CF_PATH_MAX + 32]; /* path, or object key */
    bool direct;                 /* opened with O_DIRECT (FILE), or so registered (BLOCK) */
    bool registered;
    bool allocated; /* mirror is from ferry_mem_alloc (--alloc) */
} cf_store;

/* Parses "PLUGIN [key=value ...] [--pair|--loopback] [--alloc] [--plugin-dir=DIR]
 * [--store=FILE|BLOCK|OBJ [--direct] [--dir=DIR]]" (the plugin dir becomes
 * FERRY_PLUGIN_DIR) and creates the agents and backends. NOT_FOUND when the plugin is
 * not available (the caller skips), INVALID_PARAM on bad arguments, NOT_SUPPORTED when the backend
 * cannot run the suite (no DRAM, or not the topology's cap). *why says what went wrong. */
ferry_status cf_env_open(cf_env *env, int argc, char **argv, const char **why);
void cf_env_close(cf_env *env);
/* One more agent named name with the suite's backend and params. */
ferry_status cf_agent_new(cf_env *env, const char *name, ferry_agent **agent);
/* cf_store.c: the dir files and volumes go to (made when needed), and its
 * removal once the suite is over. */
ferry_status cf_store_dir(cf_env *env, const char **why);
void cf_store_dir_remove(cf_env *env);

/* Registers [buf, buf+len) as one region with the target (then publishes
 * its metadata to the initiator) or with the initiator. */
ferry_status cf_register(cf_env *env, bool target, const void *buf, size_t len);
/* Registers every descriptor of list as a region (and publishes). */
ferry_status cf_register_list(cf_env *env, bool target, const ferry_dlist *list);
ferry_status cf_deregister(cf_env *env, bool target, const void *buf, size_t len);

/* ---- the target's bytes ---- */

/* A store of size bytes filled with the pattern of seed (tu_fill), written
 * to storage and registered with the target as one region (published). */
ferry_status cf_store_open(cf_env *env, cf_store *st, size_t size, uint64_t seed);
/* The same without the registration (a test registers parts of it). */
ferry_status cf_store_create(cf_env *env, cf_store *st, size_t size, uint64_t seed);
void cf_store_close(cf_env *env, cf_store *st);
/* Reads [off, off+len) of the store into its mirror: through a buffered fd
 * for files and volumes (not the backend), through the backend for objects
 * (the Python suite checks objects with an independent S3 client). */
ferry_status cf_store_sync(cf_env *env, cf_store *st, size_t off, size_t len);
/* A list of the store's memory type; descriptors from cf_store_add. */
ferry_dlist *cf_store_list(const cf_store *st, size_t capacity);
/* [off, off+len) of the store as a descriptor; for a registration list
 * (reg) with the metadata its type needs (path, object key). */
ferry_status cf_store_add(ferry_dlist *l, const cf_store *st, size_t off, size_t len, bool reg);
/* Whether a WRITE may start anywhere in the store (objects are written
 * whole, from offset 0). */
bool cf_store_writes_at(const cf_env *env);
bool cf_storage(const cf_env *env);

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
