/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the metadata wire codec (src/metadata/wire.c).
 *
 * Round trips go through fy_md_encode; everything that probes the decoder's
 * rules builds blobs by hand from docs/wire-format.md with its own writer and
 * its own bitwise CRC32C, so the tests also check that the codec follows the
 * documented layout rather than only agreeing with itself. */
#include <stdint.h>
#include <time.h>

#include "harness.h"
#include "metadata/wire.h"

#define BAD     FERRY_ERR_BAD_METADATA
#define INVALID FERRY_ERR_INVALID_PARAM

/* ---- independent helpers ------------------------------------------------ */

/* Bitwise CRC32C (no tables), to cross-check the codec's slicing version. */
static uint32_t ref_crc(uint32_t crc, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return crc;
}

static void st32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Rewrites body length and checksum after a test edited a blob. */
static void reseal(uint8_t *blob, size_t len)
{
    st32(blob + 8, (uint32_t)(len - 16));
    uint32_t crc = ref_crc(0xffffffffu, blob, 12);
    st32(blob + 12, ~ref_crc(crc, blob + 16, len - 16));
}

/* A hand-written blob under construction. */
typedef struct tb {
    uint8_t b[16384];
    size_t n;
} tb;

static void tb_u8(tb *t, uint8_t v)
{
    t->b[t->n++] = v;
}

static void tb_raw(tb *t, const void *p, size_t n)
{
    memcpy(t->b + t->n, p, n);
    t->n += n;
}

static void tb_var(tb *t, uint64_t v)
{
    for (; v >= 0x80; v >>= 7)
        tb_u8(t, (uint8_t)(v | 0x80));
    tb_u8(t, (uint8_t)v);
}

static void tb_str(tb *t, const char *s)
{
    tb_var(t, strlen(s));
    tb_raw(t, s, strlen(s));
}

static void tb_sec(tb *t, uint8_t type, const tb *payload)
{
    tb_u8(t, type);
    tb_var(t, payload->n);
    tb_raw(t, payload->b, payload->n);
}

/* IDENT payload: name, uid (8 bytes LE). */
static void tb_ident(tb *t, const char *name, uint64_t uid)
{
    tb p = {.n = 0};
    tb_str(&p, name);
    for (int i = 0; i < 8; i++)
        tb_u8(&p, (uint8_t)(uid >> (8 * i)));
    tb_sec(t, 1, &p);
}

/* Wraps a body into a whole blob (header first) in out. */
static void tb_blob(tb *out, uint8_t major, uint8_t minor, uint8_t kind, uint8_t flags,
                    const tb *body)
{
    const uint8_t head[8] = {'F', 'R', 'M', 'D', major, minor, kind, flags};
    out->n = 0;
    tb_raw(out, head, 8);
    tb_raw(out, "\0\0\0\0\0\0\0\0", 8);
    tb_raw(out, body->b, body->n);
    reseal(out->b, out->n);
}

static ferry_status try_decode(const tb *blob)
{
    fy_md md;
    ferry_status st = fy_md_decode(blob->b, blob->n, &md);
    if (st == FERRY_OK)
        fy_md_free(&md);
    return st;
}

static bool bytes_eq(fy_bytes a, fy_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static bool regions_eq(const fy_md *a, const fy_md *b)
{
    if (a->num_regions != b->num_regions)
        return false;
    for (size_t i = 0; i < a->num_regions; i++) {
        const fy_md_region *x = &a->regions[i], *y = &b->regions[i];
        if (x->addr != y->addr || x->len != y->len || x->dev_id != y->dev_id ||
            x->mem_type != y->mem_type || x->backend_mask != y->backend_mask ||
            !bytes_eq(x->meta, y->meta))
            return false;
        for (uint32_t k = 0; k < a->num_backends; k++)
            if (!bytes_eq(a->pubs[i * a->num_backends + k], b->pubs[i * b->num_backends + k]))
                return false;
    }
    return true;
}

/* Equality of what the wire carries (conn only with has_conn, stride
 * parameters only for a strided list). */
static bool md_eq(const fy_md *a, const fy_md *b)
{
    if (a->kind != b->kind || a->has_conn != b->has_conn || a->strided != b->strided ||
        !bytes_eq(a->name, b->name) || a->num_backends != b->num_backends)
        return false;
    if (a->kind == FY_MD_KIND_AGENT && a->uid != b->uid)
        return false;
    if (a->kind == FY_MD_KIND_DLIST && a->stride_mem_type != b->stride_mem_type)
        return false;
    if (a->strided && (a->stride_base != b->stride_base || a->stride != b->stride ||
                       a->stride_len != b->stride_len || a->stride_dev != b->stride_dev ||
                       a->stride_count != b->stride_count))
        return false;
    for (uint32_t k = 0; k < a->num_backends; k++)
        if (!bytes_eq(a->backends[k].name, b->backends[k].name) ||
            (a->has_conn && !bytes_eq(a->backends[k].conn, b->backends[k].conn)))
            return false;
    return regions_eq(a, b);
}

static fy_bytes B(const char *s)
{
    return (fy_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static bool inside(fy_bytes v, const void *buf, size_t len)
{
    const uint8_t *b = buf;
    return v.len == 0 || (v.ptr >= b && v.ptr + v.len <= b + len);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Encodes md, decodes it back and checks equality; returns the size. */
static size_t round_trip(const fy_md *md)
{
    void *buf = NULL;
    size_t len = 0;
    fy_md out;
    if (fy_md_encode(md, &buf, &len) != FERRY_OK) {
        printf("# encode failed\n");
        fy_t_failed++;
        return 0;
    }
    ferry_status st = fy_md_decode(buf, len, &out);
    FY_CHECK_EQ(st, FERRY_OK);
    if (st == FERRY_OK) {
        FY_CHECK(md_eq(md, &out));
        FY_CHECK(inside(out.name, buf, len));
        fy_md_free(&out);
        FY_CHECK(out.regions == NULL && out.pubs == NULL);
    }
    free(buf);
    return len;
}

/* ---- fixtures ----------------------------------------------------------- */

/* A full agent: three backends, six regions of every flavour. */
static fy_md_region agent_regions[6];
static fy_bytes agent_pubs[6 * 3];

static void make_agent(fy_md *md)
{
    memset(md, 0, sizeof(*md));
    md->kind = FY_MD_KIND_AGENT;
    md->name = B("prefill-0");
    md->uid = 0x1122334455667788ull;
    md->has_conn = true;
    md->num_backends = 3;
    md->backends[0] = (fy_md_backend){B("UCX"), B("ucx-worker-address-bytes")};
    md->backends[1] = (fy_md_backend){B("POSIX"), {NULL, 0}};
    md->backends[2] = (fy_md_backend){B("OBJ"), B("endpoint=http://127.0.0.1:9000")};
    const fy_md_region r[6] = {
        {0x7f0000001000, 1 << 20, 0, 0, 0x1, {NULL, 0}},
        {0x7f0000101000, 1 << 20, 0, 0, 0x1, {NULL, 0}},
        {0x7e0000000000, 4096, 3, 1, 0x1, {NULL, 0}},
        {0, 1ull << 30, 7, 2, 0x2, B("/data/kv/shard-0.bin")},
        {4096, 8192, 1, 4, 0x4, B("bucket/object-key")},
        {UINT64_MAX - 10, 10, 0, 3, 0x6, B("vol")},
    };
    memcpy(agent_regions, r, sizeof(r));
    memset(agent_pubs, 0, sizeof(agent_pubs));
    agent_pubs[0 * 3 + 0] = B("rkey-0");
    agent_pubs[2 * 3 + 0] = B("rkey-vram");
    agent_pubs[4 * 3 + 2] = B("etag");
    agent_pubs[5 * 3 + 1] = B("p");
    md->num_regions = 6;
    md->regions = agent_regions;
    md->pubs = agent_pubs;
}

static void t_agent_round_trip(void)
{
    fy_md md;
    make_agent(&md);
    size_t len = round_trip(&md);
    printf("# full agent, 3 backends, 6 regions: %zu bytes\n", len);
}

static void t_partial_without_conn(void)
{
    fy_md md, out;
    void *buf;
    size_t len;
    make_agent(&md);
    md.has_conn = false; /* conn views stay set: the encoder must ignore them */
    md.num_regions = 2;
    md.regions = agent_regions + 3;
    md.pubs = agent_pubs + 3 * 3;
    FY_REQUIRE(fy_md_encode(&md, &buf, &len) == FERRY_OK);
    FY_REQUIRE(fy_md_decode(buf, len, &out) == FERRY_OK);
    FY_CHECK(!out.has_conn && out.num_backends == 3 && out.num_regions == 2);
    for (uint32_t b = 0; b < 3; b++)
        FY_CHECK(out.backends[b].conn.len == 0 && out.backends[b].conn.ptr == NULL);
    FY_CHECK(md_eq(&md, &out));
    fy_md_free(&out);
    free(buf);
    /* Connection info alone: no regions at all. */
    md.has_conn = true;
    md.num_regions = 0;
    md.regions = NULL;
    md.pubs = NULL;
    round_trip(&md);
}

static void t_dlist_plain(void)
{
    fy_md_region r[3] = {
        {0, 1 << 20, 5, 2, 0, B("/mnt/nvme/a")},
        {1 << 20, 1 << 20, 5, 2, 0, B("/mnt/nvme/a")},
        {0, 4096, 6, 2, 0, {NULL, 0}},
    };
    fy_md md = {.kind = FY_MD_KIND_DLIST, .stride_mem_type = 2, .num_regions = 3, .regions = r};
    printf("# plain FILE dlist, 3 entries: %zu bytes\n", round_trip(&md));
}

static void t_dlist_strided(void)
{
    fy_md md = {.kind = FY_MD_KIND_DLIST,
                .strided = true,
                .stride_base = 0x7f0000000000,
                .stride = 1 << 16,
                .stride_len = 1 << 15,
                .stride_dev = 2,
                .stride_count = 100000,
                .stride_mem_type = 1};
    printf("# strided VRAM dlist: %zu bytes\n", round_trip(&md));
    md.stride_count = 0;
    round_trip(&md);
}

static void t_empty(void)
{
    fy_md agent = {.kind = FY_MD_KIND_AGENT, .name = B("a"), .uid = 1};
    printf("# empty agent: %zu bytes\n", round_trip(&agent));
    /* An empty plain list keeps its memory type. */
    fy_md list = {.kind = FY_MD_KIND_DLIST, .stride_mem_type = 4};
    printf("# empty OBJ dlist: %zu bytes\n", round_trip(&list));
}

/* ---- 100k regions ------------------------------------------------------- */

enum { BIG = 100000 };

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Best of a few decodes, so a cold cache or a preempted run does not count. */
static double decode_ms(const void *buf, size_t len)
{
    double best = 1e9;
    for (int i = 0; i < 5; i++) {
        fy_md out;
        double t0 = now_ms();
        ferry_status st = fy_md_decode(buf, len, &out);
        double t = now_ms() - t0;
        if (st != FERRY_OK)
            return -1;
        fy_md_free(&out);
        best = t < best ? t : best;
    }
    return best;
}

static void big_case(const fy_md *md, const char *what, size_t max_len)
{
    void *buf;
    size_t len;
    fy_md out;
    double t0 = now_ms();
    FY_REQUIRE(fy_md_encode(md, &buf, &len) == FERRY_OK);
    double enc = now_ms() - t0;
    FY_REQUIRE(fy_md_decode(buf, len, &out) == FERRY_OK);
    FY_CHECK(md_eq(md, &out));
    fy_md_free(&out);
    double dec = decode_ms(buf, len);
    FY_CHECK(dec >= 0);
    FY_CHECK(len < max_len);
    printf("# %s: %zu bytes (%.3f bytes/region), encode %.2f ms, decode %.3f ms\n", what, len,
           (double)len / BIG, enc, dec);
    free(buf);
}

static void t_regular_100k(void)
{
    fy_md_region *r = calloc(BIG, sizeof(*r));
    fy_bytes *pubs = calloc(BIG, sizeof(*pubs));
    FY_REQUIRE(r && pubs);
    for (size_t i = 0; i < BIG; i++)
        r[i] = (fy_md_region){0x7f1234560000 + i * 4096, 4096, 0, 0, 1, {NULL, 0}};
    fy_md md = {.kind = FY_MD_KIND_AGENT, .name = B("decode-7"), .uid = 42, .num_backends = 1};
    md.backends[0].name = B("POSIX");
    md.num_regions = BIG;
    md.regions = r;
    md.pubs = pubs;
    big_case(&md, "100k regular regions, 1 backend", 4096);
    /* The same layout as a descriptor list. */
    fy_md list = {.kind = FY_MD_KIND_DLIST, .num_regions = BIG, .regions = r};
    for (size_t i = 0; i < BIG; i++)
        r[i].backend_mask = 0;
    big_case(&list, "100k regular dlist entries", 4096);
    free(r);
    free(pubs);
}

static void fill_irregular(fy_md_region *r, fy_bytes *pubs, uint8_t *keys)
{
    uint64_t addr = 0x7f0000000000;
    for (size_t i = 0; i < BIG; i++) {
        uint64_t len = 1 + rng() % (1 << 20);
        addr += rng() % 4 ? rng() % 65536 : 0;
        r[i] = (fy_md_region){addr, len, rng() % 8, (uint32_t)(rng() % 2), 1, {NULL, 0}};
        for (int k = 0; k < 20; k++)
            keys[i * 20 + k] = (uint8_t)rng();
        pubs[i] = (fy_bytes){keys + i * 20, 20};
        addr += len;
    }
}

static void t_irregular_100k(void)
{
    fy_md_region *r = calloc(BIG, sizeof(*r));
    fy_bytes *pubs = calloc(BIG, sizeof(*pubs));
    uint8_t *keys = malloc(BIG * 20);
    FY_REQUIRE(r && pubs && keys);
    fill_irregular(r, pubs, keys);
    fy_md md = {.kind = FY_MD_KIND_AGENT, .name = B("decode-7"), .uid = 42, .num_backends = 1};
    md.backends[0].name = B("UCX");
    md.num_regions = BIG;
    md.regions = r;
    md.pubs = pubs;
    /* 20 pub bytes per region, plus a few for the rest. */
    big_case(&md, "100k irregular regions, 20-byte pubs", BIG * (20 + 12));
    free(r);
    free(pubs);
    free(keys);
}

/* ---- hostile input ------------------------------------------------------ */

static void check_truncations(const fy_md *md)
{
    void *buf;
    size_t len;
    FY_REQUIRE(fy_md_encode(md, &buf, &len) == FERRY_OK);
    for (size_t n = 0; n < len; n++) {
        /* A copy of exactly n bytes, so sanitizers see any overread. */
        uint8_t *cut = malloc(n ? n : 1);
        FY_REQUIRE(cut);
        memcpy(cut, buf, n);
        fy_md out;
        FY_CHECK_EQ(fy_md_decode(cut, n, &out), BAD);
        free(cut);
    }
    free(buf);
}

static void t_truncations(void)
{
    fy_md md;
    make_agent(&md);
    check_truncations(&md);
    fy_md strided = {.kind = FY_MD_KIND_DLIST, .strided = true, .stride_len = 1, .stride_count = 9};
    check_truncations(&strided);
}

/* Any single changed byte is caught by the checksum (CRC32C detects every
 * error burst of up to 32 bits). */
static void t_corruption_detected(void)
{
    fy_md md;
    void *buf;
    size_t len;
    make_agent(&md);
    FY_REQUIRE(fy_md_encode(&md, &buf, &len) == FERRY_OK);
    uint8_t *b = buf;
    for (size_t i = 0; i < len; i++) {
        for (unsigned x = 1; x < 256; x++) {
            b[i] ^= (uint8_t)x;
            fy_md out;
            FY_CHECK_EQ(fy_md_decode(b, len, &out), BAD);
            b[i] ^= (uint8_t)x;
        }
    }
    free(buf);
}

/* The same corruptions with the checksum fixed up, so the structural checks
 * are reached: each result is either refused or decodes to something that
 * survives its own round trip. */
static bool reencodes(const fy_md *md)
{
    void *buf;
    size_t len;
    fy_md again;
    if (fy_md_encode(md, &buf, &len) != FERRY_OK)
        return false;
    bool ok = fy_md_decode(buf, len, &again) == FERRY_OK;
    if (ok) {
        ok = md_eq(md, &again);
        fy_md_free(&again);
    }
    free(buf);
    return ok;
}

static void corrupt_resealed(const fy_md *md, size_t *accepted, size_t *tried)
{
    void *buf;
    size_t len;
    FY_REQUIRE(fy_md_encode(md, &buf, &len) == FERRY_OK);
    uint8_t *b = buf;
    for (size_t i = 16; i < len; i++) {
        for (unsigned x = 1; x < 256; x++) {
            b[i] ^= (uint8_t)x;
            reseal(b, len);
            fy_md out;
            (*tried)++;
            if (fy_md_decode(b, len, &out) == FERRY_OK) {
                (*accepted)++;
                FY_CHECK(reencodes(&out));
                fy_md_free(&out);
            }
            b[i] ^= (uint8_t)x;
        }
    }
    free(buf);
}

static void t_corruption_resealed(void)
{
    fy_md md;
    size_t accepted = 0, tried = 0;
    make_agent(&md);
    corrupt_resealed(&md, &accepted, &tried);
    fy_md_region r[2] = {{0, 4096, 0, 3, 0, B("x")}, {8192, 4096, 0, 3, 0, {NULL, 0}}};
    fy_md list = {.kind = FY_MD_KIND_DLIST, .stride_mem_type = 3, .num_regions = 2, .regions = r};
    corrupt_resealed(&list, &accepted, &tried);
    printf("# resealed corruptions: %zu tried, %zu still well-formed\n", tried, accepted);
}

static void t_header_checks(void)
{
    fy_md md = {.kind = FY_MD_KIND_AGENT, .name = B("a")};
    void *buf;
    size_t len;
    FY_REQUIRE(fy_md_encode(&md, &buf, &len) == FERRY_OK);
    uint8_t *b = buf;
    tb t = {.n = 0};
    tb_raw(&t, b, len);
    FY_CHECK_EQ(try_decode(&t), FERRY_OK);
    t.b[0] = 'X'; /* wrong magic, checksum made right again */
    reseal(t.b, t.n);
    FY_CHECK_EQ(try_decode(&t), BAD);
    t.b[0] = 'F';
    const uint8_t majors[] = {0, 2, 255};
    for (size_t i = 0; i < sizeof(majors); i++) {
        t.b[4] = majors[i];
        reseal(t.b, t.n);
        FY_CHECK_EQ(try_decode(&t), BAD);
    }
    t.b[4] = 1;
    const uint8_t kinds[] = {0, 3, 255};
    for (size_t i = 0; i < sizeof(kinds); i++) {
        t.b[6] = kinds[i];
        reseal(t.b, t.n);
        FY_CHECK_EQ(try_decode(&t), BAD);
    }
    t.b[6] = 1;
    t.b[7] = 0x02; /* an agent cannot be strided */
    reseal(t.b, t.n);
    FY_CHECK_EQ(try_decode(&t), BAD);
    t.b[7] = 0;
    st32(t.b + 8, (uint32_t)(t.n - 15)); /* body length disagrees */
    FY_CHECK_EQ(try_decode(&t), BAD);
    reseal(t.b, t.n);
    t.b[t.n++] = 0; /* trailing byte after the body */
    FY_CHECK_EQ(try_decode(&t), BAD);
    free(buf);
}

/* A blob of a later minor version: unknown sections before, between and
 * after the known ones, and an unknown flag bit, all to be ignored. */
static void t_newer_minor(void)
{
    tb body = {.n = 0}, p = {.n = 0}, blob;
    tb junk = {.n = 0};
    tb_raw(&junk, "\x01\x02\x03\xff\xff\xff", 6);
    tb_sec(&body, 0, &junk);
    tb_ident(&body, "node-b", 0x0102030405060708ull);
    tb_sec(&body, 9, &junk);
    tb_var(&p, 1); /* one backend */
    tb_str(&p, "UCX");
    tb_str(&p, "addr");
    tb_sec(&body, 2, &p);
    tb_sec(&body, 200, &(tb){.n = 0});
    p.n = 0;
    tb_var(&p, 1);                        /* one region */
    tb_u8(&p, 0x02 | 0x10 | 0x20 | 0x80); /* LEN, MASK, GAP, PUBS */
    tb_var(&p, 1);                        /* mask */
    tb_var(&p, 4096);                     /* len */
    tb_var(&p, 0x10000 << 1);             /* gap, zigzag */
    tb_str(&p, "key");
    tb_sec(&body, 4, &p);
    tb_sec(&body, 255, &junk);
    tb_blob(&blob, 1, 7, 1, 0x01 | 0x80, &body);
    fy_md out;
    FY_REQUIRE(fy_md_decode(blob.b, blob.n, &out) == FERRY_OK);
    FY_CHECK(bytes_eq(out.name, B("node-b")) && out.uid == 0x0102030405060708ull);
    FY_CHECK(out.has_conn && out.num_backends == 1 && bytes_eq(out.backends[0].conn, B("addr")));
    FY_CHECK_EQ(out.num_regions, 1);
    FY_CHECK(out.regions[0].addr == 0x10000 && out.regions[0].len == 4096);
    FY_CHECK(bytes_eq(out.pubs[0], B("key")));
    fy_md_free(&out);
}

/* Body of an agent blob with one identity and the given extra sections. */
static ferry_status agent_with(uint8_t flags, const tb *backends, const tb *regions)
{
    tb body = {.n = 0}, blob;
    tb_ident(&body, "x", 1);
    if (backends)
        tb_sec(&body, 2, backends);
    if (regions)
        tb_sec(&body, 4, regions);
    tb_blob(&blob, 1, 0, 1, flags, &body);
    return try_decode(&blob);
}

/* A regions payload: count, then raw record bytes. */
static ferry_status regions_case(uint64_t count, const char *rec, size_t rec_len, bool backend)
{
    tb be = {.n = 0}, p = {.n = 0};
    tb_var(&be, 1);
    tb_str(&be, "B");
    tb_var(&be, 0);
    tb_var(&p, count);
    tb_raw(&p, rec, rec_len);
    return agent_with(0, backend ? &be : NULL, &p);
}

static void t_hostile_counts(void)
{
    tb p = {.n = 0};
    tb_var(&p, 33);
    for (int i = 0; i < 33; i++) {
        tb_str(&p, "b");
        tb_var(&p, 0);
    }
    FY_CHECK_EQ(agent_with(0, &p, NULL), BAD); /* too many backends */
    p.n = 0;
    tb_var(&p, 0xFFFFFFFFFull); /* huge count, no data */
    FY_CHECK_EQ(agent_with(0, &p, NULL), BAD);
    /* Region counts: over the limit, and over what the bytes can back. */
    FY_CHECK_EQ(regions_case((1u << 24) + 1, "\x03\x00\x01", 3, false), BAD);
    FY_CHECK_EQ(regions_case(1u << 24, "\x03\xfe\xff\xff\x07\x01", 6, false), BAD);
    FY_CHECK_EQ(regions_case(UINT64_MAX, "\x03\x00\x01", 3, false), BAD);
    /* count 8000 in 6 payload bytes: 8000 * 3 <= 4096 * 6, accepted ... */
    FY_CHECK_EQ(regions_case(8000, "\x03\xbe\x3e\x01", 4, false), FERRY_OK);
    /* ... 9000 * 3 > 4096 * 6 refused before anything is allocated. */
    FY_CHECK_EQ(regions_case(9000, "\x03\xa6\x46\x01", 4, false), BAD);
    /* A run longer than the declared count, and one record short. */
    FY_CHECK_EQ(regions_case(2, "\x03\x01\x01", 3, false), BAD);
    FY_CHECK_EQ(regions_case(3, "\x03\x00\x01", 3, false), BAD);
    FY_CHECK_EQ(regions_case(1, "\x03\x00\x01", 3, false), BAD);
}

static void t_hostile_fields(void)
{
    /* Each record describes one region after a count of 1. */
    FY_CHECK_EQ(regions_case(1, "\x02\x01", 2, false), FERRY_OK);
    FY_CHECK_EQ(regions_case(1, "\x00", 1, false), BAD);             /* len 0 */
    FY_CHECK_EQ(regions_case(1, "\x0a\x05\x01", 3, false), BAD);     /* mem_type 5 */
    FY_CHECK_EQ(regions_case(1, "\x12\x01\x01", 3, false), BAD);     /* mask, no backends */
    FY_CHECK_EQ(regions_case(1, "\x12\x02\x01", 3, true), BAD);      /* mask bit 1 of 1 */
    FY_CHECK_EQ(regions_case(1, "\x12\x01\x01", 3, true), FERRY_OK); /* mask bit 0 of 1 */
    FY_CHECK_EQ(regions_case(1,
                             "\x92\x01\x01\x05"
                             "ab",
                             6, true),
                BAD);                                                /* pub past the end */
    FY_CHECK_EQ(regions_case(1, "\x42\x01\x01", 3, false), BAD);     /* meta past the end */
    FY_CHECK_EQ(regions_case(2, "\x43\x00\x01\x00", 4, false), BAD); /* run with meta */
    /* addr + len past 2^64: gap -2 (zigzag 3), len 4. */
    FY_CHECK_EQ(regions_case(1, "\x22\x04\x03", 3, false), BAD);
    /* Varints: overlong zero, 11 bytes, bits past 64 in the 10th byte. */
    FY_CHECK_EQ(regions_case(1, "\x02\x81\x00", 3, false), BAD);
    FY_CHECK_EQ(regions_case(1, "\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff\x80\x01", 12, false),
                BAD);
    FY_CHECK_EQ(regions_case(1, "\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 11, false), BAD);
    FY_CHECK_EQ(regions_case(1, "\x22\x01\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12, false),
                FERRY_OK); /* largest forward gap: addr 2^63 - 1 */
}

static ferry_status names_case(const char *name, size_t name_len)
{
    tb body = {.n = 0}, p = {.n = 0}, blob;
    tb_var(&p, name_len);
    tb_raw(&p, name, name_len);
    tb_raw(&p, "\0\0\0\0\0\0\0\0", 8);
    tb_sec(&body, 1, &p);
    tb_blob(&blob, 1, 0, 1, 0, &body);
    return try_decode(&blob);
}

static void t_hostile_structure(void)
{
    char name[300];
    memset(name, 'n', sizeof(name));
    FY_CHECK_EQ(names_case(name, 255), FERRY_OK);
    FY_CHECK_EQ(names_case(name, 256), BAD);
    FY_CHECK_EQ(names_case(name, 0), BAD);
    FY_CHECK_EQ(names_case("a\0b", 3), BAD);
    tb body = {.n = 0}, blob, p = {.n = 0};
    tb_blob(&blob, 1, 0, 1, 0, &body); /* agent without identity */
    FY_CHECK_EQ(try_decode(&blob), BAD);
    tb_ident(&body, "a", 1);
    tb_ident(&body, "a", 1); /* twice */
    tb_blob(&blob, 1, 0, 1, 0, &body);
    FY_CHECK_EQ(try_decode(&blob), BAD);
    tb_var(&p, 0);
    body.n = 0;
    tb_sec(&body, 2, &p); /* backends before identity */
    tb_ident(&body, "a", 1);
    tb_blob(&blob, 1, 0, 1, 0, &body);
    FY_CHECK_EQ(try_decode(&blob), BAD);
    body.n = 0;
    tb_ident(&body, "a", 1);
    body.b[1]++; /* section claims one byte more than it holds */
    body.b[body.n++] = 0;
    tb_blob(&blob, 1, 0, 1, 0, &body);
    FY_CHECK_EQ(try_decode(&blob), BAD);
    body.n = 0;
    tb_ident(&body, "a", 1);
    tb_u8(&body, 7);
    tb_var(&body, 100); /* unknown section longer than the body */
    tb_blob(&blob, 1, 0, 1, 0, &body);
    FY_CHECK_EQ(try_decode(&blob), BAD);
    /* Connection bytes in a blob that says it has none. */
    p.n = 0;
    tb_var(&p, 1);
    tb_str(&p, "UCX");
    tb_str(&p, "conn");
    FY_CHECK_EQ(agent_with(0x01, &p, NULL), FERRY_OK);
    FY_CHECK_EQ(agent_with(0x00, &p, NULL), BAD);
}

static ferry_status list_case(uint8_t flags, const tb *list, const tb *regions)
{
    tb body = {.n = 0}, blob;
    if (list)
        tb_sec(&body, 3, list);
    if (regions)
        tb_sec(&body, 4, regions);
    tb_blob(&blob, 1, 0, 2, flags, &body);
    return try_decode(&blob);
}

static void t_hostile_dlist(void)
{
    tb l = {.n = 0}, r = {.n = 0};
    tb_var(&l, 2);
    tb_var(&r, 1);
    tb_raw(&r, "\x0a\x02\x01", 3); /* TYPE 2, LEN 1 */
    FY_CHECK_EQ(list_case(0, &l, &r), FERRY_OK);
    FY_CHECK_EQ(list_case(0, NULL, &r), BAD); /* no LIST section */
    FY_CHECK_EQ(list_case(1, &l, &r), BAD);   /* has_conn on a list */
    FY_CHECK_EQ(list_case(2, &l, &r), BAD);   /* strided without parameters */
    r.b[2] = 1;                               /* entry of another type */
    FY_CHECK_EQ(list_case(0, &l, &r), BAD);
    l.n = 0;
    tb_var(&l, 5); /* type out of range */
    FY_CHECK_EQ(list_case(0, &l, NULL), BAD);
    l.n = 0;
    tb_var(&l, 1);
    tb_var(&l, UINT64_MAX - 100); /* base */
    tb_var(&l, 10);               /* stride */
    tb_var(&l, 10);               /* len */
    tb_var(&l, 0);                /* dev */
    tb_var(&l, 9);                /* count: last entry ends at base + 90 */
    FY_CHECK_EQ(list_case(2, &l, NULL), FERRY_OK);
    l.b[l.n - 1] = 11; /* last entry wraps */
    FY_CHECK_EQ(list_case(2, &l, NULL), BAD);
    l.b[l.n - 1] = 9;
    FY_CHECK_EQ(list_case(2, &l, &r), BAD); /* strided list with entries */
}

/* ---- encode-side checks ------------------------------------------------- */

static ferry_status enc_status(const fy_md *md)
{
    void *buf = NULL;
    size_t len;
    ferry_status st = fy_md_encode(md, &buf, &len);
    free(buf);
    return st;
}

static void t_encode_limits(void)
{
    fy_md md;
    char name[256];
    memset(name, 'a', sizeof(name));
    make_agent(&md);
    FY_CHECK_EQ(enc_status(&md), FERRY_OK);
    md.name = (fy_bytes){(const uint8_t *)name, 256};
    FY_CHECK_EQ(enc_status(&md), INVALID);
    md.name = (fy_bytes){NULL, 0};
    FY_CHECK_EQ(enc_status(&md), INVALID);
    make_agent(&md);
    md.num_backends = 33;
    FY_CHECK_EQ(enc_status(&md), INVALID);
    make_agent(&md);
    md.backends[1].name = (fy_bytes){NULL, 0};
    FY_CHECK_EQ(enc_status(&md), INVALID);
    make_agent(&md);
    md.backends[0].conn = (fy_bytes){NULL, 5};
    FY_CHECK_EQ(enc_status(&md), INVALID);
    make_agent(&md);
    md.num_regions = (size_t)FY_MD_MAX_REGIONS + 1;
    FY_CHECK_EQ(enc_status(&md), INVALID);
    make_agent(&md);
    md.num_backends = 32; /* 1.9M regions * (3 + 32) is over the weight cap */
    md.num_regions = (size_t)1 << 21;
    FY_CHECK_EQ(enc_status(&md), INVALID);
    make_agent(&md);
    md.pubs = NULL;
    FY_CHECK_EQ(enc_status(&md), INVALID);
    make_agent(&md);
    md.strided = true;
    FY_CHECK_EQ(enc_status(&md), INVALID);
    md.strided = false;
    md.kind = (fy_md_kind)3;
    FY_CHECK_EQ(enc_status(&md), INVALID);
}

static void t_encode_region_limits(void)
{
    fy_md md;
    make_agent(&md);
    agent_regions[2].mem_type = 5;
    FY_CHECK_EQ(enc_status(&md), INVALID);
    make_agent(&md);
    agent_regions[2].backend_mask = 0x8; /* bit 3 with 3 backends */
    FY_CHECK_EQ(enc_status(&md), INVALID);
    make_agent(&md);
    agent_pubs[1 * 3 + 2] = B("x"); /* pub for a backend not in the mask */
    FY_CHECK_EQ(enc_status(&md), INVALID);
    make_agent(&md);
    agent_regions[1].len = 0;
    FY_CHECK_EQ(enc_status(&md), INVALID);
    make_agent(&md);
    agent_regions[5].len = 11; /* wraps past 2^64 */
    FY_CHECK_EQ(enc_status(&md), INVALID);
    make_agent(&md);
    agent_regions[3].meta = (fy_bytes){NULL, 3};
    FY_CHECK_EQ(enc_status(&md), INVALID);
}

static void t_encode_dlist_limits(void)
{
    fy_md_region r[1] = {{0, 10, 0, 1, 0, {NULL, 0}}};
    fy_md md = {.kind = FY_MD_KIND_DLIST, .stride_mem_type = 1, .num_regions = 1, .regions = r};
    FY_CHECK_EQ(enc_status(&md), FERRY_OK);
    md.stride_mem_type = 0; /* entry type differs from the list's */
    FY_CHECK_EQ(enc_status(&md), INVALID);
    md.stride_mem_type = 1;
    r[0].backend_mask = 1;
    FY_CHECK_EQ(enc_status(&md), INVALID);
    r[0].backend_mask = 0;
    md.num_backends = 1;
    FY_CHECK_EQ(enc_status(&md), INVALID);
    md.num_backends = 0;
    md.has_conn = true;
    FY_CHECK_EQ(enc_status(&md), INVALID);
    md.has_conn = false;
    md.strided = true; /* strided, but entries given */
    md.stride_len = 1;
    FY_CHECK_EQ(enc_status(&md), INVALID);
    md.num_regions = 0;
    FY_CHECK_EQ(enc_status(&md), FERRY_OK);
    md.stride_count = (uint64_t)FY_MD_MAX_REGIONS + 1;
    FY_CHECK_EQ(enc_status(&md), INVALID);
    md.stride_count = 2;
    md.stride_base = UINT64_MAX - 5;
    md.stride = 5; /* second entry would end past 2^64 */
    FY_CHECK_EQ(enc_status(&md), INVALID);
    md.stride_len = 0;
    md.stride_base = 0;
    FY_CHECK_EQ(enc_status(&md), INVALID);
}

static void t_api_args(void)
{
    fy_md md, sentinel;
    void *buf;
    size_t len;
    make_agent(&md);
    FY_CHECK_EQ(fy_md_encode(NULL, &buf, &len), INVALID);
    FY_CHECK_EQ(fy_md_encode(&md, NULL, &len), INVALID);
    FY_CHECK_EQ(fy_md_encode(&md, &buf, NULL), INVALID);
    FY_CHECK_EQ(fy_md_decode("x", 1, NULL), INVALID);
    FY_CHECK_EQ(fy_md_decode(NULL, 5, &md), INVALID);
    FY_CHECK_EQ(fy_md_decode(NULL, 0, &md), BAD);
    /* Outputs are written only on success. */
    memset(&sentinel, 0xA5, sizeof(sentinel));
    md = sentinel;
    FY_CHECK_EQ(fy_md_decode("FRMD", 4, &md), BAD);
    FY_CHECK(memcmp(&md, &sentinel, sizeof(md)) == 0);
    fy_md_free(NULL);
}

/* The codec's checksum against the bitwise one, over a hand-made blob
 * whose body is long enough for the 8-byte loop and its tail. */
static void t_crc(void)
{
    FY_CHECK_EQ(~ref_crc(0xffffffffu, (const uint8_t *)"123456789", 9), 0xE3069283u);
    tb body = {.n = 0}, blob;
    tb_ident(&body, "abcdefghijklmnopq", 3);
    tb_sec(&body, 77, &(tb){.n = 45});
    tb_blob(&blob, 1, 0, 1, 0, &body);
    FY_CHECK_EQ(try_decode(&blob), FERRY_OK);
}

int main(void)
{
    FY_RUN(t_crc);
    FY_RUN(t_agent_round_trip);
    FY_RUN(t_partial_without_conn);
    FY_RUN(t_dlist_plain);
    FY_RUN(t_dlist_strided);
    FY_RUN(t_empty);
    FY_RUN(t_regular_100k);
    FY_RUN(t_irregular_100k);
    FY_RUN(t_truncations);
    FY_RUN(t_corruption_detected);
    FY_RUN(t_corruption_resealed);
    FY_RUN(t_header_checks);
    FY_RUN(t_newer_minor);
    FY_RUN(t_hostile_counts);
    FY_RUN(t_hostile_fields);
    FY_RUN(t_hostile_structure);
    FY_RUN(t_hostile_dlist);
    FY_RUN(t_encode_limits);
    FY_RUN(t_encode_region_limits);
    FY_RUN(t_encode_dlist_limits);
    FY_RUN(t_api_args);
    return fy_test_done();
}
