/* SPDX-License-Identifier: Apache-2.0 */
/* The notification queue: a bounded FIFO per agent under one mutex,
 * filled by backends through the host callback, drained per sender. */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "core/notif_queue.h"

void fy_notif_queue_init(fy_notif_queue *q, size_t cap, const char *agent)
{
    memset(q, 0, sizeof(*q));
    pthread_mutex_init(&q->mu, NULL);
    q->cap = cap;
    q->agent = agent;
}

void fy_notif_free(fy_notif *n)
{
    free(n);
}

void fy_notif_queue_fini(fy_notif_queue *q)
{
    for (fy_notif *n = q->head, *next; n; n = next) {
        next = n->next;
        fy_notif_free(n);
    }
    pthread_mutex_destroy(&q->mu);
}

/* One allocation: header, sender name, message. */
static fy_notif *fy_notif_new(const char *from, const void *msg, size_t len)
{
    size_t from_len = strlen(from) + 1;
    fy_notif *n = malloc(sizeof(*n) + from_len + len);
    if (!n)
        return NULL;
    n->next = NULL;
    n->len = len;
    n->from = (char *)(n + 1);
    n->msg = (uint8_t *)n->from + from_len;
    memcpy(n->from, from, from_len);
    if (len)
        memcpy(n->msg, msg, len);
    return n;
}

static bool fy_notif_push(fy_notif_queue *q, fy_notif *n)
{
    pthread_mutex_lock(&q->mu);
    bool room = q->count < q->cap;
    if (room) {
        if (q->tail)
            q->tail->next = n;
        else
            q->head = n;
        q->tail = n;
        q->count++;
    }
    pthread_mutex_unlock(&q->mu);
    return room;
}

bool fy_notif_queue_put(fy_notif_queue *q, const char *from, const void *msg, size_t len)
{
    fy_notif *n = from ? fy_notif_new(from, msg, len) : NULL;
    if (n && fy_notif_push(q, n)) {
        atomic_fetch_add_explicit(&q->received, 1, memory_order_relaxed);
        return true;
    }
    fy_notif_free(n);
    /* Counted, never silent: log the first drop and every 1024th after. */
    uint64_t dropped = atomic_fetch_add_explicit(&q->dropped, 1, memory_order_relaxed);
    if (dropped % 1024 == 0)
        fy_log(FERRY_LOG_WARN, "notif", "agent %s: notification queue full (%zu), %llu dropped",
               q->agent, q->cap, (unsigned long long)dropped + 1);
    return false;
}

size_t fy_notif_unlink(fy_notif_queue *q, fy_notif_match match, const void *arg, fy_notif **out,
                       size_t max)
{
    size_t k = 0;
    fy_notif **link = &q->head, *prev = NULL;
    while (*link && k < max) {
        fy_notif *n = *link;
        if (match && !match(n, arg)) {
            prev = n;
            link = &n->next;
            continue;
        }
        *link = n->next;
        if (q->tail == n)
            q->tail = prev;
        q->count--;
        out[k++] = n;
    }
    return k;
}
