/* SPDX-License-Identifier: Apache-2.0 */
/* Descriptor lists: plain (array + optional per-entry metadata bytes) or
 * strided (never materialised). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/api.h"
#include "common/log.h"
#include "core/dlist.h"
#include "metadata/wire.h"
#include "ferry/ferry.h"

static const char *const fy_mem_names[FERRY_MEM_TYPE_COUNT] = {"DRAM", "VRAM", "FILE", "BLOCK",
                                                               "OBJ"};

FY_API const char *ferry_mem_type_name(ferry_mem_type type)
{
    return (unsigned)type < FERRY_MEM_TYPE_COUNT ? fy_mem_names[type] : NULL;
}

FY_API ferry_status ferry_mem_type_parse(const char *name, ferry_mem_type *type)
{
    if (!name || !type)
        return FERRY_ERR_INVALID_PARAM;
    for (int t = 0; t < FERRY_MEM_TYPE_COUNT; t++)
        if (!strcasecmp(name, fy_mem_names[t])) {
            *type = (ferry_mem_type)t;
            return FERRY_OK;
        }
    if (!strcasecmp(name, "cpu")) {
        *type = FERRY_MEM_DRAM;
        return FERRY_OK;
    }
    if (!strcasecmp(name, "cuda") || !strcasecmp(name, "gpu")) {
        *type = FERRY_MEM_VRAM;
        return FERRY_OK;
    }
    return FERRY_ERR_NOT_FOUND;
}

FY_API void ferry_free(void *ptr)
{
    free(ptr);
}

FY_API ferry_status ferry_dlist_create(ferry_mem_type type, size_t capacity, ferry_dlist **out)
{
    if (!out || (unsigned)type >= FERRY_MEM_TYPE_COUNT || capacity > (SIZE_MAX / 64)) {
        FY_ERR("dlist create: %s", !out ? "no out pointer" : "bad memory type or capacity");
        return FERRY_ERR_INVALID_PARAM;
    }
    ferry_dlist *l = calloc(1, sizeof(*l));
    if (!l)
        return FERRY_ERR_NO_MEMORY;
    l->type = type;
    if (capacity) {
        l->descs = malloc(capacity * sizeof(*l->descs));
        if (!l->descs) {
            free(l);
            return FERRY_ERR_NO_MEMORY;
        }
        l->cap = capacity;
    }
    *out = l;
    return FERRY_OK;
}

FY_API ferry_status ferry_dlist_create_strided(ferry_mem_type type, uint64_t base, uint64_t stride,
                                               size_t count, uint64_t len, uint64_t dev_id,
                                               ferry_dlist **out)
{
    if (!out || (unsigned)type >= FERRY_MEM_TYPE_COUNT || !len) {
        FY_ERR("strided dlist: %s", !out   ? "no out pointer"
                                    : !len ? "descriptor length 0"
                                           : "bad memory type");
        return FERRY_ERR_INVALID_PARAM;
    }
    /* The last descriptor must not wrap the address space. */
    if (count && ((stride && (count - 1) > (UINT64_MAX - base) / stride) ||
                  base + (count - 1) * stride > UINT64_MAX - len)) {
        FY_ERR("strided dlist: %zu descriptors of %llu bytes every %llu from %#llx wrap the "
               "address space",
               count, (unsigned long long)len, (unsigned long long)stride,
               (unsigned long long)base);
        return FERRY_ERR_INVALID_PARAM;
    }
    ferry_dlist *l = calloc(1, sizeof(*l));
    if (!l)
        return FERRY_ERR_NO_MEMORY;
    *l = (ferry_dlist){.type = type,
                       .strided = true,
                       .count = count,
                       .base = base,
                       .stride = stride,
                       .len = len,
                       .dev_id = dev_id};
    *out = l;
    return FERRY_OK;
}

FY_API void ferry_dlist_destroy(ferry_dlist *l)
{
    if (!l)
        return;
    free(l->descs);
    free(l->meta_span);
    free(l->meta_buf);
    free(l);
}

static ferry_status fy_dlist_grow(ferry_dlist *l, size_t extra)
{
    if (l->count + extra <= l->cap)
        return FERRY_OK;
    size_t cap = l->cap ? l->cap * 2 : 16;
    while (cap < l->count + extra)
        cap *= 2;
    ferry_desc *d = realloc(l->descs, cap * sizeof(*d));
    if (!d)
        return FERRY_ERR_NO_MEMORY;
    l->descs = d;
    if (l->meta_span) {
        uint64_t *m = realloc(l->meta_span, cap * sizeof(*m));
        if (!m)
            return FERRY_ERR_NO_MEMORY;
        memset(m + l->cap, 0, (cap - l->cap) * sizeof(*m));
        l->meta_span = m;
    }
    l->cap = cap;
    return FERRY_OK;
}

static bool fy_desc_valid(uint64_t addr, uint64_t len)
{
    return len && addr <= UINT64_MAX - len;
}

/* Storage (FILE, BLOCK, OBJ): length 0 means "to the end", as in NIXL,
 * whose storage users register and query files as (0, 0, fd, path). */
static uint64_t fy_desc_len(const ferry_dlist *l, uint64_t addr, uint64_t len)
{
    bool storage =
        l->type == FERRY_MEM_FILE || l->type == FERRY_MEM_BLOCK || l->type == FERRY_MEM_OBJ;
    return storage && len == 0 && addr < UINT64_MAX ? UINT64_MAX - addr : len;
}

FY_API ferry_status ferry_dlist_add(ferry_dlist *l, uint64_t addr, uint64_t len, uint64_t dev_id)
{
    return ferry_dlist_add_meta(l, addr, len, dev_id, NULL, 0);
}

/* Keeps a copy of meta bytes in the list's buffer; returns its span. */
static ferry_status fy_meta_store(ferry_dlist *l, const void *meta, size_t len, uint64_t *span)
{
    if (!l->meta_span) {
        l->meta_span = calloc(l->cap ? l->cap : 1, sizeof(*l->meta_span));
        if (!l->meta_span)
            return FERRY_ERR_NO_MEMORY;
    }
    if (l->meta_used + len > l->meta_cap) {
        size_t cap = (l->meta_used + len) * 2;
        uint8_t *b = realloc(l->meta_buf, cap);
        if (!b)
            return FERRY_ERR_NO_MEMORY;
        l->meta_buf = b;
        l->meta_cap = cap;
    }
    memcpy(l->meta_buf + l->meta_used, meta, len);
    *span = ((uint64_t)l->meta_used << 32) | len;
    l->meta_used += len;
    return FERRY_OK;
}

FY_API ferry_status ferry_dlist_add_meta(ferry_dlist *l, uint64_t addr, uint64_t len,
                                         uint64_t dev_id, const void *meta, size_t meta_len)
{
    if (l)
        len = fy_desc_len(l, addr, len);
    if (!l || !fy_desc_valid(addr, len) || (meta_len && !meta) || meta_len > UINT32_MAX)
        return FERRY_ERR_INVALID_PARAM;
    if (l->strided)
        return FERRY_ERR_NOT_ALLOWED;
    if (l->meta_used + meta_len > UINT32_MAX)
        return FERRY_ERR_NO_RESOURCES;
    ferry_status rc = fy_dlist_grow(l, 1);
    uint64_t span = 0;
    if (rc == FERRY_OK && meta_len)
        rc = fy_meta_store(l, meta, meta_len, &span);
    if (rc != FERRY_OK)
        return rc;
    if (l->meta_span)
        l->meta_span[l->count] = span;
    l->descs[l->count++] = (ferry_desc){addr, len, dev_id};
    return FERRY_OK;
}

FY_API ferry_status ferry_dlist_add_array(ferry_dlist *l, const ferry_desc *descs, size_t n)
{
    if (!l || (n && !descs))
        return FERRY_ERR_INVALID_PARAM;
    if (l->strided)
        return FERRY_ERR_NOT_ALLOWED;
    for (size_t i = 0; i < n; i++)
        if (!fy_desc_valid(descs[i].addr, fy_desc_len(l, descs[i].addr, descs[i].len)))
            return FERRY_ERR_INVALID_PARAM;
    if (!n)
        return FERRY_OK; /* descs may be NULL: no pointer arithmetic on it */
    ferry_status rc = fy_dlist_grow(l, n);
    if (rc != FERRY_OK)
        return rc;
    memcpy(l->descs + l->count, descs, n * sizeof(*descs));
    for (size_t i = l->count; i < l->count + n; i++)
        l->descs[i].len = fy_desc_len(l, l->descs[i].addr, l->descs[i].len);
    if (l->meta_span)
        memset(l->meta_span + l->count, 0, n * sizeof(*l->meta_span));
    l->count += n;
    return FERRY_OK;
}

FY_API size_t ferry_dlist_count(const ferry_dlist *l)
{
    return l ? l->count : 0;
}

FY_API ferry_mem_type ferry_dlist_mem_type(const ferry_dlist *l)
{
    return l ? l->type : FERRY_MEM_DRAM;
}

FY_API int ferry_dlist_is_strided(const ferry_dlist *l)
{
    return l && l->strided;
}

FY_API ferry_status ferry_dlist_get(const ferry_dlist *l, size_t i, ferry_desc *out)
{
    if (!l || !out || i >= l->count)
        return FERRY_ERR_INVALID_PARAM;
    *out = fy_dlist_at(l, i);
    return FERRY_OK;
}

FY_API ferry_status ferry_dlist_get_meta(const ferry_dlist *l, size_t i, const void **meta,
                                         size_t *meta_len)
{
    if (!l || !meta || !meta_len || i >= l->count)
        return FERRY_ERR_INVALID_PARAM;
    uint64_t span = l->meta_span ? l->meta_span[i] : 0;
    *meta_len = (size_t)(span & 0xffffffffu);
    *meta = *meta_len ? l->meta_buf + (span >> 32) : NULL;
    return FERRY_OK;
}

/* ---- serialization through the wire codec ---- */

static ferry_status fy_dlist_to_md(const ferry_dlist *l, fy_md *md)
{
    /* stride_mem_type carries the list's type for plain lists too, so an
     * empty list keeps it. */
    *md = (fy_md){.kind = FY_MD_KIND_DLIST, .strided = l->strided, .stride_mem_type = l->type};
    if (l->strided) {
        md->stride_base = l->base;
        md->stride = l->stride;
        md->stride_len = l->len;
        md->stride_dev = l->dev_id;
        md->stride_count = l->count;
        return FERRY_OK;
    }
    md->regions = calloc(l->count ? l->count : 1, sizeof(*md->regions));
    if (!md->regions)
        return FERRY_ERR_NO_MEMORY;
    md->num_regions = l->count;
    for (size_t i = 0; i < l->count; i++) {
        const void *meta;
        size_t meta_len;
        ferry_dlist_get_meta(l, i, &meta, &meta_len);
        md->regions[i] = (fy_md_region){
            l->descs[i].addr,          l->descs[i].len, l->descs[i].dev_id, l->type, 0,
            {meta, (uint32_t)meta_len}};
    }
    return FERRY_OK;
}

FY_API ferry_status ferry_dlist_serialize(const ferry_dlist *l, void **buf, size_t *len)
{
    if (!l || !buf || !len)
        return FERRY_ERR_INVALID_PARAM;
    fy_md md;
    ferry_status rc = fy_dlist_to_md(l, &md);
    if (rc == FERRY_OK)
        rc = fy_md_encode(&md, buf, len);
    free(md.regions);
    return rc;
}

static ferry_status fy_dlist_from_md(const fy_md *md, ferry_dlist **out)
{
    if (md->strided)
        return ferry_dlist_create_strided((ferry_mem_type)md->stride_mem_type, md->stride_base,
                                          md->stride, md->stride_count, md->stride_len,
                                          md->stride_dev, out);
    ferry_mem_type type = (ferry_mem_type)md->stride_mem_type;
    ferry_dlist *l = NULL;
    ferry_status rc = ferry_dlist_create(type, md->num_regions, &l);
    for (size_t i = 0; rc == FERRY_OK && i < md->num_regions; i++) {
        const fy_md_region *r = &md->regions[i];
        rc = r->mem_type == type
                 ? ferry_dlist_add_meta(l, r->addr, r->len, r->dev_id, r->meta.ptr, r->meta.len)
                 : FERRY_ERR_BAD_METADATA;
    }
    if (rc != FERRY_OK) {
        ferry_dlist_destroy(l);
        return rc == FERRY_ERR_INVALID_PARAM ? FERRY_ERR_BAD_METADATA : rc;
    }
    *out = l;
    return FERRY_OK;
}

FY_API ferry_status ferry_dlist_deserialize(const void *buf, size_t len, ferry_dlist **out)
{
    if (!buf || !out)
        return FERRY_ERR_INVALID_PARAM;
    fy_md md;
    ferry_status rc = fy_md_decode(buf, len, &md);
    if (rc != FERRY_OK)
        return rc;
    if (md.kind != FY_MD_KIND_DLIST)
        rc = FERRY_ERR_BAD_METADATA;
    if (rc == FERRY_OK) {
        rc = fy_dlist_from_md(&md, out);
        if (rc == FERRY_ERR_INVALID_PARAM)
            rc = FERRY_ERR_BAD_METADATA;
    }
    fy_md_free(&md);
    return rc;
}
