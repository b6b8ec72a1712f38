/* SPDX-License-Identifier: Apache-2.0 */
/* Plugin support: the host-local notification channel of backends whose
 * peers are agents of this host (CUDA, SHM). Each backend binds an
 * abstract-namespace unix datagram socket (no file to clean up after a
 * crash; its name goes in the identity, fyp_ident.h), and a notification is
 * one datagram. A datagram is delivered whole or not at all, in order per
 * sender, and a send to a peer that is gone fails at once (ECONNREFUSED),
 * which is how a dead peer is noticed without a heartbeat.
 *
 * Abstract sockets have no permissions: the receiver asks the kernel for
 * the sender's credentials (SO_PASSCRED) and drops datagrams of other users.
 *
 * Between two agents that both have rings, notifications after the first
 * go through a ring in shared memory instead (fyp_ring.h, offered over the
 * socket and acknowledged before use: fyp_chan_ring.c), and the socket
 * then carries only doorbells for a receiver that sleeps.
 *
 * Not thread-safe: one channel's calls are serialised by its owner (the
 * core does it for plugins without FERRY_PLUGIN_F_THREAD_SAFE). */
#ifndef FYP_CHAN_H
#define FYP_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "ferry/plugin.h"
#include "fyp_ident.h"

#define FYP_NAME_MAX  255u          /* agent names (FERRY_NAME_MAX) */
#define FYP_NOTIF_MAX (64u * 1024u) /* FERRY_NOTIF_MAX_LEN */

/* ---- datagrams ----
 * "FYCN" u8 major=1 u8 0 u16 name_len | u64 sender uid | name | message;
 * the rings' control datagrams have major 2 (fyp_chan_ring.h), which
 * decoders of major 1 alone drop. */
#define FYP_DGRAM_FIXED 16u
#define FYP_DGRAM_MAX   (FYP_DGRAM_FIXED + FYP_NAME_MAX + FYP_NOTIF_MAX)

/* Bytes written, or 0 when a length is out of bounds. */
size_t fyp_dgram_encode(uint8_t *out, size_t cap, const char *from, uint64_t uid, const void *msg,
                        size_t len);
/* from gets the sender's name (NUL-terminated); msg points into buf. */
ferry_status fyp_dgram_decode(const uint8_t *buf, size_t len, char from[FYP_NAME_MAX + 1],
                              uint64_t *uid, const void **msg, size_t *msg_len);

/* ---- the socket ---- */

struct fyp_chan_rings; /* fyp_chan_ring.h */

typedef struct fyp_chan {
    int fd;                       /* -1 when closed */
    char name[FYP_SOCK_MAX];      /* abstract name, without the leading NUL */
    uint8_t *buf;                 /* receive buffer of FYP_DGRAM_MAX bytes */
    uint8_t *sbuf;                /* send buffer, as large */
    struct fyp_chan_rings *rings; /* shared-memory rings to and from peers; NULL until one */
} fyp_chan;

/* A peer's address, from the socket name in its identity. */
typedef struct fyp_chan_addr {
    struct sockaddr_un sa;
    socklen_t len;
} fyp_chan_addr;

/* Binds "<prefix>/<pid>/<uid>/<n>". NO_RESOURCES or IO (errno says why). */
ferry_status fyp_chan_open(fyp_chan *c, const char *prefix, uint64_t uid);
void fyp_chan_close(fyp_chan *c); /* also on a channel zeroed with fd -1 */
void fyp_chan_addr_of(const char *sock, fyp_chan_addr *out);
/* 0 sent, -EAGAIN (the peer's queue is full: retry later), or -errno (peer
 * gone: -ECONNREFUSED/-ENOENT, or a socket error). */
int fyp_chan_send(fyp_chan *c, const fyp_chan_addr *to, const char *from, uint64_t uid,
                  const void *msg, size_t len);
/* Delivers what is queued through host->notif_deliver (at most a few
 * hundred datagrams and records of each ring per call); returns how many
 * were delivered. */
size_t fyp_chan_drain(fyp_chan *c, const ferry_plugin_host *host);
/* The same in two steps, for an owner that learns in between whether the
 * socket has datagrams (an epoll set) or reads it only now and then: the
 * rings' tails, then the socket as sock says and the rings' records up to
 * those tails. Unread, a ring whose sender may still have datagrams waiting
 * in the socket is left for a drain that reads it: they come first. */
typedef enum fyp_sock {
    FYP_SOCK_READ,   /* may hold datagrams: read it until empty */
    FYP_SOCK_EMPTY,  /* found empty after the marks */
    FYP_SOCK_UNREAD, /* not looked at */
} fyp_sock;
void fyp_chan_mark(fyp_chan *c);
size_t fyp_chan_drain_marked(fyp_chan *c, const ferry_plugin_host *host, fyp_sock sock);
/* Before the owner sleeps on fd: asks every ring's sender for a doorbell;
 * false when records are waiting (drain instead of sleeping). */
bool fyp_chan_arm(fyp_chan *c);

/* One peer as fyp_chan_notify sees it. */
typedef struct fyp_chan_peer {
    const char *name;
    const fyp_chan_addr *addr;
    bool self;                /* this agent: queued directly */
    bool (*alive)(void *arg); /* false once the peer is known gone */
    void *arg;
} fyp_chan_peer;

/* Sends one notification. wait=false: IN_PROGRESS when the peer's queue is
 * full (the caller retries later); wait=true: retries for up to 5 s,
 * draining our own socket meanwhile (two agents sending to each other must
 * not deadlock). REMOTE_DISCONNECT when the peer is gone (*gone set), BACKEND
 * on other failures, each logged once. */
ferry_status fyp_chan_notify(fyp_chan *c, const ferry_plugin_host *host, const fyp_chan_peer *p,
                             const void *msg, size_t len, bool wait, bool *gone);

#endif
