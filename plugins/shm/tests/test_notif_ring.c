/* SPDX-License-Identifier: Apache-2.0 */
/* The host-local channel's shared-memory rings (plugins/common/fyp_ring.h,
 * fyp_chan_ring.h), which SHM and CUDA notifications take between agents
 * of one host: records round trip in order across many wraps, a full ring
 * pushes back, hostile ring bytes end the ring without a read outside it,
 * only a sealed memfd of the right size is mapped, the doorbell is asked
 * for exactly when the receiver sleeps; and through two real channels: the
 * switch from datagrams to the ring keeps the order, the ring then carries
 * everything (the socket stays empty), a sleeping receiver is woken,
 * descriptors in stray datagrams are closed, and a dead peer is reported. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/le.h"
#include "fyp_chan.h"
#include "fyp_chan_ring.h"
#include "fyp_ring.h"
#include "harness.h"

/* ---- the ring alone ---- */

typedef struct got {
    size_t n;
    uint32_t last;
    bool in_order;
    size_t bytes;
} got;

static void collect(void *arg, const void *msg, size_t len)
{
    got *g = arg;
    uint32_t seq = 0;
    if (len >= 4)
        memcpy(&seq, msg, 4);
    if (g->n && seq != g->last + 1)
        g->in_order = false;
    g->last = seq;
    g->n++;
    g->bytes += len;
}

static void *ring_mem(void)
{
    void *m = aligned_alloc(64, FYP_RING_DATA + FYP_RING_CAP);
    memset(m, 0, FYP_RING_DATA + FYP_RING_CAP);
    return m;
}

static void test_ring_roundtrip_wraps(void)
{
    void *m = ring_mem();
    fyp_ring tx, rx;
    fyp_ring_over(&tx, m);
    fyp_ring_over(&rx, m);
    uint8_t *msg = calloc(1, FYP_RING_REC_MAX), *buf = malloc(FYP_RING_REC_MAX);
    got g = {.in_order = true};
    uint32_t seq = 0;
    /* Lengths from 0 to the maximum, several laps of the ring. */
    for (int round = 0; round < 4000; round++) {
        size_t len = round % 97 == 0 ? FYP_RING_REC_MAX : (size_t)(4 + (round * 7919) % 3000);
        memcpy(msg, &seq, 4);
        int e;
        while ((e = fyp_ring_put(&tx, msg, len)) == -EAGAIN)
            FY_REQUIRE(fyp_ring_take(&rx, fyp_ring_tail(&rx), buf, 1000, collect, &g) > 0);
        FY_CHECK_EQ(e, 0);
        seq++;
    }
    FY_CHECK(fyp_ring_take(&rx, fyp_ring_tail(&rx), buf, 1 << 20, collect, &g) >= 0);
    FY_CHECK_EQ(g.n, 4000);
    FY_CHECK(g.in_order);
    FY_CHECK(tx.pos > 4ull * FYP_RING_CAP); /* it wrapped */
    FY_CHECK_EQ(fyp_ring_put(&tx, msg, FYP_RING_REC_MAX + 1), -EINVAL);
    FY_CHECK_EQ(fyp_ring_put(&tx, NULL, 0), 0); /* an empty notification is one */
    free(msg);
    free(buf);
    free(m);
}

static void test_ring_full_pushes_back(void)
{
    void *m = ring_mem();
    fyp_ring tx, rx;
    fyp_ring_over(&tx, m);
    fyp_ring_over(&rx, m);
    uint8_t msg[1000] = {0}, *buf = malloc(FYP_RING_REC_MAX);
    int puts = 0;
    while (fyp_ring_put(&tx, msg, sizeof(msg)) == 0)
        puts++;
    FY_CHECK_EQ(puts, FYP_RING_CAP / 1008);
    got g = {.in_order = true};
    FY_CHECK_EQ(fyp_ring_take(&rx, fyp_ring_tail(&rx), buf, 1, collect, &g), 1);
    FY_CHECK_EQ(fyp_ring_put(&tx, msg, sizeof(msg)), 0); /* the room taken is free again */
    FY_CHECK_EQ(fyp_ring_put(&tx, msg, sizeof(msg)), -EAGAIN);
    /* A receiver that garbles head only stops its own sender. */
    atomic_store(&tx.sh->head, tx.pos + 8);
    FY_CHECK_EQ(fyp_ring_put(&tx, msg, 8), -EAGAIN);
    free(buf);
    free(m);
}

/* A ring whose published bytes are the sender's to choose: each bad form
 * ends the ring (-1) and delivers nothing past it. */
static long take_hostile(uint64_t tail, uint64_t rec_len, size_t *delivered)
{
    void *m = ring_mem();
    fyp_ring rx;
    fyp_ring_over(&rx, m);
    uint8_t *data = (uint8_t *)m + FYP_RING_DATA, *buf = malloc(FYP_RING_REC_MAX);
    fy_le_put(data, rec_len, 4);
    atomic_store(&rx.sh->tail, tail);
    got g = {.in_order = true};
    long n = fyp_ring_take(&rx, fyp_ring_tail(&rx), buf, 100, collect, &g);
    *delivered = g.n;
    free(buf);
    free(m);
    return n;
}

static void test_ring_hostile_bytes(void)
{
    size_t d;
    FY_CHECK_EQ(take_hostile(16, 8, &d), 1);                      /* the control: fine */
    FY_CHECK_EQ(take_hostile(FYP_RING_CAP + 8, 8, &d), -1);       /* more than the ring */
    FY_CHECK_EQ(take_hostile(12, 4, &d), -1);                     /* not a record boundary */
    FY_CHECK_EQ(take_hostile(16, 9, &d), -1);                     /* past the tail */
    FY_CHECK_EQ(take_hostile(16, FYP_RING_REC_MAX + 1, &d), -1);  /* over a message */
    FY_CHECK_EQ(take_hostile(FYP_RING_CAP, 0xffffffffu, &d), -1); /* huge */
    FY_CHECK_EQ(take_hostile((uint64_t)-8, 0, &d), -1);           /* tail behind head */
    FY_CHECK_EQ(d, 0);
}

static void test_ring_doorbell(void)
{
    void *m = ring_mem();
    fyp_ring tx, rx;
    fyp_ring_over(&tx, m);
    fyp_ring_over(&rx, m);
    uint8_t *buf = malloc(FYP_RING_REC_MAX);
    FY_CHECK(fyp_ring_arm(&rx));               /* empty: it may sleep */
    FY_CHECK_EQ(fyp_ring_put(&tx, "a", 1), 1); /* asleep: ring the doorbell */
    FY_CHECK_EQ(fyp_ring_put(&tx, "b", 1), 0); /* once */
    FY_CHECK(!fyp_ring_arm(&rx));              /* records wait: no sleep */
    got g = {.in_order = true};
    FY_CHECK_EQ(fyp_ring_take(&rx, fyp_ring_tail(&rx), buf, 10, collect, &g), 2);
    fyp_ring_wake(&rx);
    FY_CHECK_EQ(fyp_ring_put(&tx, "c", 1), 0); /* awake: no doorbell */
    free(buf);
    free(m);
}

static void test_ring_attach_checks(void)
{
    fyp_ring tx, rx;
    int fd;
    FY_REQUIRE(fyp_ring_create(&tx, 42, &fd) == FERRY_OK);
    FY_CHECK_EQ(fyp_ring_attach(&rx, fd, 43), FERRY_ERR_BAD_METADATA); /* not the one offered */
    FY_CHECK_EQ(fyp_ring_attach(&rx, fd, 42), FERRY_OK);
    FY_CHECK_EQ(fyp_ring_put(&tx, "hello", 5), 0);
    uint8_t *buf = malloc(FYP_RING_REC_MAX);
    got g = {.in_order = true};
    FY_CHECK_EQ(fyp_ring_take(&rx, fyp_ring_tail(&rx), buf, 10, collect, &g), 1);
    FY_CHECK_EQ(g.bytes, 5);
    fyp_ring_close(&rx);
    fyp_ring_close(&tx);
    close(fd);
    /* Unsealed (could shrink under us: SIGBUS), or the wrong size: refused. */
    int bad = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    FY_REQUIRE(bad >= 0 && ftruncate(bad, FYP_RING_DATA + FYP_RING_CAP) == 0);
    FY_CHECK_EQ(fyp_ring_attach(&rx, bad, 0), FERRY_ERR_BAD_METADATA);
    FY_REQUIRE(ftruncate(bad, 4096) == 0 && fcntl(bad, F_ADD_SEALS, F_SEAL_SHRINK) == 0);
    FY_CHECK_EQ(fyp_ring_attach(&rx, bad, 0), FERRY_ERR_BAD_METADATA);
    close(bad);
    free(buf);
}

static void test_ctl_codec(void)
{
    uint8_t b[512];
    char name[FYP_NAME_MAX + 1];
    int kind;
    uint64_t id;
    size_t n = fyp_ctl_encode(b, sizeof(b), FYP_CTL_OFFER, 7, "prefill-0");
    FY_CHECK_EQ(fyp_ctl_decode(b, n, &kind, &id, name), FERRY_OK);
    FY_CHECK(kind == FYP_CTL_OFFER && id == 7 && !strcmp(name, "prefill-0"));
    n = fyp_ctl_encode(b, sizeof(b), FYP_CTL_ACK, 9, NULL);
    FY_CHECK_EQ(fyp_ctl_decode(b, n, &kind, &id, name), FERRY_OK);
    FY_CHECK(kind == FYP_CTL_ACK && id == 9 && !name[0]);
    FY_CHECK_EQ(fyp_ctl_decode(b, n + 1, &kind, &id, name), FERRY_ERR_BAD_METADATA);
    FY_CHECK_EQ(fyp_ctl_decode(b, n - 1, &kind, &id, name), FERRY_ERR_BAD_METADATA);
    n = fyp_ctl_encode(b, sizeof(b), FYP_CTL_OFFER, 7, NULL); /* an offer names its sender */
    FY_CHECK_EQ(fyp_ctl_decode(b, n, &kind, &id, name), FERRY_ERR_BAD_METADATA);
    n = fyp_ctl_encode(b, sizeof(b), FYP_CTL_ACK, 7, "x"); /* others do not */
    FY_CHECK_EQ(fyp_ctl_decode(b, n, &kind, &id, name), FERRY_ERR_BAD_METADATA);
    n = fyp_ctl_encode(b, sizeof(b), 4, 7, NULL);
    FY_CHECK_EQ(fyp_ctl_decode(b, n, &kind, &id, name), FERRY_ERR_BAD_METADATA);
    n = fyp_ctl_encode(b, sizeof(b), FYP_CTL_OFFER, 7, "ab");
    b[17] = '\0';
    FY_CHECK_EQ(fyp_ctl_decode(b, n, &kind, &id, name), FERRY_ERR_BAD_METADATA);
    /* A notification datagram is not a control one, and the reverse. */
    n = fyp_dgram_encode(b, sizeof(b), "a", 1, "m", 1);
    FY_CHECK(!fyp_ctl_is(b, n));
    FY_CHECK_EQ(fyp_ctl_decode(b, n, &kind, &id, name), FERRY_ERR_BAD_METADATA);
}

/* ---- two channels in this process ---- */

typedef struct side {
    fyp_chan chan;
    ferry_plugin_host host;
    fyp_chan_addr addr;
    got got;
    char last_from[FYP_NAME_MAX + 1];
    int warnings;
} side;

static void side_deliver(void *ctx, const char *from, const void *msg, size_t len)
{
    side *s = ctx;
    snprintf(s->last_from, sizeof(s->last_from), "%s", from);
    collect(&s->got, msg, len);
}

static void side_log(void *ctx, ferry_log_level level, const char *fmt, ...)
{
    (void)fmt;
    if (level <= FERRY_LOG_WARN)
        ((side *)ctx)->warnings++;
}

static bool peer_alive = true;
static bool alive_cb(void *arg)
{
    (void)arg;
    return peer_alive;
}

static bool side_open(side *s, const char *name)
{
    memset(s, 0, sizeof(*s));
    s->got.in_order = true;
    s->host = (ferry_plugin_host){.size = sizeof(s->host),
                                  .agent_name = name,
                                  .agent_uid = 1,
                                  .agent_ctx = s,
                                  .notif_deliver = side_deliver,
                                  .log = side_log};
    if (fyp_chan_open(&s->chan, "ferry-test-ring", 1) != FERRY_OK)
        return false;
    fyp_chan_addr_of(s->chan.name, &s->addr);
    return true;
}

static ferry_status send_seq(side *from, side *to, uint32_t seq, bool wait)
{
    fyp_chan_peer p = {.name = "b", .addr = &to->addr, .alive = alive_cb};
    bool gone;
    return fyp_chan_notify(&from->chan, &from->host, &p, &seq, sizeof(seq), wait, &gone);
}

static bool socket_empty(int fd)
{
    char c;
    return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN;
}

static void test_chan_switch_keeps_order(void)
{
    side a, b;
    FY_REQUIRE(side_open(&a, "a") && side_open(&b, "b"));
    uint32_t seq = 0;
    /* The first goes as a datagram, with the ring's offer behind it; more
     * datagrams follow until the ack is read. */
    for (int i = 0; i < 3; i++)
        FY_CHECK_EQ(send_seq(&a, &b, seq++, true), FERRY_OK);
    fyp_chan_drain(&b.chan, &b.host); /* three notifications, the offer: acked */
    for (int i = 0; i < 3; i++)
        FY_CHECK_EQ(send_seq(&a, &b, seq++, true), FERRY_OK); /* datagrams still */
    fyp_chan_drain(&a.chan, &a.host);                         /* the ack */
    FY_CHECK(socket_empty(b.chan.fd) == false);
    for (int i = 0; i < 500; i++)
        FY_CHECK_EQ(send_seq(&a, &b, seq++, true), FERRY_OK); /* the ring */
    while (fyp_chan_drain(&b.chan, &b.host))
        ;
    FY_CHECK_EQ(b.got.n, seq);
    FY_CHECK(b.got.in_order);
    FY_CHECK(!strcmp(b.last_from, "a"));
    /* From now on the socket carries nothing. */
    for (int i = 0; i < 100; i++)
        FY_CHECK_EQ(send_seq(&a, &b, seq++, true), FERRY_OK);
    FY_CHECK(socket_empty(b.chan.fd));
    fyp_chan_drain(&b.chan, &b.host);
    FY_CHECK_EQ(b.got.n, seq);
    FY_CHECK(b.got.in_order);
    FY_CHECK_EQ(a.warnings + b.warnings, 0);
    fyp_chan_close(&a.chan);
    fyp_chan_close(&b.chan);
}

/* An owner that reads its socket only now and then (UCX: every 20 us)
 * drains the rings without it: a ring whose sender switched while its last
 * datagrams still wait in the socket must not be read before them. */
static void test_chan_unread_socket_keeps_order(void)
{
    side a, b;
    FY_REQUIRE(side_open(&a, "a") && side_open(&b, "b"));
    uint32_t seq = 0;
    for (int i = 0; i < 2; i++)
        FY_CHECK_EQ(send_seq(&a, &b, seq++, true), FERRY_OK);
    fyp_chan_drain(&b.chan, &b.host); /* the offer: acked */
    for (int i = 0; i < 3; i++)
        FY_CHECK_EQ(send_seq(&a, &b, seq++, true), FERRY_OK); /* datagrams, left unread */
    fyp_chan_drain(&a.chan, &a.host);                         /* the ack */
    for (int i = 0; i < 10; i++)
        FY_CHECK_EQ(send_seq(&a, &b, seq++, true), FERRY_OK); /* the ring */
    fyp_chan_mark(&b.chan);
    FY_CHECK_EQ(fyp_chan_drain_marked(&b.chan, &b.host, FYP_SOCK_UNREAD), 0);
    FY_CHECK_EQ(b.got.n, 2);
    fyp_chan_mark(&b.chan);
    FY_CHECK_EQ(fyp_chan_drain_marked(&b.chan, &b.host, FYP_SOCK_READ), 13);
    FY_CHECK(b.got.in_order);
    /* Taken in order once: from now on the ring is read without the socket. */
    for (int i = 0; i < 10; i++)
        FY_CHECK_EQ(send_seq(&a, &b, seq++, true), FERRY_OK);
    fyp_chan_mark(&b.chan);
    FY_CHECK_EQ(fyp_chan_drain_marked(&b.chan, &b.host, FYP_SOCK_UNREAD), 10);
    FY_CHECK_EQ(b.got.n, seq);
    FY_CHECK(b.got.in_order);
    FY_CHECK_EQ(a.warnings + b.warnings, 0);
    fyp_chan_close(&a.chan);
    fyp_chan_close(&b.chan);
}

static void ring_up(side *a, side *b)
{
    send_seq(a, b, 0, true);
    fyp_chan_drain(&b->chan, &b->host);
    fyp_chan_drain(&a->chan, &a->host);
    b->got = (got){.in_order = true};
}

static void test_chan_doorbell_wakes(void)
{
    side a, b;
    FY_REQUIRE(side_open(&a, "a") && side_open(&b, "b"));
    ring_up(&a, &b);
    FY_CHECK(fyp_chan_arm(&b.chan)); /* nothing waits: b may sleep */
    FY_CHECK_EQ(send_seq(&a, &b, 1, true), FERRY_OK);
    struct pollfd pfd = {.fd = b.chan.fd, .events = POLLIN};
    FY_CHECK_EQ(poll(&pfd, 1, 2000), 1); /* the doorbell */
    fyp_chan_drain(&b.chan, &b.host);
    FY_CHECK_EQ(b.got.n, 1);
    /* Awake (drained), b gets no doorbell: the socket stays empty. */
    FY_CHECK_EQ(send_seq(&a, &b, 2, true), FERRY_OK);
    FY_CHECK(socket_empty(b.chan.fd));
    FY_CHECK(!fyp_chan_arm(&b.chan)); /* a record waits: no sleep */
    fyp_chan_close(&a.chan);
    fyp_chan_close(&b.chan);
}

static void test_chan_full_ring(void)
{
    side a, b;
    FY_REQUIRE(side_open(&a, "a") && side_open(&b, "b"));
    ring_up(&a, &b);
    uint8_t big[FYP_NOTIF_MAX] = {0};
    fyp_chan_peer p = {.name = "b", .addr = &b.addr, .alive = alive_cb};
    bool gone;
    ferry_status rc;
    int sent = 0;
    while ((rc = fyp_chan_notify(&a.chan, &a.host, &p, big, sizeof(big), false, &gone)) == FERRY_OK)
        sent++;
    FY_CHECK_EQ(rc, FERRY_IN_PROGRESS); /* no room now: the caller retries */
    FY_CHECK_EQ(sent, 3);
    fyp_chan_drain(&b.chan, &b.host);
    FY_CHECK_EQ(b.got.n, 3);
    FY_CHECK_EQ(fyp_chan_notify(&a.chan, &a.host, &p, big, sizeof(big), false, &gone), FERRY_OK);
    fyp_chan_close(&a.chan);
    fyp_chan_close(&b.chan);
}

static void test_chan_dead_peer(void)
{
    side a, b;
    FY_REQUIRE(side_open(&a, "a") && side_open(&b, "b"));
    ring_up(&a, &b);
    peer_alive = false;
    fyp_chan_peer p = {.name = "b", .addr = &b.addr, .alive = alive_cb};
    bool gone;
    FY_CHECK_EQ(fyp_chan_notify(&a.chan, &a.host, &p, "x", 1, true, &gone),
                FERRY_ERR_REMOTE_DISCONNECT);
    FY_CHECK(gone);
    peer_alive = true;
    /* Its socket closed: a datagram fails at once, as before rings. */
    fyp_chan_close(&b.chan);
    FY_CHECK_EQ(fyp_chan_notify(&a.chan, &a.host, &p, "x", 1, true, &gone),
                FERRY_ERR_REMOTE_DISCONNECT);
    FY_CHECK(gone);
    fyp_chan_close(&a.chan);
}

static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* Raw datagrams to b, with a descriptor attached. */
static void send_raw(side *a, side *b, const uint8_t *buf, size_t n, int fd)
{
    union {
        char c[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct iovec iov = {(void *)buf, n};
    struct msghdr mh = {.msg_name = &b->addr.sa,
                        .msg_namelen = b->addr.len,
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = ctl.c,
                        .msg_controllen = sizeof(ctl.c)};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    *cm = (struct cmsghdr){
        .cmsg_len = CMSG_LEN(sizeof(int)), .cmsg_level = SOL_SOCKET, .cmsg_type = SCM_RIGHTS};
    memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    FY_CHECK(sendmsg(a->chan.fd, &mh, 0) == (ssize_t)n);
}

static void test_chan_stray_descriptors(void)
{
    side a, b;
    FY_REQUIRE(side_open(&a, "a") && side_open(&b, "b"));
    int before = open_fds();
    int fd = memfd_create("stray", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    FY_REQUIRE(fd >= 0 && ftruncate(fd, FYP_RING_DATA + FYP_RING_CAP) == 0);
    uint8_t buf[512];
    /* A notification with a descriptor, an ack with one, an offer of an
     * unsealed memfd, an offer naming another ring id: all dropped. */
    send_raw(&a, &b, buf, fyp_dgram_encode(buf, sizeof(buf), "a", 1, "m", 1), fd);
    send_raw(&a, &b, buf, fyp_ctl_encode(buf, sizeof(buf), FYP_CTL_ACK, 1, NULL), fd);
    send_raw(&a, &b, buf, fyp_ctl_encode(buf, sizeof(buf), FYP_CTL_OFFER, 1, "a"), fd);
    close(fd);
    fyp_ring r;
    FY_REQUIRE(fyp_ring_create(&r, 5, &fd) == FERRY_OK);
    send_raw(&a, &b, buf, fyp_ctl_encode(buf, sizeof(buf), FYP_CTL_OFFER, 6, "a"), fd);
    close(fd);
    fyp_chan_drain(&b.chan, &b.host);
    FY_CHECK_EQ(b.got.n, 0);
    FY_CHECK_EQ(b.warnings, 4);
    fyp_ring_close(&r);
    FY_CHECK_EQ(open_fds(), before); /* nothing kept open */
    fyp_chan_close(&a.chan);
    fyp_chan_close(&b.chan);
}

int main(void)
{
    FY_RUN(test_ring_roundtrip_wraps);
    FY_RUN(test_ring_full_pushes_back);
    FY_RUN(test_ring_hostile_bytes);
    FY_RUN(test_ring_doorbell);
    FY_RUN(test_ring_attach_checks);
    FY_RUN(test_ctl_codec);
    FY_RUN(test_chan_switch_keeps_order);
    FY_RUN(test_chan_unread_socket_keeps_order);
    FY_RUN(test_chan_doorbell_wakes);
    FY_RUN(test_chan_full_ring);
    FY_RUN(test_chan_dead_peer);
    FY_RUN(test_chan_stray_descriptors);
    return fy_test_done();
}
