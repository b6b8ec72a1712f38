/* SPDX-License-Identifier: Apache-2.0 */
/* Agents, plugins, backends and progress.
 *
 * Thread safety: an agent may be used from many threads at once (unless
 * created with FERRY_SYNC_NONE). Functions that change the agent's tables
 * (backend creation, registration, metadata load/invalidate) take the
 * agent's lock for writing; the transfer hot path (prep, make, post, status)
 * takes it for reading. Each request is owned by one thread at a time: do not
 * post, poll and release the same request concurrently. */
#ifndef FERRY_AGENT_H
#define FERRY_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/mem.h"
#include "ferry/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ferry_sync_mode {
    FERRY_SYNC_RW = 0,     /* default: reader/writer lock, hot path on read side */
    FERRY_SYNC_STRICT = 1, /* one mutex around every call */
    FERRY_SYNC_NONE = 2,   /* no locking: caller guarantees one thread at a time */
} ferry_sync_mode;

/* A timeout value meaning "no deadline". */
#define FERRY_TIMEOUT_NONE UINT32_MAX

/* Default deadline of a posted request, in ms. */
#define FERRY_XFER_TIMEOUT_DEFAULT_MS 60000u

typedef struct ferry_agent_config {
    size_t size;                /* sizeof(ferry_agent_config) */
    const char *name;           /* unique agent name (required) */
    bool progress_thread;       /* run a progress thread (default false) */
    uint32_t progress_delay_us; /* progress thread sleep between polls (default 100) */
    bool listen;                /* start the side-channel listener (default false) */
    const char *listen_host;    /* listener address (default "0.0.0.0") */
    uint16_t listen_port;       /* listener port, 0 = any free port (default 0) */
    bool telemetry;             /* per-request telemetry, metrics per backend, exporters
                                 * (default false; env FERRY_TELEMETRY=1,
                                 * FERRY_TELEMETRY_ENABLE or NIXL_TELEMETRY_ENABLE=y) */
    ferry_sync_mode sync_mode;  /* locking mode (default FERRY_SYNC_RW) */
    uint32_t notif_queue_cap;   /* max queued notifications (default 65536) */
    uint64_t reg_cap_bytes;     /* ledger cap on registered DRAM+VRAM bytes, 0 = env
                                 * FERRY_MAX_REGISTERED_BYTES's SIZE item, else none */
    uint32_t sc_timeout_ms;     /* side-channel connect/send/fetch bound (default 5000) */
    uint32_t sc_max_frame;      /* largest side-channel frame accepted (default 256 MiB) */
    /* Shared secret (16..256 bytes) that authenticates side-channel frames
     * and metadata blobs with HMAC-SHA256; NULL: env FERRY_AUTH_KEY, and
     * without it no authentication (default NULL). See docs/side-channel.md. */
    const char *auth_key;
    uint32_t xfer_timeout_ms; /* deadline of a posted request, per post (default 60000, or
                               * env FERRY_XFER_TIMEOUT_MS; 0 = the default;
                               * FERRY_TIMEOUT_NONE = none) */
    /* etcd mode (docs/metadata.md): comma-separated endpoint URLs; NULL:
     * env FERRY_ETCD_ENDPOINTS, then NIXL_ETCD_ENDPOINTS; none: off. The
     * metadata calls made with no address then go to etcd. */
    const char *etcd_endpoints;
    const char *etcd_namespace;     /* key prefix (NULL: env FERRY_ETCD_NAMESPACE,
                                     * NIXL_ETCD_NAMESPACE, else "/ferry/agents/") */
    uint32_t etcd_ttl_s;            /* lease TTL (0: env FERRY_ETCD_TTL_S, else 10) */
    uint32_t etcd_watch_timeout_ms; /* a fetch waits this long for an absent key
                                     * (0: env FERRY_ETCD_WATCH_TIMEOUT_MS, else 5000) */
    /* TCPStore mode (docs/metadata.md): "host:port" of a PyTorch TCPStore
     * server; NULL: env FERRY_TCPSTORE_ENDPOINT, then NIXL_TCPSTORE_ENDPOINT.
     * The metadata calls made with no address then go to it, under the
     * same namespace, TTL (of a heartbeat: TCPStore has no leases) and watch
     * timeout as etcd's. etcd_endpoints
     * set in the config wins over this field, this field over the
     * environment. */
    const char *tcpstore_endpoint;
    /* Telemetry exporters and switches (docs/telemetry.md). NULL or 0: the
     * environment's FERRY_TELEMETRY_<X>, then NIXL_TELEMETRY_<X>, else the
     * default. Exporters run only with `telemetry` on (or _ENABLE). */
    const char *telemetry_exporters;    /* "prometheus", "ring", comma separated (_EXPORTER) */
    const char *telemetry_dir;          /* rings, shared endpoint (_DIR; default
                                         * /dev/shm/ferry-telemetry-<uid>) */
    uint32_t telemetry_ring_slots;      /* events the ring holds (_BUFFER_SIZE; 4096) */
    uint32_t telemetry_interval_ms;     /* publishing to a shared endpoint (_RUN_INTERVAL; 100) */
    uint16_t telemetry_prometheus_port; /* /metrics port (_PROMETHEUS_PORT; 9090) */
    const char *telemetry_metrics;      /* enabled families, comma-separated globs
                                         * (_ENABLED_METRICS; all) */
    const char *telemetry_buckets_us;   /* histogram bounds (_HISTOGRAM_BUCKETS_US) */
    /* Caps on the DRAM+VRAM bytes each backend holds registered, by plugin
     * name: "UCX=32G,SHM=4G" (NULL: the NAME=SIZE items of env
     * FERRY_MAX_REGISTERED_BYTES). See reg_cap_bytes for the agent's. */
    const char *reg_cap_backends;
} ferry_agent_config;

/* Fills defaults; call before setting fields. xfer_timeout_ms comes from
 * FERRY_XFER_TIMEOUT_MS when that holds a number of ms or "none". */
void ferry_agent_config_init(ferry_agent_config *config);

/* Creates an agent. The LOCAL backend is not created implicitly: create the
 * backends you want with ferry_backend_create().
 * Returns OK, INVALID_PARAM (NULL/empty name, bad size, unknown sync mode,
 * listen with FERRY_SYNC_NONE: the listener thread would race the caller,
 * auth_key or FERRY_AUTH_KEY shorter than 16 or longer than 256 bytes,
 * a malformed telemetry setting, reg_cap_backends or FERRY_MAX_REGISTERED_BYTES),
 * NO_RESOURCES (a thread could not start), IO (the listener cannot bind,
 * the event ring cannot be created), NOT_SUPPORTED (the Prometheus
 * exporter asked of a build without libmicrohttpd), NO_MEMORY. */
ferry_status ferry_agent_create(const ferry_agent_config *config, ferry_agent **out);

/* Releases every request, prepared list, registration, remote and backend the
 * agent still owns, stops its threads and frees it. NULL is a no-op. */
void ferry_agent_destroy(ferry_agent *agent);

/* The agent's name (valid for the agent's lifetime). */
const char *ferry_agent_name(const ferry_agent *agent);

/* Drives completion of every backend once (non-blocking). Needed only when
 * the progress thread is off. Returns OK or the first backend error. */
ferry_status ferry_agent_progress(ferry_agent *agent);

/* ---- plugins ---- */

/* A param of a plugin's schema. */
typedef struct ferry_param_spec {
    const char *key;
    const char *default_value; /* NULL: no default */
    const char *help;
} ferry_param_spec;

/* A key/value param given to ferry_backend_create. */
typedef struct ferry_param {
    const char *key;
    const char *value;
} ferry_param;

/* Names of the available plugins (compiled in first, then those found in
 * FERRY_PLUGIN_DIR or the default plugin dir, sorted by name; a name found
 * earlier in the search path shadows later files of that name).
 * Writes up to cap names (owned by the agent) and sets *count to the total.
 * Call with cap 0 to learn the count. */
ferry_status ferry_plugin_list(ferry_agent *agent, const char **names, size_t cap, size_t *count);

/* A plugin's params schema (owned by the plugin, static) and memory types
 * (bit mask of FERRY_MEM_MASK). NOT_FOUND for an unknown plugin, ABI when
 * its ABI version differs, BACKEND when it could not be loaded. */
ferry_status ferry_plugin_params(ferry_agent *agent, const char *plugin,
                                 const ferry_param_spec **params, size_t *count);
ferry_status ferry_plugin_mem_types(ferry_agent *agent, const char *plugin, uint32_t *mem_mask);
/* Where the plugin came from: "builtin" or the .so path; and its ABI. */
ferry_status ferry_plugin_path(ferry_agent *agent, const char *plugin, const char **path,
                               uint32_t *abi_version);

/* What the loader knows of a plugin, loadable or refused. */
typedef struct ferry_plugin_info {
    size_t size;          /* sizeof(ferry_plugin_info) */
    const char *path;     /* "builtin" or the .so path */
    uint32_t abi_version; /* the ABI its descriptor declares (0: unreadable) */
    ferry_status status;  /* OK when loadable, else why it is refused (ABI, BACKEND) */
    const char *error;    /* the loader's reason, "" when loadable */
} ferry_plugin_info;
void ferry_plugin_info_init(ferry_plugin_info *info);
/* Fills info for a listed plugin (strings live as long as the process).
 * Returns OK, or NOT_FOUND when no plugin has that name, INVALID_PARAM. */
ferry_status ferry_plugin_get_info(ferry_agent *agent, const char *plugin, ferry_plugin_info *info);

/* ---- backends ---- */

/* Creates a backend (an instance of plugin) in agent. Unknown keys are
 * refused (INVALID_PARAM). One backend per plugin per agent (NOT_ALLOWED).
 * Returns OK, NOT_FOUND, ABI, INVALID_PARAM, NOT_ALLOWED, NO_RESOURCES (16
 * backends already), NO_MEMORY, or the error of the plugin's init. */
ferry_status ferry_backend_create(ferry_agent *agent, const char *plugin, const ferry_param *params,
                                  size_t num_params, ferry_backend **out);

#define FERRY_CAP_LOCAL    (1u << 0) /* transfers within the agent */
#define FERRY_CAP_REMOTE   (1u << 1) /* transfers to other agents */
#define FERRY_CAP_NOTIF    (1u << 2) /* notifications */
#define FERRY_CAP_PROGRESS (1u << 3) /* needs progress calls */

typedef struct ferry_backend_caps {
    size_t size;       /* sizeof(ferry_backend_caps) */
    uint32_t flags;    /* FERRY_CAP_* */
    uint32_t mem_mask; /* FERRY_MEM_MASK bits */
} ferry_backend_caps;
void ferry_backend_caps_init(ferry_backend_caps *caps);

ferry_status ferry_backend_get_caps(const ferry_backend *backend, ferry_backend_caps *caps);
/* The backend's plugin name, e.g. "LOCAL". */
const char *ferry_backend_name(const ferry_backend *backend);
/* Effective params (defaults filled in), owned by the backend. */
ferry_status ferry_backend_params(const ferry_backend *backend, const ferry_param **params,
                                  size_t *count);
/* Looks up the agent's backend of a plugin name (NOT_FOUND if none). */
ferry_status ferry_backend_find(ferry_agent *agent, const char *plugin, ferry_backend **out);

#ifdef __cplusplus
}
#endif
#endif
