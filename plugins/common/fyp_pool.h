/* SPDX-License-Identifier: Apache-2.0 */
/* Plugin support: a pool of worker threads that run the items of queued
 * jobs.
 *
 * A job is a piece of work cut into nitems independent items (e.g. slices
 * of a copy). Jobs with unclaimed items wait in a round-robin queue: a
 * worker takes one item from the head job and moves that job to the tail,
 * so a small job does not wait behind a large one. After the last item of
 * a job the worker that ran it calls done(), outside the pool lock; a
 * job's every item happens before its done() (each worker's run() is
 * followed by the lock that counts it).
 *
 * Cost: one mutex round trip per item, never per byte or segment: make
 * items large enough (LOCAL uses about a MiB).
 *
 * Threads: submit and cancel may be called from any thread, but a job
 * belongs to one caller at a time (submitted again only after done() or
 * cancel). The workers run with every signal blocked. */
#ifndef FYP_POOL_H
#define FYP_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct fyp_job fyp_job;

struct fyp_job {
    /* Set by the owner before fyp_pool_submit. */
    void (*run)(fyp_job *job, size_t item); /* one item, without the pool lock */
    void (*done)(fyp_job *job);             /* after the last item, unless canceled */
    size_t nitems;

    /* The pool's, guarded by its lock. */
    fyp_job *q_prev, *q_next;
    bool queued;   /* in the queue: items left to claim */
    bool canceled; /* claim nothing more, call no done() */
    bool waiting;  /* a cancel waits for running == 0 */
    size_t next_item, finished, running;
};

typedef struct fyp_pool {
    pthread_mutex_t lock;
    pthread_cond_t work; /* workers: the queue is not empty, or stop */
    pthread_cond_t idle; /* cancels: a canceled job has no running item */
    fyp_job *head, *tail;
    bool stop;
    pthread_t *threads;
    unsigned nthreads;
} fyp_pool;

/* Starts n (> 0) workers. Returns 0, or an errno value (nothing started). */
int fyp_pool_start(fyp_pool *pool, unsigned n);

/* Joins the workers. Every job must be done or canceled before. */
void fyp_pool_stop(fyp_pool *pool);

/* Queues every item of job (nitems > 0) and wakes a worker. */
void fyp_pool_submit(fyp_pool *pool, fyp_job *job);

/* Drops the items nobody claimed and waits for the running ones; then no
 * worker holds the job. done() does not run afterwards, but may be
 * running when cancel is called (cancel then waits for it). Harmless on a
 * job that is finished or was never submitted. */
void fyp_pool_cancel(fyp_pool *pool, fyp_job *job);

#endif
