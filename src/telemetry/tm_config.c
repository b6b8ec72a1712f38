/* SPDX-License-Identifier: Apache-2.0 */
/* The telemetry switches: the agent's config first, then FERRY_TELEMETRY_*,
 * then NIXL's NIXL_TELEMETRY_* names (so that a NIXL deployment's
 * environment works unchanged). docs/telemetry.md lists them all. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/log.h"
#include "telemetry/tm.h"

#define FY_TM_ERR(...) fy_log(FERRY_LOG_ERROR, "telemetry", __VA_ARGS__)

/* The value of FERRY_TELEMETRY_<what>, else NIXL_TELEMETRY_<what>; the
 * variable's name into used (for messages). */
static const char *fy_tm_env(const char *what, char *used, size_t cap)
{
    static const char *const prefixes[] = {"FERRY_TELEMETRY_", "NIXL_TELEMETRY_"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(used, cap, "%s%s", prefixes[i], what);
        const char *v = getenv(used);
        if (v && *v)
            return v;
    }
    return NULL;
}

/* NIXL's spelling of a yes: y, yes, on, true, enable, 1 (any case). */
static bool fy_tm_yes(const char *v)
{
    static const char *const yes[] = {"y", "yes", "on", "true", "enable", "1"};
    for (size_t i = 0; v && i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!strcasecmp(v, yes[i]))
            return true;
    return false;
}

bool fy_tm_parse_size(const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!text || !isdigit((unsigned char)*text))
        return false;
    unsigned long long v = strtoull(text, &end, 10);
    static const char units[] = "KMGT";
    const char *u = *end ? strchr(units, toupper((unsigned char)*end)) : NULL;
    if (*end && (!u || (end[1] && strcasecmp(end + 1, "B") && strcasecmp(end + 1, "iB"))))
        return false;
    for (int shift = u ? (int)(u - units + 1) * 10 : 0; shift > 0; shift -= 10) {
        if (v > (UINT64_MAX >> 10))
            return false;
        v <<= 10;
    }
    *out = v;
    return errno == 0;
}

static bool fy_tm_parse_u32(const char *v, uint32_t max, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || *end || !isdigit((unsigned char)*v) || n > max)
        return false;
    *out = (uint32_t)n;
    return true;
}

/* Microsecond bucket bounds: positive, strictly increasing. */
static bool fy_tm_parse_bounds(const char *v, fy_tm_config *cfg)
{
    uint32_t n = 0;
    for (const char *p = v; *p;) {
        char *end;
        errno = 0;
        unsigned long long b = strtoull(p, &end, 10);
        if (errno || end == p || !b || n == FY_TM_BUCKETS_MAX ||
            (n && b <= cfg->bounds_us[n - 1]) || (*end && *end != ','))
            return false;
        cfg->bounds_us[n++] = b;
        p = *end ? end + 1 : end;
    }
    cfg->num_bounds = n;
    return n > 0;
}

/* From 10 µs to 10 s in steps of about 2.5x: a small block over shared
 * memory and a large one over a slow link both land inside the range. */
static void fy_tm_default_bounds(fy_tm_config *cfg)
{
    static const uint64_t b[] = {10,     25,      50,      100,     250,     500,    1000,
                                 2500,   5000,    10000,   25000,   50000,   100000, 250000,
                                 500000, 1000000, 2500000, 5000000, 10000000};
    memcpy(cfg->bounds_us, b, sizeof(b));
    cfg->num_bounds = sizeof(b) / sizeof(b[0]);
}

bool fy_tm_each_item(const char *list, fy_tm_item_fn fn, void *arg)
{
    char item[128];
    for (const char *p = list; p && *p;) {
        size_t n = strcspn(p, ",");
        snprintf(item, sizeof(item), "%.*s", (int)n, p);
        if (n && !fn(item, arg))
            return false;
        p += n + (p[n] == ',');
    }
    return true;
}

/* An exporter: "prometheus" (NIXL's "prometheus_mp" too), "ring" (NIXL's
 * "buffer"). */
static bool fy_tm_exporter(const char *item, void *arg)
{
    fy_tm_config *cfg = arg;
    if (!strcasecmp(item, "prometheus") || !strcasecmp(item, "prometheus_mp"))
        cfg->prometheus = true;
    else if (!strcasecmp(item, "ring") || !strcasecmp(item, "buffer"))
        cfg->ring = true;
    else
        return false;
    return true;
}

static void fy_tm_default_dir(fy_tm_config *cfg)
{
    snprintf(cfg->dir, sizeof(cfg->dir), "/dev/shm/ferry-telemetry-%u", (unsigned)getuid());
}

/* A setting: the config's value when given, else the environment's. */
static const char *fy_tm_pick(const char *given, const char *what, char *var, size_t cap)
{
    if (given && *given) {
        snprintf(var, cap, "the agent config's telemetry %s", what);
        return given;
    }
    return fy_tm_env(what, var, cap);
}

static ferry_status fy_tm_bad(const char *var, const char *value, const char *want)
{
    FY_TM_ERR("%s=%s: %s", var, value, want);
    return FERRY_ERR_INVALID_PARAM;
}

static ferry_status fy_tm_resolve_strings(const fy_tm_settings *s, fy_tm_config *cfg)
{
    char var[96];
    const char *v = fy_tm_pick(s->dir, "DIR", var, sizeof(var));
    if (v)
        snprintf(cfg->dir, sizeof(cfg->dir), "%s", v);
    bool dir_given = v != NULL;
    v = fy_tm_pick(s->exporters, "EXPORTER", var, sizeof(var));
    if (v && !fy_tm_each_item(v, fy_tm_exporter, cfg))
        return fy_tm_bad(var, v, "exporters are prometheus and ring (or buffer)");
    if (!v && dir_given)
        cfg->ring = true; /* NIXL: a telemetry directory alone means its buffer exporter */
    v = fy_tm_pick(s->metrics, "ENABLED_METRICS", var, sizeof(var));
    if (v)
        snprintf(cfg->metrics, sizeof(cfg->metrics), "%s", v);
    v = fy_tm_pick(s->buckets_us, "HISTOGRAM_BUCKETS_US", var, sizeof(var));
    if (v && !fy_tm_parse_bounds(v, cfg))
        return fy_tm_bad(var, v,
                         "want positive, strictly increasing microseconds, "
                         "comma separated (at most 32)");
    v = fy_tm_env("PROMETHEUS_LOCAL", var, sizeof(var));
    cfg->prom_local = fy_tm_yes(v);
    return FERRY_OK;
}

static ferry_status fy_tm_resolve_numbers(const fy_tm_settings *s, fy_tm_config *cfg)
{
    char var[96];
    uint32_t n;
    const char *v = fy_tm_env("BUFFER_SIZE", var, sizeof(var));
    if (s->ring_slots)
        cfg->ring_slots = s->ring_slots;
    else if (v && !fy_tm_parse_u32(v, 1u << 24, &cfg->ring_slots))
        return fy_tm_bad(var, v, "want a number of events up to 16777216");
    v = fy_tm_env("RUN_INTERVAL", var, sizeof(var));
    if (s->interval_ms)
        cfg->interval_ms = s->interval_ms;
    else if (v && (!fy_tm_parse_u32(v, 3600000, &cfg->interval_ms) || !cfg->interval_ms))
        return fy_tm_bad(var, v, "want milliseconds, 1..3600000");
    v = fy_tm_env("PROMETHEUS_PORT", var, sizeof(var));
    if (s->prom_port)
        cfg->prom_port = s->prom_port;
    else if (v && (!fy_tm_parse_u32(v, 65535, &n) || !n))
        return fy_tm_bad(var, v, "want a TCP port, 1..65535");
    else if (v)
        cfg->prom_port = (uint16_t)n;
    return FERRY_OK;
}

/* A cap item: NAME=SIZE (a backend's), or SIZE (the agent's) where the
 * list may have one (*arg: where it goes, NULL: not allowed). */
static bool fy_tm_cap_item(const char *item, void *arg)
{
    uint64_t *agent = arg, size;
    const char *eq = strchr(item, '=');
    if (eq == item || !fy_tm_parse_size(eq ? eq + 1 : item, &size) || (!eq && !agent))
        return false;
    if (!eq && !*agent)
        *agent = size;
    return true;
}

typedef struct fy_tm_cap_want {
    const char *name;
    uint64_t cap;
} fy_tm_cap_want;

static bool fy_tm_cap_match(const char *item, void *arg)
{
    fy_tm_cap_want *w = arg;
    size_t n = strlen(w->name);
    if (strncasecmp(item, w->name, n) || item[n] != '=' || !fy_tm_parse_size(item + n + 1, &w->cap))
        return true;
    return false; /* found */
}

uint64_t fy_tm_cap_of(const char *spec, const char *name)
{
    fy_tm_cap_want want = {name, 0};
    fy_tm_each_item(spec, fy_tm_cap_match, &want);
    return want.cap;
}

/* FERRY_MAX_REGISTERED_BYTES: "SIZE" (the agent), "NAME=SIZE" (a backend),
 * or both, comma separated: "64G,UCX=32G". The config's fields win:
 * reg_cap_bytes for the agent, reg_cap_backends (NAME=SIZE only) for the
 * backends. */
static ferry_status fy_tm_resolve_caps(const fy_tm_settings *s, fy_tm_config *cfg)
{
    static const char want[] = "want SIZE or NAME=SIZE items (SIZE: bytes, or with K, M, G, T)";
    const char *env = getenv("FERRY_MAX_REGISTERED_BYTES");
    bool given = s->cap_backends && *s->cap_backends;
    cfg->cap_agent = s->cap_agent;
    if (given && !fy_tm_each_item(s->cap_backends, fy_tm_cap_item, NULL))
        return fy_tm_bad("the agent config's reg_cap_backends", s->cap_backends,
                         "want NAME=SIZE items (SIZE: bytes, or with K, M, G, T)");
    if (!fy_tm_each_item(env, fy_tm_cap_item, &cfg->cap_agent))
        return fy_tm_bad("FERRY_MAX_REGISTERED_BYTES", env, want);
    snprintf(cfg->cap_spec, sizeof(cfg->cap_spec), "%s", given ? s->cap_backends : env ? env : "");
    return FERRY_OK;
}

ferry_status fy_tm_config_resolve(const fy_tm_settings *s, fy_tm_config *cfg)
{
    char var[96];
    memset(cfg, 0, sizeof(*cfg));
    const char *on = fy_tm_env("ENABLE", var, sizeof(var));
    cfg->on = s->telemetry || fy_tm_yes(on);
    cfg->ring_slots = 4096; /* NIXL's NIXL_TELEMETRY_BUFFER_SIZE default */
    cfg->interval_ms = 100; /* NIXL's NIXL_TELEMETRY_RUN_INTERVAL default */
    cfg->prom_port = 9090;  /* NIXL's NIXL_TELEMETRY_PROMETHEUS_PORT default */
    fy_tm_default_dir(cfg);
    fy_tm_default_bounds(cfg);
    ferry_status rc = fy_tm_resolve_strings(s, cfg);
    if (rc == FERRY_OK)
        rc = fy_tm_resolve_numbers(s, cfg);
    if (rc == FERRY_OK)
        rc = fy_tm_resolve_caps(s, cfg);
    if (!cfg->on)
        cfg->ring = cfg->prometheus = false; /* exporters export telemetry: off is off */
    return rc;
}
