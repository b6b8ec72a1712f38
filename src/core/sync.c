/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's lock: a reader/writer lock (FERRY_SYNC_RW), one mutex for
 * everything (FERRY_SYNC_STRICT), or nothing (FERRY_SYNC_NONE: the caller
 * serialises). Who takes it and in which order: docs/api/agent.md. */
#include "core/sync.h"

void fy_lock_init(fy_lock *l, ferry_sync_mode mode)
{
    l->mode = mode;
    pthread_rwlock_init(&l->rw, NULL);
    pthread_mutex_init(&l->mu, NULL);
}

void fy_lock_fini(fy_lock *l)
{
    pthread_rwlock_destroy(&l->rw);
    pthread_mutex_destroy(&l->mu);
}

void fy_lock_rd(fy_lock *l)
{
    if (l->mode == FERRY_SYNC_RW)
        pthread_rwlock_rdlock(&l->rw);
    else if (l->mode == FERRY_SYNC_STRICT)
        pthread_mutex_lock(&l->mu);
}

void fy_lock_wr(fy_lock *l)
{
    if (l->mode == FERRY_SYNC_RW)
        pthread_rwlock_wrlock(&l->rw);
    else if (l->mode == FERRY_SYNC_STRICT)
        pthread_mutex_lock(&l->mu);
}

void fy_unlock(fy_lock *l, bool writer)
{
    (void)writer;
    if (l->mode == FERRY_SYNC_RW)
        pthread_rwlock_unlock(&l->rw);
    else if (l->mode == FERRY_SYNC_STRICT)
        pthread_mutex_unlock(&l->mu);
}

void fy_hot_enter(fy_lock *l)
{
    if (l->mode == FERRY_SYNC_STRICT)
        pthread_mutex_lock(&l->mu);
}

void fy_hot_leave(fy_lock *l)
{
    if (l->mode == FERRY_SYNC_STRICT)
        pthread_mutex_unlock(&l->mu);
}
