/* SPDX-License-Identifier: Apache-2.0 */
/* Results: merged across threads and processes, shipped over the pipes,
 * printed as nixlbench's table, written as CSV and JSON rows, plotted. */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Non-terminal progress lines start once a sweep has run this long. */
#define FB_PROGRESS_AFTER_US 5e6

/* ---- results ---- */

void fb_result_merge(fb_result *into, const fb_result *from)
{
    bool first = into->bytes == 0 && into->lat.n == 0;
    into->t_start = first || from->t_start < into->t_start ? from->t_start : into->t_start;
    into->t_end = from->t_end > into->t_end ? from->t_end : into->t_end;
    into->bytes += from->bytes;
    into->bad |= from->bad;
    fb_samples_append(&into->lat, from->lat.v, from->lat.n);
    fb_samples_append(&into->prep, from->prep.v, from->prep.n);
    fb_samples_append(&into->post, from->post.v, from->post.n);
    fb_samples_append(&into->xfer, from->xfer.v, from->xfer.n);
}

void fb_result_free(fb_result *r)
{
    fb_samples_free(&r->lat);
    fb_samples_free(&r->prep);
    fb_samples_free(&r->post);
    fb_samples_free(&r->xfer);
}

typedef struct fb_result_hdr {
    double t_start, t_end, bytes;
    uint32_t bad, n[4];
} fb_result_hdr;

/* Header, then the four sample arrays, in one message. */
void fb_result_send(int fd, const fb_result *r)
{
    const fb_samples *s[4] = {&r->lat, &r->prep, &r->post, &r->xfer};
    fb_result_hdr h = {r->t_start, r->t_end, r->bytes, r->bad, {0}};
    size_t len = sizeof(h);
    for (int i = 0; i < 4; i++)
        len += s[i]->n * sizeof(double);
    char *buf = fb_alloc(len), *p = buf + sizeof(h);
    for (int i = 0; i < 4; i++) {
        h.n[i] = (uint32_t)s[i]->n;
        memcpy(p, s[i]->v, s[i]->n * sizeof(double));
        p += s[i]->n * sizeof(double);
    }
    memcpy(buf, &h, sizeof(h));
    fb_msg_send(fd, FB_MSG_RESULT, buf, (uint32_t)len);
    free(buf);
}

void fb_result_recv(int fd, fb_result *r)
{
    uint32_t len;
    char *buf = fb_msg_recv(fd, FB_MSG_RESULT, &len), *p = buf + sizeof(fb_result_hdr);
    fb_result_hdr h;
    if (len < sizeof(h))
        fb_die("short result message");
    memcpy(&h, buf, sizeof(h));
    *r = (fb_result){.t_start = h.t_start, .t_end = h.t_end, .bytes = h.bytes, .bad = h.bad};
    fb_samples *s[4] = {&r->lat, &r->prep, &r->post, &r->xfer};
    for (int i = 0; i < 4; i++) {
        if ((size_t)(p - buf) + h.n[i] * sizeof(double) > len)
            fb_die("short result message");
        fb_samples_append(s[i], (const double *)(const void *)p, h.n[i]);
        p += h.n[i] * sizeof(double);
    }
    free(buf);
}

/* ---- a row ---- */

typedef struct fb_row {
    double gbps, lat, prep, prep99, post, post99, xfer, xfer99;
} fb_row;

static fb_row fb_row_of(fb_result *res)
{
    double us = res->t_end - res->t_start;
    return (fb_row){
        .gbps = us > 0 ? res->bytes / us / 1e3 : 0, /* bytes/us/1e3 = GB/s (1e9 B) */
        .lat = fb_avg(&res->lat),
        .prep = fb_avg(&res->prep),
        .prep99 = fb_p99(&res->prep),
        .post = fb_avg(&res->post),
        .post99 = fb_p99(&res->post),
        .xfer = fb_avg(&res->xfer),
        .xfer99 = fb_p99(&res->xfer),
    };
}

static const char *fb_check_word(const fb_config *c, const fb_result *res)
{
    return !c->check_consistency ? "unchecked" : res->bad ? "FAILED" : "ok";
}

#define FB_NFIELDS 22

static void fb_row_fields(const fb_config *c, const fb_step *st, const fb_result *res,
                          const fb_row *w, fb_field *f)
{
    static char tp[600]; /* the fields point at it until the next row */
    fb_field all[FB_NFIELDS] = {
        {"block_size", NULL, (double)st->block, -1},
        {"batch_size", NULL, (double)st->batch, -1},
        {"bandwidth_gbps", NULL, w->gbps, 6},
        {"avg_latency_us", NULL, w->lat, 3},
        {"prep_avg_us", NULL, w->prep, 3},
        {"prep_p99_us", NULL, w->prep99, 3},
        {"post_avg_us", NULL, w->post, 3},
        {"post_p99_us", NULL, w->post99, 3},
        {"xfer_avg_us", NULL, w->xfer, 3},
        {"xfer_p99_us", NULL, w->xfer99, 3},
        {"iterations", NULL, (double)st->iters, -1},
        {"bytes", NULL, res->bytes, -1},
        {"backend", c->backend, 0, 0},
        {"op_type", c->op_type, 0, 0},
        {"scheme", c->scheme, 0, 0},
        {"initiators", NULL, (double)c->topo.ni, -1},
        {"targets", NULL, (double)c->topo.nt, -1},
        {"threads", NULL, (double)c->num_threads, -1},
        {"consistency", fb_check_word(c, res), 0, 0},
        {"initiator_seg_type", c->initiator_seg_type, 0, 0},
        {"target_seg_type", c->target_seg_type, 0, 0},
        {"transport", fb_transport(c->backend, tp, sizeof(tp)), 0, 0},
    };
    memcpy(f, all, sizeof(all));
}

static void fb_table_header(const fb_config *c)
{
    printf("%-20s%-15s%-15s%-15s%-15s%-15s%-15s%-15s%-15s%-15s%s\n", "Block Size (B)", "Batch Size",
           "B/W (GB/Sec)", "Avg Lat. (us)", "Avg Prep (us)", "P99 Prep (us)", "Avg Post (us)",
           "P99 Post (us)", "Avg Tx (us)", "P99 Tx (us)", c->check_consistency ? "Check" : "");
    for (int i = 0; i < 155 + (c->check_consistency ? 9 : 0); i++)
        putchar('-');
    putchar('\n');
}

static void fb_table_row(const fb_config *c, const fb_step *st, const fb_result *res,
                         const fb_row *w)
{
    printf("%-20llu%-15llu%-15.4f%-15.3f%-15.3f%-15.3f%-15.3f%-15.3f%-15.3f%-15.3f%s\n",
           (unsigned long long)st->block, (unsigned long long)st->batch, w->gbps, w->lat, w->prep,
           w->prep99, w->post, w->post99, w->xfer, w->xfer99,
           c->check_consistency ? fb_check_word(c, res) : "");
    fflush(stdout);
}

/* ---- the report ---- */

static double fb_t0;

void fb_report_begin(fb_report *r, const fb_config *c)
{
    *r = (fb_report){.cfg = c, .tty = isatty(STDERR_FILENO) && !c->no_progress};
    r->csv = fb_open_out(c->csv);
    r->json = fb_open_out(c->json);
    if (c->plot && !c->json) {
        char tmpl[] = "/tmp/ferry-bench-rows-XXXXXX";
        int fd = mkstemp(tmpl);
        if (fd < 0 || !(r->json = fdopen(fd, "w")))
            fb_die("temporary file for --plot: %s", strerror(errno));
        r->json_tmp = strdup(tmpl);
    }
    fb_field f[FB_NFIELDS];
    fb_row_fields(c, &c->steps[0], &(fb_result){0}, &(fb_row){0}, f);
    if (r->csv)
        fb_csv_header(r->csv, f, FB_NFIELDS);
    fb_table_header(c);
    fb_t0 = fb_now_us();
}

void fb_report_progress(fb_report *r, const fb_step *st)
{
    const fb_config *c = r->cfg;
    if (c->no_progress || (!r->tty && fb_now_us() - fb_t0 < FB_PROGRESS_AFTER_US))
        return;
    fprintf(stderr, "%sferry-bench: step %u/%zu: block %llu x batch %llu, %llu iterations%s",
            r->tty ? "\r\033[K" : "", st->idx + 1, c->nsteps, (unsigned long long)st->block,
            (unsigned long long)st->batch, (unsigned long long)st->iters, r->tty ? "" : "\n");
    fflush(stderr);
}

void fb_report_row(fb_report *r, const fb_step *st, fb_result *res)
{
    const fb_config *c = r->cfg;
    fb_row w = fb_row_of(res);
    fb_field f[FB_NFIELDS];
    fb_row_fields(c, st, res, &w, f);
    if (r->tty)
        fprintf(stderr, "\r\033[K");
    fb_table_row(c, st, res, &w);
    if (r->csv)
        fb_csv_row(r->csv, f, FB_NFIELDS);
    if (r->json)
        fb_json_row(r->json, f, FB_NFIELDS);
    r->bad = r->bad || res->bad;
}

static void fb_sink_begin(void *ctx, const fb_step *st)
{
    fb_report_progress(ctx, st);
}

static void fb_sink_done(void *ctx, const fb_step *st, fb_result *r)
{
    fb_report_row(ctx, st, r);
}

fb_sink fb_report_sink(fb_report *r)
{
    return (fb_sink){.begin = fb_sink_begin, .done = fb_sink_done, .ctx = r};
}

/* ---- plot ---- */

static char *fb_plot_script(void)
{
    static const char *const dirs[] = {FB_TOOLS_SRC_DIR, FB_DATA_DIR};
    char *path = fb_find_file("FERRY_BENCH_PLOT", "ferry-bench-plot.py", dirs, 2);
    if (!path)
        fb_exit(FB_EXIT_PLOT, "--plot: ferry-bench-plot.py not found (set FERRY_BENCH_PLOT)");
    return path;
}

/* The interpreter that has matplotlib: $FERRY_PYTHON, else python3 on PATH,
 * else Debian's (where apt's python3-matplotlib lands when PATH starts
 * with another python, e.g. pyenv's). */
static const char *fb_python_exe;

/* Runs python with args (args[0] is replaced), its stderr silenced when
 * quiet; its exit code, 127 when it cannot start. */
static int fb_python(const char *exe, char **args, bool quiet)
{
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (quiet)
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    args[0] = (char *)exe;
    fflush(NULL);
    int err = posix_spawnp(&pid, exe, &fa, NULL, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err)
        return 127;
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

/* Before the sweep: a run that cannot plot fails now, not after an hour. */
void fb_plot_check(const fb_config *c)
{
    if (!c->plot)
        return;
    if (c->anchor_csv && access(c->anchor_csv, R_OK))
        fb_exit(FB_EXIT_USAGE, "--anchor_csv %s: %s", c->anchor_csv, strerror(errno));
    const char *env = getenv("FERRY_PYTHON");
    const char *cands[] = {env && *env ? env : "python3", "/usr/bin/python3"};
    char *script = fb_plot_script();
    char *args[] = {NULL, script, "--check", NULL};
    for (size_t i = 0; i < 2 && !fb_python_exe; i++)
        fb_python_exe = fb_python(cands[i], args, true) ? NULL : cands[i];
    int rc = fb_python_exe ? 0 : fb_python(cands[0], args, false); /* now say why */
    free(script);
    if (rc == 127)
        fb_exit(FB_EXIT_PLOT, "--plot needs python3, which is not on PATH");
    if (rc)
        fb_exit(FB_EXIT_PLOT, "--plot needs python3 with matplotlib (see the line above)");
}

static int fb_plot(const fb_report *r, const char *rows)
{
    const fb_config *c = r->cfg;
    char title[256];
    snprintf(title, sizeof(title), "ferry-bench %s %s, %s %s->%s, %s", c->backend, c->op_type,
             c->scheme, c->initiator_seg_type, c->target_seg_type,
             c->loopback ? "loopback" : "two processes");
    char *script = fb_plot_script();
    char *args[] = {NULL,      script, "--rows", (char *)rows, "--out", (char *)c->plot,
                    "--title", title,  NULL,     NULL,         NULL};
    if (c->anchor_csv) {
        args[8] = "--anchor_csv";
        args[9] = (char *)c->anchor_csv;
    }
    int rc = fb_python(fb_python_exe, args, false);
    free(script);
    if (rc)
        fb_warn("--plot %s: the plot script failed (exit %d)", c->plot, rc);
    return rc ? FB_EXIT_PLOT : FB_EXIT_OK;
}

int fb_report_end(fb_report *r)
{
    const fb_config *c = r->cfg;
    fb_close_out(r->csv, c->csv);
    fb_close_out(r->json, c->json ? c->json : r->json_tmp);
    int rc = c->plot ? fb_plot(r, c->json ? c->json : r->json_tmp) : FB_EXIT_OK;
    if (rc == FB_EXIT_OK && c->plot)
        printf("plot: %s\n", c->plot);
    if (r->json_tmp)
        unlink(r->json_tmp);
    free(r->json_tmp);
    return r->bad ? fb_exit_worse(rc, FB_EXIT_MISMATCH) : rc;
}
