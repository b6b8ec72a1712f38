/* SPDX-License-Identifier: Apache-2.0 */
/* Clocks (clock.c). */
#ifndef FY_COMMON_CLOCK_H
#define FY_COMMON_CLOCK_H

#include <stdint.h>

uint64_t fy_now_ns(void);    /* monotonic */
uint64_t fy_coarse_ns(void); /* monotonic, clock-tick resolution */
uint64_t fy_wall_us(void);   /* since the epoch */

#endif
