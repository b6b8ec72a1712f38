/* SPDX-License-Identifier: Apache-2.0 */
/* ferry_query_mem: registered ranges (covered, straddling, unregistered,
 * other device), per-backend answers (a region held by one backend only;
 * a type the backend does not accept), files (size, mode, mtime; missing,
 * empty and unusable paths), strided lists, the caller's struct size, bad
 * arguments, and outputs left alone on error. The second backend is the
 * TDRAM test plugin (tests/plugins), whose instance accepts DRAM only. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ferry/ferry.h>

#include "harness.h"
#include "testutil.h"

#define KB 1024u

typedef struct fixture {
    ferry_agent *agent;
    ferry_backend *local, *tdram; /* tdram NULL when the test plugin is absent */
    uint8_t *mem;
} fixture;

static ferry_status fx_open(fixture *fx)
{
    fx->tdram = NULL;
    fx->mem = tu_alloc(64 * KB);
    if (!fx->mem)
        return FERRY_ERR_NO_MEMORY;
    ferry_status rc = tu_agent_with("query", NULL, NULL, 0, &fx->agent, &fx->local);
    if (rc == FERRY_OK && ferry_backend_create(fx->agent, "TDRAM", NULL, 0, &fx->tdram) != FERRY_OK)
        fx->tdram = NULL;
    return rc;
}

static void fx_close(fixture *fx)
{
    ferry_agent_destroy(fx->agent);
    free(fx->mem);
}

/* Registers [off, off+len) of the arena with one backend (NULL: all). */
static ferry_status reg_with(fixture *fx, size_t off, size_t len, ferry_backend *be)
{
    ferry_dlist *l = tu_list1(fx->mem + off, len);
    ferry_backend_sel sel;
    ferry_backend_sel_init(&sel);
    sel.backends = &be;
    sel.num_backends = 1;
    ferry_status rc = l ? ferry_register(fx->agent, l, be ? &sel : NULL) : FERRY_ERR_NO_MEMORY;
    ferry_dlist_destroy(l);
    return rc;
}

static ferry_dlist *dram_list(fixture *fx, const size_t (*ranges)[2], size_t n, uint64_t dev)
{
    ferry_dlist *l = NULL;
    if (ferry_dlist_create(FERRY_MEM_DRAM, n, &l) != FERRY_OK)
        return NULL;
    for (size_t i = 0; i < n; i++)
        ferry_dlist_add(l, (uintptr_t)(fx->mem + ranges[i][0]), ranges[i][1], dev);
    return l;
}

static void infos_init(ferry_mem_info *infos, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ferry_mem_info_init(&infos[i]);
}

/* ---- DRAM ---- */

static void test_registered_ranges(void)
{
    fixture fx;
    FY_REQUIRE(fx_open(&fx) == FERRY_OK);
    FY_REQUIRE(reg_with(&fx, 4 * KB, 8 * KB, NULL) == FERRY_OK);
    /* inside, exact, straddling the end, before it, unregistered */
    const size_t r[][2] = {
        {5 * KB, 1 * KB}, {4 * KB, 8 * KB}, {11 * KB, 2 * KB}, {3 * KB, 2 * KB}, {32 * KB, 64}};
    ferry_dlist *l = dram_list(&fx, r, 5, 0);
    ferry_mem_info info[5];
    infos_init(info, 5);
    FY_CHECK_EQ(ferry_query_mem(fx.agent, l, NULL, info, 5), FERRY_OK);
    FY_CHECK(info[0].found && info[1].found);
    FY_CHECK(!info[2].found && !info[3].found && !info[4].found);
    FY_CHECK_EQ(info[0].region_addr, (uintptr_t)(fx.mem + 4 * KB));
    FY_CHECK_EQ(info[0].region_len, 8 * KB);
    FY_CHECK_EQ(info[0].dev_id, 0);
    FY_CHECK_EQ(info[4].region_addr, 0);
    /* The same query through the backend that holds the region. */
    infos_init(info, 5);
    FY_CHECK_EQ(ferry_query_mem(fx.agent, l, fx.local, info, 5), FERRY_OK);
    FY_CHECK(info[0].found && info[1].found && !info[2].found);
    ferry_dlist_destroy(l);
    /* Another dev_id is another address space. */
    l = dram_list(&fx, r, 1, 1);
    infos_init(info, 1);
    FY_CHECK_EQ(ferry_query_mem(fx.agent, l, NULL, info, 1), FERRY_OK);
    FY_CHECK(!info[0].found);
    ferry_dlist_destroy(l);
    /* Deregistered: gone. */
    FY_CHECK_EQ(tu_deregister(fx.agent, fx.mem + 4 * KB, 8 * KB), FERRY_OK);
    l = dram_list(&fx, r, 1, 0);
    infos_init(info, 1);
    FY_CHECK_EQ(ferry_query_mem(fx.agent, l, NULL, info, 1), FERRY_OK);
    FY_CHECK(!info[0].found);
    ferry_dlist_destroy(l);
    fx_close(&fx);
}

static void test_per_backend(void)
{
    fixture fx;
    FY_REQUIRE(fx_open(&fx) == FERRY_OK);
    if (!fx.tdram) {
        fx_close(&fx);
        FY_SKIP("TDRAM test plugin not found");
    }
    FY_REQUIRE(reg_with(&fx, 0, 4 * KB, fx.local) == FERRY_OK);
    FY_REQUIRE(reg_with(&fx, 8 * KB, 4 * KB, fx.tdram) == FERRY_OK);
    const size_t r[][2] = {{0, 4 * KB}, {8 * KB, 4 * KB}};
    ferry_dlist *l = dram_list(&fx, r, 2, 0);
    ferry_mem_info info[2];
    infos_init(info, 2);
    FY_CHECK_EQ(ferry_query_mem(fx.agent, l, fx.local, info, 2), FERRY_OK);
    FY_CHECK(info[0].found && !info[1].found);
    infos_init(info, 2);
    FY_CHECK_EQ(ferry_query_mem(fx.agent, l, fx.tdram, info, 2), FERRY_OK);
    FY_CHECK(!info[0].found && info[1].found);
    infos_init(info, 2);
    FY_CHECK_EQ(ferry_query_mem(fx.agent, l, NULL, info, 2), FERRY_OK);
    FY_CHECK(info[0].found && info[1].found);
    ferry_dlist_destroy(l);
    /* TDRAM's descriptor claims VRAM, its instance does not: NOT_SUPPORTED. */
    ferry_dlist *v = NULL;
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_VRAM, 1, &v) == FERRY_OK);
    ferry_dlist_add(v, 0x10000, 4096, 0);
    infos_init(info, 1);
    FY_CHECK_EQ(ferry_query_mem(fx.agent, v, fx.tdram, info, 1), FERRY_ERR_NOT_SUPPORTED);
    FY_CHECK_EQ(ferry_query_mem(fx.agent, v, fx.local, info, 1), FERRY_ERR_NOT_SUPPORTED);
    /* The agent itself answers VRAM: nothing registered there. */
    info[0].found = true;
    FY_CHECK_EQ(ferry_query_mem(fx.agent, v, NULL, info, 1), FERRY_OK);
    FY_CHECK(!info[0].found);
    ferry_dlist_destroy(v);
    fx_close(&fx);
}

static void test_strided(void)
{
    fixture fx;
    FY_REQUIRE(fx_open(&fx) == FERRY_OK);
    FY_REQUIRE(reg_with(&fx, 0, 16 * KB, NULL) == FERRY_OK);
    /* 8 blocks of 4 KiB: the first 4 inside the region, the rest outside. */
    ferry_dlist *l = NULL;
    FY_REQUIRE(ferry_dlist_create_strided(FERRY_MEM_DRAM, (uintptr_t)fx.mem, 4 * KB, 8, 4 * KB, 0,
                                          &l) == FERRY_OK);
    ferry_mem_info info[8];
    infos_init(info, 8);
    FY_CHECK_EQ(ferry_query_mem(fx.agent, l, NULL, info, 8), FERRY_OK);
    for (int i = 0; i < 8; i++)
        FY_CHECK_EQ(info[i].found, i < 4);
    ferry_dlist_destroy(l);
    fx_close(&fx);
}

/* ---- FILE ---- */

static ferry_dlist *file_list(const char *const *paths, size_t n)
{
    ferry_dlist *l = NULL;
    if (ferry_dlist_create(FERRY_MEM_FILE, n, &l) != FERRY_OK)
        return NULL;
    for (size_t i = 0; i < n; i++)
        ferry_dlist_add_meta(l, 0, 1, 0, paths[i], paths[i] ? strlen(paths[i]) : 0);
    return l;
}

static void test_files(void)
{
    char dir[] = "/tmp/ferry-query-XXXXXX", path[64], missing[80];
    FY_REQUIRE(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/kv.bin", dir);
    snprintf(missing, sizeof(missing), "%s/none", dir);
    FILE *f = fopen(path, "w");
    FY_REQUIRE(f);
    fwrite("0123456789", 1, 10, f);
    fclose(f);
    chmod(path, 0640);
    struct stat st;
    FY_REQUIRE(stat(path, &st) == 0);
    ferry_agent *agent;
    FY_REQUIRE(tu_agent("files", &agent) == FERRY_OK);
    const char *paths[] = {path, missing, NULL, dir};
    ferry_dlist *l = file_list(paths, 4);
    /* A path with a NUL inside is no file name. */
    ferry_dlist_add_meta(l, 0, 1, 0, "a\0b", 3);
    ferry_mem_info info[5];
    infos_init(info, 5);
    FY_CHECK_EQ(ferry_query_mem(agent, l, NULL, info, 5), FERRY_OK);
    FY_CHECK(info[0].found && !info[1].found && !info[2].found && info[3].found && !info[4].found);
    FY_CHECK_EQ(info[0].file_size, 10);
    FY_CHECK_EQ(info[0].file_mode, st.st_mode);
    FY_CHECK_EQ(info[0].file_mode & 0777, 0640);
    FY_CHECK_EQ(info[0].file_mtime, st.st_mtime);
    FY_CHECK(S_ISDIR(info[3].file_mode));
    /* LOCAL accepts DRAM only: it has nothing to say about files. */
    ferry_backend *local = NULL;
    FY_CHECK_EQ(ferry_backend_find(agent, "LOCAL", &local), FERRY_OK);
    info[0].file_size = 12345;
    FY_CHECK_EQ(ferry_query_mem(agent, l, local, info, 5), FERRY_ERR_NOT_SUPPORTED);
    FY_CHECK_EQ(info[0].file_size, 12345);
    ferry_dlist_destroy(l);
    ferry_agent_destroy(agent);
    unlink(path);
    rmdir(dir);
}

/* ---- arguments ---- */

static void test_bad_args(void)
{
    fixture fx, other;
    FY_REQUIRE(fx_open(&fx) == FERRY_OK);
    FY_REQUIRE(fx_open(&other) == FERRY_OK);
    FY_REQUIRE(reg_with(&fx, 0, 4 * KB, NULL) == FERRY_OK);
    const size_t r[][2] = {{0, 4 * KB}, {0, 1 * KB}};
    ferry_dlist *l = dram_list(&fx, r, 2, 0);
    ferry_mem_info info[2];
    infos_init(info, 2);
    FY_CHECK_EQ(ferry_query_mem(NULL, l, NULL, info, 2), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_query_mem(fx.agent, NULL, NULL, info, 2), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_query_mem(fx.agent, l, NULL, NULL, 2), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_query_mem(fx.agent, l, NULL, info, 1), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_query_mem(fx.agent, l, NULL, info, 3), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_query_mem(fx.agent, l, other.local, info, 2), FERRY_ERR_INVALID_PARAM);
    info[0].size = sizeof(info[0]) - 1;
    FY_CHECK_EQ(ferry_query_mem(fx.agent, l, NULL, info, 2), FERRY_ERR_INVALID_PARAM);
    /* Nothing was written by the failed calls. */
    FY_CHECK(!info[0].found && !info[1].found);
    FY_CHECK_EQ(info[0].size, sizeof(info[0]) - 1);
    /* BLOCK and OBJ: nothing ferry can look up. */
    for (int t = FERRY_MEM_BLOCK; t <= FERRY_MEM_OBJ; t++) {
        ferry_dlist *o = NULL;
        FY_REQUIRE(ferry_dlist_create((ferry_mem_type)t, 1, &o) == FERRY_OK);
        ferry_dlist_add(o, 0, 1, 0);
        infos_init(info, 1);
        FY_CHECK_EQ(ferry_query_mem(fx.agent, o, NULL, info, 1), FERRY_ERR_NOT_SUPPORTED);
        ferry_dlist_destroy(o);
    }
    /* An empty list is a valid, empty query. */
    ferry_dlist *e = NULL;
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_DRAM, 0, &e) == FERRY_OK);
    FY_CHECK_EQ(ferry_query_mem(fx.agent, e, NULL, NULL, 0), FERRY_OK);
    ferry_dlist_destroy(e);
    ferry_dlist_destroy(l);
    fx_close(&other);
    fx_close(&fx);
}

/* A caller built with a larger ferry_mem_info (a newer header's) gets its
 * entries at its own stride, its extra bytes untouched. */
static void test_larger_struct(void)
{
    typedef struct bigger {
        ferry_mem_info info;
        uint64_t later_field;
    } bigger;
    fixture fx;
    FY_REQUIRE(fx_open(&fx) == FERRY_OK);
    FY_REQUIRE(reg_with(&fx, 0, 4 * KB, NULL) == FERRY_OK);
    const size_t r[][2] = {{32 * KB, 64}, {0, 4 * KB}};
    ferry_dlist *l = dram_list(&fx, r, 2, 0);
    bigger b[2];
    memset(b, 0, sizeof(b));
    b[0].info.size = sizeof(bigger);
    b[0].later_field = b[1].later_field = 77;
    FY_CHECK_EQ(ferry_query_mem(fx.agent, l, NULL, &b[0].info, 2), FERRY_OK);
    FY_CHECK(!b[0].info.found && b[1].info.found);
    FY_CHECK_EQ(b[1].info.region_len, 4 * KB);
    FY_CHECK_EQ(b[1].info.size, sizeof(bigger));
    FY_CHECK_EQ(b[0].later_field, 77);
    FY_CHECK_EQ(b[1].later_field, 77);
    ferry_dlist_destroy(l);
    fx_close(&fx);
}

int main(void)
{
    FY_RUN(test_registered_ranges);
    FY_RUN(test_per_backend);
    FY_RUN(test_strided);
    FY_RUN(test_files);
    FY_RUN(test_bad_args);
    FY_RUN(test_larger_struct);
    return fy_test_done();
}
