/* SPDX-License-Identifier: Apache-2.0 */
/* The TOML subset of ferry's configuration files (nixlbench's
 * --config_file, ferry-kvbench's model files); docs/tools.md,
 * "Configuration files", is its definition:
 *
 *   - UTF-8 text, lines ending in \n (a \r before it is dropped); at most
 *     1023 bytes a line; no NUL byte
 *   - a line is empty, a comment (# to the end of the line, outside a
 *     string), or `key = value` with an optional comment after it
 *   - key: bare, [A-Za-z0-9_-]+; each key at most once
 *   - value: a basic string "..." with no escapes (no \ inside) and no "
 *     inside; or a bare word: an integer (digits, _ between them as TOML
 *     allows), true or false (other bare words are handed on as they are)
 *   - refused with a line number and reason: tables [x], arrays, inline
 *     tables, multi-line and literal strings, escapes, dotted keys, a key
 *     given twice
 *
 * No TOML library is packaged by Debian for C, so this small parser is
 * fuzzed instead (tests/fuzz/fuzz_toml.c). Depends on nothing but libc. */
#ifndef FB_TOML_H
#define FB_TOML_H

#include <stdbool.h>
#include <stddef.h>

/* Called once per key with its value (the string's text, without quotes).
 * Returns false to stop, with its own message in err. */
typedef bool (*fb_toml_cb)(void *ctx, const char *key, const char *value, char *err,
                           size_t err_len);

/* Parses text[0..len) (need not be NUL-terminated). On failure returns
 * false with "line N: reason" in err. */
bool fb_toml_parse(const char *text, size_t len, fb_toml_cb cb, void *ctx, char *err,
                   size_t err_len);
/* Reads and parses a file (at most 1 MiB). */
bool fb_toml_read(const char *path, fb_toml_cb cb, void *ctx, char *err, size_t err_len);

#endif
