/* SPDX-License-Identifier: Apache-2.0 */
/* LIBFABRIC rails: one domain each (a NIC; for tcp a network interface),
 * with its own fabric, endpoint, address vector and completion queue,
 * opened from the info negotiation found for it (lf.c). A backend of
 * several rails stripes large transfers over them (lf_xfer.c); its
 * progress thread sleeps on an epoll set of every rail's wait fd. */
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "lf_internal.h"

static ferry_status fy_lf_rail_fail(fy_lf_rail *rail, const char *what, int rc)
{
    fy_lf_log(rail->be, FERRY_LOG_ERROR, "rail %u (%s): %s: %s", rail->index,
              rail->info->domain_attr->name, what, fi_strerror(rc < 0 ? -rc : rc));
    return rc == -FI_ENOMEM ? FERRY_ERR_NO_MEMORY : FERRY_ERR_BACKEND;
}

/* A completion queue with a wait fd where the provider offers one. */
static ferry_status fy_lf_cq_open(fy_lf_rail *rail)
{
    struct fi_cq_attr attr = {.format = FI_CQ_FORMAT_MSG, .wait_obj = FI_WAIT_FD};
    int rc = fi_cq_open(rail->domain, &attr, &rail->cq, NULL);
    if (rc == 0 && fi_control(&rail->cq->fid, FI_GETWAIT, &rail->wait_fd) == 0)
        return FERRY_OK;
    if (rc == 0)
        fi_close(&rail->cq->fid);
    rail->wait_fd = -1;
    attr.wait_obj = FI_WAIT_NONE;
    rc = fi_cq_open(rail->domain, &attr, &rail->cq, NULL);
    if (rc == 0)
        fy_lf_log(rail->be, FERRY_LOG_DEBUG, "no wait fd on this provider's queue: timed polling");
    return rc ? fy_lf_rail_fail(rail, "fi_cq_open", rc) : FERRY_OK;
}

/* The counter of RMA served to peers (see fy_lf_want_rma_events). */
static int fy_lf_cntr_open(fy_lf_rail *rail)
{
    struct fi_cntr_attr attr = {.events = FI_CNTR_EVENTS_COMP, .wait_obj = FI_WAIT_NONE};
    int rc = fi_cntr_open(rail->domain, &attr, &rail->rma_cntr, NULL);
    return rc ? rc : fi_ep_bind(rail->ep, &rail->rma_cntr->fid, FI_REMOTE_WRITE | FI_REMOTE_READ);
}

static ferry_status fy_lf_ep_open(fy_lf_rail *rail)
{
    struct fi_av_attr av_attr = {.type = FI_AV_UNSPEC};
    int rc = fi_av_open(rail->domain, &av_attr, &rail->av, NULL);
    if (rc)
        return fy_lf_rail_fail(rail, "fi_av_open", rc);
    ferry_status st = fy_lf_shm_prepare(rail);
    if (st != FERRY_OK)
        return st;
    if ((rc = fi_endpoint(rail->domain, rail->info, &rail->ep, NULL)) != 0)
        return fy_lf_rail_fail(rail, "fi_endpoint", rc);
    if ((rc = fi_ep_bind(rail->ep, &rail->av->fid, 0)) != 0 ||
        (rc = fi_ep_bind(rail->ep, &rail->cq->fid, FI_TRANSMIT | FI_RECV)) != 0)
        return fy_lf_rail_fail(rail, "fi_ep_bind", rc);
    if ((rail->info->caps & FI_RMA_EVENT) && (rc = fy_lf_cntr_open(rail)) != 0)
        return fy_lf_rail_fail(rail, "the RMA event counter", rc);
    if ((rc = fi_enable(rail->ep)) != 0)
        return fy_lf_rail_fail(rail, "fi_enable", rc);
    rail->addr_len = sizeof(rail->addr);
    rc = fi_getname(&rail->ep->fid, rail->addr, &rail->addr_len);
    return rc ? fy_lf_rail_fail(rail, "fi_getname", rc) : FERRY_OK;
}

static void fy_lf_rail_modes(fy_lf_rail *rail)
{
    uint64_t mode = rail->info->domain_attr->mr_mode;
    rail->virt_addr = mode & (FI_MR_VIRT_ADDR | FI_MR_BASIC);
    rail->mr_local = mode & FI_MR_LOCAL;
    rail->mr_bind_ep = mode & FI_MR_ENDPOINT;
    rail->prov_key = mode & (FI_MR_PROV_KEY | FI_MR_BASIC);
    rail->mr_rma_event = mode & FI_MR_RMA_EVENT;
}

ferry_status fy_lf_rail_open(fy_lf_rail *rail)
{
    fy_lf_rail_modes(rail);
    int rc = fi_fabric(rail->info->fabric_attr, &rail->fabric, NULL);
    if (rc)
        return fy_lf_rail_fail(rail, "fi_fabric", rc);
    if ((rc = fi_domain(rail->fabric, rail->info, &rail->domain, NULL)) != 0)
        return fy_lf_rail_fail(rail, "fi_domain", rc);
    ferry_status st = fy_lf_cq_open(rail);
    /* Without a wait fd (shm) the target's progress thread polls; a
     * completion for each WRITE it serves tells its progress it did work,
     * so that it keeps polling while a peer moves data through it. */
    if (rail->wait_fd < 0 && rail->info->domain_attr->cq_data_size)
        rail->write_flags = FI_REMOTE_CQ_DATA;
    return st == FERRY_OK ? fy_lf_ep_open(rail) : st;
}

static void fy_lf_close_fid(struct fid *f)
{
    if (f)
        fi_close(f);
}

/* The endpoint is closed by the caller first (before the buffers that
 * could complete into it go). */
void fy_lf_rail_close(fy_lf_rail *rail)
{
    fy_lf_close_fid(rail->ep ? &rail->ep->fid : NULL);
    fy_lf_close_fid(rail->rma_cntr ? &rail->rma_cntr->fid : NULL);
    fy_lf_close_fid(rail->av ? &rail->av->fid : NULL);
    fy_lf_close_fid(rail->cq ? &rail->cq->fid : NULL);
    fy_lf_close_fid(rail->domain ? &rail->domain->fid : NULL);
    fy_lf_close_fid(rail->fabric ? &rail->fabric->fid : NULL);
    fi_freeinfo(rail->info);
    rail->ep = NULL, rail->rma_cntr = NULL, rail->av = NULL, rail->cq = NULL;
    rail->domain = NULL, rail->fabric = NULL, rail->info = NULL;
}

/* ---- the wait fd ---- */

/* One rail: its queue's fd. Several: an epoll set of theirs, readable
 * when any is; none at all when a rail has no fd (it must be polled). */
ferry_status fy_lf_wait_set(fy_lf *be)
{
    be->wait_fd = be->epoll_fd = -1;
    for (uint32_t i = 0; i < be->nrails; i++)
        if (be->rails[i].wait_fd < 0)
            return FERRY_OK;
    if (be->nrails == 1) {
        be->wait_fd = be->rails[0].wait_fd;
        return FERRY_OK;
    }
    if ((be->epoll_fd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        fy_lf_log(be, FERRY_LOG_ERROR, "epoll_create1 for the rails' wait fds: %m");
        return FERRY_ERR_NO_RESOURCES;
    }
    for (uint32_t i = 0; i < be->nrails; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        if (epoll_ctl(be->epoll_fd, EPOLL_CTL_ADD, be->rails[i].wait_fd, &ev) != 0) {
            fy_lf_log(be, FERRY_LOG_ERROR, "epoll_ctl of rail %u's wait fd: %m", i);
            return FERRY_ERR_BACKEND;
        }
    }
    be->wait_fd = be->epoll_fd;
    return FERRY_OK;
}

void fy_lf_wait_set_close(fy_lf *be)
{
    if (be->epoll_fd >= 0)
        close(be->epoll_fd);
    be->epoll_fd = be->wait_fd = -1;
}

/* fi_trywait on every rail (each in its own fabric): safe to sleep only
 * when every one says so. */
bool fy_lf_rails_trywait(fy_lf *be)
{
    for (uint32_t i = 0; i < be->nrails; i++) {
        struct fid *fids[1] = {&be->rails[i].cq->fid};
        if (fi_trywait(be->rails[i].fabric, fids, 1) != FI_SUCCESS)
            return false;
    }
    return true;
}
