/* SPDX-License-Identifier: Apache-2.0 */
/* SHM: host memory between agents of one host, at memory speed.
 *
 * Two ways to a peer's DRAM, chosen per region by its owner at
 * registration (shm_mem.c):
 *  - memory of ferry_mem_alloc on this backend is a sealed memfd; a peer
 *    asks the owner's fd server (shm_srv.c) for the memfd of a registered
 *    region, maps exactly that region's pages once, and from then on a
 *    transfer is memcpy: no system call on the data path;
 *  - ordinary memory (malloc, NumPy, PyTorch CPU tensors) is copied by
 *    cross-memory attach (process_vm_writev/readv), where the kernel
 *    allows it; where it does not, the peer is declined at remote_load
 *    with the reason, and the core selects another backend (UCX).
 * Notifications go after the data through the host-local channel shared
 * with the CUDA plugin (plugins/common/fyp_chan.h). A peer's death is seen
 * through its pidfd, in the epoll set that is our wait_fd.
 *
 * Threading: not FERRY_PLUGIN_F_THREAD_SAFE (the core serialises ops). One
 * thread of our own, the fd server, shares only the region list (be->lock). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "fyp_params.h"
#include "shm_internal.h"

#define FY_SHM_VERSION "0.1.0"

static const ferry_param_spec fy_shm_params[] = {
    {"map_timeout_ms", "2000",
     "ms (10..60000) a transfer's preparation waits for a peer to hand over the memfd of one of "
     "its regions (a frozen peer fails it with FERRY_ERR_TIMEOUT)"},
};
#define FY_SHM_NUM_PARAMS (sizeof(fy_shm_params) / sizeof(fy_shm_params[0]))
static const fyp_range fy_shm_ranges[] = {{10, 60000}};

/* ---- init / fini ---- */

static void fy_shm_fini(void *priv)
{
    fy_shm *be = priv;
    fy_shm_srv_stop(be);
    fyp_chan_close(&be->chan);
    if (be->epfd >= 0)
        close(be->epfd);
    fy_shm_mem_fini(be);
    pthread_mutex_destroy(&be->lock);
}

/* The notification socket and the fd server, both in the epoll set. */
static ferry_status fy_shm_open(fy_shm *be)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    be->epfd = epoll_create1(EPOLL_CLOEXEC);
    ferry_status rc = be->epfd < 0 ? FERRY_ERR_NO_RESOURCES
                                   : fyp_chan_open(&be->chan, "ferry-shm", be->host->agent_uid);
    if (rc != FERRY_OK) {
        fy_shm_log(be, FERRY_LOG_ERROR, "notification socket: %s", strerror(errno));
        return rc;
    }
    if (epoll_ctl(be->epfd, EPOLL_CTL_ADD, be->chan.fd, &ev) != 0) {
        fy_shm_log(be, FERRY_LOG_ERROR, "epoll: %s", strerror(errno));
        return FERRY_ERR_NO_RESOURCES;
    }
    fyp_ident_self(&be->self, be->host->agent_uid, be->chan.name);
    return fy_shm_srv_start(be);
}

static ferry_status fy_shm_init(void *priv, const ferry_plugin_host *host,
                                const ferry_param *params, size_t num_params)
{
    fy_shm *be = priv;
    uint64_t vals[FY_SHM_NUM_PARAMS];
    if (!host || host->size < sizeof(*host) || !host->log || !host->notif_deliver)
        return FERRY_ERR_INVALID_PARAM;
    be->host = host;
    ferry_status rc = fyp_params_parse(host, fy_shm_params, fy_shm_ranges, FY_SHM_NUM_PARAMS,
                                       params, num_params, vals);
    if (rc != FERRY_OK)
        return rc;
    be->map_timeout_ms = vals[0];
    be->probe = host->agent_uid;
    be->epfd = be->chan.fd = be->srv.fd = be->srv.stop[0] = be->srv.stop[1] = -1;
    pthread_mutex_init(&be->lock, NULL);
    rc = fy_shm_open(be);
    if (rc != FERRY_OK) {
        fy_shm_fini(be);
        return rc;
    }
    fy_shm_log(be, FERRY_LOG_DEBUG, "socket @%s, fd server @%s", be->chan.name, be->srv.name);
    return FERRY_OK;
}

/* ---- progress, notifications ---- */

/* One system call when nothing came: the epoll set says whether the
 * socket has datagrams, read after the rings' tails (fyp_chan_mark). */
static ferry_status fy_shm_progress(void *priv)
{
    fy_shm *be = priv;
    bool sock_ready;
    fyp_chan_mark(&be->chan);
    size_t work = fy_shm_reap(be, &sock_ready);
    work += fyp_chan_drain_marked(&be->chan, be->host, sock_ready ? FYP_SOCK_READ : FYP_SOCK_EMPTY);
    work += fy_shm_progress_reqs(be);
    return work ? FERRY_IN_PROGRESS : FERRY_OK;
}

static ferry_status fy_shm_wait_fd(void *priv, int *fd)
{
    *fd = ((fy_shm *)priv)->epfd;
    return FERRY_OK;
}

/* A notification waiting for room raises no fd: keep polling meanwhile.
 * Peers' rings ring the socket once armed. */
static ferry_status fy_shm_arm(void *priv)
{
    fy_shm *be = priv;
    return be->pending || !fyp_chan_arm(&be->chan) ? FERRY_IN_PROGRESS : FERRY_OK;
}

static ferry_status fy_shm_notif_send(void *priv, void *remote, const void *msg, size_t len)
{
    fy_shm *be = priv;
    if (!remote || (len && !msg) || len > FERRY_NOTIF_MAX_LEN)
        return FERRY_ERR_INVALID_PARAM;
    return fy_shm_notify(be, remote, msg, len, true);
}

/* ---- descriptor ---- */

/* Left NULL: supports and mem_types (DRAM <-> DRAM, mem_mask says it all),
 * connect/disconnect (memfd regions map at prep), estimate, query,
 * remote_refresh (a healthy peer needs nothing; a dead one comes back as a
 * new instance, loaded afresh). */
static const ferry_plugin_ops fy_shm_ops = {
    .size = sizeof(ferry_plugin_ops),
    .init = fy_shm_init,
    .fini = fy_shm_fini,
    .reg = fy_shm_reg,
    .dereg = fy_shm_dereg,
    .conn_info = fy_shm_conn_info,
    .remote_load = fy_shm_remote_load,
    .remote_unload = fy_shm_remote_unload,
    .rregion_load = fy_shm_rregion_load,
    .rregion_unload = fy_shm_rregion_unload,
    .xfer_prep = fy_shm_xfer_prep,
    .xfer_post = fy_shm_xfer_post,
    .xfer_check = fy_shm_xfer_check,
    .xfer_release = fy_shm_xfer_release,
    .notif_send = fy_shm_notif_send,
    .progress = fy_shm_progress,
    .xfer_error = fy_shm_xfer_error,
    .wait_fd = fy_shm_wait_fd,
    .arm = fy_shm_arm,
    .mem_alloc = fy_shm_mem_alloc,
    .mem_free = fy_shm_mem_free,
};

static const ferry_plugin_desc fy_shm_desc = {
    .abi_version = FERRY_PLUGIN_ABI_VERSION,
    .flags = FERRY_PLUGIN_F_HOST_FIRST, /* it declines peers it cannot serve */
    .name = FY_SHM_PLUGIN_NAME,
    .version = FY_SHM_VERSION,
    .caps = FERRY_CAP_LOCAL | FERRY_CAP_REMOTE | FERRY_CAP_NOTIF | FERRY_CAP_PROGRESS,
    .mem_mask = FERRY_MEM_MASK(FERRY_MEM_DRAM),
    .params = fy_shm_params,
    .num_params = FY_SHM_NUM_PARAMS,
    .priv_size = sizeof(fy_shm),
    .ops = &fy_shm_ops,
};

FERRY_PLUGIN_DEFINE(SHM, fy_shm_desc)
