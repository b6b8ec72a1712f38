/* SPDX-License-Identifier: Apache-2.0 */
/* GPU memory (VRAM) to and from files, staged through pinned host memory:
 * the path that works on every host with a CUDA driver, GPUDirect Storage
 * or not.
 *
 * A VRAM segment is cut into pieces of one bounce buffer each. WRITE: the
 * piece is copied from the GPU into its buffer (cuMemcpyAsync on the GPU's
 * stream, an event recorded after it); when the event has fired, the
 * buffer is written to the file through the backend's engine. READ: the
 * file is read into the buffer; when the read is complete, the buffer is
 * copied to the GPU, and the buffer is free once that copy's event has
 * fired. Every piece in flight holds one buffer and one of the engine's
 * I/O slots, so with B buffers per GPU, B pieces overlap: disk I/O of some
 * with PCIe copies of others, several requests at once.
 *
 * Why in the POSIX plugin rather than a plugin of its own: the staged path
 * is file I/O with a GPU hop beside it. Here it uses the backend's engine
 * (io_uring or Linux AIO: queueing, short I/O, cancel, error reports),
 * its registered files and O_DIRECT rules unchanged, and depends only on
 * src/gpu's driver loader, below every plugin; a separate plugin would
 * have to copy the engine or depend on another plugin.
 *
 * The bounce buffers are 4 KiB aligned, so O_DIRECT works whatever the
 * GPU address; the file offset and length must still be aligned, and the
 * buffer size is a multiple of that alignment (checked when a request is
 * made). Each GPU is set up the first time a request names it (its
 * primary context retained, a stream, the buffers pinned with one
 * cuMemHostAlloc), and given back at fini. Every driver call runs with
 * that GPU's context pushed and popped again, so the caller's context is
 * left as it was. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "posix_internal.h"

/* A bounce buffer and the piece of device memory it carries. */
struct fy_px_stage {
    struct fy_px_stage *next; /* the GPU's idle list, or its copies in flight */
    struct fy_px_gpu *gpu;
    struct fy_px_io *io; /* the I/O slot it holds while busy */
    uint8_t *buf;        /* pinned, bounce_size bytes */
    fy_cu_event done;    /* recorded after its GPU copy */
    uint64_t vram, len;
};

/* ---- driver and GPUs ------------------------------------------------------ */

void fy_px_stage_load(struct fy_px *be)
{
    fy_gpu_why why;
    const fy_cuda *cu;
    if (fy_cuda_get(&cu, &why) != FERRY_OK) {
        fy_px_log(be, FERRY_LOG_INFO, "VRAM: not served (%s)", why.msg);
        return;
    }
    be->stg.gpus = calloc((size_t)cu->device_count, sizeof(*be->stg.gpus));
    if (!be->stg.gpus)
        return;
    be->stg.ngpus = cu->device_count;
    be->stg.cu = cu;
}

static bool fy_px_push(struct fy_px *be, struct fy_px_gpu *g)
{
    return be->stg.cu->CtxPushCurrent(g->ctx) == FY_CUDA_SUCCESS;
}

static void fy_px_pop(struct fy_px *be)
{
    fy_cu_context ignored;
    be->stg.cu->CtxPopCurrent(&ignored);
}

/* Undoes what fy_px_gpu_open did, however far it got. */
static void fy_px_gpu_close(struct fy_px *be, struct fy_px_gpu *g, int ordinal)
{
    const fy_cuda *cu = be->stg.cu;
    fy_cu_device dev;
    if (!g->ctx || !fy_px_push(be, g))
        return;
    for (unsigned i = 0; g->stages && i < be->stg.bounces; i++)
        if (g->stages[i].done)
            cu->EventDestroy(g->stages[i].done);
    if (g->pinned)
        cu->MemFreeHost(g->pinned);
    if (g->stream)
        cu->StreamDestroy(g->stream);
    fy_px_pop(be);
    free(g->stages);
    if (cu->DeviceGet(&dev, ordinal) == FY_CUDA_SUCCESS)
        cu->DevicePrimaryCtxRelease(dev);
    *g = (struct fy_px_gpu){0};
}

/* The bounce buffers, each with its event, all idle. */
static fy_cu_result fy_px_gpu_buffers(struct fy_px *be, struct fy_px_gpu *g)
{
    const fy_cuda *cu = be->stg.cu;
    void *pinned = NULL;
    fy_cu_result r = cu->MemHostAlloc(&pinned, be->stg.bounces * be->stg.bounce_size,
                                      FY_CU_MEMHOSTALLOC_PORTABLE);
    if (r != FY_CUDA_SUCCESS)
        return r;
    /* Zeroed once: a READ's bytes reach them through io_uring, which the
     * kernel fills unseen by memory checkers; and no stale bytes of this
     * process ever sit in a buffer a short read leaves partly unfilled. */
    memset(pinned, 0, (size_t)be->stg.bounces * be->stg.bounce_size);
    g->pinned = pinned;
    if (!(g->stages = calloc(be->stg.bounces, sizeof(*g->stages))))
        return FY_CUDA_ERROR_OUT_OF_MEMORY;
    for (unsigned i = 0; i < be->stg.bounces && r == FY_CUDA_SUCCESS; i++) {
        struct fy_px_stage *st = &g->stages[i];
        *st = (struct fy_px_stage){.next = g->idle, .gpu = g};
        st->buf = g->pinned + (size_t)i * be->stg.bounce_size;
        r = cu->EventCreate(&st->done, FY_CU_EVENT_DISABLE_TIMING);
        g->idle = st;
    }
    return r;
}

static ferry_status fy_px_gpu_open(struct fy_px *be, struct fy_px_gpu *g, int ordinal)
{
    const fy_cuda *cu = be->stg.cu;
    fy_cu_device dev;
    const char *what = "cuDevicePrimaryCtxRetain";
    fy_cu_result r = cu->DeviceGet(&dev, ordinal);
    if (r == FY_CUDA_SUCCESS)
        r = cu->DevicePrimaryCtxRetain(&g->ctx, dev);
    if (r == FY_CUDA_SUCCESS && !fy_px_push(be, g))
        r = FY_CUDA_ERROR_INVALID_CONTEXT;
    if (r == FY_CUDA_SUCCESS) {
        what = "cuStreamCreate";
        r = cu->StreamCreate(&g->stream, FY_CU_STREAM_NON_BLOCKING);
        if (r == FY_CUDA_SUCCESS)
            what = "bounce buffers (cuMemHostAlloc, cuEventCreate)", r = fy_px_gpu_buffers(be, g);
        fy_px_pop(be);
    }
    if (r == FY_CUDA_SUCCESS)
        return FERRY_OK;
    fy_px_log(be, FERRY_LOG_ERROR, "GPU %d: %s: %s (%u bounce buffers of %" PRIu64 " bytes)",
              ordinal, what, fy_cuda_errname(cu, r), be->stg.bounces, be->stg.bounce_size);
    fy_px_gpu_close(be, g, ordinal);
    return r == FY_CUDA_ERROR_OUT_OF_MEMORY ? FERRY_ERR_NO_MEMORY : FERRY_ERR_BACKEND;
}

void fy_px_stage_fini(struct fy_px *be)
{
    for (int i = 0; i < be->stg.ngpus; i++)
        fy_px_gpu_close(be, &be->stg.gpus[i], i);
    free(be->stg.gpus);
}

/* ---- checks at prep --------------------------------------------------------- */

static ferry_status fy_px_stage_check_seg(struct fy_px *be, const ferry_plugin_xfer *x, size_t i)
{
    uint64_t ordinal = x->local[i].dev_id;
    const struct fy_px_file *f = x->remote[i].region;
    if (ordinal >= (uint64_t)be->stg.ngpus) {
        fy_px_log(be, FERRY_LOG_ERROR, "descriptor %zu: GPU %" PRIu64 " is not visible (%d GPUs)",
                  i, ordinal, be->stg.ngpus);
        return FERRY_ERR_INVALID_PARAM;
    }
    if (f->direct && be->stg.bounce_size % f->off_align) {
        fy_px_log(be, FERRY_LOG_ERROR,
                  "O_DIRECT fd %d: bounce_size %" PRIu64 " is not a multiple of the file's "
                  "alignment %u",
                  f->fd, be->stg.bounce_size, f->off_align);
        return FERRY_ERR_INVALID_PARAM;
    }
    struct fy_px_gpu *g = &be->stg.gpus[ordinal];
    return g->ctx ? FERRY_OK : fy_px_gpu_open(be, g, (int)ordinal);
}

/* Every GPU the request names is set up here, so that starting pieces
 * later cannot fail for want of one. */
ferry_status fy_px_stage_check(struct fy_px *be, const ferry_plugin_xfer *x)
{
    for (size_t i = 0; i < x->count; i++) {
        ferry_status rc = fy_px_stage_check_seg(be, x, i);
        if (rc != FERRY_OK)
            return rc;
    }
    return FERRY_OK;
}

/* ---- GPU copies ------------------------------------------------------------- */

static void fy_px_copy_push(struct fy_px_gpu *g, struct fy_px_stage *st)
{
    st->next = NULL;
    if (g->copy_tail)
        g->copy_tail->next = st;
    else
        g->copy_head = st;
    g->copy_tail = st;
}

/* Starts the piece's copy: GPU to buffer for a WRITE, buffer to GPU for a
 * READ. False (the request failed, with the driver's reason) when the
 * driver refuses it. */
static bool fy_px_copy(struct fy_px *be, struct fy_px_io *io)
{
    const fy_cuda *cu = be->stg.cu;
    struct fy_px_stage *st = io->stage;
    fy_cu_deviceptr buf = (fy_cu_deviceptr)(uintptr_t)st->buf;
    fy_cu_result r = FY_CUDA_ERROR_INVALID_CONTEXT;
    if (fy_px_push(be, st->gpu)) {
        r = io->write ? cu->MemcpyAsync(buf, st->vram, st->len, st->gpu->stream)
                      : cu->MemcpyAsync(st->vram, buf, st->len, st->gpu->stream);
        if (r == FY_CUDA_SUCCESS)
            r = cu->EventRecord(st->done, st->gpu->stream);
        fy_px_pop(be);
    }
    if (r == FY_CUDA_SUCCESS) {
        fy_px_copy_push(st->gpu, st);
        return true;
    }
    fy_px_fail_msg(io->req,
                   "copy %s GPU memory %#" PRIx64 " (%" PRIu64 " bytes of descriptor %zu): %s",
                   io->write ? "from" : "to", st->vram, st->len, io->seg, fy_cuda_errname(cu, r));
    return false;
}

/* A copy is over (r: how it ended). A WRITE's piece goes on to the file;
 * anything else is done with its buffer and slot. */
static void fy_px_copy_done(struct fy_px *be, struct fy_px_stage *st, fy_cu_result r)
{
    struct fy_px_io *io = st->io;
    struct fy_px_req *req = io->req;
    if (r != FY_CUDA_SUCCESS)
        fy_px_fail_msg(req, "copy %s GPU memory %#" PRIx64 " (descriptor %zu) failed: %s",
                       io->write ? "from" : "to", st->vram, io->seg,
                       fy_cuda_errname(be->stg.cu, r));
    if (io->write && !req->failed && !req->canceled)
        fy_px_redo_push(be, io, false);
    else
        fy_px_io_release(be, io);
}

/* Takes the copies that have finished, in stream order, on one GPU. */
static int fy_px_gpu_poll(struct fy_px *be, struct fy_px_gpu *g)
{
    int n = 0;
    if (!g->copy_head || !fy_px_push(be, g))
        return 0;
    struct fy_px_stage *st;
    while ((st = g->copy_head)) {
        fy_cu_result r = be->stg.cu->EventQuery(st->done);
        if (r == FY_CUDA_ERROR_NOT_READY)
            break;
        if (!(g->copy_head = st->next))
            g->copy_tail = NULL;
        fy_px_copy_done(be, st, r);
        n++;
    }
    fy_px_pop(be);
    return n;
}

int fy_px_stage_poll(struct fy_px *be)
{
    int n = 0;
    for (int i = 0; i < be->stg.ngpus; i++)
        n += fy_px_gpu_poll(be, &be->stg.gpus[i]);
    return n;
}

/* Waits until every copy in flight has ended (one stream per GPU: its
 * last event fires last); fy_px_stage_poll then takes them. */
void fy_px_stage_sync(struct fy_px *be)
{
    for (int i = 0; i < be->stg.ngpus; i++) {
        struct fy_px_gpu *g = &be->stg.gpus[i];
        if (g->copy_tail && fy_px_push(be, g)) {
            be->stg.cu->EventSynchronize(g->copy_tail->done);
            fy_px_pop(be);
        }
    }
}

bool fy_px_stage_busy(const struct fy_px *be)
{
    for (int i = 0; i < be->stg.ngpus; i++)
        if (be->stg.gpus[i].copy_head)
            return true;
    return false;
}

/* ---- pieces ----------------------------------------------------------------- */

/* Moves the request's cursor past a piece of len bytes. */
static void fy_px_stage_advance(struct fy_px *be, struct fy_px_req *req, uint64_t len)
{
    req->seg_started += len;
    if (req->seg_started < req->xfer->local[req->next_seg].len)
        return;
    req->seg_started = 0;
    if (++req->next_seg == req->xfer->count)
        fy_px_wait_unlink(be, req);
}

/* The next piece of req in an idle buffer and a free slot; NULL when
 * either is lacking. */
static struct fy_px_io *fy_px_stage_take(struct fy_px *be, struct fy_px_req *req)
{
    const ferry_plugin_xfer *x = req->xfer;
    size_t i = req->next_seg;
    struct fy_px_gpu *g = &be->stg.gpus[x->local[i].dev_id];
    struct fy_px_stage *st = g->idle;
    struct fy_px_io *io;
    if (!st || !(io = fy_px_slot_get(be)))
        return NULL;
    g->idle = st->next;
    uint64_t rest = x->local[i].len - req->seg_started;
    st->len = rest < be->stg.bounce_size ? rest : be->stg.bounce_size;
    st->vram = x->local[i].addr + req->seg_started;
    st->io = io;
    const struct fy_px_file *f = x->remote[i].region;
    *io = (struct fy_px_io){.req = req,
                            .buf = st->buf,
                            .off = x->remote[i].addr + req->seg_started,
                            .left = st->len,
                            .seg = i,
                            .fd = f->fd,
                            .write = x->op == FERRY_OP_WRITE,
                            .stage = st};
    req->inflight++;
    fy_px_stage_advance(be, req, st->len);
    return io;
}

/* Starts the next piece of a staged request. A READ's I/O is returned for
 * the engine; a WRITE's piece starts with its GPU copy, and NULL is
 * returned with *more left true (another piece may start). *more false:
 * no buffer or slot is free. */
struct fy_px_io *fy_px_stage_start(struct fy_px *be, struct fy_px_req *req, bool *more)
{
    struct fy_px_io *io = fy_px_stage_take(be, req);
    *more = io != NULL;
    if (!io || !io->write)
        return io;
    if (!fy_px_copy(be, io))
        fy_px_io_release(be, io);
    return NULL;
}

/* A staged I/O completed. A READ of a live request goes on to the GPU
 * (true: the slot stays held); otherwise false, and the caller releases. */
bool fy_px_stage_io_done(struct fy_px *be, struct fy_px_io *io)
{
    struct fy_px_req *req = io->req;
    if (io->write || req->failed || req->canceled)
        return false;
    return fy_px_copy(be, io);
}

void fy_px_stage_io_free(struct fy_px *be, struct fy_px_io *io)
{
    (void)be;
    struct fy_px_stage *st = io->stage;
    st->next = st->gpu->idle;
    st->gpu->idle = st;
    st->io = NULL;
    io->stage = NULL;
}
