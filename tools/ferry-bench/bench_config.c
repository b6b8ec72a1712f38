/* SPDX-License-Identifier: Apache-2.0 */
/* ferry-bench's options (nixlbench's names, defaults and meanings), their
 * checks, the topology a scheme makes and the steps of the sweep. */
#include "bench.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MIB (1ull << 20)
/* Above this block size a step runs num_iter / large_blk_iter_ftr (nixlbench). */
#define FB_LARGE_BLOCK MIB
#define FB_MAX_DEV     64

static void fb_config_defaults(fb_config *c)
{
    *c = (fb_config){
        .backend = "UCX",
        .initiator_seg_type = "DRAM",
        .target_seg_type = "DRAM",
        .op_type = "WRITE",
        .scheme = "pairwise",
        .mode = "SG",
        .worker_type = "nixl",
        .total_buffer_size = 8ull << 30,
        .start_block_size = 4096,
        .max_block_size = 64 * MIB,
        .start_batch_size = 1,
        .max_batch_size = 1,
        .num_iter = 1000,
        .warmup_iter = 100,
        .large_blk_iter_ftr = 16,
        .num_threads = 1,
        .num_initiator_dev = 1,
        .num_target_dev = 1,
        .num_files = 1,
        .etcd = {.timeout_s = (uint64_t)FB_TIMEOUT_S},
    };
}

#define OPT(n, k, h)    FB_OPT_FIELD(c, n, k, h)
#define HIDDEN(n, k, h) FB_OPT_HIDDEN_FIELD(c, n, k, h)

void fb_config_parse(fb_config *c, int argc, char **argv)
{
    fb_config_defaults(c);
    const fb_opt table[] = {
        OPT(backend, FB_OPT_STR, "backend (plugin) name: UCX (default), LOCAL, ..."),
        OPT(backend_params, FB_OPT_STR, "backend params key=value,key=value"),
        OPT(device_list, FB_OPT_STR,
            "devices for the backend (UCX: UCX_NET_DEVICES; LIBFABRIC: its domain, or rails a,b)"),
        OPT(initiator_seg_type, FB_OPT_STR, "initiator memory: DRAM (VRAM FILE BLOCK OBJ)"),
        OPT(target_seg_type, FB_OPT_STR, "target memory: DRAM (VRAM FILE BLOCK OBJ)"),
        OPT(op_type, FB_OPT_STR, "READ or WRITE (default WRITE)"),
        OPT(scheme, FB_OPT_STR, "pairwise (default), manytoone, onetomany, tp"),
        OPT(mode, FB_OPT_STR, "SG: one device per process (MG not in this build)"),
        OPT(check_consistency, FB_OPT_BOOL, "verify every received byte after each step"),
        OPT(total_buffer_size, FB_OPT_SIZE, "buffer cap per process (default 8G)"),
        OPT(start_block_size, FB_OPT_SIZE, "first block size (default 4K)"),
        OPT(max_block_size, FB_OPT_SIZE, "last block size, doubling (default 64M)"),
        OPT(start_batch_size, FB_OPT_UINT, "first batch size: blocks per request (default 1)"),
        OPT(max_batch_size, FB_OPT_UINT, "last batch size, doubling (default 1)"),
        OPT(num_iter, FB_OPT_UINT, "timed iterations per step (default 1000)"),
        OPT(warmup_iter, FB_OPT_UINT, "untimed iterations first (default 100)"),
        OPT(large_blk_iter_ftr, FB_OPT_UINT, "iterations divided by this above 1 MiB (16)"),
        OPT(num_threads, FB_OPT_UINT, "threads per initiator, iterations split (default 1)"),
        OPT(num_initiator_dev, FB_OPT_UINT, "initiator processes (one device each)"),
        OPT(num_target_dev, FB_OPT_UINT, "target processes (one device each)"),
        OPT(recreate_xfer, FB_OPT_BOOL, "make a new request every iteration"),
        OPT(reregister_mem, FB_OPT_BOOL, "register the initiator's memory every iteration"),
        OPT(enable_pt, FB_OPT_BOOL, "progress thread in the initiator"),
        OPT(mem_alloc, FB_OPT_BOOL,
            "ferry: DRAM buffers from ferry_mem_alloc (UCX: memory UCX maps itself, shared on "
            "one host, as ucx_perftest's)"),
        OPT(progress_threads, FB_OPT_UINT, "accepted; ferry runs one progress thread"),
        OPT(filepath, FB_OPT_STR, "storage: dir of the files (FILE, BLOCK; default .)"),
        OPT(filenames, FB_OPT_STR, "storage: comma list of files to use instead (kept)"),
        OPT(num_files, FB_OPT_UINT, "storage: files per target (default 1)"),
        OPT(storage_enable_direct, FB_OPT_BOOL, "storage: O_DIRECT"),
        OPT(posix_api_type, FB_OPT_STR, "POSIX: AIO, URING or POSIXAIO (default: the backend's)"),
        OPT(posix_kernel_queue_size, FB_OPT_STR, "POSIX: I/Os in the kernel (16..1024)"),
        OPT(posix_ios_pool_size, FB_OPT_STR, "POSIX: I/O pool size (64..65536)"),
        OPT(gds_batch_pool_size, FB_OPT_STR, "GDS: batch pool size (1..1024)"),
        OPT(gds_batch_limit, FB_OPT_STR, "GDS: batch size limit (1..65536)"),
        OPT(gds_mt_num_threads, FB_OPT_STR, "GDS, GDS_MT: worker threads (1..256)"),
        OPT(obj_bucket_name, FB_OPT_STR, "OBJ: bucket (default $AWS_DEFAULT_BUCKET)"),
        OPT(obj_endpoint_override, FB_OPT_STR, "OBJ: S3 endpoint URL"),
        OPT(obj_scheme, FB_OPT_STR, "OBJ: http or https, for an endpoint without one"),
        OPT(obj_region, FB_OPT_STR, "OBJ: signing region"),
        OPT(obj_access_key, FB_OPT_STR, "OBJ: access key"),
        OPT(obj_secret_key, FB_OPT_STR, "OBJ: secret key"),
        OPT(obj_session_token, FB_OPT_STR, "OBJ: session token"),
        OPT(obj_use_virtual_addressing, FB_OPT_BOOL, "OBJ: bucket in the host name"),
        OPT(obj_req_checksum, FB_OPT_STR, "OBJ: supported or required"),
        OPT(obj_ca_bundle, FB_OPT_STR, "OBJ: CA file for https"),
        OPT(obj_crt_min_limit, FB_OPT_STR, "OBJ: multipart threshold (bytes)"),
        OPT(obj_accelerated_enable, FB_OPT_BOOL, "OBJ: accelerated client (not in ferry)"),
        OPT(obj_accelerated_type, FB_OPT_STR, "OBJ: accelerated client type (not in ferry)"),
        FB_RDV_OPTS(&c->etcd),
        OPT(worker_type, FB_OPT_STR, "nixl (the only worker)"),
        OPT(config_file, FB_OPT_STR, "flat TOML file of these options"),
        OPT(csv, FB_OPT_STR, "also write the rows to this CSV file"),
        OPT(json, FB_OPT_STR, "also write the rows to this file, one JSON object a line"),
        OPT(plot, FB_OPT_STR, "draw GB/s against block size into this PNG (matplotlib)"),
        OPT(anchor_csv, FB_OPT_STR, "label,block_size,gbps rows drawn beside the sweep"),
        OPT(no_progress, FB_OPT_BOOL, "no progress line on stderr"),
        HIDDEN(inject_corruption, FB_OPT_BOOL, "flip one source byte (tests)"),
        HIDDEN(fb_role, FB_OPT_STR, "internal: role of a spawned process"),
        {NULL, 0, NULL, NULL, 0},
    };
    fb_opts_parse(table, argc, argv);
}

/* ---- checks that need no backend ---- */

static bool fb_one_of(const char *v, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcasecmp(v, names[i]))
            return true;
    return false;
}

/* etcd mode runs one initiator: several would need their steps started
 * together and their rows merged across hosts. */
static void fb_check_runtime(fb_config *c, bool quiet)
{
    if (fb_rdv_cli_check(&c->etcd, quiet) && c->num_initiator_dev != 1)
        fb_exit(FB_EXIT_USAGE,
                "etcd mode runs one initiator process (--num_initiator_dev 1, any "
                "--num_target_dev); several initiators: run without --etcd_endpoints");
}

static void fb_check_modes(const fb_config *c)
{
    if (strcasecmp(c->mode, "SG"))
        fb_exit(FB_EXIT_USAGE,
                "--mode %s: not supported by this build (SG only: one device per process)",
                c->mode);
    if (strcasecmp(c->worker_type, "nixl"))
        fb_exit(FB_EXIT_USAGE, "--worker_type %s: not supported by this build (nixl only)",
                c->worker_type);
    static const char *const schemes[] = {"pairwise", "manytoone", "onetomany", "tp"};
    if (!fb_one_of(c->scheme, schemes, 4))
        fb_exit(FB_EXIT_USAGE, "--scheme %s: want pairwise, manytoone, onetomany or tp", c->scheme);
}

static void fb_check_sizes(const fb_config *c)
{
    if (!c->start_block_size || c->max_block_size < c->start_block_size)
        fb_exit(FB_EXIT_USAGE, "want 0 < --start_block_size <= --max_block_size");
    if (!c->start_batch_size || c->max_batch_size < c->start_batch_size)
        fb_exit(FB_EXIT_USAGE, "want 0 < --start_batch_size <= --max_batch_size");
    if (c->max_block_size > (1ull << 40) || c->max_batch_size > (1u << 24))
        fb_exit(FB_EXIT_USAGE, "--max_block_size at most 1T, --max_batch_size at most 16M");
    if (!c->num_iter || !c->num_threads || c->num_threads > 256 || !c->large_blk_iter_ftr)
        fb_exit(FB_EXIT_USAGE,
                "want --num_iter >= 1, --large_blk_iter_ftr >= 1, 1 <= --num_threads <= 256");
    if (!c->num_initiator_dev || !c->num_target_dev || c->num_initiator_dev > FB_MAX_DEV ||
        c->num_target_dev > FB_MAX_DEV)
        fb_exit(FB_EXIT_USAGE, "want 1..%d --num_initiator_dev and --num_target_dev", FB_MAX_DEV);
}

static void fb_check_op(fb_config *c)
{
    if (!strcasecmp(c->op_type, "READ"))
        c->op = FERRY_OP_READ;
    else if (!strcasecmp(c->op_type, "WRITE"))
        c->op = FERRY_OP_WRITE;
    else
        fb_exit(FB_EXIT_USAGE, "--op_type %s: want READ or WRITE", c->op_type);
    c->op_type = c->op == FERRY_OP_READ ? "READ" : "WRITE"; /* canonical spelling in output */
}

/* nixlbench's rule: the buffers (a target's threads) spread evenly over
 * its files. */
static void fb_check_files(const fb_config *c)
{
    if (!c->num_files || c->num_threads % c->num_files)
        fb_exit(FB_EXIT_USAGE,
                "--num_files %llu: the threads' buffers (--num_threads %llu) must spread evenly "
                "over the files",
                (unsigned long long)c->num_files, (unsigned long long)c->num_threads);
    if (c->filenames && c->num_target_dev != 1)
        fb_exit(FB_EXIT_USAGE, "--filenames: one target (--num_target_dev 1)");
}

static void fb_check_values(const fb_config *c)
{
    static const char *const apis[] = {"AIO", "URING", "POSIXAIO"};
    static const char *const schemes[] = {"http", "https"};
    static const char *const sums[] = {"supported", "required"};
    if (c->posix_api_type && !fb_one_of(c->posix_api_type, apis, 3))
        fb_exit(FB_EXIT_USAGE, "--posix_api_type %s: want AIO, URING or POSIXAIO",
                c->posix_api_type);
    if (c->obj_scheme && !fb_one_of(c->obj_scheme, schemes, 2))
        fb_exit(FB_EXIT_USAGE, "--obj_scheme %s: want http or https", c->obj_scheme);
    if (c->obj_req_checksum && !fb_one_of(c->obj_req_checksum, sums, 2))
        fb_exit(FB_EXIT_USAGE, "--obj_req_checksum %s: want supported or required",
                c->obj_req_checksum);
    if (c->obj_accelerated_enable || c->obj_accelerated_type)
        fb_exit(FB_EXIT_USAGE, "--obj_accelerated_enable/--obj_accelerated_type: ferry's OBJ "
                               "backend has no accelerated client");
}

/* Storage segments are the target side, in the initiator's process (the
 * storage backends reach only their own agent). */
static void fb_check_storage(const fb_config *c, bool quiet)
{
    bool files = c->ttype == FERRY_MEM_FILE || c->ttype == FERRY_MEM_BLOCK;
    fb_check_values(c);
    if (fb_seg_storage(c->itype))
        fb_exit(FB_EXIT_USAGE,
                "--initiator_seg_type %s: storage is the target side (the initiator's memory is "
                "DRAM or VRAM); use --target_seg_type %s",
                c->initiator_seg_type, c->initiator_seg_type);
    if (files)
        fb_check_files(c);
    else if ((c->filepath || c->filenames || c->num_files != 1 || c->storage_enable_direct) &&
             !quiet)
        fb_warn("--filepath, --filenames, --num_files and --storage_enable_direct apply to "
                "FILE and BLOCK targets; ignored");
}

static void fb_check_threads(const fb_config *c)
{
    if (c->progress_threads > 1)
        fb_warn("--progress_threads %llu: ferry runs one progress thread per agent",
                (unsigned long long)c->progress_threads);
}

/* nixlbench's rounding: counts divisible by threads x large-block factor,
 * so every thread runs as many iterations, at every block size. */
static void fb_round_iters(fb_config *c, bool quiet)
{
    uint64_t part = c->num_threads * c->large_blk_iter_ftr;
    if (c->num_iter % part) {
        c->num_iter += part - c->num_iter % part;
        if (!quiet)
            fb_warn("adjusting --num_iter to %llu (a multiple of num_threads x "
                    "large_blk_iter_ftr)",
                    (unsigned long long)c->num_iter);
    }
    if (c->warmup_iter % part) {
        c->warmup_iter += part - c->warmup_iter % part;
        if (!quiet)
            fb_warn("adjusting --warmup_iter to %llu", (unsigned long long)c->warmup_iter);
    }
}

/* ---- topology ---- */

/* Every scheme is a tp layout: the larger side is split evenly over the
 * smaller one; pairwise, manytoone and onetomany only fix the counts. */
static const char *fb_topo_counts(const char *scheme, unsigned ni, unsigned nt)
{
    if (!strcasecmp(scheme, "pairwise") && ni != nt)
        return "pairwise needs --num_initiator_dev == --num_target_dev";
    if (!strcasecmp(scheme, "manytoone") && nt != 1)
        return "manytoone needs --num_target_dev 1";
    if (!strcasecmp(scheme, "onetomany") && ni != 1)
        return "onetomany needs --num_initiator_dev 1";
    unsigned lo = ni < nt ? ni : nt, hi = ni < nt ? nt : ni;
    if (hi % lo)
        return "tp needs one device count to divide the other";
    return NULL;
}

static void fb_topo_build(fb_topo *t, unsigned ni, unsigned nt)
{
    bool fan_out = ni <= nt; /* each initiator talks to r targets */
    unsigned r = fan_out ? nt / ni : ni / nt;
    *t = (fb_topo){.ni = ni, .nt = nt, .nlinks = fan_out ? nt : ni};
    t->links = fb_alloc(t->nlinks * sizeof(*t->links));
    t->istrides = fb_alloc(ni * sizeof(unsigned));
    t->tstrides = fb_alloc(nt * sizeof(unsigned));
    for (unsigned k = 0; k < t->nlinks; k++)
        t->links[k] = fan_out ? (fb_link){k / r, k, k % r, 0} : (fb_link){k, k / r, 0, k % r};
    for (unsigned i = 0; i < ni; i++)
        t->istrides[i] = fan_out ? r : 1;
    for (unsigned k = 0; k < nt; k++)
        t->tstrides[k] = fan_out ? 1 : r;
}

/* nixlbench's rule, per process: threads x slots x block x batch fit. */
static void fb_check_buffer(const fb_config *c)
{
    unsigned most = 1;
    for (unsigned i = 0; i < c->topo.ni; i++)
        most = c->topo.istrides[i] > most ? c->topo.istrides[i] : most;
    for (unsigned k = 0; k < c->topo.nt; k++)
        most = c->topo.tstrides[k] > most ? c->topo.tstrides[k] : most;
    double need =
        (double)c->max_block_size * (double)c->max_batch_size * (double)c->num_threads * most;
    if (need > (double)c->total_buffer_size)
        fb_exit(FB_EXIT_USAGE,
                "max_block_size x max_batch_size x num_threads x slots per process (%.0f) is "
                "more than --total_buffer_size (%llu)",
                need, (unsigned long long)c->total_buffer_size);
}

/* ---- steps ---- */

static void fb_steps_build(fb_config *c)
{
    size_t n = 0, cap = 0;
    for (uint64_t bl = c->start_block_size; bl <= c->max_block_size; bl *= 2)
        for (uint64_t ba = c->start_batch_size; ba <= c->max_batch_size; ba *= 2)
            cap++;
    c->steps = fb_alloc(cap * sizeof(*c->steps));
    for (uint64_t bl = c->start_block_size; bl <= c->max_block_size; bl *= 2)
        for (uint64_t ba = c->start_batch_size; ba <= c->max_batch_size; ba *= 2) {
            uint64_t div = bl > FB_LARGE_BLOCK ? c->large_blk_iter_ftr : 1;
            c->steps[n] = (fb_step){(unsigned)n, bl, ba, c->num_iter / div, c->warmup_iter / div};
            n++;
        }
    c->nsteps = n;
}

static void fb_fold_params(fb_config *c, bool quiet);

void fb_config_check(fb_config *c)
{
    bool quiet = c->fb_role != NULL; /* the parent process already said it */
    c->itype = fb_seg_parse("initiator_seg_type", c->initiator_seg_type);
    c->ttype = fb_seg_parse("target_seg_type", c->target_seg_type);
    c->initiator_seg_type = ferry_mem_type_name(c->itype); /* canonical spelling in output */
    c->target_seg_type = ferry_mem_type_name(c->ttype);
    fb_check_modes(c);
    fb_check_runtime(c, quiet);
    fb_check_sizes(c);
    fb_check_op(c);
    fb_check_storage(c, quiet);
    if (!quiet)
        fb_check_threads(c);
    const char *why =
        fb_topo_counts(c->scheme, (unsigned)c->num_initiator_dev, (unsigned)c->num_target_dev);
    if (why)
        fb_exit(FB_EXIT_USAGE, "--scheme %s: %s", c->scheme, why);
    fb_topo_build(&c->topo, (unsigned)c->num_initiator_dev, (unsigned)c->num_target_dev);
    fb_check_buffer(c);
    fb_round_iters(c, quiet);
    fb_steps_build(c);
    fb_fold_params(c, quiet);
    if (c->reregister_mem)
        c->recreate_xfer = true; /* a request keeps the old registration alive */
}

/* ---- the backend, in a throwaway agent ---- */

static void fb_param_add(fb_config *c, const char *key, const char *value)
{
    size_t len = strlen(c->params);
    if (value)
        snprintf(c->params + len, sizeof(c->params) - len, "%s%s=%s", len ? "," : "", key, value);
}

/* nixlbench's POSIX options, as the backend's params. */
static void fb_fold_posix(fb_config *c)
{
    const char *api = c->posix_api_type;
    if (api && !strcasecmp(api, "POSIXAIO"))
        fb_param_add(c, "use_posix_aio", "true"); /* refused by the backend, with a line */
    else if (api)
        fb_param_add(c, "engine", !strcasecmp(api, "URING") ? "uring" : "aio");
    fb_param_add(c, "kernel_queue_size", c->posix_kernel_queue_size);
    fb_param_add(c, "ios_pool_size", c->posix_ios_pool_size);
}

/* nixlbench's GDS options, as the GDS backends' params. */
static void fb_fold_gds(fb_config *c)
{
    fb_param_add(c, "batch_pool_size", c->gds_batch_pool_size);
    fb_param_add(c, "batch_limit", c->gds_batch_limit);
    fb_param_add(c, "thread_count", c->gds_mt_num_threads);
}

/* nixlbench's OBJ options, as the backend's params; the ones not given
 * leave the backend's defaults (its AWS_* variables). */
static void fb_fold_obj(fb_config *c)
{
    fb_param_add(c, "bucket", c->obj_bucket_name);
    fb_param_add(c, "endpoint_override", c->obj_endpoint_override);
    fb_param_add(c, "scheme", c->obj_scheme);
    fb_param_add(c, "region", c->obj_region);
    fb_param_add(c, "access_key", c->obj_access_key);
    fb_param_add(c, "secret_key", c->obj_secret_key);
    fb_param_add(c, "session_token", c->obj_session_token);
    fb_param_add(c, "use_virtual_addressing", c->obj_use_virtual_addressing ? "true" : NULL);
    fb_param_add(c, "req_checksum", c->obj_req_checksum);
    fb_param_add(c, "ca_bundle", c->obj_ca_bundle);
    fb_param_add(c, "crtMinLimit", c->obj_crt_min_limit);
}

static bool fb_any_set(const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i])
            return true;
    return false;
}

/* Options of another backend than the one running are ignored, as in
 * nixlbench, with a line saying so. */
static void fb_fold_storage(fb_config *c, bool quiet)
{
    const char *posix[] = {c->posix_api_type, c->posix_kernel_queue_size, c->posix_ios_pool_size};
    const char *obj[] = {c->obj_bucket_name,
                         c->obj_endpoint_override,
                         c->obj_scheme,
                         c->obj_region,
                         c->obj_access_key,
                         c->obj_secret_key,
                         c->obj_session_token,
                         c->obj_req_checksum,
                         c->obj_ca_bundle,
                         c->obj_crt_min_limit,
                         c->obj_use_virtual_addressing ? "" : NULL};
    if (!strcasecmp(c->backend, "POSIX"))
        fb_fold_posix(c);
    else if (fb_any_set(posix, 3) && !quiet)
        fb_warn("--posix_* options apply to the POSIX backend only; ignored");
    const char *gds[] = {c->gds_batch_pool_size, c->gds_batch_limit, c->gds_mt_num_threads};
    if (!strcasecmp(c->backend, "GDS") || !strcasecmp(c->backend, "GDS_MT"))
        fb_fold_gds(c);
    else if (fb_any_set(gds, 3) && !quiet)
        fb_warn("--gds_* options apply to the GDS and GDS_MT backends only; ignored");
    if (!strcasecmp(c->backend, "OBJ"))
        fb_fold_obj(c);
    else if (fb_any_set(obj, 11) && !quiet)
        fb_warn("--obj_* options apply to the OBJ backend only; ignored");
}

/* nixlbench's --device_list is UCX's device list; for LIBFABRIC, the
 * provider's domain, or its rails when several are listed. */
static void fb_fold_params(fb_config *c, bool quiet)
{
    snprintf(c->params, sizeof(c->params), "%s", c->backend_params ? c->backend_params : "");
    fb_fold_storage(c, quiet);
    if (!c->device_list)
        return;
    if (!strcasecmp(c->backend, "LIBFABRIC")) {
        fb_param_add(c, strchr(c->device_list, ',') ? "rails" : "domain", c->device_list);
        return;
    }
    if (strcasecmp(c->backend, "UCX")) {
        if (!quiet)
            fb_warn("--device_list applies to UCX and LIBFABRIC only; ignored");
        return;
    }
    fb_param_add(c, "devices", c->device_list);
}

void fb_config_probe(fb_config *c)
{
    uint32_t caps = fb_probe(c->backend, c->params, c->initiator_seg_type, c->target_seg_type);
    c->loopback = !(caps & FERRY_CAP_REMOTE);
    if (c->loopback && c->topo.ni > 1)
        fb_exit(FB_EXIT_USAGE,
                "backend %s reaches only its own agent: one initiator (--num_initiator_dev 1), "
                "its targets live in the same process",
                c->backend);
    if (!c->loopback && !(caps & FERRY_CAP_NOTIF))
        fb_exit(FB_EXIT_USAGE,
                "backend %s has no notifications, which ferry-bench needs to "
                "end each step with its target processes",
                c->backend);
}

/* ---- the header ---- */

static void fb_line(const char *what, const char *opt, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fb_line(const char *what, const char *opt, const char *fmt, ...)
{
    char left[96], value[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    snprintf(left, sizeof(left), "%s%s%s%s", what, opt ? " (--" : "", opt ? opt : "",
             opt ? ")" : "");
    printf("%-52s: %s\n", left, value);
}

#define ULL(x) ((unsigned long long)(x))

/* " (GPU 0)", " (GPUs 0 1)" for a VRAM side; "" for DRAM. */
static const char *fb_gpu_list(const fb_config *c, bool initiator, char *buf, size_t cap)
{
    unsigned n = initiator ? c->topo.ni : c->topo.nt;
    buf[0] = '\0';
    if (fb_side_gpu(c, initiator, 0) < 0)
        return buf;
    snprintf(buf, cap, " (GPU%s", n > 1 ? "s" : "");
    for (unsigned i = 0; i < n; i++)
        snprintf(buf + strlen(buf), cap - strlen(buf), " %d", fb_side_gpu(c, initiator, i));
    snprintf(buf + strlen(buf), cap - strlen(buf), "%s)", c->loopback ? ", one process" : "");
    return buf;
}

static void fb_print_storage(const fb_config *c)
{
    if (c->ttype == FERRY_MEM_OBJ)
        fb_line("Objects", NULL, "one per block and slot, written and read through %s", c->backend);
    if (c->ttype != FERRY_MEM_FILE && c->ttype != FERRY_MEM_BLOCK)
        return;
    if (c->filenames)
        fb_line("Files", "filenames", "%s", c->filenames);
    else
        fb_line("File path", "filepath", "%s (files removed at the end)",
                c->filepath ? c->filepath : ".");
    fb_line("Num files", "num_files", "%llu", ULL(c->num_files));
    fb_line("Direct I/O", "storage_enable_direct", "%d", c->storage_enable_direct);
}

void fb_config_print(const fb_config *c)
{
    printf("ferry-bench, ferry %s\n", ferry_version_string());
    printf("%s\n", "------------------------------------------------------------------------");
    if (c->etcd.endpoints && c->loopback)
        fb_line("Runtime", "etcd_endpoints",
                "etcd %s, group %s: one process (the backend "
                "reaches only its own agent)",
                c->etcd.endpoints, c->etcd.group);
    else if (c->etcd.endpoints)
        fb_line("Runtime", "etcd_endpoints",
                "etcd %s, group %s: %u initiator + %u target "
                "processes started apart",
                c->etcd.endpoints, c->etcd.group, c->topo.ni, c->topo.nt);
    else if (c->loopback)
        fb_line("Runtime", NULL, "one process (the backend reaches only its own agent)");
    else
        fb_line("Runtime", NULL, "%u initiator + %u target processes on this host", c->topo.ni,
                c->topo.nt);
    fb_line("Backend", "backend", "%s", c->backend);
    fb_line("Backend params", "backend_params", "%s", c->params[0] ? c->params : "(defaults)");
    char gpus[256];
    fb_line("Initiator seg type", "initiator_seg_type", "%s%s", c->initiator_seg_type,
            fb_gpu_list(c, true, gpus, sizeof(gpus)));
    fb_line("Target seg type", "target_seg_type", "%s%s", c->target_seg_type,
            fb_gpu_list(c, false, gpus, sizeof(gpus)));
    fb_line("Scheme", "scheme", "%s", c->scheme);
    fb_line("Mode", "mode", "%s", c->mode);
    fb_line("Op type", "op_type", "%s", c->op_type);
    fb_line("Check consistency", "check_consistency", "%d", c->check_consistency);
    fb_line("Total buffer size", "total_buffer_size", "%llu", ULL(c->total_buffer_size));
    fb_line("Num initiator dev", "num_initiator_dev", "%llu", ULL(c->num_initiator_dev));
    fb_line("Num target dev", "num_target_dev", "%llu", ULL(c->num_target_dev));
    fb_line("Start block size", "start_block_size", "%llu", ULL(c->start_block_size));
    fb_line("Max block size", "max_block_size", "%llu", ULL(c->max_block_size));
    fb_line("Start batch size", "start_batch_size", "%llu", ULL(c->start_batch_size));
    fb_line("Max batch size", "max_batch_size", "%llu", ULL(c->max_batch_size));
    fb_line("Num iter", "num_iter", "%llu", ULL(c->num_iter));
    fb_line("Warmup iter", "warmup_iter", "%llu", ULL(c->warmup_iter));
    fb_line("Large block iter factor", "large_blk_iter_ftr", "%llu", ULL(c->large_blk_iter_ftr));
    fb_line("Num threads", "num_threads", "%llu", ULL(c->num_threads));
    fb_line("Recreate xfer", "recreate_xfer", "%d", c->recreate_xfer);
    fb_line("Reregister mem", "reregister_mem", "%d", c->reregister_mem);
    fb_line("Progress thread", "enable_pt", "%d", c->enable_pt);
    fb_line("Memory from backend", "mem_alloc", "%d", c->mem_alloc);
    fb_print_storage(c);
    printf("%s\n", "------------------------------------------------------------------------");
}

void fb_config_free(fb_config *c)
{
    free(c->topo.links);
    free(c->topo.istrides);
    free(c->topo.tstrides);
    free(c->steps);
}

/* The byte --inject_corruption flips in a source slot: inside what the
 * first step moves, so the very first check must catch it. */
uint64_t fb_inject_offset(const fb_config *c)
{
    return c->start_block_size * c->start_batch_size / 2;
}
