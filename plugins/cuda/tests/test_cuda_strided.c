/* SPDX-License-Identifier: Apache-2.0 */
/* KV requests by index on the CUDA backend: two caches of block slots
 * prepared once (strided lists, and plain lists of every slot, which the
 * core prepares in strided form), then requests made from random index
 * arrays, as engines make them: sources repeated, destinations distinct,
 * a single pair, every slot at once, blocks cut into several kernel items,
 * READ and WRITE, on one GPU and across two, reposted with the same and
 * with another notification, from 32-bit and from 64-bit index arrays.
 * Every post is checked over both whole caches, so a byte written outside a
 * block fails too. Bad index arrays (negative, past the list, past 32 bits)
 * and empty requests get INVALID_PARAM. With the mock driver, repeated make, post and
 * release cycles must take no memory from the driver once warm. Skips
 * without a GPU (or the mock driver). */
#include <dlfcn.h>

#include "gpu_test.h"

static const char *NAME = "cuda-strided";

typedef struct cache {
    int dev;
    uint8_t *p;
    uint64_t slots, len, stride;
    ferry_prepped *prep;
} cache;

typedef struct kv {
    ferry_agent *a;
    cache l, r;
} kv;

static ferry_dlist *cache_list(const cache *c, bool plain)
{
    ferry_dlist *l = NULL;
    uint64_t base = (uintptr_t)c->p + 16;
    if (!plain) {
        ferry_dlist_create_strided(FERRY_MEM_VRAM, base, c->stride, c->slots, c->len,
                                   (uint64_t)c->dev, &l);
        return l;
    }
    if (ferry_dlist_create(FERRY_MEM_VRAM, c->slots, &l) != FERRY_OK)
        return NULL;
    for (uint64_t i = 0; i < c->slots; i++)
        ferry_dlist_add(l, base + i * c->stride, c->len, (uint64_t)c->dev);
    return l;
}

static size_t cache_size(const cache *c)
{
    return (size_t)(c->slots * c->stride + 64);
}

static ferry_status cache_open(ferry_agent *a, cache *c)
{
    c->p = gt_alloc(c->dev, cache_size(c));
    gt_fill(c->p, cache_size(c), (uint64_t)c->dev * 7 + c->slots);
    return gt_register(a, FERRY_MEM_VRAM, c->p, cache_size(c), (uint64_t)c->dev);
}

static ferry_status cache_prep(ferry_agent *a, cache *c, const char *peer, bool plain)
{
    ferry_dlist *l = cache_list(c, plain);
    ferry_status rc = l ? ferry_prep_dlist(a, peer, l, NULL, &c->prep) : FERRY_ERR_NO_MEMORY;
    ferry_dlist_destroy(l);
    return rc;
}

static void cache_close(ferry_agent *a, cache *c)
{
    ferry_prepped_release(c->prep);
    gt_deregister(a, FERRY_MEM_VRAM, c->p, cache_size(c), (uint64_t)c->dev);
    gt_free(c->dev, c->p);
}

/* Both caches registered, the agent's own metadata loaded (loopback), the
 * lists prepared: the local side as ours, the other as the "remote". */
static ferry_status kv_open(kv *k, int ldev, int rdev, uint64_t slots, uint64_t len, bool plain)
{
    ferry_agent_config cfg;
    ferry_backend *be;
    const ferry_param mode = {"mode", GT_KERNEL_MODE};
    memset(k, 0, sizeof(*k));
    ferry_agent_config_init(&cfg);
    cfg.name = NAME;
    ferry_status rc = ferry_agent_create(&cfg, &k->a);
    if (rc == FERRY_OK)
        rc = ferry_backend_create(k->a, "CUDA", &mode, 1, &be);
    k->l = (cache){ldev, NULL, slots, len, len + 48, NULL};
    k->r = (cache){rdev, NULL, slots + 3, len, len + 16, NULL};
    if (rc == FERRY_OK)
        rc = cache_open(k->a, &k->l);
    if (rc == FERRY_OK)
        rc = cache_open(k->a, &k->r);
    if (rc == FERRY_OK)
        rc = tu_load_self(k->a);
    if (rc == FERRY_OK)
        rc = cache_prep(k->a, &k->l, NULL, plain);
    if (rc == FERRY_OK)
        rc = cache_prep(k->a, &k->r, NAME, plain);
    return rc;
}

static void kv_close(kv *k)
{
    if (k->l.p)
        cache_close(k->a, &k->l);
    if (k->r.p)
        cache_close(k->a, &k->r);
    ferry_agent_destroy(k->a);
}

/* n pairs: destinations distinct (a random permutation's prefix), sources
 * random with repeats. */
static void pick(tu_rng *rng, uint32_t *src, uint64_t src_slots, uint32_t *dst, uint64_t dst_slots,
                 size_t n)
{
    uint32_t *perm = malloc(dst_slots * sizeof(*perm));
    FY_CHECK(perm != NULL);
    for (uint64_t i = 0; i < dst_slots; i++)
        perm[i] = (uint32_t)i;
    for (size_t i = 0; i < n; i++) {
        size_t j = i + (size_t)tu_rand_range(rng, 0, dst_slots - 1 - i);
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        dst[i] = perm[i];
        src[i] = (uint32_t)tu_rand_range(rng, 0, src_slots - 1);
    }
    free(perm);
}

static uint8_t *slot_at(uint8_t *host, const cache *c, uint32_t i)
{
    return host + 16 + i * c->stride;
}

/* Posts x (made from li/ri) and checks both caches whole against what the
 * copies must give; the notification must arrive with tag. */
static bool post_check(kv *k, ferry_xfer *x, ferry_xfer_op op, const uint32_t *li,
                       const uint32_t *ri, size_t n, const char *tag, uint64_t seed)
{
    bool write = op == FERRY_OP_WRITE;
    cache *src = write ? &k->l : &k->r, *dst = write ? &k->r : &k->l;
    const uint32_t *si = write ? li : ri, *di = write ? ri : li;
    gt_fill(src->p, cache_size(src), seed);
    uint8_t *hs = gt_read(src->p, cache_size(src)), *want = gt_read(dst->p, cache_size(dst));
    for (size_t i = 0; i < n; i++)
        memcpy(slot_at(want, dst, di[i]), slot_at(hs, src, si[i]), src->len);
    ferry_status rc = tu_post_wait(x);
    if (rc != FERRY_OK)
        printf("# post: %s (%s)\n", ferry_strerror(rc), ferry_xfer_error(x));
    bool ok =
        rc == FERRY_OK && tu_wait_notif(k->a, NAME, tag, strlen(tag), TU_TIMEOUT_MS) == FERRY_OK;
    uint8_t *got = gt_read(dst->p, cache_size(dst)), *src_now = gt_read(src->p, cache_size(src));
    bool same = !memcmp(got, want, cache_size(dst)) && !memcmp(src_now, hs, cache_size(src));
    if (!same)
        printf("# %s of %zu blocks: wrong bytes\n", write ? "WRITE" : "READ", n);
    free(hs);
    free(want);
    free(got);
    free(src_now);
    return ok && same;
}

static int64_t *widen(const uint32_t *idx, size_t n)
{
    int64_t *w = malloc(n * sizeof(*w));
    FY_CHECK(w != NULL);
    for (size_t i = 0; w && i < n; i++)
        w[i] = idx[i];
    return w;
}

/* Made from 32-bit index arrays, or (wide) from the same as 64-bit ones. */
static ferry_status make_either(kv *k, ferry_xfer_op op, const uint32_t *li, const uint32_t *ri,
                                size_t n, bool wide, const ferry_xfer_opts *o, ferry_xfer **x)
{
    if (!wide)
        return ferry_xfer_make(k->a, op, k->l.prep, li, k->r.prep, ri, n, o, x);
    int64_t *wl = widen(li, n), *wr = widen(ri, n);
    ferry_status rc = ferry_xfer_make64(k->a, op, k->l.prep, wl, k->r.prep, wr, n, o, x);
    free(wl);
    free(wr);
    return rc;
}

/* One request of n random pairs, posted twice with fresh data (the second
 * time with another notification). */
static bool one_request(kv *k, ferry_xfer_op op, size_t n, uint64_t seed, bool wide)
{
    tu_rng rng = tu_rng_seed(seed);
    uint32_t *li = malloc(n * sizeof(*li)), *ri = malloc(n * sizeof(*ri));
    FY_CHECK(li && ri);
    if (op == FERRY_OP_WRITE)
        pick(&rng, li, k->l.slots, ri, k->r.slots, n);
    else
        pick(&rng, ri, k->r.slots, li, k->l.slots, n);
    ferry_xfer_opts o;
    ferry_xfer_opts_init(&o);
    o.notif = "first";
    o.notif_len = 5;
    ferry_xfer *x = NULL;
    ferry_status rc = make_either(k, op, li, ri, n, wide, &o, &x);
    bool ok = rc == FERRY_OK && post_check(k, x, op, li, ri, n, "first", seed + 1) &&
              post_check(k, x, op, li, ri, n, "first", seed + 2) &&
              ferry_xfer_set_notif(x, "second", 6) == FERRY_OK &&
              post_check(k, x, op, li, ri, n, "second", seed + 3);
    if (rc != FERRY_OK)
        printf("# make: %s\n", ferry_strerror(rc));
    ferry_xfer_release(x);
    free(li);
    free(ri);
    return ok;
}

static void run_sizes(int ldev, int rdev, bool plain)
{
    const uint64_t lens[] = {4096, 8192 + 16, 200 * 1024 + 48};
    for (size_t s = 0; s < 3; s++) {
        kv k;
        uint64_t slots = lens[s] > 65536 ? 40 : 700;
        FY_CHECK_EQ(kv_open(&k, ldev, rdev, slots, lens[s], plain), FERRY_OK);
        for (int op = 0; op < 2; op++) {
            ferry_xfer_op o = op ? FERRY_OP_WRITE : FERRY_OP_READ;
            FY_CHECK(one_request(&k, o, 1, 11 + s, false));
            FY_CHECK(one_request(&k, o, slots / 3, 12 + s, false));
            FY_CHECK(
                one_request(&k, o, slots, 13 + s, false)); /* every slot of the smaller cache */
            FY_CHECK(one_request(&k, o, 1, 14 + s, true));
            FY_CHECK(one_request(&k, o, slots / 3, 15 + s, true));
        }
        kv_close(&k);
    }
}

static void test_strided_lists(void)
{
    run_sizes(0, 0, false);
}

static void test_plain_lists_of_every_slot(void)
{
    run_sizes(0, 0, true);
}

/* Across two GPUs: the kernel reaches the other GPU through peer access;
 * without it (FY_MOCK_NO_PEER) the request goes to the copy engines. */
static void test_two_gpus(void)
{
    if (GT.ndev < 2) {
        printf("# one GPU: skipped\n");
        return;
    }
    run_sizes(0, 1, false);
    run_sizes(1, 0, true);
}

static void test_bad_indices(void)
{
    kv k;
    FY_CHECK_EQ(kv_open(&k, 0, 0, 64, 4096, false), FERRY_OK);
    uint32_t li[3] = {0, 63, 5}, ri[3] = {1, 2, 3}, bad_l[3] = {0, 64, 5};
    uint32_t bad_r[3] = {1, 2, 0xFFFFFFFFu};
    ferry_xfer *x = NULL;
    FY_CHECK_EQ(ferry_xfer_make(k.a, FERRY_OP_WRITE, k.l.prep, bad_l, k.r.prep, ri, 3, NULL, &x),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_xfer_make(k.a, FERRY_OP_READ, k.l.prep, li, k.r.prep, bad_r, 3, NULL, &x),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_xfer_make(k.a, FERRY_OP_READ, k.l.prep, li, k.r.prep, ri, 0, NULL, &x),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK(x == NULL);
    FY_CHECK_EQ(ferry_xfer_make(k.a, FERRY_OP_READ, k.l.prep, li, k.r.prep, ri, 3, NULL, &x),
                FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_release(x), FERRY_OK);
    x = NULL;
    /* 64-bit arrays: negative, at the count, past 32 bits; a bad entry in
     * the vector part and in the tail of a longer one */
    int64_t wl[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8}, wr[9] = {8, 7, 6, 5, 4, 3, 2, 1, 0};
    const int64_t bad[] = {-1, 67, (int64_t)1 << 32, INT64_MIN}; /* the remote list has 67 */
    for (size_t b = 0; b < 4; b++)
        for (size_t at = 2; at < 9; at += 6) {
            int64_t keep = wl[at];
            wl[at] = bad[b];
            FY_CHECK_EQ(
                ferry_xfer_make64(k.a, FERRY_OP_WRITE, k.l.prep, wl, k.r.prep, wr, 9, NULL, &x),
                FERRY_ERR_INVALID_PARAM);
            wl[at] = keep;
            wr[at] = bad[b];
            FY_CHECK_EQ(
                ferry_xfer_make64(k.a, FERRY_OP_READ, k.l.prep, wl, k.r.prep, wr, 9, NULL, &x),
                FERRY_ERR_INVALID_PARAM);
            wr[at] = 8 - (int64_t)at;
        }
    FY_CHECK_EQ(ferry_xfer_make64(k.a, FERRY_OP_READ, k.l.prep, NULL, k.r.prep, wr, 9, NULL, &x),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK(x == NULL);
    FY_CHECK_EQ(ferry_xfer_make64(k.a, FERRY_OP_READ, k.l.prep, wl, k.r.prep, wr, 9, NULL, &x),
                FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_release(x), FERRY_OK);
    kv_close(&k);
}

/* Once the first requests warmed the plugin's caches, making, posting and
 * releasing requests of the same sizes takes nothing from the driver. */
static void test_steady_state_allocations(void)
{
    unsigned long long (*allocations)(void) = NULL;
    void *mock = GT.mock ? dlopen(getenv("FERRY_CUDA_LIB"), RTLD_NOW | RTLD_NOLOAD) : NULL;
    if (mock)
        *(void **)&allocations = dlsym(mock, "fy_mock_allocations");
    if (!allocations) {
        printf("# the real driver counts nothing: skipped\n");
        if (mock)
            dlclose(mock);
        return;
    }
    kv k;
    FY_CHECK_EQ(kv_open(&k, 0, 0, 600, 8192, false), FERRY_OK);
    FY_CHECK(one_request(&k, FERRY_OP_WRITE, 500, 21, false));
    unsigned long long before = allocations();
    const int64_t bad[2] = {0, 600};
    for (int i = 0; i < 20; i++) {
        FY_CHECK(one_request(&k, i % 2 ? FERRY_OP_READ : FERRY_OP_WRITE, 100 + 20 * (size_t)i,
                             22 + (uint64_t)i, i % 4 < 2));
        /* a refused make gives back the memory it took for its indices */
        ferry_xfer *x = NULL;
        FY_CHECK_EQ(
            ferry_xfer_make64(k.a, FERRY_OP_WRITE, k.l.prep, bad, k.r.prep, bad, 2, NULL, &x),
            FERRY_ERR_INVALID_PARAM);
    }
    FY_CHECK_EQ(allocations() - before, 0ull);
    kv_close(&k);
    dlclose(mock);
}

int main(void)
{
    gt_init_or_skip();
    if (!GT_HAVE_KERNELS)
        fy_test_skip_all("no copy kernels in this build (strided requests need them)");
    FY_RUN(test_strided_lists);
    FY_RUN(test_plain_lists_of_every_slot);
    FY_RUN(test_two_gpus);
    FY_RUN(test_bad_indices);
    FY_RUN(test_steady_state_allocations);
    return fy_test_done();
}
