/* SPDX-License-Identifier: Apache-2.0 */
/* The event ring: a file mapped shared, written by one agent (any of its
 * threads) and read by any process. The protocol is in
 * include/ferry/telemetry_ring.h; every word of a slot is accessed
 * atomically so that a reader racing the writer reads stale or fresh
 * words, never torn ones, and the stamps tell which. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "telemetry/ring.h"

_Static_assert(sizeof(ferry_ring_header) == FERRY_RING_HEADER_SIZE, "ring header layout");
_Static_assert(offsetof(ferry_ring_header, head) == 128, "ring head offset");
_Static_assert(sizeof(ferry_ring_slot) == FERRY_RING_SLOT_SIZE, "ring slot layout");

#define FY_SLOT_WORDS ((int)(FERRY_RING_SLOT_SIZE / 8))

struct fy_ring {
    ferry_ring_header *hdr;
    _Atomic uint64_t *head;
    _Atomic uint64_t (*slots)[FY_SLOT_WORDS];
    uint32_t mask;
    size_t map_len;
    char path[1024];
};

bool fy_ring_path(const char *dir, const char *agent, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/%s.ring", dir, agent);
    return n > 0 && (size_t)n < cap;
}

int fy_mkdirs(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(path, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static uint32_t fy_pow2_slots(uint32_t slots)
{
    uint32_t n = 16;
    while (n < slots && n < (1u << 24))
        n <<= 1;
    return n;
}

static void fy_ring_header_fill(fy_ring *ring, const char *agent, uint32_t cap)
{
    ferry_ring_header *h = ring->hdr;
    h->version = FERRY_RING_VERSION;
    h->header_size = FERRY_RING_HEADER_SIZE;
    h->slot_size = FERRY_RING_SLOT_SIZE;
    h->capacity = cap;
    h->pid = (uint32_t)getpid();
    h->created_us = fy_wall_us();
    snprintf(h->agent, sizeof(h->agent), "%s", agent);
    ring->head = (_Atomic uint64_t *)&h->head;
    ring->slots = (void *)((char *)h + FERRY_RING_HEADER_SIZE);
    ring->mask = cap - 1;
    /* The magic last: a reader that opens the file earlier refuses it. */
    atomic_thread_fence(memory_order_release);
    memcpy(h->magic, FERRY_RING_MAGIC, sizeof(h->magic));
}

/* A fresh file (a reader of an old ring keeps its own mapping). */
static int fy_ring_file(const char *path, size_t len)
{
    unlink(path);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0 && ftruncate(fd, (off_t)len) != 0) {
        close(fd);
        unlink(path);
        return -1;
    }
    return fd;
}

static ferry_status fy_ring_map(fy_ring *ring, const char *dir, const char *agent, uint32_t cap)
{
    ring->map_len = FERRY_RING_HEADER_SIZE + (size_t)cap * FERRY_RING_SLOT_SIZE;
    int fd = fy_mkdirs(dir) == 0 ? fy_ring_file(ring->path, ring->map_len) : -1;
    if (fd < 0) {
        fy_log(FERRY_LOG_ERROR, "telemetry", "event ring %s: %s", ring->path, strerror(errno));
        return FERRY_ERR_IO;
    }
    void *p = mmap(NULL, ring->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        fy_log(FERRY_LOG_ERROR, "telemetry", "event ring %s: mmap: %s", ring->path,
               strerror(errno));
        unlink(ring->path);
        return FERRY_ERR_IO;
    }
    ring->hdr = p;
    fy_ring_header_fill(ring, agent, cap);
    return FERRY_OK;
}

ferry_status fy_ring_create(const char *dir, const char *agent, uint32_t slots, fy_ring **out)
{
    if (strchr(agent, '/') || !strcmp(agent, ".") || !strcmp(agent, "..")) {
        fy_log(FERRY_LOG_ERROR, "telemetry", "event ring: agent name '%s' is not a file name",
               agent);
        return FERRY_ERR_INVALID_PARAM;
    }
    fy_ring *ring = calloc(1, sizeof(*ring));
    if (!ring)
        return FERRY_ERR_NO_MEMORY;
    ferry_status rc = FERRY_ERR_INVALID_PARAM;
    if (fy_ring_path(dir, agent, ring->path, sizeof(ring->path)))
        rc = fy_ring_map(ring, dir, agent, fy_pow2_slots(slots));
    if (rc != FERRY_OK) {
        free(ring);
        return rc;
    }
    *out = ring;
    return FERRY_OK;
}

void fy_ring_destroy(fy_ring *ring)
{
    if (!ring)
        return;
    munmap(ring->hdr, ring->map_len);
    unlink(ring->path);
    free(ring);
}

static void fy_ring_encode(const fy_ring_event *ev, ferry_ring_slot *s)
{
    memset(s, 0, sizeof(*s));
    s->time_us = ev->time_us ? ev->time_us : fy_wall_us();
    s->type = ev->type;
    s->status = ev->status;
    s->value = ev->value;
    s->duration_us = ev->duration_us;
    s->op = ev->op;
    if (ev->backend)
        strncpy(s->backend, ev->backend, sizeof(s->backend) - 1);
}

void fy_ring_put(fy_ring *ring, const fy_ring_event *ev)
{
    if (!ring)
        return;
    uint64_t words[FY_SLOT_WORDS];
    fy_ring_encode(ev, (ferry_ring_slot *)words);
    uint64_t seq = atomic_fetch_add_explicit(ring->head, 1, memory_order_relaxed);
    _Atomic uint64_t *w = ring->slots[seq & ring->mask];
    atomic_store_explicit(&w[0], 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release); /* stamp 0 before any new word */
    for (int i = 1; i < FY_SLOT_WORDS; i++)
        atomic_store_explicit(&w[i], words[i], memory_order_relaxed);
    atomic_store_explicit(&w[0], seq + 1, memory_order_release);
}

/* ---- reading ---- */

static bool fy_ring_header_ok(const ferry_ring_header *h, size_t len)
{
    if (len < FERRY_RING_HEADER_SIZE || memcmp(h->magic, FERRY_RING_MAGIC, 8) ||
        h->version != FERRY_RING_VERSION || h->slot_size != FERRY_RING_SLOT_SIZE ||
        h->header_size != FERRY_RING_HEADER_SIZE)
        return false;
    uint32_t cap = h->capacity;
    return cap && !(cap & (cap - 1)) &&
           len >= FERRY_RING_HEADER_SIZE + (size_t)cap * FERRY_RING_SLOT_SIZE;
}

static uint64_t fy_ring_head(const fy_ring_reader *r)
{
    return atomic_load_explicit((_Atomic uint64_t *)&r->hdr->head, memory_order_acquire);
}

static ferry_status fy_ring_check_map(fy_ring_reader *r, void *p, size_t len, bool from_start)
{
    r->hdr = p;
    r->map_len = len;
    if (!fy_ring_header_ok(r->hdr, len)) {
        munmap(p, len);
        r->hdr = NULL;
        return FERRY_ERR_BAD_METADATA;
    }
    r->slots = (const ferry_ring_slot *)((const char *)p + FERRY_RING_HEADER_SIZE);
    uint64_t head = fy_ring_head(r), oldest = head > r->hdr->capacity ? head - r->hdr->capacity : 0;
    r->next = from_start ? oldest : head;
    r->lost = from_start ? oldest : 0; /* from the start: what the ring already overwrote */
    return FERRY_OK;
}

ferry_status fy_ring_open(const char *path, bool from_start, fy_ring_reader *r)
{
    memset(r, 0, sizeof(*r));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return FERRY_ERR_IO;
    }
    void *p = st.st_size >= FERRY_RING_HEADER_SIZE
                  ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0)
                  : MAP_FAILED;
    close(fd);
    if (p == MAP_FAILED)
        return st.st_size < FERRY_RING_HEADER_SIZE ? FERRY_ERR_BAD_METADATA : FERRY_ERR_IO;
    return fy_ring_check_map(r, p, (size_t)st.st_size, from_start);
}

void fy_ring_close(fy_ring_reader *r)
{
    if (r->hdr)
        munmap((void *)r->hdr, r->map_len);
    r->hdr = NULL;
}

/* Copies slot `seq` when whole: 1, 0 when not written yet, -1 when lapped. */
static int fy_ring_copy(const fy_ring_reader *r, uint64_t seq, ferry_ring_slot *out)
{
    _Atomic uint64_t *w = (_Atomic uint64_t *)&r->slots[seq & (r->hdr->capacity - 1)];
    uint64_t words[FY_SLOT_WORDS];
    uint64_t s1 = atomic_load_explicit(&w[0], memory_order_acquire);
    if (s1 != seq + 1)
        return s1 > seq + 1 ? -1 : 0;
    for (int i = 1; i < FY_SLOT_WORDS; i++)
        words[i] = atomic_load_explicit(&w[i], memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire); /* the words before the second stamp */
    if (atomic_load_explicit(&w[0], memory_order_relaxed) != s1)
        return -1;
    words[0] = s1;
    memcpy(out, words, sizeof(*out));
    return 1;
}

ferry_status fy_ring_next(fy_ring_reader *r, ferry_ring_slot *out)
{
    uint32_t cap = r->hdr->capacity;
    for (;;) {
        uint64_t head = fy_ring_head(r);
        if (r->next >= head)
            return FERRY_IN_PROGRESS;
        if (head - r->next > cap) {
            r->lost += head - cap - r->next;
            r->next = head - cap;
        }
        int got = fy_ring_copy(r, r->next, out);
        if (got == 0)
            return FERRY_IN_PROGRESS;
        if (got > 0) {
            r->next++;
            return FERRY_OK;
        }
        /* Lapped while reading: the writer is at least a ring ahead. */
        if (fy_ring_head(r) - r->next <= cap) {
            r->lost++;
            r->next++;
        }
    }
}
