/* SPDX-License-Identifier: Apache-2.0 */
/* Command-line options the way nixlbench takes them (gflags: `--name value`,
 * `--name=value`, `-name`, `--noflag`; its newer CLI also spells names with
 * dashes), sizes with binary units, and --config_file (ferry's TOML
 * subset, toml.c). --help and --version mean what they mean in every
 * tool (tool-common.h). */
#include "common.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- numbers ---- */

bool fb_parse_uint(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return false; /* strtoull would take spaces and signs */
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

static unsigned fb_unit_shift(char c)
{
    switch (toupper((unsigned char)c)) {
    case 'K':
        return 10;
    case 'M':
        return 20;
    case 'G':
        return 30;
    case 'T':
        return 40;
    default:
        return 0;
    }
}

/* "4096", "4K", "4k", "4KB", "4KiB": nixlbench's docs write KiB/MiB/GiB;
 * every unit here is binary. */
bool fb_parse_size(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return false;
    unsigned shift = *end ? fb_unit_shift(*end) : 0;
    if (*end && !shift)
        return false;
    const char *rest = *end ? end + 1 : end;
    if (*rest && strcmp(rest, "B") && strcmp(rest, "iB") && strcmp(rest, "b"))
        return false;
    if (shift && v > (UINT64_MAX >> shift))
        return false;
    *out = (uint64_t)v << shift;
    return true;
}

static bool fb_parse_bool(const char *s, bool *out)
{
    static const char *yes[] = {"1", "true", "yes", "on"}, *no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(s, yes[i]) || !strcasecmp(s, no[i])) {
            *out = !strcasecmp(s, yes[i]);
            return true;
        }
    }
    return false;
}

/* ---- the option table ---- */

static void fb_normalize(char *name)
{
    for (char *p = name; *p; p++)
        if (*p == '-')
            *p = '_';
}

/* Finds name (or, for booleans, "no" + name: *negated). */
static const fb_opt *fb_opt_find(const fb_opt *t, const char *name, bool *negated)
{
    *negated = false;
    for (const fb_opt *o = t; o->name; o++)
        if (!strcmp(o->name, name))
            return o;
    if (strncmp(name, "no", 2))
        return NULL;
    for (const fb_opt *o = t; o->name; o++)
        if (o->kind == FB_OPT_BOOL && !strcmp(o->name, name + 2)) {
            *negated = true;
            return o;
        }
    return NULL;
}

static bool fb_opt_set(const fb_opt *o, const char *v)
{
    switch (o->kind) {
    case FB_OPT_SIZE:
        return fb_parse_size(v, o->ptr);
    case FB_OPT_UINT:
        return fb_parse_uint(v, o->ptr);
    case FB_OPT_BOOL:
        return fb_parse_bool(v, o->ptr);
    case FB_OPT_STR:
        *(const char **)o->ptr = v;
        return true;
    }
    return false;
}

static const char *fb_kind_hint(fb_opt_kind k)
{
    static const char *hints[] = {"SIZE", "N", "STR", ""};
    return hints[k];
}

static void fb_opt_apply(const fb_opt *o, const char *name, const char *v)
{
    if (!fb_opt_set(o, v))
        fb_exit(FB_EXIT_USAGE, "--%s: bad value '%s'%s", name, v,
                o->kind == FB_OPT_SIZE ? " (want a size: 4096, 4K, 1M, 64MiB, 8G)" : "");
}

void fb_opts_usage(FILE *f, const fb_opt *table)
{
    for (const fb_opt *o = table; o->name; o++) {
        if (o->flags & FB_OPT_HIDDEN)
            continue;
        char left[64];
        snprintf(left, sizeof(left), "--%s %s", o->name, fb_kind_hint(o->kind));
        fprintf(f, "  %-30s %s\n", left, o->help);
    }
}

/* One argv entry (and maybe the next one); returns how many it used. */
static int fb_opts_one(const fb_opt *table, int argc, char **argv, int i)
{
    char name[128];
    const char *a = argv[i];
    if (a[0] != '-' || !a[1])
        fb_exit(FB_EXIT_USAGE, "unexpected argument '%s' (see --help)", a);
    a += a[1] == '-' ? 2 : 1;
    const char *eq = strchr(a, '=');
    snprintf(name, sizeof(name), "%.*s", (int)(eq ? (size_t)(eq - a) : strlen(a)), a);
    fb_normalize(name);
    if (!strcmp(name, "help") || !strcmp(name, "h")) {
        printf("usage: %s [options]\n", fb_prog);
        fb_opts_usage(stdout, table);
        printf("  %-30s %s\n  %-30s %s\n", "--help", "this text", "--version",
               "the version, one line");
        exit(FB_EXIT_OK);
    }
    if (!strcmp(name, "version")) {
        ft_print_version(fb_prog);
        exit(FB_EXIT_OK);
    }
    bool negated;
    const fb_opt *o = fb_opt_find(table, name, &negated);
    if (!o)
        fb_exit(FB_EXIT_USAGE, "unknown option --%s (see --help)", name);
    if (o->kind == FB_OPT_BOOL) {
        fb_opt_apply(o, name, eq ? eq + 1 : negated ? "false" : "true");
        return 1;
    }
    if (!eq && i + 1 >= argc)
        fb_exit(FB_EXIT_USAGE, "--%s needs a value", name);
    fb_opt_apply(o, name, eq ? eq + 1 : argv[i + 1]);
    return eq ? 1 : 2;
}

/* Values of string options read from --config_file: the options point at
 * them for the whole run (a program may replace the pointer meanwhile). */
#define FB_MAX_KEPT 128
static char *fb_cfg_strings[FB_MAX_KEPT];
static size_t fb_cfg_kept;

static bool fb_cfg_key(void *ctx, const char *key, const char *value, char *err, size_t err_len)
{
    const fb_opt *table = ctx;
    char name[128];
    bool negated;
    snprintf(name, sizeof(name), "%s", key);
    fb_normalize(name);
    const fb_opt *o = fb_opt_find(table, name, &negated);
    if (!o || negated) {
        snprintf(err, err_len, "unknown option '%s'", key);
        return false;
    }
    char *v = strdup(value);
    if (!v || fb_cfg_kept == FB_MAX_KEPT || !fb_opt_set(o, v)) {
        snprintf(err, err_len, "bad value '%s' for %s", value, key);
        free(v);
        return false;
    }
    if (o->kind == FB_OPT_STR)
        fb_cfg_strings[fb_cfg_kept++] = v; /* in use for the whole run */
    else
        free(v);
    return true;
}

/* The value of --config_file on the command line, if any. */
static const char *fb_config_arg(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i] + strspn(argv[i], "-");
        if (!strncmp(a, "config_file=", 12) || !strncmp(a, "config-file=", 12))
            return a + 12;
        if ((!strcmp(a, "config_file") || !strcmp(a, "config-file")) && i + 1 < argc)
            return argv[i + 1];
    }
    return NULL;
}

void fb_opts_parse(const fb_opt *table, int argc, char **argv)
{
    const char *cfg = fb_config_arg(argc, argv);
    bool negated;
    if (cfg && fb_opt_find(table, "config_file", &negated)) {
        char err[256];
        if (!fb_toml_read(cfg, fb_cfg_key, (void *)table, err, sizeof(err)))
            fb_exit(FB_EXIT_USAGE, "--config_file %s: %s", cfg, err);
    }
    for (int i = 1; i < argc;)
        i += fb_opts_one(table, argc, argv, i);
    /* Data on standard output: the text goes to stderr from the start. */
    for (const fb_opt *o = table; o->name; o++)
        if (o->kind == FB_OPT_STR && (!strcmp(o->name, "json") || !strcmp(o->name, "csv")) &&
            *(const char **)o->ptr && !strcmp(*(const char **)o->ptr, "-"))
            ft_reserve_stdout();
}
