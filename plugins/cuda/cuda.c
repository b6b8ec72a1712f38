/* SPDX-License-Identifier: Apache-2.0 */
/* CUDA: moves GPU memory within a process and between processes of one
 * host, without UCX or the CUDA runtime: the driver (libcuda.so.1) is
 * opened at run time, so the plugin loads on hosts without GPUs (and then
 * reports NOT_SUPPORTED when a backend is created).
 *
 * Design:
 *  - transfers: VRAM <-> VRAM (one GPU, or two through peer access) and
 *    DRAM <-> VRAM; DRAM registered with this backend is pinned;
 *  - peers: agents of this host. Another process's VRAM is opened through
 *    CUDA IPC (cuda_remote.c), GPUs are named by UUID, so processes with
 *    different CUDA_VISIBLE_DEVICES agree; another agent of this process is
 *    reached at its own addresses;
 *  - batching: a request is planned once at prep (cuda_xfer.c) and runs as
 *    one launch of a gather/scatter kernel over all its small copies
 *    (cuda_plan.c, fy_copy.cu), copy engines for big segments and for DRAM;
 *    mode=copy_engine leaves every SM to the application;
 *  - completion: an event per request; notifications go out through a unix
 *    datagram socket once the event completed (plugins/common/fyp_chan.c), and a dead peer
 *    shows as a failed send or a vanished pid;
 *  - threads: not FERRY_PLUGIN_F_THREAD_SAFE: the core serialises the ops,
 *    and the plugin starts no thread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cuda_internal.h"

#define FY_CU_VERSION "0.1.0"

/* ---- params ---- */

static const ferry_param_spec fy_cu_params[] = {
    {"mode", "kernel",
     "kernel: small copies between GPUs run as one gather/scatter kernel launch per request "
     "(copy engines for big segments and for DRAM); copy_engine: copy engines only, every SM "
     "left to the application"},
    {"stream", "",
     "a CUstream / cudaStream_t handle in hex (e.g. torch.cuda.current_stream().cuda_stream): "
     "each transfer starts after the work queued on it when posted; empty: none"},
    {"ce_threshold", "8M",
     "kernel mode: merged segments of at least this many bytes use copy engines (0: none)"},
    {"chunk", "0", "kernel items at most this many bytes (multiple of 16, 256..16M; 0: adaptive)"},
    {"streams", "4", "CUDA streams per GPU that requests are spread over (1..16)"},
    {"batch", "auto",
     "auto: copy-engine requests of many segments use cuMemcpyBatchAsync when the driver has it; "
     "off: one cuMemcpyAsync per segment"},
};
#define FY_CU_NUM_PARAMS (sizeof(fy_cu_params) / sizeof(fy_cu_params[0]))

static const char *fy_cu_param(const ferry_param *params, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (params[i].key && !strcmp(params[i].key, key))
            return params[i].value ? params[i].value : "";
    for (size_t i = 0; i < FY_CU_NUM_PARAMS; i++)
        if (!strcmp(fy_cu_params[i].key, key))
            return fy_cu_params[i].default_value;
    return "";
}

/* Decimal with an optional K/M/G suffix (binary). */
static bool fy_cu_parse_size(const char *s, uint64_t *out)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned shift = 0;
    if (*end == 'k' || *end == 'K')
        shift = 10;
    else if (*end == 'm' || *end == 'M')
        shift = 20;
    else if (*end == 'g' || *end == 'G')
        shift = 30;
    if (errno || (shift && end[1]) || (!shift && *end) || v > (UINT64_MAX >> shift))
        return false;
    *out = (uint64_t)v << shift;
    return true;
}

/* A stream handle: hex, with or without 0x; empty or 0 for none. */
static bool fy_cu_parse_handle(const char *s, uint64_t *out)
{
    char *end;
    *out = 0;
    if (!s[0])
        return true;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 16);
    if (errno || *end || s[0] == '-' || s[0] == '+' || s[0] == ' ')
        return false;
    *out = v;
    return true;
}

static ferry_status fy_cu_bad(fy_cu *be, const char *key, const char *value, const char *want)
{
    fy_cu_log(be, FERRY_LOG_ERROR, "param %s: bad value '%s' (want %s)", key, value, want);
    return FERRY_ERR_INVALID_PARAM;
}

static ferry_status fy_cu_parse_mode(fy_cu *be, const ferry_param *p, size_t n)
{
    const char *mode = fy_cu_param(p, n, "mode"), *batch = fy_cu_param(p, n, "batch");
    if (!strcmp(mode, "kernel"))
        be->mode = FY_CU_MODE_KERNEL;
    else if (!strcmp(mode, "copy_engine"))
        be->mode = FY_CU_MODE_CE;
    else
        return fy_cu_bad(be, "mode", mode, "kernel or copy_engine");
    if (strcmp(batch, "auto") && strcmp(batch, "off"))
        return fy_cu_bad(be, "batch", batch, "auto or off");
    be->batch = !strcmp(batch, "auto");
    return FERRY_OK;
}

static ferry_status fy_cu_parse_params(fy_cu *be, const ferry_param *p, size_t n)
{
    uint64_t streams, stream;
    const char *v;
    ferry_status rc = fy_cu_parse_mode(be, p, n);
    if (rc != FERRY_OK)
        return rc;
    if (!fy_cu_parse_size(v = fy_cu_param(p, n, "ce_threshold"), &be->ce_threshold))
        return fy_cu_bad(be, "ce_threshold", v, "bytes, e.g. 8M");
    if (!fy_cu_parse_size(v = fy_cu_param(p, n, "chunk"), &be->chunk) ||
        (be->chunk && (be->chunk % 16 || be->chunk < 256 || be->chunk > (16u << 20))))
        return fy_cu_bad(be, "chunk", v, "0 or a multiple of 16 in 256..16M");
    if (!fy_cu_parse_size(v = fy_cu_param(p, n, "streams"), &streams) || !streams ||
        streams > FY_CU_MAX_STREAMS)
        return fy_cu_bad(be, "streams", v, "1..16");
    be->nstreams = (unsigned)streams;
    if (!fy_cu_parse_handle(v = fy_cu_param(p, n, "stream"), &stream))
        return fy_cu_bad(be, "stream", v, "a stream handle in hex");
    be->user_stream = (fy_cu_stream)(uintptr_t)stream;
    return FERRY_OK;
}

/* ---- init / fini ---- */

/* The join event lives in the context of the caller's stream. */
static ferry_status fy_cu_user_stream(fy_cu *be)
{
    const fy_cuda *cu = be->cu;
    fy_cu_context ctx, ignored;
    if (!be->user_stream)
        return FERRY_OK;
    fy_cu_result r = cu->StreamGetCtx(be->user_stream, &ctx);
    if (r == FY_CUDA_SUCCESS && (r = cu->CtxPushCurrent(ctx)) == FY_CUDA_SUCCESS) {
        r = cu->EventCreate(&be->join, FY_CU_EVENT_DISABLE_TIMING);
        cu->CtxPopCurrent(&ignored);
    }
    if (r != FY_CUDA_SUCCESS) {
        be->join = NULL;
        fy_cu_log(be, FERRY_LOG_ERROR, "param stream: %p is not a usable CUDA stream: %s",
                  (void *)be->user_stream, fy_cuda_errname(cu, r));
        return FERRY_ERR_INVALID_PARAM;
    }
    return FERRY_OK;
}

static void fy_cu_fini(void *priv)
{
    fy_cu *be = priv;
    if (be->join)
        be->cu->EventDestroy(be->join);
    fy_cu_pin_fini(be);
    for (int i = 0; i < be->ndev; i++)
        fy_cu_dev_fini(be, &be->devs[i]);
    fyp_chan_close(&be->chan);
    if (be->pinned_bytes)
        fy_cu_log(be, FERRY_LOG_WARN, "%llu bytes still pinned at fini",
                  (unsigned long long)be->pinned_bytes);
}

static ferry_status fy_cu_init(void *priv, const ferry_plugin_host *host, const ferry_param *params,
                               size_t num_params)
{
    fy_cu *be = priv;
    fy_gpu_why why;
    if (!host || host->size < sizeof(*host) || !host->log || !host->notif_deliver)
        return FERRY_ERR_INVALID_PARAM;
    be->host = host;
    be->chan.fd = -1;
    ferry_status rc = fy_cu_parse_params(be, params, num_params);
    if (rc != FERRY_OK)
        return rc;
    if (fy_cuda_get(&be->cu, &why) != FERRY_OK) {
        fy_cu_log(be, FERRY_LOG_INFO, "no usable CUDA driver: %s", why.msg);
        return FERRY_ERR_NOT_SUPPORTED;
    }
    be->ndev = be->cu->device_count < FY_CU_MAX_DEVS ? be->cu->device_count : FY_CU_MAX_DEVS;
    rc = fyp_chan_open(&be->chan, "ferry-cuda", host->agent_uid);
    if (rc != FERRY_OK) {
        fy_cu_log(be, FERRY_LOG_ERROR, "notification socket: %s", strerror(errno));
        return rc;
    }
    fyp_ident_self(&be->self, host->agent_uid, be->chan.name);
    rc = fy_cu_user_stream(be);
    if (rc != FERRY_OK) {
        fy_cu_fini(be);
        return rc;
    }
    fy_cu_log(be, FERRY_LOG_DEBUG, "driver %d, %d GPUs, mode %s, socket @%s",
              be->cu->driver_version, be->ndev,
              be->mode == FY_CU_MODE_KERNEL ? "kernel" : "copy_engine", be->chan.name);
    return FERRY_OK;
}

/* ---- small ops ---- */

static uint32_t fy_cu_mem_types(void *priv)
{
    (void)priv;
    return FERRY_MEM_MASK(FERRY_MEM_DRAM) | FERRY_MEM_MASK(FERRY_MEM_VRAM);
}

/* DRAM <-> DRAM is LOCAL's or UCX's job. */
static ferry_status fy_cu_supports(void *priv, ferry_mem_type local, ferry_mem_type remote)
{
    (void)priv;
    bool ok = (local == FERRY_MEM_VRAM || local == FERRY_MEM_DRAM) &&
              (remote == FERRY_MEM_VRAM || remote == FERRY_MEM_DRAM) &&
              (local == FERRY_MEM_VRAM || remote == FERRY_MEM_VRAM);
    return ok ? FERRY_OK : FERRY_ERR_NOT_SUPPORTED;
}

static ferry_status fy_cu_notif_send(void *priv, void *remote, const void *msg, size_t len)
{
    fy_cu *be = priv;
    fy_cu_remote *r = remote;
    if (!r || (len && !msg) || len > FYP_NOTIF_MAX)
        return FERRY_ERR_INVALID_PARAM;
    if (!fy_cu_remote_alive(r))
        return FERRY_ERR_REMOTE_DISCONNECT;
    return fy_cu_notify(be, r, msg, len, true);
}

/* While requests run, the caller polls them through here (ferry_xfer_status
 * calls progress first when there is no progress thread): one recvmsg per
 * poll would double the cost of a poll, so the socket is then read at most
 * every FY_CU_DRAIN_NS; with nothing in flight, at every call. */
#define FY_CU_DRAIN_NS 10000u

static uint64_t fy_cu_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static ferry_status fy_cu_progress(void *priv)
{
    fy_cu *be = priv;
    size_t work = 0;
    uint64_t now = be->inflight ? fy_cu_mono_ns() : 0;
    if (!be->inflight || now - be->last_drain_ns >= FY_CU_DRAIN_NS) {
        work = fyp_chan_drain(&be->chan, be->host);
        be->last_drain_ns = now;
    }
    work += fy_cu_progress_reqs(be);
    return work ? FERRY_IN_PROGRESS : FERRY_OK;
}

static ferry_status fy_cu_wait_fd(void *priv, int *fd)
{
    *fd = ((fy_cu *)priv)->chan.fd;
    return FERRY_OK;
}

/* GPU completions raise no fd: while requests run, keep polling. Peers'
 * rings ring the socket once armed. */
static ferry_status fy_cu_arm(void *priv)
{
    fy_cu *be = priv;
    return be->inflight || !fyp_chan_arm(&be->chan) ? FERRY_IN_PROGRESS : FERRY_OK;
}

/* ---- descriptor ---- */

/* Left NULL: connect/disconnect (nothing to connect: IPC handles open on
 * first use), estimate. */
static const ferry_plugin_ops fy_cu_ops = {
    .size = sizeof(ferry_plugin_ops),
    .init = fy_cu_init,
    .fini = fy_cu_fini,
    .reg = fy_cu_reg,
    .dereg = fy_cu_dereg,
    .conn_info = fy_cu_conn_info,
    .remote_load = fy_cu_remote_load,
    .remote_unload = fy_cu_remote_unload,
    .rregion_load = fy_cu_rregion_load,
    .rregion_unload = fy_cu_rregion_unload,
    .xfer_prep = fy_cu_xfer_prep,
    .xfer_prep_strided = fy_cu_xfer_prep_strided,
    .xfer_idx_alloc = fy_cu_xfer_idx_alloc,
    .xfer_idx_free = fy_cu_xfer_idx_free,
    .xfer_post = fy_cu_xfer_post,
    .xfer_check = fy_cu_xfer_check,
    .xfer_release = fy_cu_xfer_release,
    .supports = fy_cu_supports,
    .notif_send = fy_cu_notif_send,
    .progress = fy_cu_progress,
    .xfer_error = fy_cu_xfer_error,
    .mem_types = fy_cu_mem_types,
    .wait_fd = fy_cu_wait_fd,
    .arm = fy_cu_arm,
};

static const ferry_plugin_desc fy_cu_desc = {
    .abi_version = FERRY_PLUGIN_ABI_VERSION,
    .flags = 0,
    .name = FY_CUDA_PLUGIN_NAME,
    .version = FY_CU_VERSION,
    .caps = FERRY_CAP_LOCAL | FERRY_CAP_REMOTE | FERRY_CAP_NOTIF | FERRY_CAP_PROGRESS,
    .mem_mask = FERRY_MEM_MASK(FERRY_MEM_DRAM) | FERRY_MEM_MASK(FERRY_MEM_VRAM),
    .params = fy_cu_params,
    .num_params = FY_CU_NUM_PARAMS,
    .priv_size = sizeof(fy_cu),
    .ops = &fy_cu_ops,
};

FERRY_PLUGIN_DEFINE(CUDA, fy_cu_desc)
