/* SPDX-License-Identifier: Apache-2.0 */
/* The side channel against hostile peers, over raw loopback sockets.
 *
 * Listener side: garbage, bad magic, other major versions, unknown types,
 * giant length fields, truncated frames, stalled and idle connections, a
 * flood of connections, malformed payloads. After each, the listener must
 * still serve a good fetch, and the bad connection must be closed.
 * Client side: a fake server that closes, resets, stalls or answers
 * nonsense; every fetch must end with the right error within its bound.
 * SIGPIPE keeps its default action (kill), so any write that raised it
 * would end this program. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#include "sc_util.h"
#include "harness.h"

#define LISTENER_TIMEOUT_MS 500u
#define LISTENER_MAX_FRAME  (1u << 20)

/* A listening agent "L" (short timeout, 1 MiB frames) and a client "C". */
typedef struct pair {
    sc_agent l, c;
    uint16_t port;
} pair;

static bool pair_open(pair *p)
{
    if (sc_open_ex(&p->l, "L", true, 0, LISTENER_TIMEOUT_MS, LISTENER_MAX_FRAME) != FERRY_OK ||
        sc_open(&p->c, "C", false, 0, 3000) != FERRY_OK)
        return false;
    p->port = sc_port(&p->l);
    return p->port != 0;
}

static void pair_close(pair *p)
{
    sc_close(&p->c);
    sc_close(&p->l);
}

/* The listener still serves: C fetches L's metadata, then forgets it. */
static bool good_fetch(pair *p)
{
    ferry_status rc = ferry_md_fetch_wait(p->c.agent, "L", "127.0.0.1", p->port, NULL, 3000);
    if (rc != FERRY_OK)
        printf("# good fetch failed: %s\n", ferry_strerror(rc));
    ferry_md_invalidate(p->c.agent, "L");
    return rc == FERRY_OK;
}

/* After a burst of connections, the listener may not have reaped all of
 * them yet (slow under sanitizers); while its 64 slots are full it refuses
 * newcomers by closing them. So try for a while before calling it broken. */
static bool good_fetch_after_burst(pair *p)
{
    for (uint64_t end = sc_now_ms() + 3000; !good_fetch(p); sc_sleep_ms(50))
        if (sc_now_ms() > end)
            return false;
    return true;
}

/* Sends bytes on a fresh connection; the listener must close it at once. */
static bool closed_after(pair *p, const void *bytes, size_t len)
{
    int fd = sc_raw_connect(p->port);
    if (fd < 0)
        return false;
    bool sent = sc_raw_send(fd, bytes, len);
    long ms = sc_wait_closed(fd, 2000);
    close(fd);
    return sent && ms >= 0 && ms < (long)LISTENER_TIMEOUT_MS;
}

/* ---- listener side ---- */

static void test_garbage(void)
{
    pair p;
    FY_REQUIRE(pair_open(&p));
    uint8_t junk[256];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(junk); i++) {
        x = x * 1103515245u + 12345u;
        junk[i] = (uint8_t)(x >> 16);
    }
    junk[0] = 'G'; /* surely not "FYSC" */
    FY_CHECK(closed_after(&p, junk, sizeof(junk)));
    FY_CHECK(closed_after(&p, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27));
    FY_CHECK(good_fetch(&p));
    pair_close(&p);
}

static void test_bad_header_fields(void)
{
    pair p;
    FY_REQUIRE(pair_open(&p));
    uint8_t h[12 + 8] = {0};
    sc_hdr(h, 1, SC_FETCH, 8);
    memcpy(h, "FYSX", 4);
    FY_CHECK(closed_after(&p, h, sizeof(h))); /* bad magic */
    sc_hdr(h, 2, SC_FETCH, 8);
    FY_CHECK(closed_after(&p, h, sizeof(h))); /* major 2 */
    sc_hdr(h, 0, SC_FETCH, 8);
    FY_CHECK(closed_after(&p, h, sizeof(h))); /* major 0 */
    sc_hdr(h, 1, 0, 8);
    FY_CHECK(closed_after(&p, h, sizeof(h))); /* type 0 */
    sc_hdr(h, 1, 77, 8);
    FY_CHECK(closed_after(&p, h, sizeof(h))); /* unknown type */
    sc_hdr(h, 1, SC_REPLY, 8);
    FY_CHECK(closed_after(&p, h, sizeof(h))); /* a reply is not a request */
    FY_CHECK(good_fetch(&p));
    pair_close(&p);
}

static void test_oversized_length(void)
{
    pair p;
    FY_REQUIRE(pair_open(&p));
    uint8_t h[12];
    /* Refused on the header alone: nothing is allocated for it. */
    sc_hdr(h, 1, SC_LOAD, 0xffffffffu);
    FY_CHECK(closed_after(&p, h, sizeof(h)));
    sc_hdr(h, 1, SC_LOAD, LISTENER_MAX_FRAME + 1);
    FY_CHECK(closed_after(&p, h, sizeof(h)));
    FY_CHECK(good_fetch(&p));
    pair_close(&p);
}

static void test_truncated_then_close(void)
{
    pair p;
    FY_REQUIRE(pair_open(&p));
    for (size_t cut = 1; cut < 20; cut += 3) {
        uint8_t frame[64];
        size_t n = sc_fetch_frame(frame, "L", "");
        int fd = sc_raw_connect(p.port);
        FY_REQUIRE(fd >= 0);
        FY_CHECK(sc_raw_send(fd, frame, cut < n ? cut : n - 1));
        close(fd);
    }
    /* Also a large frame cut short after some of its payload. */
    int fd = sc_raw_connect(p.port);
    FY_REQUIRE(fd >= 0);
    uint8_t big[12 + 4096] = {0};
    sc_hdr(big, 1, SC_LOAD, 100000);
    FY_CHECK(sc_raw_send(fd, big, sizeof(big)));
    close(fd);
    FY_CHECK(good_fetch(&p));
    pair_close(&p);
}

/* A peer that stops mid-frame: others are served meanwhile, and it is cut
 * off after the listener's timeout. */
static void test_stalled_connection(void)
{
    pair p;
    FY_REQUIRE(pair_open(&p));
    int fd = sc_raw_connect(p.port);
    FY_REQUIRE(fd >= 0);
    uint8_t frame[64];
    sc_fetch_frame(frame, "L", "");
    uint64_t t0 = sc_now_ms();
    FY_CHECK(sc_raw_send(fd, frame, 7)); /* half a header */
    FY_CHECK(good_fetch(&p));
    long ms = sc_wait_closed(fd, 3000);
    uint64_t took = sc_now_ms() - t0;
    printf("# stalled connection closed after %llu ms (sc_timeout_ms %u)\n",
           (unsigned long long)took, LISTENER_TIMEOUT_MS);
    FY_CHECK(ms >= 0);
    FY_CHECK(took >= LISTENER_TIMEOUT_MS - 50 && took < 3 * LISTENER_TIMEOUT_MS);
    close(fd);
    /* An idle connection (nothing sent) is dropped the same way. */
    fd = sc_raw_connect(p.port);
    FY_REQUIRE(fd >= 0);
    FY_CHECK(sc_wait_closed(fd, 3000) >= 0);
    close(fd);
    FY_CHECK(good_fetch(&p));
    pair_close(&p);
}

/* Far more connections than slots: the extra ones are closed at once, the
 * rest time out, and the listener serves again afterwards. */
static void test_flood(void)
{
    enum { N = 200 };
    pair p;
    FY_REQUIRE(pair_open(&p));
    int fds[N];
    int opened = 0;
    for (int i = 0; i < N; i++)
        if ((fds[i] = sc_raw_connect(p.port)) >= 0)
            opened++;
    FY_CHECK_EQ(opened, N);
    /* Well within the listener's timeout: only refusals have closed yet. */
    sc_sleep_ms(150);
    int refused = 0;
    for (int i = 0; i < N; i++)
        if (fds[i] >= 0 && sc_wait_closed(fds[i], 0) >= 0)
            refused++;
    printf("# %d of %d connections refused at once (64 slots)\n", refused, N);
    FY_CHECK(refused >= N - 64 - 8); /* a few may still sit in the backlog */
    for (int i = 0; i < N; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    FY_CHECK(good_fetch_after_burst(&p));
    pair_close(&p);
}

/* Well-formed requests by hand, two pipelined on one connection. */
static void test_raw_fetch_pipelined(void)
{
    pair p;
    FY_REQUIRE(pair_open(&p));
    int fd = sc_raw_connect(p.port);
    FY_REQUIRE(fd >= 0);
    uint8_t frames[256];
    size_t n = sc_fetch_frame(frames, "L", "");
    n += sc_fetch_frame(frames + n, "someone-else", "metadata");
    FY_CHECK(sc_raw_send(fd, frames, n));
    int32_t status = 1;
    uint8_t *body = NULL;
    size_t body_len = 0;
    FY_CHECK(sc_read_reply(fd, &status, &body, &body_len));
    FY_CHECK_EQ(status, FERRY_OK);
    FY_CHECK(body_len > 0);
    char name[FERRY_NAME_MAX + 1] = "";
    if (body)
        FY_CHECK_EQ(ferry_md_load(p.c.agent, body, body_len, name, sizeof(name)), FERRY_OK);
    FY_CHECK(!strcmp(name, "L"));
    free(body);
    FY_CHECK(sc_read_reply(fd, &status, &body, &body_len));
    FY_CHECK_EQ(status, FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(body_len, 0);
    free(body);
    close(fd);
    pair_close(&p);
}

static void test_malformed_payloads(void)
{
    pair p;
    FY_REQUIRE(pair_open(&p));
    uint8_t f[12 + 600] = {0};
    /* FETCH: name length past the payload. */
    sc_hdr(f, 1, SC_FETCH, 4);
    sc_le(f + 12, 200, 2);
    FY_CHECK(closed_after(&p, f, 16));
    /* FETCH: empty name. */
    sc_hdr(f, 1, SC_FETCH, 4);
    sc_le(f + 12, 0, 2);
    sc_le(f + 14, 0, 2);
    FY_CHECK(closed_after(&p, f, 16));
    /* FETCH: name over 255 bytes. */
    sc_hdr(f, 1, SC_FETCH, 2 + 300 + 2);
    sc_le(f + 12, 300, 2);
    memset(f + 14, 'n', 300);
    sc_le(f + 314, 0, 2);
    FY_CHECK(closed_after(&p, f, 12 + 304));
    /* FETCH: a NUL inside the name. */
    size_t n = sc_fetch_frame(f, "L\x01x", "");
    f[15] = 0;
    FY_CHECK(closed_after(&p, f, n));
    /* FETCH: trailing bytes from the same minor version. */
    n = sc_fetch_frame(f, "L", "");
    sc_le(f + 8, sc_get_le(f + 8, 4) + 3, 4);
    FY_CHECK(closed_after(&p, f, n + 3));
    /* INVALIDATE: shorter than its uid. */
    sc_hdr(f, 1, SC_INVALIDATE, 5);
    FY_CHECK(closed_after(&p, f, 17));
    /* LOAD: label length past the payload. */
    sc_hdr(f, 1, SC_LOAD, 2);
    sc_le(f + 12, 9, 2);
    FY_CHECK(closed_after(&p, f, 14));
    FY_CHECK(good_fetch(&p));
    pair_close(&p);
}

/* A newer minor version may append fields: they are skipped. */
static void test_newer_minor(void)
{
    pair p;
    FY_REQUIRE(pair_open(&p));
    uint8_t f[64];
    size_t n = sc_fetch_frame(f, "L", "");
    f[5] = 7; /* minor */
    sc_le(f + 8, sc_get_le(f + 8, 4) + 4, 4);
    memcpy(f + n, "new!", 4);
    int fd = sc_raw_connect(p.port);
    FY_REQUIRE(fd >= 0);
    FY_CHECK(sc_raw_send(fd, f, n + 4));
    int32_t status = 1;
    uint8_t *body = NULL;
    size_t body_len = 0;
    FY_CHECK(sc_read_reply(fd, &status, &body, &body_len));
    FY_CHECK_EQ(status, FERRY_OK);
    free(body);
    close(fd);
    pair_close(&p);
}

/* A bad blob is the sender's problem, not a protocol error: the reply says
 * so and the connection stays usable. */
static void test_load_bad_blob(void)
{
    pair p;
    FY_REQUIRE(pair_open(&p));
    uint8_t f[12 + 2 + 1 + 50];
    memset(f, 0xa5, sizeof(f));
    sc_hdr(f, 1, SC_LOAD, sizeof(f) - 12);
    sc_str(f + 12, "x");
    int fd = sc_raw_connect(p.port);
    FY_REQUIRE(fd >= 0);
    FY_CHECK(sc_raw_send(fd, f, sizeof(f)));
    int32_t status = 1;
    uint8_t *body = NULL;
    size_t body_len = 0;
    FY_CHECK(sc_read_reply(fd, &status, &body, &body_len));
    FY_CHECK_EQ(status, FERRY_ERR_BAD_METADATA);
    free(body);
    /* An empty blob too. */
    sc_hdr(f, 1, SC_LOAD, 3);
    FY_CHECK(sc_raw_send(fd, f, 15));
    FY_CHECK(sc_read_reply(fd, &status, &body, &body_len));
    FY_CHECK_EQ(status, FERRY_ERR_BAD_METADATA);
    free(body);
    size_t n = sc_fetch_frame(f, "L", "");
    FY_CHECK(sc_raw_send(fd, f, n));
    FY_CHECK(sc_read_reply(fd, &status, &body, &body_len));
    FY_CHECK_EQ(status, FERRY_OK);
    free(body);
    close(fd);
    pair_close(&p);
}

/* Peers that ask and leave (reset) before the reply: no SIGPIPE. */
static void test_reader_gone(void)
{
    pair p;
    FY_REQUIRE(pair_open(&p));
    for (int i = 0; i < 50; i++) {
        uint8_t f[64];
        size_t n = sc_fetch_frame(f, "L", "");
        int fd = sc_raw_connect(p.port);
        FY_REQUIRE(fd >= 0);
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        FY_CHECK(sc_raw_send(fd, f, n));
        if (i % 2)
            sc_sleep_ms(1);
        close(fd); /* RST */
    }
    FY_CHECK(good_fetch_after_burst(&p));
    pair_close(&p);
}

/* Random frames with a valid header start: never a crash. */
static void test_random_frames(void)
{
    pair p;
    FY_REQUIRE(pair_open(&p));
    uint32_t x = 99;
    for (int i = 0; i < 300; i++) {
        uint8_t f[12 + 64];
        for (size_t k = 0; k < sizeof(f); k++) {
            x = x * 1664525u + 1013904223u;
            f[k] = (uint8_t)(x >> 24);
        }
        size_t len = (x >> 8) % 64;
        sc_hdr(f, 1, (uint8_t)(1 + (x >> 4) % 4), (uint32_t)len);
        int fd = sc_raw_connect(p.port);
        FY_REQUIRE(fd >= 0);
        sc_raw_send(fd, f, 12 + len);
        close(fd);
    }
    FY_CHECK(good_fetch_after_burst(&p));
    pair_close(&p);
}

/* ---- client side: a fake listener ---- */

typedef enum fake_mode {
    FAKE_CLOSE,       /* close at once */
    FAKE_RESET,       /* reset at once */
    FAKE_GARBAGE,     /* answer bytes that are no frame */
    FAKE_GIANT,       /* a reply header announcing 4 GiB */
    FAKE_SILENT,      /* read the request, never answer */
    FAKE_ODD_STATUS,  /* a status code nobody knows */
    FAKE_BAD_BODY,    /* OK with garbage for metadata */
    FAKE_OTHER_AGENT, /* OK with some other agent's metadata */
    FAKE_SHORT_REPLY, /* a reply too short for its status */
    FAKE_WRONG_TYPE,  /* a FETCH instead of a REPLY */
    FAKE_TRUNCATED,   /* a reply cut short, then close */
} fake_mode;

typedef struct fake {
    int lfd;
    uint16_t port;
    fake_mode mode;
    void *blob; /* FAKE_OTHER_AGENT */
    size_t blob_len;
    pthread_t tid;
} fake;

static bool fake_read_request(int fd)
{
    uint8_t h[12], buf[1024];
    if (!sc_raw_recv(fd, h, sizeof(h), 3000))
        return false;
    uint32_t len = (uint32_t)sc_get_le(h + 8, 4);
    return len <= sizeof(buf) && sc_raw_recv(fd, buf, len, 3000);
}

static void fake_reply(int fd, int32_t status, const void *body, uint32_t len)
{
    uint8_t h[16];
    sc_hdr(h, 1, SC_REPLY, len + 4);
    sc_le(h + 12, (uint32_t)status, 4);
    sc_raw_send(fd, h, sizeof(h));
    if (len)
        sc_raw_send(fd, body, len);
}

static void fake_answer(fake *f, int fd)
{
    uint8_t h[16] = {0};
    switch (f->mode) {
    case FAKE_GARBAGE:
        sc_raw_send(fd, "HTTP/1.1 400 Bad Request\r\n\r\n", 28);
        break;
    case FAKE_GIANT:
        sc_hdr(h, 1, SC_REPLY, 0xfffffff0u);
        sc_raw_send(fd, h, 12);
        break;
    case FAKE_SILENT:
        sc_wait_closed(fd, 5000);
        break;
    case FAKE_ODD_STATUS:
        fake_reply(fd, 12345, NULL, 0);
        break;
    case FAKE_BAD_BODY:
        fake_reply(fd, 0, "not metadata at all, just bytes", 31);
        break;
    case FAKE_OTHER_AGENT:
        fake_reply(fd, 0, f->blob, (uint32_t)f->blob_len);
        break;
    case FAKE_SHORT_REPLY:
        sc_hdr(h, 1, SC_REPLY, 2);
        sc_raw_send(fd, h, 14);
        break;
    case FAKE_WRONG_TYPE:
        sc_hdr(h, 1, SC_FETCH, 4);
        sc_raw_send(fd, h, 16);
        break;
    default: /* FAKE_TRUNCATED */
        sc_hdr(h, 1, SC_REPLY, 100);
        sc_raw_send(fd, h, 14);
    }
}

static void *fake_main(void *arg)
{
    fake *f = arg;
    struct pollfd pfd = {f->lfd, POLLIN, 0};
    if (poll(&pfd, 1, 5000) != 1)
        return NULL;
    int fd = accept(f->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    if (f->mode == FAKE_RESET) {
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    } else if (f->mode != FAKE_CLOSE && fake_read_request(fd)) {
        fake_answer(f, fd);
        sc_sleep_ms(20); /* let the client read before the FIN */
    }
    close(fd);
    return NULL;
}

static bool fake_start(fake *f, fake_mode mode)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    f->mode = mode;
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&sa, len) < 0 || listen(f->lfd, 4) < 0 ||
        getsockname(f->lfd, (struct sockaddr *)&sa, &len) < 0)
        return false;
    f->port = ntohs(sa.sin_port);
    return pthread_create(&f->tid, NULL, fake_main, f) == 0;
}

static void fake_stop(fake *f)
{
    pthread_join(f->tid, NULL);
    close(f->lfd);
}

static ferry_status fetch_from_fake(sc_agent *c, fake *f, fake_mode mode, uint64_t *took)
{
    if (!fake_start(f, mode))
        return FERRY_ERR_UNKNOWN;
    uint64_t t0 = sc_now_ms();
    ferry_status rc = ferry_md_fetch_wait(c->agent, "F", "127.0.0.1", f->port, NULL, 5000);
    *took = sc_now_ms() - t0;
    fake_stop(f);
    return rc;
}

static void test_hostile_server(void)
{
    static const struct {
        fake_mode mode;
        ferry_status expect;
    } cases[] = {
        {FAKE_CLOSE, FERRY_ERR_IO},
        {FAKE_RESET, FERRY_ERR_IO},
        {FAKE_GARBAGE, FERRY_ERR_IO},
        {FAKE_GIANT, FERRY_ERR_IO},
        {FAKE_SILENT, FERRY_ERR_TIMEOUT},
        {FAKE_ODD_STATUS, FERRY_ERR_UNKNOWN},
        {FAKE_BAD_BODY, FERRY_ERR_BAD_METADATA},
        {FAKE_OTHER_AGENT, FERRY_ERR_BAD_METADATA},
        {FAKE_SHORT_REPLY, FERRY_ERR_IO},
        {FAKE_WRONG_TYPE, FERRY_ERR_IO},
        {FAKE_TRUNCATED, FERRY_ERR_IO},
    };
    sc_agent c, z;
    FY_REQUIRE(sc_open_ex(&c, "C", false, 0, 400, 1u << 20) == FERRY_OK);
    FY_REQUIRE(sc_open(&z, "Z", false, 0, 400) == FERRY_OK);
    fake f = {0};
    FY_REQUIRE(ferry_md_get_local(z.agent, &f.blob, &f.blob_len) == FERRY_OK);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t took = 0;
        ferry_status rc = fetch_from_fake(&c, &f, cases[i].mode, &took);
        if (rc != cases[i].expect)
            printf("# fake mode %d: got %s, expected %s\n", (int)cases[i].mode,
                   ferry_status_name(rc), ferry_status_name(cases[i].expect));
        FY_CHECK_EQ(rc, cases[i].expect);
        FY_CHECK(took < 1500); /* sc_timeout_ms 400 bounds every case */
    }
    ferry_free(f.blob);
    sc_close(&z);
    sc_close(&c);
}

/* Sending to a peer that resets at once: an error, never SIGPIPE. */
static void test_send_to_resetting_peer(void)
{
    sc_agent c;
    FY_REQUIRE(sc_open(&c, "C", false, 0, 400) == FERRY_OK);
    for (int i = 0; i < 20; i++) {
        fake f = {0};
        FY_REQUIRE(fake_start(&f, i % 2 ? FAKE_RESET : FAKE_CLOSE));
        ferry_status rc = ferry_md_send_local(c.agent, "127.0.0.1", f.port);
        fake_stop(&f);
        FY_CHECK(rc == FERRY_ERR_IO);
    }
    sc_close(&c);
}

int main(void)
{
    signal(SIGPIPE, SIG_DFL);
    FY_RUN(test_garbage);
    FY_RUN(test_bad_header_fields);
    FY_RUN(test_oversized_length);
    FY_RUN(test_truncated_then_close);
    FY_RUN(test_stalled_connection);
    FY_RUN(test_flood);
    FY_RUN(test_raw_fetch_pipelined);
    FY_RUN(test_malformed_payloads);
    FY_RUN(test_newer_minor);
    FY_RUN(test_load_bad_blob);
    FY_RUN(test_reader_gone);
    FY_RUN(test_random_frames);
    FY_RUN(test_hostile_server);
    FY_RUN(test_send_to_resetting_peer);
    return fy_test_done();
}
