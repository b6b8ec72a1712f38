/* SPDX-License-Identifier: Apache-2.0 */
/* A fake CUDA driver for hosts without GPUs: the tests point FERRY_CUDA_LIB
 * at it, so the code above the driver (registration checks, the CUDA plugin,
 * two-process IPC with notifications, a peer killed mid-transfer) runs and
 * is checked byte for byte anywhere, CI included.
 *
 * It is strict where real bugs would hide:
 *  - "device memory" is host memory from memfd_create, so another process
 *    can map it (CUDA IPC: the handle names the exporter's pid and fd, the
 *    importer maps /proc/<pid>/fd/<fd>), and opening one's own handle fails
 *    as in the real driver;
 *  - work is queued per stream and runs only when an event or stream is
 *    waited for (cuEventQuery answers NOT_READY FY_MOCK_DELAY times first),
 *    so completion is really asynchronous;
 *  - the copy kernels (plugins/cuda/fy_cuda_kernel.h) are interpreted, and
 *    every address a kernel or copy touches must be memory the executing GPU
 *    can reach: its own, a peer's with peer access enabled from it, an IPC
 *    mapping opened in its context, or registered host memory. Anything else
 *    is CUDA_ERROR_ILLEGAL_ADDRESS, sticky, as on a GPU;
 *  - calls that need a current context fail without one.
 *
 * Environment: FY_MOCK_GPUS (2), FY_MOCK_VISIBLE ("1,0": physical GPUs in
 * ordinal order, like CUDA_VISIBLE_DEVICES), FY_MOCK_DELAY (3),
 * FY_MOCK_INIT_ERROR (a CUresult for cuInit), FY_MOCK_NO_PEER=1,
 * FY_MOCK_NO_POOLS=1, FY_MOCK_BATCH_FAIL=1. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fy_cuda_kernel.h"
#include "gpu/cuda_api.h"

#define MOCK_API      __attribute__((visibility("default")))
#define MOCK_MAX_DEVS 8

/* ---- state ---- */

enum { K_DEV, K_MANAGED, K_POOL, K_IMPORT, K_HOSTREG, K_HOSTALLOC };

typedef struct mock_alloc {
    uintptr_t base;
    size_t size, map_size;
    int kind;
    int phys; /* physical GPU, -1 for host memory */
    int fd;   /* memfd of DEV/MANAGED memory, -1 otherwise */
    int exec; /* IMPORT: ordinal of the context it was opened in */
    unsigned refs;
    pid_t from_pid; /* IMPORT: exporter */
    int from_fd;
} mock_alloc;

struct fy_cu_ctx_st {
    int ordinal;
    int refs;
    unsigned peers; /* ordinals this context may reach */
};

enum { OP_COPY, OP_STAGED, OP_KERNEL, OP_EVENT, OP_WAIT, OP_FREE };

typedef struct mock_op {
    int type;
    uint64_t dst, src, len;
    void *buf;         /* COPY from a staging buffer to free; KERNEL inline items */
    uint64_t items, n; /* KERNEL */
    int kind;          /* KERNEL: KF_* */
    struct fy_cu_event_st *ev;
    struct fy_cu_stream_st *wait_stream;
    size_t wait_pos;
    unsigned gen;
} mock_op;

struct fy_cu_stream_st {
    int ordinal;
    mock_op *ops;
    size_t n, cap, head;
};

struct fy_cu_event_st {
    unsigned recorded, done;
    int polls_left;
};

struct fy_cu_module_st {
    int ordinal;
};
enum { KF_ITEMS, KF_INLINE, KF_STRIDED, KF_COUNT };
struct fy_cu_func_st {
    int ordinal;
    int kind; /* KF_* */
};
struct fy_cu_mempool_st {
    int ordinal;
};

static struct {
    pthread_mutex_t mu;
    bool inited;
    int nphys, nvis;
    int phys_of[MOCK_MAX_DEVS]; /* ordinal -> physical */
    int delay;
    bool no_peer, no_pools, batch_fail;
    fy_cu_result sticky;
    struct fy_cu_ctx_st ctx[MOCK_MAX_DEVS];
    mock_alloc *allocs;
    size_t nallocs, cap;
    unsigned long long allocations; /* alloc_add calls, ever */
    struct fy_cu_stream_st **streams;
    size_t nstreams;
} M = {.mu = PTHREAD_MUTEX_INITIALIZER};

static __thread fy_cu_context tl_stack[32];
static __thread int tl_depth;

#define LOCK()   pthread_mutex_lock(&M.mu)
#define UNLOCK() pthread_mutex_unlock(&M.mu)
#define RET(r)                                                                                     \
    do {                                                                                           \
        fy_cu_result r_ = (r);                                                                     \
        UNLOCK();                                                                                  \
        return r_;                                                                                 \
    } while (0)

static void mock_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void mock_say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mock-cuda[%ld]: ", (long)getpid());
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int env_int(const char *name, int def)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : def;
}

static void mock_visible(void)
{
    const char *v = getenv("FY_MOCK_VISIBLE");
    M.nvis = 0;
    if (!v || !*v) {
        for (int i = 0; i < M.nphys; i++)
            M.phys_of[M.nvis++] = i;
        return;
    }
    for (const char *p = v; *p && M.nvis < MOCK_MAX_DEVS;) {
        int phys = atoi(p);
        if (phys >= 0 && phys < M.nphys)
            M.phys_of[M.nvis++] = phys;
        while (*p && *p != ',')
            p++;
        if (*p == ',')
            p++;
    }
}

static int ordinal_of_phys(int phys)
{
    for (int i = 0; i < M.nvis; i++)
        if (M.phys_of[i] == phys)
            return i;
    return -1;
}

static fy_cu_context current(void)
{
    return tl_depth ? tl_stack[tl_depth - 1] : NULL;
}

/* ---- allocations ---- */

static mock_alloc *alloc_add(mock_alloc a)
{
    if (M.nallocs == M.cap) {
        size_t cap = M.cap ? M.cap * 2 : 64;
        mock_alloc *n = realloc(M.allocs, cap * sizeof(*n));
        if (!n)
            return NULL;
        M.allocs = n;
        M.cap = cap;
    }
    M.allocs[M.nallocs] = a;
    M.allocations++;
    return &M.allocs[M.nallocs++];
}

/* Memory the driver was asked for so far, of any kind (device, pool,
 * pinned, registered, IPC mappings): tests count what a hot path takes. */
MOCK_API unsigned long long fy_mock_allocations(void)
{
    LOCK();
    unsigned long long n = M.allocations;
    UNLOCK();
    return n;
}

static mock_alloc *alloc_find(uint64_t p)
{
    for (size_t i = 0; i < M.nallocs; i++)
        if (p >= M.allocs[i].base && p < M.allocs[i].base + M.allocs[i].size)
            return &M.allocs[i];
    return NULL;
}

static void alloc_del(mock_alloc *a)
{
    *a = M.allocs[--M.nallocs];
}

static bool is_device_kind(int kind)
{
    return kind == K_DEV || kind == K_MANAGED || kind == K_POOL || kind == K_IMPORT;
}

/* Can a GPU (ordinal) reach [p, p+len)? kernel: SM access rules; copy
 * engines may also stage between GPUs that are not peers. */
static bool reachable(int ordinal, uint64_t p, uint64_t len, bool kernel)
{
    mock_alloc *a = alloc_find(p);
    if (!a || len > a->base + a->size - p)
        return false;
    if (!is_device_kind(a->kind) || a->kind == K_MANAGED)
        return true; /* registered host memory, managed memory */
    if (a->kind == K_IMPORT)
        return !kernel || a->exec == ordinal;
    int owner = ordinal_of_phys(a->phys);
    if (owner == ordinal || !kernel)
        return true;
    return owner >= 0 && (M.ctx[ordinal].peers & (1u << owner));
}

static void *map_memfd(size_t size, int *fd_out, size_t *map_size)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    size_t ms = (size + pg - 1) / pg * pg;
    int fd = memfd_create("mock-cuda", 0);
    if (fd < 0 || ftruncate(fd, (off_t)ms) != 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    void *p = mmap(NULL, ms, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        close(fd);
        return NULL;
    }
    *fd_out = fd;
    *map_size = ms;
    return p;
}

static fy_cu_result dev_alloc(fy_cu_deviceptr *out, size_t size, int kind)
{
    fy_cu_context c = current();
    if (!c)
        return FY_CUDA_ERROR_INVALID_CONTEXT;
    if (!size)
        return FY_CUDA_ERROR_INVALID_VALUE;
    int fd;
    size_t ms;
    void *p = map_memfd(size, &fd, &ms);
    if (!p)
        return FY_CUDA_ERROR_OUT_OF_MEMORY;
    mock_alloc a = {.base = (uintptr_t)p,
                    .size = size,
                    .map_size = ms,
                    .kind = kind,
                    .phys = M.phys_of[c->ordinal],
                    .fd = fd,
                    .exec = -1};
    if (!alloc_add(a)) {
        munmap(p, ms);
        close(fd);
        return FY_CUDA_ERROR_OUT_OF_MEMORY;
    }
    *out = (fy_cu_deviceptr)(uintptr_t)p;
    return FY_CUDA_SUCCESS;
}

static void alloc_release(mock_alloc *a)
{
    if (a->kind == K_POOL || a->kind == K_HOSTALLOC)
        free((void *)a->base);
    else if (a->kind != K_HOSTREG)
        munmap((void *)a->base, a->map_size);
    if (a->fd >= 0)
        close(a->fd);
    alloc_del(a);
}

/* ---- streams ---- */

static bool stream_push(struct fy_cu_stream_st *s, mock_op op)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        mock_op *n = realloc(s->ops, cap * sizeof(*n));
        if (!n)
            return false;
        s->ops = n;
        s->cap = cap;
    }
    s->ops[s->n++] = op;
    return true;
}

static void stream_run_to(struct fy_cu_stream_st *s, size_t pos);

static void fault(const char *what, uint64_t p, uint64_t len)
{
    mock_say("illegal address: %s %#llx+%llu is not reachable from the executing GPU", what,
             (unsigned long long)p, (unsigned long long)len);
    M.sticky = FY_CUDA_ERROR_ILLEGAL_ADDRESS;
}

static void exec_copy(int ordinal, uint64_t dst, uint64_t src, uint64_t len, bool kernel)
{
    if (!reachable(ordinal, src, len, kernel))
        return fault(kernel ? "kernel source" : "copy source", src, len);
    if (!reachable(ordinal, dst, len, kernel))
        return fault(kernel ? "kernel destination" : "copy destination", dst, len);
    memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, (size_t)len);
}

/* The strided kernel: both index arrays must be memory the GPU reaches,
 * then items as the kernel computes them. */
static void exec_strided(int ordinal, const fy_cu_strided_args *a)
{
    uint64_t bytes = a->n * sizeof(unsigned int);
    if (!reachable(ordinal, a->src_idx, bytes, true))
        return fault("kernel source indices", a->src_idx, bytes);
    if (!reachable(ordinal, a->dst_idx, bytes, true))
        return fault("kernel destination indices", a->dst_idx, bytes);
    for (uint64_t i = 0; i < a->n * a->pieces && !M.sticky; i++) {
        fy_cu_item it = fy_cu_strided_item(a, i);
        exec_copy(ordinal, it.dst, it.src, it.len, true);
    }
}

static void exec_kernel(int ordinal, mock_op *op)
{
    if (op->kind == KF_STRIDED)
        return exec_strided(ordinal, op->buf);
    const fy_cu_item *items = op->buf;
    if (!items) {
        if (!reachable(ordinal, op->items, op->n * sizeof(fy_cu_item), true))
            return fault("kernel item array", op->items, op->n * sizeof(fy_cu_item));
        items = (const fy_cu_item *)(uintptr_t)op->items;
    }
    for (uint64_t i = 0; i < op->n && !M.sticky; i++)
        exec_copy(ordinal, items[i].dst, items[i].src, items[i].len, true);
}

static void exec_op(struct fy_cu_stream_st *s, mock_op *op)
{
    if (M.sticky && op->type != OP_EVENT && op->type != OP_FREE)
        return;
    switch (op->type) {
    case OP_COPY:
        exec_copy(s->ordinal, op->dst, op->src, op->len, false);
        break;
    case OP_STAGED:
        if (reachable(s->ordinal, op->dst, op->len, false))
            memcpy((void *)(uintptr_t)op->dst, op->buf, (size_t)op->len);
        else
            fault("upload destination", op->dst, op->len);
        break;
    case OP_KERNEL:
        exec_kernel(s->ordinal, op);
        break;
    case OP_EVENT:
        op->ev->done = op->gen;
        break;
    case OP_WAIT:
        stream_run_to(op->wait_stream, op->wait_pos);
        break;
    case OP_FREE: {
        mock_alloc *a = alloc_find(op->dst);
        if (a && a->base == op->dst)
            alloc_release(a);
        break;
    }
    }
    free(op->buf);
    op->buf = NULL;
}

/* Runs s's queued ops up to (not including) position pos. */
static void stream_run_to(struct fy_cu_stream_st *s, size_t pos)
{
    while (s->head < pos && s->head < s->n) {
        mock_op op = s->ops[s->head++];
        exec_op(s, &op);
    }
}

static void stream_run_all(struct fy_cu_stream_st *s)
{
    stream_run_to(s, s->n);
}

static void all_streams_run(void)
{
    for (size_t i = 0; i < M.nstreams; i++)
        stream_run_all(M.streams[i]);
}

/* The stream that last recorded an event and where: found by scanning. */
static void event_run(struct fy_cu_event_st *ev)
{
    for (size_t i = 0; i < M.nstreams && ev->done != ev->recorded; i++) {
        struct fy_cu_stream_st *s = M.streams[i];
        for (size_t k = s->head; k < s->n; k++)
            if (s->ops[k].type == OP_EVENT && s->ops[k].ev == ev && s->ops[k].gen == ev->recorded) {
                stream_run_to(s, k + 1);
                break;
            }
    }
}

/* ---- init, errors, devices ---- */

MOCK_API fy_cu_result cuInit(unsigned flags)
{
    (void)flags;
    LOCK();
    int err = env_int("FY_MOCK_INIT_ERROR", 0);
    if (err)
        RET(err);
    if (!M.inited) {
        M.nphys = env_int("FY_MOCK_GPUS", 2);
        if (M.nphys < 0 || M.nphys > MOCK_MAX_DEVS)
            M.nphys = 2;
        mock_visible();
        M.delay = env_int("FY_MOCK_DELAY", 3);
        M.no_peer = env_int("FY_MOCK_NO_PEER", 0) != 0;
        M.no_pools = env_int("FY_MOCK_NO_POOLS", 0) != 0;
        M.batch_fail = env_int("FY_MOCK_BATCH_FAIL", 0) != 0;
        for (int i = 0; i < MOCK_MAX_DEVS; i++)
            M.ctx[i].ordinal = i;
        M.inited = true;
    }
    RET(FY_CUDA_SUCCESS);
}

MOCK_API fy_cu_result cuDriverGetVersion(int *v)
{
    *v = 13000;
    return FY_CUDA_SUCCESS;
}

MOCK_API fy_cu_result cuGetErrorName(fy_cu_result r, const char **s)
{
    static const struct {
        int r;
        const char *s;
    } names[] = {
        {0, "CUDA_SUCCESS"},
        {1, "CUDA_ERROR_INVALID_VALUE"},
        {2, "CUDA_ERROR_OUT_OF_MEMORY"},
        {100, "CUDA_ERROR_NO_DEVICE"},
        {101, "CUDA_ERROR_INVALID_DEVICE"},
        {201, "CUDA_ERROR_INVALID_CONTEXT"},
        {400, "CUDA_ERROR_INVALID_HANDLE"},
        {600, "CUDA_ERROR_NOT_READY"},
        {700, "CUDA_ERROR_ILLEGAL_ADDRESS"},
        {704, "CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED"},
        {712, "CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED"},
        {713, "CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED"},
        {801, "CUDA_ERROR_NOT_SUPPORTED"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].r == r) {
            *s = names[i].s;
            return FY_CUDA_SUCCESS;
        }
    *s = NULL;
    return FY_CUDA_ERROR_INVALID_VALUE;
}

MOCK_API fy_cu_result cuDeviceGetCount(int *n)
{
    *n = M.nvis;
    return FY_CUDA_SUCCESS;
}

MOCK_API fy_cu_result cuDeviceGet(fy_cu_device *d, int ordinal)
{
    if (ordinal < 0 || ordinal >= M.nvis)
        return FY_CUDA_ERROR_INVALID_DEVICE;
    *d = ordinal;
    return FY_CUDA_SUCCESS;
}

MOCK_API fy_cu_result cuDeviceGetUuid_v2(fy_cu_uuid *u, fy_cu_device d)
{
    if (d < 0 || d >= M.nvis)
        return FY_CUDA_ERROR_INVALID_DEVICE;
    memset(u->bytes, 0, 16);
    memcpy(u->bytes, "mockgpu", 7);
    u->bytes[15] = (char)(M.phys_of[d] + 1);
    return FY_CUDA_SUCCESS;
}

MOCK_API fy_cu_result cuDeviceGetAttribute(int *v, int attr, fy_cu_device d)
{
    if (d < 0 || d >= M.nvis)
        return FY_CUDA_ERROR_INVALID_DEVICE;
    switch (attr) {
    case FY_CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT:
        *v = 4;
        return FY_CUDA_SUCCESS;
    case FY_CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING:
        *v = 1;
        return FY_CUDA_SUCCESS;
    case FY_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR:
        *v = 9;
        return FY_CUDA_SUCCESS;
    case FY_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR:
        *v = 0;
        return FY_CUDA_SUCCESS;
    case FY_CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED:
        *v = !M.no_pools;
        return FY_CUDA_SUCCESS;
    default:
        *v = 0;
        return FY_CUDA_SUCCESS;
    }
}

MOCK_API fy_cu_result cuDeviceGetPCIBusId(char *buf, int len, fy_cu_device d)
{
    snprintf(buf, (size_t)len, "0000:%02x:00.0", M.phys_of[d] + 1);
    return FY_CUDA_SUCCESS;
}

MOCK_API fy_cu_result cuDeviceCanAccessPeer(int *can, fy_cu_device a, fy_cu_device b)
{
    *can = !M.no_peer && a != b;
    return FY_CUDA_SUCCESS;
}

/* ---- contexts ---- */

MOCK_API fy_cu_result cuDevicePrimaryCtxRetain(fy_cu_context *c, fy_cu_device d)
{
    LOCK();
    if (d < 0 || d >= M.nvis)
        RET(FY_CUDA_ERROR_INVALID_DEVICE);
    M.ctx[d].refs++;
    *c = &M.ctx[d];
    RET(FY_CUDA_SUCCESS);
}

MOCK_API fy_cu_result cuDevicePrimaryCtxRelease_v2(fy_cu_device d)
{
    LOCK();
    if (d < 0 || d >= M.nvis || M.ctx[d].refs <= 0)
        RET(FY_CUDA_ERROR_INVALID_CONTEXT);
    M.ctx[d].refs--;
    RET(FY_CUDA_SUCCESS);
}

MOCK_API fy_cu_result cuDevicePrimaryCtxGetState(fy_cu_device d, unsigned *flags, int *active)
{
    LOCK();
    if (d < 0 || d >= M.nvis)
        RET(FY_CUDA_ERROR_INVALID_DEVICE);
    *flags = 0;
    *active = M.ctx[d].refs > 0;
    RET(FY_CUDA_SUCCESS);
}

MOCK_API fy_cu_result cuCtxPushCurrent_v2(fy_cu_context c)
{
    if (!c || tl_depth == 32)
        return FY_CUDA_ERROR_INVALID_VALUE;
    tl_stack[tl_depth++] = c;
    return FY_CUDA_SUCCESS;
}

MOCK_API fy_cu_result cuCtxPopCurrent_v2(fy_cu_context *c)
{
    if (!tl_depth)
        return FY_CUDA_ERROR_INVALID_CONTEXT;
    *c = tl_stack[--tl_depth];
    return FY_CUDA_SUCCESS;
}

MOCK_API fy_cu_result cuCtxEnablePeerAccess(fy_cu_context peer, unsigned flags)
{
    (void)flags;
    LOCK();
    fy_cu_context c = current();
    if (!c)
        RET(FY_CUDA_ERROR_INVALID_CONTEXT);
    if (M.no_peer || peer == c)
        RET(FY_CUDA_ERROR_PEER_ACCESS_UNSUPPORTED);
    if (c->peers & (1u << peer->ordinal))
        RET(FY_CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED);
    c->peers |= 1u << peer->ordinal;
    RET(FY_CUDA_SUCCESS);
}

/* ---- pointers ---- */

MOCK_API fy_cu_result cuPointerGetAttributes(unsigned n, int *attrs, void **data, fy_cu_deviceptr p)
{
    LOCK();
    mock_alloc *a = alloc_find(p);
    int ordinal = -1;
    if (a && a->kind == K_IMPORT)
        ordinal = a->exec;
    else if (a && a->phys >= 0)
        ordinal = ordinal_of_phys(a->phys);
    for (unsigned i = 0; i < n; i++) {
        switch (attrs[i]) {
        case FY_CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
            *(unsigned *)data[i] = !a                        ? 0
                                   : is_device_kind(a->kind) ? FY_CU_MEMORYTYPE_DEVICE
                                                             : FY_CU_MEMORYTYPE_HOST;
            break;
        case FY_CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
            *(int *)data[i] = ordinal;
            break;
        case FY_CU_POINTER_ATTRIBUTE_IS_MANAGED:
            *(unsigned *)data[i] = a && a->kind == K_MANAGED;
            break;
        case FY_CU_POINTER_ATTRIBUTE_CONTEXT:
            *(fy_cu_context *)data[i] = a && ordinal >= 0 ? &M.ctx[ordinal] : NULL;
            break;
        default:
            RET(FY_CUDA_ERROR_INVALID_VALUE);
        }
    }
    RET(FY_CUDA_SUCCESS);
}

MOCK_API fy_cu_result cuMemGetAddressRange_v2(fy_cu_deviceptr *base, size_t *size,
                                              fy_cu_deviceptr p)
{
    LOCK();
    if (!current())
        RET(FY_CUDA_ERROR_INVALID_CONTEXT);
    mock_alloc *a = alloc_find(p);
    if (!a || !is_device_kind(a->kind))
        RET(FY_CUDA_ERROR_NOT_FOUND);
    if (base)
        *base = a->base;
    if (size)
        *size = a->size;
    RET(FY_CUDA_SUCCESS);
}

/* ---- memory ---- */

MOCK_API fy_cu_result cuMemAlloc_v2(fy_cu_deviceptr *p, size_t size)
{
    LOCK();
    RET(M.sticky ? M.sticky : dev_alloc(p, size, K_DEV));
}

MOCK_API fy_cu_result cuMemAllocManaged(fy_cu_deviceptr *p, size_t size, unsigned flags)
{
    (void)flags;
    LOCK();
    RET(dev_alloc(p, size, K_MANAGED));
}

MOCK_API fy_cu_result cuMemFree_v2(fy_cu_deviceptr p)
{
    LOCK();
    if (!current())
        RET(FY_CUDA_ERROR_INVALID_CONTEXT);
    all_streams_run(); /* cuMemFree synchronises */
    mock_alloc *a = alloc_find(p);
    if (!a || a->base != p || (a->kind != K_DEV && a->kind != K_MANAGED && a->kind != K_POOL))
        RET(FY_CUDA_ERROR_INVALID_VALUE);
    alloc_release(a);
    RET(FY_CUDA_SUCCESS);
}

MOCK_API fy_cu_result cuMemHostRegister_v2(void *p, size_t size, unsigned flags)
{
    (void)flags;
    LOCK();
    if (!current())
        RET(FY_CUDA_ERROR_INVALID_CONTEXT);
    if (!p || !size)
        RET(FY_CUDA_ERROR_INVALID_VALUE);
    uintptr_t b = (uintptr_t)p;
    /* As driver 580 answers: cuMemHostAlloc'd memory is an invalid value,
     * registered memory is already registered. */
    for (size_t i = 0; i < M.nallocs; i++)
        if (b < M.allocs[i].base + M.allocs[i].size && M.allocs[i].base < b + size)
            RET(M.allocs[i].kind == K_HOSTREG ? FY_CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED
                                              : FY_CUDA_ERROR_INVALID_VALUE);
    mock_alloc a = {.base = b, .size = size, .kind = K_HOSTREG, .phys = -1, .fd = -1, .exec = -1};
    RET(alloc_add(a) ? FY_CUDA_SUCCESS : FY_CUDA_ERROR_OUT_OF_MEMORY);
}

MOCK_API fy_cu_result cuMemHostUnregister(void *p)
{
    LOCK();
    if (!current())
        RET(FY_CUDA_ERROR_INVALID_CONTEXT);
    all_streams_run();
    mock_alloc *a = alloc_find((uintptr_t)p);
    if (!a || a->kind != K_HOSTREG || a->base != (uintptr_t)p)
        RET(FY_CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED);
    alloc_del(a);
    RET(FY_CUDA_SUCCESS);
}

MOCK_API fy_cu_result cuMemHostAlloc(void **p, size_t size, unsigned flags)
{
    (void)flags;
    LOCK();
    if (!current())
        RET(FY_CUDA_ERROR_INVALID_CONTEXT);
    void *m = aligned_alloc(4096, (size + 4095) / 4096 * 4096);
    mock_alloc a = {
        .base = (uintptr_t)m, .size = size, .kind = K_HOSTALLOC, .phys = -1, .fd = -1, .exec = -1};
    if (!m || !alloc_add(a)) {
        free(m);
        RET(FY_CUDA_ERROR_OUT_OF_MEMORY);
    }
    *p = m;
    RET(FY_CUDA_SUCCESS);
}

MOCK_API fy_cu_result cuMemFreeHost(void *p)
{
    LOCK();
    all_streams_run();
    mock_alloc *a = alloc_find((uintptr_t)p);
    if (!a || a->kind != K_HOSTALLOC)
        RET(FY_CUDA_ERROR_INVALID_VALUE);
    alloc_release(a);
    RET(FY_CUDA_SUCCESS);
}

/* Copies between known memory only: a copy engine fed an address nothing
 * allocated gets CUDA_ERROR_INVALID_VALUE at once. */
static fy_cu_result check_copy(uint64_t dst, uint64_t src, uint64_t len)
{
    mock_alloc *d = alloc_find(dst), *s = alloc_find(src);
    if (!d || !s || len > d->base + d->size - dst || len > s->base + s->size - src) {
        mock_say("copy %#llx -> %#llx (%llu bytes): unknown memory", (unsigned long long)src,
                 (unsigned long long)dst, (unsigned long long)len);
        return FY_CUDA_ERROR_INVALID_VALUE;
    }
    return FY_CUDA_SUCCESS;
}

MOCK_API fy_cu_result cuMemcpy(fy_cu_deviceptr dst, fy_cu_deviceptr src, size_t len)
{
    LOCK();
    if (M.sticky)
        RET(M.sticky);
    if (!current())
        RET(FY_CUDA_ERROR_INVALID_CONTEXT);
    /* Synchronous copies here may touch plain host memory (tests read and
     * write device memory through cuMemcpy). */
    mock_alloc *d = alloc_find(dst), *s = alloc_find(src);
    if ((d && len > d->base + d->size - dst) || (s && len > s->base + s->size - src))
        RET(FY_CUDA_ERROR_INVALID_VALUE);
    all_streams_run();
    memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, len);
    RET(FY_CUDA_SUCCESS);
}

MOCK_API fy_cu_result cuMemsetD8_v2(fy_cu_deviceptr dst, unsigned char v, size_t len)
{
    LOCK();
    if (!current())
        RET(FY_CUDA_ERROR_INVALID_CONTEXT);
    mock_alloc *d = alloc_find(dst);
    if (!d || len > d->base + d->size - dst)
        RET(FY_CUDA_ERROR_INVALID_VALUE);
    all_streams_run();
    memset((void *)(uintptr_t)dst, v, len);
    RET(FY_CUDA_SUCCESS);
}

static fy_cu_result enqueue_copy(uint64_t dst, uint64_t src, uint64_t len, fy_cu_stream s)
{
    if (M.sticky)
        return M.sticky;
    if (!s)
        return FY_CUDA_ERROR_INVALID_HANDLE; /* ferry never uses the legacy stream */
    fy_cu_result r = check_copy(dst, src, len);
    if (r == FY_CUDA_SUCCESS &&
        !stream_push(s, (mock_op){.type = OP_COPY, .dst = dst, .src = src, .len = len}))
        r = FY_CUDA_ERROR_OUT_OF_MEMORY;
    return r;
}

MOCK_API fy_cu_result cuMemcpyAsync(fy_cu_deviceptr dst, fy_cu_deviceptr src, size_t len,
                                    fy_cu_stream s)
{
    LOCK();
    RET(enqueue_copy(dst, src, len, s));
}

/* Pageable source: staged now, as the driver does; the copy runs in order. */
MOCK_API fy_cu_result cuMemcpyHtoDAsync_v2(fy_cu_deviceptr dst, const void *src, size_t len,
                                           fy_cu_stream s)
{
    LOCK();
    if (M.sticky)
        RET(M.sticky);
    mock_alloc *d = alloc_find(dst);
    if (!s || !d || !is_device_kind(d->kind) || len > d->base + d->size - dst)
        RET(FY_CUDA_ERROR_INVALID_VALUE);
    void *stage = malloc(len ? len : 1);
    if (!stage)
        RET(FY_CUDA_ERROR_OUT_OF_MEMORY);
    memcpy(stage, src, len);
    if (!stream_push(s, (mock_op){.type = OP_STAGED, .dst = dst, .len = len, .buf = stage})) {
        free(stage);
        RET(FY_CUDA_ERROR_OUT_OF_MEMORY);
    }
    RET(FY_CUDA_SUCCESS);
}

MOCK_API fy_cu_result cuMemcpyBatchAsync_v2(fy_cu_deviceptr *dsts, fy_cu_deviceptr *srcs,
                                            size_t *sizes, size_t count, fy_cu_memcpy_attrs *attrs,
                                            size_t *attr_idx, size_t nattrs, fy_cu_stream s)
{
    LOCK();
    if (M.batch_fail)
        RET(FY_CUDA_ERROR_NOT_SUPPORTED);
    if (!count || !nattrs || !attrs || !attr_idx || attr_idx[0] != 0 ||
        attrs[0].src_access_order != FY_CU_MEMCPY_SRC_ACCESS_ORDER_STREAM)
        RET(FY_CUDA_ERROR_INVALID_VALUE);
    for (size_t i = 0; i < count; i++)
        if (check_copy(dsts[i], srcs[i], sizes[i]) != FY_CUDA_SUCCESS)
            RET(FY_CUDA_ERROR_INVALID_VALUE);
    for (size_t i = 0; i < count; i++) {
        fy_cu_result r = enqueue_copy(dsts[i], srcs[i], sizes[i], s);
        if (r != FY_CUDA_SUCCESS)
            RET(r);
    }
    RET(FY_CUDA_SUCCESS);
}

/* ---- pools ---- */

MOCK_API fy_cu_result cuMemPoolCreate(fy_cu_mempool *pool, const fy_cu_mempool_props *props)
{
    if (props->alloc_type != FY_CU_MEM_ALLOCATION_TYPE_PINNED ||
        props->location.type != FY_CU_MEM_LOCATION_TYPE_DEVICE || props->location.id < 0 ||
        props->location.id >= M.nvis)
        return FY_CUDA_ERROR_INVALID_VALUE;
    struct fy_cu_mempool_st *p = malloc(sizeof(*p));
    if (!p)
        return FY_CUDA_ERROR_OUT_OF_MEMORY;
    p->ordinal = props->location.id;
    *pool = p;
    return FY_CUDA_SUCCESS;
}

MOCK_API fy_cu_result cuMemPoolDestroy(fy_cu_mempool pool)
{
    free(pool);
    return FY_CUDA_SUCCESS;
}

MOCK_API fy_cu_result cuMemPoolSetAttribute(fy_cu_mempool pool, int attr, void *v)
{
    (void)pool, (void)v;
    return attr == FY_CU_MEMPOOL_ATTR_RELEASE_THRESHOLD ? FY_CUDA_SUCCESS
                                                        : FY_CUDA_ERROR_INVALID_VALUE;
}

MOCK_API fy_cu_result cuMemAllocFromPoolAsync(fy_cu_deviceptr *p, size_t size, fy_cu_mempool pool,
                                              fy_cu_stream s)
{
    LOCK();
    if (!s || !size)
        RET(FY_CUDA_ERROR_INVALID_VALUE);
    void *m = aligned_alloc(256, (size + 255) / 256 * 256);
    mock_alloc a = {.base = (uintptr_t)m,
                    .size = size,
                    .kind = K_POOL,
                    .phys = M.phys_of[pool->ordinal],
                    .fd = -1,
                    .exec = -1};
    if (!m || !alloc_add(a)) {
        free(m);
        RET(FY_CUDA_ERROR_OUT_OF_MEMORY);
    }
    *p = (uintptr_t)m;
    RET(FY_CUDA_SUCCESS);
}

MOCK_API fy_cu_result cuMemFreeAsync(fy_cu_deviceptr p, fy_cu_stream s)
{
    LOCK();
    mock_alloc *a = alloc_find(p);
    if (!s || !a || a->base != p || a->kind != K_POOL)
        RET(FY_CUDA_ERROR_INVALID_VALUE);
    RET(stream_push(s, (mock_op){.type = OP_FREE, .dst = p}) ? FY_CUDA_SUCCESS
                                                             : FY_CUDA_ERROR_OUT_OF_MEMORY);
}

/* ---- streams and events ---- */

MOCK_API fy_cu_result cuStreamCreate(fy_cu_stream *out, unsigned flags)
{
    (void)flags;
    LOCK();
    fy_cu_context c = current();
    if (!c)
        RET(FY_CUDA_ERROR_INVALID_CONTEXT);
    struct fy_cu_stream_st *s = calloc(1, sizeof(*s));
    struct fy_cu_stream_st **list = realloc(M.streams, (M.nstreams + 1) * sizeof(*list));
    if (!s || !list) {
        free(s);
        RET(FY_CUDA_ERROR_OUT_OF_MEMORY);
    }
    s->ordinal = c->ordinal;
    M.streams = list;
    M.streams[M.nstreams++] = s;
    *out = s;
    RET(FY_CUDA_SUCCESS);
}

MOCK_API fy_cu_result cuStreamDestroy_v2(fy_cu_stream s)
{
    LOCK();
    all_streams_run();
    for (size_t i = 0; i < M.nstreams; i++)
        if (M.streams[i] == s) {
            M.streams[i] = M.streams[--M.nstreams];
            free(s->ops);
            free(s);
            RET(FY_CUDA_SUCCESS);
        }
    RET(FY_CUDA_ERROR_INVALID_HANDLE);
}

MOCK_API fy_cu_result cuStreamSynchronize(fy_cu_stream s)
{
    LOCK();
    stream_run_all(s);
    RET(M.sticky);
}

MOCK_API fy_cu_result cuStreamGetCtx(fy_cu_stream s, fy_cu_context *c)
{
    *c = &M.ctx[s->ordinal];
    return FY_CUDA_SUCCESS;
}

MOCK_API fy_cu_result cuEventCreate(fy_cu_event *ev, unsigned flags)
{
    (void)flags;
    LOCK();
    if (!current())
        RET(FY_CUDA_ERROR_INVALID_CONTEXT);
    *ev = calloc(1, sizeof(**ev));
    RET(*ev ? FY_CUDA_SUCCESS : FY_CUDA_ERROR_OUT_OF_MEMORY);
}

MOCK_API fy_cu_result cuEventDestroy_v2(fy_cu_event ev)
{
    LOCK();
    all_streams_run(); /* no queued record may outlive the event */
    free(ev);
    RET(FY_CUDA_SUCCESS);
}

MOCK_API fy_cu_result cuEventRecord(fy_cu_event ev, fy_cu_stream s)
{
    LOCK();
    if (!s)
        RET(FY_CUDA_ERROR_INVALID_HANDLE);
    ev->recorded++;
    ev->polls_left = M.delay;
    RET(stream_push(s, (mock_op){.type = OP_EVENT, .ev = ev, .gen = ev->recorded})
            ? FY_CUDA_SUCCESS
            : FY_CUDA_ERROR_OUT_OF_MEMORY);
}

MOCK_API fy_cu_result cuEventQuery(fy_cu_event ev)
{
    LOCK();
    if (ev->done != ev->recorded && ev->polls_left > 0) {
        ev->polls_left--;
        RET(FY_CUDA_ERROR_NOT_READY);
    }
    event_run(ev);
    RET(M.sticky);
}

MOCK_API fy_cu_result cuEventSynchronize(fy_cu_event ev)
{
    LOCK();
    event_run(ev);
    RET(M.sticky);
}

MOCK_API fy_cu_result cuEventElapsedTime_v2(float *ms, fy_cu_event a, fy_cu_event b)
{
    (void)a, (void)b;
    *ms = 0.001f;
    return FY_CUDA_SUCCESS;
}

/* The wait point is the record's position in its stream, so the event may
 * be recorded again or destroyed before the wait runs. */
MOCK_API fy_cu_result cuStreamWaitEvent(fy_cu_stream s, fy_cu_event ev, unsigned flags)
{
    (void)flags;
    LOCK();
    mock_op op = {.type = OP_WAIT};
    for (size_t i = 0; i < M.nstreams && !op.wait_stream; i++) {
        struct fy_cu_stream_st *t = M.streams[i];
        for (size_t k = t->n; k-- > t->head;)
            if (t->ops[k].type == OP_EVENT && t->ops[k].ev == ev && t->ops[k].gen == ev->recorded) {
                op.wait_stream = t;
                op.wait_pos = k + 1;
                break;
            }
    }
    if (!op.wait_stream)
        RET(FY_CUDA_SUCCESS); /* already complete */
    RET(stream_push(s, op) ? FY_CUDA_SUCCESS : FY_CUDA_ERROR_OUT_OF_MEMORY);
}

/* ---- IPC ---- */

typedef struct mock_ipc {
    char magic[8];
    int32_t pid, fd;
    uint64_t size, base;
    int32_t phys;
} mock_ipc;

MOCK_API fy_cu_result cuIpcGetMemHandle(fy_cu_ipc_handle *h, fy_cu_deviceptr p)
{
    LOCK();
    if (!current())
        RET(FY_CUDA_ERROR_INVALID_CONTEXT);
    mock_alloc *a = alloc_find(p);
    if (!a || a->base != p || a->kind != K_DEV) /* base pointers of cuMemAlloc only */
        RET(FY_CUDA_ERROR_INVALID_VALUE);
    mock_ipc m = {.pid = getpid(), .fd = a->fd, .size = a->size, .base = a->base, .phys = a->phys};
    memcpy(m.magic, "MOCKIPC1", 8);
    memset(h, 0, sizeof(*h));
    memcpy(h->reserved, &m, sizeof(m));
    RET(FY_CUDA_SUCCESS);
}

static mock_alloc *ipc_find(const mock_ipc *m, int exec)
{
    for (size_t i = 0; i < M.nallocs; i++) {
        mock_alloc *a = &M.allocs[i];
        if (a->kind == K_IMPORT && a->from_pid == m->pid && a->from_fd == m->fd && a->exec == exec)
            return a;
    }
    return NULL;
}

MOCK_API fy_cu_result cuIpcOpenMemHandle_v2(fy_cu_deviceptr *p, fy_cu_ipc_handle h, unsigned flags)
{
    (void)flags;
    mock_ipc m;
    memcpy(&m, h.reserved, sizeof(m));
    LOCK();
    fy_cu_context c = current();
    if (!c || m.pid == getpid())
        RET(FY_CUDA_ERROR_INVALID_CONTEXT); /* no current context, or one's own handle */
    if (memcmp(m.magic, "MOCKIPC1", 8))
        RET(FY_CUDA_ERROR_INVALID_VALUE);
    mock_alloc *a = ipc_find(&m, c->ordinal);
    if (a) {
        a->refs++;
        *p = a->base;
        RET(FY_CUDA_SUCCESS);
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)m.pid, (int)m.fd);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        RET(FY_CUDA_ERROR_INVALID_HANDLE);
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), ms = (m.size + pg - 1) / pg * pg;
    void *map = mmap(NULL, ms, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        RET(FY_CUDA_ERROR_INVALID_HANDLE);
    mock_alloc na = {.base = (uintptr_t)map,
                     .size = m.size,
                     .map_size = ms,
                     .kind = K_IMPORT,
                     .phys = m.phys,
                     .fd = -1,
                     .exec = c->ordinal,
                     .refs = 1,
                     .from_pid = m.pid,
                     .from_fd = m.fd};
    if (!alloc_add(na)) {
        munmap(map, ms);
        RET(FY_CUDA_ERROR_OUT_OF_MEMORY);
    }
    *p = (uintptr_t)map;
    RET(FY_CUDA_SUCCESS);
}

MOCK_API fy_cu_result cuIpcCloseMemHandle(fy_cu_deviceptr p)
{
    LOCK();
    if (!current())
        RET(FY_CUDA_ERROR_INVALID_CONTEXT);
    mock_alloc *a = alloc_find(p);
    if (!a || a->kind != K_IMPORT || a->base != p)
        RET(FY_CUDA_ERROR_INVALID_VALUE);
    all_streams_run();
    if (--a->refs == 0)
        alloc_release(a);
    RET(FY_CUDA_SUCCESS);
}

/* ---- modules and launches ---- */

MOCK_API fy_cu_result cuModuleLoadData(fy_cu_module *mod, const void *image)
{
    LOCK();
    fy_cu_context c = current();
    if (!c)
        RET(FY_CUDA_ERROR_INVALID_CONTEXT);
    uint32_t magic;
    memcpy(&magic, image, 4);
    if (magic != 0xBA55ED50u) /* a fatbin */
        RET(FY_CUDA_ERROR_INVALID_VALUE);
    struct fy_cu_module_st *m = malloc(sizeof(*m));
    if (!m)
        RET(FY_CUDA_ERROR_OUT_OF_MEMORY);
    m->ordinal = c->ordinal;
    *mod = m;
    RET(FY_CUDA_SUCCESS);
}

MOCK_API fy_cu_result cuModuleUnload(fy_cu_module mod)
{
    free(mod);
    return FY_CUDA_SUCCESS;
}

static struct fy_cu_func_st mock_funcs[MOCK_MAX_DEVS][KF_COUNT];

static int kernel_kind(const char *name)
{
    static const char *const names[KF_COUNT] = {FY_CU_KERNEL_ITEMS, FY_CU_KERNEL_INLINE,
                                                FY_CU_KERNEL_STRIDED};
    for (int k = 0; k < KF_COUNT; k++)
        if (!strcmp(name, names[k]))
            return k;
    return -1;
}

MOCK_API fy_cu_result cuModuleGetFunction(fy_cu_function *f, fy_cu_module mod, const char *name)
{
    int kind = kernel_kind(name);
    if (kind < 0)
        return FY_CUDA_ERROR_NOT_FOUND;
    struct fy_cu_func_st *fn = &mock_funcs[mod->ordinal][kind];
    fn->ordinal = mod->ordinal;
    fn->kind = kind;
    *f = fn;
    return FY_CUDA_SUCCESS;
}

static bool group_ok(unsigned group, unsigned bx)
{
    return group >= 32 && group <= bx && !(group & (group - 1)) && bx % group == 0;
}

MOCK_API fy_cu_result cuLaunchKernel(fy_cu_function f, unsigned gx, unsigned gy, unsigned gz,
                                     unsigned bx, unsigned by, unsigned bz, unsigned shmem,
                                     fy_cu_stream s, void **params, void **extra)
{
    LOCK();
    if (M.sticky)
        RET(M.sticky);
    if (!s || s->ordinal != f->ordinal || !params || extra || !gx || gy != 1 || gz != 1 ||
        bx != FY_CU_BLOCK || by != 1 || bz != 1 || shmem)
        RET(FY_CUDA_ERROR_INVALID_VALUE);
    mock_op op = {.type = OP_KERNEL, .kind = f->kind};
    unsigned group;
    if (f->kind == KF_STRIDED) {
        const fy_cu_strided_args *a = params[0];
        if (!a->n || !a->pieces || !a->chunk || !(op.buf = malloc(sizeof(*a))))
            RET(FY_CUDA_ERROR_INVALID_VALUE);
        memcpy(op.buf, a, sizeof(*a));
        group = a->group;
    } else if (f->kind == KF_INLINE) {
        const fy_cu_inline_args *a = params[0];
        if (a->n == 0 || a->n > FY_CU_INLINE_MAX || !(op.buf = malloc(sizeof(a->items))))
            RET(FY_CUDA_ERROR_INVALID_VALUE);
        memcpy(op.buf, a->items, sizeof(a->items)); /* parameters are copied at launch */
        op.n = a->n;
        group = a->group;
    } else {
        op.items = *(const fy_cu_deviceptr *)params[0];
        op.n = *(const unsigned long long *)params[1];
        group = *(const unsigned *)params[2];
        if (op.n == 0)
            RET(FY_CUDA_ERROR_INVALID_VALUE);
    }
    if (!group_ok(group, bx)) {
        free(op.buf);
        RET(FY_CUDA_ERROR_INVALID_VALUE);
    }
    if (!stream_push(s, op)) {
        free(op.buf);
        RET(FY_CUDA_ERROR_OUT_OF_MEMORY);
    }
    RET(FY_CUDA_SUCCESS);
}
