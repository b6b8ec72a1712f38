/* SPDX-License-Identifier: Apache-2.0 */
/* Plugin support: the channel's shared-memory rings (see fyp_chan_ring.h). */
#include "fyp_chan_ring.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/le.h"

#define fyp_ring_log(h, level, ...) (h)->log((h)->agent_ctx, (level), __VA_ARGS__)
#define FYP_CTL_FIXED               16u

/* A ring to a peer. */
struct fyp_chan_tx {
    fyp_chan_addr to;
    fyp_ring ring;
    bool acked;
};

/* A ring from a peer. */
typedef struct fyp_chan_rx {
    fyp_chan_addr from; /* the sender's socket, as the kernel names it */
    char name[FYP_NAME_MAX + 1];
    pid_t pid;
    fyp_ring ring;
    uint64_t upto;  /* the tail read before the socket was drained */
    uint64_t start; /* the position at attach */
    bool synced;    /* the socket was emptied after a mark saw a record: the datagrams
                     * the sender sent before it switched to the ring are all taken */
} fyp_chan_rx;

struct fyp_chan_rings {
    fyp_chan_tx tx[FYP_CHAN_RINGS];
    fyp_chan_rx rx[FYP_CHAN_RINGS];
    size_t ntx, nrx;
    uint64_t next_id;
};

/* ---- control datagrams ---- */

size_t fyp_ctl_encode(uint8_t *out, size_t cap, int kind, uint64_t id, const char *name)
{
    size_t name_len = name ? strlen(name) : 0;
    if (name_len > FYP_NAME_MAX || cap < FYP_CTL_FIXED + name_len)
        return 0;
    memcpy(out, "FYCN", 4);
    out[4] = 2;
    out[5] = (uint8_t)kind;
    fy_le_put(out + 6, name_len, 2);
    fy_le_put(out + 8, id, 8);
    if (name_len)
        memcpy(out + FYP_CTL_FIXED, name, name_len);
    return FYP_CTL_FIXED + name_len;
}

bool fyp_ctl_is(const uint8_t *buf, size_t len)
{
    return len >= 5 && !memcmp(buf, "FYCN", 4) && buf[4] == 2;
}

ferry_status fyp_ctl_decode(const uint8_t *buf, size_t len, int *kind, uint64_t *id,
                            char name[FYP_NAME_MAX + 1])
{
    if (len < FYP_CTL_FIXED || !fyp_ctl_is(buf, len))
        return FERRY_ERR_BAD_METADATA;
    size_t name_len = (size_t)fy_le_get(buf + 6, 2);
    *kind = buf[5];
    bool named = *kind == FYP_CTL_OFFER;
    if (*kind < FYP_CTL_OFFER || *kind > FYP_CTL_DOORBELL || len != FYP_CTL_FIXED + name_len ||
        name_len > FYP_NAME_MAX || named != (name_len > 0) ||
        memchr(buf + FYP_CTL_FIXED, '\0', name_len))
        return FERRY_ERR_BAD_METADATA;
    *id = fy_le_get(buf + 8, 8);
    memcpy(name, buf + FYP_CTL_FIXED, name_len);
    name[name_len] = '\0';
    return FERRY_OK;
}

/* One control datagram to `to`, with fd attached when not -1: 0 or -errno. */
static int fyp_ctl_send(fyp_chan *c, const fyp_chan_addr *to, int kind, uint64_t id,
                        const char *name, int fd)
{
    size_t n = fyp_ctl_encode(c->sbuf, FYP_DGRAM_MAX, kind, id, name);
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {c->sbuf, n};
    struct msghdr mh = {
        .msg_name = (void *)&to->sa, .msg_namelen = to->len, .msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        *cm = (struct cmsghdr){
            .cmsg_len = CMSG_LEN(sizeof(int)), .cmsg_level = SOL_SOCKET, .cmsg_type = SCM_RIGHTS};
        memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    }
    if (!n)
        return -EINVAL;
    return sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)n ? 0 : -errno;
}

/* ---- the tables ---- */

static struct fyp_chan_rings *fyp_rings_of(fyp_chan *c)
{
    if (!c->rings && (c->rings = calloc(1, sizeof(*c->rings))))
        c->rings->next_id = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
    return c->rings;
}

static bool fyp_addr_eq(const fyp_chan_addr *a, const fyp_chan_addr *b)
{
    return a->len == b->len && !memcmp(&a->sa, &b->sa, a->len);
}

static fyp_chan_tx *fyp_tx_find(struct fyp_chan_rings *rs, const fyp_chan_addr *to)
{
    for (size_t i = 0; i < rs->ntx; i++)
        if (fyp_addr_eq(&rs->tx[i].to, to))
            return &rs->tx[i];
    return NULL;
}

static void fyp_tx_drop(struct fyp_chan_rings *rs, fyp_chan_tx *t)
{
    fyp_ring_close(&t->ring);
    *t = rs->tx[--rs->ntx];
}

static void fyp_rx_drop(struct fyp_chan_rings *rs, fyp_chan_rx *r)
{
    fyp_ring_close(&r->ring);
    *r = rs->rx[--rs->nrx];
}

void fyp_chan_rings_free(fyp_chan *c)
{
    struct fyp_chan_rings *rs = c->rings;
    if (!rs)
        return;
    while (rs->ntx)
        fyp_tx_drop(rs, &rs->tx[0]);
    while (rs->nrx)
        fyp_rx_drop(rs, &rs->rx[0]);
    free(rs);
    c->rings = NULL;
}

/* ---- the sender ---- */

/* A new ring to `to`, offered; failures leave the peer on datagrams. */
static void fyp_tx_offer(fyp_chan *c, const ferry_plugin_host *h, struct fyp_chan_rings *rs,
                         const fyp_chan_addr *to)
{
    fyp_chan_tx *t = &rs->tx[rs->ntx];
    int fd;
    if (fyp_ring_create(&t->ring, rs->next_id++, &fd) != FERRY_OK)
        return;
    int e = fyp_ctl_send(c, to, FYP_CTL_OFFER, t->ring.id, h->agent_name, fd);
    close(fd);
    if (e != 0) {
        fyp_ring_close(&t->ring);
        return;
    }
    t->to = *to;
    t->acked = false;
    rs->ntx++;
}

fyp_chan_tx *fyp_chan_ring_to(fyp_chan *c, const ferry_plugin_host *h, const fyp_chan_peer *p)
{
    struct fyp_chan_rings *rs = fyp_rings_of(c);
    if (!rs)
        return NULL;
    fyp_chan_tx *t = fyp_tx_find(rs, p->addr);
    if (t)
        return t->acked ? t : NULL;
    if (rs->ntx < FYP_CHAN_RINGS)
        fyp_tx_offer(c, h, rs, p->addr);
    return NULL;
}

int fyp_chan_ring_send(fyp_chan *c, const fyp_chan_peer *p, fyp_chan_tx *t, const void *msg,
                       size_t len)
{
    int e = p->alive(p->arg) ? fyp_ring_put(&t->ring, msg, len) : -ECONNREFUSED;
    if (e == 1) {
        e = fyp_ctl_send(c, p->addr, FYP_CTL_DOORBELL, t->ring.id, NULL, -1);
        if (e == -EAGAIN || e == -ENOBUFS)
            e = 0; /* its queue is full: the receiver is being woken anyway */
    }
    if (e < 0 && e != -EAGAIN)
        fyp_tx_drop(c->rings, t); /* the peer is gone */
    return e;
}

static void fyp_tx_acked(struct fyp_chan_rings *rs, const fyp_chan_addr *from, uint64_t id)
{
    fyp_chan_tx *t = fyp_tx_find(rs, from);
    if (t && t->ring.id == id)
        t->acked = true;
}

/* ---- the receiver ---- */

/* Room for one more ring from a peer: the rings of processes that are gone
 * make way. */
static bool fyp_rx_room(struct fyp_chan_rings *rs)
{
    for (size_t i = rs->nrx; i-- > 0;)
        if (rs->nrx >= FYP_CHAN_RINGS && kill(rs->rx[i].pid, 0) != 0 && errno == ESRCH)
            fyp_rx_drop(rs, &rs->rx[i]);
    return rs->nrx < FYP_CHAN_RINGS;
}

static fyp_chan_rx *fyp_rx_find(struct fyp_chan_rings *rs, const fyp_chan_addr *from)
{
    for (size_t i = 0; i < rs->nrx; i++)
        if (fyp_addr_eq(&rs->rx[i].from, from))
            return &rs->rx[i];
    return NULL;
}

typedef struct fyp_rx_deliver {
    const ferry_plugin_host *h;
    const char *from;
} fyp_rx_deliver;

static void fyp_rx_deliver_one(void *arg, const void *msg, size_t len)
{
    fyp_rx_deliver *d = arg;
    d->h->notif_deliver(d->h->agent_ctx, d->from, msg, len);
}

/* The records up to upto; false when the ring is malformed (then dropped). */
static bool fyp_rx_take(fyp_chan *c, const ferry_plugin_host *h, fyp_chan_rx *r, uint64_t upto,
                        size_t *got)
{
    fyp_rx_deliver d = {h, r->name};
    long n = fyp_ring_take(&r->ring, upto, c->buf, FYP_RING_CAP, fyp_rx_deliver_one, &d);
    if (n >= 0) {
        *got += (size_t)n;
        return true;
    }
    fyp_ring_log(h, FERRY_LOG_WARN, "dropped the notification ring from %s (malformed)", r->name);
    fyp_rx_drop(c->rings, r);
    return false;
}

/* A sender that offers again (it dropped its ring: it took us for gone)
 * replaces its ring, whose last records are delivered first. */
static void fyp_rx_replaced(fyp_chan *c, const ferry_plugin_host *h, const fyp_chan_addr *from)
{
    size_t got = 0;
    fyp_chan_rx *old = fyp_rx_find(c->rings, from);
    if (old && fyp_rx_take(c, h, old, fyp_ring_tail(&old->ring), &got))
        fyp_rx_drop(c->rings, old);
}

static void fyp_rx_offered(fyp_chan *c, const ferry_plugin_host *h, const fyp_chan_addr *from,
                           pid_t pid, uint64_t id, const char *name, int fd)
{
    struct fyp_chan_rings *rs = fyp_rings_of(c);
    if (rs)
        fyp_rx_replaced(c, h, from);
    if (!rs || !fyp_rx_room(rs)) {
        fyp_ring_log(h, FERRY_LOG_WARN, "no room for a notification ring from %s", name);
        return;
    }
    fyp_chan_rx *r = &rs->rx[rs->nrx];
    if (fyp_ring_attach(&r->ring, fd, id) != FERRY_OK) {
        fyp_ring_log(h, FERRY_LOG_WARN, "refused a malformed notification ring from %s", name);
        return;
    }
    r->from = *from;
    r->pid = pid;
    r->upto = r->start = r->ring.pos;
    r->synced = false;
    strcpy(r->name, name);
    rs->nrx++;
    fyp_ctl_send(c, from, FYP_CTL_ACK, id, NULL, -1); /* unanswered: it keeps to datagrams */
}

void fyp_chan_ring_control(fyp_chan *c, const ferry_plugin_host *h, const fyp_chan_addr *from,
                           pid_t pid, size_t n, int fd)
{
    int kind;
    uint64_t id;
    char name[FYP_NAME_MAX + 1];
    if (fyp_ctl_decode(c->buf, n, &kind, &id, name) != FERRY_OK ||
        (kind == FYP_CTL_OFFER) != (fd >= 0)) {
        fyp_ring_log(h, FERRY_LOG_WARN, "dropped a malformed control datagram");
        return;
    }
    if (kind == FYP_CTL_OFFER)
        fyp_rx_offered(c, h, from, pid, id, name, fd);
    else if (kind == FYP_CTL_ACK && c->rings)
        fyp_tx_acked(c->rings, from, id);
    /* A doorbell only wakes us: the drain that follows reads the rings. */
}

void fyp_chan_rings_mark(fyp_chan *c)
{
    struct fyp_chan_rings *rs = c->rings;
    for (size_t i = 0; rs && i < rs->nrx; i++) {
        fyp_ring_wake(&rs->rx[i].ring);
        rs->rx[i].upto = fyp_ring_tail(&rs->rx[i].ring);
    }
}

size_t fyp_chan_rings_take(fyp_chan *c, const ferry_plugin_host *h, bool sock_emptied)
{
    struct fyp_chan_rings *rs = c->rings;
    size_t got = 0;
    for (size_t i = rs ? rs->nrx : 0; i-- > 0;) {
        fyp_chan_rx *r = &rs->rx[i];
        if (sock_emptied && r->upto != r->start)
            r->synced = true;
        if (sock_emptied || r->synced)
            fyp_rx_take(c, h, r, r->upto, &got);
    }
    return got;
}

bool fyp_chan_rings_arm(fyp_chan *c)
{
    struct fyp_chan_rings *rs = c->rings;
    for (size_t i = 0; rs && i < rs->nrx; i++)
        if (!fyp_ring_arm(&rs->rx[i].ring))
            return false;
    return true;
}
