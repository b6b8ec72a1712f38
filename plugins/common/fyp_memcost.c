/* SPDX-License-Identifier: Apache-2.0 */
/* Plugin support: memmove calibration (see fyp_memcost.h). Enough to tell
 * a laptop from a server, not a benchmark: the buffer is cache-warm, so
 * the bandwidth is optimistic for copies larger than the last-level cache
 * (estimates give a margin for it). */
#include "fyp_memcost.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FYP_CAL_BYTES   (4u << 20)
#define FYP_CAL_SEGS    4096u
#define FYP_CAL_SEG_LEN 64u
#define FYP_DEFAULT_BW  5000.0 /* bytes per microsecond: 5 GB/s */
#define FYP_DEFAULT_SEG 0.02   /* microseconds per segment */
#define FYP_MARGIN      0.5

static double fyp_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Keeps the compiler from dropping copies into memory it sees freed unread. */
static void fyp_clobber(void *p)
{
    __asm__ __volatile__("" : : "r"(p) : "memory");
}

/* Best of three large memmoves: bytes per microsecond. */
static double fyp_time_bw(char *buf, size_t n)
{
    double best = 0;

    for (int rep = 0; rep < 3; rep++) {
        double t0 = fyp_now_us(), dt;

        memmove(buf + n, buf, n);
        fyp_clobber(buf);
        dt = fyp_now_us() - t0;
        if (dt > 0 && (best == 0 || dt < best))
            best = dt;
    }
    return best > 0 ? (double)n / best : FYP_DEFAULT_BW;
}

/* Microseconds per small segment. */
static double fyp_time_seg(char *buf, size_t n)
{
    double t0 = fyp_now_us(), dt;

    for (size_t i = 0; i < FYP_CAL_SEGS; i++)
        memmove(buf + n + i * FYP_CAL_SEG_LEN, buf + i * FYP_CAL_SEG_LEN, FYP_CAL_SEG_LEN);
    fyp_clobber(buf);
    dt = fyp_now_us() - t0;
    return dt > 0 ? dt / FYP_CAL_SEGS : FYP_DEFAULT_SEG;
}

static pthread_mutex_t fyp_cal_lock = PTHREAD_MUTEX_INITIALIZER;
static bool fyp_cal_done;
static fyp_memcost fyp_cal;

static void fyp_measure(const ferry_plugin_host *host)
{
    size_t n = FYP_CAL_BYTES;
    char *buf = malloc(2 * n);

    fyp_cal = (fyp_memcost){FYP_DEFAULT_BW, FYP_DEFAULT_SEG};
    if (!buf) {
        host->log(host->agent_ctx, FERRY_LOG_WARN, "no memory to calibrate, using defaults");
        return;
    }
    memset(buf, 0x5a, 2 * n); /* fault the pages in now, not while timing */
    fyp_cal.bytes_per_us = fyp_time_bw(buf, n);
    fyp_cal.seg_us = fyp_time_seg(buf, n);
    free(buf);
}

void fyp_memcost_get(const ferry_plugin_host *host, fyp_memcost *out)
{
    pthread_mutex_lock(&fyp_cal_lock);
    if (!fyp_cal_done) {
        fyp_measure(host);
        fyp_cal_done = true;
    }
    *out = fyp_cal;
    pthread_mutex_unlock(&fyp_cal_lock);
}

void fyp_memcost_estimate(const fyp_memcost *c, uint64_t bytes, size_t segs, double lanes,
                          double extra_us, ferry_xfer_cost *out)
{
    double us = (double)bytes / (c->bytes_per_us * lanes) + (double)segs * c->seg_us + extra_us;

    out->duration_us = us;
    out->error_margin_us = us * FYP_MARGIN;
    out->method = FERRY_COST_ANALYTICAL;
}
