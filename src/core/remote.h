/* SPDX-License-Identifier: Apache-2.0 */
/* Remote agents (remote.c): loaded metadata, their regions per memory type. */
#ifndef FY_CORE_REMOTE_H
#define FY_CORE_REMOTE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/backend.h"
#include "core/index.h"
#include "core/registry.h"

typedef struct fy_rregion {
    fy_range range; /* its key in the remote's index */
    ferry_mem_type type;
    uint32_t backend_mask;
    uint32_t num_slots;
    fy_be_slot *slots;
    struct fy_rregion *next_retired; /* replaced, kept until the remote goes */
} fy_rregion;

static inline fy_rregion *fy_rregion_of(fy_range *r)
{
    return r ? FY_CONTAINER(r, fy_rregion, range) : NULL;
}

typedef struct fy_remote {
    atomic_uint refs;
    atomic_bool valid; /* cleared by invalidate or replacement */
    char name[FERRY_NAME_MAX + 1];
    uint64_t uid, generation;
    ferry_agent *agent;
    uint32_t backend_mask; /* local backends that loaded this remote */
    void *be_remote[FY_MAX_BACKENDS];
    fy_index by_type[FERRY_MEM_TYPE_COUNT];
    fy_rregion *retired; /* regions replaced by a reload: requests may use them */
} fy_remote;

void fy_remote_ref(fy_remote *r);
void fy_remote_unref(fy_remote *r);
fy_remote *fy_remote_lookup(ferry_agent *agent, const char *name); /* no ref taken */
void fy_remotes_clear(ferry_agent *agent);
/* ferry_md_load for blobs that came from the network (side-channel LOAD):
 * also refuses the agent's own name, whatever the uid (NOT_ALLOWED). */
ferry_status fy_md_load_peer(ferry_agent *agent, const void *blob, size_t len, char *name,
                             size_t name_cap);
/* The uid of a loaded remote (takes the agent's lock for reading):
 * OK or NOT_FOUND. */
ferry_status fy_remote_uid(ferry_agent *agent, const char *name, uint64_t *uid);
/* ferry_md_invalidate without the liveness check of the handle: for the
 * side channel's threads, which serve until the agent's destroy has
 * stopped them (the handle is already dead by then, the agent not yet). */
ferry_status fy_md_invalidate(ferry_agent *agent, const char *remote_agent);

#endif
