/* SPDX-License-Identifier: Apache-2.0 */
/* Sleeping until UCX has work: the workers' event fds behind one epoll fd,
 * which the agent's progress thread waits on when nothing is in flight.
 * Without it that thread can only look every millisecond, and everything
 * that needs this agent's progress as a target (the checked active
 * messages of every READ and WRITE, notifications) waits for the look. */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "ucx_internal.h"

/* Adds worker k's event fd to u->epfd. */
static ferry_status fy_ucx_wake_add(fy_ucx *u, unsigned k)
{
    int efd;
    ucs_status_t st = ucp_worker_get_efd(u->workers[k].h, &efd);
    if (st != UCS_OK) {
        UCX_LOG(u, FERRY_LOG_ERROR, "worker %u has no event fd: %s", k, ucs_status_string(st));
        return FERRY_ERR_BACKEND;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = k};
    if (epoll_ctl(u->epfd, EPOLL_CTL_ADD, efd, &ev) < 0) {
        UCX_LOG(u, FERRY_LOG_ERROR, "epoll_ctl: %s", strerror(errno));
        return FERRY_ERR_BACKEND;
    }
    return FERRY_OK;
}

ferry_status fy_ucx_wake_open(fy_ucx *u)
{
    u->epfd = -1;
    if (!u->wakeup)
        return FERRY_OK;
    u->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (u->epfd < 0) {
        UCX_LOG(u, FERRY_LOG_ERROR, "epoll_create1: %s", strerror(errno));
        return FERRY_ERR_NO_RESOURCES;
    }
    ferry_status rc = FERRY_OK;
    for (unsigned k = 0; k < u->num_workers && rc == FERRY_OK; k++)
        rc = fy_ucx_wake_add(u, k);
    return rc == FERRY_OK ? fy_ucx_local_wake_add(u) : rc;
}

void fy_ucx_wake_close(fy_ucx *u)
{
    if (u->epfd >= 0)
        close(u->epfd);
    u->epfd = -1;
}

ferry_status fy_ucx_wait_fd(void *priv, int *fd)
{
    fy_ucx *u = priv;
    if (u->epfd < 0)
        return FERRY_ERR_NOT_SUPPORTED;
    *fd = u->epfd;
    return FERRY_OK;
}

/* OK when every worker is armed (its fd fires on the next event);
 * IN_PROGRESS when one has events waiting: progress first. */
ferry_status fy_ucx_arm(void *priv)
{
    fy_ucx *u = priv;
    if (!fy_ucx_local_arm(u))
        return FERRY_IN_PROGRESS;
    for (unsigned k = 0; k < u->num_workers; k++) {
        ucs_status_t st = ucp_worker_arm(u->workers[k].h);
        if (st == UCS_ERR_BUSY)
            return FERRY_IN_PROGRESS;
        if (st != UCS_OK) {
            UCX_LOG(u, FERRY_LOG_DEBUG, "worker %u: arm: %s", k, ucs_status_string(st));
            return FERRY_IN_PROGRESS; /* polling again is always safe */
        }
    }
    return FERRY_OK;
}
