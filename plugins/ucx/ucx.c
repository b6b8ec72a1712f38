/* SPDX-License-Identifier: Apache-2.0 */
/* UCX backend: READ/WRITE between agents (and loopback) over any transport
 * UCX picks (shm, cma, tcp, verbs): as active messages that the target
 * checks against its registered memory (the default), or with rma=on as
 * one-sided puts and gets; notifications as active messages, dead peers
 * detected through UCX's peer error handling.
 *
 * This file: params, the context and its workers, progress, the ops table.
 * ucx_mem.c: allocation and registration; ucx_remote.c: connection info,
 * peers, endpoints, keys; ucx_xfer.c: transfers, puts and gets;
 * ucx_amw.c / ucx_amt.c: transfers as active messages, initiator and
 * target; ucx_order.c: when notifications go (after their data), on every
 * path; ucx_pack.c: the datatype of messages with data; ucx_pool.c: the
 * issuing threads. README.md: design, params, limits.
 *
 * Threads: the plugin is not FERRY_PLUGIN_F_THREAD_SAFE, so the core
 * serialises its ops (progress included) and the workers run in
 * UCS_THREAD_MODE_SERIALIZED; the issuing threads touch their own worker
 * only inside a post (ucx_pool.c).
 *
 * Wakeup: an idle agent's progress thread sleeps on the workers' event
 * fds (UCP_FEATURE_WAKEUP), except where UCX's shared-memory FIFOs are
 * named (they have no events): then it polls the workers every millisecond
 * (measured: 1.3% of a core). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ucx_internal.h"

#define FY_UCX_STR2(x) #x
#define FY_UCX_STR(x)  FY_UCX_STR2(x)
#define FY_UCX_VERSION "built with UCX " FY_UCX_STR(UCP_API_MAJOR) "." FY_UCX_STR(UCP_API_MINOR)

/* ---- params ---- */

static const ferry_param_spec fy_ucx_params[] = {
    {"devices", "", "UCX_NET_DEVICES for this backend (empty: UCX's choice / environment)"},
    {"tls", "", "UCX_TLS for this backend (empty: UCX's choice / environment)"},
    {"num_workers", "1",
     "UCX workers (1..64), each with its own endpoints to every peer; a large batch is split "
     "over them"},
    {"num_threads", "0",
     "threads issuing the parts of a split batch in parallel (0..63; each drives one worker, "
     "so num_workers is raised to num_threads + 1)"},
    {"split_min", "256",
     "a batch is split over the workers only in parts of at least this many descriptors"},
    {"keepalive_ms", "1000",
     "interval of UCX keepalive probes: bounds how long a dead peer goes unnoticed"},
    {"error_handling", "peer",
     "peer: UCX peer error mode, only transports that detect a dead peer (on one host that "
     "leaves TCP: RMA is emulated); dual: a fast data endpoint that may use shared memory + a "
     "peer-mode control endpoint that detects the death (but a peer killed mid-transfer can "
     "wedge this worker's shared-memory traffic with later peers); none: no detection"},
    {"rma", "off",
     "off: every transfer goes as active messages that this agent's peers check against their "
     "registered DRAM (UCX then offers no RMA, and no peer can reach memory that was not "
     "registered); on: one-sided puts and gets, and VRAM where UCX supports it, but UCX's "
     "emulation of RMA (TCP, shared memory) then lets any peer that reaches this worker read "
     "and write any address of the process: trusted peers only"},
    {"wakeup", "auto",
     "UCX's wakeup feature, so that an idle progress thread sleeps until a worker has work "
     "instead of looking every millisecond (what a peer's transfer to this agent waits for): "
     "auto: on, except with error_handling=dual or none where tls or UCX_TLS names transports "
     "(UCX would then leave out its shared-memory FIFOs, which have no events); on; off"},
    {"am_writes", "auto",
     "with rma=on: small WRITEs between DRAM as active messages (data and notification in, one "
     "answer back) instead of puts and a flush: auto: to peers reached only over TCP; on: to "
     "every peer; off: never"},
    {"am_write_max", "262144",
     "bytes of WRITE data in one active message (4096..16777216); with rma=on also the "
     "largest WRITE sent that way (0: none), larger ones go as puts"},
    {"am_read_max", "1048576",
     "bytes of READ data asked for in one active message (4096..16777216)"},
};

static const char *fy_param(const ferry_param *params, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(params[i].key, key))
            return params[i].value;
    return "";
}

/* A decimal param; "" takes the default. */
static bool fy_param_uint(const ferry_param *params, size_t n, const char *key, unsigned long dflt,
                          unsigned long max, unsigned long *out)
{
    const char *s = fy_param(params, n, key);
    if (!*s) {
        *out = dflt;
        return true;
    }
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > max || s[0] == '-')
        return false;
    *out = v;
    return true;
}

/* ---- status mapping ---- */

ferry_status fy_ucx_status(ucs_status_t st)
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

/* A param naming one of names[] (indexed by the enum it sets; "" is
 * dflt): its index, or -1 with a log line. */
static int fy_param_pick(fy_ucx *u, const ferry_param *params, size_t n, const char *key,
                         const char *const *names, int count, int dflt)
{
    const char *v = fy_param(params, n, key);
    if (!v[0])
        return dflt;
    for (int i = 0; i < count; i++)
        if (!strcmp(v, names[i]))
            return i;
    UCX_LOG(u, FERRY_LOG_ERROR, "bad param: %s must be %s, %s%s%s", key, names[0], names[1],
            count > 2 ? " or " : "", count > 2 ? names[2] : "");
    return -1;
}

/* Whether UCX may pick its shared-memory FIFOs in dual and none: only when
 * the tls param or UCX_TLS names transports (ucx_config leaves them out
 * otherwise; in peer mode UCX itself does). They have no event support,
 * so UCX's wakeup feature would leave them out: wakeup=auto is on
 * everywhere else. */
static bool fy_ucx_fifos_named(const ferry_param *params, size_t n)
{
    return fy_param(params, n, "tls")[0] || getenv("UCX_TLS");
}

/* error_handling, am_writes and rma: a few choices each. */
static ferry_status fy_ucx_modes_read(fy_ucx *u, const ferry_param *params, size_t n)
{
    static const char *const errmodes[] = {
        [FY_UCX_DUAL] = "dual", [FY_UCX_PEER] = "peer", [FY_UCX_NONE] = "none"};
    static const char *const amw_modes[] = {
        [FY_UCX_AMW_AUTO] = "auto", [FY_UCX_AMW_ON] = "on", [FY_UCX_AMW_OFF] = "off"};
    static const char *const rma_modes[] = {"off", "on"};
    int err = fy_param_pick(u, params, n, "error_handling", errmodes, 3, FY_UCX_PEER);
    int amw =
        err < 0 ? -1 : fy_param_pick(u, params, n, "am_writes", amw_modes, 3, FY_UCX_AMW_AUTO);
    int rma = amw < 0 ? -1 : fy_param_pick(u, params, n, "rma", rma_modes, 2, 0);
    int wake = rma < 0 ? -1 : fy_param_pick(u, params, n, "wakeup", amw_modes, 3, FY_UCX_AMW_AUTO);
    if (wake < 0)
        return FERRY_ERR_INVALID_PARAM;
    u->errmode = (fy_ucx_errmode)err;
    u->amw_mode = (fy_ucx_amw_mode)amw;
    u->rma = rma == 1;
    u->wakeup = wake == FY_UCX_AMW_ON ||
                (wake == FY_UCX_AMW_AUTO && (err == FY_UCX_PEER || !fy_ucx_fifos_named(params, n)));
    return FERRY_OK;
}

#define FY_UCX_AM_MIN 4096ul       /* smallest am_write_max / am_read_max (rma=off) */
#define FY_UCX_AM_MAX (16ul << 20) /* largest: a message UCX assembles whole */

/* The plugin's own params: workers, threads, split size, message sizes. */
static ferry_status fy_ucx_params_read(fy_ucx *u, const ferry_param *params, size_t n,
                                       unsigned long *keepalive)
{
    unsigned long workers, threads, split, amw_max, amr_max;
    ferry_status rc = fy_ucx_modes_read(u, params, n);
    if (rc != FERRY_OK)
        return rc;
    unsigned long am_min = u->rma ? 0 : FY_UCX_AM_MIN;
    if (!fy_param_uint(params, n, "keepalive_ms", 1000, 3600000, keepalive) ||
        !fy_param_uint(params, n, "num_workers", 1, FY_UCX_MAX_WORKERS, &workers) ||
        !fy_param_uint(params, n, "num_threads", 0, FY_UCX_MAX_WORKERS - 1, &threads) ||
        !fy_param_uint(params, n, "split_min", 256, 1ul << 30, &split) ||
        !fy_param_uint(params, n, "am_write_max", 1ul << 18, FY_UCX_AM_MAX, &amw_max) ||
        !fy_param_uint(params, n, "am_read_max", 1ul << 20, FY_UCX_AM_MAX, &amr_max) || !workers ||
        !split || amw_max < am_min || amr_max < FY_UCX_AM_MIN) {
        UCX_LOG(u, FERRY_LOG_ERROR,
                "bad param: keepalive_ms (ms), num_workers (1..64), num_threads (0..63), "
                "split_min (1..2^30), am_write_max (4096..2^24; 0 with rma=on) and am_read_max "
                "(4096..2^24) are decimal numbers");
        return FERRY_ERR_INVALID_PARAM;
    }
    u->num_threads = (unsigned)threads;
    u->num_workers = (unsigned)(workers > threads + 1 ? workers : threads + 1);
    u->split_min = split;
    u->amw_max = amw_max;
    u->amr_max = amr_max;
    return FERRY_OK;
}

/* UCX's TCP segments: WRITEs over TCP go as active messages that UCX
 * copies into segments of this size (ucx_amw.c); with UCX's 8 KiB a MiB
 * takes 128 sends (measured on the VM: 1.0-1.4 GB/s for 16 MiB WRITEs,
 * 2.2-2.7 with 256 KiB). The receive side must hold a whole segment. */
#define FY_UCX_TCP_SEG "256k"

/* How UCX allocates ferry_mem_alloc memory: UCX's default order without
 * its posix method. System V segments are marked for removal as soon as
 * they are attached (they vanish with the last process that maps them,
 * crash or not); a posix segment is a file in /dev/shm, unlinked only
 * once UCX has written and mapped it whole, so a process killed meanwhile
 * leaves it behind, holding memory until a reboot. Where System V cannot
 * serve, anonymous memory does (not shared: same-host peers then reach it
 * through cma or TCP). */
#define FY_UCX_ALLOC_PRIO "md:sysv,huge,thp,mmap,heap"

/* Sets a UCX variable unless the environment does (env: its full name).
 * key: as ucp_config_modify takes it; a transport's variable goes without
 * the transport prefix there (UCX 1.13 warns "invalid configuration" and
 * ignores TCP_TX_SEG_SIZE, applies TX_SEG_SIZE to the TCP transport). */
static bool fy_ucx_config_default(ucp_config_t *config, const char *env, const char *key,
                                  const char *value)
{
    return getenv(env) || ucp_config_modify(config, key, value) == UCS_OK;
}

/* A TCP transport variable: newer UCX (1.22, PyPI's libucx wheels) takes
 * only the prefixed name (TCP_TX_SEG_SIZE) and refuses the bare one that
 * UCX 1.13 needs. */
static bool fy_ucx_config_tcp_default(ucp_config_t *config, const char *env, const char *key,
                                      const char *value)
{
    return getenv(env) || ucp_config_modify(config, key, value) == UCS_OK ||
           ucp_config_modify(config, env + strlen("UCX_"), value) == UCS_OK;
}

/* Error handling dual and none: UCX's newer protocols (UCX_PROTO_ENABLE).
 * A rendezvous receive waits for its sender; with UCX 1.13's default
 * protocols nothing ends one whose sender died unless the endpoint is in
 * peer error mode, which the data endpoints of these modes are not: the
 * request and its descriptors stayed with UCX for good (measured: 50-odd
 * per peer killed during 16 MiB READs, "not returned to mpool" when the
 * agent went). The newer protocols track requests per endpoint, and the
 * forced close of a failed peer's endpoints completes them with an error.
 * (Sending every message eagerly instead also frees them, but then a peer
 * killed while it writes answers into this worker's shared-memory FIFO
 * leaves a slot of it half written, and the worker's shared-memory
 * traffic stops behind it: measured, first READs after a restart timing
 * out in 5 of 12 trials.) */
static bool fy_ucx_proto_default(fy_ucx *u, ucp_config_t *config)
{
    return u->errmode == FY_UCX_PEER ||
           fy_ucx_config_default(config, "UCX_PROTO_ENABLE", "PROTO_ENABLE", "y");
}

/* Error handling dual and none: UCX's shared-memory FIFOs (posix, sysv,
 * xpmem) left out unless the tls param or UCX_TLS names the transports.
 * Every peer of a worker writes its messages into one FIFO of that worker,
 * in order; a peer killed while it writes can leave its slot reserved and
 * half written, and UCX then delivers nothing behind it, from any peer, for
 * the life of the backend (measured on UCX 1.13 and 1.22: a restarted
 * peer's first READ stalled in 1 to 4 of 4 trials). Without them, messages
 * go over TCP and rendezvous data (READ answers) by CMA, neither of which
 * shares state between peers; the SHM backend is the fast path between
 * processes of one host. */
/* UCX's alias of posix, sysv and xpmem (naming xpmem where it is missing
 * makes UCX warn at every context). */
#define FY_UCX_NO_FIFO_TLS "^mm"

static bool fy_ucx_fifo_default(fy_ucx *u, ucp_config_t *config, const char *tls)
{
    if (u->errmode == FY_UCX_PEER || tls[0] || getenv("UCX_TLS"))
        return true;
    return ucp_config_modify(config, "TLS", FY_UCX_NO_FIFO_TLS) == UCS_OK;
}

/* CMA in peer error mode, where UCX has the switch (1.22: CMA_MEMORY_INVALIDATE,
 * off by default; 1.13 knows no such variable, and has no CMA in that mode
 * at all). UCX admits a transport to an endpoint in peer mode only when
 * its registrations can be invalidated once the peer fails; this lets the
 * CMA transport promise that, so peer mode moves user memory between
 * processes of one host by the kernel's single copy instead of over TCP
 * loopback (measured: 1 MiB puts 0.36 GB/s emulated over TCP, ~10 GB/s by
 * CMA). A UCX that refuses the name is one without the switch. */
static void fy_ucx_cma_default(fy_ucx *u, ucp_config_t *config)
{
    if (fy_ucx_runs_at_least(u, 1, 22) && !getenv("UCX_CMA_MEMORY_INVALIDATE") &&
        ucp_config_modify(config, "CMA_MEMORY_INVALIDATE", "y") == UCS_OK)
        UCX_LOG(u, FERRY_LOG_DEBUG, "UCX_CMA_MEMORY_INVALIDATE=y: CMA in peer error mode");
}

/* UCX variables from params; the environment still wins for the rest. */
static ferry_status fy_ucx_config(fy_ucx *u, const ferry_param *params, size_t n,
                                  ucp_config_t **out)
{
    unsigned long keepalive;
    ferry_status rc = fy_ucx_params_read(u, params, n, &keepalive);
    if (rc != FERRY_OK)
        return rc;
    ucs_status_t st = ucp_config_read(NULL, NULL, out);
    if (st != UCS_OK)
        return FERRY_ERR_BACKEND;
    const char *dev = fy_param(params, n, "devices"), *tls = fy_param(params, n, "tls");
    char ka[32];
    snprintf(ka, sizeof(ka), "%lums", keepalive ? keepalive : 1000);
    if ((dev[0] && ucp_config_modify(*out, "NET_DEVICES", dev) != UCS_OK) ||
        (tls[0] && ucp_config_modify(*out, "TLS", tls) != UCS_OK) ||
        !fy_ucx_config_default(*out, "UCX_KEEPALIVE_INTERVAL", "KEEPALIVE_INTERVAL", ka) ||
        !fy_ucx_config_tcp_default(*out, "UCX_TCP_TX_SEG_SIZE", "TX_SEG_SIZE", FY_UCX_TCP_SEG) ||
        !fy_ucx_config_tcp_default(*out, "UCX_TCP_RX_SEG_SIZE", "RX_SEG_SIZE", FY_UCX_TCP_SEG) ||
        !fy_ucx_config_default(*out, "UCX_ALLOC_PRIO", "ALLOC_PRIO", FY_UCX_ALLOC_PRIO) ||
        !fy_ucx_proto_default(u, *out) || !fy_ucx_fifo_default(u, *out, tls)) {
        UCX_LOG(u, FERRY_LOG_ERROR,
                "UCX refused the devices/tls/keepalive/segment/allocation/protocol settings");
        ucp_config_release(*out);
        return FERRY_ERR_INVALID_PARAM;
    }
    fy_ucx_cma_default(u, *out);
    return FERRY_OK;
}

static ferry_status fy_ucx_context(fy_ucx *u, ucp_config_t *config)
{
    ucp_params_t p = {
        .field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED,
        /* UCP_FEATURE_WAKEUP only with the wakeup param: it keeps UCX from
         * using message transports without event support, the shared-memory
         * FIFOs (whose one-sided path into memory UCX mapped is then lost:
         * 1 MiB puts measured falling from ~10 GB/s to emulation); TCP and
         * CMA stay (seen in the "transports to" line on UCX 1.13 and 1.22).
         * UCP_FEATURE_RMA only when asked for: with it UCX answers any
         * peer's emulated put or get at whatever address the peer names
         * (its software RMA handlers are installed only for that feature). */
        .features =
            UCP_FEATURE_AM | (u->rma ? UCP_FEATURE_RMA : 0) | (u->wakeup ? UCP_FEATURE_WAKEUP : 0),
        .mt_workers_shared = 0,
    };
    ucs_status_t st = ucp_init(&p, config, &u->ctx);
    if (st != UCS_OK) {
        UCX_LOG(u, FERRY_LOG_ERROR, "ucp_init: %s", ucs_status_string(st));
        return FERRY_ERR_BACKEND;
    }
    ucp_context_attr_t attr = {.field_mask = UCP_ATTR_FIELD_MEMORY_TYPES};
    if (u->rma && ucp_context_query(u->ctx, &attr) == UCS_OK)
        u->vram = attr.memory_types & UCS_BIT(UCS_MEMORY_TYPE_CUDA);
    if (u->rma)
        UCX_LOG(u, FERRY_LOG_WARN,
                "rma=on: any peer that reaches this agent's UCX workers can read and write any "
                "address of this process where UCX emulates RMA (TCP, shared memory): use only "
                "among trusted peers");
    return FERRY_OK;
}

static ucs_status_t fy_ucx_worker_init(fy_ucx *u, fy_ucx_worker *w)
{
    w->u = u;
    w->index = (unsigned)(w - u->workers);
    ucp_worker_params_t wp = {.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
                              .thread_mode = UCS_THREAD_MODE_SERIALIZED};
    ucs_status_t st = ucp_worker_create(u->ctx, &wp, &w->h);
    if (st != UCS_OK) {
        w->h = NULL;
        return st;
    }
    st = ucp_worker_get_address(w->h, &w->addr, &w->addr_len);
    if (st != UCS_OK) {
        w->addr = NULL;
        return st;
    }
    static const struct {
        unsigned id;
        ucp_am_recv_callback_t cb;
    } handlers[] = {{FY_UCX_AM_NOTIF, fy_ucx_notif_recv},
                    {FY_UCX_AM_WRITE, fy_ucx_amt_recv},
                    {FY_UCX_AM_READ, fy_ucx_amt_recv},
                    {FY_UCX_AM_ACK, fy_ucx_amw_ack_recv},
                    {FY_UCX_AM_RDATA, fy_ucx_amr_data_recv}};
    for (size_t i = 0; st == UCS_OK && i < sizeof(handlers) / sizeof(handlers[0]); i++) {
        ucp_am_handler_param_t ap = {
            .field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB |
                          UCP_AM_HANDLER_PARAM_FIELD_ARG,
            .id = handlers[i].id,
            .cb = handlers[i].cb,
            .arg = w,
        };
        st = ucp_worker_set_am_recv_handler(w->h, &ap);
    }
    return st;
}

static ferry_status fy_ucx_workers(fy_ucx *u)
{
    fy_ucx_pack_choose(u);
    ucs_status_t st = fy_ucx_pack_dt_init(u);
    for (unsigned k = 0; k < u->num_workers && st == UCS_OK; k++)
        st = fy_ucx_worker_init(u, &u->workers[k]);
    if (st != UCS_OK) {
        UCX_LOG(u, FERRY_LOG_ERROR, "worker setup: %s", ucs_status_string(st));
        return FERRY_ERR_BACKEND;
    }
    fy_ucx_local_open(u);
    ferry_status rc = fy_ucx_wake_open(u);
    if (rc != FERRY_OK)
        return rc;
    rc = u->num_threads ? fy_ucx_pool_create(u->num_threads, &u->pool) : FERRY_OK;
    if (rc != FERRY_OK)
        UCX_LOG(u, FERRY_LOG_ERROR, "starting %u issuing threads: status %d (no threads or memory)",
                u->num_threads, (int)rc);
    return rc;
}

static void fy_ucx_fini(void *priv)
{
    fy_ucx *u = priv;
    fy_ucx_pool_destroy(u->pool);
    fy_ucx_wake_close(u);
    fy_ucx_local_close(u);
    fy_ucx_parked_fini(u);
    fy_ucx_allocs_fini(u);
    for (unsigned k = 0; k < FY_UCX_MAX_WORKERS; k++) {
        fy_ucx_worker *w = &u->workers[k];
        if (w->addr)
            ucp_worker_release_address(w->h, w->addr);
        if (w->h)
            ucp_worker_destroy(w->h);
    }
    fy_ucx_amt_fini(u);
    fy_ucx_pack_dt_fini(u);
    if (u->ctx)
        ucp_cleanup(u->ctx);
    while (u->orphans) { /* the workers are gone: their callbacks never come */
        fy_ucx_xfer *x = u->orphans;
        u->orphans = x->next_orphan;
        fy_ucx_xfer_free(x);
    }
}

static ferry_status fy_ucx_init(void *priv, const ferry_plugin_host *host,
                                const ferry_param *params, size_t n)
{
    fy_ucx *u = priv;
    u->host = host;
    u->epfd = -1; /* fini may run before the workers exist */
    u->chan.fd = -1;
    fy_ucx_version_probe(u);
    ucp_config_t *config;
    ferry_status rc = fy_ucx_config(u, params, n, &config);
    if (rc != FERRY_OK)
        return rc;
    rc = fy_ucx_context(u, config);
    ucp_config_release(config);
    if (rc == FERRY_OK)
        rc = fy_ucx_workers(u);
    if (rc != FERRY_OK)
        fy_ucx_fini(u);
    return rc;
}

static uint32_t fy_ucx_mem_types(void *priv)
{
    fy_ucx *u = priv;
    return FERRY_MEM_MASK(FERRY_MEM_DRAM) | (u->vram ? FERRY_MEM_MASK(FERRY_MEM_VRAM) : 0);
}

static ferry_status fy_ucx_supports(void *priv, ferry_mem_type local, ferry_mem_type remote)
{
    uint32_t mask = fy_ucx_mem_types(priv);
    return (mask & FERRY_MEM_MASK(local)) && (mask & FERRY_MEM_MASK(remote))
               ? FERRY_OK
               : FERRY_ERR_NOT_SUPPORTED;
}

/* ---- progress ---- */

uint64_t fy_ucx_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Events handled on every worker. */
static unsigned fy_ucx_progress_count(fy_ucx *u)
{
    unsigned events = 0;
    for (unsigned k = 0; k < u->num_workers; k++)
        events += ucp_worker_progress(u->workers[k].h);
    return events + (unsigned)fy_ucx_local_drain(u);
}

void fy_ucx_progress_all(fy_ucx *u)
{
    (void)fy_ucx_progress_count(u);
}

/* IN_PROGRESS when UCX did work: the agent's progress thread then keeps
 * polling (peers may be moving data that needs our progress). */
static ferry_status fy_ucx_progress(void *priv)
{
    return fy_ucx_progress_count(priv) ? FERRY_IN_PROGRESS : FERRY_OK;
}

/* Waits (progressing worker) for a request, at most until deadline, then
 * hands it back to UCX: ucp_request_free on an unfinished request releases
 * it when it completes. Returns its status, or UCS_ERR_TIMED_OUT. */
ucs_status_t fy_ucx_wait(fy_ucx *u, unsigned worker, void *req, uint64_t deadline)
{
    if (!UCS_PTR_IS_PTR(req))
        return UCS_PTR_STATUS(req);
    ucs_status_t st;
    while ((st = ucp_request_check_status(req)) == UCS_INPROGRESS && fy_ucx_now_ns() < deadline)
        ucp_worker_progress(u->workers[worker].h);
    ucp_request_free(req);
    return st == UCS_INPROGRESS ? UCS_ERR_TIMED_OUT : st;
}

/* ---- the plugin ---- */

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
    .wait_fd = fy_ucx_wait_fd,
    .arm = fy_ucx_arm,
    .xfer_error = fy_ucx_xfer_error,
    .mem_types = fy_ucx_mem_types,
    .mem_alloc = fy_ucx_mem_alloc,
    .mem_free = fy_ucx_mem_free,
    .remote_refresh = fy_ucx_remote_refresh,
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
