/* SPDX-License-Identifier: Apache-2.0 */
/* The side-channel listener: one thread, one poll() over the stop pipe, the
 * listening socket and up to FY_SC_MAX_CONNS connections.
 *
 * Every connection is non-blocking and has a deadline: sc_timeout_ms from
 * its accept or from its last reply. A connection that has not finished a
 * request by then is closed, idle or mid-frame, so slow or stalled peers
 * cannot hold slots for long. A peer that breaks the protocol loses its
 * connection (one log line) and nothing else: the listener and the other
 * connections go on. Requests are served inline on this thread; the agent
 * functions they call take the agent's lock themselves. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "metadata/sidechannel.h"

/* Bytes read from one connection per wake-up, so one fast sender of a big
 * frame does not starve the others. */
#define FY_SC_READ_BUDGET (1u << 20)
/* After accept() fails for lack of fds, stop accepting this long rather
 * than spin on a listening socket that stays readable. */
#define FY_SC_ACCEPT_PAUSE_MS 100u

typedef struct fy_sc_conn {
    int fd; /* -1: free slot */
    char peer[64];
    uint64_t deadline_ns;
    fy_sc_rx rx;
    bool writing;                    /* a reply is being sent */
    uint8_t head[FY_SC_HDR_LEN + 4]; /* reply header and status */
    void *body;                      /* reply body (a blob), ferry_free'd */
    size_t body_len, sent;
} fy_sc_conn;

struct fy_sc_listener {
    ferry_agent *agent;
    int fd, stop_fd;
    uint16_t port;
    pthread_t tid;
    uint64_t accept_resume_ns; /* accepting paused until then */
    fy_sc_conn conns[FY_SC_MAX_CONNS];
};

static uint64_t fy_sc_timeout_ns(const fy_sc_listener *l)
{
    return (uint64_t)l->agent->cfg.sc_timeout_ms * 1000000u;
}

/* ---- connections ---- */

/* Drops the reply (sent or not). */
static void fy_conn_reply_free(fy_sc_conn *c)
{
    ferry_free(c->body);
    c->body = NULL;
    c->body_len = c->sent = 0;
    c->writing = false;
}

static void fy_conn_close(fy_sc_conn *c)
{
    close(c->fd);
    c->fd = -1;
    fy_sc_rx_reset(&c->rx);
    fy_conn_reply_free(c);
}

/* Closes a connection that broke the protocol: one line says why. */
static void fy_conn_reject(fy_sc_conn *c, const char *why)
{
    FY_SC_WARN("%s: %s: connection closed", c->peer, why);
    fy_conn_close(c);
}

static void fy_conn_ready_for_next(fy_sc_listener *l, fy_sc_conn *c)
{
    fy_conn_reply_free(c);
    fy_sc_rx_reset(&c->rx);
    c->deadline_ns = fy_now_ns() + fy_sc_timeout_ns(l);
}

/* The unsent rest of the reply as up to two iovecs. */
static int fy_conn_reply_iov(fy_sc_conn *c, struct iovec iov[2])
{
    int n = 0;
    if (c->sent < sizeof(c->head))
        iov[n++] = (struct iovec){c->head + c->sent, sizeof(c->head) - c->sent};
    size_t body_off = c->sent > sizeof(c->head) ? c->sent - sizeof(c->head) : 0;
    if (c->body_len > body_off)
        iov[n++] = (struct iovec){(uint8_t *)c->body + body_off, c->body_len - body_off};
    return n;
}

static void fy_conn_write(fy_sc_listener *l, fy_sc_conn *c)
{
    struct iovec iov[2];
    int n;
    while ((n = fy_conn_reply_iov(c, iov)) > 0) {
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t sent = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* poll() says when to go on */
        if (sent < 0) {
            /* The peer left without its answer: its loss, not an attack. */
            FY_SC_DBG("%s: reply not sent: %s", c->peer, strerror(errno));
            fy_conn_close(c);
            return;
        }
        c->sent += (size_t)sent;
    }
    fy_conn_ready_for_next(l, c);
}

static void fy_conn_reply(fy_sc_listener *l, fy_sc_conn *c, ferry_status st)
{
    if (st != FERRY_OK || c->body_len > UINT32_MAX - 4) {
        fy_conn_reply_free(c);
        st = st != FERRY_OK ? st : FERRY_ERR_NO_RESOURCES;
    }
    fy_sc_reply_put(c->head, (int32_t)st, (uint32_t)c->body_len);
    c->sent = 0;
    c->writing = true;
    fy_conn_write(l, c);
}

/* ---- requests ---- */

static fy_sc_err fy_serve_load(fy_sc_listener *l, fy_sc_conn *c, ferry_status *st)
{
    fy_sc_view label, blob;
    fy_sc_err err = fy_sc_load_get(&c->rx.hdr, c->rx.payload, &label, &blob);
    if (err != FY_SC_OK)
        return err;
    char name[FERRY_NAME_MAX + 1] = "?";
    *st = blob.len ? ferry_md_load(l->agent, blob.ptr, blob.len, name, sizeof(name))
                   : FERRY_ERR_BAD_METADATA;
    if (*st == FERRY_OK)
        FY_SC_DBG("%s: loaded '%.*s' metadata of %s", c->peer, (int)label.len,
                  (const char *)label.ptr, name);
    else
        FY_SC_WARN("%s: could not load its '%.*s' metadata: %s", c->peer, (int)label.len,
                   (const char *)label.ptr, ferry_strerror(*st));
    return FY_SC_OK;
}

/* Only this agent's own full metadata is served: a listener keeps no blobs
 * of the agents it has loaded, and no labelled partial blobs. */
static fy_sc_err fy_serve_fetch(fy_sc_listener *l, fy_sc_conn *c, ferry_status *st)
{
    fy_sc_view name, label;
    fy_sc_err err = fy_sc_fetch_get(&c->rx.hdr, c->rx.payload, &name, &label);
    if (err != FY_SC_OK)
        return err;
    bool full = !label.len || fy_sc_view_eq(label, FY_SC_DEFAULT_LABEL);
    if (!fy_sc_view_eq(name, l->agent->name) || !full) {
        FY_SC_DBG("%s: asked for '%.*s' metadata of %.*s: not served here", c->peer, (int)label.len,
                  (const char *)label.ptr, (int)name.len, (const char *)name.ptr);
        *st = FERRY_ERR_NOT_FOUND;
        return FY_SC_OK;
    }
    *st = ferry_md_get_local(l->agent, &c->body, &c->body_len);
    return FY_SC_OK;
}

/* An agent may only make a listener forget itself: the uid it sends must be
 * that of the instance whose metadata was loaded. The check and the
 * invalidation are two lock sections; a new instance loaded in between is
 * forgotten too, and simply sends its metadata again. */
static fy_sc_err fy_serve_invalidate(fy_sc_listener *l, fy_sc_conn *c, ferry_status *st)
{
    uint64_t uid, loaded;
    fy_sc_view view;
    fy_sc_err err = fy_sc_inval_get(&c->rx.hdr, c->rx.payload, &uid, &view);
    if (err != FY_SC_OK)
        return err;
    char name[FY_SC_STR_MAX + 1];
    fy_sc_view_cstr(view, name);
    *st = fy_sc_remote_uid(l->agent, name, &loaded);
    if (*st == FERRY_OK && loaded != uid) {
        FY_SC_WARN("%s: refused to invalidate %s: not the instance that was loaded", c->peer, name);
        *st = FERRY_ERR_NOT_ALLOWED;
    }
    if (*st == FERRY_OK)
        *st = ferry_md_invalidate(l->agent, name);
    return FY_SC_OK;
}

static void fy_conn_dispatch(fy_sc_listener *l, fy_sc_conn *c)
{
    ferry_status st = FERRY_ERR_UNKNOWN;
    fy_sc_err err;
    switch (c->rx.hdr.type) {
    case FY_SC_LOAD:
        err = fy_serve_load(l, c, &st);
        break;
    case FY_SC_FETCH:
        err = fy_serve_fetch(l, c, &st);
        break;
    case FY_SC_INVALIDATE:
        err = fy_serve_invalidate(l, c, &st);
        break;
    default: /* a REPLY is not a request */
        err = FY_SC_E_TYPE;
    }
    if (err != FY_SC_OK)
        fy_conn_reject(c, fy_sc_err_str(err));
    else
        fy_conn_reply(l, c, st);
}

/* ---- reading ---- */

static void fy_conn_eof(fy_sc_conn *c)
{
    if (fy_sc_rx_idle(&c->rx))
        fy_conn_close(c); /* a peer hanging up between requests: normal */
    else
        fy_conn_reject(c, "closed in the middle of a frame (truncated)");
}

/* One recv() into the frame being read. Returns false when there is
 * nothing more to do now: would block, frame served, or connection closed. */
static bool fy_conn_read_once(fy_sc_listener *l, fy_sc_conn *c, size_t *budget)
{
    uint8_t *buf;
    size_t want;
    bool done = false;
    fy_sc_err err = fy_sc_rx_space(&c->rx, &buf, &want);
    ssize_t got = err == FY_SC_OK ? recv(c->fd, buf, want < *budget ? want : *budget, 0) : -1;
    if (got > 0)
        err = fy_sc_rx_advance(&c->rx, (size_t)got, &done);
    if (err != FY_SC_OK)
        fy_conn_reject(c, fy_sc_err_str(err));
    else if (got == 0)
        fy_conn_eof(c);
    else if (got < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
        fy_conn_reject(c, strerror(errno));
    else if (done)
        fy_conn_dispatch(l, c);
    else if (got > 0 || errno == EINTR) {
        *budget -= got > 0 ? (size_t)got : 0;
        return true;
    }
    return false;
}

static void fy_conn_read(fy_sc_listener *l, fy_sc_conn *c)
{
    size_t budget = FY_SC_READ_BUDGET;
    while (budget && fy_conn_read_once(l, c, &budget))
        ;
}

static void fy_conn_event(fy_sc_listener *l, fy_sc_conn *c, short revents)
{
    if (c->writing)
        fy_conn_write(l, c);
    else if (revents & (POLLIN | POLLHUP | POLLERR))
        fy_conn_read(l, c);
}

static void fy_conn_expire(fy_sc_conn *c, uint64_t now)
{
    if (c->fd < 0 || now < c->deadline_ns)
        return;
    if (fy_sc_rx_idle(&c->rx) && !c->writing) {
        FY_SC_DBG("%s: idle past the timeout: connection closed", c->peer);
        fy_conn_close(c);
    } else {
        fy_conn_reject(c, c->writing ? "did not take its reply within the timeout"
                                     : "stalled in the middle of a frame past the timeout");
    }
}

/* ---- accepting ---- */

static fy_sc_conn *fy_listener_free_slot(fy_sc_listener *l)
{
    for (size_t i = 0; i < FY_SC_MAX_CONNS; i++)
        if (l->conns[i].fd < 0)
            return &l->conns[i];
    return NULL;
}

static void fy_listener_adopt(fy_sc_listener *l, int fd, const struct sockaddr_storage *ss,
                              socklen_t len)
{
    fy_sc_conn *c = fy_listener_free_slot(l);
    char peer[64];
    fy_sc_addr_str(ss, len, peer, sizeof(peer));
    if (!c) {
        FY_SC_WARN("%s: refused: %u connections already open", peer, FY_SC_MAX_CONNS);
        close(fd);
        return;
    }
    fy_sc_sock_opts(fd);
    c->fd = fd;
    memcpy(c->peer, peer, sizeof(peer));
    c->deadline_ns = fy_now_ns() + fy_sc_timeout_ns(l);
    fy_sc_rx_init(&c->rx, l->agent->cfg.sc_max_frame);
}

/* Accept errors: transient ones are retried on the next wake-up; running
 * out of fds pauses accepting for a moment (pending peers wait in the
 * backlog and meet their own timeouts). */
static bool fy_listener_accept_error(fy_sc_listener *l, int err)
{
    if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ECONNABORTED || err == EPROTO)
        return false;
    FY_SC_WARN("agent %s: accept failed: %s; pausing accepts for %u ms", l->agent->name,
               strerror(err), FY_SC_ACCEPT_PAUSE_MS);
    l->accept_resume_ns = fy_now_ns() + FY_SC_ACCEPT_PAUSE_MS * 1000000ull;
    return false;
}

static void fy_listener_accept(fy_sc_listener *l)
{
    /* Bounded, so a connection flood cannot keep this loop from serving. */
    for (unsigned i = 0; i < 2 * FY_SC_MAX_CONNS; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && !fy_listener_accept_error(l, errno))
            return;
        if (fd >= 0)
            fy_listener_adopt(l, fd, &ss, len);
    }
}

/* ---- the loop ---- */

static bool fy_listener_accepting(const fy_sc_listener *l, uint64_t now)
{
    return now >= l->accept_resume_ns;
}

/* Slot 0: stop pipe, 1: listening socket (-1 while paused), 2..: conns. */
static void fy_listener_fill(const fy_sc_listener *l, struct pollfd *p, uint64_t now)
{
    p[0] = (struct pollfd){l->stop_fd, POLLIN, 0};
    p[1] = (struct pollfd){fy_listener_accepting(l, now) ? l->fd : -1, POLLIN, 0};
    for (size_t i = 0; i < FY_SC_MAX_CONNS; i++) {
        const fy_sc_conn *c = &l->conns[i];
        p[2 + i] = (struct pollfd){c->fd, c->writing ? POLLOUT : POLLIN, 0};
    }
}

/* Sleep until the nearest deadline (or the end of an accept pause). */
static int fy_listener_timeout_ms(const fy_sc_listener *l, uint64_t now)
{
    uint64_t next = fy_listener_accepting(l, now) ? UINT64_MAX : l->accept_resume_ns;
    for (size_t i = 0; i < FY_SC_MAX_CONNS; i++)
        if (l->conns[i].fd >= 0 && l->conns[i].deadline_ns < next)
            next = l->conns[i].deadline_ns;
    return next == UINT64_MAX ? -1 : fy_sc_ms_left(next);
}

static void fy_listener_close_all(fy_sc_listener *l)
{
    for (size_t i = 0; i < FY_SC_MAX_CONNS; i++)
        if (l->conns[i].fd >= 0)
            fy_conn_close(&l->conns[i]);
}

static void *fy_listener_main(void *arg)
{
    fy_sc_listener *l = arg;
    struct pollfd p[2 + FY_SC_MAX_CONNS];
    for (;;) {
        uint64_t now = fy_now_ns();
        fy_listener_fill(l, p, now);
        int n = poll(p, 2 + FY_SC_MAX_CONNS, fy_listener_timeout_ms(l, now));
        if (n < 0 && errno != EINTR) {
            FY_SC_WARN("agent %s: poll failed: %s", l->agent->name, strerror(errno));
            usleep(10000); /* ENOMEM: let memory come back rather than spin */
        }
        if (n > 0 && p[0].revents)
            break;
        if (n > 0 && p[1].revents)
            fy_listener_accept(l);
        for (size_t i = 0; n > 0 && i < FY_SC_MAX_CONNS; i++)
            if (p[2 + i].revents && l->conns[i].fd >= 0)
                fy_conn_event(l, &l->conns[i], p[2 + i].revents);
        now = fy_now_ns();
        for (size_t i = 0; i < FY_SC_MAX_CONNS; i++)
            fy_conn_expire(&l->conns[i], now);
    }
    fy_listener_close_all(l);
    return NULL;
}

/* ---- start / stop ---- */

static int fy_listen_on(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -1;
    int one = 1;
    /* A restarted agent can take its port back while old connections of
     * its previous instance linger in TIME_WAIT. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0)
        return fd;
    int err = errno;
    close(fd);
    errno = err;
    return -1;
}

static ferry_status fy_listener_bind(fy_sc_listener *l)
{
    const char *host = l->agent->listen_host;
    char service[8];
    snprintf(service, sizeof(service), "%u", (unsigned)l->agent->cfg.listen_port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *list;
    int gai = getaddrinfo(host, service, &hints, &list);
    if (gai) {
        FY_SC_ERR("agent %s: listen address %s: %s", l->agent->name, host, gai_strerror(gai));
        return FERRY_ERR_IO;
    }
    int err = 0;
    for (const struct addrinfo *ai = list; ai && l->fd < 0; ai = ai->ai_next)
        if ((l->fd = fy_listen_on(ai)) < 0)
            err = errno;
    freeaddrinfo(list);
    if (l->fd < 0) {
        FY_SC_ERR("agent %s: cannot listen on %s:%s: %s", l->agent->name, host, service,
                  strerror(err));
        return FERRY_ERR_IO;
    }
    return FERRY_OK;
}

/* The port actually bound (listen_port 0 picks one). */
static ferry_status fy_listener_read_port(fy_sc_listener *l)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(l->fd, (struct sockaddr *)&ss, &len) < 0)
        return FERRY_ERR_IO;
    if (ss.ss_family == AF_INET)
        l->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    else if (ss.ss_family == AF_INET6)
        l->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return l->port ? FERRY_OK : FERRY_ERR_IO;
}

static fy_sc_listener *fy_listener_new(ferry_agent *agent, int stop_fd)
{
    fy_sc_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->agent = agent;
    l->fd = -1;
    l->stop_fd = stop_fd;
    for (size_t i = 0; i < FY_SC_MAX_CONNS; i++)
        l->conns[i].fd = -1;
    return l;
}

ferry_status fy_sc_listener_start(ferry_agent *agent, int stop_fd, fy_sc_listener **out)
{
    fy_sc_listener *l = fy_listener_new(agent, stop_fd);
    if (!l)
        return FERRY_ERR_NO_MEMORY;
    ferry_status rc = fy_listener_bind(l);
    if (rc != FERRY_OK)
        goto free_listener;
    rc = fy_listener_read_port(l);
    if (rc != FERRY_OK)
        goto close_socket;
    if (pthread_create(&l->tid, NULL, fy_listener_main, l) != 0) {
        FY_SC_ERR("agent %s: cannot start the listener thread", agent->name);
        rc = FERRY_ERR_NO_RESOURCES;
        goto close_socket;
    }
    FY_SC_DBG("agent %s: listening on %s port %u", agent->name, agent->listen_host,
              (unsigned)l->port);
    *out = l;
    return FERRY_OK;
close_socket:
    close(l->fd);
free_listener:
    free(l);
    return rc;
}

uint16_t fy_sc_listener_port(const fy_sc_listener *l)
{
    return l->port;
}

void fy_sc_listener_join(fy_sc_listener *l)
{
    pthread_join(l->tid, NULL);
    close(l->fd);
    free(l);
}
