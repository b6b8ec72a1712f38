/* SPDX-License-Identifier: Apache-2.0 */
/* Handle lists: what ferry_agent_destroy releases that its caller did not. */
#include "core/hlist.h"

void fy_hlist_init(fy_hlist *l)
{
    pthread_mutex_init(&l->mu, NULL);
    l->head.next = l->head.prev = &l->head;
}

void fy_hlist_fini(fy_hlist *l)
{
    pthread_mutex_destroy(&l->mu);
}

void fy_hlist_add(fy_hlist *l, fy_link *node)
{
    pthread_mutex_lock(&l->mu);
    node->next = l->head.next;
    node->prev = &l->head;
    l->head.next->prev = node;
    l->head.next = node;
    pthread_mutex_unlock(&l->mu);
}

void fy_hlist_del(fy_hlist *l, fy_link *node)
{
    pthread_mutex_lock(&l->mu);
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->next = node->prev = node;
    pthread_mutex_unlock(&l->mu);
}

fy_link *fy_hlist_first(fy_hlist *l)
{
    pthread_mutex_lock(&l->mu);
    fy_link *node = l->head.next == &l->head ? NULL : l->head.next;
    pthread_mutex_unlock(&l->mu);
    return node;
}
