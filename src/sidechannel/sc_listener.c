/* SPDX-License-Identifier: Apache-2.0 */
/* The side-channel listener: one thread, one poll() over the stop pipe, the
 * listening socket and up to FY_SC_MAX_CONNS connections.
 *
 * Every connection is non-blocking and has a deadline counted from its
 * accept or from its last reply: FERRY_SC_IDLE_MS (1 s) to send a whole
 * header, sc_timeout_ms to finish the request once its header is in. So
 * idle or stalled peers cannot hold slots for long. Slots are never
 * refused to a newcomer: a client address over its share
 * (FERRY_SC_MAX_CONN_PER_CLIENT), or a full table, makes room by closing
 * the least recently active connection (of that address, else of all).
 * Payload buffers of all connections together stay under
 * FERRY_SC_MAX_BUFFERED: a buffer that would grow past it closes the
 * connection holding the most. A peer that breaks the protocol loses its
 * connection (a rate-limited log line) and nothing else. With a key, every
 * request must be signed, recent and new (see auth.h), and every reply is
 * signed. Requests are served inline on this thread; the agent functions
 * they call take the agent's lock themselves. */
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

#include "sidechannel/sidechannel.h"
#include "common/clock.h"
#include "common/log.h"
#include "core/agent.h"
#include "core/md.h"
#include "core/remote.h"
#include "metadata/auth.h"
#include "ferry/ferry.h"

/* Bytes read from one connection per wake-up, so one fast sender of a big
 * frame does not starve the others. */
#define FY_SC_READ_BUDGET (1u << 20)
/* After accept() fails for lack of fds, stop accepting this long rather
 * than spin on a listening socket that stays readable. */
#define FY_SC_ACCEPT_PAUSE_MS 100u

typedef struct fy_sc_conn {
    int fd;             /* -1: free slot */
    char peer[64];      /* "host:port" */
    char host[64];      /* the address alone: the per-client limit's key */
    uint64_t start_ns;  /* accept or end of the last reply: deadlines count from here */
    uint64_t active_ns; /* last bytes moved: the least recent makes room first */
    fy_sc_rx rx;
    bool writing;                    /* a reply is being sent */
    bool close_after;                /* close once the reply is out (refused request) */
    bool sign;                       /* the request was authenticated: sign the reply */
    uint8_t bind[FY_SC_NONCE_LEN];   /* the request's nonce, which the reply's MAC covers */
    uint8_t head[FY_SC_HDR_LEN + 4]; /* reply header and status */
    void *body;                      /* reply body (a blob), ferry_free'd */
    size_t body_len, sent;
    uint8_t tail[FY_SC_TAIL_MAX + FY_SC_MAC_LEN]; /* reply's auth trailer and MAC */
    size_t tail_len;
} fy_sc_conn;

struct fy_sc_listener {
    ferry_agent *agent;
    int fd, stop_fd;
    uint16_t port;
    pthread_t tid;
    uint64_t accept_resume_ns; /* accepting paused until then */
    size_t buffered;           /* payload buffer bytes of all connections */
    size_t max_buffered;       /* FERRY_SC_MAX_BUFFERED */
    unsigned per_client;       /* FERRY_SC_MAX_CONN_PER_CLIENT */
    uint32_t idle_ms;          /* FERRY_SC_IDLE_MS */
    fy_ratelog drop_log;       /* protocol errors, evictions, budget */
    fy_replay *replay;         /* with a key only */
    fy_sc_conn conns[FY_SC_MAX_CONNS];
};

static uint64_t fy_ms_ns(uint64_t ms)
{
    return ms * 1000000u;
}

/* A connection that has not sent a whole header gets the short idle
 * limit; one in the middle of a request or reply the full timeout. */
static uint64_t fy_conn_deadline(const fy_sc_listener *l, const fy_sc_conn *c)
{
    uint32_t ms = l->agent->cfg.sc_timeout_ms;
    if (!c->writing && !c->rx.in_payload && l->idle_ms < ms)
        ms = l->idle_ms;
    return c->start_ns + fy_ms_ns(ms);
}

/* One warning line, at most one a second (peers can trigger these at will). */
static void fy_listener_warn(fy_sc_listener *l, const char *peer, const char *why)
{
    uint64_t more;
    if (fy_ratelog_pass(&l->drop_log, &more))
        FY_SC_WARN("agent %s: %s: %s: connection closed (%llu more since the last line)",
                   l->agent->name, peer, why, (unsigned long long)more);
}

/* ---- connections ---- */

/* Drops the reply (sent or not). */
static void fy_conn_reply_free(fy_sc_conn *c)
{
    ferry_free(c->body);
    c->body = NULL;
    c->body_len = c->sent = c->tail_len = 0;
    c->writing = false;
}

static void fy_conn_rx_reset(fy_sc_listener *l, fy_sc_conn *c)
{
    l->buffered -= c->rx.cap;
    fy_sc_rx_reset(&c->rx);
}

static void fy_conn_close(fy_sc_listener *l, fy_sc_conn *c)
{
    close(c->fd);
    c->fd = -1;
    fy_conn_rx_reset(l, c);
    fy_conn_reply_free(c);
}

/* Closes a connection that broke the protocol or a limit. */
static void fy_conn_reject(fy_sc_listener *l, fy_sc_conn *c, const char *why)
{
    fy_listener_warn(l, c->peer, why);
    fy_conn_close(l, c);
}

static void fy_conn_ready_for_next(fy_sc_listener *l, fy_sc_conn *c)
{
    if (c->close_after) {
        fy_conn_close(l, c);
        return;
    }
    fy_conn_reply_free(c);
    fy_conn_rx_reset(l, c);
    c->start_ns = fy_now_ns();
}

/* The unsent rest of the reply (head, body, trailer) as up to 3 iovecs. */
static int fy_conn_reply_iov(fy_sc_conn *c, struct iovec iov[3])
{
    const struct iovec parts[3] = {
        {c->head, sizeof(c->head)}, {c->body, c->body_len}, {c->tail, c->tail_len}};
    size_t skip = c->sent;
    int n = 0;
    for (int i = 0; i < 3; i++) {
        if (skip >= parts[i].iov_len) {
            skip -= parts[i].iov_len;
            continue;
        }
        iov[n++] = (struct iovec){(uint8_t *)parts[i].iov_base + skip, parts[i].iov_len - skip};
        skip = 0;
    }
    return n;
}

static void fy_conn_write(fy_sc_listener *l, fy_sc_conn *c)
{
    struct iovec iov[3];
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
            fy_conn_close(l, c);
            return;
        }
        c->sent += (size_t)sent;
        c->active_ns = fy_now_ns();
    }
    fy_conn_ready_for_next(l, c);
}

/* Signs the reply whose head is written: trailer, then the MAC of the
 * request's nonce, head, body and trailer. */
static ferry_status fy_conn_sign(fy_sc_listener *l, fy_sc_conn *c, size_t tail_len)
{
    struct iovec parts[4] = {{c->bind, sizeof(c->bind)},
                             {c->head, sizeof(c->head)},
                             {c->body, c->body_len},
                             {c->tail, tail_len}};
    fy_sc_hdr_set_auth(c->head);
    c->tail_len = tail_len + FY_SC_MAC_LEN;
    return fy_auth_mac(&l->agent->auth, parts, 4, c->tail + tail_len);
}

static void fy_conn_reply(fy_sc_listener *l, fy_sc_conn *c, ferry_status st)
{
    uint8_t nonce[FY_SC_NONCE_LEN];
    size_t tail_len = 0;
    if (st != FERRY_OK || c->body_len > UINT32_MAX - 4 - sizeof(c->tail)) {
        fy_conn_reply_free(c);
        st = st != FERRY_OK ? st : FERRY_ERR_NO_RESOURCES;
    }
    if (c->sign) {
        fy_auth_nonce(nonce);
        tail_len = fy_sc_tail_put(c->tail, l->agent->name, nonce, fy_wall_us());
    }
    size_t extra = c->sign ? tail_len + FY_SC_MAC_LEN : 0;
    fy_sc_reply_put(c->head, (int32_t)st, (uint32_t)(c->body_len + extra));
    if (c->sign && fy_conn_sign(l, c, tail_len) != FERRY_OK) {
        fy_conn_reject(l, c, "could not sign the reply");
        return;
    }
    c->sent = 0;
    c->writing = true;
    fy_conn_write(l, c);
}

/* ---- requests ---- */

static bool fy_view_same(fy_sc_view a, fy_sc_view b)
{
    return a.len == b.len && (!a.len || !memcmp(a.ptr, b.ptr, a.len));
}

static fy_sc_err fy_serve_load(fy_sc_listener *l, fy_sc_conn *c, const fy_sc_hdr *h,
                               ferry_status *st)
{
    fy_sc_view label, blob;
    fy_sc_err err = fy_sc_load_get(h, c->rx.payload, &label, &blob);
    if (err != FY_SC_OK)
        return err;
    char name[FERRY_NAME_MAX + 1] = "?";
    /* From the network the agent's own name is refused, whatever the
     * instance: see fy_md_load_peer. */
    *st = blob.len ? fy_md_load_peer(l->agent, blob.ptr, blob.len, name, sizeof(name))
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
static fy_sc_err fy_serve_fetch(fy_sc_listener *l, fy_sc_conn *c, const fy_sc_hdr *h,
                                ferry_status *st)
{
    fy_sc_view name, label;
    fy_sc_err err = fy_sc_fetch_get(h, c->rx.payload, &name, &label);
    if (err != FY_SC_OK)
        return err;
    bool full = !label.len || fy_sc_view_eq(label, FY_SC_DEFAULT_LABEL);
    if (!fy_sc_view_eq(name, l->agent->name) || !full) {
        FY_SC_DBG("%s: asked for '%.*s' metadata of %.*s: not served here", c->peer, (int)label.len,
                  (const char *)label.ptr, (int)name.len, (const char *)name.ptr);
        *st = FERRY_ERR_NOT_FOUND;
        return FY_SC_OK;
    }
    *st = fy_md_get_local(l->agent, &c->body, &c->body_len);
    return FY_SC_OK;
}

/* Who may not be invalidated by this request: the agent itself (it only
 * ever forgets others), and, on a signed frame, anyone but the signer. */
static const char *fy_inval_forbidden(fy_sc_listener *l, fy_sc_view name, const fy_sc_auth *a)
{
    if (fy_sc_view_eq(name, l->agent->name))
        return "it names this agent itself";
    if (a && !fy_view_same(name, a->sender))
        return "it was signed by another agent";
    return NULL;
}

/* An agent may only make a listener forget itself: the uid it sends must be
 * that of the instance whose metadata was loaded. The check and the
 * invalidation are two lock sections; a new instance loaded in between is
 * forgotten too, and simply sends its metadata again. */
static fy_sc_err fy_serve_invalidate(fy_sc_listener *l, fy_sc_conn *c, const fy_sc_hdr *h,
                                     const fy_sc_auth *a, ferry_status *st)
{
    uint64_t uid, loaded;
    fy_sc_view view;
    fy_sc_err err = fy_sc_inval_get(h, c->rx.payload, &uid, &view);
    if (err != FY_SC_OK)
        return err;
    char name[FY_SC_STR_MAX + 1];
    fy_sc_view_cstr(view, name);
    const char *why = fy_inval_forbidden(l, view, a);
    *st = why ? FERRY_ERR_NOT_ALLOWED : fy_remote_uid(l->agent, name, &loaded);
    if (*st == FERRY_OK && loaded != uid) {
        why = "not the instance that was loaded";
        *st = FERRY_ERR_NOT_ALLOWED;
    }
    if (why)
        FY_SC_WARN("%s: refused to invalidate %s: %s", c->peer, name, why);
    if (*st == FERRY_OK)
        *st = fy_md_invalidate(l->agent, name);
    return FY_SC_OK;
}

/* With a key: signed, with this key, recent, and never seen before. A
 * refused request gets an unsigned AUTH reply, then the connection closes. */
static bool fy_conn_authentic(fy_sc_listener *l, fy_sc_conn *c, const fy_sc_auth *a)
{
    const char *why = NULL;
    if (!a)
        why = "unsigned frame (the peer has no key)";
    else if (!fy_sc_rx_signed_ok(&l->agent->auth, NULL, &c->rx))
        why = "wrong MAC (another key, or the frame was altered)";
    else
        why = fy_replay_check(l->replay, a->nonce, a->ts_us, fy_wall_us());
    if (!why) {
        memcpy(c->bind, a->nonce, sizeof(c->bind));
        c->sign = true;
        return true;
    }
    char what[96];
    snprintf(what, sizeof(what), "a frame from %s", c->peer);
    fy_auth_refused(&l->agent->auth, l->agent->name, what, why);
    c->close_after = true;
    fy_conn_reply(l, c, FERRY_ERR_AUTH);
    return false;
}

static fy_sc_err fy_conn_serve(fy_sc_listener *l, fy_sc_conn *c, const fy_sc_hdr *h,
                               const fy_sc_auth *a, ferry_status *st)
{
    switch (h->type) {
    case FY_SC_LOAD:
        return fy_serve_load(l, c, h, st);
    case FY_SC_FETCH:
        return fy_serve_fetch(l, c, h, st);
    default:
        return fy_serve_invalidate(l, c, h, a, st);
    }
}

static void fy_conn_dispatch(fy_sc_listener *l, fy_sc_conn *c)
{
    fy_sc_hdr h = c->rx.hdr;
    fy_sc_auth auth;
    bool has_auth = h.flags & FY_SC_FLAG_AUTH;
    ferry_status st = FERRY_ERR_UNKNOWN;
    /* a REPLY is not a request */
    fy_sc_err err = h.type == FY_SC_REPLY ? FY_SC_E_TYPE : FY_SC_OK;
    if (err == FY_SC_OK && has_auth)
        err = fy_sc_tail_get(&c->rx.hdr, c->rx.payload, &h, &auth);
    c->sign = false;
    if (err == FY_SC_OK && l->agent->auth.key_len &&
        !fy_conn_authentic(l, c, has_auth ? &auth : NULL))
        return;
    if (err == FY_SC_OK)
        err = fy_conn_serve(l, c, &h, has_auth ? &auth : NULL, &st);
    if (err != FY_SC_OK)
        fy_conn_reject(l, c, fy_sc_err_str(err));
    else
        fy_conn_reply(l, c, st);
}

/* ---- reading ---- */

static void fy_conn_eof(fy_sc_listener *l, fy_sc_conn *c)
{
    if (fy_sc_rx_idle(&c->rx))
        fy_conn_close(l, c); /* a peer hanging up between requests: normal */
    else
        fy_conn_reject(l, c, "closed in the middle of a frame (truncated)");
}

/* The connection holding the largest payload buffer. */
static fy_sc_conn *fy_listener_greediest(fy_sc_listener *l)
{
    fy_sc_conn *g = NULL;
    for (size_t i = 0; i < FY_SC_MAX_CONNS; i++)
        if (l->conns[i].fd >= 0 && (!g || l->conns[i].rx.cap > g->rx.cap))
            g = &l->conns[i];
    return g;
}

/* Makes room for c's buffer to grow by `grow` bytes within the budget, by
 * closing the greediest connection; false when that is c itself (closed).
 * While realloc copies, the old buffer and the new one both exist: the
 * budget must hold them both. */
static bool fy_listener_budget(fy_sc_listener *l, fy_sc_conn *c, size_t grow)
{
    while (l->buffered + c->rx.cap + grow > l->max_buffered) {
        fy_sc_conn *g = fy_listener_greediest(l);
        if (g == c || g->rx.cap <= c->rx.cap) {
            fy_conn_reject(l, c, "over the listener's buffer budget (FERRY_SC_MAX_BUFFERED)");
            return false;
        }
        fy_conn_reject(l, g, "holds the most of the listener's buffer budget");
    }
    l->buffered += grow;
    return true;
}

/* One recv() into the frame being read. Returns false when there is
 * nothing more to do now: would block, frame served, or connection closed. */
static bool fy_conn_read_once(fy_sc_listener *l, fy_sc_conn *c, size_t *budget)
{
    uint8_t *buf;
    size_t want, grow = fy_sc_rx_growth(&c->rx);
    bool done = false;
    if (grow && !fy_listener_budget(l, c, grow))
        return false;
    fy_sc_err err = fy_sc_rx_space(&c->rx, &buf, &want);
    if (err != FY_SC_OK)
        l->buffered -= grow; /* the buffer did not grow after all */
    ssize_t got = err == FY_SC_OK ? recv(c->fd, buf, want < *budget ? want : *budget, 0) : -1;
    if (got > 0) {
        c->active_ns = fy_now_ns();
        err = fy_sc_rx_advance(&c->rx, (size_t)got, &done);
    }
    if (err != FY_SC_OK)
        fy_conn_reject(l, c, fy_sc_err_str(err));
    else if (got == 0)
        fy_conn_eof(l, c);
    else if (got < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
        fy_conn_reject(l, c, strerror(errno));
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
    while (budget && c->fd >= 0 && fy_conn_read_once(l, c, &budget))
        ;
}

static void fy_conn_event(fy_sc_listener *l, fy_sc_conn *c, short revents)
{
    if (c->writing)
        fy_conn_write(l, c);
    else if (revents & (POLLIN | POLLHUP | POLLERR))
        fy_conn_read(l, c);
}

static void fy_conn_expire(fy_sc_listener *l, fy_sc_conn *c, uint64_t now)
{
    if (c->fd < 0 || now < fy_conn_deadline(l, c))
        return;
    if (fy_sc_rx_idle(&c->rx) && !c->writing) {
        FY_SC_DBG("%s: idle past the limit: connection closed", c->peer);
        fy_conn_close(l, c);
    } else {
        fy_conn_reject(l, c,
                       c->writing ? "did not take its reply within the timeout"
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

/* The least recently active connection, of one address (NULL: of all),
 * and how many that address has. */
static fy_sc_conn *fy_listener_oldest(fy_sc_listener *l, const char *host, unsigned *count)
{
    fy_sc_conn *old = NULL;
    *count = 0;
    for (size_t i = 0; i < FY_SC_MAX_CONNS; i++) {
        fy_sc_conn *c = &l->conns[i];
        if (c->fd < 0 || (host && strcmp(c->host, host)))
            continue;
        (*count)++;
        if (!old || c->active_ns < old->active_ns)
            old = c;
    }
    return old;
}

/* A slot for a newcomer from host: never refused, but the least recently
 * active connection of that address (over its share) or of all (table
 * full) is closed to make room. */
static fy_sc_conn *fy_listener_make_room(fy_sc_listener *l, const char *host)
{
    unsigned n;
    fy_sc_conn *old = fy_listener_oldest(l, host, &n);
    if (n >= l->per_client)
        fy_conn_reject(l, old,
                       "its address has too many connections (FERRY_SC_MAX_CONN_PER_CLIENT)");
    fy_sc_conn *c = fy_listener_free_slot(l);
    if (!c) {
        c = fy_listener_oldest(l, NULL, &n);
        fy_conn_reject(l, c, "least recently active with every slot taken");
    }
    return c;
}

static void fy_listener_adopt(fy_sc_listener *l, int fd, const struct sockaddr_storage *ss,
                              socklen_t len)
{
    char peer[64];
    fy_sc_addr_str(ss, len, peer, sizeof(peer));
    char host[64];
    snprintf(host, sizeof(host), "%s", peer);
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0'; /* "host:port" -> "host"; "[v6]:port" -> "[v6]" */
    fy_sc_conn *c = fy_listener_make_room(l, host);
    fy_sc_sock_opts(fd);
    c->fd = fd;
    memcpy(c->peer, peer, sizeof(peer));
    memcpy(c->host, host, sizeof(host));
    c->start_ns = c->active_ns = fy_now_ns();
    c->close_after = c->sign = false;
    uint32_t max = l->agent->cfg.sc_max_frame;
    /* A frame that cannot fit the budget is refused on its header. */
    fy_sc_rx_init(&c->rx, max < l->max_buffered ? max : (uint32_t)l->max_buffered);
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
        if (l->conns[i].fd >= 0 && fy_conn_deadline(l, &l->conns[i]) < next)
            next = fy_conn_deadline(l, &l->conns[i]);
    return next == UINT64_MAX ? -1 : fy_sc_ms_left(next);
}

static void fy_listener_close_all(fy_sc_listener *l)
{
    for (size_t i = 0; i < FY_SC_MAX_CONNS; i++)
        if (l->conns[i].fd >= 0)
            fy_conn_close(l, &l->conns[i]);
}

static void *fy_listener_main(void *arg)
{
    fy_sc_listener *l = arg;
    struct pollfd p[2 + FY_SC_MAX_CONNS];
    fy_log_thread_agent(l->agent->name);
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
            fy_conn_expire(l, &l->conns[i], now);
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

/* A positive number from the environment, else the default. */
static uint64_t fy_env_num(const char *name, uint64_t def)
{
    const char *v = getenv(name);
    char *end;
    unsigned long long n = v && *v ? strtoull(v, &end, 10) : 0;
    if (!n || *end) {
        if (v && *v)
            FY_SC_WARN("%s=%s is not a positive number: using %llu", name, v,
                       (unsigned long long)def);
        return def;
    }
    return n;
}

static fy_sc_listener *fy_listener_new(ferry_agent *agent, int stop_fd)
{
    fy_sc_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    if (agent->auth.key_len && !(l->replay = calloc(1, sizeof(*l->replay)))) {
        free(l);
        return NULL;
    }
    l->agent = agent;
    l->fd = -1;
    l->stop_fd = stop_fd;
    l->per_client = (unsigned)fy_env_num("FERRY_SC_MAX_CONN_PER_CLIENT", FY_SC_PER_CLIENT);
    l->max_buffered = (size_t)fy_env_num("FERRY_SC_MAX_BUFFERED", FY_SC_MAX_BUFFERED);
    l->idle_ms = (uint32_t)fy_env_num("FERRY_SC_IDLE_MS", FY_SC_IDLE_MS);
    atomic_init(&l->drop_log.next_ns, 0);
    atomic_init(&l->drop_log.suppressed, 0);
    for (size_t i = 0; i < FY_SC_MAX_CONNS; i++)
        l->conns[i].fd = -1;
    return l;
}

static void fy_listener_free(fy_sc_listener *l)
{
    free(l->replay);
    free(l);
}

/* Said once per listener: an open side channel is worth knowing about. */
static void fy_listener_warn_open(const ferry_agent *agent, uint16_t port)
{
    if (agent->auth.key_len)
        return;
    FY_SC_WARN("agent %s: the side channel on %s port %u is unauthenticated: anyone who can "
               "reach it can load, fetch and invalidate metadata; set the same FERRY_AUTH_KEY "
               "(or ferry_agent_config.auth_key, 16 to 256 bytes) on every agent to require it",
               agent->name, agent->listen_host, (unsigned)port);
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
    fy_listener_warn_open(agent, l->port);
    *out = l;
    return FERRY_OK;
close_socket:
    close(l->fd);
free_listener:
    fy_listener_free(l);
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
    fy_listener_free(l);
}
