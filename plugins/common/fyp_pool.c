/* SPDX-License-Identifier: Apache-2.0 */
/* Plugin support: the worker pool (see fyp_pool.h). Functions below that
 * take a pool and a job run with the pool lock held, unless their comment
 * says otherwise. */
#include "fyp_pool.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>

static void fyp_queue_push(fyp_pool *pool, fyp_job *job)
{
    job->q_next = NULL;
    job->q_prev = pool->tail;
    if (pool->tail)
        pool->tail->q_next = job;
    else
        pool->head = job;
    pool->tail = job;
    job->queued = true;
}

static void fyp_queue_unlink(fyp_pool *pool, fyp_job *job)
{
    if (job->q_prev)
        job->q_prev->q_next = job->q_next;
    else
        pool->head = job->q_next;
    if (job->q_next)
        job->q_next->q_prev = job->q_prev;
    else
        pool->tail = job->q_prev;
    job->q_prev = job->q_next = NULL;
    job->queued = false;
}

/* Takes the next item of the head job and rotates that job to the tail
 * while it has items left (round robin between jobs). */
static fyp_job *fyp_claim(fyp_pool *pool, size_t *item)
{
    fyp_job *job = pool->head;

    *item = job->next_item++;
    job->running++;
    fyp_queue_unlink(pool, job);
    if (job->next_item < job->nitems)
        fyp_queue_push(pool, job);
    return job;
}

/* done() runs without the lock (it may take the host's locks); `running`
 * still counts this worker, so a concurrent cancel waits and the job
 * stays valid. */
static void fyp_item_done(fyp_pool *pool, fyp_job *job)
{
    if (++job->finished == job->nitems && !job->canceled) {
        pthread_mutex_unlock(&pool->lock);
        job->done(job);
        pthread_mutex_lock(&pool->lock);
    }
    if (--job->running == 0 && job->waiting)
        pthread_cond_broadcast(&pool->idle);
}

static void *fyp_worker(void *arg)
{
    fyp_pool *pool = arg;

    pthread_mutex_lock(&pool->lock);
    while (!pool->stop) {
        if (!pool->head) {
            pthread_cond_wait(&pool->work, &pool->lock);
            continue;
        }
        size_t item;
        fyp_job *job = fyp_claim(pool, &item);
        bool more = pool->head != NULL;
        pthread_mutex_unlock(&pool->lock);
        /* Chain wake-up: each worker that leaves work behind wakes one more,
         * instead of the submitter waking them all (a thundering herd that
         * also takes the submitter's CPU). */
        if (more)
            pthread_cond_signal(&pool->work);
        job->run(job, item);
        pthread_mutex_lock(&pool->lock);
        fyp_item_done(pool, job);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

/* Takes the lock. Called by the owner while no worker touches the job:
 * it is not queued and not running. */
void fyp_pool_submit(fyp_pool *pool, fyp_job *job)
{
    pthread_mutex_lock(&pool->lock);
    job->next_item = job->finished = 0;
    job->canceled = false;
    fyp_queue_push(pool, job);
    pthread_mutex_unlock(&pool->lock);
    /* One worker; it wakes the next if items are left (see the worker).
     * After the unlock, so that it does not block on the lock at once. */
    pthread_cond_signal(&pool->work);
}

/* Takes the lock. */
void fyp_pool_cancel(fyp_pool *pool, fyp_job *job)
{
    pthread_mutex_lock(&pool->lock);
    if (job->queued)
        fyp_queue_unlink(pool, job);
    job->canceled = true;
    while (job->running) {
        job->waiting = true;
        pthread_cond_wait(&pool->idle, &pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
}

/* Stops the first n threads and joins them (takes the lock). */
static void fyp_pool_join(fyp_pool *pool, unsigned n)
{
    pthread_mutex_lock(&pool->lock);
    pool->stop = true;
    pthread_cond_broadcast(&pool->work);
    pthread_mutex_unlock(&pool->lock);
    for (unsigned i = 0; i < n; i++)
        pthread_join(pool->threads[i], NULL);
}

/* Starts the workers with every signal blocked, so that the application's
 * signal handlers never run on a library thread. */
static int fyp_spawn(fyp_pool *pool, unsigned n)
{
    sigset_t all, old;
    int err = 0;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (pool->nthreads = 0; pool->nthreads < n; pool->nthreads++) {
        err = pthread_create(&pool->threads[pool->nthreads], NULL, fyp_worker, pool);
        if (err)
            break;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err)
        fyp_pool_join(pool, pool->nthreads);
    return err;
}

int fyp_pool_start(fyp_pool *pool, unsigned n)
{
    int err = pthread_mutex_init(&pool->lock, NULL);

    if (err)
        return err;
    if ((err = pthread_cond_init(&pool->work, NULL)))
        goto destroy_lock;
    if ((err = pthread_cond_init(&pool->idle, NULL)))
        goto destroy_work;
    pool->head = pool->tail = NULL;
    pool->stop = false;
    pool->threads = calloc(n, sizeof(*pool->threads));
    if (!pool->threads) {
        err = ENOMEM;
        goto destroy_idle;
    }
    if ((err = fyp_spawn(pool, n)))
        goto free_threads;
    return 0;

free_threads:
    free(pool->threads);
destroy_idle:
    pthread_cond_destroy(&pool->idle);
destroy_work:
    pthread_cond_destroy(&pool->work);
destroy_lock:
    pthread_mutex_destroy(&pool->lock);
    return err;
}

void fyp_pool_stop(fyp_pool *pool)
{
    fyp_pool_join(pool, pool->nthreads);
    free(pool->threads);
    pthread_cond_destroy(&pool->idle);
    pthread_cond_destroy(&pool->work);
    pthread_mutex_destroy(&pool->lock);
}
