/* SPDX-License-Identifier: Apache-2.0 */
/* Peers of the SHM plugin: agents of this host, in this process or another.
 *
 * A peer is served only when both ways to its memory can work: its
 * memfd regions (their fds come from its fd server) and its ordinary
 * memory (cross-memory attach, which the kernel allows only where ptrace
 * would be: same user, no seccomp filter or LSM saying no). remote_load
 * probes the latter by reading 8 published bytes of the peer; when that
 * fails, the peer is declined with the reason (NOT_SUPPORTED, logged at
 * INFO), and the core selects another backend for it (UCX).
 *
 * Liveness: a pidfd per peer, in the epoll set that is our wait_fd, so the
 * progress thread wakes the moment a peer exits; posts also poll it, at
 * most every millisecond. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "shm_internal.h"

#define FY_SHM_LIVENESS_NS 1000000ull /* a post polls a pidfd at most every 1 ms */

ferry_status fy_shm_conn_info(void *priv, void **info, size_t *len)
{
    fy_shm *be = priv;
    uint8_t *p = malloc(FY_SHM_CONN_MAX);
    if (!p)
        return FERRY_ERR_NO_MEMORY;
    fy_shm_conn c = {.id = be->self, .probe = (uintptr_t)&be->probe};
    *len = fy_shm_conn_encode(&c, p, FY_SHM_CONN_MAX);
    *info = p;
    return FERRY_OK;
}

/* ---- admission ---- */

/* Reads the peer's probe word: the kernel's verdict on cross-memory
 * attach, and proof that pid is still the agent (it holds its uid). */
static const char *fy_shm_cma_verdict(const fy_shm_conn *c, char *buf, size_t cap)
{
    uint64_t word = 0;
    struct iovec local = {&word, sizeof(word)};
    struct iovec remote = {(void *)(uintptr_t)c->probe, sizeof(word)};
    ssize_t n = process_vm_readv((pid_t)c->id.pid, &local, 1, &remote, 1, 0);
    if (n == (ssize_t)sizeof(word))
        return word == c->id.uid ? NULL : "its pid now runs another program";
    if (errno == ESRCH)
        return "it has exited";
    snprintf(buf, cap,
             "cross-memory attach to pid %u is refused (process_vm_readv: %s; needs ptrace "
             "permission: same user, no seccomp filter, no LSM denial)",
             c->id.pid, strerror(errno));
    return buf;
}

static const char *fy_shm_unreachable(fy_shm *be, const fy_shm_conn *c, char *buf, size_t cap)
{
    const char *why = fyp_ident_unreachable(&be->self, &c->id);
    if (why)
        return why;
    if (c->id.pidns != be->self.pidns)
        return "it is in another pid namespace";
    return fy_shm_cma_verdict(c, buf, cap);
}

/* A pidfd that refers to the peer, not to a process that reused its pid. */
static int fy_shm_pidfd(const fyp_ident *id)
{
    int fd = (int)syscall(SYS_pidfd_open, (pid_t)id->pid, 0);
    if (fd >= 0 && !fyp_pid_alive(id->pid, id->starttime)) {
        close(fd);
        errno = ESRCH; /* the peer is gone: its pid is free or reused */
        return -1;
    }
    return fd;
}

static ferry_status fy_shm_watch(fy_shm *be, fy_shm_remote *r)
{
    r->pidfd = -1;
    if (fyp_ident_same_process(&be->self, &r->id))
        return FERRY_OK; /* we outlive ourselves */
    r->pidfd = fy_shm_pidfd(&r->id);
    if (r->pidfd < 0 && errno == ENOSYS) {
        /* No pidfd_open (a kernel before 5.3, or valgrind): /proc/<pid>/stat
         * polled by posts instead, at most every millisecond. */
        r->proc_poll = true;
        return FERRY_OK;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = r};
    if (r->pidfd < 0 || epoll_ctl(be->epfd, EPOLL_CTL_ADD, r->pidfd, &ev) != 0) {
        fy_shm_log(be, FERRY_LOG_INFO, "agent %s is not served by SHM: no pidfd for pid %u (%s)",
                   r->name, r->id.pid, strerror(errno));
        return FERRY_ERR_NOT_SUPPORTED;
    }
    return FERRY_OK;
}

static ferry_status fy_shm_admit(fy_shm *be, const char *name, uint64_t uid, const void *info,
                                 size_t len, fy_shm_conn *c)
{
    char buf[256];
    if (!info || fy_shm_conn_decode(info, len, c) != FERRY_OK || c->id.uid != uid) {
        fy_shm_log(be, FERRY_LOG_WARN,
                   "agent %s: connection info of another version or damaged: not reachable", name);
        return FERRY_ERR_NOT_SUPPORTED;
    }
    const char *why = fy_shm_unreachable(be, c, buf, sizeof(buf));
    if (why) {
        fy_shm_log(be, FERRY_LOG_INFO, "agent %s is not served by SHM: %s", name, why);
        return FERRY_ERR_NOT_SUPPORTED;
    }
    return FERRY_OK;
}

ferry_status fy_shm_remote_load(void *priv, const char *name, uint64_t uid, const void *info,
                                size_t len, void **remote)
{
    fy_shm *be = priv;
    fy_shm_conn c;
    if (!remote || !name)
        return FERRY_ERR_INVALID_PARAM;
    ferry_status rc = fy_shm_admit(be, name, uid, info, len, &c);
    if (rc != FERRY_OK)
        return rc;
    fy_shm_remote *r = calloc(1, sizeof(*r));
    if (!r)
        return FERRY_ERR_NO_MEMORY;
    r->be = be;
    snprintf(r->name, sizeof(r->name), "%s", name);
    r->id = c.id;
    r->self = uid == be->host->agent_uid && !strcmp(c.id.sock, be->self.sock);
    fyp_chan_addr_of(c.id.sock, &r->addr);
    if ((rc = fy_shm_watch(be, r)) != FERRY_OK) {
        free(r);
        return rc;
    }
    if (r->self)
        fy_shm_log(be, FERRY_LOG_DEBUG, "agent %s: this agent", name);
    else /* the line ferry-demo and operators look for, in UCX's form */
        fy_shm_log(be, FERRY_LOG_INFO,
                   "transports to %s: memfd mappings for memory from ferry_mem_alloc, "
                   "cross-memory attach for other memory (pid %u, one host)",
                   name, c.id.pid);
    *remote = r;
    return FERRY_OK;
}

void fy_shm_remote_unload(void *priv, void *remote)
{
    fy_shm_remote *r = remote;
    (void)priv;
    if (r->pidfd >= 0)
        close(r->pidfd); /* leaves the epoll set with it */
    free(r);
}

/* ---- regions ---- */

ferry_status fy_shm_rregion_load(void *priv, void *remote, ferry_mem_type type,
                                 const ferry_desc *desc, const void *pub, size_t pub_len,
                                 void **rregion)
{
    fy_shm *be = priv;
    fy_shm_remote *r = remote;
    if (type != FERRY_MEM_DRAM)
        return FERRY_ERR_NOT_SUPPORTED;
    fy_shm_rregion *rr = calloc(1, sizeof(*rr));
    if (!rr)
        return FERRY_ERR_NO_MEMORY;
    ferry_status rc = fy_shm_pub_decode(pub, pub_len, desc, &rr->pub);
    if (rc != FERRY_OK) {
        fy_shm_log(be, FERRY_LOG_ERROR, "agent %s: damaged key for region %#llx", r->name,
                   desc ? (unsigned long long)desc->addr : 0ull);
        free(rr);
        return rc;
    }
    *rregion = rr;
    return FERRY_OK;
}

void fy_shm_rregion_unload(void *priv, void *remote, void *rregion)
{
    fy_shm_rregion *rr = rregion;
    (void)priv, (void)remote;
    if (rr->map)
        munmap(rr->map, rr->map_len);
    free(rr);
}

/* The memfd must be sealed against shrinking (a peer cannot turn our
 * copies into SIGBUS) and hold the region. */
static bool fy_shm_fd_sound(int fd, uint64_t offset, uint64_t len)
{
    struct stat st;
    int seals = fcntl(fd, F_GET_SEALS);
    return seals >= 0 && (seals & F_SEAL_SHRINK) && fstat(fd, &st) == 0 && st.st_size >= 0 &&
           offset <= (uint64_t)st.st_size && len <= (uint64_t)st.st_size - offset;
}

/* Maps exactly the pages of the region, nothing else of the memfd. */
static ferry_status fy_shm_map_fd(fy_shm_rregion *rr, int fd, uint64_t offset, char *err,
                                  size_t cap)
{
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t start = offset & ~(page - 1);
    uint64_t span = (offset - start + rr->pub.len + page - 1) & ~(page - 1);
    void *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)start);
    if (p == MAP_FAILED) {
        snprintf(err, cap, "mapping %llu bytes of a peer's memfd: %s", (unsigned long long)span,
                 strerror(errno));
        return FERRY_ERR_NO_MEMORY;
    }
    rr->map = p;
    rr->map_len = span;
    rr->at = (uint8_t *)p + (offset - start);
    return FERRY_OK;
}

ferry_status fy_shm_map(fy_shm *be, fy_shm_remote *r, fy_shm_rregion *rr, char *err, size_t cap)
{
    int fd;
    uint64_t offset;
    if (rr->map)
        return FERRY_OK;
    ferry_status rc = fy_shm_fetch_fd(be, r, rr->pub.token, &fd, &offset, err, cap);
    if (rc != FERRY_OK)
        return rc;
    if (!fy_shm_fd_sound(fd, offset, rr->pub.len)) {
        snprintf(err, cap, "%s sent a memfd that is unsealed or too small for region %#llx",
                 r->name, (unsigned long long)rr->pub.addr);
        rc = FERRY_ERR_BACKEND;
    } else if ((rc = fy_shm_map_fd(rr, fd, offset, err, cap)) == FERRY_OK) {
        fy_shm_log(be, FERRY_LOG_DEBUG, "mapped %s's region %#llx (%llu bytes)", r->name,
                   (unsigned long long)rr->pub.addr, (unsigned long long)rr->pub.len);
    }
    close(fd);
    return rc;
}

/* ---- liveness ---- */

static uint64_t fy_shm_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void fy_shm_mark_dead(fy_shm_remote *r)
{
    if (r->dead)
        return;
    r->dead = true;
    if (r->pidfd >= 0)
        epoll_ctl(r->be->epfd, EPOLL_CTL_DEL, r->pidfd, NULL); /* it stays readable */
    fy_shm_log(r->be, FERRY_LOG_WARN, "agent %s (pid %u) is gone", r->name, r->id.pid);
}

/* Whether the peer's process has exited: its pidfd is readable, or (no
 * pidfd) its /proc entry is gone or names another process. */
static bool fy_shm_exited(const fy_shm_remote *r)
{
    struct pollfd p = {.fd = r->pidfd, .events = POLLIN};
    if (r->proc_poll)
        return !fyp_pid_alive(r->id.pid, r->id.starttime);
    return poll(&p, 1, 0) == 1;
}

bool fy_shm_remote_alive(fy_shm_remote *r)
{
    if (r->dead || (r->pidfd < 0 && !r->proc_poll))
        return !r->dead;
    uint64_t now = fy_shm_now_ns();
    if (now < r->next_check_ns)
        return true;
    r->next_check_ns = now + FY_SHM_LIVENESS_NS;
    if (fy_shm_exited(r))
        fy_shm_mark_dead(r);
    return !r->dead;
}

size_t fy_shm_reap(fy_shm *be, bool *sock_ready)
{
    struct epoll_event ev[16];
    size_t dead = 0;
    int n = epoll_wait(be->epfd, ev, 16, 0);
    *sock_ready = n < 0; /* unknown: read it */
    for (int i = 0; i < n; i++) {
        if (!ev[i].data.ptr) {
            *sock_ready = true; /* the notification socket: drained by progress */
            continue;
        }
        fy_shm_mark_dead(ev[i].data.ptr);
        dead++;
    }
    return dead;
}

/* ---- notifications ---- */

static bool fy_shm_alive_cb(void *r)
{
    return fy_shm_remote_alive(r);
}

ferry_status fy_shm_notify(fy_shm *be, fy_shm_remote *r, const void *msg, size_t len, bool wait)
{
    fyp_chan_peer p = {
        .name = r->name, .addr = &r->addr, .self = r->self, .alive = fy_shm_alive_cb, .arg = r};
    bool gone;
    if (!fy_shm_remote_alive(r))
        return FERRY_ERR_REMOTE_DISCONNECT;
    ferry_status rc = fyp_chan_notify(&be->chan, be->host, &p, msg, len, wait, &gone);
    if (gone)
        fy_shm_mark_dead(r);
    return rc;
}
