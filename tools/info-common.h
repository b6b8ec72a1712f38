/* SPDX-License-Identifier: Apache-2.0 */
/* Shared code of ferry-info and ferry-check: what they both need to learn
 * about an installation (the plugin search path, every plugin and why one is
 * refused, a backend instance's capabilities, UCX's transports through
 * ucx_info, the CUDA driver and cuFile, the build's configuration), plus a
 * JSON document builder (jansson) and parsers for sizes and host:port.
 *
 * Everything here goes through libferry's public API, except what that API
 * does not say: where a refused plugin lives and why it was refused. For
 * those the plugin search path is walked here with the loader's rules
 * (src/core/plugin_loader.c) and the file is opened to read its descriptor's
 * ABI version (the file-name rule is the loader's own function,
 * src/common/plugin_name.c). GPUs are found by opening the driver here (never linked), so
 * the tools work, and say so, on hosts without CUDA. */
#ifndef FERRY_TOOLS_INFO_COMMON_H
#define FERRY_TOOLS_INFO_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ferry/ferry.h"
#include "tool-common.h"

/* ---- the build (generated ferry-build-config.h) ---- */

typedef struct fi_built_plugin {
    const char *name;
    const char *how; /* meson's summary: "builtin", "plugin (UCX 1.13.1)", "disabled: ..." */
    bool shared;     /* a libferry_plugin_<name>.so should be in the plugin dir */
} fi_built_plugin;

typedef struct fi_build {
    const char *version, *buildtype, *compiler, *prefix, *plugin_install_dir;
    const char *opt_ucx, *opt_cuda, *opt_fuzzing, *opt_tests, *sanitize, *ucx_prefix;
    const fi_built_plugin *plugins;
    size_t num_plugins;
} fi_build;

const fi_build *fi_build_get(void);

/* ---- the plugin search path ---- */

#define FI_MAX_DIRS 32

typedef struct fi_dir {
    char path[1024];
    bool exists;      /* a directory that can be read */
    int err;          /* errno of opendir when !exists */
    int plugin_files; /* libferry_plugin_*.so files in it */
} fi_dir;

typedef struct fi_search {
    bool from_env;        /* a plugin dir variable is set (else the dirs beside libferry) */
    const char *env_name; /* which of the two, NULL when neither */
    char lib[1024];       /* libferry's own path, "" when unknown */
    fi_dir dirs[FI_MAX_DIRS];
    size_t num_dirs;
} fi_search;

void fi_search_get(fi_search *s);
/* The variable that names the plugin dirs: "FERRY_PLUGIN_DIR", else
 * "NIXL_PLUGIN_DIR" when only that one is set; NULL when neither is. */
const char *fi_plugin_dir_env(void);

/* ---- plugins ---- */

typedef struct fi_plugin {
    char name[64];
    char path[1024];     /* "builtin", the .so, or "" when not found */
    uint32_t abi;        /* descriptor's ABI version, 0 when unknown */
    ferry_status status; /* OK: loadable; else why libferry refuses it */
    char error[512];     /* the reason, for a refused plugin */
    uint32_t mem_mask;   /* declared memory types (FERRY_MEM_MASK bits) */
    const ferry_param_spec *params;
    size_t num_params;
    /* A backend instance of it, made by fi_plugin_instantiate. */
    bool tried, created;
    ferry_status create_rc;
    uint32_t caps, rt_mem_mask;
    const ferry_param *values;
    size_t num_values;
} fi_plugin;

/* Every plugin libferry lists, in its order; *out is malloc'd. */
ferry_status fi_plugins_collect(ferry_agent *agent, fi_plugin **out, size_t *count);
/* Creates a backend of a loadable plugin in agent (a scratch agent: one
 * backend per plugin per agent) and records its runtime capabilities. */
void fi_plugin_instantiate(ferry_agent *agent, fi_plugin *p);
/* "LOCAL REMOTE NOTIF PROGRESS" / "DRAM VRAM", into buf. */
const char *fi_caps_str(uint32_t caps, char *buf, size_t cap);
const char *fi_mem_str(uint32_t mask, char *buf, size_t cap);
/* A scratch agent for probing (no listener, no progress thread). */
ferry_agent *fi_scratch_agent(const char *prog);

/* ---- UCX (through ucx_info) ---- */

#define FI_MAX_TLS  64
#define FI_MAX_DEVS 32

typedef struct fi_ucx_dev {
    char name[64];
    char type[32]; /* "network", "intra-node", "loopback", "accelerator", ... */
} fi_ucx_dev;

typedef struct fi_ucx_tl {
    char name[64];
    fi_ucx_dev devs[FI_MAX_DEVS];
    size_t num_devs;
} fi_ucx_tl;

typedef struct fi_ucx {
    char ucx_info[1024]; /* path of the program, "" when not found */
    char version[64];
    bool ok; /* ucx_info -d ran and was parsed */
    char error[1200];
    fi_ucx_tl tls[FI_MAX_TLS];
    size_t num_tls;
} fi_ucx;

/* Finds ucx_info (FERRY_UCX_INFO, PATH, then the UCX the build used) and
 * runs -v and -d, bounded in time. */
void fi_ucx_probe(fi_ucx *u);
const fi_ucx_tl *fi_ucx_find_tl(const fi_ucx *u, const char *name);
bool fi_ucx_has_dev(const fi_ucx *u, const char *dev);

/* ---- libfabric providers (fi_info) ---- */

#define FI_MAX_PROVS   32
#define FI_MAX_DOMAINS 16

typedef struct fi_fab_prov {
    char name[64]; /* "tcp;ofi_rxm", "shm", "efa" */
    char domains[FI_MAX_DOMAINS][64];
    size_t num_domains;
} fi_fab_prov;

typedef struct fi_fab {
    char fi_info[1024]; /* path of the program, "" when not found */
    bool ok;            /* fi_info ran (no provider at all is ok too) */
    char error[1200];
    fi_fab_prov provs[FI_MAX_PROVS];
    size_t num_provs;
} fi_fab;

/* Runs fi_info (FERRY_FI_INFO, else PATH) for the providers that offer
 * what the LIBFABRIC backend needs (reliable datagrams with RMA), and
 * their domains; bounded in time. */
void fi_fab_probe(fi_fab *f);

/* ---- GPUs (libcuda opened here) and cuFile ---- */

#define FI_MAX_GPUS 64

typedef struct fi_gpu_dev {
    char name[128];
    char uuid[48];
    char pci[32];
    uint64_t mem_bytes;
    int cc_major, cc_minor;
} fi_gpu_dev;

typedef struct fi_gpu {
    char lib[1024];     /* the driver library tried */
    bool driver;        /* it opened and has the entry points */
    bool ok;            /* cuInit succeeded */
    int driver_version; /* e.g. 12040; 0 when unknown (fi_cuda_version_str) */
    char error[1200];
    int count;
    fi_gpu_dev devs[FI_MAX_GPUS];
    /* cuFile (GPUDirect Storage) */
    char cufile_lib[1024];
    bool cufile;
    char cufile_error[1200];
    bool nvidia_fs; /* the nvidia_fs kernel module is loaded */
} fi_gpu;

void fi_gpu_probe(fi_gpu *g);
/* "12.4", or "unknown" when the driver did not say. */
const char *fi_cuda_version_str(int driver_version, char *buf, size_t cap);

/* ---- running a program ---- */

/* Runs argv[0] (a path) with stdout captured into *out (malloc'd, NUL
 * terminated), stderr discarded, killed after timeout_ms. Returns the exit
 * status, or -1 when it could not run or timed out (why says which). */
int fi_run(char *const argv[], int timeout_ms, char **out, char *why, size_t why_cap);
/* The first executable named prog on PATH, into buf; false when none. */
bool fi_which(const char *prog, char *buf, size_t cap);

/* ---- parsing ---- */

/* 4096, 4K, 4KB, 4KiB, 1M, 64MiB, 8G, 1T (binary units). */
bool fi_parse_size(const char *s, uint64_t *out);
/* "1.5 GiB" style, into buf. */
const char *fi_size_str(uint64_t bytes, char *buf, size_t cap);
/* host:port, [v6]:port, http://host:port/path, host (default_port). */
bool fi_parse_endpoint(const char *s, uint16_t default_port, char *host, size_t host_cap,
                       uint16_t *port);

/* ---- JSON ---- */

#define FJ_MAX_DEPTH 32

/* A document built in memory (jansson) and written by fj_end, with
 * ferry's version, the host and the time added (tool-common.h). */
typedef struct fi_json {
    FILE *f;
    json_t *stack[FJ_MAX_DEPTH]; /* [0]: the document; [depth]: open container */
    int depth;
} fi_json;

void fj_begin(fi_json *j, FILE *f);       /* the top-level object */
bool fj_end(fi_json *j);                  /* writes it; false when that failed */
void fj_obj(fi_json *j, const char *key); /* key NULL inside an array */
void fj_arr(fi_json *j, const char *key);
void fj_close_obj(fi_json *j);
void fj_close_arr(fi_json *j);
void fj_str(fi_json *j, const char *key, const char *v); /* v NULL: null */
void fj_int(fi_json *j, const char *key, long long v);
void fj_bool(fi_json *j, const char *key, bool v);

#endif
