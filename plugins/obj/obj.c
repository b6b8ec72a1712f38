/* SPDX-License-Identifier: Apache-2.0 */
/* OBJ: S3 object storage as NIXL's OBJ backend. Local transfers only
 * (loopback to the agent's own name): READ is a ranged GET of an object
 * into DRAM, WRITE a PUT of DRAM into an object (a multipart upload above
 * multipart_threshold, its parts in parallel).
 *
 * As in NIXL, an OBJ registration names one object: the object key is the
 * registration's metadata bytes (or, when there are none, the decimal
 * dev_id), dev_id is that key's index, and a descriptor's addr is an offset
 * in the object (READ; a WRITE writes a whole object, from offset 0).
 *
 * The ops here check and translate; obj_run.c moves the bytes. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fyp_self.h"
#include "obj_internal.h"

/* Connection info (fyp_self.h): only ourselves is reachable, and a
 * fork()ed child is not us. */
#define FY_OBJ_INFO_MAGIC "FYOB"

/* An OBJ region (local registration or loaded remote one): the key. */
struct fy_obj_region {
    size_t key_len;
    char key[]; /* NUL-terminated too */
};

/* ---- init / fini ---------------------------------------------------------- */

static ferry_status fy_obj_init(void *priv, const ferry_plugin_host *host,
                                const ferry_param *params, size_t num_params)
{
    struct fy_obj *be = priv;
    ferry_status st;

    if (!be || !host || host->size < sizeof(*host) || !host->log)
        return FERRY_ERR_INVALID_PARAM;
    be->host = host;
    st = fy_obj_cfg_load(be, params, num_params);
    if (st != FERRY_OK)
        return st;
    snprintf(be->sigv4, sizeof(be->sigv4), "aws:amz:%s:s3", be->cfg.region);
    st = fy_obj_run_start(be);
    if (st != FERRY_OK) {
        fy_obj_log(be, FERRY_LOG_ERROR, "cannot set libcurl up");
        fy_obj_cfg_free(&be->cfg);
        return st;
    }
    fy_obj_log(be, FERRY_LOG_DEBUG, "bucket %s at %s (%s style), region %s, %s", be->cfg.bucket,
               be->cfg.endpoint, be->cfg.virtual_host ? "virtual host" : "path", be->cfg.region,
               be->cfg.access_key ? "signed" : "anonymous");
    return FERRY_OK;
}

/* Every request was released before (contract): only detached aborts of
 * failed uploads may be left. */
static void fy_obj_fini(void *priv)
{
    struct fy_obj *be = priv;

    fy_obj_run_stop(be);
    fy_obj_cfg_free(&be->cfg);
}

/* ---- registration ------------------------------------------------------------ */

/* NIXL's rule: the metadata is the key; none: the dev_id in decimal. */
static ferry_status fy_obj_region_new(const void *meta, size_t len, uint64_t dev_id,
                                      struct fy_obj_region **out)
{
    char num[24];
    struct fy_obj_region *r;

    if (!meta || !len) {
        len = (size_t)snprintf(num, sizeof(num), "%" PRIu64, dev_id);
        meta = num;
    }
    if (len > FY_OBJ_KEY_MAX || memchr(meta, '\0', len))
        return FERRY_ERR_INVALID_PARAM;
    r = malloc(sizeof(*r) + len + 1);
    if (!r)
        return FERRY_ERR_NO_MEMORY;
    r->key_len = len;
    memcpy(r->key, meta, len);
    r->key[len] = '\0';
    *out = r;
    return FERRY_OK;
}

/* OBJ: the key is the region and its public bytes (the initiator of a
 * loopback transfer loads it back through rregion_load). DRAM: nothing to
 * pin, nothing to publish. */
static ferry_status fy_obj_reg(void *priv, ferry_mem_type type, const ferry_desc *desc,
                               const void *meta, size_t meta_len, void **region, void **pub,
                               size_t *pub_len)
{
    struct fy_obj_region *r;
    ferry_status st;

    if (!desc || !region || !pub || !pub_len)
        return FERRY_ERR_INVALID_PARAM;
    *region = *pub = NULL;
    *pub_len = 0;
    if (type == FERRY_MEM_DRAM)
        return desc->addr && desc->len ? FERRY_OK : FERRY_ERR_INVALID_PARAM;
    if (type != FERRY_MEM_OBJ)
        return FERRY_ERR_NOT_SUPPORTED;
    st = fy_obj_region_new(meta, meta_len, desc->dev_id, &r);
    if (st != FERRY_OK) {
        fy_obj_log((struct fy_obj *)priv, FERRY_LOG_ERROR, "object key: 1..%u bytes without NUL",
                   FY_OBJ_KEY_MAX);
        return st;
    }
    *pub = malloc(r->key_len);
    if (!*pub) {
        free(r);
        return FERRY_ERR_NO_MEMORY;
    }
    memcpy(*pub, r->key, r->key_len);
    *pub_len = r->key_len;
    *region = r;
    return FERRY_OK;
}

static void fy_obj_dereg(void *priv, void *region)
{
    (void)priv;
    free(region);
}

/* ---- connection info and remotes ------------------------------------------ */

static ferry_status fy_obj_conn_info(void *priv, void **info, size_t *len)
{
    struct fy_obj *be = priv;

    return fyp_self_info(be->host, FY_OBJ_INFO_MAGIC, info, len);
}

/* Only ourselves: an object store is reached by each agent on its own. */
static ferry_status fy_obj_remote_load(void *priv, const char *name, uint64_t uid, const void *info,
                                       size_t len, void **remote)
{
    struct fy_obj *be = priv;

    return fyp_self_remote_load(be->host, FY_OBJ_INFO_MAGIC, be, name, uid, info, len, remote);
}

static ferry_status fy_obj_rregion_load(void *priv, void *remote, ferry_mem_type type,
                                        const ferry_desc *desc, const void *pub, size_t pub_len,
                                        void **rregion)
{
    struct fy_obj_region *r;
    ferry_status st;

    if (!fyp_self_remote_is(remote, priv) || !desc || !rregion)
        return FERRY_ERR_INVALID_PARAM;
    *rregion = NULL;
    if (type == FERRY_MEM_DRAM)
        return FERRY_OK;
    if (type != FERRY_MEM_OBJ)
        return FERRY_ERR_NOT_SUPPORTED;
    if (!pub || !pub_len)
        return FERRY_ERR_BAD_METADATA;
    st = fy_obj_region_new(pub, pub_len, desc->dev_id, &r);
    if (st == FERRY_OK)
        *rregion = r;
    return st == FERRY_ERR_INVALID_PARAM ? FERRY_ERR_BAD_METADATA : st;
}

static void fy_obj_rregion_unload(void *priv, void *remote, void *rregion)
{
    (void)priv;
    (void)remote;
    free(rregion);
}

/* ---- transfers ---------------------------------------------------------------- */

static ferry_status fy_obj_supports(void *priv, ferry_mem_type local, ferry_mem_type remote)
{
    (void)priv;
    return local == FERRY_MEM_DRAM && remote == FERRY_MEM_OBJ ? FERRY_OK : FERRY_ERR_NOT_SUPPORTED;
}

static ferry_status fy_obj_prep_fail(struct fy_obj *be, ferry_status st, const char *why)
{
    fy_obj_log(be, FERRY_LOG_ERROR, "prep: %s", why);
    return st;
}

static ferry_status fy_obj_check_seg(struct fy_obj *be, const ferry_plugin_xfer *x, size_t i)
{
    const ferry_plugin_seg *l = &x->local[i], *r = &x->remote[i];

    if (l->len != r->len || !l->len || !l->addr || !r->region || r->addr + r->len < r->addr)
        return fy_obj_prep_fail(be, FERRY_ERR_INVALID_PARAM, "inconsistent segments");
    /* As NIXL's OBJ: a PUT writes a whole object; no offset. */
    if (x->op == FERRY_OP_WRITE && r->addr != 0)
        return fy_obj_prep_fail(be, FERRY_ERR_NOT_SUPPORTED,
                                "WRITE at an object offset (objects are written whole)");
    return FERRY_OK;
}

static ferry_status fy_obj_check_xfer(struct fy_obj *be, const ferry_plugin_xfer *x)
{
    ferry_status st = FERRY_OK;

    if (!x || (x->count && (!x->local || !x->remote)))
        return FERRY_ERR_INVALID_PARAM;
    if (x->local_type != FERRY_MEM_DRAM || x->remote_type != FERRY_MEM_OBJ)
        return FERRY_ERR_NOT_SUPPORTED;
    if (x->op != FERRY_OP_READ && x->op != FERRY_OP_WRITE)
        return fy_obj_prep_fail(be, FERRY_ERR_INVALID_PARAM, "unknown op");
    if (!fyp_self_remote_is(x->remote_agent, be))
        return fy_obj_prep_fail(be, FERRY_ERR_INVALID_PARAM, "remote is not this agent");
    for (size_t i = 0; i < x->count && st == FERRY_OK; i++)
        st = fy_obj_check_seg(be, x, i);
    return st;
}

static void fy_obj_job_fill(struct fy_obj_job *job, const ferry_plugin_seg *l,
                            const ferry_plugin_seg *r)
{
    const struct fy_obj_region *reg = r->region;

    job->key = reg->key;
    job->key_len = reg->key_len;
    job->mem = (uint8_t *)(uintptr_t)l->addr;
    job->off = r->addr;
    job->len = l->len;
}

static ferry_status fy_obj_xfer_prep(void *priv, const ferry_plugin_xfer *xfer, void **handle)
{
    struct fy_obj *be = priv;
    struct fy_obj_req *req;
    ferry_status st;

    if (!handle)
        return FERRY_ERR_INVALID_PARAM;
    st = fy_obj_check_xfer(be, xfer);
    if (st != FERRY_OK)
        return st;
    req = calloc(1, sizeof(*req));
    if (!req)
        return FERRY_ERR_NO_MEMORY;
    req->jobs = calloc(xfer->count ? xfer->count : 1, sizeof(*req->jobs));
    if (!req->jobs) {
        free(req);
        return FERRY_ERR_NO_MEMORY;
    }
    req->be = be;
    req->xfer = xfer;
    req->njobs = xfer->count;
    req->state = FERRY_ERR_NOT_POSTED;
    for (size_t i = 0; i < xfer->count; i++)
        fy_obj_job_fill(&req->jobs[i], &xfer->local[i], &xfer->remote[i]);
    *handle = req;
    return FERRY_OK;
}

/* Queues the request's first calls and starts as many as slots allow. No
 * notifications: the backend does not declare FERRY_CAP_NOTIF. */
static ferry_status fy_obj_xfer_post(void *priv, void *handle, const void *notif, size_t notif_len)
{
    struct fy_obj_req *req = handle;

    (void)priv;
    if (!req || notif || notif_len)
        return FERRY_ERR_INVALID_PARAM;
    if (req->state == FERRY_IN_PROGRESS)
        return FERRY_ERR_REPOST_ACTIVE;
    if (req->njobs == 0) {
        req->state = FERRY_OK;
        return FERRY_OK;
    }
    return fy_obj_req_post(req);
}

static ferry_status fy_obj_xfer_check(void *priv, void *handle)
{
    (void)priv;
    return handle ? ((struct fy_obj_req *)handle)->state : FERRY_ERR_INVALID_PARAM;
}

/* Takes every call of the request off the multi handle before returning:
 * curl then writes no more into the caller's memory. Uploads it left
 * unfinished are aborted by detached calls. */
static ferry_status fy_obj_xfer_release(void *priv, void *handle)
{
    struct fy_obj_req *req = handle;

    (void)priv;
    if (!req)
        return FERRY_OK;
    fy_obj_req_cancel(req);
    free(req->jobs);
    free(req);
    return FERRY_OK;
}

static const char *fy_obj_xfer_error(void *priv, void *handle)
{
    (void)priv;
    return handle ? ((struct fy_obj_req *)handle)->err : "";
}

static ferry_status fy_obj_progress(void *priv)
{
    return fy_obj_run_progress(priv) ? FERRY_IN_PROGRESS : FERRY_OK;
}

/* An epoll fd over curl's sockets and a timer (obj_wake.c). */
static ferry_status fy_obj_wait_fd(void *priv, int *fd)
{
    *fd = ((struct fy_obj *)priv)->epfd;
    return FERRY_OK;
}

static ferry_status fy_obj_arm(void *priv)
{
    return fy_obj_run_arm(priv) ? FERRY_OK : FERRY_IN_PROGRESS;
}

/* ---- query_memory ------------------------------------------------------------ */

/* HEAD of the object the registration bytes name (NIXL's queryMem):
 * found or not, and its size. */
static ferry_status fy_obj_query(void *priv, ferry_mem_type type, const ferry_desc *desc,
                                 const void *meta, size_t meta_len, ferry_mem_info *info)
{
    struct fy_obj *be = priv;
    struct fy_obj_region *r;
    char err[FY_OBJ_ERR_MAX];
    bool found = false;
    uint64_t size = 0;
    ferry_status st;

    if (type != FERRY_MEM_OBJ)
        return FERRY_ERR_NOT_SUPPORTED;
    if (!desc || !info)
        return FERRY_ERR_INVALID_PARAM;
    st = fy_obj_region_new(meta, meta_len, desc->dev_id, &r);
    if (st != FERRY_OK)
        return st;
    st = fy_obj_head(be, r->key, r->key_len, &found, &size, err, sizeof(err));
    free(r);
    if (st != FERRY_OK) {
        fy_obj_log(be, FERRY_LOG_ERROR, "query: %s", err);
        return st;
    }
    info->found = found;
    info->file_size = size;
    return FERRY_OK;
}

/* ---- descriptor ---------------------------------------------------------------- */

/* Left NULL: connect/disconnect (loopback), notif_send (no notifications),
 * estimate (a network's cost is not known ahead), mem_alloc/mem_free. */
static const ferry_plugin_ops fy_obj_ops = {
    .size = sizeof(ferry_plugin_ops),
    .init = fy_obj_init,
    .fini = fy_obj_fini,
    .reg = fy_obj_reg,
    .dereg = fy_obj_dereg,
    .conn_info = fy_obj_conn_info,
    .remote_load = fy_obj_remote_load,
    .remote_unload = fyp_self_remote_unload,
    .rregion_load = fy_obj_rregion_load,
    .rregion_unload = fy_obj_rregion_unload,
    .xfer_prep = fy_obj_xfer_prep,
    .xfer_post = fy_obj_xfer_post,
    .xfer_check = fy_obj_xfer_check,
    .xfer_release = fy_obj_xfer_release,
    .supports = fy_obj_supports,
    .progress = fy_obj_progress,
    .wait_fd = fy_obj_wait_fd,
    .arm = fy_obj_arm,
    .xfer_error = fy_obj_xfer_error,
    .query = fy_obj_query,
};

static const ferry_plugin_desc fy_obj_desc = {
    .abi_version = FERRY_PLUGIN_ABI_VERSION,
    /* The core serialises the ops (one curl multi handle); the wait fd
     * fires for every socket and timeout of the calls in flight. */
    .flags = FERRY_PLUGIN_F_FD_COMPLETES,
    .name = "OBJ",
    .version = FY_OBJ_VERSION,
    .caps = FERRY_CAP_LOCAL | FERRY_CAP_PROGRESS,
    .mem_mask = FERRY_MEM_MASK(FERRY_MEM_DRAM) | FERRY_MEM_MASK(FERRY_MEM_OBJ),
    .params = fy_obj_params,
    .num_params = FY_OBJ_NUM_PARAMS,
    .priv_size = sizeof(struct fy_obj),
    .ops = &fy_obj_ops,
};

FERRY_PLUGIN_DEFINE(OBJ, fy_obj_desc)
