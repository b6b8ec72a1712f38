/* SPDX-License-Identifier: Apache-2.0 */
/* ferry-idle: how much CPU an idle agent burns. An agent with its progress
 * thread and side-channel listener on, one backend, nothing to do, for a
 * few seconds; prints the share of one core its process used.
 * Usage: ferry-idle [backend] [seconds] */
#include <ferry/ferry.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tool-common.h"

static double cpu_seconds(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
           (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) * 1e-6;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: ferry-idle [BACKEND] [SECONDS]   (defaults UCX, 5)\n"
               "The share of one core an idle agent (progress thread, listener, one backend)\n"
               "uses. Exit status: 0 done, 1 failed, 2 bad usage.\n");
}

int main(int argc, char **argv)
{
    if (argc > 1 && ft_std_arg("ferry-idle", argv[1], usage))
        return FT_EXIT_OK;
    if (argc > 3 || (argc > 1 && argv[1][0] == '-')) {
        usage(stderr);
        return FT_EXIT_USAGE;
    }
    const char *backend = argc > 1 ? argv[1] : "UCX";
    unsigned seconds = argc > 2 ? (unsigned)atoi(argv[2]) : 5;
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = "idle";
    cfg.progress_thread = true;
    cfg.listen = true;
    cfg.listen_host = "127.0.0.1";
    ferry_agent *agent;
    ferry_backend *be;
    ferry_status rc = ferry_agent_create(&cfg, &agent);
    if (rc == FERRY_OK)
        rc = ferry_backend_create(agent, backend, NULL, 0, &be);
    if (rc != FERRY_OK) {
        fprintf(stderr, "ferry-idle: %s: %s\n", backend, ferry_strerror(rc));
        return 1;
    }
    double before = cpu_seconds();
    sleep(seconds ? seconds : 1);
    double used = cpu_seconds() - before;
    printf("ferry-idle: idle agent (%s, progress thread, listener): %.2f%% of one core over %u s\n",
           backend, used / (seconds ? seconds : 1) * 100.0, seconds);
    ferry_agent_destroy(agent);
    return 0;
}
