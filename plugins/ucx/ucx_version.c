/* SPDX-License-Identifier: Apache-2.0 */
/* Which UCX this plugin runs on. libucp.so.0 is the name of UCX 1.13 and of
 * 1.22 alike, so the library loaded at run time may be older or newer than
 * the headers the plugin was built with (an LD_LIBRARY_PATH is enough). A
 * call or field newer than 1.13 is used only when both the headers and the
 * library have it: an older library ignores field bits it does not know
 * and leaves the outputs unwritten. */
#include "ucx_internal.h"

void fy_ucx_version_probe(fy_ucx *u)
{
    unsigned major = 0, minor = 0, release = 0;
    ucp_get_version(&major, &minor, &release);
    u->run_version = UCP_VERSION(major, minor);
    UCX_LOG(u, FERRY_LOG_INFO, "UCX %u.%u.%u at run time (built with %u.%u)", major, minor, release,
            (unsigned)UCP_API_MAJOR, (unsigned)UCP_API_MINOR);
}

bool fy_ucx_runs_at_least(const fy_ucx *u, unsigned major, unsigned minor)
{
    return u->run_version >= UCP_VERSION(major, minor);
}
