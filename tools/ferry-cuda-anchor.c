/* SPDX-License-Identifier: Apache-2.0 */
/* ferry-cuda-anchor: the bare CUDA path that ferry-bench's VRAM -> VRAM
 * sweep with the CUDA backend is compared with, on the same GPUs and sizes.
 *
 * Two processes, as in ferry-bench: this one (the initiator, GPU 0) and a
 * target it starts (GPU 1 where there are two, else GPU 0 as well). The
 * target exports its buffer with cuIpcGetMemHandle; the initiator opens it
 * and, per iteration, copies `batch` blocks of `block` bytes with
 * cuMemcpyAsync on one stream (per_block), records an event and spins on
 * it: what a transfer library does at least, without notifications. For
 * batch > 1 a second row copies the same bytes in one cuMemcpyAsync
 * (contiguous): the link's ceiling. Host wall clock per iteration, as
 * ferry-bench measures; iteration counts follow ferry-bench's options.
 *
 *   ferry-cuda-anchor --op_type WRITE --start_block_size 4K \
 *       --max_block_size 64M --batch_size 64 --json anchor.jsonl \
 *       --anchor_csv anchor.csv
 *
 * --anchor_csv writes label,block_size,gbps rows for ferry-bench --plot. */
#include "ferry-bench/fb_cuda.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MIB (1ull << 20)

typedef struct an_opts {
    const char *op_type, *json, *anchor_csv, *fb_role;
    uint64_t start_block_size, max_block_size, batch_size;
    uint64_t num_iter, warmup_iter, large_blk_iter_ftr;
} an_opts;

/* The target's buffer, as the initiator needs it. */
typedef struct an_export {
    fy_cu_ipc_handle handle;
    uint64_t size;
    int32_t dev;
} an_export;

enum { AN_MSG_EXPORT = 1, AN_MSG_BYE };

typedef struct an_run {
    const an_opts *o;
    bool write;
    int dev;
    fb_mem local, remote; /* remote: the target's buffer opened here */
    fy_cu_stream stream;
    fy_cu_event ev;
    FILE *json, *csv;
} an_run;

/* ---- options ---- */

#define OPT(n, k, h) FB_OPT_FIELD(o, n, k, h)

static void an_parse(an_opts *o, int argc, char **argv)
{
    *o = (an_opts){.op_type = "WRITE",
                   .start_block_size = 4096,
                   .max_block_size = 64 * MIB,
                   .batch_size = 1,
                   .num_iter = 1000,
                   .warmup_iter = 100,
                   .large_blk_iter_ftr = 16};
    const fb_opt table[] = {
        OPT(op_type, FB_OPT_STR, "WRITE (default: initiator to target) or READ"),
        OPT(start_block_size, FB_OPT_SIZE, "first block size (default 4K)"),
        OPT(max_block_size, FB_OPT_SIZE, "last block size, doubling (default 64M)"),
        OPT(batch_size, FB_OPT_UINT, "blocks per iteration (default 1)"),
        OPT(num_iter, FB_OPT_UINT, "timed iterations per size (default 1000)"),
        OPT(warmup_iter, FB_OPT_UINT, "untimed iterations first (default 100)"),
        OPT(large_blk_iter_ftr, FB_OPT_UINT, "iterations divided by this above 1 MiB (16)"),
        OPT(json, FB_OPT_STR, "write the rows to this file, one JSON object a line"),
        OPT(anchor_csv, FB_OPT_STR, "write label,block_size,gbps rows (ferry-bench --plot)"),
        FB_OPT_HIDDEN_FIELD(o, fb_role, FB_OPT_STR, "internal: role of a spawned process"),
        {NULL, 0, NULL, NULL, 0},
    };
    fb_opts_parse(table, argc, argv);
}

static void an_check(const an_opts *o)
{
    if (!o->start_block_size || o->max_block_size < o->start_block_size)
        fb_exit(FB_EXIT_USAGE, "want 0 < --start_block_size <= --max_block_size");
    if (!o->batch_size || o->batch_size > 4096 || !o->num_iter || !o->large_blk_iter_ftr)
        fb_exit(FB_EXIT_USAGE, "want 1 <= --batch_size <= 4096, --num_iter and "
                               "--large_blk_iter_ftr >= 1");
    if (o->max_block_size * o->batch_size > (64ull << 30))
        fb_exit(FB_EXIT_USAGE, "max_block_size x batch_size above 64 GiB");
    if (strcasecmp(o->op_type, "READ") && strcasecmp(o->op_type, "WRITE"))
        fb_exit(FB_EXIT_USAGE, "--op_type %s: want READ or WRITE", o->op_type);
}

static size_t an_size(const an_opts *o)
{
    return (size_t)(o->max_block_size * o->batch_size);
}

/* ---- the target ---- */

static int an_target_main(const an_opts *o)
{
    char kind[16];
    unsigned id;
    int in, out;
    fb_role_tag = "target";
    if (!fb_role_parse(o->fb_role, kind, sizeof(kind), &id, &in, &out))
        fb_exit(FB_EXIT_USAGE, "bad --fb_role");
    fb_mem m;
    fb_mem_alloc(&m, FERRY_MEM_VRAM, fb_gpu_for(1), an_size(o));
    an_export ex = {.size = m.size, .dev = m.dev};
    const fy_cuda *cu = fb_cu_push(m.dev);
    fb_cu_ok(cu->IpcGetMemHandle(&ex.handle, (uintptr_t)m.ptr), "cuIpcGetMemHandle", m.dev);
    fb_cu_pop();
    fb_msg_send(out, AN_MSG_EXPORT, &ex, sizeof(ex));
    uint32_t len;
    free(fb_msg_recv(in, AN_MSG_BYE, &len)); /* the initiator closed its mapping */
    fb_mem_free(&m);
    return FB_EXIT_OK;
}

/* ---- the initiator ---- */

static fb_child an_start_target(an_run *r, int argc, char **argv)
{
    fb_child ch = fb_spawn(argc, argv, "target:0");
    uint32_t len;
    an_export *ex = fb_msg_recv(ch.from, AN_MSG_EXPORT, &len);
    if (len != sizeof(*ex))
        fb_die("bad message from the target");
    const fy_cuda *cu = fb_cu_push(r->dev);
    fy_cu_deviceptr p;
    fb_cu_ok(cu->IpcOpenMemHandle(&p, ex->handle, FY_CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS),
             "cuIpcOpenMemHandle", r->dev);
    fb_cu_pop();
    /* Opened in this process's context of our GPU: reached through it. */
    r->remote = (fb_mem){
        .type = FERRY_MEM_VRAM, .dev = r->dev, .ptr = (uint8_t *)(uintptr_t)p, .size = ex->size};
    printf("ferry-cuda-anchor: %s, GPU %d %s GPU %d (target process), CUDA IPC, "
           "cuMemcpyAsync + event\n",
           r->write ? "WRITE" : "READ", r->dev, r->write ? "->" : "<-", ex->dev);
    free(ex);
    return ch;
}

static void an_setup(an_run *r)
{
    r->dev = fb_gpu_for(0);
    fb_mem_alloc(&r->local, FERRY_MEM_VRAM, r->dev, an_size(r->o));
    const fy_cuda *cu = fb_cu_push(r->dev);
    fb_cu_ok(cu->StreamCreate(&r->stream, FY_CU_STREAM_NON_BLOCKING), "cuStreamCreate", r->dev);
    fb_cu_ok(cu->EventCreate(&r->ev, FY_CU_EVENT_DISABLE_TIMING), "cuEventCreate", r->dev);
    fb_cu_pop();
}

static void an_teardown(an_run *r, fb_child *ch)
{
    const fy_cuda *cu = fb_cu_push(r->dev);
    fb_cu_ok(cu->EventDestroy(r->ev), "cuEventDestroy", r->dev);
    fb_cu_ok(cu->StreamDestroy(r->stream), "cuStreamDestroy", r->dev);
    fb_cu_ok(cu->IpcCloseMemHandle((uintptr_t)r->remote.ptr), "cuIpcCloseMemHandle", r->dev);
    fb_cu_pop();
    fb_msg_send(ch->to, AN_MSG_BYE, NULL, 0);
    fb_mem_free(&r->local);
}

/* One iteration: the copies, one event, a spin until it is done (the
 * context is current). */
static void an_iteration(an_run *r, const fy_cuda *cu, uint64_t block, uint64_t n)
{
    const fb_mem *src = r->write ? &r->local : &r->remote, *dst = r->write ? &r->remote : &r->local;
    for (uint64_t j = 0; j < n; j++)
        fb_cu_ok(cu->MemcpyAsync((uintptr_t)(dst->ptr + j * block),
                                 (uintptr_t)(src->ptr + j * block), block, r->stream),
                 "cuMemcpyAsync", r->dev);
    fb_cu_ok(cu->EventRecord(r->ev, r->stream), "cuEventRecord", r->dev);
    fy_cu_result q;
    while ((q = cu->EventQuery(r->ev)) == FY_CUDA_ERROR_NOT_READY)
        ;
    fb_cu_ok(q, "cuEventQuery", r->dev);
}

/* Average microseconds per iteration of n copies of `block` bytes. */
static double an_measure(an_run *r, uint64_t block, uint64_t n, uint64_t iters, uint64_t warmup)
{
    const fy_cuda *cu = fb_cu_push(r->dev);
    for (uint64_t i = 0; i < warmup; i++)
        an_iteration(r, cu, block, n);
    double t0 = fb_now_us();
    for (uint64_t i = 0; i < iters; i++)
        an_iteration(r, cu, block, n);
    double us = (fb_now_us() - t0) / (double)iters;
    fb_cu_pop();
    return us;
}

/* The copies really moved the pattern: the first block after a step. */
static void an_verify(an_run *r, uint64_t block, uint64_t seed)
{
    const fb_mem *dst = r->write ? &r->remote : &r->local;
    size_t bad;
    uint8_t got;
    if (!fb_mem_check(dst, 0, block, seed, 0, &bad, &got))
        fb_die("the anchor's copy of %llu bytes is wrong at byte %zu (0x%02x)",
               (unsigned long long)block, bad, got);
    fb_mem_zero(dst, 0, block);
}

static void an_row(an_run *r, uint64_t block, const char *method, double us)
{
    uint64_t batch = r->o->batch_size;
    double gbps = (double)(block * batch) / us / 1e3;
    printf("%-20llu%-15llu%-15s%-15.4f%-15.3f\n", (unsigned long long)block,
           (unsigned long long)batch, method, gbps, us);
    fflush(stdout);
    fb_field f[] = {
        {"block_size", NULL, (double)block, -1},
        {"batch_size", NULL, (double)batch, -1},
        {"method", method, 0, 0},
        {"bandwidth_gbps", NULL, gbps, 6},
        {"avg_latency_us", NULL, us, 3},
        {"op_type", r->write ? "WRITE" : "READ", 0, 0},
    };
    if (r->json)
        fb_json_row(r->json, f, sizeof(f) / sizeof(f[0]));
    if (r->csv)
        fprintf(r->csv, "cuMemcpyAsync IPC (%s batch %llu),%llu,%.4f\n", method,
                (unsigned long long)batch, (unsigned long long)block, gbps);
}

static void an_step(an_run *r, uint64_t block)
{
    const an_opts *o = r->o;
    uint64_t div = block > MIB ? o->large_blk_iter_ftr : 1;
    uint64_t iters = o->num_iter / div ? o->num_iter / div : 1, warmup = o->warmup_iter / div;
    uint64_t seed = fb_seed(block, o->batch_size, 0xa7c4);
    fb_mem_fill(r->write ? &r->local : &r->remote, 0, block, seed, 0);
    an_row(r, block, "per_block", an_measure(r, block, o->batch_size, iters, warmup));
    an_verify(r, block, seed);
    if (o->batch_size > 1) {
        uint64_t all = block * o->batch_size;
        fb_mem_fill(r->write ? &r->local : &r->remote, 0, block, seed, 0);
        an_row(r, block, "contiguous", an_measure(r, all, 1, iters, warmup));
        an_verify(r, block, seed);
    }
}

static int an_parent_main(const an_opts *o, int argc, char **argv)
{
    an_run r = {.o = o, .write = !strcasecmp(o->op_type, "WRITE")};
    char why[256];
    if (!fb_vram_usable(why, sizeof(why)))
        fb_exit(FB_EXIT_USAGE, "no usable CUDA driver: %s", why);
    an_setup(&r);
    fb_child ch = an_start_target(&r, argc, argv);
    r.json = fb_open_out(o->json);
    r.csv = fb_open_out(o->anchor_csv);
    if (r.csv)
        fprintf(r.csv, "label,block_size,gbps\n");
    printf("%-20s%-15s%-15s%-15s%-15s\n", "Block Size (B)", "Batch Size", "Method", "B/W (GB/Sec)",
           "Avg Lat. (us)");
    for (uint64_t block = o->start_block_size; block <= o->max_block_size; block *= 2)
        an_step(&r, block);
    fb_close_out(r.json, o->json);
    fb_close_out(r.csv, o->anchor_csv);
    an_teardown(&r, &ch);
    return fb_children_wait();
}

int main(int argc, char **argv)
{
    static an_opts o;
    fb_prog = "ferry-cuda-anchor";
    an_parse(&o, argc, argv);
    an_check(&o);
    return o.fb_role ? an_target_main(&o) : an_parent_main(&o, argc, argv);
}
