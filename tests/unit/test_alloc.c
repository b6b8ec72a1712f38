/* SPDX-License-Identifier: Apache-2.0 */
/* ferry_mem_alloc / ferry_mem_free: argument checks, the backends that can
 * allocate (UCX) and those that cannot (LOCAL), registration inside an
 * allocation, freeing refused while registered, leftovers freed by
 * ferry_agent_destroy (the leak checkers see it), and a loopback WRITE
 * between two allocations. */
#include <stdlib.h>
#include <string.h>

#include "ferry/ferry.h"
#include "dlists.h"
#include "harness.h"

#define LEN (1u << 20)

static ferry_agent *new_agent(const char *backend, ferry_backend **be)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = "alloc-test";
    ferry_agent *a = NULL;
    if (ferry_agent_create(&cfg, &a) != FERRY_OK)
        return NULL;
    if (ferry_backend_create(a, backend, NULL, 0, be) != FERRY_OK) {
        ferry_agent_destroy(a);
        return NULL;
    }
    return a;
}

static void test_local_cannot_allocate(void)
{
    ferry_backend *be;
    ferry_agent *a = new_agent("LOCAL", &be);
    FY_REQUIRE(a);
    void *p = (void *)1;
    FY_CHECK_EQ(ferry_mem_alloc(a, NULL, FERRY_MEM_DRAM, LEN, 0, &p), FERRY_ERR_NOT_SUPPORTED);
    FY_CHECK_EQ(ferry_mem_alloc(a, be, FERRY_MEM_DRAM, LEN, 0, &p), FERRY_ERR_NOT_SUPPORTED);
    FY_CHECK(p == (void *)1); /* outputs only on success */
    FY_CHECK_EQ(ferry_mem_free(a, &p), FERRY_ERR_NOT_FOUND);
    ferry_agent_destroy(a);
}

static void test_bad_arguments(void)
{
    ferry_backend *be;
    ferry_agent *a = new_agent("LOCAL", &be);
    FY_REQUIRE(a);
    void *p;
    FY_CHECK_EQ(ferry_mem_alloc(NULL, NULL, FERRY_MEM_DRAM, LEN, 0, &p), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_mem_alloc(a, NULL, FERRY_MEM_DRAM, 0, 0, &p), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_mem_alloc(a, NULL, FERRY_MEM_DRAM, LEN, 0, NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_mem_alloc(a, NULL, (ferry_mem_type)99, LEN, 0, &p), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_mem_free(a, NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_mem_free(NULL, &p), FERRY_ERR_INVALID_PARAM);
    /* A backend of another agent. */
    ferry_backend *other_be;
    ferry_agent *other = new_agent("LOCAL", &other_be);
    FY_REQUIRE(other);
    FY_CHECK_EQ(ferry_mem_alloc(a, other_be, FERRY_MEM_DRAM, LEN, 0, &p), FERRY_ERR_INVALID_PARAM);
    ferry_agent_destroy(other);
    ferry_agent_destroy(a);
}

static void test_ucx_alloc_register_free(void)
{
    ferry_backend *be;
    ferry_agent *a = new_agent("UCX", &be);
    if (!a)
        FY_SKIP("no UCX backend here");
    void *p = NULL;
    FY_REQUIRE(ferry_mem_alloc(a, NULL, FERRY_MEM_DRAM, LEN, 0, &p) == FERRY_OK);
    FY_REQUIRE(p);
    memset(p, 0x5a, LEN); /* ours to write */
    FY_CHECK_EQ(ferry_mem_alloc(a, be, FERRY_MEM_VRAM, LEN, 0, &(void *){0}),
                FERRY_ERR_NOT_SUPPORTED);
    /* Two regions inside it; free refused until both are gone. */
    ferry_dlist *lo = fy_t_range_list((uintptr_t)p, LEN / 2),
                *hi = fy_t_range_list((uintptr_t)p + LEN / 2, LEN / 2);
    FY_REQUIRE(lo && hi);
    FY_CHECK_EQ(ferry_register(a, lo, NULL), FERRY_OK);
    FY_CHECK_EQ(ferry_register(a, hi, NULL), FERRY_OK);
    FY_CHECK_EQ(ferry_mem_free(a, p), FERRY_ERR_NOT_ALLOWED);
    FY_CHECK_EQ(ferry_mem_free(a, (char *)p + 64), FERRY_ERR_NOT_FOUND); /* not its start */
    FY_CHECK_EQ(ferry_deregister(a, lo, NULL), FERRY_OK);
    FY_CHECK_EQ(ferry_mem_free(a, p), FERRY_ERR_NOT_ALLOWED);
    FY_CHECK_EQ(ferry_deregister(a, hi, NULL), FERRY_OK);
    FY_CHECK_EQ(ferry_mem_free(a, p), FERRY_OK);
    FY_CHECK_EQ(ferry_mem_free(a, p), FERRY_ERR_NOT_FOUND);
    ferry_dlist_destroy(lo);
    ferry_dlist_destroy(hi);
    /* A leftover allocation, still registered, goes with the agent. */
    FY_CHECK_EQ(ferry_mem_alloc(a, be, FERRY_MEM_DRAM, LEN, 0, &p), FERRY_OK);
    ferry_dlist *all = fy_t_range_list((uintptr_t)p, LEN);
    FY_CHECK_EQ(ferry_register(a, all, NULL), FERRY_OK);
    ferry_dlist_destroy(all);
    ferry_agent_destroy(a);
}

/* Two allocations, one loopback WRITE between them, checked. */
static void test_ucx_loopback_write(void)
{
    ferry_backend *be;
    ferry_agent *a = new_agent("UCX", &be);
    if (!a)
        FY_SKIP("no UCX backend here");
    void *src = NULL, *dst = NULL;
    FY_REQUIRE(ferry_mem_alloc(a, be, FERRY_MEM_DRAM, LEN, 0, &src) == FERRY_OK);
    FY_REQUIRE(ferry_mem_alloc(a, be, FERRY_MEM_DRAM, LEN, 0, &dst) == FERRY_OK);
    for (size_t i = 0; i < LEN; i++)
        ((unsigned char *)src)[i] = (unsigned char)(i * 7 + 3);
    memset(dst, 0, LEN);
    ferry_dlist *s = fy_t_range_list((uintptr_t)src, LEN),
                *d = fy_t_range_list((uintptr_t)dst, LEN);
    FY_REQUIRE(s && d);
    FY_CHECK_EQ(ferry_register(a, s, NULL), FERRY_OK);
    FY_CHECK_EQ(ferry_register(a, d, NULL), FERRY_OK);
    void *blob;
    size_t blob_len;
    char peer[FERRY_NAME_MAX + 1];
    FY_REQUIRE(ferry_md_get_local(a, &blob, &blob_len) == FERRY_OK);
    FY_CHECK_EQ(ferry_md_load(a, blob, blob_len, peer, sizeof(peer)), FERRY_OK);
    ferry_free(blob);
    ferry_xfer *x = NULL;
    FY_REQUIRE(ferry_xfer_create(a, FERRY_OP_WRITE, s, d, peer, NULL, &x) == FERRY_OK);
    ferry_status rc = ferry_xfer_post(x);
    while (rc == FERRY_IN_PROGRESS) {
        ferry_agent_progress(a);
        rc = ferry_xfer_status(x);
    }
    FY_CHECK_EQ(rc, FERRY_OK);
    FY_CHECK(memcmp(src, dst, LEN) == 0);
    ferry_xfer_release(x);
    ferry_dlist_destroy(s);
    ferry_dlist_destroy(d);
    ferry_agent_destroy(a);
}

int main(void)
{
    FY_RUN(test_ucx_alloc_register_free);
    FY_RUN(test_ucx_loopback_write);
    FY_RUN(test_bad_arguments);
    FY_RUN(test_local_cannot_allocate);
    return fy_test_done();
}
