/* SPDX-License-Identifier: Apache-2.0 */
/* GDS requests through cuFile's batch API (NIXL's mode=batch, its default):
 * batch_pool_size batch handles, each carrying up to batch_limit I/Os of
 * one request (a descriptor longer than max_request_size is several I/Os).
 * A posted request waits in a FIFO for idle handles; its I/Os are
 * submitted in order as handles free up. Completions are reaped without
 * waiting (cuFileBatchIOGetStatus, timeout 0) by progress and status
 * polls. The first I/O that fails or comes back short ends the request
 * with FERRY_ERR_IO: nothing more of it is submitted, and its state
 * changes once its I/Os in flight have come back.
 *
 * Release of a request in flight cancels its handles
 * (cuFileBatchIOCancel) and reaps until none of its I/Os is left, each
 * wait bounded: when it returns, cuFile writes none of its memory. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "gds_internal.h"

/* What one I/O of a batch carries, found again through its cookie. */
struct fy_gds_piece {
    struct fy_gds_req *req;
    size_t seg;
    uint64_t off, len;
};

struct fy_gds_batch {
    fy_cufile_batch h;
    struct fy_gds_req *req; /* NULL: idle */
    unsigned left;          /* I/Os submitted, not yet reaped */
    struct fy_gds_piece *pieces;
    fy_cufile_io *ios;
    fy_cufile_event *events;
};

/* Reaping waits this long at most per call while a release drains. */
#define FY_GDS_DRAIN_WAIT_MS 100
#define FY_GDS_DRAIN_TRIES   600

/* ---- set-up ------------------------------------------------------------------ */

static bool fy_gds_batch_alloc(struct fy_gds_batch *b, unsigned limit)
{
    b->pieces = calloc(limit, sizeof(*b->pieces));
    b->ios = calloc(limit, sizeof(*b->ios));
    b->events = calloc(limit, sizeof(*b->events));
    return b->pieces && b->ios && b->events;
}

static void fy_gds_batch_free(struct fy_gds *be, struct fy_gds_batch *b)
{
    if (b->h)
        be->cf.BatchIODestroy(b->h);
    free(b->pieces);
    free(b->ios);
    free(b->events);
}

void fy_gds_batch_close(struct fy_gds *be)
{
    for (unsigned i = 0; be->batches && i < be->nbatches; i++)
        fy_gds_batch_free(be, &be->batches[i]);
    free(be->batches);
    be->batches = NULL;
}

/* NOT_SUPPORTED (the caller uses worker threads) where the library has
 * no batch API or cuFileBatchIOSetUp refuses. */
ferry_status fy_gds_batch_open(struct fy_gds *be, unsigned handles, unsigned limit)
{
    char name[64];
    if (!be->cf.BatchIOSetUp || !be->cf.BatchIOSubmit || !be->cf.BatchIOGetStatus ||
        !be->cf.BatchIOCancel || !be->cf.BatchIODestroy) {
        fy_gds_log(be, FERRY_LOG_INFO, "the cuFile library has no batch API: worker threads");
        return FERRY_ERR_NOT_SUPPORTED;
    }
    if (!(be->batches = calloc(handles, sizeof(*be->batches))))
        return FERRY_ERR_NO_MEMORY;
    be->nbatches = handles;
    be->batch_limit = limit;
    for (unsigned i = 0; i < handles; i++) {
        if (!fy_gds_batch_alloc(&be->batches[i], limit)) {
            fy_gds_batch_close(be);
            return FERRY_ERR_NO_MEMORY;
        }
        fy_cufile_status st = be->cf.BatchIOSetUp(&be->batches[i].h, limit);
        if (st.err != FY_CU_FILE_SUCCESS) {
            be->batches[i].h = NULL;
            fy_gds_log(be, FERRY_LOG_INFO, "cuFileBatchIOSetUp(%u): %s: worker threads", limit,
                       fy_cufile_errname(st.err, name, sizeof(name)));
            fy_gds_batch_close(be);
            return FERRY_ERR_NOT_SUPPORTED;
        }
    }
    return FERRY_OK;
}

/* ---- the queue of requests waiting for handles -------------------------------- */

static void fy_gds_wait_unlink(struct fy_gds *be, struct fy_gds_req *req)
{
    fyp_fifo_remove(&be->waiting, &req->wait);
}

static struct fy_gds_req *fy_gds_wait_head(const struct fy_gds *be)
{
    return be->waiting.head ? FYP_CONTAINER(be->waiting.head, struct fy_gds_req, wait) : NULL;
}

static void fy_gds_maybe_done(struct fy_gds_req *req)
{
    bool failed = atomic_load(&req->failed);
    if (req->inflight || (req->wait.listed && !failed) ||
        atomic_load(&req->state) != FERRY_IN_PROGRESS)
        return;
    atomic_store(&req->state, failed ? FERRY_ERR_IO : FERRY_OK);
}

/* ---- submission ----------------------------------------------------------------- */

/* The next I/O of req into slot n of b: at most max_io bytes of the
 * current descriptor. */
static void fy_gds_piece_next(struct fy_gds *be, struct fy_gds_req *req, struct fy_gds_batch *b,
                              unsigned n)
{
    const ferry_plugin_xfer *x = req->xfer;
    size_t i = req->next_seg;
    uint64_t rest = x->local[i].len - req->seg_started;
    uint64_t len = rest < be->max_io ? rest : be->max_io;
    const struct fy_gds_file *f = x->remote[i].region;
    b->pieces[n] = (struct fy_gds_piece){req, i, x->remote[i].addr + req->seg_started, len};
    b->ios[n] = (fy_cufile_io){.mode = FY_CUFILE_BATCH,
                               .u.batch = {.base = (void *)(uintptr_t)x->local[i].addr,
                                           .file_offset = (off_t)b->pieces[n].off,
                                           .base_offset = (off_t)req->seg_started,
                                           .size = len},
                               .fh = f->fh,
                               .opcode = x->op == FERRY_OP_WRITE ? FY_CUFILE_WRITE : FY_CUFILE_READ,
                               .cookie = &b->pieces[n]};
    req->seg_started += len;
    if (req->seg_started == x->local[i].len) {
        req->seg_started = 0;
        req->next_seg++;
    }
}

/* Fills idle handle b from the head request and submits it. */
static void fy_gds_batch_fill(struct fy_gds *be, struct fy_gds_batch *b)
{
    char name[64];
    struct fy_gds_req *req = fy_gds_wait_head(be);
    unsigned n = 0;
    while (n < be->batch_limit && req->next_seg < req->xfer->count)
        fy_gds_piece_next(be, req, b, n++);
    if (req->next_seg == req->xfer->count)
        fy_gds_wait_unlink(be, req);
    fy_cufile_status st = be->cf.BatchIOSubmit(b->h, n, b->ios, 0);
    if (st.err != FY_CU_FILE_SUCCESS) {
        fy_gds_fail_msg(req, "cuFileBatchIOSubmit of %u I/Os (descriptor %zu on): %s", n,
                        b->pieces[0].seg, fy_cufile_errname(st.err, name, sizeof(name)));
        fy_gds_wait_unlink(be, req);
        fy_gds_maybe_done(req);
        return;
    }
    b->req = req;
    b->left = n;
    req->inflight += n;
}

/* Idle handles take the waiting requests' I/Os, in order. */
static void fy_gds_pump(struct fy_gds *be)
{
    for (unsigned i = 0; i < be->nbatches && be->waiting.head; i++)
        if (!be->batches[i].req)
            fy_gds_batch_fill(be, &be->batches[i]);
}

void fy_gds_batch_post(struct fy_gds *be, struct fy_gds_req *req)
{
    req->inflight = 0;
    fyp_fifo_push(&be->waiting, &req->wait);
    fy_gds_pump(be);
    fy_gds_batch_progress(be);
}

/* ---- completion ----------------------------------------------------------------- */

static void fy_gds_piece_failed(struct fy_gds *be, const struct fy_gds_piece *p,
                                const fy_cufile_event *ev)
{
    struct fy_gds_req *req = p->req;
    const struct fy_gds_file *f = req->xfer->remote[p->seg].region;
    ssize_t ret = (ssize_t)ev->ret;
    int err = ret < 0 ? (int)-ret : 0;
    bool sys = err > 0 && err < 5000; /* an errno, else a cuFile status */
    char name[64];
    const char *why = sys   ? strerror(err)
                      : err ? fy_cufile_errname(err, name, sizeof(name))
                            : "not completed";
    fy_gds_fail_msg(req,
                    "batch %s fd %d offset %" PRIu64 " (%" PRIu64 " bytes, descriptor %zu): "
                    "status %#x: %s%s%s%s",
                    req->xfer->op == FERRY_OP_WRITE ? "write" : "read", f->fd, p->off, p->len,
                    p->seg, ev->status, why, sys ? " (" : "", sys ? strerrorname_np(err) : "",
                    sys ? ")" : "");
    fy_gds_wait_unlink(be, req);
}

/* A short but successful I/O: the rest goes by plain cuFile calls here,
 * which end at the cause (the end of the file, a full disk) with its
 * errno. Rare, and local I/O: done inline. */
static void fy_gds_piece_rest(struct fy_gds *be, const struct fy_gds_piece *p, uint64_t moved)
{
    struct fy_gds_req *req = p->req;
    uint64_t start = p->off - req->xfer->remote[p->seg].addr;
    fy_gds_move(req, p->seg, start + moved, start + p->len);
    if (atomic_load(&req->failed))
        fy_gds_wait_unlink(be, req);
}

static void fy_gds_event(struct fy_gds *be, struct fy_gds_batch *b, const fy_cufile_event *ev)
{
    const struct fy_gds_piece *p = ev->cookie;
    struct fy_gds_req *req = p->req;
    bool done = ev->status == FY_CUFILE_COMPLETE && (ssize_t)ev->ret >= 0;
    if (done && ev->ret < p->len && !req->canceled)
        fy_gds_piece_rest(be, p, ev->ret);
    else if (!done && !req->canceled)
        fy_gds_piece_failed(be, p, ev);
    req->inflight--;
    if (--b->left == 0)
        b->req = NULL;
    fy_gds_maybe_done(req);
}

/* Reaps what one busy handle has finished, waiting up to wait_ms. */
static int fy_gds_reap(struct fy_gds *be, struct fy_gds_batch *b, int wait_ms)
{
    char name[64];
    unsigned nr = b->left;
    struct timespec ts = {wait_ms / 1000, (wait_ms % 1000) * 1000000L};
    fy_cufile_status st = be->cf.BatchIOGetStatus(b->h, 0, &nr, b->events, &ts);
    if (st.err != FY_CU_FILE_SUCCESS) {
        fy_gds_log(be, FERRY_LOG_ERROR, "cuFileBatchIOGetStatus: %s",
                   fy_cufile_errname(st.err, name, sizeof(name)));
        return -1;
    }
    for (unsigned i = 0; i < nr && i < be->batch_limit; i++)
        fy_gds_event(be, b, &b->events[i]);
    return (int)nr;
}

ferry_status fy_gds_batch_progress(void *priv)
{
    struct fy_gds *be = priv;
    int n = 0;
    for (unsigned i = 0; i < be->nbatches; i++)
        if (be->batches[i].req)
            n += fy_gds_reap(be, &be->batches[i], 0) > 0;
    fy_gds_pump(be);
    return n ? FERRY_IN_PROGRESS : FERRY_OK;
}

/* Cancels the handles carrying req and reaps them until none of its I/Os
 * is left; a handle cuFile cannot reap is an error, not a hang. */
ferry_status fy_gds_batch_release(struct fy_gds *be, struct fy_gds_req *req)
{
    req->canceled = true;
    fy_gds_wait_unlink(be, req);
    for (unsigned i = 0; i < be->nbatches; i++) {
        struct fy_gds_batch *b = &be->batches[i];
        if (b->req != req)
            continue;
        be->cf.BatchIOCancel(b->h);
        for (int t = 0; b->req == req && t < FY_GDS_DRAIN_TRIES; t++)
            if (fy_gds_reap(be, b, FY_GDS_DRAIN_WAIT_MS) < 0)
                break;
    }
    if (req->inflight) {
        fy_gds_log(be, FERRY_LOG_ERROR, "release: %u batch I/O(s) not reaped; request kept",
                   req->inflight);
        return FERRY_ERR_BACKEND;
    }
    fy_gds_pump(be); /* the handles freed go to the next requests */
    return FERRY_OK;
}
