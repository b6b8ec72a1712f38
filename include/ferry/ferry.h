/* SPDX-License-Identifier: Apache-2.0 */
/* ferry: moving KV-cache blocks and tensors for distributed inference.
 * Umbrella header. */
#ifndef FERRY_H
#define FERRY_H

#define FERRY_VERSION_MAJOR        0
#define FERRY_VERSION_MINOR        1
#define FERRY_VERSION_PATCH        0
#define FERRY_VERSION_NUM(a, b, c) (((a) << 16) | ((b) << 8) | (c))
#define FERRY_VERSION                                                                              \
    FERRY_VERSION_NUM(FERRY_VERSION_MAJOR, FERRY_VERSION_MINOR, FERRY_VERSION_PATCH)

#include "ferry/agent.h"
#include "ferry/log.h"
#include "ferry/mem.h"
#include "ferry/metadata.h"
#include "ferry/notif.h"
#include "ferry/status.h"
#include "ferry/telemetry.h"
#include "ferry/xfer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the library loaded at run time (FERRY_VERSION_NUM form) and
 * as a string. */
unsigned ferry_version(void);
const char *ferry_version_string(void);

#ifdef __cplusplus
}
#endif
#endif
