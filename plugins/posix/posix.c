/* SPDX-License-Identifier: Apache-2.0 */
/* POSIX: the storage backend, NIXL's POSIX. Moves data between host memory
 * (DRAM) and files (FILE) or volumes (BLOCK) of this host, through io_uring
 * (liburing, the default) or Linux AIO (libaio). Loopback only: storage
 * users name their own agent as the remote, as they do with NIXL; no
 * notifications.
 *
 * Where a CUDA driver loads, GPU memory (VRAM) may be the local side too:
 * posix_stage.c stages it through pinned host buffers.
 *
 * This file: the descriptor, params and engine choice, registration, the
 * loopback remote and the agent's wait fd. Requests are in posix_xfer.c,
 * registered files in posix_file.c, the engines in posix_uring.c and
 * posix_aio.c. README.md states the contract. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fyp_self.h"
#include "posix_internal.h"

/* Connection info and the public bytes of a region: magic, format version,
 * agent uid, pid (a fork()ed child shares the uid, not the fds), and for a
 * region the id of its file. Little endian. */
#define FY_PX_INFO_MAGIC   "FYPX"
#define FY_PX_REGION_MAGIC "FYPF"
#define FY_PX_REGION_LEN   28u

#define FY_PX_DEPTH_MAX 4096u
/* Staged VRAM: buffer sizes in 4 KiB units (O_DIRECT needs whole blocks). */
#define FY_PX_BOUNCE_UNIT 4096u
#define FY_PX_BOUNCE_MAX  (256u << 20)

/* ---- params ------------------------------------------------------------ */

static const ferry_param_spec fy_px_params[] = {
    {"engine", "auto",
     "I/O engine: uring (io_uring), aio (Linux AIO) or auto (uring if the kernel allows it, "
     "else aio)"},
    {"queue_depth", "256", "I/Os in flight at most (1..4096)"},
    {"use_uring", "false", "NIXL's name: true selects io_uring"},
    {"use_aio", "false", "NIXL's name: true selects Linux AIO"},
    {"use_posix_aio", "false", "NIXL's name: POSIX AIO is not provided (true is refused)"},
    {"kernel_queue_size", "", "NIXL's name for queue_depth (16..1024); wins when set"},
    {"ios_pool_size", "",
     "NIXL's I/O pool size (64..65536); accepted, no effect: requests wait in a queue of any "
     "length"},
    {"bounce_size", "2097152",
     "VRAM staging: bytes per pinned bounce buffer (4096..268435456, a multiple of 4096)"},
    {"bounce_buffers", "16",
     "VRAM staging: bounce buffers per GPU, i.e. pieces in flight (1..1024)"},
};
#define FY_PX_NUM_PARAMS (sizeof(fy_px_params) / sizeof(fy_px_params[0]))

/* Parsed params. */
struct fy_px_conf {
    const char *engine;
    unsigned depth;
    unsigned bounce_size, bounces;
    int nixl_uring, nixl_aio, nixl_posix_aio; /* booleans */
};

static const char *fy_px_param(const ferry_param *params, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (params[i].key && !strcmp(params[i].key, key))
            return params[i].value ? params[i].value : "";
    return "";
}

/* 1, 0, or -1 when the value is not a boolean. Empty: false. */
static int fy_px_bool(const char *v)
{
    static const char *yes[] = {"true", "1", "yes", "on"}, *no[] = {"false", "0", "no", "off", ""};
    for (size_t i = 0; i < 4; i++)
        if (!strcasecmp(v, yes[i]))
            return 1;
    for (size_t i = 0; i < 5; i++)
        if (!strcasecmp(v, no[i]))
            return 0;
    return -1;
}

/* Strict decimal in [lo, hi]. */
static bool fy_px_uint(const char *v, unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    if (*v < '0' || *v > '9')
        return false;
    errno = 0;
    unsigned long x = strtoul(v, &end, 10);
    if (errno || *end || x < lo || x > hi)
        return false;
    *out = (unsigned)x;
    return true;
}

static ferry_status fy_px_bad(struct fy_px *be, const char *key, const char *v, const char *want)
{
    fy_px_log(be, FERRY_LOG_ERROR, "param %s=\"%s\": expected %s", key, v, want);
    return FERRY_ERR_INVALID_PARAM;
}

static ferry_status fy_px_parse_bools(struct fy_px *be, const ferry_param *p, size_t n,
                                      struct fy_px_conf *c)
{
    static const char *keys[] = {"use_uring", "use_aio", "use_posix_aio"};
    int *out[] = {&c->nixl_uring, &c->nixl_aio, &c->nixl_posix_aio};
    for (size_t i = 0; i < 3; i++) {
        const char *v = fy_px_param(p, n, keys[i]);
        if ((*out[i] = fy_px_bool(v)) < 0)
            return fy_px_bad(be, keys[i], v, "true or false");
    }
    return FERRY_OK;
}

/* queue_depth, unless NIXL's kernel_queue_size is given; ios_pool_size is
 * only checked. */
static ferry_status fy_px_parse_sizes(struct fy_px *be, const ferry_param *p, size_t n,
                                      struct fy_px_conf *c)
{
    const char *qd = fy_px_param(p, n, "queue_depth"), *kq = fy_px_param(p, n, "kernel_queue_size");
    const char *pool = fy_px_param(p, n, "ios_pool_size");
    unsigned unused;
    if (*kq && !fy_px_uint(kq, 16, 1024, &c->depth))
        return fy_px_bad(be, "kernel_queue_size", kq, "an integer in 16..1024");
    if (!*kq && !fy_px_uint(qd, 1, FY_PX_DEPTH_MAX, &c->depth))
        return fy_px_bad(be, "queue_depth", qd, "an integer in 1..4096");
    if (*pool && !fy_px_uint(pool, 64, 65536, &unused))
        return fy_px_bad(be, "ios_pool_size", pool, "an integer in 64..65536");
    const char *bs = fy_px_param(p, n, "bounce_size"), *nb = fy_px_param(p, n, "bounce_buffers");
    if (!fy_px_uint(bs, FY_PX_BOUNCE_UNIT, FY_PX_BOUNCE_MAX, &c->bounce_size) ||
        c->bounce_size % FY_PX_BOUNCE_UNIT)
        return fy_px_bad(be, "bounce_size", bs, "a multiple of 4096 in 4096..268435456");
    if (!fy_px_uint(nb, 1, 1024, &c->bounces))
        return fy_px_bad(be, "bounce_buffers", nb, "an integer in 1..1024");
    return FERRY_OK;
}

/* The engine asked for: "uring", "aio" or "auto", from engine= and NIXL's
 * use_* flags, which must agree. */
static ferry_status fy_px_engine_name(struct fy_px *be, const ferry_param *p, size_t n,
                                      struct fy_px_conf *c)
{
    const char *e = fy_px_param(p, n, "engine");
    if (!strcmp(e, "io_uring"))
        e = "uring";
    else if (!strcmp(e, "libaio"))
        e = "aio";
    if (strcmp(e, "auto") && strcmp(e, "uring") && strcmp(e, "aio"))
        return fy_px_bad(be, "engine", e, "auto, uring or aio");
    if (c->nixl_posix_aio) {
        fy_px_log(be, FERRY_LOG_ERROR,
                  "use_posix_aio: POSIX AIO (glibc aio_*) is not an engine "
                  "of this backend; use use_uring or use_aio");
        return FERRY_ERR_NOT_SUPPORTED;
    }
    if (c->nixl_uring + c->nixl_aio > 1)
        return fy_px_bad(be, "use_uring/use_aio", "true/true", "at most one of them true");
    const char *nixl = c->nixl_uring ? "uring" : c->nixl_aio ? "aio" : NULL;
    if (nixl && strcmp(e, "auto") && strcmp(e, nixl))
        return fy_px_bad(be, "engine", e, nixl);
    c->engine = nixl ? nixl : e;
    return FERRY_OK;
}

static ferry_status fy_px_parse(struct fy_px *be, const ferry_param *p, size_t n,
                                struct fy_px_conf *c)
{
    ferry_status rc = fy_px_parse_bools(be, p, n, c);
    if (rc == FERRY_OK)
        rc = fy_px_parse_sizes(be, p, n, c);
    if (rc == FERRY_OK)
        rc = fy_px_engine_name(be, p, n, c);
    return rc;
}

/* ---- engines ------------------------------------------------------------ */

static const struct fy_px_engine *fy_px_engine_built(const char *name)
{
#ifdef FY_PX_HAVE_URING
    if (!strcmp(name, "uring"))
        return &fy_px_uring_engine;
#endif
#ifdef FY_PX_HAVE_AIO
    if (!strcmp(name, "aio"))
        return &fy_px_aio_engine;
#endif
    (void)name;
    return NULL;
}

static ferry_status fy_px_engine_try(struct fy_px *be, const char *name, bool asked)
{
    const struct fy_px_engine *eng = fy_px_engine_built(name);
    if (!eng) {
        fy_px_log(be, asked ? FERRY_LOG_ERROR : FERRY_LOG_INFO, "engine %s: not built in (%s)",
                  name, !strcmp(name, "uring") ? "liburing-dev" : "libaio-dev");
        return FERRY_ERR_NOT_SUPPORTED;
    }
    int rc = eng->open(be);
    if (rc < 0) {
        fy_px_log(be, asked ? FERRY_LOG_ERROR : FERRY_LOG_INFO, "engine %s: setup failed: %s (%s)",
                  name, strerror(-rc), strerrorname_np(-rc));
        return FERRY_ERR_BACKEND;
    }
    be->eng = eng;
    return FERRY_OK;
}

/* auto: io_uring, else (not built, or refused: seccomp in containers,
 * io_uring_disabled) Linux AIO. */
static ferry_status fy_px_engine_open(struct fy_px *be, const char *name)
{
    if (strcmp(name, "auto"))
        return fy_px_engine_try(be, name, true);
    if (fy_px_engine_try(be, "uring", false) == FERRY_OK)
        return FERRY_OK;
    ferry_status rc = fy_px_engine_try(be, "aio", false);
    if (rc != FERRY_OK)
        fy_px_log(be, FERRY_LOG_ERROR, "no I/O engine: neither io_uring nor Linux AIO works here");
    return rc;
}

/* ---- init / fini -------------------------------------------------------- */

static ferry_status fy_px_init(void *priv, const ferry_plugin_host *host, const ferry_param *params,
                               size_t num_params)
{
    struct fy_px *be = priv;
    struct fy_px_conf conf = {0};
    be->host = host;
    be->event_fd = -1;
    ferry_status rc = fy_px_parse(be, params, num_params, &conf);
    if (rc != FERRY_OK)
        return rc;
    be->depth = conf.depth;
    be->stg.bounce_size = conf.bounce_size;
    be->stg.bounces = conf.bounces;
    be->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (be->event_fd < 0)
        return FERRY_ERR_BACKEND;
    rc = fy_px_slots_init(be);
    if (rc == FERRY_OK)
        rc = fy_px_engine_open(be, conf.engine);
    if (rc != FERRY_OK) {
        free(be->ios);
        close(be->event_fd);
        return rc;
    }
    fy_px_stage_load(be);
    fy_px_log(be, FERRY_LOG_INFO, "engine %s, queue depth %u%s", be->eng->name, be->depth,
              be->stg.cu ? ", VRAM staged" : "");
    return FERRY_OK;
}

static void fy_px_fini(void *priv)
{
    struct fy_px *be = priv;
    be->eng->close(be);
    fy_px_stage_fini(be);
    while (be->files) /* the core released every region before */
        fy_px_file_put(be, be->files);
    free(be->ios);
    close(be->event_fd);
}

/* ---- little-endian bytes ------------------------------------------------ */

static void fy_px_put(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t fy_px_get(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = n; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

/* magic, version, uid, pid: the first 20 bytes of both blobs. */
static bool fy_px_head_ours(const struct fy_px *be, const void *blob, size_t len, size_t want,
                            const char *magic)
{
    uint8_t mine[FYP_SELF_INFO_LEN];
    fyp_self_put(be->host, magic, mine);
    return blob && len == want && !memcmp(blob, mine, sizeof(mine));
}

/* ---- registration ------------------------------------------------------- */

static ferry_status fy_px_pub(struct fy_px *be, const struct fy_px_file *f, void **pub,
                              size_t *pub_len)
{
    uint8_t *p = malloc(FY_PX_REGION_LEN);
    if (!p)
        return FERRY_ERR_NO_MEMORY;
    fyp_self_put(be->host, FY_PX_REGION_MAGIC, p);
    fy_px_put(p + FYP_SELF_INFO_LEN, f->id, 8);
    *pub = p;
    *pub_len = FY_PX_REGION_LEN;
    return FERRY_OK;
}

/* DRAM needs nothing (the kernel pins pages per I/O), nor does VRAM (the
 * core had the driver check it; pieces go through our own pinned buffers);
 * FILE and BLOCK become a struct fy_px_file, named in the public bytes so
 * that the loopback remote region finds it. */
static ferry_status fy_px_reg(void *priv, ferry_mem_type type, const ferry_desc *desc,
                              const void *meta, size_t meta_len, void **region, void **pub,
                              size_t *pub_len)
{
    struct fy_px *be = priv;
    struct fy_px_file *f;
    if (!desc || !region || !pub || !pub_len)
        return FERRY_ERR_INVALID_PARAM;
    *region = NULL;
    *pub = NULL;
    *pub_len = 0;
    if (type == FERRY_MEM_DRAM || (type == FERRY_MEM_VRAM && be->stg.cu))
        return FERRY_OK;
    if (type != FERRY_MEM_FILE && type != FERRY_MEM_BLOCK)
        return FERRY_ERR_NOT_SUPPORTED;
    ferry_status rc = fy_px_file_open(be, type, desc, meta, meta_len, &f);
    if (rc == FERRY_OK && (rc = fy_px_pub(be, f, pub, pub_len)) != FERRY_OK)
        fy_px_file_put(be, f);
    if (rc == FERRY_OK)
        *region = f;
    return rc;
}

static void fy_px_dereg(void *priv, void *region)
{
    fy_px_file_put(priv, region);
}

/* ---- the loopback remote ------------------------------------------------ */

static ferry_status fy_px_conn_info(void *priv, void **info, size_t *len)
{
    struct fy_px *be = priv;
    return fyp_self_info(be->host, FY_PX_INFO_MAGIC, info, len);
}

static ferry_status fy_px_remote_load(void *priv, const char *name, uint64_t uid, const void *info,
                                      size_t len, void **remote)
{
    struct fy_px *be = priv;
    return fyp_self_remote_load(be->host, FY_PX_INFO_MAGIC, be, name, uid, info, len, remote);
}

/* Our own region, seen as the remote side of a loopback transfer: the
 * registered file itself, one more reference held. */
static ferry_status fy_px_rregion_load(void *priv, void *remote, ferry_mem_type type,
                                       const ferry_desc *desc, const void *pub, size_t pub_len,
                                       void **rregion)
{
    struct fy_px *be = priv;
    if (!fyp_self_remote_is(remote, be) || !desc || !rregion)
        return FERRY_ERR_INVALID_PARAM;
    *rregion = NULL;
    if (type == FERRY_MEM_DRAM || type == FERRY_MEM_VRAM)
        return FERRY_OK;
    if (!fy_px_head_ours(be, pub, pub_len, FY_PX_REGION_LEN, FY_PX_REGION_MAGIC))
        return FERRY_ERR_BAD_METADATA;
    struct fy_px_file *f =
        fy_px_file_find(be, fy_px_get((const uint8_t *)pub + FYP_SELF_INFO_LEN, 8));
    if (!f)
        return FERRY_ERR_NOT_FOUND;
    f->refs++;
    *rregion = f;
    return FERRY_OK;
}

static void fy_px_rregion_unload(void *priv, void *remote, void *rregion)
{
    (void)remote;
    fy_px_file_put(priv, rregion);
}

/* ---- capabilities and progress ----------------------------------------- */

static ferry_status fy_px_supports(void *priv, ferry_mem_type local, ferry_mem_type remote)
{
    struct fy_px *be = priv;
    bool near = local == FERRY_MEM_DRAM || (local == FERRY_MEM_VRAM && be->stg.cu);
    bool ok = near && (remote == FERRY_MEM_FILE || remote == FERRY_MEM_BLOCK);
    return ok ? FERRY_OK : FERRY_ERR_NOT_SUPPORTED;
}

/* VRAM only where the CUDA driver loaded. */
static uint32_t fy_px_mem_types(void *priv)
{
    struct fy_px *be = priv;
    uint32_t mask = FERRY_MEM_MASK(FERRY_MEM_DRAM) | FERRY_MEM_MASK(FERRY_MEM_FILE) |
                    FERRY_MEM_MASK(FERRY_MEM_BLOCK);
    return be->stg.cu ? mask | FERRY_MEM_MASK(FERRY_MEM_VRAM) : mask;
}

static ferry_status fy_px_wait_fd(void *priv, int *fd)
{
    *fd = ((struct fy_px *)priv)->event_fd;
    return FERRY_OK;
}

/* Turns completion signals on (progress turns them off) and clears the
 * eventfd; anything it had counted since the last arm may be a completion
 * not reaped yet, so progress must run once more first. Completions
 * posted before the signals came on are seen by pending(). OK means every
 * I/O in flight is in the kernel and signals the eventfd when it completes
 * (FERRY_PLUGIN_F_FD_COMPLETES). */
static ferry_status fy_px_arm(void *priv)
{
    struct fy_px *be = priv;
    fy_px_signal(be, true);
    uint64_t count = 0;
    if (read(be->event_fd, &count, sizeof(count)) != sizeof(count))
        count = 0;
    bool stalled = be->waiting.head && !be->inflight; /* nothing would wake it */
    bool busy = count || be->redo || stalled || be->eng->pending(be) || fy_px_stage_busy(be);
    return busy ? FERRY_IN_PROGRESS : FERRY_OK;
}

static const ferry_plugin_ops fy_px_ops = {
    .size = sizeof(ferry_plugin_ops),
    .init = fy_px_init,
    .fini = fy_px_fini,
    .reg = fy_px_reg,
    .dereg = fy_px_dereg,
    .conn_info = fy_px_conn_info,
    .remote_load = fy_px_remote_load,
    .remote_unload = fyp_self_remote_unload,
    .rregion_load = fy_px_rregion_load,
    .rregion_unload = fy_px_rregion_unload,
    .xfer_prep = fy_px_xfer_prep,
    .xfer_post = fy_px_xfer_post,
    .xfer_check = fy_px_xfer_check,
    .xfer_release = fy_px_xfer_release,
    .supports = fy_px_supports,
    .progress = fy_px_progress,
    .xfer_error = fy_px_xfer_error,
    .wait_fd = fy_px_wait_fd,
    .arm = fy_px_arm,
    .mem_types = fy_px_mem_types,
};

static const ferry_plugin_desc fy_px_desc = {
    .abi_version = FERRY_PLUGIN_ABI_VERSION,
    /* The core serialises the ops (one ring, no lock here); completions
     * signal the eventfd, so the progress thread sleeps while I/O runs. */
    .flags = FERRY_PLUGIN_F_FD_COMPLETES,
    .name = FY_PX_NAME,
    .version = FY_PX_VERSION,
    .caps = FERRY_CAP_LOCAL | FERRY_CAP_PROGRESS,
    .mem_mask = FERRY_MEM_MASK(FERRY_MEM_DRAM) | FERRY_MEM_MASK(FERRY_MEM_FILE) |
                FERRY_MEM_MASK(FERRY_MEM_BLOCK) | FERRY_MEM_MASK(FERRY_MEM_VRAM),
    .params = fy_px_params,
    .num_params = FY_PX_NUM_PARAMS,
    .priv_size = sizeof(struct fy_px),
    .ops = &fy_px_ops,
};

FERRY_PLUGIN_DEFINE(POSIX, fy_px_desc)
