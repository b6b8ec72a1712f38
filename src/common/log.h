/* SPDX-License-Identifier: Apache-2.0 */
/* The library's logger (log.c). The public side (level, handler,
 * ferry_last_error) is include/ferry/log.h. */
#ifndef FY_COMMON_LOG_H
#define FY_COMMON_LOG_H

#include <stdarg.h>

#include "ferry/log.h"

/* Logs a line; an ERROR line is also the thread's ferry_last_error() detail. */
void fy_log(ferry_log_level level, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Logs a line of a failure logged below ERROR (or DEBUG: not to be seen by
 * default), and keeps it as the thread's ferry_last_error() detail. */
void fy_log_fail(ferry_log_level level, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* fy_log for a line of a plugin: agent is its agent's name, who the
 * backend's. */
void fy_vlog_from(ferry_log_level level, const char *agent, const char *who, const char *fmt,
                  va_list ap) __attribute__((format(printf, 4, 0)));
/* Keeps a failure's detail without logging it (paths that may fail often). */
void fy_error_set(const char *who, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define FY_ERR(...)  fy_log(FERRY_LOG_ERROR, "core", __VA_ARGS__)
#define FY_WARN(...) fy_log(FERRY_LOG_WARN, "core", __VA_ARGS__)
#define FY_DBG(...)  fy_log(FERRY_LOG_DEBUG, "core", __VA_ARGS__)

/* Logs a line and keeps it as this thread's ferry_md_error() (and
 * ferry_last_error()) detail. */
void fy_log_detail(ferry_log_level level, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void fy_md_detail_clear(void);
void fy_md_detail_set(const char *text);
/* This thread's detail, for the library's own use (a program may define a
 * ferry_md_error of its own that a call from inside would bind to). */
const char *fy_md_detail_get(void);
#define FY_MD_FAIL(...) fy_log_detail(FERRY_LOG_ERROR, "core", __VA_ARGS__)

/* The agent this thread works for, named in its log lines (NULL: none).
 * Set by the threads an agent starts; the name must outlive the thread. */
void fy_log_thread_agent(const char *name);

#endif
