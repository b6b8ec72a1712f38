/* SPDX-License-Identifier: Apache-2.0 */
/* The fd server: how a peer gets the memfd behind one of our registered
 * regions. A thread serves an abstract seqpacket socket named after the
 * notification socket ("<chan>/fd"): one request (a region token), one
 * answer (the memfd by SCM_RIGHTS, its offset and length). It runs apart
 * from the agent's progress, so a peer can map our memory while this
 * process is busy elsewhere, and its waits are bounded, so a client that
 * stalls cannot hold it for long.
 *
 * Abstract sockets have no permissions: both ends check the other's user
 * (SO_PEERCRED). The server answers only tokens of regions registered with
 * this backend now; a token is random, so it is also a capability. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shm_internal.h"

#define FY_SHM_SRV_WAIT_MS 1000 /* a client gets this long to ask and to take the answer */

static void fy_shm_timeouts(int fd, uint64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* The other end runs as our user (or root). */
static bool fy_shm_peer_trusted(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return false;
    return cred.uid == geteuid() || cred.uid == 0;
}

/* Sends buf and, when fd >= 0, the fd with it. */
static bool fy_shm_send_fd(int sock, const uint8_t *buf, size_t len, int fd)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {(void *)buf, len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    memset(&ctl, 0, sizeof(ctl)); /* the padding goes to the kernel too */
    if (fd >= 0) {
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    return sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)len;
}

/* One client: a request in, an answer out. */
static void fy_shm_serve(fy_shm *be, int conn)
{
    uint8_t ask[FY_SHM_ASK_LEN + 1], ans[FY_SHM_ANS_LEN];
    uint64_t token, offset = 0, len = 0;
    int fd = -1;
    fy_shm_timeouts(conn, FY_SHM_SRV_WAIT_MS);
    if (!fy_shm_peer_trusted(conn))
        return; /* another user: not even an answer */
    ssize_t n = recv(conn, ask, sizeof(ask), 0);
    if (n <= 0 || !fy_shm_ask_decode(ask, (size_t)n, &token))
        return;
    bool found = fy_shm_lookup(be, token, &fd, &offset, &len);
    fy_shm_ans_encode(found ? FERRY_OK : FERRY_ERR_NOT_FOUND, offset, len, ans);
    fy_shm_send_fd(conn, ans, sizeof(ans), fd);
    if (fd >= 0)
        close(fd);
}

static void *fy_shm_srv_main(void *arg)
{
    fy_shm *be = arg;
    struct pollfd p[2] = {{.fd = be->srv.fd, .events = POLLIN},
                          {.fd = be->srv.stop[0], .events = POLLIN}};
    for (;;) {
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        int conn = accept4(be->srv.fd, NULL, NULL, SOCK_CLOEXEC);
        if (conn < 0)
            continue; /* EAGAIN: the client gave up meanwhile */
        fy_shm_serve(be, conn);
        close(conn);
    }
    return NULL;
}

static ferry_status fy_shm_srv_bind(fy_shm *be)
{
    fyp_chan_addr a;
    be->srv.fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (be->srv.fd < 0)
        return FERRY_ERR_NO_RESOURCES;
    snprintf(be->srv.name, sizeof(be->srv.name), "%s/fd", be->chan.name);
    fyp_chan_addr_of(be->srv.name, &a);
    if (bind(be->srv.fd, (struct sockaddr *)&a.sa, a.len) != 0 || listen(be->srv.fd, 64) != 0)
        return FERRY_ERR_IO;
    return pipe2(be->srv.stop, O_CLOEXEC) == 0 ? FERRY_OK : FERRY_ERR_NO_RESOURCES;
}

/* The thread blocks every signal: the application's handlers never run on it. */
static int fy_shm_srv_spawn(fy_shm *be)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&be->srv.thread, NULL, fy_shm_srv_main, be);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return err;
}

ferry_status fy_shm_srv_start(fy_shm *be)
{
    be->srv.stop[0] = be->srv.stop[1] = -1;
    ferry_status rc = fy_shm_srv_bind(be);
    if (rc == FERRY_OK && fy_shm_srv_spawn(be) != 0)
        rc = FERRY_ERR_NO_RESOURCES;
    if (rc != FERRY_OK) {
        fy_shm_log(be, FERRY_LOG_ERROR, "fd server @%s: %s", be->srv.name, strerror(errno));
        fy_shm_srv_stop(be);
        return rc;
    }
    be->srv.running = true;
    return FERRY_OK;
}

void fy_shm_srv_stop(fy_shm *be)
{
    if (be->srv.running) {
        ssize_t ignored = write(be->srv.stop[1], "x", 1);
        (void)ignored;
        pthread_join(be->srv.thread, NULL);
        be->srv.running = false;
    }
    for (int i = 0; i < 2; i++)
        if (be->srv.stop[i] >= 0)
            close(be->srv.stop[i]);
    if (be->srv.fd >= 0)
        close(be->srv.fd);
    be->srv.fd = be->srv.stop[0] = be->srv.stop[1] = -1;
}

/* ---- the client ---- */

/* The answer and the fd it carries (-1 when none). */
static bool fy_shm_recv_fd(int sock, uint8_t *buf, size_t cap, size_t *n, int *fd)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {buf, cap};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = ctl.buf,
                        .msg_controllen = sizeof(ctl.buf)};
    ssize_t got = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    *fd = -1;
    if (got < 0)
        return false;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof(int)))
            memcpy(fd, CMSG_DATA(c), sizeof(int));
    *n = (size_t)got;
    return !(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC));
}

static ferry_status fy_shm_ask(fy_shm *be, int sock, fy_shm_remote *r, uint64_t token, int *fd,
                               uint64_t *offset, char *err, size_t cap)
{
    uint8_t ask[FY_SHM_ASK_LEN], ans[FY_SHM_ANS_LEN];
    size_t n = 0;
    uint64_t len;
    ferry_status st;
    fyp_chan_addr a;
    char srv[FYP_SOCK_MAX + 4];
    snprintf(srv, sizeof(srv), "%s/fd", r->id.sock);
    fyp_chan_addr_of(srv, &a);
    fy_shm_timeouts(sock, be->map_timeout_ms);
    fy_shm_ask_encode(token, ask);
    if (connect(sock, (struct sockaddr *)&a.sa, a.len) != 0 || !fy_shm_peer_trusted(sock) ||
        send(sock, ask, sizeof(ask), MSG_NOSIGNAL) != (ssize_t)sizeof(ask) ||
        !fy_shm_recv_fd(sock, ans, sizeof(ans), &n, fd)) {
        bool slow = errno == EAGAIN || errno == EWOULDBLOCK;
        snprintf(err, cap, "%s's fd server: %s", r->name,
                 slow ? "no answer within map_timeout_ms (frozen?)" : strerror(errno));
        return slow                    ? FERRY_ERR_TIMEOUT
               : errno == ECONNREFUSED ? FERRY_ERR_REMOTE_DISCONNECT
                                       : FERRY_ERR_BACKEND;
    }
    if (!fy_shm_ans_decode(ans, n, &st, offset, &len) || st != FERRY_OK || *fd < 0) {
        snprintf(err, cap, "%s refused the memfd of a region (deregistered?)", r->name);
        return FERRY_ERR_NOT_FOUND;
    }
    return FERRY_OK;
}

ferry_status fy_shm_fetch_fd(fy_shm *be, fy_shm_remote *r, uint64_t token, int *fd,
                             uint64_t *offset, char *err, size_t cap)
{
    *fd = -1;
    int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (sock < 0) {
        snprintf(err, cap, "socket: %s", strerror(errno));
        return FERRY_ERR_NO_RESOURCES;
    }
    ferry_status rc = fy_shm_ask(be, sock, r, token, fd, offset, err, cap);
    if (rc != FERRY_OK && *fd >= 0) {
        close(*fd);
        *fd = -1;
    }
    close(sock);
    return rc;
}
