/* SPDX-License-Identifier: Apache-2.0 */
/* SHM between two real processes (shm_peer.c is the other one), for both
 * memory kinds: memfd (ferry_mem_alloc) and ordinary memory (malloc, by
 * cross-memory attach).
 *
 *   adhoc:    10k descriptors of random lengths written, the peer's buffer
 *             hashed against a shadow copy, then read back and compared
 *   prepped:  the same through prepared lists, in shuffled index order,
 *             posted three times with new data
 *   notif:    1000 writes, each with a notification; the peer checks each
 *             block when its notification arrives: all once, none early
 *   kill_target: kill -9 of the target is seen within milliseconds; a
 *             restarted target is reached by new requests
 *   kill_initiator: kill -9 of a peer writing into us; we serve the next one
 *   sigstop:  a stopped target: the first mapping of its memory fails after
 *             map_timeout_ms; data to a mapped region still moves; a
 *             notification that cannot be queued ends with the request's
 *             deadline; after SIGCONT all works again
 *   cma_denied: a peer whose kernel refuses cross-memory attach (a seccomp
 *             filter) declines SHM with the reason and falls back to UCX;
 *             SHM is chosen ahead of UCX even when created after it
 *
 *   test_shm_2proc SHM_PEER [memfd|malloc]
 * Every test runs under a watchdog; peers never outlive the driver. */
#include <errno.h>
#include <inttypes.h>
#include <time.h>

#include <ferry/ferry.h>

#include "harness.h"
#include "shm_proc.h"

#define NDESC  10000u
#define NNOTIF 1000u

static const char *kind = "memfd";

typedef struct side {
    ferry_agent *agent;
    ferry_backend *shm, *ucx;
    uint8_t *buf;
} side;

/* ---- our agent ---- */

static ferry_status side_register(side *s)
{
    ferry_dlist *l = NULL;
    ferry_status rc = ferry_dlist_create(FERRY_MEM_DRAM, 1, &l);
    if (rc == FERRY_OK && (rc = ferry_dlist_add(l, (uintptr_t)s->buf, ST_BUF, 0)) == FERRY_OK)
        rc = ferry_register(s->agent, l, NULL);
    ferry_dlist_destroy(l);
    return rc;
}

static bool side_open(side *s, const char *name, bool ucx)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = name;
    cfg.progress_thread = true;
    void *b = NULL;
    memset(s, 0, sizeof(*s));
    if (ferry_agent_create(&cfg, &s->agent) != FERRY_OK ||
        ferry_backend_create(s->agent, "SHM", NULL, 0, &s->shm) != FERRY_OK ||
        (ucx && ferry_backend_create(s->agent, "UCX", NULL, 0, &s->ucx) != FERRY_OK))
        return false;
    if (!strcmp(kind, "memfd") &&
        ferry_mem_alloc(s->agent, s->shm, FERRY_MEM_DRAM, ST_BUF, 0, &b) != FERRY_OK)
        return false;
    s->buf = b ? b : aligned_alloc(4096, ST_BUF);
    if (!s->buf)
        return false;
    /* Defined bytes: a peer's cross-memory writes are the kernel's, which
     * valgrind does not see. */
    memset(s->buf, 0, ST_BUF);
    return side_register(s) == FERRY_OK;
}

static void side_close(side *s)
{
    bool own = strcmp(kind, "memfd") != 0;
    ferry_agent_destroy(s->agent);
    if (own)
        free(s->buf);
    memset(s, 0, sizeof(*s));
}

static bool side_load(side *s, const char *hex)
{
    return st_md_load(s->agent, hex) == FERRY_OK;
}

/* ---- descriptors ---- */

typedef struct layout {
    uint64_t off[NDESC], len[NDESC];
} layout;

/* NDESC ranges of 1..3000 bytes with gaps of 0..63, in order. */
static void layout_make(layout *L, unsigned seed)
{
    uint64_t at = 0;
    srand(seed);
    for (unsigned i = 0; i < NDESC; i++) {
        at += (uint64_t)(rand() % 64);
        L->off[i] = at;
        L->len[i] = 1 + (uint64_t)(rand() % 3000);
        at += L->len[i];
    }
}

static ferry_dlist *layout_list(const layout *L, const uint8_t *base)
{
    ferry_dlist *l = NULL;
    if (ferry_dlist_create(FERRY_MEM_DRAM, NDESC, &l) != FERRY_OK)
        return NULL;
    for (unsigned i = 0; i < NDESC; i++)
        ferry_dlist_add(l, (uintptr_t)base + L->off[i], L->len[i], 0);
    return l;
}

static void layout_apply(const layout *L, uint8_t *dst, const uint8_t *src)
{
    for (unsigned i = 0; i < NDESC; i++)
        memcpy(dst + L->off[i], src + L->off[i], L->len[i]);
}

static bool peer_hash_is(sp_peer *p, const uint8_t *shadow)
{
    char line[128];
    uint64_t h = 0;
    return sp_cmd(p, line, sizeof(line), "hash") && sscanf(line, "HASH %" SCNx64, &h) == 1 &&
           h == st_hash(shadow, ST_BUF);
}

/* ---- fixtures ---- */

typedef struct pair {
    side ini;
    sp_peer tgt;
    uint8_t *shadow; /* what the target's buffer holds */
} pair;

static bool pair_open(pair *P)
{
    memset(P, 0, sizeof(*P));
    P->shadow = malloc(ST_BUF);
    if (!P->shadow || !side_open(&P->ini, "ini", false) ||
        !sp_start(&P->tgt, "tgt", kind, NULL, NULL))
        return false;
    st_fill(P->shadow, ST_BUF, 1);
    return side_load(&P->ini, P->tgt.md);
}

static void pair_close(pair *P)
{
    sp_kill(&P->tgt);
    side_close(&P->ini);
    free(P->shadow);
}

static ferry_status xfer_lists(pair *P, ferry_xfer_op op, ferry_dlist *l, ferry_dlist *r,
                               const char *notif, ferry_xfer **x)
{
    ferry_xfer_opts o;
    ferry_xfer_opts_init(&o);
    o.notif = notif;
    o.notif_len = notif ? strlen(notif) : 0;
    return ferry_xfer_create(P->ini.agent, op, l, r, "tgt", &o, x);
}

/* One transfer of the whole buffer (or none of it: len). */
static ferry_status xfer_whole(pair *P, ferry_xfer_op op, uint64_t len, const char *notif,
                               ferry_xfer **x)
{
    ferry_dlist *l = NULL, *r = NULL;
    ferry_status rc = ferry_dlist_create(FERRY_MEM_DRAM, 1, &l);
    if (rc == FERRY_OK)
        rc = ferry_dlist_create(FERRY_MEM_DRAM, 1, &r);
    if (rc == FERRY_OK) {
        ferry_dlist_add(l, (uintptr_t)P->ini.buf, len, 0);
        ferry_dlist_add(r, P->tgt.base, len, 0);
        rc = xfer_lists(P, op, l, r, notif, x);
    }
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    return rc;
}

static bool backend_is_shm(ferry_xfer *x)
{
    return !strcmp(ferry_backend_name(ferry_xfer_backend(x)), "SHM");
}

/* ---- tests ---- */

static void test_adhoc(void)
{
    pair P;
    static layout L;
    ferry_xfer *w = NULL, *r = NULL;
    sp_watchdog(120);
    FY_REQUIRE(pair_open(&P));
    layout_make(&L, 11);
    ferry_dlist *ll = layout_list(&L, P.ini.buf);
    ferry_dlist *rl = layout_list(&L, (const uint8_t *)(uintptr_t)P.tgt.base);
    st_fill(P.ini.buf, ST_BUF, 7);
    FY_CHECK_EQ(xfer_lists(&P, FERRY_OP_WRITE, ll, rl, NULL, &w), FERRY_OK);
    FY_CHECK(w && backend_is_shm(w));
    FY_CHECK_EQ(st_wait(w, ferry_xfer_post(w)), FERRY_OK);
    layout_apply(&L, P.shadow, P.ini.buf);
    FY_CHECK(peer_hash_is(&P.tgt, P.shadow));
    st_fill(P.ini.buf, ST_BUF, 9);
    FY_CHECK_EQ(xfer_lists(&P, FERRY_OP_READ, ll, rl, NULL, &r), FERRY_OK);
    FY_CHECK_EQ(st_wait(r, ferry_xfer_post(r)), FERRY_OK);
    uint8_t *expect = malloc(ST_BUF);
    FY_REQUIRE(expect);
    st_fill(expect, ST_BUF, 9);
    layout_apply(&L, expect, P.shadow);
    FY_CHECK(!memcmp(expect, P.ini.buf, ST_BUF));
    free(expect);
    ferry_xfer_release(w);
    ferry_xfer_release(r);
    ferry_dlist_destroy(ll);
    ferry_dlist_destroy(rl);
    pair_close(&P);
}

static void shuffle(uint32_t *idx, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        idx[i] = i;
    for (unsigned i = n - 1; i > 0; i--) {
        unsigned j = (unsigned)rand() % (i + 1);
        uint32_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

static void test_prepped(void)
{
    pair P;
    static layout L;
    static uint32_t idx[NDESC];
    ferry_prepped *lp = NULL, *rp = NULL;
    ferry_xfer *x = NULL;
    sp_watchdog(120);
    FY_REQUIRE(pair_open(&P));
    layout_make(&L, 23);
    shuffle(idx, NDESC);
    ferry_dlist *ll = layout_list(&L, P.ini.buf);
    ferry_dlist *rl = layout_list(&L, (const uint8_t *)(uintptr_t)P.tgt.base);
    FY_CHECK_EQ(ferry_prep_dlist(P.ini.agent, NULL, ll, NULL, &lp), FERRY_OK);
    FY_CHECK_EQ(ferry_prep_dlist(P.ini.agent, "tgt", rl, NULL, &rp), FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_make(P.ini.agent, FERRY_OP_WRITE, lp, idx, rp, idx, NDESC, NULL, &x),
                FERRY_OK);
    FY_REQUIRE(x);
    for (unsigned round = 0; round < 3; round++) {
        st_fill(P.ini.buf, ST_BUF, 40 + round);
        FY_CHECK_EQ(st_wait(x, ferry_xfer_post(x)), FERRY_OK);
        layout_apply(&L, P.shadow, P.ini.buf);
        FY_CHECK(peer_hash_is(&P.tgt, P.shadow));
    }
    ferry_xfer_release(x);
    ferry_prepped_release(lp);
    ferry_prepped_release(rp);
    ferry_dlist_destroy(ll);
    ferry_dlist_destroy(rl);
    pair_close(&P);
}

/* Block i written with notification "n<i>". */
static ferry_status write_block(pair *P, unsigned i)
{
    char notif[16];
    ferry_dlist *l = NULL, *r = NULL;
    ferry_xfer *x = NULL;
    snprintf(notif, sizeof(notif), "n%u", i);
    memset(P->ini.buf + (size_t)i * ST_BLOCK, st_block_byte(i), ST_BLOCK);
    ferry_status rc = ferry_dlist_create(FERRY_MEM_DRAM, 1, &l);
    if (rc == FERRY_OK)
        rc = ferry_dlist_create(FERRY_MEM_DRAM, 1, &r);
    if (rc == FERRY_OK) {
        ferry_dlist_add(l, (uintptr_t)P->ini.buf + (size_t)i * ST_BLOCK, ST_BLOCK, 0);
        ferry_dlist_add(r, P->tgt.base + (uint64_t)i * ST_BLOCK, ST_BLOCK, 0);
        rc = xfer_lists(P, FERRY_OP_WRITE, l, r, notif, &x);
    }
    if (rc == FERRY_OK)
        rc = st_wait(x, ferry_xfer_post(x));
    ferry_xfer_release(x);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    return rc;
}

static void test_notif(void)
{
    pair P;
    char line[128];
    unsigned unique = 0, dups = 9, bad = 9, failed = 0;
    sp_watchdog(120);
    FY_REQUIRE(pair_open(&P));
    FY_REQUIRE(sp_cmd(&P.tgt, line, sizeof(line), "notifs %u 30000", NNOTIF) &&
               !strcmp(line, "LISTENING"));
    for (unsigned i = 0; i < NNOTIF; i++)
        failed += write_block(&P, i) != FERRY_OK;
    FY_CHECK_EQ(failed, 0);
    FY_REQUIRE(sp_line(&P.tgt, line, sizeof(line)));
    FY_CHECK_EQ(sscanf(line, "NOTIFS %u %u %u", &unique, &dups, &bad), 3);
    FY_CHECK_EQ(unique, NNOTIF);
    FY_CHECK_EQ(dups, 0);
    FY_CHECK_EQ(bad, 0);
    pair_close(&P);
}

/* Posts until the backend reports the peer gone; ms it took, or -1. */
static long until_disconnect(ferry_xfer *x, uint64_t limit_ms)
{
    uint64_t t0 = st_now_ms();
    while (st_now_ms() - t0 < limit_ms) {
        ferry_status rc = st_wait(x, ferry_xfer_post(x));
        if (rc == FERRY_ERR_REMOTE_DISCONNECT)
            return (long)(st_now_ms() - t0);
        if (rc != FERRY_OK)
            return -1;
        usleep(100);
    }
    return -1;
}

static void test_kill_target(void)
{
    pair P;
    ferry_xfer *x = NULL, *y = NULL;
    sp_watchdog(120);
    FY_REQUIRE(pair_open(&P));
    FY_REQUIRE(xfer_whole(&P, FERRY_OP_WRITE, 1 << 20, NULL, &x) == FERRY_OK);
    FY_CHECK_EQ(st_wait(x, ferry_xfer_post(x)), FERRY_OK);
    kill(P.tgt.pid, SIGKILL);
    waitpid(P.tgt.pid, NULL, 0);
    long ms = until_disconnect(x, 5000);
    printf("# kill -9 of the target seen after %ld ms\n", ms);
    FY_CHECK(ms >= 0 && ms < 100);
    sp_track(P.tgt.pid, 0);
    P.tgt.pid = 0;
    sp_kill(&P.tgt);
    /* Restarted: a new instance under the same name. */
    FY_REQUIRE(sp_start(&P.tgt, "tgt", kind, NULL, NULL) && side_load(&P.ini, P.tgt.md));
    FY_CHECK(st_wait(x, ferry_xfer_post(x)) != FERRY_OK); /* the old request is stale */
    st_fill(P.ini.buf, ST_BUF, 77);
    FY_CHECK_EQ(xfer_whole(&P, FERRY_OP_WRITE, ST_BUF, NULL, &y), FERRY_OK);
    FY_CHECK_EQ(st_wait(y, ferry_xfer_post(y)), FERRY_OK);
    FY_CHECK(peer_hash_is(&P.tgt, P.ini.buf));
    ferry_xfer_release(x);
    ferry_xfer_release(y);
    pair_close(&P);
}

/* A peer that writes into our buffer: it loads our metadata first. */
static bool start_writer(sp_peer *w, side *us)
{
    char line[256];
    char *md = st_md_hex(us->agent);
    bool ok = md && sp_start(w, "wr", kind, NULL, NULL) &&
              sp_cmd(w, line, sizeof(line), "load %s", md) && !strcmp(line, "OK");
    free(md);
    return ok;
}

static void test_kill_initiator(void)
{
    side us;
    sp_peer w;
    char line[256];
    sp_watchdog(120);
    FY_REQUIRE(side_open(&us, "tgt0", false));
    FY_REQUIRE(start_writer(&w, &us));
    FY_CHECK(sp_cmd(&w, line, sizeof(line), "spin tgt0 %" PRIx64, (uint64_t)(uintptr_t)us.buf) &&
             !strcmp(line, "SPINNING"));
    usleep(100000);
    sp_kill(&w); /* kill -9 in the middle of its writes */
    FY_REQUIRE(start_writer(&w, &us));
    FY_CHECK(
        sp_cmd(&w, line, sizeof(line), "write tgt0 %" PRIx64 " 5", (uint64_t)(uintptr_t)us.buf) &&
        !strcmp(line, "OK SHM"));
    uint8_t *expect = malloc(ST_BUF);
    FY_REQUIRE(expect);
    st_fill(expect, ST_BUF, 5);
    FY_CHECK(!memcmp(expect, us.buf, ST_BUF));
    free(expect);
    uint64_t end = st_now_ms() + 5000;
    ferry_status got = FERRY_ERR_NOT_FOUND;
    while (got != FERRY_OK && st_now_ms() < end) {
        got = ferry_notif_take_tag(us.agent, "wr", "w5", 2, false);
        usleep(1000);
    }
    FY_CHECK_EQ(got, FERRY_OK);
    sp_kill(&w);
    side_close(&us);
}

/* Posts one small write with a large notification until the stopped
 * peer's queue is full; returns that request (IN_PROGRESS) or NULL. */
static ferry_xfer *fill_queue(pair *P, ferry_xfer **all, unsigned *n)
{
    static char big[60000];
    memset(big, 'q', sizeof(big));
    big[sizeof(big) - 1] = '\0';
    for (*n = 0; *n < 2000; (*n)++) {
        if (xfer_whole(P, FERRY_OP_WRITE, 64, big, &all[*n]) != FERRY_OK)
            return NULL;
        ferry_xfer_set_timeout(all[*n], 300);
        ferry_status rc = ferry_xfer_post(all[*n]);
        if (rc == FERRY_IN_PROGRESS)
            return all[(*n)++];
        if (rc != FERRY_OK)
            return NULL;
    }
    return NULL;
}

/* memfd: mapping a stopped peer's region for the first time waits for its
 * fd server, bounded by map_timeout_ms (2 s by default). */
static bool first_map_bounded(pair *P)
{
    ferry_xfer *x = NULL;
    if (strcmp(kind, "memfd"))
        return true;
    sp_stop(P->tgt.pid);
    uint64_t t0 = st_now_ms();
    ferry_status rc = xfer_whole(P, FERRY_OP_WRITE, ST_BUF, NULL, &x);
    uint64_t ms = st_now_ms() - t0;
    kill(P->tgt.pid, SIGCONT);
    printf("# first mapping from a stopped peer: %s after %llu ms\n", ferry_strerror(rc),
           (unsigned long long)ms);
    ferry_xfer_release(x);
    return rc == FERRY_ERR_TIMEOUT && ms < 4000;
}

static void test_sigstop(void)
{
    pair P;
    static ferry_xfer *all[2000];
    unsigned n = 0;
    ferry_xfer *x = NULL;
    sp_watchdog(120);
    FY_REQUIRE(pair_open(&P));
    FY_CHECK(first_map_bounded(&P));
    FY_REQUIRE(xfer_whole(&P, FERRY_OP_WRITE, ST_BUF, NULL, &x) == FERRY_OK);
    sp_stop(P.tgt.pid);
    st_fill(P.ini.buf, ST_BUF, 3);
    FY_CHECK_EQ(st_wait(x, ferry_xfer_post(x)), FERRY_OK); /* data does not wait for it */
    ferry_xfer *stuck = fill_queue(&P, all, &n);
    FY_CHECK(stuck != NULL);
    uint64_t t0 = st_now_ms();
    ferry_status rc = stuck ? st_wait(stuck, FERRY_IN_PROGRESS) : FERRY_ERR_UNKNOWN;
    printf("# %u notifications queued; the next ended with %s after %llu ms\n", n,
           ferry_strerror(rc), (unsigned long long)(st_now_ms() - t0));
    FY_CHECK_EQ(rc, FERRY_ERR_TIMEOUT);
    FY_CHECK(st_now_ms() - t0 < 2000);
    for (unsigned i = 0; i < n; i++)
        ferry_xfer_release(all[i]);
    kill(P.tgt.pid, SIGCONT);
    FY_CHECK(peer_hash_is(&P.tgt, P.ini.buf));
    st_fill(P.ini.buf, ST_BUF, 4);
    FY_CHECK_EQ(st_wait(x, ferry_xfer_post(x)), FERRY_OK);
    FY_CHECK(peer_hash_is(&P.tgt, P.ini.buf));
    ferry_xfer_release(x);
    pair_close(&P);
}

/* A writer whose kernel refuses cross-memory attach: with the target's
 * ordinary memory, SHM declines it and the write goes by UCX; with memfd
 * memory too (the whole peer is declined). Control: without the filter,
 * SHM serves it. */
static void run_writer(side *us, const char *extra, const char *ucx, const char *expect)
{
    sp_peer w;
    char line[512], *md = st_md_hex(us->agent);
    FY_REQUIRE(md);
    FY_REQUIRE(sp_start(&w, "wr", kind, extra ? extra : ucx, extra ? ucx : NULL));
    FY_CHECK(sp_cmd(&w, line, sizeof(line), "load %s", md) && !strcmp(line, "OK"));
    FY_CHECK(
        sp_cmd(&w, line, sizeof(line), "write tgt0 %" PRIx64 " 8", (uint64_t)(uintptr_t)us->buf));
    printf("# writer%s%s: %s\n", extra ? " " : "", extra ? extra : "", line);
    FY_CHECK(!strcmp(line, expect));
    FY_CHECK(sp_cmd(&w, line, sizeof(line), "declined"));
    printf("# %s\n", line);
    FY_CHECK(!extra || strstr(line, "cross-memory attach") != NULL);
    sp_kill(&w);
    free(md);
}

static void test_cma_denied(void)
{
    side us;
    sp_watchdog(120);
    FY_REQUIRE(side_open(&us, "tgt0", true));
    run_writer(&us, NULL, "ucx", "OK SHM");
    run_writer(&us, NULL, "ucx-first", "OK SHM");
    run_writer(&us, "cma-denied", "ucx", "OK UCX");
    side_close(&us);
}

static bool have_ucx(void)
{
    ferry_agent *a = NULL;
    ferry_backend *be = NULL;
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = "probe";
    bool ok = ferry_agent_create(&cfg, &a) == FERRY_OK &&
              ferry_backend_create(a, "UCX", NULL, 0, &be) == FERRY_OK;
    ferry_agent_destroy(a);
    return ok;
}

static bool ucx_present;

static void test_cma_denied_maybe(void)
{
    if (!ucx_present)
        FY_SKIP("no UCX plugin in this build");
    test_cma_denied();
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    sp_exe = argv[1];
    if (argc > 2)
        kind = argv[2];
    signal(SIGPIPE, SIG_IGN);
    atexit(sp_kill_live);
    /* Loaded before any thread exists: glibc's dlopen loses 40 bytes of a
     * library's dependency list when other threads run (valgrind sees it). */
    ucx_present = have_ucx();
    FY_RUN(test_adhoc);
    FY_RUN(test_prepped);
    FY_RUN(test_notif);
    FY_RUN(test_kill_target);
    FY_RUN(test_kill_initiator);
    FY_RUN(test_sigstop);
    FY_RUN(test_cma_denied_maybe);
    return fy_test_done();
}
