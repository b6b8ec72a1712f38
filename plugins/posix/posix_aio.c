/* SPDX-License-Identifier: Apache-2.0 */
/* The Linux AIO engine (libaio). Every iocb signals the backend's eventfd.
 * Linux AIO is asynchronous for O_DIRECT; buffered I/O completes inside
 * io_submit (the kernel has no async buffered path for it), which is still
 * correct, only not overlapped. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "posix_internal.h"

#ifdef FY_PX_HAVE_AIO

/* Completions taken per io_getevents call. */
#define FY_PX_AIO_BATCH 64

static int fy_px_aio_open(struct fy_px *be)
{
    be->aio_q = calloc(be->depth, sizeof(*be->aio_q));
    if (!be->aio_q)
        return -ENOMEM;
    be->aio = 0;
    int rc = io_setup((int)be->depth, &be->aio);
    if (rc < 0) {
        free(be->aio_q);
        be->aio_q = NULL;
    }
    return rc;
}

static void fy_px_aio_close(struct fy_px *be)
{
    io_destroy(be->aio);
    free(be->aio_q);
    be->aio_q = NULL;
}

static int fy_px_aio_queue(struct fy_px *be, struct fy_px_io *io)
{
    if (be->aio_nq == be->depth)
        return -EBUSY;
    /* Linux caps one read or write at 0x7ffff000 bytes: the rest of a
     * longer segment comes back short and is resubmitted. */
    size_t len = io->left > 0x7ffff000u ? 0x7ffff000u : (size_t)io->left;
    if (io->write)
        io_prep_pwrite(&io->cb, io->fd, io->buf, len, (long long)io->off);
    else
        io_prep_pread(&io->cb, io->fd, io->buf, len, (long long)io->off);
    io->cb.data = io;
    io_set_eventfd(&io->cb, be->event_fd);
    be->aio_q[be->aio_nq++] = &io->cb;
    return 0;
}

/* Drops the first n queued iocbs (submitted, or completed in error). */
static void fy_px_aio_shift(struct fy_px *be, unsigned n)
{
    for (unsigned i = n; i < be->aio_nq; i++)
        be->aio_q[i - n] = be->aio_q[i];
    be->aio_nq -= n;
}

/* io_submit stops at the first iocb it refuses (bad fd, misaligned
 * O_DIRECT...) and returns its error when none went in: that I/O completes
 * with the error, the rest is submitted again. */
static int fy_px_aio_submit(struct fy_px *be)
{
    while (be->aio_nq) {
        int rc = io_submit(be->aio, (long)be->aio_nq, be->aio_q);
        if (rc > 0) {
            fy_px_aio_shift(be, (unsigned)rc);
            continue;
        }
        if (rc == 0 || rc == -EAGAIN || rc == -EINTR)
            return -EAGAIN;
        struct fy_px_io *io = be->aio_q[0]->data;
        fy_px_aio_shift(be, 1);
        fy_px_io_done(be, io, rc);
    }
    return 0;
}

static int fy_px_aio_batch(struct fy_px *be, long min, struct timespec *ts)
{
    struct io_event ev[FY_PX_AIO_BATCH];
    int n = io_getevents(be->aio, min, FY_PX_AIO_BATCH, ev, ts);
    if (n < 0)
        return n == -EINTR ? 0 : n;
    for (int i = 0; i < n; i++)
        fy_px_io_done(be, ev[i].data, (int64_t)(long)ev[i].res);
    return n;
}

static int fy_px_aio_reap(struct fy_px *be, int wait_ms)
{
    struct timespec zero = {0, 0};
    struct timespec ts = {.tv_sec = wait_ms / 1000, .tv_nsec = (wait_ms % 1000) * 1000000L};
    int total = 0, n;
    do {
        n = fy_px_aio_batch(be, 0, &zero);
        if (n < 0)
            return n;
        total += n;
    } while (n == FY_PX_AIO_BATCH);
    if (total || wait_ms <= 0)
        return total;
    return fy_px_aio_batch(be, 1, &ts);
}

static void fy_px_aio_cancel(struct fy_px *be, struct fy_px_io *io)
{
    struct io_event ev;
    /* File systems do not cancel reads and writes (EINVAL); when one does,
     * the event comes back here and is handed on. */
    if (io_cancel(be->aio, &io->cb, &ev) == 0)
        fy_px_io_done(be, io, -ECANCELED);
}

static bool fy_px_aio_pending(struct fy_px *be)
{
    /* Completions: unknown without reaping (the eventfd count tells). */
    return be->aio_nq > 0;
}

const struct fy_px_engine fy_px_aio_engine = {
    .name = "aio",
    .open = fy_px_aio_open,
    .close = fy_px_aio_close,
    .queue = fy_px_aio_queue,
    .submit = fy_px_aio_submit,
    .reap = fy_px_aio_reap,
    .cancel = fy_px_aio_cancel,
    .pending = fy_px_aio_pending,
};

#endif
