/* SPDX-License-Identifier: Apache-2.0 */
/* LIBFABRIC on the shm provider: its endpoint's name, and the segments
 * that killed processes left behind.
 *
 * shm keeps each endpoint in a 16 MiB segment of /dev/shm named after the
 * endpoint, and unlinks it at close: a process killed (-9) leaves it
 * there, and by default the name holds only the pid, so a later process
 * that gets the same pid fails to open its endpoint (EBUSY). Ferry names
 * its endpoints itself, fylf-<pid namespace>-<pid>-<start time>-<agent
 * uid>-<n>, n counting this process's endpoints (shm caches peers' segments
 * by name in the process: a name is never used twice), and at each start
 * unlinks the segments whose process is gone (same pid namespace, pid gone
 * or now another program). */
#include <dirent.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lf_internal.h"

#define FY_LF_SHM_DIR "/dev/shm"

/* Unlinks a segment of ours whose process is gone; ignores anyone else's. */
static bool fy_lf_shm_stale(const fy_lf *be, const char *name)
{
    uint64_t pidns, starttime, uid, n;
    uint32_t pid;
    int used = 0;
    if (sscanf(name, "fylf-%" SCNu64 "-%" SCNu32 "-%" SCNu64 "-%" SCNx64 "-%" SCNu64 "%n", &pidns,
               &pid, &starttime, &uid, &n, &used) != 5 ||
        name[used])
        return false;
    return pidns == be->self.pidns && be->self.pidns && !fyp_pid_alive(pid, starttime);
}

static void fy_lf_shm_sweep(fy_lf *be)
{
    DIR *d = opendir(FY_LF_SHM_DIR);
    struct dirent *e;
    size_t n = 0;
    while (d && (e = readdir(d))) {
        char path[sizeof(FY_LF_SHM_DIR) + 256];
        snprintf(path, sizeof(path), FY_LF_SHM_DIR "/%s", e->d_name);
        if (fy_lf_shm_stale(be, e->d_name) && unlink(path) == 0)
            n++;
    }
    if (d)
        closedir(d);
    if (n)
        fy_lf_log(be, FERRY_LOG_INFO, "removed %zu shm segment(s) of killed processes", n);
}

/* Names the rail's endpoint (src_addr of the info the endpoint is opened
 * with) and sweeps stale segments first. */
ferry_status fy_lf_shm_prepare(fy_lf_rail *rail)
{
    fy_lf *be = rail->be;
    if (strcmp(rail->info->fabric_attr->prov_name, "shm"))
        return FERRY_OK;
    fy_lf_shm_sweep(be);
    static atomic_uint_fast64_t endpoints;
    char name[160];
    int len = snprintf(name, sizeof(name),
                       "fylf-%" PRIu64 "-%" PRIu32 "-%" PRIu64 "-%" PRIx64 "-%" PRIu64,
                       be->self.pidns, be->self.pid, be->self.starttime, be->host->agent_uid,
                       (uint64_t)atomic_fetch_add(&endpoints, 1));
    char *copy = strdup(name);
    if (!copy)
        return FERRY_ERR_NO_MEMORY;
    free(rail->info->src_addr);
    rail->info->src_addr = copy;
    rail->info->src_addrlen = (size_t)len + 1;
    return FERRY_OK;
}
