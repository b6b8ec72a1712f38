/* SPDX-License-Identifier: Apache-2.0 */
/* The CUDA plugin's shared structures (see cuda.c for the design). */
#ifndef FY_CUDA_INTERNAL_H
#define FY_CUDA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cuda_meta.h"
#include "cuda_plan.h"
#include "fyp_chan.h"
#include "fyp_list.h"
#include "ferry/plugin.h"
#include "fy_cuda_kernel.h"
#include "gpu/gpu.h"

#ifndef FY_CUDA_PLUGIN_NAME
#define FY_CUDA_PLUGIN_NAME "CUDA"
#endif

#define FY_CU_MAX_DEVS    64
#define FY_CU_MAX_STREAMS 16
#define FY_CU_PIN_CACHE   8  /* pinned index buffers kept for reuse */
#define FY_CU_EVENT_CACHE 32 /* completion events kept per GPU for reuse */

#define fy_cu_log(be, level, ...) (be)->host->log((be)->host->agent_ctx, (level), __VA_ARGS__)

typedef enum fy_cu_mode { FY_CU_MODE_KERNEL, FY_CU_MODE_CE } fy_cu_mode;

/* One visible GPU, set up on first use: a process using one GPU of eight
 * never makes contexts or streams on the other seven. */
typedef struct fy_cu_dev {
    int ordinal;
    bool ready;
    fy_cu_device dev;
    fy_cu_context ctx; /* primary context, retained */
    uint8_t uuid[16];
    int sm_count;
    fy_cu_stream streams[FY_CU_MAX_STREAMS];
    unsigned next_stream;
    fy_cu_stream upload; /* uploads of item arrays at prep, nothing else */
    fy_cu_mempool pool;  /* item arrays; NULL: cuMemAlloc/cuMemFree */
    bool kernel_tried;
    ferry_status kernel_status; /* loading the module: OK or NOT_SUPPORTED */
    fy_cu_module module;
    fy_cu_function k_items, k_inline, k_strided;
    uint64_t peer_tried, peer_ok;          /* per ordinal: peer access asked / granted */
    fy_cu_event events[FY_CU_EVENT_CACHE]; /* of released requests */
    unsigned nevents;
} fy_cu_dev;

struct fy_cu_req;
struct fy_cu_remote;

/* Pinned host memory the copy kernels read directly (cuda_pin.c). */
typedef struct fy_cu_pin {
    void *p;
    size_t cap;
    struct fy_cu_dev *dev; /* whose context allocated it */
} fy_cu_pin;

typedef struct fy_cu {
    const ferry_plugin_host *host;
    const fy_cuda *cu;
    /* params */
    fy_cu_mode mode;
    uint64_t ce_threshold; /* kernel mode: segments this large use copy engines; 0: none */
    uint64_t chunk;        /* kernel items at most this large; 0: adaptive */
    unsigned nstreams;
    bool batch;               /* cuMemcpyBatchAsync when the driver has it */
    fy_cu_stream user_stream; /* param "stream": transfers wait for its work */
    fy_cu_event join;         /* recorded on user_stream at each post */
    /* devices */
    fy_cu_dev devs[FY_CU_MAX_DEVS];
    int ndev;
    /* who we are, for peers on this host */
    fyp_ident self;
    fyp_chan chan; /* notifications (plugins/common/fyp_chan.h) */
    /* requests whose post has not been seen complete */
    fyp_link *inflight;
    uint64_t last_drain_ns;          /* socket reads are spaced while requests run */
    uint64_t pinned_bytes;           /* DRAM pinned by this backend (cuMemHostRegister) */
    fy_cu_pin pins[FY_CU_PIN_CACHE]; /* index buffers of released requests */
    size_t npins;
    bool core_stages; /* the core has asked for index memory (xfer_idx_alloc): from then
                       * on every strided request's indices are in memory we lent */
} fy_cu;

/* A local region. */
typedef struct fy_cu_region {
    ferry_mem_type type;
    uint64_t addr, len;
    int ordinal; /* VRAM: its GPU; DRAM: -1 */
    bool pinned; /* DRAM this backend pinned (unpinned at dereg) */
} fy_cu_region;

/* A peer's allocation opened through CUDA IPC in one of our contexts. */
typedef struct fy_cu_map {
    struct fy_cu_map *next;
    int exec; /* ordinal of the context it is open in */
    fy_cu_ipc_handle handle;
    fy_cu_deviceptr ptr; /* where the peer's allocation base is, for us */
    unsigned refs;
} fy_cu_map;

typedef struct fy_cu_remote {
    fy_cu *be;
    char name[FYP_NAME_MAX + 1];
    bool self;         /* this agent (loopback) */
    bool same_process; /* another agent of this process: its addresses are ours */
    fyp_ident conn;
    fyp_chan_addr addr; /* its notification socket */
    bool dead;
    uint64_t next_check_ns; /* pid liveness checks are rate-limited */
    fy_cu_map *maps;
} fy_cu_remote;

/* A peer's region. */
typedef struct fy_cu_rregion {
    fy_cu_pub pub;
    int ordinal;    /* our ordinal of its GPU (same process), else -1 */
    fy_cu_map *map; /* IPC mapping, opened on first use */
} fy_cu_rregion;

enum { FY_CU_IDLE, FY_CU_RUNNING, FY_CU_DONE, FY_CU_FAILED };

/* A prepared request. */
typedef struct fy_cu_req {
    fy_cu *be;
    const ferry_plugin_xfer *px;
    fy_cu_remote *remote;
    fy_cu_dev *dev; /* the GPU that runs it */
    fy_cu_stream stream;
    fy_cu_event done;
    /* the plan: copy-engine copies and kernel items */
    fy_cu_item *ce;
    size_t nce;
    fy_cu_deviceptr *ce_dst, *ce_src; /* batch arrays (NULL without batch) */
    size_t *ce_len;
    fy_cu_inline_args inl;   /* items when few */
    fy_cu_deviceptr d_items; /* items in device memory when many */
    fy_cu_event uploaded;    /* recorded on the upload stream after them */
    bool upload_joined;      /* the request's stream waits for that event */
    size_t nitems;
    bool d_pooled;
    fy_cu_grid grid;
    /* a strided request (cuda_strided.c): items computed on the GPU */
    bool strided;
    fy_cu_strided_args sargs;
    fy_cu_pin idx;         /* its own copy of the index arrays (none when lent) */
    uint64_t idx_l, idx_r; /* the arrays the kernel reads: local, remote */
    /* state */
    int state;
    ferry_status result;
    bool gpu_busy;     /* work queued and not yet seen complete */
    bool notif_due;    /* data complete, notification not sent yet */
    const void *notif; /* the core's, valid until the next post or release */
    size_t notif_len;
    fyp_link link; /* in be->inflight */
    char err[256];
} fy_cu_req;

/* cuda_dev.c */
ferry_status fy_cu_dev_ready(fy_cu *be, int ordinal, fy_cu_dev **out);
ferry_status fy_cu_dev_kernel(fy_cu *be, fy_cu_dev *d);
ferry_status fy_cu_dev_peer(fy_cu *be, fy_cu_dev *d, int other);
void fy_cu_dev_fini(fy_cu *be, fy_cu_dev *d);
fy_cu_stream fy_cu_dev_stream(fy_cu_dev *d, unsigned n);
fy_cu_result fy_cu_dev_event_take(fy_cu *be, fy_cu_dev *d, fy_cu_event *out);
void fy_cu_dev_event_give(fy_cu *be, fy_cu_dev *d, fy_cu_event ev);
bool fy_cu_push(fy_cu *be, fy_cu_dev *d);
void fy_cu_pop(fy_cu *be);
int fy_cu_default_ordinal(const fy_cu *be);

/* cuda_reg.c */
ferry_status fy_cu_reg(void *priv, ferry_mem_type type, const ferry_desc *desc, const void *meta,
                       size_t meta_len, void **region, void **pub, size_t *pub_len);
void fy_cu_dereg(void *priv, void *region);

/* cuda_remote.c */
ferry_status fy_cu_conn_info(void *priv, void **info, size_t *len);
ferry_status fy_cu_remote_load(void *priv, const char *name, uint64_t uid, const void *info,
                               size_t len, void **remote);
void fy_cu_remote_unload(void *priv, void *remote);
ferry_status fy_cu_rregion_load(void *priv, void *remote, ferry_mem_type type,
                                const ferry_desc *desc, const void *pub, size_t pub_len,
                                void **rregion);
void fy_cu_rregion_unload(void *priv, void *remote, void *rregion);
ferry_status fy_cu_map_get(fy_cu *be, fy_cu_remote *r, fy_cu_rregion *rr, fy_cu_dev *exec,
                           fy_cu_deviceptr *base, char *err, size_t cap);
bool fy_cu_remote_alive(fy_cu_remote *r);
ferry_status fy_cu_notify(fy_cu *be, fy_cu_remote *r, const void *msg, size_t len, bool wait);

/* cuda_pin.c */
ferry_status fy_cu_pin_take(fy_cu *be, fy_cu_dev *d, size_t bytes, fy_cu_pin *out);
void fy_cu_pin_give(fy_cu *be, fy_cu_pin *pin);
ferry_status fy_cu_pin_lend(fy_cu *be, fy_cu_dev *d, size_t bytes, void **buf);
void fy_cu_pin_return(fy_cu *be, void *buf);
void fy_cu_pin_fini(fy_cu *be);

/* cuda_strided.c */
ferry_status fy_cu_xfer_prep_strided(void *priv, const ferry_plugin_sxfer *sx, void **handle);
ferry_status fy_cu_xfer_idx_alloc(void *priv, const ferry_plugin_sxfer *sx, size_t bytes,
                                  void **buf);
void fy_cu_xfer_idx_free(void *priv, void *buf);

/* cuda_xfer.c */
ferry_status fy_cu_req_err(fy_cu_req *q, ferry_status rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
ferry_status fy_cu_addr_remote(fy_cu_req *q, const ferry_plugin_seg *s, uint64_t *out,
                               bool *kernel_ok);
ferry_status fy_cu_req_event(fy_cu_req *q);
void fy_cu_req_free(fy_cu_req *q);
ferry_status fy_cu_xfer_prep(void *priv, const ferry_plugin_xfer *px, void **handle);
ferry_status fy_cu_xfer_post(void *priv, void *handle, const void *notif, size_t notif_len);
ferry_status fy_cu_xfer_check(void *priv, void *handle);
ferry_status fy_cu_xfer_release(void *priv, void *handle);
const char *fy_cu_xfer_error(void *priv, void *handle);
size_t fy_cu_progress_reqs(fy_cu *be);

#endif
