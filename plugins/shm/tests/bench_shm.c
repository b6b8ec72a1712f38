/* SPDX-License-Identifier: Apache-2.0 */
/* SHM between two processes beside memcpy in one process (not a test:
 * bench/shm_bench.sh runs it).
 *
 *   bench_shm SHM_PEER memfd|malloc [min_seconds]
 *
 * The target is an shm_peer process with a 64 MiB buffer of the given
 * kind; ours is of the same kind. For each op (WRITE, READ), block size
 * (4 KiB .. 64 MiB) and batch (1, and 64 while 64 blocks fit the buffer),
 * one request of `batch` descriptors is made once and posted again and
 * again for at least min_seconds (default 0.3); the memcpy column copies
 * the same blocks between two buffers of this process; best of three of
 * each, alternating. One row per cell:
 * op, block, batch, SHM GB/s, memcpy GB/s, ratio. */
#include <inttypes.h>
#include <time.h>

#include <ferry/ferry.h>

#include "shm_proc.h"

#define BUF (64u << 20)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct bench {
    ferry_agent *agent;
    ferry_backend *shm;
    uint8_t *buf, *other; /* ours, and memcpy's second buffer */
    sp_peer tgt;
    double min_s;
} bench;

static ferry_dlist *blocks(uint64_t base, uint64_t block, unsigned batch)
{
    ferry_dlist *l = NULL;
    if (ferry_dlist_create(FERRY_MEM_DRAM, batch, &l) != FERRY_OK)
        return NULL;
    for (unsigned i = 0; i < batch; i++)
        ferry_dlist_add(l, base + (uint64_t)i * block, block, 0);
    return l;
}

/* GB/s of reposting one request, or 0 on an error. */
static double run_shm(bench *b, ferry_xfer_op op, uint64_t block, unsigned batch)
{
    ferry_dlist *l = blocks((uintptr_t)b->buf, block, batch),
                *r = blocks(b->tgt.base, block, batch);
    ferry_xfer_opts o;
    ferry_xfer_opts_init(&o);
    o.skip_merge = true; /* batch descriptors stay batch descriptors */
    ferry_xfer *x = NULL;
    double gbs = 0;
    if (ferry_xfer_create(b->agent, op, l, r, "tgt", &o, &x) == FERRY_OK) {
        double t0 = now_s(), t = 0;
        uint64_t n = 0;
        do {
            if (st_wait(x, ferry_xfer_post(x)) != FERRY_OK)
                break;
            n++;
            t = now_s() - t0;
        } while (t < b->min_s);
        gbs = t > 0 ? (double)n * (double)block * batch / t / 1e9 : 0;
    }
    ferry_xfer_release(x);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    return gbs;
}

static double run_memcpy(bench *b, ferry_xfer_op op, uint64_t block, unsigned batch)
{
    uint8_t *dst = op == FERRY_OP_WRITE ? b->other : b->buf;
    const uint8_t *src = op == FERRY_OP_WRITE ? b->buf : b->other;
    double t0 = now_s(), t = 0;
    uint64_t n = 0;
    do {
        for (unsigned i = 0; i < batch; i++)
            memcpy(dst + (size_t)i * block, src + (size_t)i * block, block);
        n++;
        t = now_s() - t0;
    } while (t < b->min_s);
    return (double)n * (double)block * batch / t / 1e9;
}

static bool bench_open(bench *b, const char *kind)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = "ini";
    void *p = NULL;
    if (ferry_agent_create(&cfg, &b->agent) != FERRY_OK ||
        ferry_backend_create(b->agent, "SHM", NULL, 0, &b->shm) != FERRY_OK)
        return false;
    if (!strcmp(kind, "memfd") &&
        ferry_mem_alloc(b->agent, b->shm, FERRY_MEM_DRAM, BUF, 0, &p) != FERRY_OK)
        return false;
    b->buf = p ? p : aligned_alloc(4096, BUF);
    b->other = aligned_alloc(4096, BUF);
    ferry_dlist *l = blocks((uintptr_t)b->buf, BUF, 1);
    if (!b->buf || !b->other || !l || ferry_register(b->agent, l, NULL) != FERRY_OK)
        return false;
    ferry_dlist_destroy(l);
    memset(b->buf, 1, BUF);
    memset(b->other, 2, BUF);
    char arg[32];
    snprintf(arg, sizeof(arg), "buf=%u", BUF);
    return sp_start(&b->tgt, "tgt", kind, arg, NULL) && st_md_load(b->agent, b->tgt.md) == FERRY_OK;
}

/* Best of three, the two alternating, so that a burst of load from other
 * processes hits both alike. */
static void bench_cell(bench *b, ferry_xfer_op op, uint64_t block, unsigned batch)
{
    double shm = 0, mc = 0;
    for (int rep = 0; rep < 3; rep++) {
        double s = run_shm(b, op, block, batch), m = run_memcpy(b, op, block, batch);
        shm = s > shm ? s : shm;
        mc = m > mc ? m : mc;
    }
    printf("| %-5s | %8" PRIu64 " KiB | %5u | %7.2f | %7.2f | %5.2f |\n",
           op == FERRY_OP_WRITE ? "WRITE" : "READ", block >> 10, batch, shm, mc,
           mc > 0 ? shm / mc : 0);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    bench b = {.min_s = argc > 3 ? atof(argv[3]) : 0.3};
    if (argc < 3)
        return 2;
    sp_exe = argv[1];
    if (!bench_open(&b, argv[2])) {
        fprintf(stderr, "bench_shm: setup failed: %s\n", ferry_last_error());
        sp_kill(&b.tgt);
        return 1;
    }
    printf(
        "| op | block | batch | SHM GB/s | memcpy GB/s | SHM/memcpy |\n| --- | --- | --- | --- | "
        "--- | --- |\n");
    for (int op = 0; op < 2; op++)
        for (uint64_t block = 4096; block <= BUF; block *= 4)
            for (unsigned batch = 1; batch <= 64; batch *= 64)
                if (block * batch <= BUF)
                    bench_cell(&b, op ? FERRY_OP_READ : FERRY_OP_WRITE, block, batch);
    sp_kill(&b.tgt);
    ferry_agent_destroy(b.agent);
    free(b.other);
    return 0;
}
