/* SPDX-License-Identifier: Apache-2.0 */
/* The layout of an agent's event ring: a file in the telemetry directory
 * (<dir>/<agent>.ring, mapped shared) that the agent writes and any
 * process may read (docs/telemetry.md, "Event ring"). Types and constants
 * only: no function of libferry is needed to read it.
 *
 * Layout, version 1, all fields in the host's byte order:
 *   the header (struct ferry_ring_header, FERRY_RING_HEADER_SIZE bytes),
 *   then `capacity` slots (a power of two) of FERRY_RING_SLOT_SIZE bytes.
 * The writer claims sequence number s = head++ (head: the next number to
 * claim), then in slot s % capacity stores stamp 0, the event's fields,
 * and last stamp s + 1, each store with release order. It never waits for
 * readers. A reader that wants event s reads the stamp, the fields, and
 * the stamp again: the event is whole when both stamps read s + 1. A stamp
 * above s + 1, or head more than capacity ahead of s, means the writer
 * lapped the reader (overrun): the events up to head - capacity are lost,
 * and the reader counts them and goes on from there. A stamp below s + 1
 * means s is still being written. */
#ifndef FERRY_TELEMETRY_RING_H
#define FERRY_TELEMETRY_RING_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FERRY_RING_MAGIC       "FERRYRNG" /* 8 bytes, no NUL */
#define FERRY_RING_VERSION     1u
#define FERRY_RING_HEADER_SIZE 192u
#define FERRY_RING_SLOT_SIZE   64u

typedef enum ferry_ring_event_type {
    FERRY_RING_XFER_POST = 1,      /* op: 1 WRITE, 0 READ; value: bytes; duration: post µs */
    FERRY_RING_XFER_DONE = 2,      /* op; status; value: bytes; duration: transfer µs */
    FERRY_RING_MEM_REGISTER = 3,   /* op: memory type; value: bytes */
    FERRY_RING_MEM_DEREGISTER = 4, /* op: memory type; value: bytes */
    FERRY_RING_NOTIF_SENT = 5,     /* a notification left */
    FERRY_RING_NOTIF_RECEIVED = 6, /* a notification was queued for the application */
    FERRY_RING_NOTIF_DROPPED = 7,  /* the queue was full: one was dropped */
} ferry_ring_event_type;

typedef struct ferry_ring_header {
    char magic[8];        /* FERRY_RING_MAGIC */
    uint32_t version;     /* FERRY_RING_VERSION */
    uint32_t header_size; /* offset of slot 0 */
    uint32_t slot_size;   /* FERRY_RING_SLOT_SIZE */
    uint32_t capacity;    /* slots, a power of two */
    uint32_t pid;         /* the writing process */
    uint32_t reserved0;
    uint64_t created_us; /* wall clock, µs since the epoch */
    char agent[65];      /* the agent's name, NUL-terminated */
    char reserved1[128 - 105];
    uint64_t head; /* offset 128: next sequence number (atomic) */
    char reserved2[FERRY_RING_HEADER_SIZE - 136];
} ferry_ring_header;

typedef struct ferry_ring_slot {
    uint64_t stamp;       /* sequence + 1 when whole, 0 while written (atomic) */
    uint64_t time_us;     /* wall clock, µs since the epoch */
    uint32_t type;        /* ferry_ring_event_type */
    int32_t status;       /* ferry_status of a completion */
    uint64_t value;       /* bytes */
    uint64_t duration_us; /* µs */
    char backend[16];     /* backend name, NUL-padded */
    uint32_t op;          /* see the event types */
    uint32_t reserved;
} ferry_ring_slot;

#ifdef __cplusplus
}
#endif
#endif
