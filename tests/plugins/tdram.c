/* SPDX-License-Identifier: Apache-2.0 */
/* TDRAM: a test plugin. A small DRAM loopback backend that differs from
 * LOCAL where the core has other paths to take:
 *  - it is not thread-safe (flags 0): the core must serialise its ops;
 *  - with async=1 (default) a post only queues the request, and the copy
 *    happens in the progress op: completion needs ferry_xfer_status,
 *    ferry_agent_progress or the progress thread to drive it;
 *  - registration returns public bytes (the region's address and a serial
 *    number per registration, like a transport's remote key), which the
 *    core must carry through metadata to rregion_load; xfer_prep refuses a
 *    remote key whose registration is gone (a dead key);
 *  - it has a `supports` op and no estimator;
 *  - its descriptor claims DRAM and VRAM, its mem_types op only DRAM: the
 *    instance must not be offered VRAM;
 *  - with fd=1 it offers a wait fd (an eventfd, readable while requests
 *    are pending) and an arm op, so an idle progress thread sleeps in poll;
 *  - stall=N: the first N posts never complete (a peer that froze); only
 *    release ends them, without copying anything;
 *  - fail=post makes posts fail, fail=complete makes transfers end with
 *    FERRY_ERR_IO and a detail message;
 *  - sender=<name> delivers notifications as if from another agent, so that
 *    per-sender queues can be tested with one process. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ferry/plugin.h"

#define TD_INFO_LEN 8u /* connection info: the agent uid, little endian */

enum td_fail { TD_FAIL_NONE, TD_FAIL_POST, TD_FAIL_COMPLETE };

typedef struct td_req {
    const ferry_plugin_xfer *x;
    ferry_status state;
    const void *notif;
    size_t notif_len;
    struct td_req *next; /* pending list */
    bool pending;
    char err[64];
} td_req;

/* A registration (local side) or the key of one (remote side). */
typedef struct td_region {
    uint64_t addr, serial;
    struct td_region *next; /* live registrations (local side only) */
} td_region;

typedef struct td {
    const ferry_plugin_host *host;
    uint64_t serial; /* of the last registration */
    td_region *live; /* registrations not deregistered yet */
    bool async;
    bool use_fd;
    int efd; /* eventfd: readable while requests are pending; -1 without */
    enum td_fail fail;
    unsigned long stall; /* posts left that never complete */
    char sender[256];
    td_req *pending;
} td;

typedef struct td_remote {
    td *be;
} td_remote;

/* ---- params ---- */

static const ferry_param_spec td_params[] = {
    {"async", "1", "1: posts complete in the progress op; 0: inline"},
    {"fail", "none", "none, post (posts fail) or complete (transfers end with an I/O error)"},
    {"sender", "", "name notifications claim to come from (default: this agent)"},
    {"fd", "0", "1: offer a wait fd and arm op to the progress thread"},
    {"stall", "0", "number of first posts that never complete (until released)"},
};

static ferry_status td_param(td *be, const ferry_param *p)
{
    if (!strcmp(p->key, "async")) {
        if (strcmp(p->value, "0") && strcmp(p->value, "1"))
            return FERRY_ERR_INVALID_PARAM;
        be->async = p->value[0] == '1';
    } else if (!strcmp(p->key, "fail")) {
        if (!strcmp(p->value, "none"))
            be->fail = TD_FAIL_NONE;
        else if (!strcmp(p->value, "post"))
            be->fail = TD_FAIL_POST;
        else if (!strcmp(p->value, "complete"))
            be->fail = TD_FAIL_COMPLETE;
        else
            return FERRY_ERR_INVALID_PARAM;
    } else if (!strcmp(p->key, "sender")) {
        snprintf(be->sender, sizeof(be->sender), "%s", p->value);
    } else if (!strcmp(p->key, "stall")) {
        char *end;
        be->stall = strtoul(p->value, &end, 10);
        if (!*p->value || *end)
            return FERRY_ERR_INVALID_PARAM;
    } else if (!strcmp(p->key, "fd")) {
        if (strcmp(p->value, "0") && strcmp(p->value, "1"))
            return FERRY_ERR_INVALID_PARAM;
        be->use_fd = p->value[0] == '1';
    } else {
        return FERRY_ERR_INVALID_PARAM;
    }
    return FERRY_OK;
}

static ferry_status td_init(void *priv, const ferry_plugin_host *host, const ferry_param *params,
                            size_t num_params)
{
    td *be = priv;
    be->host = host;
    be->async = true;
    be->efd = -1;
    for (size_t i = 0; i < num_params; i++) {
        ferry_status rc = td_param(be, &params[i]);
        if (rc != FERRY_OK)
            return rc;
    }
    if (be->use_fd && (be->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
        return FERRY_ERR_BACKEND;
    return FERRY_OK;
}

static void td_fini(void *priv)
{
    td *be = priv;
    if (be->efd >= 0)
        close(be->efd);
}

/* Only DRAM, whatever the descriptor says. */
static uint32_t td_mem_types(void *priv)
{
    (void)priv;
    return FERRY_MEM_MASK(FERRY_MEM_DRAM);
}

/* ---- registration: the public bytes are the address and a serial ---- */

#define TD_PUB_LEN 16u

static ferry_status td_reg(void *priv, ferry_mem_type type, const ferry_desc *desc,
                           const void *meta, size_t meta_len, void **region, void **pub,
                           size_t *pub_len)
{
    td *be = priv;
    (void)meta;
    (void)meta_len;
    if (type != FERRY_MEM_DRAM)
        return FERRY_ERR_NOT_SUPPORTED;
    td_region *r = malloc(sizeof(*r));
    uint64_t *key = malloc(TD_PUB_LEN);
    if (!r || !key) {
        free(r);
        free(key);
        return FERRY_ERR_NO_MEMORY;
    }
    *r = (td_region){desc->addr, ++be->serial, be->live};
    be->live = r;
    key[0] = r->addr;
    key[1] = r->serial;
    *region = r;
    *pub = key;
    *pub_len = TD_PUB_LEN;
    return FERRY_OK;
}

static void td_dereg(void *priv, void *region)
{
    td *be = priv;
    for (td_region **link = &be->live; *link; link = &(*link)->next)
        if (*link == region) {
            *link = ((td_region *)region)->next;
            break;
        }
    free(region);
}

static bool td_is_live(const td *be, uint64_t serial)
{
    for (const td_region *r = be->live; r; r = r->next)
        if (r->serial == serial)
            return true;
    return false;
}

/* ---- connection info and remotes: only ourselves ---- */

static void td_info(const td *be, uint8_t out[TD_INFO_LEN])
{
    for (unsigned i = 0; i < TD_INFO_LEN; i++)
        out[i] = (uint8_t)(be->host->agent_uid >> (8 * i));
}

static ferry_status td_conn_info(void *priv, void **info, size_t *len)
{
    uint8_t *p = malloc(TD_INFO_LEN);
    if (!p)
        return FERRY_ERR_NO_MEMORY;
    td_info(priv, p);
    *info = p;
    *len = TD_INFO_LEN;
    return FERRY_OK;
}

static ferry_status td_remote_load(void *priv, const char *name, uint64_t uid, const void *info,
                                   size_t len, void **remote)
{
    td *be = priv;
    uint8_t self[TD_INFO_LEN];
    (void)name;
    td_info(be, self);
    if (uid != be->host->agent_uid || len != TD_INFO_LEN || memcmp(info, self, len))
        return FERRY_ERR_NOT_SUPPORTED;
    td_remote *r = malloc(sizeof(*r));
    if (!r)
        return FERRY_ERR_NO_MEMORY;
    r->be = be;
    *remote = r;
    return FERRY_OK;
}

static void td_remote_unload(void *priv, void *remote)
{
    (void)priv;
    free(remote);
}

/* The public bytes must have come through metadata unchanged. */
static ferry_status td_rregion_load(void *priv, void *remote, ferry_mem_type type,
                                    const ferry_desc *desc, const void *pub, size_t pub_len,
                                    void **rregion)
{
    uint64_t key[2];
    (void)priv;
    (void)remote;
    if (type != FERRY_MEM_DRAM || pub_len != TD_PUB_LEN)
        return FERRY_ERR_INVALID_PARAM;
    memcpy(key, pub, TD_PUB_LEN);
    if (key[0] != desc->addr)
        return FERRY_ERR_INVALID_PARAM;
    td_region *rr = malloc(sizeof(*rr));
    if (!rr)
        return FERRY_ERR_NO_MEMORY;
    *rr = (td_region){key[0], key[1], NULL};
    *rregion = rr;
    return FERRY_OK;
}

static void td_rregion_unload(void *priv, void *remote, void *rregion)
{
    (void)priv;
    (void)remote;
    free(rregion);
}

/* ---- transfers ---- */

static ferry_status td_supports(void *priv, ferry_mem_type local, ferry_mem_type remote)
{
    (void)priv;
    return local == FERRY_MEM_DRAM && remote == FERRY_MEM_DRAM ? FERRY_OK : FERRY_ERR_NOT_SUPPORTED;
}

/* Loopback: the remote keys are our own registrations, which must be live. */
static ferry_status td_xfer_prep(void *priv, const ferry_plugin_xfer *x, void **handle)
{
    td *be = priv;
    for (size_t i = 0; i < x->count; i++) {
        const td_region *rr = x->remote[i].region;
        if (!rr || !td_is_live(be, rr->serial)) {
            be->host->log(be->host->agent_ctx, FERRY_LOG_ERROR,
                          "remote key of a deregistered registration (serial %llu)",
                          rr ? (unsigned long long)rr->serial : 0ull);
            return FERRY_ERR_INVALID_PARAM;
        }
    }
    td_req *req = calloc(1, sizeof(*req));
    if (!req)
        return FERRY_ERR_NO_MEMORY;
    req->x = x;
    req->state = FERRY_ERR_NOT_POSTED;
    *handle = req;
    return FERRY_OK;
}

static void td_deliver(td *be, const void *msg, size_t len)
{
    const char *from = be->sender[0] ? be->sender : be->host->agent_name;
    be->host->notif_deliver(be->host->agent_ctx, from, msg, len);
}

static void td_copy(const ferry_plugin_xfer *x)
{
    for (size_t i = 0; i < x->count; i++) {
        void *l = (void *)(uintptr_t)x->local[i].addr, *r = (void *)(uintptr_t)x->remote[i].addr;
        if (x->op == FERRY_OP_WRITE)
            memmove(r, l, x->local[i].len);
        else
            memmove(l, r, x->local[i].len);
    }
}

static void td_complete(td *be, td_req *req)
{
    if (be->fail == TD_FAIL_COMPLETE) {
        snprintf(req->err, sizeof(req->err), "tdram: injected I/O error");
        req->state = FERRY_ERR_IO;
        return;
    }
    td_copy(req->x);
    if (req->notif)
        td_deliver(be, req->notif, req->notif_len);
    req->state = FERRY_OK;
}

/* Makes the wait fd readable: there is work for progress. */
static void td_signal(td *be)
{
    uint64_t one = 1;
    if (be->efd >= 0 && write(be->efd, &one, sizeof(one)) < 0)
        one = 0; /* counter saturated: readable anyway */
}

static ferry_status td_xfer_post(void *priv, void *handle, const void *notif, size_t notif_len)
{
    td *be = priv;
    td_req *req = handle;
    if (be->fail == TD_FAIL_POST) {
        snprintf(req->err, sizeof(req->err), "tdram: injected post failure");
        return FERRY_ERR_BACKEND;
    }
    req->notif = notif;
    req->notif_len = notif_len;
    req->err[0] = '\0';
    if (!be->async) {
        td_complete(be, req);
        return req->state;
    }
    req->state = FERRY_IN_PROGRESS;
    if (be->stall) {
        be->stall--; /* never queued: only release ends it */
        return FERRY_IN_PROGRESS;
    }
    req->pending = true;
    req->next = be->pending;
    be->pending = req;
    td_signal(be);
    return FERRY_IN_PROGRESS;
}

/* IN_PROGRESS when it completed something (the contract of progress). */
static ferry_status td_progress(void *priv)
{
    td *be = priv;
    bool worked = be->pending != NULL;
    for (td_req *req = be->pending, *next; req; req = next) {
        next = req->next;
        req->pending = false;
        td_complete(be, req);
    }
    be->pending = NULL;
    return worked ? FERRY_IN_PROGRESS : FERRY_OK;
}

static ferry_status td_wait_fd(void *priv, int *fd)
{
    td *be = priv;
    if (be->efd < 0)
        return FERRY_ERR_NOT_SUPPORTED;
    *fd = be->efd;
    return FERRY_OK;
}

/* Consumes the fd's events; pending requests mean "progress me first". */
static ferry_status td_arm(void *priv)
{
    td *be = priv;
    uint64_t drain;
    if (be->efd >= 0 && read(be->efd, &drain, sizeof(drain)) < 0)
        drain = 0; /* nothing to consume */
    return be->pending ? FERRY_IN_PROGRESS : FERRY_OK;
}

static ferry_status td_xfer_check(void *priv, void *handle)
{
    (void)priv;
    return ((td_req *)handle)->state;
}

static void td_unlink(td *be, td_req *req)
{
    for (td_req **link = &be->pending; *link; link = &(*link)->next)
        if (*link == req) {
            *link = req->next;
            return;
        }
}

static ferry_status td_xfer_release(void *priv, void *handle)
{
    td_req *req = handle;
    if (req->pending)
        td_unlink(priv, req); /* canceled: never copied */
    free(req);
    return FERRY_OK;
}

static const char *td_xfer_error(void *priv, void *handle)
{
    (void)priv;
    return ((td_req *)handle)->err;
}

static ferry_status td_notif_send(void *priv, void *remote, const void *msg, size_t len)
{
    (void)remote;
    td_deliver(priv, msg, len);
    return FERRY_OK;
}

static const ferry_plugin_ops td_ops = {
    .size = sizeof(ferry_plugin_ops),
    .init = td_init,
    .fini = td_fini,
    .reg = td_reg,
    .dereg = td_dereg,
    .conn_info = td_conn_info,
    .remote_load = td_remote_load,
    .remote_unload = td_remote_unload,
    .rregion_load = td_rregion_load,
    .rregion_unload = td_rregion_unload,
    .xfer_prep = td_xfer_prep,
    .xfer_post = td_xfer_post,
    .xfer_check = td_xfer_check,
    .xfer_release = td_xfer_release,
    .supports = td_supports,
    .notif_send = td_notif_send,
    .progress = td_progress,
    .xfer_error = td_xfer_error,
    .mem_types = td_mem_types,
    .wait_fd = td_wait_fd,
    .arm = td_arm,
};

static const ferry_plugin_desc td_desc = {
    .abi_version = FERRY_PLUGIN_ABI_VERSION,
    .flags = 0, /* not thread-safe */
    .name = "TDRAM",
    .version = "0.0.1",
    .caps = FERRY_CAP_LOCAL | FERRY_CAP_NOTIF | FERRY_CAP_PROGRESS,
    .mem_mask = FERRY_MEM_MASK(FERRY_MEM_DRAM) | FERRY_MEM_MASK(FERRY_MEM_VRAM),
    .params = td_params,
    .num_params = sizeof(td_params) / sizeof(td_params[0]),
    .priv_size = sizeof(td),
    .ops = &td_ops,
};

FERRY_PLUGIN_DEFINE(TDRAM, td_desc)
