/* SPDX-License-Identifier: Apache-2.0 */
/* What the SHM tests' driver, peer program and benchmark share: buffer
 * sizes, the byte patterns, the hash, the hex form of metadata on the
 * command pipes, and waiting for a request. Header only. */
#ifndef SHM_TEST_H
#define SHM_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ferry/ferry.h>

#define ST_BUF      (32u << 20) /* each side's buffer */
#define ST_BLOCK    4096u       /* notification tests: block i is its own pattern */
#define ST_LINE_MAX (1u << 16)  /* command lines (hex metadata included) */

/* The byte at offset i of a buffer filled from seed. */
static inline uint8_t st_byte(uint64_t seed, uint64_t i)
{
    uint64_t x = (seed + 1) * 0x9e3779b97f4a7c15ull ^ (i >> 3) * 0xbf58476d1ce4e5b9ull;
    return (uint8_t)((x >> 29) ^ (x >> ((i & 7) * 8)));
}

static inline void st_fill(uint8_t *p, size_t len, uint64_t seed)
{
    for (size_t i = 0; i < len; i++)
        p[i] = st_byte(seed, i);
}

static inline uint64_t st_hash(const uint8_t *p, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* Block i of a notification test holds this byte everywhere. */
static inline uint8_t st_block_byte(unsigned i)
{
    return (uint8_t)((i * 37u) ^ 0x5au);
}

static inline void st_hex(const uint8_t *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Bytes decoded, or 0 on a malformed string. */
static inline size_t st_unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    for (; s[0] && s[0] != '\n' && s[1] && n < cap; s += 2) {
        unsigned v;
        if (sscanf(s, "%2x", &v) != 1)
            return 0;
        out[n++] = (uint8_t)v;
    }
    return n;
}

static inline uint64_t st_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Polls a posted request (post's result in rc) for up to 20 s. */
static inline ferry_status st_wait(ferry_xfer *x, ferry_status rc)
{
    uint64_t end = st_now_ms() + 20000;
    while (rc == FERRY_IN_PROGRESS && st_now_ms() < end)
        rc = ferry_xfer_status(x);
    return rc;
}

/* The agent's metadata as a malloc'd hex string, NULL on failure. */
static inline char *st_md_hex(ferry_agent *agent)
{
    void *blob = NULL;
    size_t len = 0;
    if (ferry_md_get_local(agent, &blob, &len) != FERRY_OK)
        return NULL;
    char *hex = malloc(2 * len + 1);
    if (hex)
        st_hex(blob, len, hex);
    ferry_free(blob);
    return hex;
}

/* Loads a peer's metadata given in hex. */
static inline ferry_status st_md_load(ferry_agent *agent, const char *hex)
{
    static uint8_t blob[ST_LINE_MAX / 2];
    char name[FERRY_NAME_MAX + 1];
    size_t n = st_unhex(hex, blob, sizeof(blob));
    return n ? ferry_md_load(agent, blob, n, name, sizeof(name)) : FERRY_ERR_INVALID_PARAM;
}

#endif
