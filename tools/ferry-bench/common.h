/* SPDX-License-Identifier: Apache-2.0 */
/* Code shared by ferry-bench and ferry-kvbench: messages, timing and
 * statistics, options and flat TOML files, agents and backends, the
 * processes a run starts and the pipes to them, the end-of-step protocol
 * over notifications, the data pattern, and CSV/JSON rows. */
#ifndef FB_COMMON_H
#define FB_COMMON_H

#include <ferry/ferry.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "tool-common.h"

/* Exit codes of both tools (documented in docs/tools.md). */
#define FB_EXIT_OK       FT_EXIT_OK
#define FB_EXIT_ERROR    FT_EXIT_ERROR    /* setup or transfer failed */
#define FB_EXIT_USAGE    FT_EXIT_USAGE    /* bad or unsupported option */
#define FB_EXIT_MISMATCH FT_EXIT_MISMATCH /* --check_consistency found a bad byte */
#define FB_EXIT_PLOT     FT_EXIT_PLOT     /* --plot cannot run (no python3/matplotlib) */

/* Longest wait for a peer's answer or a transfer, seconds. */
#define FB_TIMEOUT_S 120.0

/* ---- messages ---- */

/* Program name for messages ("ferry-bench"); set by main. */
extern const char *fb_prog;
/* Role tag for messages from spawned processes ("target 1"); NULL: none. */
extern const char *fb_role_tag;

__attribute__((format(printf, 2, 3), noreturn)) void fb_exit(int code, const char *fmt, ...);
__attribute__((format(printf, 1, 2), noreturn)) void fb_die(const char *fmt, ...);
__attribute__((format(printf, 1, 2))) void fb_warn(const char *fmt, ...);
/* Dies with "what: <status text>" when rc is an error; returns rc otherwise. */
ferry_status fb_ok(ferry_status rc, const char *what);
void *fb_alloc(size_t size);           /* zeroed; dies when out of memory */
uint8_t *fb_alloc_pages(size_t bytes); /* page aligned, zeroed */

/* ---- time and statistics ---- */

double fb_now_us(void); /* CLOCK_MONOTONIC: comparable across processes */

typedef struct fb_samples {
    double *v;
    size_t n, cap;
} fb_samples;
void fb_samples_add(fb_samples *s, double v);
void fb_samples_append(fb_samples *dst, const double *v, size_t n);
void fb_samples_clear(fb_samples *s);
void fb_samples_free(fb_samples *s);
double fb_avg(const fb_samples *s);
double fb_p99(fb_samples *s); /* sorts s */

/* ---- options ---- */

typedef enum fb_opt_kind {
    FB_OPT_SIZE, /* uint64_t: 4096, 4K, 4KiB, 1M, 8G (binary units) */
    FB_OPT_UINT, /* uint64_t */
    FB_OPT_STR,  /* const char * */
    FB_OPT_BOOL, /* bool: --x, --x=true|false|1|0, --nox */
} fb_opt_kind;

#define FB_OPT_HIDDEN 1u /* not listed by --help */

typedef struct fb_opt {
    const char *name; /* without dashes, nixlbench's spelling */
    fb_opt_kind kind;
    void *ptr;
    const char *help;
    unsigned flags;
} fb_opt;

/* A table entry for the field `n` of the options struct *s: the option is
 * spelled as the field is named. */
#define FB_OPT_FIELD(s, n, k, h)                                                                   \
    {                                                                                              \
#n, k, &(s)->n, h, 0                                                                       \
    }
#define FB_OPT_HIDDEN_FIELD(s, n, k, h)                                                            \
    {                                                                                              \
#n, k, &(s)->n, h, FB_OPT_HIDDEN                                                           \
    }

bool fb_parse_size(const char *s, uint64_t *out);
bool fb_parse_uint(const char *s, uint64_t *out);
/* Parses argv against a table terminated by a {NULL} entry; `-x`, `--x`,
 * `--x=v`, `--x v`, and `-` for `_` in names are all accepted (gflags and
 * nixlbench's newer CLI). A `--config_file PATH` entry in the table is read
 * first (flat TOML, one key per option), so the command line wins. Bad
 * input exits with FB_EXIT_USAGE. */
void fb_opts_parse(const fb_opt *table, int argc, char **argv);
void fb_opts_usage(FILE *f, const fb_opt *table);

/* ferry's TOML subset (toml.h, docs/tools.md "Configuration files"). */
#include "toml.h"

/* ---- agents and backends ---- */

typedef struct fb_agent_opts {
    const char *name;
    const char *backend;
    const char *params; /* "key=value,key=value" or NULL */
    bool listen;        /* side-channel listener on 127.0.0.1, any port */
    bool progress;      /* progress thread */
    bool telemetry;
} fb_agent_opts;

ferry_agent *fb_agent_new(const fb_agent_opts *o, ferry_backend **be);
/* A segment type by name (option names it in the error); exits
 * FB_EXIT_USAGE for an unknown one. */
ferry_mem_type fb_seg_parse(const char *option, const char *seg);
/* Creates the backend in a throwaway agent and returns its FERRY_CAP_*
 * flags. Exits FB_EXIT_USAGE with one clear line when the backend cannot
 * serve a memory type, when the tools cannot allocate it (FILE, BLOCK,
 * OBJ), or when it is VRAM and there is no usable CUDA driver. Call it
 * before starting processes: the agent is gone again before fork
 * (transports dislike forks). */
uint32_t fb_probe(const char *backend, const char *params, const char *initiator_seg,
                  const char *target_seg);
void fb_deregister(ferry_agent *a, ferry_dlist *regions);
/* Ends the run after ferry_xfer_make with peer failed (rc): a usage error
 * naming the memory types when the backend cannot move them. */
__attribute__((noreturn)) void fb_make_failed(const char *backend, const char *iseg,
                                              const char *tseg, const char *peer, ferry_status rc);
/* Loads this agent's own metadata so it can address itself (loopback). */
void fb_load_self(ferry_agent *a);

/* Waits for a posted request (rc from post). Returns its final status. */
ferry_status fb_xfer_wait(ferry_xfer *x, ferry_status rc);

/* ---- memory: DRAM, VRAM through the CUDA driver (mem.c), or storage ---- */

/* A buffer: DRAM (ptr is host memory) or VRAM of GPU dev, this process's
 * CUDA ordinal (ptr is a device address: never dereference it). */
typedef struct fb_mem {
    ferry_mem_type type;
    int dev;
    uint8_t *ptr;
    size_t size;
    ferry_agent *owner;     /* from ferry_mem_alloc of this agent, which frees it */
    struct fb_store *store; /* FILE, BLOCK, OBJ: where the bytes are (store.c) */
} fb_mem;

/* ---- storage: FILE, BLOCK and OBJ buffers (store.c) ---- */

/* How a storage buffer is laid out and where it goes; see store.c. */
typedef struct fb_store_cfg {
    const char *dir;       /* files are created here (nixlbench's --filepath; "." by default) */
    const char *filenames; /* comma list: these files instead (kept afterwards) */
    unsigned num_files;    /* FILE/BLOCK: files a buffer is spread over, a chunk at a time */
    size_t chunk;          /* FILE/BLOCK: bytes per chunk */
    bool direct;           /* FILE: opened with O_DIRECT; BLOCK: registered so */
    size_t group, per_group, unit, unit_max; /* OBJ: groups of per_group objects of unit bytes */
    ferry_agent *agent;                      /* OBJ: the agent objects are read and written by */
} fb_store_cfg;

bool fb_seg_storage(ferry_mem_type t); /* FILE, BLOCK or OBJ */
bool fb_mem_is_store(const fb_mem *m);
/* Creates the files (or names the objects) of a storage buffer of size bytes. */
void fb_mem_alloc_store(fb_mem *m, ferry_mem_type type, size_t size, const fb_store_cfg *cfg);
/* OBJ: the bytes of an object from now on (ferry-bench's block size). */
void fb_mem_set_unit(fb_mem *m, size_t unit);
/* The address and dev_id a descriptor gives byte off of a buffer (any type). */
void fb_mem_desc(const fb_mem *m, size_t off, uint64_t *addr, uint64_t *dev);
/* The registration list of [off, off+len): one descriptor per chunk or
 * object, with the path or key as metadata. */
ferry_dlist *fb_store_reg_list(const fb_mem *m, size_t off, size_t len);
void fb_store_read(const fb_mem *m, uint8_t *buf, size_t off, size_t len);
void fb_store_write(const fb_mem *m, const uint8_t *buf, size_t off, size_t len);
void fb_store_free(fb_mem *m); /* closes and removes the files it created */

/* True when the CUDA driver (FERRY_CUDA_LIB or libcuda.so.1) works and
 * sees a GPU; why gets the reason otherwise. */
bool fb_vram_usable(char *why, size_t len);
/* GPUs this process sees; dies with a clear line when there is no driver. */
int fb_gpu_count(void);
/* The GPU of the index-th process of a run (initiators first, then
 * targets): its own while there are enough, shared round robin beyond. */
int fb_gpu_for(unsigned index);
/* Zeroed memory of a type (DRAM or VRAM) and size; dies when it cannot. */
void fb_mem_alloc(fb_mem *m, ferry_mem_type type, int dev, size_t size);
/* DRAM from ferry_mem_alloc of agent a (its first backend that allocates):
 * the agent frees it when destroyed, fb_mem_free then only forgets it. */
void fb_mem_alloc_ferry(fb_mem *m, ferry_agent *a, size_t size);
void fb_mem_free(fb_mem *m);
void fb_mem_zero(const fb_mem *m, size_t off, size_t len);
/* A host view of [off, off+len): the memory itself for DRAM; for VRAM a
 * host copy, read from the GPU when `read` (else zeroed). fb_view_done
 * writes the copy back when `write` (complete before it returns) and
 * frees it. */
uint8_t *fb_view(const fb_mem *m, size_t off, size_t len, bool read);
void fb_view_done(const fb_mem *m, uint8_t *view, size_t off, size_t len, bool write);
/* fb_fill / fb_check on a buffer's range (through bounded host copies for
 * VRAM); fb_mem_check sets *bad (from off) and *got on a wrong byte. */
void fb_mem_fill(const fb_mem *m, size_t off, size_t len, uint64_t seed, uint64_t off0);
bool fb_mem_check(const fb_mem *m, size_t off, size_t len, uint64_t seed, uint64_t off0,
                  size_t *bad, uint8_t *got);
void fb_mem_flip(const fb_mem *m, size_t off); /* xor 0xff: --inject_corruption */
/* Registers [off, off+len) of a buffer as one region (its type and GPU). */
ferry_dlist *fb_register(ferry_agent *a, const fb_mem *m, size_t off, size_t len);

/* ---- processes ---- */

/* A process this run started: the same program with a role option. */
typedef struct fb_child {
    pid_t pid;
    int to, from; /* pipe ends in the parent */
} fb_child;

/* Re-executes this program with argv plus `--fb_role=<role>:<in>:<out>`. The
 * child dies with the parent (PDEATHSIG). */
fb_child fb_spawn(int argc, char **argv, const char *role);
/* Parses a role option ("target:3:7:8") into kind, id and the pipe fds. */
bool fb_role_parse(const char *arg, char *kind, size_t kind_len, unsigned *id, int *in, int *out);
/* The worse of two exit codes: errors, then mismatches, plot, usage. */
int fb_exit_worse(int a, int b);
/* Waits for every started child: the worst exit code (FB_EXIT_*). */
int fb_children_wait(void);

/* Length-prefixed messages over the pipes: type, length, bytes. */
void fb_msg_send(int fd, uint32_t type, const void *buf, uint32_t len);
/* Receives a message of the given type (dies on EOF or another type).
 * Returns malloc'd bytes (free them), *len their count. */
void *fb_msg_recv(int fd, uint32_t type, uint32_t *len);

/* ---- peers: side channel and end-of-step notifications ---- */

/* Fetches peer's metadata from its listener on 127.0.0.1:port (retrying
 * until it is up, FB_TIMEOUT_S at most); dies when it cannot. */
void fb_peer_fetch(ferry_agent *a, const char *peer, uint16_t port);
/* fb_peer_fetch, then sends ours back (so it can notify us) and connects
 * now, so no timed transfer pays for it. */
void fb_peer_link(ferry_agent *a, const char *peer, uint16_t port);
void fb_notif_send(ferry_agent *a, const char *peer, const char *msg);
/* Tells peer that step k is over and waits for its answer: true when the
 * peer found the data it checked intact. */
bool fb_step_end(ferry_agent *a, const char *peer, unsigned step);
void fb_bye(ferry_agent *a, const char *peer);

/* A target's side: serves "end" messages until n_peers said bye. on_end
 * checks what the named initiator moved in that step. watch (NULL: none)
 * runs about once a second while no message comes and ends the process
 * when it learns that a peer is gone (a peer started apart dies without
 * taking this process with it). Returns false when any check failed. */
typedef bool (*fb_end_cb)(void *ctx, const char *from, unsigned step);
typedef void (*fb_watch_cb)(void *ctx);
bool fb_serve(ferry_agent *a, unsigned n_peers, fb_end_cb on_end, fb_watch_cb watch, void *ctx);

/* ---- etcd rendezvous: processes started apart (rdv.c) ---- */

/* nixlbench's defaults: its etcd endpoint and group. */
#define FB_ETCD_DEFAULT_ENDPOINTS "http://localhost:2379"
#define FB_ETCD_DEFAULT_GROUP     "default"

typedef struct fb_rdv fb_rdv;

/* nixlbench's runtime options, and how long to wait for the others. */
typedef struct fb_rdv_cli {
    const char *endpoints;    /* --etcd_endpoints: comma-separated URLs */
    const char *runtime_type; /* --runtime_type: ETCD, the only one */
    const char *group;        /* --benchmark_group: keys under /ferry/bench/<group>/ */
    uint64_t timeout_s;       /* --etcd_timeout: longest wait at a barrier */
} fb_rdv_cli;

/* The entries of a tool's option table for them (set timeout_s to
 * FB_TIMEOUT_S before parsing). */
/* clang-format off */
#define FB_RDV_OPTS(cli)                                                                           \
    {"etcd_endpoints", FB_OPT_STR, &(cli)->endpoints,                                              \
     "etcd URLs: this process joins a run whose other processes are started apart", 0},            \
    {"runtime_type", FB_OPT_STR, &(cli)->runtime_type,                                             \
     "ETCD: etcd mode (endpoints default: " FB_ETCD_DEFAULT_ENDPOINTS ")", 0},                     \
    {"benchmark_group", FB_OPT_STR, &(cli)->group,                                                 \
     "etcd: the run this process joins (default: " FB_ETCD_DEFAULT_GROUP ")", 0},                  \
    {"etcd_timeout", FB_OPT_UINT, &(cli)->timeout_s,                                               \
     "etcd: seconds to wait for the run's other processes (default 120)", 0}
/* clang-format on */

/* Resolves them as nixlbench does (--runtime_type ETCD alone: its default
 * endpoint; the group "default") and checks them: exits FB_EXIT_USAGE
 * with a clear line on a runtime other than ETCD, endpoints that do not
 * parse, a group name that is not one key segment (1..64 of
 * [A-Za-z0-9._-]) or a zero timeout. Returns whether etcd mode is on;
 * quiet: no warning about options that apply to etcd mode only. */
bool fb_rdv_cli_check(fb_rdv_cli *cli, bool quiet);
/* Claims the lowest free rank of the group and waits (cli->timeout_s at
 * most) until all world processes have joined with the same options
 * (what decides the messages they exchange). Dies with a clear line when
 * etcd cannot be reached, the group is full, another process disagrees,
 * or the others do not come. The group is left at exit if fb_rdv_leave
 * was not called. */
fb_rdv *fb_rdv_join(const fb_rdv_cli *cli, unsigned world, const char *options);
unsigned fb_rdv_rank(const fb_rdv *r);
/* Waits until every rank has reached the barrier called name. */
void fb_rdv_barrier(fb_rdv *r, const char *name);
/* Values under the group's prefix, on this process's lease. get dies when
 * the key is absent; it returns malloc'd bytes with a NUL after them. */
void fb_rdv_put(fb_rdv *r, const char *name, const void *val, size_t len);
void *fb_rdv_get(fb_rdv *r, const char *name, size_t *len);
/* n numbers as text (the same on every architecture); get dies unless
 * the key holds exactly n. */
void fb_rdv_put_u64s(fb_rdv *r, const char *name, const uint64_t *v, size_t n);
void fb_rdv_get_u64s(fb_rdv *r, const char *name, uint64_t *v, size_t n);
/* This process's agent metadata under md/<rank>; loading a rank's checks
 * that it is the agent expected. */
void fb_rdv_put_md(fb_rdv *r, ferry_agent *a);
void fb_rdv_load_md(fb_rdv *r, ferry_agent *a, unsigned rank, const char *agent);
/* Ends the process when rank has left the group (its key is gone: it
 * exited, or was killed and its lease ran out). */
void fb_rdv_watch(fb_rdv *r, unsigned rank);
/* Revokes the lease: every key of this process goes at once. */
void fb_rdv_leave(fb_rdv *r);

/* ---- data pattern ---- */

/* The pattern is a stream of bytes per seed; byte o of stream s is known to
 * every process without exchanging anything. */
uint64_t fb_seed(uint64_t a, uint64_t b, uint64_t c);
void fb_fill(uint8_t *p, size_t len, uint64_t seed, uint64_t off0);
/* Checks p against the stream from off0: true when intact; otherwise
 * *bad is the offset (from p) of the first wrong byte. */
bool fb_check(const uint8_t *p, size_t len, uint64_t seed, uint64_t off0, size_t *bad);
uint8_t fb_pattern_byte(uint64_t seed, uint64_t off);

/* ---- CSV and JSON rows ---- */

typedef struct fb_field {
    const char *key;
    const char *str; /* a validated identifier, or NULL for num */
    double num;
    int decimals; /* -1: integer */
} fb_field;

void fb_csv_header(FILE *f, const fb_field *fields, size_t n);
void fb_csv_row(FILE *f, const fb_field *fields, size_t n);
/* One JSON object on one line (JSON Lines), with ferry's version, the host
 * and the time. */
void fb_json_row(FILE *f, const fb_field *fields, size_t n);
/* NULL path: NULL; "-": stdout (see ft_out_open); else the file,
 * overwritten. Exits FB_EXIT_USAGE when it cannot. */
FILE *fb_open_out(const char *path);
void fb_close_out(FILE *f, const char *path);

/* ---- which transport carried the data ---- */

/* Catches the UCX backend's "transports to <peer>: ..." line (logged at
 * INFO when it connects to a peer) through a log handler; every other line
 * is shown as the library would at the level the user chose. */
void fb_transport_watch(void);
/* "UCX over TCP (tcp/lo.0)", "UCX over shared memory (sysv/memory.0 ...)",
 * "LOCAL (copies in this process)", or the backend's name when nothing
 * more is known. Into buf. */
const char *fb_transport(const char *backend, char *buf, size_t cap);
/* Prints "transport: <fb_transport>" and, for UCX over TCP, how to get
 * shared memory on one host, on stdout. */
void fb_transport_report(const char *backend, const char *params);

/* ---- data files (models, the plot script) ---- */

/* $env when set, else the first dirs[i]/rel that exists. Returns a
 * malloc'd path (free it) or NULL. */
char *fb_find_file(const char *env, const char *rel, const char *const *dirs, size_t n);

#endif
