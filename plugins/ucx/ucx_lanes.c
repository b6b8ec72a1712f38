/* SPDX-License-Identifier: Apache-2.0 */
/* Which UCX transports carry the data to a peer: one INFO line per new
 * peer, "transports to <peer>: <tl/dev>... (<kind>)", and the kinds of
 * transport, which decide whether ferry's own active-message WRITEs are
 * worth it there (ucx_remote.c). Read from ucp_ep_query where the UCX
 * found at run time answers it (1.14 and newer), else from UCX's printed
 * description of the endpoint (ucp_ep_print_info: 1.13 has no query for an
 * endpoint's transports). ferry-bench and ferry-demo show the line, so a
 * user sees whether shared memory, CMA or TCP moved their bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ucx_internal.h"

/* Adds "tl/dev" to list unless there (tl: up to a space, comma or end). */
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

/* From UCX's text: the token after "lane[i]: ... :" of every lane line. */
static void fy_ucx_lanes_printed(ucp_ep_h ep, char *list, size_t cap)
{
    char *text = NULL;
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
            fy_ucx_lanes_add(list, cap, tl + 1);
    }
    free(text);
}

#if UCP_API_VERSION >= UCP_VERSION(1, 14)
/* From ucp_ep_query: false when this UCX does not answer it. */
static bool fy_ucx_lanes_queried(const fy_ucx *u, ucp_ep_h ep, char *list, size_t cap)
{
    ucp_transport_entry_t entries[32];
    ucp_ep_attr_t attr = {
        .field_mask = UCP_EP_ATTR_FIELD_TRANSPORTS,
        .transports = {.entries = entries, .num_entries = 32, .entry_size = sizeof(entries[0])}};
    if (!fy_ucx_runs_at_least(u, 1, 14) || ucp_ep_query(ep, &attr) != UCS_OK)
        return false;
    for (unsigned i = 0; i < attr.transports.num_entries && i < 32; i++) {
        char tok[64];
        snprintf(tok, sizeof(tok), "%s/%s", entries[i].transport_name, entries[i].device_name);
        fy_ucx_lanes_add(list, cap, tok);
    }
    return true;
}
#else
static bool fy_ucx_lanes_queried(const fy_ucx *u, ucp_ep_h ep, char *list, size_t cap)
{
    (void)u, (void)ep, (void)list, (void)cap;
    return false;
}
#endif

/* The kind of one "tl/dev" token. */
static unsigned fy_ucx_lane_kind(const char *tok)
{
    static const struct {
        const char *prefix;
        unsigned kind;
    } kinds[] = {
        {"tcp/", FY_UCX_LANE_TCP},    {"posix/", FY_UCX_LANE_SHM},   {"sysv/", FY_UCX_LANE_SHM},
        {"cma/", FY_UCX_LANE_KERNEL}, {"knem/", FY_UCX_LANE_KERNEL}, {"xpmem/", FY_UCX_LANE_KERNEL},
        {"rc", FY_UCX_LANE_RDMA},     {"dc", FY_UCX_LANE_RDMA},      {"ud", FY_UCX_LANE_RDMA}};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (!strncmp(tok, kinds[i].prefix, strlen(kinds[i].prefix)))
            return kinds[i].kind;
    return FY_UCX_LANE_OTHER;
}

static unsigned fy_ucx_lanes_kinds(const char *list)
{
    unsigned kinds = 0;
    for (const char *p = list; *p; p += strcspn(p, " "), p += *p == ' ')
        kinds |= fy_ucx_lane_kind(p);
    return kinds;
}

static const char *fy_ucx_lanes_name(unsigned kinds)
{
    if (kinds & FY_UCX_LANE_RDMA)
        return "RDMA";
    if (kinds & FY_UCX_LANE_KERNEL)
        return kinds & FY_UCX_LANE_TCP ? "kernel copy (CMA) and TCP" : "kernel copy (CMA)";
    if (kinds & FY_UCX_LANE_SHM)
        return kinds & FY_UCX_LANE_TCP ? "shared memory and TCP" : "shared memory";
    return kinds & FY_UCX_LANE_TCP ? "TCP" : "other";
}

unsigned fy_ucx_lanes(fy_ucx *u, ucp_ep_h ep, const char *peer)
{
    char list[512] = "";
    if (!fy_ucx_lanes_queried(u, ep, list, sizeof(list)))
        fy_ucx_lanes_printed(ep, list, sizeof(list));
    unsigned kinds = fy_ucx_lanes_kinds(list);
    if (peer)
        UCX_LOG(u, FERRY_LOG_INFO, "transports to %s: %s (%s)", peer, list[0] ? list : "unknown",
                fy_ucx_lanes_name(kinds));
    return kinds;
}
