/* SPDX-License-Identifier: Apache-2.0 */
/* What a hostile peer can reach through LIBFABRIC. The target is the
 * plugin, driven through its ops (a fake host, no core); the attacker is
 * a bare libfabric endpoint of the same provider, written here, that
 * knows the target's address and its region's real key and sends
 * whatever addresses it likes. The region is 64 KiB with 64 KiB of guard
 * on each side. WRITEs and READs into the guards, across either edge,
 * with a key one off, and with the key of a region deregistered since
 * must move no byte on either side (an error completion, or none at all:
 * a provider may drop what it refuses); the same key inside the region
 * must work, so the attacker itself is known to be able to reach it.
 * With tcp and shm the target's CPU runs the RMA: what this shows is the
 * provider's own check of the key's range.
 *
 *   test_lf_reach PROVIDER [DOMAIN]     (exit 77: provider absent) */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include "common/le.h"
#include "ferry/plugin.h"
#include "harness.h"
#include "lf_test.h"

#define KB      1024u
#define REGION  (64u * KB)
#define GUARD   (64u * KB)
#define WAIT_NS 1000000000ull /* for the attacker's completion */

/* ---- the attacker: a bare endpoint ---- */

typedef struct attacker {
    struct fi_info *info;
    struct fid_fabric *fabric;
    struct fid_domain *domain;
    struct fid_av *av;
    struct fid_cq *cq;
    struct fid_ep *ep;
    struct fid_mr *mr;
    fi_addr_t target;
    bool virt_addr; /* peers address regions by virtual address, else by offset */
} attacker;

static struct fi_info *attacker_info(const char *prov, const char *domain)
{
    struct fi_info *h = fi_allocinfo(), *list = NULL, *pick = NULL;
    if (!h)
        return NULL;
    h->ep_attr->type = FI_EP_RDM;
    h->caps = FI_MSG | FI_RMA | FI_READ | FI_WRITE | FI_REMOTE_READ | FI_REMOTE_WRITE;
    h->mode = FI_CONTEXT | FI_CONTEXT2;
    h->domain_attr->mr_mode =
        FI_MR_ALLOCATED | FI_MR_PROV_KEY | FI_MR_VIRT_ADDR | FI_MR_LOCAL | FI_MR_ENDPOINT;
    h->fabric_attr->prov_name = strdup(prov);
    if (fi_getinfo(FI_VERSION(1, 9), NULL, NULL, 0, h, &list) == 0)
        for (struct fi_info *i = list; i && !pick; i = i->next)
            if (!domain || !strcmp(i->domain_attr->name, domain))
                pick = fi_dupinfo(i);
    fi_freeinfo(list);
    fi_freeinfo(h);
    return pick;
}

/* The target's endpoint address, from its connection info
 * (lf_remote.c: magic u32 | ident_len u16 | addr_len u16 | ident | addr). */
static int attacker_connect(attacker *a, const uint8_t *info, size_t len)
{
    if (len < 8)
        return -FI_EINVAL;
    size_t id_len = (size_t)fy_le_get(info + 4, 2), addr_len = (size_t)fy_le_get(info + 6, 2);
    if (8 + id_len + addr_len != len)
        return -FI_EINVAL;
    return fi_av_insert(a->av, info + 8 + id_len, 1, &a->target, 0, NULL) == 1 ? 0 : -FI_EINVAL;
}

static int attacker_open(attacker *a, const char *prov, const char *domain, uint8_t *buf,
                         size_t len)
{
    struct fi_cq_attr cq_attr = {.format = FI_CQ_FORMAT_MSG, .wait_obj = FI_WAIT_NONE};
    struct fi_av_attr av_attr = {.type = FI_AV_UNSPEC};
    memset(a, 0, sizeof(*a));
    if (!(a->info = attacker_info(prov, domain)))
        return -FI_ENODATA;
    uint64_t mode = a->info->domain_attr->mr_mode;
    a->virt_addr = mode & FI_MR_VIRT_ADDR;
    int rc = fi_fabric(a->info->fabric_attr, &a->fabric, NULL);
    if (!rc)
        rc = fi_domain(a->fabric, a->info, &a->domain, NULL);
    if (!rc)
        rc = fi_cq_open(a->domain, &cq_attr, &a->cq, NULL);
    if (!rc)
        rc = fi_av_open(a->domain, &av_attr, &a->av, NULL);
    if (!rc)
        rc = fi_endpoint(a->domain, a->info, &a->ep, NULL);
    if (!rc)
        rc = fi_ep_bind(a->ep, &a->av->fid, 0);
    if (!rc)
        rc = fi_ep_bind(a->ep, &a->cq->fid, FI_TRANSMIT | FI_RECV);
    if (!rc)
        rc = fi_enable(a->ep);
    if (!rc)
        rc = fi_mr_reg(a->domain, buf, len, FI_READ | FI_WRITE, 0, 7, 0, &a->mr, NULL);
    if (!rc && (mode & FI_MR_ENDPOINT))
        rc = fi_mr_bind(a->mr, &a->ep->fid, 0);
    if (!rc && (mode & FI_MR_ENDPOINT))
        rc = fi_mr_enable(a->mr);
    return rc;
}

static void attacker_close(attacker *a)
{
    struct fid *fids[] = {a->ep ? &a->ep->fid : NULL,         a->mr ? &a->mr->fid : NULL,
                          a->av ? &a->av->fid : NULL,         a->cq ? &a->cq->fid : NULL,
                          a->domain ? &a->domain->fid : NULL, a->fabric ? &a->fabric->fid : NULL};
    for (size_t i = 0; i < sizeof(fids) / sizeof(fids[0]); i++)
        if (fids[i])
            fi_close(fids[i]);
    fi_freeinfo(a->info);
}

/* ---- the world of one test ---- */

typedef struct world {
    lf_inst t;
    attacker a;
    uint8_t *tbuf, *abuf; /* GUARD + REGION + GUARD bytes each */
    void *treg;
    uint64_t key;
} world;

static const char *PROV, *DOMAIN;

static ferry_status world_target(world *w)
{
    ferry_desc d = {(uintptr_t)w->tbuf + GUARD, REGION, 0};
    void *pub = NULL, *info = NULL;
    size_t pub_len = 0, info_len = 0;
    ferry_status rc = lf_inst_open(&w->t, "reach-target", 0x1111);
    if (rc == FERRY_OK)
        rc = D->ops->reg(w->t.priv, FERRY_MEM_DRAM, &d, NULL, 0, &w->treg, &pub, &pub_len);
    if (rc == FERRY_OK && pub_len >= 28) /* lf_mem.c: magic | addr | len | key */
        w->key = fy_le_get((uint8_t *)pub + 20, 8);
    if (rc == FERRY_OK)
        rc = D->ops->conn_info(w->t.priv, &info, &info_len);
    if (rc == FERRY_OK && attacker_connect(&w->a, info, info_len) != 0)
        rc = FERRY_ERR_BACKEND;
    free(pub);
    free(info);
    return rc;
}

static ferry_status world_open(world *w)
{
    memset(w, 0, sizeof(*w));
    size_t total = GUARD + REGION + GUARD;
    w->tbuf = malloc(total), w->abuf = malloc(total);
    if (!w->tbuf || !w->abuf)
        return FERRY_ERR_NO_MEMORY;
    memset(w->tbuf, 0x11, total);
    memset(w->abuf, 0x22, total);
    int rc = attacker_open(&w->a, PROV, DOMAIN, w->abuf, total);
    if (rc != 0) {
        printf("# the attacker's endpoint: %s\n", fi_strerror(-rc));
        return FERRY_ERR_BACKEND;
    }
    return world_target(w);
}

static void world_close(world *w)
{
    attacker_close(&w->a);
    if (w->treg)
        D->ops->dereg(w->t.priv, w->treg);
    lf_inst_close(&w->t);
    free(w->tbuf);
    free(w->abuf);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* 1 when the attacker's operation completed, 0 when not yet, or the error
 * completion's negative code. */
static int attacker_poll(world *w)
{
    struct fi_cq_msg_entry e;
    ssize_t n = fi_cq_read(w->a.cq, &e, 1);
    if (n == -FI_EAVAIL) {
        struct fi_cq_err_entry err = {0};
        fi_cq_readerr(w->a.cq, &err, 0);
        return err.err ? -(int)err.err : -FI_EIO;
    }
    D->ops->progress(w->t.priv);
    return n == 1 ? 1 : 0;
}

/* Writes ask for delivery completion, so a refusal can come back. */
static ssize_t attacker_post(world *w, ferry_xfer_op op, uint8_t *mine, size_t len, uint64_t raddr,
                             uint64_t key, struct fi_context2 *ctx)
{
    struct iovec iov = {mine, len};
    struct fi_rma_iov rma = {raddr, len, key};
    void *desc = fi_mr_desc(w->a.mr);
    struct fi_msg_rma msg = {.msg_iov = &iov,
                             .desc = &desc,
                             .iov_count = 1,
                             .addr = w->a.target,
                             .rma_iov = &rma,
                             .rma_iov_count = 1,
                             .context = ctx};
    return op == FERRY_OP_WRITE ? fi_writemsg(w->a.ep, &msg, FI_COMPLETION | FI_DELIVERY_COMPLETE)
                                : fi_readmsg(w->a.ep, &msg, FI_COMPLETION);
}

/* The attacker's RMA of len bytes at rel from the region's first byte
 * (negative: before it), from or into the same offset of its own buffer;
 * the target's progress runs meanwhile. 0, the error completion's
 * negative code, or -FI_ETIMEDOUT when nothing completed. */
static int attack(world *w, ferry_xfer_op op, int64_t rel, size_t len, uint64_t key)
{
    uint64_t base = w->a.virt_addr ? (uintptr_t)w->tbuf + GUARD : 0;
    uint64_t raddr = base + (uint64_t)rel, until = now_ns() + WAIT_NS;
    uint8_t *mine = w->abuf + GUARD + rel;
    struct fi_context2 ctx;
    ssize_t rc = -FI_EAGAIN;
    while (rc == -FI_EAGAIN && now_ns() < until) { /* the queue, or the connection, not ready */
        rc = attacker_post(w, op, mine, len, raddr, key, &ctx);
        if (rc == -FI_EAGAIN)
            attacker_poll(w);
    }
    int done = rc ? (int)rc : 0;
    while (!rc && !done && now_ns() < until)
        done = attacker_poll(w);
    return rc ? (int)rc : done == 1 ? 0 : done ? done : -FI_ETIMEDOUT;
}

static bool all(const uint8_t *p, size_t len, uint8_t v)
{
    for (size_t k = 0; k < len; k++)
        if (p[k] != v)
            return false;
    return true;
}

/* Nothing changed on either side. */
static bool untouched(const world *w)
{
    size_t total = GUARD + REGION + GUARD;
    return all(w->tbuf, total, 0x11) && all(w->abuf, total, 0x22);
}

/* What the plugin's shm gate (lf.c) must have seen to accept shm: other
 * processes of this user may read and write this one whole anyway. */
static bool same_user_reach(void)
{
    char scope = '0';
    FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "r");
    if (f) {
        scope = fread(&scope, 1, 1, f) == 1 ? scope : '?';
        fclose(f);
    }
    return scope == '0' && prctl(PR_GET_DUMPABLE) == 1;
}

/* No byte moves either way. A provider that does not bound ranges
 * (libfabric 1.17's shm) is tolerated only where the kernel already
 * grants that reach, the one case the plugin accepts it. */
static void expect_refused(ferry_xfer_op op, int64_t rel, size_t len, int64_t key_delta)
{
    world w;
    FY_REQUIRE(world_open(&w) == FERRY_OK);
    int rc = attack(&w, op, rel, len, w.key + (uint64_t)key_delta);
    bool held = untouched(&w);
    printf("# %s [%+lld, +%zu) key%+lld: %s, %s\n", op == FERRY_OP_WRITE ? "WRITE" : "READ",
           (long long)rel, len, (long long)key_delta, rc ? fi_strerror(-rc) : "completed",
           held ? "nothing moved" : "DATA MOVED");
    if (!held)
        FY_CHECK(!strcmp(PROV, "shm") && same_user_reach());
    world_close(&w);
}

/* shm is refused where processes of this user could not otherwise reach
 * this one: here, once this process is made non-dumpable. */
static void test_shm_gate(void)
{
    lf_inst a;
    if (strcmp(PROV, "shm"))
        FY_SKIP("the gate concerns the shm provider");
    FY_REQUIRE(prctl(PR_SET_DUMPABLE, 0) == 0);
    unsigned errors = n_errors;
    FY_CHECK_EQ(lf_inst_open(&a, "reach-gate", 0x4444), FERRY_ERR_NOT_SUPPORTED);
    FY_CHECK(n_errors == errors + 1);
    FY_REQUIRE(prctl(PR_SET_DUMPABLE, 1) == 0);
    FY_CHECK_EQ(lf_inst_open(&a, "reach-gate", 0x4444),
                same_user_reach() ? FERRY_OK : FERRY_ERR_NOT_SUPPORTED);
    lf_inst_close(&a);
}

static void test_write_after_region(void)
{
    expect_refused(FERRY_OP_WRITE, REGION, 4 * KB, 0);
}

static void test_write_before_region(void)
{
    expect_refused(FERRY_OP_WRITE, -(int64_t)(4 * KB), 4 * KB, 0);
}

static void test_write_across_edges(void)
{
    expect_refused(FERRY_OP_WRITE, REGION - 2 * KB, 4 * KB, 0);
    expect_refused(FERRY_OP_WRITE, -(int64_t)(2 * KB), 4 * KB, 0);
}

static void test_read_outside_region(void)
{
    expect_refused(FERRY_OP_READ, REGION, 4 * KB, 0);
    expect_refused(FERRY_OP_READ, -(int64_t)(4 * KB), 4 * KB, 0);
}

static void test_read_across_edges(void)
{
    expect_refused(FERRY_OP_READ, REGION - 2 * KB, 4 * KB, 0);
    expect_refused(FERRY_OP_READ, -(int64_t)(2 * KB), 4 * KB, 0);
}

static void test_wrong_key(void)
{
    expect_refused(FERRY_OP_WRITE, 0, 4 * KB, 1);
    expect_refused(FERRY_OP_READ, 0, 4 * KB, -1);
}

/* The same attacker inside the region: the data moves. */
static void test_inside_works(void)
{
    world w;
    FY_REQUIRE(world_open(&w) == FERRY_OK);
    FY_CHECK_EQ(attack(&w, FERRY_OP_WRITE, 0, REGION, w.key), 0);
    FY_CHECK(all(w.tbuf + GUARD, REGION, 0x22));
    FY_CHECK(all(w.tbuf, GUARD, 0x11) && all(w.tbuf + GUARD + REGION, GUARD, 0x11));
    memset(w.tbuf + GUARD, 0x33, REGION);
    FY_CHECK_EQ(attack(&w, FERRY_OP_READ, 4 * KB, 8 * KB, w.key), 0);
    FY_CHECK(all(w.abuf + GUARD + 4 * KB, 8 * KB, 0x33));
    world_close(&w);
}

/* A key the target deregistered reaches nothing any more. */
static void test_deregistered_key(void)
{
    world w;
    FY_REQUIRE(world_open(&w) == FERRY_OK);
    D->ops->dereg(w.t.priv, w.treg);
    w.treg = NULL;
    attack(&w, FERRY_OP_WRITE, 0, 4 * KB, w.key);
    attack(&w, FERRY_OP_READ, 0, 4 * KB, w.key);
    bool held = untouched(&w);
    printf("# deregistered key: %s\n", held ? "nothing moved" : "DATA MOVED");
    if (!held)
        FY_CHECK(!strcmp(PROV, "shm") && same_user_reach());
    world_close(&w);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_lf_reach PROVIDER [DOMAIN]\n");
        return 2;
    }
    lf_test_setup(argv[1], argc > 2 ? argv[2] : NULL);
    lf_inst probe;
    if (lf_inst_open(&probe, "reach-probe", 0x3333) != FERRY_OK)
        fy_test_skip_all("the provider is not available here");
    lf_inst_close(&probe);
    PROV = argv[1];
    DOMAIN = argc > 2 ? argv[2] : NULL;
    printf("# provider %s\n", argv[1]);
    FY_RUN(test_inside_works);
    FY_RUN(test_write_after_region);
    FY_RUN(test_write_before_region);
    FY_RUN(test_write_across_edges);
    FY_RUN(test_read_outside_region);
    FY_RUN(test_read_across_edges);
    FY_RUN(test_wrong_key);
    FY_RUN(test_deregistered_key);
    FY_RUN(test_shm_gate);
    return fy_test_done();
}
