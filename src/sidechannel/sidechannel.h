/* SPDX-License-Identifier: Apache-2.0 */
/* The side channel: metadata exchange between agents over TCP.
 * Internal (fy_*); the public functions are in include/ferry/metadata.h and
 * the protocol in docs/side-channel.md. Its frame codec and signatures are
 * src/metadata (sc_frame.c, auth.c): pure code, no threads.
 *
 *   sc_net.c       sockets bounded by a deadline and the agent's stop pipe
 *   sc_listener.c  the listener thread: accepts, reads frames, serves them
 *   sc_client.c    one request/reply exchange; send_local/partial, invalidate
 *   sc_fetch.c     non-blocking fetches on joinable worker threads
 *   sc_mdsvc.c     metadata services: the same calls with no address, through
 *                  etcd or PyTorch's TCPStore (mdsvc.h), and their keeper thread
 *   sc_etcd.c      etcd's operations (client: src/metadata/etcd.c)
 *   sc_tcpstore.c  TCPStore's client (codec: src/metadata/tcpstore.c)
 *   sidechannel.c  start/stop, listen port
 *
 * Threads: the listener thread and fetch threads call only the public
 * metadata functions (which take the agent's lock) and fy_remote_uid.
 * fy_sc_stop writes the stop pipe, which every poll() of every side-channel
 * thread watches, then joins them all. */
#ifndef FY_SIDECHANNEL_SIDECHANNEL_H
#define FY_SIDECHANNEL_SIDECHANNEL_H

#include <stdint.h>
#include <sys/uio.h>

#include "common/log.h"
#include "ferry/agent.h"
#include "metadata/auth.h"
#include "metadata/sc_frame.h"

#define FY_SC_MAX_CONNS     64u         /* listener: connections served at once */
#define FY_SC_PER_CLIENT    8u          /* listener: connections per client address (default) */
#define FY_SC_MAX_BUFFERED  (64u << 20) /* listener: payload bytes held at once (default) */
#define FY_SC_IDLE_MS       1000u       /* listener: time to send a whole header (default) */
#define FY_SC_MAX_FETCHES   16u         /* fetch threads running at once, per agent */
#define FY_SC_MAX_RECORDS   1024u       /* fetch results kept for fetch_check */
#define FY_SC_RETRY_MS      25u         /* pause between refused connection attempts */
#define FY_SC_HOST_MAX      255u        /* host argument, bytes */
#define FY_SC_DEFAULT_LABEL "metadata"

/* Errors of side-channel calls are also the caller's ferry_md_error(). */
#define FY_SC_ERR(...)  fy_log_detail(FERRY_LOG_ERROR, "sc", __VA_ARGS__)
#define FY_SC_WARN(...) fy_log(FERRY_LOG_WARN, "sc", __VA_ARGS__)
#define FY_SC_DBG(...)  fy_log(FERRY_LOG_DEBUG, "sc", __VA_ARGS__)

typedef struct fy_sc_listener fy_sc_listener;
typedef struct fy_sc_fetches fy_sc_fetches;
struct fy_mdsvc;

struct fy_sc {
    int stop_rd, stop_wr;     /* written once by fy_sc_stop, never drained */
    fy_sc_listener *listener; /* NULL when the agent does not listen */
    fy_sc_fetches *fetches;
    struct fy_mdsvc *svc; /* NULL: no metadata service (etcd, TCPStore) */
};

/* Called by ferry_agent_create (last) and ferry_agent_destroy (first). */
ferry_status fy_sc_start(ferry_agent *agent);
void fy_sc_stop(ferry_agent *agent);

/* ---- sc_net.c ---- */

/* One socket exchange's bounds: a monotonic deadline and the stop pipe. */
typedef struct fy_sc_io {
    int fd;
    int stop_fd;
    uint64_t deadline_ns;
    const char *peer; /* "host:port", for log lines */
    bool lost;        /* the peer reset or closed the connection: worth a retry */
} fy_sc_io;

/* deadline_ns 0: sc_timeout_ms from now. */
void fy_sc_io_init(fy_sc_io *io, ferry_agent *agent, const char *peer, uint64_t deadline_ns);
/* Sleeps ms (less when the deadline is nearer): OK, TIMEOUT (deadline
 * reached) or CANCELED (stopping). */
ferry_status fy_sc_pause(const fy_sc_io *io, unsigned ms);
/* Waits for events on io->fd: OK, TIMEOUT, CANCELED (stopping) or IO. */
ferry_status fy_sc_wait(const fy_sc_io *io, short events);
/* Connects to host:port, retrying refused attempts until the deadline. */
ferry_status fy_sc_connect(fy_sc_io *io, const char *host, uint16_t port);
/* Sends every byte of iov (modified as it goes). */
ferry_status fy_sc_send_iov(fy_sc_io *io, struct iovec *iov, int n);
/* Receives one whole frame into rx. */
ferry_status fy_sc_recv_frame(fy_sc_io *io, fy_sc_rx *rx);
/* Per-socket options every side-channel socket gets (no SIGPIPE, no Nagle). */
void fy_sc_sock_opts(int fd);
/* Formats a socket address as "host:port" ("[v6]:port"). */
void fy_sc_addr_str(const void *sa, unsigned salen, char *out, size_t cap);
/* Milliseconds until deadline_ns, rounded up, 0 when past, capped at INT_MAX. */
int fy_sc_ms_left(uint64_t deadline_ns);

/* ---- sc_client.c ---- */

typedef struct fy_sc_reply {
    fy_sc_rx rx;         /* owns the bytes body points into */
    ferry_status status; /* the peer's status, sanitised */
    fy_sc_view body;
    bool lost;                      /* connection reset or closed early: retry may help */
    uint8_t nonce[FY_SC_NONCE_LEN]; /* the request's, which a signed reply covers */
} fy_sc_reply;

/* Sends one request frame (payload = iov[0..n)) to host:port and receives
 * its reply, all before deadline_ns (0: sc_timeout_ms from now). With a key
 * the request is signed and the reply checked (AUTH when it fails; an
 * unsigned reply is accepted only when it reports an error). Returns OK
 * when a well-formed reply arrived (then reply->status is the peer's
 * answer); free with fy_sc_reply_free in every case. */
ferry_status fy_sc_call(ferry_agent *agent, const char *host, uint16_t port, fy_sc_type type,
                        struct iovec *iov, int n, uint64_t deadline_ns, fy_sc_reply *reply);

void fy_sc_reply_free(fy_sc_reply *reply);
bool fy_sc_args_ok(const char *host, uint16_t port);

/* ---- sc_listener.c ---- */

ferry_status fy_sc_listener_start(ferry_agent *agent, int stop_fd, fy_sc_listener **out);
uint16_t fy_sc_listener_port(const fy_sc_listener *l);
/* Joins the thread (the stop pipe must have been written) and frees l. */
void fy_sc_listener_join(fy_sc_listener *l);

/* ---- sc_mdsvc.c: calls with no address go to etcd or TCPStore ---- */

/* Starts the metadata service when a store is configured (else OK, *out
 * NULL). */
ferry_status fy_mdsvc_start(ferry_agent *agent, struct fy_mdsvc **out);
void fy_mdsvc_stop(struct fy_mdsvc *e);
/* True when ip names no listener and the agent has a metadata service. */
bool fy_sc_svc_on(const ferry_agent *agent, const char *ip);
/* A listener's address, or none with a metadata service. */
bool fy_sc_dest_ok(const ferry_agent *agent, const char *ip, uint16_t port);
ferry_status fy_mdsvc_publish(ferry_agent *agent, const char *label, const void *blob, size_t len);
ferry_status fy_mdsvc_fetch(ferry_agent *agent, const char *name, const char *label);
ferry_status fy_mdsvc_invalidate_local(ferry_agent *agent);

/* ---- sc_fetch.c ---- */

ferry_status fy_sc_fetches_new(fy_sc_fetches **out);
/* Joins every fetch thread (the stop pipe must have been written), frees. */
void fy_sc_fetches_free(fy_sc_fetches *t);

#endif
