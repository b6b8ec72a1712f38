/* SPDX-License-Identifier: Apache-2.0 */
/* ferry-demo: a prefill agent's KV cache moved into a decode agent's cache,
 * block by block, the way disaggregated serving does it.
 *
 * The cache has the shape of Llama-3.1-8B (32 layers, K and V, 8 KV heads,
 * head dim 128, bf16, 16 tokens per block): one region per layer and K/V,
 * a prepared list of every block on each side, then one request that READs
 * the blocks of one prompt by index (the decode side places them in its own
 * free blocks) with a notification carrying the request id. Every byte is
 * verified. Today both caches live in one process and move through the LOCAL
 * backend (loopback); the two-process version runs the same flow over UCX. */
#include <ferry/ferry.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct kv_shape {
    unsigned layers, kv_heads, head_dim, dtype_bytes, block_tokens, num_blocks;
} kv_shape;

typedef struct kv_cache {
    uint8_t **planes; /* layers * 2 planes (K, V) of num_blocks blocks */
    size_t block_bytes, plane_bytes;
    unsigned num_planes;
} kv_cache;

#define CHECK(call)                                                                      \
    do {                                                                                 \
        ferry_status rc_ = (call);                                                       \
        if (rc_ < 0) {                                                                   \
            fprintf(stderr, "ferry-demo: %s: %s\n", #call, ferry_strerror(rc_));        \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void cache_alloc(kv_cache *c, const kv_shape *s)
{
    c->block_bytes = (size_t)s->block_tokens * s->kv_heads * s->head_dim * s->dtype_bytes;
    c->plane_bytes = c->block_bytes * s->num_blocks;
    c->num_planes = s->layers * 2;
    c->planes = calloc(c->num_planes, sizeof(*c->planes));
    for (unsigned p = 0; p < c->num_planes; p++) {
        c->planes[p] = aligned_alloc(4096, c->plane_bytes);
        if (!c->planes[p]) {
            fprintf(stderr, "ferry-demo: out of memory\n");
            exit(1);
        }
        memset(c->planes[p], 0, c->plane_bytes);
    }
}

static void cache_free(kv_cache *c)
{
    for (unsigned p = 0; p < c->num_planes; p++)
        free(c->planes[p]);
    free(c->planes);
}

/* One region per plane, as engines register one tensor per layer and K/V. */
static ferry_dlist *cache_regions(const kv_cache *c)
{
    ferry_dlist *l;
    CHECK(ferry_dlist_create(FERRY_MEM_DRAM, c->num_planes, &l));
    for (unsigned p = 0; p < c->num_planes; p++)
        CHECK(ferry_dlist_add(l, (uintptr_t)c->planes[p], c->plane_bytes, 0));
    return l;
}

/* Every block of every plane: descriptor (plane * num_blocks + block). */
static ferry_dlist *cache_blocks(const kv_cache *c, unsigned num_blocks)
{
    ferry_dlist *l;
    CHECK(ferry_dlist_create(FERRY_MEM_DRAM, (size_t)c->num_planes * num_blocks, &l));
    for (unsigned p = 0; p < c->num_planes; p++)
        for (unsigned b = 0; b < num_blocks; b++)
            CHECK(ferry_dlist_add(l, (uintptr_t)(c->planes[p] + (size_t)b * c->block_bytes),
                                  c->block_bytes, 0));
    return l;
}

static uint8_t pattern(unsigned plane, unsigned block, size_t off)
{
    return (uint8_t)(plane * 131u + block * 31u + off * 7u + (off >> 9));
}

static void prefill_write(kv_cache *c, const unsigned *blocks, unsigned n)
{
    for (unsigned p = 0; p < c->num_planes; p++)
        for (unsigned i = 0; i < n; i++)
            for (size_t o = 0; o < c->block_bytes; o++)
                c->planes[p][(size_t)blocks[i] * c->block_bytes + o] = pattern(p, blocks[i], o);
}

static size_t decode_verify(const kv_cache *c, const unsigned *src, const unsigned *dst,
                            unsigned n)
{
    size_t bad = 0;
    for (unsigned p = 0; p < c->num_planes; p++)
        for (unsigned i = 0; i < n; i++)
            for (size_t o = 0; o < c->block_bytes; o++)
                bad += c->planes[p][(size_t)dst[i] * c->block_bytes + o] != pattern(p, src[i], o);
    return bad;
}

/* Index arrays: for each plane, the request's blocks. */
static uint32_t *request_indices(const kv_cache *c, const unsigned *blocks, unsigned n,
                                 unsigned num_blocks)
{
    uint32_t *idx = malloc(sizeof(*idx) * c->num_planes * n);
    for (unsigned p = 0; p < c->num_planes; p++)
        for (unsigned i = 0; i < n; i++)
            idx[p * n + i] = p * num_blocks + blocks[i];
    return idx;
}

static ferry_status wait_done(ferry_xfer *x, ferry_status rc)
{
    while (rc == FERRY_IN_PROGRESS)
        rc = ferry_xfer_status(x);
    return rc;
}

static double memcpy_anchor(const kv_cache *src, kv_cache *dst, const unsigned *s,
                            const unsigned *d, unsigned n, int iters)
{
    double t0 = now_s();
    for (int it = 0; it < iters; it++)
        for (unsigned p = 0; p < src->num_planes; p++)
            for (unsigned i = 0; i < n; i++)
                memcpy(dst->planes[p] + (size_t)d[i] * dst->block_bytes,
                       src->planes[p] + (size_t)s[i] * src->block_bytes, src->block_bytes);
    return (now_s() - t0) / iters;
}

int main(int argc, char **argv)
{
    kv_shape shape = {32, 8, 128, 2, 16, 128};
    unsigned prompt_tokens = argc > 1 ? (unsigned)atoi(argv[1]) : 1000;
    int iters = argc > 2 ? atoi(argv[2]) : 20;
    unsigned n = (prompt_tokens + shape.block_tokens - 1) / shape.block_tokens;
    if (!n || n > shape.num_blocks / 2 || iters < 1) {
        fprintf(stderr, "usage: ferry-demo [prompt_tokens <= %u] [iterations]\n",
                shape.num_blocks / 2 * shape.block_tokens);
        return 2;
    }
    kv_cache prefill, decode;
    cache_alloc(&prefill, &shape);
    cache_alloc(&decode, &shape);

    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = "demo";
    cfg.telemetry = true;
    ferry_agent *agent;
    ferry_backend *be;
    CHECK(ferry_agent_create(&cfg, &agent));
    CHECK(ferry_backend_create(agent, "LOCAL", NULL, 0, &be));
    ferry_dlist *pre_regs = cache_regions(&prefill), *dec_regs = cache_regions(&decode);
    CHECK(ferry_register(agent, pre_regs, NULL));
    CHECK(ferry_register(agent, dec_regs, NULL));

    /* The decode side learns the prefill side from its metadata blob. */
    void *blob;
    size_t blob_len;
    char peer[FERRY_NAME_MAX + 1];
    CHECK(ferry_md_get_local(agent, &blob, &blob_len));
    CHECK(ferry_md_load(agent, blob, blob_len, peer, sizeof(peer)));
    ferry_free(blob);

    ferry_dlist *pre_blocks = cache_blocks(&prefill, shape.num_blocks);
    ferry_dlist *dec_blocks = cache_blocks(&decode, shape.num_blocks);
    ferry_prepped *remote_side, *local_side;
    double t_prep = now_s();
    CHECK(ferry_prep_dlist(agent, peer, pre_blocks, NULL, &remote_side));
    CHECK(ferry_prep_dlist(agent, NULL, dec_blocks, NULL, &local_side));
    t_prep = now_s() - t_prep;

    /* The prompt sits in scattered prefill blocks; decode has other free ones. */
    unsigned *src = malloc(n * sizeof(*src)), *dst = malloc(n * sizeof(*dst));
    for (unsigned i = 0; i < n; i++) {
        src[i] = (i * 7u + 3u) % shape.num_blocks;
        dst[i] = shape.num_blocks - 1 - i;
    }
    prefill_write(&prefill, src, n);
    uint32_t *ridx = request_indices(&prefill, src, n, shape.num_blocks);
    uint32_t *lidx = request_indices(&decode, dst, n, shape.num_blocks);
    size_t descs = (size_t)prefill.num_planes * n, bytes = descs * prefill.block_bytes;

    double best = 1e9, total = 0, make_total = 0;
    for (int it = 0; it < iters; it++) {
        char req[32];
        snprintf(req, sizeof(req), "req-%d", it);
        ferry_xfer_opts opts;
        ferry_xfer_opts_init(&opts);
        opts.notif = req;
        opts.notif_len = strlen(req);
        ferry_xfer *x;
        double t0 = now_s();
        CHECK(ferry_xfer_make(agent, FERRY_OP_READ, local_side, lidx, remote_side, ridx, descs,
                              &opts, &x));
        double t1 = now_s();
        CHECK(wait_done(x, ferry_xfer_post(x)));
        double t = now_s() - t0;
        CHECK(ferry_notif_take_tag(agent, peer, req, strlen(req), false));
        ferry_xfer_release(x);
        make_total += t1 - t0;
        total += t;
        best = t < best ? t : best;
    }
    size_t bad = decode_verify(&decode, src, dst, n);
    double anchor = memcpy_anchor(&prefill, &decode, src, dst, n, iters);

    printf("ferry-demo: Llama-3.1-8B KV cache, %u layers x K/V, %zu KiB blocks (16 tokens)\n",
           shape.layers, prefill.block_bytes / 1024);
    printf("  request: %u-token prompt = %u blocks/plane, %zu descriptors, %.1f MiB\n",
           prompt_tokens, n, descs, (double)bytes / (1 << 20));
    printf("  prepared lists: 2 x %zu blocks in %.2f ms\n", ferry_dlist_count(pre_blocks),
           t_prep * 1e3);
    printf("  READ via %s: %.2f GB/s avg, %.2f GB/s best; latency %.3f ms avg per request "
           "(make %.1f us)\n",
           ferry_backend_name(be), (double)bytes / (total / iters) / 1e9,
           (double)bytes / best / 1e9, total / iters * 1e3, make_total / iters * 1e6);
    printf("  anchor: memcpy of the same blocks %.2f GB/s -> ratio %.2f\n",
           (double)bytes / anchor / 1e9, anchor / (total / iters));
    printf("  verified %zu bytes: %s; notifications: %d of %d\n", bytes,
           bad ? "MISMATCH" : "all equal", iters, iters);

    ferry_prepped_release(local_side);
    ferry_prepped_release(remote_side);
    CHECK(ferry_deregister(agent, pre_regs, NULL));
    CHECK(ferry_deregister(agent, dec_regs, NULL));
    ferry_dlist_destroy(pre_regs);
    ferry_dlist_destroy(dec_regs);
    ferry_dlist_destroy(pre_blocks);
    ferry_dlist_destroy(dec_blocks);
    ferry_agent_destroy(agent);
    free(src), free(dst), free(ridx), free(lidx);
    cache_free(&prefill);
    cache_free(&decode);
    return bad ? 1 : 0;
}
