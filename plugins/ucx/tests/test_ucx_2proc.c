/* SPDX-License-Identifier: Apache-2.0 */
/* UCX between two processes (issue #3): this driver and a ucx_peer child,
 * each with its own agent, UCX backend and side-channel listener. The
 * driver fetches the peer's metadata over the side channel, sends its own,
 * and moves data both ways; the peer checks on its side what the driver
 * cannot see (its buffer, byte for byte; notifications, exactly once and
 * only after their data). Every test starts and stops its own peer.
 *
 *   test_ucx_2proc PEER [options] [key=value ...]
 *     key=value          UCX backend param of both agents (error_handling=peer)
 *     --param k=v        ... of the driver only (devices=<its veth>)
 *     --peer-param k=v   ... of the peer only
 *     --host ADDR        the driver's listener address (default 127.0.0.1)
 *     --peer-host ADDR   the peer's listener address (default 127.0.0.1)
 *     --peer-ns NS       run the peer with `ip netns exec NS` (see netns.sh)
 *     --quick            16 MiB buffers, 2000 random descriptors instead of
 *                        64 MiB and 10000 (also FY_REMOTE_QUICK=1)
 *     --no-kill          skip the kill -9 tests (also FY_REMOTE_NO_KILL=1)
 *     --no-freeze        skip the frozen-peer test (a transport whose READs
 *                        need no progress of the peer: cross-memory attach)
 *   FY_REMOTE_ONLY=word runs only the tests whose name contains word.
 *   FY_RT_BACKEND=NAME runs both sides on that backend instead of UCX
 *   (plugins/libfabric/tests run LIBFABRIC so).
 *
 * Under valgrind (only the driver runs under it: children are not traced):
 *   FY_REMOTE_QUICK=1 meson test -C BUILD ucx_2proc ucx_2proc_peer \
 *     --wrap='valgrind --leak-check=full --error-exitcode=1' -t 10
 * The kill test runs there too; add FY_REMOTE_NO_KILL=1 to leave it out
 * (its 10 s detection bound may not hold on a slow host). netns.sh is a
 * shell script, so --wrap would trace the shell, not the driver. */
#include <stdio.h>
#include <stdlib.h>

#include <ferry/ferry.h>

#include "dlists.h"
#include "harness.h"
#include "rt_proc.h"

#define DRV_NAME      "rt-driver"
#define PEER_NAME     "rt-peer"
#define PEER_REGIONS  2
#define MIB           (1u << 20)
#define LEN_MAX       (64u << 10) /* random descriptors: 1 B .. 64 KiB */
#define XFER_MS       60000u      /* one transfer; generous for valgrind */
#define FETCH_MS      10000u
#define KILL_BOUND_MS 10000u /* a kill -9 must be noticed within this */
#define KILL_AFTER_MS 300u   /* of transfers, before the kill */
#define RELEASE_MS    10000u /* releasing a request to a dead peer */
#define RESTART_MS    15000u /* first transfer to a restarted peer */
#define SETTLE_MS     300u   /* for duplicate notifications to show up */
#define HANG_S        40u    /* a call still running after this hangs */
#define FREEZE_MS     500u   /* deadline of a READ from a frozen peer ... */
#define FREEZE_BOUND  3500u  /* ... reported within this (UCX's release: up to 2 s) */
#define MAX_PARAMS    16

/* ---- options ---- */

typedef struct rt_params {
    const char *raw[MAX_PARAMS]; /* "key=value", passed on to the peer */
    char keys[MAX_PARAMS][64];
    ferry_param p[MAX_PARAMS];
    size_t n;
} rt_params;

static struct {
    const char *peer_prog, *host, *peer_host, *peer_ns;
    rt_params common, mine, theirs;
    size_t size;  /* each side's buffer */
    size_t ndesc; /* descriptors of the random test */
    bool kill;
    bool freeze;
    bool alloc;          /* both sides' buffers from ferry_mem_alloc */
    int image_fd;        /* expected images for the peer's "cmp" ... */
    char image_path[64]; /* ... which opens them through /proc */
} opt;

static bool add_param(rt_params *ps, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv || ps->n == MAX_PARAMS || (size_t)(eq - kv) >= sizeof(ps->keys[0]))
        return false;
    memcpy(ps->keys[ps->n], kv, (size_t)(eq - kv));
    ps->keys[ps->n][eq - kv] = '\0';
    ps->p[ps->n] = (ferry_param){ps->keys[ps->n], eq + 1};
    ps->raw[ps->n++] = kv;
    return true;
}

static bool env_set(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0");
}

/* An option with a value (--host ADDR ...); false when unknown. */
static bool parse_valued(const char *a, const char *v)
{
    if (!strcmp(a, "--host"))
        opt.host = v;
    else if (!strcmp(a, "--peer-host"))
        opt.peer_host = v;
    else if (!strcmp(a, "--peer-ns"))
        opt.peer_ns = v;
    else if (!strcmp(a, "--param"))
        return add_param(&opt.mine, v);
    else if (!strcmp(a, "--peer-param"))
        return add_param(&opt.theirs, v);
    else
        return false;
    return true;
}

static bool parse_opts(int argc, char **argv)
{
    bool quick = env_set("FY_REMOTE_QUICK"), ok = argc > 1;
    opt.host = opt.peer_host = "127.0.0.1";
    opt.kill = !env_set("FY_REMOTE_NO_KILL");
    opt.freeze = true;
    opt.peer_prog = argc > 1 ? argv[1] : NULL;
    for (int i = 2; ok && i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = true;
        else if (!strcmp(argv[i], "--no-kill"))
            opt.kill = false;
        else if (!strcmp(argv[i], "--no-freeze"))
            opt.freeze = false;
        else if (!strcmp(argv[i], "--alloc"))
            opt.alloc = true;
        else if (strncmp(argv[i], "--", 2))
            ok = add_param(&opt.common, argv[i]);
        else {
            ok = i + 1 < argc && parse_valued(argv[i], argv[i + 1]);
            i++; /* its value */
        }
    }
    opt.size = quick ? 16 * MIB : 64 * MIB;
    opt.ndesc = quick ? 2000 : 10000;
    return ok;
}

/* The error_handling param in effect (UCX), or the backend, for messages. */
static const char *error_mode(void)
{
    if (strcmp(rt_backend(), "UCX"))
        return rt_backend();
    for (size_t i = 0; i < opt.common.n; i++)
        if (!strcmp(opt.common.keys[i], "error_handling"))
            return opt.common.p[i].value;
    return "peer";
}

/* ---- the two sides ---- */

typedef struct pair {
    ferry_agent *agent; /* the driver's */
    uint8_t *mem;       /* its one registered region */
    uint8_t *expect;    /* expected images */
    size_t size;
    uint16_t port; /* its listener */
    rt_peer peer;
} pair;

static ferry_status drv_agent(pair *x, ferry_backend **be)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = DRV_NAME;
    cfg.progress_thread = true;
    cfg.listen = true;
    cfg.listen_host = opt.host;
    ferry_param params[2 * MAX_PARAMS];
    size_t n = 0;
    for (size_t i = 0; i < opt.common.n; i++)
        params[n++] = opt.common.p[i];
    for (size_t i = 0; i < opt.mine.n; i++)
        params[n++] = opt.mine.p[i];
    ferry_status rc = ferry_agent_create(&cfg, &x->agent);
    if (rc == FERRY_OK)
        rc = ferry_backend_create(x->agent, rt_backend(), params, n, be);
    return rc == FERRY_OK ? ferry_md_listen_port(x->agent, &x->port) : rc;
}

static ferry_status drv_open(pair *x)
{
    memset(x, 0, sizeof(*x));
    x->size = opt.size;
    x->expect = malloc(x->size);
    if (!x->expect)
        return FERRY_ERR_NO_MEMORY;
    ferry_backend *be = NULL;
    ferry_status rc = drv_agent(x, &be);
    void *mem = NULL;
    if (rc == FERRY_OK && opt.alloc)
        rc = ferry_mem_alloc(x->agent, be, FERRY_MEM_DRAM, x->size, 0, &mem);
    else if (rc == FERRY_OK && !(mem = aligned_alloc(4096, x->size)))
        rc = FERRY_ERR_NO_MEMORY;
    if (rc != FERRY_OK)
        return rc;
    x->mem = mem;
    memset(x->mem, 0, x->size);
    ferry_dlist *l = rc == FERRY_OK ? fy_t_range_list((uintptr_t)x->mem, x->size) : NULL;
    if (rc == FERRY_OK)
        rc = l ? ferry_register(x->agent, l, NULL) : FERRY_ERR_NO_MEMORY;
    ferry_dlist_destroy(l);
    return rc;
}

/* The peer's regions, one descriptor each. */
static ferry_dlist *peer_regions(pair *x)
{
    ferry_dlist *l = NULL;
    ferry_status rc = ferry_dlist_create(FERRY_MEM_DRAM, x->peer.regions, &l);
    for (unsigned i = 0; rc == FERRY_OK && i < x->peer.regions; i++)
        rc = ferry_dlist_add(l, x->peer.base + i * x->peer.region_size, x->peer.region_size, 0);
    if (rc != FERRY_OK) {
        ferry_dlist_destroy(l);
        l = NULL;
    }
    return l;
}

/* Starts a ucx_peer named PEER_NAME (a new instance each time). */
static bool peer_start(pair *x)
{
    char size[32], regions[16];
    const char *argv[RT_MAX_ARGS];
    size_t n = 0;
    snprintf(size, sizeof(size), "%zu", x->size);
    snprintf(regions, sizeof(regions), "%u", PEER_REGIONS);
    if (opt.peer_ns) {
        const char *wrap[] = {"ip", "netns", "exec", opt.peer_ns};
        for (size_t i = 0; i < 4; i++)
            argv[n++] = wrap[i];
    }
    const char *fixed[] = {opt.peer_prog, PEER_NAME, size, regions, opt.peer_host};
    for (size_t i = 0; i < 5; i++)
        argv[n++] = fixed[i];
    if (opt.alloc)
        argv[n++] = "--alloc";
    for (size_t i = 0; i < opt.common.n; i++)
        argv[n++] = opt.common.raw[i];
    for (size_t i = 0; i < opt.theirs.n; i++)
        argv[n++] = opt.theirs.raw[i];
    argv[n] = NULL;
    return rt_spawn(&x->peer, (char **)argv) && rt_handshake(&x->peer) && x->peer.size == x->size;
}

/* Metadata both ways: fetch the peer's, send ours. */
static ferry_status pair_exchange(pair *x)
{
    ferry_status rc =
        ferry_md_fetch_wait(x->agent, PEER_NAME, opt.peer_host, x->peer.port, NULL, FETCH_MS);
    if (rc == FERRY_OK)
        rc = ferry_md_send_local(x->agent, opt.peer_host, x->peer.port);
    if (rc != FERRY_OK)
        printf("# metadata exchange: %s\n", ferry_status_name(rc));
    return rc;
}

/* Stops the peer and frees the driver; the peer's exit status (0: it
 * quit cleanly, so nothing crashed on its side). */
static int pair_close(pair *x)
{
    int status = x->peer.pid ? rt_stop(&x->peer) : 0;
    ferry_agent_destroy(x->agent); /* frees ferry_mem_alloc'd memory */
    if (!opt.alloc)
        free(x->mem);
    free(x->expect);
    memset(x, 0, sizeof(*x));
    return status;
}

static ferry_status pair_open(pair *x, bool exchange)
{
    ferry_status rc = drv_open(x);
    if (rc == FERRY_OK && !peer_start(x))
        rc = FERRY_ERR_IO;
    if (rc == FERRY_OK && exchange)
        rc = pair_exchange(x);
    if (rc != FERRY_OK) {
        printf("# setup: %s\n", ferry_status_name(rc));
        pair_close(x);
    }
    return rc;
}

/* ---- peer commands ---- */

/* Runs a command; true when the peer answered "OK". */
static bool peer_ok(pair *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool peer_ok(pair *x, const char *fmt, ...)
{
    char cmd[512], reply[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    bool sent = rt_cmd(&x->peer, reply, sizeof(reply), "%s", cmd);
    if (sent && !strcmp(reply, "OK"))
        return true;
    printf("# peer: \"%s\" answered \"%s\"\n", cmd, sent ? reply : "(nothing)");
    return false;
}

/* Byte-for-byte check of the peer's whole buffer against img. */
static bool peer_has(pair *x, const uint8_t *img)
{
    bool written = ftruncate(opt.image_fd, 0) == 0 && lseek(opt.image_fd, 0, SEEK_SET) == 0 &&
                   rt_write_all(opt.image_fd, (const char *)img, x->size);
    return written && peer_ok(x, "cmp %s", opt.image_path);
}

/* One "notifs" round: each "T <tag>" report counts in seen[tag - first];
 * a failed data check in *bad, anything else in *stray. */
static bool notif_round(pair *x, unsigned first, unsigned *seen, size_t n, unsigned *bad,
                        unsigned *stray)
{
    char line[512], verdict[8];
    unsigned tag;
    if (!rt_cmd(&x->peer, line, sizeof(line), "notifs " DRV_NAME))
        return false;
    while (strcmp(line, "END")) {
        bool ours = sscanf(line, "NOTIF %7s T %u", verdict, &tag) == 2 && tag - first < n;
        bool ok = ours && !strcmp(verdict, "ok");
        if (ours)
            seen[tag - first]++;
        *bad += ours && !ok;
        *stray += !ours;
        if (!ok)
            printf("# peer reported: %s\n", line);
        if (rt_read_line(&x->peer.from, line, sizeof(line), rt_now_ms() + RT_REPLY_MS) != 1)
            return false;
    }
    return true;
}

static size_t count_eq(const unsigned *seen, size_t n, unsigned v)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += seen[i] == v;
    return k;
}

/* Tags [first, first + n) must each reach the peer exactly once, with
 * their data in place when they arrived: waits (bounded) for all, then
 * SETTLE_MS more for duplicates. */
static void expect_notifs(pair *x, unsigned first, size_t n)
{
    unsigned *seen = calloc(n, sizeof(*seen)), bad = 0, stray = 0;
    FY_REQUIRE(seen);
    bool alive = true;
    for (uint64_t end = rt_now_ms() + XFER_MS; alive && count_eq(seen, n, 0);) {
        alive = rt_now_ms() < end && notif_round(x, first, seen, n, &bad, &stray);
        rt_sleep_ms(1);
    }
    rt_sleep_ms(SETTLE_MS);
    FY_CHECK(notif_round(x, first, seen, n, &bad, &stray));
    FY_CHECK_EQ(count_eq(seen, n, 1), n); /* exactly once each */
    FY_CHECK_EQ(bad, 0);                  /* after their data */
    FY_CHECK_EQ(stray, 0);
    free(seen);
}

/* The driver waits for a notification from the peer, equal to tag. */
static ferry_status wait_tag(pair *x, const char *tag)
{
    ferry_status rc;
    uint64_t end = rt_now_ms() + XFER_MS;
    while ((rc = ferry_notif_take_tag(x->agent, PEER_NAME, tag, strlen(tag), false)) ==
               FERRY_ERR_NOT_FOUND &&
           rt_now_ms() < end)
        rt_sleep_ms(1);
    return rc;
}

/* ---- descriptors ---- */

/* Segment i moves len bytes between local offset loff and remote roff. */
typedef struct seg {
    uint64_t loff, roff, len;
} seg;

static uint64_t rng_next(uint64_t *s)
{
    return rt_mix(*s += 0x9e3779b97f4a7c15ull);
}

static void shuffle(uint32_t *a, size_t n, uint64_t *rng)
{
    for (size_t i = 0; i < n; i++)
        a[i] = (uint32_t)i;
    for (size_t i = n; i > 1; i--) {
        size_t j = rng_next(rng) % i;
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

/* Places the segments, in the order given, at increasing offsets of
 * [0, size) with random gaps, none across a multiple of boundary (a
 * region border of the peer): the order being random, so are the
 * offsets, and no two segments overlap. */
static bool place(seg *s, const uint32_t *order, size_t n, uint64_t size, uint64_t boundary,
                  bool remote, uint64_t *rng)
{
    uint64_t total = 0, reserve = (size / boundary) * LEN_MAX, cur = 0;
    for (size_t i = 0; i < n; i++)
        total += s[i].len;
    if (total + reserve > size)
        return false;
    uint64_t gap_max = (size - total - reserve) / n;
    for (size_t i = 0; i < n; i++) {
        seg *g = &s[order[i]];
        cur += rng_next(rng) % (gap_max + 1);
        if (cur / boundary != (cur + g->len - 1) / boundary)
            cur = (cur / boundary + 1) * boundary;
        *(remote ? &g->roff : &g->loff) = cur;
        cur += g->len;
    }
    return cur <= size;
}

/* n segments, lengths 1 B .. 2^pow_max B spread over every power of two
 * (so tiny and large ones both occur), independent random placements on
 * each side: remote ones inside [0, rsize) without crossing a peer region. */
static seg *layout_pow(size_t n, uint64_t seed, uint64_t lsize, uint64_t rsize, uint64_t region,
                       unsigned pow_max)
{
    seg *s = calloc(n, sizeof(*s));
    uint32_t *order = calloc(n, sizeof(*order));
    uint64_t rng = seed;
    bool ok = s && order;
    for (size_t i = 0; ok && i < n; i++)
        s[i].len = 1 + rng_next(&rng) % (1ull << (rng_next(&rng) % (pow_max + 1)));
    if (ok)
        shuffle(order, n, &rng);
    ok = ok && place(s, order, n, lsize, lsize, false, &rng);
    if (ok)
        shuffle(order, n, &rng);
    ok = ok && place(s, order, n, rsize, region, true, &rng);
    free(order);
    if (!ok)
        free(s);
    return ok ? s : NULL;
}

/* Lengths up to LEN_MAX (64 KiB). */
static seg *layout(size_t n, uint64_t seed, uint64_t lsize, uint64_t rsize, uint64_t region)
{
    return layout_pow(n, seed, lsize, rsize, region, 16);
}

static seg *layout_full(pair *x, size_t n, uint64_t seed)
{
    return layout(n, seed, x->size, x->size, x->peer.region_size);
}

static uint32_t *index_array(size_t n, bool shuffled, uint64_t seed)
{
    uint32_t *idx = malloc((n ? n : 1) * sizeof(*idx));
    uint64_t rng = seed;
    if (idx && shuffled)
        shuffle(idx, n, &rng);
    for (size_t i = 0; idx && !shuffled && i < n; i++)
        idx[i] = (uint32_t)i;
    return idx;
}

/* The descriptors of the selected segments, on one side. */
static ferry_dlist *seg_list(uint64_t base, const seg *s, const uint32_t *idx, size_t k,
                             bool remote)
{
    ferry_dlist *l = NULL;
    ferry_status rc = ferry_dlist_create(FERRY_MEM_DRAM, k, &l);
    for (size_t j = 0; rc == FERRY_OK && j < k; j++) {
        const seg *g = &s[idx[j]];
        rc = ferry_dlist_add(l, base + (remote ? g->roff : g->loff), g->len, 0);
    }
    if (rc != FERRY_OK) {
        ferry_dlist_destroy(l);
        l = NULL;
    }
    return l;
}

/* img := pattern(base_seed), then each selected segment as the transfer
 * leaves it: pattern(src_seed) of its source range at its destination. */
static void image(uint8_t *img, size_t size, uint64_t base_seed, const seg *s, const uint32_t *idx,
                  size_t k, uint64_t src_seed, bool write)
{
    rt_pattern(img, base_seed, 0, size);
    for (size_t j = 0; j < k; j++) {
        const seg *g = &s[idx[j]];
        rt_pattern(img + (write ? g->roff : g->loff), src_seed, write ? g->loff : g->roff, g->len);
    }
}

static long long first_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return (long long)i;
    return -1;
}

/* ---- requests ---- */

typedef struct prep {
    ferry_prepped *local, *remote;
} prep;

static ferry_status prep_segs(pair *x, const seg *s, size_t n, prep *pp)
{
    uint32_t *idx = index_array(n, false, 0);
    ferry_dlist *l = idx ? seg_list((uintptr_t)x->mem, s, idx, n, false) : NULL;
    ferry_dlist *r = idx ? seg_list(x->peer.base, s, idx, n, true) : NULL;
    ferry_status rc =
        l && r ? ferry_prep_dlist(x->agent, NULL, l, NULL, &pp->local) : FERRY_ERR_NO_MEMORY;
    if (rc == FERRY_OK)
        rc = ferry_prep_dlist(x->agent, PEER_NAME, r, NULL, &pp->remote);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    free(idx);
    return rc;
}

static void prep_release(prep *pp)
{
    ferry_prepped_release(pp->local);
    ferry_prepped_release(pp->remote);
    pp->local = pp->remote = NULL;
}

/* A request moving the selected segments: made by index from prepared
 * lists when pp is given, else ad hoc from plain lists. */
static ferry_status make_xfer(pair *x, ferry_xfer_op op, const seg *s, const uint32_t *idx,
                              size_t k, const prep *pp, const char *notif, ferry_xfer **out)
{
    ferry_xfer_opts o;
    ferry_xfer_opts_init(&o);
    o.notif = notif;
    o.notif_len = notif ? strlen(notif) : 0;
    if (pp)
        return ferry_xfer_make(x->agent, op, pp->local, idx, pp->remote, idx, k, &o, out);
    ferry_dlist *l = seg_list((uintptr_t)x->mem, s, idx, k, false);
    ferry_dlist *r = seg_list(x->peer.base, s, idx, k, true);
    ferry_status rc =
        l && r ? ferry_xfer_create(x->agent, op, l, r, PEER_NAME, &o, out) : FERRY_ERR_NO_MEMORY;
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    return rc;
}

/* Waits up to ms for a posted request to leave IN_PROGRESS. */
static ferry_status wait_xfer(ferry_xfer *xf, ferry_status rc, uint64_t ms)
{
    for (uint64_t end = rt_now_ms() + ms; rc == FERRY_IN_PROGRESS;) {
        if (rt_now_ms() >= end)
            return FERRY_ERR_TIMEOUT;
        rt_sleep_us(100);
        rc = ferry_xfer_status(xf);
    }
    if (rc != FERRY_OK)
        printf("# request: %s (%s)\n", ferry_status_name(rc), ferry_xfer_error(xf));
    return rc;
}

static ferry_status post_wait(ferry_xfer *xf)
{
    return wait_xfer(xf, ferry_xfer_post(xf), XFER_MS);
}

/* The text of a notification the peer checks on arrival: tag and the
 * hash its buffer [off, off + len) must have by then. */
static void notif_text(char *buf, size_t cap, unsigned tag, uint64_t off, uint64_t len,
                       uint64_t hash)
{
    snprintf(buf, cap, "T %u %llu %llu %016llx", tag, (unsigned long long)off,
             (unsigned long long)len, (unsigned long long)hash);
}

/* ---- rounds: one verified transfer each ---- */

/* Seeds of a round: every round moves different bytes. */
#define LSEED(tag) (2ull * (tag) + 1000)
#define PSEED(tag) (2ull * (tag) + 1001)

/* WRITEs the selected segments with a notification; the peer's buffer
 * must then match the expected image byte for byte (and did when the
 * notification arrived), ours must be untouched. */
static void round_write(pair *x, const seg *s, const uint32_t *idx, size_t k, const prep *pp,
                        unsigned tag)
{
    char notif[128];
    FY_REQUIRE(peer_ok(x, "fill %llu", PSEED(tag)));
    rt_pattern(x->mem, LSEED(tag), 0, x->size);
    image(x->expect, x->size, PSEED(tag), s, idx, k, LSEED(tag), true);
    notif_text(notif, sizeof(notif), tag, 0, x->size, rt_hash(x->expect, x->size));
    ferry_xfer *xf = NULL;
    FY_REQUIRE(make_xfer(x, FERRY_OP_WRITE, s, idx, k, pp, notif, &xf) == FERRY_OK);
    FY_CHECK_EQ(post_wait(xf), FERRY_OK);
    FY_CHECK(peer_has(x, x->expect));
    FY_CHECK_EQ(rt_pattern_diff(x->mem, LSEED(tag), 0, x->size), -1);
    expect_notifs(x, tag, 1);
    FY_CHECK_EQ(ferry_xfer_release(xf), FERRY_OK);
}

/* READs the selected segments with a notification; our buffer must match
 * the expected image byte for byte, the peer's must be untouched. */
static void round_read(pair *x, const seg *s, const uint32_t *idx, size_t k, const prep *pp,
                       unsigned tag)
{
    char notif[128];
    FY_REQUIRE(peer_ok(x, "fill %llu", PSEED(tag)));
    rt_pattern(x->mem, LSEED(tag), 0, x->size);
    rt_pattern(x->expect, PSEED(tag), 0, x->size);
    notif_text(notif, sizeof(notif), tag, 0, x->size, rt_hash(x->expect, x->size));
    image(x->expect, x->size, LSEED(tag), s, idx, k, PSEED(tag), false);
    ferry_xfer *xf = NULL;
    FY_REQUIRE(make_xfer(x, FERRY_OP_READ, s, idx, k, pp, notif, &xf) == FERRY_OK);
    FY_CHECK_EQ(post_wait(xf), FERRY_OK);
    FY_CHECK_EQ(first_diff(x->mem, x->expect, x->size), -1);
    FY_CHECK(peer_ok(x, "check %llu 0 %zu", PSEED(tag), x->size));
    expect_notifs(x, tag, 1);
    FY_CHECK_EQ(ferry_xfer_release(xf), FERRY_OK);
}

/* A WRITE and a READ of n random segments, ad hoc or prepared. */
static void rounds(pair *x, size_t n, bool prepared, unsigned tag)
{
    seg *s = layout_full(x, n, tag);
    uint32_t *idx = index_array(n, prepared, tag); /* by index: in random order */
    prep pp = {0};
    FY_REQUIRE(s && idx);
    if (prepared)
        FY_CHECK_EQ(prep_segs(x, s, n, &pp), FERRY_OK);
    round_write(x, s, idx, n, prepared ? &pp : NULL, tag);
    round_read(x, s, idx, n, prepared ? &pp : NULL, tag + 1);
    prep_release(&pp);
    free(idx);
    free(s);
}

/* ---- tests ---- */

/* Metadata both ways over the side channel, a notification each way. */
static void test_exchange(void)
{
    pair x;
    FY_REQUIRE(pair_open(&x, true) == FERRY_OK);
    ferry_dlist *all = peer_regions(&x);
    FY_CHECK_EQ(ferry_md_check(x.agent, PEER_NAME, all), FERRY_OK);
    ferry_dlist_destroy(all);
    uint64_t gen = 0;
    FY_CHECK_EQ(ferry_md_generation(x.agent, PEER_NAME, &gen), FERRY_OK);
    FY_CHECK(peer_ok(&x, "knows " DRV_NAME));
    char msg[128];
    notif_text(msg, sizeof(msg), 7, 0, 0, rt_hash(NULL, 0));
    FY_CHECK_EQ(ferry_notif_send(x.agent, PEER_NAME, msg, strlen(msg), NULL), FERRY_OK);
    expect_notifs(&x, 7, 1);
    FY_CHECK(peer_ok(&x, "notify " DRV_NAME " pong"));
    FY_CHECK_EQ(wait_tag(&x, "pong"), FERRY_OK);
    FY_CHECK_EQ(pair_close(&x), 0);
}

static void test_adhoc_read_write(void)
{
    pair x;
    FY_REQUIRE(pair_open(&x, true) == FERRY_OK);
    rounds(&x, 16, false, 10);
    rounds(&x, 1, false, 12); /* a single descriptor */
    FY_CHECK_EQ(pair_close(&x), 0);
}

/* Prepared lists, requests made by index: half the slots written, the
 * other half read; slots left out must stay untouched. */
static void test_prepared_read_write(void)
{
    pair x;
    FY_REQUIRE(pair_open(&x, true) == FERRY_OK);
    const size_t n = 64;
    seg *s = layout_full(&x, n, 20);
    uint32_t even[32], odd[32];
    for (uint32_t i = 0; i < n / 2; i++) {
        even[i] = 2 * i;
        odd[i] = (uint32_t)n - 1 - 2 * i; /* backwards */
    }
    prep pp = {0};
    FY_REQUIRE(s);
    FY_CHECK_EQ(prep_segs(&x, s, n, &pp), FERRY_OK);
    FY_CHECK_EQ(ferry_prepped_count(pp.remote), n);
    round_write(&x, s, even, n / 2, &pp, 20);
    round_read(&x, s, odd, n / 2, &pp, 21);
    round_write(&x, s, odd, n / 2, &pp, 22);
    prep_release(&pp);
    free(s);
    FY_CHECK_EQ(pair_close(&x), 0);
}

/* opt.ndesc random descriptors (1 B .. 64 KiB, random non-overlapping
 * offsets on both sides), each way, ad hoc and prepared. */
static void test_random_descriptors(void)
{
    pair x;
    FY_REQUIRE(pair_open(&x, true) == FERRY_OK);
    uint64_t t0 = rt_now_ms();
    rounds(&x, opt.ndesc, false, 30);
    rounds(&x, opt.ndesc, true, 32);
    printf("# %zu descriptors x 4 transfers, verified: %llu ms\n", opt.ndesc,
           (unsigned long long)(rt_now_ms() - t0));
    FY_CHECK_EQ(pair_close(&x), 0);
}

/* 6000 descriptors of 1..32 B (about 100 KB), WRITE ad hoc and prepared:
 * over TCP that is one request in two active messages (at most 4096
 * descriptors each, ucx_amw.c), whose notification must follow both. */
static void test_many_tiny_writes(void)
{
    pair x;
    FY_REQUIRE(pair_open(&x, true) == FERRY_OK);
    enum { N = 6000 };
    for (unsigned prepared = 0; prepared < 2; prepared++) {
        unsigned tag = 70 + 2 * prepared;
        seg *s = layout_pow(N, tag, x.size, x.size, x.peer.region_size, 5);
        uint32_t *idx = index_array(N, prepared, tag);
        prep pp = {0};
        FY_REQUIRE(s && idx);
        if (prepared)
            FY_CHECK_EQ(prep_segs(&x, s, N, &pp), FERRY_OK);
        round_write(&x, s, idx, N, prepared ? &pp : NULL, tag);
        prep_release(&pp);
        free(idx);
        free(s);
    }
    FY_CHECK_EQ(pair_close(&x), 0);
}

/* Posts n requests (one segment each) at once, then reposts one with a
 * new notification: each notification arrives once, after its data. */
static void test_notif_exactly_once(void)
{
    pair x;
    FY_REQUIRE(pair_open(&x, true) == FERRY_OK);
    enum { N = 48, TAG = 100 };
    seg *s = layout_full(&x, N, TAG);
    uint32_t *idx = index_array(N, false, 0);
    ferry_xfer *xs[N] = {0};
    uint8_t *tmp = malloc(LEN_MAX);
    prep pp = {0};
    FY_REQUIRE(s && idx && tmp);
    FY_CHECK_EQ(prep_segs(&x, s, N, &pp), FERRY_OK);
    rt_pattern(x.mem, LSEED(TAG), 0, x.size);
    for (unsigned k = 0; k < N; k++) {
        char notif[128];
        rt_pattern(tmp, LSEED(TAG), s[k].loff, s[k].len); /* what lands at roff */
        notif_text(notif, sizeof(notif), TAG + k, s[k].roff, s[k].len, rt_hash(tmp, s[k].len));
        FY_CHECK_EQ(make_xfer(&x, FERRY_OP_WRITE, s, &idx[k], 1, &pp, notif, &xs[k]), FERRY_OK);
        ferry_status rc = xs[k] ? ferry_xfer_post(xs[k]) : FERRY_ERR_INVALID_PARAM;
        FY_CHECK(rc == FERRY_OK || rc == FERRY_IN_PROGRESS);
    }
    for (unsigned k = 0; k < N; k++)
        FY_CHECK_EQ(xs[k] ? wait_xfer(xs[k], FERRY_IN_PROGRESS, XFER_MS) : FERRY_ERR_INVALID_PARAM,
                    FERRY_OK);
    expect_notifs(&x, TAG, N);
    /* A repost carries its new notification, once. */
    char notif[128];
    rt_pattern(tmp, LSEED(TAG), s[0].loff, s[0].len);
    notif_text(notif, sizeof(notif), TAG + N, s[0].roff, s[0].len, rt_hash(tmp, s[0].len));
    FY_CHECK_EQ(ferry_xfer_set_notif(xs[0], notif, strlen(notif)), FERRY_OK);
    FY_CHECK_EQ(post_wait(xs[0]), FERRY_OK);
    expect_notifs(&x, TAG + N, 1);
    image(x.expect, x.size, 1, s, idx, N, LSEED(TAG), true); /* the peer started with pattern(1) */
    FY_CHECK(peer_has(&x, x.expect));
    for (unsigned k = 0; k < N; k++)
        FY_CHECK_EQ(ferry_xfer_release(xs[k]), FERRY_OK);
    prep_release(&pp);
    free(tmp);
    free(idx);
    free(s);
    FY_CHECK_EQ(pair_close(&x), 0);
}

/* Segments of one peer region: a layout inside it, shifted there. */
static seg *region_layout(pair *x, size_t n, unsigned region, uint64_t seed)
{
    uint64_t rs = x->peer.region_size;
    seg *s = layout(n, seed, x->size, rs, rs);
    for (size_t i = 0; s && i < n; i++)
        s[i].roff += region * rs;
    return s;
}

/* The peer sends partial metadata (region 0, with connection info):
 * region 0 works, region 1 fails at prep with NOT_FOUND until a second
 * partial blob (region 1 only) adds it to the same generation. */
static void test_partial_metadata(void)
{
    pair x;
    FY_REQUIRE(pair_open(&x, false) == FERRY_OK);
    enum { N = 16 };
    seg *s0 = region_layout(&x, N, 0, 40), *s1 = region_layout(&x, N, 1, 41);
    uint32_t *idx = index_array(N, false, 0);
    ferry_dlist *r0 = fy_t_range_list(x.peer.base, x.peer.region_size);
    ferry_dlist *r1 = fy_t_range_list(x.peer.base + x.peer.region_size, x.peer.region_size);
    FY_REQUIRE(s0 && s1 && idx && r0 && r1);
    FY_REQUIRE(peer_ok(&x, "partial %s %u 1 0", opt.host, (unsigned)x.port));
    FY_CHECK_EQ(ferry_md_check(x.agent, PEER_NAME, r0), FERRY_OK);
    FY_CHECK_EQ(ferry_md_check(x.agent, PEER_NAME, r1), FERRY_ERR_NOT_FOUND);
    round_write(&x, s0, idx, N, NULL, 40);
    round_read(&x, s0, idx, N, NULL, 41);
    ferry_prepped *p1 = NULL;
    FY_CHECK_EQ(ferry_prep_dlist(x.agent, PEER_NAME, r1, NULL, &p1), FERRY_ERR_NOT_FOUND);
    FY_CHECK(p1 == NULL);
    ferry_xfer *xf = NULL;
    FY_CHECK_EQ(make_xfer(&x, FERRY_OP_WRITE, s1, idx, N, NULL, NULL, &xf), FERRY_ERR_NOT_FOUND);
    FY_CHECK(xf == NULL);
    uint64_t gen1 = 0, gen2 = 0;
    FY_CHECK_EQ(ferry_md_generation(x.agent, PEER_NAME, &gen1), FERRY_OK);
    FY_CHECK(peer_ok(&x, "partial %s %u 0 1", opt.host, (unsigned)x.port));
    FY_CHECK_EQ(ferry_md_generation(x.agent, PEER_NAME, &gen2), FERRY_OK);
    FY_CHECK_EQ(gen1, gen2);
    FY_CHECK_EQ(ferry_md_check(x.agent, PEER_NAME, r1), FERRY_OK);
    prep pp = {0};
    FY_CHECK_EQ(prep_segs(&x, s1, N, &pp), FERRY_OK);
    round_write(&x, s1, idx, N, &pp, 42);
    prep_release(&pp);
    ferry_dlist_destroy(r0);
    ferry_dlist_destroy(r1);
    free(idx);
    free(s0);
    free(s1);
    FY_CHECK_EQ(pair_close(&x), 0);
}

/* Handles made against the current metadata: a prepared pair, a request
 * made from it and an ad hoc request, each posted once. */
typedef struct handles {
    prep pp;
    ferry_xfer *made, *adhoc;
} handles;

static ferry_status handles_new(pair *x, const seg *s, const uint32_t *idx, size_t n, handles *h)
{
    memset(h, 0, sizeof(*h));
    ferry_status rc = prep_segs(x, s, n, &h->pp);
    if (rc == FERRY_OK)
        rc = make_xfer(x, FERRY_OP_WRITE, s, idx, n, &h->pp, NULL, &h->made);
    if (rc == FERRY_OK)
        rc = make_xfer(x, FERRY_OP_READ, s, idx, n, NULL, NULL, &h->adhoc);
    if (rc == FERRY_OK)
        rc = post_wait(h->made);
    return rc == FERRY_OK ? post_wait(h->adhoc) : rc;
}

/* After invalidation every old handle fails with STALE. */
static void handles_stale(pair *x, handles *h, const uint32_t *idx, size_t n)
{
    ferry_xfer *xf = NULL;
    FY_CHECK_EQ(ferry_xfer_post(h->made), FERRY_ERR_STALE);
    FY_CHECK_EQ(ferry_xfer_status(h->made), FERRY_ERR_STALE);
    FY_CHECK_EQ(ferry_xfer_post(h->adhoc), FERRY_ERR_STALE);
    FY_CHECK_EQ(
        ferry_xfer_make(x->agent, FERRY_OP_READ, h->pp.local, idx, h->pp.remote, idx, n, NULL, &xf),
        FERRY_ERR_STALE);
    FY_CHECK(xf == NULL);
}

static void handles_free(handles *h)
{
    ferry_xfer_release(h->made);
    ferry_xfer_release(h->adhoc);
    prep_release(&h->pp);
}

/* ferry_md_invalidate, then the peer asking (over the side channel) to be
 * forgotten: old handles STALE, unknown peer NOT_FOUND, a new fetch gives
 * a new generation whose handles work. */
static void test_invalidate_reload(void)
{
    pair x;
    FY_REQUIRE(pair_open(&x, true) == FERRY_OK);
    enum { N = 32 };
    seg *s = layout_full(&x, N, 50);
    uint32_t *idx = index_array(N, false, 0);
    ferry_dlist *all = peer_regions(&x);
    handles old = {0}, cur = {0};
    uint64_t gen[3] = {0};
    FY_REQUIRE(s && idx && all);
    FY_REQUIRE(handles_new(&x, s, idx, N, &old) == FERRY_OK);
    FY_CHECK_EQ(ferry_md_generation(x.agent, PEER_NAME, &gen[0]), FERRY_OK);
    FY_CHECK_EQ(ferry_md_invalidate(x.agent, PEER_NAME), FERRY_OK);
    handles_stale(&x, &old, idx, N);
    FY_CHECK_EQ(ferry_md_check(x.agent, PEER_NAME, NULL), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(prep_segs(&x, s, N, &cur.pp), FERRY_ERR_NOT_FOUND);
    prep_release(&cur.pp);
    FY_REQUIRE(pair_exchange(&x) == FERRY_OK);
    FY_CHECK_EQ(ferry_md_generation(x.agent, PEER_NAME, &gen[1]), FERRY_OK);
    FY_CHECK(gen[1] > gen[0]);
    handles_stale(&x, &old, idx, N);
    FY_CHECK_EQ(handles_new(&x, s, idx, N, &cur), FERRY_OK);
    round_write(&x, s, idx, N, &cur.pp, 50);
    /* The peer asks to be forgotten: only its own instance may. */
    FY_CHECK(peer_ok(&x, "forget %s %u", opt.host, (unsigned)x.port));
    FY_CHECK_EQ(ferry_md_check(x.agent, PEER_NAME, all), FERRY_ERR_NOT_FOUND);
    handles_stale(&x, &cur, idx, N);
    FY_REQUIRE(pair_exchange(&x) == FERRY_OK);
    FY_CHECK_EQ(ferry_md_generation(x.agent, PEER_NAME, &gen[2]), FERRY_OK);
    FY_CHECK(gen[2] > gen[1]);
    rounds(&x, N, true, 51);
    handles_free(&cur);
    handles_free(&old);
    ferry_dlist_destroy(all);
    free(idx);
    free(s);
    FY_CHECK_EQ(pair_close(&x), 0);
}

/* Reposts xf (a long READ) for KILL_AFTER_MS, then kills the peer with
 * a transfer in flight and polls until the request fails. Returns the ms
 * from the kill to the failure being seen (-1: not seen in time); *rc is
 * the request's final status. */
static long kill_during(pair *x, ferry_xfer *xf, ferry_status *rc)
{
    uint64_t start = rt_now_ms(), killed = 0, end = start + XFER_MS;
    *rc = FERRY_OK;
    while (*rc >= 0 && rt_now_ms() < end) {
        *rc = *rc == FERRY_OK ? ferry_xfer_post(xf) : ferry_xfer_status(xf);
        if (*rc == FERRY_IN_PROGRESS && !killed && rt_now_ms() - start >= KILL_AFTER_MS) {
            rt_kill9(&x->peer);
            killed = rt_now_ms();
            end = killed + 3 * KILL_BOUND_MS; /* measure past the bound, not forever */
        }
        if (*rc == FERRY_IN_PROGRESS)
            rt_sleep_us(100);
    }
    return killed && *rc < 0 ? (long)(rt_now_ms() - killed) : -1;
}

/* One small WRITE to a restarted peer, bounded tighter than XFER_MS: a
 * stall here is the survivor's transport being wedged by the killed
 * instance, not slowness, and should fail fast rather than time out. */
static bool first_contact(pair *x)
{
    seg s = {0, 0, 4096};
    uint32_t idx = 0;
    ferry_xfer *xf = NULL;
    ferry_status rc = make_xfer(x, FERRY_OP_WRITE, &s, &idx, 1, NULL, NULL, &xf);
    if (rc == FERRY_OK)
        rc = wait_xfer(xf, ferry_xfer_post(xf), RESTART_MS);
    if (rc != FERRY_OK)
        printf("# first transfer to the restarted peer: %s\n", ferry_status_name(rc));
    ferry_xfer_release(xf);
    return rc == FERRY_OK;
}

/* The peer is killed (-9) during a long transfer: the request fails with
 * REMOTE_DISCONNECT within KILL_BOUND_MS, release returns in bounded time;
 * a new peer of the same name is a new generation: old handles STALE, new
 * ones work. */
static void test_kill_and_restart(void)
{
    if (!opt.kill)
        FY_SKIP("--no-kill / FY_REMOTE_NO_KILL");
    pair x;
    FY_REQUIRE(pair_open(&x, true) == FERRY_OK);
    size_t n = x.size / MIB; /* the whole buffer in 1 MiB descriptors */
    seg *big = calloc(n, sizeof(*big));
    uint32_t *idx = index_array(n, false, 0);
    FY_REQUIRE(big && idx);
    for (size_t i = 0; i < n; i++)
        big[i] = (seg){i * MIB, i * MIB, MIB};
    handles old = {0};
    uint64_t gen[2] = {0};
    FY_REQUIRE(handles_new(&x, big, idx, n, &old) == FERRY_OK);
    FY_CHECK_EQ(ferry_md_generation(x.agent, PEER_NAME, &gen[0]), FERRY_OK);
    ferry_xfer *xf = NULL;
    FY_REQUIRE(make_xfer(&x, FERRY_OP_READ, big, idx, n, &old.pp, NULL, &xf) == FERRY_OK);

    ferry_status rc;
    long ms = kill_during(&x, xf, &rc);
    printf("# error_handling=%s: kill -9 seen after %ld ms as %s (%s)\n", error_mode(), ms,
           ferry_status_name(rc), ferry_xfer_error(xf));
    FY_CHECK_EQ(rc, FERRY_ERR_REMOTE_DISCONNECT);
    FY_CHECK(ms >= 0 && ms <= (long)KILL_BOUND_MS);
    FY_CHECK_EQ(ferry_xfer_status(xf), FERRY_ERR_REMOTE_DISCONNECT);
    FY_CHECK_EQ(ferry_xfer_post(old.made), FERRY_ERR_REMOTE_DISCONNECT);
    FY_CHECK_EQ(ferry_notif_send(x.agent, PEER_NAME, "x", 1, NULL), FERRY_ERR_REMOTE_DISCONNECT);
    uint64_t t0 = rt_now_ms();
    rt_watchdog(HANG_S, "ferry_xfer_release of a request to a killed peer");
    rc = ferry_xfer_release(xf);
    rt_watchdog(0, "");
    long rel_ms = (long)(rt_now_ms() - t0);
    printf("# release of the failed request: %s in %ld ms\n", ferry_status_name(rc), rel_ms);
    FY_CHECK(rc == FERRY_OK || rc == FERRY_ERR_CANCELED);
    FY_CHECK(rel_ms <= (long)RELEASE_MS);
    FY_CHECK_EQ(rt_reap(&x.peer, RT_STOP_MS), 128 + SIGKILL);

    /* A new instance under the same name. */
    FY_REQUIRE(peer_start(&x));
    FY_REQUIRE(pair_exchange(&x) == FERRY_OK);
    FY_CHECK_EQ(ferry_md_generation(x.agent, PEER_NAME, &gen[1]), FERRY_OK);
    FY_CHECK(gen[1] > gen[0]);
    handles_stale(&x, &old, idx, n);
    FY_CHECK(peer_ok(&x, "knows " DRV_NAME));
    bool contact = first_contact(&x);
    FY_CHECK(contact);
    if (contact) {
        rounds(&x, 64, false, 60);
        rounds(&x, 64, true, 62);
    }
    handles_free(&old);
    free(idx);
    free(big);
    rt_watchdog(HANG_S, "closing the driver and the restarted peer");
    FY_CHECK_EQ(pair_close(&x), 0);
    rt_watchdog(0, "");
}

/* The peer is killed (-9) during WRITEs of n descriptors of len bytes
 * (over TCP a small one goes as an active message, ucx_amw.c, a large one
 * as puts): the one in flight fails with REMOTE_DISCONNECT within
 * KILL_BOUND_MS and releases in bounded time. */
static void kill_during_writes(size_t n, uint64_t len)
{
    pair x;
    FY_REQUIRE(pair_open(&x, true) == FERRY_OK);
    seg *s = calloc(n, sizeof(*s));
    uint32_t *idx = index_array(n, false, 0);
    FY_REQUIRE(s && idx && n * len <= x.size);
    for (size_t i = 0; i < n; i++)
        s[i] = (seg){i * len, i * len, len};
    ferry_xfer *xf = NULL;
    FY_REQUIRE(make_xfer(&x, FERRY_OP_WRITE, s, idx, n, NULL, "w", &xf) == FERRY_OK);
    ferry_status rc;
    long ms = kill_during(&x, xf, &rc);
    printf("# error_handling=%s: kill -9 during WRITEs of %zu x %llu B seen after %ld ms as %s "
           "(%s)\n",
           error_mode(), n, (unsigned long long)len, ms, ferry_status_name(rc),
           ferry_xfer_error(xf));
    FY_CHECK_EQ(rc, FERRY_ERR_REMOTE_DISCONNECT);
    FY_CHECK(ms >= 0 && ms <= (long)KILL_BOUND_MS);
    FY_CHECK_EQ(ferry_xfer_post(xf), FERRY_ERR_REMOTE_DISCONNECT);
    uint64_t t0 = rt_now_ms();
    rt_watchdog(HANG_S, "ferry_xfer_release of a WRITE to a killed peer");
    rc = ferry_xfer_release(xf);
    rt_watchdog(0, "");
    FY_CHECK(rc == FERRY_OK || rc == FERRY_ERR_CANCELED);
    FY_CHECK(rt_now_ms() - t0 <= RELEASE_MS);
    FY_CHECK_EQ(rt_reap(&x.peer, RT_STOP_MS), 128 + SIGKILL);
    free(idx);
    free(s);
    rt_watchdog(HANG_S, "closing the driver");
    FY_CHECK_EQ(pair_close(&x), 0);
    rt_watchdog(0, "");
}

static void test_kill_during_writes(void)
{
    if (!opt.kill)
        FY_SKIP("--no-kill / FY_REMOTE_NO_KILL");
    kill_during_writes(1, 4096);             /* an active message */
    kill_during_writes(opt.size / MIB, MIB); /* puts */
}

/* Polls a posted request until it leaves IN_PROGRESS or bound_ms pass;
 * *ms: how long that took. */
static ferry_status poll_for(ferry_xfer *xf, ferry_status rc, uint64_t bound_ms, long *ms)
{
    uint64_t t0 = rt_now_ms();
    while (rc == FERRY_IN_PROGRESS && rt_now_ms() - t0 < bound_ms) {
        rt_sleep_us(100);
        rc = ferry_xfer_status(xf);
    }
    *ms = (long)(rt_now_ms() - t0);
    return rc;
}

/* The peer is frozen (SIGSTOP) when a READ is posted: TCP stays up and
 * keepalive never fires, so only the request's deadline (FREEZE_MS) ends
 * it: TIMEOUT with its detail within FREEZE_BOUND, and nothing lands in
 * our memory afterwards, not even once the peer runs again (SIGCONT). The
 * peer is then killed; releasing the request is bounded. */
static void test_frozen_peer(void)
{
    if (opt.alloc)
        FY_SKIP("reads from memory UCX mapped itself need no progress of the peer");
    if (!opt.freeze)
        FY_SKIP("--no-freeze: this transport's READs need no progress of the peer");
    if (!opt.kill)
        FY_SKIP("--no-kill / FY_REMOTE_NO_KILL: the frozen peer is killed at the end");
    pair x;
    FY_REQUIRE(pair_open(&x, true) == FERRY_OK);
    size_t n = x.size / MIB;
    seg *big = calloc(n, sizeof(*big));
    uint32_t *idx = index_array(n, false, 0);
    FY_REQUIRE(big && idx && peer_ok(&x, "fill 77"));
    for (size_t i = 0; i < n; i++)
        big[i] = (seg){i * MIB, i * MIB, MIB};
    ferry_xfer *xf = NULL;
    FY_REQUIRE(make_xfer(&x, FERRY_OP_READ, big, idx, n, NULL, NULL, &xf) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_set_timeout(xf, FREEZE_MS), FERRY_OK);
    FY_REQUIRE(kill(x.peer.pid, SIGSTOP) == 0);
    rt_watchdog(HANG_S, "a READ from a frozen peer");
    long ms;
    ferry_status rc = poll_for(xf, ferry_xfer_post(xf), 4 * FREEZE_BOUND, &ms);
    printf("# frozen peer: %s after %ld ms (%s)\n", ferry_status_name(rc), ms,
           ferry_xfer_error(xf));
    FY_CHECK_EQ(rc, FERRY_ERR_TIMEOUT);
    FY_CHECK(ms >= (long)FREEZE_MS - 5 && ms <= (long)FREEZE_BOUND);
    FY_CHECK(strstr(ferry_xfer_error(xf), "no completion within 500 ms") != NULL);
    uint64_t landed = rt_hash(x.mem, x.size);
    FY_CHECK(kill(x.peer.pid, SIGCONT) == 0);
    rt_sleep_ms(SETTLE_MS); /* a late answer would land now */
    FY_CHECK_EQ(ferry_xfer_status(xf), FERRY_ERR_TIMEOUT);
    FY_CHECK(rt_hash(x.mem, x.size) == landed);
    rt_kill9(&x.peer);
    FY_CHECK_EQ(rt_reap(&x.peer, RT_STOP_MS), 128 + SIGKILL);
    uint64_t t0 = rt_now_ms();
    rc = ferry_xfer_release(xf);
    FY_CHECK(rc == FERRY_OK || rc == FERRY_ERR_CANCELED);
    FY_CHECK(rt_now_ms() - t0 <= RELEASE_MS);
    rt_watchdog(0, "");
    free(idx);
    free(big);
    rt_watchdog(HANG_S, "closing the driver");
    FY_CHECK_EQ(pair_close(&x), 0);
    rt_watchdog(0, "");
}

/* ---- main ---- */

/* FY_REMOTE_ONLY=word runs only the tests whose name contains it. */
#define RUN(fn)                                                                                    \
    do {                                                                                           \
        const char *only_ = getenv("FY_REMOTE_ONLY");                                              \
        if (!only_ || strstr(#fn, only_))                                                          \
            FY_RUN(fn);                                                                            \
    } while (0)

/* Skips the program when this build has no UCX plugin. */
static void probe_ucx(void)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = "rt-probe";
    ferry_agent *a = NULL;
    ferry_backend *be;
    ferry_status rc = ferry_agent_create(&cfg, &a);
    if (rc == FERRY_OK)
        rc = ferry_backend_create(a, rt_backend(), opt.common.p, opt.common.n, &be);
    ferry_agent_destroy(a);
    if (rc == FERRY_ERR_NOT_FOUND)
        fy_test_skip_all("the backend's plugin is not built");
    if (rc != FERRY_OK) {
        printf("Bail out! %s backend: %s\n", rt_backend(), ferry_status_name(rc));
        exit(1);
    }
}

/* The file of expected images is unlinked at once, so no run leaves it
 * behind however it ends; the peer (same host, same pid namespace, also
 * under ip netns exec) opens it as /proc/<our pid>/fd/<fd>. */
static bool make_image_file(void)
{
    const char *dir = getenv("TMPDIR");
    char path[256];
    snprintf(path, sizeof(path), "%s/ferry-rt-XXXXXX", dir && *dir ? dir : "/tmp");
    opt.image_fd = mkostemp(path, O_CLOEXEC);
    if (opt.image_fd < 0)
        return false;
    unlink(path);
    snprintf(opt.image_path, sizeof(opt.image_path), "/proc/%ld/fd/%d", (long)getpid(),
             opt.image_fd);
    return true;
}

int main(int argc, char **argv)
{
    if (!parse_opts(argc, argv)) {
        fprintf(
            stderr,
            "usage: test_ucx_2proc PEER [--quick] [--no-kill] [--no-freeze] [--alloc] [--host A] "
            "[--peer-host A] [--peer-ns NS] [--param k=v] [--peer-param k=v] "
            "[k=v ...]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    probe_ucx();
    rt_proc_init();
    if (!make_image_file()) {
        printf("Bail out! cannot create a temporary file\n");
        return 1;
    }
    printf("# peer %s%s%s, %zu MiB buffers%s, %zu random descriptors\n", opt.peer_prog,
           opt.peer_ns ? " in netns " : "", opt.peer_ns ? opt.peer_ns : "", opt.size / MIB,
           opt.alloc ? " from ferry_mem_alloc" : "", opt.ndesc);
    RUN(test_exchange);
    RUN(test_adhoc_read_write);
    RUN(test_prepared_read_write);
    RUN(test_random_descriptors);
    RUN(test_notif_exactly_once);
    RUN(test_many_tiny_writes);
    RUN(test_partial_metadata);
    RUN(test_invalidate_reload);
    RUN(test_kill_and_restart);
    RUN(test_kill_during_writes);
    RUN(test_frozen_peer);
    return fy_test_done();
}
