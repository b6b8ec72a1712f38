/* SPDX-License-Identifier: Apache-2.0 */
/* The C side of python/bench/overhead.py: make a request from two prepared
 * lists by index, post it, poll it to completion, release it; the same loop
 * the Python side runs through ferry.nixl. LOCAL backend, loopback, inline
 * copies, so the figures are software cost, not bandwidth.
 *
 * Usage: overhead_c N_INDICES DESC_BYTES REPEATS
 * Prints: "c <n> <median ns> <best ns>" per request. */
#include <ferry/ferry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(call)                                                                                \
    do {                                                                                           \
        ferry_status rc_ = (call);                                                                 \
        if (rc_ < 0) {                                                                             \
            fprintf(stderr, "%s: %s\n", #call, ferry_strerror(rc_));                               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static ferry_agent *bench_agent(void)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = "bench";
    ferry_agent *a;
    ferry_backend *be;
    CHECK(ferry_agent_create(&cfg, &a));
    ferry_param params[] = {{"workers", "0"}, {"inline_max", "1099511627776"}};
    CHECK(ferry_backend_create(a, "LOCAL", params, 2, &be));
    return a;
}

/* n descriptors of len bytes over buf, prepared for agent_name (NULL: local). */
static ferry_prepped *prep_blocks(ferry_agent *a, const char *agent_name, uint8_t *buf, size_t n,
                                  size_t len)
{
    ferry_dlist *l;
    ferry_prepped *p;
    CHECK(ferry_dlist_create(FERRY_MEM_DRAM, n, &l));
    for (size_t i = 0; i < n; i++)
        CHECK(ferry_dlist_add(l, (uintptr_t)(buf + i * len), len, 0));
    CHECK(ferry_prep_dlist(a, agent_name, l, NULL, &p));
    ferry_dlist_destroy(l);
    return p;
}

/* A random permutation (no merging), as the Python side uses. */
static uint32_t *shuffled(size_t n)
{
    uint32_t *idx = malloc(n * sizeof(*idx));
    for (size_t i = 0; i < n; i++)
        idx[i] = (uint32_t)i;
    srand(7);
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)rand() % (i + 1);
        uint32_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
    return idx;
}

static double one_request(ferry_agent *a, ferry_prepped *local, ferry_prepped *remote,
                          const uint32_t *idx, size_t n)
{
    ferry_xfer *x;
    double t0 = now_ns();
    CHECK(ferry_xfer_make(a, FERRY_OP_WRITE, local, idx, remote, idx, n, NULL, &x));
    ferry_status rc = ferry_xfer_post(x);
    while (rc == FERRY_IN_PROGRESS)
        rc = ferry_xfer_status(x);
    CHECK(rc);
    ferry_xfer_release(x);
    return now_ns() - t0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: overhead_c N_INDICES DESC_BYTES REPEATS\n");
        return 2;
    }
    size_t n = strtoul(argv[1], NULL, 10), len = strtoul(argv[2], NULL, 10);
    int repeats = atoi(argv[3]);
    ferry_agent *a = bench_agent();
    uint8_t *src = aligned_alloc(4096, n * len), *dst = aligned_alloc(4096, n * len);
    memset(src, 1, n * len);
    ferry_dlist *regs;
    CHECK(ferry_dlist_create(FERRY_MEM_DRAM, 2, &regs));
    CHECK(ferry_dlist_add(regs, (uintptr_t)src, n * len, 0));
    CHECK(ferry_dlist_add(regs, (uintptr_t)dst, n * len, 0));
    CHECK(ferry_register(a, regs, NULL));
    void *blob;
    size_t blob_len;
    char name[FERRY_NAME_MAX + 1];
    CHECK(ferry_md_get_local(a, &blob, &blob_len));
    CHECK(ferry_md_load(a, blob, blob_len, name, sizeof(name)));
    ferry_free(blob);
    ferry_prepped *local = prep_blocks(a, NULL, src, n, len);
    ferry_prepped *remote = prep_blocks(a, name, dst, n, len);
    uint32_t *idx = shuffled(n);
    double *t = malloc((size_t)repeats * sizeof(*t));
    for (int r = 0; r < repeats / 10 + 1; r++) /* warm-up */
        one_request(a, local, remote, idx, n);
    for (int r = 0; r < repeats; r++)
        t[r] = one_request(a, local, remote, idx, n);
    qsort(t, (size_t)repeats, sizeof(*t), cmp_double);
    printf("c %zu %.0f %.0f\n", n, t[repeats / 2], t[0]);
    ferry_prepped_release(local);
    ferry_prepped_release(remote);
    ferry_dlist_destroy(regs);
    ferry_agent_destroy(a);
    free(src);
    free(dst);
    free(idx);
    free(t);
    return 0;
}
