/* SPDX-License-Identifier: Apache-2.0 */
/* OBJ's engine: requests become HTTP calls, which wait in one queue until
 * a slot (num_threads calls at once) is free and their retry time has
 * come, then run on the curl multi handle. The agent's progress drives it
 * (curl_multi_perform: non-blocking), so no thread of ours exists and a
 * call is only ever touched inside an op, which the core serialises.
 * Connections stay open in the multi handle's cache between calls.
 *
 * A WRITE of a large segment is a multipart upload: create, then every
 * part queued at once (they run in parallel), then complete. A READ of a
 * large segment is split into ranged GETs the same way. When a call fails
 * for good the request fails: its other calls are taken off the multi
 * handle at once and its unfinished uploads are aborted by detached calls
 * that need nothing of the request. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>

#include "obj_internal.h"

/* ---- lists ---------------------------------------------------------------- */

#define FY_OBJ_LIST_OPS(name, prev, next)                                                          \
    static void fy_obj_##name##_push(struct fy_obj_list *l, struct fy_obj_call *c)                 \
    {                                                                                              \
        c->next = NULL;                                                                            \
        c->prev = l->tail;                                                                         \
        if (l->tail)                                                                               \
            l->tail->next = c;                                                                     \
        else                                                                                       \
            l->head = c;                                                                           \
        l->tail = c;                                                                               \
    }                                                                                              \
    static void fy_obj_##name##_unlink(struct fy_obj_list *l, struct fy_obj_call *c)               \
    {                                                                                              \
        if (c->prev)                                                                               \
            c->prev->next = c->next;                                                               \
        else                                                                                       \
            l->head = c->next;                                                                     \
        if (c->next)                                                                               \
            c->next->prev = c->prev;                                                               \
        else                                                                                       \
            l->tail = c->prev;                                                                     \
        c->prev = c->next = NULL;                                                                  \
    }
FY_OBJ_LIST_OPS(q, q_prev, q_next)
FY_OBJ_LIST_OPS(r, r_prev, r_next)

/* ---- easy handles ----------------------------------------------------------- */

static CURL *fy_obj_easy_get(struct fy_obj *be)
{
    return be->npool ? be->pool[--be->npool] : curl_easy_init();
}

static void fy_obj_easy_put(struct fy_obj *be, CURL *e)
{
    if (be->npool < FY_OBJ_EASY_POOL)
        be->pool[be->npool++] = e;
    else
        curl_easy_cleanup(e);
}

/* Takes a running call off the multi handle; its easy handle goes back to
 * the pool. After this curl touches neither the call nor its memory. */
static void fy_obj_detach(struct fy_obj_call *c)
{
    if (!c->running)
        return;
    curl_multi_remove_handle(c->be->multi, c->easy);
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &c->http);
    fy_obj_easy_put(c->be, c->easy);
    c->easy = NULL;
    c->running = false;
    c->be->running--;
}

/* ---- start and stop --------------------------------------------------------- */

static pthread_once_t fy_obj_once = PTHREAD_ONCE_INIT;
static CURLcode fy_obj_global_rc = CURLE_FAILED_INIT;

/* Process-wide, once, never undone: the application may use curl and
 * libxml2 itself, and cleaning them up under it would break it. */
static void fy_obj_global(void)
{
    fy_obj_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    xmlInitParser();
}

ferry_status fy_obj_run_start(struct fy_obj *be)
{
    be->epfd = be->tfd = -1;
    pthread_once(&fy_obj_once, fy_obj_global);
    if (fy_obj_global_rc != CURLE_OK)
        return FERRY_ERR_BACKEND;
    be->multi = curl_multi_init();
    be->sync = curl_easy_init();
    if (!be->multi || !be->sync) {
        fy_obj_run_stop(be);
        return FERRY_ERR_NO_MEMORY;
    }
    if (fy_obj_wake_open(be) != FERRY_OK) {
        fy_obj_run_stop(be);
        return FERRY_ERR_NO_RESOURCES;
    }
    curl_multi_setopt(be->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)be->cfg.max_inflight);
    curl_multi_setopt(be->multi, CURLMOPT_MAXCONNECTS, (long)be->cfg.max_inflight);
    return FERRY_OK;
}

static void fy_obj_unqueue(struct fy_obj_call *c);

static void fy_obj_drop_detached(struct fy_obj *be)
{
    struct fy_obj_call *c;

    while ((c = be->detached.head)) {
        fy_obj_unqueue(c);
        fy_obj_r_unlink(&be->detached, c);
        fy_obj_call_free(c);
    }
}

/* Aborts of uploads still pending get a bounded last chance (a second),
 * so that a failed upload's parts do not stay billed on the server. */
static void fy_obj_flush_detached(struct fy_obj *be)
{
    uint64_t until = fy_obj_now_ns() + 1000000000u;

    while (be->detached.head && fy_obj_now_ns() < until) {
        fy_obj_run_progress(be);
        curl_multi_poll(be->multi, NULL, 0, 20, NULL);
    }
}

void fy_obj_run_stop(struct fy_obj *be)
{
    if (be->multi)
        fy_obj_flush_detached(be);
    fy_obj_drop_detached(be);
    while (be->npool)
        curl_easy_cleanup(be->pool[--be->npool]);
    if (be->sync)
        curl_easy_cleanup(be->sync);
    if (be->multi)
        curl_multi_cleanup(be->multi); /* tells the socket callback: before the epoll fd goes */
    fy_obj_wake_stop(be);
    be->sync = NULL;
    be->multi = NULL;
}

/* ---- scheduling ------------------------------------------------------------- */

/* Exponential backoff with jitter (half to all of the step), so that many
 * calls throttled together do not come back together. */
static uint64_t fy_obj_backoff_ns(const struct fy_obj *be, unsigned attempt)
{
    uint64_t ms = be->cfg.retry_base_ms;

    for (unsigned i = 1; i < attempt && ms < be->cfg.retry_max_ms; i++)
        ms *= 2;
    if (ms > be->cfg.retry_max_ms)
        ms = be->cfg.retry_max_ms;
    ms = ms / 2 + (uint64_t)rand() % (ms / 2 + 1);
    return ms * 1000000u;
}

static bool fy_obj_may_retry(struct fy_obj_call *c, uint64_t delay_ns)
{
    const struct fy_obj_cfg *cfg = &c->be->cfg;
    uint64_t spent = fy_obj_now_ns() + delay_ns - c->first_ns;

    return c->attempt < cfg->max_attempts && spent <= cfg->retry_timeout_ms * 1000000u;
}

static void fy_obj_enqueue(struct fy_obj_call *c, uint64_t due_ns)
{
    c->due_ns = due_ns;
    fy_obj_q_push(&c->be->queue, c);
}

static void fy_obj_call_end(struct fy_obj_call *c, CURLcode cc);

static void fy_obj_launch(struct fy_obj_call *c)
{
    struct fy_obj *be = c->be;
    CURL *e = fy_obj_easy_get(be);

    fy_obj_call_reset(c);
    if (!c->attempt++)
        c->first_ns = fy_obj_now_ns();
    if (!e || fy_obj_call_setup(c, e) != FERRY_OK) {
        if (e)
            fy_obj_easy_put(be, e);
        fy_obj_call_end(c, CURLE_OUT_OF_MEMORY);
        return;
    }
    if (curl_multi_add_handle(be->multi, e) != CURLM_OK) {
        fy_obj_easy_put(be, e);
        c->easy = NULL;
        fy_obj_call_end(c, CURLE_OUT_OF_MEMORY);
        return;
    }
    c->running = true;
    be->running++;
}

/* Starts queued calls whose time has come while slots are free. */
static bool fy_obj_start_due(struct fy_obj *be)
{
    uint64_t now = fy_obj_now_ns();
    struct fy_obj_call *c = be->queue.head, *next;
    bool started = false;

    for (; c && be->running < be->cfg.max_inflight; c = next) {
        next = c->q_next;
        if (c->due_ns > now)
            continue;
        fy_obj_q_unlink(&be->queue, c);
        fy_obj_launch(c);
        started = true;
        next = be->queue.head; /* a failed launch may have freed calls */
    }
    return started;
}

/* ---- requests ---------------------------------------------------------------- */

static void fy_obj_req_fail(struct fy_obj_req *req, ferry_status st, const char *err)
{
    if (req->state != FERRY_IN_PROGRESS)
        return;
    req->state = st;
    snprintf(req->err, sizeof(req->err), "%s", err);
    fy_obj_log(req->be, FERRY_LOG_ERROR, "%s", err);
    fy_obj_req_cancel(req);
}

/* A detached call aborting an upload; it owns copies of key and id. */
static void fy_obj_abort_upload(struct fy_obj *be, const struct fy_obj_job *job)
{
    struct fy_obj_call *c = fy_obj_call_new(be, FY_OBJ_MPU_ABORT);
    char *q = NULL, *id = NULL;

    if (!c)
        return;
    c->owned_key = strndup(job->key, job->key_len);
    id = curl_easy_escape(NULL, job->upload_id, 0);
    if (id && asprintf(&q, "?uploadId=%s", id) < 0)
        q = NULL;
    curl_free(id);
    if (!c->owned_key || !q || fy_obj_call_url(c, job->key, job->key_len, q) != FERRY_OK) {
        free(q);
        fy_obj_call_free(c);
        return;
    }
    free(q);
    fy_obj_r_push(&be->detached, c);
    fy_obj_enqueue(c, 0);
}

static void fy_obj_unqueue(struct fy_obj_call *c)
{
    if (c->running)
        fy_obj_detach(c);
    else
        fy_obj_q_unlink(&c->be->queue, c);
}

void fy_obj_req_cancel(struct fy_obj_req *req)
{
    struct fy_obj_call *c;

    while ((c = req->calls.head)) {
        fy_obj_unqueue(c);
        fy_obj_r_unlink(&req->calls, c);
        fy_obj_call_free(c);
    }
    for (size_t i = 0; i < req->njobs; i++) {
        struct fy_obj_job *job = &req->jobs[i];
        if (job->upload_id)
            fy_obj_abort_upload(req->be, job);
        free(job->upload_id);
        job->upload_id = NULL;
        free(job->etags);
        job->etags = NULL;
    }
}

/* A new call of req, queued. */
static struct fy_obj_call *fy_obj_req_call(struct fy_obj_req *req, struct fy_obj_job *job,
                                           enum fy_obj_kind kind, const char *query)
{
    struct fy_obj_call *c = fy_obj_call_new(req->be, kind);

    if (!c)
        return NULL;
    if (fy_obj_call_url(c, job->key, job->key_len, query) != FERRY_OK) {
        fy_obj_call_free(c);
        return NULL;
    }
    c->req = req;
    c->job = job;
    fy_obj_r_push(&req->calls, c);
    fy_obj_enqueue(c, 0);
    return c;
}

/* Part size of a job: part_size, grown so that the job has at most
 * FY_OBJ_PARTS_MAX parts (S3's limit on an upload). */
static uint64_t fy_obj_part_len(const struct fy_obj *be, uint64_t len)
{
    uint64_t part = be->cfg.part_size;

    if (len / part >= FY_OBJ_PARTS_MAX)
        part = (len + FY_OBJ_PARTS_MAX - 1) / FY_OBJ_PARTS_MAX;
    return part;
}

/* A data call (GET range or upload part) for piece i of the job. */
static bool fy_obj_piece(struct fy_obj_req *req, struct fy_obj_job *job, uint32_t i,
                         enum fy_obj_kind kind, const char *query)
{
    uint64_t part = fy_obj_part_len(req->be, job->len), off = (uint64_t)i * part;
    struct fy_obj_call *c = fy_obj_req_call(req, job, kind, query);

    if (!c)
        return false;
    c->part = i;
    c->data = job->mem + off;
    c->obj_off = job->off + off;
    c->len = job->len - off < part ? job->len - off : part;
    return true;
}

static bool fy_obj_queue_gets(struct fy_obj_req *req, struct fy_obj_job *job)
{
    for (uint32_t i = 0; i < job->parts; i++)
        if (!fy_obj_piece(req, job, i, FY_OBJ_GET, NULL))
            return false;
    return true;
}

static bool fy_obj_queue_parts(struct fy_obj_req *req, struct fy_obj_job *job)
{
    char *id = curl_easy_escape(NULL, job->upload_id, 0), q[2048];
    bool ok = id != NULL;

    free(job->etags); /* a repost's new upload */
    job->etags = calloc(job->parts, sizeof(*job->etags));
    ok = ok && job->etags;
    for (uint32_t i = 0; ok && i < job->parts; i++) {
        ok = (size_t)snprintf(q, sizeof(q), "?partNumber=%u&uploadId=%s", i + 1, id) < sizeof(q);
        ok = ok && fy_obj_piece(req, job, i, FY_OBJ_MPU_PART, q);
    }
    curl_free(id);
    return ok;
}

/* The completion document: every part's number and ETag, in order. */
static char *fy_obj_done_doc(const struct fy_obj_job *job, size_t *len)
{
    size_t cap = 64 + (size_t)job->parts * (64 + FY_OBJ_ETAG_MAX), n;
    char *doc = malloc(cap);

    if (!doc)
        return NULL;
    n = (size_t)snprintf(doc, cap, "<CompleteMultipartUpload>");
    for (uint32_t i = 0; i < job->parts; i++)
        n += (size_t)snprintf(doc + n, cap - n,
                              "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag></Part>", i + 1,
                              job->etags[i]);
    n += (size_t)snprintf(doc + n, cap - n, "</CompleteMultipartUpload>");
    *len = n;
    return doc;
}

static bool fy_obj_queue_done(struct fy_obj_req *req, struct fy_obj_job *job)
{
    char *id = curl_easy_escape(NULL, job->upload_id, 0), q[2048];
    struct fy_obj_call *c = NULL;

    if (id && (size_t)snprintf(q, sizeof(q), "?uploadId=%s", id) < sizeof(q))
        c = fy_obj_req_call(req, job, FY_OBJ_MPU_DONE, q);
    curl_free(id);
    if (!c)
        return false;
    c->send = fy_obj_done_doc(job, &c->send_len);
    return c->send != NULL;
}

static void fy_obj_job_done(struct fy_obj_req *req)
{
    if (--req->jobs_left == 0 && req->state == FERRY_IN_PROGRESS)
        req->state = FERRY_OK;
}

/* What a call that succeeded means for its job; false: the request fails
 * (err says why). */
static bool fy_obj_advance(struct fy_obj_call *c, char *err, size_t len)
{
    struct fy_obj_job *job = c->job;
    char id[1024];

    switch (c->kind) {
    case FY_OBJ_MPU_CREATE:
        if (!fy_obj_xml_text(c->body, c->body_len, "UploadId", id, sizeof(id)) || !id[0]) {
            snprintf(err, len, "create upload %.*s: no UploadId in the answer", (int)job->key_len,
                     job->key);
            return false;
        }
        job->upload_id = strdup(id);
        return job->upload_id && fy_obj_queue_parts(c->req, job);
    case FY_OBJ_MPU_PART:
        memcpy(job->etags[c->part], c->etag, sizeof(c->etag));
        if (--job->parts_left == 0)
            return fy_obj_queue_done(c->req, job);
        return true;
    case FY_OBJ_MPU_DONE:
        free(job->upload_id); /* complete: nothing left to abort */
        job->upload_id = NULL;
        fy_obj_job_done(c->req);
        return true;
    default: /* GET, PUT */
        if (--job->parts_left == 0)
            fy_obj_job_done(c->req);
        return true;
    }
}

/* A call of a request ended for good. */
static void fy_obj_req_call_end(struct fy_obj_call *c, ferry_status st, char *err, size_t len)
{
    struct fy_obj_req *req = c->req;
    bool ok = st == FERRY_OK && fy_obj_advance(c, err, len);

    fy_obj_r_unlink(&req->calls, c);
    fy_obj_call_free(c);
    if (!ok)
        fy_obj_req_fail(req, st == FERRY_OK ? FERRY_ERR_BACKEND : st,
                        err[0] ? err : "out of memory");
}

/* An attempt ended (the call is off the multi handle): retry it, or end
 * it for its request (or alone, when detached). */
static void fy_obj_call_end(struct fy_obj_call *c, CURLcode cc)
{
    char err[FY_OBJ_ERR_MAX];
    bool retry;
    ferry_status st = fy_obj_call_outcome(c, cc, &retry, err, sizeof(err));
    uint64_t delay = st == FERRY_OK ? 0 : fy_obj_backoff_ns(c->be, c->attempt);

    if (st != FERRY_OK && retry && fy_obj_may_retry(c, delay)) {
        fy_obj_log(c->be, FERRY_LOG_DEBUG, "%s (attempt %u, retry in %llu ms)", err, c->attempt,
                   (unsigned long long)(delay / 1000000u));
        fy_obj_enqueue(c, fy_obj_now_ns() + delay);
        return;
    }
    if (st != FERRY_OK && c->attempt > 1)
        snprintf(err + strlen(err), sizeof(err) - strlen(err), " (after %u attempts)", c->attempt);
    if (c->req) {
        fy_obj_req_call_end(c, st, err, sizeof(err));
        return;
    }
    if (st != FERRY_OK)
        fy_obj_log(c->be, FERRY_LOG_WARN, "%s", err);
    fy_obj_r_unlink(&c->be->detached, c);
    fy_obj_call_free(c);
}

static bool fy_obj_reap(struct fy_obj *be)
{
    struct fy_obj_call *c;
    CURLMsg *m;
    int left;
    bool any = false;

    while ((m = curl_multi_info_read(be->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURLcode cc = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        fy_obj_detach(c);
        fy_obj_call_end(c, cc);
        any = true;
    }
    return any;
}

bool fy_obj_run_progress(struct fy_obj *be)
{
    bool work = fy_obj_start_due(be);

    fy_obj_wake_drive(be);
    work |= fy_obj_reap(be);
    work |= fy_obj_start_due(be);
    return work;
}

/* When the first queued call may start: UINT64_MAX when none can (no free
 * slot, or nothing queued); a slot freeing up is an event of its own. */
static uint64_t fy_obj_next_due(const struct fy_obj *be)
{
    uint64_t due = UINT64_MAX;

    if (be->running >= be->cfg.max_inflight)
        return due;
    for (const struct fy_obj_call *c = be->queue.head; c; c = c->q_next)
        if (c->due_ns < due)
            due = c->due_ns;
    return due;
}

bool fy_obj_run_arm(struct fy_obj *be)
{
    return fy_obj_wake_arm(be, fy_obj_next_due(be));
}

/* ---- posting ---------------------------------------------------------------- */

static bool fy_obj_job_start(struct fy_obj_req *req, struct fy_obj_job *job, bool write)
{
    const struct fy_obj *be = req->be;
    bool split = job->len > be->cfg.mpu_threshold;
    uint64_t part = fy_obj_part_len(be, job->len);
    struct fy_obj_call *c;

    job->parts = split ? (uint32_t)((job->len + part - 1) / part) : 1;
    job->parts_left = job->parts;
    if (!write)
        return fy_obj_queue_gets(req, job);
    if (split)
        return fy_obj_req_call(req, job, FY_OBJ_MPU_CREATE, "?uploads=") != NULL;
    c = fy_obj_req_call(req, job, FY_OBJ_PUT, NULL);
    if (c) {
        c->data = job->mem;
        c->len = job->len;
    }
    return c != NULL;
}

ferry_status fy_obj_req_post(struct fy_obj_req *req)
{
    bool write = req->xfer->op == FERRY_OP_WRITE;

    req->state = FERRY_IN_PROGRESS;
    req->err[0] = '\0';
    req->jobs_left = req->njobs;
    for (size_t i = 0; i < req->njobs; i++) {
        if (!fy_obj_job_start(req, &req->jobs[i], write)) {
            fy_obj_req_cancel(req);
            req->state = FERRY_ERR_NO_MEMORY;
            return FERRY_ERR_NO_MEMORY;
        }
    }
    fy_obj_run_progress(req->be); /* the first calls start now */
    return req->state;
}

/* ---- HEAD (query_memory) ---------------------------------------------------- */

static void fy_obj_sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};

    nanosleep(&ts, NULL);
}

/* One HEAD on the backend's own easy handle (its connection is kept),
 * blocking, with the same retries and limits as the transfers. */
ferry_status fy_obj_head(struct fy_obj *be, const char *key, size_t key_len, bool *found,
                         uint64_t *size, char *err, size_t err_len)
{
    struct fy_obj_job job = {.key = key, .key_len = key_len};
    struct fy_obj_call *c = fy_obj_call_new(be, FY_OBJ_HEAD);
    ferry_status st = FERRY_ERR_NO_MEMORY;
    curl_off_t cl = -1;
    bool retry = true;

    if (!c || fy_obj_call_url(c, key, key_len, NULL) != FERRY_OK)
        goto free_call;
    c->job = &job;
    while (retry) {
        fy_obj_call_reset(c);
        if (!c->attempt++)
            c->first_ns = fy_obj_now_ns();
        if ((st = fy_obj_call_setup(c, be->sync)) != FERRY_OK)
            break;
        CURLcode cc = curl_easy_perform(be->sync);
        curl_easy_getinfo(be->sync, CURLINFO_RESPONSE_CODE, &c->http);
        curl_easy_getinfo(be->sync, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        st = fy_obj_call_outcome(c, cc, &retry, err, err_len);
        uint64_t delay = fy_obj_backoff_ns(be, c->attempt);
        retry = st != FERRY_OK && retry && fy_obj_may_retry(c, delay);
        if (retry)
            fy_obj_sleep_ns(delay);
    }
    if (st != FERRY_OK && st != FERRY_ERR_NOT_FOUND && c->attempt > 1)
        snprintf(err + strlen(err), err_len - strlen(err), " (after %u attempts)", c->attempt);
    *found = st == FERRY_OK;
    *size = st == FERRY_OK && cl > 0 ? (uint64_t)cl : 0;
    if (st == FERRY_ERR_NOT_FOUND)
        st = FERRY_OK; /* absent is an answer, not an error */
free_call:
    fy_obj_call_free(c);
    return st;
}
