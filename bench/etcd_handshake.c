/* SPDX-License-Identifier: Apache-2.0 */
/* The metadata handshake through the side channel and through etcd.
 *
 *   etcd_handshake ENDPOINT [ROUNDS] [REGIONS]     (defaults 1000, 64)
 *
 * Two agents in this process with the LOCAL backend and REGIONS registered
 * regions each. A side-channel round is a ferry_md_fetch_wait of A's full
 * metadata from A's listener and a ferry_md_send_local of B's to B's
 * listener; an etcd round is A's ferry_md_send_local (a put on its lease)
 * and B's ferry_md_fetch_wait (a range, then the load). Alternating blocks
 * of 100 rounds; median and 99th percentile in microseconds.
 * Build: cc -O2 -Iinclude bench/etcd_handshake.c -Lbuild -lferry
 *        -Wl,-rpath,$PWD/build -o build/etcd_handshake */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <ferry/ferry.h>

#define BLOCK 100

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static ferry_agent *agent_new(const char *name, const char *etcd, unsigned regions, uint8_t *mem)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = name;
    cfg.listen = true;
    cfg.listen_host = "127.0.0.1";
    cfg.etcd_endpoints = etcd;
    ferry_agent *a = NULL;
    ferry_backend *be;
    ferry_dlist *l = NULL;
    ferry_status rc = ferry_agent_create(&cfg, &a);
    if (rc == FERRY_OK)
        rc = ferry_backend_create(a, "LOCAL", NULL, 0, &be);
    if (rc == FERRY_OK)
        rc = ferry_dlist_create(FERRY_MEM_DRAM, regions, &l);
    for (unsigned i = 0; rc == FERRY_OK && i < regions; i++)
        rc = ferry_dlist_add(l, (uintptr_t)mem + (uint64_t)i * 8192, 4096, 0);
    if (rc == FERRY_OK)
        rc = ferry_register(a, l, NULL);
    ferry_dlist_destroy(l);
    if (rc != FERRY_OK) {
        ferry_agent_destroy(a);
        return NULL;
    }
    return a;
}

static double round_sc(ferry_agent *a, ferry_agent *b)
{
    uint16_t pa = 0;
    ferry_md_listen_port(a, &pa);
    double t0 = now_us();
    if (ferry_md_fetch_wait(b, "hs-a", "127.0.0.1", pa, NULL, 5000) != FERRY_OK ||
        ferry_md_send_local(b, "127.0.0.1", pa) != FERRY_OK)
        return -1;
    return now_us() - t0;
}

static double round_etcd(ferry_agent *a, ferry_agent *b)
{
    double t0 = now_us();
    if (ferry_md_send_local(a, NULL, 0) != FERRY_OK ||
        ferry_md_fetch_wait(b, "hs-a", NULL, 0, NULL, 5000) != FERRY_OK)
        return -1;
    return now_us() - t0;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double pct(double *v, size_t n, double q)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return v[(size_t)(q * (double)(n - 1))];
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: etcd_handshake ENDPOINT [ROUNDS] [REGIONS]\n");
        return 2;
    }
    unsigned rounds = argc > 2 ? (unsigned)atoi(argv[2]) : 1000;
    unsigned regions = argc > 3 ? (unsigned)atoi(argv[3]) : 64;
    uint8_t *mem = calloc(regions ? regions : 1, 8192);
    double *t[2] = {calloc(rounds + 1, sizeof(double)), calloc(rounds + 1, sizeof(double))};
    ferry_agent *a = mem ? agent_new("hs-a", argv[1], regions, mem) : NULL;
    ferry_agent *b = a ? agent_new("hs-b", argv[1], regions, mem) : NULL;
    if (!b || !t[0] || !t[1] || rounds < BLOCK || !regions) {
        fprintf(stderr, "etcd_handshake: setup failed\n");
        return 1;
    }
    size_t n[2] = {0, 0};
    while (n[0] < rounds)
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < BLOCK && n[k] < rounds; i++) {
                double us = k ? round_etcd(a, b) : round_sc(a, b);
                if (us < 0) {
                    fprintf(stderr, "etcd_handshake: a round failed: %s\n", ferry_md_error());
                    return 1;
                }
                t[k][n[k]++] = us;
            }
    printf("| regions | rounds | side channel: median us | p99 | etcd: median us | p99 |\n");
    printf("| ---: | ---: | ---: | ---: | ---: | ---: |\n");
    printf("| %u | %u | %.1f | %.1f | %.1f | %.1f |\n", regions, rounds, pct(t[0], rounds, 0.5),
           pct(t[0], rounds, 0.99), pct(t[1], rounds, 0.5), pct(t[1], rounds, 0.99));
    ferry_agent_destroy(b);
    ferry_agent_destroy(a);
    free(mem);
    free(t[0]);
    free(t[1]);
    return 0;
}
