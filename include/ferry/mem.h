/* SPDX-License-Identifier: Apache-2.0 */
/* Memory types, descriptors, descriptor lists and registration. */
#ifndef FERRY_MEM_H
#define FERRY_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ferry_agent ferry_agent;
typedef struct ferry_backend ferry_backend;

typedef enum ferry_mem_type {
    FERRY_MEM_DRAM = 0,  /* host memory: addr is a virtual address */
    FERRY_MEM_VRAM = 1,  /* GPU memory: addr + GPU index in dev_id */
    FERRY_MEM_FILE = 2,  /* file: addr is an offset, dev_id the fd */
    FERRY_MEM_BLOCK = 3, /* block volume: offset + volume id */
    FERRY_MEM_OBJ = 4,   /* object: offset + key index */
} ferry_mem_type;
#define FERRY_MEM_TYPE_COUNT 5
#define FERRY_MEM_MASK(t)    (1u << (t))

/* Name of a memory type ("DRAM", ...) or NULL when out of range. */
const char *ferry_mem_type_name(ferry_mem_type type);
/* Parses "DRAM"/"VRAM"/"FILE"/"BLOCK"/"OBJ" (and "cpu", "cuda", "gpu"), any
 * case. NOT_FOUND for other names. */
ferry_status ferry_mem_type_parse(const char *name, ferry_mem_type *type);

typedef struct ferry_desc {
    uint64_t addr;   /* address or offset */
    uint64_t len;    /* bytes */
    uint64_t dev_id; /* GPU index, fd, volume id or key index */
} ferry_desc;

/* A descriptor list: a memory type and descriptors, either plain (an array,
 * each entry optionally carrying metadata bytes such as a file path or object
 * key) or strided (base, stride, count, len: never materialised).
 * Not thread-safe for concurrent modification; concurrent reads are fine. */
typedef struct ferry_dlist ferry_dlist;

/* Creates an empty plain list; capacity is a hint (0 is fine). */
ferry_status ferry_dlist_create(ferry_mem_type type, size_t capacity, ferry_dlist **out);
/* Creates a strided list: descriptor i = {base + i*stride, len, dev_id}. */
ferry_status ferry_dlist_create_strided(ferry_mem_type type, uint64_t base, uint64_t stride,
                                        size_t count, uint64_t len, uint64_t dev_id,
                                        ferry_dlist **out);
void ferry_dlist_destroy(ferry_dlist *list);

/* Appends to a plain list (FERRY_ERR_NOT_ALLOWED on a strided one). meta may
 * be NULL with meta_len 0; it is copied. len must be > 0. */
ferry_status ferry_dlist_add(ferry_dlist *list, uint64_t addr, uint64_t len, uint64_t dev_id);
ferry_status ferry_dlist_add_meta(ferry_dlist *list, uint64_t addr, uint64_t len, uint64_t dev_id,
                                  const void *meta, size_t meta_len);
/* Appends n descriptors from an array (no metadata). */
ferry_status ferry_dlist_add_array(ferry_dlist *list, const ferry_desc *descs, size_t n);

size_t ferry_dlist_count(const ferry_dlist *list);
ferry_mem_type ferry_dlist_mem_type(const ferry_dlist *list);
int ferry_dlist_is_strided(const ferry_dlist *list);
/* Descriptor i (FERRY_ERR_INVALID_PARAM when out of range). */
ferry_status ferry_dlist_get(const ferry_dlist *list, size_t i, ferry_desc *out);
/* Metadata bytes of entry i (NULL/0 when none). Valid until the list is
 * modified or destroyed. */
ferry_status ferry_dlist_get_meta(const ferry_dlist *list, size_t i, const void **meta,
                                  size_t *meta_len);

/* Serialises a list to bytes (same wire conventions as agent metadata) and
 * back; used to ship descriptor lists between processes. Free *buf with
 * ferry_free(). */
ferry_status ferry_dlist_serialize(const ferry_dlist *list, void **buf, size_t *len);
ferry_status ferry_dlist_deserialize(const void *buf, size_t len, ferry_dlist **out);

/* Options for registration and for choosing backends elsewhere. */
typedef struct ferry_backend_sel {
    size_t size;                    /* sizeof(ferry_backend_sel) */
    ferry_backend *const *backends; /* NULL: all backends that accept the type */
    size_t num_backends;
} ferry_backend_sel;
void ferry_backend_sel_init(ferry_backend_sel *sel);

/* Registers every descriptor of list as a region with the chosen backends
 * (all that accept the memory type when sel is NULL or empty; then a
 * backend that cannot serve one region, answering NOT_SUPPORTED, is passed
 * over for it while another holds it). Atomic: on error nothing stays
 * registered. A region identical to a registered one
 * (type, dev_id, addr, len) counts one more registration (deregister it as
 * often) and gains the backends it lacked; a region overlapping a registered
 * one otherwise, or another descriptor of the same list, is refused
 * (NOT_ALLOWED), so lookups stay unambiguous.
 * Returns OK, INVALID_PARAM, NOT_FOUND (no backend accepts the type),
 * NOT_ALLOWED (overlap), NO_RESOURCES (ledger cap), NO_MEMORY, or the
 * backend's registration error. */
ferry_status ferry_register(ferry_agent *agent, const ferry_dlist *list,
                            const ferry_backend_sel *sel);

/* Deregisters regions. Each descriptor must match a registered region
 * exactly (same type, dev_id, addr, len): partial deregistration of a region
 * is refused with FERRY_ERR_NOT_FOUND, and nothing is deregistered then.
 * Prepared lists and requests keep the regions they use alive: memory
 * deregistered while they cover it leaves the registry (new preps fail, the
 * ledger no longer counts it) but stays mapped in the backends until the
 * last of them is released.
 * With sel, only those backends drop the region (at once; refused with
 * NOT_ALLOWED while prepared lists or requests use the region); the region
 * leaves the registry when no backend holds it.
 * Returns OK, INVALID_PARAM, NOT_FOUND, NOT_ALLOWED. */
ferry_status ferry_deregister(ferry_agent *agent, const ferry_dlist *list,
                              const ferry_backend_sel *sel);

/* Allocates len bytes of memory of `type` (dev_id: GPU index for VRAM)
 * from a backend that can hand out memory it moves best: with UCX, memory
 * UCX maps itself, which peers on the same host then read and write as
 * shared memory instead of through messages. With backend NULL, the first
 * backend (in creation order) that can allocate that type does. The memory
 * is not registered: register it (whole or in parts) like any other.
 * Returns OK, INVALID_PARAM, NOT_SUPPORTED (no backend allocates the type),
 * NO_MEMORY, or the backend's error. */
ferry_status ferry_mem_alloc(ferry_agent *agent, ferry_backend *backend, ferry_mem_type type,
                             uint64_t len, uint64_t dev_id, void **addr);
/* Frees memory from ferry_mem_alloc. Refused with NOT_ALLOWED while a
 * registered region lies inside it (deregister first); NOT_FOUND when addr
 * is not the start of an allocation of this agent. Allocations left at
 * ferry_agent_destroy are freed there. */
ferry_status ferry_mem_free(ferry_agent *agent, void *addr);

/* Host-memory ledger: bytes and regions registered per memory type. */
typedef struct ferry_mem_usage {
    size_t size; /* sizeof(ferry_mem_usage) */
    uint64_t bytes[FERRY_MEM_TYPE_COUNT];
    uint64_t regions[FERRY_MEM_TYPE_COUNT];
} ferry_mem_usage;
void ferry_mem_usage_init(ferry_mem_usage *usage);
ferry_status ferry_mem_usage_get(ferry_agent *agent, ferry_mem_usage *usage);

/* What ferry_query_mem found for one descriptor. */
typedef struct ferry_mem_info {
    size_t size; /* sizeof(ferry_mem_info) */
    bool found;  /* DRAM/VRAM: one registered region covers the whole descriptor
                  * (held by the backend queried); FILE: the file exists */
    /* DRAM, VRAM (when found): that region; dev_id is the GPU index for VRAM. */
    uint64_t region_addr, region_len, dev_id;
    /* FILE (when found): stat() of the path in the descriptor's metadata;
     * OBJ: file_size is the object's size. */
    uint64_t file_size;
    uint32_t file_mode; /* st_mode */
    int64_t file_mtime; /* seconds since the epoch */
} ferry_mem_info;
void ferry_mem_info_init(ferry_mem_info *info);

/* Queries what the descriptors of list name, one answer per descriptor
 * (NIXL's queryMem): DRAM/VRAM: whether a registered region covers it;
 * FILE: whether the file named in its metadata exists, its size, mode and
 * mtime; OBJ: whether the object named in its metadata (its key) exists and
 * its size (file_size), asked of the store by a backend that can (OBJ: an S3
 * HEAD; this may block, bounded by the backend's timeouts). With backend, only memory types that
 * backend accepts are answered and only regions it holds count; NULL asks the agent (any backend).
 * infos has count entries (count == ferry_dlist_count(list)), initialised
 * with ferry_mem_info_init; they are written only on success. A descriptor
 * not found is no error (found = false).
 * Returns OK, INVALID_PARAM (NULL agent/list, count mismatch, size too
 * small, backend of another agent), NOT_SUPPORTED (BLOCK, OBJ without a
 * backend that answers for it, or a type the backend does not accept),
 * NO_MEMORY, and for OBJ the backend's error (AUTH, REMOTE_DISCONNECT,
 * TIMEOUT, BACKEND). */
ferry_status ferry_query_mem(ferry_agent *agent, const ferry_dlist *list,
                             const ferry_backend *backend, ferry_mem_info *infos, size_t count);

/* Frees memory that ferry returned to the caller (blobs, strings). */
void ferry_free(void *ptr);

#ifdef __cplusplus
}
#endif
#endif
