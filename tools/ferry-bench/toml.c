/* SPDX-License-Identifier: Apache-2.0 */
/* The TOML subset of ferry's configuration files (toml.h). */
#include "toml.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FB_TOML_LINE     1024 /* with the NUL */
#define FB_TOML_MAX_FILE (1u << 20)
#define FB_TOML_MAX_KEYS 256

static bool fb_space(char c)
{
    return c == ' ' || c == '\t';
}

static char *fb_trim(char *s)
{
    while (fb_space(*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && fb_space(e[-1]))
        *--e = '\0';
    return s;
}

/* Cuts a comment off (a # outside a string). */
static void fb_uncomment(char *line)
{
    bool in_str = false;
    for (char *p = line; *p; p++) {
        if (*p == '"')
            in_str = !in_str;
        else if (*p == '#' && !in_str) {
            *p = '\0';
            return;
        }
    }
}

static bool fb_bare_key(const char *k)
{
    if (!*k)
        return false;
    for (; *k; k++) {
        char c = *k;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool fb_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A value: "string" (no escapes), or a bare word. A bare word made of
 * digits and underscores must have each _ between two digits (TOML's
 * rule); the underscores are dropped. Returns NULL with a reason in why. */
static const char *fb_toml_value(char *v, const char **why)
{
    if (*v == '"') {
        *why = "multi-line strings are not supported";
        if (!strncmp(v, "\"\"\"", 3))
            return NULL;
        char *close = strchr(v + 1, '"');
        *why = "unterminated string, or escapes (not supported)";
        if (!close || memchr(v + 1, '\\', (size_t)(close - v - 1)))
            return NULL;
        *why = "text after the string";
        if (*fb_trim(close + 1))
            return NULL;
        *close = '\0';
        return v + 1;
    }
    *why = "literal strings ('...') are not supported";
    if (*v == '\'')
        return NULL;
    *why = "arrays and inline tables are not supported";
    if (*v == '[' || *v == '{')
        return NULL;
    *why = "empty value";
    if (!*v)
        return NULL;
    *why = "a bare value is one word";
    for (char *p = v; *p; p++)
        if (fb_space(*p) || *p == '"' || *p == '=')
            return NULL;
    bool numeric = true;
    for (char *p = v; *p && numeric; p++)
        numeric = fb_digit(*p) || *p == '_';
    if (numeric) {
        *why = "misplaced _ in a number";
        char *w = v;
        for (char *r = v; *r; r++) {
            if (*r == '_' && (r == v || !fb_digit(r[-1]) || !fb_digit(r[1])))
                return NULL;
            if (*r != '_')
                *w++ = *r;
        }
        *w = '\0';
    }
    return v;
}

typedef struct fb_toml_keys {
    char *names[FB_TOML_MAX_KEYS];
    size_t n;
} fb_toml_keys;

/* Records key; false (with why) when seen before or too many. */
static bool fb_toml_new_key(fb_toml_keys *k, const char *key, const char **why)
{
    for (size_t i = 0; i < k->n; i++)
        if (!strcmp(k->names[i], key)) {
            *why = "key given twice";
            return false;
        }
    *why = "too many keys";
    if (k->n == FB_TOML_MAX_KEYS)
        return false;
    *why = "out of memory";
    char *copy = strdup(key);
    if (!copy)
        return false;
    k->names[k->n++] = copy;
    return true;
}

/* One line: nothing, or key = value. */
static bool fb_toml_line(char *line, fb_toml_keys *keys, fb_toml_cb cb, void *ctx, char *err,
                         size_t err_len)
{
    fb_uncomment(line);
    char *s = fb_trim(line), *eq = strchr(s, '=');
    const char *why = "expected key = value";
    if (!*s)
        return true;
    if (*s == '[')
        why = "tables are not supported: keys go at the top level";
    if (*s != '[' && eq) {
        *eq = '\0';
        char *key = fb_trim(s);
        const char *value = fb_toml_value(fb_trim(eq + 1), &why);
        if (!fb_bare_key(key))
            why = strchr(key, '.') ? "dotted keys are not supported" : "bad key";
        else if (value && fb_toml_new_key(keys, key, &why))
            return cb(ctx, key, value, err, err_len);
    }
    snprintf(err, err_len, "%s", why);
    return false;
}

bool fb_toml_parse(const char *text, size_t len, fb_toml_cb cb, void *ctx, char *err,
                   size_t err_len)
{
    char line[FB_TOML_LINE], why[192];
    fb_toml_keys keys = {.n = 0};
    bool ok = true;
    size_t pos = 0;
    for (int n = 1; ok && pos < len; n++) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len, ll = end - pos;
        why[0] = '\0';
        if (ll && text[pos + ll - 1] == '\r')
            ll--;
        if (ll >= sizeof(line))
            snprintf(why, sizeof(why), "line too long");
        else if (memchr(text + pos, '\0', ll))
            snprintf(why, sizeof(why), "NUL byte");
        else if (memchr(text + pos, '\r', ll))
            snprintf(why, sizeof(why), "carriage return inside a line");
        if (!why[0]) {
            memcpy(line, text + pos, ll);
            line[ll] = '\0';
            ok = fb_toml_line(line, &keys, cb, ctx, why, sizeof(why));
        } else {
            ok = false;
        }
        if (!ok)
            snprintf(err, err_len, "line %d: %s", n, why);
        pos = end + 1;
    }
    for (size_t i = 0; i < keys.n; i++)
        free(keys.names[i]);
    return ok;
}

bool fb_toml_read(const char *path, fb_toml_cb cb, void *ctx, char *err, size_t err_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_len, "%s", strerror(errno));
        return false;
    }
    char *buf = malloc(FB_TOML_MAX_FILE + 1);
    size_t len = buf ? fread(buf, 1, FB_TOML_MAX_FILE + 1, f) : 0;
    bool ok = false;
    if (!buf)
        snprintf(err, err_len, "out of memory");
    else if (ferror(f))
        snprintf(err, err_len, "read error");
    else if (len > FB_TOML_MAX_FILE)
        snprintf(err, err_len, "larger than 1 MiB");
    else
        ok = fb_toml_parse(buf, len, cb, ctx, err, err_len);
    free(buf);
    fclose(f);
    return ok;
}
