/* SPDX-License-Identifier: Apache-2.0 */
/* GDS: the GPUDirect Storage backend's private types, shared by its files.
 *
 * gds.c         descriptor, params, registration, loopback remote
 * gds_cufile.c  libcufile opened at run time: the entry points, error names
 * gds_xfer.c    requests: worker threads calling cuFileRead / cuFileWrite
 *
 * The backend is not FERRY_PLUGIN_F_THREAD_SAFE: the core serialises its
 * ops; the workers (plugins/common's pool) see only their request. */
#ifndef FY_GDS_INTERNAL_H
#define FY_GDS_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ferry/plugin.h"
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

typedef struct fy_cufile {
    fy_cufile_status (*DriverOpen)(void);
    fy_cufile_status (*DriverClose)(void);
    fy_cufile_status (*HandleRegister)(fy_cufile_handle *, fy_cufile_descr *);
    void (*HandleDeregister)(fy_cufile_handle);
    ssize_t (*Read)(fy_cufile_handle, void *, size_t, off_t, off_t);
    ssize_t (*Write)(fy_cufile_handle, const void *, size_t, off_t, off_t);
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

struct fy_gds {
    const ferry_plugin_host *host;
    fy_cufile cf;
    void *lib;
    const fy_cuda *cu;  /* NULL: DRAM only */
    fy_cu_context *ctx; /* per GPU, its primary context retained when first named */
    int ngpus;
    uint64_t max_io; /* bytes per cuFileRead/Write call */
    fyp_pool pool;   /* the workers: one descriptor per item */
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

#endif
