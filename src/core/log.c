/* SPDX-License-Identifier: Apache-2.0 */
/* One logger for the library: level from FERRY_LOG_LEVEL (error, warn,
 * info, debug, trace or 0-4; default warn), lines to stderr. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

#include "core/internal.h"

static int fy_log_level = -1;
static pthread_once_t fy_log_once = PTHREAD_ONCE_INIT;

static const char *const fy_level_names[] = {"error", "warn", "info", "debug", "trace"};

static void fy_log_init(void)
{
    const char *env = getenv("FERRY_LOG_LEVEL");
    fy_log_level = FERRY_LOG_WARN;
    if (!env || !*env)
        return;
    for (int i = 0; i <= FERRY_LOG_TRACE; i++)
        if (!strcasecmp(env, fy_level_names[i]))
            fy_log_level = i;
    if (env[0] >= '0' && env[0] <= '4' && env[1] == '\0')
        fy_log_level = env[0] - '0';
}

static void fy_vlog(ferry_log_level level, const char *who, const char *fmt, va_list ap)
{
    pthread_once(&fy_log_once, fy_log_init);
    if ((int)level > fy_log_level)
        return;
    /* One fprintf per line so lines of concurrent threads do not interleave. */
    char line[1024];
    vsnprintf(line, sizeof(line), fmt, ap);
    fprintf(stderr, "ferry %s [%s]: %s\n", fy_level_names[level], who, line);
}

/* The detail of the last failed metadata call of this thread. */
static _Thread_local char fy_md_detail[256];

void fy_md_detail_clear(void)
{
    fy_md_detail[0] = '\0';
}

void fy_md_detail_set(const char *text)
{
    snprintf(fy_md_detail, sizeof(fy_md_detail), "%s", text);
}

void fy_log_detail(ferry_log_level level, const char *who, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fy_md_detail, sizeof(fy_md_detail), fmt, ap);
    va_end(ap);
    fy_log(level, who, "%s", fy_md_detail);
}

FY_API const char *ferry_md_error(void)
{
    return fy_md_detail;
}

void fy_log(ferry_log_level level, const char *who, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fy_vlog(level, who, fmt, ap);
    va_end(ap);
}

/* The logger handed to plugins: prefixes the backend's name. */
void fy_plugin_log(void *agent_ctx, ferry_log_level level, const char *fmt, ...)
{
    ferry_backend *be = agent_ctx;
    va_list ap;
    va_start(ap, fmt);
    fy_vlog(level, be->plugin->name, fmt, ap);
    va_end(ap);
}

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
