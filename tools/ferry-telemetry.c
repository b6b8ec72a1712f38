/* SPDX-License-Identifier: Apache-2.0 */
/* ferry-telemetry: reads the event rings agents write under the telemetry
 * directory (docs/telemetry.md, "Event ring"), from another process.
 *
 *   ferry-telemetry [--dir DIR] [--json [F]] list
 *   ferry-telemetry [--dir DIR] [--json [F]] summary [AGENT]
 *   ferry-telemetry [--dir DIR] [--json [F]] tail [AGENT] [--follow] [--seconds N]
 *
 * list: the rings (agent, pid, alive, capacity, events written). summary:
 * per agent, the events still in its ring by kind, bytes by direction,
 * errors, and how many the ring already overwrote. tail: the events in
 * order, oldest still there first; --follow keeps reading new ones (for N
 * seconds, or until interrupted) and reports overruns it meets. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ferry/ferry.h>

#include "telemetry/ring.h"
#include "tool-common.h"

typedef struct ft_opts {
    char dir[512];
    const char *json; /* --json destination, NULL: text */
    bool follow;
    double seconds; /* --follow's bound, 0 = until interrupted */
    const char *cmd, *agent;
} ft_opts;

static volatile sig_atomic_t ft_stop;
static FILE *ft_out; /* --json's destination */

static void ft_on_signal(int sig)
{
    (void)sig;
    ft_stop = 1;
}

static void usage(FILE *f)
{
    fprintf(
        f, "usage: ferry-telemetry [--dir DIR] [--json [F]] list\n"
           "       ferry-telemetry [--dir DIR] [--json [F]] summary [AGENT]\n"
           "       ferry-telemetry [--dir DIR] [--json [F]] tail [AGENT] [--follow] [--seconds N]\n"
           "Reads the event rings of ferry agents (telemetry with the ring exporter).\n"
           "  --dir DIR     the telemetry directory (default: FERRY_TELEMETRY_DIR,\n"
           "                NIXL_TELEMETRY_DIR, else /dev/shm/ferry-telemetry-<uid>)\n"
           "  --json [F]    one JSON object per line, to F (default and '-': standard output)\n"
           "  --follow      tail: keep reading new events\n"
           "  --seconds N   --follow: stop after N seconds\n"
           "  --help, --version\n"
           "Exit status: 0 done, 1 no ring or unreadable, 2 bad usage.\n");
}

static void ft_default_dir(ft_opts *o)
{
    const char *v = getenv("FERRY_TELEMETRY_DIR");
    if (!v || !*v)
        v = getenv("NIXL_TELEMETRY_DIR");
    if (v && *v)
        snprintf(o->dir, sizeof(o->dir), "%s", v);
    else
        snprintf(o->dir, sizeof(o->dir), "/dev/shm/ferry-telemetry-%u", (unsigned)getuid());
}

static int ft_parse(int argc, char **argv, ft_opts *o)
{
    static const struct option longs[] = {{"dir", required_argument, NULL, 'd'},
                                          {"json", optional_argument, NULL, 'j'},
                                          {"follow", no_argument, NULL, 'f'},
                                          {"seconds", required_argument, NULL, 's'},
                                          {"help", no_argument, NULL, 'h'},
                                          {"version", no_argument, NULL, 'V'},
                                          {NULL, 0, NULL, 0}};
    int c;
    ft_default_dir(o);
    while ((c = getopt_long(argc, argv, "d:jfs:hV", longs, NULL)) != -1) {
        if (c == 'd')
            snprintf(o->dir, sizeof(o->dir), "%s", optarg);
        else if (c == 'j')
            o->json = ft_json_dest(optarg, argc, argv, &optind);
        else if (c == 'f')
            o->follow = true;
        else if (c == 's')
            o->seconds = atof(optarg);
        else if (c == 'h' || c == 'V')
            return c == 'h' ? (usage(stdout), -1) : (ft_print_version("ferry-telemetry"), -1);
        else
            return FT_EXIT_USAGE;
    }
    o->cmd = optind < argc ? argv[optind++] : NULL;
    o->agent = optind < argc ? argv[optind++] : NULL;
    bool known = o->cmd &&
                 (!strcmp(o->cmd, "list") || !strcmp(o->cmd, "summary") || !strcmp(o->cmd, "tail"));
    return known && optind == argc && o->seconds >= 0 ? 0 : FT_EXIT_USAGE;
}

/* ---- naming ---- */

static const char *ft_event_name(uint32_t type)
{
    static const char *const names[] = {
        "?",          "xfer_post",      "xfer_done",    "mem_register", "mem_deregister",
        "notif_sent", "notif_received", "notif_dropped"};
    return type < sizeof(names) / sizeof(names[0]) ? names[type] : "?";
}

static const char *ft_op_name(const ferry_ring_slot *s)
{
    if (s->type == FERRY_RING_XFER_POST || s->type == FERRY_RING_XFER_DONE)
        return s->op ? "WRITE" : "READ";
    if (s->type == FERRY_RING_MEM_REGISTER || s->type == FERRY_RING_MEM_DEREGISTER)
        return ferry_mem_type_name((ferry_mem_type)s->op);
    return "";
}

static bool ft_alive(uint32_t pid)
{
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* ---- the rings of the directory ---- */

typedef void (*ft_ring_fn)(const ft_opts *o, const char *path, fy_ring_reader *r);

/* Calls fn for each readable ring of the directory (or AGENT's only);
 * the number of rings it was given. */
static int ft_each_ring(const ft_opts *o, ft_ring_fn fn)
{
    DIR *d = opendir(o->dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".ring"))
            continue;
        if (o->agent && (len - 5 != strlen(o->agent) || strncmp(e->d_name, o->agent, len - 5)))
            continue;
        char path[1024];
        fy_ring_reader r;
        snprintf(path, sizeof(path), "%s/%s", o->dir, e->d_name);
        if (fy_ring_open(path, true, &r) != FERRY_OK) {
            fprintf(stderr, "ferry-telemetry: %s: not a readable ring\n", path);
            continue;
        }
        fn(o, path, &r);
        fy_ring_close(&r);
        n++;
    }
    if (d)
        closedir(d);
    return n;
}

/* ---- list ---- */

static void ft_list_one(const ft_opts *o, const char *path, fy_ring_reader *r)
{
    const ferry_ring_header *h = r->hdr;
    uint64_t head = __atomic_load_n(&h->head, __ATOMIC_ACQUIRE);
    if (!o->json) {
        printf("%-24s pid %-8u %-5s capacity %-8u events %llu  %s\n", h->agent, h->pid,
               ft_alive(h->pid) ? "alive" : "gone", h->capacity, (unsigned long long)head, path);
        return;
    }
    json_t *j = json_pack("{s:s,s:s,s:I,s:b,s:I,s:I}", "agent", h->agent, "path", path, "pid",
                          (json_int_t)h->pid, "alive", ft_alive(h->pid), "capacity",
                          (json_int_t)h->capacity, "events", (json_int_t)head);
    ft_json_line(ft_out, j);
}

/* ---- summary ---- */

typedef struct ft_sum {
    uint64_t events[8], bytes_write, bytes_read, errors, registered, deregistered;
} ft_sum;

static void ft_sum_add(ft_sum *s, const ferry_ring_slot *e)
{
    s->events[e->type < 8 ? e->type : 0]++;
    if (e->type == FERRY_RING_XFER_DONE && e->status < 0)
        s->errors++;
    if (e->type == FERRY_RING_XFER_POST)
        *(e->op ? &s->bytes_write : &s->bytes_read) += e->value;
    if (e->type == FERRY_RING_MEM_REGISTER)
        s->registered += e->value;
    if (e->type == FERRY_RING_MEM_DEREGISTER)
        s->deregistered += e->value;
}

static json_t *ft_sum_json(const ft_sum *s, const fy_ring_reader *r)
{
    json_t *ev = json_object();
    for (uint32_t t = 1; t < 8; t++)
        json_object_set_new(ev, ft_event_name(t), json_integer((json_int_t)s->events[t]));
    return json_pack("{s:s,s:I,s:o,s:{s:I,s:I},s:I,s:{s:I,s:I},s:I}", "agent", r->hdr->agent, "pid",
                     (json_int_t)r->hdr->pid, "events", ev, "bytes", "write",
                     (json_int_t)s->bytes_write, "read", (json_int_t)s->bytes_read, "errors",
                     (json_int_t)s->errors, "memory", "registered", (json_int_t)s->registered,
                     "deregistered", (json_int_t)s->deregistered, "overwritten",
                     (json_int_t)r->lost);
}

static void ft_summary_one(const ft_opts *o, const char *path, fy_ring_reader *r)
{
    (void)path;
    ft_sum s = {0};
    ferry_ring_slot e;
    while (fy_ring_next(r, &e) == FERRY_OK)
        ft_sum_add(&s, &e);
    if (o->json) {
        ft_json_line(ft_out, ft_sum_json(&s, r));
        return;
    }
    printf(
        "%s (pid %u): %llu posts (%llu B written, %llu B read), %llu completions, %llu "
        "errors, %llu registrations, %llu notifications; %llu events overwritten\n",
        r->hdr->agent, r->hdr->pid, (unsigned long long)s.events[FERRY_RING_XFER_POST],
        (unsigned long long)s.bytes_write, (unsigned long long)s.bytes_read,
        (unsigned long long)s.events[FERRY_RING_XFER_DONE], (unsigned long long)s.errors,
        (unsigned long long)s.events[FERRY_RING_MEM_REGISTER],
        (unsigned long long)(s.events[FERRY_RING_NOTIF_SENT] + s.events[FERRY_RING_NOTIF_RECEIVED]),
        (unsigned long long)r->lost);
}

/* ---- tail ---- */

static void ft_event_out(const ft_opts *o, const fy_ring_reader *r, const ferry_ring_slot *e)
{
    if (o->json) {
        json_t *j = json_pack("{s:s,s:I,s:I,s:s,s:s,s:s,s:i,s:I,s:I}", "agent", r->hdr->agent,
                              "seq", (json_int_t)(e->stamp - 1), "time_us", (json_int_t)e->time_us,
                              "event", ft_event_name(e->type), "backend", e->backend, "op",
                              ft_op_name(e), "status", e->status, "bytes", (json_int_t)e->value,
                              "duration_us", (json_int_t)e->duration_us);
        ft_json_line(ft_out, j);
        return;
    }
    printf("%s #%llu %llu.%06llu %-14s %-6s %-6s %10llu B %8llu us %s\n", r->hdr->agent,
           (unsigned long long)(e->stamp - 1), (unsigned long long)(e->time_us / 1000000u),
           (unsigned long long)(e->time_us % 1000000u), ft_event_name(e->type), e->backend,
           ft_op_name(e), (unsigned long long)e->value, (unsigned long long)e->duration_us,
           e->status ? ferry_status_name((ferry_status)e->status) : "");
}

static void ft_lost_out(const ft_opts *o, const fy_ring_reader *r, uint64_t lost)
{
    if (o->json)
        ft_json_line(ft_out, json_pack("{s:s,s:I}", "agent", r->hdr->agent, "overwritten",
                                       (json_int_t)lost));
    else
        printf("# %s: %llu events overwritten before they were read (overrun)\n", r->hdr->agent,
               (unsigned long long)lost);
}

/* Prints what r has now; whether it had anything. */
static bool ft_drain(const ft_opts *o, fy_ring_reader *r)
{
    ferry_ring_slot e;
    bool any = false;
    uint64_t lost = r->lost;
    while (fy_ring_next(r, &e) == FERRY_OK) {
        if (r->lost != lost)
            ft_lost_out(o, r, r->lost - lost);
        lost = r->lost;
        ft_event_out(o, r, &e);
        any = true;
    }
    if (r->lost != lost)
        ft_lost_out(o, r, r->lost - lost);
    fflush(o->json ? ft_out : stdout);
    return any;
}

#define FT_MAX_RINGS 256

typedef struct ft_tail {
    fy_ring_reader r[FT_MAX_RINGS];
    int n;
} ft_tail;

static ft_tail *ft_tail_state;

static void ft_tail_keep(const ft_opts *o, const char *path, fy_ring_reader *r)
{
    (void)o, (void)path;
    if (ft_tail_state->n < FT_MAX_RINGS) {
        ft_tail_state->r[ft_tail_state->n++] = *r;
        r->hdr = NULL; /* kept open: ft_each_ring's close is a no-op */
    }
}

static double ft_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int ft_cmd_tail(const ft_opts *o)
{
    static ft_tail t;
    ft_tail_state = &t;
    if (ft_each_ring(o, ft_tail_keep) == 0)
        return FT_EXIT_ERROR;
    double end = o->seconds > 0 ? ft_now() + o->seconds : 0;
    for (;;) {
        bool any = false;
        for (int i = 0; i < t.n; i++)
            any |= ft_drain(o, &t.r[i]);
        if (!o->follow || ft_stop || (end && ft_now() >= end))
            break;
        if (!any)
            usleep(20000);
    }
    for (int i = 0; i < t.n; i++)
        fy_ring_close(&t.r[i]);
    return FT_EXIT_OK;
}

int main(int argc, char **argv)
{
    ft_opts o = {0};
    int rc = ft_parse(argc, argv, &o);
    if (rc < 0)
        return FT_EXIT_OK;
    if (rc) {
        usage(stderr);
        return rc;
    }
    if (o.json && !(ft_out = ft_out_open(o.json))) {
        fprintf(stderr, "ferry-telemetry: %s: %s\n", o.json, strerror(errno));
        return FT_EXIT_ERROR;
    }
    signal(SIGINT, ft_on_signal);
    signal(SIGTERM, ft_on_signal);
    if (!strcmp(o.cmd, "tail"))
        rc = ft_cmd_tail(&o);
    else
        rc = ft_each_ring(&o, !strcmp(o.cmd, "list") ? ft_list_one : ft_summary_one)
                 ? FT_EXIT_OK
                 : FT_EXIT_ERROR;
    if (rc == FT_EXIT_ERROR)
        fprintf(stderr, "ferry-telemetry: no ring%s%s in %s\n", o.agent ? " of " : "",
                o.agent ? o.agent : "", o.dir);
    if (ft_out && !ft_out_close(ft_out))
        rc = FT_EXIT_ERROR;
    return rc;
}
