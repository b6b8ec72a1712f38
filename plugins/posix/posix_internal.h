/* SPDX-License-Identifier: Apache-2.0 */
/* POSIX: the storage backend's private types, shared by its files.
 *
 * posix.c        descriptor, params, registration, loopback remote
 * posix_file.c   what a registered file or volume is (fd, O_DIRECT rules)
 * posix_xfer.c   requests: queueing, completions, short I/O, cancel
 * posix_uring.c  the io_uring engine (liburing)
 * posix_aio.c    the Linux AIO engine (libaio)
 * posix_stage.c  GPU memory (VRAM) to and from files, staged through
 *                pinned host bounce buffers
 *
 * The backend is not FERRY_PLUGIN_F_THREAD_SAFE: the core serialises its
 * ops, so the ring, the I/O slots and the queue of waiting requests need no
 * lock of their own. */
#ifndef FY_POSIX_INTERNAL_H
#define FY_POSIX_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "ferry/plugin.h"
#include "fyp_list.h"
#include "gpu/gpu.h"

#ifdef FY_PX_HAVE_URING
#include <liburing.h>
#endif
#ifdef FY_PX_HAVE_AIO
#include <libaio.h>
#endif

#define FY_PX_NAME    "POSIX"
#define FY_PX_VERSION "0.1.0"

#define fy_px_log(be, level, ...) (be)->host->log((be)->host->agent_ctx, (level), __VA_ARGS__)

struct fy_px;
struct fy_px_req;
struct fy_px_stage;

/* A registered file (FILE) or volume (BLOCK). Remote regions of ourselves
 * (loopback) hold a reference, so the fd stays open while any of them
 * exists, even after the registration itself is gone. */
struct fy_px_file {
    struct fy_px_file *next; /* in the backend's list */
    uint64_t id;             /* names it in the public bytes */
    unsigned refs;
    int fd;
    bool owned;         /* opened by us (path given): closed with the last ref */
    bool direct;        /* O_DIRECT: alignment is checked at prep */
    uint32_t mem_align; /* O_DIRECT: buffer address alignment */
    uint32_t off_align; /* O_DIRECT: file offset and length alignment */
    ferry_mem_type type;
};

/* One I/O the engine owns: a read or write of one (rest of a) segment. */
struct fy_px_io {
    struct fy_px_req *req; /* NULL: slot free */
    struct fy_px_io *next; /* free list, or the list of I/Os to resubmit */
    uint8_t *buf;
    uint64_t off, left; /* file offset and bytes still to move */
    size_t seg;         /* the segment, for error messages */
    int fd;
    bool write;
    struct fy_px_stage *stage; /* staged VRAM piece: its bounce buffer */
#ifdef FY_PX_HAVE_AIO
    struct iocb cb;
#endif
};

/* An I/O engine: how I/Os reach the kernel and come back. */
struct fy_px_engine {
    const char *name;
    /* 0 or -errno. Sets up be->depth slots' worth of queue. */
    int (*open)(struct fy_px *be);
    void (*close)(struct fy_px *be);
    /* Queues io for the next submit: 0, or -EBUSY when the queue is full. */
    int (*queue)(struct fy_px *be, struct fy_px_io *io);
    /* Hands queued I/Os to the kernel; 0 or -errno (transient: -EAGAIN). */
    int (*submit)(struct fy_px *be);
    /* Reaps completions (fy_px_io_done for each); waits up to wait_ms for
     * one when wait_ms > 0. Returns how many were reaped, or -errno. */
    int (*reap)(struct fy_px *be, int wait_ms);
    /* Asks the kernel to cancel io (best effort: file I/O rarely can be). */
    void (*cancel)(struct fy_px *be, struct fy_px_io *io);
    /* Whether completions signal the eventfd (optional; without it they
     * always do). Off while progress runs anyway: the signal costs the
     * kernel's worker thread time per I/O, and the worker is what limits
     * small buffered writes. */
    void (*signal)(struct fy_px *be, bool on);
    /* Completions are waiting to be reaped, or I/Os are queued and not
     * submitted yet: either way progress must run before sleeping on the
     * eventfd, which only completions signal. */
    bool (*pending)(struct fy_px *be);
};

extern const struct fy_px_engine fy_px_uring_engine;
extern const struct fy_px_engine fy_px_aio_engine;

/* A request (posix_xfer.c owns its life; posix_stage.c starts the pieces
 * of one whose local side is VRAM). */
struct fy_px_req {
    struct fy_px *be;
    const ferry_plugin_xfer *xfer; /* the core's, valid until release */
    fyp_link wait;                 /* in the backend's queue (listed): segments left to start */
    bool failed;                   /* an I/O failed: start nothing more */
    bool canceled;                 /* being released: drop what comes back */
    bool staged;                   /* local side VRAM: through bounce buffers */
    size_t next_seg;               /* the next segment to start */
    uint64_t seg_started;          /* staged: bytes of next_seg already started */
    unsigned inflight;             /* I/O slots it holds */
    ferry_status state;
    char err[320];
};

/* One GPU the staged path has used: its primary context, a stream for the
 * copies, the bounce buffers, and the copies in flight in stream order. */
struct fy_px_gpu {
    fy_cu_context ctx; /* NULL: not set up yet */
    fy_cu_stream stream;
    struct fy_px_stage *stages;                /* all of them */
    struct fy_px_stage *idle;                  /* free bounce buffers */
    struct fy_px_stage *copy_head, *copy_tail; /* GPU copies in flight, FIFO */
    uint8_t *pinned;                           /* one cuMemHostAlloc for all buffers */
};

/* The staged path's settings and per-GPU state; cu is NULL where no CUDA
 * driver loads (the backend then takes DRAM only). */
struct fy_px_staging {
    const fy_cuda *cu;
    uint64_t bounce_size; /* bytes per bounce buffer, a multiple of 4 KiB */
    unsigned bounces;     /* bounce buffers per GPU */
    int ngpus;
    struct fy_px_gpu *gpus; /* ngpus entries */
};

/* The backend's private state; the core allocates and zeroes it. */
struct fy_px {
    const ferry_plugin_host *host;
    const struct fy_px_engine *eng;
    unsigned depth;                    /* I/Os in the kernel at most */
    int event_fd;                      /* signalled by completions: the agent's wait fd */
    struct fy_px_io *ios;              /* depth slots */
    struct fy_px_io *free;             /* free slots */
    struct fy_px_io *redo, *redo_tail; /* short or interrupted: go again */
    unsigned inflight;                 /* slots in use */
    fyp_fifo waiting;                  /* requests with segments to start */
    struct fy_px_file *files;
    uint64_t next_file_id;
    uint64_t short_ios; /* resubmitted remainders, for tests and debug */
    struct fy_px_staging stg;
#ifdef FY_PX_HAVE_URING
    struct io_uring ring;
    unsigned sq_queued; /* SQEs prepared, not yet submitted */
#endif
#ifdef FY_PX_HAVE_AIO
    io_context_t aio;
    struct iocb **aio_q; /* queued, not yet submitted */
    unsigned aio_nq;
#endif
};

/* Completion signals on or off, where the engine can turn them off. */
static inline void fy_px_signal(struct fy_px *be, bool on)
{
    if (be->eng->signal)
        be->eng->signal(be, on);
}

/* posix_file.c */
ferry_status fy_px_file_open(struct fy_px *be, ferry_mem_type type, const ferry_desc *desc,
                             const void *meta, size_t meta_len, struct fy_px_file **out);
void fy_px_file_put(struct fy_px *be, struct fy_px_file *f);
struct fy_px_file *fy_px_file_find(struct fy_px *be, uint64_t id);

/* posix_xfer.c */
void fy_px_io_done(struct fy_px *be, struct fy_px_io *io, int64_t res);
struct fy_px_io *fy_px_slot_get(struct fy_px *be);
void fy_px_redo_push(struct fy_px *be, struct fy_px_io *io, bool front);
void fy_px_wait_unlink(struct fy_px *be, struct fy_px_req *req);
void fy_px_io_release(struct fy_px *be, struct fy_px_io *io);
void fy_px_fail_msg(struct fy_px_req *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
ferry_status fy_px_slots_init(struct fy_px *be);
ferry_status fy_px_xfer_prep(void *priv, const ferry_plugin_xfer *xfer, void **handle);
ferry_status fy_px_xfer_post(void *priv, void *handle, const void *notif, size_t notif_len);
ferry_status fy_px_xfer_check(void *priv, void *handle);
ferry_status fy_px_xfer_release(void *priv, void *handle);
const char *fy_px_xfer_error(void *priv, void *handle);
ferry_status fy_px_progress(void *priv);

/* posix_stage.c */
void fy_px_stage_load(struct fy_px *be);
void fy_px_stage_fini(struct fy_px *be);
ferry_status fy_px_stage_check(struct fy_px *be, const ferry_plugin_xfer *x);
struct fy_px_io *fy_px_stage_start(struct fy_px *be, struct fy_px_req *req, bool *more);
bool fy_px_stage_io_done(struct fy_px *be, struct fy_px_io *io);
void fy_px_stage_io_free(struct fy_px *be, struct fy_px_io *io);
int fy_px_stage_poll(struct fy_px *be);
void fy_px_stage_sync(struct fy_px *be);
bool fy_px_stage_busy(const struct fy_px *be);

#endif
