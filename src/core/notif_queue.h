/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's notification queue (notif_queue.c): bounded, one mutex,
 * filled by backends, drained by ferry_notif_get (notif.c). */
#ifndef FY_CORE_NOTIF_QUEUE_H
#define FY_CORE_NOTIF_QUEUE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fy_notif {
    struct fy_notif *next;
    size_t len;
    char *from;
    uint8_t *msg;
} fy_notif;

typedef struct fy_notif_queue {
    pthread_mutex_t mu;
    fy_notif *head, *tail;
    size_t count, cap;
    atomic_uint_fast64_t dropped, received;
    const char *agent; /* for log lines */
} fy_notif_queue;

void fy_notif_queue_init(fy_notif_queue *q, size_t cap, const char *agent);
void fy_notif_queue_fini(fy_notif_queue *q);
/* Queues a copy of msg from `from`; a full queue (or no memory) drops it,
 * counted and logged: false. */
bool fy_notif_queue_put(fy_notif_queue *q, const char *from, const void *msg, size_t len);
void fy_notif_free(fy_notif *n);
/* Entries a drain keeps: a predicate (NULL: every entry). */
typedef bool (*fy_notif_match)(const fy_notif *n, const void *arg);
/* Unlinks and returns up to max entries matching `match`, oldest first;
 * the caller holds q->mu. */
size_t fy_notif_unlink(fy_notif_queue *q, fy_notif_match match, const void *arg, fy_notif **out,
                       size_t max);

#endif
