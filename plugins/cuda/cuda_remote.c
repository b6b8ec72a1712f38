/* SPDX-License-Identifier: Apache-2.0 */
/* Peers of the CUDA plugin: agents on this host, in this process or in
 * another one. Another process's VRAM is reached through CUDA IPC: its
 * allocations are opened on first use, in the context of the GPU that runs
 * the copy, cached per remote and closed when the remote is unloaded. A
 * remote's liveness is checked through its pid (and the pid's start time,
 * so a reused pid does not pass for the peer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cuda_internal.h"

#define FY_CU_LIVENESS_NS 10000000ull /* a pid check at most every 10 ms */

ferry_status fy_cu_conn_info(void *priv, void **info, size_t *len)
{
    fy_cu *be = priv;
    uint8_t *p = malloc(FYP_IDENT_FIXED + FYP_SOCK_MAX);
    if (!p)
        return FERRY_ERR_NO_MEMORY;
    *len = fyp_ident_encode(FY_CU_CONN_MAGIC, &be->self, p, FYP_IDENT_FIXED + FYP_SOCK_MAX);
    *info = p;
    return FERRY_OK;
}

/* Only agents of this host's boot and network namespace are reachable: the
 * notification socket lives in the network namespace, CUDA IPC on the host. */
static ferry_status fy_cu_remote_check(fy_cu *be, const char *name, const fyp_ident *c)
{
    const char *why = fyp_ident_unreachable(&be->self, c);
    if (why)
        fy_cu_log(be, FERRY_LOG_INFO, "agent %s is not served by CUDA: %s", name, why);
    return why ? FERRY_ERR_NOT_SUPPORTED : FERRY_OK;
}

ferry_status fy_cu_remote_load(void *priv, const char *name, uint64_t uid, const void *info,
                               size_t len, void **remote)
{
    fy_cu *be = priv;
    fyp_ident c;
    if (!remote || !name)
        return FERRY_ERR_INVALID_PARAM;
    if (!info || fyp_ident_decode(FY_CU_CONN_MAGIC, info, len, &c) != FERRY_OK || c.uid != uid) {
        fy_cu_log(be, FERRY_LOG_WARN,
                  "agent %s: connection info of another version or damaged: not reachable", name);
        return FERRY_ERR_NOT_SUPPORTED;
    }
    ferry_status rc = fy_cu_remote_check(be, name, &c);
    if (rc != FERRY_OK)
        return rc;
    fy_cu_remote *r = calloc(1, sizeof(*r));
    if (!r)
        return FERRY_ERR_NO_MEMORY;
    r->be = be;
    snprintf(r->name, sizeof(r->name), "%s", name);
    r->conn = c;
    r->same_process = fyp_ident_same_process(&be->self, &c);
    r->self = r->same_process && c.uid == be->self.uid && !strcmp(c.sock, be->self.sock);
    fyp_chan_addr_of(c.sock, &r->addr);
    fy_cu_log(be, FERRY_LOG_DEBUG, "agent %s: pid %u%s", name, c.pid,
              r->self           ? " (this agent)"
              : r->same_process ? " (this process)"
                                : "");
    *remote = r;
    return FERRY_OK;
}

static void fy_cu_map_close(fy_cu *be, fy_cu_map *m)
{
    fy_cu_dev *d = &be->devs[m->exec];
    if (d->ready && fy_cu_push(be, d)) {
        be->cu->IpcCloseMemHandle(m->ptr);
        fy_cu_pop(be);
    }
    free(m);
}

void fy_cu_remote_unload(void *priv, void *remote)
{
    fy_cu *be = priv;
    fy_cu_remote *r = remote;
    while (r->maps) {
        fy_cu_map *m = r->maps;
        r->maps = m->next;
        fy_cu_map_close(be, m);
    }
    free(r);
}

ferry_status fy_cu_rregion_load(void *priv, void *remote, ferry_mem_type type,
                                const ferry_desc *desc, const void *pub, size_t pub_len,
                                void **rregion)
{
    fy_cu *be = priv;
    fy_cu_remote *r = remote;
    fy_cu_rregion *rr = calloc(1, sizeof(*rr));
    if (!rr)
        return FERRY_ERR_NO_MEMORY;
    ferry_status rc = fy_cu_pub_decode(pub, pub_len, type, desc, &rr->pub);
    if (rc != FERRY_OK) {
        fy_cu_log(be, FERRY_LOG_ERROR, "agent %s: damaged key for region %#llx", r->name,
                  desc ? (unsigned long long)desc->addr : 0ull);
        free(rr);
        return rc;
    }
    rr->ordinal = -1;
    if (type == FERRY_MEM_VRAM && r->same_process &&
        fy_gpu_ordinal_of(be->cu, rr->pub.uuid, &rr->ordinal) != FERRY_OK)
        rr->ordinal = -1; /* prep says why */
    *rregion = rr;
    return FERRY_OK;
}

void fy_cu_rregion_unload(void *priv, void *remote, void *rregion)
{
    (void)priv, (void)remote;
    free(rregion); /* its mapping belongs to the remote */
}

static fy_cu_map *fy_cu_map_find(fy_cu_remote *r, const fy_cu_rregion *rr, int exec)
{
    for (fy_cu_map *m = r->maps; m; m = m->next)
        if (m->exec == exec &&
            !memcmp(m->handle.reserved, rr->pub.handle.reserved, FY_CU_IPC_HANDLE_SIZE))
            return m;
    return NULL;
}

static ferry_status fy_cu_map_open(fy_cu *be, fy_cu_remote *r, const fy_cu_rregion *rr,
                                   fy_cu_dev *exec, fy_cu_map **out, char *err, size_t cap)
{
    fy_cu_map *m = calloc(1, sizeof(*m));
    if (!m)
        return FERRY_ERR_NO_MEMORY;
    fy_cu_result res = FY_CUDA_ERROR_INVALID_CONTEXT;
    if (fy_cu_push(be, exec)) {
        /* LAZY_ENABLE_PEER_ACCESS: the peer's GPU may be another one, even
         * one this process does not see (reached over NVLink). */
        res = be->cu->IpcOpenMemHandle(&m->ptr, rr->pub.handle,
                                       FY_CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS);
        fy_cu_pop(be);
    }
    if (res != FY_CUDA_SUCCESS) {
        char gpu[48];
        fy_gpu_uuid_str(rr->pub.uuid, gpu, sizeof(gpu));
        snprintf(err, cap, "opening %s's allocation %#llx (%s) on GPU %d: %s", r->name,
                 (unsigned long long)rr->pub.alloc_base, gpu, exec->ordinal,
                 fy_cuda_errname(be->cu, res));
        free(m);
        return FERRY_ERR_BACKEND;
    }
    m->exec = exec->ordinal;
    m->handle = rr->pub.handle;
    m->next = r->maps;
    r->maps = m;
    *out = m;
    return FERRY_OK;
}

/* Where the peer's allocation around rr starts in exec's address space. */
ferry_status fy_cu_map_get(fy_cu *be, fy_cu_remote *r, fy_cu_rregion *rr, fy_cu_dev *exec,
                           fy_cu_deviceptr *base, char *err, size_t cap)
{
    if (!rr->pub.ipc) {
        snprintf(err, cap, "%s's region %#llx cannot be exported through CUDA IPC", r->name,
                 (unsigned long long)rr->pub.addr);
        return FERRY_ERR_NOT_SUPPORTED;
    }
    if (!rr->map || rr->map->exec != exec->ordinal) {
        fy_cu_map *m = fy_cu_map_find(r, rr, exec->ordinal);
        ferry_status rc = m ? FERRY_OK : fy_cu_map_open(be, r, rr, exec, &m, err, cap);
        if (rc != FERRY_OK)
            return rc;
        rr->map = m;
    }
    *base = rr->map->ptr;
    return FERRY_OK;
}

/* ---- liveness ---- */

static uint64_t fy_cu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool fy_cu_remote_alive(fy_cu_remote *r)
{
    if (r->dead)
        return false;
    if (r->same_process || r->conn.pidns != r->be->self.pidns)
        return true; /* another pid namespace: its pid means nothing here */
    uint64_t now = fy_cu_now_ns();
    if (now < r->next_check_ns)
        return true;
    r->next_check_ns = now + FY_CU_LIVENESS_NS;
    if (fyp_pid_alive(r->conn.pid, r->conn.starttime))
        return true;
    r->dead = true;
    fy_cu_log(r->be, FERRY_LOG_WARN, "agent %s (pid %u) is gone", r->name, r->conn.pid);
    return false;
}

static bool fy_cu_remote_alive_cb(void *r)
{
    return fy_cu_remote_alive(r);
}

/* Through the host-local channel (fyp_chan.h); a peer found gone stays dead. */
ferry_status fy_cu_notify(fy_cu *be, fy_cu_remote *r, const void *msg, size_t len, bool wait)
{
    fyp_chan_peer p = {.name = r->name,
                       .addr = &r->addr,
                       .self = r->self,
                       .alive = fy_cu_remote_alive_cb,
                       .arg = r};
    bool gone;
    ferry_status rc = fyp_chan_notify(&be->chan, be->host, &p, msg, len, wait, &gone);
    if (gone)
        r->dead = true;
    return rc;
}
