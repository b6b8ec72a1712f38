/* SPDX-License-Identifier: Apache-2.0 */
/* Plugin support: the host-local notification channel (see fyp_chan.h). */
#include "fyp_chan.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/le.h"
#include "fyp_chan_ring.h"

#define FYP_CHAN_BUF       (4 << 20)     /* bursts of notifications queue here */
#define FYP_CHAN_DRAIN_MAX 256           /* datagrams taken per drain */
#define FYP_CHAN_SEND_WAIT 5000000000ull /* a waiting send gives up after 5 s of a full queue */

#define fyp_chan_log(h, level, ...) (h)->log((h)->agent_ctx, (level), __VA_ARGS__)

/* ---- datagrams ---- */

size_t fyp_dgram_encode(uint8_t *out, size_t cap, const char *from, uint64_t uid, const void *msg,
                        size_t len)
{
    size_t name_len = from ? strlen(from) : 0;
    if (!name_len || name_len > FYP_NAME_MAX || len > FYP_NOTIF_MAX || (len && !msg))
        return 0;
    size_t need = FYP_DGRAM_FIXED + name_len + len;
    if (cap < need)
        return 0;
    memcpy(out, "FYCN", 4);
    out[4] = 1;
    out[5] = 0;
    fy_le_put(out + 6, name_len, 2);
    fy_le_put(out + 8, uid, 8);
    memcpy(out + FYP_DGRAM_FIXED, from, name_len);
    if (len)
        memcpy(out + FYP_DGRAM_FIXED + name_len, msg, len);
    return need;
}

ferry_status fyp_dgram_decode(const uint8_t *buf, size_t len, char from[FYP_NAME_MAX + 1],
                              uint64_t *uid, const void **msg, size_t *msg_len)
{
    if (!buf || len < FYP_DGRAM_FIXED || memcmp(buf, "FYCN", 4) || buf[4] != 1)
        return FERRY_ERR_BAD_METADATA;
    size_t name_len = (size_t)fy_le_get(buf + 6, 2);
    if (!name_len || name_len > FYP_NAME_MAX || name_len > len - FYP_DGRAM_FIXED)
        return FERRY_ERR_BAD_METADATA;
    size_t body = len - FYP_DGRAM_FIXED - name_len;
    if (body > FYP_NOTIF_MAX || memchr(buf + FYP_DGRAM_FIXED, '\0', name_len))
        return FERRY_ERR_BAD_METADATA;
    memcpy(from, buf + FYP_DGRAM_FIXED, name_len);
    from[name_len] = '\0';
    *uid = fy_le_get(buf + 8, 8);
    *msg = buf + FYP_DGRAM_FIXED + name_len;
    *msg_len = body;
    return FERRY_OK;
}

/* ---- the socket ---- */

static atomic_uint fyp_chan_seq;

static void fyp_chan_bufs(int fd)
{
    int one = 1, size = FYP_CHAN_BUF;
    /* Best effort: the kernel caps sizes at rmem_max/wmem_max. */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
}

void fyp_chan_addr_of(const char *sock, fyp_chan_addr *out)
{
    size_t n = strnlen(sock, FYP_SOCK_MAX);
    memset(&out->sa, 0, sizeof(out->sa));
    out->sa.sun_family = AF_UNIX;
    memcpy(out->sa.sun_path + 1, sock, n); /* abstract: leading NUL */
    out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

ferry_status fyp_chan_open(fyp_chan *c, const char *prefix, uint64_t uid)
{
    fyp_chan_addr a;
    c->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    c->buf = malloc(FYP_DGRAM_MAX);
    c->sbuf = malloc(FYP_DGRAM_MAX);
    if (c->fd < 0 || !c->buf || !c->sbuf) {
        fyp_chan_close(c);
        return FERRY_ERR_NO_RESOURCES;
    }
    snprintf(c->name, sizeof(c->name), "%s/%ld/%016llx/%u", prefix, (long)getpid(),
             (unsigned long long)uid, atomic_fetch_add(&fyp_chan_seq, 1));
    fyp_chan_addr_of(c->name, &a);
    if (bind(c->fd, (struct sockaddr *)&a.sa, a.len) != 0) {
        fyp_chan_close(c);
        return FERRY_ERR_IO;
    }
    fyp_chan_bufs(c->fd);
    return FERRY_OK;
}

void fyp_chan_close(fyp_chan *c)
{
    fyp_chan_rings_free(c);
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    free(c->sbuf);
    c->fd = -1;
    c->buf = c->sbuf = NULL;
}

int fyp_chan_send(fyp_chan *c, const fyp_chan_addr *to, const char *from, uint64_t uid,
                  const void *msg, size_t len)
{
    size_t n = fyp_dgram_encode(c->sbuf, FYP_DGRAM_MAX, from, uid, msg, len);
    if (!n)
        return -EINVAL;
    ssize_t sent = sendto(c->fd, c->sbuf, n, MSG_DONTWAIT | MSG_NOSIGNAL,
                          (const struct sockaddr *)&to->sa, to->len);
    int e = errno;
    if (sent == (ssize_t)n)
        return 0;
    return e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS || e == EINTR ? -EAGAIN : -e;
}

/* What the kernel says of a datagram: its sender's credentials and the
 * descriptors it carried (a ring's memfd; any others are closed). */
typedef struct fyp_chan_meta {
    bool has_cred;
    struct ucred cred;
    int fd; /* the first descriptor passed, -1 when none */
} fyp_chan_meta;

#define FYP_CHAN_FDS_MAX 4 /* room for a few: the kernel drops what does not fit */

static void fyp_chan_fds(struct cmsghdr *c, fyp_chan_meta *m)
{
    size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; i++) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        if (m->fd < 0)
            m->fd = fd;
        else
            close(fd);
    }
}

static void fyp_chan_meta_read(struct msghdr *mh, fyp_chan_meta *m)
{
    *m = (fyp_chan_meta){.fd = -1};
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET)
            continue;
        if (c->cmsg_type == SCM_RIGHTS)
            fyp_chan_fds(c, m);
        else if (c->cmsg_type == SCM_CREDENTIALS && !m->has_cred) {
            memcpy(&m->cred, CMSG_DATA(c), sizeof(m->cred));
            m->has_cred = true;
        }
    }
}

/* Only our own user (or root) is heard. */
static bool fyp_chan_trusted(const fyp_chan_meta *m)
{
    return m->has_cred && (m->cred.uid == geteuid() || m->cred.uid == 0);
}

static void fyp_chan_deliver(fyp_chan *c, const ferry_plugin_host *h, size_t n)
{
    char from[FYP_NAME_MAX + 1];
    uint64_t uid;
    const void *msg;
    size_t len;
    if (fyp_dgram_decode(c->buf, n, from, &uid, &msg, &len) != FERRY_OK) {
        fyp_chan_log(h, FERRY_LOG_WARN, "dropped a malformed notification datagram");
        return;
    }
    h->notif_deliver(h->agent_ctx, from, msg, len);
}

/* A datagram taken from the socket: a notification or a ring's control. */
static void fyp_chan_dispatch(fyp_chan *c, const ferry_plugin_host *h, struct msghdr *mh, size_t n,
                              const fyp_chan_meta *m)
{
    if (mh->msg_flags & (MSG_TRUNC | MSG_CTRUNC) || !fyp_chan_trusted(m)) {
        fyp_chan_log(h, FERRY_LOG_WARN, "dropped a notification datagram (%s)",
                     mh->msg_flags & (MSG_TRUNC | MSG_CTRUNC) ? "truncated" : "from another user");
        return;
    }
    fyp_chan_addr from = {.len = mh->msg_namelen};
    memcpy(&from.sa, mh->msg_name, sizeof(from.sa));
    if (fyp_ctl_is(c->buf, n))
        fyp_chan_ring_control(c, h, &from, m->cred.pid, n, m->fd);
    else if (m->fd >= 0)
        fyp_chan_log(h, FERRY_LOG_WARN,
                     "dropped a notification datagram (it carried a descriptor)");
    else
        fyp_chan_deliver(c, h, n);
}

/* One datagram: 1 delivered or dropped, 0 nothing queued, -1 error. */
static int fyp_chan_recv_one(fyp_chan *c, const ferry_plugin_host *h)
{
    union {
        char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(FYP_CHAN_FDS_MAX * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct sockaddr_un sender;
    struct iovec iov = {c->buf, FYP_DGRAM_MAX};
    struct msghdr mh = {.msg_name = &sender,
                        .msg_namelen = sizeof(sender),
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = ctl.buf,
                        .msg_controllen = sizeof(ctl.buf)};
    ssize_t n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : errno == EINTR ? 1 : -1;
    fyp_chan_meta m;
    fyp_chan_meta_read(&mh, &m);
    fyp_chan_dispatch(c, h, &mh, (size_t)n, &m);
    if (m.fd >= 0)
        close(m.fd);
    return 1;
}

void fyp_chan_mark(fyp_chan *c)
{
    fyp_chan_rings_mark(c);
}

/* Each ring's records up to the tail read before the socket was found
 * empty: any datagram its sender sent before them has been taken by then. */
size_t fyp_chan_drain_marked(fyp_chan *c, const ferry_plugin_host *h, fyp_sock sock)
{
    size_t got = 0;
    bool sock_ready = sock == FYP_SOCK_READ, emptied = sock == FYP_SOCK_EMPTY;
    for (int i = 0; sock_ready && i < FYP_CHAN_DRAIN_MAX; i++) {
        int rc = fyp_chan_recv_one(c, h);
        if (rc > 0) {
            got++;
            continue;
        }
        if (rc < 0)
            fyp_chan_log(h, FERRY_LOG_WARN, "notification socket: %s", strerror(errno));
        emptied = rc == 0;
        break;
    }
    return got + (emptied || sock == FYP_SOCK_UNREAD ? fyp_chan_rings_take(c, h, emptied) : 0);
}

size_t fyp_chan_drain(fyp_chan *c, const ferry_plugin_host *h)
{
    fyp_chan_mark(c);
    return fyp_chan_drain_marked(c, h, FYP_SOCK_READ);
}

bool fyp_chan_arm(fyp_chan *c)
{
    return fyp_chan_rings_arm(c);
}

/* ---- sending a notification ---- */

static uint64_t fyp_chan_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static ferry_status fyp_chan_failed(const ferry_plugin_host *h, const fyp_chan_peer *p, int e,
                                    bool *gone)
{
    *gone = e == -ECONNREFUSED || e == -ENOENT;
    fyp_chan_log(h, *gone ? FERRY_LOG_WARN : FERRY_LOG_ERROR, "notification to %s: %s", p->name,
                 *gone ? "the agent is gone" : strerror(-e));
    return *gone ? FERRY_ERR_REMOTE_DISCONNECT : FERRY_ERR_BACKEND;
}

ferry_status fyp_chan_notify(fyp_chan *c, const ferry_plugin_host *h, const fyp_chan_peer *p,
                             const void *msg, size_t len, bool wait, bool *gone)
{
    *gone = false;
    if (p->self) {
        h->notif_deliver(h->agent_ctx, h->agent_name, msg, len);
        return FERRY_OK;
    }
    uint64_t deadline = fyp_chan_now() + FYP_CHAN_SEND_WAIT;
    for (;;) {
        fyp_chan_tx *t = fyp_chan_ring_to(c, h, p);
        int e = t ? fyp_chan_ring_send(c, p, t, msg, len)
                  : fyp_chan_send(c, p->addr, h->agent_name, h->agent_uid, msg, len);
        if (e == 0)
            return FERRY_OK;
        if (e != -EAGAIN)
            return fyp_chan_failed(h, p, e, gone);
        if (!wait)
            return FERRY_IN_PROGRESS;
        if (!p->alive(p->arg))
            return FERRY_ERR_REMOTE_DISCONNECT;
        if (fyp_chan_now() > deadline) {
            fyp_chan_log(h, FERRY_LOG_ERROR, "notification to %s: its queue stayed full for 5 s",
                         p->name);
            return FERRY_ERR_BACKEND;
        }
        fyp_chan_drain(c, h);
        usleep(50);
    }
}
