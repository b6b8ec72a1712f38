/* SPDX-License-Identifier: Apache-2.0 */
/* What every ferry tool does the same way (tool-common.h). */
#include "tool-common.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ferry/ferry.h"

#ifndef FT_BUILD_VERSION
#define FT_BUILD_VERSION "unknown"
#endif

void ft_print_version(const char *prog)
{
    printf("%s %s (libferry %s)\n", prog, FT_BUILD_VERSION, ferry_version_string());
}

bool ft_std_arg(const char *prog, const char *arg, void (*usage)(FILE *))
{
    if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
        usage(stdout);
        return true;
    }
    if (!strcmp(arg, "--version")) {
        ft_print_version(prog);
        return true;
    }
    return false;
}

const char *ft_json_dest(const char *optarg, int argc, char **argv, int *optind)
{
    if (optarg)
        return optarg;
    if (*optind < argc && (!strcmp(argv[*optind], "-") || argv[*optind][0] != '-'))
        return argv[(*optind)++];
    return "-";
}

void ft_json_meta(json_t *obj)
{
    char host[256] = "unknown", when[32] = "";
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "unknown");
    host[sizeof(host) - 1] = '\0';
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_object_set_new(obj, "ferry_version", json_string(ferry_version_string()));
    json_object_set_new(obj, "host", json_string(host));
    json_object_set_new(obj, "time", json_string(when));
}

/* The real standard output once stdout points at stderr; -1 before. */
static int ft_data_fd = -1;

void ft_reserve_stdout(void)
{
    if (ft_data_fd >= 0)
        return;
    fflush(stdout);
    ft_data_fd = dup(STDOUT_FILENO);
    /* The tool's own text now goes to stderr; the data keeps stdout. */
    if (ft_data_fd >= 0)
        dup2(STDERR_FILENO, STDOUT_FILENO);
}

FILE *ft_out_open(const char *path)
{
    if (strcmp(path, "-"))
        return fopen(path, "w");
    ft_reserve_stdout();
    int fd = ft_data_fd >= 0 ? dup(ft_data_fd) : -1;
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return f;
}

bool ft_out_close(FILE *f)
{
    bool ok = !ferror(f);
    if (fclose(f) != 0)
        ok = false;
    return ok;
}

bool ft_json_line(FILE *f, json_t *obj)
{
    ft_json_meta(obj);
    int rc = json_dumpf(obj, f, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    json_decref(obj);
    if (rc != 0 || fputc('\n', f) == EOF || fflush(f) != 0)
        return false;
    return true;
}
