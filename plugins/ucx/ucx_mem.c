/* SPDX-License-Identifier: Apache-2.0 */
/* UCX backend: memory UCX allocates (ferry_mem_alloc) and registration.
 * Registered DRAM regions are listed, so that a peer's message (ucx_amt.c)
 * is copied into, or answered from, only memory registered here. With
 * rma=on a region is also mapped by UCX and publishes its packed remote
 * key; a region inside an allocation borrows the allocation's memory
 * handle, so its key names UCX's shared segment and peers on this host
 * write it with plain copies. With rma=off nothing is mapped or published:
 * no peer uses a key. */
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "ucx_internal.h"

/* Memory UCX allocated: unmapped when it was freed and the last region
 * registered inside it is gone. */
typedef struct fy_ucx_alloc {
    struct fy_ucx_alloc *next;
    uintptr_t addr;
    size_t len;
    ucp_mem_h memh;
    unsigned regions; /* registered regions inside */
    bool freed;       /* mem_free came */
} fy_ucx_alloc;

typedef struct fy_ucx_region {
    ucp_mem_h memh;
    fy_ucx_alloc *within; /* the allocation whose handle it borrows, or NULL */
    uint64_t addr, len;
    struct fy_ucx_region *next; /* in u->dram, DRAM only */
} fy_ucx_region;

/* ---- allocation ---- */

static void fy_ucx_alloc_put(fy_ucx *u, fy_ucx_alloc *a)
{
    if (!a->freed || a->regions)
        return;
    fy_ucx_alloc **link = &u->allocs;
    while (*link != a)
        link = &(*link)->next;
    *link = a->next;
    ucp_mem_unmap(u->ctx, a->memh);
    free(a);
}

/* The allocation that holds [addr, addr+len), or NULL. */
static fy_ucx_alloc *fy_ucx_alloc_of(fy_ucx *u, uint64_t addr, uint64_t len)
{
    for (fy_ucx_alloc *a = u->allocs; a; a = a->next)
        if (!a->freed && fy_ucx_within(a->addr, a->len, addr, len))
            return a;
    return NULL;
}

/* Where UCX puts a shared segment it cannot get from System V (its
 * posix method): a tmpfs that, once full, has taken the host's memory. */
#define FY_UCX_SHM_DIR "/dev/shm"

/* Whether the host could hold len bytes: no more than its physical memory,
 * nor than the free space of FY_UCX_SHM_DIR. UCX would otherwise try: its
 * posix method writes the whole size into a file there before mapping it
 * (measured: 0.9 GB/s until the host's memory is gone, for 2^62 bytes).
 * Logs which bound refused it. */
static bool fy_ucx_alloc_fits(fy_ucx *u, uint64_t len)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t ram = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : UINT64_MAX;
    struct statvfs sv;
    uint64_t shm =
        statvfs(FY_UCX_SHM_DIR, &sv) == 0 ? (uint64_t)sv.f_bavail * sv.f_frsize : UINT64_MAX;
    if (len <= ram && len <= shm)
        return true;
    UCX_LOG(u, FERRY_LOG_ERROR,
            "allocating %llu bytes: more than the host holds (%llu bytes of memory, %llu free "
            "in " FY_UCX_SHM_DIR ")",
            (unsigned long long)len, (unsigned long long)ram, (unsigned long long)shm);
    return false;
}

/* UCX allocates (and maps) the memory itself: on one host it comes from a
 * shared-memory transport, and peers then write it with plain copies.
 * Sizes the host cannot hold fail at once (fy_ucx_alloc_fits); UCX's
 * allocation methods are set in ucx.c so that no file outlives a crash. */
ferry_status fy_ucx_mem_alloc(void *priv, ferry_mem_type type, uint64_t len, uint64_t dev_id,
                              void **addr, void **alloc)
{
    fy_ucx *u = priv;
    (void)dev_id;
    if (type != FERRY_MEM_DRAM)
        return FERRY_ERR_NOT_SUPPORTED;
    if (!fy_ucx_alloc_fits(u, len))
        return FERRY_ERR_NO_MEMORY;
    fy_ucx_alloc *a = calloc(1, sizeof(*a));
    if (!a)
        return FERRY_ERR_NO_MEMORY;
    ucp_mem_map_params_t mp = {
        .field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH |
                      UCP_MEM_MAP_PARAM_FIELD_FLAGS,
        .address = NULL,
        .length = len,
        .flags = UCP_MEM_MAP_ALLOCATE,
    };
    ucp_mem_attr_t attr = {.field_mask = UCP_MEM_ATTR_FIELD_ADDRESS | UCP_MEM_ATTR_FIELD_LENGTH};
    ucs_status_t st = ucp_mem_map(u->ctx, &mp, &a->memh);
    if (st == UCS_OK && (st = ucp_mem_query(a->memh, &attr)) != UCS_OK)
        ucp_mem_unmap(u->ctx, a->memh);
    if (st != UCS_OK) {
        UCX_LOG(u, FERRY_LOG_ERROR, "allocating %llu bytes: %s", (unsigned long long)len,
                ucs_status_string(st));
        free(a);
        return fy_ucx_status(st);
    }
    a->addr = (uintptr_t)attr.address;
    a->len = len; /* UCX may round up; the caller asked for len */
    a->next = u->allocs;
    u->allocs = a;
    *addr = attr.address;
    *alloc = a;
    return FERRY_OK;
}

void fy_ucx_mem_free(void *priv, void *alloc)
{
    fy_ucx_alloc *a = alloc;
    a->freed = true;
    fy_ucx_alloc_put(priv, a);
}

/* ---- mapping ---- */

/* Maps the range, or borrows the handle of the allocation it lies in. */
static ucs_status_t fy_ucx_map(fy_ucx *u, const ferry_desc *d, fy_ucx_region *r)
{
    r->within = fy_ucx_alloc_of(u, d->addr, d->len);
    if (r->within) {
        r->within->regions++;
        r->memh = r->within->memh;
        return UCS_OK;
    }
    ucp_mem_map_params_t mp = {
        .field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH,
        .address = (void *)(uintptr_t)d->addr,
        .length = d->len,
    };
    ucs_status_t st = ucp_mem_map(u->ctx, &mp, &r->memh);
    if (st != UCS_OK)
        r->memh = NULL;
    return st;
}

static void fy_ucx_unmap(fy_ucx *u, fy_ucx_region *r)
{
    if (r->within) {
        r->within->regions--;
        fy_ucx_alloc_put(u, r->within);
    } else if (r->memh) {
        ucp_mem_unmap(u->ctx, r->memh);
    }
}

/* ---- registered DRAM ---- */

/* Whether [addr, addr+len) lies inside one registered DRAM region. A
 * linear walk, started at the last region found: small writes tend to land
 * in the same KV cache, and registrations are few. */
bool fy_ucx_dram_holds(fy_ucx *u, uint64_t addr, uint64_t len)
{
    if (u->dram_hit && fy_ucx_within(u->dram_hit->addr, u->dram_hit->len, addr, len))
        return true;
    for (fy_ucx_region *r = u->dram; r; r = r->next)
        if (fy_ucx_within(r->addr, r->len, addr, len)) {
            u->dram_hit = r;
            return true;
        }
    return false;
}

static void fy_ucx_dram_unlist(fy_ucx *u, fy_ucx_region *r)
{
    fy_ucx_region **link = &u->dram;
    while (*link && *link != r)
        link = &(*link)->next;
    if (*link)
        *link = r->next;
    if (u->dram_hit == r)
        u->dram_hit = NULL;
}

/* ---- registration ---- */

/* rma=on: maps the region and packs its key into *pub. */
static ucs_status_t fy_ucx_publish(fy_ucx *u, const ferry_desc *d, fy_ucx_region *r, void **pub,
                                   size_t *pub_len)
{
    void *packed = NULL;
    size_t packed_len = 0;
    ucs_status_t st = fy_ucx_map(u, d, r);
    if (st == UCS_OK)
        st = ucp_rkey_pack(u->ctx, r->memh, &packed, &packed_len);
    if (st != UCS_OK)
        return st;
    *pub = malloc(packed_len);
    if (*pub) {
        memcpy(*pub, packed, packed_len);
        *pub_len = packed_len;
    }
    ucp_rkey_buffer_release(packed);
    return *pub ? UCS_OK : UCS_ERR_NO_MEMORY;
}

ferry_status fy_ucx_reg(void *priv, ferry_mem_type type, const ferry_desc *d, const void *meta,
                        size_t meta_len, void **region, void **pub, size_t *pub_len)
{
    fy_ucx *u = priv;
    (void)meta, (void)meta_len;
    if (type != FERRY_MEM_DRAM && !(type == FERRY_MEM_VRAM && u->vram))
        return FERRY_ERR_NOT_SUPPORTED;
    fy_ucx_region *r = calloc(1, sizeof(*r));
    if (!r)
        return FERRY_ERR_NO_MEMORY;
    *pub = NULL;
    *pub_len = 0;
    ucs_status_t st = u->rma ? fy_ucx_publish(u, d, r, pub, pub_len) : UCS_OK;
    if (st != UCS_OK) {
        UCX_LOG(u, FERRY_LOG_ERROR, "mapping %#llx+%llu: %s", (unsigned long long)d->addr,
                (unsigned long long)d->len, ucs_status_string(st));
        fy_ucx_unmap(u, r);
        free(r);
        return fy_ucx_status(st);
    }
    r->addr = d->addr;
    r->len = d->len;
    if (type == FERRY_MEM_DRAM) {
        r->next = u->dram;
        u->dram = r;
    }
    *region = r;
    return FERRY_OK;
}

void fy_ucx_dereg(void *priv, void *region)
{
    fy_ucx_amt_drain(priv); /* answers to reads may still read it */
    fy_ucx_dram_unlist(priv, region);
    fy_ucx_unmap(priv, region);
    free(region);
}

/* At fini: allocations whose release was deferred (the core freed them all). */
void fy_ucx_allocs_fini(fy_ucx *u)
{
    while (u->allocs) {
        fy_ucx_alloc *a = u->allocs;
        u->allocs = a->next;
        ucp_mem_unmap(u->ctx, a->memh);
        free(a);
    }
}
