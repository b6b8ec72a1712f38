/* SPDX-License-Identifier: Apache-2.0 */
/* Plugin support: connection info that names this agent instance in this
 * process, for backends that reach nobody but themselves (loopback).
 *
 * 20 bytes, little endian: the plugin's 4-byte magic, format version 1
 * (u32), the agent uid (u64), the pid (u32). The uid tells agents apart;
 * the pid tells a fork()ed child (same uid, copied memory, a different
 * address space) from its parent. */
#ifndef FYP_SELF_H
#define FYP_SELF_H

#include <stdbool.h>
#include <stddef.h>

#include "ferry/plugin.h"

#define FYP_SELF_INFO_LEN 20u

/* Our info, malloc'd into *info (the core frees it). */
ferry_status fyp_self_info(const ferry_plugin_host *host, const char magic[4], void **info,
                           size_t *len);

/* Whether info is exactly ours: the same agent instance in this process. */
bool fyp_self_info_is(const ferry_plugin_host *host, const char magic[4], const void *info,
                      size_t len);

#endif
