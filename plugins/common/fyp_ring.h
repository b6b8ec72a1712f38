/* SPDX-License-Identifier: Apache-2.0 */
/* Plugin support: a one-way notification ring from one agent to another of
 * the same host, in shared memory beside the channel (fyp_chan.h), so that
 * a notification costs the sender a memcpy and the receiver a look at its
 * memory instead of a datagram each way through the kernel.
 *
 * The sender makes the ring: a memfd sealed at its size (neither side can
 * shrink it under the other's mapping), mapped by both once the receiver
 * has taken it (fyp_chan.c hands it over). One producer, one consumer:
 * the sender alone moves tail, the receiver alone moves head. A record is
 * u32 length | u32 0 | the message, padded to 8 bytes, and may wrap.
 *
 * The receiver treats everything in the ring as hostile (the sender can
 * write any bytes at any time): it copies a record out before reading it,
 * and a tail or length out of bounds ends the ring (-1), never a read
 * outside it. The sender only trusts head to the extent of its own ring.
 *
 * A receiver about to sleep sets `sleeping`; a sender that finds it set
 * after publishing clears it and rings the receiver's doorbell (a datagram
 * on the channel). Both sides fence between their store and their load,
 * so one of them always sees the other. */
#ifndef FYP_RING_H
#define FYP_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/plugin.h"

#define FYP_RING_CAP     (256u << 10) /* record bytes: a power of two */
#define FYP_RING_REC_MAX (64u << 10)  /* FYP_NOTIF_MAX: a message fits with room to spare */
#define FYP_RING_DATA    256u         /* where the records start in the memfd */

/* The ring's first FYP_RING_DATA bytes, shared; each side's index on a
 * cache line of its own. */
typedef struct fyp_ring_shared {
    char magic[8]; /* "FYRING1" */
    uint64_t id;   /* the sender's name for the ring (its offer and the ack say it) */
    uint64_t cap;  /* FYP_RING_CAP */
    uint8_t pad0[40];
    _Atomic uint64_t tail; /* bytes the sender has published */
    uint8_t pad1[56];
    _Atomic uint64_t head;     /* bytes the receiver has consumed */
    _Atomic uint32_t sleeping; /* the receiver waits for a doorbell */
    uint8_t pad2[52];
} fyp_ring_shared;

typedef struct fyp_ring {
    fyp_ring_shared *sh; /* NULL: no ring */
    uint8_t *data;       /* FYP_RING_CAP bytes of records */
    size_t map_len;      /* what to unmap; 0: not mapped by us (tests, fuzzing) */
    uint64_t id;
    uint64_t pos; /* our own index: tail (sender) or head (receiver) */
} fyp_ring;

/* Sender: a new ring, mapped, and its memfd (*fd, the caller closes it
 * once handed over). NO_RESOURCES when memfd or mmap fails. */
ferry_status fyp_ring_create(fyp_ring *r, uint64_t id, int *fd);
/* Receiver: maps the memfd of a ring offered as id, after checking it is
 * sealed against shrinking, exactly the ring's size and says id. The fd
 * stays the caller's. BAD_METADATA otherwise. */
ferry_status fyp_ring_attach(fyp_ring *r, int fd, uint64_t id);
/* Both: the same ring over memory the caller owns (FYP_RING_DATA +
 * FYP_RING_CAP bytes, 8-aligned), as the receiver sees it: for tests. */
void fyp_ring_over(fyp_ring *r, void *mem);
void fyp_ring_close(fyp_ring *r); /* also on a zeroed one */

/* Sender: 0 published, 1 published and the receiver asked for a doorbell,
 * -EAGAIN no room now, -EINVAL longer than FYP_RING_REC_MAX. */
int fyp_ring_put(fyp_ring *r, const void *msg, size_t len);

/* Receiver: the published tail, to pass to fyp_ring_take later. */
uint64_t fyp_ring_tail(const fyp_ring *r);
/* Delivers the records before upto (at most max of them) through fn, each
 * copied first into buf (FYP_RING_REC_MAX bytes); returns how many, or -1
 * when the ring's bytes are malformed (nothing more is read from it). */
typedef void (*fyp_ring_fn)(void *arg, const void *msg, size_t len);
long fyp_ring_take(fyp_ring *r, uint64_t upto, uint8_t *buf, size_t max, fyp_ring_fn fn, void *arg);
/* Receiver, about to sleep: asks for a doorbell; false when records are
 * waiting (then it must not sleep). fyp_ring_wake takes the request back. */
bool fyp_ring_arm(fyp_ring *r);
void fyp_ring_wake(fyp_ring *r);

#endif
