/* SPDX-License-Identifier: Apache-2.0 */
/* PyTorch's TCPStore as a metadata service (mdsvc.h): a client of its wire
 * protocol (codec: src/metadata/tcpstore.c) over the side channel's
 * bounded sockets (sc_net.c), no libtorch.
 *
 * Each call takes the one idle connection the client keeps, or opens a new
 * one, and gives it back when the exchange went well, so calls from
 * several threads run on connections of their own. The dialect (tcpstore.h)
 * is learnt on the first connection: VALIDATE and a PING go out together;
 * a recent store echoes the ping, an older one reads the pair as a SET
 * whose key length has its top bit set, which it refuses by closing the
 * connection (std::vector cannot be that large), and is then spoken to in
 * the old numbering. TCPStore has no leases and no revisions: keys stay
 * until deleted, and a hash of the value stands in for etcd's revision.
 * A WAIT that times out closes its connection, which cancels it in every
 * version of the store (CANCEL_WAIT is recent). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sidechannel/mdsvc.h"
#include "sidechannel/sidechannel.h"
#include "common/clock.h"
#include "common/log.h"
#include "metadata/tcpstore.h"

/* Its third byte (little-endian) has the top bit set: see the top. */
#define FY_TS_PROBE_NONCE 0x00C0FFEEu
#define FY_TS_RX_CHUNK    (64u << 10)

typedef struct fy_ts {
    char host[FY_SC_HOST_MAX + 1];
    char peer[FY_SC_HOST_MAX + 16]; /* "host:port", for log lines */
    uint16_t port;
    uint32_t timeout_ms;
    pthread_mutex_t mu; /* guards idle_fd and dialect */
    int idle_fd;        /* a ready connection no call uses, or -1 */
    fy_ts_dialect dialect;
} fy_ts;

/* One call's connection and the reply bytes read so far. */
typedef struct fy_ts_conn {
    fy_ts *c;
    fy_sc_io io;
    bool reused; /* taken from idle_fd: a failure may only mean it went stale */
    uint8_t *rx;
    size_t rx_len, rx_cap;
} fy_ts_conn;

/* ---- endpoint ---- */

/* "host:port", "tcp://host:port" or "[v6]:port". */
static bool fy_ts_parse(fy_ts *c, const char *ep)
{
    if (!strncmp(ep, "tcp://", 6))
        ep += 6;
    const char *colon = strrchr(ep, ':');
    char *end;
    unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
    if (!colon || colon == ep || !colon[1] || *end || port == 0 || port > 65535)
        return false;
    size_t n = (size_t)(colon - ep);
    if (ep[0] == '[' && colon[-1] == ']') {
        ep++;
        n -= 2;
    }
    if (n == 0 || n > FY_SC_HOST_MAX)
        return false;
    memcpy(c->host, ep, n);
    c->host[n] = '\0';
    c->port = (uint16_t)port;
    snprintf(c->peer, sizeof(c->peer), "%s:%u", c->host, (unsigned)c->port);
    return true;
}

static ferry_status fy_ts_op_new(const char *endpoint, uint32_t timeout_ms, void **cli)
{
    fy_ts *c = calloc(1, sizeof(*c));
    if (!c)
        return FERRY_ERR_NO_MEMORY;
    if (!fy_ts_parse(c, endpoint)) {
        FY_SC_ERR("TCPStore endpoint '%.64s' is not host:port", endpoint);
        free(c);
        return FERRY_ERR_INVALID_PARAM;
    }
    c->timeout_ms = timeout_ms;
    c->idle_fd = -1;
    pthread_mutex_init(&c->mu, NULL);
    *cli = c;
    return FERRY_OK;
}

static void fy_ts_op_free(void *cli)
{
    fy_ts *c = cli;
    if (c->idle_fd >= 0)
        close(c->idle_fd);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* ---- one exchange ---- */

static ferry_status fy_ts_send(fy_ts_conn *k, fy_ts_req *req)
{
    if (req->failed) {
        FY_SC_ERR("TCPStore: request over the protocol's bounds (or no memory)");
        fy_ts_req_free(req);
        return FERRY_ERR_INVALID_PARAM;
    }
    struct iovec iov = {req->buf, req->len};
    ferry_status rc = fy_sc_send_iov(&k->io, &iov, 1);
    fy_ts_req_free(req);
    return rc;
}

/* Room for at least want bytes in all (bounded by the decoder's cap). */
static ferry_status fy_ts_rx_room(fy_ts_conn *k, size_t want)
{
    if (want <= k->rx_cap)
        return FERRY_OK;
    size_t cap = want > k->rx_cap + FY_TS_RX_CHUNK ? want : k->rx_cap + FY_TS_RX_CHUNK;
    uint8_t *rx = realloc(k->rx, cap);
    if (!rx) {
        FY_SC_ERR("%s: no memory for a %zu-byte TCPStore reply", k->c->peer, want);
        return FERRY_ERR_NO_MEMORY;
    }
    k->rx = rx;
    k->rx_cap = cap;
    return FERRY_OK;
}

/* Reads what is there. A closed connection is IO with io.lost set. */
static ferry_status fy_ts_recv_some(fy_ts_conn *k)
{
    ssize_t got = recv(k->io.fd, k->rx + k->rx_len, k->rx_cap - k->rx_len, 0);
    if (got > 0) {
        k->rx_len += (size_t)got;
        return FERRY_OK;
    }
    if (got < 0 && errno == EINTR)
        return FERRY_OK;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return fy_sc_wait(&k->io, POLLIN);
    k->io.lost = true;
    fy_log_fail(FERRY_LOG_DEBUG, "sc", "%s: TCPStore closed the connection%s%s", k->c->peer,
                got ? ": " : "", got ? strerror(errno) : "");
    return FERRY_ERR_IO;
}

/* Receives one whole reply of kind (the reply's bytes stay in k->rx). */
static ferry_status fy_ts_recv(fy_ts_conn *k, fy_ts_reply_kind kind, fy_ts_reply *out)
{
    k->rx_len = 0;
    for (;;) {
        size_t used = 0;
        int r = fy_ts_decode(kind, k->rx, k->rx_len, FY_TS_VALUE_MAX, out, &used);
        if (r == 1)
            return FERRY_OK;
        if (r < 0) {
            FY_SC_ERR("%s: malformed TCPStore reply", k->c->peer);
            return FERRY_ERR_IO;
        }
        /* Grown as bytes arrive: a length field alone allocates little. */
        size_t want = used > k->rx_len ? used : k->rx_len + 8;
        size_t step = k->rx_cap > FY_TS_RX_CHUNK ? k->rx_cap : FY_TS_RX_CHUNK;
        if (want > k->rx_len + step)
            want = k->rx_len + step;
        ferry_status rc = fy_ts_rx_room(k, want);
        if (rc == FERRY_OK)
            rc = fy_ts_recv_some(k);
        if (rc != FERRY_OK)
            return rc;
    }
}

/* ---- connections ---- */

static void fy_ts_io_init(fy_ts_conn *k, uint32_t ms)
{
    k->io.fd = -1;
    k->io.stop_fd = -1; /* bounded by time alone: the agent's stop pipe is
                         * written before its keys are deleted */
    k->io.deadline_ns = fy_now_ns() + (uint64_t)ms * 1000000u;
    k->io.peer = k->c->peer;
    k->io.lost = false;
}

static void fy_ts_close(fy_ts_conn *k)
{
    if (k->io.fd >= 0)
        close(k->io.fd);
    k->io.fd = -1;
}

/* VALIDATE and PING together: the echo says the recent dialect, a closed
 * connection the old one (see the top). */
static ferry_status fy_ts_probe(fy_ts_conn *k, fy_ts_dialect *d)
{
    fy_ts_req req = {0};
    fy_ts_req_add(&req, FY_TS_V2, FY_TS_VALIDATE, NULL, NULL, 0, 0);
    fy_ts_req_add(&req, FY_TS_V2, FY_TS_PING, NULL, NULL, 0, FY_TS_PROBE_NONCE);
    fy_ts_reply rep;
    ferry_status rc = fy_ts_send(k, &req);
    if (rc == FERRY_OK)
        rc = fy_ts_recv(k, FY_TS_R_U32, &rep);
    if (rc == FERRY_OK && rep.num != FY_TS_PROBE_NONCE) {
        FY_SC_ERR("%s: not a TCPStore (wrong ping echo)", k->c->peer);
        return FERRY_ERR_IO;
    }
    *d = rc == FERRY_OK ? FY_TS_V2 : FY_TS_V1;
    return rc == FERRY_OK || k->io.lost ? FERRY_OK : rc;
}

static ferry_status fy_ts_connect(fy_ts_conn *k)
{
    ferry_status rc = fy_sc_connect(&k->io, k->c->host, k->c->port);
    if (rc == FERRY_OK)
        return FERRY_OK;
    char cause[200];
    snprintf(cause, sizeof(cause), "%s", fy_md_detail_get());
    char detail[512];
    snprintf(detail, sizeof(detail), "TCPStore unreachable: %s", cause); /* names host:port */
    fy_md_detail_set(detail);
    return FERRY_ERR_IO; /* a connect timeout too: nobody answers there */
}

/* Connects and speaks the first words of the dialect, learning it first. */
static ferry_status fy_ts_open(fy_ts_conn *k)
{
    pthread_mutex_lock(&k->c->mu);
    fy_ts_dialect d = k->c->dialect;
    pthread_mutex_unlock(&k->c->mu);
    ferry_status rc = fy_ts_connect(k);
    if (rc == FERRY_OK && d == FY_TS_UNKNOWN) {
        rc = fy_ts_probe(k, &d);
        if (rc == FERRY_OK && d == FY_TS_V1) {
            fy_ts_close(k); /* the old store closed it */
            k->io.lost = false;
            rc = fy_ts_connect(k);
        }
        pthread_mutex_lock(&k->c->mu);
        k->c->dialect = rc == FERRY_OK ? d : FY_TS_UNKNOWN;
        pthread_mutex_unlock(&k->c->mu);
    } else if (rc == FERRY_OK && d == FY_TS_V2) {
        fy_ts_req req = {0};
        fy_ts_req_add(&req, d, FY_TS_VALIDATE, NULL, NULL, 0, 0);
        rc = fy_ts_send(k, &req);
    }
    if (rc != FERRY_OK)
        fy_ts_close(k);
    return rc;
}

/* A connection for one call, bounded by ms from now. */
static ferry_status fy_ts_begin(fy_ts *c, fy_ts_conn *k, uint32_t ms)
{
    memset(k, 0, sizeof(*k));
    k->c = c;
    fy_ts_io_init(k, ms);
    pthread_mutex_lock(&c->mu);
    k->io.fd = c->idle_fd;
    c->idle_fd = -1;
    pthread_mutex_unlock(&c->mu);
    k->reused = k->io.fd >= 0;
    return k->reused ? FERRY_OK : fy_ts_open(k);
}

/* Keeps the connection for the next call when the exchange went well. */
static void fy_ts_end(fy_ts_conn *k, bool keep)
{
    free(k->rx);
    k->rx = NULL;
    pthread_mutex_lock(&k->c->mu);
    if (keep && k->c->idle_fd < 0) {
        k->c->idle_fd = k->io.fd;
        k->io.fd = -1;
    }
    pthread_mutex_unlock(&k->c->mu);
    fy_ts_close(k);
}

/* The current dialect (known once a connection was opened). */
static fy_ts_dialect fy_ts_dialect_of(fy_ts *c)
{
    pthread_mutex_lock(&c->mu);
    fy_ts_dialect d = c->dialect;
    pthread_mutex_unlock(&c->mu);
    return d;
}

/* ---- the operations ---- */

/* Sends one request and reads its reply; a stale idle connection (the
 * store restarted since) is replaced once. */
typedef struct fy_ts_call {
    fy_ts_op op[2]; /* the second: FY_TS_PING for none */
    const char *key;
    const void *val;
    size_t len;
    fy_ts_reply_kind kind;
} fy_ts_call;

static ferry_status fy_ts_exchange(fy_ts_conn *k, const fy_ts_call *call, fy_ts_reply *rep)
{
    fy_ts_dialect d = fy_ts_dialect_of(k->c);
    fy_ts_req req = {0};
    for (int i = 0; i < 2; i++)
        if (i == 0 || call->op[i] != FY_TS_PING)
            fy_ts_req_add(&req, d, call->op[i], call->key, call->val, call->len, 0);
    ferry_status rc = fy_ts_send(k, &req);
    return rc == FERRY_OK ? fy_ts_recv(k, call->kind, rep) : rc;
}

/* A failed exchange's error line, except on a reused connection that
 * was only stale (tried again on a new one) and for a WAIT's timeout. */
static void fy_ts_fail(const fy_ts_conn *k, ferry_status rc, uint32_t wait_ms)
{
    if ((rc == FERRY_ERR_TIMEOUT && !wait_ms) || (rc == FERRY_ERR_IO && k->io.lost && !k->reused))
        FY_SC_ERR("TCPStore unreachable: %s: %s", k->c->peer,
                  rc == FERRY_ERR_TIMEOUT ? "no reply within the timeout" : "connection lost");
}

/* The exchange on k, its reply awaited up to wait_ms (0: the client's
 * timeout, counted from the connection's start). */
static ferry_status fy_ts_exchange_within(fy_ts_conn *k, const fy_ts_call *call, fy_ts_reply *rep,
                                          uint32_t wait_ms)
{
    if (wait_ms)
        k->io.deadline_ns = fy_now_ns() + (uint64_t)wait_ms * 1000000u;
    ferry_status rc = fy_ts_exchange(k, call, rep);
    fy_ts_fail(k, rc, wait_ms);
    return rc;
}

static ferry_status fy_ts_run(fy_ts *c, fy_ts_conn *k, const fy_ts_call *call, fy_ts_reply *rep,
                              uint32_t wait_ms)
{
    ferry_status rc = fy_ts_begin(c, k, c->timeout_ms);
    if (rc != FERRY_OK)
        return rc; /* the connect's reason is the detail */
    rc = fy_ts_exchange_within(k, call, rep, wait_ms);
    if (rc == FERRY_ERR_IO && k->reused && k->io.lost) {
        fy_ts_close(k);
        k->reused = false;
        k->io.lost = false;
        k->io.deadline_ns = fy_now_ns() + (uint64_t)c->timeout_ms * 1000000u;
        rc = fy_ts_open(k);
        if (rc == FERRY_OK)
            rc = fy_ts_exchange_within(k, call, rep, wait_ms);
    }
    return rc;
}

/* SET has no reply: a CHECK of the key after it makes the write known
 * done (the store serves one connection's commands in order). */
static ferry_status fy_ts_op_put(void *cli, const char *key, const void *val, size_t len,
                                 int64_t lease)
{
    (void)lease; /* none in TCPStore */
    fy_ts_call call = {{FY_TS_SET, FY_TS_CHECK}, key, val, len, FY_TS_R_BYTE};
    fy_ts_conn k;
    fy_ts_reply rep;
    ferry_status rc = fy_ts_run(cli, &k, &call, &rep, 0);
    if (rc == FERRY_OK && rep.num != 0) {
        FY_SC_ERR("TCPStore: %s not there right after it was set", key);
        rc = FERRY_ERR_IO;
    }
    fy_ts_end(&k, rc == FERRY_OK);
    return rc;
}

static ferry_status fy_ts_copy(const fy_ts_reply *rep, fy_mdsvc_kv *kv)
{
    kv->val = malloc(rep->len ? rep->len : 1);
    if (!kv->val)
        return FERRY_ERR_NO_MEMORY;
    memcpy(kv->val, rep->value, rep->len);
    kv->len = rep->len;
    kv->mod_rev = (int64_t)(fy_ts_hash(kv->val, kv->len) >> 1);
    return FERRY_OK;
}

/* GET of an absent key makes the store drop the connection: CHECK first.
 * A key deleted between the two reads as absent. */
static ferry_status fy_ts_op_get(void *cli, const char *key, fy_mdsvc_kv *kv)
{
    memset(kv, 0, sizeof(*kv));
    fy_ts_call check = {{FY_TS_CHECK, FY_TS_PING}, key, NULL, 0, FY_TS_R_BYTE};
    fy_ts_call get = {{FY_TS_GET, FY_TS_PING}, key, NULL, 0, FY_TS_R_VALUE};
    fy_ts_conn k;
    fy_ts_reply rep;
    ferry_status rc = fy_ts_run(cli, &k, &check, &rep, 0);
    bool present = rc == FERRY_OK && rep.num == 0;
    if (present)
        rc = fy_ts_exchange(&k, &get, &rep);
    if (present && rc == FERRY_ERR_IO && k.io.lost)
        rc = FERRY_ERR_NOT_FOUND;
    else if (present && rc == FERRY_OK)
        rc = fy_ts_copy(&rep, kv);
    else if (rc == FERRY_OK)
        rc = FERRY_ERR_NOT_FOUND;
    fy_ts_end(&k, rc == FERRY_OK || (rc == FERRY_ERR_NOT_FOUND && !k.io.lost));
    return rc;
}

static ferry_status fy_ts_op_wait(void *cli, const char *key, int64_t start_rev, uint32_t ms)
{
    (void)start_rev; /* no revisions: WAIT returns once the key exists */
    fy_ts_call call = {{FY_TS_WAIT, FY_TS_PING}, key, NULL, 0, FY_TS_R_BYTE};
    fy_ts_conn k;
    fy_ts_reply rep;
    ferry_status rc = fy_ts_run(cli, &k, &call, &rep, ms ? ms : 1);
    /* Only an answered WAIT leaves the connection reusable. */
    fy_ts_end(&k, rc == FERRY_OK);
    return rc;
}

static ferry_status fy_ts_op_del(void *cli, const char *key)
{
    fy_ts_call call = {{FY_TS_DELETE, FY_TS_PING}, key, NULL, 0, FY_TS_R_I64};
    fy_ts_conn k;
    fy_ts_reply rep;
    ferry_status rc = fy_ts_run(cli, &k, &call, &rep, 0);
    fy_ts_end(&k, rc == FERRY_OK);
    return rc;
}

const fy_mdsvc_ops fy_mdsvc_tcpstore_ops = {
    .name = "TCPStore",
    .new = fy_ts_op_new,
    .put = fy_ts_op_put,
    .get = fy_ts_op_get,
    .rev = NULL,
    .wait_put = fy_ts_op_wait,
    .del_prefix = NULL,
    .del = fy_ts_op_del,
    .lease_grant = NULL,
    .lease_keepalive = NULL,
    .lease_revoke = NULL,
    .free = fy_ts_op_free,
};
