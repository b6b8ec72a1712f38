/* SPDX-License-Identifier: Apache-2.0 */
/* Plugin support: the channel's shared-memory rings (fyp_chan_ring.c), as
 * fyp_chan.c uses them.
 *
 * The sender of a first notification to a peer makes a ring and offers it
 * with its memfd (SCM_RIGHTS) in a control datagram; the receiver maps it
 * and answers with an ack; from the ack on, the sender's notifications to
 * that peer go through the ring. Until then, and for peers that never
 * answer (a full table, a build without rings: it drops the offer), they
 * go as datagrams.
 *
 * Order per sender holds: a drain reads each ring's tail before it empties
 * the socket, and delivers records only up to that tail, only once the
 * socket is empty; a datagram sent before a record is then always taken
 * first.
 *
 * Control datagrams: "FYCN" u8 major=2 u8 kind u16 name_len | u64 ring id |
 * name (an offer: the sender's agent name; else none). */
#ifndef FYP_CHAN_RING_H
#define FYP_CHAN_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fyp_chan.h"
#include "fyp_ring.h"

#define FYP_CHAN_RINGS 128u /* rings each way per channel; more peers use datagrams */
#define FYP_CTL_MAX    (16u + FYP_NAME_MAX)

enum { FYP_CTL_OFFER = 1, FYP_CTL_ACK = 2, FYP_CTL_DOORBELL = 3 };

/* Bytes written, 0 when out of bounds. */
size_t fyp_ctl_encode(uint8_t *out, size_t cap, int kind, uint64_t id, const char *name);
/* BAD_METADATA on anything malformed; name gets the offer's (else ""). */
ferry_status fyp_ctl_decode(const uint8_t *buf, size_t len, int *kind, uint64_t *id,
                            char name[FYP_NAME_MAX + 1]);
/* Whether buf is a control datagram (major 2). */
bool fyp_ctl_is(const uint8_t *buf, size_t len);

typedef struct fyp_chan_tx fyp_chan_tx;

/* The acknowledged ring to p, or NULL: then the caller sends a datagram
 * (and, on the first try, a ring was offered). */
fyp_chan_tx *fyp_chan_ring_to(fyp_chan *c, const ferry_plugin_host *h, const fyp_chan_peer *p);
/* Puts a notification in the ring to p, ringing its doorbell if asked: 0,
 * -EAGAIN (full), or -errno (the peer is gone: the ring is dropped). */
int fyp_chan_ring_send(fyp_chan *c, const fyp_chan_peer *p, fyp_chan_tx *t, const void *msg,
                       size_t len);
/* A control datagram (n bytes in c->buf) from the socket at `from`
 * (kernel-given), sent by pid, with the fd it carried (or -1; the caller
 * closes it after). */
void fyp_chan_ring_control(fyp_chan *c, const ferry_plugin_host *h, const fyp_chan_addr *from,
                           pid_t pid, size_t n, int fd);
/* Drain, before the socket: each ring's tail, and the doorbell request off. */
void fyp_chan_rings_mark(fyp_chan *c);
/* Drain: the records up to the marks, of every ring once the socket was
 * emptied after the marks (sock_emptied), else only of the rings whose
 * sender's datagrams were all taken before (a sender switched to its ring
 * after sending datagrams that may still wait in the socket). */
size_t fyp_chan_rings_take(fyp_chan *c, const ferry_plugin_host *h, bool sock_emptied);
bool fyp_chan_rings_arm(fyp_chan *c);
void fyp_chan_rings_free(fyp_chan *c);

#endif
