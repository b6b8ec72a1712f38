/* SPDX-License-Identifier: Apache-2.0 */
/* One logger for the library. The level comes from FERRY_LOG_LEVEL, else
 * NIXL_LOG_LEVEL (error, warn, info, debug, trace, NIXL's fatal, or 0-4;
 * default warn), until ferry_set_log_level(). Lines go to stderr or to the
 * handler of ferry_set_log_handler(). ERROR lines are also kept, per thread,
 * as the detail of the failing call (ferry_last_error). */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/api.h"
#include "common/log.h"

/* Levels beyond ferry_log_level: FERRY_LOG_LEVEL=off shows nothing (an
 * ERROR line is still kept as ferry_last_error()); BAD is no level. */
#define FY_LEVEL_OFF (-1)
#define FY_LEVEL_BAD (-2)

static atomic_int fy_log_level = FERRY_LOG_WARN;
static pthread_once_t fy_log_once = PTHREAD_ONCE_INIT;

static const char *const fy_level_names[] = {"error", "warn", "info", "debug", "trace"};

/* The level an environment value names, or FY_LEVEL_BAD. NIXL's names are
 * accepted too, so that a NIXL_LOG_LEVEL set for NIXL means the same here. */
static int fy_level_parse(const char *v)
{
    if (!v || !*v)
        return FY_LEVEL_BAD;
    if (!strcasecmp(v, "off") || !strcasecmp(v, "none"))
        return FY_LEVEL_OFF;
    for (int i = 0; i <= FERRY_LOG_TRACE; i++)
        if (!strcasecmp(v, fy_level_names[i]))
            return i;
    if (!strcasecmp(v, "fatal"))
        return FERRY_LOG_ERROR; /* ferry has no level above error */
    if (!strcasecmp(v, "warning"))
        return FERRY_LOG_WARN;
    if (v[0] >= '0' && v[0] <= '4' && v[1] == '\0')
        return v[0] - '0';
    return FY_LEVEL_BAD;
}

static void fy_log_init(void)
{
    int level = fy_level_parse(getenv("FERRY_LOG_LEVEL"));
    if (level == FY_LEVEL_BAD)
        level = fy_level_parse(getenv("NIXL_LOG_LEVEL"));
    if (level != FY_LEVEL_BAD)
        atomic_store_explicit(&fy_log_level, level, memory_order_relaxed);
}

static bool fy_log_enabled(ferry_log_level level)
{
    pthread_once(&fy_log_once, fy_log_init);
    return (int)level <= atomic_load_explicit(&fy_log_level, memory_order_relaxed);
}

FY_API void ferry_set_log_level(ferry_log_level level)
{
    /* The environment is read first, so it cannot override this later. */
    pthread_once(&fy_log_once, fy_log_init);
    if ((int)level >= FERRY_LOG_ERROR && (int)level <= FERRY_LOG_TRACE)
        atomic_store_explicit(&fy_log_level, (int)level, memory_order_relaxed);
}

FY_API ferry_log_level ferry_get_log_level(void)
{
    pthread_once(&fy_log_once, fy_log_init);
    int level = atomic_load_explicit(&fy_log_level, memory_order_relaxed);
    return level < FERRY_LOG_ERROR ? FERRY_LOG_ERROR : (ferry_log_level)level; /* off: the least */
}

/* ---- where lines go ---- */

/* Held for reading while a line is written, for writing while the handler
 * changes: once ferry_set_log_handler returns, the old handler has left.
 * Writers first: with glibc's default (readers first) threads that log
 * without pause can keep ferry_set_log_handler waiting forever. A handler
 * therefore must not call into ferry (a nested read behind a waiting
 * writer would wait for good). */
static pthread_rwlock_t fy_sink_lock = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
static ferry_log_fn fy_sink_fn;
static void *fy_sink_ctx;

FY_API void ferry_set_log_handler(ferry_log_fn fn, void *ctx)
{
    pthread_rwlock_wrlock(&fy_sink_lock);
    fy_sink_fn = fn;
    fy_sink_ctx = fn ? ctx : NULL;
    pthread_rwlock_unlock(&fy_sink_lock);
}

/* The agent the calling thread works for (fy_log_thread_agent). */
static _Thread_local const char *fy_thread_agent;

void fy_log_thread_agent(const char *name)
{
    fy_thread_agent = name;
}

/* Local time to the microsecond: lines of several processes sort together. */
static void fy_stamp(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%06ld", ts.tv_nsec / 1000);
}

/* stderr: time, ferry[pid], [agent] (when known), who, level, the line;
 * one fprintf per line so lines of concurrent threads do not interleave. */
static void fy_print(ferry_log_level level, const char *agent, const char *who, const char *line)
{
    char stamp[48];
    fy_stamp(stamp, sizeof(stamp));
    const char *name = fy_level_names[level];
    if (agent)
        fprintf(stderr, "%s ferry[%d] [%s] %s %s: %s\n", stamp, (int)getpid(), agent, who, name,
                line);
    else
        fprintf(stderr, "%s ferry[%d] %s %s: %s\n", stamp, (int)getpid(), who, name, line);
}

static void fy_emit(ferry_log_level level, const char *agent, const char *who, const char *line)
{
    pthread_rwlock_rdlock(&fy_sink_lock);
    if (fy_sink_fn)
        fy_sink_fn(fy_sink_ctx, level, who, line);
    else
        fy_print(level, agent, who, line);
    pthread_rwlock_unlock(&fy_sink_lock);
}

/* ---- the detail of failed calls, per thread ---- */

#define FY_LAST_MAX 512
static _Thread_local char fy_last[FY_LAST_MAX];

FY_API const char *ferry_last_error(void)
{
    return fy_last;
}

FY_API void ferry_clear_error(void)
{
    fy_last[0] = '\0';
}

static bool fy_ends_with(const char *s, size_t n, const char *tail, size_t k)
{
    return n >= k && !memcmp(s + n - k, tail, k) && (n == k || s[n - k - 1] == ' ');
}

/* Appends one line. The same line twice in a row (a failure polled again)
 * is kept once; a line that does not fit replaces what was there, since
 * the newest line is about the call that failed last. */
static void fy_last_add(const char *who, const char *line)
{
    char one[FY_LAST_MAX];
    bool core = !strcmp(who, "core");
    int k = snprintf(one, sizeof(one), "%s%s%s", core ? "" : who, core ? "" : ": ", line);
    size_t n = strlen(fy_last), len = k < 0 ? 0 : (size_t)k;
    if (len >= sizeof(one))
        len = sizeof(one) - 1;
    if (!len || fy_ends_with(fy_last, n, one, len))
        return;
    if (!n || n + 2 + len >= sizeof(fy_last)) {
        n = 0;
    } else {
        memcpy(fy_last + n, "; ", 2);
        n += 2;
    }
    memcpy(fy_last + n, one, len);
    fy_last[n + len] = '\0';
}

void fy_error_set(const char *who, const char *fmt, ...)
{
    char line[FY_LAST_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fy_last_add(who, line);
}

/* ---- lines ---- */

/* keep: the line is the detail of a failure whatever its level. */
/* agent: the agent the line is about, NULL: the thread's (if any). */
static void fy_vlog(ferry_log_level level, bool keep, const char *agent, const char *who,
                    const char *fmt, va_list ap)
{
    bool show = fy_log_enabled(level);
    keep = keep || level == FERRY_LOG_ERROR;
    if (!show && !keep)
        return;
    char line[1024];
    vsnprintf(line, sizeof(line), fmt, ap);
    if (keep)
        fy_last_add(who, line);
    if (show)
        fy_emit(level, agent ? agent : fy_thread_agent, who, line);
}

void fy_log(ferry_log_level level, const char *who, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fy_vlog(level, false, NULL, who, fmt, ap);
    va_end(ap);
}

void fy_log_fail(ferry_log_level level, const char *who, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fy_vlog(level, true, NULL, who, fmt, ap);
    va_end(ap);
}

void fy_vlog_from(ferry_log_level level, const char *agent, const char *who, const char *fmt,
                  va_list ap)
{
    fy_vlog(level, false, agent, who, fmt, ap);
}

/* ---- the detail of the last failed metadata call of this thread ---- */

static _Thread_local char fy_md_detail[256];

void fy_md_detail_clear(void)
{
    fy_md_detail[0] = '\0';
}

/* Also the thread's last error: the text may come from another thread
 * (a fetch thread's failure, handed to the caller that waits for it). */
void fy_md_detail_set(const char *text)
{
    snprintf(fy_md_detail, sizeof(fy_md_detail), "%s", text);
    if (*text)
        fy_last_add("core", text);
}

void fy_log_detail(ferry_log_level level, const char *who, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fy_md_detail, sizeof(fy_md_detail), fmt, ap);
    va_end(ap);
    fy_log_fail(level, who, "%s", fy_md_detail);
}

const char *fy_md_detail_get(void)
{
    return fy_md_detail;
}

FY_API const char *ferry_md_error(void)
{
    return fy_md_detail_get();
}
