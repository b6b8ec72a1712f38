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
#include <stdint.h>

#include "ferry/plugin.h"

#define FYP_SELF_INFO_LEN 20u

/* Our info, FYP_SELF_INFO_LEN bytes written to out (a prefix of a longer
 * blob that must name this agent instance too). */
void fyp_self_put(const ferry_plugin_host *host, const char magic[4], void *out);

/* Our info, malloc'd into *info (the core frees it). */
ferry_status fyp_self_info(const ferry_plugin_host *host, const char magic[4], void **info,
                           size_t *len);

/* Whether info is exactly ours: the same agent instance in this process. */
bool fyp_self_info_is(const ferry_plugin_host *host, const char magic[4], const void *info,
                      size_t len);

/* remote_load of a backend that reaches nobody but itself: when info is
 * exactly ours (and uid our agent's), *remote becomes a handle naming owner
 * (the backend); any other agent, even in this process, is NOT_SUPPORTED
 * (logged at debug: not an error, the agent is simply not served here). */
ferry_status fyp_self_remote_load(const ferry_plugin_host *host, const char magic[4],
                                  const void *owner, const char *name, uint64_t uid,
                                  const void *info, size_t len, void **remote);

/* Whether remote came from fyp_self_remote_load for owner. */
bool fyp_self_remote_is(const void *remote, const void *owner);

/* remote_unload of those handles (fits the op's signature). */
void fyp_self_remote_unload(void *priv, void *remote);

#endif
