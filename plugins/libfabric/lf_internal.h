/* SPDX-License-Identifier: Apache-2.0 */
/* The LIBFABRIC plugin's shared structures (see lf.c for the design). */
#ifndef FY_LF_INTERNAL_H
#define FY_LF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_eq.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include "ferry/plugin.h"
#include "fyp_ident.h"
#include "fyp_list.h"

#define fy_lf_log(be, level, ...) (be)->host->log((be)->host->agent_ctx, (level), __VA_ARGS__)

#define FY_LF_ADDR_MAX  256u /* fi_getname bytes we accept from a peer */
#define FY_LF_WINDOW    64u  /* RMA operations one request keeps in flight */
#define FY_LF_NOTIF_HDR 12u  /* magic u32 | name_len u16 | 0 u16 | msg_len u32 */
#define FY_LF_NOTIF_BUF (FY_LF_NOTIF_HDR + FERRY_NAME_MAX + FERRY_NOTIF_MAX_LEN)

#define FY_LF_RAILS_MAX 32u /* domains (NICs) one backend stripes over */

/* What a completion's context belongs to. */
typedef enum { FY_LF_OP_RMA, FY_LF_OP_SEND, FY_LF_OP_RECV } fy_lf_op_kind;

struct fy_lf_req;

/* The context of one posted operation: the provider's scratch space first
 * (FI_CONTEXT2 mode), then who waits for it. req is NULL once its request
 * was released with the operation still out (see fy_lf_orphan). */
typedef struct fy_lf_op {
    struct fi_context2 fctx;
    fy_lf_op_kind kind;
    struct fy_lf_req *req;
    uint32_t slot; /* index in its owner's array */
    uint32_t rail; /* RMA: the rail it went on ... */
    uint64_t len;  /* ... and its bytes, counted there once it completed */
    bool busy;
} fy_lf_op;

/* Buffers of notifications, in one registered block (FI_MR_LOCAL
 * providers need a descriptor for them too). */
typedef struct fy_lf_bufs {
    uint8_t *mem;
    size_t count;
    struct fid_mr *mr;
    void *desc;
    fy_lf_op *ops;
} fy_lf_bufs;

struct fy_lf;

/* One rail: a domain (a NIC, or for tcp a network interface) with its own
 * endpoint, address vector and completion queue. A backend has one or
 * more (the `rails` param); notifications go on rail 0. */
typedef struct fy_lf_rail {
    struct fy_lf *be;
    uint32_t index;
    char name[64]; /* the domain asked for; "" for the provider's first */
    struct fi_info *info;
    struct fid_fabric *fabric;
    struct fid_domain *domain;
    struct fid_av *av;
    struct fid_cq *cq;
    struct fid_ep *ep;
    int wait_fd;               /* the CQ's wait object, -1 when the provider has none */
    bool virt_addr;            /* FI_MR_VIRT_ADDR: remote addresses are virtual */
    bool mr_local;             /* FI_MR_LOCAL: local buffers need a descriptor */
    bool mr_bind_ep;           /* FI_MR_ENDPOINT: regions are bound to the endpoint */
    bool prov_key;             /* FI_MR_PROV_KEY: the provider picks keys, else next_key */
    bool mr_rma_event;         /* FI_MR_RMA_EVENT: regions are bound to rma_cntr */
    struct fid_cntr *rma_cntr; /* RMA served to peers (FI_RMA_EVENT), or NULL */
    uint64_t rma_served;       /* its value at the last progress */
    uint64_t write_flags;      /* FI_REMOTE_CQ_DATA where the target has no wait fd */
    uint64_t rma_bytes;        /* bytes of this side's RMA completed on this rail */
    uint8_t addr[FY_LF_ADDR_MAX];
    size_t addr_len;
} fy_lf_rail;

typedef struct fy_lf {
    const ferry_plugin_host *host;
    /* params */
    char provider[64];
    uint64_t timeout_ms; /* an RMA operation without progress for this long fails */
    uint64_t release_ms; /* release waits this long for operations still out */
    uint64_t stripe_min; /* striping_threshold: segments this long are striped */
    fy_lf_rail rails[FY_LF_RAILS_MAX];
    uint32_t nrails;
    uint32_t next_rail; /* the rail of the next segment too short to stripe */
    int wait_fd;        /* rail 0's, or an epoll set of every rail's; -1: none */
    int epoll_fd;       /* that set (several rails), or -1 */
    uint64_t next_key;
    fyp_ident self;
    fy_lf_bufs rx, tx;  /* notifications received, and being sent (rail 0) */
    fyp_link *active;   /* requests with work left for progress */
    fy_lf_op **orphans; /* contexts of released requests still out */
    size_t norphans, orphans_cap;
} fy_lf;

/* A peer's end of one rail. fi_addr changes when its connection is torn
 * down and made anew. */
typedef struct fy_lf_peer_rail {
    fi_addr_t fi_addr;
    uint8_t addr[FY_LF_ADDR_MAX];
    size_t addr_len;
} fy_lf_peer_rail;

/* A peer, reached over the rails both sides have (the first nrails of
 * each: rail i to rail i). */
typedef struct fy_lf_remote {
    fy_lf *be;
    char name[FERRY_NAME_MAX + 1];
    fyp_ident id;
    bool pid_known; /* same boot and pid namespace: its pid tells liveness */
    bool dead;
    uint64_t next_check_ns;
    uint64_t reset_ns; /* our last teardown of its connection */
    uint32_t nrails;
    fy_lf_peer_rail rails[FY_LF_RAILS_MAX];
} fy_lf_remote;
/* Operations canceled this soon after our own teardown are its doing. */
#define FY_LF_RESET_NS 1000000000u

/* A local region: its memory region and key on every rail. */
typedef struct fy_lf_region {
    uint64_t addr, len;
    uint32_t nrails;
    struct {
        struct fid_mr *mr;
        void *desc;
    } rail[];
} fy_lf_region;

/* What a peer publishes for one region: reached at [addr, addr + len),
 * addressed as base + offset when the provider has no FI_MR_VIRT_ADDR,
 * with key[i] on its rail i. */
typedef struct fy_lf_pub {
    uint64_t addr, len;
    uint32_t nkeys;
    uint64_t key[];
} fy_lf_pub;
/* magic u32 | addr u64 | len u64 | key u64 per rail (one rail: 28 bytes) */
#define FY_LF_PUB_HDR 20u

/* A prepared request. */
typedef struct fy_lf_req {
    fy_lf *be;
    const ferry_plugin_xfer *px;
    fy_lf_remote *remote;
    size_t seg;         /* next segment to issue ... */
    uint64_t off;       /* ... and the offset in it */
    uint64_t stripe;    /* that segment's bytes per rail (all of it when not striped) */
    uint32_t rail0;     /* the rail of its first stripe */
    size_t inflight;    /* RMA operations out */
    bool notif_due;     /* data done, notification still to send */
    bool notif_out;     /* notification posted, not completed */
    ferry_status state; /* NOT_POSTED, IN_PROGRESS, OK, or the error */
    const void *notif;
    size_t notif_len;
    uint64_t last_ns; /* last completion or issue: the stall clock */
    fy_lf_op *ops;    /* FY_LF_WINDOW contexts */
    uint32_t free[FY_LF_WINDOW];
    uint32_t nfree;
    fyp_link link; /* in be->active */
    char err[FERRY_NAME_MAX + 320];
} fy_lf_req;

/* lf.c */
uint64_t fy_lf_now_ns(void);
/* Reads every rail's completion queue and dispatches; returns entries read. */
size_t fy_lf_cq_drain(fy_lf *be);

/* lf_rail.c: opening and closing one rail, the wait set over them all. */
ferry_status fy_lf_rail_open(fy_lf_rail *rail);
void fy_lf_rail_close(fy_lf_rail *rail);
ferry_status fy_lf_wait_set(fy_lf *be);
void fy_lf_wait_set_close(fy_lf *be);
bool fy_lf_rails_trywait(fy_lf *be);

/* lf_mem.c */
ferry_status fy_lf_reg(void *priv, ferry_mem_type type, const ferry_desc *desc, const void *meta,
                       size_t meta_len, void **region, void **pub, size_t *pub_len);
void fy_lf_dereg(void *priv, void *region);
ferry_status fy_lf_mr(fy_lf_rail *rail, void *buf, size_t len, uint64_t access, struct fid_mr **mr);
/* How many times a region is registered: once per rail (the ledger counts each). */
uint32_t fy_lf_reg_pins(void *priv);

/* lf_remote.c */
ferry_status fy_lf_conn_info(void *priv, void **info, size_t *len);
ferry_status fy_lf_remote_load(void *priv, const char *name, uint64_t uid, const void *info,
                               size_t len, void **remote);
void fy_lf_remote_unload(void *priv, void *remote);
ferry_status fy_lf_remote_refresh(void *priv, void *remote, const void *info, size_t len);
ferry_status fy_lf_rregion_load(void *priv, void *remote, ferry_mem_type type,
                                const ferry_desc *desc, const void *pub, size_t pub_len,
                                void **rregion);
void fy_lf_rregion_unload(void *priv, void *remote, void *rregion);
/* false once the peer is known gone (its pid checked at most every 50 ms). */
bool fy_lf_remote_alive(fy_lf_remote *r);
/* Tears down the connection to r (its operations out end with it) and
 * makes a new address entry for later ones. */
void fy_lf_remote_reset(fy_lf_remote *r);

/* lf_shm.c: names a shm endpoint, removes what killed processes left. */
ferry_status fy_lf_shm_prepare(fy_lf_rail *rail);

/* lf_notif.c */
ferry_status fy_lf_notif_open(fy_lf *be, size_t rx_count, size_t tx_count);
void fy_lf_notif_close(fy_lf *be);
/* Posts a notification to r: OK, or EAGAIN-like NO_RESOURCES when no
 * buffer or queue room is free now (the caller retries after progress). */
ferry_status fy_lf_notif_post(fy_lf *be, fy_lf_remote *r, const void *msg, size_t len,
                              fy_lf_req *req);
ferry_status fy_lf_notif_send(void *priv, void *remote, const void *msg, size_t len);
void fy_lf_notif_done(fy_lf *be, fy_lf_op *op, const struct fi_cq_msg_entry *e, int err);

/* lf_xfer.c */
ferry_status fy_lf_xfer_prep(void *priv, const ferry_plugin_xfer *px, void **handle);
ferry_status fy_lf_xfer_post(void *priv, void *handle, const void *notif, size_t notif_len);
ferry_status fy_lf_xfer_check(void *priv, void *handle);
ferry_status fy_lf_xfer_release(void *priv, void *handle);
const char *fy_lf_xfer_error(void *priv, void *handle);
/* Issues what requests can issue, checks stalls; returns requests moved. */
size_t fy_lf_xfer_sweep(fy_lf *be);
void fy_lf_rma_done(fy_lf *be, fy_lf_op *op, int err, const char *why);
void fy_lf_orphans_free(fy_lf *be);
/* The completion of a request's notification send. */
void fy_lf_req_notified(fy_lf_req *q, int err);

#endif
