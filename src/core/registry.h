/* SPDX-License-Identifier: Apache-2.0 */
/* The memory registry (registry.c): local regions per memory type. */
#ifndef FY_CORE_REGISTRY_H
#define FY_CORE_REGISTRY_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/index.h"
#include "ferry/agent.h"
#include "ferry/mem.h"

/* One backend's part of a region (local or remote). */
typedef struct fy_be_slot {
    uint32_t be; /* backend index */
    void *priv;  /* backend's region/rregion state */
    void *pub;   /* local regions: public bytes for peers (malloc'd) */
    uint32_t pub_len;
    uint64_t pub_hash; /* remote regions: hash of the key bytes they were loaded from */
} fy_be_slot;

typedef struct fy_region {
    fy_range range; /* its key in the registry's index */
    ferry_mem_type type;
    atomic_uint refs;   /* registry + prepared lists + requests */
    uint32_t reg_count; /* identical registrations */
    uint32_t backend_mask;
    uint32_t num_slots;
    fy_be_slot *slots;
    uint8_t *meta;
    uint32_t meta_len;
    ferry_agent *agent;
} fy_region;

static inline fy_region *fy_region_of(fy_range *r)
{
    return r ? FY_CONTAINER(r, fy_region, range) : NULL;
}

typedef struct fy_registry {
    fy_index by_type[FERRY_MEM_TYPE_COUNT];
    uint64_t bytes[FERRY_MEM_TYPE_COUNT];
    uint64_t regions[FERRY_MEM_TYPE_COUNT];
} fy_registry;

/* The local region covering [addr, addr+len) of dev_id, or NULL (no ref
 * taken; the caller holds the agent's lock). */
fy_region *fy_region_find(const fy_registry *reg, ferry_mem_type type, uint64_t addr, uint64_t len,
                          uint64_t dev_id);
void fy_region_ref(fy_region *r);
void fy_region_unref(fy_region *r);
void *fy_slot_priv(const fy_be_slot *slots, uint32_t n, uint32_t be);
void fy_registry_clear(ferry_agent *agent);

#endif
