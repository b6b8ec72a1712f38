/* SPDX-License-Identifier: Apache-2.0 */
/* Notifications between agents of one host: each backend binds an
 * abstract-namespace unix datagram socket (no file to clean up after a
 * crash; its name is in the connection info), and a notification is one
 * datagram. A datagram is delivered whole or not at all, in order per
 * sender, and a send to a peer that is gone fails at once (ECONNREFUSED),
 * which is how a dead peer is noticed without a heartbeat.
 *
 * Abstract sockets have no permissions: the receiver asks the kernel for
 * the sender's credentials (SO_PASSCRED) and drops datagrams of other users. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cuda_internal.h"

#define FY_CU_SOCK_BUF  (4 << 20)     /* bursts of notifications queue here */
#define FY_CU_DRAIN_MAX 256           /* datagrams taken per progress call */
#define FY_CU_SEND_WAIT 5000000000ull /* notif_send gives up after 5 s of a full queue */

static atomic_uint fy_cu_chan_seq;

static void fy_cu_chan_bufs(int fd)
{
    int one = 1, size = FY_CU_SOCK_BUF;
    /* Best effort: the kernel caps sizes at rmem_max/wmem_max. */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
}

ferry_status fy_cu_chan_open(fy_cu_chan *c, uint64_t uid)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    c->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    c->buf = malloc(FY_CU_DGRAM_MAX);
    c->sbuf = malloc(FY_CU_DGRAM_MAX);
    if (c->fd < 0 || !c->buf || !c->sbuf) {
        fy_cu_chan_close(c);
        return FERRY_ERR_NO_RESOURCES;
    }
    snprintf(c->name, sizeof(c->name), "ferry-cuda/%ld/%016llx/%u", (long)getpid(),
             (unsigned long long)uid, atomic_fetch_add(&fy_cu_chan_seq, 1));
    size_t n = strlen(c->name);
    memcpy(a.sun_path + 1, c->name, n);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
    if (bind(c->fd, (struct sockaddr *)&a, len) != 0) {
        fy_cu_chan_close(c);
        return FERRY_ERR_IO;
    }
    fy_cu_chan_bufs(c->fd);
    return FERRY_OK;
}

void fy_cu_chan_close(fy_cu_chan *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    free(c->sbuf);
    c->fd = -1;
    c->buf = c->sbuf = NULL;
}

int fy_cu_chan_send(fy_cu_chan *c, const fy_cu_remote *to, const char *from, uint64_t uid,
                    const void *msg, size_t len)
{
    size_t n = fy_cu_dgram_encode(c->sbuf, FY_CU_DGRAM_MAX, from, uid, msg, len);
    if (!n)
        return -EINVAL;
    ssize_t sent = sendto(c->fd, c->sbuf, n, MSG_DONTWAIT | MSG_NOSIGNAL,
                          (const struct sockaddr *)&to->addr, to->addr_len);
    int e = errno;
    if (sent == (ssize_t)n)
        return 0;
    return e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS || e == EINTR ? -EAGAIN : -e;
}

/* Credentials of the datagram's sender: only our own user (or root). */
static bool fy_cu_chan_trusted(struct msghdr *mh)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_CREDENTIALS)
            continue;
        struct ucred cred;
        memcpy(&cred, CMSG_DATA(c), sizeof(cred));
        return cred.uid == geteuid() || cred.uid == 0;
    }
    return false;
}

static void fy_cu_chan_deliver(fy_cu *be, size_t n)
{
    char from[FY_CU_NAME_MAX + 1];
    uint64_t uid;
    const void *msg;
    size_t len;
    if (fy_cu_dgram_decode(be->chan.buf, n, from, &uid, &msg, &len) != FERRY_OK) {
        fy_cu_log(be, FERRY_LOG_WARN, "dropped a malformed notification datagram");
        return;
    }
    be->host->notif_deliver(be->host->agent_ctx, from, msg, len);
}

/* One datagram: 1 delivered or dropped, 0 nothing queued, -1 error. */
static int fy_cu_chan_recv_one(fy_cu *be)
{
    union {
        char buf[CMSG_SPACE(sizeof(struct ucred))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {be->chan.buf, FY_CU_DGRAM_MAX};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = ctl.buf,
                        .msg_controllen = sizeof(ctl.buf)};
    ssize_t n = recvmsg(be->chan.fd, &mh, MSG_DONTWAIT);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : errno == EINTR ? 1 : -1;
    if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC) || !fy_cu_chan_trusted(&mh)) {
        fy_cu_log(be, FERRY_LOG_WARN, "dropped a notification datagram (%s)",
                  mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC) ? "truncated" : "from another user");
        return 1;
    }
    fy_cu_chan_deliver(be, (size_t)n);
    return 1;
}

size_t fy_cu_chan_drain(fy_cu *be)
{
    size_t got = 0;
    for (int i = 0; i < FY_CU_DRAIN_MAX; i++) {
        int rc = fy_cu_chan_recv_one(be);
        if (rc <= 0) {
            if (rc < 0)
                fy_cu_log(be, FERRY_LOG_WARN, "notification socket: %s", strerror(errno));
            break;
        }
        got++;
    }
    return got;
}

static uint64_t fy_cu_chan_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static ferry_status fy_cu_notify_failed(fy_cu *be, fy_cu_remote *r, int e)
{
    bool gone = e == -ECONNREFUSED || e == -ENOENT;
    if (gone)
        r->dead = true;
    fy_cu_log(be, gone ? FERRY_LOG_WARN : FERRY_LOG_ERROR, "notification to %s: %s", r->name,
              gone ? "the agent is gone" : strerror(-e));
    return gone ? FERRY_ERR_REMOTE_DISCONNECT : FERRY_ERR_BACKEND;
}

/* Sends one notification. wait=false: IN_PROGRESS when the peer's queue is
 * full (the caller retries later); wait=true: retries, draining our own
 * socket meanwhile (two agents sending to each other must not deadlock). */
ferry_status fy_cu_notify(fy_cu *be, fy_cu_remote *r, const void *msg, size_t len, bool wait)
{
    const ferry_plugin_host *h = be->host;
    if (r->self) {
        h->notif_deliver(h->agent_ctx, h->agent_name, msg, len);
        return FERRY_OK;
    }
    uint64_t deadline = fy_cu_chan_now() + FY_CU_SEND_WAIT;
    for (;;) {
        int e = fy_cu_chan_send(&be->chan, r, h->agent_name, h->agent_uid, msg, len);
        if (e == 0)
            return FERRY_OK;
        if (e != -EAGAIN)
            return fy_cu_notify_failed(be, r, e);
        if (!wait)
            return FERRY_IN_PROGRESS;
        if (!fy_cu_remote_alive(r))
            return FERRY_ERR_REMOTE_DISCONNECT;
        if (fy_cu_chan_now() > deadline) {
            fy_cu_log(be, FERRY_LOG_ERROR, "notification to %s: its queue stayed full for 5 s",
                      r->name);
            return FERRY_ERR_BACKEND;
        }
        fy_cu_chan_drain(be);
        usleep(50);
    }
}
