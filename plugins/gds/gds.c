/* SPDX-License-Identifier: Apache-2.0 */
/* GDS: GPUDirect Storage, NIXL's GDS and GDS_MT backends. Moves data
 * between files (FILE) and GPU (VRAM) or host (DRAM) memory through
 * cuFile, opened at run time (gds_cufile.c): with the nvidia-fs kernel
 * driver, DMA between the NVMe and the GPU; without it, cuFile's
 * compatibility mode. Loopback only, as NIXL's storage backends: the
 * remote agent is the agent's own name; no notifications.
 *
 * The same sources build libferry_plugin_gds.so and, named GDS_MT,
 * libferry_plugin_gds_mt.so (FY_GDS_NAME), so NIXL code asking for either
 * finds it. Where libcufile is absent or its driver does not open, backend
 * creation fails with FERRY_ERR_NOT_SUPPORTED and the reason; where cuFile
 * cannot register a file (a host whose disk it cannot serve, e.g. without
 * udev attributes for the volume: CU_FILE_HANDLE_NOT_REGISTERED, 5027),
 * that file's registration does, with cuFile's status in the detail, and
 * the POSIX backend's staged path serves VRAM <-> FILE instead. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fyp_params.h"
#include "fyp_self.h"
#include "gds_internal.h"

#ifndef FY_GDS_NAME
#define FY_GDS_NAME "GDS"
#endif

#define FY_GDS_INFO_MAGIC   "FYGD"
#define FY_GDS_REGION_MAGIC "FYGF"
#define FY_GDS_REGION_LEN   (FYP_SELF_INFO_LEN + 8u)

/* ---- params -------------------------------------------------------------- */

/* NIXL's names. mode=batch (GDS's default): cuFile's batch API, where the
 * library has it, else worker threads; mode=mt (GDS_MT's default):
 * thread_count workers, each calling cuFileRead/Write. */
static const ferry_param_spec fy_gds_params[] = {
    {"thread_count", "4", "mt mode: worker threads, i.e. descriptors in flight (1..256)"},
    {"max_request_size", "16777216", "bytes per cuFile I/O (4096..1073741824)"},
    {"mode", "", "batch (cuFile's batch API; GDS's default) or mt (worker threads; GDS_MT's)"},
    {"batch_pool_size", "16", "batch mode: batch handles, i.e. batches in flight (1..1024)"},
    {"batch_limit", "128", "batch mode: I/Os per batch (1..65536)"},
};
#define FY_GDS_NUM_PARAMS (sizeof(fy_gds_params) / sizeof(fy_gds_params[0]))

static const char *fy_gds_param(const ferry_param *p, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (p[i].key && !strcmp(p[i].key, key))
            return p[i].value ? p[i].value : "";
    return "";
}

static const fyp_range fy_gds_ranges[FY_GDS_NUM_PARAMS] = {
    {1, 256}, {4096, 1u << 30}, {0, 0}, {1, 1024}, {1, 65536}};

/* GDS_MT runs on threads unless told otherwise, as NIXL's. */
static bool fy_gds_wants_batch(const ferry_param *p, size_t n)
{
    const char *mode = fy_gds_param(p, n, "mode");
    return *mode ? !strcmp(mode, "batch") : strcmp(FY_GDS_NAME, "GDS_MT") != 0;
}

/* The numbers parsed, in the schema's order less mode. */
enum { FY_GDS_V_THREADS, FY_GDS_V_MAX_IO, FY_GDS_V_POOL, FY_GDS_V_LIMIT };

/* fyp_params_parse takes numbers only: mode is checked here and left out. */
static ferry_status fy_gds_parse(struct fy_gds *be, const ferry_param *p, size_t n,
                                 uint64_t vals[FY_GDS_NUM_PARAMS])
{
    const char *mode = fy_gds_param(p, n, "mode");
    if (*mode && strcmp(mode, "batch") && strcmp(mode, "mt")) {
        fy_gds_log(be, FERRY_LOG_ERROR, "param mode=\"%s\": expected batch or mt", mode);
        return FERRY_ERR_INVALID_PARAM;
    }
    ferry_param nums[16];
    size_t k = 0;
    for (size_t i = 0; i < n && k < 16; i++)
        if (p[i].key && strcmp(p[i].key, "mode"))
            nums[k++] = p[i];
    ferry_param_spec spec[FY_GDS_NUM_PARAMS];
    fyp_range ranges[FY_GDS_NUM_PARAMS];
    size_t m = 0;
    for (size_t i = 0; i < FY_GDS_NUM_PARAMS; i++)
        if (strcmp(fy_gds_params[i].key, "mode"))
            spec[m] = fy_gds_params[i], ranges[m++] = fy_gds_ranges[i];
    return fyp_params_parse(be->host, spec, ranges, m, nums, k, vals);
}

/* ---- init / fini ----------------------------------------------------------- */

/* VRAM where the CUDA driver loads; DRAM only otherwise. */
static void fy_gds_load_cuda(struct fy_gds *be)
{
    fy_gpu_why why;
    const fy_cuda *cu;
    if (fy_cuda_get(&cu, &why) != FERRY_OK) {
        fy_gds_log(be, FERRY_LOG_INFO, "VRAM: not served (%s)", why.msg);
        return;
    }
    if (!(be->ctx = calloc((size_t)cu->device_count, sizeof(*be->ctx))))
        return;
    be->ngpus = cu->device_count;
    be->cu = cu;
}

/* Batch handles where asked for and cuFile has them, else the workers. */
static ferry_status fy_gds_start(struct fy_gds *be, const ferry_param *params, size_t n,
                                 const uint64_t vals[FY_GDS_NUM_PARAMS])
{
    if (fy_gds_wants_batch(params, n)) {
        ferry_status rc =
            fy_gds_batch_open(be, (unsigned)vals[FY_GDS_V_POOL], (unsigned)vals[FY_GDS_V_LIMIT]);
        if (rc != FERRY_ERR_NOT_SUPPORTED)
            return rc;
    }
    int err = fyp_pool_start(&be->pool, (unsigned)vals[FY_GDS_V_THREADS]);
    if (err) {
        fy_gds_log(be, FERRY_LOG_ERROR, "worker threads: %s", strerror(err));
        return FERRY_ERR_BACKEND;
    }
    return FERRY_OK;
}

static ferry_status fy_gds_init(void *priv, const ferry_plugin_host *host,
                                const ferry_param *params, size_t num_params)
{
    struct fy_gds *be = priv;
    uint64_t vals[FY_GDS_NUM_PARAMS] = {0};
    char why[300];
    be->host = host;
    ferry_status rc = fy_gds_parse(be, params, num_params, vals);
    if (rc != FERRY_OK)
        return rc;
    be->max_io = vals[FY_GDS_V_MAX_IO];
    if (fy_cufile_open(&be->cf, &be->lib, why, sizeof(why)) != FERRY_OK) {
        fy_gds_log(be, FERRY_LOG_ERROR,
                   "%s; GPUDirect Storage is not available here "
                   "(the POSIX backend moves VRAM to and from files without it)",
                   why);
        return FERRY_ERR_NOT_SUPPORTED;
    }
    rc = fy_gds_start(be, params, num_params, vals);
    if (rc != FERRY_OK) {
        fy_cufile_close(&be->cf, be->lib);
        return rc;
    }
    fy_gds_load_cuda(be);
    fy_gds_log(be, FERRY_LOG_INFO, "cuFile open, %s%s",
               be->batches ? "batch I/O" : "worker threads",
               be->cu ? ", VRAM and DRAM" : ", DRAM only");
    return FERRY_OK;
}

static void fy_gds_file_put(struct fy_gds *be, struct fy_gds_file *f);

static void fy_gds_fini(void *priv)
{
    struct fy_gds *be = priv;
    if (be->batches)
        fy_gds_batch_close(be);
    else
        fyp_pool_stop(&be->pool);
    while (be->files) /* the core released every region before */
        fy_gds_file_put(be, be->files);
    for (int i = 0; i < be->ngpus; i++) {
        fy_cu_device dev;
        if (be->ctx[i] && be->cu->DeviceGet(&dev, i) == FY_CUDA_SUCCESS)
            be->cu->DevicePrimaryCtxRelease(dev);
    }
    free(be->ctx);
    fy_cufile_close(&be->cf, be->lib);
}

/* ---- registered files ---------------------------------------------------------- */

static struct fy_gds_file *fy_gds_file_find(struct fy_gds *be, uint64_t id)
{
    for (struct fy_gds_file *f = be->files; f; f = f->next)
        if (f->id == id)
            return f;
    return NULL;
}

static void fy_gds_file_put(struct fy_gds *be, struct fy_gds_file *f)
{
    if (!f || --f->refs)
        return;
    for (struct fy_gds_file **p = &be->files; *p; p = &(*p)->next)
        if (*p == f) {
            *p = f->next;
            break;
        }
    be->cf.HandleDeregister(f->fh);
    free(f);
}

/* cuFile's handle for the caller's fd. A refusal is NOT_SUPPORTED: this
 * file (its file system, its volume) is not served by cuFile here. */
static ferry_status fy_gds_handle(struct fy_gds *be, struct fy_gds_file *f)
{
    char name[64];
    fy_cufile_descr d = {.type = FY_CU_FILE_HANDLE_TYPE_OPAQUE_FD, .handle.fd = f->fd};
    fy_cufile_status st = be->cf.HandleRegister(&f->fh, &d);
    if (st.err == FY_CU_FILE_SUCCESS)
        return FERRY_OK;
    fy_gds_log(be, FERRY_LOG_ERROR,
               "cuFileHandleRegister fd %d: %s (CUresult %d): cuFile cannot serve this file here",
               f->fd, fy_cufile_errname(st.err, name, sizeof(name)), st.cu_err);
    return FERRY_ERR_NOT_SUPPORTED;
}

static ferry_status fy_gds_file_open(struct fy_gds *be, uint64_t dev_id, struct fy_gds_file **out)
{
    if (dev_id > INT32_MAX || fcntl((int)dev_id, F_GETFL) < 0) {
        int e = dev_id > INT32_MAX ? EBADF : errno;
        fy_gds_log(be, FERRY_LOG_ERROR,
                   "FILE registration: dev_id %" PRIu64 " is not an open fd: %s (%s)", dev_id,
                   strerror(e), strerrorname_np(e));
        return FERRY_ERR_INVALID_PARAM;
    }
    struct fy_gds_file *f = calloc(1, sizeof(*f));
    if (!f)
        return FERRY_ERR_NO_MEMORY;
    f->fd = (int)dev_id;
    ferry_status rc = fy_gds_handle(be, f);
    if (rc != FERRY_OK) {
        free(f);
        return rc;
    }
    f->id = ++be->next_file_id;
    f->refs = 1;
    f->next = be->files;
    be->files = f;
    *out = f;
    return FERRY_OK;
}

static void fy_gds_put_u64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t fy_gds_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (unsigned i = 8; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

/* DRAM and VRAM need nothing here (cuFile pins what it uses, and the core
 * had the driver check VRAM); a FILE becomes cuFile's handle, named by id
 * in the public bytes for the loopback remote region. */
static ferry_status fy_gds_reg(void *priv, ferry_mem_type type, const ferry_desc *desc,
                               const void *meta, size_t meta_len, void **region, void **pub,
                               size_t *pub_len)
{
    struct fy_gds *be = priv;
    struct fy_gds_file *f;
    (void)meta, (void)meta_len; /* NIXL passes the path: free bytes */
    if (!desc || !region || !pub || !pub_len)
        return FERRY_ERR_INVALID_PARAM;
    *region = *pub = NULL;
    *pub_len = 0;
    if (type == FERRY_MEM_DRAM || (type == FERRY_MEM_VRAM && be->cu))
        return FERRY_OK;
    if (type != FERRY_MEM_FILE)
        return FERRY_ERR_NOT_SUPPORTED;
    uint8_t *p = malloc(FY_GDS_REGION_LEN);
    ferry_status rc = p ? fy_gds_file_open(be, desc->dev_id, &f) : FERRY_ERR_NO_MEMORY;
    if (rc != FERRY_OK) {
        free(p);
        return rc;
    }
    fyp_self_put(be->host, FY_GDS_REGION_MAGIC, p);
    fy_gds_put_u64(p + FYP_SELF_INFO_LEN, f->id);
    *region = f;
    *pub = p;
    *pub_len = FY_GDS_REGION_LEN;
    return FERRY_OK;
}

static void fy_gds_dereg(void *priv, void *region)
{
    fy_gds_file_put(priv, region);
}

/* ---- the loopback remote ----------------------------------------------------- */

static ferry_status fy_gds_conn_info(void *priv, void **info, size_t *len)
{
    struct fy_gds *be = priv;
    return fyp_self_info(be->host, FY_GDS_INFO_MAGIC, info, len);
}

static ferry_status fy_gds_remote_load(void *priv, const char *name, uint64_t uid, const void *info,
                                       size_t len, void **remote)
{
    struct fy_gds *be = priv;
    return fyp_self_remote_load(be->host, FY_GDS_INFO_MAGIC, be, name, uid, info, len, remote);
}

static ferry_status fy_gds_rregion_load(void *priv, void *remote, ferry_mem_type type,
                                        const ferry_desc *desc, const void *pub, size_t pub_len,
                                        void **rregion)
{
    struct fy_gds *be = priv;
    if (!fyp_self_remote_is(remote, be) || !desc || !rregion)
        return FERRY_ERR_INVALID_PARAM;
    *rregion = NULL;
    if (type != FERRY_MEM_FILE)
        return FERRY_OK;
    if (!pub || pub_len != FY_GDS_REGION_LEN ||
        !fyp_self_info_is(be->host, FY_GDS_REGION_MAGIC, pub, FYP_SELF_INFO_LEN))
        return FERRY_ERR_BAD_METADATA;
    struct fy_gds_file *f =
        fy_gds_file_find(be, fy_gds_get_u64((const uint8_t *)pub + FYP_SELF_INFO_LEN));
    if (!f)
        return FERRY_ERR_NOT_FOUND;
    f->refs++;
    *rregion = f;
    return FERRY_OK;
}

static void fy_gds_rregion_unload(void *priv, void *remote, void *rregion)
{
    (void)remote;
    fy_gds_file_put(priv, rregion);
}

/* Batch mode reaps completions here (and in status polls); the workers
 * of thread mode need nothing. */
static ferry_status fy_gds_progress(void *priv)
{
    struct fy_gds *be = priv;
    return be->batches ? fy_gds_batch_progress(be) : FERRY_OK;
}

/* ---- capabilities ---------------------------------------------------------------- */

static ferry_status fy_gds_supports(void *priv, ferry_mem_type local, ferry_mem_type remote)
{
    struct fy_gds *be = priv;
    bool near = local == FERRY_MEM_DRAM || (local == FERRY_MEM_VRAM && be->cu);
    return near && remote == FERRY_MEM_FILE ? FERRY_OK : FERRY_ERR_NOT_SUPPORTED;
}

static uint32_t fy_gds_mem_types(void *priv)
{
    struct fy_gds *be = priv;
    uint32_t mask = FERRY_MEM_MASK(FERRY_MEM_DRAM) | FERRY_MEM_MASK(FERRY_MEM_FILE);
    return be->cu ? mask | FERRY_MEM_MASK(FERRY_MEM_VRAM) : mask;
}

static const ferry_plugin_ops fy_gds_ops = {
    .size = sizeof(ferry_plugin_ops),
    .init = fy_gds_init,
    .fini = fy_gds_fini,
    .reg = fy_gds_reg,
    .dereg = fy_gds_dereg,
    .conn_info = fy_gds_conn_info,
    .remote_load = fy_gds_remote_load,
    .remote_unload = fyp_self_remote_unload,
    .rregion_load = fy_gds_rregion_load,
    .rregion_unload = fy_gds_rregion_unload,
    .xfer_prep = fy_gds_xfer_prep,
    .xfer_post = fy_gds_xfer_post,
    .xfer_check = fy_gds_xfer_check,
    .xfer_release = fy_gds_xfer_release,
    .supports = fy_gds_supports,
    .xfer_error = fy_gds_xfer_error,
    .progress = fy_gds_progress,
    .mem_types = fy_gds_mem_types,
};

static const ferry_plugin_desc fy_gds_desc = {
    .abi_version = FERRY_PLUGIN_ABI_VERSION,
    .name = FY_GDS_NAME,
    .version = FY_GDS_VERSION,
    .caps = FERRY_CAP_LOCAL | FERRY_CAP_PROGRESS,
    .mem_mask = FERRY_MEM_MASK(FERRY_MEM_DRAM) | FERRY_MEM_MASK(FERRY_MEM_VRAM) |
                FERRY_MEM_MASK(FERRY_MEM_FILE),
    .params = fy_gds_params,
    .num_params = FY_GDS_NUM_PARAMS,
    .priv_size = sizeof(struct fy_gds),
    .ops = &fy_gds_ops,
};

FERRY_PLUGIN_DEFINE(GDS, fy_gds_desc)
