/* SPDX-License-Identifier: Apache-2.0 */
/* POSIX requests: DRAM <-> FILE/BLOCK reads and writes through the engine.
 *
 * A request is a list of segments (one I/O each, merged by the core where
 * contiguous). The backend has `depth` I/O slots: a posted request waits in
 * a FIFO until slots are free, and its segments are started in order as
 * they are; completions free the slots and start more. A short read or
 * write goes again for the rest (the kernel may stop early: signals, the
 * 2 GiB cap of one syscall); a read that meets the end of the file fails
 * the request, since a READ that returns OK delivered every byte.
 *
 * The first error ends a request: nothing more of it is started, and it
 * reports the error once its I/Os in flight have come back, so memory is
 * never written after the request says it is done. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "posix_internal.h"

/* ---- I/O slots ---------------------------------------------------------- */

ferry_status fy_px_slots_init(struct fy_px *be)
{
    be->ios = calloc(be->depth, sizeof(*be->ios));
    if (!be->ios)
        return FERRY_ERR_NO_MEMORY;
    for (unsigned i = 0; i < be->depth; i++) {
        be->ios[i].next = be->free;
        be->free = &be->ios[i];
    }
    return FERRY_OK;
}

struct fy_px_io *fy_px_slot_get(struct fy_px *be)
{
    struct fy_px_io *io = be->free;
    if (io) {
        be->free = io->next;
        be->inflight++;
    }
    return io;
}

static void fy_px_slot_put(struct fy_px *be, struct fy_px_io *io)
{
    io->req = NULL;
    io->next = be->free;
    be->free = io;
    be->inflight--;
}

void fy_px_redo_push(struct fy_px *be, struct fy_px_io *io, bool front)
{
    io->next = NULL;
    if (!be->redo) {
        be->redo = be->redo_tail = io;
    } else if (front) {
        io->next = be->redo;
        be->redo = io;
    } else {
        be->redo_tail->next = io;
        be->redo_tail = io;
    }
}

static struct fy_px_io *fy_px_redo_pop(struct fy_px *be)
{
    struct fy_px_io *io = be->redo;
    if (io && !(be->redo = io->next))
        be->redo_tail = NULL;
    return io;
}

/* ---- the queue of requests waiting for slots ---------------------------- */

static void fy_px_wait_push(struct fy_px *be, struct fy_px_req *req)
{
    fyp_fifo_push(&be->waiting, &req->wait);
}

void fy_px_wait_unlink(struct fy_px *be, struct fy_px_req *req)
{
    fyp_fifo_remove(&be->waiting, &req->wait);
}

static struct fy_px_req *fy_px_wait_head(const struct fy_px *be)
{
    return be->waiting.head ? FYP_CONTAINER(be->waiting.head, struct fy_px_req, wait) : NULL;
}

/* ---- completion ---------------------------------------------------------- */

static void fy_px_maybe_done(struct fy_px_req *req)
{
    if (req->inflight || req->wait.listed || req->state != FERRY_IN_PROGRESS)
        return;
    if (req->failed || req->next_seg == req->xfer->count)
        req->state = req->failed ? FERRY_ERR_IO : FERRY_OK;
}

/* Records the first error of a request: nothing more of it starts. */
void fy_px_fail_msg(struct fy_px_req *req, const char *fmt, ...)
{
    if (req->failed)
        return;
    req->failed = true;
    fy_px_wait_unlink(req->be, req);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(req->err, sizeof(req->err), fmt, ap);
    va_end(ap);
    fy_px_log(req->be, FERRY_LOG_ERROR, "%s", req->err);
}

/* The first error of a request's I/O (errnum 0: end of file). */
static void fy_px_fail(struct fy_px_req *req, const struct fy_px_io *io, int errnum)
{
    const char *what = errnum ? strerror(errnum) : "end of file before the descriptor's end";
    fy_px_fail_msg(
        req, "%s fd %d offset %" PRIu64 " (%" PRIu64 " bytes left of descriptor %zu): %s (%s)",
        io->write ? "write" : "read", io->fd, io->off, io->left, io->seg, what,
        errnum ? strerrorname_np(errnum) : "EOF");
}

/* What a completion means for the I/O: false when it must go again (the
 * rest of a short transfer, or an interrupted one). */
static bool fy_px_io_finished(struct fy_px_req *req, struct fy_px_io *io, int64_t res)
{
    if (req->failed || req->canceled)
        return true;
    if (res == -EAGAIN || res == -EINTR)
        return false;
    if (res < 0) {
        fy_px_fail(req, io, (int)-res);
        return true;
    }
    if (res == 0 && io->left) {
        fy_px_fail(req, io, io->write ? EIO : 0);
        return true;
    }
    if ((uint64_t)res >= io->left)
        return true;
    io->buf += res;
    io->off += (uint64_t)res;
    io->left -= (uint64_t)res;
    req->be->short_ios++;
    return false;
}

/* The I/O (and its bounce buffer, if staged) is over: its slot is free. */
void fy_px_io_release(struct fy_px *be, struct fy_px_io *io)
{
    struct fy_px_req *req = io->req;
    if (io->stage)
        fy_px_stage_io_free(be, io);
    fy_px_slot_put(be, io);
    req->inflight--;
    fy_px_maybe_done(req);
}

void fy_px_io_done(struct fy_px *be, struct fy_px_io *io, int64_t res)
{
    if (!fy_px_io_finished(io->req, io, res)) {
        fy_px_redo_push(be, io, false);
        return;
    }
    /* A staged READ goes on to the GPU; its slot stays held until then. */
    if (io->stage && fy_px_stage_io_done(be, io))
        return;
    fy_px_io_release(be, io);
}

/* ---- submission ---------------------------------------------------------- */

/* The next segment of a DRAM request, in a slot. */
static struct fy_px_io *fy_px_start_dram(struct fy_px *be, struct fy_px_req *req)
{
    struct fy_px_io *io;
    if (!(io = fy_px_slot_get(be)))
        return NULL;
    const ferry_plugin_xfer *x = req->xfer;
    size_t i = req->next_seg++;
    const struct fy_px_file *f = x->remote[i].region;
    *io = (struct fy_px_io){.req = req,
                            .buf = (uint8_t *)(uintptr_t)x->local[i].addr,
                            .off = x->remote[i].addr,
                            .left = x->local[i].len,
                            .seg = i,
                            .fd = f->fd,
                            .write = x->op == FERRY_OP_WRITE};
    req->inflight++;
    if (req->next_seg == x->count)
        fy_px_wait_unlink(be, req);
    return io;
}

/* The next I/O of the request at the head of the queue. A staged WRITE
 * first copies its pieces from the GPU (no I/O to queue yet): it goes on
 * starting pieces while bounce buffers are free. */
static struct fy_px_io *fy_px_start_seg(struct fy_px *be)
{
    struct fy_px_req *req;
    bool more = true;
    while ((req = fy_px_wait_head(be)) && more) {
        if (!req->staged)
            return fy_px_start_dram(be, req);
        struct fy_px_io *io = fy_px_stage_start(be, req, &more);
        if (io)
            return io;
    }
    return NULL;
}

/* A redone I/O whose request ended meanwhile gives its slot back. */
static struct fy_px_io *fy_px_next_io(struct fy_px *be)
{
    struct fy_px_io *io;
    while ((io = fy_px_redo_pop(be)) && (io->req->failed || io->req->canceled))
        fy_px_io_done(be, io, 0);
    return io ? io : fy_px_start_seg(be);
}

/* Fills the engine's queue from the I/Os to redo, then the waiting
 * requests, as far as slots go, and submits. */
static void fy_px_pump(struct fy_px *be)
{
    struct fy_px_io *io;
    fy_px_stage_poll(be); /* GPU copies done: their I/Os queue, their buffers free */
    while ((io = fy_px_next_io(be))) {
        if (be->eng->queue(be, io) < 0) {
            fy_px_redo_push(be, io, true);
            break;
        }
    }
    int rc = be->eng->submit(be);
    if (rc < 0 && rc != -EAGAIN) /* the queued I/Os stay: tried again next time */
        fy_px_log(be, FERRY_LOG_WARN, "%s submit: %s", be->eng->name, strerror(-rc));
}

/* Reaps what is there and refills, a few rounds while completions come
 * (page-cache hits complete within the submit). Returns how many I/Os
 * completed. */
static int fy_px_turn(struct fy_px *be, int rounds)
{
    int total = 0;
    for (int i = 0; i < rounds; i++) {
        int n = be->eng->reap(be, 0);
        if (n <= 0)
            break;
        total += n;
        fy_px_pump(be);
    }
    return total;
}

ferry_status fy_px_progress(void *priv)
{
    struct fy_px *be = priv;
    if (!be->inflight && !be->waiting.head)
        return FERRY_OK;
    fy_px_signal(be, false); /* progress is running: no eventfd until the next arm */
    int copies = fy_px_stage_poll(be);
    fy_px_pump(be);
    return fy_px_turn(be, 8) + copies > 0 ? FERRY_IN_PROGRESS : FERRY_OK;
}

/* ---- the ops ------------------------------------------------------------- */

/* O_DIRECT: buffer address, file offset and length must be aligned as the
 * file's kernel says, or the I/O fails with a bare EINVAL; say which. */
static ferry_status fy_px_check_direct(struct fy_px *be, const ferry_plugin_xfer *x, size_t i)
{
    const struct fy_px_file *f = x->remote[i].region;
    const char *what = NULL;
    uint64_t v = 0, a = f->off_align;
    /* Staged: the bounce buffers are aligned, whatever the GPU address. */
    if (x->local_type == FERRY_MEM_DRAM && x->local[i].addr % f->mem_align)
        what = "buffer address", v = x->local[i].addr, a = f->mem_align;
    else if (x->remote[i].addr % f->off_align)
        what = "file offset", v = x->remote[i].addr;
    else if (x->remote[i].len % f->off_align)
        what = "length", v = x->remote[i].len;
    if (!what)
        return FERRY_OK;
    fy_px_log(be, FERRY_LOG_ERROR,
              "O_DIRECT fd %d: descriptor %zu: %s %#" PRIx64 " is not a multiple of %" PRIu64
              " (needs buffer address %% %u, file offset and length %% %u)",
              f->fd, i, what, v, a, f->mem_align, f->off_align);
    return FERRY_ERR_INVALID_PARAM;
}

static ferry_status fy_px_check_seg(struct fy_px *be, const ferry_plugin_xfer *x, size_t i)
{
    const ferry_plugin_seg *l = &x->local[i], *r = &x->remote[i];
    if (!r->region || !l->len || l->len != r->len || l->addr > UINT64_MAX - l->len ||
        r->addr > (uint64_t)INT64_MAX - r->len) {
        fy_px_log(be, FERRY_LOG_ERROR, "descriptor %zu: %s", i,
                  r->region ? "bad length or range" : "no registered file or volume");
        return FERRY_ERR_INVALID_PARAM;
    }
    const struct fy_px_file *f = r->region;
    return f->direct ? fy_px_check_direct(be, x, i) : FERRY_OK;
}

static ferry_status fy_px_check_xfer(struct fy_px *be, const ferry_plugin_xfer *x)
{
    if (x->op != FERRY_OP_READ && x->op != FERRY_OP_WRITE)
        return FERRY_ERR_INVALID_PARAM;
    bool local_ok =
        x->local_type == FERRY_MEM_DRAM || (x->local_type == FERRY_MEM_VRAM && be->stg.cu);
    if (!local_ok || (x->remote_type != FERRY_MEM_FILE && x->remote_type != FERRY_MEM_BLOCK)) {
        fy_px_log(be, FERRY_LOG_ERROR, "moves DRAM%s (local) to and from FILE or BLOCK only",
                  be->stg.cu ? " or VRAM" : "");
        return FERRY_ERR_NOT_SUPPORTED;
    }
    for (size_t i = 0; i < x->count; i++) {
        ferry_status rc = fy_px_check_seg(be, x, i);
        if (rc != FERRY_OK)
            return rc;
    }
    return x->local_type == FERRY_MEM_VRAM ? fy_px_stage_check(be, x) : FERRY_OK;
}

ferry_status fy_px_xfer_prep(void *priv, const ferry_plugin_xfer *xfer, void **handle)
{
    struct fy_px *be = priv;
    if (!xfer || !handle)
        return FERRY_ERR_INVALID_PARAM;
    ferry_status rc = fy_px_check_xfer(be, xfer);
    if (rc != FERRY_OK)
        return rc;
    struct fy_px_req *req = calloc(1, sizeof(*req));
    if (!req)
        return FERRY_ERR_NO_MEMORY;
    req->be = be;
    req->xfer = xfer;
    req->staged = xfer->local_type == FERRY_MEM_VRAM;
    req->state = FERRY_ERR_NOT_POSTED;
    *handle = req;
    return FERRY_OK;
}

ferry_status fy_px_xfer_post(void *priv, void *handle, const void *notif, size_t notif_len)
{
    struct fy_px *be = priv;
    struct fy_px_req *req = handle;
    (void)notif; /* no notifications: the caps say so, the core refuses them */
    (void)notif_len;
    if (req->state == FERRY_IN_PROGRESS)
        return FERRY_ERR_REPOST_ACTIVE;
    req->failed = req->canceled = false;
    req->next_seg = 0;
    req->seg_started = 0;
    req->err[0] = '\0';
    req->state = FERRY_IN_PROGRESS;
    if (req->xfer->count)
        fy_px_wait_push(be, req);
    fy_px_pump(be);
    fy_px_turn(be, 1);
    fy_px_maybe_done(req);
    return req->state;
}

ferry_status fy_px_xfer_check(void *priv, void *handle)
{
    (void)priv;
    return ((struct fy_px_req *)handle)->state;
}

/* Asks the kernel to cancel the request's I/Os, then reaps until none is
 * left: the buffers are the caller's again only when the kernel is done
 * with them. Local I/O always completes; each wait is bounded, and an
 * engine that cannot reap any more is an error, not a hang. */
static ferry_status fy_px_drain(struct fy_px *be, struct fy_px_req *req)
{
    req->canceled = true;
    fy_px_wait_unlink(be, req);
    for (unsigned i = 0; i < be->depth; i++)
        if (be->ios[i].req == req)
            be->eng->cancel(be, &be->ios[i]);
    while (req->inflight) {
        fy_px_stage_sync(be); /* GPU copies end by themselves: wait for them */
        fy_px_pump(be);
        int n = be->eng->reap(be, fy_px_stage_busy(be) ? 0 : 100);
        if (n < 0) {
            fy_px_log(be, FERRY_LOG_ERROR, "release: %s reap: %s; %u I/O(s) abandoned",
                      be->eng->name, strerror(-n), req->inflight);
            return FERRY_ERR_BACKEND;
        }
    }
    return FERRY_OK;
}

ferry_status fy_px_xfer_release(void *priv, void *handle)
{
    struct fy_px *be = priv;
    struct fy_px_req *req = handle;
    ferry_status rc = FERRY_OK;
    if (req->inflight || req->wait.listed)
        rc = fy_px_drain(be, req);
    if (rc == FERRY_OK) /* else the kernel may still hold its I/Os: keep it */
        free(req);
    return rc;
}

const char *fy_px_xfer_error(void *priv, void *handle)
{
    (void)priv;
    return handle ? ((struct fy_px_req *)handle)->err : "";
}
