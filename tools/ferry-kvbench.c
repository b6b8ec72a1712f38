/* SPDX-License-Identifier: Apache-2.0 */
/* ferry-kvbench: one request's KV cache of a real model, moved the way a
 * disaggregated engine moves it, between two processes.
 *
 * A model file (tools/kvbench/models/NAME.toml) gives layers, KV heads,
 * head dim and dtype (or MLA's latent size). With a page size (tokens per
 * block), TP/PP and an input length, the tool computes what one TP rank of
 * one PP stage holds for one request: bytes, blocks and descriptors, and
 * then moves exactly that: each side registers one region per layer and K/V
 * (one per layer for MLA) as engines do, a request is made from prepared
 * lists by index (one descriptor per block per layer and K/V, or one per
 * layer and K/V over a contiguous run of blocks), posted and waited for.
 * It reports time per request, GB/s and the share of the time spent making
 * and posting the request versus moving the data.
 *
 * By default the decode side READs from the prefill side (vLLM's way);
 * --op_type WRITE has prefill write. The other process is this program
 * again, started by it (or, with --etcd_endpoints, started apart: the two
 * find each other through etcd, see ferry-bench/rdv.c); LOCAL runs both
 * sides in one process. Each cache
 * is in DRAM or, with --initiator_seg_type / --target_seg_type VRAM, in
 * GPU memory (the initiator on GPU 0, the target on GPU 1 where there is
 * one), allocated and checked through the CUDA driver (ferry-bench/mem.c).
 *
 * With --target_seg_type FILE, BLOCK or OBJ (the POSIX and OBJ backends)
 * the other side is storage on this host: WRITE offloads the request's
 * blocks from host memory to files or objects (one object per block, or
 * per plane with per_layer), READ reads them back into the cache; with
 * --check_consistency every block is verified after the offload (read
 * back from the files or objects) or after the read.
 *
 *   ferry-kvbench --model Llama-3.1-70B --tp 8 --page_size 16 --isl 8192
 *   ferry-kvbench --model Llama-3.1-70B --tp 8 --backend CUDA \
 *       --initiator_seg_type VRAM --target_seg_type VRAM --check_consistency
 *   ferry-kvbench --model Llama-3.1-8B --isl 1024 --backend POSIX --target_seg_type FILE \
 *       --filepath /mnt/nvme --op_type WRITE --check_consistency */
#include "ferry-bench/common.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define GIB (1024.0 * 1024.0 * 1024.0)
#define MIB (1024.0 * 1024.0)

typedef struct kv_opts {
    const char *model, *access, *op_type, *backend, *backend_params, *kv_dtype, *json;
    const char *initiator_seg_type, *target_seg_type, *fb_role, *filepath;
    uint64_t page_size, tp, pp, isl, num_iter, warmup_iter;
    bool check_consistency, dry_run, list_models, enable_pt, inject_corruption;
    bool storage_enable_direct;
    fb_rdv_cli etcd; /* --etcd_endpoints, --runtime_type, --benchmark_group, --etcd_timeout */
} kv_opts;

typedef struct kv_model {
    char name[64], attention[8], dtype[32];
    uint64_t layers, kv_heads, head_dim, kv_lora_rank, rope_dim, window, window_layers;
} kv_model;

/* What one TP rank of one PP stage holds for one request. */
typedef struct kv_shape {
    bool mla, per_layer;
    uint64_t heads, layers, planes; /* planes: layers x K/V, or layers (MLA) */
    uint64_t elems, dtype_bytes;    /* values per token per plane, their size */
    uint64_t block_bytes, blocks, pool, descs, bytes;
} kv_shape;

/* One side's cache: a region per plane, `pool` blocks each, in DRAM or in
 * one GPU's memory. */
typedef struct kv_side {
    bool prefill; /* holds the prompt's KV (the source) */
    fb_mem *planes;
    ferry_dlist *regions;
} kv_side;

/* The memory of one side, as the process that owns it sees it. */
typedef struct kv_mem {
    ferry_mem_type type;
    int dev; /* VRAM: the owner's CUDA ordinal */
} kv_mem;

typedef struct kv_stats {
    fb_samples total, make, post, xfer;
    size_t merged;
} kv_stats;

typedef struct kv_run {
    const kv_opts *o;
    const kv_model *m;
    const kv_shape *s;
    ferry_xfer_op op;
    bool loopback;
    kv_mem imem, tmem; /* --initiator_seg_type, --target_seg_type */
    ferry_agent *agent;
    char peer[FERRY_NAME_MAX + 1];
    kv_side local, inproc; /* inproc: the other side, loopback only */
    uint64_t *peer_planes;
    int peer_dev;        /* the target's GPU, in its own numbering */
    uint32_t *src, *dst; /* request block i: prefill's src[i], decode's dst[i] */
    ferry_prepped *lp, *rp;
    uint32_t *lidx, *ridx;
    kv_stats st;
    fb_rdv *rdv; /* etcd mode: the group of the two processes */
} kv_run;

/* The target's message: listener port, its GPU, then its planes. */
enum { KV_MSG_PLANES = 1, KV_MSG_HEAD = 2 };

/* ---- options ---- */

#define OPT(n, k, h)    FB_OPT_FIELD(o, n, k, h)
#define HIDDEN(n, k, h) FB_OPT_HIDDEN_FIELD(o, n, k, h)

static void kv_parse(kv_opts *o, int argc, char **argv)
{
    *o = (kv_opts){.access = "per_block",
                   .op_type = "READ",
                   .backend = "UCX",
                   .initiator_seg_type = "DRAM",
                   .target_seg_type = "DRAM",
                   .page_size = 16,
                   .tp = 1,
                   .pp = 1,
                   .isl = 4096,
                   .num_iter = 10,
                   .warmup_iter = 2,
                   .etcd = {.timeout_s = (uint64_t)FB_TIMEOUT_S}};
    const fb_opt table[] = {
        OPT(model, FB_OPT_STR, "model name (see --list_models) or a .toml file"),
        OPT(list_models, FB_OPT_BOOL, "list the model files shipped"),
        OPT(page_size, FB_OPT_UINT, "tokens per KV block (default 16)"),
        OPT(tp, FB_OPT_UINT, "tensor parallel ranks (default 1)"),
        OPT(pp, FB_OPT_UINT, "pipeline stages (default 1)"),
        OPT(isl, FB_OPT_UINT, "input sequence length, tokens (default 4096)"),
        OPT(access, FB_OPT_STR, "per_block (default) or per_layer"),
        OPT(kv_dtype, FB_OPT_STR, "KV cache dtype instead of the model's (fp8, ...)"),
        OPT(op_type, FB_OPT_STR, "READ: decode reads (default); WRITE: prefill writes"),
        OPT(backend, FB_OPT_STR, "backend: UCX (default), LOCAL (one process)"),
        OPT(backend_params, FB_OPT_STR, "backend params key=value,key=value"),
        OPT(initiator_seg_type, FB_OPT_STR, "initiator memory: DRAM (default) or VRAM (GPU 0)"),
        OPT(target_seg_type, FB_OPT_STR,
            "target memory: DRAM (default), VRAM (GPU 1, or 0), or storage: FILE, BLOCK, OBJ"),
        OPT(filepath, FB_OPT_STR, "storage: dir of the files, one per plane (default .)"),
        OPT(storage_enable_direct, FB_OPT_BOOL, "storage: O_DIRECT"),
        OPT(num_iter, FB_OPT_UINT, "timed requests (default 10)"),
        OPT(warmup_iter, FB_OPT_UINT, "untimed requests first (default 2)"),
        OPT(enable_pt, FB_OPT_BOOL, "progress thread in the initiator"),
        OPT(check_consistency, FB_OPT_BOOL, "verify every received byte"),
        OPT(dry_run, FB_OPT_BOOL, "print the shapes only"),
        OPT(json, FB_OPT_STR, "write the result as one JSON object to this file"),
        FB_RDV_OPTS(&o->etcd),
        HIDDEN(inject_corruption, FB_OPT_BOOL, "flip one source byte (tests)"),
        HIDDEN(fb_role, FB_OPT_STR, "internal: role of a spawned process"),
        {NULL, 0, NULL, NULL, 0},
    };
    fb_opts_parse(table, argc, argv);
}

/* ---- model files ---- */

static const char *kv_model_dirs[3];

static size_t kv_dirs(void)
{
    const char *env = getenv("FERRY_KVBENCH_MODELS");
    size_t n = 0;
    if (env && *env)
        kv_model_dirs[n++] = env;
    kv_model_dirs[n++] = FB_TOOLS_SRC_DIR "/kvbench/models";
    kv_model_dirs[n++] = FB_DATA_DIR "/kvbench/models";
    return n;
}

static bool kv_set_str(char *dst, size_t cap, const char *v, char *err, size_t err_len)
{
    for (const char *p = v; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *p)) {
            snprintf(err, err_len, "'%s': only letters, digits, '.', '_' and '-'", v);
            return false;
        }
    if (strlen(v) >= cap) {
        snprintf(err, err_len, "'%s' is too long", v);
        return false;
    }
    snprintf(dst, cap, "%s", v);
    return true;
}

static bool kv_model_key(void *ctx, const char *key, const char *v, char *err, size_t err_len)
{
    kv_model *m = ctx;
    const struct {
        const char *key;
        uint64_t *dst;
    } nums[] = {{"num_layers", &m->layers},
                {"num_kv_heads", &m->kv_heads},
                {"head_dim", &m->head_dim},
                {"kv_lora_rank", &m->kv_lora_rank},
                {"qk_rope_head_dim", &m->rope_dim},
                {"sliding_window", &m->window},
                {"sliding_window_layers", &m->window_layers}};
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
        if (!strcmp(key, nums[i].key)) {
            bool ok = fb_parse_uint(v, nums[i].dst);
            if (!ok)
                snprintf(err, err_len, "%s: '%s' is not a number", key, v);
            return ok;
        }
    if (!strcmp(key, "name"))
        return kv_set_str(m->name, sizeof(m->name), v, err, err_len);
    if (!strcmp(key, "attention"))
        return kv_set_str(m->attention, sizeof(m->attention), v, err, err_len);
    if (!strcmp(key, "dtype"))
        return kv_set_str(m->dtype, sizeof(m->dtype), v, err, err_len);
    snprintf(err, err_len, "unknown key '%s'", key);
    return false;
}

static const char *kv_model_missing(const kv_model *m)
{
    bool mla = !strcmp(m->attention, "mla");
    if (!m->name[0] || !m->dtype[0] || !m->layers)
        return "name, dtype and num_layers are required";
    if (!mla && strcmp(m->attention, "gqa"))
        return "attention must be \"gqa\" or \"mla\"";
    if (mla && (!m->kv_lora_rank || !m->rope_dim))
        return "mla needs kv_lora_rank and qk_rope_head_dim";
    if (!mla && (!m->kv_heads || !m->head_dim))
        return "gqa needs num_kv_heads and head_dim";
    return NULL;
}

static char *kv_model_path(const char *arg)
{
    size_t len = strlen(arg);
    if (strchr(arg, '/') || (len > 5 && !strcmp(arg + len - 5, ".toml")))
        return strdup(arg);
    char rel[256];
    snprintf(rel, sizeof(rel), "%s.toml", arg);
    return fb_find_file(NULL, rel, kv_model_dirs, kv_dirs());
}

static void kv_load_model(const char *arg, kv_model *m)
{
    char err[256];
    if (!arg)
        fb_exit(FB_EXIT_USAGE, "--model NAME is needed (see --list_models)");
    char *path = kv_model_path(arg);
    if (!path)
        fb_exit(FB_EXIT_USAGE, "--model %s: no such model file (see --list_models)", arg);
    *m = (kv_model){{0}, "gqa", {0}, 0, 0, 0, 0, 0, 0, 0};
    bool ok = fb_toml_read(path, kv_model_key, m, err, sizeof(err));
    const char *missing = ok ? kv_model_missing(m) : NULL;
    if (!ok || missing)
        fb_exit(FB_EXIT_USAGE, "%s: %s", path, ok ? missing : err);
    free(path);
}

static int kv_list_models(void)
{
    size_t n = kv_dirs();
    for (size_t d = 0; d < n; d++) {
        struct dirent **ents;
        int k = scandir(kv_model_dirs[d], &ents, NULL, alphasort);
        if (k < 0)
            continue;
        printf("models in %s:\n", kv_model_dirs[d]);
        for (int i = 0; i < k; i++) {
            size_t len = strlen(ents[i]->d_name);
            if (len > 5 && !strcmp(ents[i]->d_name + len - 5, ".toml"))
                printf("  %.*s\n", (int)(len - 5), ents[i]->d_name);
            free(ents[i]);
        }
        free(ents);
        return FB_EXIT_OK;
    }
    fb_exit(FB_EXIT_USAGE, "no model directory found (set FERRY_KVBENCH_MODELS)");
}

/* ---- shapes ---- */

static uint64_t kv_dtype_bytes(const char *dtype)
{
    static const struct {
        const char *name;
        uint64_t bytes;
    } t[] = {{"bfloat16", 2}, {"bf16", 2},     {"float16", 2},       {"fp16", 2},
             {"half", 2},     {"float32", 4},  {"fp32", 4},          {"fp8", 1},
             {"fp8_e4m3", 1}, {"fp8_e5m2", 1}, {"float8_e4m3fn", 1}, {"float8_e5m2", 1}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (!strcasecmp(dtype, t[i].name))
            return t[i].bytes;
    fb_exit(FB_EXIT_USAGE, "dtype %s: want bfloat16, float16, float32 or fp8", dtype);
}

/* KV heads per TP rank: split while there are enough; beyond that each
 * rank keeps one head (replicated), as engines do. */
static uint64_t kv_heads_per_rank(const kv_model *m, uint64_t tp)
{
    if (tp <= m->kv_heads && m->kv_heads % tp == 0)
        return m->kv_heads / tp;
    if (tp > m->kv_heads && tp % m->kv_heads == 0)
        return 1;
    fb_exit(FB_EXIT_USAGE, "--tp %llu: %s has %llu KV heads; want a divisor or a multiple",
            (unsigned long long)tp, m->name, (unsigned long long)m->kv_heads);
}

static void kv_check_opts(const kv_opts *o, const kv_model *m)
{
    if (!o->page_size || !o->tp || !o->pp || !o->isl || !o->num_iter)
        fb_exit(FB_EXIT_USAGE, "want --page_size, --tp, --pp, --isl, --num_iter >= 1");
    if (o->pp > m->layers)
        fb_exit(FB_EXIT_USAGE, "--pp %llu: %s has only %llu layers", (unsigned long long)o->pp,
                m->name, (unsigned long long)m->layers);
    if (strcmp(o->access, "per_block") && strcmp(o->access, "per_layer"))
        fb_exit(FB_EXIT_USAGE, "--access %s: want per_block or per_layer", o->access);
    if (strcasecmp(o->op_type, "READ") && strcasecmp(o->op_type, "WRITE"))
        fb_exit(FB_EXIT_USAGE, "--op_type %s: want READ or WRITE", o->op_type);
}

static void kv_compute(const kv_opts *o, const kv_model *m, kv_shape *s)
{
    kv_check_opts(o, m);
    *s = (kv_shape){.mla = !strcmp(m->attention, "mla"),
                    .per_layer = !strcmp(o->access, "per_layer")};
    s->heads = s->mla ? 1 : kv_heads_per_rank(m, o->tp);
    s->layers = (m->layers + o->pp - 1) / o->pp; /* the first stage, the largest */
    s->planes = s->layers * (s->mla ? 1 : 2);
    s->elems = s->mla ? m->kv_lora_rank + m->rope_dim : s->heads * m->head_dim;
    s->dtype_bytes = kv_dtype_bytes(o->kv_dtype ? o->kv_dtype : m->dtype);
    s->block_bytes = o->page_size * s->elems * s->dtype_bytes;
    s->blocks = (o->isl + o->page_size - 1) / o->page_size;
    /* Scattered blocks need room to scatter in; a contiguous run does not. */
    s->pool = s->per_layer ? s->blocks : 2 * s->blocks;
    s->descs = s->per_layer ? s->planes : s->planes * s->blocks;
    s->bytes = s->planes * s->blocks * s->block_bytes;
}

static void kv_print_model(const kv_opts *o, const kv_model *m, const kv_shape *s)
{
    const char *dtype = o->kv_dtype ? o->kv_dtype : m->dtype;
    if (s->mla)
        printf("ferry-kvbench: %s: %llu layers, MLA latent %llu + rope %llu, %s (%llu B)\n",
               m->name, (unsigned long long)m->layers, (unsigned long long)m->kv_lora_rank,
               (unsigned long long)m->rope_dim, dtype, (unsigned long long)s->dtype_bytes);
    else
        printf("ferry-kvbench: %s: %llu layers, %llu KV heads x head dim %llu, %s (%llu B)\n",
               m->name, (unsigned long long)m->layers, (unsigned long long)m->kv_heads,
               (unsigned long long)m->head_dim, dtype, (unsigned long long)s->dtype_bytes);
    if (m->window && m->window_layers)
        printf("  note: %llu of %llu layers use a %llu-token sliding window; counted here as "
               "full attention\n",
               (unsigned long long)m->window_layers, (unsigned long long)m->layers,
               (unsigned long long)m->window);
}

static void kv_print_rank(const kv_opts *o, const kv_model *m, const kv_shape *s)
{
    if (s->mla)
        printf("  TP=%llu PP=%llu: per rank the whole latent (not split by TP), %llu layers: "
               "%llu regions\n",
               (unsigned long long)o->tp, (unsigned long long)o->pp, (unsigned long long)s->layers,
               (unsigned long long)s->planes);
    else
        printf("  TP=%llu PP=%llu: per rank %llu/%llu = %llu KV head(s)%s, %llu layers, K and "
               "V: %llu regions\n",
               (unsigned long long)o->tp, (unsigned long long)o->pp,
               (unsigned long long)m->kv_heads, (unsigned long long)o->tp,
               (unsigned long long)s->heads,
               o->tp > m->kv_heads ? " (fewer heads than ranks: replicated)" : "",
               (unsigned long long)s->layers, (unsigned long long)s->planes);
    printf("  page %llu tokens: block = %llu tokens x %llu values x %llu B = %llu B per %s\n",
           (unsigned long long)o->page_size, (unsigned long long)o->page_size,
           (unsigned long long)s->elems, (unsigned long long)s->dtype_bytes,
           (unsigned long long)s->block_bytes, s->mla ? "layer" : "layer and K/V");
}

static void kv_print_request(const kv_opts *o, const kv_shape *s)
{
    printf("  ISL %llu tokens: %llu blocks per request\n", (unsigned long long)o->isl,
           (unsigned long long)s->blocks);
    printf("  per request per rank: %llu descriptors (%s), %.2f MiB (%llu B)\n",
           (unsigned long long)s->descs, o->access, (double)s->bytes / MIB,
           (unsigned long long)s->bytes);
    printf("  all %llu x %llu ranks together: %.3f GiB per request\n", (unsigned long long)o->tp,
           (unsigned long long)o->pp, (double)s->bytes * (double)o->tp * (double)o->pp / GIB);
    fflush(stdout);
}

/* ---- the two sides' caches ---- */

static uint64_t kv_gcd(uint64_t a, uint64_t b)
{
    return b ? kv_gcd(b, a % b) : a;
}

/* i -> (a*i + b) mod pool with a coprime to pool: a permutation, so the
 * request's blocks are scattered over the cache as an allocator leaves them. */
static void kv_scatter(uint32_t *ids, uint64_t n, uint64_t pool, uint64_t a, uint64_t b)
{
    while (kv_gcd(a, pool) != 1)
        a += 2;
    for (uint64_t i = 0; i < n; i++)
        ids[i] = (uint32_t)((a * i + b) % pool);
}

static void kv_layout(kv_run *r)
{
    const kv_shape *s = r->s;
    r->src = fb_alloc(s->blocks * sizeof(uint32_t));
    r->dst = fb_alloc(s->blocks * sizeof(uint32_t));
    if (s->per_layer) {
        kv_scatter(r->src, s->blocks, s->pool, 1, 0); /* 0..n-1 on both sides */
        kv_scatter(r->dst, s->blocks, s->pool, 1, 0);
    } else {
        kv_scatter(r->src, s->blocks, s->pool, 7, 3);
        kv_scatter(r->dst, s->blocks, s->pool, 11, 5);
    }
}

static uint64_t kv_seed(uint64_t plane, uint64_t i)
{
    return fb_seed(plane, i, 0x4b56);
}

/* Memory is seen a plane at a time through one host view (in place for
 * DRAM, one copy to the GPU for VRAM: the blocks are scattered, the plane
 * is not); storage per_block a block at a time, since the blocks the
 * request does not move were never written (objects of them do not exist). */
static uint8_t *kv_plane_view(const kv_run *r, const fb_mem *m, bool read)
{
    if (fb_mem_is_store(m) && !r->s->per_layer)
        return NULL;
    return fb_view(m, 0, r->s->pool * r->s->block_bytes, read);
}

static uint8_t *kv_block_view(const kv_run *r, const fb_mem *m, uint8_t *plane, uint32_t b,
                              bool read)
{
    uint64_t bb = r->s->block_bytes;
    return plane ? plane + b * bb : fb_view(m, b * bb, bb, read);
}

static void kv_block_done(const kv_run *r, const fb_mem *m, uint8_t *plane, uint8_t *v, uint32_t b,
                          bool write)
{
    if (!plane)
        fb_view_done(m, v, b * r->s->block_bytes, r->s->block_bytes, write);
}

static void kv_plane_done(const kv_run *r, const fb_mem *m, uint8_t *plane, bool write)
{
    if (plane)
        fb_view_done(m, plane, 0, r->s->pool * r->s->block_bytes, write);
}

static void kv_fill(const kv_run *r, kv_side *side)
{
    uint64_t bb = r->s->block_bytes;
    for (uint64_t p = 0; p < r->s->planes; p++) {
        const fb_mem *m = &side->planes[p];
        uint8_t *plane = kv_plane_view(r, m, false); /* zeroed, as the plane is */
        for (uint64_t i = 0; i < r->s->blocks; i++) {
            uint8_t *v = kv_block_view(r, m, plane, r->src[i], false);
            fb_fill(v, bb, kv_seed(p, i), 0);
            if (r->o->inject_corruption && p == 0 && i == 0)
                v[bb / 2] ^= 0xff; /* travels like any byte */
            kv_block_done(r, m, plane, v, r->src[i], true);
        }
        kv_plane_done(r, m, plane, true);
    }
}

/* A plane in storage: a file of its own, or an object per block (per
 * plane with per_layer: its one descriptor covers the blocks it moves). */
static void kv_plane_store(kv_run *r, fb_mem *m, ferry_mem_type type, size_t size)
{
    size_t unit = r->s->per_layer ? size : r->s->block_bytes;
    fb_store_cfg sc = {.dir = r->o->filepath,
                       .num_files = 1,
                       .chunk = size,
                       .direct = r->o->storage_enable_direct,
                       .group = size,
                       .per_group = size / unit,
                       .unit = unit,
                       .unit_max = unit,
                       .agent = r->agent};
    fb_mem_alloc_store(m, type, size, &sc);
}

/* Appends src's descriptors (with their metadata) to dst. */
static void kv_append(ferry_dlist *dst, ferry_dlist *src)
{
    for (size_t i = 0; i < ferry_dlist_count(src); i++) {
        ferry_desc d;
        const void *meta;
        size_t len;
        fb_ok(ferry_dlist_get(src, i, &d), "dlist get");
        fb_ok(ferry_dlist_get_meta(src, i, &meta, &len), "dlist meta");
        fb_ok(ferry_dlist_add_meta(dst, d.addr, d.len, d.dev_id, meta, len), "dlist add");
    }
    ferry_dlist_destroy(src);
}

static void kv_plane_alloc(kv_run *r, fb_mem *m, const kv_mem *mem, ferry_dlist *regions)
{
    size_t size = r->s->pool * r->s->block_bytes;
    if (!fb_seg_storage(mem->type)) {
        fb_mem_alloc(m, mem->type, mem->dev, size);
        fb_ok(ferry_dlist_add(regions, (uintptr_t)m->ptr, m->size, (uint64_t)m->dev), "dlist add");
        return;
    }
    kv_plane_store(r, m, mem->type, size);
    kv_append(regions, fb_store_reg_list(m, 0, size));
}

/* Allocates and registers; the prefill side is filled by kv_fill, once the
 * agent can reach it (objects are written through it). */
static void kv_side_init(kv_run *r, kv_side *side, bool prefill, const kv_mem *mem)
{
    const kv_shape *s = r->s;
    side->prefill = prefill;
    side->planes = fb_alloc(s->planes * sizeof(*side->planes));
    fb_ok(ferry_dlist_create(mem->type, s->planes, &side->regions), "dlist");
    for (uint64_t p = 0; p < s->planes; p++)
        kv_plane_alloc(r, &side->planes[p], mem, side->regions);
    ferry_status rc = ferry_register(r->agent, side->regions, NULL);
    if (rc != FERRY_OK)
        fb_die("register the %s cache (%s): %s", prefill ? "prefill" : "decode",
               ferry_mem_type_name(mem->type), ferry_strerror(rc));
}

static void kv_side_free(kv_run *r, kv_side *side)
{
    if (!side->planes)
        return;
    fb_deregister(r->agent, side->regions);
    for (uint64_t p = 0; p < r->s->planes; p++)
        fb_mem_free(&side->planes[p]);
    free(side->planes);
    *side = (kv_side){0};
}

static void kv_report_bad(const kv_run *r, uint64_t p, uint64_t i, size_t bad)
{
    const char *kv = r->s->mla ? "latent" : p % 2 ? "V" : "K";
    uint64_t layer = r->s->mla ? p : p / 2;
    fb_warn("consistency check FAILED: layer %llu %s, request block %llu (prefill block %u -> "
            "decode block %u): first bad byte at offset %zu of %llu",
            (unsigned long long)layer, kv, (unsigned long long)i, r->src[i], r->dst[i], bad,
            (unsigned long long)r->s->block_bytes);
}

/* The decode side checks every block of the request, a plane at a time. */
static bool kv_check(const kv_run *r, const kv_side *side)
{
    uint64_t bb = r->s->block_bytes;
    unsigned bad_blocks = 0;
    size_t bad;
    for (uint64_t p = 0; p < r->s->planes; p++) {
        const fb_mem *m = &side->planes[p];
        uint8_t *plane = kv_plane_view(r, m, true);
        for (uint64_t i = 0; i < r->s->blocks; i++) {
            uint8_t *v = kv_block_view(r, m, plane, r->dst[i], true);
            if (!fb_check(v, bb, kv_seed(p, i), 0, &bad) && bad_blocks++ < 4)
                kv_report_bad(r, p, i, bad);
            kv_block_done(r, m, plane, v, r->dst[i], false);
        }
        kv_plane_done(r, m, plane, false);
    }
    return bad_blocks == 0;
}

/* ---- lists and indices ---- */

/* per_block: descriptor p * pool + b is block b of plane p; per_layer:
 * descriptor p is the request's run of blocks 0..n-1 of plane p. */
/* A side of this process is addressed through its buffers (in storage:
 * files and objects); the other process's through its planes' addresses. */
static ferry_prepped *kv_prep(kv_run *r, const char *agent, const uint64_t *planes,
                              const kv_side *mine, const kv_mem *mem)
{
    const kv_shape *s = r->s;
    ferry_dlist *l;
    fb_ok(ferry_dlist_create(mem->type, s->per_layer ? s->planes : s->planes * s->pool, &l),
          "dlist");
    for (uint64_t p = 0; p < s->planes; p++)
        for (uint64_t b = 0; b < (s->per_layer ? 1 : s->pool); b++) {
            uint64_t addr = planes[p] + b * s->block_bytes, dev = (uint64_t)mem->dev;
            if (mine)
                fb_mem_desc(&mine->planes[p], b * s->block_bytes, &addr, &dev);
            fb_ok(ferry_dlist_add(l, addr,
                                  s->per_layer ? s->blocks * s->block_bytes : s->block_bytes, dev),
                  "dlist add");
        }
    ferry_prepped *pp;
    fb_ok(ferry_prep_dlist(r->agent, agent, l, NULL, &pp), "prepare list");
    ferry_dlist_destroy(l);
    return pp;
}

static uint32_t *kv_indices(const kv_run *r, const uint32_t *ids)
{
    const kv_shape *s = r->s;
    uint32_t *idx = fb_alloc(s->descs * sizeof(*idx));
    for (uint64_t p = 0; p < s->planes; p++)
        for (uint64_t i = 0; i < (s->per_layer ? 1 : s->blocks); i++)
            idx[s->per_layer ? p : p * s->blocks + i] =
                (uint32_t)(s->per_layer ? p : p * s->pool + ids[i]);
    return idx;
}

static uint64_t *kv_addrs(const kv_side *side, uint64_t planes)
{
    uint64_t *a = fb_alloc(planes * sizeof(*a));
    for (uint64_t p = 0; p < planes; p++)
        a[p] = (uintptr_t)side->planes[p].ptr;
    return a;
}

/* ---- requests ---- */

/* Make by index, post, wait: what an engine does per request. Adjacent
 * pairs are merged, as by default in NIXL's make_prepped_xfer. */
static void kv_request(kv_run *r, bool timed)
{
    ferry_xfer_opts o;
    ferry_xfer_opts_init(&o);
    ferry_xfer *x;
    double t0 = fb_now_us();
    ferry_status made =
        ferry_xfer_make(r->agent, r->op, r->lp, r->lidx, r->rp, r->ridx, r->s->descs, &o, &x);
    if (made != FERRY_OK)
        fb_make_failed(r->o->backend, r->o->initiator_seg_type, r->o->target_seg_type, r->peer,
                       made);
    double t1 = fb_now_us();
    ferry_status rc = fb_xfer_wait(x, fb_ok(ferry_xfer_post(x), "post"));
    double t2 = fb_now_us();
    if (rc != FERRY_OK)
        fb_die("request: %s (%s)", ferry_strerror(rc), ferry_xfer_error(x));
    ferry_xfer_telemetry t;
    ferry_xfer_telemetry_init(&t);
    fb_ok(ferry_xfer_get_telemetry(x, &t), "telemetry");
    if (timed) {
        fb_samples_add(&r->st.total, t2 - t0);
        fb_samples_add(&r->st.make, t1 - t0);
        fb_samples_add(&r->st.post, (double)t.post_us);
        fb_samples_add(&r->st.xfer, (double)t.xfer_us);
    }
    r->st.merged = ferry_xfer_count(x);
    ferry_xfer_release(x);
}

/* ---- processes ---- */

static ferry_agent *kv_agent(const kv_opts *o, const char *name, bool target)
{
    fb_agent_opts ao = {.name = name,
                        .backend = o->backend,
                        .params = o->backend_params,
                        .listen = target && !o->etcd.endpoints, /* else through etcd */
                        .progress = target || o->enable_pt,
                        .telemetry = !target};
    ferry_backend *be;
    return fb_agent_new(&ao, &be); /* memory types: checked by fb_probe */
}

/* The target's name: the side that does not initiate. */
static const char *kv_target_name(ferry_xfer_op op)
{
    return op == FERRY_OP_READ ? "kv-prefill" : "kv-decode";
}

typedef struct kv_target {
    kv_run *r;
    kv_side *side;
} kv_target;

/* etcd mode: a killed initiator (rank 0) says no goodbye. */
static void kv_target_watch(void *ctx)
{
    const kv_target *t = ctx;
    fb_rdv_watch(t->r->rdv, 0);
}

static bool kv_target_end(void *ctx, const char *from, unsigned step)
{
    kv_target *t = ctx;
    (void)from, (void)step;
    return t->side->prefill || !t->r->o->check_consistency || kv_check(t->r, t->side);
}

/* How the target tells where its cache is: msg (port, GPU, a plane's
 * address each) over the pipe to the process that started it, or through
 * etcd. */
typedef void (*kv_announce_fn)(kv_run *r, void *ctx, const uint64_t *msg, size_t n);

static void kv_pipe_announce(kv_run *r, void *ctx, const uint64_t *msg, size_t n)
{
    (void)r;
    fb_msg_send(*(int *)ctx, KV_MSG_PLANES, msg, (uint32_t)(n * sizeof(*msg)));
}

static int kv_target_main(kv_run *r, kv_announce_fn announce, void *ctx)
{
    r->agent = kv_agent(r->o, kv_target_name(r->op), true);
    kv_side_init(r, &r->local, r->op == FERRY_OP_READ, &r->tmem);
    if (r->local.prefill)
        kv_fill(r, &r->local);
    uint64_t *msg = fb_alloc((r->s->planes + KV_MSG_HEAD) * sizeof(*msg));
    uint16_t port = 0; /* none: the metadata goes through etcd */
    if (!r->rdv)
        fb_ok(ferry_md_listen_port(r->agent, &port), "listen port");
    msg[0] = port;
    msg[1] = (uint64_t)r->tmem.dev;
    for (uint64_t p = 0; p < r->s->planes; p++)
        msg[p + KV_MSG_HEAD] = (uintptr_t)r->local.planes[p].ptr;
    announce(r, ctx, msg, r->s->planes + KV_MSG_HEAD);
    free(msg);
    kv_target t = {r, &r->local};
    bool ok = fb_serve(r->agent, 1, kv_target_end, r->rdv ? kv_target_watch : NULL, &t);
    kv_side_free(r, &r->local);
    ferry_agent_destroy(r->agent);
    return ok ? FB_EXIT_OK : FB_EXIT_MISMATCH;
}

/* Where the other side's cache is, from its message. */
static void kv_peer_from(kv_run *r, const uint64_t *msg)
{
    r->peer_planes = fb_alloc(r->s->planes * sizeof(*msg));
    memcpy(r->peer_planes, msg + KV_MSG_HEAD, r->s->planes * sizeof(*msg));
    r->peer_dev = (int)msg[1];
    snprintf(r->peer, sizeof(r->peer), "%s", kv_target_name(r->op));
}

/* Starts the other side and learns where its cache is. */
static void kv_start_peer(kv_run *r, int argc, char **argv)
{
    fb_child ch = fb_spawn(argc, argv, "target:0");
    uint32_t len;
    uint64_t *msg = fb_msg_recv(ch.from, KV_MSG_PLANES, &len);
    if (len != (r->s->planes + KV_MSG_HEAD) * sizeof(*msg))
        fb_die("bad message from the other process");
    kv_peer_from(r, msg);
    fb_peer_link(r->agent, r->peer, (uint16_t)msg[0]);
    free(msg);
}

/* ---- etcd mode: the two sides started apart (rank 0 initiates) ---- */

/* The initiator's name: the side that is not the target. */
static const char *kv_initiator_name(ferry_xfer_op op)
{
    return op == FERRY_OP_READ ? "kv-decode" : "kv-prefill";
}

/* Both sides: our metadata out and, once every side's is, the other's in. */
static void kv_etcd_meet(kv_run *r, unsigned peer_rank, const char *peer_agent)
{
    fb_rdv_put_md(r->rdv, r->agent);
    fb_rdv_barrier(r->rdv, "published");
    fb_rdv_load_md(r->rdv, r->agent, peer_rank, peer_agent);
}

static void kv_etcd_announce(kv_run *r, void *ctx, const uint64_t *msg, size_t n)
{
    (void)ctx;
    fb_rdv_put_u64s(r->rdv, "planes", msg, n);
    kv_etcd_meet(r, 0, kv_initiator_name(r->op));
    fb_rdv_barrier(r->rdv, "ready");
}

/* The initiator's kv_start_peer. */
static void kv_etcd_peer(kv_run *r)
{
    size_t n = r->s->planes + KV_MSG_HEAD;
    uint64_t *msg = fb_alloc(n * sizeof(*msg));
    kv_etcd_meet(r, 1, kv_target_name(r->op));
    fb_rdv_get_u64s(r->rdv, "planes", msg, n);
    kv_peer_from(r, msg);
    free(msg);
    fb_ok(ferry_md_connect(r->agent, r->peer, NULL), "connect");
    fb_rdv_barrier(r->rdv, "ready");
}

/* The other side in this process (LOCAL). */
static void kv_start_inproc(kv_run *r)
{
    kv_side_init(r, &r->inproc, r->op == FERRY_OP_READ, &r->tmem);
    r->peer_planes = kv_addrs(&r->inproc, r->s->planes);
    r->peer_dev = r->tmem.dev;
    fb_load_self(r->agent);
    snprintf(r->peer, sizeof(r->peer), "%s", ferry_agent_name(r->agent));
    if (r->inproc.prefill)
        kv_fill(r, &r->inproc);
}

static void kv_setup(kv_run *r, int argc, char **argv)
{
    r->agent = kv_agent(r->o, r->loopback ? "kv-loop" : kv_initiator_name(r->op), false);
    kv_side_init(r, &r->local, r->op == FERRY_OP_WRITE, &r->imem);
    if (r->local.prefill)
        kv_fill(r, &r->local);
    if (r->loopback)
        kv_start_inproc(r);
    else if (r->rdv)
        kv_etcd_peer(r);
    else
        kv_start_peer(r, argc, argv);
    uint64_t *mine = kv_addrs(&r->local, r->s->planes);
    kv_mem peer = {r->tmem.type, r->peer_dev};
    r->lp = kv_prep(r, NULL, mine, &r->local, &r->imem);
    r->rp = kv_prep(r, r->peer, r->peer_planes, r->loopback ? &r->inproc : NULL, &peer);
    free(mine);
    bool read = r->op == FERRY_OP_READ; /* local: decode's blocks for READ */
    r->lidx = kv_indices(r, read ? r->dst : r->src);
    r->ridx = kv_indices(r, read ? r->src : r->dst);
}

/* After the requests: the decode side checks what arrived. */
static bool kv_finish(kv_run *r)
{
    bool check = r->o->check_consistency, ok = true;
    if (r->loopback && check && !r->inproc.prefill)
        ok = kv_check(r, &r->inproc);
    if (!r->loopback)
        ok = fb_step_end(r->agent, r->peer, 0);
    if (check && !r->local.prefill)
        ok = kv_check(r, &r->local) && ok;
    if (!r->loopback)
        fb_bye(r->agent, r->peer);
    return ok;
}

static void kv_teardown(kv_run *r)
{
    ferry_prepped_release(r->lp);
    ferry_prepped_release(r->rp);
    kv_side_free(r, &r->local);
    kv_side_free(r, &r->inproc);
    ferry_agent_destroy(r->agent);
    free(r->lidx), free(r->ridx), free(r->peer_planes); /* src, dst: main's */
    fb_samples_free(&r->st.total), fb_samples_free(&r->st.make);
    fb_samples_free(&r->st.post), fb_samples_free(&r->st.xfer);
}

/* ---- results ---- */

static void kv_json(const kv_run *r, double avg, double best, double p99, bool ok)
{
    const kv_opts *o = r->o;
    const kv_shape *s = r->s;
    double make = fb_avg(&r->st.make), post = fb_avg(&r->st.post);
    fb_field f[] = {
        {"model", r->m->name, 0, 0},
        {"tp", NULL, (double)o->tp, -1},
        {"pp", NULL, (double)o->pp, -1},
        {"page_size", NULL, (double)o->page_size, -1},
        {"isl", NULL, (double)o->isl, -1},
        {"access", o->access, 0, 0},
        {"op_type", r->op == FERRY_OP_READ ? "READ" : "WRITE", 0, 0},
        {"backend", o->backend, 0, 0},
        {"initiator_seg_type", o->initiator_seg_type, 0, 0},
        {"target_seg_type", o->target_seg_type, 0, 0},
        {"blocks", NULL, (double)s->blocks, -1},
        {"descriptors", NULL, (double)s->descs, -1},
        {"descriptors_merged", NULL, (double)r->st.merged, -1},
        {"bytes", NULL, (double)s->bytes, -1},
        {"time_avg_us", NULL, avg, 3},
        {"time_best_us", NULL, best, 3},
        {"time_p99_us", NULL, p99, 3},
        {"bandwidth_gbps", NULL, (double)s->bytes / avg / 1e3, 6},
        {"make_avg_us", NULL, make, 3},
        {"post_avg_us", NULL, post, 3},
        {"xfer_avg_us", NULL, fb_avg(&r->st.xfer), 3},
        {"make_post_share", NULL, (make + post) / avg, 4},
        {"consistency",
         !o->check_consistency ? "unchecked"
         : ok                  ? "ok"
                               : "FAILED",
         0, 0},
    };
    FILE *out = fb_open_out(o->json);
    fb_json_row(out, f, sizeof(f) / sizeof(f[0]));
    fb_close_out(out, o->json);
}

/* "DRAM", "VRAM (GPU 1)" */
static const char *kv_mem_name(const kv_mem *m, char *buf, size_t cap)
{
    if (m->type == FERRY_MEM_VRAM)
        snprintf(buf, cap, "VRAM (GPU %d)", m->dev);
    else
        snprintf(buf, cap, "%s", ferry_mem_type_name(m->type));
    return buf;
}

static void kv_report(kv_run *r, bool ok)
{
    const kv_shape *s = r->s;
    double avg = fb_avg(&r->st.total), p99 = fb_p99(&r->st.total);
    double best = r->st.total.v[0]; /* sorted by fb_p99 */
    double make = fb_avg(&r->st.make), post = fb_avg(&r->st.post);
    char imem[32], tmem[32];
    printf("  run: %s, %s, %s -> %s, %llu requests (+%llu warmup), %zu descriptors after "
           "merging\n",
           r->o->backend,
           fb_seg_storage(r->tmem.type)
               ? (r->op == FERRY_OP_WRITE ? "offload to storage (WRITE)" : "read back (READ)")
           : r->loopback            ? "both sides in one process"
           : r->op == FERRY_OP_READ ? "decode READs from prefill (2 processes)"
                                    : "prefill WRITEs to decode (2 processes)",
           kv_mem_name(&r->imem, imem, sizeof(imem)), kv_mem_name(&r->tmem, tmem, sizeof(tmem)),
           (unsigned long long)r->o->num_iter, (unsigned long long)r->o->warmup_iter, r->st.merged);
    printf("  time per request: %.3f ms avg, %.3f best, %.3f p99; %.3f GB/s avg, %.3f best\n",
           avg / 1e3, best / 1e3, p99 / 1e3, (double)s->bytes / avg / 1e3,
           (double)s->bytes / best / 1e3);
    printf("  make %.1f us + post %.1f us = %.1f%% of the time; moving data %.1f%%\n", make, post,
           100 * (make + post) / avg, 100 * (1 - (make + post) / avg));
    if (r->o->check_consistency)
        printf("  consistency: %s\n",
               ok ? "every byte of the request as prefill holds it" : "MISMATCH (see above)");
    if (r->o->json)
        kv_json(r, avg, best, p99, ok);
}

static int kv_run_main(kv_run *r, int argc, char **argv)
{
    kv_setup(r, argc, argv);
    for (uint64_t i = 0; i < r->o->warmup_iter; i++)
        kv_request(r, false);
    for (uint64_t i = 0; i < r->o->num_iter; i++)
        kv_request(r, true);
    bool ok = kv_finish(r);
    kv_report(r, ok);
    kv_teardown(r);
    int rc = fb_children_wait();
    return fb_exit_worse(rc, ok ? FB_EXIT_OK : FB_EXIT_MISMATCH);
}

/* Files never take more than half of their file system's free space. */
static void kv_check_disk(const kv_run *r, double side)
{
    struct statvfs fs;
    const char *dir = r->o->filepath ? r->o->filepath : ".";
    if (r->tmem.type != FERRY_MEM_FILE && r->tmem.type != FERRY_MEM_BLOCK)
        return;
    if (statvfs(dir, &fs))
        fb_exit(FB_EXIT_USAGE, "--filepath %s: %s", dir, strerror(errno));
    double free_bytes = (double)fs.f_bavail * (double)fs.f_frsize;
    if (side > free_bytes / 2)
        fb_exit(FB_EXIT_USAGE,
                "the cache's files need %.1f GiB, more than half of the %.1f GiB free in %s: "
                "lower --isl or raise --tp/--pp",
                side / GIB, free_bytes / GIB, dir);
}

/* Host memory for the caches in DRAM (VRAM: cuMemAlloc says when a GPU
 * is too small). */
static void kv_check_memory(const kv_run *r)
{
    const kv_shape *s = r->s;
    double side = (double)s->planes * (double)s->pool * (double)s->block_bytes;
    double ram = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    double host = side * ((r->imem.type == FERRY_MEM_DRAM) + (r->tmem.type == FERRY_MEM_DRAM));
    if (s->planes * s->pool > UINT32_MAX)
        fb_exit(FB_EXIT_USAGE, "too many blocks for one prepared list; lower --isl");
    if (host > ram / 2)
        fb_exit(FB_EXIT_USAGE,
                "the caches in DRAM need %.1f GiB, more than half of this host's %.1f GiB: "
                "lower --isl, raise --tp/--pp or use --dry_run",
                host / GIB, ram / GIB);
    kv_check_disk(r, side);
}

/* Each side's GPU, once the driver is known to work: the initiator's is
 * GPU 0, the target's GPU 1 where there are two (else both share GPU 0). */
static void kv_gpus(kv_run *r)
{
    r->imem.dev = r->imem.type == FERRY_MEM_VRAM ? fb_gpu_for(0) : 0;
    r->tmem.dev = r->tmem.type == FERRY_MEM_VRAM ? fb_gpu_for(1) : 0;
}

/* The other side, started by kv_start_peer. */
static int kv_child_main(kv_run *r)
{
    char kind[16];
    unsigned id;
    int in, out;
    fb_role_tag = "target";
    if (!fb_role_parse(r->o->fb_role, kind, sizeof(kind), &id, &in, &out))
        fb_exit(FB_EXIT_USAGE, "bad --fb_role");
    kv_gpus(r);
    return kv_target_main(r, kv_pipe_announce, &out);
}

/* What both sides must agree on: the shapes and the requests (backend
 * params may differ: each host has its own devices). */
static void kv_etcd_options(const kv_run *r, char *buf, size_t cap)
{
    const kv_opts *o = r->o;
    snprintf(buf, cap,
             "model=%s tp=%llu pp=%llu page=%llu isl=%llu access=%s dtype=%s op=%s backend=%s "
             "segs=%s/%s iter=%llu/%llu check=%d",
             r->m->name, (unsigned long long)o->tp, (unsigned long long)o->pp,
             (unsigned long long)o->page_size, (unsigned long long)o->isl, o->access, r->m->dtype,
             o->op_type, o->backend, o->initiator_seg_type, o->target_seg_type,
             (unsigned long long)o->num_iter, (unsigned long long)o->warmup_iter,
             o->check_consistency);
}

/* This process's side of a run started apart: the first to join the
 * group initiates, the second is the target. */
static int kv_etcd_main(kv_run *r)
{
    char options[1024];
    kv_etcd_options(r, options, sizeof(options));
    r->rdv = fb_rdv_join(&r->o->etcd, r->loopback ? 1 : 2, options);
    int rc;
    if (fb_rdv_rank(r->rdv) == 0) {
        rc = kv_run_main(r, 0, NULL);
    } else {
        fb_role_tag = kv_target_name(r->op);
        printf("ferry-kvbench: %s (rank 1 of group %s at %s): serving\n", kv_target_name(r->op),
               r->o->etcd.group, r->o->etcd.endpoints);
        fflush(stdout);
        rc = kv_target_main(r, kv_etcd_announce, NULL);
        printf("ferry-kvbench: %s: %s\n", kv_target_name(r->op),
               rc == FB_EXIT_OK ? "done" : "done, the consistency check FAILED");
    }
    fb_rdv_leave(r->rdv);
    return rc;
}

static int kv_parent_main(kv_run *r, int argc, char **argv)
{
    const kv_opts *o = r->o;
    kv_print_model(o, r->m, r->s);
    kv_print_rank(o, r->m, r->s);
    kv_print_request(o, r->s);
    if (o->dry_run)
        return FB_EXIT_OK;
    kv_check_memory(r);
    uint32_t caps =
        fb_probe(o->backend, o->backend_params, o->initiator_seg_type, o->target_seg_type);
    r->loopback = !(caps & FERRY_CAP_REMOTE);
    kv_gpus(r);
    return o->etcd.endpoints ? kv_etcd_main(r) : kv_run_main(r, argc, argv);
}

int main(int argc, char **argv)
{
    static kv_opts o;
    static kv_model m;
    static kv_shape s;
    fb_prog = "ferry-kvbench";
    kv_parse(&o, argc, argv);
    fb_rdv_cli_check(&o.etcd, o.fb_role != NULL);
    if (o.list_models)
        return kv_list_models();
    kv_load_model(o.model, &m);
    kv_compute(&o, &m, &s);
    kv_run r = {.o = &o, .m = &m, .s = &s};
    r.op = strcasecmp(o.op_type, "READ") ? FERRY_OP_WRITE : FERRY_OP_READ;
    r.imem.type = fb_seg_parse("initiator_seg_type", o.initiator_seg_type);
    r.tmem.type = fb_seg_parse("target_seg_type", o.target_seg_type);
    o.initiator_seg_type = ferry_mem_type_name(r.imem.type); /* canonical spelling */
    o.target_seg_type = ferry_mem_type_name(r.tmem.type);
    kv_layout(&r);
    int rc = o.fb_role ? kv_child_main(&r) : kv_parent_main(&r, argc, argv);
    free(r.src);
    free(r.dst);
    return rc;
}
