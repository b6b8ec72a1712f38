/* SPDX-License-Identifier: Apache-2.0 */
/* Wake-ups of the progress thread (wake.c): an eventfd that its poll()
 * watches. Kicked by whoever changes what it should wait for. */
#ifndef FY_CORE_WAKE_H
#define FY_CORE_WAKE_H

typedef struct fy_wake {
    int fd; /* -1: no progress thread, kicks do nothing */
} fy_wake;

/* 0, or -1 (errno says why). */
int fy_wake_open(fy_wake *w);
void fy_wake_close(fy_wake *w);
void fy_wake_kick(fy_wake *w);
/* Consumes pending kicks (after poll() saw the fd readable). */
void fy_wake_drain(fy_wake *w);

#endif
