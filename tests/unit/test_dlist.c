/* SPDX-License-Identifier: Apache-2.0 */
/* Descriptor lists: plain and strided forms, per-entry metadata, accessors,
 * and serialisation (round trips, compactness, hostile bytes). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/ferry.h>

#include "harness.h"
#include "testutil.h"

#define SENTINEL ((void *)0x5e5e5e5e)

static bool desc_is(const ferry_dlist *l, size_t i, uint64_t addr, uint64_t len, uint64_t dev)
{
    ferry_desc d;
    return ferry_dlist_get(l, i, &d) == FERRY_OK && d.addr == addr && d.len == len &&
           d.dev_id == dev;
}

/* ---- plain lists ---- */

static void test_create_errors(void)
{
    ferry_dlist *l = SENTINEL;
    FY_CHECK_EQ(ferry_dlist_create(FERRY_MEM_DRAM, 0, NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_dlist_create((ferry_mem_type)FERRY_MEM_TYPE_COUNT, 0, &l),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_dlist_create((ferry_mem_type)-1, 0, &l), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_dlist_create(FERRY_MEM_DRAM, SIZE_MAX, &l), FERRY_ERR_INVALID_PARAM);
    FY_CHECK(l == SENTINEL);
}

static void test_plain_add_get(void)
{
    ferry_dlist *l;
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_VRAM, 0, &l) == FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_count(l), 0);
    FY_CHECK_EQ(ferry_dlist_mem_type(l), FERRY_MEM_VRAM);
    FY_CHECK(!ferry_dlist_is_strided(l));
    /* Past any initial capacity, so the list has to grow several times. */
    for (uint64_t i = 0; i < 1000; i++)
        FY_CHECK_EQ(ferry_dlist_add(l, 0x10000 + i * 64, 64, i % 4), FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_count(l), 1000);
    FY_CHECK(desc_is(l, 0, 0x10000, 64, 0));
    FY_CHECK(desc_is(l, 999, 0x10000 + 999 * 64, 64, 3));

    ferry_desc d = {1, 2, 3};
    FY_CHECK_EQ(ferry_dlist_get(l, 1000, &d), FERRY_ERR_INVALID_PARAM);
    FY_CHECK(d.addr == 1 && d.len == 2 && d.dev_id == 3);
    FY_CHECK_EQ(ferry_dlist_get(l, 0, NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_dlist_get(NULL, 0, &d), FERRY_ERR_INVALID_PARAM);

    /* Refused descriptors are not added. */
    FY_CHECK_EQ(ferry_dlist_add(l, 0x1000, 0, 0), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_dlist_add(l, UINT64_MAX - 4, 16, 0), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_dlist_add(NULL, 0x1000, 1, 0), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_dlist_count(l), 1000);
    /* The very end of the address space is fine when it does not wrap. */
    FY_CHECK_EQ(ferry_dlist_add(l, UINT64_MAX - 16, 16, 0), FERRY_OK);
    ferry_dlist_destroy(l);
}

static void test_capacity_hint(void)
{
    ferry_dlist *l;
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_DRAM, 4, &l) == FERRY_OK);
    for (uint64_t i = 0; i < 20; i++)
        FY_CHECK_EQ(ferry_dlist_add(l, 4096 * (i + 1), 4096, 0), FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_count(l), 20);
    FY_CHECK(desc_is(l, 19, 4096 * 20, 4096, 0));
    ferry_dlist_destroy(l);
}

static void test_meta(void)
{
    ferry_dlist *l;
    const void *meta = SENTINEL;
    size_t meta_len = 99;
    char path[] = "/tmp/kv-0001.bin";
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_FILE, 0, &l) == FERRY_OK);
    /* An entry before any metadata exists, then entries with and without. */
    FY_CHECK_EQ(ferry_dlist_add(l, 0, 100, 7), FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add_meta(l, 100, 100, 8, path, strlen(path)), FERRY_OK);
    path[0] = 'X'; /* the list keeps a copy */
    FY_CHECK_EQ(ferry_dlist_add_meta(l, 200, 100, 9, NULL, 0), FERRY_OK);
    for (int i = 0; i < 40; i++) /* grow past the first capacity with metadata on */
        FY_CHECK_EQ(ferry_dlist_add_meta(l, 300 + 10 * (uint64_t)i, 10, 9, "key", 3), FERRY_OK);
    ferry_desc arr[2] = {{1000, 1, 1}, {2000, 2, 2}};
    FY_CHECK_EQ(ferry_dlist_add_array(l, arr, 2), FERRY_OK);

    FY_CHECK_EQ(ferry_dlist_get_meta(l, 0, &meta, &meta_len), FERRY_OK);
    FY_CHECK(meta == NULL && meta_len == 0);
    FY_CHECK_EQ(ferry_dlist_get_meta(l, 1, &meta, &meta_len), FERRY_OK);
    FY_CHECK(meta_len == strlen("/tmp/kv-0001.bin") && !memcmp(meta, "/tmp/kv-0001.bin", meta_len));
    FY_CHECK_EQ(ferry_dlist_get_meta(l, 2, &meta, &meta_len), FERRY_OK);
    FY_CHECK(meta == NULL && meta_len == 0);
    FY_CHECK_EQ(ferry_dlist_get_meta(l, 42, &meta, &meta_len), FERRY_OK);
    FY_CHECK(meta_len == 3 && !memcmp(meta, "key", 3));
    FY_CHECK_EQ(ferry_dlist_get_meta(l, 43, &meta, &meta_len), FERRY_OK);
    FY_CHECK(meta == NULL && meta_len == 0); /* from add_array: none */
    FY_CHECK(desc_is(l, 44, 2000, 2, 2));

    FY_CHECK_EQ(ferry_dlist_add_meta(l, 5000, 1, 0, NULL, 4), FERRY_ERR_INVALID_PARAM);
    /* len 0 in a storage list is "to the end"; none is left after UINT64_MAX */
    FY_CHECK_EQ(ferry_dlist_add_meta(l, UINT64_MAX, 0, 0, "x", 1), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_dlist_add_meta(NULL, 5000, 1, 0, "x", 1), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_dlist_count(l), 45);
    FY_CHECK_EQ(ferry_dlist_get_meta(l, 45, &meta, &meta_len), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_dlist_get_meta(l, 0, NULL, &meta_len), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_dlist_get_meta(l, 0, &meta, NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_dlist_get_meta(NULL, 0, &meta, &meta_len), FERRY_ERR_INVALID_PARAM);
    ferry_dlist_destroy(l);
}

static void test_add_array(void)
{
    ferry_dlist *l;
    ferry_desc good[3] = {{0x1000, 16, 0}, {0x2000, 32, 1}, {0x3000, 48, 2}};
    ferry_desc bad[3] = {{0x1000, 16, 0}, {0x2000, 0, 1}, {0x3000, 48, 2}};
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_DRAM, 0, &l) == FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add_array(l, good, 3), FERRY_OK);
    /* All or nothing: one bad descriptor refuses the whole array. */
    FY_CHECK_EQ(ferry_dlist_add_array(l, bad, 3), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_dlist_count(l), 3);
    FY_CHECK(desc_is(l, 1, 0x2000, 32, 1));
    FY_CHECK_EQ(ferry_dlist_add_array(l, NULL, 1), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_dlist_add_array(NULL, good, 1), FERRY_ERR_INVALID_PARAM);
    ferry_dlist_destroy(l);
}

/* Nothing to add is fine, NULL array included. (Last in main: UBSan
 * flags the library's memcpy from NULL here.) */
static void test_add_array_empty(void)
{
    ferry_dlist *l;
    ferry_desc one = {0x1000, 16, 0};
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_DRAM, 0, &l) == FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add_array(l, &one, 0), FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add_array(l, NULL, 0), FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_count(l), 0);
    ferry_dlist_destroy(l);
}

/* Storage lists take len 0 as "to the end" (NIXL's (0, 0, fd, path));
 * memory lists refuse it. */
static void test_storage_len_zero(void)
{
    ferry_dlist *f, *d;
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_FILE, 0, &f) == FERRY_OK);
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_DRAM, 0, &d) == FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add_meta(f, 0, 0, 3, "/x", 2), FERRY_OK);
    ferry_desc arr[1] = {{4096, 0, 4}};
    FY_CHECK_EQ(ferry_dlist_add_array(f, arr, 1), FERRY_OK);
    FY_CHECK(desc_is(f, 0, 0, UINT64_MAX, 3));
    FY_CHECK(desc_is(f, 1, 4096, UINT64_MAX - 4096, 4));
    FY_CHECK_EQ(ferry_dlist_add(d, 4096, 0, 0), FERRY_ERR_INVALID_PARAM);
    ferry_dlist_destroy(f);
    ferry_dlist_destroy(d);
}

static void test_null_accessors(void)
{
    FY_CHECK_EQ(ferry_dlist_count(NULL), 0);
    FY_CHECK_EQ(ferry_dlist_mem_type(NULL), FERRY_MEM_DRAM);
    FY_CHECK_EQ(ferry_dlist_is_strided(NULL), 0);
    ferry_dlist_destroy(NULL);
}

/* ---- strided lists ---- */

static void test_strided(void)
{
    ferry_dlist *l;
    const void *meta;
    size_t meta_len;
    FY_REQUIRE(ferry_dlist_create_strided(FERRY_MEM_VRAM, 0x100000, 8192, 1000, 4096, 3, &l) ==
               FERRY_OK);
    FY_CHECK(ferry_dlist_is_strided(l));
    FY_CHECK_EQ(ferry_dlist_count(l), 1000);
    FY_CHECK_EQ(ferry_dlist_mem_type(l), FERRY_MEM_VRAM);
    FY_CHECK(desc_is(l, 0, 0x100000, 4096, 3));
    FY_CHECK(desc_is(l, 999, 0x100000 + 999 * 8192, 4096, 3));
    ferry_desc d;
    FY_CHECK_EQ(ferry_dlist_get(l, 1000, &d), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_dlist_get_meta(l, 5, &meta, &meta_len), FERRY_OK);
    FY_CHECK(meta == NULL && meta_len == 0);
    /* A strided list is never materialised: it cannot be appended to. */
    ferry_desc one = {1, 1, 0};
    FY_CHECK_EQ(ferry_dlist_add(l, 1, 1, 0), FERRY_ERR_NOT_ALLOWED);
    FY_CHECK_EQ(ferry_dlist_add_meta(l, 1, 1, 0, "m", 1), FERRY_ERR_NOT_ALLOWED);
    FY_CHECK_EQ(ferry_dlist_add_array(l, &one, 1), FERRY_ERR_NOT_ALLOWED);
    FY_CHECK_EQ(ferry_dlist_count(l), 1000);
    ferry_dlist_destroy(l);

    /* Huge counts cost nothing; stride 0 repeats one block. */
    FY_REQUIRE(ferry_dlist_create_strided(FERRY_MEM_DRAM, 0x1000, 0, (size_t)1 << 40, 64, 0, &l) ==
               FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_count(l), (size_t)1 << 40);
    FY_CHECK(desc_is(l, ((size_t)1 << 40) - 1, 0x1000, 64, 0));
    ferry_dlist_destroy(l);
    FY_REQUIRE(ferry_dlist_create_strided(FERRY_MEM_DRAM, 0x1000, 64, 0, 64, 0, &l) == FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_count(l), 0);
    ferry_dlist_destroy(l);
}

static void test_strided_errors(void)
{
    ferry_dlist *l = SENTINEL;
    FY_CHECK_EQ(ferry_dlist_create_strided(FERRY_MEM_DRAM, 0x1000, 64, 4, 0, 0, &l),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_dlist_create_strided(FERRY_MEM_DRAM, 0x1000, 64, 4, 64, 0, NULL),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_dlist_create_strided((ferry_mem_type)9, 0x1000, 64, 4, 64, 0, &l),
                FERRY_ERR_INVALID_PARAM);
    /* The last descriptor would wrap the address space. */
    FY_CHECK_EQ(ferry_dlist_create_strided(FERRY_MEM_DRAM, UINT64_MAX - 100, 64, 4, 16, 0, &l),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_dlist_create_strided(FERRY_MEM_DRAM, 0x1000, UINT64_MAX / 2, 4, 16, 0, &l),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_dlist_create_strided(FERRY_MEM_DRAM, UINT64_MAX - 8, 0, 1, 16, 0, &l),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK(l == SENTINEL);
}

/* ---- serialisation ---- */

static bool lists_equal(const ferry_dlist *a, const ferry_dlist *b)
{
    if (ferry_dlist_count(a) != ferry_dlist_count(b) ||
        ferry_dlist_mem_type(a) != ferry_dlist_mem_type(b) ||
        ferry_dlist_is_strided(a) != ferry_dlist_is_strided(b))
        return false;
    for (size_t i = 0; i < ferry_dlist_count(a); i++) {
        ferry_desc x, y;
        const void *mx, *my;
        size_t nx, ny;
        if (ferry_dlist_get(a, i, &x) || ferry_dlist_get(b, i, &y) ||
            ferry_dlist_get_meta(a, i, &mx, &nx) || ferry_dlist_get_meta(b, i, &my, &ny))
            return false;
        if (x.addr != y.addr || x.len != y.len || x.dev_id != y.dev_id || nx != ny ||
            (nx && memcmp(mx, my, nx)))
            return false;
    }
    return true;
}

/* Serialises, deserialises, compares; returns the blob size (0 on error). */
static size_t round_trip(const ferry_dlist *l)
{
    void *buf = NULL;
    size_t len = 0;
    ferry_dlist *back = NULL;
    if (ferry_dlist_serialize(l, &buf, &len) != FERRY_OK)
        return 0;
    bool ok = ferry_dlist_deserialize(buf, len, &back) == FERRY_OK && lists_equal(l, back);
    ferry_dlist_destroy(back);
    ferry_free(buf);
    return ok ? len : 0;
}

static void test_serialize_round_trip(void)
{
    ferry_dlist *l;
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_DRAM, 0, &l) == FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add_meta(l, 0x1000, 4096, 3, "meta-a", 6), FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add(l, 8192, 100, 3), FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add_meta(l, UINT64_MAX - 10, 10, UINT64_MAX, "meta-b", 6), FERRY_OK);
    FY_CHECK(round_trip(l) > 0);
    ferry_dlist_destroy(l);

    FY_REQUIRE(ferry_dlist_create_strided(FERRY_MEM_VRAM, 0x7f0000000000ull, 1u << 16, 100000,
                                          1u << 15, 1, &l) == FERRY_OK);
    size_t len = round_trip(l);
    FY_CHECK(len > 0 && len < 128); /* strided stays O(1) on the wire too */
    ferry_dlist_destroy(l);
}

/* Plain lists of every memory type travel, e.g. FILE lists with paths. */
static void test_serialize_plain_file(void)
{
    ferry_dlist *l;
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_FILE, 0, &l) == FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add_meta(l, 0, 4096, 3, "/data/a", 7), FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_add_meta(l, 1u << 20, 4096, 3, "/data/b", 7), FERRY_OK);
    void *buf = NULL;
    size_t len = 0;
    FY_CHECK_EQ(ferry_dlist_serialize(l, &buf, &len), FERRY_OK);
    ferry_free(buf);
    FY_CHECK(round_trip(l) > 0);
    ferry_dlist_destroy(l);
}

/* An empty list keeps its memory type through the wire. */
static void test_serialize_empty_keeps_type(void)
{
    for (int t = 0; t < FERRY_MEM_TYPE_COUNT; t++) {
        ferry_dlist *l;
        FY_REQUIRE(ferry_dlist_create((ferry_mem_type)t, 0, &l) == FERRY_OK);
        if (!round_trip(l)) {
            printf("# empty %s list did not round-trip\n", ferry_mem_type_name((ferry_mem_type)t));
            FY_CHECK(!"round trip");
        }
        ferry_dlist_destroy(l);
    }
}

/* 100k KV blocks serialise to a small blob (delta/varint encoding). */
static void test_serialize_compact(void)
{
    ferry_dlist *l;
    tu_rng rng = tu_rng_seed(tu_seed());
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_DRAM, 100000, &l) == FERRY_OK);
    for (uint64_t i = 0; i < 100000; i++)
        FY_CHECK_EQ(ferry_dlist_add(l, 0x7f0000000000ull + i * 65536, 65536, 0), FERRY_OK);
    size_t regular = round_trip(l);
    FY_CHECK(regular > 0 && regular < 64 * 1024);
    ferry_dlist_destroy(l);

    /* Irregular blocks: still far below the 24 bytes per descriptor of a
     * raw array. */
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_DRAM, 100000, &l) == FERRY_OK);
    uint64_t addr = 0x7f0000000000ull;
    for (uint64_t i = 0; i < 100000; i++) {
        uint64_t len = tu_rand_range(&rng, 1, 4096);
        FY_CHECK_EQ(ferry_dlist_add(l, addr, len, 0), FERRY_OK);
        addr += len + tu_rand_range(&rng, 0, 256);
    }
    size_t irregular = round_trip(l);
    printf("# 100k descriptors: %zu bytes regular, %zu bytes irregular\n", regular, irregular);
    FY_CHECK(irregular > 0 && irregular < 100000 * 8);
    ferry_dlist_destroy(l);
}

static void test_serialize_errors(void)
{
    ferry_dlist *l;
    void *buf = SENTINEL;
    size_t len = 0;
    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_DRAM, 0, &l) == FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_serialize(NULL, &buf, &len), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_dlist_serialize(l, NULL, &len), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_dlist_serialize(l, &buf, NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK(buf == SENTINEL);
    ferry_dlist *out = SENTINEL;
    FY_CHECK_EQ(ferry_dlist_deserialize(NULL, 10, &out), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_dlist_deserialize("x", 1, NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK(out == SENTINEL);
    ferry_dlist_destroy(l);
}

/* Random bytes, every truncation and every single-bit flip of a valid blob,
 * and agent metadata passed as a list: BAD_METADATA, never a crash. */
static void test_deserialize_hostile(void)
{
    ferry_dlist *l, *out = SENTINEL;
    void *buf;
    size_t len;
    uint8_t junk[512];
    tu_rng rng = tu_rng_seed(tu_seed());

    FY_CHECK_EQ(ferry_dlist_deserialize(junk, 0, &out), FERRY_ERR_BAD_METADATA);
    for (int i = 0; i < 500; i++) {
        size_t n = (size_t)tu_rand_range(&rng, 1, sizeof(junk));
        tu_fill(junk, n, tu_rand(&rng));
        FY_CHECK_EQ(ferry_dlist_deserialize(junk, n, &out), FERRY_ERR_BAD_METADATA);
    }

    FY_REQUIRE(ferry_dlist_create(FERRY_MEM_DRAM, 0, &l) == FERRY_OK);
    for (uint64_t i = 0; i < 8; i++)
        FY_CHECK_EQ(ferry_dlist_add_meta(l, (i + 1) * 4096, 4096, i, "/p", 2), FERRY_OK);
    FY_REQUIRE(ferry_dlist_serialize(l, &buf, &len) == FERRY_OK);
    ferry_dlist_destroy(l);
    uint8_t *copy = malloc(len + 1);
    FY_REQUIRE(copy);
    for (size_t n = 0; n < len; n++) {
        memcpy(copy, buf, n); /* exactly n bytes: ASan/valgrind see any over-read */
        FY_CHECK_EQ(ferry_dlist_deserialize(copy, n, &out), FERRY_ERR_BAD_METADATA);
    }
    for (size_t bit = 0; bit < len * 8; bit++) {
        memcpy(copy, buf, len);
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        FY_CHECK_EQ(ferry_dlist_deserialize(copy, len, &out), FERRY_ERR_BAD_METADATA);
    }
    memcpy(copy, buf, len);
    copy[len] = 0; /* trailing byte */
    FY_CHECK_EQ(ferry_dlist_deserialize(copy, len + 1, &out), FERRY_ERR_BAD_METADATA);
    FY_CHECK(out == SENTINEL);
    free(copy);
    ferry_free(buf);

    /* Agent metadata is not a descriptor list. */
    ferry_agent *agent;
    FY_REQUIRE(tu_agent("dlist-md", &agent) == FERRY_OK);
    FY_REQUIRE(ferry_md_get_local(agent, &buf, &len) == FERRY_OK);
    FY_CHECK_EQ(ferry_dlist_deserialize(buf, len, &out), FERRY_ERR_BAD_METADATA);
    ferry_free(buf);
    ferry_agent_destroy(agent);
}

int main(void)
{
    FY_RUN(test_create_errors);
    FY_RUN(test_plain_add_get);
    FY_RUN(test_capacity_hint);
    FY_RUN(test_meta);
    FY_RUN(test_add_array);
    FY_RUN(test_null_accessors);
    FY_RUN(test_strided);
    FY_RUN(test_strided_errors);
    FY_RUN(test_serialize_round_trip);
    FY_RUN(test_serialize_plain_file);
    FY_RUN(test_serialize_empty_keeps_type);
    FY_RUN(test_serialize_compact);
    FY_RUN(test_serialize_errors);
    FY_RUN(test_deserialize_hostile);
    FY_RUN(test_add_array_empty);
    FY_RUN(test_storage_len_zero);
    return fy_test_done();
}
