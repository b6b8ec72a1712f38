/* SPDX-License-Identifier: Apache-2.0 */
/* The POSIX backend through the agent API, as storage users drive it:
 * DRAM and FILE (or BLOCK) registered, the agent's own metadata loaded, and
 * READ/WRITE requests to itself by name.
 *
 * Everything lives in a temp dir under /tmp that the program removes. The
 * full-filesystem test needs a small file system: a loop-mounted 8 MiB ext4
 * image when mount works (root), else a 4 MiB tmpfs, else RLIMIT_FSIZE
 * (EFBIG); the test prints which. O_DIRECT tests skip where the temp dir's
 * file system refuses O_DIRECT. Random layouts come from FY_SEED when set.
 *
 * Usage: test_posix [common] [engine...]   (none: common uring aio) */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ferry/ferry.h>

#include "conformance/testutil.h"
#include "harness.h"
#include "px_testfs.h"

static const char *g_engine; /* the engine of the current pass */
static bool g_direct_ok;     /* the temp dir's file system takes O_DIRECT */
static const char *g_engines[4] = {"uring", "aio"};
static int g_num_engines = 2;

/* ---- an agent with a POSIX backend, talking to itself ---- */

typedef tfs_agent px;

static ferry_status px_open_with(px *p, bool thread, const ferry_param *params, size_t n)
{
    return tfs_open(p, "px-test", thread, "POSIX", params, n);
}

static ferry_status px_open_depth(px *p, const char *depth)
{
    ferry_param params[] = {{"engine", g_engine}, {"queue_depth", depth}};
    return px_open_with(p, false, params, 2);
}

static ferry_status px_open(px *p)
{
    return px_open_depth(p, "64");
}

/* Loads our own metadata again (as a new generation), after registering. */
static ferry_status px_publish(px *p)
{
    return tfs_publish(p->ag, "px-test");
}

/* Registers [0, len) of fd as FILE with its path as metadata. */
static ferry_status px_reg_file(px *p, int fd, uint64_t len, const char *path)
{
    return tfs_reg_file(p->ag, "px-test", fd, len, path);
}

static void px_close(px *p)
{
    ferry_agent_destroy(p->ag);
}

/* ---- random layouts: n pieces at random offsets in [0, size) ---- */

typedef struct layout {
    size_t n;
    uint64_t off[8192], len[8192];
} layout;

static layout g_lo;

/* Pieces in file order with random gaps; unit 1 (buffered) or the O_DIRECT
 * alignment. Stops early when the file is full. */
static void layout_make(layout *lo, size_t n, uint64_t max_len, uint64_t size, uint64_t unit,
                        uint64_t seed)
{
    tu_rng rng = tu_rng_seed(seed);
    uint64_t pos = 0;
    lo->n = 0;
    while (lo->n < n) {
        uint64_t gap = tu_rand_range(&rng, 0, 3) * unit, len = tu_rand_range(&rng, 1, max_len);
        len = (len + unit - 1) / unit * unit;
        if (pos + gap + len > size)
            break;
        lo->off[lo->n] = pos + gap;
        lo->len[lo->n++] = len;
        pos += gap + len;
    }
}

/* The DRAM side at the same offsets of buf, or the FILE side on fd. */
static ferry_dlist *layout_list(const layout *lo, const uint8_t *buf, int fd)
{
    ferry_dlist *l;
    if (ferry_dlist_create(buf ? FERRY_MEM_DRAM : FERRY_MEM_FILE, lo->n, &l) != FERRY_OK)
        return NULL;
    for (size_t i = 0; i < lo->n; i++) {
        uint64_t addr = buf ? (uintptr_t)buf + lo->off[i] : lo->off[i];
        if (ferry_dlist_add(l, addr, lo->len[i], buf ? 0 : (uint64_t)fd) != FERRY_OK) {
            ferry_dlist_destroy(l);
            return NULL;
        }
    }
    return l;
}

static ferry_status run_xfer(px *p, ferry_xfer_op op, const ferry_dlist *l, const ferry_dlist *r,
                             ferry_xfer **out)
{
    return tfs_run(p->ag, "px-test", op, l, r, out);
}

static bool pieces_equal(const layout *lo, const uint8_t *a, const uint8_t *b)
{
    for (size_t i = 0; i < lo->n; i++)
        if (memcmp(a + lo->off[i], b + lo->off[i], lo->len[i]))
            return false;
    return true;
}

/* WRITE random pieces of src to the file, check the file with pread, READ
 * them back into dst, check dst. */
static void round_trip(bool direct, size_t n, uint64_t max_len, uint64_t size)
{
    px p;
    char path[128];
    if (direct && !g_direct_ok)
        FY_SKIP("the temp dir's file system refuses O_DIRECT");
    FY_REQUIRE(px_open(&p) == FERRY_OK);
    int fd = open_file("rt", direct, size, path, sizeof(path));
    uint8_t *src = px_alloc(size), *dst = px_alloc(size), *file = NULL;
    FY_REQUIRE(fd >= 0 && src && dst);
    tu_fill(src, size, tu_seed());
    memset(dst, 0, size);
    layout_make(&g_lo, n, max_len, size, direct ? 4096 : 1, tu_seed() + n);
    FY_REQUIRE(tu_register(p.ag, src, size) == FERRY_OK &&
               tu_register(p.ag, dst, size) == FERRY_OK);
    FY_REQUIRE(px_reg_file(&p, fd, size, path) == FERRY_OK);
    ferry_dlist *ls = layout_list(&g_lo, src, -1), *ld = layout_list(&g_lo, dst, -1);
    ferry_dlist *rf = layout_list(&g_lo, NULL, fd);
    FY_REQUIRE(ls && ld && rf);
    FY_CHECK_EQ(run_xfer(&p, FERRY_OP_WRITE, ls, rf, NULL), FERRY_OK);
    FY_CHECK((file = slurp(path, size)) && pieces_equal(&g_lo, src, file));
    FY_CHECK_EQ(run_xfer(&p, FERRY_OP_READ, ld, rf, NULL), FERRY_OK);
    FY_CHECK(pieces_equal(&g_lo, src, dst));
    printf("# %s %s: %zu pieces, %llu bytes of file\n", g_engine, direct ? "O_DIRECT" : "buffered",
           g_lo.n, (unsigned long long)size);
    ferry_dlist_destroy(ls);
    ferry_dlist_destroy(ld);
    ferry_dlist_destroy(rf);
    px_close(&p);
    close(fd);
    unlink(path);
    free(src);
    free(dst);
    free(file);
}

static void test_round_trip_buffered(void)
{
    round_trip(false, 2000, 64 * KB, 64 * MB);
}

static void test_round_trip_direct(void)
{
    round_trip(true, 2000, 64 * KB, 64 * MB);
}

/* 4096 x 4 KiB in one request, more than the queue depth many times. */
static void test_many_descriptors(void)
{
    px p;
    char path[128];
    const size_t n = 4096, each = 4 * KB;
    FY_REQUIRE(px_open(&p) == FERRY_OK);
    int fd = open_file("many", g_direct_ok, n * each * 2, path, sizeof(path));
    uint8_t *src = px_alloc(n * each * 2), *dst = px_alloc(n * each * 2);
    FY_REQUIRE(fd >= 0 && src && dst);
    tu_fill(src, n * each * 2, 99);
    memset(dst, 0, n * each * 2);
    g_lo.n = n;
    for (size_t i = 0; i < n; i++) /* every other block: nothing merges */
        g_lo.off[i] = 2 * i * each, g_lo.len[i] = each;
    FY_REQUIRE(tu_register(p.ag, src, n * each * 2) == FERRY_OK);
    FY_REQUIRE(tu_register(p.ag, dst, n * each * 2) == FERRY_OK);
    FY_REQUIRE(px_reg_file(&p, fd, n * each * 2, path) == FERRY_OK);
    ferry_dlist *ls = layout_list(&g_lo, src, -1), *ld = layout_list(&g_lo, dst, -1);
    ferry_dlist *rf = layout_list(&g_lo, NULL, fd);
    FY_REQUIRE(ls && ld && rf);
    FY_CHECK_EQ(run_xfer(&p, FERRY_OP_WRITE, ls, rf, NULL), FERRY_OK);
    FY_CHECK_EQ(run_xfer(&p, FERRY_OP_READ, ld, rf, NULL), FERRY_OK);
    FY_CHECK(pieces_equal(&g_lo, src, dst));
    ferry_dlist_destroy(ls);
    ferry_dlist_destroy(ld);
    ferry_dlist_destroy(rf);
    px_close(&p);
    close(fd);
    unlink(path);
    free(src);
    free(dst);
}

/* One request of one descriptor between buf and fd. */
static ferry_status one_xfer(px *p, ferry_xfer_op op, void *buf, uint64_t off, uint64_t len, int fd,
                             ferry_xfer **out)
{
    ferry_clear_error();
    g_lo.n = 1;
    g_lo.off[0] = 0;
    g_lo.len[0] = len;
    ferry_dlist *l = layout_list(&g_lo, buf, -1);
    g_lo.off[0] = off;
    ferry_dlist *r = layout_list(&g_lo, NULL, fd);
    ferry_status rc = l && r ? run_xfer(p, op, l, r, out) : FERRY_ERR_NO_MEMORY;
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    return rc;
}

/* O_DIRECT rules are checked before anything starts, naming the culprit. */
static void test_direct_misaligned(void)
{
    px p;
    char path[128];
    if (!g_direct_ok)
        FY_SKIP("the temp dir's file system refuses O_DIRECT");
    FY_REQUIRE(px_open(&p) == FERRY_OK);
    int fd = open_file("align", true, MB, path, sizeof(path));
    uint8_t *buf = px_alloc(MB);
    FY_REQUIRE(fd >= 0 && buf && tu_register(p.ag, buf, MB) == FERRY_OK);
    FY_REQUIRE(px_reg_file(&p, fd, MB, path) == FERRY_OK);
    FY_CHECK_EQ(one_xfer(&p, FERRY_OP_WRITE, buf, 100, 4096, fd, NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK(strstr(ferry_last_error(), "file offset") && strstr(ferry_last_error(), "O_DIRECT"));
    FY_CHECK_EQ(one_xfer(&p, FERRY_OP_WRITE, buf, 0, 1000, fd, NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK(strstr(ferry_last_error(), "length") != NULL);
    FY_CHECK_EQ(one_xfer(&p, FERRY_OP_WRITE, buf + 8, 0, 4096, fd, NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK(strstr(ferry_last_error(), "buffer address") != NULL);
    printf("# %s\n", ferry_last_error());
    FY_CHECK_EQ(one_xfer(&p, FERRY_OP_WRITE, buf, 4096, 8192, fd, NULL), FERRY_OK);
    px_close(&p);
    close(fd);
    unlink(path);
    free(buf);
}

/* A file that is not registered cannot be the target of a request. */
static void test_unregistered_file(void)
{
    px p;
    char path[128];
    FY_REQUIRE(px_open(&p) == FERRY_OK);
    int fd = open_file("unreg", false, MB, path, sizeof(path));
    uint8_t *buf = px_alloc(MB);
    FY_REQUIRE(fd >= 0 && buf && tu_register(p.ag, buf, MB) == FERRY_OK);
    FY_REQUIRE(px_publish(&p) == FERRY_OK);
    ferry_status rc = one_xfer(&p, FERRY_OP_WRITE, buf, 0, 4096, fd, NULL);
    FY_CHECK(rc == FERRY_ERR_NOT_FOUND || rc == FERRY_ERR_INVALID_PARAM);
    printf("# unregistered: %s: %s\n", ferry_status_name(rc), ferry_last_error());
    FY_CHECK(ferry_last_error()[0] != '\0');
    px_close(&p);
    close(fd);
    unlink(path);
    free(buf);
}

/* A registered fd that was closed since: EBADF in the request's detail.
 * Registering a closed fd fails at once. */
static void test_bad_fd(void)
{
    px p;
    char path[128];
    ferry_xfer *x = NULL;
    FY_REQUIRE(px_open(&p) == FERRY_OK);
    int fd = open_file("badfd", false, MB, path, sizeof(path));
    uint8_t *buf = px_alloc(MB);
    FY_REQUIRE(fd >= 0 && buf && tu_register(p.ag, buf, MB) == FERRY_OK);
    FY_REQUIRE(px_reg_file(&p, fd, MB, path) == FERRY_OK);
    close(fd);
    FY_CHECK_EQ(one_xfer(&p, FERRY_OP_READ, buf, 0, 4096, fd, &x), FERRY_ERR_IO);
    FY_CHECK(x && strstr(ferry_xfer_error(x), "EBADF") != NULL);
    if (x)
        printf("# closed fd: %s\n", ferry_xfer_error(x));
    ferry_xfer_release(x);
    FY_CHECK_EQ(px_reg_file(&p, 100000, MB, "nope"), FERRY_ERR_INVALID_PARAM);
    FY_CHECK(strstr(ferry_last_error(), "EBADF") != NULL);
    px_close(&p);
    unlink(path);
    free(buf);
}

/* Reading past the end of the file: the bytes up to it come back (a short
 * read, resubmitted for the rest), then the request fails, never OK. */
static void test_read_past_eof(void)
{
    px p;
    char path[128];
    ferry_xfer *x = NULL;
    FY_REQUIRE(px_open(&p) == FERRY_OK);
    int fd = open_file("eof", false, 6000, path, sizeof(path));
    uint8_t *buf = px_alloc(MB);
    FY_REQUIRE(fd >= 0 && buf && tu_register(p.ag, buf, MB) == FERRY_OK);
    FY_REQUIRE(px_reg_file(&p, fd, MB, path) == FERRY_OK);
    FY_CHECK_EQ(one_xfer(&p, FERRY_OP_READ, buf, 4096, 8192, fd, &x), FERRY_ERR_IO);
    FY_CHECK(x && strstr(ferry_xfer_error(x), "end of file") != NULL);
    if (x)
        printf("# %s\n", ferry_xfer_error(x));
    ferry_xfer_release(x);
    px_close(&p);
    close(fd);
    unlink(path);
    free(buf);
}

/* 16 MiB into a file system of a few MiB: ENOSPC (EFBIG under the
 * RLIMIT_FSIZE fallback), reported with the errno. */
static void test_enospc(void)
{
    smallfs fs = {0};
    px p;
    ferry_xfer *x = NULL;
    char path[160];
    const uint64_t size = 16 * MB;
    FY_REQUIRE(smallfs_open(&fs));
    int fd = smallfs_file(&fs, path, sizeof(path));
    uint8_t *buf = px_alloc(size);
    FY_REQUIRE(fd >= 0 && buf);
    tu_fill(buf, size, 3);
    FY_REQUIRE(px_open(&p) == FERRY_OK);
    FY_REQUIRE(tu_register(p.ag, buf, size) == FERRY_OK);
    FY_REQUIRE(px_reg_file(&p, fd, size, path) == FERRY_OK);
    FY_CHECK_EQ(one_xfer(&p, FERRY_OP_WRITE, buf, 0, size, fd, &x), FERRY_ERR_IO);
    const char *want = smallfs_errno(&fs);
    FY_CHECK(x && strstr(ferry_xfer_error(x), want) != NULL);
    if (x)
        printf("# %s\n", ferry_xfer_error(x));
    ferry_xfer_release(x);
    px_close(&p);
    close(fd);
    unlink(path);
    smallfs_close(&fs);
    free(buf);
}

/* ---- release while in flight ---- */

/* A READ of 32 MiB in 4 KiB pieces, queue depth 4, released right after
 * the post: once release returns, nothing may write the buffer. */
static void test_release_in_flight(void)
{
    px p;
    char path[128];
    const size_t n = 8192, each = 4 * KB, size = n * each;
    FY_REQUIRE(px_open_depth(&p, "4") == FERRY_OK);
    int fd = open_file("inflight", g_direct_ok, size, path, sizeof(path));
    uint8_t *buf = px_alloc(size);
    FY_REQUIRE(fd >= 0 && buf && tu_register(p.ag, buf, size) == FERRY_OK);
    FY_REQUIRE(px_reg_file(&p, fd, size, path) == FERRY_OK);
    g_lo.n = n;
    for (size_t i = 0; i < n; i++)
        g_lo.off[i] = i * each, g_lo.len[i] = each;
    ferry_dlist *l = layout_list(&g_lo, buf, -1), *r = layout_list(&g_lo, NULL, fd);
    FY_REQUIRE(l && r);
    ferry_xfer_opts opts;
    ferry_xfer_opts_init(&opts);
    opts.skip_merge = true;
    int in_flight = 0;
    for (int round = 0; round < 5; round++) {
        ferry_xfer *x;
        FY_REQUIRE(ferry_xfer_create(p.ag, FERRY_OP_READ, l, r, "px-test", &opts, &x) == FERRY_OK);
        in_flight += ferry_xfer_post(x) == FERRY_IN_PROGRESS;
        FY_CHECK_EQ(ferry_xfer_release(x), FERRY_OK);
        memset(buf, 0xa5, size);
        tu_sleep_us(20000);
        bool untouched = buf[0] == 0xa5 && !memcmp(buf, buf + 1, size - 1);
        FY_CHECK(untouched);
    }
    printf("# %d of 5 releases were of a request in flight\n", in_flight);
    FY_CHECK(in_flight > 0);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    px_close(&p);
    close(fd);
    unlink(path);
    free(buf);
}

/* ---- params ---- */

static void test_params(void)
{
    static const ferry_param bad[][2] = {
        {{"engine", "spdk"}, {"queue_depth", "8"}},
        {{"queue_depth", "0"}, {"engine", "auto"}},
        {{"queue_depth", "8x"}, {"engine", "auto"}},
        {{"use_uring", "true"}, {"use_aio", "true"}},
        {{"engine", "aio"}, {"use_uring", "true"}},
        {{"kernel_queue_size", "8"}, {"engine", "auto"}},
        {{"ios_pool_size", "1"}, {"engine", "auto"}},
        {{"use_aio", "maybe"}, {"engine", "auto"}},
    };
    px p;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        FY_CHECK_EQ(px_open_with(&p, false, bad[i], 2), FERRY_ERR_INVALID_PARAM);
        FY_CHECK(strstr(ferry_last_error(), bad[i][0].key) || strstr(ferry_last_error(), "use_"));
    }
    ferry_param posix_aio[] = {{"use_posix_aio", "true"}};
    FY_CHECK_EQ(px_open_with(&p, false, posix_aio, 1), FERRY_ERR_NOT_SUPPORTED);
    ferry_param nixl[] = {
        {"use_aio", "true"}, {"kernel_queue_size", "32"}, {"ios_pool_size", "128"}};
    FY_CHECK_EQ(px_open_with(&p, false, nixl, 3), FERRY_OK);
    ferry_backend_caps caps;
    ferry_backend_caps_init(&caps);
    FY_CHECK_EQ(ferry_backend_get_caps(p.be, &caps), FERRY_OK);
    FY_CHECK(caps.flags & FERRY_CAP_LOCAL);
    FY_CHECK(!(caps.flags & (FERRY_CAP_REMOTE | FERRY_CAP_NOTIF)));
    FY_CHECK(caps.mem_mask & FERRY_MEM_MASK(FERRY_MEM_FILE));
    px_close(&p);
}

/* ---- query, BLOCK, path mode, the progress thread ---- */

/* ferry_query_mem asked of the POSIX backend: size and mode of a file named
 * by path, not found for a missing one. */
static void test_query(void)
{
    px p;
    char path[128], missing[128];
    FY_REQUIRE(px_open(&p) == FERRY_OK);
    int fd = open_file("query", false, 12345, path, sizeof(path));
    path_of(missing, sizeof(missing), "no-such-file");
    ferry_dlist *l;
    FY_REQUIRE(fd >= 0 && ferry_dlist_create(FERRY_MEM_FILE, 2, &l) == FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add_meta(l, 0, 1, 0, path, strlen(path)), FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add_meta(l, 0, 1, 0, missing, strlen(missing)), FERRY_OK);
    ferry_mem_info info[2];
    ferry_mem_info_init(&info[0]);
    ferry_mem_info_init(&info[1]);
    FY_CHECK_EQ(ferry_query_mem(p.ag, l, p.be, info, 2), FERRY_OK);
    FY_CHECK(info[0].found && info[0].file_size == 12345 && S_ISREG(info[0].file_mode));
    FY_CHECK(!info[1].found);
    ferry_dlist_destroy(l);
    px_close(&p);
    close(fd);
    unlink(path);
}

/* Registers one volume (BLOCK) or path-mode file by its metadata. */
static ferry_status reg_by_path(px *p, ferry_mem_type type, uint64_t dev_id, uint64_t len,
                                const char *meta)
{
    ferry_dlist *l;
    ferry_clear_error();
    ferry_status rc = ferry_dlist_create(type, 1, &l);
    if (rc != FERRY_OK)
        return rc;
    rc = ferry_dlist_add_meta(l, 0, len, dev_id, meta, strlen(meta));
    if (rc == FERRY_OK)
        rc = ferry_register(p->ag, l, NULL);
    ferry_dlist_destroy(l);
    return rc == FERRY_OK ? px_publish(p) : rc;
}

/* WRITE then READ one 1 MiB piece at offset 64 KiB of (type, dev_id). */
static void by_path_round_trip(px *p, ferry_mem_type type, uint64_t dev_id)
{
    const uint64_t len = MB;
    uint8_t *src = px_alloc(len), *dst = px_alloc(len);
    FY_REQUIRE(src && dst);
    tu_fill(src, len, 11);
    memset(dst, 0, len);
    FY_REQUIRE(tu_register(p->ag, src, len) == FERRY_OK &&
               tu_register(p->ag, dst, len) == FERRY_OK);
    FY_REQUIRE(px_publish(p) == FERRY_OK);
    ferry_dlist *l, *r;
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_DRAM, 1, &l) == FERRY_OK);
    FY_REQUIRE(ferry_dlist_create(type, 1, &r) == FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add(l, (uintptr_t)src, len, 0), FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add(r, 64 * KB, len, dev_id), FERRY_OK);
    FY_CHECK_EQ(run_xfer(p, FERRY_OP_WRITE, l, r, NULL), FERRY_OK);
    ferry_dlist_destroy(l);
    l = tu_list1(dst, len);
    FY_CHECK_EQ(run_xfer(p, FERRY_OP_READ, l, r, NULL), FERRY_OK);
    FY_CHECK(!memcmp(src, dst, len));
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    free(src);
    free(dst);
}

/* BLOCK: a loop device when one can be set up (root), else a regular file
 * standing in for the volume. */
static void test_block_volume(void)
{
    px p;
    char path[128], cmd[300], dev[64] = "";
    int fd = open_file("volume", false, 8 * MB, path, sizeof(path));
    FY_REQUIRE(fd >= 0);
    close(fd);
    snprintf(cmd, sizeof(cmd), "losetup -f --show %s 2>/dev/null", path);
    FILE *f = geteuid() == 0 ? popen(cmd, "r") : NULL;
    if (f && fgets(dev, sizeof(dev), f))
        dev[strcspn(dev, "\n")] = '\0';
    if (f)
        pclose(f);
    printf("# volume: %s\n", dev[0] ? dev : "regular file");
    FY_REQUIRE(px_open(&p) == FERRY_OK);
    FY_CHECK_EQ(reg_by_path(&p, FERRY_MEM_BLOCK, 7, 8 * MB, dev[0] ? dev : path), FERRY_OK);
    by_path_round_trip(&p, FERRY_MEM_BLOCK, 7);
    px_close(&p);
    if (dev[0]) {
        snprintf(cmd, sizeof(cmd), "losetup -d %s", dev);
        FY_CHECK(run_quiet(cmd));
    }
    unlink(path);
}

/* FILE in NIXL's path mode: "<modes>:<path>" metadata, we open the file,
 * dev_id is only a key. */
static void test_path_mode(void)
{
    px p;
    char path[128], meta[160];
    path_of(path, sizeof(path), "pathmode");
    snprintf(meta, sizeof(meta), "rw,create:%s", path);
    FY_REQUIRE(px_open(&p) == FERRY_OK);
    FY_CHECK_EQ(reg_by_path(&p, FERRY_MEM_FILE, 4242, 8 * MB, meta), FERRY_OK);
    by_path_round_trip(&p, FERRY_MEM_FILE, 4242);
    snprintf(meta, sizeof(meta), "rw,bogus:%s", path); /* not path mode: dev_id is an fd */
    FY_CHECK_EQ(reg_by_path(&p, FERRY_MEM_FILE, 999999, MB, meta), FERRY_ERR_INVALID_PARAM);
    px_close(&p);
    unlink(path);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* With the agent's progress thread, requests complete without polling, and
 * an idle agent sleeps on the backend's eventfd instead of spinning. */
static void test_progress_thread(void)
{
    px p;
    char path[128];
    ferry_param params[] = {{"engine", g_engine}};
    FY_REQUIRE(px_open_with(&p, true, params, 1) == FERRY_OK);
    int fd = open_file("thread", g_direct_ok, 4 * MB, path, sizeof(path));
    uint8_t *buf = px_alloc(4 * MB);
    FY_REQUIRE(fd >= 0 && buf && tu_register(p.ag, buf, 4 * MB) == FERRY_OK);
    FY_REQUIRE(px_reg_file(&p, fd, 4 * MB, path) == FERRY_OK);
    FY_CHECK_EQ(one_xfer(&p, FERRY_OP_WRITE, buf, 0, 4 * MB, fd, NULL), FERRY_OK);
    double t0 = cpu_seconds();
    tu_sleep_us(300000);
    double idle = cpu_seconds() - t0;
    printf("# idle for 300 ms: %.1f ms of CPU\n", idle * 1e3);
    FY_CHECK(idle < 0.03);
    px_close(&p);
    close(fd);
    unlink(path);
    free(buf);
}

/* ---- main ---- */

static bool engine_available(const char *engine)
{
    px p;
    ferry_param params[] = {{"engine", engine}};
    if (px_open_with(&p, false, params, 1) != FERRY_OK)
        return false;
    px_close(&p);
    return true;
}

static void run_engine(const char *engine)
{
    g_engine = engine;
    printf("# engine %s\n", engine);
    FY_RUN(test_round_trip_buffered);
    FY_RUN(test_round_trip_direct);
    FY_RUN(test_many_descriptors);
    FY_RUN(test_direct_misaligned);
    FY_RUN(test_bad_fd);
    FY_RUN(test_read_past_eof);
    FY_RUN(test_enospc);
    FY_RUN(test_release_in_flight);
    FY_RUN(test_progress_thread);
}

/* Arguments: "common" (the engine-independent tests) and/or engine names;
 * none: all of them. An engine that is named but cannot start skips. */
int main(int argc, char **argv)
{
    bool common = argc == 1;
    g_num_engines = argc == 1 ? 2 : 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "common"))
            common = true;
        else if (g_num_engines < 4)
            g_engines[g_num_engines++] = argv[i];
    }
    snprintf(g_dir, sizeof(g_dir), "/tmp/ferry-posix-XXXXXX");
    if (!mkdtemp(g_dir))
        fy_test_skip_all("cannot make a temp dir under /tmp");
    g_direct_ok = probe_direct();
    for (int i = 0; i < g_num_engines; i++)
        if (!engine_available(g_engines[i])) {
            rmdir(g_dir);
            fy_test_skip_all("the POSIX plugin or this engine cannot start here");
        }
    g_engine = "auto";
    if (common) {
        FY_RUN(test_params);
        FY_RUN(test_query);
        FY_RUN(test_unregistered_file);
        FY_RUN(test_block_volume);
        FY_RUN(test_path_mode);
    }
    for (int i = 0; i < g_num_engines; i++)
        run_engine(g_engines[i]);
    rmdir(g_dir);
    return fy_test_done();
}
