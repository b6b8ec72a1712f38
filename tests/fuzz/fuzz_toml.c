/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target of the configuration files' TOML subset
 * (tools/ferry-bench/toml.c): any bytes are refused cleanly or handed on as
 * keys and values that obey the subset's rules. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "toml.h"

static bool fuzz_key(void *ctx, const char *key, const char *value, char *err, size_t err_len)
{
    (void)err;
    (void)err_len;
    size_t *n = ctx;
    /* A key is bare; a value has no quote, newline or NUL. */
    if (!*key || strlen(key) + strlen(value) > 1024 || strpbrk(key, " \t=#\".") ||
        strpbrk(value, "\"\n"))
        abort();
    ++*n;
    return *n < 200 || value[0] != 'x'; /* the callback's own refusal too */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    size_t n = 0;
    err[0] = '\0';
    if (!fb_toml_parse((const char *)data, size, fuzz_key, &n, err, sizeof(err)) &&
        strncmp(err, "line ", 5) && err[0])
        abort(); /* a parser refusal names its line */
    return 0;
}
