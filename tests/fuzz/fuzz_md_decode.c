/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the metadata wire codec (src/metadata/wire.c).
 *
 * Each input is used three ways:
 *  1. decoded as it is;
 *  2. decoded after its body length and checksum are made right, because
 *     random mutations almost never keep a CRC32C valid and the structural
 *     checks behind it are what needs fuzzing;
 *  3. read as a recipe for an fy_md (agent or descriptor list, plain or
 *     strided), which is encoded; this drives the encoder, including its
 *     limit checks and run splitting, with inputs no blob could describe.
 * Whatever decodes must re-encode and decode to an equal fy_md; anything
 * else aborts so that the fuzzer reports it. A blob's AUTH section is
 * checked against a fixed key (a mutated MAC must never pass), and every
 * agent blob that decodes is signed again: its MAC must then check out,
 * and fail once any byte the MAC covers is flipped. The same file is built without
 * libFuzzer by tests/fuzz/replay_main.c to replay the corpus. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metadata/auth.h"
#include "metadata/wire.h"
#include "../blob_seal.h"

#define FUZZ_AUTH_KEY "fuzz-auth-key-0123456789"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(bool cond)
{
    if (!cond)
        abort();
}

/* ---- equality of what the wire carries ---------------------------------- */

static bool bytes_eq(fy_bytes a, fy_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static bool region_eq(const fy_md_region *x, const fy_md_region *y)
{
    return x->addr == y->addr && x->len == y->len && x->dev_id == y->dev_id &&
           x->mem_type == y->mem_type && x->backend_mask == y->backend_mask &&
           bytes_eq(x->meta, y->meta);
}

static bool regions_eq(const fy_md *a, const fy_md *b)
{
    size_t nb = a->num_backends;
    if (a->num_regions != b->num_regions)
        return false;
    for (size_t i = 0; i < a->num_regions; i++) {
        if (!region_eq(&a->regions[i], &b->regions[i]))
            return false;
        for (size_t k = 0; k < nb; k++)
            if (!bytes_eq(a->pubs[i * nb + k], b->pubs[i * nb + k]))
                return false;
    }
    return true;
}

static bool stride_eq(const fy_md *a, const fy_md *b)
{
    return a->stride_base == b->stride_base && a->stride == b->stride &&
           a->stride_len == b->stride_len && a->stride_dev == b->stride_dev &&
           a->stride_count == b->stride_count;
}

/* Fields the encoder ignores (conn without has_conn, uid of a list, stride
 * parameters of an unstrided list) are left out. */
static bool md_eq(const fy_md *a, const fy_md *b)
{
    if (a->kind != b->kind || a->has_conn != b->has_conn || a->strided != b->strided ||
        !bytes_eq(a->name, b->name) || a->num_backends != b->num_backends)
        return false;
    if (a->kind == FY_MD_KIND_AGENT ? a->uid != b->uid : a->stride_mem_type != b->stride_mem_type)
        return false;
    if (a->strided && !stride_eq(a, b))
        return false;
    if (a->kind == FY_MD_KIND_AGENT &&
        (a->auth != b->auth || (a->auth && a->auth_ts_us != b->auth_ts_us)))
        return false;
    for (uint32_t k = 0; k < a->num_backends; k++)
        if (!bytes_eq(a->backends[k].name, b->backends[k].name) ||
            (a->has_conn && !bytes_eq(a->backends[k].conn, b->backends[k].conn)))
            return false;
    return regions_eq(a, b);
}

/* buf, the encoding of md, must decode to an equal fy_md. */
static void check_blob(const fy_md *md, void *buf, size_t len)
{
    fy_md again;
    must(fy_md_decode(buf, len, &again) == FERRY_OK);
    must(md_eq(md, &again));
    fy_md_free(&again);
    free(buf);
}

/* A valid fy_md must encode, and its blob must decode to an equal one. */
static void check_round_trip(const fy_md *md)
{
    void *buf;
    size_t len;
    must(fy_md_encode(md, &buf, &len) == FERRY_OK);
    check_blob(md, buf, len);
}

/* ---- blob MACs ---------------------------------------------------------- */

static const fy_auth *fuzz_key(void)
{
    static fy_auth key;
    if (!key.key_len)
        must(fy_auth_init(&key, FUZZ_AUTH_KEY) == FERRY_OK);
    return &key;
}

/* md (decoded) signed again: the MAC holds, and breaks with any flip. */
static void check_signing(const fy_md *md, uint8_t flip_at)
{
    fy_md copy = *md, again;
    void *buf;
    size_t len;
    copy.auth = true;
    must(fy_md_encode(&copy, &buf, &len) == FERRY_OK);
    must(fy_auth_blob_sign(fuzz_key(), buf, len) == FERRY_OK);
    must(fy_md_decode(buf, len, &again) == FERRY_OK && again.auth);
    must(fy_auth_blob_ok(fuzz_key(), buf, len, &again));
    fy_md_free(&again);
    size_t at = flip_at % len;
    if (at >= 8 && at < 16)
        at = len - 1; /* length and checksum: not covered by the MAC */
    ((uint8_t *)buf)[at] ^= 1;
    fy_md_reseal(buf, len);
    if (fy_md_decode(buf, len, &again) == FERRY_OK) {
        must(!fy_auth_blob_ok(fuzz_key(), buf, len, &again));
        fy_md_free(&again);
    }
    free(buf);
}

static void check_auth(const uint8_t *data, size_t size, const fy_md *md)
{
    if (md->auth)
        (void)fy_auth_blob_ok(fuzz_key(), data, size, md); /* any answer, no fault */
    if (md->kind == FY_MD_KIND_AGENT)
        check_signing(md, size ? data[size - 1] : 0);
}

/* ---- 1 and 2: decoding -------------------------------------------------- */

static void decode_one(const uint8_t *data, size_t size)
{
    fy_md md;
    ferry_status st = fy_md_decode(data, size, &md);
    if (st != FERRY_OK) {
        must(st == FERRY_ERR_BAD_METADATA || st == FERRY_ERR_NO_MEMORY);
        return;
    }
    check_round_trip(&md);
    check_auth(data, size, &md);
    fy_md_free(&md);
}

/* Decodes a copy with header bytes 8..15 (body length, checksum) fixed. */
static void decode_resealed(const uint8_t *data, size_t size)
{
    if (size < 16)
        return;
    uint8_t *copy = malloc(size);
    must(copy != NULL);
    memcpy(copy, data, size);
    fy_t_blob_reseal(copy, size);
    decode_one(copy, size);
    free(copy);
}

/* ---- 3: recipes --------------------------------------------------------- */

/* Input bytes consumed front to back; zeros once they run out. */
typedef struct src {
    const uint8_t *p;
    size_t n;
} src;

static uint8_t take8(src *s)
{
    if (!s->n)
        return 0;
    s->n--;
    return *s->p++;
}

/* A value of 0..8 little-endian bytes, the width chosen by the input. */
static uint64_t take64(src *s)
{
    unsigned width = take8(s) % 9;
    uint64_t v = 0;
    for (unsigned i = 0; i < width; i++)
        v |= (uint64_t)take8(s) << (8 * i);
    return v;
}

/* A view of up to max input bytes (pointing into the input: zero copy). */
static fy_bytes take_bytes(src *s, unsigned max)
{
    size_t n = take8(s) % (max + 1);
    n = n < s->n ? n : s->n;
    fy_bytes b = {n ? s->p : NULL, (uint32_t)n};
    s->p += n;
    s->n -= n;
    return b;
}

enum { MAX_R = 4096, MAX_B = FY_MD_MAX_BACKENDS + 1 };

static fy_md_region rec_regions[MAX_R];
static fy_bytes rec_pubs[MAX_R * MAX_B];

/* Same shape as the region before, a small gap after it: this is what
 * runs are made of, and what exhausted input produces. */
static void follow(fy_md_region *g, unsigned how)
{
    const fy_md_region *prev = g - 1;
    *g = *prev;
    g->meta = (fy_bytes){NULL, 0};
    g->addr = prev->addr + prev->len + (how >> 4) * 64u;
}

static void fresh(src *s, fy_md_region *g, const fy_md *md, unsigned how)
{
    uint32_t valid = md->num_backends >= 32 ? UINT32_MAX : (1u << md->num_backends) - 1;
    g->addr = take64(s);
    g->len = take64(s);
    g->dev_id = take64(s);
    g->mem_type = take8(s) % 6; /* 5 is out of range on purpose */
    g->backend_mask = (uint32_t)take64(s);
    if (!(how & 0x80))
        g->backend_mask &= valid;
    if (md->kind == FY_MD_KIND_DLIST && !(how & 0x40))
        g->mem_type = md->stride_mem_type;
    g->meta = take_bytes(s, 16);
}

static void take_region(src *s, fy_md *md, size_t i)
{
    /* Bit 0 inverted so that exhausted input (zeros) means "follow"; the
     * first region has nothing to follow. */
    unsigned how = i ? take8(s) ^ 1u : take8(s) & ~1u;
    fy_md_region *g = &rec_regions[i];
    fy_bytes *pubs = rec_pubs + i * md->num_backends;
    if (how & 1)
        follow(g, how);
    else
        fresh(s, g, md, how);
    for (uint32_t b = 0; b < md->num_backends; b++) {
        bool set = g->backend_mask >> b & 1u;
        pubs[b] = set && (how & 2) ? take_bytes(s, 24) : (fy_bytes){NULL, 0};
    }
}

static void take_regions(src *s, fy_md *md)
{
    md->num_regions = (take8(s) | (size_t)take8(s) << 8) % MAX_R;
    md->regions = rec_regions;
    md->pubs = md->num_backends ? rec_pubs : NULL;
    for (size_t i = 0; i < md->num_regions; i++)
        take_region(s, md, i);
}

static void take_agent(src *s, fy_md *md, uint8_t kind)
{
    md->name = take_bytes(s, 12);
    md->uid = take64(s);
    md->has_conn = kind & 2;
    md->strided = (kind & 0x0c) == 0x0c; /* rarely: an invalid strided agent */
    md->num_backends = take8(s) % (MAX_B + 1);
    for (uint32_t b = 0; b < md->num_backends && b < FY_MD_MAX_BACKENDS; b++) {
        md->backends[b].name = take_bytes(s, 8);
        md->backends[b].conn = take_bytes(s, 32);
    }
    if (md->num_backends <= FY_MD_MAX_BACKENDS)
        take_regions(s, md);
}

static void take_dlist(src *s, fy_md *md, uint8_t kind)
{
    md->stride_mem_type = take8(s) % 6;
    md->strided = kind & 2;
    if (!md->strided) {
        take_regions(s, md);
        return;
    }
    md->stride_base = take64(s);
    md->stride = take64(s);
    md->stride_len = take64(s);
    md->stride_dev = take64(s);
    md->stride_count = take64(s);
}

static void fuzz_recipe(const uint8_t *data, size_t size)
{
    src s = {data, size};
    fy_md md;
    void *buf;
    size_t len;
    memset(&md, 0, sizeof(md));
    uint8_t kind = take8(&s);
    md.kind = kind & 1 ? FY_MD_KIND_DLIST : FY_MD_KIND_AGENT;
    if (md.kind == FY_MD_KIND_AGENT)
        take_agent(&s, &md, kind);
    else
        take_dlist(&s, &md, kind);
    ferry_status st = fy_md_encode(&md, &buf, &len);
    if (st != FERRY_OK) {
        must(st == FERRY_ERR_INVALID_PARAM || st == FERRY_ERR_NO_MEMORY);
        return;
    }
    check_blob(&md, buf, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decode_one(data, size);
    decode_resealed(data, size);
    fuzz_recipe(data, size);
    return 0;
}
