/* SPDX-License-Identifier: Apache-2.0 */
/* Memory registration (overlaps, identical re-registration, partial and
 * per-backend deregistration, atomicity), the host-memory ledger and its cap,
 * and prepared lists (coverage, region ends, memory types, strided O(1)). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/ferry.h>

#include "harness.h"
#include "testutil.h"

#define SENTINEL ((void *)0x5e5e5e5e)
#define KB       1024u

/* A fresh agent with a LOCAL backend and a 64 KiB arena to carve regions
 * from; 0 reg_cap means no ledger cap. */
typedef struct fixture {
    ferry_agent *agent;
    ferry_backend *be;
    uint8_t *mem;
} fixture;

static ferry_status fx_open(fixture *fx, const char *name, uint64_t reg_cap)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.reg_cap_bytes = reg_cap;
    fx->mem = tu_alloc(64 * KB);
    if (!fx->mem)
        return FERRY_ERR_NO_MEMORY;
    return tu_agent_with(name, &cfg, NULL, 0, &fx->agent, &fx->be);
}

static void fx_close(fixture *fx)
{
    ferry_agent_destroy(fx->agent);
    free(fx->mem);
}

static ferry_status reg(fixture *fx, size_t off, size_t len)
{
    return tu_register(fx->agent, fx->mem + off, len);
}

static ferry_status dereg(fixture *fx, size_t off, size_t len)
{
    return tu_deregister(fx->agent, fx->mem + off, len);
}

static uint64_t usage_bytes(ferry_agent *agent, uint64_t *regions)
{
    ferry_mem_usage u;
    ferry_mem_usage_init(&u);
    *regions = UINT64_MAX;
    if (ferry_mem_usage_get(agent, &u) != FERRY_OK)
        return UINT64_MAX;
    *regions = u.regions[FERRY_MEM_DRAM];
    return u.bytes[FERRY_MEM_DRAM];
}

/* OK when [ptr, ptr+len) can be prepared on the local side. */
static ferry_status prep_at(ferry_agent *agent, const void *ptr, size_t len)
{
    ferry_dlist *l = tu_list1(ptr, len);
    ferry_prepped *p = NULL;
    ferry_status rc = l ? ferry_prep_dlist(agent, NULL, l, NULL, &p) : FERRY_ERR_NO_MEMORY;
    ferry_prepped_release(p);
    ferry_dlist_destroy(l);
    return rc;
}

static ferry_status prep_local(fixture *fx, size_t off, size_t len)
{
    return prep_at(fx->agent, fx->mem + off, len);
}

/* ---- register ---- */

static void test_register_errors(void)
{
    fixture fx;
    ferry_dlist *l, *vram;
    FY_REQUIRE(fx_open(&fx, "reg-errors", 0) == FERRY_OK);
    FY_REQUIRE((l = tu_list1(fx.mem, 4 * KB)));
    FY_CHECK_EQ(ferry_register(NULL, l, NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_register(fx.agent, NULL, NULL), FERRY_ERR_INVALID_PARAM);

    /* No backend takes VRAM (wrong memory type). */
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_VRAM, 1, &vram) == FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add(vram, 0x1000, 4096, 0), FERRY_OK);
    FY_CHECK_EQ(ferry_register(fx.agent, vram, NULL), FERRY_ERR_NOT_FOUND);
    ferry_dlist_destroy(vram);

    /* Bad selections. */
    ferry_backend_sel sel;
    ferry_backend_sel_init(&sel);
    FY_CHECK_EQ(sel.size, sizeof(sel));
    FY_CHECK(sel.backends == NULL && sel.num_backends == 0);
    ferry_backend *const mine[] = {fx.be};
    sel.backends = mine;
    sel.num_backends = 1;
    sel.size = 0;
    FY_CHECK_EQ(ferry_register(fx.agent, l, &sel), FERRY_ERR_INVALID_PARAM);
    sel.size = sizeof(sel);
    sel.backends = NULL;
    FY_CHECK_EQ(ferry_register(fx.agent, l, &sel), FERRY_ERR_INVALID_PARAM);
    ferry_backend *const nulls[] = {NULL};
    sel.backends = nulls;
    FY_CHECK_EQ(ferry_register(fx.agent, l, &sel), FERRY_ERR_INVALID_PARAM);
    fixture other;
    FY_REQUIRE(fx_open(&other, "reg-other", 0) == FERRY_OK);
    ferry_backend *const foreign[] = {other.be};
    sel.backends = foreign;
    FY_CHECK_EQ(ferry_register(fx.agent, l, &sel), FERRY_ERR_INVALID_PARAM);
    fx_close(&other);
    uint64_t regions;
    FY_CHECK_EQ(usage_bytes(fx.agent, &regions), 0);

    /* An agent without backends: nobody accepts anything. */
    ferry_agent_config cfg;
    ferry_agent *bare;
    ferry_agent_config_init(&cfg);
    cfg.name = "bare";
    FY_REQUIRE(ferry_agent_create(&cfg, &bare) == FERRY_OK);
    FY_CHECK_EQ(ferry_register(bare, l, NULL), FERRY_ERR_NOT_FOUND);
    ferry_agent_destroy(bare);

    /* An empty selection means every backend. */
    ferry_backend_sel_init(&sel);
    FY_CHECK_EQ(ferry_register(fx.agent, l, &sel), FERRY_OK);
    sel.backends = mine;
    sel.num_backends = 1;
    FY_CHECK_EQ(ferry_deregister(fx.agent, l, &sel), FERRY_OK);
    ferry_backend_sel_init(NULL);
    ferry_dlist_destroy(l);
    fx_close(&fx);
}

static void test_register_overlap_refused(void)
{
    fixture fx;
    uint64_t regions;
    FY_REQUIRE(fx_open(&fx, "overlap", 0) == FERRY_OK);
    FY_CHECK_EQ(reg(&fx, 8 * KB, 8 * KB), FERRY_OK);
    FY_CHECK_EQ(reg(&fx, 4 * KB, 8 * KB), FERRY_ERR_NOT_ALLOWED);  /* tail overlaps */
    FY_CHECK_EQ(reg(&fx, 12 * KB, 8 * KB), FERRY_ERR_NOT_ALLOWED); /* head overlaps */
    FY_CHECK_EQ(reg(&fx, 9 * KB, 1 * KB), FERRY_ERR_NOT_ALLOWED);  /* inside */
    FY_CHECK_EQ(reg(&fx, 0, 32 * KB), FERRY_ERR_NOT_ALLOWED);      /* around */
    FY_CHECK_EQ(reg(&fx, 16 * KB - 1, 2), FERRY_ERR_NOT_ALLOWED);  /* last byte */
    FY_CHECK_EQ(usage_bytes(fx.agent, &regions), 8 * KB);
    FY_CHECK_EQ(regions, 1);
    /* Adjacent regions do not overlap. */
    FY_CHECK_EQ(reg(&fx, 4 * KB, 4 * KB), FERRY_OK);
    FY_CHECK_EQ(reg(&fx, 16 * KB, 4 * KB), FERRY_OK);
    FY_CHECK_EQ(usage_bytes(fx.agent, &regions), 16 * KB);
    FY_CHECK_EQ(regions, 3);
    fx_close(&fx);
}

/* A list is registered as a whole or not at all. */
static void test_register_atomic(void)
{
    fixture fx;
    ferry_dlist *l;
    uint64_t regions;
    FY_REQUIRE(fx_open(&fx, "atomic", 0) == FERRY_OK);
    FY_CHECK_EQ(reg(&fx, 32 * KB, 4 * KB), FERRY_OK);
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_DRAM, 3, &l) == FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add(l, (uintptr_t)fx.mem, 4 * KB, 0), FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add(l, (uintptr_t)fx.mem + 8 * KB, 4 * KB, 0), FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add(l, (uintptr_t)fx.mem + 34 * KB, 4 * KB, 0), FERRY_OK);
    FY_CHECK_EQ(ferry_register(fx.agent, l, NULL), FERRY_ERR_NOT_ALLOWED);
    ferry_dlist_destroy(l);
    FY_CHECK_EQ(usage_bytes(fx.agent, &regions), 4 * KB);
    FY_CHECK_EQ(prep_local(&fx, 0, 4 * KB), FERRY_ERR_NOT_FOUND);

    /* The same descriptor twice in one list is an overlap too (unlike
     * registering it again in a later call). */
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_DRAM, 2, &l) == FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add(l, (uintptr_t)fx.mem + 16 * KB, 4 * KB, 0), FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add(l, (uintptr_t)fx.mem + 16 * KB, 4 * KB, 0), FERRY_OK);
    FY_CHECK_EQ(ferry_register(fx.agent, l, NULL), FERRY_ERR_NOT_ALLOWED);
    ferry_dlist_destroy(l);
    FY_CHECK_EQ(usage_bytes(fx.agent, &regions), 4 * KB);

    /* Two descriptors of one list that overlap each other. */
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_DRAM, 2, &l) == FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add(l, (uintptr_t)fx.mem, 8 * KB, 0), FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add(l, (uintptr_t)fx.mem + 4 * KB, 8 * KB, 0), FERRY_OK);
    FY_CHECK_EQ(ferry_register(fx.agent, l, NULL), FERRY_ERR_NOT_ALLOWED);
    ferry_dlist_destroy(l);
    FY_CHECK_EQ(usage_bytes(fx.agent, &regions), 4 * KB);
    FY_CHECK_EQ(regions, 1);
    fx_close(&fx);
}

/* Registering the very same region again counts: it takes as many
 * deregistrations to remove it, and the ledger counts its bytes once. */
static void test_register_identical_counted(void)
{
    fixture fx;
    uint64_t regions;
    FY_REQUIRE(fx_open(&fx, "identical", 0) == FERRY_OK);
    FY_CHECK_EQ(reg(&fx, 0, 16 * KB), FERRY_OK);
    FY_CHECK_EQ(reg(&fx, 0, 16 * KB), FERRY_OK);
    FY_CHECK_EQ(usage_bytes(fx.agent, &regions), 16 * KB);
    FY_CHECK_EQ(regions, 1);
    FY_CHECK_EQ(dereg(&fx, 0, 16 * KB), FERRY_OK);
    FY_CHECK_EQ(usage_bytes(fx.agent, &regions), 16 * KB);
    FY_CHECK_EQ(prep_local(&fx, 0, 16 * KB), FERRY_OK);
    FY_CHECK_EQ(dereg(&fx, 0, 16 * KB), FERRY_OK);
    FY_CHECK_EQ(usage_bytes(fx.agent, &regions), 0);
    FY_CHECK_EQ(regions, 0);
    FY_CHECK_EQ(prep_local(&fx, 0, 16 * KB), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(dereg(&fx, 0, 16 * KB), FERRY_ERR_NOT_FOUND);
    fx_close(&fx);
}

/* ---- deregister ---- */

static void test_deregister_partial_refused(void)
{
    fixture fx;
    ferry_dlist *l;
    uint64_t regions;
    FY_REQUIRE(fx_open(&fx, "partial", 0) == FERRY_OK);
    FY_CHECK_EQ(reg(&fx, 0, 16 * KB), FERRY_OK);
    FY_CHECK_EQ(reg(&fx, 16 * KB, 16 * KB), FERRY_OK);
    FY_CHECK_EQ(dereg(&fx, 0, 8 * KB), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(dereg(&fx, 4 * KB, 12 * KB), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(dereg(&fx, 0, 32 * KB), FERRY_ERR_NOT_FOUND); /* two regions are not one */
    /* One exact and one partial descriptor: nothing is deregistered. */
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_DRAM, 2, &l) == FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add(l, (uintptr_t)fx.mem, 16 * KB, 0), FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add(l, (uintptr_t)fx.mem + 16 * KB, 1 * KB, 0), FERRY_OK);
    FY_CHECK_EQ(ferry_deregister(fx.agent, l, NULL), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(usage_bytes(fx.agent, &regions), 32 * KB);
    FY_CHECK_EQ(regions, 2);
    FY_CHECK_EQ(prep_local(&fx, 0, 16 * KB), FERRY_OK);
    FY_CHECK_EQ(ferry_deregister(NULL, l, NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_deregister(fx.agent, NULL, NULL), FERRY_ERR_INVALID_PARAM);
    ferry_dlist_destroy(l);
    /* A memory type nothing was registered for. */
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_OBJ, 1, &l) == FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add(l, (uintptr_t)fx.mem, 16 * KB, 0), FERRY_OK);
    FY_CHECK_EQ(ferry_deregister(fx.agent, l, NULL), FERRY_ERR_NOT_FOUND);
    ferry_dlist_destroy(l);
    fx_close(&fx);
}

/* Deregistering from chosen backends: the region leaves the registry when
 * no backend holds it any more; refused while prepared lists use it. */
static void test_deregister_chosen_backend(void)
{
    fixture fx;
    ferry_dlist *l;
    ferry_prepped *p;
    uint64_t regions;
    FY_REQUIRE(fx_open(&fx, "dereg-sel", 0) == FERRY_OK);
    ferry_backend_sel sel;
    ferry_backend_sel_init(&sel);
    ferry_backend *const mine[] = {fx.be};
    sel.backends = mine;
    sel.num_backends = 1;
    FY_REQUIRE((l = tu_list1(fx.mem, 8 * KB)));
    FY_CHECK_EQ(ferry_register(fx.agent, l, &sel), FERRY_OK);

    FY_CHECK_EQ(ferry_prep_dlist(fx.agent, NULL, l, NULL, &p), FERRY_OK);
    FY_CHECK_EQ(ferry_deregister(fx.agent, l, &sel), FERRY_ERR_NOT_ALLOWED);
    FY_CHECK_EQ(usage_bytes(fx.agent, &regions), 8 * KB);
    ferry_prepped_release(p);

    sel.size = 1;
    FY_CHECK_EQ(ferry_deregister(fx.agent, l, &sel), FERRY_ERR_INVALID_PARAM);
    sel.size = sizeof(sel);
    FY_CHECK_EQ(ferry_deregister(fx.agent, l, &sel), FERRY_OK);
    FY_CHECK_EQ(usage_bytes(fx.agent, &regions), 0);
    FY_CHECK_EQ(regions, 0);
    FY_CHECK_EQ(prep_local(&fx, 0, 8 * KB), FERRY_ERR_NOT_FOUND);
    ferry_dlist_destroy(l);
    fx_close(&fx);
}

/* A prepared list keeps the regions it covers alive: after a plain
 * deregistration the ledger drops them, but requests from the list still
 * run (the memory is still the caller's), and the region is freed with the
 * list (valgrind/ASan would see a leak or a use after free). */
static void test_deregister_while_prepped(void)
{
    tu_loop lp;
    ferry_prepped *pl, *pr;
    ferry_xfer *x;
    uint64_t regions;
    FY_REQUIRE(tu_loop_open(&lp, "dereg-prepped", NULL, NULL, 0, 16 * KB) == FERRY_OK);
    ferry_dlist *ls = tu_list1(lp.src, lp.len), *rs = tu_list1(lp.dst, lp.len);
    FY_REQUIRE(ls && rs);
    FY_REQUIRE(ferry_prep_dlist(lp.agent, NULL, ls, NULL, &pl) == FERRY_OK);
    FY_REQUIRE(ferry_prep_dlist(lp.agent, lp.name, rs, NULL, &pr) == FERRY_OK);
    FY_CHECK_EQ(tu_deregister(lp.agent, lp.src, lp.len), FERRY_OK);
    FY_CHECK_EQ(usage_bytes(lp.agent, &regions), 16 * KB);
    FY_CHECK_EQ(regions, 1);
    FY_CHECK_EQ(prep_at(lp.agent, lp.src, lp.len), FERRY_ERR_NOT_FOUND);

    uint32_t idx = 0;
    FY_REQUIRE(ferry_xfer_make(lp.agent, FERRY_OP_WRITE, pl, &idx, pr, &idx, 1, NULL, &x) ==
               FERRY_OK);
    ferry_prepped_release(pl); /* the request holds the region now */
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    FY_CHECK(!memcmp(lp.src, lp.dst, lp.len));
    FY_CHECK_EQ(ferry_xfer_release(x), FERRY_OK);
    /* The same memory can be registered again meanwhile. */
    FY_CHECK_EQ(tu_register(lp.agent, lp.src, lp.len), FERRY_OK);
    ferry_prepped_release(pr);
    ferry_dlist_destroy(ls);
    ferry_dlist_destroy(rs);
    tu_loop_close(&lp);
}

/* ---- ledger ---- */

static void test_ledger_cap(void)
{
    fixture fx;
    uint64_t regions;
    ferry_counters c;
    FY_REQUIRE(fx_open(&fx, "ledger", 32 * KB) == FERRY_OK);
    FY_CHECK_EQ(reg(&fx, 0, 16 * KB), FERRY_OK);
    FY_CHECK_EQ(reg(&fx, 16 * KB, 24 * KB), FERRY_ERR_NO_RESOURCES);
    FY_CHECK_EQ(usage_bytes(fx.agent, &regions), 16 * KB);
    FY_CHECK_EQ(regions, 1);
    FY_CHECK_EQ(prep_local(&fx, 16 * KB, 24 * KB), FERRY_ERR_NOT_FOUND);
    /* Up to the cap exactly is fine; one byte more is not. */
    FY_CHECK_EQ(reg(&fx, 16 * KB, 16 * KB), FERRY_OK);
    FY_CHECK_EQ(reg(&fx, 32 * KB, 1), FERRY_ERR_NO_RESOURCES);
    /* Registering an identical region again adds no bytes. */
    FY_CHECK_EQ(reg(&fx, 0, 16 * KB), FERRY_OK);
    FY_CHECK_EQ(usage_bytes(fx.agent, &regions), 32 * KB);
    ferry_counters_init(&c);
    FY_CHECK_EQ(ferry_counters_get(fx.agent, &c), FERRY_OK);
    FY_CHECK_EQ(c.mem_registered, 32 * KB);
    FY_CHECK_EQ(c.regions, 2);
    /* Room again after a deregistration. */
    FY_CHECK_EQ(dereg(&fx, 16 * KB, 16 * KB), FERRY_OK);
    FY_CHECK_EQ(reg(&fx, 40 * KB, 8 * KB), FERRY_OK);
    FY_CHECK_EQ(usage_bytes(fx.agent, &regions), 24 * KB);
    fx_close(&fx);
}

static void test_mem_usage(void)
{
    fixture fx;
    ferry_mem_usage u;
    FY_REQUIRE(fx_open(&fx, "usage", 0) == FERRY_OK);
    ferry_mem_usage_init(&u);
    FY_CHECK_EQ(u.size, sizeof(u));
    FY_CHECK_EQ(ferry_mem_usage_get(fx.agent, &u), FERRY_OK);
    for (int t = 0; t < FERRY_MEM_TYPE_COUNT; t++)
        FY_CHECK(u.bytes[t] == 0 && u.regions[t] == 0);
    FY_CHECK_EQ(reg(&fx, 0, 1000), FERRY_OK);
    FY_CHECK_EQ(reg(&fx, 4 * KB, 3000), FERRY_OK);
    FY_CHECK_EQ(reg(&fx, 8 * KB, 56 * KB), FERRY_OK);
    FY_CHECK_EQ(ferry_mem_usage_get(fx.agent, &u), FERRY_OK);
    FY_CHECK_EQ(u.bytes[FERRY_MEM_DRAM], 4000 + 56 * KB);
    FY_CHECK_EQ(u.regions[FERRY_MEM_DRAM], 3);
    FY_CHECK_EQ(u.bytes[FERRY_MEM_VRAM] + u.bytes[FERRY_MEM_FILE], 0);
    FY_CHECK_EQ(dereg(&fx, 4 * KB, 3000), FERRY_OK);
    FY_CHECK_EQ(ferry_mem_usage_get(fx.agent, &u), FERRY_OK);
    FY_CHECK_EQ(u.bytes[FERRY_MEM_DRAM], 1000 + 56 * KB);
    FY_CHECK_EQ(u.regions[FERRY_MEM_DRAM], 2);

    u.size = 3;
    FY_CHECK_EQ(ferry_mem_usage_get(fx.agent, &u), FERRY_ERR_INVALID_PARAM);
    ferry_mem_usage_init(&u);
    FY_CHECK_EQ(ferry_mem_usage_get(NULL, &u), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_mem_usage_get(fx.agent, NULL), FERRY_ERR_INVALID_PARAM);
    ferry_mem_usage_init(NULL);
    fx_close(&fx);
}

/* ---- prepared lists ---- */

static void test_prep_errors(void)
{
    fixture fx;
    ferry_dlist *l;
    ferry_prepped *p = SENTINEL;
    FY_REQUIRE(fx_open(&fx, "prep-errors", 0) == FERRY_OK);
    FY_CHECK_EQ(reg(&fx, 0, 8 * KB), FERRY_OK);
    FY_CHECK_EQ(reg(&fx, 8 * KB, 8 * KB), FERRY_OK);
    FY_REQUIRE((l = tu_list1(fx.mem, 4 * KB)));
    FY_CHECK_EQ(ferry_prep_dlist(NULL, NULL, l, NULL, &p), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_prep_dlist(fx.agent, NULL, NULL, NULL, &p), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_prep_dlist(fx.agent, NULL, l, NULL, NULL), FERRY_ERR_INVALID_PARAM);
    /* Unknown remote agent (own metadata not loaded either). */
    FY_CHECK_EQ(ferry_prep_dlist(fx.agent, "nobody", l, NULL, &p), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(ferry_prep_dlist(fx.agent, "prep-errors", l, NULL, &p), FERRY_ERR_NOT_FOUND);
    FY_CHECK(p == SENTINEL);
    ferry_dlist_destroy(l);

    FY_CHECK_EQ(prep_local(&fx, 0, 8 * KB), FERRY_OK);                  /* a whole region */
    FY_CHECK_EQ(prep_local(&fx, 8 * KB - 1, 1), FERRY_OK);              /* its last byte */
    FY_CHECK_EQ(prep_local(&fx, 4 * KB, 8 * KB), FERRY_ERR_NOT_FOUND);  /* across two regions */
    FY_CHECK_EQ(prep_local(&fx, 12 * KB, 8 * KB), FERRY_ERR_NOT_FOUND); /* past the end */
    FY_CHECK_EQ(prep_local(&fx, 32 * KB, 1), FERRY_ERR_NOT_FOUND);      /* unregistered */

    /* Wrong memory type: the same addresses as VRAM are not registered. */
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_VRAM, 1, &l) == FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add(l, (uintptr_t)fx.mem, 4 * KB, 0), FERRY_OK);
    FY_CHECK_EQ(ferry_prep_dlist(fx.agent, NULL, l, NULL, &p), FERRY_ERR_NOT_FOUND);
    ferry_dlist_destroy(l);
    /* Another device id of DRAM is another key. */
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_DRAM, 1, &l) == FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add(l, (uintptr_t)fx.mem, 4 * KB, 1), FERRY_OK);
    FY_CHECK_EQ(ferry_prep_dlist(fx.agent, NULL, l, NULL, &p), FERRY_ERR_NOT_FOUND);
    ferry_dlist_destroy(l);

    /* A selection naming another agent's backend. */
    fixture other;
    FY_REQUIRE(fx_open(&other, "prep-other", 0) == FERRY_OK);
    ferry_backend_sel sel;
    ferry_backend_sel_init(&sel);
    ferry_backend *const foreign[] = {other.be};
    sel.backends = foreign;
    sel.num_backends = 1;
    FY_REQUIRE((l = tu_list1(fx.mem, 4 * KB)));
    FY_CHECK_EQ(ferry_prep_dlist(fx.agent, NULL, l, &sel, &p), FERRY_ERR_INVALID_PARAM);
    ferry_backend *const mine[] = {fx.be};
    sel.backends = mine;
    FY_CHECK_EQ(ferry_prep_dlist(fx.agent, NULL, l, &sel, &p), FERRY_OK);
    FY_CHECK_EQ(ferry_prepped_count(p), 1);
    ferry_prepped_release(p);
    ferry_dlist_destroy(l);
    fx_close(&other);

    ferry_prepped_release(NULL);
    FY_CHECK_EQ(ferry_prepped_count(NULL), 0);
    fx_close(&fx);
}

/* Many descriptors over several regions, in mixed order. */
static void test_prep_many(void)
{
    fixture fx;
    ferry_dlist *l;
    ferry_prepped *p;
    tu_rng rng = tu_rng_seed(tu_seed());
    FY_REQUIRE(fx_open(&fx, "prep-many", 0) == FERRY_OK);
    for (size_t r = 0; r < 16; r++)
        FY_CHECK_EQ(reg(&fx, r * 4 * KB, 4 * KB), FERRY_OK);
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_DRAM, 10000, &l) == FERRY_OK);
    for (int i = 0; i < 10000; i++) {
        uint64_t region = tu_rand_range(&rng, 0, 15), len = tu_rand_range(&rng, 1, 4 * KB);
        uint64_t off = tu_rand_range(&rng, 0, 4 * KB - len);
        FY_CHECK_EQ(ferry_dlist_add(l, (uintptr_t)fx.mem + region * 4 * KB + off, len, 0),
                    FERRY_OK);
    }
    FY_CHECK_EQ(ferry_prep_dlist(fx.agent, NULL, l, NULL, &p), FERRY_OK);
    FY_CHECK_EQ(ferry_prepped_count(p), 10000);
    ferry_prepped_release(p);
    ferry_dlist_destroy(l);
    fx_close(&fx);
}

/* A strided list inside one region is prepared in O(1): 2^32 KV blocks
 * over a (never touched) 16 TiB address range are prepared and indexed at
 * once. An O(n) preparation would need 2^32 segments and fail or hang.
 * LOCAL only validates DRAM ranges at registration, and nothing is posted,
 * so the range need not be mapped. */
static void test_prep_strided_o1(void)
{
    ferry_agent *agent;
    ferry_dlist *region, *blocks;
    ferry_prepped *pl, *pr;
    const uint64_t base = 1ull << 44, count = 1ull << 32, block = 4096;
    FY_REQUIRE(tu_agent("strided", &agent) == FERRY_OK);
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_DRAM, 2, &region) == FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add(region, base, count * block, 0), FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add(region, 2 * base, count * block, 0), FERRY_OK);
    FY_REQUIRE(ferry_register(agent, region, NULL) == FERRY_OK);
    FY_REQUIRE(tu_load_self(agent) == FERRY_OK);
    FY_REQUIRE(ferry_dlist_create_strided(FERRY_MEM_DRAM, base, block, count, block, 0, &blocks) ==
               FERRY_OK);
    uint64_t t0 = tu_now_ms();
    FY_REQUIRE(ferry_prep_dlist(agent, NULL, blocks, NULL, &pl) == FERRY_OK);
    ferry_dlist_destroy(blocks);
    FY_REQUIRE(ferry_dlist_create_strided(FERRY_MEM_DRAM, 2 * base, block, count, block, 0,
                                          &blocks) == FERRY_OK);
    FY_REQUIRE(ferry_prep_dlist(agent, "strided", blocks, NULL, &pr) == FERRY_OK);
    FY_CHECK(tu_now_ms() - t0 < 5000);
    FY_CHECK_EQ(ferry_prepped_count(pl), count);
    FY_CHECK_EQ(ferry_prepped_count(pr), count);

    /* Requests index anywhere, the last block included; consecutive
     * blocks merge. */
    ferry_xfer_opts opts;
    ferry_xfer_opts_init(&opts);
    ferry_xfer *x;
    uint32_t li[] = {0, 1, 2, UINT32_MAX}, ri[] = {7, 8, 9, 0};
    FY_CHECK_EQ(ferry_xfer_make(agent, FERRY_OP_WRITE, pl, li, pr, ri, 4, &opts, &x), FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_count(x), 2);
    ferry_xfer_release(x);
    opts.skip_merge = true;
    FY_CHECK_EQ(ferry_xfer_make(agent, FERRY_OP_WRITE, pl, li, pr, ri, 4, &opts, &x), FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_count(x), 4);
    ferry_xfer_release(x);

    ferry_prepped_release(pl);
    ferry_prepped_release(pr);
    ferry_dlist_destroy(blocks);
    ferry_dlist_destroy(region);
    ferry_agent_destroy(agent);
}

/* A strided list over several adjacent regions is still prepared, one
 * descriptor at a time; a block straddling two regions is refused. */
static void test_prep_strided_across_regions(void)
{
    fixture fx;
    ferry_dlist *l;
    ferry_prepped *p = NULL;
    FY_REQUIRE(fx_open(&fx, "strided-regions", 0) == FERRY_OK);
    FY_CHECK_EQ(reg(&fx, 0, 32 * KB), FERRY_OK);
    FY_CHECK_EQ(reg(&fx, 32 * KB, 32 * KB), FERRY_OK);
    FY_REQUIRE(ferry_dlist_create_strided(FERRY_MEM_DRAM, (uintptr_t)fx.mem, 4 * KB, 16, 4 * KB, 0,
                                          &l) == FERRY_OK);
    FY_CHECK_EQ(ferry_prep_dlist(fx.agent, NULL, l, NULL, &p), FERRY_OK);
    FY_CHECK_EQ(ferry_prepped_count(p), 16);
    ferry_prepped_release(p);
    ferry_dlist_destroy(l);
    FY_REQUIRE(ferry_dlist_create_strided(FERRY_MEM_DRAM, (uintptr_t)fx.mem + 2 * KB, 4 * KB, 15,
                                          4 * KB, 0, &l) == FERRY_OK);
    FY_CHECK_EQ(ferry_prep_dlist(fx.agent, NULL, l, NULL, &p), FERRY_ERR_NOT_FOUND);
    ferry_dlist_destroy(l);
    /* Overlapping blocks (stride < len) inside one region are fine. */
    FY_REQUIRE(ferry_dlist_create_strided(FERRY_MEM_DRAM, (uintptr_t)fx.mem, 1 * KB, 8, 4 * KB, 0,
                                          &l) == FERRY_OK);
    FY_CHECK_EQ(ferry_prep_dlist(fx.agent, NULL, l, NULL, &p), FERRY_OK);
    FY_CHECK_EQ(ferry_prepped_count(p), 8);
    ferry_prepped_release(p);
    ferry_dlist_destroy(l);
    fx_close(&fx);
}

int main(void)
{
    FY_RUN(test_register_errors);
    FY_RUN(test_register_overlap_refused);
    FY_RUN(test_register_atomic);
    FY_RUN(test_register_identical_counted);
    FY_RUN(test_deregister_partial_refused);
    FY_RUN(test_deregister_chosen_backend);
    FY_RUN(test_deregister_while_prepped);
    FY_RUN(test_ledger_cap);
    FY_RUN(test_mem_usage);
    FY_RUN(test_prep_errors);
    FY_RUN(test_prep_many);
    FY_RUN(test_prep_strided_o1);
    FY_RUN(test_prep_strided_across_regions);
    return fy_test_done();
}
