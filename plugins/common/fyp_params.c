/* SPDX-License-Identifier: Apache-2.0 */
/* Plugin support: params (see fyp_params.h). */
#include "fyp_params.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Binary multiplier of a size suffix, 0 when c is not one. */
static uint64_t fyp_suffix(char c)
{
    switch (c) {
    case 'k':
    case 'K':
        return 1ull << 10;
    case 'm':
    case 'M':
        return 1ull << 20;
    case 'g':
    case 'G':
        return 1ull << 30;
    case 't':
    case 'T':
        return 1ull << 40;
    default:
        return 0;
    }
}

bool fyp_parse_u64(const char *s, uint64_t *out)
{
    char *end;
    uint64_t v, mul = 1;

    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno)
        return false;
    if (*end) {
        mul = fyp_suffix(*end);
        if (!mul || end[1] || v > UINT64_MAX / mul)
            return false;
    }
    *out = v * mul;
    return true;
}

static ssize_t fyp_param_index(const ferry_param_spec *spec, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (key && strcmp(key, spec[i].key) == 0)
            return (ssize_t)i;
    return -1;
}

#define fyp_log(host, ...) (host)->log((host)->agent_ctx, FERRY_LOG_ERROR, __VA_ARGS__)

static ferry_status fyp_param_set(const ferry_plugin_host *host, const ferry_param_spec *spec,
                                  const fyp_range *ranges, size_t n, const ferry_param *p,
                                  uint64_t *vals)
{
    ssize_t i = fyp_param_index(spec, n, p->key);
    uint64_t v;

    if (i < 0) {
        fyp_log(host, "unknown param '%s'", p->key ? p->key : "(null)");
        return FERRY_ERR_INVALID_PARAM;
    }
    if (!fyp_parse_u64(p->value, &v) || v < ranges[i].min || v > ranges[i].max) {
        fyp_log(host, "param %s: bad value '%s' (want %llu..%llu)", p->key,
                p->value ? p->value : "(null)", (unsigned long long)ranges[i].min,
                (unsigned long long)ranges[i].max);
        return FERRY_ERR_INVALID_PARAM;
    }
    vals[i] = v;
    return FERRY_OK;
}

ferry_status fyp_params_parse(const ferry_plugin_host *host, const ferry_param_spec *spec,
                              const fyp_range *ranges, size_t n, const ferry_param *params,
                              size_t num_params, uint64_t *vals)
{
    for (size_t i = 0; i < n; i++)
        if (!fyp_parse_u64(spec[i].default_value, &vals[i]))
            vals[i] = 0;
    if (num_params && !params)
        return FERRY_ERR_INVALID_PARAM;
    for (size_t i = 0; i < num_params; i++) {
        ferry_status st = fyp_param_set(host, spec, ranges, n, &params[i], vals);
        if (st != FERRY_OK)
            return st;
    }
    return FERRY_OK;
}
