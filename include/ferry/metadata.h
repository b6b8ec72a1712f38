/* SPDX-License-Identifier: Apache-2.0 */
/* Agent metadata: what a peer needs to reach this agent (name, per-backend
 * connection info, per-region remote keys), as an opaque versioned blob. */
#ifndef FERRY_METADATA_H
#define FERRY_METADATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/agent.h"
#include "ferry/mem.h"
#include "ferry/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest agent name, bytes, without the terminator. */
#define FERRY_NAME_MAX 255

/* Full local metadata: connection info of every backend and every region.
 * *blob is freed with ferry_free(). */
ferry_status ferry_md_get_local(ferry_agent *agent, void **blob, size_t *len);

/* Partial metadata: the regions covering the given descriptors (each must
 * be covered, else NOT_FOUND), with or without connection info, for the
 * backends in sel (all when NULL). lists may be empty (n 0): then only
 * connection info. */
ferry_status ferry_md_get_partial(ferry_agent *agent, const ferry_dlist *const *lists,
                                  size_t num_lists, bool include_conn_info,
                                  const ferry_backend_sel *sel, void **blob, size_t *len);

/* Loads a blob made by ferry_md_get_local/partial of any agent (its own
 * too, for loopback). A blob of a new instance of a known name (the peer
 * restarted: another uid) makes a new generation: requests and prepared lists
 * of older generations then fail with STALE. A blob of the same instance,
 * full or partial, adds the regions it lists to the current generation
 * (regions the peer has since deregistered stay listed until invalidation);
 * one with connection info also reconnects backends whose connection to
 * that peer failed or was given up (a peer frozen, then resumed), keeping
 * the generation and its handles.
 * Writes the remote name (up to FERRY_NAME_MAX + 1 bytes) into name.
 * With a key (ferry_agent_config.auth_key / FERRY_AUTH_KEY) only blobs
 * carrying a MAC made with that key load. The agent's own name is
 * accepted only on its own blob (same instance uid).
 * Returns OK, INVALID_PARAM, BAD_METADATA, NOT_FOUND (partial blob of an
 * unknown agent), STALE (partial blob of another instance), AUTH (no MAC,
 * or a wrong one), NOT_ALLOWED (the agent's own name, another instance),
 * BACKEND, NO_MEMORY, or a backend's load error; ferry_md_error() says
 * why. */
ferry_status ferry_md_load(ferry_agent *agent, const void *blob, size_t len, char *name,
                           size_t name_cap);

/* Why the last metadata call of this thread failed: one line of text, ""
 * when it succeeded. Set by ferry_md_load, the side-channel calls
 * (send, invalidate_local, and fetch_check / fetch_wait with the detail of
 * the fetch they report), e.g. "refused a metadata blob: wrong MAC".
 * Valid until this thread's next metadata call. */
const char *ferry_md_error(void);

/* Forgets a remote agent: drops its backend state; prepared lists and
 * requests made against it fail with STALE. NOT_FOUND if unknown. */
ferry_status ferry_md_invalidate(ferry_agent *agent, const char *remote_agent);

/* OK when remote_agent's metadata is loaded and (when list is not NULL)
 * every descriptor of list lies in one of its regions; NOT_FOUND otherwise. */
ferry_status ferry_md_check(ferry_agent *agent, const char *remote_agent, const ferry_dlist *list);

/* Connects now to remote_agent through every backend that reaches it and
 * can connect (otherwise connections are made on first use), so the first
 * transfer does not pay for it. Returns OK, NOT_FOUND, STALE,
 * REMOTE_DISCONNECT, BACKEND. */
ferry_status ferry_md_connect(ferry_agent *agent, const char *remote_agent,
                              const ferry_backend_sel *sel);

/* Generation of a loaded remote: a number from an agent-wide counter that
 * grows each time a remote agent (or a new instance of one) is loaded. */
ferry_status ferry_md_generation(ferry_agent *agent, const char *remote_agent,
                                 uint64_t *generation);

/* ---- the side channel: metadata exchange over TCP ----
 * An agent created with config.listen runs a listener thread on
 * listen_host:listen_port. Peers push metadata to it, fetch its metadata
 * (or that of an agent it knows), or ask it to forget them. Frames are
 * length-prefixed and versioned, capped in size, and every socket operation
 * is bounded by config.sc_timeout_ms. ip may be an IPv4/IPv6 address or a
 * host name.
 * etcd mode (docs/metadata.md): with etcd endpoints configured
 * (config.etcd_endpoints, FERRY_ETCD_ENDPOINTS, NIXL_ETCD_ENDPOINTS), ip
 * NULL or "" (port ignored) means etcd: send publishes under
 * "<namespace><agent>/<label>" on the agent's lease, fetch reads that key
 * (watching for it up to etcd_watch_timeout_ms; NOT_FOUND after), and
 * invalidate_local deletes the agent's keys. Peers whose fetched keys go
 * away are invalidated by the agent itself. IO when etcd is unreachable.
 * TCPStore mode: the same with a PyTorch TCPStore server
 * (config.tcpstore_endpoint, FERRY_TCPSTORE_ENDPOINT,
 * NIXL_TCPSTORE_ENDPOINT; etcd wins when both are configured), keys without
 * a lease, deleted when the agent is destroyed; a heartbeat key lets peers
 * invalidate a crashed agent after etcd_ttl_s. */

/* The port the listener is bound to (useful with listen_port 0).
 * NOT_ALLOWED when the agent does not listen. */
ferry_status ferry_md_listen_port(ferry_agent *agent, uint16_t *port);

/* Sends this agent's full metadata to the listener at ip:port, which loads
 * it. Returns OK once the peer has loaded it, TIMEOUT, IO (unreachable),
 * BAD_METADATA or the peer's load error. */
ferry_status ferry_md_send_local(ferry_agent *agent, const char *ip, uint16_t port);

/* Sends partial metadata (see ferry_md_get_partial) to ip:port. label names
 * it in logs and, in etcd mode, in the key (NULL: "metadata"). */
ferry_status ferry_md_send_partial(ferry_agent *agent, const ferry_dlist *const *lists,
                                   size_t num_lists, bool include_conn_info,
                                   const ferry_backend_sel *sel, const char *label, const char *ip,
                                   uint16_t port);

/* Starts fetching remote_agent's metadata from the listener at ip:port
 * (a listener serves its own agent's full metadata) and loading it.
 * Non-blocking: poll with ferry_md_fetch_check. Connection attempts are
 * retried until sc_timeout_ms, so a fetch may start before the peer listens.
 * label NULL: the full metadata. */
ferry_status ferry_md_fetch(ferry_agent *agent, const char *remote_agent, const char *ip,
                            uint16_t port, const char *label);

/* State of the last fetch of remote_agent: OK (loaded), IN_PROGRESS, or
 * the error that ended it (TIMEOUT, IO, NOT_FOUND: the peer does not know
 * that agent, BAD_METADATA). NOT_FOUND also when no fetch was started. */
ferry_status ferry_md_fetch_check(ferry_agent *agent, const char *remote_agent);

/* ferry_md_fetch then wait up to timeout_ms for its end. */
ferry_status ferry_md_fetch_wait(ferry_agent *agent, const char *remote_agent, const char *ip,
                                 uint16_t port, const char *label, uint32_t timeout_ms);

/* Asks the listener at ip:port to forget this agent (invalidate its
 * metadata there). A listener only honours such a request for the agent
 * instance that asks (name and instance uid must match what it loaded). */
ferry_status ferry_md_invalidate_local(ferry_agent *agent, const char *ip, uint16_t port);

#ifdef __cplusplus
}
#endif
#endif
