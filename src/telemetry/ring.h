/* SPDX-License-Identifier: Apache-2.0 */
/* The event ring (ring.c): the writer an agent keeps, and the reader the
 * ferry-telemetry tool and the tests use. The layout is public:
 * include/ferry/telemetry_ring.h. Pure code over a mapped file: no agent,
 * no thread. */
#ifndef FY_TELEMETRY_RING_H
#define FY_TELEMETRY_RING_H

#include <stdbool.h>
#include <stdint.h>

#include "ferry/status.h"
#include "ferry/telemetry_ring.h"

typedef struct fy_ring fy_ring;

/* An event to write; backend is copied (truncated to 15 bytes). */
typedef struct fy_ring_event {
    uint32_t type, op;
    int32_t status;
    uint64_t value, duration_us;
    uint64_t time_us; /* wall clock; 0: read it (the hot path passes one it has) */
    const char *backend;
} fy_ring_event;

/* Creates (replacing any old one) <dir>/<agent>.ring with slots rounded up
 * to a power of two (at least 16) and maps it. IO (logged, naming the
 * path) when it cannot; INVALID_PARAM for a name that is not a file name. */
ferry_status fy_ring_create(const char *dir, const char *agent, uint32_t slots, fy_ring **out);
/* Unmaps and removes the file; NULL is a no-op. */
void fy_ring_destroy(fy_ring *ring);
/* Writes one event; never waits. NULL ring: nothing. */
void fy_ring_put(fy_ring *ring, const fy_ring_event *ev);
/* mkdir -p (mode 0755): the telemetry directory may be a fresh path under
 * /dev/shm. 0, or -1 with errno set. */
int fy_mkdirs(const char *dir);
/* The path of <dir>/<agent>.ring into buf; false when it does not fit. */
bool fy_ring_path(const char *dir, const char *agent, char *buf, size_t cap);

/* ---- reading, from any process ---- */
typedef struct fy_ring_reader {
    const ferry_ring_header *hdr;
    const ferry_ring_slot *slots;
    size_t map_len;
    uint64_t next; /* the sequence number to read next */
    uint64_t lost; /* events overwritten before this reader saw them */
} fy_ring_reader;

/* Maps a ring read-only and checks its header; from_start: begin at the
 * oldest event still there (lost then counts the events already
 * overwritten), else at the next one written. BAD_METADATA
 * for a file that is not a ring of a known version, IO when unreadable. */
ferry_status fy_ring_open(const char *path, bool from_start, fy_ring_reader *r);
void fy_ring_close(fy_ring_reader *r);
/* The next whole event into *out: OK, or IN_PROGRESS when there is none
 * yet. Events lost to an overrun are skipped and added to r->lost. */
ferry_status fy_ring_next(fy_ring_reader *r, ferry_ring_slot *out);

#endif
