/* SPDX-License-Identifier: Apache-2.0 */
/* Plugin support: strict parsing of unsigned integer params.
 *
 * Values are decimal digits with at most one binary size suffix (K, M, G,
 * T, any case: KiB, MiB, GiB, TiB). strtoull alone would accept spaces,
 * signs ("-1" wraps) and trailing junk; a value out of its range is a
 * typo, not a wish. */
#ifndef FYP_PARAMS_H
#define FYP_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/plugin.h"

/* The accepted values of one param, inclusive. */
typedef struct fyp_range {
    uint64_t min, max;
} fyp_range;

/* Parses s into *out; false (and *out untouched) when s is not a value. */
bool fyp_parse_u64(const char *s, uint64_t *out);

/* Fills vals[i] for each of the n params of spec (ranges[i] bounds it):
 * its default first (the core passes every key, a direct caller may
 * not), then the value given in params. An unknown key or a bad value is
 * logged through host and returns FERRY_ERR_INVALID_PARAM. */
ferry_status fyp_params_parse(const ferry_plugin_host *host, const ferry_param_spec *spec,
                              const fyp_range *ranges, size_t n, const ferry_param *params,
                              size_t num_params, uint64_t *vals);

#endif
