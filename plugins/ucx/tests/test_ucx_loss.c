/* SPDX-License-Identifier: Apache-2.0 */
/* A READ never reports success with data missing. A ucx_peer process
 * serves 32768 scattered 4 KiB blocks (128 MiB); this driver READs them
 * all in one request, again and again, while two busy loops load both
 * cores, and kills the peer with SIGKILL in the middle of a READ. Every
 * READ that returns OK must have brought every byte (checked against the
 * peer's pattern, block by block); the READ cut by the kill must end with
 * an error, within a bound, and so must the next one. Several trials, the
 * kill at a different moment each time.
 *
 *   test_ucx_loss PEER_PROG [key=value ...]   (UCX params for both sides) */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <ferry/ferry.h>

#include "dlists.h"
#include "harness.h"
#include "rt_proc.h"

#define BLOCK      4096u
#define BLOCKS     32768u
#define SIZE       ((size_t)BLOCK * BLOCKS)
#define PEER_NAME  "loss-target"
#define HOST       "127.0.0.1"
#define END_MS     20000u /* a READ cut by a kill must end within this */
#define TRIALS     4
#define PEER_SEED  1 /* ucx_peer fills its buffer with pattern(1) */
#define MAX_PARAMS 8

static struct {
    const char *peer_prog;
    ferry_param params[MAX_PARAMS];
    char *raw[MAX_PARAMS];
    size_t n;
} opt;

typedef struct driver {
    ferry_agent *agent;
    uint8_t *mem;
    rt_peer peer;
    ferry_xfer *x;
    unsigned ok_reads, verified;
} driver;

/* Remote block of local block i: scattered, so no two merge. */
static uint64_t remote_block(uint32_t i)
{
    return (uint64_t)i * 7919u % BLOCKS;
}

static pid_t busy_loop(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        alarm(120); /* backstop */
        for (volatile uint64_t spin = 0;; spin++)
            ;
    }
    return pid;
}

static bool peer_start(driver *d)
{
    char size[32];
    snprintf(size, sizeof(size), "%zu", SIZE);
    const char *argv[RT_MAX_ARGS] = {opt.peer_prog, PEER_NAME, size, "1", HOST};
    for (size_t i = 0; i < opt.n; i++)
        argv[5 + i] = opt.raw[i];
    return rt_spawn(&d->peer, (char **)argv) && rt_handshake(&d->peer);
}

static ferry_status lists(driver *d, ferry_dlist **local, ferry_dlist **remote)
{
    ferry_status rc = ferry_dlist_create(FERRY_MEM_DRAM, BLOCKS, local);
    if (rc == FERRY_OK)
        rc = ferry_dlist_create(FERRY_MEM_DRAM, BLOCKS, remote);
    for (uint32_t i = 0; rc == FERRY_OK && i < BLOCKS; i++) {
        rc = ferry_dlist_add(*local, (uintptr_t)d->mem + (uint64_t)i * BLOCK, BLOCK, 0);
        if (rc == FERRY_OK)
            rc = ferry_dlist_add(*remote, d->peer.base + remote_block(i) * BLOCK, BLOCK, 0);
    }
    return rc;
}

/* The driver's agent, the peer, its metadata, and the READ of every block. */
static bool driver_open(driver *d)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = "loss-driver";
    ferry_backend *be;
    ferry_dlist *mine = NULL, *local = NULL, *remote = NULL;
    d->mem = aligned_alloc(4096, SIZE);
    ferry_status rc = d->mem ? ferry_agent_create(&cfg, &d->agent) : FERRY_ERR_NO_MEMORY;
    if (rc == FERRY_OK)
        rc = ferry_backend_create(d->agent, "UCX", opt.params, opt.n, &be);
    if (rc == FERRY_OK && (mine = fy_t_range_list((uintptr_t)d->mem, SIZE)) == NULL)
        rc = FERRY_ERR_NO_MEMORY;
    if (rc == FERRY_OK)
        rc = ferry_register(d->agent, mine, NULL);
    if (rc == FERRY_OK)
        rc = peer_start(d) ? FERRY_OK : FERRY_ERR_IO;
    if (rc == FERRY_OK)
        rc = ferry_md_fetch_wait(d->agent, PEER_NAME, HOST, d->peer.port, NULL, RT_START_MS);
    if (rc == FERRY_OK)
        rc = lists(d, &local, &remote);
    if (rc == FERRY_OK)
        rc = ferry_xfer_create(d->agent, FERRY_OP_READ, local, remote, PEER_NAME, NULL, &d->x);
    ferry_dlist_destroy(mine);
    ferry_dlist_destroy(local);
    ferry_dlist_destroy(remote);
    if (rc != FERRY_OK)
        printf("# setup: %s\n", ferry_status_name(rc));
    return rc == FERRY_OK;
}

static void driver_close(driver *d)
{
    if (d->x)
        ferry_xfer_release(d->x);
    if (d->peer.pid)
        (void)rt_reap(&d->peer, RT_STOP_MS);
    ferry_agent_destroy(d->agent);
    free(d->mem);
    memset(d, 0, sizeof(*d));
}

/* Every block as the peer holds it: the count of wrong blocks. */
static unsigned wrong_blocks(const driver *d)
{
    unsigned bad = 0;
    for (uint32_t i = 0; i < BLOCKS; i++)
        bad += rt_pattern_diff(d->mem + (uint64_t)i * BLOCK, PEER_SEED, remote_block(i) * BLOCK,
                               BLOCK) >= 0;
    return bad;
}

/* Posts the READ and polls it until it ends (bounded); kills the peer
 * kill_after_ms into it when that is not 0 (or when it ends, if it ends
 * sooner). Its final status. */
static ferry_status read_once(driver *d, unsigned kill_after_ms)
{
    memset(d->mem, 0, SIZE);
    uint64_t t0 = rt_now_ms(), kill_at = t0 + kill_after_ms;
    bool killed = false;
    ferry_status rc = ferry_xfer_post(d->x);
    while (rc == FERRY_IN_PROGRESS && rt_now_ms() < t0 + END_MS) {
        if (kill_after_ms && !killed && rt_now_ms() >= kill_at) {
            rt_kill9(&d->peer);
            killed = true;
        }
        rc = ferry_xfer_status(d->x);
    }
    if (kill_after_ms && !killed)
        rt_kill9(&d->peer); /* the READ beat the kill: the next one meets it */
    if (rc == FERRY_OK) {
        unsigned bad = wrong_blocks(d);
        d->ok_reads++;
        d->verified += bad == 0;
        if (bad)
            printf("# READ returned OK with %u of %u blocks wrong\n", bad, BLOCKS);
    }
    return rc;
}

/* One trial: READs until one is cut by the kill (or the peer is gone). */
static void trial(unsigned kill_after_ms)
{
    driver d = {0};
    FY_REQUIRE(driver_open(&d));
    FY_CHECK_EQ(read_once(&d, 0), FERRY_OK); /* a whole READ first */
    ferry_status cut = read_once(&d, kill_after_ms);
    printf("# kill %u ms into a READ: %s\n", kill_after_ms, ferry_status_name(cut));
    FY_CHECK(cut != FERRY_IN_PROGRESS);
    ferry_status next = cut == FERRY_OK ? read_once(&d, 0) : ferry_xfer_status(d.x);
    FY_CHECK(next != FERRY_OK && next != FERRY_IN_PROGRESS);
    FY_CHECK_EQ(d.verified, d.ok_reads); /* OK always meant every byte */
    driver_close(&d);
}

static void test_kill_during_read(void)
{
    pid_t load[2] = {busy_loop(), busy_loop()};
    static const unsigned kill_ms[TRIALS] = {5, 30, 80, 160};
    for (unsigned t = 0; t < TRIALS; t++)
        trial(kill_ms[t]);
    for (int i = 0; i < 2; i++) {
        kill(load[i], SIGKILL);
        waitpid(load[i], NULL, 0);
    }
}

static bool parse_args(int argc, char **argv)
{
    if (argc < 2 || (size_t)argc - 2 > MAX_PARAMS)
        return false;
    opt.peer_prog = argv[1];
    for (int i = 2; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq)
            return false;
        opt.raw[opt.n] = strdup(argv[i]); /* key=value, for the peer */
        *eq = '\0';
        opt.params[opt.n++] = (ferry_param){argv[i], eq + 1};
    }
    return true;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!parse_args(argc, argv)) {
        printf("Bail out! usage: test_ucx_loss PEER_PROG [key=value ...]\n");
        return 1;
    }
    rt_proc_init();
    rt_watchdog(240, "test_ucx_loss");
    FY_RUN(test_kill_during_read);
    return fy_test_done();
}
