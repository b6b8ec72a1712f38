/* SPDX-License-Identifier: Apache-2.0 */
/* Client sockets of the side channel, every call bounded.
 *
 * Sockets are non-blocking and every wait is a poll() on the socket and the
 * agent's stop pipe with the time left until one deadline, so a request
 * never outlives sc_timeout_ms and fy_sc_stop interrupts it at once.
 * Refused connection attempts are retried until the deadline: a peer that
 * has not started listening yet is the common case right after start-up,
 * not an error. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sidechannel/sidechannel.h"
#include "common/clock.h"
#include "common/log.h"
#include "core/agent.h"
#include "ferry/ferry.h"

void fy_sc_io_init(fy_sc_io *io, ferry_agent *agent, const char *peer, uint64_t deadline_ns)
{
    io->fd = -1;
    io->stop_fd = agent->sc->stop_rd;
    io->deadline_ns =
        deadline_ns ? deadline_ns : fy_now_ns() + (uint64_t)agent->cfg.sc_timeout_ms * 1000000u;
    io->peer = peer;
    io->lost = false;
}

int fy_sc_ms_left(uint64_t deadline_ns)
{
    uint64_t now = fy_now_ns();
    if (now >= deadline_ns)
        return 0;
    uint64_t ms = (deadline_ns - now + 999999u) / 1000000u;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

void fy_sc_sock_opts(int fd)
{
    int one = 1;
    /* Request and reply are each written in one call: Nagle would only
     * add delay. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
#ifdef SO_NOSIGPIPE
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
#endif
}

void fy_sc_addr_str(const void *sa, unsigned salen, char *out, size_t cap)
{
    char host[NI_MAXHOST], port[NI_MAXSERV];
    if (getnameinfo(sa, salen, host, sizeof(host), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV)) {
        snprintf(out, cap, "(unknown peer)");
        return;
    }
    snprintf(out, cap, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
}

/* Waits for events on fd (or only for the deadline when fd < 0). */
static ferry_status fy_sc_wait_fd(const fy_sc_io *io, int fd, short events, int cap_ms)
{
    for (;;) {
        struct pollfd p[2] = {{io->stop_fd, POLLIN, 0}, {fd, events, 0}};
        int ms = fy_sc_ms_left(io->deadline_ns);
        if (cap_ms >= 0 && cap_ms < ms)
            ms = cap_ms;
        int n = poll(p, 2, ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return FERRY_ERR_IO;
        if (p[0].revents)
            return FERRY_ERR_CANCELED;
        if (p[1].revents)
            return FERRY_OK;
        return fy_sc_ms_left(io->deadline_ns) ? (fd < 0 ? FERRY_OK : FERRY_IN_PROGRESS)
                                              : FERRY_ERR_TIMEOUT;
    }
}

/* Waits for events on fd until the deadline (or stop). */
static ferry_status fy_sc_wait_on(const fy_sc_io *io, int fd, short events)
{
    ferry_status rc;
    /* A poll that returns early (IN_PROGRESS) just waits again. */
    while ((rc = fy_sc_wait_fd(io, fd, events, -1)) == FERRY_IN_PROGRESS)
        ;
    return rc;
}

ferry_status fy_sc_wait(const fy_sc_io *io, short events)
{
    return fy_sc_wait_on(io, io->fd, events);
}

ferry_status fy_sc_pause(const fy_sc_io *io, unsigned ms)
{
    return fy_sc_wait_fd(io, -1, 0, (int)ms);
}

/* A refusal means "nobody listens yet": worth another try. A reset is
 * not: the peer was there and hung up. */
static bool fy_sc_retryable(int err)
{
    return err == ECONNREFUSED || err == ETIMEDOUT || err == EAGAIN;
}

/* The outcome of a non-blocking connect once the socket is writable. */
static int fy_sc_connect_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return errno;
    return err;
}

/* One attempt on one address. On failure *err says why (0: the deadline or
 * stop ended it, see the status). */
static ferry_status fy_sc_connect_one(fy_sc_io *io, const struct addrinfo *ai, int *err)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        *err = errno;
        return FERRY_ERR_IO;
    }
    ferry_status rc = FERRY_OK;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        *err = errno;
        rc = *err == EINPROGRESS ? fy_sc_wait_on(io, fd, POLLOUT) : FERRY_ERR_IO;
        if (rc == FERRY_OK && (*err = fy_sc_connect_error(fd)) != 0)
            rc = FERRY_ERR_IO;
    }
    /* Reset during the handshake: a listener shedding load or restarting. */
    io->lost |= rc == FERRY_ERR_IO && (*err == ECONNRESET || *err == ECONNABORTED);
    if (rc != FERRY_OK)
        goto close_fd;
    fy_sc_sock_opts(fd);
    io->fd = fd;
    return FERRY_OK;
close_fd:
    close(fd);
    return rc;
}

static ferry_status fy_sc_resolve(const fy_sc_io *io, const char *host, uint16_t port,
                                  struct addrinfo **list)
{
    char service[8];
    snprintf(service, sizeof(service), "%u", (unsigned)port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG};
    int gai = getaddrinfo(host, service, &hints, list);
    if (gai == EAI_ADDRFAMILY || gai == EAI_NONAME || gai == EAI_FAIL) {
        /* AI_ADDRCONFIG hides loopback-only families on hosts without a
         * configured address; ask again without it. */
        hints.ai_flags = AI_NUMERICSERV;
        gai = getaddrinfo(host, service, &hints, list);
    }
    if (gai) {
        FY_SC_ERR("%s: cannot resolve: %s", io->peer, gai_strerror(gai));
        return FERRY_ERR_IO;
    }
    return FERRY_OK;
}

/* One round over every address. *retry: some address refused. */
static ferry_status fy_sc_connect_round(fy_sc_io *io, const struct addrinfo *list, bool *retry,
                                        int *last_err)
{
    *retry = false;
    for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        int err = 0;
        ferry_status rc = fy_sc_connect_one(io, ai, &err);
        if (rc != FERRY_ERR_IO)
            return rc; /* connected, or the deadline / stop ended it */
        *retry |= fy_sc_retryable(err);
        *last_err = err;
    }
    return FERRY_ERR_IO;
}

ferry_status fy_sc_connect(fy_sc_io *io, const char *host, uint16_t port)
{
    struct addrinfo *list;
    ferry_status rc = fy_sc_resolve(io, host, port, &list);
    if (rc != FERRY_OK)
        return rc;
    bool retry = false;
    int err = 0;
    while ((rc = fy_sc_connect_round(io, list, &retry, &err)) == FERRY_ERR_IO && retry) {
        rc = fy_sc_wait_fd(io, -1, 0, FY_SC_RETRY_MS);
        if (rc != FERRY_OK)
            break;
    }
    freeaddrinfo(list);
    if (rc == FERRY_ERR_IO)
        FY_SC_ERR("%s: cannot connect: %s", io->peer, strerror(err));
    else if (rc == FERRY_ERR_TIMEOUT)
        FY_SC_ERR("%s: no listener within the timeout (last error: %s)", io->peer,
                  err ? strerror(err) : "none");
    return rc;
}

/* Drops n sent bytes from the front of iov. */
static void fy_sc_iov_consume(struct iovec **iov, int *n, size_t sent)
{
    while (*n && sent >= (*iov)->iov_len) {
        sent -= (*iov)->iov_len;
        (*iov)++;
        (*n)--;
    }
    if (*n) {
        (*iov)->iov_base = (uint8_t *)(*iov)->iov_base + sent;
        (*iov)->iov_len -= sent;
    }
}

ferry_status fy_sc_send_iov(fy_sc_io *io, struct iovec *iov, int n)
{
    fy_sc_iov_consume(&iov, &n, 0); /* skip empty parts */
    while (n) {
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t sent = sendmsg(io->fd, &msg, MSG_NOSIGNAL);
        if (sent >= 0) {
            fy_sc_iov_consume(&iov, &n, (size_t)sent);
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            FY_SC_ERR("%s: send failed: %s", io->peer, strerror(errno));
            io->lost = true;
            return FERRY_ERR_IO;
        }
        ferry_status rc = fy_sc_wait(io, POLLOUT);
        if (rc != FERRY_OK)
            return rc;
    }
    return FERRY_OK;
}

/* Receives what is there into rx. *done: a whole frame. */
static ferry_status fy_sc_recv_some(fy_sc_io *io, fy_sc_rx *rx, bool *done)
{
    uint8_t *buf;
    size_t want;
    fy_sc_err err = fy_sc_rx_space(rx, &buf, &want);
    if (err != FY_SC_OK) {
        FY_SC_ERR("%s: no memory for a %u-byte reply", io->peer, (unsigned)rx->hdr.len);
        return FERRY_ERR_NO_MEMORY;
    }
    ssize_t got = recv(io->fd, buf, want, 0);
    if (got > 0)
        err = fy_sc_rx_advance(rx, (size_t)got, done);
    if (err != FY_SC_OK) {
        FY_SC_ERR("%s: bad reply: %s", io->peer, fy_sc_err_str(err));
        return FERRY_ERR_IO;
    }
    if (got > 0 || (got < 0 && errno == EINTR))
        return FERRY_OK;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return fy_sc_wait(io, POLLIN);
    FY_SC_ERR("%s: connection closed before the reply was complete%s%s", io->peer, got ? ": " : "",
              got ? strerror(errno) : "");
    io->lost = true;
    return FERRY_ERR_IO;
}

ferry_status fy_sc_recv_frame(fy_sc_io *io, fy_sc_rx *rx)
{
    bool done = false;
    ferry_status rc = FERRY_OK;
    while (!done && rc == FERRY_OK)
        rc = fy_sc_recv_some(io, rx, &done);
    return rc;
}
