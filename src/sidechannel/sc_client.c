/* SPDX-License-Identifier: Apache-2.0 */
/* Side-channel client: one request, one reply, on a fresh connection.
 *
 * A connection per request keeps both ends simple (no pooling, no state to
 * go stale when a peer restarts); metadata exchanges are rare next to
 * transfers, so the extra handshake costs nothing that matters. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sidechannel/sidechannel.h"
#include "common/api.h"
#include "common/clock.h"
#include "common/log.h"
#include "core/agent.h"
#include "core/handles.h"
#include "metadata/auth.h"
#include "ferry/ferry.h"

bool fy_sc_args_ok(const char *host, uint16_t port)
{
    return host && host[0] && strlen(host) <= FY_SC_HOST_MAX && port;
}

bool fy_sc_svc_on(const ferry_agent *agent, const char *ip)
{
    return (!ip || !ip[0]) && agent->sc && agent->sc->svc;
}

bool fy_sc_dest_ok(const ferry_agent *agent, const char *ip, uint16_t port)
{
    return agent->sc && (fy_sc_args_ok(ip, port) || fy_sc_svc_on(agent, ip));
}

void fy_sc_reply_free(fy_sc_reply *reply)
{
    fy_sc_rx_reset(&reply->rx);
}

/* A status code from the wire: one this library knows, else UNKNOWN (a
 * newer peer may have codes we do not; IN_PROGRESS is never an answer). */
static ferry_status fy_sc_status_from_wire(int32_t s)
{
    if (s > FERRY_OK || s < FERRY_ERR_ABI)
        return FERRY_ERR_UNKNOWN;
    return (ferry_status)s;
}

/* With a key: a reply must be signed, for this request, recently. An
 * unsigned one is taken only when it reports an error (a refusal of our
 * request comes unsigned when the peer could not check it; an error can
 * only make us fail, never load anything). */
static ferry_status fy_sc_reply_auth(ferry_agent *agent, const fy_sc_io *io, fy_sc_reply *reply,
                                     const fy_sc_auth *auth)
{
    const char *why = NULL;
    if (!auth)
        why = reply->status == FERRY_OK ? "unsigned reply (the peer has no key)" : NULL;
    else if (!fy_sc_rx_signed_ok(&agent->auth, reply->nonce, &reply->rx))
        why = "wrong MAC (another key, or the reply was altered)";
    else
        why = fy_auth_window(auth->ts_us, fy_wall_us());
    if (!why)
        return FERRY_OK;
    char what[FY_SC_HOST_MAX + 32];
    snprintf(what, sizeof(what), "the reply of %s", io->peer);
    fy_auth_refused(&agent->auth, agent->name, what, why);
    return FERRY_ERR_AUTH;
}

static ferry_status fy_sc_reply_parse(ferry_agent *agent, const fy_sc_io *io, fy_sc_reply *reply)
{
    fy_sc_hdr inner = reply->rx.hdr;
    fy_sc_auth auth;
    bool has_auth = inner.flags & FY_SC_FLAG_AUTH;
    int32_t status;
    fy_sc_err err = inner.type == FY_SC_REPLY ? FY_SC_OK : FY_SC_E_TYPE;
    if (err == FY_SC_OK && has_auth)
        err = fy_sc_tail_get(&reply->rx.hdr, reply->rx.payload, &inner, &auth);
    if (err == FY_SC_OK)
        err = fy_sc_reply_get(&inner, reply->rx.payload, &status, &reply->body);
    if (err != FY_SC_OK) {
        FY_SC_ERR("%s: bad reply: %s", io->peer, fy_sc_err_str(err));
        return FERRY_ERR_IO;
    }
    reply->status = fy_sc_status_from_wire(status);
    if (!agent->auth.key_len)
        return FERRY_OK; /* a signed reply's trailer is simply skipped */
    return fy_sc_reply_auth(agent, io, reply, has_auth ? &auth : NULL);
}

/* Sends header + payload parts (+ the auth trailer and MAC with a key) in
 * one go. */
static ferry_status fy_sc_send_frame(ferry_agent *agent, fy_sc_io *io, fy_sc_type type,
                                     const struct iovec *payload, int n, uint8_t *nonce)
{
    struct iovec iov[6];
    uint8_t hdr[FY_SC_HDR_LEN], tail[FY_SC_TAIL_MAX], mac[FY_SC_MAC_LEN];
    bool sign = agent->auth.key_len > 0;
    size_t total = 0, tail_len = 0;
    for (int i = 0; i < n; i++) {
        iov[i + 1] = payload[i];
        total += payload[i].iov_len;
    }
    if (sign) {
        fy_auth_nonce(nonce);
        tail_len = fy_sc_tail_put(tail, agent->name, nonce, fy_wall_us());
        total += tail_len + FY_SC_MAC_LEN;
    }
    if (total > UINT32_MAX) {
        FY_SC_ERR("%s: a %zu-byte frame does not fit the format", io->peer, total);
        return FERRY_ERR_INVALID_PARAM;
    }
    fy_sc_hdr_put(hdr, type, (uint32_t)total);
    iov[0] = (struct iovec){hdr, sizeof(hdr)};
    if (!sign)
        return fy_sc_send_iov(io, iov, n + 1);
    fy_sc_hdr_set_auth(hdr);
    iov[n + 1] = (struct iovec){tail, tail_len};
    ferry_status rc = fy_auth_mac(&agent->auth, iov, n + 2, mac);
    iov[n + 2] = (struct iovec){mac, sizeof(mac)};
    return rc == FERRY_OK ? fy_sc_send_iov(io, iov, n + 3) : rc;
}

static void fy_sc_peer_str(const char *host, uint16_t port, char *out, size_t cap)
{
    snprintf(out, cap, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, (unsigned)port);
}

ferry_status fy_sc_call(ferry_agent *agent, const char *host, uint16_t port, fy_sc_type type,
                        struct iovec *iov, int n, uint64_t deadline_ns, fy_sc_reply *reply)
{
    char peer[FY_SC_HOST_MAX + 16];
    fy_sc_peer_str(host, port, peer, sizeof(peer));
    fy_sc_rx_init(&reply->rx, agent->cfg.sc_max_frame);
    reply->status = FERRY_ERR_UNKNOWN;
    reply->body = (fy_sc_view){NULL, 0};
    reply->lost = false;
    if (n > 3)
        return FERRY_ERR_INVALID_PARAM;
    fy_sc_io io;
    fy_sc_io_init(&io, agent, peer, deadline_ns);
    ferry_status rc = fy_sc_connect(&io, host, port);
    reply->lost = io.lost;
    if (rc != FERRY_OK)
        return rc;
    rc = fy_sc_send_frame(agent, &io, type, iov, n, reply->nonce);
    if (rc == FERRY_OK)
        rc = fy_sc_recv_frame(&io, &reply->rx);
    if (rc == FERRY_OK)
        rc = fy_sc_reply_parse(agent, &io, reply);
    else if (rc == FERRY_ERR_TIMEOUT)
        FY_SC_ERR("%s: no reply within %u ms", peer, agent->cfg.sc_timeout_ms);
    reply->lost = io.lost;
    close(io.fd);
    return rc;
}

/* LOAD: label, then the blob; the reply status is the peer's load result. */
static ferry_status fy_sc_send_blob(ferry_agent *agent, const char *label, void *blob, size_t len,
                                    const char *host, uint16_t port)
{
    uint8_t head[2 + FY_SC_STR_MAX];
    struct iovec iov[2] = {{head, fy_sc_str_put(head, label, strlen(label))}, {blob, len}};
    if (fy_sc_svc_on(agent, host))
        return fy_mdsvc_publish(agent, label, blob, len);
    fy_sc_reply reply;
    ferry_status rc = fy_sc_call(agent, host, port, FY_SC_LOAD, iov, 2, 0, &reply);
    if (rc == FERRY_OK && reply.status != FERRY_OK)
        FY_SC_ERR("%s:%u refused %s's '%s' metadata: %s", host, (unsigned)port, agent->name, label,
                  ferry_strerror(reply.status));
    if (rc == FERRY_OK)
        rc = reply.status;
    fy_sc_reply_free(&reply);
    return rc;
}

static bool fy_sc_label_ok(const char *label)
{
    return !label || strlen(label) <= FY_SC_STR_MAX;
}

FY_API ferry_status ferry_md_send_local(ferry_agent *agent, const char *ip, uint16_t port)
{
    fy_md_detail_clear();
    if (!FY_AGENT_OK(agent) || !fy_sc_dest_ok(agent, ip, port))
        return FERRY_ERR_INVALID_PARAM;
    void *blob;
    size_t len;
    ferry_status rc = ferry_md_get_local(agent, &blob, &len);
    if (rc != FERRY_OK)
        return rc;
    rc = fy_sc_send_blob(agent, FY_SC_DEFAULT_LABEL, blob, len, ip, port);
    ferry_free(blob);
    return rc;
}

FY_API ferry_status ferry_md_send_partial(ferry_agent *agent, const ferry_dlist *const *lists,
                                          size_t num_lists, bool include_conn_info,
                                          const ferry_backend_sel *sel, const char *label,
                                          const char *ip, uint16_t port)
{
    fy_md_detail_clear();
    if (!FY_AGENT_OK(agent) || !fy_sc_dest_ok(agent, ip, port) || !fy_sc_label_ok(label))
        return FERRY_ERR_INVALID_PARAM;
    void *blob;
    size_t len;
    ferry_status rc =
        ferry_md_get_partial(agent, lists, num_lists, include_conn_info, sel, &blob, &len);
    if (rc != FERRY_OK)
        return rc;
    rc = fy_sc_send_blob(agent, label ? label : FY_SC_DEFAULT_LABEL, blob, len, ip, port);
    ferry_free(blob);
    return rc;
}

FY_API ferry_status ferry_md_invalidate_local(ferry_agent *agent, const char *ip, uint16_t port)
{
    fy_md_detail_clear();
    if (!FY_AGENT_OK(agent) || !fy_sc_dest_ok(agent, ip, port))
        return FERRY_ERR_INVALID_PARAM;
    if (fy_sc_svc_on(agent, ip))
        return fy_mdsvc_invalidate_local(agent);
    uint8_t req[FY_SC_REQ_MAX];
    struct iovec iov = {req, fy_sc_inval_put(req, agent->uid, agent->name)};
    fy_sc_reply reply;
    ferry_status rc = fy_sc_call(agent, ip, port, FY_SC_INVALIDATE, &iov, 1, 0, &reply);
    if (rc == FERRY_OK)
        rc = reply.status;
    fy_sc_reply_free(&reply);
    return rc;
}
