/* SPDX-License-Identifier: Apache-2.0 */
/* The ping-pong shared by ferry-pingpong and ferry-ucx-anchor
 * (pingpong.h). */
#include "pingpong.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>

void fb_pp_check(uint64_t block_size, uint64_t num_iter)
{
    if (block_size < 8 || block_size > FB_PP_MAX_BLOCK || block_size % 8)
        fb_exit(FB_EXIT_USAGE, "--block_size %" PRIu64 ": want 8..1M, a multiple of 8", block_size);
    if (!num_iter)
        fb_exit(FB_EXIT_USAGE, "--num_iter: want at least 1");
}

void fb_pp_pong_pipes(const char *role, int *in, int *out)
{
    char kind[16];
    unsigned id;
    fb_role_tag = "pong";
    if (!fb_role_parse(role, kind, sizeof(kind), &id, in, out))
        fb_exit(FB_EXIT_USAGE, "bad --fb_role");
}

void fb_pp_pong(const fb_pp_ops *ops, void *side, uint64_t turns)
{
    for (uint64_t seq = 1; seq <= turns; seq++) {
        ops->await(side, seq);
        ops->send(side, seq);
    }
}

void fb_pp_ping(const fb_pp_ops *ops, void *side, uint64_t warmup, uint64_t iters, fb_samples *half)
{
    for (uint64_t seq = 1; seq <= warmup + iters; seq++) {
        double t0 = fb_now_us();
        ops->send(side, seq);
        ops->await(side, seq);
        if (seq > warmup)
            fb_samples_add(half, (fb_now_us() - t0) / 2);
    }
}

void fb_pp_report(const char *what, uint64_t block_size, fb_samples *half, const char *json,
                  json_t *extra)
{
    double avg = fb_avg(half), p99 = fb_p99(half); /* sorts */
    double median = half->v[half->n / 2];
    printf("%s: %s, %" PRIu64 " B, %zu round trips: one way median %.3f us, avg %.3f us, "
           "p99 %.3f us\n",
           fb_prog, what, block_size, half->n, median, avg, p99);
    if (!json) {
        json_decref(extra);
        return;
    }
    json_t *row = extra;
    json_object_set_new(row, "block_size", json_integer((json_int_t)block_size));
    json_object_set_new(row, "iterations", json_integer((json_int_t)half->n));
    json_object_set_new(row, "one_way_median_us", json_real(round(median * 1e3) / 1e3));
    json_object_set_new(row, "one_way_avg_us", json_real(round(avg * 1e3) / 1e3));
    json_object_set_new(row, "one_way_p99_us", json_real(round(p99 * 1e3) / 1e3));
    FILE *f = fb_open_out(json);
    if (!ft_json_line(f, row))
        fb_die("writing --json %s", json);
    fb_close_out(f, json);
}
