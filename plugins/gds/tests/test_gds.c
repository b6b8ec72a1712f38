/* SPDX-License-Identifier: Apache-2.0 */
/* The GDS and GDS_MT backends through the agent API, as NIXL's GDS users
 * drive them: memory and files registered, READ/WRITE requests to the
 * agent's own name.
 *
 * Usage: test_gds nolib          libcufile absent (FERRY_CUFILE_LIB names no
 *                                library): both names fail cleanly;
 *        test_gds refused        cuFile refuses the file (the mock's
 *                                FY_MOCK_CUFILE_REGISTER_ERROR=5027):
 *                                registration is NOT_SUPPORTED with the reason
 *                                where GDS is the only backend, and with POSIX
 *                                beside it POSIX holds the file;
 *        test_gds io             round trips of DRAM and (with a CUDA driver)
 *                                VRAM, random layouts, ENOSPC, read-only file.
 *                                Where cuFile cannot register files here (a
 *                                real host without GDS support), the round
 *                                trips report that reason and skip.
 * "io" and "refused" exit 77 where cuFile does not open at all. */
#include <ferry/ferry.h>

#include "gpu_test.h"
#include "harness.h"
#include "px_testfs.h"

#define GD_NAME "gds-test"

static const char *g_backend = "GDS";
static bool g_vram; /* a CUDA driver: VRAM runs too */

typedef tfs_agent gd;

static ferry_status gd_open(gd *g, const ferry_param *params, size_t n)
{
    return tfs_open(g, GD_NAME, false, g_backend, params, n);
}

static ferry_status gd_reg_file(gd *g, int fd, uint64_t len, const char *path)
{
    return tfs_reg_file(g->ag, GD_NAME, fd, len, path);
}

static ferry_status gd_run(gd *g, ferry_xfer_op op, const ferry_dlist *l, const ferry_dlist *r,
                           ferry_xfer **out)
{
    return tfs_run(g->ag, GD_NAME, op, l, r, out);
}

/* Memory of the type: VRAM on GPU 0, or host memory. */
static void *gd_alloc(ferry_mem_type t, size_t len)
{
    return t == FERRY_MEM_VRAM ? gt_alloc(0, len) : px_alloc(len);
}

static void gd_free(ferry_mem_type t, void *p)
{
    if (t == FERRY_MEM_VRAM)
        gt_free(0, p);
    else
        free(p);
}

static bool gd_same(const gt_layout *lo, const uint8_t *a, const uint8_t *b, bool file_side)
{
    for (size_t i = 0; i < lo->n; i++)
        if (memcmp(a + lo->soff[i], b + (file_side ? lo->doff[i] : lo->soff[i]), lo->len[i]))
            return false;
    return true;
}

/* WRITE random pieces of memory to the file, check it with pread, READ
 * them back into other memory, check that. */
static void round_trip(ferry_mem_type t)
{
    gd g;
    gt_layout lo;
    char path[128];
    if (t == FERRY_MEM_VRAM && !g_vram)
        FY_SKIP("no CUDA driver here");
    FY_REQUIRE(gd_open(&g, NULL, 0) == FERRY_OK);
    gt_layout_make(&lo, 200, 200 * KB, 1, tu_seed() + t);
    int fd = open_file("rt", false, lo.dsize, path, sizeof(path));
    uint8_t *src = gd_alloc(t, lo.ssize), *dst = gd_alloc(t, lo.ssize);
    gt_fill(src, lo.ssize, tu_seed());
    FY_REQUIRE(fd >= 0);
    ferry_status reg = gd_reg_file(&g, fd, lo.dsize, path);
    if (reg == FERRY_ERR_NOT_SUPPORTED) {
        printf("# %s\n", ferry_last_error());
        FY_CHECK(strstr(ferry_last_error(), "cuFileHandleRegister") != NULL);
        fy_t_skip_reason = "cuFile cannot register files here (reason above)";
    } else {
        FY_REQUIRE(reg == FERRY_OK);
        FY_REQUIRE(gt_register(g.ag, t, src, lo.ssize, 0) == FERRY_OK &&
                   gt_register(g.ag, t, dst, lo.ssize, 0) == FERRY_OK);
        ferry_dlist *ls = gt_list(t, &lo, false, src, 0), *ld = gt_list(t, &lo, false, dst, 0);
        ferry_dlist *rf = gt_list(FERRY_MEM_FILE, &lo, true, NULL, (uint64_t)fd);
        FY_REQUIRE(ls && ld && rf);
        FY_CHECK_EQ(gd_run(&g, FERRY_OP_WRITE, ls, rf, NULL), FERRY_OK);
        uint8_t *want = gt_read(src, lo.ssize), *file = slurp(path, lo.dsize);
        FY_CHECK(file && gd_same(&lo, want, file, true));
        FY_CHECK_EQ(gd_run(&g, FERRY_OP_READ, ld, rf, NULL), FERRY_OK);
        uint8_t *got = gt_read(dst, lo.ssize);
        FY_CHECK(gd_same(&lo, want, got, false));
        printf("# %s %s: %zu pieces\n", g_backend, t == FERRY_MEM_VRAM ? "VRAM" : "DRAM", lo.n);
        ferry_dlist_destroy(ls);
        ferry_dlist_destroy(ld);
        ferry_dlist_destroy(rf);
        free(want);
        free(file);
        free(got);
    }
    ferry_agent_destroy(g.ag);
    close(fd);
    unlink(path);
    gd_free(t, src);
    gd_free(t, dst);
    gt_layout_free(&lo);
}

static void test_round_trip_dram(void)
{
    round_trip(FERRY_MEM_DRAM);
}

static void test_round_trip_vram(void)
{
    round_trip(FERRY_MEM_VRAM);
}

/* One WRITE of len bytes of host memory to fd at 0: its status, and the
 * request's detail copied into why. */
static ferry_status gd_write_one(gd *g, int fd, const char *path, size_t len, char *why, size_t cap)
{
    uint8_t *buf = px_alloc(len);
    ferry_xfer *x = NULL;
    ferry_status rc = gd_reg_file(g, fd, len, path);
    if (rc == FERRY_OK)
        rc = tu_register(g->ag, buf, len);
    ferry_dlist *l = gt_list1(FERRY_MEM_DRAM, buf, len, 0);
    ferry_dlist *r = gt_list1(FERRY_MEM_FILE, NULL, len, (uint64_t)fd);
    if (rc == FERRY_OK)
        rc = l && r ? gd_run(g, FERRY_OP_WRITE, l, r, &x) : FERRY_ERR_NO_MEMORY;
    snprintf(why, cap, "%s", x ? ferry_xfer_error(x) : ferry_last_error());
    ferry_xfer_release(x);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    free(buf);
    return rc;
}

/* 16 MiB into a file system of a few MiB: FERRY_ERR_IO, the errno named. */
static void test_enospc(void)
{
    smallfs fs = {0};
    gd g;
    char path[160], why[400];
    FY_REQUIRE(smallfs_open(&fs));
    int fd = smallfs_file(&fs, path, sizeof(path));
    FY_REQUIRE(fd >= 0 && gd_open(&g, NULL, 0) == FERRY_OK);
    ferry_status rc = gd_write_one(&g, fd, path, 16 * MB, why, sizeof(why));
    printf("# %s\n", why);
    if (rc == FERRY_ERR_NOT_SUPPORTED)
        fy_t_skip_reason = "cuFile cannot register files here (reason above)";
    else
        FY_CHECK(rc == FERRY_ERR_IO && strstr(why, smallfs_errno(&fs)) != NULL);
    ferry_agent_destroy(g.ag);
    close(fd);
    unlink(path);
    smallfs_close(&fs);
}

/* A file opened read-only: a WRITE fails with EBADF in the detail. */
static void test_read_only_target(void)
{
    gd g;
    char path[128], why[400];
    int wfd = open_file("ro", false, MB, path, sizeof(path)), fd = open(path, O_RDONLY);
    FY_REQUIRE(wfd >= 0 && fd >= 0 && gd_open(&g, NULL, 0) == FERRY_OK);
    ferry_status rc = gd_write_one(&g, fd, path, MB, why, sizeof(why));
    printf("# %s\n", why);
    if (rc == FERRY_ERR_NOT_SUPPORTED)
        fy_t_skip_reason = "cuFile cannot register files here (reason above)";
    else
        FY_CHECK(rc == FERRY_ERR_IO && strstr(why, "EBADF") != NULL);
    ferry_agent_destroy(g.ag);
    close(fd);
    close(wfd);
    unlink(path);
}

static void test_params(void)
{
    static const ferry_param bad[] = {{"thread_count", "0"},     {"thread_count", "x"},
                                      {"mode", "turbo"},         {"batch_limit", "0"},
                                      {"max_request_size", "1"}, {"no_such_param", "1"}};
    static const ferry_param nixl[] = {{"mode", "batch"},
                                       {"batch_pool_size", "32"},
                                       {"batch_limit", "256"},
                                       {"thread_count", "8"}};
    gd g;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        FY_CHECK_EQ(gd_open(&g, &bad[i], 1), FERRY_ERR_INVALID_PARAM);
        FY_CHECK(strstr(ferry_last_error(), bad[i].key) != NULL);
    }
    FY_REQUIRE(gd_open(&g, nixl, 4) == FERRY_OK);
    ferry_agent_destroy(g.ag);
}

/* A READ of 8 MiB in 4 KiB pieces, a few I/Os in flight (2 batches of
 * 4, or 2 workers), released right after the post: once release returns,
 * nothing writes the memory. */
static void test_release_in_flight(void)
{
    static const ferry_param few[] = {
        {"batch_pool_size", "2"}, {"batch_limit", "4"}, {"thread_count", "2"}};
    gd g;
    char path[128];
    const size_t n = 2048, each = 4 * KB, size = n * each;
    int fd = open_file("inflight", false, size, path, sizeof(path));
    uint8_t *buf = px_alloc(size);
    FY_REQUIRE(fd >= 0 && buf && gd_open(&g, few, 3) == FERRY_OK);
    if (gd_reg_file(&g, fd, size, path) == FERRY_ERR_NOT_SUPPORTED)
        fy_t_skip_reason = "cuFile cannot register files here";
    FY_REQUIRE(fy_t_skip_reason || tu_register(g.ag, buf, size) == FERRY_OK);
    gt_layout lo = {.n = 0};
    gt_layout_make(&lo, n, each, 4096, 9);
    for (size_t i = 0; i < n && !fy_t_skip_reason; i++)
        lo.soff[i] = lo.doff[i] = i * each, lo.len[i] = each;
    ferry_dlist *l = gt_list(FERRY_MEM_DRAM, &lo, false, buf, 0);
    ferry_dlist *r = gt_list(FERRY_MEM_FILE, &lo, true, NULL, (uint64_t)fd);
    ferry_xfer_opts opts;
    ferry_xfer_opts_init(&opts);
    opts.skip_merge = true;
    for (int round = 0; round < 3 && !fy_t_skip_reason; round++) {
        ferry_xfer *x;
        FY_REQUIRE(ferry_xfer_create(g.ag, FERRY_OP_READ, l, r, GD_NAME, &opts, &x) == FERRY_OK);
        FY_CHECK_EQ(ferry_xfer_post(x), FERRY_IN_PROGRESS);
        FY_CHECK_EQ(ferry_xfer_release(x), FERRY_OK);
        memset(buf, 0xa5, size);
        tu_sleep_us(20000);
        FY_CHECK(buf[0] == 0xa5 && !memcmp(buf, buf + 1, size - 1));
    }
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    gt_layout_free(&lo);
    ferry_agent_destroy(g.ag);
    close(fd);
    unlink(path);
    free(buf);
}

/* cuFile refuses to register the file: NOT_SUPPORTED, cuFile's status in
 * the detail; the backend stays usable. */
static void test_register_refused(void)
{
    gd g;
    char path[128];
    int fd = open_file("refused", false, MB, path, sizeof(path));
    FY_REQUIRE(fd >= 0 && gd_open(&g, NULL, 0) == FERRY_OK);
    FY_CHECK_EQ(gd_reg_file(&g, fd, MB, path), FERRY_ERR_NOT_SUPPORTED);
    printf("# %s\n", ferry_last_error());
    FY_CHECK(strstr(ferry_last_error(), "CU_FILE_HANDLE_NOT_REGISTERED (5027)") != NULL);
    ferry_agent_destroy(g.ag);
    close(fd);
    unlink(path);
}

/* GDS first, then POSIX, nothing named at registration: GDS is passed
 * over for the file cuFile refuses, POSIX holds it, and a request between
 * host memory and the file goes through POSIX. */
static void test_refused_falls_to_posix(void)
{
    gd g;
    ferry_backend *posix;
    ferry_xfer *x = NULL;
    char path[128];
    uint8_t *buf = px_alloc(MB), *back = px_alloc(MB);
    int fd = open_file("fallback", false, MB, path, sizeof(path));
    FY_REQUIRE(buf && back && fd >= 0 && gd_open(&g, NULL, 0) == FERRY_OK);
    if (ferry_backend_create(g.ag, "POSIX", NULL, 0, &posix) != FERRY_OK) {
        ferry_agent_destroy(g.ag);
        FY_SKIP("no POSIX plugin");
    }
    tu_fill(buf, MB, 11);
    FY_CHECK_EQ(gd_reg_file(&g, fd, MB, path), FERRY_OK);
    FY_REQUIRE(tu_register(g.ag, buf, MB) == FERRY_OK && tu_register(g.ag, back, MB) == FERRY_OK);
    ferry_dlist *l = gt_list1(FERRY_MEM_DRAM, buf, MB, 0),
                *lb = gt_list1(FERRY_MEM_DRAM, back, MB, 0);
    ferry_dlist *r = gt_list1(FERRY_MEM_FILE, NULL, MB, (uint64_t)fd);
    FY_CHECK_EQ(gd_run(&g, FERRY_OP_WRITE, l, r, &x), FERRY_OK);
    FY_CHECK(x && !strcmp(ferry_backend_name(ferry_xfer_backend(x)), "POSIX"));
    ferry_xfer_release(x);
    FY_CHECK_EQ(gd_run(&g, FERRY_OP_READ, lb, r, NULL), FERRY_OK);
    FY_CHECK(!memcmp(buf, back, MB));
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(lb);
    ferry_dlist_destroy(r);
    ferry_agent_destroy(g.ag);
    close(fd);
    unlink(path);
    free(buf);
    free(back);
}

/* No libcufile: both names fail with NOT_SUPPORTED and say why. */
static void test_no_library(void)
{
    static const char *names[] = {"GDS", "GDS_MT"};
    gd g;
    for (size_t i = 0; i < 2; i++) {
        g_backend = names[i];
        FY_CHECK_EQ(gd_open(&g, NULL, 0), FERRY_ERR_NOT_SUPPORTED);
        FY_CHECK(strstr(ferry_last_error(), "no cuFile library") != NULL);
        printf("# %s: %s\n", names[i], ferry_last_error());
    }
}

/* cuFile opens, or the program skips (exit 77) saying why. */
static void gd_need_cufile(void)
{
    gd g;
    if (gd_open(&g, NULL, 0) != FERRY_OK) {
        char reason[600];
        snprintf(reason, sizeof(reason), "cuFile does not open here: %s", ferry_last_error());
        fy_test_skip_all(reason);
    }
    ferry_agent_destroy(g.ag);
}

static void run_io(void)
{
    fy_gpu_why why;
    const fy_cuda *cu;
    if ((g_vram = fy_cuda_get(&cu, &why) == FERRY_OK))
        gt_init_or_skip();
    const char *names[] = {"GDS", "GDS_MT"};
    for (size_t i = 0; i < 2; i++) {
        g_backend = names[i];
        printf("# backend %s\n", g_backend);
        FY_RUN(test_round_trip_dram);
        FY_RUN(test_round_trip_vram);
        FY_RUN(test_release_in_flight);
    }
    g_backend = "GDS";
    FY_RUN(test_params);
    FY_RUN(test_read_only_target);
    FY_RUN(test_enospc);
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "io";
    snprintf(g_dir, sizeof(g_dir), "/tmp/ferry-gds-XXXXXX");
    if (!mkdtemp(g_dir))
        fy_test_skip_all("cannot make a temp dir under /tmp");
    if (!strcmp(what, "nolib")) {
        FY_RUN(test_no_library);
    } else {
        gd_need_cufile();
        if (!strcmp(what, "refused")) {
            FY_RUN(test_register_refused);
            FY_RUN(test_refused_falls_to_posix);
        } else
            run_io();
    }
    rmdir(g_dir);
    return fy_test_done();
}
