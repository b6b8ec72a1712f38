/* SPDX-License-Identifier: Apache-2.0 */
/* Transfer requests through LOCAL in loopback: ad hoc and prepared, READ
 * and WRITE, argument checks, merging, repost (also while active), release
 * while active, notifications set per post, backend choice, telemetry, cost
 * estimates and stale generations. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/ferry.h>

#include "harness.h"
#include "testutil.h"

#define SENTINEL ((void *)0x5e5e5e5e)
#define KB       1024u
#define MB       (1024u * 1024u)

/* Pooled transfers that take long enough to be seen in progress: one
 * worker, 4 KiB items. 64 MiB keeps valgrind runs bounded. */
#define SLOW_LEN (64u * MB)
static const ferry_param slow_pool[] = TU_POOL_PARAMS("1", "4096", "4096");

static ferry_dlist *list_of(const uint8_t *base, const size_t (*ranges)[2], size_t n)
{
    ferry_dlist *l;
    if (ferry_dlist_create(FERRY_MEM_DRAM, n, &l) != FERRY_OK)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (ferry_dlist_add(l, (uintptr_t)base + ranges[i][0], ranges[i][1], 0) != FERRY_OK) {
            ferry_dlist_destroy(l);
            return NULL;
        }
    return l;
}

/* Strided lists of `count` blocks of `block` bytes over src and dst, prepared
 * on the local side and against the agent's own name. */
typedef struct blocks {
    ferry_prepped *local, *remote;
} blocks;

static ferry_status blocks_prep(tu_loop *lp, size_t count, size_t block, blocks *b)
{
    ferry_dlist *l = NULL, *r = NULL;
    ferry_status rc =
        ferry_dlist_create_strided(FERRY_MEM_DRAM, (uintptr_t)lp->src, block, count, block, 0, &l);
    if (rc == FERRY_OK)
        rc = ferry_dlist_create_strided(FERRY_MEM_DRAM, (uintptr_t)lp->dst, block, count, block, 0,
                                        &r);
    b->local = b->remote = NULL;
    if (rc == FERRY_OK)
        rc = ferry_prep_dlist(lp->agent, NULL, l, NULL, &b->local);
    if (rc == FERRY_OK)
        rc = ferry_prep_dlist(lp->agent, lp->name, r, NULL, &b->remote);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    return rc;
}

static void blocks_release(blocks *b)
{
    ferry_prepped_release(b->local);
    ferry_prepped_release(b->remote);
}

/* ---- ad hoc requests ---- */

static void test_create_write_read(void)
{
    tu_loop lp;
    ferry_xfer *x;
    FY_REQUIRE(tu_loop_open(&lp, "adhoc", NULL, NULL, 0, 64 * KB) == FERRY_OK);
    /* Scattered, of unequal sizes, in a different order on each side. */
    const size_t lr[][2] = {{0, 100}, {1000, 3000}, {10 * KB, 1}, {20 * KB, 40 * KB}};
    const size_t rr[][2] = {{60 * KB, 100}, {0, 3000}, {5 * KB, 1}, {8 * KB, 40 * KB}};
    ferry_dlist *l = list_of(lp.src, lr, 4), *r = list_of(lp.dst, rr, 4);
    FY_REQUIRE(l && r);
    FY_REQUIRE(ferry_xfer_create(lp.agent, FERRY_OP_WRITE, l, r, lp.name, NULL, &x) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_status(x), FERRY_ERR_NOT_POSTED);
    FY_CHECK_EQ(ferry_xfer_count(x), 4);
    FY_CHECK(ferry_xfer_backend(x) == lp.be);
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_status(x), FERRY_OK);
    FY_CHECK(ferry_xfer_error(x) && ferry_xfer_error(x)[0] == '\0');
    for (size_t i = 0; i < 4; i++)
        FY_CHECK(!memcmp(lp.dst + rr[i][0], lp.src + lr[i][0], lr[i][1]));
    FY_CHECK(lp.dst[3000] == 0 && lp.dst[60 * KB + 100] == 0); /* nothing beyond */
    FY_CHECK_EQ(ferry_xfer_release(x), FERRY_OK);

    /* READ brings the remote bytes into local memory. */
    tu_fill(lp.dst, lp.len, 77);
    FY_REQUIRE(ferry_xfer_create(lp.agent, FERRY_OP_READ, l, r, lp.name, NULL, &x) == FERRY_OK);
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    for (size_t i = 0; i < 4; i++)
        FY_CHECK(!memcmp(lp.src + lr[i][0], lp.dst + rr[i][0], lr[i][1]));
    ferry_xfer_release(x);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    tu_loop_close(&lp);
}

static void check_create_refused(tu_loop *lp, ferry_xfer_op op, const ferry_dlist *l,
                                 const ferry_dlist *r, const char *remote,
                                 const ferry_xfer_opts *opts, ferry_status want)
{
    ferry_xfer *x = SENTINEL;
    FY_CHECK_EQ(ferry_xfer_create(lp->agent, op, l, r, remote, opts, &x), want);
    FY_CHECK(x == SENTINEL);
}

static void test_create_errors(void)
{
    tu_loop lp;
    ferry_xfer *x = SENTINEL;
    ferry_xfer_opts opts;
    char too_long[8];
    FY_REQUIRE(tu_loop_open(&lp, "create-errors", NULL, NULL, 0, 64 * KB) == FERRY_OK);
    ferry_dlist *l = tu_list1(lp.src, 4 * KB), *r = tu_list1(lp.dst, 4 * KB);
    ferry_dlist *r_short = tu_list1(lp.dst, 2 * KB), *outside = tu_list1(lp.dst + 62 * KB, 4 * KB);
    ferry_dlist *empty, *two, *vram;
    FY_REQUIRE(l && r && r_short && outside);
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_DRAM, 0, &empty) == FERRY_OK);
    const size_t pair[][2] = {{0, 2 * KB}, {4 * KB, 2 * KB}};
    FY_REQUIRE((two = list_of(lp.dst, pair, 2)));
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_VRAM, 1, &vram) == FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add(vram, (uintptr_t)lp.dst, 4 * KB, 0), FERRY_OK);

    FY_CHECK_EQ(ferry_xfer_create(NULL, FERRY_OP_WRITE, l, r, lp.name, NULL, &x),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_xfer_create(lp.agent, FERRY_OP_WRITE, l, r, lp.name, NULL, NULL),
                FERRY_ERR_INVALID_PARAM);
    check_create_refused(&lp, FERRY_OP_WRITE, NULL, r, lp.name, NULL, FERRY_ERR_INVALID_PARAM);
    check_create_refused(&lp, FERRY_OP_WRITE, l, NULL, lp.name, NULL, FERRY_ERR_INVALID_PARAM);
    check_create_refused(&lp, FERRY_OP_WRITE, l, r, NULL, NULL, FERRY_ERR_INVALID_PARAM);
    check_create_refused(&lp, FERRY_OP_WRITE, l, r, "", NULL, FERRY_ERR_INVALID_PARAM);
    check_create_refused(&lp, (ferry_xfer_op)7, l, r, lp.name, NULL, FERRY_ERR_INVALID_PARAM);
    check_create_refused(&lp, FERRY_OP_WRITE, empty, empty, lp.name, NULL, FERRY_ERR_INVALID_PARAM);
    check_create_refused(&lp, FERRY_OP_WRITE, l, two, lp.name, NULL, FERRY_ERR_MISMATCH);
    check_create_refused(&lp, FERRY_OP_WRITE, l, r_short, lp.name, NULL, FERRY_ERR_MISMATCH);
    check_create_refused(&lp, FERRY_OP_WRITE, l, r, "nobody", NULL, FERRY_ERR_NOT_FOUND);
    check_create_refused(&lp, FERRY_OP_WRITE, l, outside, lp.name, NULL, FERRY_ERR_NOT_FOUND);
    check_create_refused(&lp, FERRY_OP_READ, outside, r, lp.name, NULL, FERRY_ERR_NOT_FOUND);
    check_create_refused(&lp, FERRY_OP_WRITE, l, vram, lp.name, NULL, FERRY_ERR_NOT_FOUND);

    ferry_xfer_opts_init(&opts);
    opts.size = 8;
    check_create_refused(&lp, FERRY_OP_WRITE, l, r, lp.name, &opts, FERRY_ERR_INVALID_PARAM);
    ferry_xfer_opts_init(&opts);
    opts.notif = too_long;
    opts.notif_len = FERRY_NOTIF_MAX_LEN + 1;
    check_create_refused(&lp, FERRY_OP_WRITE, l, r, lp.name, &opts, FERRY_ERR_INVALID_PARAM);
    opts.notif = NULL;
    opts.notif_len = 4;
    check_create_refused(&lp, FERRY_OP_WRITE, l, r, lp.name, &opts, FERRY_ERR_INVALID_PARAM);
    ferry_xfer_opts_init(NULL);

    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    ferry_dlist_destroy(r_short);
    ferry_dlist_destroy(outside);
    ferry_dlist_destroy(empty);
    ferry_dlist_destroy(two);
    ferry_dlist_destroy(vram);
    tu_loop_close(&lp);
}

/* Without the agent's own metadata loaded there is no loopback target. */
static void test_create_without_own_metadata(void)
{
    ferry_agent *agent;
    uint8_t *a = tu_alloc(4 * KB), *b = tu_alloc(4 * KB);
    ferry_xfer *x = SENTINEL;
    FY_REQUIRE(a && b && tu_agent("no-md", &agent) == FERRY_OK);
    FY_CHECK_EQ(tu_register(agent, a, 4 * KB), FERRY_OK);
    FY_CHECK_EQ(tu_register(agent, b, 4 * KB), FERRY_OK);
    ferry_dlist *l = tu_list1(a, 4 * KB), *r = tu_list1(b, 4 * KB);
    FY_CHECK_EQ(ferry_xfer_create(agent, FERRY_OP_WRITE, l, r, "no-md", NULL, &x),
                FERRY_ERR_NOT_FOUND);
    FY_CHECK(x == SENTINEL);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    ferry_agent_destroy(agent);
    free(a);
    free(b);
}

/* ---- prepared requests ---- */

static void test_make_indices(void)
{
    tu_loop lp;
    blocks b;
    ferry_xfer *x;
    FY_REQUIRE(tu_loop_open(&lp, "make", NULL, NULL, 0, 64 * KB) == FERRY_OK);
    FY_REQUIRE(blocks_prep(&lp, 16, 4 * KB, &b) == FERRY_OK);
    FY_CHECK_EQ(ferry_prepped_count(b.local), 16);
    /* Block i of src goes to block 15 - i of dst; block 3 twice. */
    uint32_t li[17], ri[17];
    for (uint32_t i = 0; i < 16; i++) {
        li[i] = i;
        ri[i] = 15 - i;
    }
    li[16] = 3;
    ri[16] = 12;
    FY_REQUIRE(ferry_xfer_make(lp.agent, FERRY_OP_WRITE, b.local, li, b.remote, ri, 17, NULL, &x) ==
               FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_count(x), 17);
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    for (size_t i = 0; i < 16; i++)
        FY_CHECK(!memcmp(lp.dst + (15 - i) * 4 * KB, lp.src + i * 4 * KB, 4 * KB));
    ferry_xfer_release(x);
    /* The prepared lists outlive the requests made from them, and the
     * requests outlive the lists. */
    FY_REQUIRE(ferry_xfer_make(lp.agent, FERRY_OP_READ, b.local, li, b.remote, li, 16, NULL, &x) ==
               FERRY_OK);
    blocks_release(&b);
    tu_fill(lp.dst, lp.len, 9);
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    FY_CHECK(!memcmp(lp.src, lp.dst, lp.len));
    ferry_xfer_release(x);
    tu_loop_close(&lp);
}

/* 64-bit index arrays (ferry_xfer_make64) move what 32-bit ones do; a
 * negative entry, one past the list and one past 32 bits are refused with
 * a detail naming it, in the vector part of an array and in its tail. */
static void check_make64_refused(tu_loop *lp, const blocks *b, int64_t *idx, size_t n, size_t at,
                                 int64_t bad, const char *detail)
{
    ferry_xfer *x = SENTINEL;
    int64_t keep = idx[at];
    idx[at] = bad;
    ferry_clear_error();
    FY_CHECK_EQ(
        ferry_xfer_make64(lp->agent, FERRY_OP_WRITE, b->local, idx, b->remote, idx, n, NULL, &x),
        FERRY_ERR_INVALID_PARAM);
    FY_CHECK(x == SENTINEL);
    if (!strstr(ferry_last_error(), detail)) {
        printf("# detail \"%s\" lacks \"%s\"\n", ferry_last_error(), detail);
        FY_CHECK(false);
    }
    idx[at] = keep;
}

static void test_make64(void)
{
    tu_loop lp;
    blocks b;
    ferry_xfer *x;
    FY_REQUIRE(tu_loop_open(&lp, "make64", NULL, NULL, 0, 64 * KB) == FERRY_OK);
    FY_REQUIRE(blocks_prep(&lp, 16, 4 * KB, &b) == FERRY_OK);
    int64_t li[17], ri[17];
    for (int64_t i = 0; i < 16; i++) {
        li[i] = i;
        ri[i] = 15 - i;
    }
    li[16] = 3;
    ri[16] = 12;
    FY_REQUIRE(ferry_xfer_make64(lp.agent, FERRY_OP_WRITE, b.local, li, b.remote, ri, 17, NULL,
                                 &x) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_count(x), 17);
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    for (size_t i = 0; i < 16; i++)
        FY_CHECK(!memcmp(lp.dst + (15 - i) * 4 * KB, lp.src + i * 4 * KB, 4 * KB));
    ferry_xfer_release(x);
    for (size_t at = 6; at < 17; at += 10) {
        check_make64_refused(&lp, &b, li, 17, at, -1, "index " /* narrowed first: by side */);
        check_make64_refused(&lp, &b, li, 17, at, -1, "(-1)");
        check_make64_refused(&lp, &b, li, 17, at, (int64_t)1 << 33, "(8589934592) out of range");
        check_make64_refused(&lp, &b, li, 17, at, 16, "out of range (16, 16)");
    }
    x = SENTINEL;
    FY_CHECK_EQ(
        ferry_xfer_make64(lp.agent, FERRY_OP_WRITE, b.local, NULL, b.remote, ri, 17, NULL, &x),
        FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_xfer_make64(lp.agent, FERRY_OP_WRITE, b.local, li, b.remote, ri, 0, NULL, &x),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK(x == SENTINEL);
    blocks_release(&b);
    tu_loop_close(&lp);
}

/* Plain lists built one descriptor at a time, as engines hand in every
 * block slot: regular ones (equal gaps, one length) and irregular ones both
 * make by index and move the right bytes; a regular one reaching past the
 * registration is refused. */
static ferry_status plain_prep(tu_loop *lp, const uint8_t *base, const char *agent,
                               const size_t (*ranges)[2], size_t n, ferry_prepped **out)
{
    ferry_dlist *l = list_of(base, ranges, n);
    ferry_status rc = l ? ferry_prep_dlist(lp->agent, agent, l, NULL, out) : FERRY_ERR_NO_MEMORY;
    ferry_dlist_destroy(l);
    return rc;
}

static void check_plain_make(tu_loop *lp, const size_t (*lr)[2], const size_t (*rr)[2], size_t n)
{
    ferry_prepped *l = NULL, *r = NULL;
    ferry_xfer *x;
    uint32_t li[8], ri[8];
    for (uint32_t i = 0; i < n; i++) {
        li[i] = i;
        ri[i] = (uint32_t)(n - 1 - i);
    }
    FY_REQUIRE(plain_prep(lp, lp->src, NULL, lr, n, &l) == FERRY_OK);
    FY_REQUIRE(plain_prep(lp, lp->dst, lp->name, rr, n, &r) == FERRY_OK);
    memset(lp->dst, 0, lp->len);
    FY_REQUIRE(ferry_xfer_make(lp->agent, FERRY_OP_WRITE, l, li, r, ri, n, NULL, &x) == FERRY_OK);
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    for (size_t i = 0; i < n; i++)
        FY_CHECK(!memcmp(lp->dst + rr[n - 1 - i][0], lp->src + lr[i][0], lr[i][1]));
    ferry_xfer_release(x);
    ferry_prepped_release(l);
    ferry_prepped_release(r);
}

static void test_make_plain_lists(void)
{
    tu_loop lp;
    ferry_prepped *p = NULL;
    FY_REQUIRE(tu_loop_open(&lp, "plain", NULL, NULL, 0, 64 * KB) == FERRY_OK);
    const size_t gaps[][2] = {{0, 4 * KB},       {8 * KB, 4 * KB},  {16 * KB, 4 * KB},
                              {24 * KB, 4 * KB}, {32 * KB, 4 * KB}, {40 * KB, 4 * KB},
                              {48 * KB, 4 * KB}, {56 * KB, 4 * KB}};
    const size_t mixed[][2] = {{4 * KB, 4 * KB},  {0, 4 * KB},       {12 * KB, 4 * KB},
                               {20 * KB, 4 * KB}, {28 * KB, 4 * KB}, {36 * KB, 4 * KB},
                               {44 * KB, 4 * KB}, {60 * KB, 4 * KB}};
    check_plain_make(&lp, gaps, gaps, 8);  /* regular on both sides */
    check_plain_make(&lp, mixed, gaps, 8); /* irregular here, regular there */
    check_plain_make(&lp, gaps, mixed, 8);
    /* Regular, but the last block lies past both registered buffers. */
    const uint8_t *top = lp.src > lp.dst ? lp.src : lp.dst;
    const size_t past[][2] = {{4 * KB, 4 * KB}, {36 * KB, 4 * KB}, {68 * KB, 4 * KB}};
    FY_CHECK_EQ(plain_prep(&lp, top, NULL, past, 3, &p), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(plain_prep(&lp, top, lp.name, past, 3, &p), FERRY_ERR_NOT_FOUND);
    tu_loop_close(&lp);
}

static void check_make_refused(ferry_agent *agent, ferry_xfer_op op, const ferry_prepped *l,
                               const uint32_t *li, const ferry_prepped *r, const uint32_t *ri,
                               size_t n, const ferry_xfer_opts *opts, ferry_status want)
{
    ferry_xfer *x = SENTINEL;
    FY_CHECK_EQ(ferry_xfer_make(agent, op, l, li, r, ri, n, opts, &x), want);
    FY_CHECK(x == SENTINEL);
}

static void test_make_errors(void)
{
    tu_loop lp, other;
    blocks b, ob, half;
    ferry_xfer *x;
    FY_REQUIRE(tu_loop_open(&lp, "make-errors", NULL, NULL, 0, 64 * KB) == FERRY_OK);
    FY_REQUIRE(tu_loop_open(&other, "make-other", NULL, NULL, 0, 64 * KB) == FERRY_OK);
    FY_REQUIRE(blocks_prep(&lp, 16, 4 * KB, &b) == FERRY_OK);
    FY_REQUIRE(blocks_prep(&lp, 16, 2 * KB, &half) == FERRY_OK);
    FY_REQUIRE(blocks_prep(&other, 16, 4 * KB, &ob) == FERRY_OK);
    ferry_agent *a = lp.agent;
    uint32_t idx[2] = {0, 1}, bad[2] = {0, 16};

    FY_CHECK_EQ(ferry_xfer_make(NULL, FERRY_OP_WRITE, b.local, idx, b.remote, idx, 2, NULL, &x),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_xfer_make(a, FERRY_OP_WRITE, b.local, idx, b.remote, idx, 2, NULL, NULL),
                FERRY_ERR_INVALID_PARAM);
    check_make_refused(a, FERRY_OP_WRITE, NULL, idx, b.remote, idx, 2, NULL,
                       FERRY_ERR_INVALID_PARAM);
    check_make_refused(a, FERRY_OP_WRITE, b.local, idx, NULL, idx, 2, NULL,
                       FERRY_ERR_INVALID_PARAM);
    check_make_refused(a, FERRY_OP_WRITE, b.local, NULL, b.remote, idx, 2, NULL,
                       FERRY_ERR_INVALID_PARAM);
    check_make_refused(a, FERRY_OP_WRITE, b.local, idx, b.remote, NULL, 2, NULL,
                       FERRY_ERR_INVALID_PARAM);
    check_make_refused(a, FERRY_OP_WRITE, b.local, idx, b.remote, idx, 0, NULL,
                       FERRY_ERR_INVALID_PARAM);
    check_make_refused(a, (ferry_xfer_op)2, b.local, idx, b.remote, idx, 2, NULL,
                       FERRY_ERR_INVALID_PARAM);
    check_make_refused(a, FERRY_OP_WRITE, b.local, bad, b.remote, idx, 2, NULL,
                       FERRY_ERR_INVALID_PARAM);
    check_make_refused(a, FERRY_OP_WRITE, b.local, idx, b.remote, bad, 2, NULL,
                       FERRY_ERR_INVALID_PARAM);
    /* Sides swapped: the local side must be local, the remote side remote. */
    check_make_refused(a, FERRY_OP_WRITE, b.remote, idx, b.local, idx, 2, NULL,
                       FERRY_ERR_INVALID_PARAM);
    check_make_refused(a, FERRY_OP_WRITE, b.local, idx, b.local, idx, 2, NULL,
                       FERRY_ERR_INVALID_PARAM);
    /* Lists of another agent. */
    check_make_refused(a, FERRY_OP_WRITE, ob.local, idx, b.remote, idx, 2, NULL,
                       FERRY_ERR_INVALID_PARAM);
    check_make_refused(a, FERRY_OP_WRITE, b.local, idx, ob.remote, idx, 2, NULL,
                       FERRY_ERR_INVALID_PARAM);
    /* Pairs of different lengths. */
    check_make_refused(a, FERRY_OP_WRITE, b.local, idx, half.remote, idx, 2, NULL,
                       FERRY_ERR_MISMATCH);
    /* Options: wrong size; a forced backend of another agent. */
    ferry_xfer_opts opts;
    ferry_xfer_opts_init(&opts);
    opts.size = 1;
    check_make_refused(a, FERRY_OP_WRITE, b.local, idx, b.remote, idx, 2, &opts,
                       FERRY_ERR_INVALID_PARAM);
    ferry_xfer_opts_init(&opts);
    opts.backend = other.be;
    check_make_refused(a, FERRY_OP_WRITE, b.local, idx, b.remote, idx, 2, &opts,
                       FERRY_ERR_NOT_FOUND);

    blocks_release(&b);
    blocks_release(&half);
    blocks_release(&ob);
    tu_loop_close(&other);
    tu_loop_close(&lp);
}

/* ---- merging ---- */

static size_t make_count(tu_loop *lp, const blocks *b, const uint32_t *li, const uint32_t *ri,
                         size_t n, bool skip_merge)
{
    ferry_xfer_opts opts;
    ferry_xfer *x;
    ferry_xfer_opts_init(&opts);
    opts.skip_merge = skip_merge;
    if (ferry_xfer_make(lp->agent, FERRY_OP_WRITE, b->local, li, b->remote, ri, n, &opts, &x) !=
        FERRY_OK)
        return 0;
    size_t count = ferry_xfer_count(x);
    memset(lp->dst, 0, lp->len);
    bool ok = tu_post_wait(x) == FERRY_OK;
    for (size_t i = 0; ok && i < n; i++)
        ok = !memcmp(lp->dst + ri[i] * 4 * KB, lp->src + li[i] * 4 * KB, 4 * KB);
    ferry_xfer_release(x);
    return ok ? count : 0;
}

static void test_merge(void)
{
    tu_loop lp;
    blocks b;
    FY_REQUIRE(tu_loop_open(&lp, "merge", NULL, NULL, 0, 64 * KB) == FERRY_OK);
    FY_REQUIRE(blocks_prep(&lp, 16, 4 * KB, &b) == FERRY_OK);
    uint32_t seq[16], rev[16];
    for (uint32_t i = 0; i < 16; i++) {
        seq[i] = i;
        rev[i] = 15 - i;
    }
    FY_CHECK_EQ(make_count(&lp, &b, seq, seq, 16, false), 1);
    FY_CHECK_EQ(make_count(&lp, &b, seq, seq, 16, true), 16);
    FY_CHECK_EQ(make_count(&lp, &b, rev, rev, 16, false), 16);
    /* Contiguous on the local side only. */
    FY_CHECK_EQ(make_count(&lp, &b, seq, rev, 16, false), 16);
    /* Two runs: 0-2 and 5-6 (to 8-10 and 13-14). */
    uint32_t li[] = {0, 1, 2, 5, 6}, ri[] = {8, 9, 10, 13, 14};
    FY_CHECK_EQ(make_count(&lp, &b, li, ri, 5, false), 2);
    /* A gap on one side breaks the run. */
    uint32_t li2[] = {0, 1, 2}, ri2[] = {0, 1, 3};
    FY_CHECK_EQ(make_count(&lp, &b, li2, ri2, 3, false), 2);
    blocks_release(&b);
    tu_loop_close(&lp);
}

/* Adjacent memory in two regions is not merged: a backend works per region. */
static void test_merge_stops_at_region_boundary(void)
{
    tu_loop lp;
    ferry_xfer *x;
    FY_REQUIRE(tu_loop_open(&lp, "merge-regions", NULL, NULL, 0, 64 * KB) == FERRY_OK);
    /* Split dst into two registered halves. */
    FY_REQUIRE(tu_deregister(lp.agent, lp.dst, lp.len) == FERRY_OK);
    FY_REQUIRE(tu_register(lp.agent, lp.dst, 32 * KB) == FERRY_OK);
    FY_REQUIRE(tu_register(lp.agent, lp.dst + 32 * KB, 32 * KB) == FERRY_OK);
    FY_REQUIRE(ferry_md_invalidate(lp.agent, lp.name) == FERRY_OK);
    FY_REQUIRE(tu_load_self(lp.agent) == FERRY_OK);
    const size_t lr[][2] = {{0, 32 * KB}, {32 * KB, 32 * KB}};
    ferry_dlist *l = list_of(lp.src, lr, 2), *r = list_of(lp.dst, lr, 2);
    FY_REQUIRE(l && r);
    FY_REQUIRE(ferry_xfer_create(lp.agent, FERRY_OP_WRITE, l, r, lp.name, NULL, &x) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_count(x), 2);
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    FY_CHECK(!memcmp(lp.src, lp.dst, lp.len));
    ferry_xfer_release(x);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    tu_loop_close(&lp);
}

/* ---- repost and release ---- */

static void test_repost(void)
{
    tu_loop lp;
    ferry_xfer *x;
    FY_REQUIRE(tu_loop_open(&lp, "repost", NULL, NULL, 0, 16 * KB) == FERRY_OK);
    FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, lp.len, NULL, &x) == FERRY_OK);
    for (uint64_t round = 0; round < 5; round++) {
        tu_fill(lp.src, lp.len, 100 + round);
        FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
        FY_CHECK(!memcmp(lp.src, lp.dst, lp.len));
    }
    ferry_xfer_release(x);
    tu_loop_close(&lp);
}

/* A second post while the first runs is refused and changes nothing; once
 * done, the request can be posted again. */
static void test_repost_active(void)
{
    tu_loop lp;
    ferry_xfer *x;
    int refused = 0;
    FY_REQUIRE(tu_loop_open(&lp, "repost-active", NULL, slow_pool, 3, SLOW_LEN) == FERRY_OK);
    FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, lp.len, "once", &x) == FERRY_OK);
    /* The first post could in theory finish before the second: retry. */
    for (int attempt = 0; attempt < 5 && !refused; attempt++) {
        ferry_status rc = ferry_xfer_post(x);
        FY_CHECK_EQ(rc, FERRY_IN_PROGRESS);
        ferry_status again = ferry_xfer_post(x);
        FY_CHECK(again == FERRY_ERR_REPOST_ACTIVE || again == FERRY_IN_PROGRESS ||
                 again == FERRY_OK);
        if (again == FERRY_ERR_REPOST_ACTIVE) {
            refused++;
            FY_CHECK_EQ(ferry_xfer_set_notif(x, "x", 1), FERRY_ERR_REPOST_ACTIVE);
        }
        FY_CHECK_EQ(tu_wait(x, TU_TIMEOUT_MS), FERRY_OK);
        FY_CHECK(!memcmp(lp.src, lp.dst, lp.len));
        size_t want = again == FERRY_ERR_REPOST_ACTIVE ? 1 : 2;
        FY_CHECK_EQ(tu_drain_notifs(lp.agent, lp.name), want);
    }
    FY_CHECK(refused > 0);
    ferry_xfer_release(x);
    tu_loop_close(&lp);
}

/* Releasing a request in progress cancels it: once release returns, no
 * byte of the destination changes any more, and the agent goes on. */
static void test_release_active(void)
{
    tu_loop lp;
    ferry_xfer *x;
    FY_REQUIRE(tu_loop_open(&lp, "release-active", NULL, slow_pool, 3, SLOW_LEN) == FERRY_OK);
    FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, lp.len, "canceled", &x) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_post(x), FERRY_IN_PROGRESS);
    FY_CHECK_EQ(ferry_xfer_release(x), FERRY_OK);
    uint64_t after_release = tu_hash(lp.dst, lp.len);
    tu_sleep_us(100 * 1000);
    FY_CHECK_EQ(tu_hash(lp.dst, lp.len), after_release);
    tu_drain_notifs(lp.agent, NULL);

    FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, 4 * KB, NULL, &x) == FERRY_OK);
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    FY_CHECK(!memcmp(lp.src, lp.dst, 4 * KB));
    ferry_xfer_release(x);

    /* Released before it was ever posted, and NULL. */
    FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, lp.len, NULL, &x) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_release(x), FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_release(NULL), FERRY_OK);
    tu_loop_close(&lp);
}

/* ---- notifications per post ---- */

static void test_set_notif(void)
{
    tu_loop lp;
    ferry_xfer *x;
    FY_REQUIRE(tu_loop_open(&lp, "set-notif", NULL, NULL, 0, 4 * KB) == FERRY_OK);
    FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, lp.len, "first", &x) == FERRY_OK);
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    FY_CHECK_EQ(ferry_notif_take_tag(lp.agent, lp.name, "first", 5, false), FERRY_OK);
    char msg[] = "second";
    FY_CHECK_EQ(ferry_xfer_set_notif(x, msg, 6), FERRY_OK);
    msg[0] = 'X'; /* copied */
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    FY_CHECK_EQ(ferry_notif_take_tag(lp.agent, lp.name, "second", 6, false), FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_set_notif(x, NULL, 0), FERRY_OK);
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    FY_CHECK_EQ(tu_drain_notifs(lp.agent, NULL), 0);

    FY_CHECK_EQ(ferry_xfer_set_notif(NULL, "a", 1), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_xfer_set_notif(x, NULL, 3), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_xfer_set_notif(x, msg, FERRY_NOTIF_MAX_LEN + 1), FERRY_ERR_INVALID_PARAM);
    /* The largest notification goes through whole. */
    uint8_t *big = malloc(FERRY_NOTIF_MAX_LEN);
    FY_REQUIRE(big);
    tu_fill(big, FERRY_NOTIF_MAX_LEN, 3);
    FY_CHECK_EQ(ferry_xfer_set_notif(x, big, FERRY_NOTIF_MAX_LEN), FERRY_OK);
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    FY_CHECK_EQ(ferry_notif_take_tag(lp.agent, lp.name, big, FERRY_NOTIF_MAX_LEN, false), FERRY_OK);
    free(big);
    ferry_xfer_release(x);
    tu_loop_close(&lp);
}

/* ---- accessors and backend choice ---- */

static void test_accessors_null(void)
{
    FY_CHECK_EQ(ferry_xfer_status(NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_xfer_post(NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK(ferry_xfer_backend(NULL) == NULL);
    FY_CHECK_EQ(ferry_xfer_count(NULL), 0);
    FY_CHECK(ferry_xfer_error(NULL) && ferry_xfer_error(NULL)[0] == '\0');
}

static void test_backend_choice(void)
{
    tu_loop lp;
    ferry_xfer *x;
    ferry_xfer_opts opts;
    FY_REQUIRE(tu_loop_open(&lp, "choice", NULL, NULL, 0, 4 * KB) == FERRY_OK);
    ferry_dlist *l = tu_list1(lp.src, lp.len), *r = tu_list1(lp.dst, lp.len);
    FY_REQUIRE(l && r);
    ferry_xfer_opts_init(&opts);
    opts.backend = lp.be;
    FY_REQUIRE(ferry_xfer_create(lp.agent, FERRY_OP_WRITE, l, r, lp.name, &opts, &x) == FERRY_OK);
    FY_CHECK(ferry_xfer_backend(x) == lp.be);
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    ferry_xfer_release(x);

    ferry_backend_sel sel;
    ferry_backend_sel_init(&sel);
    ferry_backend *const mine[] = {lp.be};
    sel.backends = mine;
    sel.num_backends = 1;
    ferry_xfer_opts_init(&opts);
    opts.sel = &sel;
    FY_REQUIRE(ferry_xfer_create(lp.agent, FERRY_OP_READ, l, r, lp.name, &opts, &x) == FERRY_OK);
    FY_CHECK(ferry_xfer_backend(x) == lp.be);
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    ferry_xfer_release(x);

    /* A forced backend of another agent serves nothing here. */
    tu_loop other;
    FY_REQUIRE(tu_loop_open(&other, "choice-other", NULL, NULL, 0, 4 * KB) == FERRY_OK);
    ferry_xfer_opts_init(&opts);
    opts.backend = other.be;
    x = SENTINEL;
    FY_CHECK_EQ(ferry_xfer_create(lp.agent, FERRY_OP_WRITE, l, r, lp.name, &opts, &x),
                FERRY_ERR_NOT_FOUND);
    FY_CHECK(x == SENTINEL);
    ferry_backend *const foreign[] = {other.be};
    sel.backends = foreign;
    ferry_xfer_opts_init(&opts);
    opts.sel = &sel;
    FY_CHECK_EQ(ferry_xfer_create(lp.agent, FERRY_OP_WRITE, l, r, lp.name, &opts, &x),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK(x == SENTINEL);
    tu_loop_close(&other);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    tu_loop_close(&lp);
}

/* ---- telemetry and cost ---- */

static void test_telemetry_off(void)
{
    tu_loop lp;
    ferry_xfer *x;
    ferry_xfer_telemetry t;
    FY_REQUIRE(tu_loop_open(&lp, "telem-off", NULL, NULL, 0, 4 * KB) == FERRY_OK);
    FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, lp.len, NULL, &x) == FERRY_OK);
    ferry_xfer_telemetry_init(&t);
    FY_CHECK_EQ(t.size, sizeof(t));
    FY_CHECK_EQ(ferry_xfer_get_telemetry(x, &t), FERRY_ERR_NO_TELEMETRY);
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_get_telemetry(x, &t), FERRY_ERR_NO_TELEMETRY);
    ferry_xfer_telemetry_init(NULL);
    ferry_xfer_release(x);
    tu_loop_close(&lp);
}

static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void check_telemetry_on(const ferry_agent_config *cfg, const char *name)
{
    tu_loop lp;
    ferry_xfer *x;
    ferry_xfer_telemetry t;
    FY_REQUIRE(tu_loop_open(&lp, name, cfg, NULL, 0, 64 * KB) == FERRY_OK);
    const size_t lr[][2] = {{0, 4 * KB}, {4 * KB, 4 * KB}, {32 * KB, 100}};
    ferry_dlist *l = list_of(lp.src, lr, 3), *r = list_of(lp.dst, lr, 3);
    FY_REQUIRE(l && r);
    FY_REQUIRE(ferry_xfer_create(lp.agent, FERRY_OP_WRITE, l, r, lp.name, NULL, &x) == FERRY_OK);
    ferry_xfer_telemetry_init(&t);
    FY_CHECK_EQ(ferry_xfer_get_telemetry(x, &t), FERRY_ERR_NOT_POSTED);
    uint64_t before = wall_us();
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_get_telemetry(x, &t), FERRY_OK);
    FY_CHECK_EQ(t.total_bytes, 8 * KB + 100);
    FY_CHECK_EQ(t.desc_count, 3); /* as given, though the first two merged */
    FY_CHECK_EQ(ferry_xfer_count(x), 2);
    /* Wall-clock time of the post, converted from the monotonic clock with
     * an offset taken when the agent started: a wall clock stepped or
     * slewed since (NTP, a VM's clock catching up) moves it by that much. */
    FY_CHECK(t.start_us + 2000000u >= before && t.start_us <= wall_us() + 2000000u);
    FY_CHECK(t.xfer_us >= t.post_us);
    t.size = 2;
    FY_CHECK_EQ(ferry_xfer_get_telemetry(x, &t), FERRY_ERR_INVALID_PARAM);
    ferry_xfer_telemetry_init(&t);
    FY_CHECK_EQ(ferry_xfer_get_telemetry(NULL, &t), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_xfer_get_telemetry(x, NULL), FERRY_ERR_INVALID_PARAM);
    ferry_xfer_release(x);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    tu_loop_close(&lp);
}

static void test_telemetry_on(void)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.telemetry = true;
    check_telemetry_on(&cfg, "telem-on");
}

/* FERRY_TELEMETRY=1 turns it on for agents created meanwhile. */
static void test_telemetry_env(void)
{
    setenv("FERRY_TELEMETRY", "1", 1);
    check_telemetry_on(NULL, "telem-env");
    unsetenv("FERRY_TELEMETRY");
}

/* While a pooled transfer runs, telemetry says IN_PROGRESS with the fields
 * known so far. */
static void test_telemetry_in_progress(void)
{
    ferry_agent_config cfg;
    tu_loop lp;
    ferry_xfer *x;
    ferry_xfer_telemetry t;
    ferry_agent_config_init(&cfg);
    cfg.telemetry = true;
    FY_REQUIRE(tu_loop_open(&lp, "telem-running", &cfg, slow_pool, 3, SLOW_LEN) == FERRY_OK);
    FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, lp.len, NULL, &x) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_post(x), FERRY_IN_PROGRESS);
    ferry_xfer_telemetry_init(&t);
    ferry_status rc = ferry_xfer_get_telemetry(x, &t);
    FY_CHECK(rc == FERRY_IN_PROGRESS || rc == FERRY_OK);
    FY_CHECK_EQ(t.total_bytes, SLOW_LEN);
    FY_CHECK_EQ(tu_wait(x, TU_TIMEOUT_MS), FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_get_telemetry(x, &t), FERRY_OK);
    FY_CHECK(t.xfer_us > 0);
    ferry_xfer_release(x);
    tu_loop_close(&lp);
}

static void test_estimate(void)
{
    tu_loop lp;
    ferry_xfer *small, *large;
    ferry_xfer_cost c1, c2;
    FY_REQUIRE(tu_loop_open(&lp, "estimate", NULL, NULL, 0, 4 * MB) == FERRY_OK);
    FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, 4 * KB, NULL, &small) == FERRY_OK);
    FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, 4 * MB, NULL, &large) == FERRY_OK);
    ferry_xfer_cost_init(&c1);
    ferry_xfer_cost_init(&c2);
    FY_CHECK_EQ(c1.size, sizeof(c1));
    FY_CHECK_EQ(ferry_xfer_estimate(small, &c1), FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_estimate(large, &c2), FERRY_OK);
    FY_CHECK(c1.duration_us > 0 && c1.error_margin_us >= 0);
    FY_CHECK(c2.duration_us > c1.duration_us);
    FY_CHECK_EQ(c1.method, FERRY_COST_ANALYTICAL);
    c1.size = 0;
    FY_CHECK_EQ(ferry_xfer_estimate(small, &c1), FERRY_ERR_INVALID_PARAM);
    ferry_xfer_cost_init(&c1);
    FY_CHECK_EQ(ferry_xfer_estimate(NULL, &c1), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_xfer_estimate(small, NULL), FERRY_ERR_INVALID_PARAM);
    ferry_xfer_cost_init(NULL);
    ferry_xfer_release(small);
    ferry_xfer_release(large);
    tu_loop_close(&lp);
}

/* ---- stale generations ---- */

static void test_stale_generation(void)
{
    tu_loop lp;
    blocks b;
    ferry_xfer *done, *x = SENTINEL;
    uint64_t gen1 = 0, gen2 = 0;
    uint32_t idx[] = {0, 1};
    FY_REQUIRE(tu_loop_open(&lp, "stale", NULL, NULL, 0, 16 * KB) == FERRY_OK);
    FY_REQUIRE(blocks_prep(&lp, 4, 4 * KB, &b) == FERRY_OK);
    FY_CHECK_EQ(ferry_md_generation(lp.agent, lp.name, &gen1), FERRY_OK);
    FY_REQUIRE(ferry_xfer_make(lp.agent, FERRY_OP_WRITE, b.local, idx, b.remote, idx, 2, NULL,
                               &done) == FERRY_OK);
    FY_CHECK_EQ(tu_post_wait(done), FERRY_OK);

    FY_CHECK_EQ(ferry_md_invalidate(lp.agent, lp.name), FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_make(lp.agent, FERRY_OP_WRITE, b.local, idx, b.remote, idx, 2, NULL, &x),
                FERRY_ERR_STALE);
    FY_CHECK(x == SENTINEL);
    FY_CHECK_EQ(ferry_xfer_post(done), FERRY_ERR_STALE);
    FY_CHECK(ferry_xfer_error(done)[0] != '\0');
    FY_CHECK_EQ(ferry_xfer_status(done), FERRY_ERR_STALE); /* the refused post is reported */
    ferry_dlist *r = tu_list1(lp.dst, 4 * KB);
    ferry_prepped *p = SENTINEL;
    FY_CHECK_EQ(ferry_prep_dlist(lp.agent, lp.name, r, NULL, &p), FERRY_ERR_NOT_FOUND);
    FY_CHECK(p == SENTINEL);

    /* Reloading makes a new generation: new handles work, old ones stay
     * stale. */
    FY_REQUIRE(tu_load_self(lp.agent) == FERRY_OK);
    FY_CHECK_EQ(ferry_md_generation(lp.agent, lp.name, &gen2), FERRY_OK);
    FY_CHECK(gen2 > gen1);
    FY_CHECK_EQ(ferry_xfer_post(done), FERRY_ERR_STALE);
    FY_CHECK_EQ(ferry_xfer_make(lp.agent, FERRY_OP_WRITE, b.local, idx, b.remote, idx, 2, NULL, &x),
                FERRY_ERR_STALE);
    FY_REQUIRE(ferry_prep_dlist(lp.agent, lp.name, r, NULL, &p) == FERRY_OK);
    memset(lp.dst, 0, lp.len);
    FY_REQUIRE(ferry_xfer_make(lp.agent, FERRY_OP_WRITE, b.local, idx, p, idx, 1, NULL, &x) ==
               FERRY_OK);
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    FY_CHECK(!memcmp(lp.src, lp.dst, 4 * KB));
    ferry_xfer_release(x);
    ferry_xfer_release(done);
    ferry_prepped_release(p);
    ferry_dlist_destroy(r);
    blocks_release(&b);
    tu_loop_close(&lp);
}

int main(void)
{
    FY_RUN(test_create_write_read);
    FY_RUN(test_create_errors);
    FY_RUN(test_create_without_own_metadata);
    FY_RUN(test_make_indices);
    FY_RUN(test_make64);
    FY_RUN(test_make_plain_lists);
    FY_RUN(test_make_errors);
    FY_RUN(test_merge);
    FY_RUN(test_merge_stops_at_region_boundary);
    FY_RUN(test_repost);
    FY_RUN(test_repost_active);
    FY_RUN(test_release_active);
    FY_RUN(test_set_notif);
    FY_RUN(test_accessors_null);
    FY_RUN(test_backend_choice);
    FY_RUN(test_telemetry_off);
    FY_RUN(test_telemetry_on);
    FY_RUN(test_telemetry_env);
    FY_RUN(test_telemetry_in_progress);
    FY_RUN(test_estimate);
    FY_RUN(test_stale_generation);
    return fy_test_done();
}
