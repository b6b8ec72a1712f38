/* SPDX-License-Identifier: Apache-2.0 */
/* What authentication costs the metadata handshake.
 *
 *   ferry-handshake [ROUNDS] [REGIONS]      (defaults 2000, 64)
 *
 * Two agents in this process, a listener and a fetcher, each with the
 * LOCAL backend and REGIONS registered regions. A round is one
 * ferry_md_fetch_wait of the listener's full metadata over loopback TCP
 * (connect, FETCH, REPLY with the blob, load) and one ferry_md_send_local
 * the other way (LOAD, REPLY). Run without a key (the anchor) and with one
 * (every frame and blob signed and checked, HMAC-SHA256), alternating in
 * blocks of 100 rounds; prints the median and the 99th percentile of
 * each, in microseconds, and the ratio. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ferry/ferry.h>
#include "tool-common.h"

#define BLOCK 100
#define KEY   "handshake-benchmark-key-0123456789abcdef"

typedef struct pair {
    ferry_agent *listener, *fetcher;
    uint16_t port;
    uint8_t *mem;
} pair;

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static ferry_status agent_new(const char *name, bool listen, const char *key, unsigned regions,
                              uint8_t *mem, ferry_agent **out)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = name;
    cfg.listen = listen;
    cfg.listen_host = "127.0.0.1";
    cfg.auth_key = key;
    ferry_backend *be;
    ferry_dlist *l = NULL;
    ferry_status rc = ferry_agent_create(&cfg, out);
    if (rc == FERRY_OK)
        rc = ferry_backend_create(*out, "LOCAL", NULL, 0, &be);
    if (rc == FERRY_OK)
        rc = ferry_dlist_create(FERRY_MEM_DRAM, regions, &l);
    for (unsigned i = 0; rc == FERRY_OK && i < regions; i++)
        rc = ferry_dlist_add(l, (uintptr_t)mem + (uint64_t)i * 8192, 4096, 0);
    if (rc == FERRY_OK)
        rc = ferry_register(*out, l, NULL);
    ferry_dlist_destroy(l);
    return rc;
}

static ferry_status pair_open(pair *p, const char *key, unsigned regions)
{
    p->mem = calloc(regions, 8192);
    if (!p->mem)
        return FERRY_ERR_NO_MEMORY;
    ferry_status rc = agent_new("hs-listener", true, key, regions, p->mem, &p->listener);
    if (rc == FERRY_OK)
        rc = agent_new("hs-fetcher", true, key, regions, p->mem, &p->fetcher);
    if (rc == FERRY_OK)
        rc = ferry_md_listen_port(p->listener, &p->port);
    return rc;
}

static void pair_close(pair *p)
{
    ferry_agent_destroy(p->fetcher);
    ferry_agent_destroy(p->listener);
    free(p->mem);
}

/* One round; its time in us, or -1 on an error. */
static double round_us(pair *p, uint16_t back_port)
{
    double t0 = now_us();
    if (ferry_md_fetch_wait(p->fetcher, "hs-listener", "127.0.0.1", p->port, NULL, 5000) !=
            FERRY_OK ||
        ferry_md_send_local(p->listener, "127.0.0.1", back_port) != FERRY_OK)
        return -1;
    return now_us() - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, size_t n, double q)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return v[(size_t)(q * (double)(n - 1))];
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ferry-handshake [ROUNDS >= %d] [REGIONS >= 1]   (defaults 2000, 64)\n"
            "What authentication costs the metadata handshake (fetch and send, with and\n"
            "without a key). Exit status: 0 done, 1 failed, 2 bad usage.\n",
            BLOCK);
}

int main(int argc, char **argv)
{
    if (argc > 1 && ft_std_arg("ferry-handshake", argv[1], usage))
        return FT_EXIT_OK;
    if (argc > 3 || (argc > 1 && argv[1][0] == '-')) {
        usage(stderr);
        return FT_EXIT_USAGE;
    }
    unsigned rounds = argc > 1 ? (unsigned)atoi(argv[1]) : 2000;
    unsigned regions = argc > 2 ? (unsigned)atoi(argv[2]) : 64;
    if (rounds < BLOCK || !regions) {
        usage(stderr);
        return FT_EXIT_USAGE;
    }
    pair plain = {0}, keyed = {0};
    uint16_t plain_back = 0, keyed_back = 0;
    double *t[2] = {calloc(rounds, sizeof(double)), calloc(rounds, sizeof(double))};
    if (!t[0] || !t[1] || pair_open(&plain, NULL, regions) != FERRY_OK ||
        pair_open(&keyed, KEY, regions) != FERRY_OK ||
        ferry_md_listen_port(plain.fetcher, &plain_back) != FERRY_OK ||
        ferry_md_listen_port(keyed.fetcher, &keyed_back) != FERRY_OK) {
        fprintf(stderr, "ferry-handshake: setup failed\n");
        return 1;
    }
    size_t n[2] = {0, 0};
    while (n[0] < rounds)
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < BLOCK && n[k] < rounds; i++) {
                double us = k ? round_us(&keyed, keyed_back) : round_us(&plain, plain_back);
                if (us < 0) {
                    fprintf(stderr, "ferry-handshake: a round failed (%s)\n",
                            k ? "with a key" : "without a key");
                    return 1;
                }
                t[k][n[k]++] = us;
            }
    double med0 = pct(t[0], rounds, 0.5), med1 = pct(t[1], rounds, 0.5);
    printf("| regions | rounds | no key: median us | p99 | key: median us | p99 | ratio |\n");
    printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    printf("| %u | %u | %.1f | %.1f | %.1f | %.1f | %.2f |\n", regions, rounds, med0,
           pct(t[0], rounds, 0.99), med1, pct(t[1], rounds, 0.99), med1 / med0);
    pair_close(&plain);
    pair_close(&keyed);
    free(t[0]);
    free(t[1]);
    return 0;
}
