/* SPDX-License-Identifier: Apache-2.0 */
/* Metadata services (mdsvc.h): the side-channel calls made with no address
 * go to a key-value store, etcd or PyTorch's TCPStore.
 *
 * Keys are "<namespace><agent>/<label>", on this agent's lease where the
 * store has leases (etcd). A thread (the "keeper") renews the lease every
 * third of its TTL, grants a new one and publishes again what was
 * published when the store forgot the old one (etcd lost its data, or was
 * down longer than the TTL), and every FY_MDSVC_PEER_POLL_MS reads the keys
 * of the peers this agent fetched: a key gone (deleted, or its lease
 * expired) invalidates the peer here; a key written again is loaded again:
 * by a new instance (the peer restarted) that makes a new generation, by
 * the same one it adds the regions it lists. A store without leases
 * (TCPStore) keeps a crashed agent's keys until it publishes again under
 * the same name, so there the keeper stands in for the lease: it writes
 * a heartbeat key ("<namespace><agent>/.alive": this instance's uid, a
 * count of its publications and a count of beats) with every publication
 * and every third of the TTL, and a peer whose heartbeat has not changed
 * for a TTL is invalidated as if its keys had expired. Followers read a
 * peer's values (to compare their hash) only when its publication count
 * changed. A peer that never wrote a heartbeat is followed by its values
 * alone.
 * An agent that stops deletes its own keys. The clients bound every call;
 * an unreachable store makes calls fail with IO and the keeper retry.
 *
 * Locking: e->mu guards the lease, the published list, the peer list and
 * stop. Network calls of the keeper on peers run without it. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sidechannel/sidechannel.h"
#include "common/clock.h"
#include "common/log.h"
#include "core/agent.h"
#include "core/remote.h"
#include "ferry/ferry.h"
#include "sidechannel/mdsvc.h"
#include "metadata/tcpstore.h" /* fy_ts_hash */

#define FY_MDSVC_NS_DEFAULT    "/ferry/agents/"
#define FY_MDSVC_TTL_DEFAULT   10u
#define FY_MDSVC_WATCH_DEFAULT 5000u
#define FY_MDSVC_PEER_POLL_MS  250u
#define FY_MDSVC_NS_MAX        200u
#define FY_MDSVC_MAX_PEERS     4096u
#define FY_MDSVC_KEY_MAX       (FY_MDSVC_NS_MAX + FERRY_NAME_MAX + FY_SC_STR_MAX + 2)
#define FY_MDSVC_ALIVE_LABEL   ".alive" /* the heartbeat's key, without leases */

typedef struct fy_pub {
    struct fy_pub *next;
    char key[FY_MDSVC_KEY_MAX];
    void *blob;
    size_t len;
} fy_pub;

typedef struct fy_peer {
    struct fy_peer *next;
    char name[FERRY_NAME_MAX + 1];
    char key[FY_MDSVC_KEY_MAX];
    int64_t mod_rev;  /* of the value loaded last (or refused) */
    int64_t beat_rev; /* without leases: the heartbeat's value seen last */
    uint64_t beat_ns; /* when it was seen to change (0: not yet seen) */
    int64_t pub_tok;  /* its publication token when the value was read (0: none) */
} fy_peer;

struct fy_mdsvc {
    ferry_agent *agent;
    const fy_mdsvc_ops *ops;
    void *cli;
    char ns[FY_MDSVC_NS_MAX + 1];
    uint32_t ttl_s, watch_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_bool stop;
    pthread_t tid;
    int64_t lease;       /* 0: none granted (yet, or any more) */
    uint64_t renewed_ns; /* last keepalive that the store answered */
    uint64_t beat_ns;    /* without leases: the last heartbeat written */
    uint64_t beats, pub_seq;
    bool unreachable; /* the keeper's last call failed: log once */
    fy_pub *pubs;
    fy_peer *peers;
    size_t num_peers;
};

/* ---- configuration ---- */

static const char *fy_env2(const char *a, const char *b)
{
    const char *v = getenv(a);
    return v && v[0] ? v : getenv(b);
}

static uint32_t fy_env_u32(const char *name, uint32_t dflt)
{
    const char *v = getenv(name);
    char *end;
    unsigned long n = v ? strtoul(v, &end, 10) : 0;
    return v && *v && !*end && n > 0 && n <= UINT32_MAX ? (uint32_t)n : dflt;
}

static uint32_t fy_pick(uint32_t configured, const char *env, uint32_t dflt)
{
    return configured ? configured : fy_env_u32(env, dflt);
}

static bool fy_set(const char *v)
{
    return v && v[0];
}

/* Which store, and where: the config's fields first (etcd, then TCPStore),
 * then the environment's in the same order. NULL: none configured. */
static const fy_mdsvc_ops *fy_mdsvc_pick(const ferry_agent *agent, const char **where)
{
    const char *etcd_env = fy_env2("FERRY_ETCD_ENDPOINTS", "NIXL_ETCD_ENDPOINTS");
    const char *ts_env = fy_env2("FERRY_TCPSTORE_ENDPOINT", "NIXL_TCPSTORE_ENDPOINT");
    const struct {
        const char *where;
        const fy_mdsvc_ops *ops;
    } choice[] = {{agent->cfg.etcd_endpoints, &fy_mdsvc_etcd_ops},
                  {agent->cfg.tcpstore_endpoint, &fy_mdsvc_tcpstore_ops},
                  {etcd_env, &fy_mdsvc_etcd_ops},
                  {ts_env, &fy_mdsvc_tcpstore_ops}};
    for (size_t i = 0; i < sizeof(choice) / sizeof(choice[0]); i++) {
        if (fy_set(choice[i].where)) {
            *where = choice[i].where;
            return choice[i].ops;
        }
    }
    return NULL;
}

static ferry_status fy_mdsvc_namespace(struct fy_mdsvc *e)
{
    const char *ns = e->agent->cfg.etcd_namespace;
    if (!ns || !ns[0])
        ns = fy_env2("FERRY_ETCD_NAMESPACE", "NIXL_ETCD_NAMESPACE");
    if (!ns || !ns[0])
        ns = FY_MDSVC_NS_DEFAULT;
    if (strlen(ns) > FY_MDSVC_NS_MAX) {
        FY_SC_ERR("%s namespace longer than %u bytes", e->ops->name, FY_MDSVC_NS_MAX);
        return FERRY_ERR_INVALID_PARAM;
    }
    snprintf(e->ns, sizeof(e->ns), "%s", ns);
    return FERRY_OK;
}

static void fy_mdsvc_key(const struct fy_mdsvc *e, const char *agent, const char *label, char *key)
{
    snprintf(key, FY_MDSVC_KEY_MAX, "%s%s/%s", e->ns, agent,
             label && label[0] ? label : FY_SC_DEFAULT_LABEL);
}

/* The error line of a failed call names the key and keeps the client's
 * reason ("etcd unreachable: ...") in the detail. */
static void fy_mdsvc_fail(const struct fy_mdsvc *e, const char *what, const char *key)
{
    char cause[256];
    snprintf(cause, sizeof(cause), "%s", fy_md_detail_get());
    FY_SC_ERR("%s: cannot %s %s: %s", e->ops->name, what, key, cause);
}

/* ---- the lease and what is published on it (under e->mu) ---- */

static ferry_status fy_lease_ensure(struct fy_mdsvc *e)
{
    if (e->lease || !e->ops->lease_grant)
        return FERRY_OK; /* held, or a store without leases */
    ferry_status rc = e->ops->lease_grant(e->cli, e->ttl_s, &e->lease);
    if (rc == FERRY_OK)
        e->renewed_ns = fy_now_ns();
    return rc;
}

static ferry_status fy_pub_keep(struct fy_mdsvc *e, const char *key, const void *blob, size_t len)
{
    fy_pub *p = e->pubs;
    while (p && strcmp(p->key, key))
        p = p->next;
    void *copy = malloc(len ? len : 1);
    if (!copy || (!p && !(p = calloc(1, sizeof(*p))))) {
        free(copy);
        return FERRY_ERR_NO_MEMORY;
    }
    if (!p->key[0]) {
        snprintf(p->key, sizeof(p->key), "%s", key);
        p->next = e->pubs;
        e->pubs = p;
    }
    free(p->blob);
    memcpy(copy, blob, len);
    p->blob = copy;
    p->len = len;
    return FERRY_OK;
}

static void fy_pubs_free(struct fy_mdsvc *e)
{
    while (e->pubs) {
        fy_pub *p = e->pubs;
        e->pubs = p->next;
        free(p->blob);
        free(p);
    }
}

/* Everything published, again, on a new lease. */
static void fy_pubs_republish(struct fy_mdsvc *e)
{
    for (fy_pub *p = e->pubs; p; p = p->next)
        if (e->ops->put(e->cli, p->key, p->blob, p->len, e->lease) != FERRY_OK)
            return;
    if (e->pubs)
        FY_SC_WARN("%s: published %s's metadata again on a new lease", e->ops->name,
                   e->agent->name);
}

/* Under e->mu. A store without leases: writes the heartbeat that
 * followers watch change. */
static ferry_status fy_beat(struct fy_mdsvc *e)
{
    char key[FY_MDSVC_KEY_MAX], val[48];
    fy_mdsvc_key(e, e->agent->name, FY_MDSVC_ALIVE_LABEL, key);
    int n = snprintf(val, sizeof(val), "%016" PRIx64 "-%" PRIu64 "-%" PRIu64, e->agent->uid,
                     e->pub_seq, ++e->beats);
    ferry_status rc = e->ops->put(e->cli, key, val, (size_t)n, 0);
    if (rc == FERRY_OK)
        e->beat_ns = fy_now_ns();
    return rc;
}

/* Deletes this agent's keys: all under prefix where the store deletes by
 * prefix, else each key published and the heartbeat (prefix NULL: only
 * those). */
static ferry_status fy_pubs_delete(struct fy_mdsvc *e, const char *prefix)
{
    if (prefix && e->ops->del_prefix)
        return e->ops->del_prefix(e->cli, prefix);
    ferry_status rc = FERRY_OK;
    for (fy_pub *p = e->pubs; p && rc == FERRY_OK; p = p->next)
        rc = e->ops->del(e->cli, p->key);
    char key[FY_MDSVC_KEY_MAX];
    fy_mdsvc_key(e, e->agent->name, FY_MDSVC_ALIVE_LABEL, key);
    if (rc == FERRY_OK && e->beat_ns)
        rc = e->ops->del(e->cli, key);
    if (rc == FERRY_OK)
        e->beat_ns = 0;
    return rc;
}

ferry_status fy_mdsvc_publish(ferry_agent *agent, const char *label, const void *blob, size_t len)
{
    struct fy_mdsvc *e = agent->sc->svc;
    char key[FY_MDSVC_KEY_MAX];
    fy_mdsvc_key(e, agent->name, label, key);
    pthread_mutex_lock(&e->mu);
    ferry_status rc = fy_lease_ensure(e);
    if (rc == FERRY_OK)
        rc = e->ops->put(e->cli, key, blob, len, e->lease);
    /* A heartbeat with every publication: it tells followers that a value
     * changed (they read values only then), and a peer that fetches the
     * first one sees a heartbeat even if this agent dies at once. */
    if (rc == FERRY_OK && !e->ops->lease_grant) {
        e->pub_seq++;
        rc = fy_beat(e);
    }
    if (rc == FERRY_OK)
        rc = fy_pub_keep(e, key, blob, len);
    pthread_mutex_unlock(&e->mu);
    if (rc != FERRY_OK)
        fy_mdsvc_fail(e, "publish", key);
    return rc;
}

ferry_status fy_mdsvc_invalidate_local(ferry_agent *agent)
{
    struct fy_mdsvc *e = agent->sc->svc;
    char prefix[FY_MDSVC_KEY_MAX];
    snprintf(prefix, sizeof(prefix), "%s%s/", e->ns, agent->name);
    pthread_mutex_lock(&e->mu);
    ferry_status rc = fy_pubs_delete(e, prefix);
    if (rc == FERRY_OK)
        fy_pubs_free(e); /* nothing to publish again after a lease loss */
    pthread_mutex_unlock(&e->mu);
    if (rc != FERRY_OK)
        fy_mdsvc_fail(e, "delete the keys under", prefix);
    return rc;
}

/* ---- fetching peers ---- */

static void fy_peer_watch(struct fy_mdsvc *e, const char *name, const char *key, int64_t rev)
{
    pthread_mutex_lock(&e->mu);
    fy_peer *p = e->peers;
    while (p && strcmp(p->key, key))
        p = p->next;
    if (!p && e->num_peers < FY_MDSVC_MAX_PEERS && (p = calloc(1, sizeof(*p)))) {
        snprintf(p->name, sizeof(p->name), "%s", name);
        snprintf(p->key, sizeof(p->key), "%s", key);
        p->next = e->peers;
        e->peers = p;
        e->num_peers++;
    }
    if (p)
        p->mod_rev = rev;
    pthread_mutex_unlock(&e->mu);
}

static ferry_status fy_mdsvc_load(struct fy_mdsvc *e, const char *name, const char *key,
                                  const fy_mdsvc_kv *kv)
{
    char loaded[FERRY_NAME_MAX + 1];
    ferry_status rc = ferry_md_load(e->agent, kv->val, kv->len, loaded, sizeof(loaded));
    if (rc == FERRY_OK && strcmp(loaded, name)) {
        FY_SC_ERR("%s: %s holds the metadata of %s, not of %s", e->ops->name, key, loaded, name);
        rc = FERRY_ERR_BAD_METADATA;
    }
    return rc;
}

/* Gets key; when absent, watches for it up to watch_ms, then gets again. */
static ferry_status fy_mdsvc_get_or_wait(struct fy_mdsvc *e, const char *key, fy_mdsvc_kv *kv)
{
    ferry_status rc = e->ops->get(e->cli, key, kv);
    if (rc != FERRY_ERR_NOT_FOUND)
        return rc;
    rc = e->ops->wait_put(e->cli, key, kv->header_rev + 1, e->watch_ms);
    if (rc == FERRY_OK)
        return e->ops->get(e->cli, key, kv);
    if (rc == FERRY_ERR_TIMEOUT)
        FY_SC_ERR("%s: no %s after %u ms", e->ops->name, key, e->watch_ms);
    return rc == FERRY_ERR_TIMEOUT ? FERRY_ERR_NOT_FOUND : rc;
}

ferry_status fy_mdsvc_fetch(ferry_agent *agent, const char *name, const char *label)
{
    struct fy_mdsvc *e = agent->sc->svc;
    char key[FY_MDSVC_KEY_MAX];
    fy_mdsvc_key(e, name, label, key);
    fy_mdsvc_kv kv;
    ferry_status rc = fy_mdsvc_get_or_wait(e, key, &kv);
    if (rc == FERRY_OK)
        rc = fy_mdsvc_load(e, name, key, &kv);
    if (rc == FERRY_OK)
        fy_peer_watch(e, name, key, kv.mod_rev);
    free(kv.val);
    return rc;
}

/* ---- the keeper thread ---- */

static void fy_keeper_unreachable(struct fy_mdsvc *e, bool now)
{
    if (now && !e->unreachable)
        FY_SC_WARN("%s unreachable: %s keeps trying", e->ops->name, e->agent->name);
    else if (!now && e->unreachable)
        FY_SC_WARN("%s reachable again", e->ops->name);
    e->unreachable = now;
}

/* Under e->mu. */
static void fy_keeper_renew(struct fy_mdsvc *e)
{
    uint64_t period_ns = (uint64_t)e->ttl_s * 1000000000u / 3;
    if (!e->lease || fy_now_ns() - e->renewed_ns < period_ns)
        return;
    ferry_status rc = e->ops->lease_keepalive(e->cli, e->lease);
    if (rc == FERRY_ERR_NOT_FOUND) {
        FY_SC_WARN("%s: the lease of %s expired", e->ops->name, e->agent->name);
        e->lease = 0;
        rc = fy_lease_ensure(e);
        if (rc == FERRY_OK)
            fy_pubs_republish(e);
    }
    if (rc == FERRY_OK)
        e->renewed_ns = fy_now_ns();
    fy_keeper_unreachable(e, rc == FERRY_ERR_IO);
}

/* Under e->mu: every third of the TTL once something was published (none
 * after invalidate_local). */
static void fy_keeper_beat(struct fy_mdsvc *e)
{
    uint64_t period_ns = (uint64_t)e->ttl_s * 1000000000u / 3;
    if (e->ops->lease_grant || !e->pubs || fy_now_ns() - e->beat_ns < period_ns)
        return;
    fy_keeper_unreachable(e, fy_beat(e) == FERRY_ERR_IO);
}

static void fy_peer_drop(struct fy_mdsvc *e, const char *key)
{
    pthread_mutex_lock(&e->mu);
    for (fy_peer **pp = &e->peers; *pp; pp = &(*pp)->next) {
        if (!strcmp((*pp)->key, key)) {
            fy_peer *p = *pp;
            *pp = p->next;
            free(p);
            e->num_peers--;
            break;
        }
    }
    pthread_mutex_unlock(&e->mu);
}

/* Records a peer's heartbeat as seen changing now. */
static void fy_peer_beat_seen(struct fy_mdsvc *e, const char *key, int64_t rev)
{
    pthread_mutex_lock(&e->mu);
    for (fy_peer *p = e->peers; p; p = p->next)
        if (!strcmp(p->key, key)) {
            p->beat_rev = rev;
            p->beat_ns = fy_now_ns();
        }
    pthread_mutex_unlock(&e->mu);
}

static void fy_peer_tok_seen(struct fy_mdsvc *e, const char *key, int64_t tok)
{
    pthread_mutex_lock(&e->mu);
    for (fy_peer *p = e->peers; p; p = p->next)
        if (!strcmp(p->key, key))
            p->pub_tok = tok;
    pthread_mutex_unlock(&e->mu);
}

/* A heartbeat's "<uid>-<publications>" part, hashed (0: not of that form). */
static int64_t fy_beat_token(const fy_mdsvc_kv *kv)
{
    const uint8_t *end = kv->val + kv->len, *dash = memchr(kv->val, '-', kv->len);
    const uint8_t *second = dash ? memchr(dash + 1, '-', (size_t)(end - dash - 1)) : NULL;
    return second ? (int64_t)(fy_ts_hash(kv->val, (size_t)(second - kv->val)) >> 1) | 1 : 0;
}

/* A store without leases: true when the peer's heartbeat, once seen, has
 * not changed for a TTL (a crashed peer). *tok: its publication token. */
static bool fy_peer_silent(struct fy_mdsvc *e, const fy_peer *snap, int64_t *tok)
{
    *tok = 0;
    if (e->ops->lease_grant)
        return false;
    char key[FY_MDSVC_KEY_MAX];
    fy_mdsvc_key(e, snap->name, FY_MDSVC_ALIVE_LABEL, key);
    fy_mdsvc_kv kv;
    ferry_status rc = e->ops->get(e->cli, key, &kv);
    if (rc == FERRY_OK)
        *tok = fy_beat_token(&kv);
    free(kv.val);
    if (rc == FERRY_OK && (!snap->beat_ns || kv.mod_rev != snap->beat_rev)) {
        fy_peer_beat_seen(e, snap->key, kv.mod_rev);
        return false;
    }
    uint64_t ttl_ns = (uint64_t)e->ttl_s * 1000000000u;
    return (rc == FERRY_OK || rc == FERRY_ERR_NOT_FOUND) && snap->beat_ns &&
           fy_now_ns() - snap->beat_ns > ttl_ns;
}

/* Without revisions: the value (its hash is the revision), read only when
 * the heartbeat says the peer published since it was last read. */
static ferry_status fy_peer_value(struct fy_mdsvc *e, const fy_peer *snap, int64_t tok,
                                  fy_mdsvc_kv *kv)
{
    if (tok && tok == snap->pub_tok) {
        *kv = (fy_mdsvc_kv){.mod_rev = snap->mod_rev};
        return FERRY_OK;
    }
    ferry_status rc = e->ops->get(e->cli, snap->key, kv);
    if (rc == FERRY_OK && tok)
        fy_peer_tok_seen(e, snap->key, tok);
    return rc;
}

/* A followed key's revision (NOT_FOUND: gone, or its agent silent). */
static ferry_status fy_peer_read(struct fy_mdsvc *e, const fy_peer *snap, fy_mdsvc_kv *kv)
{
    int64_t tok;
    if (fy_peer_silent(e, snap, &tok)) {
        *kv = (fy_mdsvc_kv){0};
        return FERRY_ERR_NOT_FOUND;
    }
    return e->ops->rev ? e->ops->rev(e->cli, snap->key, kv) : fy_peer_value(e, snap, tok, kv);
}

/* Loads a key written again (reading its value now where only its
 * revision was read). A refused value is not tried again (its error is
 * logged once). */
static void fy_peer_reload(struct fy_mdsvc *e, const fy_peer *snap, fy_mdsvc_kv *kv)
{
    FY_SC_DBG("%s: %s published again: loading it", e->ops->name, snap->key);
    ferry_status rc = FERRY_OK;
    if (e->ops->rev) {
        free(kv->val);
        rc = e->ops->get(e->cli, snap->key, kv);
    }
    if (rc == FERRY_OK)
        fy_mdsvc_load(e, snap->name, snap->key, kv);
    if (rc == FERRY_OK)
        fy_peer_watch(e, snap->name, snap->key, kv->mod_rev);
}

static void fy_peer_check(struct fy_mdsvc *e, const fy_peer *snap)
{
    fy_mdsvc_kv kv;
    ferry_status rc = fy_peer_read(e, snap, &kv);
    if (rc == FERRY_ERR_NOT_FOUND) {
        FY_SC_WARN("%s: %s is gone (or its agent silent for %u s): invalidating %s", e->ops->name,
                   snap->key, e->ttl_s, snap->name);
        /* Internal: the agent's handle is gone already while its
         * destruction stops this thread. */
        fy_md_invalidate(e->agent, snap->name);
        fy_peer_drop(e, snap->key);
    } else if (rc == FERRY_OK && kv.mod_rev != snap->mod_rev) {
        fy_peer_reload(e, snap, &kv);
    }
    free(kv.val);
}

/* Copies the peer list so that the network calls run without the lock. */
static void fy_keeper_peers(struct fy_mdsvc *e)
{
    pthread_mutex_lock(&e->mu);
    size_t n = e->num_peers, i = 0;
    fy_peer *snap = n ? malloc(n * sizeof(*snap)) : NULL;
    for (fy_peer *p = e->peers; snap && p; p = p->next)
        snap[i++] = *p;
    pthread_mutex_unlock(&e->mu);
    for (size_t k = 0; k < i && !e->stop; k++)
        fy_peer_check(e, &snap[k]);
    free(snap);
}

static void fy_keeper_sleep(struct fy_mdsvc *e)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + FY_MDSVC_PEER_POLL_MS * 1000000ull;
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    if (!e->stop)
        pthread_cond_timedwait(&e->cv, &e->mu, &ts);
}

static void *fy_keeper_main(void *arg)
{
    struct fy_mdsvc *e = arg;
    fy_log_thread_agent(e->agent->name);
    pthread_mutex_lock(&e->mu);
    while (!e->stop) {
        fy_keeper_renew(e);
        fy_keeper_beat(e);
        pthread_mutex_unlock(&e->mu);
        fy_keeper_peers(e);
        pthread_mutex_lock(&e->mu);
        fy_keeper_sleep(e);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

/* ---- lifecycle ---- */

static void fy_mdsvc_free(struct fy_mdsvc *e)
{
    fy_pubs_free(e);
    while (e->peers) {
        fy_peer *p = e->peers;
        e->peers = p->next;
        free(p);
    }
    if (e->cli)
        e->ops->free(e->cli);
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

static ferry_status fy_mdsvc_new(ferry_agent *agent, const fy_mdsvc_ops *ops, const char *where,
                                 struct fy_mdsvc **out)
{
    struct fy_mdsvc *e = calloc(1, sizeof(*e));
    if (!e)
        return FERRY_ERR_NO_MEMORY;
    e->agent = agent;
    e->ops = ops;
    e->ttl_s = fy_pick(agent->cfg.etcd_ttl_s, "FERRY_ETCD_TTL_S", FY_MDSVC_TTL_DEFAULT);
    e->watch_ms = fy_pick(agent->cfg.etcd_watch_timeout_ms, "FERRY_ETCD_WATCH_TIMEOUT_MS",
                          FY_MDSVC_WATCH_DEFAULT);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&e->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&e->mu, NULL);
    ferry_status rc = fy_mdsvc_namespace(e);
    if (rc == FERRY_OK)
        rc = ops->new (where, agent->cfg.sc_timeout_ms, &e->cli);
    if (rc != FERRY_OK) {
        fy_mdsvc_free(e);
        return rc;
    }
    *out = e;
    return FERRY_OK;
}

/* No store configured: the service is off (OK, *out NULL). The store need
 * not be up yet: nothing is asked of it before the first call. */
ferry_status fy_mdsvc_start(ferry_agent *agent, struct fy_mdsvc **out)
{
    const char *where = NULL;
    const fy_mdsvc_ops *ops = fy_mdsvc_pick(agent, &where);
    *out = NULL;
    if (!ops)
        return FERRY_OK;
    if (agent->cfg.sync_mode == FERRY_SYNC_NONE) {
        FY_SC_ERR("agent %s: %s mode needs a locking sync mode, not FERRY_SYNC_NONE", agent->name,
                  ops->name);
        return FERRY_ERR_INVALID_PARAM;
    }
    struct fy_mdsvc *e;
    ferry_status rc = fy_mdsvc_new(agent, ops, where, &e);
    if (rc != FERRY_OK)
        return rc;
    if (pthread_create(&e->tid, NULL, fy_keeper_main, e) != 0) {
        FY_SC_ERR("cannot start the %s keeper thread", ops->name);
        fy_mdsvc_free(e);
        return FERRY_ERR_NO_RESOURCES;
    }
    *out = e;
    return FERRY_OK;
}

/* This agent's keys go at once rather than at expiry: the lease is
 * revoked, or (a store without leases) the keys are deleted. */
void fy_mdsvc_stop(struct fy_mdsvc *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    e->stop = true;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->tid, NULL);
    if (e->lease)
        e->ops->lease_revoke(e->cli, e->lease);
    else if (!e->ops->lease_grant && e->pubs)
        fy_pubs_delete(e, NULL);
    fy_mdsvc_free(e);
}
