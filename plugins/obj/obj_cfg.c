/* SPDX-License-Identifier: Apache-2.0 */
/* OBJ's params (NIXL's OBJ names where NIXL has one) and the standard
 * AWS_* environment variables behind them. A param given wins over the
 * environment, the environment over the defaults, as in NIXL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fyp_params.h"
#include "obj_internal.h"

const ferry_param_spec fy_obj_params[] = {
    {"bucket", "", "the bucket (else $AWS_DEFAULT_BUCKET); required"},
    {"endpoint_override", "",
     "S3 endpoint URL, e.g. http://127.0.0.1:9000 (else $AWS_ENDPOINT_OVERRIDE, "
     "$AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL; else AWS: s3.<region>.amazonaws.com)"},
    {"scheme", "", "http or https, for an endpoint given without one (default https)"},
    {"region", "", "signing region (else $AWS_REGION, $AWS_DEFAULT_REGION, us-east-1)"},
    {"access_key", "", "access key id (else $AWS_ACCESS_KEY_ID); none: unsigned requests"},
    {"secret_key", "", "secret access key (else $AWS_SECRET_ACCESS_KEY)"},
    {"session_token", "", "session token of temporary credentials (else $AWS_SESSION_TOKEN)"},
    {"use_virtual_addressing", "false",
     "true: https://<bucket>.<host>/<key>; false: path style https://<host>/<bucket>/<key>"},
    {"ca_bundle", "", "CA certificates file for https (else $AWS_CA_BUNDLE; else the system's)"},
    {"req_checksum", "", "NIXL's: required or supported; accepted, payloads are sent unsigned"},
    {"resp_checksum", "", "NIXL's: required or supported; accepted (TLS protects the payload)"},
    {"crtMinLimit", "",
     "NIXL's: bytes from which a WRITE is a multipart upload (sets "
     "multipart_threshold)"},
    {"num_threads", "16",
     "HTTP requests in flight at once (1..1024), on as many reused connections; one event "
     "loop, no threads"},
    {"multipart_threshold", "16M",
     "a WRITE of more bytes is a multipart upload and a READ of more bytes is split into "
     "ranged GETs of part_size, run in parallel"},
    {"part_size", "8M", "bytes per part (4K..5G; AWS wants at least 5M but for the last)"},
    {"max_attempts", "4", "tries per HTTP request on 5xx, throttling or network errors (1..100)"},
    {"retry_base_ms", "100", "first backoff; doubles per retry, with jitter"},
    {"retry_max_ms", "5000", "longest single backoff"},
    {"retry_timeout_ms", "60000", "no retry starts later than this after the first try"},
    {"connect_timeout_ms", "5000", "TCP (and TLS) connection setup limit"},
    {"stall_timeout_s", "15",
     "an HTTP request that moves no byte for this long fails (a server gone silent)"},
    {"request_timeout_ms", "0",
     "limit of one HTTP request, 0: none (stall_timeout_s still applies)"},
};
_Static_assert(sizeof(fy_obj_params) / sizeof(fy_obj_params[0]) == FY_OBJ_NUM_PARAMS,
               "FY_OBJ_NUM_PARAMS counts the params");

static const char *fy_obj_param(const ferry_param *p, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (p[i].key && !strcmp(p[i].key, key))
            return p[i].value;
    for (size_t i = 0; i < FY_OBJ_NUM_PARAMS; i++)
        if (!strcmp(fy_obj_params[i].key, key))
            return fy_obj_params[i].default_value;
    return "";
}

/* The first non-empty of the given value and the variables (NULL ends). */
static const char *fy_obj_pick(const char *given, const char *const *vars)
{
    if (given && *given)
        return given;
    for (; vars && *vars; vars++) {
        const char *v = getenv(*vars);
        if (v && *v)
            return v;
    }
    return NULL;
}

static bool fy_obj_dup(char **out, const char *s)
{
    *out = s ? strdup(s) : NULL;
    return !s || *out;
}

/* A size (fyp_parse_u64: decimal digits, an optional binary suffix) within
 * min..max. */
static bool fy_obj_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v;

    if (!fyp_parse_u64(s, &v) || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool fy_obj_bool(const char *s, bool *out)
{
    if (!strcasecmp(s, "true") || !strcmp(s, "1") || !strcasecmp(s, "yes"))
        *out = true;
    else if (!strcasecmp(s, "false") || !strcmp(s, "0") || !strcasecmp(s, "no") || !*s)
        *out = false;
    else
        return false;
    return true;
}

struct fy_obj_num {
    const char *key;
    uint64_t min, max;
    size_t field; /* offset in fy_obj_cfg of a uint64_t */
};

#define FY_OBJ_F(f) offsetof(struct fy_obj_cfg, f)
static const struct fy_obj_num fy_obj_nums[] = {
    {"multipart_threshold", 0, 5ull << 40, FY_OBJ_F(mpu_threshold)},
    {"part_size", 4096, 5ull << 30, FY_OBJ_F(part_size)},
    {"retry_base_ms", 1, 60000, FY_OBJ_F(retry_base_ms)},
    {"retry_max_ms", 1, 600000, FY_OBJ_F(retry_max_ms)},
    {"retry_timeout_ms", 0, 86400000, FY_OBJ_F(retry_timeout_ms)},
    {"connect_timeout_ms", 1, 600000, FY_OBJ_F(connect_timeout_ms)},
    {"stall_timeout_s", 1, 86400, FY_OBJ_F(stall_timeout_s)},
    {"request_timeout_ms", 0, 86400000, FY_OBJ_F(request_timeout_ms)},
};

static ferry_status fy_obj_bad(struct fy_obj *be, const char *key, const char *v)
{
    fy_obj_log(be, FERRY_LOG_ERROR, "param %s: bad value '%s'", key, v);
    return FERRY_ERR_INVALID_PARAM;
}

static ferry_status fy_obj_load_nums(struct fy_obj *be, const ferry_param *p, size_t n)
{
    uint64_t v;

    for (size_t i = 0; i < sizeof(fy_obj_nums) / sizeof(fy_obj_nums[0]); i++) {
        const struct fy_obj_num *d = &fy_obj_nums[i];
        const char *s = fy_obj_param(p, n, d->key);

        if (!fy_obj_size(s, d->min, d->max, &v))
            return fy_obj_bad(be, d->key, s);
        *(uint64_t *)((char *)&be->cfg + d->field) = v;
    }
    return FERRY_OK;
}

/* The small integers and NIXL's spellings of the same things. */
static ferry_status fy_obj_load_misc(struct fy_obj *be, const ferry_param *p, size_t n)
{
    const char *crt = fy_obj_param(p, n, "crtMinLimit");
    const char *keys[] = {"req_checksum", "resp_checksum"};
    uint64_t v;

    if (!fy_obj_size(fy_obj_param(p, n, "num_threads"), 1, 1024, &v))
        return fy_obj_bad(be, "num_threads", fy_obj_param(p, n, "num_threads"));
    be->cfg.max_inflight = (unsigned)v;
    if (!fy_obj_size(fy_obj_param(p, n, "max_attempts"), 1, 100, &v))
        return fy_obj_bad(be, "max_attempts", fy_obj_param(p, n, "max_attempts"));
    be->cfg.max_attempts = (unsigned)v;
    if (*crt && !fy_obj_size(crt, 0, 5ull << 40, &be->cfg.mpu_threshold))
        return fy_obj_bad(be, "crtMinLimit", crt);
    for (size_t i = 0; i < 2; i++) {
        const char *s = fy_obj_param(p, n, keys[i]);
        if (*s && strcmp(s, "required") && strcmp(s, "supported"))
            return fy_obj_bad(be, keys[i], s);
    }
    if (!fy_obj_bool(fy_obj_param(p, n, "use_virtual_addressing"), &be->cfg.virtual_host))
        return fy_obj_bad(be, "use_virtual_addressing",
                          fy_obj_param(p, n, "use_virtual_addressing"));
    return FERRY_OK;
}

/* Credentials: a session token from the environment goes only with keys
 * from the environment (it belongs to them). */
static bool fy_obj_load_creds(struct fy_obj *be, const ferry_param *p, size_t n)
{
    static const char *const ak[] = {"AWS_ACCESS_KEY_ID", NULL};
    static const char *const sk[] = {"AWS_SECRET_ACCESS_KEY", NULL};
    static const char *const tk[] = {"AWS_SESSION_TOKEN", NULL};
    const char *given = fy_obj_param(p, n, "access_key");

    return fy_obj_dup(&be->cfg.access_key, fy_obj_pick(given, ak)) &&
           fy_obj_dup(&be->cfg.secret_key, fy_obj_pick(fy_obj_param(p, n, "secret_key"), sk)) &&
           fy_obj_dup(&be->cfg.session_token,
                      fy_obj_pick(fy_obj_param(p, n, "session_token"), *given ? NULL : tk));
}

static bool fy_obj_load_strings(struct fy_obj *be, const ferry_param *p, size_t n)
{
    static const char *const bk[] = {"AWS_DEFAULT_BUCKET", NULL};
    static const char *const rg[] = {"AWS_REGION", "AWS_DEFAULT_REGION", NULL};
    static const char *const ca[] = {"AWS_CA_BUNDLE", NULL};
    const char *region = fy_obj_pick(fy_obj_param(p, n, "region"), rg);

    return fy_obj_dup(&be->cfg.bucket, fy_obj_pick(fy_obj_param(p, n, "bucket"), bk)) &&
           fy_obj_dup(&be->cfg.region, region ? region : "us-east-1") &&
           fy_obj_dup(&be->cfg.ca_bundle, fy_obj_pick(fy_obj_param(p, n, "ca_bundle"), ca)) &&
           fy_obj_load_creds(be, p, n);
}

/* scheme://host[:port] from the endpoint param (or variables), the scheme
 * param and the region; a trailing slash is dropped. */
static ferry_status fy_obj_load_endpoint(struct fy_obj *be, const ferry_param *p, size_t n)
{
    static const char *const ep[] = {"AWS_ENDPOINT_OVERRIDE", "AWS_ENDPOINT_URL_S3",
                                     "AWS_ENDPOINT_URL", NULL};
    const char *url = fy_obj_pick(fy_obj_param(p, n, "endpoint_override"), ep);
    const char *scheme = fy_obj_param(p, n, "scheme");
    char buf[1024];
    int len;

    if (*scheme && strcmp(scheme, "http") && strcmp(scheme, "https"))
        return fy_obj_bad(be, "scheme", scheme);
    if (!*scheme)
        scheme = "https";
    if (!url)
        len = snprintf(buf, sizeof(buf), "%s://s3.%s.amazonaws.com", scheme, be->cfg.region);
    else if (strstr(url, "://"))
        len = snprintf(buf, sizeof(buf), "%s", url);
    else
        len = snprintf(buf, sizeof(buf), "%s://%s", scheme, url);
    if (len <= 0 || (size_t)len >= sizeof(buf) ||
        (strncmp(buf, "http://", 7) && strncmp(buf, "https://", 8)))
        return fy_obj_bad(be, "endpoint_override", url ? url : "");
    while (len > 0 && buf[len - 1] == '/')
        buf[--len] = '\0';
    be->cfg.endpoint = strdup(buf);
    return be->cfg.endpoint ? FERRY_OK : FERRY_ERR_NO_MEMORY;
}

static ferry_status fy_obj_cfg_check(struct fy_obj *be)
{
    struct fy_obj_cfg *c = &be->cfg;

    if (!c->bucket) {
        fy_obj_log(be, FERRY_LOG_ERROR, "no bucket: set param bucket or AWS_DEFAULT_BUCKET");
        return FERRY_ERR_INVALID_PARAM;
    }
    if (!c->access_key != !c->secret_key) {
        fy_obj_log(be, FERRY_LOG_ERROR, "access_key and secret_key go together");
        return FERRY_ERR_INVALID_PARAM;
    }
    if (strpbrk(c->bucket, "/?#% ") || strpbrk(c->region, ":/ ")) {
        fy_obj_log(be, FERRY_LOG_ERROR, "bucket or region holds a character S3 names cannot");
        return FERRY_ERR_INVALID_PARAM;
    }
    return FERRY_OK;
}

ferry_status fy_obj_cfg_load(struct fy_obj *be, const ferry_param *params, size_t n)
{
    ferry_status st;

    if (n && !params)
        return FERRY_ERR_INVALID_PARAM;
    st = fy_obj_load_nums(be, params, n);
    if (st == FERRY_OK)
        st = fy_obj_load_misc(be, params, n);
    if (st == FERRY_OK && !fy_obj_load_strings(be, params, n))
        st = FERRY_ERR_NO_MEMORY;
    if (st == FERRY_OK)
        st = fy_obj_load_endpoint(be, params, n);
    if (st == FERRY_OK)
        st = fy_obj_cfg_check(be);
    if (st != FERRY_OK)
        fy_obj_cfg_free(&be->cfg);
    return st;
}

void fy_obj_cfg_free(struct fy_obj_cfg *cfg)
{
    free(cfg->endpoint);
    free(cfg->bucket);
    free(cfg->region);
    free(cfg->access_key);
    free(cfg->secret_key);
    free(cfg->session_token);
    free(cfg->ca_bundle);
    cfg->endpoint = cfg->bucket = cfg->region = NULL;
    cfg->access_key = cfg->secret_key = cfg->session_token = cfg->ca_bundle = NULL;
}
