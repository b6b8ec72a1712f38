/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's lock (sync.c), in the mode ferry_sync_mode chose. */
#ifndef FY_CORE_SYNC_H
#define FY_CORE_SYNC_H

#include <pthread.h>
#include <stdbool.h>

#include "ferry/agent.h"

typedef struct fy_lock {
    ferry_sync_mode mode;
    pthread_rwlock_t rw;
    pthread_mutex_t mu;
} fy_lock;
void fy_lock_init(fy_lock *l, ferry_sync_mode mode);
void fy_lock_fini(fy_lock *l);
void fy_lock_rd(fy_lock *l);
void fy_lock_wr(fy_lock *l);
void fy_unlock(fy_lock *l, bool writer);
/* Hot-path lock: nothing in RW/NONE mode (request state is per request and
 * shared objects are refcounted), the mutex in STRICT mode. */
void fy_hot_enter(fy_lock *l);
void fy_hot_leave(fy_lock *l);

#endif
