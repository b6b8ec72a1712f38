/* SPDX-License-Identifier: Apache-2.0 */
/* Plugin support: an intrusive doubly-linked list headed by a pointer that
 * starts NULL (a zeroed backend state is an empty list), for the few
 * requests a backend must revisit from progress. Not thread-safe. */
#ifndef FYP_LIST_H
#define FYP_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct fyp_link {
    struct fyp_link *prev, *next;
    bool listed;
} fyp_link;

/* The structure a link is the member `member` of. */
#define FYP_CONTAINER(link, type, member) ((type *)((char *)(link)-offsetof(type, member)))

/* Adds l at the front; a no-op when it is listed already. */
static inline void fyp_list_push(fyp_link **head, fyp_link *l)
{
    if (l->listed)
        return;
    l->prev = NULL;
    l->next = *head;
    if (*head)
        (*head)->prev = l;
    *head = l;
    l->listed = true;
}

/* Takes l out; a no-op when it is not listed. */
static inline void fyp_list_remove(fyp_link **head, fyp_link *l)
{
    if (!l->listed)
        return;
    if (l->prev)
        l->prev->next = l->next;
    else
        *head = l->next;
    if (l->next)
        l->next->prev = l->prev;
    l->prev = l->next = NULL;
    l->listed = false;
}

/* A first-in first-out queue of links (head and tail NULL when empty:
 * zeroed is empty), for requests waiting their turn. */
typedef struct fyp_fifo {
    fyp_link *head, *tail;
} fyp_fifo;

/* Adds l at the tail; a no-op when it is listed already. */
static inline void fyp_fifo_push(fyp_fifo *q, fyp_link *l)
{
    if (l->listed)
        return;
    l->next = NULL;
    l->prev = q->tail;
    if (q->tail)
        q->tail->next = l;
    else
        q->head = l;
    q->tail = l;
    l->listed = true;
}

/* Takes l out wherever it is; a no-op when it is not listed. */
static inline void fyp_fifo_remove(fyp_fifo *q, fyp_link *l)
{
    if (!l->listed)
        return;
    if (l->prev)
        l->prev->next = l->next;
    else
        q->head = l->next;
    if (l->next)
        l->next->prev = l->prev;
    else
        q->tail = l->prev;
    l->prev = l->next = NULL;
    l->listed = false;
}

/* Calls visit on every listed link (it may remove that one, no other);
 * returns how many visits returned true. */
static inline size_t fyp_list_sweep(fyp_link *head, bool (*visit)(fyp_link *l))
{
    size_t n = 0;
    for (fyp_link *l = head, *next; l; l = next) {
        next = l->next;
        n += visit(l);
    }
    return n;
}

#endif
