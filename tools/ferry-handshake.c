/* SPDX-License-Identifier: Apache-2.0 */
/* What the metadata handshake costs: through the side channel (with and
 * without a key), etcd and a PyTorch TCPStore.
 *
 *   ferry-handshake [--etcd URL] [--tcpstore HOST:PORT] [--first N]
 *                   [ROUNDS] [REGIONS]          (defaults 2000, 64; N 50)
 *
 * Agents in this process with the SHM backend, each with REGIONS
 * registered 4 KiB regions.
 *
 * Exchange rounds, alternating in blocks of 100, ROUNDS of each path:
 *   side channel: a ferry_md_fetch_wait of the other's full metadata over
 *     loopback TCP (connect, FETCH, REPLY with the blob, load) and a
 *     ferry_md_send_local back (LOAD, REPLY), without a key (the anchor)
 *     and with one (every frame and blob signed and checked);
 *   etcd, TCPStore (when given): a ferry_md_send_local (publish) and a
 *     ferry_md_fetch_wait by name (read, load).
 * First-transfer rounds (N of each path): from a new agent's start
 * (ferry_agent_create, the SHM backend, one registered buffer) to its first
 * completed READ of 4 KiB from a peer published before: fetch through the
 * path, then the transfer.
 * Prints the median and the 99th percentile of each, in microseconds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ferry/ferry.h>
#include "tool-common.h"

#define BLOCK   100
#define KEY     "handshake-benchmark-key-0123456789abcdef"
#define REGION  4096u
#define NPATHS  4
#define TIMEOUT 5000u

/* Where metadata goes: a listener, or a service. */
typedef struct path {
    const char *label;
    const char *key;      /* side channel with a key */
    const char *etcd;     /* etcd endpoints, or NULL */
    const char *tcpstore; /* TCPStore endpoint, or NULL */
} path;

typedef struct pair {
    const path *how;
    ferry_agent *a, *b; /* a publishes (or listens), b fetches */
    uint16_t port_a, port_b;
    uint8_t *mem;
} pair;

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static bool via_service(const path *how)
{
    return how->etcd || how->tcpstore;
}

/* listen: a listener on the side channel's paths (a new agent only
 * fetches, and needs none). */
static ferry_status agent_new(const char *name, const path *how, bool listen, uint8_t *mem,
                              unsigned regions, ferry_agent **out)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = name;
    cfg.listen = listen && !via_service(how);
    cfg.listen_host = "127.0.0.1";
    cfg.auth_key = how->key;
    cfg.etcd_endpoints = how->etcd;
    cfg.tcpstore_endpoint = how->tcpstore;
    ferry_backend *be;
    ferry_dlist *l = NULL;
    ferry_status rc = ferry_agent_create(&cfg, out);
    if (rc == FERRY_OK)
        rc = ferry_backend_create(*out, "SHM", NULL, 0, &be);
    if (rc == FERRY_OK)
        rc = ferry_dlist_create(FERRY_MEM_DRAM, regions, &l);
    for (unsigned i = 0; rc == FERRY_OK && i < regions; i++)
        rc = ferry_dlist_add(l, (uintptr_t)mem + (uint64_t)i * 2 * REGION, REGION, 0);
    if (rc == FERRY_OK)
        rc = ferry_register(*out, l, NULL);
    ferry_dlist_destroy(l);
    return rc;
}

static ferry_status pair_open(pair *p, const path *how, unsigned regions)
{
    p->how = how;
    p->mem = calloc(regions, 2 * REGION);
    if (!p->mem)
        return FERRY_ERR_NO_MEMORY;
    ferry_status rc = agent_new("hs-a", how, true, p->mem, regions, &p->a);
    if (rc == FERRY_OK)
        rc = agent_new("hs-b", how, true, p->mem, regions, &p->b);
    if (rc == FERRY_OK && !via_service(how))
        rc = ferry_md_listen_port(p->a, &p->port_a);
    if (rc == FERRY_OK && !via_service(how))
        rc = ferry_md_listen_port(p->b, &p->port_b);
    return rc;
}

static void pair_close(pair *p)
{
    ferry_agent_destroy(p->b);
    ferry_agent_destroy(p->a);
    free(p->mem);
    memset(p, 0, sizeof(*p));
}

/* b gets a's metadata through the path (a published it before, or
 * listens). */
static ferry_status fetch_a(ferry_agent *b, const pair *p)
{
    const char *ip = via_service(p->how) ? NULL : "127.0.0.1";
    return ferry_md_fetch_wait(b, "hs-a", ip, p->port_a, NULL, TIMEOUT);
}

/* One exchange round; its time in us, or -1 on an error. */
static double exchange_us(pair *p)
{
    double t0 = now_us();
    ferry_status rc = via_service(p->how) ? ferry_md_send_local(p->a, NULL, 0) : FERRY_OK;
    if (rc == FERRY_OK)
        rc = fetch_a(p->b, p);
    if (rc == FERRY_OK && !via_service(p->how))
        rc = ferry_md_send_local(p->a, "127.0.0.1", p->port_b);
    return rc == FERRY_OK ? now_us() - t0 : -1;
}

static ferry_status read_first(ferry_agent *b, const pair *p, uint8_t *dst)
{
    ferry_dlist *local = NULL, *remote = NULL;
    ferry_xfer *x = NULL;
    ferry_status rc = ferry_dlist_create(FERRY_MEM_DRAM, 1, &local);
    if (rc == FERRY_OK)
        rc = ferry_dlist_add(local, (uintptr_t)dst, REGION, 0);
    if (rc == FERRY_OK)
        rc = ferry_dlist_create(FERRY_MEM_DRAM, 1, &remote);
    if (rc == FERRY_OK)
        rc = ferry_dlist_add(remote, (uintptr_t)p->mem, REGION, 0);
    if (rc == FERRY_OK)
        rc = ferry_xfer_create(b, FERRY_OP_READ, local, remote, "hs-a", NULL, &x);
    if (rc == FERRY_OK)
        rc = ferry_xfer_post(x);
    while (rc == FERRY_IN_PROGRESS)
        rc = ferry_xfer_status(x);
    ferry_xfer_release(x);
    ferry_dlist_destroy(remote);
    ferry_dlist_destroy(local);
    return rc;
}

/* A new agent, from its creation to its first READ from a. */
static double first_us(pair *p, uint8_t *dst)
{
    double t0 = now_us();
    ferry_agent *n = NULL;
    ferry_status rc = agent_new("hs-new", p->how, false, dst, 1, &n);
    if (rc == FERRY_OK)
        rc = fetch_a(n, p);
    if (rc == FERRY_OK)
        rc = read_first(n, p, dst);
    double us = now_us() - t0;
    ferry_agent_destroy(n);
    return rc == FERRY_OK ? us : -1;
}

/* ---- statistics and the run ---- */

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

typedef struct run {
    path paths[NPATHS];
    size_t npaths;
    unsigned rounds, regions, first;
    double *t[NPATHS];
} run;

/* ROUNDS of each path, alternating in blocks. */
static bool run_rounds(run *r, pair *pairs, double (*one)(pair *, uint8_t *), unsigned rounds,
                       uint8_t *dst)
{
    size_t n[NPATHS] = {0};
    while (n[0] < rounds)
        for (size_t k = 0; k < r->npaths; k++)
            for (unsigned i = 0; i < BLOCK && n[k] < rounds; i++) {
                double us = one(&pairs[k], dst);
                if (us < 0) {
                    fprintf(stderr, "ferry-handshake: a round failed (%s): %s\n", r->paths[k].label,
                            ferry_md_error());
                    return false;
                }
                r->t[k][n[k]++] = us;
            }
    return true;
}

static double exchange_one(pair *p, uint8_t *dst)
{
    (void)dst;
    return exchange_us(p);
}

static void print_table(const run *r, const char *what, unsigned rounds)
{
    printf("\n%s (regions %u, rounds %u)\n\n| path | median us | p99 us |\n| --- | ---: | ---: |\n",
           what, r->regions, rounds);
    for (size_t k = 0; k < r->npaths; k++)
        printf("| %s | %.1f | %.1f |\n", r->paths[k].label, pct(r->t[k], rounds, 0.5),
               pct(r->t[k], rounds, 0.99));
}

static bool publish_once(pair *p)
{
    return !via_service(p->how) || ferry_md_send_local(p->a, NULL, 0) == FERRY_OK;
}

static int run_all(run *r)
{
    pair pairs[NPATHS] = {{0}};
    uint8_t *dst = calloc(1, 2 * REGION);
    bool ok = dst != NULL;
    for (size_t k = 0; ok && k < r->npaths; k++) {
        r->t[k] = calloc(r->rounds > r->first ? r->rounds : r->first, sizeof(double));
        ok = r->t[k] && pair_open(&pairs[k], &r->paths[k], r->regions) == FERRY_OK;
    }
    if (!ok)
        fprintf(stderr, "ferry-handshake: setup failed: %s\n", ferry_md_error());
    if (ok && (ok = run_rounds(r, pairs, exchange_one, r->rounds, NULL)))
        print_table(r, "Exchange: publish or send, and fetch", r->rounds);
    for (size_t k = 0; ok && k < r->npaths; k++)
        ok = publish_once(&pairs[k]);
    if (ok && r->first && (ok = run_rounds(r, pairs, first_us, r->first, dst)))
        print_table(r, "New agent to its first READ (4 KiB, SHM) from a published peer", r->first);
    for (size_t k = 0; k < r->npaths; k++) {
        pair_close(&pairs[k]);
        free(r->t[k]);
    }
    free(dst);
    return ok ? FT_EXIT_OK : FT_EXIT_ERROR;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ferry-handshake [--etcd URL] [--tcpstore HOST:PORT] [--first N]\n"
            "                       [ROUNDS >= %d] [REGIONS >= 1]   (defaults 2000, 64; N 50)\n"
            "What the metadata handshake costs: the side channel without and with a key,\n"
            "and etcd and a PyTorch TCPStore when given; then a new agent's start to its\n"
            "first READ from a published peer through each (N rounds, 0: none).\n"
            "Exit status: 0 done, 1 failed, 2 bad usage.\n",
            BLOCK);
}

/* Options first, then the two numbers. False: bad usage. */
static bool parse(run *r, int argc, char **argv)
{
    r->paths[0] = (path){"side channel", NULL, NULL, NULL};
    r->paths[1] = (path){"side channel, key", KEY, NULL, NULL};
    r->npaths = 2;
    r->first = 50;
    int i = 1;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (!strcmp(argv[i], "--etcd"))
            r->paths[r->npaths++] = (path){"etcd", NULL, argv[i + 1], NULL};
        else if (!strcmp(argv[i], "--tcpstore"))
            r->paths[r->npaths++] = (path){"TCPStore", NULL, NULL, argv[i + 1]};
        else if (!strcmp(argv[i], "--first"))
            r->first = (unsigned)atoi(argv[i + 1]);
        else
            return false;
        if (r->npaths > NPATHS)
            return false;
    }
    if (argc - i > 2 || (i < argc && argv[i][0] == '-'))
        return false;
    r->rounds = i < argc ? (unsigned)atoi(argv[i]) : 2000;
    r->regions = i + 1 < argc ? (unsigned)atoi(argv[i + 1]) : 64;
    return r->rounds >= BLOCK && r->regions;
}

int main(int argc, char **argv)
{
    if (argc > 1 && ft_std_arg("ferry-handshake", argv[1], usage))
        return FT_EXIT_OK;
    run r = {0};
    if (!parse(&r, argc, argv)) {
        usage(stderr);
        return FT_EXIT_USAGE;
    }
    return run_all(&r);
}
