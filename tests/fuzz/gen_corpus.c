/* SPDX-License-Identifier: Apache-2.0 */
/* Writes the seed corpus of fuzz_md_decode into the directory given as the
 * only argument: valid blobs of every kind the codec makes, a blob of a
 * newer minor version, and a few malformed ones (each breaking one rule).
 * The output is committed under tests/fuzz/corpus; rerun this after a
 * format change:  ninja -C build tests/fuzz/gen_corpus &&
 *                 build/tests/fuzz/gen_corpus tests/fuzz/corpus */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metadata/auth.h"
#include "metadata/wire.h"
#include "../blob_seal.h"

static const char *out_dir;
static int failures;

static void put(const char *name, const void *buf, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len) {
        perror(path);
        failures++;
    }
    if (f && fclose(f) != 0)
        failures++;
}

/* Encodes md; the caller frees *buf. */
static size_t enc(const fy_md *md, uint8_t **buf)
{
    void *b = NULL;
    size_t len = 0;
    if (fy_md_encode(md, &b, &len) != FERRY_OK) {
        fprintf(stderr, "encode failed\n");
        failures++;
    }
    *buf = b;
    return len;
}

static void put_md(const char *name, const fy_md *md)
{
    uint8_t *buf;
    size_t len = enc(md, &buf);
    if (buf)
        put(name, buf, len);
    free(buf);
}

static fy_bytes B(const char *s)
{
    return (fy_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

/* ---- valid blobs -------------------------------------------------------- */

static fy_md_region full_regions[5] = {
    {0x7f0000001000, 1 << 20, 0, 0, 0x1, {NULL, 0}},
    {0x7f0000101000, 1 << 20, 0, 0, 0x1, {NULL, 0}},
    {0x7e0000000000, 4096, 3, 1, 0x1, {NULL, 0}},
    {0, 1ull << 30, 7, 2, 0x2, {(const uint8_t *)"/data/kv/0.bin", 14}},
    {4096, 8192, 1, 4, 0x4, {(const uint8_t *)"bucket/key", 10}},
};
static fy_bytes full_pubs[5 * 3];

static void make_full(fy_md *md)
{
    memset(md, 0, sizeof(*md));
    md->kind = FY_MD_KIND_AGENT;
    md->name = B("prefill-0");
    md->uid = 0x1122334455667788ull;
    md->has_conn = true;
    md->num_backends = 3;
    md->backends[0] = (fy_md_backend){B("UCX"), B("ucx-worker-address")};
    md->backends[1] = (fy_md_backend){B("POSIX"), {NULL, 0}};
    md->backends[2] = (fy_md_backend){B("OBJ"), B("endpoint=127.0.0.1:9000")};
    full_pubs[0] = B("rkey-0");
    full_pubs[2 * 3] = B("rkey-vram");
    full_pubs[4 * 3 + 2] = B("etag");
    md->num_regions = 5;
    md->regions = full_regions;
    md->pubs = full_pubs;
}

/* Signed with the key the fuzz targets use (FUZZ_AUTH_KEY). */
static void put_signed(const char *name, fy_md *md)
{
    fy_auth key;
    uint8_t *buf;
    md->auth = true;
    md->auth_ts_us = 1700000000000000ull;
    size_t len = enc(md, &buf);
    if (fy_auth_init(&key, "fuzz-auth-key-0123456789") != FERRY_OK || !buf ||
        fy_auth_blob_sign(&key, buf, len) != FERRY_OK)
        failures++;
    else
        put(name, buf, len);
    free(buf);
    md->auth = false;
}

static void agents(void)
{
    fy_md md;
    make_full(&md);
    put_md("agent_full.bin", &md);
    put_signed("agent_full_signed.bin", &md);
    md.has_conn = false;
    md.num_regions = 2;
    md.regions = full_regions + 3;
    md.pubs = full_pubs + 3 * 3;
    put_md("agent_partial_noconn.bin", &md);
    make_full(&md);
    md.num_regions = 0;
    put_md("agent_conn_only.bin", &md);
    fy_md empty = {.kind = FY_MD_KIND_AGENT, .name = B("a"), .uid = 1};
    put_md("agent_empty.bin", &empty);
}

/* 5000 regular regions: one run split by the run cap into three records. */
static void agent_regular(void)
{
    static fy_md_region r[5000];
    static fy_bytes pubs[5000];
    for (size_t i = 0; i < 5000; i++)
        r[i] = (fy_md_region){0x7f1234560000 + i * 4096, 4096, 0, 0, 1, {NULL, 0}};
    fy_md md = {.kind = FY_MD_KIND_AGENT, .name = B("decode-7"), .uid = 7, .num_backends = 1};
    md.backends[0].name = B("POSIX");
    md.num_regions = 5000;
    md.regions = r;
    md.pubs = pubs;
    put_md("agent_regular_5k.bin", &md);
}

static void agent_irregular(void)
{
    static fy_md_region r[64];
    static fy_bytes pubs[64 * 2];
    static uint8_t keys[64 * 20];
    uint64_t x = 12345, addr = 0x7f0000000000;
    for (size_t i = 0; i < 64; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t len = 1 + (x >> 40) % 100000;
        r[i] = (fy_md_region){addr, len, (x >> 20) % 4, (uint32_t)(x >> 33) % 2, 1, {NULL, 0}};
        for (int k = 0; k < 20; k++)
            keys[i * 20 + k] = (uint8_t)(x >> (k % 8 * 8));
        pubs[i * 2] = (fy_bytes){keys + i * 20, 20};
        addr += len + (x % 3 ? (x >> 50) : 0);
    }
    fy_md md = {.kind = FY_MD_KIND_AGENT, .name = B("n1"), .uid = 9, .has_conn = true};
    md.num_backends = 2;
    md.backends[0] = (fy_md_backend){B("UCX"), B("conn")};
    md.backends[1] = (fy_md_backend){B("GDS"), {NULL, 0}};
    md.num_regions = 64;
    md.regions = r;
    md.pubs = pubs;
    put_md("agent_irregular_64.bin", &md);
}

static void agent_many_backends(void)
{
    static char names[32][12];
    static fy_md_region r[3];
    static fy_bytes pubs[3 * 32];
    fy_md md = {.kind = FY_MD_KIND_AGENT, .name = B("wide"), .uid = 3, .has_conn = true};
    md.num_backends = 32;
    for (unsigned b = 0; b < 32; b++) {
        snprintf(names[b], sizeof(names[b]), "b%u", b);
        md.backends[b] = (fy_md_backend){B(names[b]), B(names[b])};
    }
    for (int i = 0; i < 3; i++)
        r[i] = (fy_md_region){(uint64_t)i << 20, 1 << 20, 0, 0, 0xffffffffu, {NULL, 0}};
    pubs[31] = B("last");
    md.num_regions = 3;
    md.regions = r;
    md.pubs = pubs;
    put_md("agent_32_backends.bin", &md);
}

static void dlists(void)
{
    fy_md_region files[3] = {
        {0, 1 << 20, 5, 2, 0, B("/mnt/nvme/a")},
        {1 << 20, 1 << 20, 5, 2, 0, B("/mnt/nvme/a")},
        {0, 4096, 6, 2, 0, {NULL, 0}},
    };
    fy_md md = {.kind = FY_MD_KIND_DLIST, .stride_mem_type = 2, .num_regions = 3};
    md.regions = files;
    put_md("dlist_plain_file.bin", &md);
    fy_md empty = {.kind = FY_MD_KIND_DLIST, .stride_mem_type = 4};
    put_md("dlist_plain_empty.bin", &empty);
    fy_md strided = {.kind = FY_MD_KIND_DLIST,
                     .strided = true,
                     .stride_base = 0x7f0000000000,
                     .stride = 1 << 16,
                     .stride_len = 1 << 15,
                     .stride_dev = 2,
                     .stride_count = 100000,
                     .stride_mem_type = 1};
    put_md("dlist_strided.bin", &strided);
    static fy_md_region vram[3000];
    for (size_t i = 0; i < 3000; i++)
        vram[i] = (fy_md_region){0x7e0000000000 + i * 8192, 4096, 1, 1, 0, {NULL, 0}};
    fy_md runs = {.kind = FY_MD_KIND_DLIST, .stride_mem_type = 1, .num_regions = 3000};
    runs.regions = vram;
    put_md("dlist_regular_3k.bin", &runs);
}

/* The full agent as a newer minor would write it: an unknown section
 * after the identity and an unknown flag bit. */
static void newer_minor(void)
{
    fy_md md;
    uint8_t *buf, *out;
    make_full(&md);
    size_t len = enc(&md, &buf);
    if (!buf)
        return;
    size_t ident_end = 16 + 2 + buf[17]; /* type, one-byte length, payload */
    static const uint8_t extra[] = {0x30, 4, 'n', 'e', 'w', '!'};
    out = malloc(len + sizeof(extra));
    memcpy(out, buf, ident_end);
    memcpy(out + ident_end, extra, sizeof(extra));
    memcpy(out + ident_end + sizeof(extra), buf + ident_end, len - ident_end);
    out[5] = 3;
    out[7] |= 0x80;
    fy_t_blob_reseal(out, len + sizeof(extra));
    put("agent_newer_minor.bin", out, len + sizeof(extra));
    free(out);
    free(buf);
}

/* ---- malformed blobs ---------------------------------------------------- */

/* The full agent blob with byte `at` set to value and `cut` bytes dropped
 * from its end; its length and checksum fixed up when fix is set. */
static void put_edit(const char *name, size_t at, uint8_t value, size_t cut, int fix)
{
    fy_md md;
    uint8_t *buf;
    make_full(&md);
    size_t len = enc(&md, &buf);
    if (!buf)
        return;
    buf[at] = value;
    len -= cut;
    if (fix)
        fy_t_blob_reseal(buf, len);
    put(name, buf, len);
    free(buf);
}

/* A hand-made agent blob: identity "x" and the given extra section. */
static void put_crafted(const char *name, uint8_t type, const uint8_t *payload, size_t n)
{
    uint8_t b[256] = {'F', 'R', 'M', 'D', 1, 0, 1, 0};
    static const uint8_t ident[] = {1, 10, 1, 'x', 1, 0, 0, 0, 0, 0, 0, 0};
    size_t len = 16;
    memcpy(b + len, ident, sizeof(ident));
    len += sizeof(ident);
    b[len++] = type;
    b[len++] = (uint8_t)n;
    memcpy(b + len, payload, n);
    len += n;
    fy_t_blob_reseal(b, len);
    put(name, b, len);
}

static void malformed(void)
{
    put_edit("bad_magic.bin", 0, 'X', 0, 1);
    put_edit("bad_major.bin", 4, 2, 0, 1);
    put_edit("bad_crc.bin", 20, 0x55, 0, 0);
    put_edit("truncated.bin", 0, 'F', 7, 0);
    /* 2^24 regions (a run of all of them) in six bytes. */
    static const uint8_t count[] = {0x80, 0x80, 0x80, 0x08, 0x03, 0xfe, 0xff, 0xff, 0x07, 0x01};
    put_crafted("hostile_region_count.bin", 4, count, sizeof(count));
    static const uint8_t backends[] = {33, 1, 'b', 0};
    put_crafted("hostile_backends.bin", 2, backends, sizeof(backends));
    static const uint8_t overlong[] = {1, 0x02, 0x81, 0x00};
    put_crafted("hostile_overlong_varint.bin", 4, overlong, sizeof(overlong));
    static const uint8_t wrap[] = {1, 0x22, 0x04, 0x03};
    put_crafted("hostile_region_wraps.bin", 4, wrap, sizeof(wrap));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
        return 2;
    }
    out_dir = argv[1];
    agents();
    agent_regular();
    agent_irregular();
    agent_many_backends();
    dlists();
    newer_minor();
    malformed();
    return failures ? 1 : 0;
}
