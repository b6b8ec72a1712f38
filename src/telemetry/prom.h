/* SPDX-License-Identifier: Apache-2.0 */
/* The Prometheus /metrics endpoint (prom.c), shared by every agent of the
 * process that asks for the same port, and by the processes of one host:
 * the first to bind the port serves; the others publish their samples
 * into <dir>/prometheus-<port>/<pid>.prom every interval, which the server
 * merges into each scrape, and take over the port when it frees. */
#ifndef FY_TELEMETRY_PROM_H
#define FY_TELEMETRY_PROM_H

#include "telemetry/tm.h"

/* Adds tm's metrics to the endpoint of tm->cfg.prom_port, starting it (or
 * the publishing to it) if this process has none there. Returns OK,
 * NOT_SUPPORTED (built without libmicrohttpd), NO_RESOURCES, NO_MEMORY. */
ferry_status fy_prom_attach(fy_tm *tm);
/* Removes tm; the last agent of a port stops its endpoint or publishing. */
void fy_prom_detach(fy_tm *tm);

#endif
