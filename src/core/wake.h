/* SPDX-License-Identifier: Apache-2.0 */
/* Wake-ups of the progress thread (wake.c): an eventfd that its poll()
 * watches. Kicked by whoever changes what it should wait for. */
#ifndef FY_CORE_WAKE_H
#define FY_CORE_WAKE_H

#include <stdatomic.h>
#include <stdbool.h>

typedef struct fy_wake {
    int fd;             /* -1: no progress thread, kicks do nothing */
    atomic_bool asleep; /* the thread is planning a sleep or in it */
} fy_wake;

/* 0, or -1 (errno says why). */
int fy_wake_open(fy_wake *w);
void fy_wake_close(fy_wake *w);
void fy_wake_kick(fy_wake *w);
/* A kick only when the thread sleeps or is about to: for a change it would
 * pick up by itself while awake (a post while it spins). The thread sets
 * asleep before it reads what to wait for, and the caller makes its change
 * before it reads asleep (both sequentially consistent), so either the
 * thread sees the change or the caller sees it asleep. */
void fy_wake_kick_if_asleep(fy_wake *w);
/* Around the thread's planning and sleep. */
void fy_wake_sleeping(fy_wake *w, bool asleep);
/* Consumes pending kicks (after poll() saw the fd readable). */
void fy_wake_drain(fy_wake *w);

#endif
