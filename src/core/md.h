/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's own metadata (md.c): what ferry_md_get_local and the partial
 * calls encode. */
#ifndef FERRY_CORE_MD_H
#define FERRY_CORE_MD_H

#include <stddef.h>

#include "ferry/ferry.h"

/* ferry_md_get_local without the liveness check of the handle: for the
 * side channel's threads, which serve until the agent's destroy has
 * stopped them (the handle is already dead by then, the agent not yet). */
ferry_status fy_md_get_local(ferry_agent *agent, void **blob, size_t *len);

#endif
