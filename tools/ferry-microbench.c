/* SPDX-License-Identifier: Apache-2.0 */
/* ferry-microbench: the core's own costs on the LOCAL backend, with no
 * transport in the way.
 *  - making a request from prepared lists by index: ns per descriptor, for
 *    N small descriptors (default 100k x 64 B), random indices (no merging)
 *    and consecutive ones (merged);
 *  - make + post + complete + release: ns per descriptor;
 *  - post + status of one made request of one descriptor, reposted: the
 *    per-request cost of the hot path beyond making (best of repeats,
 *    100k reposts each);
 *  - metadata with N regions: encoded size, encode time, load (decode +
 *    index build) time.
 * Anchor: a bare loop copying the same descriptors with memcpy.
 * Usage: ferry-microbench [num_descs] [desc_bytes] [repeats] */
#include <ferry/ferry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tool-common.h"

#define CHECK(call)                                                                                \
    do {                                                                                           \
        ferry_status rc_ = (call);                                                                 \
        if (rc_ < 0) {                                                                             \
            fprintf(stderr, "%s: %s\n", #call, ferry_strerror(rc_));                               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

typedef struct bench {
    ferry_agent *agent;
    char peer[FERRY_NAME_MAX + 1];
    size_t n, len;
    uint8_t *src, *dst;
    ferry_prepped *local, *remote;
    uint32_t *seq, *rnd;
} bench;

static ferry_agent *agent_new(const char *name)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = name;
    ferry_agent *a;
    ferry_backend *be;
    CHECK(ferry_agent_create(&cfg, &a));
    ferry_param inline_all = {"inline_max", "1099511627776"};
    CHECK(ferry_backend_create(a, "LOCAL", &inline_all, 1, &be));
    return a;
}

static void bench_setup(bench *b)
{
    b->agent = agent_new("microbench");
    b->src = aligned_alloc(4096, b->n * b->len);
    b->dst = aligned_alloc(4096, b->n * b->len);
    memset(b->src, 1, b->n * b->len);
    memset(b->dst, 0, b->n * b->len);
    ferry_dlist *regs, *sl, *dl;
    CHECK(ferry_dlist_create(FERRY_MEM_DRAM, 2, &regs));
    CHECK(ferry_dlist_add(regs, (uintptr_t)b->src, b->n * b->len, 0));
    CHECK(ferry_dlist_add(regs, (uintptr_t)b->dst, b->n * b->len, 0));
    CHECK(ferry_register(b->agent, regs, NULL));
    void *blob;
    size_t blob_len;
    CHECK(ferry_md_get_local(b->agent, &blob, &blob_len));
    CHECK(ferry_md_load(b->agent, blob, blob_len, b->peer, sizeof(b->peer)));
    ferry_free(blob);
    /* Plain (materialised) lists: the general case, not the strided one. */
    CHECK(ferry_dlist_create(FERRY_MEM_DRAM, b->n, &sl));
    CHECK(ferry_dlist_create(FERRY_MEM_DRAM, b->n, &dl));
    for (size_t i = 0; i < b->n; i++) {
        CHECK(ferry_dlist_add(sl, (uintptr_t)(b->src + i * b->len), b->len, 0));
        CHECK(ferry_dlist_add(dl, (uintptr_t)(b->dst + i * b->len), b->len, 0));
    }
    CHECK(ferry_prep_dlist(b->agent, NULL, sl, NULL, &b->local));
    CHECK(ferry_prep_dlist(b->agent, b->peer, dl, NULL, &b->remote));
    ferry_dlist_destroy(sl);
    ferry_dlist_destroy(dl);
    ferry_dlist_destroy(regs);
    b->seq = malloc(b->n * sizeof(uint32_t));
    b->rnd = malloc(b->n * sizeof(uint32_t));
    for (size_t i = 0; i < b->n; i++)
        b->seq[i] = b->rnd[i] = (uint32_t)i;
    srand(7);
    for (size_t i = b->n - 1; i > 0; i--) { /* Fisher-Yates */
        size_t j = (size_t)rand() % (i + 1);
        uint32_t t = b->rnd[i];
        b->rnd[i] = b->rnd[j];
        b->rnd[j] = t;
    }
}

/* Best-of-repeats ns per descriptor to make (and optionally run) a request. */
static double bench_make(bench *b, const uint32_t *idx, bool skip_merge, bool run, int repeats,
                         size_t *segs)
{
    double best = 1e18;
    ferry_xfer_opts opts;
    ferry_xfer_opts_init(&opts);
    opts.skip_merge = skip_merge;
    for (int r = 0; r < repeats; r++) {
        ferry_xfer *x;
        double t0 = now_ns();
        CHECK(ferry_xfer_make(b->agent, FERRY_OP_WRITE, b->local, idx, b->remote, idx, b->n, &opts,
                              &x));
        double t1 = now_ns();
        if (run) {
            ferry_status rc = ferry_xfer_post(x);
            while (rc == FERRY_IN_PROGRESS)
                rc = ferry_xfer_status(x);
            CHECK(rc);
        }
        *segs = ferry_xfer_count(x);
        ferry_xfer_release(x);
        double t = (run ? now_ns() : t1) - t0;
        best = t < best ? t : best;
    }
    return best / (double)b->n;
}

/* Best-of-repeats ns per post + status of one made 1-descriptor request. */
static double bench_repost(bench *b, int repeats)
{
    enum { REPOSTS = 100000 };
    double best = 1e18;
    ferry_xfer *x;
    CHECK(ferry_xfer_make(b->agent, FERRY_OP_WRITE, b->local, b->seq, b->remote, b->seq, 1, NULL,
                          &x));
    for (int r = 0; r < repeats; r++) {
        double t0 = now_ns();
        for (int i = 0; i < REPOSTS; i++) {
            ferry_status rc = ferry_xfer_post(x);
            while (rc == FERRY_IN_PROGRESS)
                rc = ferry_xfer_status(x);
            CHECK(ferry_xfer_status(x));
        }
        double t = (now_ns() - t0) / REPOSTS;
        best = t < best ? t : best;
    }
    ferry_xfer_release(x);
    return best;
}

static double memcpy_anchor(bench *b, const uint32_t *idx, int repeats)
{
    double best = 1e18;
    for (int r = 0; r < repeats; r++) {
        double t0 = now_ns();
        for (size_t i = 0; i < b->n; i++)
            memcpy(b->dst + (size_t)idx[i] * b->len, b->src + (size_t)idx[i] * b->len, b->len);
        double t = now_ns() - t0;
        best = t < best ? t : best;
    }
    return best / (double)b->n;
}

/* Metadata of an agent with n registered regions of len bytes. */
static void bench_metadata(size_t n, size_t len, bool regular)
{
    ferry_agent *a = agent_new("md-owner"), *peer = agent_new("md-peer");
    uint8_t *mem = aligned_alloc(4096, n * len * 2);
    ferry_dlist *regs;
    CHECK(ferry_dlist_create(FERRY_MEM_DRAM, n, &regs));
    srand(11);
    for (size_t i = 0, off = 0; i < n; i++) {
        size_t l = regular ? len : 1 + (size_t)rand() % len;
        CHECK(ferry_dlist_add(regs, (uintptr_t)(mem + off), l, 0));
        off += regular ? len : 2 * len; /* irregular: gaps too */
    }
    CHECK(ferry_register(a, regs, NULL));
    void *blob;
    size_t blob_len;
    char name[FERRY_NAME_MAX + 1];
    double t0 = now_ns();
    CHECK(ferry_md_get_local(a, &blob, &blob_len));
    double t1 = now_ns();
    CHECK(ferry_md_load(peer, blob, blob_len, name, sizeof(name)));
    double t2 = now_ns();
    printf("metadata, %zu %s regions: %zu bytes (%.2f B/region), encode %.2f ms, "
           "load %.2f ms\n",
           n, regular ? "regular" : "irregular", blob_len, (double)blob_len / (double)n,
           (t1 - t0) / 1e6, (t2 - t1) / 1e6);
    ferry_free(blob);
    ferry_dlist_destroy(regs);
    ferry_agent_destroy(peer);
    ferry_agent_destroy(a);
    free(mem);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: ferry-microbench [NUM_DESCS] [DESC_BYTES] [REPEATS]   (defaults 100000, "
               "64, 20)\n"
               "The core's own costs on the LOCAL backend. Exit status: 0 done, 1 failed, 2 bad "
               "usage.\n");
}

int main(int argc, char **argv)
{
    if (argc > 1 && ft_std_arg("ferry-microbench", argv[1], usage))
        return FT_EXIT_OK;
    if (argc > 4 || (argc > 1 && argv[1][0] == '-')) {
        usage(stderr);
        return FT_EXIT_USAGE;
    }
    bench b = {.n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000,
               .len = argc > 2 ? strtoul(argv[2], NULL, 10) : 64};
    int repeats = argc > 3 ? atoi(argv[3]) : 20;
    if (!b.n || b.n > (1u << 24) || !b.len || repeats < 1) {
        usage(stderr);
        return FT_EXIT_USAGE;
    }
    bench_setup(&b);
    size_t segs;
    printf("ferry-microbench: %zu descriptors of %zu B on LOCAL, best of %d\n", b.n, b.len,
           repeats);
    double m_rnd = bench_make(&b, b.rnd, true, false, repeats, &segs);
    printf("make by index, random order, no merge:  %6.1f ns/desc (%zu segments)\n", m_rnd, segs);
    double m_seq = bench_make(&b, b.seq, false, false, repeats, &segs);
    printf("make by index, consecutive, merged:     %6.1f ns/desc (%zu segments)\n", m_seq, segs);
    double r_rnd = bench_make(&b, b.rnd, true, true, repeats, &segs);
    printf("make+post+complete, random, no merge:   %6.1f ns/desc\n", r_rnd);
    double r_seq = bench_make(&b, b.seq, false, true, repeats, &segs);
    printf("make+post+complete, consecutive merged: %6.1f ns/desc\n", r_seq);
    printf("post+status of a made 1-descriptor request: %6.1f ns/post\n",
           bench_repost(&b, repeats));
    double anchor = memcpy_anchor(&b, b.rnd, repeats);
    printf("anchor: bare memcpy loop, random:       %6.1f ns/desc (ferry overhead %.1f ns/desc)\n",
           anchor, r_rnd - anchor);
    printf("100k-descriptor request posted and complete in %.2f ms (random)\n",
           r_rnd * 100000 / 1e6);
    ferry_prepped_release(b.local);
    ferry_prepped_release(b.remote);
    ferry_agent_destroy(b.agent);
    free(b.src), free(b.dst), free(b.seq), free(b.rnd);
    bench_metadata(b.n, 4096, true);
    bench_metadata(b.n, 4096, false);
    return 0;
}
