/* SPDX-License-Identifier: Apache-2.0 */
/* The conformance suite: what every backend must do, written once and run
 * against each available backend ("conformance PLUGIN [key=value ...]
 * [--pair|--loopback] [--plugin-dir=DIR]"; exit 77 when the plugin is
 * absent). The topology
 * (one agent in loopback, or an initiator and a target) comes from the
 * setup layer in cf_setup.c.
 *
 * Every transfer is verified byte for byte over the whole destination
 * buffer, so a byte written outside a descriptor fails too. In storage mode
 * the target's bytes are a file, a volume or an object (cf_store): the
 * same checks run after the store is read back; the layouts keep O_DIRECT's
 * alignment with --direct, and fewer descriptors go to an S3 server. Random data and
 * layouts come from a fixed seed (FY_SEED overrides it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/ferry.h>

#include "conformance.h"
#include "harness.h"
#include "testutil.h"

#define KB (1024u)
#define MB (1024u * 1024u)

static cf_env E;

/* ---- random descriptor layouts ---- */

/* n pairs of equal lengths, placed in a random order with random gaps in a
 * local and a remote buffer (independently). */
typedef struct layout {
    size_t n;
    uint64_t *len, *loff, *roff;
    size_t lsize, rsize;
} layout;

/* Gaps and lengths in units of the alignment the target needs (O_DIRECT). */
static uint64_t rand_gap(tu_rng *rng)
{
    return E.align == 1 ? tu_rand_range(rng, 0, 64) : tu_rand_range(rng, 0, 2) * E.align;
}

static uint64_t rand_len(tu_rng *rng, uint64_t max_len)
{
    return E.align == 1 ? tu_rand_range(rng, 1, max_len) : tu_rand_range(rng, 1, 4) * E.align;
}

/* Descriptors of a random layout: each is one I/O for storage, one HTTP
 * request for objects. */
static size_t layout_count(void)
{
    if (E.store_type == FERRY_MEM_OBJ)
        return 100;
    return E.direct ? 2000 : 10000;
}

static size_t place(uint64_t *off, const uint64_t *len, size_t n, tu_rng *rng)
{
    size_t *order = malloc(n * sizeof(*order)), pos = 0;
    if (!order)
        return 0;
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = n; i-- > 1;) {
        size_t j = (size_t)tu_rand_range(rng, 0, i), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (size_t k = 0; k < n; k++) {
        pos += (size_t)rand_gap(rng);
        off[order[k]] = pos;
        pos += len[order[k]];
    }
    free(order);
    return pos + (E.align == 1 ? 64 : E.align);
}

static bool layout_make(layout *lo, size_t n, uint64_t max_len, uint64_t seed)
{
    tu_rng rng = tu_rng_seed(seed);
    lo->n = n;
    lo->len = malloc(n * sizeof(uint64_t));
    lo->loff = malloc(n * sizeof(uint64_t));
    lo->roff = malloc(n * sizeof(uint64_t));
    if (!lo->len || !lo->loff || !lo->roff)
        return false;
    for (size_t i = 0; i < n; i++)
        lo->len[i] = rand_len(&rng, max_len);
    lo->lsize = place(lo->loff, lo->len, n, &rng);
    lo->rsize = place(lo->roff, lo->len, n, &rng);
    return lo->lsize && lo->rsize;
}

static void layout_free(layout *lo)
{
    free(lo->len);
    free(lo->loff);
    free(lo->roff);
}

/* ---- buffers: local at the initiator, remote at the target ---- */

/* remote is the target's memory, or the mirror of its store. */
typedef struct bufs {
    uint8_t *local, *remote, *expect;
    size_t lsize, rsize;
    cf_store rs;
} bufs;

/* [off, off+len) of the local buffer or of the target's store. */
static ferry_status side_add(ferry_dlist *l, const bufs *b, bool remote, size_t off, size_t len)
{
    if (remote)
        return cf_store_add(l, &b->rs, off, len, false);
    return ferry_dlist_add(l, (uintptr_t)b->local + off, len, 0);
}

static ferry_dlist *side_list(const bufs *b, bool remote, size_t capacity)
{
    ferry_dlist *l = NULL;
    if (remote)
        return cf_store_list(&b->rs, capacity);
    return ferry_dlist_create(FERRY_MEM_DRAM, capacity, &l) == FERRY_OK ? l : NULL;
}

/* The list of one side, pairs in order; order[] (may be NULL) permutes
 * the entries: entry k is pair order[k]. */
static ferry_dlist *layout_list(const layout *lo, bool remote, const bufs *b, const size_t *order)
{
    ferry_dlist *l = side_list(b, remote, lo->n);
    for (size_t k = 0; l && k < lo->n; k++) {
        size_t i = order ? order[k] : k;
        uint64_t off = remote ? lo->roff[i] : lo->loff[i];
        if (side_add(l, b, remote, off, lo->len[i]) != FERRY_OK) {
            ferry_dlist_destroy(l);
            return NULL;
        }
    }
    return l;
}

static ferry_status bufs_open(bufs *b, size_t lsize, size_t rsize, uint64_t seed)
{
    b->lsize = lsize;
    b->rsize = rsize;
    b->local = tu_alloc(lsize);
    b->expect = malloc(lsize > rsize ? lsize : rsize);
    if (!b->local || !b->expect)
        return FERRY_ERR_NO_MEMORY;
    tu_fill(b->local, lsize, seed);
    ferry_status rc = cf_register(&E, false, b->local, lsize);
    if (rc == FERRY_OK)
        rc = cf_store_open(&E, &b->rs, rsize, seed + 1);
    b->remote = b->rs.mirror;
    return rc;
}

static void bufs_close(bufs *b)
{
    cf_deregister(&E, false, b->local, b->lsize);
    cf_store_close(&E, &b->rs);
    free(b->local);
    free(b->expect);
}

/* Whether [off, off+len) of the target holds want (read back first). */
static bool remote_is(bufs *b, size_t off, const void *want, size_t len)
{
    ferry_status rc = cf_store_sync(&E, &b->rs, off, len);
    if (rc != FERRY_OK)
        printf("# reading the store back: %s\n", ferry_strerror(rc));
    return rc == FERRY_OK && !memcmp(b->remote + off, want, len);
}

/* Tests that WRITE into the middle of the target: objects are written
 * whole (test_store_whole_writes covers them). */
#define SKIP_UNLESS_WRITES_AT()                                                                    \
    do {                                                                                           \
        if (!cf_store_writes_at(&E))                                                               \
            FY_SKIP("objects are written whole, from offset 0 (S3 cannot patch one)");             \
    } while (0)

/* What the destination must hold after the layout's transfer. */
static const uint8_t *expected(const bufs *b, const layout *lo, ferry_xfer_op op)
{
    bool write = op == FERRY_OP_WRITE;
    memcpy(b->expect, write ? b->remote : b->local, write ? b->rsize : b->lsize);
    for (size_t i = 0; i < lo->n; i++) {
        if (write)
            memcpy(b->expect + lo->roff[i], b->local + lo->loff[i], lo->len[i]);
        else
            memcpy(b->expect + lo->loff[i], b->remote + lo->roff[i], lo->len[i]);
    }
    return b->expect;
}

static bool dest_is(bufs *b, ferry_xfer_op op, const uint8_t *want)
{
    return op == FERRY_OP_WRITE ? remote_is(b, 0, want, b->rsize)
                                : !memcmp(b->local, want, b->lsize);
}

/* ---- ad hoc and prepared requests over random layouts ---- */

static void run_adhoc(ferry_xfer_op op)
{
    layout lo;
    bufs b;
    ferry_xfer *x;
    uint64_t seed = tu_seed();
    if (op == FERRY_OP_WRITE)
        SKIP_UNLESS_WRITES_AT();
    FY_REQUIRE(layout_make(&lo, layout_count(), 2048, seed));
    FY_REQUIRE(bufs_open(&b, lo.lsize, lo.rsize, seed) == FERRY_OK);
    ferry_dlist *l = layout_list(&lo, false, &b, NULL);
    ferry_dlist *r = layout_list(&lo, true, &b, NULL);
    FY_REQUIRE(l && r);
    const uint8_t *want = expected(&b, &lo, op);
    FY_REQUIRE(ferry_xfer_create(E.ini, op, l, r, E.tgt_name, NULL, &x) == FERRY_OK);
    FY_CHECK(ferry_xfer_backend(x) == E.ini_be);
    FY_CHECK_EQ(cf_post_wait(&E, x), FERRY_OK);
    FY_CHECK(dest_is(&b, op, want));
    FY_CHECK_EQ(ferry_xfer_release(x), FERRY_OK);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    bufs_close(&b);
    layout_free(&lo);
}

static void test_write_adhoc(void)
{
    run_adhoc(FERRY_OP_WRITE);
}
static void test_read_adhoc(void)
{
    run_adhoc(FERRY_OP_READ);
}

static size_t *shuffled(size_t n, tu_rng *rng)
{
    size_t *p = malloc(n * sizeof(*p));
    if (!p)
        return NULL;
    for (size_t i = 0; i < n; i++)
        p[i] = i;
    for (size_t i = n; i-- > 1;) {
        size_t j = (size_t)tu_rand_range(rng, 0, i), t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
    return p;
}

/* The remote list is shuffled against the local one, and the request
 * takes the pairs in yet another order: indices must be honoured. */
static void run_prepped(ferry_xfer_op op)
{
    layout lo;
    bufs b;
    ferry_prepped *pl, *pr;
    ferry_xfer *x;
    uint64_t seed = tu_seed() + 1;
    tu_rng rng = tu_rng_seed(seed);
    if (op == FERRY_OP_WRITE)
        SKIP_UNLESS_WRITES_AT();
    FY_REQUIRE(layout_make(&lo, layout_count(), 2048, seed));
    FY_REQUIRE(bufs_open(&b, lo.lsize, lo.rsize, seed) == FERRY_OK);
    size_t *rorder = shuffled(lo.n, &rng), *pairs = shuffled(lo.n, &rng);
    uint32_t *li = malloc(lo.n * sizeof(*li)), *ri = malloc(lo.n * sizeof(*ri));
    FY_REQUIRE(rorder && pairs && li && ri);
    size_t *rpos = malloc(lo.n * sizeof(*rpos)); /* pair i's entry in the remote list */
    FY_REQUIRE(rpos);
    for (size_t k = 0; k < lo.n; k++)
        rpos[rorder[k]] = k;
    for (size_t k = 0; k < lo.n; k++) {
        li[k] = (uint32_t)pairs[k];
        ri[k] = (uint32_t)rpos[pairs[k]];
    }
    ferry_dlist *l = layout_list(&lo, false, &b, NULL);
    ferry_dlist *r = layout_list(&lo, true, &b, rorder);
    FY_REQUIRE(l && r);
    FY_REQUIRE(ferry_prep_dlist(E.ini, NULL, l, NULL, &pl) == FERRY_OK);
    FY_REQUIRE(ferry_prep_dlist(E.ini, E.tgt_name, r, NULL, &pr) == FERRY_OK);
    FY_CHECK_EQ(ferry_prepped_count(pr), lo.n);
    const uint8_t *want = expected(&b, &lo, op);
    FY_REQUIRE(ferry_xfer_make(E.ini, op, pl, li, pr, ri, lo.n, NULL, &x) == FERRY_OK);
    FY_CHECK_EQ(cf_post_wait(&E, x), FERRY_OK);
    FY_CHECK(dest_is(&b, op, want));
    ferry_xfer_release(x);
    ferry_prepped_release(pl);
    ferry_prepped_release(pr);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    free(rorder);
    free(pairs);
    free(rpos);
    free(li);
    free(ri);
    bufs_close(&b);
    layout_free(&lo);
}

static void test_write_prepped(void)
{
    run_prepped(FERRY_OP_WRITE);
}
static void test_read_prepped(void)
{
    run_prepped(FERRY_OP_READ);
}

/* The list of every other block of `each` bytes, from block 0: of the
 * local buffer, or of the store (a registration list when reg). */
static ferry_dlist *even_blocks(const bufs *b, bool remote, size_t n, size_t each, bool reg)
{
    ferry_dlist *l = side_list(b, remote, n / 2);
    for (size_t i = 0; l && i < n; i += 2) {
        ferry_status rc = remote && reg ? cf_store_add(l, &b->rs, i * each, each, true)
                                        : side_add(l, b, remote, i * each, each);
        if (rc != FERRY_OK) {
            ferry_dlist_destroy(l);
            return NULL;
        }
    }
    return l;
}

/* Many target regions, one descriptor exactly covering each: every region's
 * own key must be used. (An object is one region: objects skip it.) */
static void test_many_regions(void)
{
    const size_t n = 1000, each = 4 * KB;
    bufs b = {.lsize = n * each, .rsize = n * each};
    ferry_xfer *x;
    SKIP_UNLESS_WRITES_AT();
    b.local = tu_alloc(n * each);
    uint8_t *before = malloc(n * each);
    FY_REQUIRE(b.local && before);
    tu_fill(b.local, n * each, 5);
    /* Regions with a block's hole after each, so they cannot be merged. */
    FY_REQUIRE(cf_store_create(&E, &b.rs, n * each, 6) == FERRY_OK);
    memcpy(before, b.rs.mirror, n * each);
    ferry_dlist *regions = even_blocks(&b, true, n, each, true);
    ferry_dlist *r = even_blocks(&b, true, n, each, false), *l = even_blocks(&b, false, n, each, 0);
    FY_REQUIRE(regions && r && l);
    FY_REQUIRE(cf_register_list(&E, true, regions) == FERRY_OK);
    FY_REQUIRE(cf_register(&E, false, b.local, n * each) == FERRY_OK);
    FY_REQUIRE(ferry_xfer_create(E.ini, FERRY_OP_WRITE, l, r, E.tgt_name, NULL, &x) == FERRY_OK);
    FY_CHECK_EQ(cf_post_wait(&E, x), FERRY_OK);
    FY_REQUIRE(cf_store_sync(&E, &b.rs, 0, n * each) == FERRY_OK);
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *want = (i % 2 == 0 ? b.local : before) + i * each;
        ok &= !memcmp(b.rs.mirror + i * each, want, each);
    }
    FY_CHECK(ok);
    ferry_xfer_release(x);
    FY_CHECK_EQ(ferry_deregister(E.tgt, regions, NULL), FERRY_OK);
    FY_CHECK_EQ(cf_deregister(&E, false, b.local, n * each), FERRY_OK);
    ferry_dlist_destroy(regions);
    ferry_dlist_destroy(r);
    ferry_dlist_destroy(l);
    cf_store_close(&E, &b.rs);
    free(b.local);
    free(before);
}

/* A few large descriptors: the bulk path (pools, rendezvous...). */
static void test_large_transfer(void)
{
    bufs b;
    ferry_xfer *x;
    const size_t size = 16 * MB;
    SKIP_UNLESS_WRITES_AT();
    FY_REQUIRE(bufs_open(&b, size, size, 77) == FERRY_OK);
    const size_t quarter = size / 4;
    ferry_dlist *l = side_list(&b, false, 4), *r = side_list(&b, true, 4);
    FY_REQUIRE(l && r);
    for (size_t i = 0; i < 4; i++) {
        FY_CHECK_EQ(side_add(l, &b, false, i * quarter, quarter), FERRY_OK);
        FY_CHECK_EQ(side_add(r, &b, true, (3 - i) * quarter, quarter), FERRY_OK);
    }
    FY_REQUIRE(ferry_xfer_create(E.ini, FERRY_OP_WRITE, l, r, E.tgt_name, NULL, &x) == FERRY_OK);
    FY_CHECK_EQ(cf_post_wait(&E, x), FERRY_OK);
    bool ok = true;
    for (size_t i = 0; i < 4; i++)
        ok &= remote_is(&b, (3 - i) * quarter, b.local + i * quarter, quarter);
    FY_CHECK(ok);
    ferry_xfer_release(x);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    bufs_close(&b);
}

/* ---- notifications ---- */

/* One descriptor each side: [off, off + len) of both buffers. */
static ferry_status xfer_at(const bufs *b, size_t off, size_t len, ferry_xfer_op op,
                            const char *notif, ferry_xfer **x)
{
    ferry_xfer_opts opts;
    ferry_xfer_opts_init(&opts);
    opts.notif = notif;
    opts.notif_len = notif ? strlen(notif) : 0;
    ferry_dlist *l = tu_list1(b->local + off, len), *r = side_list(b, true, 1);
    ferry_status rc = l && r ? side_add(r, b, true, off, len) : FERRY_ERR_NO_MEMORY;
    if (rc == FERRY_OK)
        rc = ferry_xfer_create(E.ini, op, l, r, E.tgt_name, &opts, x);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    return rc;
}

static ferry_status simple_xfer(const bufs *b, size_t len, ferry_xfer_op op, const char *notif,
                                ferry_xfer **x)
{
    return xfer_at(b, 0, len, op, notif, x);
}

/* When the notification is seen at the target the data is there; it comes
 * once per post. */
static void test_notif_once_after_data(void)
{
    bufs b;
    ferry_xfer *x;
    const size_t size = 8 * MB;
    if (!(E.caps.flags & FERRY_CAP_NOTIF))
        FY_SKIP("backend without notifications");
    FY_REQUIRE(bufs_open(&b, size, size, 11) == FERRY_OK);
    FY_REQUIRE(simple_xfer(&b, size, FERRY_OP_WRITE, "cf-data-done", &x) == FERRY_OK);
    for (uint64_t round = 0; round < 3; round++) {
        tu_fill(b.local, size, 100 + round);
        ferry_status rc = ferry_xfer_post(x);
        FY_CHECK(rc == FERRY_OK || rc == FERRY_IN_PROGRESS);
        FY_CHECK_EQ(cf_wait_notif(&E, "cf-data-done", 12, TU_TIMEOUT_MS), FERRY_OK);
        FY_CHECK(remote_is(&b, 0, b.local, size));
        FY_CHECK_EQ(cf_wait(&E, x, TU_TIMEOUT_MS), FERRY_OK);
        FY_CHECK_EQ(cf_drain_notifs(&E, 20), 0);
    }
    ferry_xfer_release(x);
    bufs_close(&b);
}

/* READ requests carry notifications to the target too. */
static void test_notif_with_read(void)
{
    bufs b;
    ferry_xfer *x;
    if (!(E.caps.flags & FERRY_CAP_NOTIF))
        FY_SKIP("backend without notifications");
    FY_REQUIRE(bufs_open(&b, 64 * KB, 64 * KB, 12) == FERRY_OK);
    FY_REQUIRE(simple_xfer(&b, 64 * KB, FERRY_OP_READ, "cf-read-done", &x) == FERRY_OK);
    FY_CHECK_EQ(cf_post_wait(&E, x), FERRY_OK);
    FY_CHECK(remote_is(&b, 0, b.local, 64 * KB));
    FY_CHECK_EQ(cf_wait_notif(&E, "cf-read-done", 12, TU_TIMEOUT_MS), FERRY_OK);
    FY_CHECK_EQ(cf_drain_notifs(&E, 20), 0);
    ferry_xfer_release(x);
    bufs_close(&b);
}

/* A READ's notification reaches the target once the data has left it: a
 * target that reuses its memory as soon as it sees the notification does
 * not spoil the READ. */
static void test_notif_after_read_data(void)
{
    bufs b;
    ferry_xfer *x;
    const size_t size = 4 * MB;
    if (!(E.caps.flags & FERRY_CAP_NOTIF))
        FY_SKIP("backend without notifications");
    FY_REQUIRE(bufs_open(&b, size, size, 13) == FERRY_OK);
    FY_REQUIRE(simple_xfer(&b, size, FERRY_OP_READ, "cf-read-reuse", &x) == FERRY_OK);
    for (uint64_t round = 0; round < 3; round++) {
        tu_fill(b.remote, size, 200 + round);
        tu_fill(b.expect, size, 200 + round);
        ferry_status rc = ferry_xfer_post(x);
        FY_CHECK(rc == FERRY_OK || rc == FERRY_IN_PROGRESS);
        FY_CHECK_EQ(cf_wait_notif(&E, "cf-read-reuse", 13, TU_TIMEOUT_MS), FERRY_OK);
        memset(b.remote, 0xee, size); /* the target reuses its memory */
        FY_CHECK_EQ(cf_wait(&E, x, TU_TIMEOUT_MS), FERRY_OK);
        FY_CHECK(!memcmp(b.local, b.expect, size));
    }
    FY_CHECK_EQ(cf_drain_notifs(&E, 20), 0);
    ferry_xfer_release(x);
    bufs_close(&b);
}

/* Many small WRITEs in flight at once, each with its own notification:
 * whichever order they come in, each is seen with its data there. */
static void test_notif_after_many_writes(void)
{
    enum { N = 64, LEN = 4 * KB };
    bufs b;
    ferry_xfer *x[N] = {0};
    if (!(E.caps.flags & FERRY_CAP_NOTIF))
        FY_SKIP("backend without notifications");
    FY_REQUIRE(bufs_open(&b, N * LEN, N * LEN, 14) == FERRY_OK);
    for (size_t k = 0; k < N; k++) {
        char tag[32];
        snprintf(tag, sizeof(tag), "cf-small-%02zu", k);
        FY_CHECK_EQ(xfer_at(&b, k * LEN, LEN, FERRY_OP_WRITE, tag, &x[k]), FERRY_OK);
        ferry_status rc = x[k] ? ferry_xfer_post(x[k]) : FERRY_ERR_INVALID_PARAM;
        FY_CHECK(rc == FERRY_OK || rc == FERRY_IN_PROGRESS);
    }
    for (size_t k = N; k-- > 0;) { /* not ordered: the last posted first */
        char tag[32];
        snprintf(tag, sizeof(tag), "cf-small-%02zu", k);
        FY_CHECK_EQ(cf_wait_notif(&E, tag, strlen(tag), TU_TIMEOUT_MS), FERRY_OK);
        FY_CHECK(remote_is(&b, k * LEN, b.local + k * LEN, LEN));
    }
    for (size_t k = 0; k < N; k++) {
        FY_CHECK_EQ(x[k] ? cf_wait(&E, x[k], TU_TIMEOUT_MS) : FERRY_ERR_INVALID_PARAM, FERRY_OK);
        ferry_xfer_release(x[k]);
    }
    FY_CHECK_EQ(cf_drain_notifs(&E, 20), 0);
    bufs_close(&b);
}

static void test_notif_alone(void)
{
    if (!(E.caps.flags & FERRY_CAP_NOTIF))
        FY_SKIP("backend without notifications");
    for (int i = 0; i < 10; i++) {
        char msg[32];
        snprintf(msg, sizeof(msg), "cf-alone-%d", i);
        FY_CHECK_EQ(ferry_notif_send(E.ini, E.tgt_name, msg, strlen(msg), NULL), FERRY_OK);
    }
    for (int i = 9; i >= 0; i--) { /* not ordered: take them in any order */
        char msg[32];
        snprintf(msg, sizeof(msg), "cf-alone-%d", i);
        FY_CHECK_EQ(cf_wait_notif(&E, msg, strlen(msg), TU_TIMEOUT_MS), FERRY_OK);
    }
    FY_CHECK_EQ(cf_drain_notifs(&E, 20), 0);
}

/* A backend without notifications says so: a request asking for one and
 * a notification alone are refused, with nothing started. */
static void test_notif_refused(void)
{
    bufs b;
    ferry_xfer *x = NULL;
    if (E.caps.flags & FERRY_CAP_NOTIF)
        FY_SKIP("backend with notifications");
    FY_REQUIRE(bufs_open(&b, 64 * KB, 64 * KB, 10) == FERRY_OK);
    ferry_status rc = simple_xfer(&b, 64 * KB, FERRY_OP_WRITE, "cf-no-notif", &x);
    FY_CHECK(rc == FERRY_ERR_NOT_FOUND || rc == FERRY_ERR_NOT_SUPPORTED);
    FY_CHECK(x == NULL);
    FY_REQUIRE(simple_xfer(&b, 64 * KB, FERRY_OP_WRITE, NULL, &x) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_set_notif(x, "cf-late", 7), FERRY_ERR_NOT_SUPPORTED);
    FY_CHECK_EQ(cf_post_wait(&E, x), FERRY_OK);
    FY_CHECK(remote_is(&b, 0, b.local, 64 * KB));
    rc = ferry_notif_send(E.ini, E.tgt_name, "cf-alone", 8, NULL);
    FY_CHECK(rc == FERRY_ERR_NOT_FOUND || rc == FERRY_ERR_NOT_SUPPORTED);
    ferry_xfer_release(x);
    bufs_close(&b);
}

/* ---- local-only backends ---- */

/* Another agent's metadata gives no way to it: the load or the request
 * is refused with an error, and the backend goes on serving its own. */
static void test_local_only(void)
{
    bufs b;
    ferry_agent *other = NULL;
    ferry_xfer *x = NULL;
    if (E.caps.flags & FERRY_CAP_REMOTE)
        FY_SKIP("backend with remote transfers");
    FY_REQUIRE(bufs_open(&b, 64 * KB, 64 * KB, 23) == FERRY_OK);
    FY_REQUIRE(cf_agent_new(&E, "cf-other", &other) == FERRY_OK);
    ferry_dlist *l = tu_list1(b.local, 64 * KB), *r = side_list(&b, true, 1);
    ferry_dlist *reg = side_list(&b, true, 1);
    FY_REQUIRE(l && r && side_add(r, &b, true, 0, 64 * KB) == FERRY_OK);
    /* The other agent holds the same bytes, so only reachability is missing. */
    FY_REQUIRE(reg && cf_store_add(reg, &b.rs, 0, 64 * KB, true) == FERRY_OK);
    ferry_status rc = ferry_register(other, reg, NULL);
    if (rc == FERRY_OK)
        rc = tu_load_md(E.ini, other);
    if (rc == FERRY_OK)
        rc = ferry_xfer_create(E.ini, FERRY_OP_WRITE, l, r, "cf-other", NULL, &x);
    FY_CHECK(rc < 0);
    FY_CHECK(x == NULL);
    ferry_md_invalidate(E.ini, "cf-other");
    FY_REQUIRE(ferry_xfer_create(E.ini, FERRY_OP_WRITE, l, r, E.tgt_name, NULL, &x) == FERRY_OK);
    FY_CHECK_EQ(cf_post_wait(&E, x), FERRY_OK);
    FY_CHECK(remote_is(&b, 0, b.local, 64 * KB));
    ferry_xfer_release(x);
    ferry_agent_destroy(other);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    ferry_dlist_destroy(reg);
    bufs_close(&b);
}

/* ---- stores written whole (objects) ---- */

/* One request writes several objects whole (one descriptor each, sizes
 * from a byte to a few MiB); a WRITE at another offset is refused before
 * anything starts. */
static void test_store_whole_writes(void)
{
    enum { N = 5 };
    static const size_t sizes[N] = {1, 4 * KB + 3, 64 * KB, 1 * MB, 3 * MB + 17};
    bufs b[N];
    ferry_dlist *l, *r;
    ferry_xfer *x = NULL;
    if (cf_store_writes_at(&E))
        FY_SKIP("the target is written anywhere (the other tests cover it)");
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_DRAM, N, &l) == FERRY_OK);
    FY_REQUIRE(ferry_dlist_create(E.store_type, N, &r) == FERRY_OK);
    for (size_t i = 0; i < N; i++) {
        FY_REQUIRE(bufs_open(&b[i], sizes[i], sizes[i], 30 + i) == FERRY_OK);
        FY_CHECK_EQ(side_add(l, &b[i], false, 0, sizes[i]), FERRY_OK);
        FY_CHECK_EQ(side_add(r, &b[i], true, 0, sizes[i]), FERRY_OK);
    }
    FY_REQUIRE(ferry_xfer_create(E.ini, FERRY_OP_WRITE, l, r, E.tgt_name, NULL, &x) == FERRY_OK);
    FY_CHECK_EQ(cf_post_wait(&E, x), FERRY_OK);
    for (size_t i = 0; i < N; i++)
        FY_CHECK(remote_is(&b[i], 0, b[i].local, sizes[i]));
    ferry_xfer_release(x);
    x = NULL;
    ferry_status rc = xfer_at(&b[2], 4 * KB, 4 * KB, FERRY_OP_WRITE, NULL, &x);
    FY_CHECK_EQ(rc, FERRY_ERR_NOT_SUPPORTED);
    FY_CHECK(x == NULL);
    for (size_t i = 0; i < N; i++)
        bufs_close(&b[i]);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
}

/* ---- repost and release ---- */

static void test_repost(void)
{
    bufs b;
    ferry_xfer *x;
    FY_REQUIRE(bufs_open(&b, 256 * KB, 256 * KB, 13) == FERRY_OK);
    FY_REQUIRE(simple_xfer(&b, 256 * KB, FERRY_OP_WRITE, NULL, &x) == FERRY_OK);
    for (uint64_t round = 0; round < 5; round++) {
        tu_fill(b.local, b.lsize, 200 + round);
        FY_CHECK_EQ(cf_post_wait(&E, x), FERRY_OK);
        FY_CHECK(remote_is(&b, 0, b.local, b.rsize));
    }
    ferry_xfer_release(x);
    bufs_close(&b);
}

/* A post while the request runs is refused and starts nothing; a backend
 * that completed the first post already may accept the second. */
static void test_repost_while_active(void)
{
    bufs b;
    ferry_xfer *x;
    const size_t size = 32 * MB;
    bool notif = E.caps.flags & FERRY_CAP_NOTIF;
    FY_REQUIRE(bufs_open(&b, size, size, 14) == FERRY_OK);
    FY_REQUIRE(simple_xfer(&b, size, FERRY_OP_WRITE, notif ? "cf-repost" : NULL, &x) == FERRY_OK);
    ferry_status first = ferry_xfer_post(x);
    FY_CHECK(first == FERRY_OK || first == FERRY_IN_PROGRESS);
    ferry_status second = ferry_xfer_post(x);
    FY_CHECK(second == FERRY_ERR_REPOST_ACTIVE || second == FERRY_OK ||
             second == FERRY_IN_PROGRESS);
    if (first == FERRY_OK)
        FY_CHECK(second != FERRY_ERR_REPOST_ACTIVE); /* it was not active */
    FY_CHECK_EQ(cf_wait(&E, x, TU_TIMEOUT_MS), FERRY_OK);
    FY_CHECK(remote_is(&b, 0, b.local, size));
    if (notif)
        FY_CHECK_EQ(cf_drain_notifs(&E, 50), second == FERRY_ERR_REPOST_ACTIVE ? 1 : 2);
    ferry_xfer_release(x);
    bufs_close(&b);
}

/* Once release returns, the destination does not change any more. */
static void test_release_in_progress(void)
{
    bufs b;
    ferry_xfer *x;
    const size_t size = 32 * MB;
    FY_REQUIRE(bufs_open(&b, size, size, 15) == FERRY_OK);
    FY_REQUIRE(simple_xfer(&b, size, FERRY_OP_WRITE, NULL, &x) == FERRY_OK);
    ferry_status rc = ferry_xfer_post(x);
    FY_CHECK(rc == FERRY_OK || rc == FERRY_IN_PROGRESS);
    rc = ferry_xfer_release(x);
    FY_CHECK(rc == FERRY_OK || rc < 0); /* an error is allowed: the handle is gone anyway */
    /* Whole-range copy and compare (not a word loop): a race detector
     * then reports a late write once instead of once per word. */
    FY_CHECK_EQ(cf_store_sync(&E, &b.rs, 0, size), FERRY_OK);
    memcpy(b.expect, b.remote, size);
    cf_drain_notifs(&E, 100);
    FY_CHECK(remote_is(&b, 0, b.expect, size));
    /* The backend goes on serving. */
    FY_REQUIRE(simple_xfer(&b, 4 * KB, FERRY_OP_WRITE, NULL, &x) == FERRY_OK);
    FY_CHECK_EQ(cf_post_wait(&E, x), FERRY_OK);
    FY_CHECK(remote_is(&b, 0, b.local, 4 * KB));
    ferry_xfer_release(x);
    bufs_close(&b);
}

static void test_release_unposted(void)
{
    bufs b;
    ferry_xfer *x;
    FY_REQUIRE(bufs_open(&b, 64 * KB, 64 * KB, 16) == FERRY_OK);
    FY_REQUIRE(simple_xfer(&b, 64 * KB, FERRY_OP_WRITE, NULL, &x) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_status(x), FERRY_ERR_NOT_POSTED);
    FY_CHECK_EQ(ferry_xfer_release(x), FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_release(NULL), FERRY_OK);
    bufs_close(&b);
}

/* ---- generations ---- */

static void test_stale_generation(void)
{
    bufs b;
    ferry_prepped *pl, *pr, *pr2;
    ferry_xfer *x, *old;
    uint32_t idx = 0;
    FY_REQUIRE(bufs_open(&b, 64 * KB, 64 * KB, 17) == FERRY_OK);
    ferry_dlist *l = tu_list1(b.local, 64 * KB), *r = side_list(&b, true, 1);
    FY_REQUIRE(l && r && side_add(r, &b, true, 0, 64 * KB) == FERRY_OK);
    FY_REQUIRE(ferry_prep_dlist(E.ini, NULL, l, NULL, &pl) == FERRY_OK);
    FY_REQUIRE(ferry_prep_dlist(E.ini, E.tgt_name, r, NULL, &pr) == FERRY_OK);
    FY_REQUIRE(ferry_xfer_make(E.ini, FERRY_OP_WRITE, pl, &idx, pr, &idx, 1, NULL, &old) ==
               FERRY_OK);
    FY_CHECK_EQ(cf_post_wait(&E, old), FERRY_OK);

    FY_REQUIRE(cf_publish(&E) == FERRY_OK); /* a new generation */
    x = NULL;
    FY_CHECK_EQ(ferry_xfer_make(E.ini, FERRY_OP_WRITE, pl, &idx, pr, &idx, 1, NULL, &x),
                FERRY_ERR_STALE);
    FY_CHECK_EQ(ferry_xfer_post(old), FERRY_ERR_STALE);
    FY_REQUIRE(ferry_prep_dlist(E.ini, E.tgt_name, r, NULL, &pr2) == FERRY_OK);
    FY_REQUIRE(ferry_xfer_make(E.ini, FERRY_OP_WRITE, pl, &idx, pr2, &idx, 1, NULL, &x) ==
               FERRY_OK);
    tu_fill(b.local, 64 * KB, 99);
    FY_CHECK_EQ(cf_post_wait(&E, x), FERRY_OK);
    FY_CHECK(remote_is(&b, 0, b.local, 64 * KB));
    ferry_xfer_release(x);
    ferry_xfer_release(old);
    ferry_prepped_release(pl);
    ferry_prepped_release(pr);
    ferry_prepped_release(pr2);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    bufs_close(&b);
}

/* Connecting ahead of the first transfer is allowed, repeatedly. */
static void test_connect(void)
{
    FY_CHECK_EQ(ferry_md_connect(E.ini, E.tgt_name, NULL), FERRY_OK);
    FY_CHECK_EQ(ferry_md_connect(E.ini, E.tgt_name, NULL), FERRY_OK);
    FY_CHECK_EQ(ferry_md_connect(E.ini, "cf-nobody", NULL), FERRY_ERR_NOT_FOUND);
    bufs b;
    ferry_xfer *x;
    FY_REQUIRE(bufs_open(&b, 64 * KB, 64 * KB, 22) == FERRY_OK);
    FY_CHECK_EQ(ferry_md_connect(E.ini, E.tgt_name, NULL), FERRY_OK);
    FY_REQUIRE(simple_xfer(&b, 64 * KB, FERRY_OP_WRITE, NULL, &x) == FERRY_OK);
    FY_CHECK_EQ(cf_post_wait(&E, x), FERRY_OK);
    FY_CHECK(remote_is(&b, 0, b.local, 64 * KB));
    ferry_xfer_release(x);
    bufs_close(&b);
}

/* ---- telemetry, cost, counters, errors ---- */

static void test_telemetry(void)
{
    bufs b;
    ferry_xfer *x;
    ferry_xfer_telemetry t;
    FY_REQUIRE(bufs_open(&b, 1 * MB, 1 * MB, 18) == FERRY_OK);
    FY_REQUIRE(simple_xfer(&b, 1 * MB, FERRY_OP_WRITE, NULL, &x) == FERRY_OK);
    ferry_xfer_telemetry_init(&t);
    FY_CHECK_EQ(ferry_xfer_get_telemetry(x, &t), FERRY_ERR_NOT_POSTED);
    FY_CHECK_EQ(cf_post_wait(&E, x), FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_get_telemetry(x, &t), FERRY_OK);
    FY_CHECK_EQ(t.total_bytes, 1 * MB);
    FY_CHECK_EQ(t.desc_count, 1);
    FY_CHECK(t.start_us > 0);
    FY_CHECK(t.xfer_us >= t.post_us);
    ferry_xfer_release(x);
    bufs_close(&b);
}

static void test_estimate(void)
{
    bufs b;
    ferry_xfer *x;
    ferry_xfer_cost c;
    FY_REQUIRE(bufs_open(&b, 1 * MB, 1 * MB, 19) == FERRY_OK);
    FY_REQUIRE(simple_xfer(&b, 1 * MB, FERRY_OP_WRITE, NULL, &x) == FERRY_OK);
    ferry_xfer_cost_init(&c);
    ferry_status rc = ferry_xfer_estimate(x, &c);
    FY_CHECK(rc == FERRY_OK || rc == FERRY_ERR_NOT_SUPPORTED);
    if (rc == FERRY_OK)
        FY_CHECK(c.duration_us >= 0 && c.error_margin_us >= 0);
    ferry_xfer_release(x);
    bufs_close(&b);
}

static void test_counters(void)
{
    bufs b;
    ferry_xfer *x;
    ferry_counters before, after;
    FY_REQUIRE(bufs_open(&b, 100 * KB, 100 * KB, 20) == FERRY_OK);
    ferry_counters_init(&before);
    ferry_counters_init(&after);
    FY_REQUIRE(ferry_counters_get(E.ini, &before) == FERRY_OK);
    FY_REQUIRE(simple_xfer(&b, 100 * KB, FERRY_OP_WRITE, NULL, &x) == FERRY_OK);
    FY_CHECK_EQ(cf_post_wait(&E, x), FERRY_OK);
    ferry_xfer_release(x);
    FY_REQUIRE(simple_xfer(&b, 10 * KB, FERRY_OP_READ, NULL, &x) == FERRY_OK);
    FY_CHECK_EQ(cf_post_wait(&E, x), FERRY_OK);
    ferry_xfer_release(x);
    FY_REQUIRE(ferry_counters_get(E.ini, &after) == FERRY_OK);
    FY_CHECK_EQ(after.tx_bytes - before.tx_bytes, 100 * KB);
    FY_CHECK_EQ(after.tx_requests - before.tx_requests, 1);
    FY_CHECK_EQ(after.rx_bytes - before.rx_bytes, 10 * KB);
    FY_CHECK_EQ(after.rx_requests - before.rx_requests, 1);
    FY_CHECK_EQ(after.xfer_errors, before.xfer_errors);
    bufs_close(&b);
}

/* The initiator's metrics of this backend follow a known workload, and the
 * histogram's sum is that of the requests' own telemetry. */
static long long be_metric(const char *name)
{
    return tu_metric_value(E.ini, name, "backend", ferry_backend_name(E.ini_be), NULL);
}

static uint64_t post_timed(ferry_xfer *x)
{
    ferry_xfer_telemetry t;
    ferry_xfer_telemetry_init(&t);
    FY_CHECK_EQ(cf_post_wait(&E, x), FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_get_telemetry(x, &t), FERRY_OK);
    ferry_xfer_release(x);
    return t.xfer_us;
}

static uint64_t hist_sum(const char *name)
{
    ferry_metrics *m = NULL;
    if (ferry_metrics_get(E.ini, &m) != FERRY_OK)
        return 0;
    const ferry_metric *h = tu_metric_find(m, name, "backend", ferry_backend_name(E.ini_be), NULL);
    uint64_t sum = h ? h->value : 0;
    ferry_metrics_free(m);
    return sum;
}

static void test_metrics(void)
{
    bufs b;
    ferry_xfer *x;
    FY_REQUIRE(bufs_open(&b, 100 * KB, 100 * KB, 22) == FERRY_OK);
    long long tx = be_metric("agent_tx_bytes"), rx = be_metric("agent_rx_bytes");
    long long txn = be_metric("agent_tx_requests_num"), n = be_metric("agent_xfer_time_us");
    uint64_t sum = hist_sum("agent_xfer_time_us"), us = 0;
    FY_REQUIRE(tx >= 0 && rx >= 0 && txn >= 0 && n >= 0);
    FY_REQUIRE(simple_xfer(&b, 100 * KB, FERRY_OP_WRITE, NULL, &x) == FERRY_OK);
    us += post_timed(x);
    FY_REQUIRE(simple_xfer(&b, 10 * KB, FERRY_OP_READ, NULL, &x) == FERRY_OK);
    us += post_timed(x);
    FY_CHECK_EQ(be_metric("agent_tx_bytes") - tx, 100 * KB);
    FY_CHECK_EQ(be_metric("agent_rx_bytes") - rx, 10 * KB);
    FY_CHECK_EQ(be_metric("agent_tx_requests_num") - txn, 1);
    FY_CHECK_EQ(be_metric("agent_xfer_time_us") - n, 2);
    FY_CHECK_EQ(hist_sum("agent_xfer_time_us") - sum, us);
    FY_CHECK(be_metric("ferry_registered_bytes") >= 100 * KB); /* the local buffer, at least */
    bufs_close(&b);
}

static void test_errors(void)
{
    bufs b;
    ferry_xfer *x = NULL;
    FY_REQUIRE(bufs_open(&b, 64 * KB, 64 * KB, 21) == FERRY_OK);
    ferry_dlist *l = tu_list1(b.local, 4 * KB), *r_short = side_list(&b, true, 1);
    ferry_dlist *r_out = side_list(&b, true, 1);
    FY_REQUIRE(l && r_short && r_out);
    FY_REQUIRE(side_add(r_short, &b, true, 0, 2 * KB) == FERRY_OK);
    FY_REQUIRE(side_add(r_out, &b, true, 62 * KB, 4 * KB) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_create(E.ini, FERRY_OP_WRITE, l, r_short, E.tgt_name, NULL, &x),
                FERRY_ERR_MISMATCH);
    FY_CHECK_EQ(ferry_xfer_create(E.ini, FERRY_OP_WRITE, l, r_out, E.tgt_name, NULL, &x),
                FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(ferry_xfer_create(E.ini, FERRY_OP_WRITE, l, r_out, "cf-nobody", NULL, &x),
                FERRY_ERR_NOT_FOUND);
    FY_CHECK(x == NULL);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r_short);
    ferry_dlist_destroy(r_out);
    bufs_close(&b);
}

int main(int argc, char **argv)
{
    const char *why;
    ferry_status rc = cf_env_open(&E, argc, argv, &why);
    if (rc == FERRY_ERR_NOT_FOUND || rc == FERRY_ERR_NOT_SUPPORTED) {
        char reason[256];
        snprintf(reason, sizeof(reason), "%s: %s", argc > 1 ? argv[1] : "?", why);
        fy_test_skip_all(reason);
    }
    if (rc != FERRY_OK) {
        printf("Bail out! %s (%s)\n", why, ferry_strerror(rc));
        return 1;
    }
    printf("# %s in %s topology, target memory %s%s, seed %#llx\n", E.plugin,
           E.pair ? "pair" : "loopback", ferry_mem_type_name(E.store_type),
           E.direct ? " (O_DIRECT)" : "", (unsigned long long)tu_seed());
    FY_RUN(test_write_adhoc);
    FY_RUN(test_read_adhoc);
    FY_RUN(test_write_prepped);
    FY_RUN(test_read_prepped);
    FY_RUN(test_many_regions);
    FY_RUN(test_large_transfer);
    FY_RUN(test_notif_once_after_data);
    FY_RUN(test_notif_with_read);
    FY_RUN(test_notif_after_read_data);
    FY_RUN(test_notif_after_many_writes);
    FY_RUN(test_notif_alone);
    FY_RUN(test_notif_refused);
    FY_RUN(test_repost);
    FY_RUN(test_repost_while_active);
    FY_RUN(test_release_in_progress);
    FY_RUN(test_release_unposted);
    FY_RUN(test_stale_generation);
    FY_RUN(test_connect);
    FY_RUN(test_telemetry);
    FY_RUN(test_estimate);
    FY_RUN(test_counters);
    FY_RUN(test_metrics);
    FY_RUN(test_errors);
    FY_RUN(test_local_only);
    FY_RUN(test_store_whole_writes);
    cf_env_close(&E);
    return fy_test_done();
}
