/* SPDX-License-Identifier: Apache-2.0 */
/* Plugin support: notification rings in shared memory (see fyp_ring.h). */
#include "fyp_ring.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/le.h"

_Static_assert(sizeof(fyp_ring_shared) <= FYP_RING_DATA, "ring header too large");
_Static_assert((FYP_RING_CAP & (FYP_RING_CAP - 1)) == 0, "ring size not a power of two");

#define FYP_RING_MAGIC "FYRING1"
#define FYP_RING_LEN   (FYP_RING_DATA + FYP_RING_CAP)
#define FYP_RING_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
#define FYP_REC_HDR    8u

static uint64_t fyp_rec_size(size_t len)
{
    return FYP_REC_HDR + (((uint64_t)len + 7u) & ~7ull);
}

/* ---- making, taking and dropping a ring ---- */

static ferry_status fyp_ring_map(fyp_ring *r, int fd)
{
    void *p = mmap(NULL, FYP_RING_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return FERRY_ERR_NO_RESOURCES;
    r->sh = p;
    r->data = (uint8_t *)p + FYP_RING_DATA;
    r->map_len = FYP_RING_LEN;
    return FERRY_OK;
}

ferry_status fyp_ring_create(fyp_ring *r, uint64_t id, int *fd)
{
    memset(r, 0, sizeof(*r));
    *fd = memfd_create("ferry-notif-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (*fd < 0)
        return FERRY_ERR_NO_RESOURCES;
    if (ftruncate(*fd, FYP_RING_LEN) != 0 || fcntl(*fd, F_ADD_SEALS, FYP_RING_SEALS) != 0 ||
        fyp_ring_map(r, *fd) != FERRY_OK) {
        close(*fd);
        *fd = -1;
        return FERRY_ERR_NO_RESOURCES;
    }
    memcpy(r->sh->magic, FYP_RING_MAGIC, sizeof(r->sh->magic));
    r->sh->id = id;
    r->sh->cap = FYP_RING_CAP;
    r->id = id;
    return FERRY_OK;
}

/* A memfd the receiver can map without fearing SIGBUS: sealed against
 * shrinking, exactly the ring's length. */
static bool fyp_ring_fd_ok(int fd)
{
    struct stat st;
    int seals = fcntl(fd, F_GET_SEALS);
    return seals >= 0 && (seals & F_SEAL_SHRINK) && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
           st.st_size == (off_t)FYP_RING_LEN;
}

ferry_status fyp_ring_attach(fyp_ring *r, int fd, uint64_t id)
{
    memset(r, 0, sizeof(*r));
    if (!fyp_ring_fd_ok(fd) || fyp_ring_map(r, fd) != FERRY_OK)
        return FERRY_ERR_BAD_METADATA;
    /* Read once each: the sender may change them at any time, and nothing
     * below relies on them after this check. */
    if (memcmp(r->sh->magic, FYP_RING_MAGIC, sizeof(r->sh->magic)) || r->sh->id != id ||
        r->sh->cap != FYP_RING_CAP) {
        fyp_ring_close(r);
        return FERRY_ERR_BAD_METADATA;
    }
    r->id = id;
    r->pos = atomic_load_explicit(&r->sh->head, memory_order_relaxed);
    return FERRY_OK;
}

void fyp_ring_over(fyp_ring *r, void *mem)
{
    memset(r, 0, sizeof(*r));
    r->sh = mem;
    r->data = (uint8_t *)mem + FYP_RING_DATA;
    r->pos = atomic_load_explicit(&r->sh->head, memory_order_relaxed);
}

void fyp_ring_close(fyp_ring *r)
{
    if (r->sh && r->map_len)
        munmap(r->sh, r->map_len);
    memset(r, 0, sizeof(*r));
}

/* ---- bytes in and out, wrapping at the end ---- */

static void fyp_ring_write(fyp_ring *r, uint64_t at, const void *src, size_t n)
{
    size_t off = (size_t)(at & (FYP_RING_CAP - 1)), first = FYP_RING_CAP - off;
    if (n <= first) {
        memcpy(r->data + off, src, n);
        return;
    }
    memcpy(r->data + off, src, first);
    memcpy(r->data, (const uint8_t *)src + first, n - first);
}

static void fyp_ring_read(const fyp_ring *r, uint64_t at, void *dst, size_t n)
{
    size_t off = (size_t)(at & (FYP_RING_CAP - 1)), first = FYP_RING_CAP - off;
    if (n <= first) {
        memcpy(dst, r->data + off, n);
        return;
    }
    memcpy(dst, r->data + off, first);
    memcpy((uint8_t *)dst + first, r->data, n - first);
}

/* ---- the sender ---- */

int fyp_ring_put(fyp_ring *r, const void *msg, size_t len)
{
    if (len > FYP_RING_REC_MAX)
        return -EINVAL;
    uint64_t need = fyp_rec_size(len);
    uint64_t used = r->pos - atomic_load_explicit(&r->sh->head, memory_order_acquire);
    if (used > FYP_RING_CAP || FYP_RING_CAP - used < need)
        return -EAGAIN; /* full, or head garbled by the receiver: its loss alone */
    uint8_t hdr[FYP_REC_HDR] = {0};
    fy_le_put(hdr, len, 4);
    fyp_ring_write(r, r->pos, hdr, sizeof(hdr));
    if (len)
        fyp_ring_write(r, r->pos + FYP_REC_HDR, msg, len);
    r->pos += need;
    atomic_store_explicit(&r->sh->tail, r->pos, memory_order_release);
    atomic_thread_fence(memory_order_seq_cst);
    if (!atomic_load_explicit(&r->sh->sleeping, memory_order_relaxed))
        return 0;
    return atomic_exchange_explicit(&r->sh->sleeping, 0, memory_order_relaxed) ? 1 : 0;
}

/* ---- the receiver ---- */

uint64_t fyp_ring_tail(const fyp_ring *r)
{
    return atomic_load_explicit(&r->sh->tail, memory_order_acquire);
}

/* The length of the record at pos, or -1 when it cannot be one (more than
 * a message, or past what was published). */
static long fyp_ring_rec_len(const fyp_ring *r, uint64_t upto)
{
    uint8_t hdr[FYP_REC_HDR];
    fyp_ring_read(r, r->pos, hdr, sizeof(hdr));
    uint64_t len = fy_le_get(hdr, 4);
    if (len > FYP_RING_REC_MAX || fyp_rec_size((size_t)len) > upto - r->pos)
        return -1;
    return (long)len;
}

long fyp_ring_take(fyp_ring *r, uint64_t upto, uint8_t *buf, size_t max, fyp_ring_fn fn, void *arg)
{
    uint64_t avail = upto - r->pos;
    if (avail > FYP_RING_CAP || avail % 8u)
        return -1;
    long n = 0;
    while (r->pos != upto && (size_t)n < max) {
        long len = fyp_ring_rec_len(r, upto);
        if (len < 0)
            return -1;
        fyp_ring_read(r, r->pos + FYP_REC_HDR, buf, (size_t)len);
        r->pos += fyp_rec_size((size_t)len);
        /* Consumed before delivery: the sender may reuse the room at once. */
        atomic_store_explicit(&r->sh->head, r->pos, memory_order_release);
        fn(arg, buf, (size_t)len);
        n++;
    }
    return n;
}

bool fyp_ring_arm(fyp_ring *r)
{
    atomic_store_explicit(&r->sh->sleeping, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    return fyp_ring_tail(r) == r->pos;
}

void fyp_ring_wake(fyp_ring *r)
{
    if (atomic_load_explicit(&r->sh->sleeping, memory_order_relaxed))
        atomic_store_explicit(&r->sh->sleeping, 0, memory_order_relaxed);
}
