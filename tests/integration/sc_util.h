/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the side-channel tests: agents with a LOCAL backend and
 * registered memory, free loopback ports, raw sockets, clocks. Loopback
 * (127.0.0.1) only. */
#ifndef SC_UTIL_H
#define SC_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <ferry/ferry.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SC_REGIONS     2
#define SC_REGION_SIZE (64u << 10)

/* An agent with a LOCAL backend and SC_REGIONS registered DRAM regions. */
typedef struct sc_agent {
    ferry_agent *agent;
    uint8_t *mem[SC_REGIONS];
    ferry_dlist *region[SC_REGIONS]; /* one list per region */
    ferry_dlist *all;                /* every region */
} sc_agent;

static inline uint64_t sc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline void sc_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static inline ferry_status sc_register(sc_agent *a)
{
    ferry_status rc = ferry_dlist_create(FERRY_MEM_DRAM, SC_REGIONS, &a->all);
    for (int i = 0; i < SC_REGIONS && rc == FERRY_OK; i++) {
        a->mem[i] = calloc(1, SC_REGION_SIZE);
        if (!a->mem[i])
            return FERRY_ERR_NO_MEMORY;
        rc = ferry_dlist_create(FERRY_MEM_DRAM, 1, &a->region[i]);
        if (rc == FERRY_OK)
            rc = ferry_dlist_add(a->region[i], (uintptr_t)a->mem[i], SC_REGION_SIZE, 0);
        if (rc == FERRY_OK)
            rc = ferry_dlist_add(a->all, (uintptr_t)a->mem[i], SC_REGION_SIZE, 0);
    }
    return rc == FERRY_OK ? ferry_register(a->agent, a->all, NULL) : rc;
}

/* Creates an agent from cfg with a LOCAL backend and registered memory. */
static inline ferry_status sc_open_cfg(sc_agent *a, const ferry_agent_config *cfg)
{
    memset(a, 0, sizeof(*a));
    ferry_backend *be;
    ferry_status rc = ferry_agent_create(cfg, &a->agent);
    if (rc == FERRY_OK)
        rc = ferry_backend_create(a->agent, "LOCAL", NULL, 0, &be);
    if (rc == FERRY_OK)
        rc = sc_register(a);
    return rc;
}

/* Creates an agent; listen_port 0 with listen picks a free port;
 * max_frame 0: the default. */
static inline ferry_status sc_open_ex(sc_agent *a, const char *name, bool listen,
                                      uint16_t listen_port, uint32_t timeout_ms, uint32_t max_frame)
{
    memset(a, 0, sizeof(*a));
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = name;
    cfg.listen = listen;
    cfg.listen_host = "127.0.0.1";
    cfg.listen_port = listen_port;
    cfg.sc_timeout_ms = timeout_ms;
    cfg.sc_max_frame = max_frame;
    ferry_backend *be;
    ferry_status rc = ferry_agent_create(&cfg, &a->agent);
    if (rc == FERRY_OK)
        rc = ferry_backend_create(a->agent, "LOCAL", NULL, 0, &be);
    if (rc == FERRY_OK)
        rc = sc_register(a);
    return rc;
}

static inline ferry_status sc_open(sc_agent *a, const char *name, bool listen, uint16_t listen_port,
                                   uint32_t timeout_ms)
{
    return sc_open_ex(a, name, listen, listen_port, timeout_ms, 0);
}

static inline void sc_close(sc_agent *a)
{
    ferry_agent_destroy(a->agent);
    for (int i = 0; i < SC_REGIONS; i++) {
        ferry_dlist_destroy(a->region[i]);
        free(a->mem[i]);
    }
    ferry_dlist_destroy(a->all);
    memset(a, 0, sizeof(*a));
}

static inline uint16_t sc_port(sc_agent *a)
{
    uint16_t port = 0;
    if (ferry_md_listen_port(a->agent, &port) != FERRY_OK)
        return 0;
    return port;
}

/* A loopback port that was free a moment ago (bound, read, closed). */
static inline uint16_t sc_free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    uint16_t port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, len) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* A blocking TCP connection from the loopback address `from` (NULL: any)
 * to the IPv4 address `to`:port, or -1 (errno says why). */
static inline int sc_raw_connect_from(const char *from, const char *to, uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct sockaddr_in src = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok = fd >= 0 && inet_pton(AF_INET, to, &sa.sin_addr) == 1;
    if (ok && from)
        ok = inet_pton(AF_INET, from, &src.sin_addr) == 1 &&
             bind(fd, (struct sockaddr *)&src, sizeof(src)) == 0;
    if (ok)
        ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    if (!ok && fd >= 0) {
        int err = errno;
        close(fd);
        errno = err;
        fd = -1;
    }
    return fd;
}

/* A blocking TCP connection to 127.0.0.1:port, or -1. */
static inline int sc_raw_connect(uint16_t port)
{
    return sc_raw_connect_from(NULL, "127.0.0.1", port);
}

static inline bool sc_raw_send(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Reads exactly len bytes within ms; false on EOF, error or timeout. */
static inline bool sc_raw_recv(int fd, void *buf, size_t len, unsigned ms)
{
    uint8_t *p = buf;
    uint64_t end = sc_now_ms() + ms;
    while (len) {
        uint64_t now = sc_now_ms();
        struct pollfd pfd = {fd, POLLIN, 0};
        if (now >= end || poll(&pfd, 1, (int)(end - now)) <= 0)
            return false;
        ssize_t n = recv(fd, p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Waits up to ms for the peer to close fd (EOF or reset; data is drained).
 * Returns the milliseconds it took, or -1 when still open. */
static inline long sc_wait_closed(int fd, unsigned ms)
{
    uint64_t start = sc_now_ms(), end = start + ms;
    for (;;) {
        uint64_t now = sc_now_ms();
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, now < end ? (int)(end - now) : 0) <= 0)
            return -1;
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return (long)(sc_now_ms() - start);
    }
}

/* ---- frames written byte by byte, as docs/side-channel.md describes ---- */

static inline void sc_le(uint8_t *out, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        out[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t sc_get_le(const uint8_t *in, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v |= (uint64_t)in[i] << (8 * i);
    return v;
}

/* The 12-byte header: "FYSC", major, minor, type, flags, u32 length. */
static inline void sc_hdr(uint8_t out[12], uint8_t major, uint8_t type, uint32_t len)
{
    memcpy(out, "FYSC", 4);
    out[4] = major;
    out[5] = 0;
    out[6] = type;
    out[7] = 0;
    sc_le(out + 8, len, 4);
}

/* u16 length + bytes. */
static inline size_t sc_str(uint8_t *out, const char *s)
{
    size_t n = strlen(s);
    sc_le(out, n, 2);
    memcpy(out + 2, s, n);
    return 2 + n;
}

enum { SC_LOAD = 1, SC_FETCH = 2, SC_INVALIDATE = 3, SC_REPLY = 4 };

/* Builds a FETCH frame into out (>= 12 + 4 + names); returns its size. */
static inline size_t sc_fetch_frame(uint8_t *out, const char *name, const char *label)
{
    size_t n = sc_str(out + 12, name);
    n += sc_str(out + 12 + n, label);
    sc_hdr(out, 1, SC_FETCH, (uint32_t)n);
    return 12 + n;
}

/* Reads a REPLY: status and body (malloc'd, caller frees; NULL when none). */
static inline bool sc_read_reply(int fd, int32_t *status, uint8_t **body, size_t *body_len)
{
    uint8_t h[16];
    if (!sc_raw_recv(fd, h, sizeof(h), 5000) || memcmp(h, "FYSC", 4) || h[4] != 1 ||
        h[6] != SC_REPLY)
        return false;
    uint32_t len = (uint32_t)sc_get_le(h + 8, 4);
    if (len < 4)
        return false;
    *status = (int32_t)(uint32_t)sc_get_le(h + 12, 4);
    *body_len = len - 4;
    *body = *body_len ? malloc(*body_len) : NULL;
    return !*body_len || (*body && sc_raw_recv(fd, *body, *body_len, 5000));
}

#endif
