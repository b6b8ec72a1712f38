/* SPDX-License-Identifier: Apache-2.0 */
/* Local transfers of the CUDA backend, verified byte for byte over whole
 * buffers (so a byte written outside a descriptor fails too): VRAM <-> VRAM
 * on one GPU and across two, VRAM <-> DRAM both ways, few descriptors (the
 * inline launch) and thousands (items uploaded at prep), odd sizes and
 * alignments, big segments mixed with small ones, in kernel mode, in
 * copy-engine mode, without kernels (a build without nvcc), and ordered
 * after the caller's stream. Skips without a GPU (or the mock driver). */
#include "gpu_test.h"

#define KB 1024ull
#define MB (1024ull * 1024ull)

static const char *NAME = "cuda-local";

typedef struct side {
    ferry_mem_type type;
    int dev;
    uint8_t *p;
    size_t size;
} side;

static void side_alloc(side *s, ferry_mem_type type, int dev, size_t size)
{
    s->type = type;
    s->dev = dev;
    s->size = size;
    s->p = type == FERRY_MEM_VRAM ? gt_alloc(dev, size) : tu_alloc(size);
}

static void side_free(side *s)
{
    if (s->type == FERRY_MEM_VRAM)
        gt_free(s->dev, s->p);
    else
        free(s->p);
}

static ferry_agent *open_agent(const char *plugin, const ferry_param *params, size_t n)
{
    ferry_agent_config cfg;
    ferry_agent *a = NULL;
    ferry_backend *be;
    ferry_agent_config_init(&cfg);
    cfg.name = NAME;
    if (ferry_agent_create(&cfg, &a) != FERRY_OK)
        return NULL;
    ferry_status rc = ferry_backend_create(a, plugin, params, n, &be);
    if (rc != FERRY_OK) {
        printf("# backend %s: %s\n", plugin, ferry_strerror(rc));
        ferry_agent_destroy(a);
        return NULL;
    }
    return a;
}

/* One request over a layout between a local and a "remote" (loopback)
 * buffer, posted twice with new data, each post checked with its
 * notification. Returns the status of the create when it failed. */
typedef struct lcase {
    const char *what;
    ferry_mem_type ltype, rtype;
    int ldev, rdev;
    ferry_xfer_op op;
    size_t n;
    uint64_t max_len;
    unsigned align;
    uint64_t big; /* > 0: descriptor 0 is this large */
} lcase;

typedef struct lrun {
    ferry_agent *a;
    gt_layout lo;
    side l, r;
    side *src, *dst;
    ferry_dlist *ll, *rl;
} lrun;

static void lrun_layout(lrun *x, const lcase *c, uint64_t seed)
{
    gt_layout_make(&x->lo, c->n, c->max_len, c->align, seed);
    if (c->big) { /* descriptor 0 becomes big, placed after everything else */
        x->lo.len[0] = c->big;
        x->lo.soff[0] = (x->lo.ssize + 4095) & ~4095ull;
        x->lo.doff[0] = (x->lo.dsize + 4095) & ~4095ull;
        x->lo.ssize = x->lo.soff[0] + c->big + 64;
        x->lo.dsize = x->lo.doff[0] + c->big + 64;
    }
}

static ferry_status lrun_open(lrun *x, ferry_agent *a, const lcase *c, uint64_t seed)
{
    bool write = c->op == FERRY_OP_WRITE;
    memset(x, 0, sizeof(*x));
    x->a = a;
    lrun_layout(x, c, seed);
    side_alloc(&x->l, c->ltype, c->ldev, write ? x->lo.ssize : x->lo.dsize);
    side_alloc(&x->r, c->rtype, c->rdev, write ? x->lo.dsize : x->lo.ssize);
    x->src = write ? &x->l : &x->r;
    x->dst = write ? &x->r : &x->l;
    gt_fill(x->l.p, x->l.size, seed + 1);
    gt_fill(x->r.p, x->r.size, seed + 2);
    ferry_status rc = gt_register(a, c->ltype, x->l.p, x->l.size, (uint64_t)c->ldev);
    if (rc == FERRY_OK)
        rc = gt_register(a, c->rtype, x->r.p, x->r.size, (uint64_t)c->rdev);
    /* A new generation of the loopback "remote": regions deregistered
     * earlier stay listed until invalidation, and freed memory comes back
     * at the same addresses. */
    if (rc == FERRY_OK && ferry_md_invalidate(a, NAME) != FERRY_ERR_NOT_FOUND)
        rc = FERRY_OK;
    if (rc == FERRY_OK)
        rc = tu_load_self(a);
    x->ll = gt_list(c->ltype, &x->lo, !write, x->l.p, (uint64_t)c->ldev);
    x->rl = gt_list(c->rtype, &x->lo, write, x->r.p, (uint64_t)c->rdev);
    return rc;
}

static void lrun_close(lrun *x)
{
    gt_deregister(x->a, x->l.type, x->l.p, x->l.size, (uint64_t)x->l.dev);
    gt_deregister(x->a, x->r.type, x->r.p, x->r.size, (uint64_t)x->r.dev);
    side_free(&x->l);
    side_free(&x->r);
    ferry_dlist_destroy(x->ll);
    ferry_dlist_destroy(x->rl);
    gt_layout_free(&x->lo);
}

/* Posts x once with fresh source bytes and checks the whole destination. */
static bool lrun_post(lrun *x, ferry_xfer *xf, uint64_t seed, const char *tag)
{
    gt_fill(x->src->p, x->src->size, seed);
    uint8_t *hs = gt_read(x->src->p, x->src->size), *hd = gt_read(x->dst->p, x->dst->size);
    gt_apply(hd, hs, &x->lo);
    ferry_status rc = tu_post_wait(xf);
    if (rc != FERRY_OK)
        printf("# post: %s (%s)\n", ferry_strerror(rc), ferry_xfer_error(xf));
    bool ok =
        rc == FERRY_OK && tu_wait_notif(x->a, NAME, tag, strlen(tag), TU_TIMEOUT_MS) == FERRY_OK;
    uint8_t *got = gt_read(x->dst->p, x->dst->size);
    size_t bad = x->dst->size;
    for (size_t i = 0; i < x->dst->size && bad == x->dst->size; i++)
        if (got[i] != hd[i])
            bad = i;
    if (bad != x->dst->size)
        printf("# first wrong byte at destination offset %zu of %zu\n", bad, x->dst->size);
    free(hs);
    free(hd);
    free(got);
    return ok && bad == x->dst->size;
}

static ferry_status run_case(ferry_agent *a, const lcase *c, uint64_t seed)
{
    lrun x;
    ferry_xfer *xf = NULL;
    ferry_xfer_opts opts;
    ferry_status rc = lrun_open(&x, a, c, seed);
    ferry_xfer_opts_init(&opts);
    opts.notif = "local-done";
    opts.notif_len = 10;
    if (rc == FERRY_OK)
        rc = ferry_xfer_create(a, c->op, x.ll, x.rl, NAME, &opts, &xf);
    if (rc == FERRY_OK) {
        bool ok = lrun_post(&x, xf, seed + 10, "local-done") &&
                  lrun_post(&x, xf, seed + 11, "local-done");
        if (!ok)
            printf("# %s: wrong result\n", c->what);
        rc = ok ? FERRY_OK : FERRY_ERR_UNKNOWN;
        FY_CHECK_EQ(ferry_xfer_release(xf), FERRY_OK);
    }
    lrun_close(&x);
    return rc;
}

/* ---- the cases ---- */

static const lcase CASES[] = {
    {"VRAM->VRAM, 3000 odd blocks", FERRY_MEM_VRAM, FERRY_MEM_VRAM, 0, 0, FERRY_OP_WRITE, 3000,
     20 * KB, 1, 0},
    {"VRAM<-VRAM, 2000 16-byte blocks", FERRY_MEM_VRAM, FERRY_MEM_VRAM, 0, 0, FERRY_OP_READ, 2000,
     16 * KB, 16, 0},
    {"VRAM->VRAM, 5 blocks (inline)", FERRY_MEM_VRAM, FERRY_MEM_VRAM, 0, 0, FERRY_OP_WRITE, 5,
     512 * KB, 4096, 0},
    {"VRAM->VRAM, 1 byte", FERRY_MEM_VRAM, FERRY_MEM_VRAM, 0, 0, FERRY_OP_WRITE, 1, 1, 1, 0},
    {"VRAM->VRAM, 32 MiB + 200 small", FERRY_MEM_VRAM, FERRY_MEM_VRAM, 0, 0, FERRY_OP_WRITE, 200,
     8 * KB, 16, 32 * MB},
    {"VRAM->DRAM, 500 blocks", FERRY_MEM_VRAM, FERRY_MEM_DRAM, 0, 0, FERRY_OP_WRITE, 500, 64 * KB,
     1, 0},
    {"VRAM<-DRAM, 500 blocks", FERRY_MEM_VRAM, FERRY_MEM_DRAM, 0, 0, FERRY_OP_READ, 500, 64 * KB,
     16, 0},
    {"DRAM->VRAM, 300 blocks", FERRY_MEM_DRAM, FERRY_MEM_VRAM, 0, 0, FERRY_OP_WRITE, 300, 64 * KB,
     4096, 0},
    {"DRAM<-VRAM, 300 blocks + 8 MiB", FERRY_MEM_DRAM, FERRY_MEM_VRAM, 0, 0, FERRY_OP_READ, 300,
     64 * KB, 1, 8 * MB},
};

static const lcase CASES_2GPU[] = {
    {"GPU0 VRAM->GPU1 VRAM, 1000 blocks", FERRY_MEM_VRAM, FERRY_MEM_VRAM, 0, 1, FERRY_OP_WRITE,
     1000, 32 * KB, 16, 0},
    {"GPU0 VRAM<-GPU1 VRAM, 1000 odd blocks", FERRY_MEM_VRAM, FERRY_MEM_VRAM, 0, 1, FERRY_OP_READ,
     1000, 32 * KB, 1, 0},
    {"GPU1 VRAM->GPU0 VRAM, 10 blocks", FERRY_MEM_VRAM, FERRY_MEM_VRAM, 1, 0, FERRY_OP_WRITE, 10,
     256 * KB, 4096, 0},
    {"DRAM->GPU1 VRAM, 100 blocks", FERRY_MEM_DRAM, FERRY_MEM_VRAM, 0, 1, FERRY_OP_WRITE, 100,
     64 * KB, 16, 0},
};

static void run_all(const ferry_param *params, size_t n, const char *label)
{
    ferry_agent *a = open_agent("CUDA", params, n);
    FY_REQUIRE(a);
    printf("# %s\n", label);
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
        ferry_status rc = run_case(a, &CASES[i], tu_seed() + i * 100);
        if (rc != FERRY_OK)
            printf("# %s: %s: %s\n", label, CASES[i].what, ferry_strerror(rc));
        FY_CHECK_EQ(rc, FERRY_OK);
    }
    for (size_t i = 0; GT.ndev > 1 && i < sizeof(CASES_2GPU) / sizeof(CASES_2GPU[0]); i++) {
        ferry_status rc = run_case(a, &CASES_2GPU[i], tu_seed() + 5000 + i * 100);
        if (rc != FERRY_OK)
            printf("# %s: %s: %s\n", label, CASES_2GPU[i].what, ferry_strerror(rc));
        FY_CHECK_EQ(rc, FERRY_OK);
    }
    ferry_agent_destroy(a);
}

static void test_kernel_mode(void)
{
    if (!GT_HAVE_KERNELS)
        FY_SKIP("this build has no copy kernels (nvcc was not found)");
    run_all(NULL, 0, "mode=kernel (defaults)");
}

static void test_kernel_mixed(void)
{
    /* Small chunks and a low threshold: many items, copy engines mixed in. */
    const ferry_param p[] = {{"ce_threshold", "64K"}, {"chunk", "4096"}, {"streams", "1"}};
    if (!GT_HAVE_KERNELS)
        FY_SKIP("this build has no copy kernels (nvcc was not found)");
    run_all(p, 3, "mode=kernel ce_threshold=64K chunk=4096 streams=1");
}

static void test_copy_engine_mode(void)
{
    const ferry_param p[] = {{"mode", "copy_engine"}};
    run_all(p, 1, "mode=copy_engine");
}

static void test_copy_engine_nobatch(void)
{
    const ferry_param p[] = {{"mode", "copy_engine"}, {"batch", "off"}};
    run_all(p, 2, "mode=copy_engine batch=off");
}

/* A build without nvcc: the kernel path says NOT_SUPPORTED, copy engines
 * work (CUDANK is the plugin built without its kernels). */
static void test_no_kernel_build(void)
{
    ferry_agent *a = open_agent("CUDANK", NULL, 0);
    FY_REQUIRE(a);
    lcase vv = CASES[0], dv = CASES[5];
    FY_CHECK_EQ(run_case(a, &vv, 1), FERRY_ERR_NOT_SUPPORTED);
    FY_CHECK_EQ(run_case(a, &dv, 2), FERRY_OK);
    ferry_agent_destroy(a);
    const ferry_param p[] = {{"mode", "copy_engine"}};
    a = open_agent("CUDANK", p, 1);
    FY_REQUIRE(a);
    FY_CHECK_EQ(run_case(a, &vv, 3), FERRY_OK);
    ferry_agent_destroy(a);
}

/* Several requests in flight at once, on the backend's several streams. */
static void test_concurrent_requests(void)
{
    enum { N = 6 };
    const ferry_param mode[] = {{"mode", GT_KERNEL_MODE}};
    ferry_agent *a = open_agent("CUDA", mode, 1);
    FY_REQUIRE(a);
    lrun x[N];
    ferry_xfer *xf[N];
    uint8_t *want[N];
    lcase c[N];
    for (int i = 0; i < N; i++) { /* every region first: each open reloads */
        c[i] = CASES[i % 2];
        c[i].n = 700;
        FY_REQUIRE(lrun_open(&x[i], a, &c[i], 900 + (uint64_t)i) == FERRY_OK);
    }
    for (int i = 0; i < N; i++) {
        FY_REQUIRE(ferry_xfer_create(a, c[i].op, x[i].ll, x[i].rl, NAME, NULL, &xf[i]) == FERRY_OK);
        uint8_t *hs = gt_read(x[i].src->p, x[i].src->size);
        want[i] = gt_read(x[i].dst->p, x[i].dst->size);
        gt_apply(want[i], hs, &x[i].lo);
        free(hs);
    }
    for (int i = 0; i < N; i++)
        FY_CHECK_EQ(ferry_xfer_post(xf[i]), FERRY_IN_PROGRESS);
    for (int i = N; i-- > 0;) {
        FY_CHECK_EQ(tu_wait(xf[i], TU_TIMEOUT_MS), FERRY_OK);
        uint8_t *got = gt_read(x[i].dst->p, x[i].dst->size);
        FY_CHECK(!memcmp(got, want[i], x[i].dst->size));
        free(got);
        free(want[i]);
        ferry_xfer_release(xf[i]);
        lrun_close(&x[i]);
    }
    ferry_agent_destroy(a);
}

/* stream=<handle>: a transfer starts after the caller's queued work. The
 * caller's stream rewrites the source (a large copy, still running when
 * the transfer is posted on a GPU); the destination must get the new
 * bytes. */
static void test_caller_stream(void)
{
    fy_cu_stream s;
    FY_REQUIRE(GT.cu->StreamCreate(&s, FY_CU_STREAM_NON_BLOCKING) == FY_CUDA_SUCCESS);
    char hex[32];
    snprintf(hex, sizeof(hex), "%llx", (unsigned long long)(uintptr_t)s);
    const ferry_param p[] = {{"stream", hex}, {"mode", GT_KERNEL_MODE}};
    ferry_agent *a = open_agent("CUDA", p, 2);
    FY_REQUIRE(a);
    const size_t len = 64 * MB;
    uint8_t *src = gt_alloc(0, len), *dst = gt_alloc(0, len), *fresh = gt_alloc(0, len);
    gt_fill(src, len, 1);
    gt_fill(dst, len, 2);
    gt_fill(fresh, len, 3);
    FY_REQUIRE(gt_register(a, FERRY_MEM_VRAM, src, len, 0) == FERRY_OK);
    FY_REQUIRE(gt_register(a, FERRY_MEM_VRAM, dst, len, 0) == FERRY_OK);
    FY_REQUIRE(tu_load_self(a) == FERRY_OK);
    ferry_dlist *l = gt_list1(FERRY_MEM_VRAM, src, len, 0),
                *r = gt_list1(FERRY_MEM_VRAM, dst, len, 0);
    ferry_xfer *xf;
    FY_REQUIRE(ferry_xfer_create(a, FERRY_OP_WRITE, l, r, NAME, NULL, &xf) == FERRY_OK);
    for (int round = 0; round < 3; round++) {
        FY_REQUIRE(GT.cu->MemcpyAsync((uintptr_t)src, (uintptr_t)fresh, len, s) == FY_CUDA_SUCCESS);
        FY_CHECK_EQ(tu_post_wait(xf), FERRY_OK);
        uint8_t *want = gt_read(fresh, len), *got = gt_read(dst, len);
        FY_CHECK(!memcmp(want, got, len));
        free(want);
        free(got);
        gt_fill(fresh, len, 10 + (uint64_t)round);
    }
    ferry_xfer_release(xf);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    ferry_agent_destroy(a);
    GT.cu->StreamSynchronize(s);
    GT.cu->StreamDestroy(s);
    gt_free(0, src);
    gt_free(0, dst);
    gt_free(0, fresh);
}

/* The host-memory ledger tells GPUs apart (label device), and a backend's
 * cap (FERRY_MAX_REGISTERED_BYTES=CUDA=...) holds for VRAM until a
 * deregistration makes room. */
static void test_ledger_per_gpu(void)
{
    setenv("FERRY_MAX_REGISTERED_BYTES", "CUDA=3M", 1);
    const ferry_param mode[] = {{"mode", GT_KERNEL_MODE}};
    ferry_agent *a = open_agent("CUDA", mode, 1);
    unsetenv("FERRY_MAX_REGISTERED_BYTES");
    FY_REQUIRE(a);
    int other = GT.ndev > 1 ? 1 : 0;
    char dev[16];
    snprintf(dev, sizeof(dev), "%d", other);
    uint8_t *b0 = gt_alloc(0, 1 * MB), *b1 = gt_alloc(other, 2 * MB), *b2 = gt_alloc(0, 1 * MB);
    FY_CHECK_EQ(gt_register(a, FERRY_MEM_VRAM, b0, 1 * MB, 0), FERRY_OK);
    FY_CHECK_EQ(gt_register(a, FERRY_MEM_VRAM, b1, 2 * MB, (uint64_t)other), FERRY_OK);
    FY_CHECK_EQ(gt_register(a, FERRY_MEM_VRAM, b2, 1 * MB, 0), FERRY_ERR_NO_RESOURCES);
    FY_CHECK_EQ(tu_metric_value(a, "ferry_registered_bytes", "backend", "CUDA", "mem_type", "VRAM",
                                "device", dev, NULL),
                other ? 2 * MB : 3 * MB);
    FY_CHECK_EQ(tu_metric_value(a, "ferry_registered_regions", "device", "0", NULL), other ? 1 : 2);
    FY_CHECK_EQ(tu_metric_value(a, "ferry_agent_registered_bytes", "mem_type", "VRAM", NULL),
                3 * MB);
    FY_CHECK_EQ(gt_deregister(a, FERRY_MEM_VRAM, b0, 1 * MB, 0), FERRY_OK);
    FY_CHECK_EQ(gt_register(a, FERRY_MEM_VRAM, b2, 1 * MB, 0), FERRY_OK);
    ferry_agent_destroy(a);
    gt_free(0, b0);
    gt_free(other, b1);
    gt_free(0, b2);
}

/* The caller's current context is the same after ferry's calls. */
static void test_context_untouched(void)
{
    const ferry_param mode[] = {{"mode", GT_KERNEL_MODE}};
    ferry_agent *a = open_agent("CUDA", mode, 1);
    FY_REQUIRE(a);
    FY_CHECK_EQ(run_case(a, &CASES[0], 77), FERRY_OK);
    ferry_agent_destroy(a);
    fy_cu_context cur = NULL;
    FY_CHECK_EQ(GT.cu->CtxPopCurrent(&cur), FY_CUDA_SUCCESS);
    FY_CHECK(cur == GT.ctx[0]);
    GT.cu->CtxPushCurrent(GT.ctx[0]);
}

int main(void)
{
    gt_init_or_skip();
    printf("# seed %#llx%s\n", (unsigned long long)tu_seed(),
           GT.ndev > 1 ? "" : " (one GPU: the two-GPU cases are left out)");
    FY_RUN(test_kernel_mode);
    FY_RUN(test_kernel_mixed);
    FY_RUN(test_copy_engine_mode);
    FY_RUN(test_copy_engine_nobatch);
    FY_RUN(test_no_kernel_build);
    FY_RUN(test_concurrent_requests);
    FY_RUN(test_caller_stream);
    FY_RUN(test_context_untouched);
    FY_RUN(test_ledger_per_gpu);
    return fy_test_done();
}
