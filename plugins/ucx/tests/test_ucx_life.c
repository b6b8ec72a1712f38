/* SPDX-License-Identifier: Apache-2.0 */
/* The life of a UCX peer, seen from the agent that outlives it: this
 * driver and ucx_peer children, each with its own agent, on loopback.
 *
 *   test_ucx_life PEER_PROG MODE [key=value...] TEST...
 *     MODE: the error_handling param of both sides (peer, dual, none);
 *     key=value: more UCX params of both sides
 *     TEST: alloc, fds, resume, restart, requests
 *
 *   alloc     ferry_mem_alloc of 2^62 bytes and of the host's memory plus
 *             1 GiB fail with NO_MEMORY in under 100 ms, /dev/shm keeps
 *             its free space, and a peer killed (-9) while it held UCX
 *             memory (or while it was still allocating) leaves no file in
 *             /dev/shm.
 *   fds       100 rounds of invalidate, fetch and a READ keep the number
 *             of open files of both processes stable.
 *   resume    a release to a stopped (SIGSTOP) peer gives up after its
 *             bound; after SIGCONT, loading its metadata again (same
 *             instance) is enough for READs to work again, old handles
 *             included.
 *   restart   kill -9 of the peer during READs, a new instance under the
 *             same name: the first READ to it completes, trial after
 *             trial, in every mode.
 *   requests  a peer killed during READs and WRITEs leaves no UCX request
 *             behind: destroying the agent prints no "not returned to
 *             mpool".
 * Every wait is bounded; a call still running after HANG_S is a hang. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

#include <ferry/ferry.h>

#include "dlists.h"
#include "harness.h"
#include "rt_proc.h"

#define PEER_NAME  "life-peer"
#define HOST       "127.0.0.1"
#define MIB        (1u << 20)
#define SIZE       (16u * MIB) /* each side's buffer */
#define FETCH_MS   10000u
#define XFER_MS    20000u /* one READ: the backend's own bound (10 s without progress) and slack */
#define HANG_S     60u
#define SHM_DIR    "/dev/shm"
#define SHM_SLACK  (256ull * MIB) /* other processes of the host use /dev/shm too */
#define FD_ROUNDS  120u
#define FD_SLACK   6
#define TRIALS     4u
#define KILL_AFTER 300u /* ms of traffic before a kill */

#define MAX_PARAMS 4

static const char *peer_prog, *mode;
static char *extra[MAX_PARAMS]; /* key=value params of both sides */
static ferry_param params[1 + MAX_PARAMS];
static size_t num_params;

typedef struct life {
    ferry_agent *agent;
    uint8_t *mem;
    rt_peer peer;
} life;

/* ---- the two sides ---- */

static ferry_status life_open(life *l)
{
    memset(l, 0, sizeof(*l));
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = "life-driver";
    cfg.progress_thread = true;
    cfg.listen = true;
    cfg.listen_host = HOST;
    ferry_backend *be;
    ferry_status rc = ferry_agent_create(&cfg, &l->agent);
    if (rc == FERRY_OK)
        rc = ferry_backend_create(l->agent, "UCX", params, num_params, &be);
    l->mem = rc == FERRY_OK ? aligned_alloc(4096, SIZE) : NULL;
    if (rc == FERRY_OK && !l->mem)
        rc = FERRY_ERR_NO_MEMORY;
    ferry_dlist *d = rc == FERRY_OK ? fy_t_range_list((uintptr_t)l->mem, SIZE) : NULL;
    if (rc == FERRY_OK)
        rc = d ? ferry_register(l->agent, d, NULL) : FERRY_ERR_NO_MEMORY;
    ferry_dlist_destroy(d);
    return rc;
}

static void life_close(life *l)
{
    if (l->peer.pid > 0)
        rt_stop(&l->peer);
    ferry_agent_destroy(l->agent);
    free(l->mem);
    memset(l, 0, sizeof(*l));
}

/* Starts a ucx_peer (a new instance each time); alloc: its buffer from
 * ferry_mem_alloc. */
static bool peer_start(life *l, bool alloc)
{
    char size[32], param[64];
    snprintf(size, sizeof(size), "%u", SIZE);
    snprintf(param, sizeof(param), "error_handling=%s", mode);
    const char *argv[8 + MAX_PARAMS] = {peer_prog, PEER_NAME, size, "1", HOST, param};
    size_t n = 6;
    if (alloc)
        argv[n++] = "--alloc";
    for (size_t i = 0; i + 1 < num_params; i++)
        argv[n++] = extra[i];
    return rt_spawn(&l->peer, (char **)argv) && rt_handshake(&l->peer);
}

/* Metadata both ways. */
static ferry_status exchange(life *l)
{
    ferry_status rc = ferry_md_fetch_wait(l->agent, PEER_NAME, HOST, l->peer.port, NULL, FETCH_MS);
    return rc == FERRY_OK ? ferry_md_send_local(l->agent, HOST, l->peer.port) : rc;
}

/* A request moving [0, n * len) in n descriptors of len bytes. */
static ferry_status make(life *l, ferry_xfer_op op, size_t n, uint64_t len, ferry_xfer **out)
{
    ferry_dlist *a = NULL, *b = NULL;
    ferry_status rc = ferry_dlist_create(FERRY_MEM_DRAM, n, &a);
    if (rc == FERRY_OK)
        rc = ferry_dlist_create(FERRY_MEM_DRAM, n, &b);
    for (size_t i = 0; rc == FERRY_OK && i < n; i++) {
        rc = ferry_dlist_add(a, (uintptr_t)l->mem + i * len, len, 0);
        if (rc == FERRY_OK)
            rc = ferry_dlist_add(b, l->peer.base + i * len, len, 0);
    }
    if (rc == FERRY_OK)
        rc = ferry_xfer_create(l->agent, op, a, b, PEER_NAME, NULL, out);
    ferry_dlist_destroy(a);
    ferry_dlist_destroy(b);
    return rc;
}

/* Posts xf and waits up to ms for its end (IN_PROGRESS: still running). */
static ferry_status post_wait(ferry_xfer *xf, uint64_t ms)
{
    ferry_status rc = ferry_xfer_post(xf);
    for (uint64_t end = rt_now_ms() + ms; rc == FERRY_IN_PROGRESS && rt_now_ms() < end;
         rc = ferry_xfer_status(xf))
        rt_sleep_us(200);
    return rc;
}

/* One READ of len bytes, made, waited for (bounded) and released. */
static ferry_status read_once(life *l, uint64_t len, uint64_t ms)
{
    ferry_xfer *xf = NULL;
    ferry_status rc = make(l, FERRY_OP_READ, 1, len, &xf);
    if (rc == FERRY_OK)
        rc = post_wait(xf, ms);
    if (rc != FERRY_OK)
        printf("# READ of %llu B: %s (%s)\n", (unsigned long long)len, ferry_status_name(rc),
               xf ? ferry_xfer_error(xf) : "");
    rt_watchdog(HANG_S, "releasing a READ");
    ferry_xfer_release(xf);
    rt_watchdog(0, "");
    return rc;
}

/* Reposts xf until KILL_AFTER ms have passed, then kills the peer with
 * the request in flight; xf is left to the caller (ended or not). */
static void kill_during(life *l, ferry_xfer *xf)
{
    ferry_status rc = FERRY_OK;
    for (uint64_t end = rt_now_ms() + KILL_AFTER; rt_now_ms() < end && rc >= 0;) {
        rc = rc == FERRY_OK ? ferry_xfer_post(xf) : ferry_xfer_status(xf);
        if (rc == FERRY_IN_PROGRESS)
            rt_sleep_us(100);
    }
    rt_kill9(&l->peer);
}

/* Releases a request to a killed peer (bounded) and reaps the peer. */
static void bury(life *l, ferry_xfer *xf)
{
    rt_watchdog(HANG_S, "releasing a request to a killed peer");
    ferry_xfer_release(xf);
    rt_watchdog(0, "");
    FY_CHECK_EQ(rt_reap(&l->peer, RT_STOP_MS), 128 + SIGKILL);
}

/* ---- alloc ---- */

static uint64_t shm_free(void)
{
    struct statvfs sv;
    return statvfs(SHM_DIR, &sv) == 0 ? (uint64_t)sv.f_bavail * sv.f_frsize : 0;
}

/* Adds the /dev/shm files (not unlinked yet) that pid holds open or
 * mapped, as "path\n" lines, to list. */
static void shm_held(pid_t pid, char *list, size_t cap)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%ld/maps", (long)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f)) {
        char *p = strstr(line, SHM_DIR "/");
        if (p && !strstr(p, "(deleted)") && strlen(list) + strlen(p) < cap)
            strcat(list, p); /* p ends with its newline */
    }
    if (f)
        fclose(f);
    snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
    DIR *d = opendir(path);
    for (struct dirent *e; d && (e = readdir(d));) {
        char link[320], target[256];
        snprintf(link, sizeof(link), "%s/%s", path, e->d_name);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (!strncmp(target, SHM_DIR "/", strlen(SHM_DIR) + 1) && !strstr(target, "(deleted)") &&
            strlen(list) + (size_t)n + 1 < cap)
            strcat(strcat(list, target), "\n");
    }
    if (d)
        closedir(d);
}

/* Kills the peer (-9) and counts the files of list still in /dev/shm;
 * each is removed, so that a failed run leaves nothing behind. */
static unsigned kill_and_count_left(life *l, char *list)
{
    rt_kill9(&l->peer);
    rt_reap(&l->peer, RT_STOP_MS);
    unsigned left = 0;
    char *save = NULL;
    for (char *p = strtok_r(list, "\n", &save); p; p = strtok_r(NULL, "\n", &save)) {
        if (access(p, F_OK) != 0)
            continue;
        printf("# left behind by a killed peer: %s\n", p);
        unlink(p);
        left++;
    }
    return left;
}

/* The peer allocates len bytes: NO_MEMORY in under 100 ms. An allocation
 * still running after a second is stopped by kill -9 (and must leave no
 * file either). */
static void alloc_refused(life *l, uint64_t len)
{
    char reply[128], status[64];
    unsigned long long ms = 0;
    uint64_t before = shm_free(), t0 = rt_now_ms();
    FY_REQUIRE(rt_write_all(
        l->peer.to, reply,
        (size_t)snprintf(reply, sizeof(reply), "alloc %llu\n", (unsigned long long)len)));
    int got = rt_read_line(&l->peer.from, reply, sizeof(reply), t0 + 1000);
    if (got != 1) {
        static char held[8192];
        held[0] = '\0';
        shm_held(l->peer.pid, held, sizeof(held));
        printf("# alloc of %llu B still running after %llu ms\n", (unsigned long long)len,
               (unsigned long long)(rt_now_ms() - t0));
        FY_CHECK_EQ(kill_and_count_left(l, held), 0);
        FY_CHECK(!"allocation failed fast");
        FY_REQUIRE(peer_start(l, true));
        return;
    }
    printf("# alloc of %llu B: %s\n", (unsigned long long)len, reply);
    FY_CHECK(sscanf(reply, "ERR %63s %llu", status, &ms) == 2 &&
             !strcmp(status, "FERRY_ERR_NO_MEMORY"));
    FY_CHECK(ms < 100);
    uint64_t after = shm_free();
    FY_CHECK(after + SHM_SLACK >= before);
}

static void test_alloc(void)
{
    life l;
    FY_REQUIRE(life_open(&l) == FERRY_OK);
    FY_REQUIRE(peer_start(&l, true)); /* its buffer: 16 MiB from UCX */
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    FY_REQUIRE(pages > 0 && page > 0);
    alloc_refused(&l, 1ull << 62);
    alloc_refused(&l, (uint64_t)pages * (uint64_t)page + 1024ull * MIB);
    static char held[8192];
    held[0] = '\0';
    shm_held(l.peer.pid, held, sizeof(held));
    FY_CHECK_EQ(kill_and_count_left(&l, held), 0);
    life_close(&l);
}

/* ---- fds ---- */

static int fd_count(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
    DIR *d = opendir(path);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* Invalidate, fetch again, one READ: FD_ROUNDS times. */
static void test_fds(void)
{
    life l;
    FY_REQUIRE(life_open(&l) == FERRY_OK);
    FY_REQUIRE(peer_start(&l, false));
    FY_REQUIRE(exchange(&l) == FERRY_OK);
    int mine = 0, theirs = 0;
    uint64_t t0 = rt_now_ms(), t_warm = t0;
    for (unsigned k = 0; k < FD_ROUNDS; k++) {
        if (k == 5) { /* UCX's first connections settle first */
            mine = fd_count(getpid());
            theirs = fd_count(l.peer.pid);
            t_warm = rt_now_ms();
        }
        FY_REQUIRE(ferry_md_invalidate(l.agent, PEER_NAME) == FERRY_OK);
        FY_REQUIRE(ferry_md_fetch_wait(l.agent, PEER_NAME, HOST, l.peer.port, NULL, FETCH_MS) ==
                   FERRY_OK);
        FY_REQUIRE(read_once(&l, 4096, XFER_MS) == FERRY_OK);
    }
    int mine_end = fd_count(getpid()), theirs_end = fd_count(l.peer.pid);
    printf("# %u rounds in %llu ms: open files here %d -> %d, in the peer %d -> %d\n", FD_ROUNDS,
           (unsigned long long)(rt_now_ms() - t0), mine, mine_end, theirs, theirs_end);
    FY_CHECK(mine_end <= mine + FD_SLACK);
    FY_CHECK(theirs_end <= theirs + FD_SLACK);
    (void)t_warm;
    life_close(&l);
}

/* ---- resume ---- */

/* Whether pid is stopped (state T in /proc/pid/stat). */
static bool stopped(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    const char *end = strrchr(buf, ')'); /* the name may hold anything */
    return end && end[1] == ' ' && end[2] == 'T';
}

/* SIGSTOP, and waits (bounded) until every thread of the peer stopped. */
static bool peer_stop(life *l)
{
    kill(l->peer.pid, SIGSTOP);
    for (uint64_t end = rt_now_ms() + 5000; !stopped(l->peer.pid); rt_sleep_ms(1))
        if (rt_now_ms() >= end)
            return false;
    return true;
}

/* A WRITE to a stopped peer: its release gives up (endpoints closed); after
 * SIGCONT, fetching the same instance's metadata again revives it. */
static void test_resume(void)
{
    life l;
    FY_REQUIRE(life_open(&l) == FERRY_OK);
    FY_REQUIRE(peer_start(&l, false));
    FY_REQUIRE(exchange(&l) == FERRY_OK);
    ferry_xfer *old = NULL, *xf = NULL;
    FY_REQUIRE(make(&l, FERRY_OP_READ, 4, MIB, &old) == FERRY_OK);
    FY_CHECK_EQ(post_wait(old, XFER_MS), FERRY_OK);
    uint64_t gen = 0, gen2 = 0;
    FY_CHECK_EQ(ferry_md_generation(l.agent, PEER_NAME, &gen), FERRY_OK);
    FY_REQUIRE(peer_stop(&l));
    /* More than the sockets hold: UCX still holds its sends at release. */
    FY_REQUIRE(make(&l, FERRY_OP_WRITE, SIZE / MIB, MIB, &xf) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_post(xf), FERRY_IN_PROGRESS);
    uint64_t t0 = rt_now_ms();
    rt_watchdog(HANG_S, "releasing a WRITE to a stopped peer");
    ferry_status rc = ferry_xfer_release(xf);
    rt_watchdog(0, "");
    printf("# release of a WRITE to a stopped peer: %s in %llu ms\n", ferry_status_name(rc),
           (unsigned long long)(rt_now_ms() - t0));
    kill(l.peer.pid, SIGCONT);
    FY_CHECK_EQ(read_once(&l, MIB, XFER_MS), FERRY_ERR_REMOTE_DISCONNECT); /* until reloaded */
    FY_CHECK_EQ(ferry_md_fetch_wait(l.agent, PEER_NAME, HOST, l.peer.port, NULL, FETCH_MS),
                FERRY_OK);
    FY_CHECK_EQ(ferry_md_generation(l.agent, PEER_NAME, &gen2), FERRY_OK);
    FY_CHECK_EQ(gen2, gen); /* the same instance: handles stay valid */
    FY_CHECK_EQ(read_once(&l, MIB, XFER_MS), FERRY_OK);
    FY_CHECK_EQ(post_wait(old, XFER_MS), FERRY_OK);
    FY_CHECK(rt_pattern_diff(l.mem, 1, 0, 4 * MIB) < 0); /* the peer's pattern(1) */
    FY_CHECK_EQ(ferry_xfer_release(old), FERRY_OK);
    life_close(&l);
}

/* ---- restart ---- */

/* kill -9 during READs, restart, first READ: TRIALS times. Every first
 * READ completes, in every mode. (With UCX's shared-memory FIFOs, which
 * dual and none leave out unless UCX_TLS or the tls param names them, a
 * peer killed while it wrote into this worker's FIFO could leave a slot
 * half written, and UCX delivered nothing behind it: first READs ended
 * with the backend's no-progress TIMEOUT instead. Run with UCX_TLS=all to
 * see it.) */
static void test_restart(void)
{
    life l;
    FY_REQUIRE(life_open(&l) == FERRY_OK);
    unsigned ok = 0;
    for (unsigned t = 0; t < TRIALS; t++) {
        FY_REQUIRE(peer_start(&l, false));
        FY_REQUIRE(exchange(&l) == FERRY_OK);
        ferry_xfer *xf = NULL, *held = NULL;
        FY_REQUIRE(make(&l, FERRY_OP_READ, SIZE / MIB, MIB, &xf) == FERRY_OK);
        /* A request the application still holds keeps the old instance's
         * state (its endpoints) alive across the restart. */
        FY_REQUIRE(make(&l, FERRY_OP_WRITE, 1, 4096, &held) == FERRY_OK);
        kill_during(&l, xf);
        bury(&l, xf);
        FY_REQUIRE(peer_start(&l, false));
        FY_REQUIRE(exchange(&l) == FERRY_OK);
        ferry_status rc = read_once(&l, 4096, XFER_MS);
        FY_CHECK_EQ(ferry_xfer_post(held), FERRY_ERR_STALE);
        ferry_xfer_release(held);
        printf("# trial %u: first READ to the new instance: %s\n", t, ferry_status_name(rc));
        FY_CHECK(rc != FERRY_IN_PROGRESS);
        ok += rc == FERRY_OK;
        FY_CHECK_EQ(rt_stop(&l.peer), 0);
    }
    printf("# %u of %u first READs completed\n", ok, TRIALS);
    FY_CHECK_EQ(ok, TRIALS);
    life_close(&l);
}

/* ---- requests ---- */

/* Runs fn with stdout and stderr in a file (UCX logs to stdout unless
 * UCX_LOG_FILE says otherwise, read when UCX was loaded); counts the lines
 * of it that hold what. */
static unsigned output_count(void (*fn)(life *), life *l, const char *what)
{
    char path[] = "/tmp/ferry-life-XXXXXX";
    int fd = mkstemp(path), out = dup(STDOUT_FILENO), err = dup(STDERR_FILENO);
    FILE *f = fd >= 0 ? fdopen(fd, "w+") : NULL;
    if (!f || out < 0 || err < 0) {
        printf("# cannot capture the output\n");
        return UINT32_MAX;
    }
    unlink(path);
    fflush(stdout);
    fflush(stderr);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    fn(l);
    fflush(stdout);
    fflush(stderr);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    close(out);
    close(err);
    unsigned n = 0;
    char line[1024];
    rewind(f);
    while (fgets(line, sizeof(line), f))
        if (strstr(line, what)) {
            if (n++ < 3)
                printf("# %s", line);
        }
    fclose(f);
    return n;
}

static void destroy_agent(life *l)
{
    ferry_agent_destroy(l->agent);
    l->agent = NULL;
}

/* A peer killed during READs, another during WRITEs, then the agent goes. */
static void test_requests(void)
{
    life l;
    FY_REQUIRE(life_open(&l) == FERRY_OK);
    for (int op = 0; op < 2; op++) {
        FY_REQUIRE(peer_start(&l, false));
        FY_REQUIRE(exchange(&l) == FERRY_OK);
        ferry_xfer *xf = NULL;
        FY_REQUIRE(make(&l, op ? FERRY_OP_WRITE : FERRY_OP_READ, SIZE / MIB, MIB, &xf) == FERRY_OK);
        kill_during(&l, xf);
        bury(&l, xf);
    }
    rt_watchdog(HANG_S, "destroying the agent");
    unsigned n = output_count(destroy_agent, &l, "not returned to mpool");
    rt_watchdog(0, "");
    FY_CHECK_EQ(n, 0);
    life_close(&l);
}

/* ---- main ---- */

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {{"alloc", test_alloc},
             {"fds", test_fds},
             {"resume", test_resume},
             {"restart", test_restart},
             {"requests", test_requests}};

/* Skips the program when this build has no UCX plugin. */
static void probe_ucx(void)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = "life-probe";
    ferry_agent *a = NULL;
    ferry_backend *be;
    ferry_status rc = ferry_agent_create(&cfg, &a);
    if (rc == FERRY_OK)
        rc = ferry_backend_create(a, "UCX", NULL, 0, &be);
    ferry_agent_destroy(a);
    if (rc == FERRY_ERR_NOT_FOUND)
        fy_test_skip_all("UCX plugin not built");
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: test_ucx_life PEER_PROG MODE TEST...\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    peer_prog = argv[1];
    mode = argv[2];
    probe_ucx();
    rt_proc_init();
    setenv("UCX_LOG_FILE", "stderr", 0); /* peers: their stdout carries replies */
    params[num_params++] = (ferry_param){"error_handling", mode};
    for (int i = 3; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (eq && num_params <= MAX_PARAMS) {
            extra[num_params - 1] = argv[i];
            params[num_params++] = (ferry_param){strndup(argv[i], (size_t)(eq - argv[i])), eq + 1};
        }
    }
    for (int i = 3; i < argc; i++)
        for (size_t k = 0; k < sizeof(tests) / sizeof(tests[0]); k++)
            if (!strcmp(argv[i], tests[k].name))
                fy_test_run(tests[k].name, tests[k].fn);
    return fy_test_done();
}
