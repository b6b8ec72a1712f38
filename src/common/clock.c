/* SPDX-License-Identifier: Apache-2.0 */
/* Clocks: deadlines and durations on the monotonic clock, timestamps of
 * frames and telemetry on the wall clock. */
#include <time.h>

#include "common/clock.h"

uint64_t fy_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Tick-grained (a few ms) and cheaper than fy_now_ns: enough for
 * deadlines of milliseconds, checked on every poll of a running request. */
uint64_t fy_coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t fy_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000u;
}
