/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the two-process UCX tests: the driver (test_ucx_2proc.c) and
 * the peer (ucx_peer.c) must agree on the data pattern and the hash, so
 * each side can check what the other wrote without shipping the bytes.
 *
 * The pattern is addressable: byte o of pattern(seed) depends only on seed
 * and o, so any sub-range can be generated or checked on its own, and a
 * byte copied to the wrong place (or not copied) shows as a mismatch. */
#ifndef RT_UTIL_H
#define RT_UTIL_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The backend both sides run: FY_RT_BACKEND (the peer inherits it), else
 * UCX. The same tests serve every network backend (LIBFABRIC too). */
static inline const char *rt_backend(void)
{
    const char *b = getenv("FY_RT_BACKEND");
    return b && *b ? b : "UCX";
}

static inline uint64_t rt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline void rt_sleep_us(unsigned us)
{
    struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static inline void rt_sleep_ms(unsigned ms)
{
    rt_sleep_us(ms * 1000u);
}

/* splitmix64's finaliser: every input bit flips about half the output. */
static inline uint64_t rt_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* The 8 pattern bytes starting at offset 8 * word. */
static inline uint64_t rt_word(uint64_t seed, uint64_t word)
{
    return rt_mix(seed * 0x9e3779b97f4a7c15ull + word);
}

/* The pattern bytes of one word (little-endian order), as stored. */
static inline void rt_word_bytes(uint8_t out[8], uint64_t w)
{
    for (unsigned k = 0; k < 8; k++) /* compilers merge this into one store */
        out[k] = (uint8_t)(w >> (8 * k));
}

/* Writes pattern(seed) bytes [src_off, src_off + len) into dst. */
static inline void rt_pattern(uint8_t *dst, uint64_t seed, uint64_t src_off, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint64_t off = src_off + i;
        uint8_t w[8];
        rt_word_bytes(w, rt_word(seed, off >> 3));
        size_t b = off & 7, k = 8 - b < len - i ? 8 - b : len - i;
        memcpy(dst + i, w + b, k);
        i += k;
    }
}

/* Index of the first byte of buf[0, len) that differs from pattern(seed)
 * at [src_off, src_off + len), or -1 when all match. */
static inline long long rt_pattern_diff(const uint8_t *buf, uint64_t seed, uint64_t src_off,
                                        size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint64_t off = src_off + i;
        uint8_t w[8];
        rt_word_bytes(w, rt_word(seed, off >> 3));
        size_t b = off & 7, k = 8 - b < len - i ? 8 - b : len - i;
        if (memcmp(buf + i, w + b, k))
            for (size_t j = 0; j < k; j++)
                if (buf[i + j] != w[b + j])
                    return (long long)(i + j);
        i += k;
    }
    return -1;
}

/* FNV-1a over 64-bit words (tail bytewise): cheap enough for 100 MiB under
 * valgrind; both processes run on one host, so word order agrees. */
static inline uint64_t rt_hash(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint64_t h = 0xcbf29ce484222325ull, w;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
    }
    for (; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* Writes all of buf to fd (a pipe): false on error. */
static inline bool rt_write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

/* A line reader over a pipe that never blocks past a deadline: stdio's
 * buffering would hide lines from poll(). */
typedef struct rt_lines {
    int fd;
    size_t have;
    char buf[8192];
} rt_lines;

/* Moves the first complete line (without its newline) into out. */
static inline bool rt_take_line(rt_lines *r, char *out, size_t cap)
{
    char *nl = memchr(r->buf, '\n', r->have);
    if (!nl)
        return false;
    size_t n = (size_t)(nl - r->buf), keep = r->have - n - 1;
    size_t copy = n < cap - 1 ? n : cap - 1;
    memcpy(out, r->buf, copy);
    out[copy] = '\0';
    memmove(r->buf, nl + 1, keep);
    r->have = keep;
    return true;
}

/* Reads one line, waiting at most until deadline_ms (rt_now_ms clock).
 * Returns 1 for a line, 0 on timeout, -1 on EOF/error or an overlong line. */
static inline int rt_read_line(rt_lines *r, char *out, size_t cap, uint64_t deadline_ms)
{
    while (!rt_take_line(r, out, cap)) {
        uint64_t now = rt_now_ms();
        if (r->have == sizeof(r->buf))
            return -1;
        if (now >= deadline_ms)
            return 0;
        struct pollfd pfd = {r->fd, POLLIN, 0};
        int wait = (int)(deadline_ms - now);
        if (poll(&pfd, 1, wait) < 0 && errno != EINTR)
            return -1;
        if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        ssize_t n = read(r->fd, r->buf + r->have, sizeof(r->buf) - r->have);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            return -1;
        if (n > 0)
            r->have += (size_t)n;
    }
    return 1;
}

#endif
