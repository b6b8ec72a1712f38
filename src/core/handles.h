/* SPDX-License-Identifier: Apache-2.0 */
/* Live handles (handles.c): checked before any public entry point touches
 * a handle. */
#ifndef FY_CORE_HANDLES_H
#define FY_CORE_HANDLES_H

#include <stdbool.h>

#include "ferry/status.h"

typedef enum fy_hkind {
    FY_H_AGENT = 1,
    FY_H_BACKEND = 2,
    FY_H_PREPPED = 3,
    FY_H_XFER = 4
} fy_hkind;
/* Records a new handle. OK or NO_MEMORY. */
ferry_status fy_handle_add(const void *h, fy_hkind kind);
/* Is h a live handle of that kind? NULL: false, silently; a dead handle:
 * false and one log line naming fn. */
bool fy_handle_ok(const void *h, fy_hkind kind, const char *fn);
/* The same, and forgets h when it was live (its release). */
bool fy_handle_del(const void *h, fy_hkind kind, const char *fn);
/* free() for the memory of a handle (agent, backend, prepared list,
 * request), deferred: see handles.c. */
void fy_handle_free(void *h);
#define FY_AGENT_OK(a)   fy_handle_ok((a), FY_H_AGENT, __func__)
#define FY_BACKEND_OK(b) fy_handle_ok((b), FY_H_BACKEND, __func__)
#define FY_PREPPED_OK(p) fy_handle_ok((p), FY_H_PREPPED, __func__)
#define FY_XFER_OK(x)    fy_handle_ok((x), FY_H_XFER, __func__)

#endif
