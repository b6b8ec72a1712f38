/* SPDX-License-Identifier: Apache-2.0 */
/* Internal structures of the core, shared by the files of src/core. Not installed. */
#ifndef FY_INTERNAL_H
#define FY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/ferry.h"
#include "ferry/plugin.h"

#define FY_MAX_BACKENDS 16u
#define FY_API          __attribute__((visibility("default")))

/* ---- logging (log.c) ---- */
void fy_log(ferry_log_level level, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define FY_ERR(...)  fy_log(FERRY_LOG_ERROR, "core", __VA_ARGS__)
#define FY_WARN(...) fy_log(FERRY_LOG_WARN, "core", __VA_ARGS__)
#define FY_DBG(...)  fy_log(FERRY_LOG_DEBUG, "core", __VA_ARGS__)
/* Logs a line and keeps it as this thread's ferry_md_error() detail. */
void fy_log_detail(ferry_log_level level, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void fy_md_detail_clear(void);
void fy_md_detail_set(const char *text);
#define FY_MD_FAIL(...) fy_log_detail(FERRY_LOG_ERROR, "core", __VA_ARGS__)

/* ---- live handles (handles.c): checked before any public entry point
 * touches a handle ---- */
typedef enum fy_hkind {
    FY_H_AGENT = 1,
    FY_H_BACKEND = 2,
    FY_H_PREPPED = 3,
    FY_H_XFER = 4
} fy_hkind;
/* Records a new handle. OK or NO_MEMORY. */
ferry_status fy_handle_add(const void *h, fy_hkind kind);
/* Is h a live handle of that kind? NULL: false, silently; a dead handle:
 * false and one log line naming fn. */
bool fy_handle_ok(const void *h, fy_hkind kind, const char *fn);
/* The same, and forgets h when it was live (its release). */
bool fy_handle_del(const void *h, fy_hkind kind, const char *fn);
/* free() for the memory of a handle (agent, backend, prepared list,
 * request), deferred: see handles.c. */
void fy_handle_free(void *h);
#define FY_AGENT_OK(a)   fy_handle_ok((a), FY_H_AGENT, __func__)
#define FY_BACKEND_OK(b) fy_handle_ok((b), FY_H_BACKEND, __func__)
#define FY_PREPPED_OK(p) fy_handle_ok((p), FY_H_PREPPED, __func__)
#define FY_XFER_OK(x)    fy_handle_ok((x), FY_H_XFER, __func__)

/* ---- time ---- */
uint64_t fy_now_ns(void);    /* monotonic */
uint64_t fy_coarse_ns(void); /* monotonic, clock-tick resolution */
uint64_t fy_wall_us(void);   /* since the epoch */

/* ---- shared-secret authentication (src/metadata/auth.c) ---- */
#define FY_AUTH_KEY_MIN 16u
#define FY_AUTH_KEY_MAX 256u
/* At most one line a second for a kind of event that peers can trigger at
 * will; the next line says how many were left out. */
typedef struct fy_ratelog {
    atomic_uint_fast64_t next_ns, suppressed;
} fy_ratelog;
bool fy_ratelog_pass(fy_ratelog *r, uint64_t *suppressed);
typedef struct fy_auth {
    uint8_t key[FY_AUTH_KEY_MAX];
    size_t key_len; /* 0: no key, nothing is signed or checked */
    atomic_uint_fast64_t failures;
    fy_ratelog log;
} fy_auth;
/* The key of the config (or env FERRY_AUTH_KEY when NULL): OK,
 * INVALID_PARAM (length outside FY_AUTH_KEY_MIN..MAX). */
ferry_status fy_auth_init(fy_auth *a, const char *config_key);
void fy_auth_fini(fy_auth *a);
/* Counts a refusal and logs it (rate-limited). */
void fy_auth_refused(fy_auth *a, const char *agent, const char *what, const char *why);
/* Writes the MAC of a blob encoded with md.auth and reseals it. */
ferry_status fy_auth_blob_sign(const fy_auth *a, uint8_t *blob, size_t len);

/* ---- agent lock (agent.c): mode chosen by ferry_sync_mode ---- */
typedef struct fy_lock {
    ferry_sync_mode mode;
    pthread_rwlock_t rw;
    pthread_mutex_t mu;
} fy_lock;
void fy_lock_rd(fy_lock *l);
void fy_lock_wr(fy_lock *l);
void fy_unlock(fy_lock *l, bool writer);

/* ---- plugins (plugin_loader.c): a process-wide table, entries never freed ---- */
typedef struct fy_plugin {
    char name[64];
    char path[4096];               /* "builtin" or the .so path */
    const ferry_plugin_desc *desc; /* NULL until loaded */
    ferry_status status;           /* load result */
    uint32_t abi;                  /* the descriptor's ABI version, once read */
    char error[256];
} fy_plugin;
ferry_status fy_plugin_find(const char *name, fy_plugin **out);
ferry_status fy_plugin_names(const char **names, size_t cap, size_t *count);
bool fy_ops_has(const ferry_plugin_ops *ops, size_t offset);
#define FY_OP(be, slot)                                                                            \
    (fy_ops_has((be)->ops, offsetof(ferry_plugin_ops, slot)) ? (be)->ops->slot : NULL)

/* ---- backends (backend.c) ---- */
struct ferry_backend {
    ferry_agent *agent;
    fy_plugin *plugin;
    const ferry_plugin_ops *ops;
    uint32_t index; /* position in agent->backends: creation order */
    void *priv;
    bool serialize; /* plugin not thread-safe: every op under mu */
    pthread_mutex_t mu;
    ferry_plugin_host host;
    ferry_param *params; /* effective params, strings owned here */
    size_t num_params;
    uint32_t mem_mask; /* runtime memory types (ops->mem_types or the descriptor's) */
    int wait_fd;       /* -1 when the backend has none */
};
void fy_backend_destroy(ferry_backend *be);
/* A live backend of this agent (a dead one is logged, naming fn). */
bool fy_be_of(const ferry_backend *be, const ferry_agent *agent, const char *fn);
void fy_be_enter(ferry_backend *be);
void fy_be_leave(ferry_backend *be);
bool fy_be_supports(ferry_backend *be, ferry_mem_type local, ferry_mem_type remote, bool is_remote);

/* ---- descriptor lists (dlist.c) ---- */
struct ferry_dlist {
    ferry_mem_type type;
    bool strided;
    size_t count, cap;
    ferry_desc *descs;
    uint64_t *meta_span; /* per entry: offset << 32 | len; NULL when no entry has meta */
    uint8_t *meta_buf;
    size_t meta_used, meta_cap;
    uint64_t base, stride, len, dev_id; /* strided form */
};
static inline ferry_desc fy_dlist_at(const ferry_dlist *l, size_t i)
{
    if (l->strided)
        return (ferry_desc){l->base + i * l->stride, l->len, l->dev_id};
    return l->descs[i];
}

/* ---- registry (registry.c) ---- */
typedef struct fy_be_slot {
    uint32_t be; /* backend index */
    void *priv;  /* backend's region/rregion state */
    void *pub;   /* local regions: public bytes for peers (malloc'd) */
    uint32_t pub_len;
    uint64_t pub_hash; /* remote regions: hash of the key bytes they were loaded from */
} fy_be_slot;

typedef struct fy_region {
    uint64_t addr, len, dev_id;
    ferry_mem_type type;
    atomic_uint refs;   /* registry + prepared lists + requests */
    uint32_t reg_count; /* identical registrations */
    uint32_t backend_mask;
    uint32_t num_slots;
    fy_be_slot *slots;
    uint8_t *meta;
    uint32_t meta_len;
    ferry_agent *agent;
} fy_region;

/* Sorted (dev_id, addr) index of non-overlapping ranges of one memory type. */
typedef struct fy_index {
    void **items; /* fy_region* or fy_rregion* (both start with addr, len, dev_id) */
    size_t count, cap;
} fy_index;
typedef struct fy_range {
    uint64_t addr, len, dev_id;
} fy_range;
void **fy_index_slot(fy_index *ix, const void *item);
void *fy_index_find(const fy_index *ix, uint64_t addr, uint64_t len, uint64_t dev_id);
void *fy_index_exact(const fy_index *ix, uint64_t addr, uint64_t len, uint64_t dev_id);
void *fy_index_overlap(const fy_index *ix, uint64_t addr, uint64_t len, uint64_t dev_id);
ferry_status fy_index_merge(fy_index *ix, void **sorted_new, size_t n);
void fy_index_remove(fy_index *ix, void *item);
void fy_index_sort(void **items, size_t n);
void fy_index_free(fy_index *ix);

typedef struct fy_registry {
    fy_index by_type[FERRY_MEM_TYPE_COUNT];
    uint64_t bytes[FERRY_MEM_TYPE_COUNT];
    uint64_t regions[FERRY_MEM_TYPE_COUNT];
} fy_registry;
void fy_region_ref(fy_region *r);
void fy_region_unref(fy_region *r);
void *fy_slot_priv(const fy_be_slot *slots, uint32_t n, uint32_t be);
void fy_registry_clear(ferry_agent *agent);

/* ---- remote agents (remote.c) ---- */
typedef struct fy_rregion {
    uint64_t addr, len, dev_id;
    ferry_mem_type type;
    uint32_t backend_mask;
    uint32_t num_slots;
    fy_be_slot *slots;
    struct fy_rregion *next_retired; /* replaced, kept until the remote goes */
} fy_rregion;

typedef struct fy_remote {
    atomic_uint refs;
    atomic_bool valid; /* cleared by invalidate or replacement */
    char name[FERRY_NAME_MAX + 1];
    uint64_t uid, generation;
    ferry_agent *agent;
    uint32_t backend_mask; /* local backends that loaded this remote */
    void *be_remote[FY_MAX_BACKENDS];
    fy_index by_type[FERRY_MEM_TYPE_COUNT];
    fy_rregion *retired; /* regions replaced by a reload: requests may use them */
} fy_remote;
void fy_remote_ref(fy_remote *r);
void fy_remote_unref(fy_remote *r);
fy_remote *fy_remote_lookup(ferry_agent *agent, const char *name); /* no ref taken */
void fy_remotes_clear(ferry_agent *agent);
/* ferry_md_load for blobs that came from the network (side-channel LOAD):
 * also refuses the agent's own name, whatever the uid (NOT_ALLOWED). */
ferry_status fy_md_load_peer(ferry_agent *agent, const void *blob, size_t len, char *name,
                             size_t name_cap);

/* ---- notifications (notif.c) ---- */
typedef struct fy_notif {
    struct fy_notif *next;
    size_t len;
    char *from;
    uint8_t *msg;
} fy_notif;
typedef struct fy_notif_queue {
    pthread_mutex_t mu;
    fy_notif *head, *tail;
    size_t count, cap;
    atomic_uint_fast64_t dropped, received;
} fy_notif_queue;
void fy_notif_queue_init(fy_notif_queue *q, size_t cap);
void fy_notif_queue_fini(fy_notif_queue *q);
void fy_notif_deliver(void *agent_ctx, const char *from, const void *msg, size_t len);

/* ---- handles the agent tracks for cleanup ---- */
typedef struct fy_link {
    struct fy_link *prev, *next;
} fy_link;
void fy_link_add(ferry_agent *agent, fy_link *head, fy_link *node);
void fy_link_del(ferry_agent *agent, fy_link *node);

/* ---- prepared lists (prep.c) ---- */
typedef struct fy_pseg {
    uint64_t addr, len, dev_id;
    void *region; /* fy_region* (local) or fy_rregion* (remote) */
} fy_pseg;

struct ferry_prepped {
    fy_link link;
    ferry_agent *agent;
    fy_remote *remote; /* NULL: local side */
    ferry_mem_type type;
    size_t count;
    uint32_t backend_mask; /* backends covering every descriptor */
    bool strided;
    fy_pseg stride_seg; /* strided: descriptor 0, region covering all */
    uint64_t stride;
    fy_pseg *segs;    /* plain form */
    fy_region **held; /* distinct local regions referenced */
    size_t num_held;
};
static inline fy_pseg fy_prepped_at(const ferry_prepped *p, size_t i)
{
    if (p->strided) {
        fy_pseg s = p->stride_seg;
        s.addr += i * p->stride;
        return s;
    }
    return p->segs[i];
}
ferry_status fy_prep(ferry_agent *agent, const char *agent_name, const ferry_dlist *list,
                     const ferry_backend_sel *sel, ferry_prepped **out);
ferry_status fy_sel_mask(ferry_agent *agent, const ferry_backend_sel *sel, uint32_t *mask);
void fy_prepped_free(ferry_prepped *p);

/* ---- requests (xfer.c) ---- */
enum { FY_X_IDLE, FY_X_RUNNING, FY_X_DONE, FY_X_FAILED };
struct ferry_xfer {
    fy_link link;
    ferry_agent *agent;
    ferry_backend *be;
    fy_remote *remote;
    void *handle; /* backend's */
    ferry_plugin_xfer px;
    ferry_plugin_seg *segs; /* local[count] then remote[count] */
    fy_region **held;
    size_t num_held;
    uint8_t *notif;
    size_t notif_len;
    atomic_int state;
    atomic_bool counted_inflight;
    ferry_status result;
    uint32_t timeout_ms;  /* per post; FERRY_TIMEOUT_NONE: none */
    uint64_t deadline_ns; /* monotonic time of the running post's deadline, 0: none */
    size_t desc_count; /* descriptors as the caller gave them, before merging */
    uint64_t t_post_ns, start_us, post_us, xfer_us;
    char error[512];
};
void fy_xfer_free(ferry_xfer *x);

/* ---- the agent (agent.c) ---- */
struct ferry_agent {
    char name[FERRY_NAME_MAX + 1];
    uint64_t uid;
    ferry_agent_config cfg; /* copy; strings point into the agent */
    char listen_host[256];
    struct fy_sc *sc; /* side channel (src/metadata/sidechannel.c), NULL until used */
    fy_lock lock;
    ferry_backend *backends[FY_MAX_BACKENDS];
    uint32_t num_backends;
    fy_registry reg;
    fy_remote **remotes;
    size_t num_remotes, cap_remotes;
    uint64_t last_generation;
    fy_notif_queue notifs;
    pthread_mutex_t handles_mu; /* guards the two handle lists below */
    fy_link prepped, xfers;
    atomic_uint_fast64_t tx_bytes, rx_bytes, tx_requests, rx_requests, xfer_errors;
    pthread_t progress_tid;
    bool progress_running;
    atomic_bool progress_stop;
    int progress_wake;       /* eventfd: wakes the progress thread out of poll() */
    atomic_int inflight;     /* requests posted and not yet seen complete */
    struct fy_alloc *allocs; /* ferry_mem_alloc'd memory, under lock (writer) */
    fy_auth auth;            /* set at create, read-only after (but the counters) */
};
/* Frees what ferry_mem_alloc handed out and was never freed (alloc.c). */
void fy_allocs_clear(ferry_agent *agent);
void fy_progress_kick(ferry_agent *agent);
/* Takes no lock: polls every backend that has a progress op. */
ferry_status fy_agent_poll(ferry_agent *agent);
/* Hot-path lock: nothing in RW/NONE mode (request state is per request and
 * shared objects are refcounted), the mutex in STRICT mode. */
void fy_hot_enter(ferry_agent *agent);
void fy_hot_leave(ferry_agent *agent);

#endif
