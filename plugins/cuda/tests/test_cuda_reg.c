/* SPDX-License-Identifier: Apache-2.0 */
/* VRAM registration: the core's check through the CUDA driver (with the
 * VSINK test backend, which accepts anything) and the CUDA backend's own
 * registration (pinning DRAM, exporting VRAM), with the errors the
 * application gets.
 *
 *   test_cuda_reg            on a GPU (or the mock driver); skips without
 *   test_cuda_reg nodriver   FERRY_CUDA_LIB names no loadable driver:
 *                            everything VRAM must be NOT_SUPPORTED, cleanly */
#include "gpu_test.h"

static ferry_agent *agent_with(const char *name, const char *plugin, const ferry_param *params,
                               size_t n, ferry_status *rc)
{
    ferry_agent_config cfg;
    ferry_agent *a = NULL;
    ferry_backend *be;
    ferry_agent_config_init(&cfg);
    cfg.name = name;
    if (ferry_agent_create(&cfg, &a) != FERRY_OK)
        return NULL;
    *rc = ferry_backend_create(a, plugin, params, n, &be);
    return a;
}

/* ---- without a driver ---- */

static void test_nodriver_vram(void)
{
    ferry_status rc = FERRY_ERR_UNKNOWN;
    ferry_agent *a = agent_with("nodrv", "VSINK", NULL, 0, &rc);
    FY_REQUIRE(a && rc == FERRY_OK);
    uint8_t *buf = malloc(4096);
    FY_CHECK_EQ(gt_register(a, FERRY_MEM_VRAM, buf, 4096, 0), FERRY_ERR_NOT_SUPPORTED);
    FY_CHECK_EQ(gt_register(a, FERRY_MEM_DRAM, buf, 4096, 0), FERRY_OK); /* DRAM unaffected */
    FY_CHECK_EQ(gt_deregister(a, FERRY_MEM_DRAM, buf, 4096, 0), FERRY_OK);
    ferry_mem_usage u;
    ferry_mem_usage_init(&u);
    FY_CHECK_EQ(ferry_mem_usage_get(a, &u), FERRY_OK);
    FY_CHECK_EQ(u.regions[FERRY_MEM_VRAM], 0);
    ferry_agent_destroy(a);
    free(buf);
}

static void test_nodriver_backend(void)
{
    ferry_status rc = FERRY_ERR_UNKNOWN;
    ferry_agent *a = agent_with("nodrv-cuda", "CUDA", NULL, 0, &rc);
    FY_REQUIRE(a);
    FY_CHECK_EQ(rc, FERRY_ERR_NOT_SUPPORTED);
    /* The plugin itself loads (it needs no CUDA library to load). */
    uint32_t mask = 0;
    FY_CHECK_EQ(ferry_plugin_mem_types(a, "CUDA", &mask), FERRY_OK);
    FY_CHECK(mask & FERRY_MEM_MASK(FERRY_MEM_VRAM));
    ferry_agent_destroy(a);
}

static int run_nodriver(void)
{
    fy_gpu_why why;
    const fy_cuda *cu;
    if (fy_cuda_get(&cu, &why) == FERRY_OK) {
        printf("Bail out! a driver loaded from FERRY_CUDA_LIB=%s\n", getenv("FERRY_CUDA_LIB"));
        return 1;
    }
    printf("# %s\n", why.msg);
    FY_RUN(test_nodriver_vram);
    FY_RUN(test_nodriver_backend);
    return fy_test_done();
}

/* ---- the core's check ---- */

static ferry_agent *A; /* VSINK */

static void test_host_memory_refused(void)
{
    uint8_t *host = malloc(64 * 1024);
    void *pinned = gt_host_alloc(64 * 1024);
    FY_CHECK_EQ(gt_register(A, FERRY_MEM_VRAM, host, 64 * 1024, 0), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(gt_register(A, FERRY_MEM_VRAM, pinned, 64 * 1024, 0), FERRY_ERR_INVALID_PARAM);
    GT.cu->MemFreeHost(pinned);
    free(host);
}

static void test_wrong_gpu_refused(void)
{
    void *d = gt_alloc(0, 1 << 20);
    FY_CHECK_EQ(gt_register(A, FERRY_MEM_VRAM, d, 1 << 20, (uint64_t)GT.ndev),
                FERRY_ERR_INVALID_PARAM); /* no such GPU */
    FY_CHECK_EQ(gt_register(A, FERRY_MEM_VRAM, d, 1 << 20, 1000), FERRY_ERR_INVALID_PARAM);
    if (GT.ndev > 1)
        FY_CHECK_EQ(gt_register(A, FERRY_MEM_VRAM, d, 1 << 20, 1), FERRY_ERR_INVALID_PARAM);
    /* Past the allocation, into nothing. */
    FY_CHECK_EQ(gt_register(A, FERRY_MEM_VRAM, d, 1ull << 40, 0), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(gt_register(A, FERRY_MEM_VRAM, d, 1 << 20, 0), FERRY_OK);
    FY_CHECK_EQ(gt_deregister(A, FERRY_MEM_VRAM, d, 1 << 20, 0), FERRY_OK);
    gt_free(0, d);
}

/* Every GPU's memory under its own index; a sub-range of an allocation
 * (a caching allocator's block) too. */
static void test_each_gpu(void)
{
    for (int g = 0; g < GT.ndev; g++) {
        uint8_t *d = gt_alloc(g, 4 << 20);
        FY_CHECK_EQ(gt_register(A, FERRY_MEM_VRAM, d + 4096, 1 << 20, (uint64_t)g), FERRY_OK);
        FY_CHECK_EQ(gt_deregister(A, FERRY_MEM_VRAM, d + 4096, 1 << 20, (uint64_t)g), FERRY_OK);
        gt_free(g, d);
    }
}

/* A KV cache as a strided list: thousands of blocks, one allocation. */
static void test_strided_blocks(void)
{
    void *d = gt_alloc(0, 16 << 20);
    ferry_dlist *l;
    FY_REQUIRE(ferry_dlist_create_strided(FERRY_MEM_VRAM, (uintptr_t)d, 8192, 2048, 4096, 0, &l) ==
               FERRY_OK);
    FY_CHECK_EQ(ferry_register(A, l, NULL), FERRY_OK);
    FY_CHECK_EQ(ferry_deregister(A, l, NULL), FERRY_OK);
    ferry_dlist_destroy(l);
    gt_free(0, d);
}

/* ---- the CUDA backend's registration ---- */

static void test_cuda_params_refused(void)
{
    static const ferry_param bad[][1] = {
        {{"mode", "fast"}},      {{"streams", "0"}}, {{"streams", "17"}}, {{"chunk", "17"}},
        {{"ce_threshold", "x"}}, {{"batch", "yes"}}, {{"stream", "zz"}},  {{"chunk", "32M"}},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ferry_status rc;
        ferry_agent *a = agent_with("cuda-params", "CUDA", bad[i], 1, &rc);
        FY_REQUIRE(a);
        if (rc != FERRY_ERR_INVALID_PARAM)
            printf("# param %s=%s accepted\n", bad[i][0].key, bad[i][0].value);
        FY_CHECK_EQ(rc, FERRY_ERR_INVALID_PARAM);
        ferry_agent_destroy(a);
    }
}

static int mem_type_of(const void *p)
{
    fy_gpu_ptr info;
    if (fy_gpu_ptr_query(GT.cu, (uintptr_t)p, 0, &info, NULL) != FERRY_OK)
        return -1;
    return info.mem_type;
}

/* DRAM is pinned while registered with CUDA, and only then. */
static void test_cuda_pins_dram(void)
{
    ferry_status rc = FERRY_ERR_UNKNOWN;
    ferry_agent *a = agent_with("cuda-pin", "CUDA", NULL, 0, &rc);
    FY_REQUIRE(a && rc == FERRY_OK);
    size_t len = 1 << 20;
    uint8_t *buf = tu_alloc(len);
    /* With HMM a driver may call pageable memory "host" too: exact values
     * are checked against the mock only. */
    int unpinned = GT.mock ? 0 : mem_type_of(buf);
    FY_CHECK_EQ(mem_type_of(buf), unpinned);
    FY_CHECK_EQ(gt_register(a, FERRY_MEM_DRAM, buf, len, 0), FERRY_OK);
    FY_CHECK_EQ(mem_type_of(buf), FY_CU_MEMORYTYPE_HOST);
    FY_CHECK_EQ(gt_deregister(a, FERRY_MEM_DRAM, buf, len, 0), FERRY_OK);
    FY_CHECK_EQ(mem_type_of(buf), unpinned);
    /* Memory the application pinned itself stays pinned. */
    void *pinned = gt_host_alloc(len);
    FY_CHECK_EQ(gt_register(a, FERRY_MEM_DRAM, pinned, len, 0), FERRY_OK);
    FY_CHECK_EQ(gt_deregister(a, FERRY_MEM_DRAM, pinned, len, 0), FERRY_OK);
    FY_CHECK_EQ(mem_type_of(pinned), FY_CU_MEMORYTYPE_HOST);
    ferry_agent_destroy(a);
    GT.cu->MemFreeHost(pinned);
    free(buf);
}

static void test_cuda_vram_checks(void)
{
    ferry_status rc = FERRY_ERR_UNKNOWN;
    ferry_agent *a = agent_with("cuda-vram", "CUDA", NULL, 0, &rc);
    FY_REQUIRE(a && rc == FERRY_OK);
    uint8_t *host = malloc(4096);
    void *d = gt_alloc(0, 1 << 20);
    FY_CHECK_EQ(gt_register(a, FERRY_MEM_VRAM, host, 4096, 0), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(gt_register(a, FERRY_MEM_VRAM, d, 1 << 20, 7), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(gt_register(a, FERRY_MEM_VRAM, d, 1 << 20, 0), FERRY_OK);
    void *blob = NULL;
    size_t len = 0;
    FY_CHECK_EQ(ferry_md_get_local(a, &blob, &len), FERRY_OK);
    FY_CHECK(len > 120); /* the region's key is in it */
    ferry_free(blob);
    FY_CHECK_EQ(gt_deregister(a, FERRY_MEM_VRAM, d, 1 << 20, 0), FERRY_OK);
    ferry_agent_destroy(a);
    gt_free(0, d);
    free(host);
}

/* The caller's context is left as it was by every call. */
static void test_context_untouched(void)
{
    ferry_status rc = FERRY_ERR_UNKNOWN;
    ferry_agent *a = agent_with("cuda-ctx", "CUDA", NULL, 0, &rc);
    FY_REQUIRE(a && rc == FERRY_OK);
    void *d = gt_alloc(0, 1 << 20);
    FY_CHECK_EQ(gt_register(a, FERRY_MEM_VRAM, d, 1 << 20, 0), FERRY_OK);
    ferry_agent_destroy(a);
    fy_cu_context cur = NULL;
    FY_CHECK_EQ(GT.cu->CtxPopCurrent(&cur), FY_CUDA_SUCCESS);
    FY_CHECK(cur == GT.ctx[0]);
    GT.cu->CtxPushCurrent(GT.ctx[0]);
    gt_free(0, d);
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "nodriver"))
        return run_nodriver();
    gt_init_or_skip();
    ferry_status rc = FERRY_ERR_UNKNOWN;
    A = agent_with("vsink", "VSINK", NULL, 0, &rc);
    if (!A || rc != FERRY_OK) {
        printf("Bail out! no VSINK backend (FERRY_PLUGIN_DIR?): %s\n", ferry_strerror(rc));
        return 1;
    }
    FY_RUN(test_host_memory_refused);
    FY_RUN(test_wrong_gpu_refused);
    FY_RUN(test_each_gpu);
    FY_RUN(test_strided_blocks);
    FY_RUN(test_cuda_params_refused);
    FY_RUN(test_cuda_pins_dram);
    FY_RUN(test_cuda_vram_checks);
    FY_RUN(test_context_untouched);
    ferry_agent_destroy(A);
    return fy_test_done();
}
