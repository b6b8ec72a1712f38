/* SPDX-License-Identifier: Apache-2.0 */
/* Logging: levels, where lines go, and how much is logged.
 *
 * The library logs one line per error, from the code that first detects
 * it, and more at the higher levels. Lines go to stderr unless a handler is
 * set. The level comes from FERRY_LOG_LEVEL, else NIXL_LOG_LEVEL (read
 * once, at the first line), until ferry_set_log_level() replaces it. */
#ifndef FERRY_LOG_H
#define FERRY_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

/* Shared with plugins (ferry_plugin_host.log). A line of level L is logged
 * when L <= the current level. */
typedef enum ferry_log_level {
    FERRY_LOG_ERROR = 0,
    FERRY_LOG_WARN = 1,
    FERRY_LOG_INFO = 2,
    FERRY_LOG_DEBUG = 3,
    FERRY_LOG_TRACE = 4,
} ferry_log_level;

/* Receives one line (no trailing newline) logged at `level` by `who`: "core",
 * a part of the library ("loader", "sc", ...) or a backend's plugin name.
 * Both strings are valid only during the call. It may be called from any
 * thread (the caller's, the progress thread, the side-channel listener),
 * also concurrently: it must be thread-safe. It must not call into ferry
 * (ferry_set_log_handler() or any call that may log). */
typedef void (*ferry_log_fn)(void *ctx, ferry_log_level level, const char *who, const char *line);

/* Sends every line that passes the level to fn(ctx, ...) instead of stderr;
 * NULL restores stderr. Once it returns, no thread is still inside the
 * handler it replaced, so that handler's ctx may be freed. */
void ferry_set_log_handler(ferry_log_fn fn, void *ctx);

/* Sets the level for the whole process (over the environment's). Values
 * outside FERRY_LOG_ERROR..FERRY_LOG_TRACE are ignored. */
void ferry_set_log_level(ferry_log_level level);

/* The current level: the last one set, else the environment's (FERRY_LOG_LEVEL,
 * else NIXL_LOG_LEVEL; default FERRY_LOG_WARN). */
ferry_log_level ferry_get_log_level(void);

#ifdef __cplusplus
}
#endif
#endif
