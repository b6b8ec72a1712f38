/* SPDX-License-Identifier: Apache-2.0 */
/* Side channel lifecycle: fy_sc_start / fy_sc_stop and the listen port.
 * See sidechannel.h for the map of the other files. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "sidechannel/sidechannel.h"
#include "common/api.h"
#include "common/log.h"
#include "core/agent.h"
#include "core/handles.h"
#include "ferry/ferry.h"

static void fy_sc_free(struct fy_sc *sc)
{
    fy_sc_fetches_free(sc->fetches);
    close(sc->stop_rd);
    close(sc->stop_wr);
    free(sc);
}

static ferry_status fy_sc_new(struct fy_sc **out)
{
    struct fy_sc *sc = calloc(1, sizeof(*sc));
    if (!sc)
        return FERRY_ERR_NO_MEMORY;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
        FY_SC_ERR("cannot create the side channel's stop pipe");
        free(sc);
        return FERRY_ERR_NO_RESOURCES;
    }
    sc->stop_rd = fds[0];
    sc->stop_wr = fds[1];
    ferry_status rc = fy_sc_fetches_new(&sc->fetches);
    if (rc != FERRY_OK) {
        fy_sc_free(sc);
        return rc;
    }
    *out = sc;
    return FERRY_OK;
}

/* The listener thread and fetch threads call into the agent concurrently
 * with its user: that needs one of the locking sync modes. */
static ferry_status fy_sc_listen_check(const ferry_agent *agent)
{
    if (agent->cfg.sync_mode != FERRY_SYNC_NONE)
        return FERRY_OK;
    FY_SC_ERR("agent %s: listen needs a locking sync mode, not FERRY_SYNC_NONE", agent->name);
    return FERRY_ERR_INVALID_PARAM;
}

ferry_status fy_sc_start(ferry_agent *agent)
{
    struct fy_sc *sc;
    ferry_status rc = agent->cfg.listen ? fy_sc_listen_check(agent) : FERRY_OK;
    if (rc == FERRY_OK)
        rc = fy_sc_new(&sc);
    if (rc != FERRY_OK)
        return rc;
    if (agent->cfg.listen)
        rc = fy_sc_listener_start(agent, sc->stop_rd, &sc->listener);
    if (rc == FERRY_OK)
        rc = fy_mdsvc_start(agent, &sc->svc);
    if (rc != FERRY_OK && sc->listener) {
        while (write(sc->stop_wr, "x", 1) < 0 && errno == EINTR)
            ;
        fy_sc_listener_join(sc->listener);
    }
    if (rc != FERRY_OK) {
        fy_sc_free(sc);
        return rc;
    }
    agent->sc = sc;
    return FERRY_OK;
}

void fy_sc_stop(ferry_agent *agent)
{
    struct fy_sc *sc = agent->sc;
    if (!sc)
        return;
    struct fy_mdsvc *svc = sc->svc;
    /* Never drained: every poll of every side-channel thread sees it. */
    while (write(sc->stop_wr, "x", 1) < 0 && errno == EINTR)
        ;
    if (sc->listener)
        fy_sc_listener_join(sc->listener);
    fy_sc_free(sc); /* joins the fetch threads, which may use the service */
    fy_mdsvc_stop(svc);
    agent->sc = NULL;
}

FY_API ferry_status ferry_md_listen_port(ferry_agent *agent, uint16_t *port)
{
    if (!FY_AGENT_OK(agent) || !port)
        return FERRY_ERR_INVALID_PARAM;
    if (!agent->sc || !agent->sc->listener)
        return FERRY_ERR_NOT_ALLOWED;
    *port = fy_sc_listener_port(agent->sc->listener);
    return FERRY_OK;
}
