/* SPDX-License-Identifier: Apache-2.0 */
/* UCX backend: one-sided READ/WRITE between agents (and loopback) over any
 * transport UCX picks (shm, cma, tcp, verbs), notifications as active
 * messages, dead peers detected through UCX's peer error handling.
 *
 * Design:
 *  - one context and one worker per backend; the core serialises all ops
 *    (the plugin does not set FERRY_PLUGIN_F_THREAD_SAFE), so the worker runs
 *    in UCS_THREAD_MODE_SERIALIZED;
 *  - connection info is the worker address; a remote's endpoints are
 *    created on first use (or by connect). By default ("peer") a remote has
 *    one endpoint in UCX's peer error mode: a dead peer is always detected
 *    and never wedges the worker, but UCX then only picks transports that
 *    detect failures, which on one host leaves RMA emulated over TCP.
 *    "dual" adds speed on one host: a data endpoint in mode "none" (with an
 *    error callback) that may use shared memory, plus a control endpoint in
 *    mode "peer" that notices the peer's death (UCX keepalive). Its price,
 *    measured: a peer killed mid-transfer can leave a slot of this worker's
 *    shared-memory FIFO half written, and traffic from later peers through
 *    it then stalls. "none" detects nothing;
 *  - a region publishes its packed rkey; a remote region keeps the packed
 *    bytes and unpacks them once its endpoint exists;
 *  - a post issues one put/get per (merged) segment, then one flush of the
 *    endpoint; the flush callback sends the notification, so it leaves after
 *    every byte is remotely complete and, on the same endpoint, reaches the
 *    target after the data;
 *  - no wakeup feature (it would exclude cma): an idle agent's progress
 *    thread polls the worker every millisecond instead of sleeping on its
 *    event fd. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucp/api/ucp.h>

#include "ferry/plugin.h"

#define FY_UCX_STR2(x)  #x
#define FY_UCX_STR(x)   FY_UCX_STR2(x)
#define FY_UCX_VERSION  "built with UCX " FY_UCX_STR(UCP_API_MAJOR) "." FY_UCX_STR(UCP_API_MINOR)
#define FY_UCX_AM_NOTIF 0x6e          /* active message id of notifications */
#define FY_UCX_CLOSE_NS 2000000000ull /* bound on closing an endpoint */

typedef enum fy_ucx_errmode { FY_UCX_DUAL, FY_UCX_PEER, FY_UCX_NONE } fy_ucx_errmode;

typedef struct fy_ucx {
    const ferry_plugin_host *host;
    fy_ucx_errmode errmode;
    ucp_context_h ctx;
    ucp_worker_h worker;
    ucp_address_t *addr;
    size_t addr_len;
    struct fy_ucx_xfer *orphans; /* released requests UCX still holds */
    struct fy_ucx_alloc *allocs;
    bool vram;
} fy_ucx;

typedef struct fy_ucx_remote {
    fy_ucx *u;
    char name[256];
    void *addr; /* peer worker address */
    size_t addr_len;
    ucp_ep_h ep;         /* data: RMA and notifications */
    ucp_ep_h ctl;        /* control (dual mode): liveness only */
    ucs_status_t failed; /* UCS_OK while healthy */
} fy_ucx_remote;

/* Memory UCX allocated (ferry_mem_alloc): shared with peers of this host.
 * Regions registered inside it use its memory handle; it is unmapped when
 * it was freed and the last such region is gone. */
typedef struct fy_ucx_alloc {
    struct fy_ucx_alloc *next;
    uintptr_t addr;
    size_t len;
    ucp_mem_h memh;
    unsigned regions; /* registered regions inside */
    bool freed;       /* mem_free came */
} fy_ucx_alloc;

typedef struct fy_ucx_region {
    ucp_mem_h memh;
    fy_ucx_alloc *within; /* the allocation whose handle it borrows, or NULL */
} fy_ucx_region;

typedef struct fy_ucx_rregion {
    void *packed;
    size_t packed_len;
    ucp_rkey_h rkey; /* unpacked on first use */
} fy_ucx_rregion;

enum { FY_UX_IDLE, FY_UX_FLUSHING, FY_UX_NOTIFYING, FY_UX_DONE, FY_UX_FAILED };

typedef struct fy_ucx_xfer {
    fy_ucx *u;
    const ferry_plugin_xfer *px;
    fy_ucx_remote *remote;
    int state;
    ferry_status error;
    const void *notif;
    size_t notif_len;
    void *req;   /* the flush or notification request in flight */
    bool orphan; /* released while req was stuck: req's callback frees it */
    struct fy_ucx_xfer *next_orphan;
    char detail[384];
} fy_ucx_xfer;

#define UCX_LOG(u, lvl, ...) (u)->host->log((u)->host->agent_ctx, (lvl), __VA_ARGS__)

/* ---- params ---- */

static const ferry_param_spec fy_ucx_params[] = {
    {"devices", "", "UCX_NET_DEVICES for this backend (empty: UCX's choice / environment)"},
    {"tls", "", "UCX_TLS for this backend (empty: UCX's choice / environment)"},
    {"num_workers", "1", "UCX workers (this version drives one)"},
    {"keepalive_ms", "1000",
     "interval of UCX keepalive probes: bounds how long a dead peer goes unnoticed"},
    {"error_handling", "peer",
     "peer: UCX peer error mode, only transports that detect a dead peer (on one host that "
     "leaves TCP: RMA is emulated); dual: a fast data endpoint that may use shared memory + a "
     "peer-mode control endpoint that detects the death (but a peer killed mid-transfer can "
     "wedge this worker's shared-memory traffic with later peers); none: no detection"},
};

static const char *fy_param(const ferry_param *params, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(params[i].key, key))
            return params[i].value;
    return "";
}

static bool fy_parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > max || s[0] == '-')
        return false;
    *out = v;
    return true;
}

/* ---- status mapping ---- */

static ferry_status fy_ucx_status(ucs_status_t st)
{
    switch (st) {
    case UCS_OK:
        return FERRY_OK;
    case UCS_INPROGRESS:
        return FERRY_IN_PROGRESS;
    case UCS_ERR_CANCELED:
        return FERRY_ERR_CANCELED;
    case UCS_ERR_NO_MEMORY:
        return FERRY_ERR_NO_MEMORY;
    case UCS_ERR_INVALID_PARAM:
        return FERRY_ERR_INVALID_PARAM;
    case UCS_ERR_UNSUPPORTED:
        return FERRY_ERR_NOT_SUPPORTED;
    case UCS_ERR_ENDPOINT_TIMEOUT:
    case UCS_ERR_CONNECTION_RESET:
    case UCS_ERR_UNREACHABLE:
    case UCS_ERR_REJECTED:
    case UCS_ERR_NOT_CONNECTED:
        return FERRY_ERR_REMOTE_DISCONNECT;
    default:
        return FERRY_ERR_BACKEND;
    }
}

/* ---- init / fini ---- */

static ucs_status_t fy_ucx_notif_cb(void *arg, const void *header, size_t header_len, void *data,
                                    size_t len, const ucp_am_recv_param_t *param);

/* UCX variables from params; the environment still wins for the rest. */
static ferry_status fy_ucx_config(fy_ucx *u, const ferry_param *params, size_t n,
                                  ucp_config_t **out)
{
    unsigned long keepalive, workers;
    if (!fy_parse_uint(fy_param(params, n, "keepalive_ms"), 3600000, &keepalive) ||
        !fy_parse_uint(fy_param(params, n, "num_workers"), 64, &workers) || workers != 1) {
        UCX_LOG(u, FERRY_LOG_ERROR,
                "bad param: keepalive_ms must be a number of ms, "
                "num_workers must be 1 in this version");
        return FERRY_ERR_INVALID_PARAM;
    }
    const char *mode = fy_param(params, n, "error_handling");
    if (!strcmp(mode, "dual"))
        u->errmode = FY_UCX_DUAL;
    else if (!strcmp(mode, "peer") || !mode[0])
        u->errmode = FY_UCX_PEER;
    else if (!strcmp(mode, "none"))
        u->errmode = FY_UCX_NONE;
    else {
        UCX_LOG(u, FERRY_LOG_ERROR, "bad param: error_handling must be dual, peer or none");
        return FERRY_ERR_INVALID_PARAM;
    }
    ucs_status_t st = ucp_config_read(NULL, NULL, out);
    if (st != UCS_OK)
        return FERRY_ERR_BACKEND;
    const char *dev = fy_param(params, n, "devices"), *tls = fy_param(params, n, "tls");
    char ka[32];
    snprintf(ka, sizeof(ka), "%lums", keepalive ? keepalive : 1000);
    if ((dev[0] && ucp_config_modify(*out, "NET_DEVICES", dev) != UCS_OK) ||
        (tls[0] && ucp_config_modify(*out, "TLS", tls) != UCS_OK) ||
        (!getenv("UCX_KEEPALIVE_INTERVAL") &&
         ucp_config_modify(*out, "KEEPALIVE_INTERVAL", ka) != UCS_OK)) {
        UCX_LOG(u, FERRY_LOG_ERROR, "UCX refused the devices/tls/keepalive settings");
        ucp_config_release(*out);
        return FERRY_ERR_INVALID_PARAM;
    }
    return FERRY_OK;
}

static ferry_status fy_ucx_context(fy_ucx *u, ucp_config_t *config)
{
    ucp_params_t p = {
        .field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED,
        /* No UCP_FEATURE_WAKEUP: it keeps UCX from using transports without
         * event support, cma among them, which is the fast one-sided path
         * between processes of one host (measured: 1 MiB puts fall from
         * ~10 GB/s to emulation over shared-memory messages). */
        .features = UCP_FEATURE_RMA | UCP_FEATURE_AM,
        .mt_workers_shared = 0,
    };
    ucs_status_t st = ucp_init(&p, config, &u->ctx);
    if (st != UCS_OK) {
        UCX_LOG(u, FERRY_LOG_ERROR, "ucp_init: %s", ucs_status_string(st));
        return FERRY_ERR_BACKEND;
    }
    ucp_context_attr_t attr = {.field_mask = UCP_ATTR_FIELD_MEMORY_TYPES};
    if (ucp_context_query(u->ctx, &attr) == UCS_OK)
        u->vram = attr.memory_types & UCS_BIT(UCS_MEMORY_TYPE_CUDA);
    return FERRY_OK;
}

static ferry_status fy_ucx_worker(fy_ucx *u)
{
    ucp_worker_params_t wp = {.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
                              .thread_mode = UCS_THREAD_MODE_SERIALIZED};
    ucs_status_t st = ucp_worker_create(u->ctx, &wp, &u->worker);
    if (st == UCS_OK)
        st = ucp_worker_get_address(u->worker, &u->addr, &u->addr_len);
    ucp_am_handler_param_t ap = {
        .field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB |
                      UCP_AM_HANDLER_PARAM_FIELD_ARG,
        .id = FY_UCX_AM_NOTIF,
        .cb = fy_ucx_notif_cb,
        .arg = u,
    };
    if (st == UCS_OK)
        st = ucp_worker_set_am_recv_handler(u->worker, &ap);
    if (st != UCS_OK) {
        UCX_LOG(u, FERRY_LOG_ERROR, "worker setup: %s", ucs_status_string(st));
        return FERRY_ERR_BACKEND;
    }
    return FERRY_OK;
}

static void fy_ucx_fini(void *priv)
{
    fy_ucx *u = priv;
    while (u->allocs) { /* the core freed them all; deferred ones end here */
        fy_ucx_alloc *a = u->allocs;
        u->allocs = a->next;
        ucp_mem_unmap(u->ctx, a->memh);
        free(a);
    }
    if (u->addr)
        ucp_worker_release_address(u->worker, u->addr);
    if (u->worker)
        ucp_worker_destroy(u->worker);
    if (u->ctx)
        ucp_cleanup(u->ctx);
    while (u->orphans) { /* the worker is gone: their callbacks never come */
        fy_ucx_xfer *x = u->orphans;
        u->orphans = x->next_orphan;
        free(x);
    }
}

static ferry_status fy_ucx_init(void *priv, const ferry_plugin_host *host,
                                const ferry_param *params, size_t n)
{
    fy_ucx *u = priv;
    u->host = host;
    ucp_config_t *config;
    ferry_status rc = fy_ucx_config(u, params, n, &config);
    if (rc != FERRY_OK)
        return rc;
    rc = fy_ucx_context(u, config);
    ucp_config_release(config);
    if (rc == FERRY_OK)
        rc = fy_ucx_worker(u);
    if (rc != FERRY_OK)
        fy_ucx_fini(u);
    return rc;
}

static uint32_t fy_ucx_mem_types(void *priv)
{
    fy_ucx *u = priv;
    return FERRY_MEM_MASK(FERRY_MEM_DRAM) | (u->vram ? FERRY_MEM_MASK(FERRY_MEM_VRAM) : 0);
}

/* ---- progress ---- */

/* IN_PROGRESS when UCX did work: the agent's progress thread then keeps
 * polling (peers may be moving data that needs our progress). */
static ferry_status fy_ucx_progress(void *priv)
{
    fy_ucx *u = priv;
    unsigned events = 0, n;
    while ((n = ucp_worker_progress(u->worker)))
        events += n;
    return events ? FERRY_IN_PROGRESS : FERRY_OK;
}

/* ---- allocation ---- */

static void fy_ucx_alloc_put(fy_ucx *u, fy_ucx_alloc *a)
{
    if (!a->freed || a->regions)
        return;
    fy_ucx_alloc **link = &u->allocs;
    while (*link != a)
        link = &(*link)->next;
    *link = a->next;
    ucp_mem_unmap(u->ctx, a->memh);
    free(a);
}

/* The allocation that holds [addr, addr+len), or NULL. */
static fy_ucx_alloc *fy_ucx_alloc_of(fy_ucx *u, uint64_t addr, uint64_t len)
{
    for (fy_ucx_alloc *a = u->allocs; a; a = a->next)
        if (!a->freed && addr >= a->addr && addr - a->addr <= a->len &&
            len <= a->len - (addr - a->addr))
            return a;
    return NULL;
}

/* UCX allocates (and maps) the memory itself: on one host it comes from a
 * shared-memory transport, and peers then write it with plain copies. */
static ferry_status fy_ucx_mem_alloc(void *priv, ferry_mem_type type, uint64_t len, uint64_t dev_id,
                                     void **addr, void **alloc)
{
    fy_ucx *u = priv;
    (void)dev_id;
    if (type != FERRY_MEM_DRAM)
        return FERRY_ERR_NOT_SUPPORTED;
    fy_ucx_alloc *a = calloc(1, sizeof(*a));
    if (!a)
        return FERRY_ERR_NO_MEMORY;
    ucp_mem_map_params_t mp = {
        .field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH |
                      UCP_MEM_MAP_PARAM_FIELD_FLAGS,
        .address = NULL,
        .length = len,
        .flags = UCP_MEM_MAP_ALLOCATE,
    };
    ucp_mem_attr_t attr = {.field_mask = UCP_MEM_ATTR_FIELD_ADDRESS | UCP_MEM_ATTR_FIELD_LENGTH};
    ucs_status_t st = ucp_mem_map(u->ctx, &mp, &a->memh);
    if (st == UCS_OK && (st = ucp_mem_query(a->memh, &attr)) != UCS_OK)
        ucp_mem_unmap(u->ctx, a->memh);
    if (st != UCS_OK) {
        UCX_LOG(u, FERRY_LOG_ERROR, "allocating %llu bytes: %s", (unsigned long long)len,
                ucs_status_string(st));
        free(a);
        return fy_ucx_status(st);
    }
    a->addr = (uintptr_t)attr.address;
    a->len = len; /* UCX may round up; the caller asked for len */
    a->next = u->allocs;
    u->allocs = a;
    *addr = attr.address;
    *alloc = a;
    return FERRY_OK;
}

static void fy_ucx_mem_free(void *priv, void *alloc)
{
    fy_ucx_alloc *a = alloc;
    a->freed = true;
    fy_ucx_alloc_put(priv, a);
}

/* ---- registration ---- */

/* Maps the range, or borrows the handle of the allocation it lies in. */
static ucs_status_t fy_ucx_map(fy_ucx *u, const ferry_desc *d, fy_ucx_region *r)
{
    r->within = fy_ucx_alloc_of(u, d->addr, d->len);
    if (r->within) {
        r->within->regions++;
        r->memh = r->within->memh;
        return UCS_OK;
    }
    ucp_mem_map_params_t mp = {
        .field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH,
        .address = (void *)(uintptr_t)d->addr,
        .length = d->len,
    };
    ucs_status_t st = ucp_mem_map(u->ctx, &mp, &r->memh);
    if (st != UCS_OK)
        r->memh = NULL;
    return st;
}

static void fy_ucx_unmap(fy_ucx *u, fy_ucx_region *r)
{
    if (r->within) {
        r->within->regions--;
        fy_ucx_alloc_put(u, r->within);
    } else if (r->memh) {
        ucp_mem_unmap(u->ctx, r->memh);
    }
}

static ferry_status fy_ucx_reg(void *priv, ferry_mem_type type, const ferry_desc *d,
                               const void *meta, size_t meta_len, void **region, void **pub,
                               size_t *pub_len)
{
    fy_ucx *u = priv;
    (void)meta, (void)meta_len;
    if (type != FERRY_MEM_DRAM && !(type == FERRY_MEM_VRAM && u->vram))
        return FERRY_ERR_NOT_SUPPORTED;
    fy_ucx_region *r = calloc(1, sizeof(*r));
    if (!r)
        return FERRY_ERR_NO_MEMORY;
    void *packed = NULL;
    size_t packed_len = 0;
    ucs_status_t st = fy_ucx_map(u, d, r);
    if (st == UCS_OK)
        st = ucp_rkey_pack(u->ctx, r->memh, &packed, &packed_len);
    if (st != UCS_OK)
        goto unmap;
    *pub = malloc(packed_len);
    if (!*pub) {
        st = UCS_ERR_NO_MEMORY;
        goto release_packed;
    }
    memcpy(*pub, packed, packed_len);
    *pub_len = packed_len;
    ucp_rkey_buffer_release(packed);
    *region = r;
    return FERRY_OK;
release_packed:
    ucp_rkey_buffer_release(packed);
unmap:
    UCX_LOG(u, FERRY_LOG_ERROR, "mapping %#llx+%llu: %s", (unsigned long long)d->addr,
            (unsigned long long)d->len, ucs_status_string(st));
    fy_ucx_unmap(u, r);
    free(r);
    return fy_ucx_status(st);
}

static void fy_ucx_dereg(void *priv, void *region)
{
    fy_ucx_unmap(priv, region);
    free(region);
}

/* ---- remotes ---- */

static ferry_status fy_ucx_conn_info(void *priv, void **info, size_t *len)
{
    fy_ucx *u = priv;
    *info = malloc(u->addr_len);
    if (!*info)
        return FERRY_ERR_NO_MEMORY;
    memcpy(*info, u->addr, u->addr_len);
    *len = u->addr_len;
    return FERRY_OK;
}

static ferry_status fy_ucx_remote_load(void *priv, const char *name, uint64_t uid, const void *info,
                                       size_t len, void **remote)
{
    fy_ucx *u = priv;
    (void)uid;
    if (!info || !len)
        return FERRY_ERR_NOT_SUPPORTED; /* the peer has no UCX address for us */
    fy_ucx_remote *r = calloc(1, sizeof(*r));
    if (!r || !(r->addr = malloc(len))) {
        free(r);
        return FERRY_ERR_NO_MEMORY;
    }
    memcpy(r->addr, info, len);
    r->addr_len = len;
    r->u = u;
    snprintf(r->name, sizeof(r->name), "%s", name);
    *remote = r;
    return FERRY_OK;
}

static void fy_ucx_ep_error(void *arg, ucp_ep_h ep, ucs_status_t st)
{
    fy_ucx_remote *r = arg;
    (void)ep;
    r->failed = st;
    UCX_LOG(r->u, FERRY_LOG_WARN, "peer %s: %s", r->name, ucs_status_string(st));
}

static void fy_ucx_ep_close(fy_ucx_remote *r);

static ucs_status_t fy_ucx_ep_new(fy_ucx_remote *r, ucp_err_handling_mode_t mode, ucp_ep_h *ep)
{
    ucp_ep_params_t p = {
        .field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                      UCP_EP_PARAM_FIELD_ERR_HANDLER,
        .address = r->addr,
        .err_mode = mode,
        .err_handler = {.cb = fy_ucx_ep_error, .arg = r},
    };
    ucs_status_t st = ucp_ep_create(r->u->worker, &p, ep);
    if (st != UCS_OK)
        *ep = NULL;
    return st;
}

static void fy_ucx_discard(void *req, ucs_status_t st, void *arg)
{
    (void)st, (void)arg;
    ucp_request_free(req);
}

/* Wires the control endpoint up now (a flush forces the connection), so a
 * peer dying before any transfer is noticed too. */
static ucs_status_t fy_ucx_ctl_new(fy_ucx_remote *r)
{
    ucs_status_t st = fy_ucx_ep_new(r, UCP_ERR_HANDLING_MODE_PEER, &r->ctl);
    if (st != UCS_OK)
        return st;
    ucp_request_param_t p = {.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK, .cb.send = fy_ucx_discard};
    void *req = ucp_ep_flush_nbx(r->ctl, &p);
    return UCS_PTR_IS_ERR(req) ? UCS_PTR_STATUS(req) : UCS_OK;
}

/* Creates the endpoints on first use. UCX copies the address while
 * creating, so a garbage address fails here, cleanly. */
static ferry_status fy_ucx_ep(fy_ucx_remote *r)
{
    if (r->failed != UCS_OK)
        return FERRY_ERR_REMOTE_DISCONNECT;
    if (r->ep)
        return FERRY_OK;
    fy_ucx_errmode mode = r->u->errmode;
    ucs_status_t st = fy_ucx_ep_new(
        r, mode == FY_UCX_PEER ? UCP_ERR_HANDLING_MODE_PEER : UCP_ERR_HANDLING_MODE_NONE, &r->ep);
    if (st == UCS_OK && mode == FY_UCX_DUAL)
        st = fy_ucx_ctl_new(r);
    if (st != UCS_OK) {
        UCX_LOG(r->u, FERRY_LOG_ERROR, "endpoint to %s: %s", r->name, ucs_status_string(st));
        fy_ucx_ep_close(r);
        return fy_ucx_status(st);
    }
    return FERRY_OK;
}

static uint64_t fy_ucx_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Waits (progressing) for a request, at most until deadline, then hands it
 * back to UCX: ucp_request_free on an unfinished request releases it when
 * it completes. Returns its status, or UCS_ERR_TIMED_OUT. */
static ucs_status_t fy_ucx_wait(fy_ucx *u, void *req, uint64_t deadline)
{
    if (!UCS_PTR_IS_PTR(req))
        return UCS_PTR_STATUS(req);
    ucs_status_t st;
    while ((st = ucp_request_check_status(req)) == UCS_INPROGRESS && fy_ucx_now_ns() < deadline)
        ucp_worker_progress(u->worker);
    ucp_request_free(req);
    return st == UCS_INPROGRESS ? UCS_ERR_TIMED_OUT : st;
}

/* One close per endpoint (a second one is an error in UCX): flushed for a
 * healthy peer, forced for a failed one; bounded either way. */
static void fy_ucx_close_one(fy_ucx_remote *r, ucp_ep_h ep)
{
    ucp_request_param_t p = {.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
                             .flags = r->failed != UCS_OK ? UCP_EP_CLOSE_FLAG_FORCE : 0};
    ucs_status_t st =
        fy_ucx_wait(r->u, ucp_ep_close_nbx(ep, &p), fy_ucx_now_ns() + FY_UCX_CLOSE_NS);
    if (st != UCS_OK && st != UCS_ERR_CANCELED && st != UCS_ERR_ENDPOINT_TIMEOUT &&
        st != UCS_ERR_CONNECTION_RESET)
        UCX_LOG(r->u, FERRY_LOG_DEBUG, "closing an endpoint to %s: %s", r->name,
                ucs_status_string(st));
}

static void fy_ucx_ep_close(fy_ucx_remote *r)
{
    if (r->ctl)
        fy_ucx_close_one(r, r->ctl);
    if (r->ep)
        fy_ucx_close_one(r, r->ep);
    r->ctl = r->ep = NULL;
}

static void fy_ucx_remote_unload(void *priv, void *remote)
{
    fy_ucx_remote *r = remote;
    (void)priv;
    fy_ucx_ep_close(r);
    free(r->addr);
    free(r);
}

static ferry_status fy_ucx_connect(void *priv, void *remote)
{
    (void)priv;
    return fy_ucx_ep(remote);
}

static ferry_status fy_ucx_disconnect(void *priv, void *remote)
{
    (void)priv;
    fy_ucx_ep_close(remote);
    return FERRY_OK;
}

static ferry_status fy_ucx_rregion_load(void *priv, void *remote, ferry_mem_type type,
                                        const ferry_desc *d, const void *pub, size_t pub_len,
                                        void **rregion)
{
    (void)priv, (void)remote, (void)type, (void)d;
    if (!pub || !pub_len)
        return FERRY_ERR_BAD_METADATA;
    fy_ucx_rregion *rr = calloc(1, sizeof(*rr));
    if (!rr || !(rr->packed = malloc(pub_len))) {
        free(rr);
        return FERRY_ERR_NO_MEMORY;
    }
    memcpy(rr->packed, pub, pub_len);
    rr->packed_len = pub_len;
    *rregion = rr;
    return FERRY_OK;
}

static void fy_ucx_rregion_unload(void *priv, void *remote, void *rregion)
{
    fy_ucx_rregion *rr = rregion;
    (void)priv, (void)remote;
    if (rr->rkey)
        ucp_rkey_destroy(rr->rkey);
    free(rr->packed);
    free(rr);
}

static ferry_status fy_ucx_rkey(fy_ucx_remote *r, fy_ucx_rregion *rr)
{
    if (rr->rkey)
        return FERRY_OK;
    ucs_status_t st = ucp_ep_rkey_unpack(r->ep, rr->packed, &rr->rkey);
    if (st != UCS_OK) {
        UCX_LOG(r->u, FERRY_LOG_ERROR, "remote key of %s: %s", r->name, ucs_status_string(st));
        rr->rkey = NULL;
        return FERRY_ERR_BAD_METADATA;
    }
    return FERRY_OK;
}

/* ---- notifications ---- */

static ucs_status_t fy_ucx_notif_cb(void *arg, const void *header, size_t header_len, void *data,
                                    size_t len, const ucp_am_recv_param_t *param)
{
    fy_ucx *u = arg;
    char from[256];
    if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV || !header_len ||
        header_len >= sizeof(from)) {
        UCX_LOG(u, FERRY_LOG_WARN, "dropped a malformed notification");
        return UCS_OK;
    }
    memcpy(from, header, header_len);
    from[header_len] = '\0';
    u->host->notif_deliver(u->host->agent_ctx, from, data, len);
    return UCS_OK;
}

/* Sends msg to r as an active message; cb (may be NULL) when done. */
static void *fy_ucx_notif_post(fy_ucx_remote *r, const void *msg, size_t len,
                               ucp_send_nbx_callback_t cb, void *arg)
{
    const char *me = r->u->host->agent_name;
    ucp_request_param_t p = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS |
                        (cb ? UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA : 0),
        .flags = UCP_AM_SEND_FLAG_EAGER, /* notifications are small: no rendezvous */
        .cb.send = cb,
        .user_data = arg,
    };
    return ucp_am_send_nbx(r->ep, FY_UCX_AM_NOTIF, me, strlen(me), msg, len, &p);
}

static ferry_status fy_ucx_notif_send(void *priv, void *remote, const void *msg, size_t len)
{
    fy_ucx *u = priv;
    fy_ucx_remote *r = remote;
    ferry_status rc = fy_ucx_ep(r);
    if (rc != FERRY_OK)
        return rc;
    ucs_status_t st = fy_ucx_wait(u, fy_ucx_notif_post(r, msg, len, NULL, NULL),
                                  fy_ucx_now_ns() + FY_UCX_CLOSE_NS);
    return st == UCS_OK ? FERRY_OK : r->failed ? FERRY_ERR_REMOTE_DISCONNECT : fy_ucx_status(st);
}

/* ---- transfers ---- */

static ferry_status fy_ucx_xfer_prep(void *priv, const ferry_plugin_xfer *px, void **handle)
{
    fy_ucx *u = priv;
    fy_ucx_remote *r = px->remote_agent;
    if (!r)
        return FERRY_ERR_INVALID_PARAM;
    ferry_status rc = fy_ucx_ep(r);
    for (size_t i = 0; rc == FERRY_OK && i < px->count; i++)
        rc = px->remote[i].region ? fy_ucx_rkey(r, px->remote[i].region) : FERRY_ERR_NOT_FOUND;
    fy_ucx_xfer *x = rc == FERRY_OK ? calloc(1, sizeof(*x)) : NULL;
    if (rc == FERRY_OK && !x)
        rc = FERRY_ERR_NO_MEMORY;
    if (rc != FERRY_OK)
        return rc;
    *x = (fy_ucx_xfer){.u = u, .px = px, .remote = r, .state = FY_UX_IDLE};
    *handle = x;
    return FERRY_OK;
}

static void fy_ucx_fail(fy_ucx_xfer *x, ucs_status_t st, const char *what)
{
    x->error = x->remote->failed ? FERRY_ERR_REMOTE_DISCONNECT : fy_ucx_status(st);
    if (x->error >= 0)
        x->error = FERRY_ERR_BACKEND;
    snprintf(x->detail, sizeof(x->detail), "%s to %s: %s", what, x->remote->name,
             ucs_status_string(x->remote->failed ? x->remote->failed : st));
    x->state = FY_UX_FAILED;
}

/* A request released while UCX still held it: unlink and free it now. */
static void fy_ucx_orphan_free(fy_ucx_xfer *x)
{
    fy_ucx_xfer **link = &x->u->orphans;
    while (*link != x)
        link = &(*link)->next_orphan;
    *link = x->next_orphan;
    free(x);
}

/* Common start of request callbacks: false when the request was orphaned
 * (its notification bytes and segments belong to nobody any more). */
static bool fy_ucx_req_done(fy_ucx_xfer *x, void *req)
{
    ucp_request_free(req);
    x->req = NULL;
    if (!x->orphan)
        return true;
    fy_ucx_orphan_free(x);
    return false;
}

static void fy_ucx_notif_done(void *req, ucs_status_t st, void *arg)
{
    fy_ucx_xfer *x = arg;
    if (!fy_ucx_req_done(x, req))
        return;
    if (st == UCS_OK)
        x->state = FY_UX_DONE;
    else
        fy_ucx_fail(x, st, "notification");
}

/* The data is remotely complete: now the notification may leave. */
static void fy_ucx_after_flush(fy_ucx_xfer *x)
{
    if (!x->notif) {
        x->state = FY_UX_DONE;
        return;
    }
    x->state = FY_UX_NOTIFYING;
    void *req = fy_ucx_notif_post(x->remote, x->notif, x->notif_len, fy_ucx_notif_done, x);
    if (UCS_PTR_IS_ERR(req))
        fy_ucx_fail(x, UCS_PTR_STATUS(req), "notification");
    else if (req)
        x->req = req;
    else
        x->state = FY_UX_DONE;
}

static void fy_ucx_flush_done(void *req, ucs_status_t st, void *arg)
{
    fy_ucx_xfer *x = arg;
    if (!fy_ucx_req_done(x, req))
        return;
    if (st == UCS_OK)
        fy_ucx_after_flush(x);
    else
        fy_ucx_fail(x, st, "flush");
}

/* One put or get per segment; completion is tracked by the flush. */
static ucs_status_t fy_ucx_issue(fy_ucx_xfer *x)
{
    const ferry_plugin_xfer *px = x->px;
    ucp_request_param_t p = {.op_attr_mask = 0};
    for (size_t i = 0; i < px->count; i++) {
        const ferry_plugin_seg *l = &px->local[i], *r = &px->remote[i];
        ucp_rkey_h rkey = ((fy_ucx_rregion *)r->region)->rkey;
        void *buf = (void *)(uintptr_t)l->addr;
        void *req = px->op == FERRY_OP_WRITE
                        ? ucp_put_nbx(x->remote->ep, buf, l->len, r->addr, rkey, &p)
                        : ucp_get_nbx(x->remote->ep, buf, l->len, r->addr, rkey, &p);
        if (UCS_PTR_IS_ERR(req))
            return UCS_PTR_STATUS(req);
        if (req)
            ucp_request_free(req); /* released by UCX once complete */
    }
    return UCS_OK;
}

static ferry_status fy_ucx_xfer_post(void *priv, void *handle, const void *notif, size_t len)
{
    fy_ucx_xfer *x = handle;
    (void)priv;
    ferry_status rc = fy_ucx_ep(x->remote);
    if (rc != FERRY_OK)
        return rc;
    x->notif = notif;
    x->notif_len = len;
    x->detail[0] = '\0';
    ucs_status_t st = fy_ucx_issue(x);
    if (st != UCS_OK) {
        fy_ucx_fail(x, st, x->px->op == FERRY_OP_WRITE ? "put" : "get");
        return x->error;
    }
    ucp_request_param_t p = {.op_attr_mask =
                                 UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
                             .cb.send = fy_ucx_flush_done,
                             .user_data = x};
    x->state = FY_UX_FLUSHING;
    void *req = ucp_ep_flush_nbx(x->remote->ep, &p);
    if (UCS_PTR_IS_ERR(req)) {
        fy_ucx_fail(x, UCS_PTR_STATUS(req), "flush");
        return x->error;
    }
    if (req)
        x->req = req;
    else
        fy_ucx_after_flush(x);
    return x->state == FY_UX_DONE     ? FERRY_OK
           : x->state == FY_UX_FAILED ? x->error
                                      : FERRY_IN_PROGRESS;
}

static ferry_status fy_ucx_xfer_check(void *priv, void *handle)
{
    fy_ucx_xfer *x = handle;
    (void)priv;
    if (x->state == FY_UX_DONE)
        return FERRY_OK;
    if (x->state == FY_UX_FAILED)
        return x->error;
    /* In flight when the peer died: its flush may still complete (shared
     * memory does not notice), but the outcome is unknown. */
    if (x->remote->failed != UCS_OK)
        return FERRY_ERR_REMOTE_DISCONNECT;
    return FERRY_IN_PROGRESS;
}

/* Waits for an in-flight request: gets write into our memory until their
 * flush completes, and release must not return before that. A dead peer
 * fails the flush through the error handler; the bound covers the rest. */
static ferry_status fy_ucx_xfer_release(void *priv, void *handle)
{
    fy_ucx *u = priv;
    fy_ucx_xfer *x = handle;
    /* A dead peer never completes it: stop waiting as soon as one is seen. */
    uint64_t deadline = fy_ucx_now_ns() + FY_UCX_CLOSE_NS;
    while (x->req && x->remote->failed == UCS_OK && fy_ucx_now_ns() < deadline)
        ucp_worker_progress(u->worker);
    ferry_status rc = FERRY_OK;
    if (x->req) {
        /* The peer is not completing it: give the endpoints up. A forced
         * close completes every request on them (with an error), so the
         * callbacks run now and nothing writes our memory afterwards. */
        UCX_LOG(u, FERRY_LOG_WARN,
                "release: request to %s still running (%s): closing its endpoints", x->remote->name,
                x->remote->failed ? "peer failed" : "timed out");
        if (x->remote->failed == UCS_OK) {
            x->remote->failed = UCS_ERR_CANCELED;
            fy_ucx_ep_close(x->remote);
        }
        rc = FERRY_ERR_CANCELED;
    }
    if (x->req) {
        /* UCX does not always complete a flush of an endpoint in error mode
         * "none" when it is forced closed. Its peer is gone, so nothing can
         * still arrive for it; the request object stays with UCX until its
         * callback (or fini) frees it. */
        x->orphan = true;
        x->next_orphan = u->orphans;
        u->orphans = x;
        return rc;
    }
    free(x);
    return rc;
}

static const char *fy_ucx_xfer_error(void *priv, void *handle)
{
    (void)priv;
    return ((fy_ucx_xfer *)handle)->detail;
}

static ferry_status fy_ucx_supports(void *priv, ferry_mem_type local, ferry_mem_type remote)
{
    uint32_t mask = fy_ucx_mem_types(priv);
    return (mask & FERRY_MEM_MASK(local)) && (mask & FERRY_MEM_MASK(remote))
               ? FERRY_OK
               : FERRY_ERR_NOT_SUPPORTED;
}

static const ferry_plugin_ops fy_ucx_ops = {
    .size = sizeof(ferry_plugin_ops),
    .init = fy_ucx_init,
    .fini = fy_ucx_fini,
    .reg = fy_ucx_reg,
    .dereg = fy_ucx_dereg,
    .conn_info = fy_ucx_conn_info,
    .remote_load = fy_ucx_remote_load,
    .remote_unload = fy_ucx_remote_unload,
    .rregion_load = fy_ucx_rregion_load,
    .rregion_unload = fy_ucx_rregion_unload,
    .xfer_prep = fy_ucx_xfer_prep,
    .xfer_post = fy_ucx_xfer_post,
    .xfer_check = fy_ucx_xfer_check,
    .xfer_release = fy_ucx_xfer_release,
    .supports = fy_ucx_supports,
    .connect = fy_ucx_connect,
    .disconnect = fy_ucx_disconnect,
    .notif_send = fy_ucx_notif_send,
    .progress = fy_ucx_progress,
    .xfer_error = fy_ucx_xfer_error,
    .mem_types = fy_ucx_mem_types,
    .mem_alloc = fy_ucx_mem_alloc,
    .mem_free = fy_ucx_mem_free,
};

static const ferry_plugin_desc fy_ucx_desc = {
    .abi_version = FERRY_PLUGIN_ABI_VERSION,
    .flags = 0,
    .name = "UCX",
    .version = FY_UCX_VERSION,
    .caps = FERRY_CAP_LOCAL | FERRY_CAP_REMOTE | FERRY_CAP_NOTIF | FERRY_CAP_PROGRESS,
    .mem_mask = FERRY_MEM_MASK(FERRY_MEM_DRAM) | FERRY_MEM_MASK(FERRY_MEM_VRAM),
    .params = fy_ucx_params,
    .num_params = sizeof(fy_ucx_params) / sizeof(fy_ucx_params[0]),
    .priv_size = sizeof(fy_ucx),
    .ops = &fy_ucx_ops,
};

FERRY_PLUGIN_DEFINE(UCX, fy_ucx_desc)
