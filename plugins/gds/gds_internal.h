/* SPDX-License-Identifier: Apache-2.0 */
/* GDS: the GPUDirect Storage backend's private types, shared by its files.
 *
 * gds.c         descriptor, params, registration, loopback remote
 * gds_cufile.c  libcufile opened at run time: the entry points, error names
 * gds_xfer.c    requests: worker threads calling cuFileRead / cuFileWrite
 * gds_batch.c   requests through cuFile's batch API (mode=batch), where
 *               cuFile offers it
 *
 * The backend is not FERRY_PLUGIN_F_THREAD_SAFE: the core serialises its
 * ops; the workers (plugins/common's pool) see only their request. */
#ifndef FY_GDS_INTERNAL_H
#define FY_GDS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "ferry/plugin.h"
#include "fyp_list.h"
#include "fyp_pool.h"
#include "gpu/gpu.h"

#define FY_GDS_VERSION "0.1.0"

#define fy_gds_log(be, level, ...) (be)->host->log((be)->host->agent_ctx, (level), __VA_ARGS__)

/* ---- the slice of cuFile's ABI used here (libcufile.so.0) -------------- */

/* CUfileError_t: a cuFile status (0, or 5000 and up) and, for
 * CU_FILE_CUDA_DRIVER_ERROR, the CUresult behind it. */
typedef struct fy_cufile_status {
    int err;
    int cu_err;
} fy_cufile_status;

#define FY_CU_FILE_SUCCESS               0
#define FY_CU_FILE_HANDLE_TYPE_OPAQUE_FD 1

/* CUfileDescr_t */
typedef struct fy_cufile_descr {
    int type; /* FY_CU_FILE_HANDLE_TYPE_OPAQUE_FD */
    union {
        int fd;
        void *handle;
    } handle;
    const void *fs_ops; /* NULL: the kernel's file system */
} fy_cufile_descr;

typedef void *fy_cufile_handle;
typedef void *fy_cufile_batch;

#define FY_CUFILE_BATCH    1 /* CUfileBatchMode_t */
#define FY_CUFILE_READ     0 /* CUfileOpcode_t */
#define FY_CUFILE_WRITE    1
#define FY_CUFILE_WAITING  0x01 /* CUfileStatus_t */
#define FY_CUFILE_PENDING  0x02
#define FY_CUFILE_INVALID  0x04
#define FY_CUFILE_CANCELED 0x08
#define FY_CUFILE_COMPLETE 0x10
#define FY_CUFILE_TIMEOUT  0x20
#define FY_CUFILE_FAILED   0x40

/* CUfileIOParams_t: one I/O of a batch. */
typedef struct fy_cufile_io {
    int mode; /* FY_CUFILE_BATCH */
    union {
        struct {
            void *base; /* device or host memory */
            off_t file_offset;
            off_t base_offset;
            size_t size;
        } batch;
    } u;
    fy_cufile_handle fh;
    int opcode; /* FY_CUFILE_READ, FY_CUFILE_WRITE */
    void *cookie;
} fy_cufile_io;

/* CUfileIOEvents_t: how one I/O of a batch ended. */
typedef struct fy_cufile_event {
    void *cookie;
    int status; /* FY_CUFILE_* */
    size_t ret; /* bytes moved, or a negative error */
} fy_cufile_event;

typedef struct fy_cufile {
    fy_cufile_status (*DriverOpen)(void);
    fy_cufile_status (*DriverClose)(void);
    fy_cufile_status (*HandleRegister)(fy_cufile_handle *, fy_cufile_descr *);
    void (*HandleDeregister)(fy_cufile_handle);
    ssize_t (*Read)(fy_cufile_handle, void *, size_t, off_t, off_t);
    ssize_t (*Write)(fy_cufile_handle, const void *, size_t, off_t, off_t);
    /* optional: the batch API (NULL where the library lacks it) */
    fy_cufile_status (*BatchIOSetUp)(fy_cufile_batch *, unsigned);
    fy_cufile_status (*BatchIOSubmit)(fy_cufile_batch, unsigned, fy_cufile_io *, unsigned);
    fy_cufile_status (*BatchIOGetStatus)(fy_cufile_batch, unsigned, unsigned *, fy_cufile_event *,
                                         struct timespec *);
    fy_cufile_status (*BatchIOCancel)(fy_cufile_batch);
    void (*BatchIODestroy)(fy_cufile_batch);
} fy_cufile;

/* gds_cufile.c: opens the library (FERRY_CUFILE_LIB, else libcufile.so.0,
 * else libcufile.so) and its driver. NOT_SUPPORTED with the reason in why
 * (of why_len bytes) when either fails. */
ferry_status fy_cufile_open(fy_cufile *cf, void **lib, char *why, size_t why_len);
void fy_cufile_close(fy_cufile *cf, void *lib);
/* "CU_FILE_HANDLE_NOT_REGISTERED (5027)", or the number alone. buf: 64+. */
const char *fy_cufile_errname(int err, char *buf, size_t cap);

/* ---- the backend ----------------------------------------------------------- */

/* A registered file: the caller's fd and cuFile's handle for it. Loopback
 * remote regions hold a reference. */
struct fy_gds_file {
    struct fy_gds_file *next;
    uint64_t id;
    unsigned refs;
    int fd;
    fy_cufile_handle fh;
};

struct fy_gds_req;
struct fy_gds_batch;

/* A request (gds_xfer.c owns its life; gds_batch.c runs it in batch mode). */
struct fy_gds_req {
    fyp_job job; /* first: the pool hands it back (thread mode) */
    struct fy_gds *be;
    const ferry_plugin_xfer *xfer;
    atomic_bool failed;
    _Atomic ferry_status state;
    /* batch mode: the backend's queue of requests with I/Os to submit */
    fyp_link wait; /* listed: I/Os left to submit */
    bool canceled;
    size_t next_seg;      /* the next descriptor to submit */
    uint64_t seg_started; /* bytes of it already submitted */
    unsigned inflight;    /* I/Os submitted, not yet ended */
    char err[320];
};

struct fy_gds {
    const ferry_plugin_host *host;
    fy_cufile cf;
    void *lib;
    const fy_cuda *cu;  /* NULL: DRAM only */
    fy_cu_context *ctx; /* per GPU, its primary context retained when first named */
    int ngpus;
    uint64_t max_io; /* bytes per cuFileRead/Write call */
    fyp_pool pool;   /* thread mode: the workers, one descriptor per item */
    /* batch mode (cuFile's batch API): batch_pool_size handles of up to
     * batch_limit I/Os each; NULL batches: thread mode */
    struct fy_gds_batch *batches;
    unsigned nbatches, batch_limit;
    fyp_fifo waiting; /* batch mode: requests with I/Os to submit */
    struct fy_gds_file *files;
    uint64_t next_file_id;
};

/* gds_xfer.c */
ferry_status fy_gds_gpu_ctx(struct fy_gds *be, uint64_t ordinal);
ferry_status fy_gds_xfer_prep(void *priv, const ferry_plugin_xfer *xfer, void **handle);
ferry_status fy_gds_xfer_post(void *priv, void *handle, const void *notif, size_t notif_len);
ferry_status fy_gds_xfer_check(void *priv, void *handle);
ferry_status fy_gds_xfer_release(void *priv, void *handle);
const char *fy_gds_xfer_error(void *priv, void *handle);
void fy_gds_move(struct fy_gds_req *req, size_t i, uint64_t from, uint64_t to);
void fy_gds_fail_msg(struct fy_gds_req *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* gds_batch.c */
ferry_status fy_gds_batch_open(struct fy_gds *be, unsigned handles, unsigned limit);
void fy_gds_batch_close(struct fy_gds *be);
void fy_gds_batch_post(struct fy_gds *be, struct fy_gds_req *req);
ferry_status fy_gds_batch_progress(void *priv);
ferry_status fy_gds_batch_release(struct fy_gds *be, struct fy_gds_req *req);

#endif
