/* SPDX-License-Identifier: Apache-2.0 */
/* The side-channel listener under load it must shed: idle connections
 * from many addresses or one, stalled LOADs announcing 256 MiB each, and a
 * listener that resets connections before it is really up. Legitimate
 * fetches must go through, quickly, and the listener's memory must stay
 * bounded. Also: the listener binds exactly the address it is given.
 * Loopback only: peers connect from 127.0.0.1 .. 127.0.0.9 (all local on
 * Linux) so that each has its own client address. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#include "sc_util.h"
#include "harness.h"

/* AddressSanitizer keeps freed memory in a quarantine (256 MiB by
 * default) before reusing it: under it, freed buffers stay resident, and
 * its own bookkeeping adds some more. */
#if defined(__SANITIZE_ADDRESS__)
#define ASAN_QUARANTINE_KIB (320L << 10)
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN_QUARANTINE_KIB (320L << 10)
#endif
#endif
#ifndef ASAN_QUARANTINE_KIB
#define ASAN_QUARANTINE_KIB 0L
#endif

/* VmRSS or VmHWM of this process, KiB. */
static long status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, field, n) && line[n] == ':')
            v = atol(line + n + 1);
    if (f)
        fclose(f);
    return v;
}

static ferry_status open_listener(sc_agent *l, const char *host, uint16_t port)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = "L";
    cfg.listen = true;
    cfg.listen_host = host;
    cfg.listen_port = port;
    return sc_open_cfg(l, &cfg); /* default 5 s timeout and 256 MiB frames */
}

static ferry_status timed_fetch(sc_agent *c, const char *host, uint16_t port, uint64_t *took)
{
    uint64_t t0 = sc_now_ms();
    ferry_status rc = ferry_md_fetch_wait(c->agent, "L", host, port, NULL, 4000);
    *took = sc_now_ms() - t0;
    ferry_md_invalidate(c->agent, "L");
    return rc;
}

/* Connections from 127.0.0.<first..first+addrs-1>, `each` per address. */
static int open_many(int *fds, uint16_t port, int first, int addrs, int each)
{
    int n = 0;
    for (int a = 0; a < addrs; a++) {
        char from[16];
        snprintf(from, sizeof(from), "127.0.0.%d", first + a);
        for (int i = 0; i < each; i++)
            if ((fds[n] = sc_raw_connect_from(from, "127.0.0.1", port)) >= 0)
                n++;
    }
    return n;
}

static void close_all(int *fds, int n)
{
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

/* A listener on 127.0.0.1 is not reachable through 127.0.0.2, and the
 * other way round. */
static void test_bind_exact(void)
{
    sc_agent l, c;
    FY_REQUIRE(open_listener(&l, "127.0.0.1", 0) == FERRY_OK);
    FY_REQUIRE(sc_open(&c, "C", false, 0, 1000) == FERRY_OK);
    int fd = sc_raw_connect_from(NULL, "127.0.0.2", sc_port(&l));
    FY_CHECK(fd < 0 && errno == ECONNREFUSED);
    if (fd >= 0)
        close(fd);
    uint64_t took;
    FY_CHECK_EQ(timed_fetch(&c, "127.0.0.1", sc_port(&l), &took), FERRY_OK);
    sc_close(&l);
    FY_REQUIRE(open_listener(&l, "127.0.0.2", 0) == FERRY_OK);
    fd = sc_raw_connect_from(NULL, "127.0.0.1", sc_port(&l));
    FY_CHECK(fd < 0 && errno == ECONNREFUSED);
    if (fd >= 0)
        close(fd);
    FY_CHECK_EQ(timed_fetch(&c, "127.0.0.2", sc_port(&l), &took), FERRY_OK);
    sc_close(&c);
    sc_close(&l);
}

/* 64 idle connections, 8 from each of 8 addresses, fill every slot: a
 * fetch from a ninth address still goes through at once. */
static void test_idle_flood_many_addresses(void)
{
    sc_agent l, c;
    FY_REQUIRE(open_listener(&l, "127.0.0.1", 0) == FERRY_OK);
    FY_REQUIRE(sc_open(&c, "C", false, 0, 3000) == FERRY_OK);
    int fds[64];
    int n = open_many(fds, sc_port(&l), 2, 8, 8);
    FY_CHECK_EQ(n, 64);
    sc_sleep_ms(50); /* let the listener accept them all */
    uint64_t took;
    FY_CHECK_EQ(timed_fetch(&c, "127.0.0.1", sc_port(&l), &took), FERRY_OK);
    printf("# fetch beside 64 idle connections: %llu ms\n", (unsigned long long)took);
    FY_CHECK(took < 1000);
    close_all(fds, n);
    sc_close(&c);
    sc_close(&l);
}

/* 64 idle connections from the fetcher's own address: that address keeps
 * only its 8 most recent, and the fetch goes through. */
static void test_idle_flood_one_address(void)
{
    sc_agent l, c;
    FY_REQUIRE(open_listener(&l, "127.0.0.1", 0) == FERRY_OK);
    FY_REQUIRE(sc_open(&c, "C", false, 0, 3000) == FERRY_OK);
    int fds[64];
    int n = open_many(fds, sc_port(&l), 1, 1, 64);
    FY_CHECK_EQ(n, 64);
    sc_sleep_ms(200);
    int closed = 0;
    for (int i = 0; i < n; i++)
        closed += sc_wait_closed(fds[i], 0) >= 0;
    printf("# %d of 64 connections from one address closed to make room\n", closed);
    FY_CHECK(closed >= 64 - 8);
    for (int i = n - 8; i < n; i++) /* the newest stay */
        FY_CHECK(sc_wait_closed(fds[i], 0) < 0);
    uint64_t took;
    FY_CHECK_EQ(timed_fetch(&c, "127.0.0.1", sc_port(&l), &took), FERRY_OK);
    FY_CHECK(took < 1000);
    close_all(fds, n);
    sc_close(&c);
    sc_close(&l);
}

/* A connection that sends no whole header is dropped after about 1 s,
 * long before the 5 s frame timeout. */
static void test_idle_dropped_fast(void)
{
    sc_agent l;
    FY_REQUIRE(open_listener(&l, "127.0.0.1", 0) == FERRY_OK);
    int fd = sc_raw_connect(sc_port(&l));
    FY_REQUIRE(fd >= 0);
    FY_CHECK(sc_raw_send(fd, "FYSC\x01", 5));
    long ms = sc_wait_closed(fd, 4000);
    printf("# half a header: closed after %ld ms\n", ms);
    FY_CHECK(ms >= 800 && ms < 2500);
    close(fd);
    sc_close(&l);
}

/* Sends as much as the socket takes now; false once the peer closed. */
static bool push(int fd, const uint8_t *buf, size_t len)
{
    ssize_t n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    return n >= 0 || errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/* 64 LOADs announcing `claim` bytes each and sending as fast as they can
 * for a second: the listener's memory stays near its 64 MiB buffer budget
 * (FERRY_SC_MAX_BUFFERED), and it serves a fetch afterwards. */
static void stalled_loads(uint32_t claim)
{
    enum { N = 64, CHUNK = 1 << 20 };
    static uint8_t buf[CHUNK];
    sc_agent l, c;
    FY_REQUIRE(open_listener(&l, "127.0.0.1", 0) == FERRY_OK);
    FY_REQUIRE(sc_open(&c, "C", false, 0, 3000) == FERRY_OK);
    memset(buf, 0x11, sizeof(buf));
    int fds[N];
    int n = open_many(fds, sc_port(&l), 2, 8, 8);
    FY_REQUIRE(n == N);
    FILE *clear = fopen("/proc/self/clear_refs", "w"); /* resets VmHWM */
    if (clear) {
        fputs("5", clear);
        fclose(clear);
    }
    long rss0 = status_kib("VmRSS");
    uint8_t h[12];
    sc_hdr(h, 1, SC_LOAD, claim);
    for (int i = 0; i < n; i++)
        sc_raw_send(fds[i], h, sizeof(h));
    int alive = n;
    for (uint64_t end = sc_now_ms() + 1000; sc_now_ms() < end && alive;) {
        alive = 0;
        for (int i = 0; i < n; i++)
            if (fds[i] >= 0 && push(fds[i], buf, sizeof(buf)))
                alive++;
        sc_sleep_ms(1);
    }
    long peak = status_kib("VmHWM");
    printf("# %u MiB claimed 64 times: RSS %ld KiB before, peak %ld KiB: +%ld MiB, %d senders "
           "still connected\n",
           claim >> 20, rss0, peak, (peak - rss0) >> 10, alive);
    /* Twice the budget: freed buffers the allocator keeps for a while
     * count in RSS too. Without the budget this grows past 1 GiB. */
    FY_CHECK(peak - rss0 < (160L << 10) + ASAN_QUARANTINE_KIB);
    close_all(fds, n);
    uint64_t took;
    FY_CHECK_EQ(timed_fetch(&c, "127.0.0.1", sc_port(&l), &took), FERRY_OK);
    sc_close(&c);
    sc_close(&l);
}

/* Each fits the budget alone, not all together: the greediest are cut. */
static void test_stalled_loads_within_frame_cap(void)
{
    stalled_loads(48u << 20);
}

/* Larger than the budget: refused on the header. */
static void test_stalled_huge_loads(void)
{
    stalled_loads(256u << 20);
}

/* A listener that resets every connection for its first 300 ms, then
 * goes away; the real one comes up on its port: a fetch started at the
 * beginning is retried and succeeds within its own timeout. */
typedef struct resetter {
    int lfd;
    uint16_t port;
    uint64_t until_ms;
    pthread_t tid;
} resetter;

static void *resetter_main(void *arg)
{
    resetter *r = arg;
    while (sc_now_ms() < r->until_ms) {
        struct pollfd pfd = {r->lfd, POLLIN, 0};
        if (poll(&pfd, 1, 10) != 1)
            continue;
        int fd = accept(r->lfd, NULL, NULL);
        struct linger lg = {1, 0};
        if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0)
            close(fd); /* RST */
    }
    close(r->lfd);
    return NULL;
}

static bool resetter_start(resetter *r, unsigned ms)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int one = 1;
    r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(r->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (r->lfd < 0 || bind(r->lfd, (struct sockaddr *)&sa, len) < 0 || listen(r->lfd, 16) < 0 ||
        getsockname(r->lfd, (struct sockaddr *)&sa, &len) < 0)
        return false;
    r->port = ntohs(sa.sin_port);
    r->until_ms = sc_now_ms() + ms;
    return pthread_create(&r->tid, NULL, resetter_main, r) == 0;
}

static void test_fetch_retries(void)
{
    sc_agent l, c;
    resetter r;
    FY_REQUIRE(sc_open(&c, "C", false, 0, 3000) == FERRY_OK);
    FY_REQUIRE(resetter_start(&r, 300));
    uint64_t t0 = sc_now_ms();
    FY_CHECK_EQ(ferry_md_fetch(c.agent, "L", "127.0.0.1", r.port, NULL), FERRY_OK);
    pthread_join(r.tid, NULL);
    FY_CHECK_EQ(ferry_md_fetch_check(c.agent, "L"), FERRY_IN_PROGRESS);
    FY_REQUIRE(open_listener(&l, "127.0.0.1", r.port) == FERRY_OK);
    ferry_status rc = ferry_md_fetch_wait(c.agent, "L", "127.0.0.1", r.port, NULL, 4000);
    printf("# fetch through resets: %s after %llu ms\n", ferry_status_name(rc),
           (unsigned long long)(sc_now_ms() - t0));
    FY_CHECK_EQ(rc, FERRY_OK);
    sc_close(&l);
    sc_close(&c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the flooders write to closed sockets */
    FY_RUN(test_stalled_loads_within_frame_cap);
    FY_RUN(test_stalled_huge_loads);
    FY_RUN(test_bind_exact);
    FY_RUN(test_idle_flood_many_addresses);
    FY_RUN(test_idle_flood_one_address);
    FY_RUN(test_idle_dropped_fast);
    FY_RUN(test_fetch_retries);
    return fy_test_done();
}
