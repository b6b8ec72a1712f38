/* SPDX-License-Identifier: Apache-2.0 */
/* The CUDA plugin's pure parts, on any host: wire bytes (connection info,
 * region keys with IPC handles, notification datagrams) round trip and
 * refuse every malformed input without reading out of bounds; /proc
 * parsers; and the planning of GPU work (merging, splitting into kernel
 * items, copy-engine partition, launch shapes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_meta.h"
#include "cuda_plan.h"
#include "fyp_chan.h"
#include "harness.h"
#include "testutil.h"

/* ---- connection info ---- */

static fyp_ident sample_conn(void)
{
    fyp_ident c = {.uid = 0x1122334455667788ull,
                   .pid = 4242,
                   .starttime = 987654321,
                   .netns = 4026531840ull,
                   .pidns = 4026531836ull};
    for (int i = 0; i < 16; i++)
        c.boot_id[i] = (uint8_t)(i * 17);
    snprintf(c.sock, sizeof(c.sock), "ferry-cuda/4242/1122334455667788/0");
    return c;
}

static void test_conn_roundtrip(void)
{
    fyp_ident c = sample_conn(), d;
    uint8_t buf[256];
    size_t n = fyp_ident_encode(FY_CU_CONN_MAGIC, &c, buf, sizeof(buf));
    FY_CHECK_EQ(n, FYP_IDENT_FIXED + strlen(c.sock));
    FY_CHECK_EQ(fyp_ident_decode(FY_CU_CONN_MAGIC, buf, n, &d), FERRY_OK);
    FY_CHECK(!memcmp(&c, &d, sizeof(c)));
    /* A newer minor version may append: ignored. */
    memset(buf + n, 0xee, 16);
    FY_CHECK_EQ(fyp_ident_decode(FY_CU_CONN_MAGIC, buf, n + 16, &d), FERRY_OK);
    FY_CHECK_EQ(fyp_ident_encode(FY_CU_CONN_MAGIC, &c, buf, n - 1), 0); /* too small a buffer */
}

static void test_conn_hostile(void)
{
    fyp_ident c = sample_conn(), d;
    uint8_t buf[256], bad[256];
    size_t n = fyp_ident_encode(FY_CU_CONN_MAGIC, &c, buf, sizeof(buf));
    for (size_t len = 0; len < n; len++) /* every truncation */
        FY_CHECK_EQ(fyp_ident_decode(FY_CU_CONN_MAGIC, buf, len, &d), FERRY_ERR_BAD_METADATA);
    FY_CHECK_EQ(fyp_ident_decode(FY_CU_CONN_MAGIC, NULL, n, &d), FERRY_ERR_BAD_METADATA);
    memcpy(bad, buf, n);
    bad[0] = 'X';
    FY_CHECK_EQ(fyp_ident_decode(FY_CU_CONN_MAGIC, bad, n, &d), FERRY_ERR_BAD_METADATA);
    memcpy(bad, buf, n);
    bad[4] = 2; /* another major version */
    FY_CHECK_EQ(fyp_ident_decode(FY_CU_CONN_MAGIC, bad, n, &d), FERRY_ERR_BAD_METADATA);
    memcpy(bad, buf, n);
    bad[6] = 0, bad[7] = 0; /* no socket name */
    FY_CHECK_EQ(fyp_ident_decode(FY_CU_CONN_MAGIC, bad, n, &d), FERRY_ERR_BAD_METADATA);
    memcpy(bad, buf, n);
    bad[6] = 200; /* longer than any name, and than the buffer */
    FY_CHECK_EQ(fyp_ident_decode(FY_CU_CONN_MAGIC, bad, n, &d), FERRY_ERR_BAD_METADATA);
    memcpy(bad, buf, n);
    bad[FYP_IDENT_FIXED + 3] = '\0'; /* a NUL inside the name */
    FY_CHECK_EQ(fyp_ident_decode(FY_CU_CONN_MAGIC, bad, n, &d), FERRY_ERR_BAD_METADATA);
    memcpy(bad, buf, n);
    memset(bad + 16, 0, 4); /* pid 0 */
    FY_CHECK_EQ(fyp_ident_decode(FY_CU_CONN_MAGIC, bad, n, &d), FERRY_ERR_BAD_METADATA);
}

/* ---- region keys ---- */

static fy_cu_pub sample_pub(void)
{
    fy_cu_pub p = {.type = FERRY_MEM_VRAM,
                   .ipc = true,
                   .addr = 0x7f0000201000ull,
                   .len = 1 << 20,
                   .alloc_base = 0x7f0000200000ull,
                   .alloc_size = 32 << 20};
    for (int i = 0; i < 16; i++)
        p.uuid[i] = (uint8_t)(0xa0 + i);
    for (int i = 0; i < FY_CU_IPC_HANDLE_SIZE; i++)
        p.handle.reserved[i] = (char)(i * 3);
    return p;
}

static void test_pub_roundtrip(void)
{
    fy_cu_pub p = sample_pub(), q;
    uint8_t buf[FY_CU_PUB_LEN + 8];
    ferry_desc d = {p.addr, p.len, 0};
    fy_cu_pub_encode(&p, buf);
    FY_CHECK_EQ(fy_cu_pub_decode(buf, FY_CU_PUB_LEN, FERRY_MEM_VRAM, &d, &q), FERRY_OK);
    FY_CHECK(q.type == p.type && q.ipc && q.addr == p.addr && q.len == p.len);
    FY_CHECK(q.alloc_base == p.alloc_base && q.alloc_size == p.alloc_size);
    FY_CHECK(!memcmp(q.uuid, p.uuid, 16) && !memcmp(&q.handle, &p.handle, sizeof(q.handle)));
    /* DRAM: no handle. */
    fy_cu_pub h = {.type = FERRY_MEM_DRAM, .addr = 0x1000, .len = 4096};
    ferry_desc hd = {0x1000, 4096, 0};
    fy_cu_pub_encode(&h, buf);
    FY_CHECK_EQ(fy_cu_pub_decode(buf, FY_CU_PUB_LEN + 8, FERRY_MEM_DRAM, &hd, &q), FERRY_OK);
    FY_CHECK(!q.ipc && q.type == FERRY_MEM_DRAM);
}

static ferry_status pub_decode_of(fy_cu_pub p, ferry_mem_type type, ferry_desc d)
{
    uint8_t buf[FY_CU_PUB_LEN];
    fy_cu_pub q;
    fy_cu_pub_encode(&p, buf);
    return fy_cu_pub_decode(buf, sizeof(buf), type, &d, &q);
}

static void test_pub_hostile(void)
{
    fy_cu_pub p = sample_pub(), q;
    ferry_desc d = {p.addr, p.len, 0};
    uint8_t buf[FY_CU_PUB_LEN];
    fy_cu_pub_encode(&p, buf);
    for (size_t len = 0; len < FY_CU_PUB_LEN; len++)
        FY_CHECK_EQ(fy_cu_pub_decode(buf, len, FERRY_MEM_VRAM, &d, &q), FERRY_ERR_BAD_METADATA);
    buf[4] = 9;
    FY_CHECK_EQ(fy_cu_pub_decode(buf, FY_CU_PUB_LEN, FERRY_MEM_VRAM, &d, &q),
                FERRY_ERR_BAD_METADATA);
    /* The key must describe the region the core says it is. */
    FY_CHECK_EQ(pub_decode_of(p, FERRY_MEM_DRAM, d), FERRY_ERR_BAD_METADATA);
    FY_CHECK_EQ(pub_decode_of(p, FERRY_MEM_VRAM, (ferry_desc){p.addr + 1, p.len, 0}),
                FERRY_ERR_BAD_METADATA);
    FY_CHECK_EQ(pub_decode_of(p, FERRY_MEM_VRAM, (ferry_desc){p.addr, p.len - 1, 0}),
                FERRY_ERR_BAD_METADATA);
    /* The allocation must hold the region. */
    fy_cu_pub x = p;
    x.alloc_base = p.addr + 1;
    FY_CHECK_EQ(pub_decode_of(x, FERRY_MEM_VRAM, d), FERRY_ERR_BAD_METADATA);
    x = p;
    x.alloc_size = p.len;
    FY_CHECK_EQ(pub_decode_of(x, FERRY_MEM_VRAM, d), FERRY_ERR_BAD_METADATA);
    x = p;
    x.alloc_size = UINT64_MAX; /* wraps */
    FY_CHECK_EQ(pub_decode_of(x, FERRY_MEM_VRAM, d), FERRY_ERR_BAD_METADATA);
    x = p;
    x.alloc_size = 0;
    FY_CHECK_EQ(pub_decode_of(x, FERRY_MEM_VRAM, d), FERRY_ERR_BAD_METADATA);
    x = p; /* a handle on DRAM */
    x.type = FERRY_MEM_DRAM;
    FY_CHECK_EQ(pub_decode_of(x, FERRY_MEM_DRAM, d), FERRY_ERR_BAD_METADATA);
    x = p; /* no handle: the allocation fields do not matter */
    x.ipc = false;
    x.alloc_size = 0;
    FY_CHECK_EQ(pub_decode_of(x, FERRY_MEM_VRAM, d), FERRY_OK);
    FY_CHECK_EQ(fy_cu_pub_decode(NULL, 0, FERRY_MEM_VRAM, &d, &q), FERRY_ERR_BAD_METADATA);
}

/* Random bytes: never accepted unless they happen to be a valid key. */
static void test_pub_random(void)
{
    tu_rng r = tu_rng_seed(tu_seed());
    uint8_t buf[FY_CU_PUB_LEN];
    fy_cu_pub q;
    ferry_desc d = {0x1000, 4096, 0};
    size_t accepted = 0;
    for (int i = 0; i < 20000; i++) {
        tu_fill(buf, sizeof(buf), tu_rand(&r));
        if (i % 2)
            memcpy(buf, "FYCR\x01\x01", 6); /* past the magic, into the fields */
        accepted += fy_cu_pub_decode(buf, sizeof(buf), FERRY_MEM_VRAM, &d, &q) == FERRY_OK;
    }
    FY_CHECK_EQ(accepted, 0);
}

/* ---- notification datagrams ---- */

static void test_dgram(void)
{
    uint8_t buf[FYP_DGRAM_MAX];
    char from[FYP_NAME_MAX + 1];
    uint64_t uid;
    const void *msg;
    size_t len;
    size_t n = fyp_dgram_encode(buf, sizeof(buf), "prefill-0", 77, "done:42", 7);
    FY_REQUIRE(n == FYP_DGRAM_FIXED + 9 + 7);
    FY_CHECK_EQ(fyp_dgram_decode(buf, n, from, &uid, &msg, &len), FERRY_OK);
    FY_CHECK(!strcmp(from, "prefill-0") && uid == 77 && len == 7 && !memcmp(msg, "done:42", 7));
    /* An empty message is a message. */
    n = fyp_dgram_encode(buf, sizeof(buf), "a", 1, NULL, 0);
    FY_CHECK_EQ(fyp_dgram_decode(buf, n, from, &uid, &msg, &len), FERRY_OK);
    FY_CHECK_EQ(len, 0);
    /* The largest message and name fit. */
    char name[FYP_NAME_MAX + 2];
    memset(name, 'n', sizeof(name));
    name[FYP_NAME_MAX] = '\0';
    uint8_t *big = calloc(1, FYP_NOTIF_MAX + 1);
    n = fyp_dgram_encode(buf, sizeof(buf), name, 1, big, FYP_NOTIF_MAX);
    FY_CHECK_EQ(n, FYP_DGRAM_MAX);
    FY_CHECK_EQ(fyp_dgram_decode(buf, n, from, &uid, &msg, &len), FERRY_OK);
    FY_CHECK_EQ(fyp_dgram_encode(buf, sizeof(buf), name, 1, big, FYP_NOTIF_MAX + 1), 0);
    name[FYP_NAME_MAX] = 'n';
    name[FYP_NAME_MAX + 1] = '\0';
    FY_CHECK_EQ(fyp_dgram_encode(buf, sizeof(buf), name, 1, "x", 1), 0);
    FY_CHECK_EQ(fyp_dgram_encode(buf, sizeof(buf), "", 1, "x", 1), 0);
    free(big);
}

static void test_dgram_hostile(void)
{
    uint8_t buf[64], bad[64];
    char from[FYP_NAME_MAX + 1];
    uint64_t uid;
    const void *msg;
    size_t len;
    size_t n = fyp_dgram_encode(buf, sizeof(buf), "agent", 5, "m", 1);
    for (size_t l = 0; l < FYP_DGRAM_FIXED + 5; l++)
        FY_CHECK_EQ(fyp_dgram_decode(buf, l, from, &uid, &msg, &len), FERRY_ERR_BAD_METADATA);
    memcpy(bad, buf, n);
    bad[6] = 0; /* no name */
    FY_CHECK_EQ(fyp_dgram_decode(bad, n, from, &uid, &msg, &len), FERRY_ERR_BAD_METADATA);
    memcpy(bad, buf, n);
    bad[6] = 0xff, bad[7] = 0x00; /* 255 > what is there */
    FY_CHECK_EQ(fyp_dgram_decode(bad, n, from, &uid, &msg, &len), FERRY_ERR_BAD_METADATA);
    memcpy(bad, buf, n);
    bad[FYP_DGRAM_FIXED + 2] = '\0';
    FY_CHECK_EQ(fyp_dgram_decode(bad, n, from, &uid, &msg, &len), FERRY_ERR_BAD_METADATA);
    memcpy(bad, buf, n);
    bad[4] = 2;
    FY_CHECK_EQ(fyp_dgram_decode(bad, n, from, &uid, &msg, &len), FERRY_ERR_BAD_METADATA);
}

/* ---- /proc ---- */

static void test_proc_parsers(void)
{
    uint64_t st;
    char state;
    const char *line = "4242 (python3) S 1 4242 4242 0 -1 4194560 100 0 0 0 10 5 0 0 20 0 "
                       "12 0 98765 1234567 100 18446744073709551615\n";
    FY_CHECK(fyp_stat_parse(line, strlen(line), &state, &st));
    FY_CHECK_EQ(st, 98765);
    FY_CHECK_EQ(state, 'S');
    const char *odd = "7 (a) b) (c d) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 9";
    FY_CHECK(fyp_stat_parse(odd, strlen(odd), &state, &st));
    FY_CHECK_EQ(st, 424242);
    FY_CHECK_EQ(state, 'Z');
    const char *shortl = "7 (x) S 1 2 3";
    FY_CHECK(!fyp_stat_parse(shortl, strlen(shortl), &state, &st));
    FY_CHECK(!fyp_stat_parse("no paren", 8, &state, &st));
    FY_CHECK(!fyp_stat_parse("1 (x)", 5, &state, &st));

    uint8_t id[16];
    FY_CHECK(fyp_parse_boot_id("0b8a2c4e-91d3-4f5a-8c6b-1d2e3f405162\n", id));
    FY_CHECK(id[0] == 0x0b && id[1] == 0x8a && id[15] == 0x62);
    FY_CHECK(!fyp_parse_boot_id("0b8a2c4e-91d3", id));
    FY_CHECK(!fyp_parse_boot_id("zz8a2c4e-91d3-4f5a-8c6b-1d2e3f405162", id));
}

/* ---- planning ---- */

static void test_merge(void)
{
    fy_cu_item v[] = {
        {0x1000, 0x9000, 0x100}, {0x1100, 0x9100, 0x100}, /* contiguous on both: merge */
        {0x1200, 0x9300, 0x100},                          /* gap on dst: no */
        {0x1300, 0x9400, 0x100}, {0x5000, 0x9500, 0x10},  /* gap on src: no */
    };
    size_t n = fy_cu_merge(v, 5);
    FY_CHECK_EQ(n, 3);
    FY_CHECK(v[0].src == 0x1000 && v[0].len == 0x200);
    FY_CHECK(v[1].src == 0x1200 && v[1].len == 0x200 && v[1].dst == 0x9300);
    FY_CHECK(v[2].src == 0x5000 && v[2].len == 0x10);
    FY_CHECK_EQ(fy_cu_merge(v, 0), 0);
}

static void test_split(void)
{
    tu_rng r = tu_rng_seed(7);
    fy_cu_item v[50];
    uint64_t total = 0;
    for (int i = 0; i < 50; i++) {
        v[i] = (fy_cu_item){tu_rand(&r) & 0xffffffff0ull, tu_rand(&r) & 0xffffffff7ull,
                            tu_rand_range(&r, 1, 300000)};
        total += v[i].len;
    }
    uint64_t chunk = 65536;
    size_t k = fy_cu_split(v, 50, chunk, NULL);
    fy_cu_item *out = malloc(k * sizeof(*out));
    FY_CHECK_EQ(fy_cu_split(v, 50, chunk, out), k);
    uint64_t sum = 0;
    size_t j = 0;
    bool ok = true;
    for (int i = 0; i < 50; i++) { /* pieces cover each copy in order, each <= chunk */
        uint64_t off = 0;
        while (off < v[i].len) {
            ok &= out[j].src == v[i].src + off && out[j].dst == v[i].dst + off;
            ok &= out[j].len <= chunk && out[j].len > 0;
            ok &= (out[j].src & 15) == (v[i].src & 15); /* alignment kept */
            off += out[j].len;
            sum += out[j++].len;
        }
    }
    FY_CHECK(ok);
    FY_CHECK_EQ(j, k);
    FY_CHECK_EQ(sum, total);
    free(out);
}

static void test_chunk_and_partition(void)
{
    FY_CHECK_EQ(fy_cu_auto_chunk(4096, 132), FY_CU_CHUNK_MIN);
    FY_CHECK_EQ(fy_cu_auto_chunk(1ull << 40, 132), FY_CU_CHUNK_MAX);
    FY_CHECK_EQ(fy_cu_auto_chunk(128u << 20, 132), 16384); /* 31775 -> a power of two */
    FY_CHECK_EQ(fy_cu_auto_chunk(64u << 20, 132), 8192);
    FY_CHECK_EQ(fy_cu_auto_chunk(1 << 20, 0), 32768); /* no SM count: one */
    for (uint64_t t = 1; t < (1ull << 36); t = t * 3 + 7) {
        uint64_t c = fy_cu_auto_chunk(t, 132);
        FY_CHECK(!(c & (c - 1)) && c >= FY_CU_CHUNK_MIN && c <= FY_CU_CHUNK_MAX);
    }

    fy_cu_item v[] = {{0, 0, 10}, {0, 0, 100}, {0, 0, 5}, {0, 0, 1000}};
    fy_cu_item s[4], b[4];
    size_t ns, nb;
    fy_cu_partition(v, 4, 100, s, &ns, b, &nb);
    FY_CHECK(ns == 2 && nb == 2 && s[0].len == 10 && s[1].len == 5);
    FY_CHECK(b[0].len == 100 && b[1].len == 1000);
    fy_cu_partition(v, 4, 0, s, &ns, b, &nb);
    FY_CHECK(ns == 4 && nb == 0);
}

static void test_grid(void)
{
    fy_cu_grid g = fy_cu_grid_for(1, 132);
    FY_CHECK(g.group == 256 && g.blocks == 1);
    g = fy_cu_grid_for(16, 132);
    FY_CHECK(g.group == 256 && g.blocks == 16);
    g = fy_cu_grid_for(4096, 132);
    FY_CHECK(g.group == 32 && g.blocks == 512);
    g = fy_cu_grid_for(1000000, 132);
    FY_CHECK(g.group == 32 && g.blocks == 132 * 8);
    bool ok = true;
    for (size_t n = 1; n < 100000; n = n * 3 + 1)
        for (int sms = 1; sms < 200; sms += 37) {
            g = fy_cu_grid_for(n, sms);
            ok &= g.blocks >= 1 && g.group >= 32 && g.group <= FY_CU_BLOCK;
            ok &= FY_CU_BLOCK % g.group == 0 && !(g.group & (g.group - 1));
            ok &= g.blocks <= (unsigned)sms * 8;
        }
    FY_CHECK(ok);
    FY_CHECK(sizeof(fy_cu_inline_args) <= 4096); /* the classic kernel parameter limit */
}

int main(void)
{
    FY_RUN(test_conn_roundtrip);
    FY_RUN(test_conn_hostile);
    FY_RUN(test_pub_roundtrip);
    FY_RUN(test_pub_hostile);
    FY_RUN(test_pub_random);
    FY_RUN(test_dgram);
    FY_RUN(test_dgram_hostile);
    FY_RUN(test_proc_parsers);
    FY_RUN(test_merge);
    FY_RUN(test_split);
    FY_RUN(test_chunk_and_partition);
    FY_RUN(test_grid);
    return fy_test_done();
}
