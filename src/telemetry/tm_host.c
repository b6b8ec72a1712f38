/* SPDX-License-Identifier: Apache-2.0 */
/* Host figures for the ledger's gauges: what the process holds (RSS),
 * what the host has left (MemAvailable), and how much a process may lock
 * (RLIMIT_MEMLOCK), which registration caches pin against. */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "telemetry/tm.h"

/* The kB value of "key:" in a /proc file of that form, in bytes. */
static uint64_t fy_proc_kb(const char *path, const char *key)
{
    FILE *f = fopen(path, "re");
    char line[256];
    unsigned long long kb = 0;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, key, n) && line[n] == ':' && sscanf(line + n + 1, "%llu", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return (uint64_t)kb * 1024u;
}

uint64_t fy_host_rss_bytes(void)
{
    return fy_proc_kb("/proc/self/status", "VmRSS");
}

uint64_t fy_host_mem_available_bytes(void)
{
    return fy_proc_kb("/proc/meminfo", "MemAvailable");
}

uint64_t fy_host_memlock_limit_bytes(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0)
        return 0;
    return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
}
