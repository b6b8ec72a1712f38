/* SPDX-License-Identifier: Apache-2.0 */
/* UCX backend: notifications to peers of this host through the host-local
 * channel (plugins/common/fyp_chan.h, its shared-memory rings), not UCX.
 *
 * With peer error handling on, UCX carries active messages between two
 * processes of one host over TCP (ucp_am_lat -e: about 10 us on the
 * development VM, against 1-2 us for a put by CMA), and a notification is
 * one. So the backend binds a channel of its own, names it in its
 * connection info with who it is (fyp_ident.h), and sends a notification to
 * a peer of this host through it once the data is remotely complete, as
 * the AM path would (ucx_order.c decides when). Where the channel cannot
 * take it (the peer is elsewhere or has none, its ring is full, it is
 * gone), the active message goes as before: notifications are not ordered
 * across transfers, so the two paths may interleave.
 *
 * The receiving side reads its rings at every progress call (memory) and
 * its socket (ring offers and acks, doorbells, datagrams) at most every
 * FY_UCX_SOCK_NS, so the UCX progress loop gains no system call. */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>

#include "ucx_internal.h"

#define FY_UCX_IDENT_MAGIC "FYUL"
#define FY_UCX_SOCK_NS     20000u

void fy_ucx_local_open(fy_ucx *u)
{
    if (fyp_chan_open(&u->chan, "ferry-ucx", u->host->agent_uid) != FERRY_OK) {
        UCX_LOG(u, FERRY_LOG_DEBUG, "no host-local channel: notifications go through UCX only");
        return;
    }
    fyp_ident_self(&u->ident, u->host->agent_uid, u->chan.name);
}

void fy_ucx_local_close(fy_ucx *u)
{
    fyp_chan_close(&u->chan);
}

ferry_status fy_ucx_local_wake_add(fy_ucx *u)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = FY_UCX_MAX_WORKERS};
    if (u->chan.fd < 0 || epoll_ctl(u->epfd, EPOLL_CTL_ADD, u->chan.fd, &ev) == 0)
        return FERRY_OK;
    UCX_LOG(u, FERRY_LOG_ERROR, "epoll_ctl (notification socket): %s", strerror(errno));
    return FERRY_ERR_BACKEND;
}

size_t fy_ucx_local_info(const fy_ucx *u, uint8_t *out, size_t cap)
{
    return u->chan.fd < 0 ? 0 : fyp_ident_encode(FY_UCX_IDENT_MAGIC, &u->ident, out, cap);
}

bool fy_ucx_local_peer(fy_ucx_remote *r, const uint8_t *b, size_t len)
{
    fyp_ident peer;
    if (fyp_ident_decode(FY_UCX_IDENT_MAGIC, b, len, &peer) != FERRY_OK)
        return false;
    fy_ucx *u = r->u;
    r->chan = u->chan.fd >= 0 && !fyp_ident_unreachable(&u->ident, &peer);
    if (r->chan)
        fyp_chan_addr_of(peer.sock, &r->chan_addr);
    return true;
}

static bool fy_ucx_local_alive(void *arg)
{
    return ((fy_ucx_remote *)arg)->failed == UCS_OK;
}

bool fy_ucx_local_notify(fy_ucx_remote *r, const void *msg, size_t len)
{
    if (!r->chan || r->failed != UCS_OK)
        return false;
    fy_ucx *u = r->u;
    fyp_chan_peer p = {.name = r->name,
                       .addr = &r->chan_addr,
                       .self = r->uid == u->host->agent_uid,
                       .alive = fy_ucx_local_alive,
                       .arg = r};
    bool gone;
    ferry_status rc = fyp_chan_notify(&u->chan, u->host, &p, msg, len, false, &gone);
    if (gone)
        r->chan = false; /* the active message path tells what happened */
    return rc == FERRY_OK;
}

size_t fy_ucx_local_drain(fy_ucx *u)
{
    if (u->chan.fd < 0)
        return 0;
    uint64_t now = fy_ucx_now_ns();
    bool sock_due = now - u->chan_read_ns >= FY_UCX_SOCK_NS;
    if (sock_due)
        u->chan_read_ns = now;
    fyp_chan_mark(&u->chan);
    return fyp_chan_drain_marked(&u->chan, u->host, sock_due ? FYP_SOCK_READ : FYP_SOCK_UNREAD);
}

/* Before a notification that came as an active message: what the channel
 * holds was sent before it (a message that goes through the channel is in
 * the socket or the ring when its send returns; the active message of a
 * later transfer leaves after), so it is delivered first. A socket holds
 * at most net.unix.max_dgram_qlen datagrams (512 by default): two drains
 * of 256 and one that finds it empty. */
void fy_ucx_local_before_am(fy_ucx *u)
{
    if (u->chan.fd < 0)
        return;
    for (int i = 0; i < 4 && fyp_chan_drain(&u->chan, u->host) > 0; i++)
        ;
    u->chan_read_ns = fy_ucx_now_ns();
}

bool fy_ucx_local_arm(fy_ucx *u)
{
    if (u->chan.fd < 0)
        return true;
    fyp_chan_drain(&u->chan, u->host); /* the socket too: epoll must not see old datagrams */
    return fyp_chan_arm(&u->chan);
}
