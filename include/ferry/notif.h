/* SPDX-License-Identifier: Apache-2.0 */
/* Notifications: small messages delivered to an agent after the data of the
 * transfer that carries them is visible there, or sent alone. At most once,
 * not ordered across transfers, queued per agent in a bounded queue. */
#ifndef FERRY_NOTIF_H
#define FERRY_NOTIF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/agent.h"
#include "ferry/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest notification message, bytes. */
#define FERRY_NOTIF_MAX_LEN (64u * 1024u)

/* A batch of notifications taken from the queue, oldest first. */
typedef struct ferry_notif_batch ferry_notif_batch;

/* Sends msg alone to remote_agent through a backend with notification
 * support (sel to choose). Returns OK, INVALID_PARAM (NULL, too long),
 * NOT_FOUND (unknown or invalidated agent, or no backend), REMOTE_DISCONNECT,
 * BACKEND. */
ferry_status ferry_notif_send(ferry_agent *agent, const char *remote_agent, const void *msg,
                              size_t len, const ferry_backend_sel *sel);

/* Takes every queued notification (from remote_agent only, when not NULL).
 * *out is NULL-safe to free; an empty batch is OK with count 0. */
ferry_status ferry_notif_take(ferry_agent *agent, const char *remote_agent,
                              ferry_notif_batch **out);
size_t ferry_notif_batch_count(const ferry_notif_batch *batch);
/* Entry i: sender name and message, valid until the batch is freed. */
ferry_status ferry_notif_batch_get(const ferry_notif_batch *batch, size_t i,
                                   const char **remote_agent, const void **msg, size_t *len);
void ferry_notif_batch_free(ferry_notif_batch *batch);

/* Looks for one queued notification from remote_agent equal to tag (or
 * starting with it when prefix), removes it and returns OK; NOT_FOUND when
 * none is queued. Like NIXL's check_remote_xfer_done. */
ferry_status ferry_notif_take_tag(ferry_agent *agent, const char *remote_agent, const void *tag,
                                  size_t tag_len, bool prefix);

/* Notifications dropped because the queue was full, since creation. */
uint64_t ferry_notif_dropped(const ferry_agent *agent);

#ifdef __cplusplus
}
#endif
#endif
