/* SPDX-License-Identifier: Apache-2.0 */
/* LIBFABRIC over several rails, on tcp;ofi_rxm with the loopback
 * interface listed twice (two endpoints, two connections: rails that any
 * host has; the two-process tests run two real ones, veth pairs between
 * network namespaces). Through the ops (a fake host): bad rails params,
 * hostile connection info and region keys of several rails, striping
 * (both rails move their share, the data arrives byte for byte, the
 * notification after all of it), a peer with fewer rails (only the
 * shared one moves data). Through an agent: the host-memory ledger counts
 * a region once per rail, and the registration cap bounds that.
 *
 *   test_lf_rails      (exit 77: tcp;ofi_rxm or lo absent) */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/le.h"
#include "conformance/testutil.h"
#include "harness.h"
#include "../lf_internal.h"
#include "lf_test.h"

#define KB 1024u

static const ferry_param two_rails[] = {
    {"provider", "tcp;ofi_rxm"}, {"rails", "lo,lo"}, {"striping_threshold", "4K"}};
static const ferry_param one_rail[] = {{"provider", "tcp;ofi_rxm"}, {"domain", "lo"}};

/* ---- params ---- */

static void test_bad_rails_params(void)
{
    char many[40 * 3 + 1] = "lo";
    for (int i = 1; i < 33; i++)
        strcat(many, ",lo");
    const ferry_param bad[][2] = {
        {{"rails", "lo,lo"}, {"domain", "lo"}},
        {{"rails", "lo,,lo"}, {"provider", "tcp;ofi_rxm"}},
        {{"rails", "lo,"}, {"provider", "tcp;ofi_rxm"}},
        {{"rails", many}, {"provider", "tcp;ofi_rxm"}},
        {{"rails", "lo,an-interface-name-far-longer-than-any-that-a-provider-could-list"},
         {"provider", "tcp;ofi_rxm"}},
        {{"striping_threshold", "12"}, {"provider", "tcp;ofi_rxm"}},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        bool logged;
        FY_CHECK_EQ(lf_open_logged("rails", bad[k], 2, &logged), FERRY_ERR_INVALID_PARAM);
        FY_CHECK(logged);
    }
    const ferry_param absent[] = {{"provider", "tcp;ofi_rxm"}, {"rails", "lo,no-such-if0"}};
    bool logged;
    FY_CHECK_EQ(lf_open_logged("rails", absent, 2, &logged), FERRY_ERR_NOT_SUPPORTED);
    FY_CHECK(logged);
}

/* ---- hostile bytes ---- */

static ferry_status load(lf_inst *a, const uint8_t *info, size_t len, void **remote)
{
    return D->ops->remote_load(a->priv, "peer", 0x20, info, len, remote);
}

/* An instance of two rails and its connection info (*info to free), and
 * where rail 0's part of it ends (*one). */
static bool two_rail_info(lf_inst *a, uint8_t **info, size_t *len, size_t *one)
{
    void *buf = NULL;
    *len = 0;
    if (lf_inst_open_with(a, "rails", 0x20, two_rails, 3) != FERRY_OK ||
        D->ops->conn_info(a->priv, &buf, len) != FERRY_OK)
        return false;
    *info = buf;
    *one = 8 + fy_le_get(*info + 4, 2) + fy_le_get(*info + 6, 2);
    return true;
}

/* Connection info of two rails: rail 0's address in the header's place,
 * then u16 length and address per further rail. Cut anywhere but at the
 * end of a rail, or with a length that lies, it is refused. */
static void test_hostile_conn_info(void)
{
    lf_inst a;
    uint8_t *p;
    void *remote = NULL;
    size_t len, one;
    FY_REQUIRE(two_rail_info(&a, &p, &len, &one));
    FY_REQUIRE(one + 2 + fy_le_get(p + one, 2) == len);
    for (size_t cut = 0; cut < len; cut++)
        if (cut != one)
            FY_CHECK_EQ(load(&a, p, cut, &remote), FERRY_ERR_BAD_METADATA);
    FY_REQUIRE(load(&a, p, one, &remote) == FERRY_OK); /* a peer of one rail */
    FY_CHECK_EQ(((fy_lf_remote *)remote)->nrails, 1u);
    D->ops->remote_unload(a.priv, remote);
    fy_le_put(p + one, 0, 2); /* an empty address */
    FY_CHECK_EQ(load(&a, p, len, &remote), FERRY_ERR_BAD_METADATA);
    fy_le_put(p + one, 0xffff, 2); /* longer than what is left */
    FY_CHECK_EQ(load(&a, p, len, &remote), FERRY_ERR_BAD_METADATA);
    free(p);
    lf_inst_close(&a);
}

/* More rails than any backend has: each a valid address, still refused. */
static void test_too_many_rails(void)
{
    lf_inst a;
    uint8_t *p;
    void *remote = NULL;
    size_t len, one;
    FY_REQUIRE(two_rail_info(&a, &p, &len, &one));
    size_t rail = len - one;
    uint8_t *big = malloc(one + FY_LF_RAILS_MAX * rail);
    FY_REQUIRE(big);
    memcpy(big, p, one);
    for (size_t i = 0; i < FY_LF_RAILS_MAX; i++) /* rails 1 .. 32 */
        memcpy(big + one + i * rail, p + one, rail);
    FY_CHECK_EQ(load(&a, big, one + (FY_LF_RAILS_MAX - 1) * rail, &remote), FERRY_OK);
    D->ops->remote_unload(a.priv, remote);
    FY_CHECK_EQ(load(&a, big, one + FY_LF_RAILS_MAX * rail, &remote), FERRY_ERR_BAD_METADATA);
    free(big);
    free(p);
    lf_inst_close(&a);
}

/* Region keys: the header and whole keys, at least one per shared rail,
 * 32 at most. */
static void test_hostile_keys(void)
{
    lf_inst a;
    FY_REQUIRE(lf_inst_open_with(&a, "rails", 0x20, two_rails, 3) == FERRY_OK);
    void *info = NULL, *remote = NULL, *rr = NULL;
    size_t len = 0;
    FY_REQUIRE(D->ops->conn_info(a.priv, &info, &len) == FERRY_OK);
    FY_REQUIRE(load(&a, info, len, &remote) == FERRY_OK);
    uint8_t pub[FY_LF_PUB_HDR + 8 * (FY_LF_RAILS_MAX + 1)] = {0};
    fy_le_put(pub, 0x3152464cu, 4); /* "LFR1" */
    ferry_desc d = {4096, 4096, 0};
    const size_t bad[] = {FY_LF_PUB_HDR, FY_LF_PUB_HDR + 8, FY_LF_PUB_HDR + 12,
                          FY_LF_PUB_HDR + 8 * (FY_LF_RAILS_MAX + 1), 3};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
        FY_CHECK_EQ(D->ops->rregion_load(a.priv, remote, FERRY_MEM_DRAM, &d, pub, bad[k], &rr),
                    FERRY_ERR_BAD_METADATA);
    FY_CHECK(rr == NULL);
    FY_REQUIRE(D->ops->rregion_load(a.priv, remote, FERRY_MEM_DRAM, &d, pub, FY_LF_PUB_HDR + 16,
                                    &rr) == FERRY_OK);
    FY_CHECK_EQ(((fy_lf_pub *)rr)->nkeys, 2u);
    D->ops->rregion_unload(a.priv, remote, rr);
    D->ops->remote_unload(a.priv, remote);
    free(info);
    lf_inst_close(&a);
}

/* ---- striping ---- */

static unsigned n_notifs;
static bool notif_early; /* a notification came before all of its data */
static lf_pair *watched;

static void count_notif(void *ctx, const char *from, const void *msg, size_t len)
{
    (void)ctx, (void)from, (void)msg, (void)len;
    n_notifs++;
    notif_early |= memcmp(watched->src, watched->dst, watched->len) != 0;
}

/* Posts op over the segments and drives both sides (5 s at most). */
static ferry_status pair_run(lf_pair *s, ferry_xfer_op op, const ferry_plugin_seg *l,
                             const ferry_plugin_seg *r, size_t count, const char *notif)
{
    ferry_plugin_xfer px = {.op = op,
                            .local_type = FERRY_MEM_DRAM,
                            .remote_type = FERRY_MEM_DRAM,
                            .count = count,
                            .local = l,
                            .remote = r,
                            .remote_agent = s->remote};
    void *h = NULL;
    ferry_status rc = D->ops->xfer_prep(s->i.priv, &px, &h);
    if (rc != FERRY_OK)
        return rc;
    rc = D->ops->xfer_post(s->i.priv, h, notif, notif ? strlen(notif) : 0);
    for (uint64_t until = tu_now_ms() + 5000; rc == FERRY_IN_PROGRESS && tu_now_ms() < until;) {
        D->ops->progress(s->i.priv);
        D->ops->progress(s->t.priv);
        rc = D->ops->xfer_check(s->i.priv, h);
    }
    /* The notification may still be on its way to the target. */
    for (uint64_t until = tu_now_ms() + 2000; notif && !n_notifs && tu_now_ms() < until;)
        D->ops->progress(s->t.priv);
    D->ops->xfer_release(s->i.priv, h);
    return rc;
}

static uint64_t rail_bytes(lf_inst *a, uint32_t rail)
{
    return ((fy_lf *)a->priv)->rails[rail].rma_bytes;
}

/* 4 MiB in one segment, then 64 segments of 4..8 KiB around the 4 KiB
 * threshold: each rail moves its share, every byte arrives, the
 * notification comes after all of it, once. */
static void test_striped_write_read(void)
{
    lf_pair s = {0};
    FY_REQUIRE(lf_pair_open(&s, two_rails, 3, two_rails, 3, 4u << 20) == FERRY_OK);
    s.t.host.notif_deliver = count_notif;
    watched = &s, n_notifs = 0, notif_early = false;
    tu_fill(s.src, s.len, 1);
    ferry_plugin_seg l = {(uintptr_t)s.src, s.len, 0, s.ireg};
    ferry_plugin_seg r = {(uintptr_t)s.dst, s.len, 0, s.rr};
    FY_CHECK_EQ(pair_run(&s, FERRY_OP_WRITE, &l, &r, 1, "striped"), FERRY_OK);
    FY_CHECK(!memcmp(s.src, s.dst, s.len));
    FY_CHECK_EQ(n_notifs, 1u);
    FY_CHECK(!notif_early);
    uint64_t r0 = rail_bytes(&s.i, 0), r1 = rail_bytes(&s.i, 1);
    printf("# 4 MiB WRITE: rail 0 %llu bytes, rail 1 %llu\n", (unsigned long long)r0,
           (unsigned long long)r1);
    FY_CHECK(r0 == s.len / 2 && r1 == s.len / 2);
    ferry_plugin_seg ls[64], rs[64];
    tu_fill(s.dst, s.len, 2);
    for (size_t k = 0, off = 0; k < 64; off += ls[k].len, k++) {
        ls[k] = (ferry_plugin_seg){(uintptr_t)s.src + off, 4 * KB - 1 + k * 67, 0, s.ireg};
        rs[k] = (ferry_plugin_seg){(uintptr_t)s.dst + off, ls[k].len, 0, s.rr};
    }
    FY_CHECK_EQ(pair_run(&s, FERRY_OP_READ, ls, rs, 64, NULL), FERRY_OK);
    size_t moved = (size_t)(ls[63].addr - ls[0].addr) + ls[63].len;
    FY_CHECK(!memcmp(s.src, s.dst, moved));
    FY_CHECK(rail_bytes(&s.i, 0) + rail_bytes(&s.i, 1) == s.len + moved);
    FY_CHECK(rail_bytes(&s.i, 0) > r0 + moved / 4 && rail_bytes(&s.i, 1) > r1 + moved / 4);
    lf_pair_close(&s);
}

/* An initiator of two rails, a target of one: only rail 0 moves data. */
static void test_peer_with_fewer_rails(void)
{
    lf_pair s = {0};
    FY_REQUIRE(lf_pair_open(&s, one_rail, 2, two_rails, 3, 1u << 20) == FERRY_OK);
    FY_CHECK_EQ(((fy_lf_remote *)s.remote)->nrails, 1u);
    tu_fill(s.src, s.len, 3);
    ferry_plugin_seg l = {(uintptr_t)s.src, s.len, 0, s.ireg};
    ferry_plugin_seg r = {(uintptr_t)s.dst, s.len, 0, s.rr};
    FY_CHECK_EQ(pair_run(&s, FERRY_OP_WRITE, &l, &r, 1, NULL), FERRY_OK);
    FY_CHECK(!memcmp(s.src, s.dst, s.len));
    FY_CHECK_EQ(rail_bytes(&s.i, 0), s.len);
    FY_CHECK_EQ(rail_bytes(&s.i, 1), 0u);
    lf_pair_close(&s);
}

/* ---- the ledger, through an agent ---- */

static ferry_status agent_with_rails(const char *cap, ferry_agent **agent)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = "rails-ledger";
    cfg.reg_cap_backends = cap;
    ferry_status rc = ferry_agent_create(&cfg, agent);
    ferry_backend *be;
    if (rc == FERRY_OK)
        rc = ferry_backend_create(*agent, "LIBFABRIC", two_rails, 3, &be);
    return rc;
}

/* A region of 256 KiB on two rails is 512 KiB in LIBFABRIC's ledger (the
 * agent's own ledger counts it once); a cap of 1 MiB takes two such
 * regions, not a third. */
static void test_ledger_per_rail(void)
{
    ferry_agent *a = NULL;
    ferry_status rc = agent_with_rails("LIBFABRIC=1M", &a);
    if (rc == FERRY_ERR_NOT_FOUND) {
        ferry_agent_destroy(a);
        FY_SKIP("the LIBFABRIC plugin is not in the plugin directory");
    }
    FY_REQUIRE(rc == FERRY_OK);
    uint8_t *buf = tu_alloc(3 * 256 * KB);
    FY_REQUIRE(buf);
    FY_CHECK_EQ(tu_register(a, buf, 256 * KB), FERRY_OK);
    FY_CHECK_EQ(tu_metric_value(a, "ferry_registered_bytes", "backend", "LIBFABRIC", "mem_type",
                                "DRAM", NULL),
                (long long)(512 * KB));
    ferry_counters c;
    ferry_counters_init(&c);
    FY_CHECK(ferry_counters_get(a, &c) == FERRY_OK && c.mem_registered == 256 * KB);
    FY_CHECK_EQ(tu_register(a, buf + 256 * KB, 256 * KB), FERRY_OK);
    FY_CHECK_EQ(tu_register(a, buf + 512 * KB, 256 * KB), FERRY_ERR_NO_RESOURCES);
    FY_CHECK_EQ(tu_deregister(a, buf, 256 * KB), FERRY_OK);
    FY_CHECK_EQ(tu_metric_value(a, "ferry_registered_bytes", "backend", "LIBFABRIC", "mem_type",
                                "DRAM", NULL),
                (long long)(512 * KB));
    FY_CHECK_EQ(tu_deregister(a, buf + 256 * KB, 256 * KB), FERRY_OK);
    ferry_agent_destroy(a);
    free(buf);
}

int main(void)
{
    lf_test_setup("tcp;ofi_rxm", "lo");
    lf_inst probe;
    if (lf_inst_open_with(&probe, "rails-probe", 0x3333, two_rails, 3) != FERRY_OK)
        fy_test_skip_all("tcp;ofi_rxm on lo is not available here");
    lf_inst_close(&probe);
    FY_RUN(test_bad_rails_params);
    FY_RUN(test_hostile_conn_info);
    FY_RUN(test_too_many_rails);
    FY_RUN(test_hostile_keys);
    FY_RUN(test_striped_write_read);
    FY_RUN(test_peer_with_fewer_rails);
    FY_RUN(test_ledger_per_rail);
    return fy_test_done();
}
