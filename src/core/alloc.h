/* SPDX-License-Identifier: Apache-2.0 */
/* Memory that backends allocate for the caller (alloc.c). */
#ifndef FY_CORE_ALLOC_H
#define FY_CORE_ALLOC_H

#include "ferry/agent.h"

/* Frees what ferry_mem_alloc handed out and was never freed. */
void fy_allocs_clear(ferry_agent *agent);

#endif
