/* SPDX-License-Identifier: Apache-2.0 */
/* The io_uring engine (liburing). One ring per backend; completions also
 * signal the backend's eventfd, so an idle progress thread sleeps in
 * poll() until one arrives. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "posix_internal.h"

#ifdef FY_PX_HAVE_URING

/* user_data of cancel requests: their completions carry nothing to do. */
#define FY_PX_URING_CANCEL 1ull

/* Cooperative task running: completions that need the submitting thread
 * wait for its next entry into the kernel instead of interrupting it with
 * an IPI. For 4 KiB buffered writes, which io_uring hands to its worker
 * thread, that is 1.3 against 0.9 GB/s on a 2-vCPU VM; fio sets it too.
 * The kernel raises IORING_SQ_TASKRUN while such completions wait, and
 * reaping enters the kernel for them (a caller spinning on status would
 * otherwise see them only at the next tick). Kernels before 5.19 refuse
 * these flags: none then. */
static int fy_px_uring_init(struct fy_px *be)
{
    /* Twice the depth: room for the cancel requests a release may add
     * while every slot is in flight. */
    struct io_uring_params p = {.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG};
    int rc = io_uring_queue_init_params(be->depth * 2, &be->ring, &p);
    if (rc == -EINVAL)
        rc = io_uring_queue_init(be->depth * 2, &be->ring, 0);
    return rc;
}

static int fy_px_uring_open(struct fy_px *be)
{
    int rc = fy_px_uring_init(be);
    if (rc < 0)
        return rc;
    rc = io_uring_register_eventfd(&be->ring, be->event_fd);
    if (rc < 0)
        io_uring_queue_exit(&be->ring);
    return rc;
}

static void fy_px_uring_close(struct fy_px *be)
{
    io_uring_queue_exit(&be->ring);
}

static int fy_px_uring_queue(struct fy_px *be, struct fy_px_io *io)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&be->ring);
    if (!sqe)
        return -EBUSY;
    /* io_uring takes an unsigned length per op; a longer segment ends
     * short and its rest is resubmitted. */
    unsigned len = io->left > 0x7ffff000u ? 0x7ffff000u : (unsigned)io->left;
    if (io->write)
        io_uring_prep_write(sqe, io->fd, io->buf, len, io->off);
    else
        io_uring_prep_read(sqe, io->fd, io->buf, len, io->off);
    io_uring_sqe_set_data(sqe, io);
    be->sq_queued++;
    return 0;
}

static int fy_px_uring_submit(struct fy_px *be)
{
    if (!be->sq_queued)
        return 0;
    int rc = io_uring_submit(&be->ring);
    if (rc < 0)
        return rc == -EINTR || rc == -EBUSY ? -EAGAIN : rc;
    be->sq_queued -= (unsigned)rc < be->sq_queued ? (unsigned)rc : be->sq_queued;
    return 0;
}

static void fy_px_uring_one(struct fy_px *be, struct io_uring_cqe *cqe)
{
    void *data = io_uring_cqe_get_data(cqe);
    if ((uintptr_t)data != FY_PX_URING_CANCEL)
        fy_px_io_done(be, data, cqe->res);
}

/* Takes every completion already posted, one CQ head update for all. */
static int fy_px_uring_drain(struct fy_px *be)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&be->ring, head, cqe)
    {
        fy_px_uring_one(be, cqe);
        n++;
    }
    io_uring_cq_advance(&be->ring, n);
    return (int)n;
}

/* Completions wait for this thread to enter the kernel (see init), or
 * overflowed the completion queue. */
static bool fy_px_uring_held(struct fy_px *be)
{
    return IO_URING_READ_ONCE(*be->ring.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW);
}

static int fy_px_uring_reap(struct fy_px *be, int wait_ms)
{
    int n = fy_px_uring_drain(be);
    if (!n && fy_px_uring_held(be)) {
        io_uring_get_events(&be->ring);
        n = fy_px_uring_drain(be);
    }
    if (n || wait_ms <= 0)
        return n;
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts = {.tv_sec = wait_ms / 1000,
                                   .tv_nsec = (wait_ms % 1000) * 1000000L};
    int rc = io_uring_wait_cqe_timeout(&be->ring, &cqe, &ts);
    if (rc < 0 && rc != -ETIME && rc != -EINTR)
        return rc;
    return fy_px_uring_drain(be);
}

static void fy_px_uring_cancel(struct fy_px *be, struct fy_px_io *io)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&be->ring);
    if (!sqe)
        return; /* no room: the release simply waits for the I/O */
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)io, 0);
    io_uring_sqe_set_data64(sqe, FY_PX_URING_CANCEL);
    be->sq_queued++;
}

static void fy_px_uring_signal(struct fy_px *be, bool on)
{
    io_uring_cq_eventfd_toggle(&be->ring, on); /* a flag in the shared ring: no system call */
}

static bool fy_px_uring_pending(struct fy_px *be)
{
    return be->sq_queued || io_uring_cq_ready(&be->ring) > 0;
}

const struct fy_px_engine fy_px_uring_engine = {
    .name = "uring",
    .open = fy_px_uring_open,
    .close = fy_px_uring_close,
    .queue = fy_px_uring_queue,
    .submit = fy_px_uring_submit,
    .reap = fy_px_uring_reap,
    .cancel = fy_px_uring_cancel,
    .signal = fy_px_uring_signal,
    .pending = fy_px_uring_pending,
};

#endif
