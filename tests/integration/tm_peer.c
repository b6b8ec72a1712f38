/* SPDX-License-Identifier: Apache-2.0 */
/* A process with telemetry-exporting agents, for the telemetry tests:
 *
 *   tm_peer NAME[,NAME...] PORT DIR COUNT SIZE
 *
 * creates each agent NAME (up to 4) with telemetry on and both exporters
 * (the Prometheus endpoint on PORT, shared by the agents of the process,
 * the event ring under DIR, publishing every 100 ms), a LOCAL backend and
 * two registered buffers; each posts COUNT loopback WRITEs of SIZE bytes.
 * Then it prints "ready" and lives until its standard input closes (or a
 * line arrives), so the test decides when it leaves. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/ferry.h>

#include "testutil.h"

static ferry_status tm_workload(tu_loop *lp, long count, size_t size)
{
    for (long i = 0; i < count; i++) {
        ferry_xfer *x = NULL;
        ferry_status rc = tu_loop_xfer(lp, FERRY_OP_WRITE, size, NULL, &x);
        if (rc == FERRY_OK)
            rc = tu_post_wait(x);
        ferry_xfer_release(x);
        if (rc != FERRY_OK)
            return rc;
    }
    return FERRY_OK;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: tm_peer NAME PORT DIR COUNT SIZE\n");
        return 2;
    }
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.telemetry = true;
    cfg.telemetry_exporters = "prometheus,ring";
    cfg.telemetry_prometheus_port = (uint16_t)atoi(argv[2]);
    cfg.telemetry_dir = argv[3];
    cfg.telemetry_interval_ms = 100;
    size_t size = strtoul(argv[5], NULL, 10);
    tu_loop lp[4];
    int n = 0;
    ferry_status rc = FERRY_OK;
    for (char *save, *name = strtok_r(argv[1], ",", &save); name && n < 4 && rc == FERRY_OK;
         name = strtok_r(NULL, ",", &save)) {
        rc = tu_loop_open(&lp[n++], name, &cfg, NULL, 0, size ? size : 1);
        if (rc == FERRY_OK)
            rc = tm_workload(&lp[n - 1], atol(argv[4]), size);
    }
    if (rc != FERRY_OK) {
        fprintf(stderr, "tm_peer: %s (%s)\n", ferry_strerror(rc), ferry_last_error());
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof(line), stdin)) { /* EOF: the test is done with us */
    }
    while (n > 0)
        tu_loop_close(&lp[--n]);
    return 0;
}
