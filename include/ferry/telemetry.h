/* SPDX-License-Identifier: Apache-2.0 */
/* Agent-wide counters. */
#ifndef FERRY_TELEMETRY_H
#define FERRY_TELEMETRY_H

#include <stddef.h>
#include <stdint.h>

#include "ferry/agent.h"
#include "ferry/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ferry_counters {
    size_t size;          /* sizeof(ferry_counters) */
    uint64_t tx_bytes;    /* bytes written by this agent's requests */
    uint64_t rx_bytes;    /* bytes read by this agent's requests */
    uint64_t tx_requests; /* WRITE posts */
    uint64_t rx_requests; /* READ posts */
    uint64_t xfer_errors; /* requests ended with an error */
    uint64_t notifs_received;
    uint64_t notifs_dropped;
    uint64_t mem_registered; /* bytes currently registered */
    uint64_t regions;        /* regions currently registered */
    /* Side-channel frames and metadata blobs refused for a missing or wrong
     * MAC, a timestamp outside the window, or a replayed nonce. */
    uint64_t auth_failures;
} ferry_counters;
void ferry_counters_init(ferry_counters *counters);
/* Fills the fields that counters->size covers (a caller built against an
 * older header gets its fields). INVALID_PARAM when size is too small for
 * the first version's fields. */
ferry_status ferry_counters_get(ferry_agent *agent, ferry_counters *counters);

#ifdef __cplusplus
}
#endif
#endif
