/* SPDX-License-Identifier: Apache-2.0 */
/* The plugin ABI: the one header a backend author needs.
 *
 * A plugin is the code of a backend. It exports one function returning a
 * const descriptor (FERRY_PLUGIN_DEFINE does it), the same source builds
 * as libferry_plugin_<name>.so or compiled into libferry. The core owns the
 * backend's private state (priv_size bytes, zeroed) and passes it to every
 * op. The ops table starts with its size and is only ever appended to:
 * required slots are checked at load, optional ones may be NULL.
 *
 * Ownership: buffers a plugin returns through void **out / size_t *len are
 * allocated with malloc() and freed by the core with free(). Arrays the core
 * passes in are owned by the core and stay valid as documented per slot.
 *
 * Threads: unless the descriptor sets FERRY_PLUGIN_F_THREAD_SAFE, the core
 * serialises every op of one backend with a mutex. host->notif_deliver may be
 * called from any thread, including from inside an op. */
#ifndef FERRY_PLUGIN_H
#define FERRY_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "ferry/ferry.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FERRY_PLUGIN_ABI_VERSION 1u

/* Set when the plugin's ops may be called concurrently. */
#define FERRY_PLUGIN_F_THREAD_SAFE (1u << 0)
/* Set when wait_fd fires on the completion of every request in flight, not
 * only on new events while idle (e.g. an eventfd the kernel signals per
 * I/O): the agent's progress thread then sleeps on it while this
 * backend's requests are in flight, instead of polling every
 * progress_delay_us and spinning after each piece of work. */
#define FERRY_PLUGIN_F_FD_COMPLETES (1u << 1)
/* Set by a fast path between agents of one host (e.g. shared memory) that
 * declines every peer it cannot serve when loading its metadata: where the
 * caller names no backends, the core chooses it ahead of backends without
 * the flag whenever it can carry the request, whatever the creation order. */
#define FERRY_PLUGIN_F_HOST_FIRST (1u << 2)

/* Services the core offers a backend. Valid from init to fini. */
typedef struct ferry_plugin_host {
    size_t size;            /* sizeof(ferry_plugin_host) */
    const char *agent_name; /* the owning agent's name */
    uint64_t agent_uid;     /* random per agent instance: tells a restarted
                             * peer (or oneself) apart from another agent */
    void *agent_ctx;        /* pass back to the callbacks below */
    /* Queues a notification received from agent `from`. Copies everything;
     * call only once the data of the transfer carrying it is visible. */
    void (*notif_deliver)(void *agent_ctx, const char *from, const void *msg, size_t len);
    /* Logs one line under the backend's name (printf format; levels in
     * ferry/log.h). An ERROR line also becomes the detail of the failing
     * call on this thread (ferry_last_error), prefixed with that name. */
    void (*log)(void *agent_ctx, ferry_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
} ferry_plugin_host;

/* One side of one (merged) descriptor of a transfer. */
typedef struct ferry_plugin_seg {
    uint64_t addr;
    uint64_t len;
    uint64_t dev_id;
    void *region; /* the backend's region state: from reg (local side) or
                   * rregion_load (remote side) */
} ferry_plugin_seg;

/* A transfer as the backend sees it. Arrays stay valid until xfer_release
 * returns. */
typedef struct ferry_plugin_xfer {
    ferry_xfer_op op;
    ferry_mem_type local_type;
    ferry_mem_type remote_type;
    size_t count; /* segments per side */
    const ferry_plugin_seg *local;
    const ferry_plugin_seg *remote; /* remote[i].len == local[i].len */
    void *remote_agent;             /* from remote_load (own agent for loopback) */
    uint64_t total_bytes;
} ferry_plugin_xfer;

/* One side of a request made by index from a strided prepared list: block
 * i of the list is len bytes at base + i * stride, all inside region. */
typedef struct ferry_plugin_strided {
    uint64_t base;
    uint64_t stride;
    uint64_t len;
    uint64_t dev_id;
    size_t count; /* blocks in the list: every index given is below it */
    void *region; /* the backend's region state, as in ferry_plugin_seg */
} ferry_plugin_strided;

/* A request made by index from two strided lists, handed to the backend
 * unexpanded: pair i copies local block local_idx[i] and remote block
 * remote_idx[i] (len bytes, the same on both sides). The core checked every
 * index; indices may repeat. Arrays stay valid until xfer_release. */
typedef struct ferry_plugin_sxfer {
    ferry_xfer_op op;
    ferry_mem_type local_type;
    ferry_mem_type remote_type;
    size_t count; /* pairs */
    ferry_plugin_strided local;
    ferry_plugin_strided remote;
    const uint32_t *local_idx;
    const uint32_t *remote_idx;
    void *remote_agent;
    uint64_t total_bytes;
} ferry_plugin_sxfer;

typedef struct ferry_plugin_ops {
    size_t size; /* sizeof(ferry_plugin_ops) as the plugin was built */

    /* ---- required ---- */

    /* Initialises priv (zeroed, priv_size bytes). params hold every key of
     * the schema, defaults filled in, values as strings. May block. On error
     * fini is not called: undo everything. */
    ferry_status (*init)(void *priv, const ferry_plugin_host *host, const ferry_param *params,
                         size_t num_params);
    /* Frees everything. Every region, remote and transfer was released
     * before. May block. */
    void (*fini)(void *priv);

    /* Registers one region. meta: registration bytes (file path, object key).
     * *region: backend state for the region (may be NULL). *pub and *pub_len:
     * what peers need to reach it (rkey), malloc'd, may be NULL/0.
     * Errors: INVALID_PARAM, NOT_SUPPORTED (type), BACKEND, NO_MEMORY. */
    ferry_status (*reg)(void *priv, ferry_mem_type type, const ferry_desc *desc, const void *meta,
                        size_t meta_len, void **region, void **pub, size_t *pub_len);
    /* Deregisters. No transfer uses the region any more. */
    void (*dereg)(void *priv, void *region);

    /* Connection info peers need (e.g. a worker address), malloc'd; may be
     * NULL/0 when none is needed. */
    ferry_status (*conn_info)(void *priv, void **info, size_t *len);
    /* Loads a remote agent from its connection info (own info: loopback).
     * NOT_SUPPORTED when this backend cannot reach that agent (the agent is
     * then simply not reachable through this backend). */
    ferry_status (*remote_load)(void *priv, const char *name, uint64_t uid, const void *info,
                                size_t len, void **remote);
    /* Unloads a remote. Transfers to it were all released before. */
    void (*remote_unload)(void *priv, void *remote);
    /* Loads one remote region from the pub bytes its owner's reg returned. */
    ferry_status (*rregion_load)(void *priv, void *remote, ferry_mem_type type,
                                 const ferry_desc *desc, const void *pub, size_t pub_len,
                                 void **rregion);
    void (*rregion_unload)(void *priv, void *remote, void *rregion);

    /* Prepares a transfer; may keep pointers into *xfer until xfer_release.
     * Must not start moving data. Called at make, and again with the same
     * *xfer when a request is posted after its deadline released the
     * previous handle. Errors: NOT_SUPPORTED, INVALID_PARAM, NO_MEMORY,
     * BACKEND. */
    ferry_status (*xfer_prep)(void *priv, const ferry_plugin_xfer *xfer, void **handle);
    /* Starts the transfer (never called while one is in progress). notif
     * (may be NULL) stays valid until the next post or release, and must be
     * delivered only after all data is visible at the target. Returns OK
     * (done inline), IN_PROGRESS, or an error with nothing started. */
    ferry_status (*xfer_post)(void *priv, void *handle, const void *notif, size_t notif_len);
    /* OK, IN_PROGRESS, or the error that ended the transfer. Non-blocking. */
    ferry_status (*xfer_check)(void *priv, void *handle);
    /* Cancels if in progress, waits until no write can still happen, frees.
     * Returns OK or the error met while canceling (the handle is gone).
     * Also how the core cancels a request past its deadline, so the wait
     * must be bounded even when the peer is frozen. */
    ferry_status (*xfer_release)(void *priv, void *handle);

    /* ---- optional (NULL when absent) ---- */

    /* Does the backend move data between these two memory types for this
     * pair (local side's type, other side's type)? OK or NOT_SUPPORTED.
     * Absent: any pair of types in mem_mask. */
    ferry_status (*supports)(void *priv, ferry_mem_type local, ferry_mem_type remote);
    ferry_status (*connect)(void *priv, void *remote);
    ferry_status (*disconnect)(void *priv, void *remote);
    /* Sends a notification alone; delivered at most once. */
    ferry_status (*notif_send)(void *priv, void *remote, const void *msg, size_t len);
    /* Drives completions, non-blocking. Returns IN_PROGRESS when it did
     * some work (the progress thread then polls again without sleeping for
     * a while), OK when there was nothing to do, or an error. */
    ferry_status (*progress)(void *priv);
    ferry_status (*estimate)(void *priv, void *handle, ferry_xfer_cost *cost);
    /* Detail of the transfer's last error (static or owned by the handle). */
    const char *(*xfer_error)(void *priv, void *handle);
    /* Memory types this instance can really serve (a subset of the
     * descriptor's mem_mask: e.g. VRAM only when the transport library found
     * at run time supports GPU memory). Called once after init. Absent: the
     * descriptor's mem_mask. */
    uint32_t (*mem_types)(void *priv);
    /* A file descriptor that becomes readable when the backend needs
     * progress (e.g. a UCX worker's event fd), so an idle progress thread can
     * sleep in poll() instead of spinning. Called once after init. */
    ferry_status (*wait_fd)(void *priv, int *fd);
    /* Prepares wait_fd for sleeping. OK: armed, nothing pending, safe to
     * sleep; IN_PROGRESS: events are pending, call progress again first. */
    ferry_status (*arm)(void *priv);
    /* Allocates len bytes of memory of `type` (dev_id: the GPU for VRAM)
     * that this backend moves best, e.g. memory the transport maps itself
     * so that peers on the same host reach it directly. *addr is its
     * address, *alloc the plugin's handle for mem_free. May block. Returns
     * OK, NOT_SUPPORTED (type), NO_MEMORY, BACKEND. Registration of ranges
     * inside an allocation must keep working after mem_free until they are
     * deregistered (the plugin may defer the real release). */
    ferry_status (*mem_alloc)(void *priv, ferry_mem_type type, uint64_t len, uint64_t dev_id,
                              void **addr, void **alloc);
    /* Gives an allocation back. The core calls it once per allocation, when
     * no registered region of the agent lies inside it. */
    void (*mem_free)(void *priv, void *alloc);
    /* The connection info of a remote already loaded arrived again, from
     * the same instance (same uid): its metadata was loaded again. A
     * backend whose connection to it failed or was given up (a peer that
     * was frozen, then resumed) reconnects now or on next use, with fresh
     * endpoints and keys; a healthy connection is left alone. Prepared
     * transfers to the remote must keep working. Errors: as remote_load. */
    ferry_status (*remote_refresh)(void *priv, void *remote, const void *info, size_t len);
    /* Answers ferry_query_mem for one descriptor of a memory type only the
     * backend can look up (OBJ: does the object exist, how large is it).
     * meta: the descriptor's metadata bytes (e.g. the object key). Sets
     * info->found and, when found, info->file_size; writes no other field.
     * May block, bounded by the backend's own timeouts. Returns OK (found
     * or not), NOT_SUPPORTED (type), or the error that prevented an answer
     * (AUTH, REMOTE_DISCONNECT, TIMEOUT, BACKEND, ...). */
    ferry_status (*query)(void *priv, ferry_mem_type type, const ferry_desc *desc, const void *meta,
                          size_t meta_len, ferry_mem_info *info);
    /* Prepares a request made by index from two strided lists without the
     * core expanding it into segments: per-request work stays proportional
     * to the index arrays (a GPU backend resolves the blocks on the GPU).
     * NOT_SUPPORTED, without logging: this request is not one the backend
     * takes this way; the core expands it and calls xfer_prep. The handle
     * then goes through xfer_post, xfer_check, xfer_release, estimate and
     * xfer_error like any other. */
    ferry_status (*xfer_prep_strided)(void *priv, const ferry_plugin_sxfer *sx, void **handle);
    /* How many times reg registers a region with the transport (e.g. once
     * per NIC of a backend that stripes over several): the host-memory
     * ledger counts a region's bytes that many times for this backend, and
     * its registration cap bounds them so. Called once after init; 0 reads
     * as 1. Absent: 1. */
    uint32_t (*reg_pins)(void *priv);
    /* Memory for the index arrays of a strided request (bytes: local then
     * remote), which the core fills in the pass that checks them: a backend
     * whose engine reads the indices from memory of its own (pinned memory
     * a GPU maps) then copies nothing. sx is the request with local_idx and
     * remote_idx still NULL. With this op present, the arrays of every sx
     * the core passes to xfer_prep_strided come from it; the core frees them
     * with xfer_idx_free after the request's xfer_release. NOT_SUPPORTED,
     * without logging: the backend would not take sx in strided form (the
     * core expands it). Both ops or neither. */
    ferry_status (*xfer_idx_alloc)(void *priv, const ferry_plugin_sxfer *sx, size_t bytes,
                                   void **buf);
    void (*xfer_idx_free)(void *priv, void *buf);
} ferry_plugin_ops;

typedef struct ferry_plugin_desc {
    uint32_t abi_version; /* FERRY_PLUGIN_ABI_VERSION */
    uint32_t flags;       /* FERRY_PLUGIN_F_* */
    const char *name;     /* e.g. "LOCAL": upper case, [A-Z0-9_] */
    const char *version;  /* the plugin's own version string */
    uint32_t caps;        /* FERRY_CAP_* */
    uint32_t mem_mask;    /* FERRY_MEM_MASK bits */
    const ferry_param_spec *params;
    size_t num_params;
    size_t priv_size;
    const ferry_plugin_ops *ops;
} ferry_plugin_desc;

/* The symbol a shared plugin exports. */
#define FERRY_PLUGIN_SYMBOL "ferry_plugin_get"
typedef const ferry_plugin_desc *(*ferry_plugin_get_fn)(void);

/* Defines the entry point: ferry_plugin_get() in a shared plugin, or
 * ferry_plugin_builtin_<name>() when built into the library
 * (FERRY_PLUGIN_BUILTIN defined). */
#ifdef FERRY_PLUGIN_BUILTIN
#define FERRY_PLUGIN_DEFINE(name, desc_var)                                                        \
    const ferry_plugin_desc *ferry_plugin_builtin_##name(void);                                    \
    const ferry_plugin_desc *ferry_plugin_builtin_##name(void)                                     \
    {                                                                                              \
        return &(desc_var);                                                                        \
    }
#else
#define FERRY_PLUGIN_DEFINE(name, desc_var)                                                        \
    __attribute__((visibility("default"))) const ferry_plugin_desc *ferry_plugin_get(void);        \
    __attribute__((visibility("default"))) const ferry_plugin_desc *ferry_plugin_get(void)         \
    {                                                                                              \
        return &(desc_var);                                                                        \
    }
#endif

#ifdef __cplusplus
}
#endif
#endif
