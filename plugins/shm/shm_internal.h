/* SPDX-License-Identifier: Apache-2.0 */
/* The SHM plugin's shared structures (see shm.c for the design). */
#ifndef FY_SHM_INTERNAL_H
#define FY_SHM_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "ferry/plugin.h"
#include "fyp_chan.h"
#include "fyp_ident.h"
#include "fyp_list.h"
#include "shm_wire.h"

#ifndef FY_SHM_PLUGIN_NAME
#define FY_SHM_PLUGIN_NAME "SHM"
#endif

#define fy_shm_log(be, level, ...) (be)->host->log((be)->host->agent_ctx, (level), __VA_ARGS__)

/* An allocation of mem_alloc: memfd-backed, mapped shared. It lives until
 * mem_free and the last region inside it are gone (refs). */
typedef struct fy_shm_alloc {
    struct fy_shm_alloc *next;
    int fd;
    uint8_t *base;
    uint64_t len;
    unsigned refs;
} fy_shm_alloc;

/* A local region. token names it to peers' fd requests (memfd only). */
typedef struct fy_shm_region {
    struct fy_shm_region *next;
    uint64_t addr, len;
    uint64_t token;
    fy_shm_alloc *alloc; /* NULL: ordinary memory (reached by CMA) */
} fy_shm_region;

/* The server that hands the memfd of a registered region to peers of our
 * user: a thread on an abstract seqpacket socket. It reads the region list
 * under lock (registration changes it meanwhile). */
typedef struct fy_shm_srv {
    int fd;      /* listening socket, -1 when not started */
    int stop[2]; /* pipe: a byte stops the thread */
    pthread_t thread;
    bool running;
    char name[FYP_SOCK_MAX + 4]; /* the channel's name and "/fd" */
} fy_shm_srv;

typedef struct fy_shm {
    const ferry_plugin_host *host;
    uint64_t map_timeout_ms; /* param: how long prep waits for a peer's fd */
    uint64_t probe;          /* holds agent_uid: peers read it to test cross-memory attach */
    fyp_ident self;
    fyp_chan chan; /* notifications (plugins/common/fyp_chan.h) */
    fy_shm_srv srv;
    int epfd;             /* wait_fd: the channel and the peers' pidfds */
    pthread_mutex_t lock; /* regions, for the server thread */
    fy_shm_region *regions;
    fy_shm_alloc *allocs;
    fyp_link *pending; /* requests whose notification is not sent yet */
} fy_shm;

/* A peer: another agent of this host (or this one). */
typedef struct fy_shm_remote {
    fy_shm *be;
    char name[FYP_NAME_MAX + 1];
    fyp_ident id;
    fyp_chan_addr addr; /* its notification socket */
    bool self;          /* this agent (loopback) */
    int pidfd;          /* readable once it exited; -1 for this process */
    bool proc_poll;     /* no pidfd_open here: /proc/<pid>/stat is polled */
    bool dead;
    uint64_t next_check_ns; /* pidfd polls from post are spaced */
} fy_shm_remote;

/* A peer's region: its key and, for memfd memory, our mapping of exactly
 * its pages, made on first use. */
typedef struct fy_shm_rregion {
    fy_shm_pub pub;
    uint8_t *map; /* page-aligned mapping, NULL until mapped */
    size_t map_len;
    uint8_t *at; /* the region's first byte in the mapping */
} fy_shm_rregion;

/* A prepared request. */
typedef struct fy_shm_req {
    fy_shm *be;
    const ferry_plugin_xfer *px;
    fy_shm_remote *remote;
    struct iovec *liov, *riov; /* the ordinary-memory segments, for process_vm_* */
    size_t niov;
    bool notif_due;     /* data in place, notification not sent yet */
    ferry_status state; /* NOT_POSTED, IN_PROGRESS (notification due), OK, error */
    const void *notif;  /* the core's, valid until the next post or release */
    size_t notif_len;
    fyp_link link; /* in be->pending */
    char err[512];
} fy_shm_req;

/* shm_mem.c */
ferry_status fy_shm_mem_alloc(void *priv, ferry_mem_type type, uint64_t len, uint64_t dev_id,
                              void **addr, void **alloc);
void fy_shm_mem_free(void *priv, void *alloc);
ferry_status fy_shm_reg(void *priv, ferry_mem_type type, const ferry_desc *desc, const void *meta,
                        size_t meta_len, void **region, void **pub, size_t *pub_len);
void fy_shm_dereg(void *priv, void *region);
void fy_shm_mem_fini(fy_shm *be);
/* The memfd and offset of a registered region, for the server (locks). */
bool fy_shm_lookup(fy_shm *be, uint64_t token, int *fd, uint64_t *offset, uint64_t *len);

/* shm_srv.c */
ferry_status fy_shm_srv_start(fy_shm *be);
void fy_shm_srv_stop(fy_shm *be);
/* Asks a peer's server for a region's memfd: OK with *fd, or an error and
 * a reason in err. Bounded by be->map_timeout_ms. */
ferry_status fy_shm_fetch_fd(fy_shm *be, fy_shm_remote *r, uint64_t token, int *fd,
                             uint64_t *offset, char *err, size_t cap);

/* shm_remote.c */
ferry_status fy_shm_conn_info(void *priv, void **info, size_t *len);
ferry_status fy_shm_remote_load(void *priv, const char *name, uint64_t uid, const void *info,
                                size_t len, void **remote);
void fy_shm_remote_unload(void *priv, void *remote);
ferry_status fy_shm_rregion_load(void *priv, void *remote, ferry_mem_type type,
                                 const ferry_desc *desc, const void *pub, size_t pub_len,
                                 void **rregion);
void fy_shm_rregion_unload(void *priv, void *remote, void *rregion);
ferry_status fy_shm_map(fy_shm *be, fy_shm_remote *r, fy_shm_rregion *rr, char *err, size_t cap);
/* false once the peer is known gone (checks its pidfd at most every ms). */
bool fy_shm_remote_alive(fy_shm_remote *r);
/* Reads the epoll set: marks peers whose pidfd fired; returns how many.
 * *sock_ready: whether the notification socket has datagrams. */
size_t fy_shm_reap(fy_shm *be, bool *sock_ready);
ferry_status fy_shm_notify(fy_shm *be, fy_shm_remote *r, const void *msg, size_t len, bool wait);

/* shm_xfer.c */
ferry_status fy_shm_xfer_prep(void *priv, const ferry_plugin_xfer *px, void **handle);
ferry_status fy_shm_xfer_post(void *priv, void *handle, const void *notif, size_t notif_len);
ferry_status fy_shm_xfer_check(void *priv, void *handle);
ferry_status fy_shm_xfer_release(void *priv, void *handle);
const char *fy_shm_xfer_error(void *priv, void *handle);
size_t fy_shm_progress_reqs(fy_shm *be);

#endif
