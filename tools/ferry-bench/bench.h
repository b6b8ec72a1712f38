/* SPDX-License-Identifier: Apache-2.0 */
/* ferry-bench: nixlbench's sweep over block and batch sizes, between
 * processes this program starts on this host (or within one agent for
 * loopback-only backends such as LOCAL), or between processes started
 * apart that find each other through etcd (bench_etcd.c).
 *
 * Processes: one initiator process per initiator device and one target
 * process per target device (nixlbench's SG mode). The scheme says which
 * initiator moves data with which target; each pairing is a link. A
 * process's buffer holds, per thread, one slot per link it takes part in;
 * a slot holds max_block_size x max_batch_size bytes and a request of a
 * step moves `batch` blocks of `block` bytes from the start of a slot.
 * The buffer is DRAM, or VRAM of the process's GPU (fb_side_gpu, mem.c). */
#ifndef FB_BENCH_H
#define FB_BENCH_H

#include "common.h"

typedef struct fb_link {
    unsigned init, target;     /* process ids on each side */
    unsigned lstride, rstride; /* the link's slot among its initiator's / target's */
} fb_link;

typedef struct fb_topo {
    unsigned ni, nt;
    fb_link *links;
    size_t nlinks;
    unsigned *istrides, *tstrides; /* slots per thread of each initiator / target */
} fb_topo;

typedef struct fb_step {
    unsigned idx;
    uint64_t block, batch;
    uint64_t iters, warmup; /* for all threads together */
} fb_step;

typedef struct fb_config {
    /* nixlbench's options, same names and meanings */
    const char *backend, *backend_params, *device_list;
    const char *initiator_seg_type, *target_seg_type, *op_type, *scheme, *mode;
    const char *worker_type, *config_file;
    fb_rdv_cli etcd; /* --etcd_endpoints, --runtime_type, --benchmark_group, --etcd_timeout */
    /* storage (nixlbench's names; params of the POSIX and OBJ backends) */
    const char *filepath, *filenames, *posix_api_type, *posix_kernel_queue_size;
    const char *posix_ios_pool_size, *obj_access_key, *obj_secret_key, *obj_session_token;
    const char *obj_bucket_name, *obj_scheme, *obj_region, *obj_endpoint_override;
    const char *obj_req_checksum, *obj_ca_bundle, *obj_crt_min_limit, *obj_accelerated_type;
    const char *gds_batch_pool_size, *gds_batch_limit, *gds_mt_num_threads; /* GDS, GDS_MT */
    bool obj_use_virtual_addressing, obj_accelerated_enable;
    uint64_t total_buffer_size, start_block_size, max_block_size, start_batch_size, max_batch_size;
    uint64_t num_iter, warmup_iter, large_blk_iter_ftr, num_threads;
    uint64_t num_initiator_dev, num_target_dev, num_files, progress_threads;
    bool check_consistency, recreate_xfer, reregister_mem, enable_pt, storage_enable_direct;
    bool mem_alloc; /* DRAM buffers from ferry_mem_alloc (the backend's own memory) */
    /* ferry-bench's own */
    const char *csv, *json, *plot, *anchor_csv, *fb_role;
    bool inject_corruption, no_progress;
    /* derived */
    ferry_xfer_op op;
    ferry_mem_type itype, ttype; /* --initiator_seg_type, --target_seg_type */
    bool loopback;               /* the backend only reaches its own agent */
    char params[1024];           /* backend params, device_list folded in */
    fb_topo topo;
    fb_step *steps;
    size_t nsteps;
} fb_config;

/* bench_config.c: options, validation, topology, steps */
void fb_config_parse(fb_config *c, int argc, char **argv);
/* Checks what needs no backend; exits FB_EXIT_USAGE with a clear line. */
void fb_config_check(fb_config *c);
/* Checks the backend, memory types and params in a throwaway agent. */
void fb_config_probe(fb_config *c);
void fb_config_print(const fb_config *c);
void fb_config_free(fb_config *c);
uint64_t fb_inject_offset(const fb_config *c);

/* bench_side.c: a process's buffer, its slots, the pattern in them */
typedef struct fb_side {
    bool initiator;
    unsigned id, strides;
    size_t slot;
    fb_mem mem;            /* DRAM, or VRAM of this process's GPU */
    ferry_dlist **regions; /* one region per thread */
} fb_side;

/* The GPU of a side's process (VRAM only; -1 for DRAM): initiator i is
 * process i, target k process ni + k, see fb_gpu_for. */
int fb_side_gpu(const fb_config *c, bool initiator, unsigned id);
/* Allocates the side's buffer (from agent a with --mem_alloc). */
void fb_side_init(fb_side *s, const fb_config *c, bool initiator, unsigned id, ferry_agent *a);
void fb_side_register(fb_side *s, const fb_config *c, ferry_agent *a);
void fb_side_deregister(fb_side *s, const fb_config *c, ferry_agent *a);
void fb_side_free(fb_side *s, const fb_config *c);
/* Before a step, untimed: a storage side's objects take the step's block
 * size, and a source side's objects get the step's pattern. */
void fb_side_step(fb_side *s, const fb_config *c, const fb_step *st);
/* Byte offset of the slot of link l for thread th in this side. */
size_t fb_side_slot(const fb_side *s, const fb_link *l, unsigned th);
bool fb_link_has(const fb_side *s, const fb_link *l, unsigned peer);
/* Received slots shared with peer (or every peer: FB_ALL) are cleared for
 * the next step; check verifies them first (returns false on a bad byte). */
#define FB_ALL 0xffffffffu
void fb_side_clear(fb_side *s, const fb_config *c, unsigned peer, const fb_step *st);
bool fb_side_check(fb_side *s, const fb_config *c, unsigned peer, const fb_step *st);
bool fb_side_receives(const fb_side *s, const fb_config *c);
/* After a step: check (with --check_consistency) and clear. */
bool fb_side_settle(fb_side *s, const fb_config *c, unsigned peer, const fb_step *st);

/* Per-step results of one initiator, merged across threads and processes. */
typedef struct fb_result {
    double t_start, t_end, bytes;
    uint32_t bad;
    fb_samples lat, prep, post, xfer;
} fb_result;

void fb_result_merge(fb_result *into, const fb_result *from);
void fb_result_free(fb_result *r);
void fb_result_send(int fd, const fb_result *r);
void fb_result_recv(int fd, fb_result *r);

/* Where a target process is: its listener and its buffer. */
typedef struct fb_target_info {
    uint64_t base, size;
    int32_t dev;   /* its GPU (its own CUDA ordinal), VRAM only */
    uint16_t port; /* its side-channel listener; 0: none, its metadata came through etcd */
} fb_target_info;

/* Pipe message types. */
enum { FB_MSG_TARGET = 1, FB_MSG_TARGETS, FB_MSG_READY, FB_MSG_GO, FB_MSG_RESULT };

/* What an initiator does around each step: wait for the others before it,
 * hand its results over after it. */
typedef struct fb_sink {
    void (*begin)(void *ctx, const fb_step *st);
    void (*done)(void *ctx, const fb_step *st, fb_result *r);
    void *ctx;
    /* etcd mode: once the initiator's memory is registered, makes its
     * agent and the targets' known to each other and returns where the
     * targets are (owned by link_ctx). NULL: the targets are given. */
    const fb_target_info *(*link)(void *link_ctx, ferry_agent *a);
    void *link_ctx;
} fb_sink;

/* bench_init.c: an initiator; targets NULL in loopback or when sink->link
 * finds them. Returns FB_EXIT_*. */
int fb_initiator_run(const fb_config *c, unsigned id, const fb_target_info *targets,
                     const fb_sink *sink);

/* How a target meets its initiators: announce tells where it is (over a
 * pipe to the process that started it, or through etcd); watch (NULL:
 * none) is fb_serve's, for initiators started apart. */
typedef struct fb_meet {
    void (*announce)(void *ctx, ferry_agent *a, const fb_target_info *info);
    fb_watch_cb watch;
    void *ctx;
} fb_meet;

/* bench_target.c: a target process: announces itself, then serves its
 * initiators until they say bye. */
int fb_target_main(const fb_config *c, unsigned id, const fb_meet *meet);

/* bench_etcd.c: this process's part of a group started apart
 * (--etcd_endpoints): the initiator (rank 0) or a target. */
int fb_etcd_main(const fb_config *c);

/* bench_report.c: the table, CSV, JSON, progress and plot */
typedef struct fb_report {
    const fb_config *cfg;
    FILE *csv, *json;
    char *json_tmp; /* rows for --plot when --json was not given */
    bool tty;
    bool bad; /* a step failed its consistency check */
} fb_report;

void fb_report_begin(fb_report *r, const fb_config *c);
/* The sink of an initiator that reports itself: progress, then its row. */
fb_sink fb_report_sink(fb_report *r);
void fb_report_row(fb_report *r, const fb_step *st, fb_result *res);
void fb_report_progress(fb_report *r, const fb_step *st);
int fb_report_end(fb_report *r); /* plots; returns FB_EXIT_* */
void fb_plot_check(const fb_config *c);

#endif
