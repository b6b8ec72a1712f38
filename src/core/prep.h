/* SPDX-License-Identifier: Apache-2.0 */
/* Prepared lists (prep.c): descriptor lists checked once against the
 * registry or a remote's regions. */
#ifndef FY_CORE_PREP_H
#define FY_CORE_PREP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/hlist.h"
#include "core/registry.h"
#include "core/remote.h"
#include "ferry/xfer.h"

typedef struct fy_pseg {
    uint64_t addr, len, dev_id;
    void *region; /* fy_region* (local) or fy_rregion* (remote) */
} fy_pseg;

struct ferry_prepped {
    fy_link link; /* in agent->prepped */
    ferry_agent *agent;
    fy_remote *remote; /* NULL: local side */
    ferry_mem_type type;
    size_t count;
    uint32_t backend_mask; /* backends covering every descriptor */
    bool strided;
    fy_pseg stride_seg; /* strided: descriptor 0, region covering all */
    uint64_t stride;
    fy_pseg *segs;    /* plain form */
    fy_region **held; /* distinct local regions referenced */
    size_t num_held;
};
static inline fy_pseg fy_prepped_at(const ferry_prepped *p, size_t i)
{
    if (p->strided) {
        fy_pseg s = p->stride_seg;
        s.addr += i * p->stride;
        return s;
    }
    return p->segs[i];
}
ferry_status fy_prep(ferry_agent *agent, const char *agent_name, const ferry_dlist *list,
                     const ferry_backend_sel *sel, ferry_prepped **out);
void fy_prepped_free(ferry_prepped *p);

#endif
