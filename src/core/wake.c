/* SPDX-License-Identifier: Apache-2.0 */
/* The progress thread's wake-up eventfd. */
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"
#include "core/wake.h"

int fy_wake_open(fy_wake *w)
{
    w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return w->fd < 0 ? -1 : 0;
}

void fy_wake_close(fy_wake *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
}

void fy_wake_kick(fy_wake *w)
{
    uint64_t one = 1;
    if (w->fd >= 0 && write(w->fd, &one, sizeof(one)) < 0)
        FY_DBG("progress wake: counter saturated"); /* already awake */
}

void fy_wake_kick_if_asleep(fy_wake *w)
{
    if (atomic_load(&w->asleep))
        fy_wake_kick(w);
}

void fy_wake_sleeping(fy_wake *w, bool asleep)
{
    atomic_store(&w->asleep, asleep);
}

void fy_wake_drain(fy_wake *w)
{
    uint64_t drain;
    if (read(w->fd, &drain, sizeof(drain)) < 0)
        return; /* nothing to drain: a spurious wake-up */
}
