/* SPDX-License-Identifier: Apache-2.0 */
/* Lists of the handles an agent hands out and frees at destroy (hlist.c):
 * prepared lists and requests embed an fy_link. */
#ifndef FY_CORE_HLIST_H
#define FY_CORE_HLIST_H

#include <pthread.h>

typedef struct fy_link {
    struct fy_link *prev, *next;
} fy_link;

/* A circular list under its own mutex (a leaf lock: nothing is taken
 * while it is held). */
typedef struct fy_hlist {
    pthread_mutex_t mu;
    fy_link head;
} fy_hlist;

void fy_hlist_init(fy_hlist *l);
void fy_hlist_fini(fy_hlist *l);
void fy_hlist_add(fy_hlist *l, fy_link *node);
void fy_hlist_del(fy_hlist *l, fy_link *node);
/* The first node, left in the list, or NULL when empty. */
fy_link *fy_hlist_first(fy_hlist *l);

#endif
