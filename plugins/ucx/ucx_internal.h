/* SPDX-License-Identifier: Apache-2.0 */
/* UCX backend: the structures its files share. See README.md for the
 * design, the params and the measured limits. */
#ifndef FY_UCX_INTERNAL_H
#define FY_UCX_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <ucp/api/ucp.h>

#include "ferry/plugin.h"
#include "fyp_chan.h"
#include "fyp_ident.h"

#define FY_UCX_MAX_WORKERS 64u
#define FY_UCX_AM_NOTIF    0x6e           /* active message id of notifications */
#define FY_UCX_AM_WRITE    0x6f           /* a small WRITE with its data (ucx_amw.c) */
#define FY_UCX_AM_ACK      0x70           /* the target's answer to one */
#define FY_UCX_AM_READ     0x71           /* a READ request (ucx_amt.c answers it) */
#define FY_UCX_AM_RDATA    0x72           /* the answer to one, with the data */
#define FY_UCX_IDS         32u            /* random part ids drawn at once */
#define FY_UCX_AMW_BUCKETS 64u            /* hash of WRITEs awaiting their answer */
#define FY_UCX_CLOSE_NS    2000000000ull  /* bound on closing an endpoint, on release */
#define FY_UCX_STALL_NS    10000000000ull /* dual/none: a request idle this long fails */
#define FY_UCX_NAME_MAX    255u           /* bytes of an agent name in a notification */

typedef enum fy_ucx_errmode { FY_UCX_DUAL, FY_UCX_PEER, FY_UCX_NONE } fy_ucx_errmode;
/* When small WRITEs go as active messages: where UCX emulates RMA over TCP
 * anyway, always, or never. */
typedef enum fy_ucx_amw_mode { FY_UCX_AMW_AUTO, FY_UCX_AMW_ON, FY_UCX_AMW_OFF } fy_ucx_amw_mode;

typedef struct fy_ucx_worker {
    struct fy_ucx *u; /* handlers of active messages get the worker */
    unsigned index;
    ucp_worker_h h;
    ucp_address_t *addr;
    size_t addr_len;
} fy_ucx_worker;

typedef struct fy_ucx_pool fy_ucx_pool;

/* What a message sent through u->pack_dt holds: these bytes back to back,
 * copied by UCX into its own buffers (ucx_pack.c says why); received
 * through it, where the bytes go. */
typedef struct fy_ucx_pack {
    const ucp_dt_iov_t *iov;
    size_t num_iov;
    uint64_t len;            /* all of them */
    size_t cur_iov, cur_off; /* where packing goes on (UCX packs in order) */
    uint64_t cur_at;
} fy_ucx_pack;

/* The answer to a peer's READ request, with the data (ucx_amt.c): kept
 * until UCX has sent it, listed so that deregistration waits for it. */
typedef struct fy_ucx_rdata {
    struct fy_ucx_rdata *next, **link; /* in u->rdata */
    uint8_t head[16];                  /* FYD1, id, status */
    fy_ucx_pack pack;                  /* over iov */
    ucp_dt_iov_t iov[];                /* the target's ranges, checked */
} fy_ucx_rdata;

typedef struct fy_ucx {
    const ferry_plugin_host *host;
    fy_ucx_errmode errmode;
    ucp_context_h ctx;
    fy_ucx_worker workers[FY_UCX_MAX_WORKERS];
    unsigned num_workers;
    unsigned num_threads;         /* issuing threads beside the caller (0: none) */
    size_t split_min;             /* fewest segments a worker gets when a batch is split */
    fy_ucx_pool *pool;            /* the issuing threads, NULL when num_threads is 0 */
    struct fy_ucx_xfer *orphans;  /* released requests UCX still holds */
    struct fy_ucx_alloc *allocs;  /* ucx_mem.c */
    struct fy_ucx_region *dram;   /* registered DRAM regions: where peers' small writes may land */
    struct fy_ucx_remote *parked; /* unloaded healthy remotes, newest first (ucx_remote.c) */
    unsigned num_parked;
    struct fy_ucx_region *dram_hit; /* the one the last lookup found */
    bool rma;                       /* UCX's RMA on: puts and gets, and UCX's emulation of them */
    fy_ucx_amw_mode amw_mode;
    size_t amw_max;           /* bytes of WRITE data in one active message */
    size_t amr_max;           /* bytes of READ data in one answer */
    uint64_t ids[FY_UCX_IDS]; /* random ids for the next parts sent */
    unsigned ids_left;
    struct fy_ucx_amw_part *amw_waiting[FY_UCX_AMW_BUCKETS]; /* by id: awaiting the answer */
    ucp_datatype_t pack_dt;                                  /* an fy_ucx_pack (ucx_pack.c) */
    bool pack_dt_made;
    fy_ucx_rdata *rdata; /* answers to READs that UCX still sends */
    bool vram;
    bool wakeup;           /* UCP_FEATURE_WAKEUP: the progress thread sleeps on epfd */
    int epfd;              /* the workers' event fds (ucx_wake.c), -1 without wakeup */
    unsigned run_version;  /* UCP_VERSION(major, minor) of the UCX loaded (ucx_version.c) */
    bool zcopy;            /* data messages from and into the caller's memory (ucx_pack.c) */
    fyp_chan chan;         /* notifications to peers of this host (ucx_local.c); fd -1: none */
    fyp_ident ident;       /* who we are to them */
    uint64_t chan_read_ns; /* when its socket was last read */
} fy_ucx;

/* A peer agent: one endpoint from each of our workers (worker k talks to
 * the peer's worker k modulo its count), created on first use. */
typedef struct fy_ucx_remote {
    fy_ucx *u;
    char name[256];
    unsigned num_addrs; /* the peer's workers */
    uint64_t uid;       /* the instance */
    uint8_t *addr_blob; /* its connection info: their addresses, back to back */
    size_t info_len;
    size_t *addr_off, *addr_len;
    ucp_ep_h *ep;        /* [u->num_workers]: data (RMA, notifications) */
    ucp_ep_h ctl;        /* dual mode, worker 0: liveness only */
    ucs_status_t failed; /* UCS_OK while healthy */
    unsigned epoch;      /* bumped whenever endpoints are made: keys follow them */
    bool rma;            /* it serves puts and gets (its connection info says so) */
    bool amw;            /* small WRITEs to it go as active messages */
    bool chan;           /* on this host, with a channel: notifications go through it */
    fyp_chan_addr chan_addr;
    struct fy_ucx_remote *next_parked;
} fy_ucx_remote;

/* A peer's region: its packed key, unpacked once per endpoint that uses it. */
typedef struct fy_ucx_rregion {
    void *packed;
    size_t packed_len;
    ucp_rkey_h *rkeys; /* [u->num_workers] */
    unsigned epoch;    /* of the endpoints they were unpacked for */
} fy_ucx_rregion;

/* One worker's share of a transfer: consecutive segments, one flush. */
typedef struct fy_ucx_chunk {
    struct fy_ucx_xfer *x;
    unsigned worker;
    size_t first, count;
    void *req;           /* its flush, while in flight */
    size_t ops;          /* its puts or gets not completed yet */
    ucs_status_t issued; /* how issuing went */
} fy_ucx_chunk;

/* A request's states: data in flight (puts, gets and flushes, or active
 * messages awaiting answers), then its notification, then done. */
enum { FY_UX_IDLE, FY_UX_DATA, FY_UX_NOTIFYING, FY_UX_DONE, FY_UX_FAILED };

/* What ucx_order.c keeps of a posted request: how many of its data
 * operations are in flight, and its notification until they are done. */
typedef struct fy_ucx_order {
    size_t pending; /* puts, gets, flushes, unanswered messages; +1 while posting */
    const void *notif;
    size_t notif_len;
    bool rides;      /* the notification travels in the request's one data message */
    void *notif_req; /* the notification in flight */
    ucp_dt_iov_t iov;
    fy_ucx_pack pack;
} fy_ucx_order;

/* A transfer sent as active messages (ucx_amw.c): its descriptors cut
 * into pieces and grouped into parts (at most 4096 pieces and am_write_max
 * or am_read_max bytes), one message each: a WRITE's with its data, a
 * READ's asking for it, answered with the data. */
typedef struct fy_ucx_amw_part {
    struct fy_ucx_xfer *x;
    uint64_t id;
    unsigned worker;   /* whose endpoint carries it */
    ucp_dt_iov_t *iov; /* [1 + pieces]: the head, then the local pieces */
    fy_ucx_pack pack;  /* the message: the head, then (WRITE) the pieces */
    fy_ucx_pack dest;  /* READ: where the answer's bytes go: the pieces */
    uint8_t *head;     /* fy_amw_prefix_len bytes; the segment table written at prep */
    size_t head_cap;
    uint32_t pieces;
    uint64_t bytes; /* the data: sent (WRITE) or awaited (READ) */
    void *req;      /* the send, while UCX holds it */
    void *rreq;     /* READ: the answer's data arriving by rendezvous */
    bool waiting;   /* in u->amw_waiting */
    struct fy_ucx_amw_part *next_waiting;
} fy_ucx_amw_part;

typedef struct fy_ucx_amw {
    ucp_dt_iov_t *iov; /* every part's iov, back to back */
    fy_ucx_amw_part *parts;
    unsigned num_parts;
} fy_ucx_amw;

typedef struct fy_ucx_xfer {
    fy_ucx *u;
    const ferry_plugin_xfer *px;
    fy_ucx_remote *remote;
    int state;
    ferry_status error;
    fy_ucx_order ord; /* ucx_order.c */
    unsigned num_chunks;
    fy_ucx_chunk *chunks;
    fy_ucx_amw *amw; /* non-NULL: sent as an active message */
    unsigned epoch;  /* of the endpoints its keys were unpacked for */
    bool orphan;     /* released while requests were stuck: the last callback frees it */
    struct fy_ucx_xfer *next_orphan;
    size_t mark;      /* what was left of it when last seen moving ... */
    uint64_t mark_ns; /* ... and when (0: not seen yet since post) */
    char detail[384];
} fy_ucx_xfer;

/* Whether [addr, addr+len) lies inside [base, base+size), without overflow. */
static inline bool fy_ucx_within(uint64_t base, uint64_t size, uint64_t addr, uint64_t len)
{
    return addr >= base && addr - base <= size && len <= size - (addr - base);
}

#define UCX_LOG(u, lvl, ...) (u)->host->log((u)->host->agent_ctx, (lvl), __VA_ARGS__)

/* ucx.c */
ferry_status fy_ucx_status(ucs_status_t st);
uint64_t fy_ucx_now_ns(void);
ucs_status_t fy_ucx_wait(fy_ucx *u, unsigned worker, void *req, uint64_t deadline);
void fy_ucx_progress_all(fy_ucx *u);

/* ucx_version.c: the UCX found at run time */
void fy_ucx_version_probe(fy_ucx *u);
bool fy_ucx_runs_at_least(const fy_ucx *u, unsigned major, unsigned minor);

/* ---- sleeping until there is work (ucx_wake.c) ---- */
ferry_status fy_ucx_wake_open(fy_ucx *u);
void fy_ucx_wake_close(fy_ucx *u);
ferry_status fy_ucx_wait_fd(void *priv, int *fd);
ferry_status fy_ucx_arm(void *priv);

/* ucx_xfer.c, for ucx_amw.c and ucx_order.c */
void fy_ucx_fail(fy_ucx_xfer *x, ucs_status_t st, const char *what);
void fy_ucx_fail_with(fy_ucx_xfer *x, ferry_status err, const char *what, const char *why);
bool fy_ucx_req_done(fy_ucx_xfer *x, void *req, void **slot);

/* ucx_order.c: when a request's notification may leave (after every data
 * operation completed), what the target delivers when; see its head. */
void fy_ucx_order_begin(fy_ucx_xfer *x, const void *notif, size_t len, bool one_message);
const void *fy_ucx_order_riding(const fy_ucx_xfer *x, size_t *len);
void fy_ucx_order_sending(fy_ucx_xfer *x);
void fy_ucx_order_expect(fy_ucx_xfer *x, size_t n);
void fy_ucx_order_landed(fy_ucx_xfer *x, ucs_status_t st, const char *what);
void fy_ucx_order_refused(fy_ucx_xfer *x, ferry_status err, const char *what, const char *why);
ferry_status fy_ucx_order_end(fy_ucx_xfer *x);
void fy_ucx_order_deliver_riding(fy_ucx *u, const char *from, size_t from_len, const void *msg,
                                 size_t len);
ucs_status_t fy_ucx_notif_recv(void *arg, const void *header, size_t header_len, void *data,
                               size_t len, const ucp_am_recv_param_t *param);
ferry_status fy_ucx_notif_send(void *priv, void *remote, const void *msg, size_t len);
void fy_ucx_order_publish(void);
void fy_ucx_order_observe(void);

/* ucx_pack.c: the datatype of every message with data */
ucs_status_t fy_ucx_pack_dt_init(fy_ucx *u);
void fy_ucx_pack_dt_fini(fy_ucx *u);
void fy_ucx_pack_init(fy_ucx_pack *pk, const ucp_dt_iov_t *iov, size_t num_iov);
void fy_ucx_pack_out(fy_ucx_pack *pk, uint64_t at, const void *src, size_t len);
void fy_ucx_pack_choose(fy_ucx *u);
void *fy_ucx_pack_param(const fy_ucx *u, fy_ucx_pack *pk, ucp_request_param_t *p, size_t *count);

/* ucx_amw.c: transfers as active messages, the initiator's side */
ferry_status fy_ucx_amw_check(const fy_ucx_xfer *x, bool *fits);
ferry_status fy_ucx_amw_prep(fy_ucx_xfer *x);
bool fy_ucx_amw_one_message(const fy_ucx_xfer *x);
void fy_ucx_amw_post(fy_ucx_xfer *x);
void fy_ucx_amw_forget(fy_ucx_xfer *x);
void fy_ucx_amw_free(fy_ucx_xfer *x);

/* ucx_lanes.c: what carries the data to a peer. Kinds of transport an
 * endpoint's lanes use, as bits. */
enum {
    FY_UCX_LANE_TCP = 1u << 0,
    FY_UCX_LANE_SHM = 1u << 1,    /* UCX's shared-memory FIFOs (posix, sysv) */
    FY_UCX_LANE_KERNEL = 1u << 2, /* a kernel copies between processes (cma, knem, xpmem) */
    FY_UCX_LANE_RDMA = 1u << 3,   /* a NIC does (rc, dc, ud) */
    FY_UCX_LANE_OTHER = 1u << 4,
};
/* The kinds of ep's lanes; 0 when UCX's answer cannot be read. Logs
 * (INFO) the transports, once per new peer, when peer is non-NULL. */
unsigned fy_ucx_lanes(fy_ucx *u, ucp_ep_h ep, const char *peer);
ucs_status_t fy_ucx_amw_ack_recv(void *arg, const void *header, size_t header_len, void *data,
                                 size_t len, const ucp_am_recv_param_t *param);
ucs_status_t fy_ucx_amr_data_recv(void *arg, const void *header, size_t header_len, void *data,
                                  size_t len, const ucp_am_recv_param_t *param);

/* ucx_amt.c: transfers as active messages, the target's side */
ucs_status_t fy_ucx_amt_recv(void *arg, const void *header, size_t header_len, void *data,
                             size_t len, const ucp_am_recv_param_t *param);
void fy_ucx_amt_drain(fy_ucx *u);
void fy_ucx_amt_fini(fy_ucx *u);

/* ucx_mem.c */
bool fy_ucx_dram_holds(fy_ucx *u, uint64_t addr, uint64_t len);
ferry_status fy_ucx_mem_alloc(void *priv, ferry_mem_type type, uint64_t len, uint64_t dev_id,
                              void **addr, void **alloc);
void fy_ucx_mem_free(void *priv, void *alloc);
void fy_ucx_allocs_fini(fy_ucx *u);
ferry_status fy_ucx_reg(void *priv, ferry_mem_type type, const ferry_desc *d, const void *meta,
                        size_t meta_len, void **region, void **pub, size_t *pub_len);
void fy_ucx_dereg(void *priv, void *region);

/* ucx_remote.c */
ferry_status fy_ucx_conn_info(void *priv, void **info, size_t *len);
ferry_status fy_ucx_remote_load(void *priv, const char *name, uint64_t uid, const void *info,
                                size_t len, void **remote);
void fy_ucx_remote_unload(void *priv, void *remote);
void fy_ucx_parked_fini(fy_ucx *u);
ferry_status fy_ucx_remote_refresh(void *priv, void *remote, const void *info, size_t len);
ferry_status fy_ucx_connect(void *priv, void *remote);
ferry_status fy_ucx_disconnect(void *priv, void *remote);
ferry_status fy_ucx_eps(fy_ucx_remote *r);
void fy_ucx_eps_close(fy_ucx_remote *r);
ferry_status fy_ucx_rregion_load(void *priv, void *remote, ferry_mem_type type, const ferry_desc *d,
                                 const void *pub, size_t pub_len, void **rregion);
void fy_ucx_rregion_unload(void *priv, void *remote, void *rregion);
ferry_status fy_ucx_rkey(fy_ucx_remote *r, fy_ucx_rregion *rr, unsigned worker);

/* ucx_xfer.c */
ferry_status fy_ucx_xfer_prep(void *priv, const ferry_plugin_xfer *px, void **handle);
ferry_status fy_ucx_xfer_post(void *priv, void *handle, const void *notif, size_t len);
ferry_status fy_ucx_xfer_check(void *priv, void *handle);
ferry_status fy_ucx_xfer_release(void *priv, void *handle);
const char *fy_ucx_xfer_error(void *priv, void *handle);
void fy_ucx_xfer_free(fy_ucx_xfer *x);

/* ucx_pool.c: threads that each run one job per round, for the caller. */
typedef void (*fy_ucx_job)(void *arg);
ferry_status fy_ucx_pool_create(unsigned threads, fy_ucx_pool **out);
/* Runs fn(args[i]) on thread i for i < n (n <= threads) and fn(self) on the
 * caller, and returns when all are done. */
void fy_ucx_pool_run(fy_ucx_pool *p, fy_ucx_job fn, void *self, void **args, unsigned n);
void fy_ucx_pool_destroy(fy_ucx_pool *p);

/* ucx_local.c: notifications to peers of this host */
void fy_ucx_local_open(fy_ucx *u);
void fy_ucx_local_close(fy_ucx *u);
ferry_status fy_ucx_local_wake_add(fy_ucx *u);
/* Our identity for the connection info (0 bytes: no channel). */
size_t fy_ucx_local_info(const fy_ucx *u, uint8_t *out, size_t cap);
/* A peer's identity from its connection info; false when malformed. */
bool fy_ucx_local_peer(fy_ucx_remote *r, const uint8_t *b, size_t len);
/* true when the notification went through the channel. */
bool fy_ucx_local_notify(fy_ucx_remote *r, const void *msg, size_t len);
size_t fy_ucx_local_drain(fy_ucx *u);
bool fy_ucx_local_arm(fy_ucx *u);
void fy_ucx_local_before_am(fy_ucx *u);

#endif
