/* SPDX-License-Identifier: Apache-2.0 */
/* The issuing threads of the UCX backend (param num_threads).
 *
 * Why: posting a batch of tens of thousands of segments costs one
 * ucp_put_nbx/ucp_get_nbx each, and on transports where the initiator
 * copies (shared memory into a peer's mapping, TCP send buffers) that call
 * is where the bytes move. Splitting a very large batch over threads that
 * each own a UCX worker runs those calls in parallel.
 *
 * A round: the caller publishes one job per thread, runs its own share,
 * and waits until every thread has finished its job. Thread i only ever
 * touches worker i + 1, and only inside a round, while the caller holds the
 * backend (the core serialises every op of this plugin, progress included),
 * so the workers stay single-threaded in UCX's sense. */
#include <pthread.h>
#include <stdlib.h>

#include "ucx_internal.h"

struct fy_ucx_pool {
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    pthread_t *tids;
    unsigned threads, started;
    uint64_t round;   /* bumped to start a round */
    unsigned pending; /* jobs of the round not yet finished */
    fy_ucx_job fn;
    void **args;
    unsigned njobs;
    bool stop;
};

typedef struct fy_ucx_pool_arg {
    fy_ucx_pool *p;
    unsigned index;
} fy_ucx_pool_arg;

/* Waits for the next round (or stop); returns false on stop. The round's
 * job for this thread is read under the lock: a thread with no job this
 * round may still be here when the caller starts the next one. */
static bool fy_pool_next(fy_ucx_pool *p, unsigned index, uint64_t *seen, fy_ucx_job *fn, void **arg)
{
    pthread_mutex_lock(&p->mu);
    while (!p->stop && p->round == *seen)
        pthread_cond_wait(&p->go, &p->mu);
    /* On stop the last round's args are gone (they live on the caller's
     * stack for the length of a round): read nothing. */
    bool go = !p->stop;
    bool mine = go && index < p->njobs;
    *seen = p->round;
    *fn = mine ? p->fn : NULL;
    *arg = mine ? p->args[index] : NULL;
    pthread_mutex_unlock(&p->mu);
    return go;
}

static void fy_pool_finished(fy_ucx_pool *p)
{
    pthread_mutex_lock(&p->mu);
    if (--p->pending == 0)
        pthread_cond_signal(&p->done);
    pthread_mutex_unlock(&p->mu);
}

static void *fy_pool_main(void *arg)
{
    fy_ucx_pool_arg a = *(fy_ucx_pool_arg *)arg;
    free(arg);
    uint64_t seen = 0;
    fy_ucx_job fn;
    void *job;
    while (fy_pool_next(a.p, a.index, &seen, &fn, &job)) {
        if (fn) {
            fn(job);
            fy_pool_finished(a.p);
        }
    }
    return NULL;
}

static bool fy_pool_start_one(fy_ucx_pool *p, unsigned i)
{
    fy_ucx_pool_arg *a = malloc(sizeof(*a));
    if (!a)
        return false;
    *a = (fy_ucx_pool_arg){p, i};
    if (pthread_create(&p->tids[i], NULL, fy_pool_main, a) != 0) {
        free(a);
        return false;
    }
    return true;
}

ferry_status fy_ucx_pool_create(unsigned threads, fy_ucx_pool **out)
{
    fy_ucx_pool *p = calloc(1, sizeof(*p));
    if (!p || !(p->tids = calloc(threads, sizeof(*p->tids)))) {
        free(p);
        return FERRY_ERR_NO_MEMORY;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    p->threads = threads;
    while (p->started < threads && fy_pool_start_one(p, p->started))
        p->started++;
    if (p->started < threads) {
        fy_ucx_pool_destroy(p);
        return FERRY_ERR_NO_RESOURCES;
    }
    *out = p;
    return FERRY_OK;
}

void fy_ucx_pool_run(fy_ucx_pool *p, fy_ucx_job fn, void *self, void **args, unsigned n)
{
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->args = args;
    p->njobs = n;
    p->pending = n;
    p->round++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    fn(self);
    pthread_mutex_lock(&p->mu);
    while (p->pending)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void fy_ucx_pool_destroy(fy_ucx_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->started; i++)
        pthread_join(p->tids[i], NULL);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p->tids);
    free(p);
}
