/* SPDX-License-Identifier: Apache-2.0 */
/* The registry of live handles: every agent, backend, prepared list and
 * request the library handed out and has not freed yet, keyed by address
 * and kind. Public entry points look a handle up here before they touch
 * it, so a released request, a prepared list released twice or a handle
 * of a destroyed agent is refused (FERRY_ERR_INVALID_PARAM and one log
 * line) instead of being read after free. The lookup never dereferences
 * the handle: it compares addresses only.
 *
 * Process-wide (Python and other callers pass handles between agents and
 * threads), split into shards by address so that threads working on
 * different handles rarely meet on one lock. Each shard is a small
 * open-addressing table under its own mutex; removal leaves a tombstone,
 * and the table is rebuilt (tombstones dropped) when live keys plus
 * tombstones would pass half of it, so a probe always ends at an empty
 * slot and memory follows the number of live handles.
 *
 * The hot path (post and status of one request, over and over) would pay a
 * lock per call; instead each thread remembers a few handles it found live
 * together with their shard's removal epoch, which every removal advances
 * before the handle is freed. A remembered handle whose shard saw no
 * removal since is still live: one load instead of a lock. A release on
 * another thread that happened before this call (the only order in which
 * the API lets a handle change hands) is seen through that load.
 *
 * A handle is known by its address: once its memory is reused for a new
 * handle of the same kind, the old pointer names the new handle. So that
 * this does not happen right away (malloc hands a block just freed to the
 * next allocation of its size), the memory of a freed handle waits in a
 * ring of the last FY_H_QUARANTINE freed ones before it goes back. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/log.h"
#include "core/handles.h"
#include "ferry/ferry.h"

#define FY_H_SHARDS     64u /* a power of two */
#define FY_H_MIN_CAP    16u
#define FY_H_EMPTY      ((uintptr_t)0)
#define FY_H_TOMB       ((uintptr_t)1) /* no key: keys have an address above 0 */
#define FY_H_CACHED     8u             /* handles each thread remembers (a power of two) */
#define FY_H_QUARANTINE 256u           /* freed handles held back from reuse */

/* Keys carry the kind in the low bits, free in any malloc'd address. */
_Static_assert(_Alignof(max_align_t) >= 8, "kind bits need 8-byte aligned handles");

typedef struct fy_hshard {
    _Alignas(64) pthread_mutex_t mu; /* a cache line each: shards do not share */
    atomic_uint_fast64_t epoch;      /* removals so far: advanced under mu */
    uintptr_t *keys;
    size_t cap, live, used; /* used: live keys + tombstones */
} fy_hshard;

#define FY_H_SHARD_INIT                                                                            \
    {                                                                                              \
        .mu = PTHREAD_MUTEX_INITIALIZER                                                            \
    }
#define FY_H_4  FY_H_SHARD_INIT, FY_H_SHARD_INIT, FY_H_SHARD_INIT, FY_H_SHARD_INIT
#define FY_H_16 FY_H_4, FY_H_4, FY_H_4, FY_H_4
static fy_hshard fy_hshards[FY_H_SHARDS] = {FY_H_16, FY_H_16, FY_H_16, FY_H_16};
_Static_assert(FY_H_SHARDS == 64, "one initializer per shard");

/* A handle this thread found live, and its shard's epoch at that time. */
typedef struct fy_hseen {
    uintptr_t key;
    uint_fast64_t epoch;
} fy_hseen;
static _Thread_local fy_hseen fy_h_seen[FY_H_CACHED];

static const char *const fy_hkind_names[] = {"", "agent", "backend", "prepared list", "request"};

/* Fibonacci hashing: the top bits pick the shard, the next ones the slot. */
static uint64_t fy_h_hash(uintptr_t key)
{
    return (uint64_t)(key >> 3) * 0x9e3779b97f4a7c15ull;
}

static fy_hshard *fy_h_shard(uint64_t hash)
{
    return &fy_hshards[hash >> 58 & (FY_H_SHARDS - 1)];
}

/* The slot holding key, or SIZE_MAX. Shard locked. */
static size_t fy_h_find(const fy_hshard *s, uintptr_t key, uint64_t hash)
{
    if (!s->cap)
        return SIZE_MAX;
    for (size_t i = (size_t)(hash >> 20) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (s->keys[i] == key)
            return i;
        if (s->keys[i] == FY_H_EMPTY)
            return SIZE_MAX;
    }
}

/* Puts key into the first free slot of its probe (a tombstone is reused).
 * Shard locked, at least one empty slot. */
static void fy_h_put(fy_hshard *s, uintptr_t key, uint64_t hash)
{
    size_t i = (size_t)(hash >> 20) & (s->cap - 1);
    while (s->keys[i] != FY_H_EMPTY && s->keys[i] != FY_H_TOMB)
        i = (i + 1) & (s->cap - 1);
    s->used += s->keys[i] == FY_H_EMPTY;
    s->keys[i] = key;
    s->live++;
}

/* Rebuilds the table for one more key: at most a quarter full afterwards,
 * no tombstones. Shard locked. */
static ferry_status fy_h_rebuild(fy_hshard *s)
{
    size_t cap = FY_H_MIN_CAP;
    while (cap < 4 * (s->live + 1))
        cap *= 2;
    uintptr_t *old = s->keys;
    size_t old_cap = s->cap;
    s->keys = calloc(cap, sizeof(*s->keys));
    if (!s->keys) {
        s->keys = old;
        return FERRY_ERR_NO_MEMORY;
    }
    s->cap = cap;
    s->live = s->used = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i] != FY_H_EMPTY && old[i] != FY_H_TOMB)
            fy_h_put(s, old[i], fy_h_hash(old[i]));
    free(old);
    return FERRY_OK;
}

ferry_status fy_handle_add(const void *h, fy_hkind kind)
{
    uintptr_t key = (uintptr_t)h | (uintptr_t)kind;
    uint64_t hash = fy_h_hash(key);
    fy_hshard *s = fy_h_shard(hash);
    ferry_status rc = FERRY_OK;
    pthread_mutex_lock(&s->mu);
    if (2 * (s->used + 1) > s->cap)
        rc = fy_h_rebuild(s);
    if (rc == FERRY_OK)
        fy_h_put(s, key, hash);
    pthread_mutex_unlock(&s->mu);
    if (rc != FERRY_OK)
        FY_ERR("no memory to record a new %s", fy_hkind_names[kind]);
    return rc;
}

static fy_hseen *fy_h_seen_slot(uint64_t hash)
{
    return &fy_h_seen[(hash >> 8) & (FY_H_CACHED - 1)];
}

/* Looks h up and, when remove is set, takes it out (advancing the epoch
 * before anyone can free it). Remembers a live handle it keeps. */
static bool fy_h_lookup(uintptr_t key, uint64_t hash, bool remove)
{
    fy_hshard *s = fy_h_shard(hash);
    pthread_mutex_lock(&s->mu);
    size_t i = fy_h_find(s, key, hash);
    if (i != SIZE_MAX && remove) {
        s->keys[i] = FY_H_TOMB;
        s->live--;
        atomic_fetch_add_explicit(&s->epoch, 1, memory_order_release);
    } else if (i != SIZE_MAX) {
        *fy_h_seen_slot(hash) =
            (fy_hseen){key, atomic_load_explicit(&s->epoch, memory_order_relaxed)};
    }
    pthread_mutex_unlock(&s->mu);
    return i != SIZE_MAX;
}

/* Remembered live, and no removal in its shard since: live still. */
static bool fy_h_seen_live(uintptr_t key, uint64_t hash)
{
    const fy_hseen *seen = fy_h_seen_slot(hash);
    return seen->key == key &&
           seen->epoch == atomic_load_explicit(&fy_h_shard(hash)->epoch, memory_order_acquire);
}

static bool fy_h_checked(const void *h, fy_hkind kind, const char *fn, bool remove)
{
    if (!h)
        return false; /* the caller's own NULL check reports it */
    uintptr_t key = (uintptr_t)h | (uintptr_t)kind;
    uint64_t hash = fy_h_hash(key);
    if ((!remove && fy_h_seen_live(key, hash)) || fy_h_lookup(key, hash, remove))
        return true;
    FY_ERR("%s: %p is not a live %s (released, or its agent was destroyed)", fn, h,
           fy_hkind_names[kind]);
    return false;
}

bool fy_handle_ok(const void *h, fy_hkind kind, const char *fn)
{
    return fy_h_checked(h, kind, fn, false);
}

bool fy_handle_del(const void *h, fy_hkind kind, const char *fn)
{
    return fy_h_checked(h, kind, fn, true);
}

static _Atomic(void *) fy_h_quarantine[FY_H_QUARANTINE];
static atomic_uint fy_h_quarantine_next;

/* Lock-free: each call takes its own slot and frees what it pushes out. */
void fy_handle_free(void *h)
{
    unsigned i = atomic_fetch_add_explicit(&fy_h_quarantine_next, 1, memory_order_relaxed);
    free(atomic_exchange_explicit(&fy_h_quarantine[i % FY_H_QUARANTINE], h, memory_order_acq_rel));
}
