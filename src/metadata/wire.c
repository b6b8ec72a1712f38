/* SPDX-License-Identifier: Apache-2.0 */
/* Metadata wire codec: the byte layout and every rule the decoder enforces
 * are described in docs/wire-format.md; this file follows that page.
 *
 * Decoding treats its input as hostile: every read goes through the small
 * reader below, which checks the remaining length first, and every count is
 * checked against a limit and against the bytes that could back it before
 * anything is allocated. Encoding runs the same emitters twice, first only
 * counting bytes, so the size limit is checked before the one allocation. */
#include "metadata/wire.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/mem.h"

#define BAD FERRY_ERR_BAD_METADATA

enum {
    WIRE_MAJOR = 1,
    WIRE_MINOR = 1,
    WIRE_HDR = 16,       /* fixed header size */
    WIRE_CRC_SPAN = 12,  /* header bytes covered by the checksum */
    WIRE_VARINT_MAX = 10 /* bytes of a 64-bit LEB128 value */
};

static const uint8_t wire_magic[4] = {'F', 'R', 'M', 'D'};

/* Header flags. Bits 2..7 are reserved: writers of this version set them to
 * zero and readers ignore them, so a newer minor may only give them meanings
 * an older reader can safely overlook. */
enum { FLAG_HAS_CONN = 0x01, FLAG_STRIDED = 0x02 };

/* Section types, in the order they must appear. Anything else is skipped.
 * AUTH (minor 1) is always the last section: readers of minor 0 skip it. */
enum { SEC_IDENT = 1, SEC_BACKENDS = 2, SEC_LIST = 3, SEC_REGIONS = 4, SEC_AUTH = 5 };
/* AUTH payload: creation time (u64 LE, microseconds), then the MAC. */
#define SEC_AUTH_LEN (8u + FY_MD_MAC_LEN)

/* Region record tag: RUN, or one bit per field that differs from the
 * previous record (absent fields repeat it). */
enum {
    REC_RUN = 0x01,
    REC_LEN = 0x02,
    REC_DEV = 0x04,
    REC_TYPE = 0x08,
    REC_MASK = 0x10,
    REC_GAP = 0x20,
    REC_META = 0x40,
    REC_PUBS = 0x80,
};

/* Memory bounds. A decoded region costs about (3 + backends) * 16 bytes
 * (the region plus one pub slot per backend), its "weight". A regions
 * section may declare at most WIRE_EXPAND weight units per byte it occupies,
 * so a small hostile blob cannot make the decoder allocate much more than
 * 64 KiB per input byte, and at most WIRE_MAX_WEIGHT in all, so the decoded
 * form stays within 1 GiB like the blob. Writers cap runs at WIRE_RUN_WEIGHT
 * units: a run record is at least two bytes, so their output always fits. */
#define WIRE_EXPAND     4096u
#define WIRE_RUN_WEIGHT 8192u
#define WIRE_MAX_WEIGHT (FY_MD_MAX_BLOB / 16)

static uint32_t region_weight(uint32_t num_backends)
{
    return 3u + num_backends;
}

/* ---- CRC32C (Castagnoli), reflected, slicing-by-8 ---------------------- */

static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        crc_tab[0][n] = c;
    }
    /* Table t advances a byte through t further zero bytes, which lets the
     * loop below fold eight input bytes with independent lookups. */
    for (int t = 1; t < 8; t++)
        for (uint32_t n = 0; n < 256; n++)
            crc_tab[t][n] = (crc_tab[t - 1][n] >> 8) ^ crc_tab[0][crc_tab[t - 1][n] & 0xffu];
}

static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t crc_fold8(uint32_t crc, const uint8_t *p)
{
    uint32_t lo = crc ^ ld32(p), hi = ld32(p + 4);
    return crc_tab[7][lo & 0xffu] ^ crc_tab[6][(lo >> 8) & 0xffu] ^ crc_tab[5][(lo >> 16) & 0xffu] ^
           crc_tab[4][lo >> 24] ^ crc_tab[3][hi & 0xffu] ^ crc_tab[2][(hi >> 8) & 0xffu] ^
           crc_tab[1][(hi >> 16) & 0xffu] ^ crc_tab[0][hi >> 24];
}

static uint32_t crc_update(uint32_t crc, const uint8_t *p, size_t n)
{
    for (; n >= 8; n -= 8, p += 8)
        crc = crc_fold8(crc, p);
    for (; n > 0; n--, p++)
        crc = (crc >> 8) ^ crc_tab[0][(crc ^ *p) & 0xffu];
    return crc;
}

/* Checksum of a blob: the header up to the checksum field, then the body.
 * Covering the header too means a flipped kind or flag bit is caught. */
static uint32_t wire_crc(const uint8_t *hdr, const uint8_t *body, size_t body_len)
{
    pthread_once(&crc_once, crc_init);
    uint32_t crc = crc_update(0xffffffffu, hdr, WIRE_CRC_SPAN);
    return ~crc_update(crc, body, body_len);
}

/* ---- shared checks ------------------------------------------------------ */

/* [addr, addr + len) must be non-empty and must not wrap. */
static bool span_ok(uint64_t addr, uint64_t len)
{
    return len > 0 && addr <= UINT64_MAX - len;
}

/* Every descriptor of a strided list must be a valid span. */
static bool strided_ok(uint64_t base, uint64_t stride, uint64_t len, uint64_t count)
{
    if (count > FY_MD_MAX_REGIONS || len == 0)
        return false;
    if (count == 0)
        return true;
    if (stride != 0 && count - 1 > UINT64_MAX / stride)
        return false;
    uint64_t off = (count - 1) * stride;
    return base <= UINT64_MAX - off && span_ok(base + off, len);
}

/* Names are 1..FY_MD_MAX_NAME bytes without NUL, so that a C string copy of
 * a name can never silently name someone else. */
static bool name_ok(fy_bytes b)
{
    return b.len >= 1 && b.len <= FY_MD_MAX_NAME && b.ptr && !memchr(b.ptr, 0, b.len);
}

static bool mask_ok(uint32_t mask, uint32_t num_backends)
{
    return num_backends >= 32 || (mask >> num_backends) == 0;
}

/* ---- decoding ----------------------------------------------------------- */

typedef struct rd {
    const uint8_t *p, *end;
} rd;

static size_t rd_left(const rd *r)
{
    return (size_t)(r->end - r->p);
}

static bool rd_u8(rd *r, uint8_t *v)
{
    if (r->p == r->end)
        return false;
    *v = *r->p++;
    return true;
}

/* LEB128, at most 10 bytes, no bits beyond 64 and no redundant trailing
 * zero groups: every value has exactly one encoding. */
static bool rd_varint_long(rd *r, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned i = 0; i < WIRE_VARINT_MAX && r->p < r->end; i++) {
        uint8_t b = *r->p++;
        if (i == WIRE_VARINT_MAX - 1 && b > 1)
            return false;
        x |= (uint64_t)(b & 0x7fu) << (7 * i);
        if (!(b & 0x80u)) {
            *v = x;
            return b != 0 || i == 0;
        }
    }
    return false;
}

/* Most varints (tags' fields, counts, lengths) fit one byte: the decode of
 * large region lists spends its time here, so take those inline. */
static inline bool rd_varint(rd *r, uint64_t *v)
{
    if (r->p < r->end && *r->p < 0x80u) {
        *v = *r->p++;
        return true;
    }
    return rd_varint_long(r, v);
}

static bool rd_u32(rd *r, uint32_t *v)
{
    uint64_t x;
    if (!rd_varint(r, &x) || x > UINT32_MAX)
        return false;
    *v = (uint32_t)x;
    return true;
}

static bool rd_u64le(rd *r, uint64_t *v)
{
    if (rd_left(r) < 8)
        return false;
    *v = (uint64_t)ld32(r->p) | (uint64_t)ld32(r->p + 4) << 32;
    r->p += 8;
    return true;
}

/* A length-prefixed byte string, returned as a view into the input. */
static bool rd_blob(rd *r, fy_bytes *out)
{
    uint32_t len;
    if (!rd_u32(r, &len) || len > rd_left(r))
        return false;
    out->ptr = len ? r->p : NULL;
    out->len = len;
    r->p += len;
    return true;
}

static bool rd_name(rd *r, fy_bytes *out)
{
    return rd_blob(r, out) && name_ok(*out);
}

/* Reader side of the region delta state (see emit_record). */
typedef struct delta {
    uint64_t end, len, dev, gap;
    uint32_t type, mask;
} delta;

typedef struct dec {
    fy_md *md;
    int last_sec;  /* highest known section seen: enforces order, no repeats */
    unsigned seen; /* bit t: known section t was present */
} dec;

static ferry_status dec_ident(dec *d, rd *r)
{
    if (d->md->kind != FY_MD_KIND_AGENT)
        return BAD;
    if (!rd_name(r, &d->md->name) || !rd_u64le(r, &d->md->uid))
        return BAD;
    return FERRY_OK;
}

static ferry_status dec_backend(dec *d, rd *r, fy_md_backend *be)
{
    if (!rd_name(r, &be->name) || !rd_blob(r, &be->conn))
        return BAD;
    /* A blob without connection info must not smuggle any in. */
    if (!d->md->has_conn && be->conn.len)
        return BAD;
    return FERRY_OK;
}

static ferry_status dec_backends(dec *d, rd *r)
{
    uint32_t n;
    if (d->md->kind != FY_MD_KIND_AGENT)
        return BAD;
    if (!rd_u32(r, &n) || n > FY_MD_MAX_BACKENDS)
        return BAD;
    for (uint32_t i = 0; i < n; i++)
        if (dec_backend(d, r, &d->md->backends[i]) != FERRY_OK)
            return BAD;
    d->md->num_backends = n;
    return FERRY_OK;
}

static bool rd_strided(rd *r, fy_md *md)
{
    return rd_varint(r, &md->stride_base) && rd_varint(r, &md->stride) &&
           rd_varint(r, &md->stride_len) && rd_varint(r, &md->stride_dev) &&
           rd_varint(r, &md->stride_count) &&
           strided_ok(md->stride_base, md->stride, md->stride_len, md->stride_count);
}

static ferry_status dec_list(dec *d, rd *r)
{
    fy_md *md = d->md;
    if (md->kind != FY_MD_KIND_DLIST)
        return BAD;
    if (!rd_u32(r, &md->stride_mem_type) || md->stride_mem_type >= FERRY_MEM_TYPE_COUNT)
        return BAD;
    if (md->strided && !rd_strided(r, md))
        return BAD;
    return FERRY_OK;
}

static bool rd_gap(rd *r, uint64_t *gap)
{
    uint64_t z;
    if (!rd_varint(r, &z))
        return false;
    *gap = (z >> 1) ^ (0 - (z & 1u)); /* zigzag back to two's complement */
    return true;
}

/* Reads the fields the tag says changed into the delta state and checks
 * the state, which every region of the record then shares. */
static bool rd_fields(rd *r, const fy_md *md, uint8_t tag, delta *s)
{
    if ((tag & REC_TYPE) && !rd_u32(r, &s->type))
        return false;
    if ((tag & REC_MASK) && !rd_u32(r, &s->mask))
        return false;
    if ((tag & REC_DEV) && !rd_varint(r, &s->dev))
        return false;
    if ((tag & REC_LEN) && !rd_varint(r, &s->len))
        return false;
    if ((tag & REC_GAP) && !rd_gap(r, &s->gap))
        return false;
    if (s->type >= FERRY_MEM_TYPE_COUNT || !mask_ok(s->mask, md->num_backends))
        return false;
    /* A descriptor list has one memory type (the LIST section's). */
    return md->kind != FY_MD_KIND_DLIST || s->type == md->stride_mem_type;
}

/* One pub per set mask bit, lowest bit first. */
static bool rd_pubs(rd *r, fy_md *md, size_t idx, uint32_t mask)
{
    if (!md->num_backends)
        return true; /* mask is 0 then, and pubs NULL */
    fy_bytes *pubs = md->pubs + idx * md->num_backends;
    for (uint32_t b = 0; b < md->num_backends; b++)
        if ((mask >> b & 1u) && !rd_blob(r, &pubs[b]))
            return false;
    return true;
}

/* Appends k regions shaped like the state, each gap bytes after the end of
 * the one before. */
static bool put_regions(fy_md *md, size_t *filled, uint64_t k, delta *s, fy_bytes meta)
{
    for (uint64_t i = 0; i < k; i++) {
        uint64_t addr = s->end + s->gap;
        if (!span_ok(addr, s->len))
            return false;
        md->regions[(*filled)++] = (fy_md_region){
            .addr = addr,
            .len = s->len,
            .dev_id = s->dev,
            .mem_type = s->type,
            .backend_mask = s->mask,
            .meta = meta,
        };
        s->end = addr + s->len;
    }
    return true;
}

/* A run's count must fit in what the section declared; runs carry neither
 * meta nor pubs. */
static bool rd_run(rd *r, const fy_md *md, size_t filled, uint8_t tag, uint64_t *k)
{
    uint64_t left = md->num_regions - filled, extra;
    if (tag & (REC_META | REC_PUBS))
        return false;
    if (left < 2 || !rd_varint(r, &extra) || extra > left - 2)
        return false;
    *k = extra + 2;
    return true;
}

static bool rd_record(rd *r, fy_md *md, size_t *filled, delta *s)
{
    uint8_t tag;
    uint64_t k = 1;
    fy_bytes meta = {NULL, 0};
    if (!rd_u8(r, &tag))
        return false;
    if ((tag & REC_RUN) && !rd_run(r, md, *filled, tag, &k))
        return false;
    if (!rd_fields(r, md, tag, s))
        return false;
    if ((tag & REC_META) && !rd_blob(r, &meta))
        return false;
    if (!put_regions(md, filled, k, s, meta))
        return false;
    return !(tag & REC_PUBS) || rd_pubs(r, md, *filled - 1, s->mask);
}

static ferry_status alloc_regions(fy_md *md, size_t count)
{
    md->regions = malloc(count * sizeof(*md->regions));
    if (!md->regions)
        return FERRY_ERR_NO_MEMORY;
    if (md->num_backends) {
        /* Zeroed: pubs of clear mask bits and of pub-less records stay empty. */
        md->pubs = calloc(count * md->num_backends, sizeof(*md->pubs));
        if (!md->pubs)
            return FERRY_ERR_NO_MEMORY;
    }
    md->num_regions = count;
    return FERRY_OK;
}

static ferry_status dec_regions(dec *d, rd *r)
{
    fy_md *md = d->md;
    uint64_t count, payload = rd_left(r);
    delta s = {0};
    if (md->kind == FY_MD_KIND_DLIST && md->strided)
        return BAD;
    if (!rd_varint(r, &count) || count == 0 || count > FY_MD_MAX_REGIONS)
        return BAD;
    /* The memory bounds, checked before allocating (see WIRE_EXPAND). */
    uint64_t weight = count * region_weight(md->num_backends);
    if (weight > WIRE_EXPAND * payload || weight > WIRE_MAX_WEIGHT)
        return BAD;
    ferry_status st = alloc_regions(md, (size_t)count);
    if (st != FERRY_OK)
        return st;
    for (size_t filled = 0; filled < count;)
        if (!rd_record(r, md, &filled, &s))
            return BAD;
    return FERRY_OK;
}

static ferry_status dec_auth(dec *d, rd *r)
{
    if (d->md->kind != FY_MD_KIND_AGENT || rd_left(r) != SEC_AUTH_LEN)
        return BAD;
    if (!rd_u64le(r, &d->md->auth_ts_us))
        return BAD;
    d->md->auth = true;
    d->md->auth_mac = r->p;
    r->p += FY_MD_MAC_LEN;
    return FERRY_OK;
}

static ferry_status dec_section(dec *d, uint8_t type, rd *r)
{
    switch (type) {
    case SEC_AUTH:
        return dec_auth(d, r);
    case SEC_IDENT:
        return dec_ident(d, r);
    case SEC_BACKENDS:
        return dec_backends(d, r);
    case SEC_LIST:
        return dec_list(d, r);
    default:
        return dec_regions(d, r);
    }
}

/* Runs a known section's decoder on exactly its bytes; skips unknown ones,
 * which a newer minor version may add. */
static ferry_status dec_one(dec *d, rd *body)
{
    uint8_t type;
    uint64_t len;
    if (!rd_u8(body, &type) || !rd_varint(body, &len) || len > rd_left(body))
        return BAD;
    rd sec = {body->p, body->p + len};
    body->p += len;
    if (d->seen >> SEC_AUTH & 1u)
        return BAD; /* nothing may follow the MAC: it would be unsigned */
    if (type < SEC_IDENT || type > SEC_AUTH)
        return FERRY_OK;
    if (type <= d->last_sec)
        return BAD;
    d->last_sec = type;
    d->seen |= 1u << type;
    ferry_status st = dec_section(d, type, &sec);
    if (st == FERRY_OK && sec.p != sec.end)
        return BAD;
    return st;
}

static ferry_status dec_body(dec *d, rd *body)
{
    while (body->p < body->end) {
        ferry_status st = dec_one(d, body);
        if (st != FERRY_OK)
            return st;
    }
    /* An agent blob needs its identity, a descriptor list its type. */
    unsigned need = d->md->kind == FY_MD_KIND_AGENT ? SEC_IDENT : SEC_LIST;
    return d->seen >> need & 1u ? FERRY_OK : BAD;
}

static bool hdr_ok(const uint8_t *b, size_t len)
{
    if (len < WIRE_HDR || len > FY_MD_MAX_BLOB)
        return false;
    if (memcmp(b, wire_magic, sizeof(wire_magic)) != 0 || b[4] != WIRE_MAJOR)
        return false;
    if (b[6] != FY_MD_KIND_AGENT && b[6] != FY_MD_KIND_DLIST)
        return false;
    return ld32(b + 8) == len - WIRE_HDR &&
           ld32(b + 12) == wire_crc(b, b + WIRE_HDR, len - WIRE_HDR);
}

static ferry_status dec_blob(const uint8_t *b, size_t len, fy_md *md)
{
    if (!hdr_ok(b, len))
        return BAD;
    dec d = {.md = md, .last_sec = 0, .seen = 0};
    md->kind = (fy_md_kind)b[6];
    md->has_conn = b[7] & FLAG_HAS_CONN;
    md->strided = b[7] & FLAG_STRIDED;
    /* Connection info belongs to agents, striding to descriptor lists. */
    if (md->kind == FY_MD_KIND_AGENT ? md->strided : md->has_conn)
        return BAD;
    rd body = {b + WIRE_HDR, b + len};
    return dec_body(&d, &body);
}

ferry_status fy_md_decode(const void *buf, size_t len, fy_md *md)
{
    fy_md tmp;
    if (!md || (!buf && len))
        return FERRY_ERR_INVALID_PARAM;
    memset(&tmp, 0, sizeof(tmp));
    ferry_status st = dec_blob(buf, len, &tmp);
    if (st != FERRY_OK) {
        fy_md_free(&tmp);
        return st;
    }
    *md = tmp;
    return FERRY_OK;
}

void fy_md_free(fy_md *md)
{
    if (!md)
        return;
    free(md->regions);
    free(md->pubs);
    md->regions = NULL;
    md->pubs = NULL;
    md->num_regions = 0;
}

/* ---- encoding: validation ----------------------------------------------- */

#define INVALID FERRY_ERR_INVALID_PARAM

static bool bytes_ok(fy_bytes b)
{
    return b.len == 0 || b.ptr != NULL;
}

/* Region i's pub slots; NULL without backends (pubs may be NULL then). */
static const fy_bytes *region_pubs(const fy_md *md, size_t i)
{
    return md->num_backends ? md->pubs + i * md->num_backends : NULL;
}

static bool pubs_ok(const fy_md *md, size_t i, uint32_t mask)
{
    const fy_bytes *pubs = region_pubs(md, i);
    for (uint32_t b = 0; b < md->num_backends; b++)
        if (!bytes_ok(pubs[b]) || (pubs[b].len && !(mask >> b & 1u)))
            return false;
    return true;
}

static bool region_ok(const fy_md *md, size_t i)
{
    const fy_md_region *g = &md->regions[i];
    if (g->mem_type >= FERRY_MEM_TYPE_COUNT || !mask_ok(g->backend_mask, md->num_backends))
        return false;
    if (md->kind == FY_MD_KIND_DLIST && g->mem_type != md->stride_mem_type)
        return false;
    return span_ok(g->addr, g->len) && bytes_ok(g->meta) && pubs_ok(md, i, g->backend_mask);
}

static ferry_status check_regions(const fy_md *md)
{
    if (md->num_regions > FY_MD_MAX_REGIONS ||
        md->num_regions * region_weight(md->num_backends) > WIRE_MAX_WEIGHT)
        return INVALID;
    if (md->num_regions && (!md->regions || (md->num_backends && !md->pubs)))
        return INVALID;
    for (size_t i = 0; i < md->num_regions; i++)
        if (!region_ok(md, i))
            return INVALID;
    return FERRY_OK;
}

static ferry_status check_agent(const fy_md *md)
{
    if (md->strided || !name_ok(md->name) || md->num_backends > FY_MD_MAX_BACKENDS)
        return INVALID;
    for (uint32_t b = 0; b < md->num_backends; b++)
        if (!name_ok(md->backends[b].name) || !bytes_ok(md->backends[b].conn))
            return INVALID;
    return check_regions(md);
}

static ferry_status check_dlist(const fy_md *md)
{
    if (md->name.len || md->has_conn || md->num_backends)
        return INVALID;
    if (md->stride_mem_type >= FERRY_MEM_TYPE_COUNT)
        return INVALID;
    if (!md->strided)
        return check_regions(md);
    if (md->num_regions ||
        !strided_ok(md->stride_base, md->stride, md->stride_len, md->stride_count))
        return INVALID;
    return FERRY_OK;
}

static ferry_status check_md(const fy_md *md)
{
    if (md->kind == FY_MD_KIND_AGENT)
        return check_agent(md);
    if (md->kind == FY_MD_KIND_DLIST)
        return check_dlist(md);
    return INVALID;
}

/* ---- encoding: emitters ------------------------------------------------- */

/* Output cursor. With p NULL it only counts, which sizes the blob. */
typedef struct wr {
    uint8_t *p;
    uint64_t n;
} wr;

static void wr_u8(wr *w, uint8_t v)
{
    if (w->p)
        w->p[w->n] = v;
    w->n++;
}

static void wr_varint(wr *w, uint64_t v)
{
    for (; v >= 0x80u; v >>= 7)
        wr_u8(w, (uint8_t)(v | 0x80u));
    wr_u8(w, (uint8_t)v);
}

static void wr_le(wr *w, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        wr_u8(w, (uint8_t)(v >> (8 * i)));
}

static void wr_blob(wr *w, fy_bytes b)
{
    wr_varint(w, b.len);
    if (w->p && b.len)
        memcpy(w->p + w->n, b.ptr, b.len);
    w->n += b.len;
}

static void emit_ident(const fy_md *md, wr *w)
{
    wr_blob(w, md->name);
    wr_le(w, md->uid, 8);
}

static void emit_backends(const fy_md *md, wr *w)
{
    static const fy_bytes none = {NULL, 0};
    wr_varint(w, md->num_backends);
    for (uint32_t b = 0; b < md->num_backends; b++) {
        wr_blob(w, md->backends[b].name);
        /* Without has_conn the conn views are ignored, not an error, so the
         * core can build partial metadata from the same backend table. */
        wr_blob(w, md->has_conn ? md->backends[b].conn : none);
    }
}

static void emit_list(const fy_md *md, wr *w)
{
    wr_varint(w, md->stride_mem_type);
    if (!md->strided)
        return;
    wr_varint(w, md->stride_base);
    wr_varint(w, md->stride);
    wr_varint(w, md->stride_len);
    wr_varint(w, md->stride_dev);
    wr_varint(w, md->stride_count);
}

static bool has_pubs(const fy_md *md, size_t i)
{
    const fy_bytes *pubs = region_pubs(md, i);
    for (uint32_t b = 0; b < md->num_backends; b++)
        if (pubs[b].len)
            return true;
    return false;
}

/* Only regions without meta or pubs may join a run. */
static bool plain(const fy_md *md, size_t i)
{
    return !md->regions[i].meta.len && !has_pubs(md, i);
}

static bool same_shape(const fy_md_region *a, const fy_md_region *b)
{
    return a->len == b->len && a->dev_id == b->dev_id && a->mem_type == b->mem_type &&
           a->backend_mask == b->backend_mask;
}

/* How many regions from i on one record covers: the longest stretch of
 * plain regions of one shape and one gap, capped to keep within the
 * expansion bound. */
static size_t run_len(const fy_md *md, size_t i, uint64_t prev_end)
{
    const fy_md_region *g = md->regions;
    size_t cap = WIRE_RUN_WEIGHT / region_weight(md->num_backends), j = i + 1;
    uint64_t gap = g[i].addr - prev_end;
    if (!plain(md, i))
        return 1;
    while (j < md->num_regions && j - i < cap && same_shape(&g[i], &g[j]) && plain(md, j) &&
           g[j].addr - (g[j - 1].addr + g[j - 1].len) == gap)
        j++;
    return j - i;
}

static uint8_t record_tag(const fy_md *md, size_t i, size_t k, const delta *s)
{
    const fy_md_region *g = &md->regions[i];
    uint8_t tag = k > 1 ? REC_RUN : 0;
    tag |= g->len != s->len ? REC_LEN : 0;
    tag |= g->dev_id != s->dev ? REC_DEV : 0;
    tag |= g->mem_type != s->type ? REC_TYPE : 0;
    tag |= g->backend_mask != s->mask ? REC_MASK : 0;
    tag |= g->addr - s->end != s->gap ? REC_GAP : 0;
    tag |= g->meta.len ? REC_META : 0;
    tag |= has_pubs(md, i) ? REC_PUBS : 0;
    return tag;
}

static uint64_t zigzag(uint64_t v)
{
    return v >> 63 ? ~(v << 1) : v << 1;
}

static void emit_fields(const fy_md_region *g, uint8_t tag, const delta *s, wr *w)
{
    if (tag & REC_TYPE)
        wr_varint(w, g->mem_type);
    if (tag & REC_MASK)
        wr_varint(w, g->backend_mask);
    if (tag & REC_DEV)
        wr_varint(w, g->dev_id);
    if (tag & REC_LEN)
        wr_varint(w, g->len);
    if (tag & REC_GAP)
        wr_varint(w, zigzag(g->addr - s->end));
}

static void emit_pubs(const fy_md *md, size_t i, wr *w)
{
    const fy_bytes *pubs = region_pubs(md, i);
    for (uint32_t b = 0; b < md->num_backends; b++)
        if (md->regions[i].backend_mask >> b & 1u)
            wr_blob(w, pubs[b]);
}

/* Writes regions i..i+k-1 as one record and moves the delta state past
 * them, exactly as the reader will. */
static void emit_record(const fy_md *md, size_t i, size_t k, delta *s, wr *w)
{
    const fy_md_region *g = &md->regions[i], *last = &md->regions[i + k - 1];
    uint8_t tag = record_tag(md, i, k, s);
    wr_u8(w, tag);
    if (tag & REC_RUN)
        wr_varint(w, k - 2);
    emit_fields(g, tag, s, w);
    if (tag & REC_META)
        wr_blob(w, g->meta);
    if (tag & REC_PUBS)
        emit_pubs(md, i, w);
    *s = (delta){.end = last->addr + last->len,
                 .len = g->len,
                 .dev = g->dev_id,
                 .gap = g->addr - s->end,
                 .type = g->mem_type,
                 .mask = g->backend_mask};
}

static void emit_regions(const fy_md *md, wr *w)
{
    delta s = {0};
    wr_varint(w, md->num_regions);
    for (size_t i = 0, k; i < md->num_regions; i += k) {
        k = run_len(md, i, s.end);
        emit_record(md, i, k, &s, w);
    }
}

typedef struct enc {
    const fy_md *md;
    wr w;
    uint64_t sec_len[SEC_AUTH + 1]; /* payload sizes, from the sizing pass */
} enc;

/* Writes a section: type, payload length, payload. The sizing pass learns
 * the payload length from a counting cursor; the writing pass reuses it. */
static void emit_section(enc *e, uint8_t type, void (*fn)(const fy_md *, wr *))
{
    if (!e->w.p) {
        wr count = {NULL, 0};
        fn(e->md, &count);
        e->sec_len[type] = count.n;
    }
    wr_u8(&e->w, type);
    wr_varint(&e->w, e->sec_len[type]);
    if (e->w.p)
        fn(e->md, &e->w);
    else
        e->w.n += e->sec_len[type];
}

/* The time, then a zero MAC for the signer to fill in. */
static void emit_auth(const fy_md *md, wr *w)
{
    wr_le(w, md->auth_ts_us, 8);
    for (unsigned i = 0; i < FY_MD_MAC_LEN; i++)
        wr_u8(w, 0);
}

static void emit_header(const fy_md *md, wr *w)
{
    uint8_t flags = (md->has_conn ? FLAG_HAS_CONN : 0) | (md->strided ? FLAG_STRIDED : 0);
    for (size_t i = 0; i < sizeof(wire_magic); i++)
        wr_u8(w, wire_magic[i]);
    wr_u8(w, WIRE_MAJOR);
    wr_u8(w, WIRE_MINOR);
    wr_u8(w, (uint8_t)md->kind);
    wr_u8(w, flags);
    wr_le(w, 0, 8); /* body length and checksum, filled in by seal() */
}

static void emit_blob(enc *e)
{
    emit_header(e->md, &e->w);
    if (e->md->kind == FY_MD_KIND_AGENT) {
        emit_section(e, SEC_IDENT, emit_ident);
        if (e->md->num_backends)
            emit_section(e, SEC_BACKENDS, emit_backends);
    } else {
        emit_section(e, SEC_LIST, emit_list);
    }
    if (e->md->num_regions)
        emit_section(e, SEC_REGIONS, emit_regions);
    if (e->md->kind == FY_MD_KIND_AGENT && e->md->auth)
        emit_section(e, SEC_AUTH, emit_auth);
}

static void seal(uint8_t *out, size_t len)
{
    wr w = {out, 8};
    wr_le(&w, len - WIRE_HDR, 4);
    wr_le(&w, wire_crc(out, out + WIRE_HDR, len - WIRE_HDR), 4);
}

void fy_md_reseal(uint8_t *buf, size_t len)
{
    seal(buf, len);
}

void fy_md_mac_parts(const uint8_t *buf, size_t len, fy_bytes parts[2], size_t *mac_off)
{
    *mac_off = len - FY_MD_MAC_LEN;
    parts[0] = (fy_bytes){buf, 8};
    parts[1] = (fy_bytes){buf + WIRE_HDR, (uint32_t)(*mac_off - WIRE_HDR)};
}

ferry_status fy_md_encode(const fy_md *md, void **buf, size_t *len)
{
    if (!md || !buf || !len)
        return INVALID;
    ferry_status st = check_md(md);
    if (st != FERRY_OK)
        return st;
    enc e = {.md = md, .w = {NULL, 0}};
    emit_blob(&e);
    if (e.w.n > FY_MD_MAX_BLOB)
        return INVALID;
    size_t n = (size_t)e.w.n;
    uint8_t *out = malloc(n);
    if (!out)
        return FERRY_ERR_NO_MEMORY;
    e.w = (wr){out, 0};
    emit_blob(&e);
    seal(out, n);
    *buf = out;
    *len = n;
    return FERRY_OK;
}
