/* SPDX-License-Identifier: Apache-2.0 */
/* Agent metadata: full and partial blobs, loading (own and other agents'),
 * checks, invalidation, generations, new instances of a name, and hostile
 * blobs that must be refused without reading out of bounds or leaking. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/ferry.h>

#include "harness.h"
#include "testutil.h"
#include "blob_seal.h"

#define SENTINEL ((void *)0x5e5e5e5e)
#define KB       1024u

/* An agent with a LOCAL backend and two registered 16 KiB regions (not
 * loaded anywhere yet). */
typedef struct peer {
    ferry_agent *agent;
    ferry_backend *be;
    uint8_t *mem; /* r1 = mem[0, 16K), r2 = mem[32K, 48K) */
} peer;

static ferry_status peer_open(peer *p, const char *name)
{
    p->mem = tu_alloc(64 * KB);
    if (!p->mem)
        return FERRY_ERR_NO_MEMORY;
    memset(p->mem, 0, 64 * KB);
    ferry_status rc = tu_agent_with(name, NULL, NULL, 0, &p->agent, &p->be);
    if (rc == FERRY_OK)
        rc = tu_register(p->agent, p->mem, 16 * KB);
    if (rc == FERRY_OK)
        rc = tu_register(p->agent, p->mem + 32 * KB, 16 * KB);
    return rc;
}

static void peer_close(peer *p)
{
    ferry_agent_destroy(p->agent);
    free(p->mem);
}

static ferry_status check_range(peer *p, const char *remote, size_t off, size_t len)
{
    ferry_dlist *l = tu_list1(p->mem + off, len);
    ferry_status rc = l ? ferry_md_check(p->agent, remote, l) : FERRY_ERR_NO_MEMORY;
    ferry_dlist_destroy(l);
    return rc;
}

/* Partial metadata of p covering [off, off+len). */
static ferry_status partial_of(peer *p, size_t off, size_t len, bool conn, void **blob,
                               size_t *blob_len)
{
    ferry_dlist *l = tu_list1(p->mem + off, len);
    const ferry_dlist *lists[] = {l};
    ferry_status rc = l ? ferry_md_get_partial(p->agent, lists, 1, conn, NULL, blob, blob_len)
                        : FERRY_ERR_NO_MEMORY;
    ferry_dlist_destroy(l);
    return rc;
}

static ferry_status load(ferry_agent *into, const void *blob, size_t len)
{
    char name[FERRY_NAME_MAX + 1];
    return ferry_md_load(into, blob, len, name, sizeof(name));
}

/* ---- full metadata ---- */

static void test_get_local_and_load(void)
{
    peer p;
    void *blob = SENTINEL;
    size_t len = 0;
    char name[FERRY_NAME_MAX + 1] = "";
    FY_REQUIRE(peer_open(&p, "md-self") == FERRY_OK);
    FY_CHECK_EQ(ferry_md_get_local(NULL, &blob, &len), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_md_get_local(p.agent, NULL, &len), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_md_get_local(p.agent, &blob, NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK(blob == SENTINEL);
    FY_REQUIRE(ferry_md_get_local(p.agent, &blob, &len) == FERRY_OK);
    FY_CHECK(blob && len > 0);

    FY_CHECK_EQ(ferry_md_load(NULL, blob, len, name, sizeof(name)), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_md_load(p.agent, NULL, len, name, sizeof(name)), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_md_load(p.agent, blob, len, NULL, sizeof(name)), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_md_load(p.agent, blob, len, name, 0), FERRY_ERR_INVALID_PARAM);
    /* No room for the terminator: refused, nothing loaded. */
    FY_CHECK_EQ(ferry_md_load(p.agent, blob, len, name, strlen("md-self")),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_md_check(p.agent, "md-self", NULL), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(ferry_md_load(p.agent, blob, len, name, strlen("md-self") + 1), FERRY_OK);
    FY_CHECK(!strcmp(name, "md-self"));
    FY_CHECK_EQ(ferry_md_check(p.agent, "md-self", NULL), FERRY_OK);
    FY_CHECK_EQ(check_range(&p, "md-self", 0, 16 * KB), FERRY_OK);
    FY_CHECK_EQ(check_range(&p, "md-self", 32 * KB, 16 * KB), FERRY_OK);
    ferry_free(blob);
    peer_close(&p);
}

static void test_md_check(void)
{
    peer p;
    FY_REQUIRE(peer_open(&p, "md-check") == FERRY_OK);
    FY_REQUIRE(tu_load_self(p.agent) == FERRY_OK);
    FY_CHECK_EQ(ferry_md_check(p.agent, "md-check", NULL), FERRY_OK);
    FY_CHECK_EQ(check_range(&p, "md-check", 4 * KB, 4 * KB), FERRY_OK);
    FY_CHECK_EQ(check_range(&p, "md-check", 12 * KB, 8 * KB), FERRY_ERR_NOT_FOUND); /* end */
    FY_CHECK_EQ(check_range(&p, "md-check", 16 * KB, 1), FERRY_ERR_NOT_FOUND);      /* gap */
    FY_CHECK_EQ(check_range(&p, "unknown", 0, 1), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(ferry_md_check(p.agent, "unknown", NULL), FERRY_ERR_NOT_FOUND);
    /* A list with one uncovered descriptor among covered ones. */
    ferry_dlist *l;
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_DRAM, 2, &l) == FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add(l, (uintptr_t)p.mem, 100, 0), FERRY_OK);
    FY_CHECK_EQ(ferry_md_check(p.agent, "md-check", l), FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add(l, (uintptr_t)p.mem + 20 * KB, 100, 0), FERRY_OK);
    FY_CHECK_EQ(ferry_md_check(p.agent, "md-check", l), FERRY_ERR_NOT_FOUND);
    ferry_dlist_destroy(l);
    FY_CHECK_EQ(ferry_md_check(NULL, "md-check", NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_md_check(p.agent, NULL, NULL), FERRY_ERR_INVALID_PARAM);
    peer_close(&p);
}

/* Regions registered after the first load appear when the same instance's
 * blob is loaded again, without a new generation: handles stay valid. */
static void test_reload_same_instance_adds_regions(void)
{
    peer p;
    uint64_t g1 = 0, g2 = 0;
    ferry_prepped *pr;
    FY_REQUIRE(peer_open(&p, "md-grow") == FERRY_OK);
    FY_REQUIRE(tu_load_self(p.agent) == FERRY_OK);
    FY_CHECK_EQ(ferry_md_generation(p.agent, "md-grow", &g1), FERRY_OK);
    FY_CHECK(g1 >= 1);
    ferry_dlist *r1 = tu_list1(p.mem, 16 * KB);
    FY_REQUIRE(ferry_prep_dlist(p.agent, "md-grow", r1, NULL, &pr) == FERRY_OK);
    FY_CHECK_EQ(tu_register(p.agent, p.mem + 16 * KB, 8 * KB), FERRY_OK);
    FY_CHECK_EQ(check_range(&p, "md-grow", 16 * KB, 8 * KB), FERRY_ERR_NOT_FOUND);
    FY_REQUIRE(tu_load_self(p.agent) == FERRY_OK);
    FY_CHECK_EQ(check_range(&p, "md-grow", 16 * KB, 8 * KB), FERRY_OK);
    FY_CHECK_EQ(ferry_md_generation(p.agent, "md-grow", &g2), FERRY_OK);
    FY_CHECK_EQ(g2, g1);
    /* The list prepared before the reload still makes requests. */
    ferry_dlist *l = tu_list1(p.mem + 32 * KB, 16 * KB);
    ferry_prepped *pl;
    ferry_xfer *x;
    uint32_t idx = 0;
    FY_REQUIRE(ferry_prep_dlist(p.agent, NULL, l, NULL, &pl) == FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_make(p.agent, FERRY_OP_WRITE, pl, &idx, pr, &idx, 1, NULL, &x),
                FERRY_OK);
    ferry_xfer_release(x);
    ferry_prepped_release(pl);
    ferry_prepped_release(pr);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r1);
    peer_close(&p);
}

static void test_invalidate_and_generation(void)
{
    peer p;
    uint64_t g1 = 0, g2 = 0, g = 77;
    FY_REQUIRE(peer_open(&p, "md-gen") == FERRY_OK);
    FY_CHECK_EQ(ferry_md_generation(p.agent, "md-gen", &g), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(g, 77);
    FY_CHECK_EQ(ferry_md_invalidate(p.agent, "md-gen"), FERRY_ERR_NOT_FOUND);
    FY_REQUIRE(tu_load_self(p.agent) == FERRY_OK);
    FY_CHECK_EQ(ferry_md_generation(p.agent, "md-gen", &g1), FERRY_OK);
    FY_CHECK_EQ(ferry_md_invalidate(p.agent, "md-gen"), FERRY_OK);
    FY_CHECK_EQ(ferry_md_invalidate(p.agent, "md-gen"), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(ferry_md_generation(p.agent, "md-gen", &g), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(ferry_md_check(p.agent, "md-gen", NULL), FERRY_ERR_NOT_FOUND);
    FY_REQUIRE(tu_load_self(p.agent) == FERRY_OK);
    FY_CHECK_EQ(ferry_md_generation(p.agent, "md-gen", &g2), FERRY_OK);
    FY_CHECK(g2 > g1);
    FY_CHECK_EQ(ferry_md_invalidate(NULL, "md-gen"), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_md_invalidate(p.agent, NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_md_generation(NULL, "md-gen", &g), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_md_generation(p.agent, NULL, &g), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_md_generation(p.agent, "md-gen", NULL), FERRY_ERR_INVALID_PARAM);
    peer_close(&p);
}

static void test_md_connect(void)
{
    peer p, other;
    FY_REQUIRE(peer_open(&p, "md-connect") == FERRY_OK);
    FY_REQUIRE(peer_open(&other, "md-connect-other") == FERRY_OK);
    FY_CHECK_EQ(ferry_md_connect(p.agent, "md-connect", NULL), FERRY_ERR_NOT_FOUND);
    FY_REQUIRE(tu_load_self(p.agent) == FERRY_OK);
    FY_CHECK_EQ(ferry_md_connect(p.agent, "md-connect", NULL), FERRY_OK);
    FY_CHECK_EQ(ferry_md_connect(p.agent, "md-connect", NULL), FERRY_OK); /* again: fine */
    ferry_backend_sel sel;
    ferry_backend_sel_init(&sel);
    ferry_backend *const mine[] = {p.be}, *const foreign[] = {other.be};
    sel.backends = mine;
    sel.num_backends = 1;
    FY_CHECK_EQ(ferry_md_connect(p.agent, "md-connect", &sel), FERRY_OK);
    sel.backends = foreign;
    FY_CHECK_EQ(ferry_md_connect(p.agent, "md-connect", &sel), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_md_connect(p.agent, "nobody", NULL), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(ferry_md_connect(NULL, "md-connect", NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_md_connect(p.agent, NULL, NULL), FERRY_ERR_INVALID_PARAM);
    /* Known but reachable by no backend: nothing to connect, not an error. */
    FY_CHECK_EQ(tu_load_md(p.agent, other.agent), FERRY_OK);
    ferry_status rc = ferry_md_connect(p.agent, "md-connect-other", NULL);
    FY_CHECK(rc == FERRY_OK || rc == FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(ferry_md_invalidate(p.agent, "md-connect"), FERRY_OK);
    FY_CHECK_EQ(ferry_md_connect(p.agent, "md-connect", NULL), FERRY_ERR_NOT_FOUND);
    peer_close(&other);
    peer_close(&p);
}

/* ---- partial metadata ---- */

static void test_partial_with_conn(void)
{
    peer p;
    void *blob;
    size_t len;
    uint64_t g1 = 0, g2 = 0;
    FY_REQUIRE(peer_open(&p, "md-partial") == FERRY_OK);
    /* Region 1 only, with connection info: enough to start. */
    FY_REQUIRE(partial_of(&p, 0, 4 * KB, true, &blob, &len) == FERRY_OK);
    FY_CHECK_EQ(load(p.agent, blob, len), FERRY_OK);
    ferry_free(blob);
    FY_CHECK_EQ(check_range(&p, "md-partial", 0, 16 * KB), FERRY_OK); /* the whole region */
    FY_CHECK_EQ(check_range(&p, "md-partial", 32 * KB, 16 * KB), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(ferry_md_generation(p.agent, "md-partial", &g1), FERRY_OK);
    /* Region 2 without connection info: added to the same generation. */
    FY_REQUIRE(partial_of(&p, 40 * KB, 1 * KB, false, &blob, &len) == FERRY_OK);
    FY_CHECK_EQ(load(p.agent, blob, len), FERRY_OK);
    ferry_free(blob);
    FY_CHECK_EQ(check_range(&p, "md-partial", 32 * KB, 16 * KB), FERRY_OK);
    FY_CHECK_EQ(ferry_md_generation(p.agent, "md-partial", &g2), FERRY_OK);
    FY_CHECK_EQ(g1, g2);

    /* The partially known agent is a working loopback target. */
    ferry_xfer *x;
    tu_fill(p.mem, 16 * KB, 5);
    ferry_dlist *l = tu_list1(p.mem, 16 * KB), *r = tu_list1(p.mem + 32 * KB, 16 * KB);
    FY_REQUIRE(ferry_xfer_create(p.agent, FERRY_OP_WRITE, l, r, "md-partial", NULL, &x) ==
               FERRY_OK);
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    FY_CHECK(!memcmp(p.mem, p.mem + 32 * KB, 16 * KB));
    ferry_xfer_release(x);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    peer_close(&p);
}

static void test_partial_conn_only(void)
{
    peer p;
    void *blob;
    size_t len;
    FY_REQUIRE(peer_open(&p, "md-conn-only") == FERRY_OK);
    FY_REQUIRE(ferry_md_get_partial(p.agent, NULL, 0, true, NULL, &blob, &len) == FERRY_OK);
    FY_CHECK_EQ(load(p.agent, blob, len), FERRY_OK);
    ferry_free(blob);
    FY_CHECK_EQ(ferry_md_check(p.agent, "md-conn-only", NULL), FERRY_OK);
    FY_CHECK_EQ(check_range(&p, "md-conn-only", 0, 1), FERRY_ERR_NOT_FOUND);
    peer_close(&p);
}

static void test_partial_errors(void)
{
    peer p, other;
    void *blob = SENTINEL;
    size_t len;
    FY_REQUIRE(peer_open(&p, "md-partial-err") == FERRY_OK);
    FY_REQUIRE(peer_open(&other, "md-partial-other") == FERRY_OK);
    /* Without connection info, for an agent not loaded yet. */
    FY_REQUIRE(partial_of(&p, 0, 4 * KB, false, &blob, &len) == FERRY_OK);
    FY_CHECK_EQ(load(p.agent, blob, len), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(load(other.agent, blob, len), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(ferry_md_check(other.agent, "md-partial-err", NULL), FERRY_ERR_NOT_FOUND);
    ferry_free(blob);
    /* Uncovered descriptors. */
    blob = SENTINEL;
    FY_CHECK_EQ(partial_of(&p, 16 * KB, 1, true, &blob, &len), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(partial_of(&p, 8 * KB, 16 * KB, true, &blob, &len), FERRY_ERR_NOT_FOUND);
    FY_CHECK(blob == SENTINEL);
    /* Bad arguments. */
    ferry_dlist *l = tu_list1(p.mem, 1);
    const ferry_dlist *lists[] = {l, NULL};
    FY_CHECK_EQ(ferry_md_get_partial(NULL, lists, 1, true, NULL, &blob, &len),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_md_get_partial(p.agent, NULL, 1, true, NULL, &blob, &len),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_md_get_partial(p.agent, lists, 2, true, NULL, &blob, &len),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_md_get_partial(p.agent, lists, 1, true, NULL, NULL, &len),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_md_get_partial(p.agent, lists, 1, true, NULL, &blob, NULL),
                FERRY_ERR_INVALID_PARAM);
    ferry_backend_sel sel;
    ferry_backend_sel_init(&sel);
    ferry_backend *const foreign[] = {other.be};
    sel.backends = foreign;
    sel.num_backends = 1;
    FY_CHECK_EQ(ferry_md_get_partial(p.agent, lists, 1, true, &sel, &blob, &len),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK(blob == SENTINEL);
    /* Our own backend as the selection is fine. */
    ferry_backend *const mine[] = {p.be};
    sel.backends = mine;
    FY_CHECK_EQ(ferry_md_get_partial(p.agent, lists, 1, true, &sel, &blob, &len), FERRY_OK);
    FY_CHECK_EQ(load(p.agent, blob, len), FERRY_OK);
    ferry_free(blob);
    ferry_dlist_destroy(l);
    peer_close(&other);
    peer_close(&p);
}

/* ---- other agents ---- */

/* Another agent's metadata loads even though LOCAL cannot reach it; the
 * agent is then known but not reachable: no request, no notification. */
static void test_load_other_agent(void)
{
    peer a, b;
    FY_REQUIRE(peer_open(&a, "md-a") == FERRY_OK);
    FY_REQUIRE(peer_open(&b, "md-b") == FERRY_OK);
    FY_CHECK_EQ(tu_load_md(b.agent, a.agent), FERRY_OK);
    FY_CHECK_EQ(ferry_md_check(b.agent, "md-a", NULL), FERRY_OK);
    FY_CHECK_EQ(check_range(&a, "md-a", 0, 16 * KB), FERRY_ERR_NOT_FOUND); /* a's own view */
    ferry_dlist *r = tu_list1(a.mem, 16 * KB), *l = tu_list1(b.mem, 16 * KB);
    FY_CHECK_EQ(ferry_md_check(b.agent, "md-a", r), FERRY_OK);
    ferry_prepped *p = SENTINEL;
    FY_CHECK_EQ(ferry_prep_dlist(b.agent, "md-a", r, NULL, &p), FERRY_ERR_NOT_FOUND);
    FY_CHECK(p == SENTINEL);
    ferry_xfer *x = SENTINEL;
    FY_CHECK_EQ(ferry_xfer_create(b.agent, FERRY_OP_WRITE, l, r, "md-a", NULL, &x),
                FERRY_ERR_NOT_FOUND);
    FY_CHECK(x == SENTINEL);
    FY_CHECK_EQ(ferry_notif_send(b.agent, "md-a", "x", 1, NULL), FERRY_ERR_NOT_FOUND);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    peer_close(&b);
    peer_close(&a);
}

/* A restarted peer (same name, new instance) gets a new generation; partial
 * metadata of the old instance is refused as stale. */
static void test_new_instance(void)
{
    peer a1, a2, b;
    void *old_partial;
    size_t old_len;
    uint64_t g1 = 0, g2 = 0;
    FY_REQUIRE(peer_open(&b, "md-observer") == FERRY_OK);
    FY_REQUIRE(peer_open(&a1, "md-restart") == FERRY_OK);
    FY_CHECK_EQ(tu_load_md(b.agent, a1.agent), FERRY_OK);
    FY_CHECK_EQ(ferry_md_generation(b.agent, "md-restart", &g1), FERRY_OK);
    FY_REQUIRE(partial_of(&a1, 0, 1, false, &old_partial, &old_len) == FERRY_OK);
    peer_close(&a1);

    FY_REQUIRE(peer_open(&a2, "md-restart") == FERRY_OK);
    FY_CHECK_EQ(tu_load_md(b.agent, a2.agent), FERRY_OK);
    FY_CHECK_EQ(ferry_md_generation(b.agent, "md-restart", &g2), FERRY_OK);
    FY_CHECK(g2 > g1);
    FY_CHECK_EQ(load(b.agent, old_partial, old_len), FERRY_ERR_STALE);
    /* a2's regions, not a1's, are what b knows now. */
    FY_CHECK_EQ(check_range(&a2, "md-restart", 0, 16 * KB), FERRY_ERR_NOT_FOUND);
    ferry_dlist *r = tu_list1(a2.mem, 16 * KB);
    FY_CHECK_EQ(ferry_md_check(b.agent, "md-restart", r), FERRY_OK);
    ferry_dlist_destroy(r);
    ferry_free(old_partial);
    peer_close(&a2);
    peer_close(&b);
}

/* ---- hostile blobs ---- */

#define HDR 16u /* the header: magic(4) major minor kind flags, body length, CRC */

/* A blob worth mutating: several backends' worth of fields, regions of
 * different sizes and gaps. */
static ferry_status rich_blob(peer *p, void **blob, size_t *len)
{
    for (size_t i = 0; i < 6; i++)
        if (tu_register(p->agent, p->mem + 50 * KB + i * 2 * KB, 1 * KB + i * 100) != FERRY_OK)
            return FERRY_ERR_UNKNOWN;
    return ferry_md_get_local(p->agent, blob, len);
}

static bool is_refusal(ferry_status rc)
{
    return rc < 0 && strcmp(ferry_status_name(rc), "FERRY_STATUS_UNKNOWN") != 0;
}

static void test_hostile_random_and_truncated(void)
{
    peer p;
    void *blob;
    size_t len;
    uint8_t junk[1024];
    tu_rng rng = tu_rng_seed(tu_seed());
    FY_REQUIRE(peer_open(&p, "md-hostile") == FERRY_OK);
    FY_CHECK_EQ(load(p.agent, junk, 0), FERRY_ERR_BAD_METADATA);
    for (int i = 0; i < 1000; i++) {
        size_t n = (size_t)tu_rand_range(&rng, 1, sizeof(junk));
        tu_fill(junk, n, tu_rand(&rng));
        if (i % 2) /* half of them with the right magic */
            memcpy(junk, "FRMD", n < 4 ? n : 4);
        FY_CHECK_EQ(load(p.agent, junk, n), FERRY_ERR_BAD_METADATA);
    }
    FY_REQUIRE(rich_blob(&p, &blob, &len) == FERRY_OK);
    uint8_t *copy = malloc(len + 1);
    FY_REQUIRE(copy);
    for (size_t n = 0; n < len; n++) {
        memcpy(copy, blob, n); /* exactly n bytes: a read past them is caught */
        FY_CHECK_EQ(load(p.agent, copy, n), FERRY_ERR_BAD_METADATA);
    }
    memcpy(copy, blob, len);
    copy[len] = 0;
    FY_CHECK_EQ(load(p.agent, copy, len + 1), FERRY_ERR_BAD_METADATA);
    for (size_t bit = 0; bit < len * 8; bit++) {
        memcpy(copy, blob, len);
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        FY_CHECK_EQ(load(p.agent, copy, len), FERRY_ERR_BAD_METADATA);
    }
    /* A serialized descriptor list is not agent metadata. */
    ferry_dlist *l = tu_list1(p.mem, 16);
    void *lbuf;
    size_t llen;
    FY_REQUIRE(ferry_dlist_serialize(l, &lbuf, &llen) == FERRY_OK);
    FY_CHECK_EQ(load(p.agent, lbuf, llen), FERRY_ERR_BAD_METADATA);
    ferry_free(lbuf);
    ferry_dlist_destroy(l);
    FY_CHECK_EQ(ferry_md_check(p.agent, "md-hostile", NULL), FERRY_ERR_NOT_FOUND);
    free(copy);
    ferry_free(blob);
    peer_close(&p);
}

/* Mutations behind a valid checksum reach the field decoders: whatever they
 * decode to, loading returns OK or a documented error, never crashes or
 * reads out of bounds, and the agent keeps working afterwards. */
static void test_hostile_resealed(void)
{
    peer p;
    void *blob;
    size_t len;
    tu_rng rng = tu_rng_seed(tu_seed() ^ 0xabcdef);
    FY_REQUIRE(peer_open(&p, "md-resealed") == FERRY_OK);
    FY_REQUIRE(rich_blob(&p, &blob, &len) == FERRY_OK);
    FY_REQUIRE(len > HDR);
    uint8_t *copy = malloc(len + 64);
    FY_REQUIRE(copy);
    /* The layout assumed above must hold: resealing a valid blob is a no-op. */
    memcpy(copy, blob, len);
    fy_t_blob_reseal(copy, len);
    FY_REQUIRE(!memcmp(copy, blob, len));

    int loaded = 0;
    for (int i = 0; i < 3000; i++) {
        size_t n = len;
        memcpy(copy, blob, len);
        int edits = (int)tu_rand_range(&rng, 1, 4);
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)tu_rand_range(&rng, HDR, n - 1);
            switch (tu_rand(&rng) % 4) {
            case 0: /* flip a bit */
                copy[at] ^= (uint8_t)(1u << (tu_rand(&rng) % 8));
                break;
            case 1: /* an extreme byte: lengths and varints at their limits */
                copy[at] = (tu_rand(&rng) & 1) ? 0xff : 0x00;
                break;
            case 2: /* truncate the body */
                n = at + 1;
                break;
            default: /* random byte */
                copy[at] = (uint8_t)tu_rand(&rng);
            }
        }
        if (tu_rand(&rng) % 8 == 0) /* sometimes the header's flags/kind too */
            copy[6 + tu_rand(&rng) % 2] ^= (uint8_t)(1u << (tu_rand(&rng) % 8));
        fy_t_blob_reseal(copy, n);
        ferry_status rc = load(p.agent, copy, n);
        FY_CHECK(rc == FERRY_OK || is_refusal(rc));
        loaded += rc == FERRY_OK;
    }
    printf("# %d of 3000 mutated blobs loaded\n", loaded);
    free(copy);
    ferry_free(blob);

    /* Whatever was loaded, the agent still does its job. */
    ferry_md_invalidate(p.agent, "md-resealed");
    FY_REQUIRE(tu_load_self(p.agent) == FERRY_OK);
    ferry_dlist *l = tu_list1(p.mem, 16 * KB), *r = tu_list1(p.mem + 32 * KB, 16 * KB);
    ferry_xfer *x;
    tu_fill(p.mem, 16 * KB, 8);
    FY_REQUIRE(ferry_xfer_create(p.agent, FERRY_OP_WRITE, l, r, "md-resealed", NULL, &x) ==
               FERRY_OK);
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    FY_CHECK(!memcmp(p.mem, p.mem + 32 * KB, 16 * KB));
    ferry_xfer_release(x);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    peer_close(&p);
}

int main(void)
{
    FY_RUN(test_get_local_and_load);
    FY_RUN(test_md_check);
    FY_RUN(test_reload_same_instance_adds_regions);
    FY_RUN(test_invalidate_and_generation);
    FY_RUN(test_md_connect);
    FY_RUN(test_partial_with_conn);
    FY_RUN(test_partial_conn_only);
    FY_RUN(test_partial_errors);
    FY_RUN(test_load_other_agent);
    FY_RUN(test_new_instance);
    FY_RUN(test_hostile_random_and_truncated);
    FY_RUN(test_hostile_resealed);
    return fy_test_done();
}
