/* SPDX-License-Identifier: Apache-2.0 */
/* Which UCX transports carry the data to a peer: one INFO line per new
 * peer, "transports to <peer>: <tl/dev>... (<kind>)", read from UCX's own
 * description of the endpoint (ucp_ep_print_info; UCX 1.13 has no query
 * for an endpoint's transports). ferry-bench and ferry-demo show it, so a
 * user sees whether shared memory or TCP moved their bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ucx_internal.h"

/* Adds "tl/dev" (the token after "lane[i]: ... :" up to a space) to list
 * unless there. */
static void fy_ucx_lanes_add(char *list, size_t cap, const char *tl)
{
    char tok[64];
    size_t n = strcspn(tl, " \t,");
    if (!n || n >= sizeof(tok))
        return;
    memcpy(tok, tl, n);
    tok[n] = '\0';
    for (const char *p = strstr(list, tok); p; p = strstr(p + 1, tok))
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || !p[n]))
            return;
    size_t len = strlen(list);
    snprintf(list + len, cap - len, "%s%s", len ? " " : "", tok);
}

void fy_ucx_log_lanes(fy_ucx *u, ucp_ep_h ep, const char *peer)
{
    char *text = NULL, list[512] = "";
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return;
    ucp_ep_print_info(ep, f);
    fclose(f);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *lane = strstr(line, "lane[");
        char *tl = lane ? strchr(lane, ':') : NULL; /* "lane[0]:  1:posix/memory.0 md0 ..." */
        tl = tl ? strchr(tl + 1, ':') : NULL;
        if (tl)
            fy_ucx_lanes_add(list, sizeof(list), tl + 1);
    }
    free(text);
    bool tcp = strstr(list, "tcp/") != NULL;
    bool shm = strstr(list, "posix/") || strstr(list, "sysv/") || strstr(list, "cma/") ||
               strstr(list, "xpmem/") || strstr(list, "knem/");
    bool ib = strstr(list, "rc_") || strstr(list, "dc_") || strstr(list, "ud_");
    UCX_LOG(u, FERRY_LOG_INFO, "transports to %s: %s (%s)", peer, list[0] ? list : "unknown",
            ib    ? "RDMA"
            : shm ? (tcp ? "shared memory and TCP" : "shared memory")
            : tcp ? "TCP"
                  : "other");
}
