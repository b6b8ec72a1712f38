/* SPDX-License-Identifier: Apache-2.0 */
/* GPU memory (VRAM) to and from files through the POSIX backend's staged
 * path (pinned bounce buffers, GPU copies pipelined with file I/O), as
 * storage users drive it: VRAM and FILE registered, READ/WRITE requests
 * to the agent's own name.
 *
 * Runs against the real CUDA driver, or the mock driver when
 * FERRY_CUDA_LIB points at it; without either it exits 77. Small bounce
 * buffers (64 KiB, 4 per GPU) make every descriptor of more than 64 KiB
 * several pieces and keep the buffers busy, so reuse, ordering and
 * cancellation are exercised. Random layouts come from FY_SEED when set.
 *
 * Usage: test_px_vram [engine]   (default: auto) */
#include <ferry/ferry.h>

#include "gpu_test.h"
#include "harness.h"
#include "px_testfs.h"

#define VX_NAME "vx-test"

static const char *g_engine = "auto";
static bool g_direct_ok;

typedef tfs_agent vx;

static ferry_status vx_open(vx *v, bool thread)
{
    ferry_param params[] = {{"engine", g_engine},
                            {"queue_depth", "16"},
                            {"bounce_size", "65536"},
                            {"bounce_buffers", "4"}};
    return tfs_open(v, VX_NAME, thread, "POSIX", params, 4);
}

static ferry_status vx_reg_file(vx *v, int fd, uint64_t len, const char *path)
{
    return tfs_reg_file(v->ag, VX_NAME, fd, len, path);
}

static ferry_status vx_run(vx *v, ferry_xfer_op op, const ferry_dlist *l, const ferry_dlist *r,
                           ferry_xfer **out)
{
    return tfs_run(v->ag, VX_NAME, op, l, r, out);
}

/* One request of one descriptor: VRAM [vram, +len) and the file at off. */
static ferry_status vx_one(vx *v, ferry_xfer_op op, void *vram, uint64_t off, uint64_t len, int fd,
                           ferry_xfer **out)
{
    ferry_clear_error();
    ferry_dlist *l = gt_list1(FERRY_MEM_VRAM, vram, len, 0);
    ferry_dlist *r = gt_list1(FERRY_MEM_FILE, (void *)(uintptr_t)off, len, (uint64_t)fd);
    ferry_status rc = l && r ? vx_run(v, op, l, r, out) : FERRY_ERR_NO_MEMORY;
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    return rc;
}

/* Piece i of the layout holds the same bytes at a+soff[i] and b+off[i]. */
static bool vx_same(const gt_layout *lo, const uint8_t *a, const uint8_t *b, bool file_side)
{
    for (size_t i = 0; i < lo->n; i++)
        if (memcmp(a + lo->soff[i], b + (file_side ? lo->doff[i] : lo->soff[i]), lo->len[i]))
            return false;
    return true;
}

/* Random pieces: lengths up to 300 KiB (several bounce buffers), file
 * offsets and lengths of the O_DIRECT unit when direct, GPU offsets of
 * any byte either way. */
static void vx_layout(gt_layout *lo, bool direct, uint64_t seed)
{
    gt_layout_make(lo, 120, 300 * KB, direct ? 4096 : 1, seed);
    tu_rng rng = tu_rng_seed(seed + 1);
    lo->ssize = gt_place(lo->soff, lo->len, lo->n, &rng, 1);
    lo->dsize = (lo->dsize + 4095) / 4096 * 4096;
}

/* WRITE the pieces from VRAM to the file, check the file with pread,
 * READ them back into other VRAM, check that. */
static void round_trip(bool direct, bool thread)
{
    vx v;
    gt_layout lo;
    char path[128];
    if (direct && !g_direct_ok)
        FY_SKIP("the temp dir's file system refuses O_DIRECT");
    FY_REQUIRE(vx_open(&v, thread) == FERRY_OK);
    vx_layout(&lo, direct, tu_seed() + direct + 2 * thread);
    int fd = open_file("rt", direct, lo.dsize, path, sizeof(path));
    void *src = gt_alloc(0, lo.ssize), *dst = gt_alloc(0, lo.ssize);
    gt_fill(src, lo.ssize, tu_seed());
    gt_fill(dst, lo.ssize, 0);
    FY_REQUIRE(fd >= 0 && vx_reg_file(&v, fd, lo.dsize, path) == FERRY_OK);
    FY_REQUIRE(gt_register(v.ag, FERRY_MEM_VRAM, src, lo.ssize, 0) == FERRY_OK &&
               gt_register(v.ag, FERRY_MEM_VRAM, dst, lo.ssize, 0) == FERRY_OK);
    ferry_dlist *ls = gt_list(FERRY_MEM_VRAM, &lo, false, src, 0);
    ferry_dlist *ld = gt_list(FERRY_MEM_VRAM, &lo, false, dst, 0);
    ferry_dlist *rf = gt_list(FERRY_MEM_FILE, &lo, true, NULL, (uint64_t)fd);
    FY_REQUIRE(ls && ld && rf);
    FY_CHECK_EQ(vx_run(&v, FERRY_OP_WRITE, ls, rf, NULL), FERRY_OK);
    uint8_t *want = gt_read(src, lo.ssize), *file = slurp(path, lo.dsize);
    FY_CHECK(file && vx_same(&lo, want, file, true));
    FY_CHECK_EQ(vx_run(&v, FERRY_OP_READ, ld, rf, NULL), FERRY_OK);
    uint8_t *got = gt_read(dst, lo.ssize);
    FY_CHECK(vx_same(&lo, want, got, false));
    printf("# %s %s%s: %zu pieces, %zu bytes of GPU memory\n", g_engine,
           direct ? "O_DIRECT" : "buffered", thread ? ", progress thread" : "", lo.n, lo.ssize);
    ferry_dlist_destroy(ls);
    ferry_dlist_destroy(ld);
    ferry_dlist_destroy(rf);
    ferry_agent_destroy(v.ag);
    close(fd);
    unlink(path);
    free(want);
    free(file);
    free(got);
    gt_free(0, src);
    gt_free(0, dst);
    gt_layout_free(&lo);
}

static void test_round_trip_buffered(void)
{
    round_trip(false, false);
}

static void test_round_trip_direct(void)
{
    round_trip(true, false);
}

static void test_round_trip_progress_thread(void)
{
    round_trip(g_direct_ok, true);
}

/* A WRITE of 16 MiB of GPU memory into a file system of a few MiB fails
 * with the errno (ENOSPC, or EFBIG under RLIMIT_FSIZE) in the detail. */
static void test_enospc(void)
{
    smallfs fs = {0};
    vx v;
    ferry_xfer *x = NULL;
    char path[160];
    const uint64_t size = 16 * MB;
    FY_REQUIRE(smallfs_open(&fs));
    int fd = smallfs_file(&fs, path, sizeof(path));
    void *vram = gt_alloc(0, size);
    gt_fill(vram, size, 3);
    FY_REQUIRE(fd >= 0 && vx_open(&v, false) == FERRY_OK);
    FY_REQUIRE(gt_register(v.ag, FERRY_MEM_VRAM, vram, size, 0) == FERRY_OK);
    FY_REQUIRE(vx_reg_file(&v, fd, size, path) == FERRY_OK);
    FY_CHECK_EQ(vx_one(&v, FERRY_OP_WRITE, vram, 0, size, fd, &x), FERRY_ERR_IO);
    FY_CHECK(x && strstr(ferry_xfer_error(x), smallfs_errno(&fs)) != NULL);
    if (x)
        printf("# %s\n", ferry_xfer_error(x));
    ferry_xfer_release(x);
    ferry_agent_destroy(v.ag);
    close(fd);
    unlink(path);
    smallfs_close(&fs);
    gt_free(0, vram);
}

/* A file opened read-only: a WRITE fails with EBADF in the detail, and
 * a READ from it still works. */
static void test_read_only_target(void)
{
    vx v;
    ferry_xfer *x = NULL;
    char path[128];
    const uint64_t size = 1 * MB;
    int wfd = open_file("ro", false, size, path, sizeof(path));
    int fd = open(path, O_RDONLY);
    void *vram = gt_alloc(0, size);
    gt_fill(vram, size, 4);
    FY_REQUIRE(wfd >= 0 && fd >= 0 && vx_open(&v, false) == FERRY_OK);
    FY_REQUIRE(gt_register(v.ag, FERRY_MEM_VRAM, vram, size, 0) == FERRY_OK);
    FY_REQUIRE(vx_reg_file(&v, fd, size, path) == FERRY_OK);
    FY_CHECK_EQ(vx_one(&v, FERRY_OP_WRITE, vram, 0, size, fd, &x), FERRY_ERR_IO);
    FY_CHECK(x && strstr(ferry_xfer_error(x), "EBADF") != NULL);
    if (x)
        printf("# %s\n", ferry_xfer_error(x));
    ferry_xfer_release(x);
    FY_CHECK_EQ(vx_one(&v, FERRY_OP_READ, vram, 0, size, fd, NULL), FERRY_OK);
    uint8_t *got = gt_read(vram, size);
    FY_CHECK(got && got[0] == 0 && !memcmp(got, got + 1, size - 1)); /* the file's zeros */
    free(got);
    ferry_agent_destroy(v.ag);
    close(fd);
    close(wfd);
    unlink(path);
    gt_free(0, vram);
}

/* O_DIRECT: a file offset off the file's alignment is refused when the
 * request is made, naming it; a GPU address off any alignment is not. */
static void test_direct_misaligned(void)
{
    vx v;
    char path[128];
    if (!g_direct_ok)
        FY_SKIP("the temp dir's file system refuses O_DIRECT");
    const uint64_t size = 1 * MB;
    int fd = open_file("mis", true, size, path, sizeof(path));
    uint8_t *vram = gt_alloc(0, size);
    FY_REQUIRE(fd >= 0 && vx_open(&v, false) == FERRY_OK);
    FY_REQUIRE(gt_register(v.ag, FERRY_MEM_VRAM, vram, size, 0) == FERRY_OK);
    FY_REQUIRE(vx_reg_file(&v, fd, size, path) == FERRY_OK);
    FY_CHECK_EQ(vx_one(&v, FERRY_OP_WRITE, vram, 100, 4096, fd, NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK(strstr(ferry_last_error(), "file offset") != NULL);
    FY_CHECK_EQ(vx_one(&v, FERRY_OP_WRITE, vram + 7, 4096, 8192, fd, NULL), FERRY_OK);
    ferry_agent_destroy(v.ag);
    close(fd);
    unlink(path);
    gt_free(0, vram);
}

/* Bad staging params fail backend creation, naming the param. */
static void test_params(void)
{
    static const char *bad[][2] = {{"bounce_size", "1000"},
                                   {"bounce_size", "0"},
                                   {"bounce_buffers", "0"},
                                   {"bounce_buffers", "x"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ferry_agent *ag;
        ferry_backend *be;
        ferry_param p = {bad[i][0], bad[i][1]};
        ferry_agent_config cfg;
        ferry_agent_config_init(&cfg);
        cfg.name = VX_NAME;
        FY_REQUIRE(ferry_agent_create(&cfg, &ag) == FERRY_OK);
        ferry_clear_error();
        FY_CHECK_EQ(ferry_backend_create(ag, "POSIX", &p, 1, &be), FERRY_ERR_INVALID_PARAM);
        FY_CHECK(strstr(ferry_last_error(), bad[i][0]) != NULL);
        printf("# %s\n", ferry_last_error());
        ferry_agent_destroy(ag);
    }
}

/* GPU memory set to 0xa5, written without ferry (the mock's device memory
 * is host memory: written directly, so that a copy ferry left queued on
 * its stream would run at the next driver call and show). */
static void vx_poison(void *vram, size_t size)
{
    if (GT.mock) {
        memset(vram, 0xa5, size);
        return;
    }
    uint8_t *h = malloc(size);
    if (!h)
        gt_die("malloc", FY_CUDA_ERROR_OUT_OF_MEMORY);
    memset(h, 0xa5, size);
    gt_copy(vram, h, size);
    free(h);
}

/* A READ of 8 MiB in 4 KiB pieces into GPU memory, released right after
 * the post: once release returns, neither the disk nor a GPU copy may
 * write that memory. */
static void test_release_in_flight(void)
{
    vx v;
    char path[128];
    const size_t n = 2048, each = 4 * KB, size = n * each;
    int fd = open_file("inflight", g_direct_ok, size, path, sizeof(path));
    void *vram = gt_alloc(0, size);
    FY_REQUIRE(fd >= 0 && vx_open(&v, false) == FERRY_OK);
    FY_REQUIRE(gt_register(v.ag, FERRY_MEM_VRAM, vram, size, 0) == FERRY_OK);
    FY_REQUIRE(vx_reg_file(&v, fd, size, path) == FERRY_OK);
    gt_layout lo = {.n = n};
    gt_layout_make(&lo, n, each, 4096, 9);
    for (size_t i = 0; i < n; i++)
        lo.soff[i] = lo.doff[i] = i * each, lo.len[i] = each;
    ferry_dlist *l = gt_list(FERRY_MEM_VRAM, &lo, false, vram, 0);
    ferry_dlist *r = gt_list(FERRY_MEM_FILE, &lo, true, NULL, (uint64_t)fd);
    FY_REQUIRE(l && r);
    ferry_xfer_opts opts;
    ferry_xfer_opts_init(&opts);
    opts.skip_merge = true;
    int in_flight = 0;
    for (int round = 0; round < 5; round++) {
        ferry_xfer *x;
        FY_REQUIRE(ferry_xfer_create(v.ag, FERRY_OP_READ, l, r, VX_NAME, &opts, &x) == FERRY_OK);
        in_flight += ferry_xfer_post(x) == FERRY_IN_PROGRESS;
        FY_CHECK_EQ(ferry_xfer_release(x), FERRY_OK);
        vx_poison(vram, size);
        tu_sleep_us(20000);
        uint8_t *got = gt_read(vram, size);
        FY_CHECK(got[0] == 0xa5 && !memcmp(got, got + 1, size - 1));
        free(got);
    }
    printf("# %d of 5 releases were of a request in flight\n", in_flight);
    FY_CHECK(in_flight > 0);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    gt_layout_free(&lo);
    ferry_agent_destroy(v.ag);
    close(fd);
    unlink(path);
    gt_free(0, vram);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        g_engine = argv[1];
    gt_init_or_skip();
    snprintf(g_dir, sizeof(g_dir), "/tmp/ferry-pxvram-XXXXXX");
    if (!mkdtemp(g_dir))
        fy_test_skip_all("cannot make a temp dir under /tmp");
    g_direct_ok = probe_direct();
    FY_RUN(test_params);
    FY_RUN(test_round_trip_buffered);
    FY_RUN(test_round_trip_direct);
    FY_RUN(test_round_trip_progress_thread);
    FY_RUN(test_direct_misaligned);
    FY_RUN(test_read_only_target);
    FY_RUN(test_enospc);
    FY_RUN(test_release_in_flight);
    rmdir(g_dir);
    return fy_test_done();
}
