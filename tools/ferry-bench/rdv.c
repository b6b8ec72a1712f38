/* SPDX-License-Identifier: Apache-2.0 */
/* Processes started apart find each other through etcd, as nixlbench's
 * ETCD runtime has them do: the processes given the same --etcd_endpoints
 * and --benchmark_group form a group of `world` processes. Each claims the
 * lowest free rank (a key created in a transaction, so two processes never
 * get the same one), publishes what its peers need under the group's
 * prefix, and waits at barriers until every rank has arrived. Every key
 * sits on the process's lease, kept alive by a thread: leaving revokes it,
 * which deletes them all at once, and a killed process's keys go by
 * themselves when the lease runs out. The client is ferry's own etcd
 * client (src/metadata/etcd.c, etcd's v3 JSON gateway). */
#include "common.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "metadata/etcd.h"

/* How long a killed process's keys (its rank among them) outlive it. */
#define FB_RDV_TTL_S     10
#define FB_RDV_REQ_MS    5000u  /* one etcd request */
#define FB_RDV_POLL_US   20000u /* between two looks at a barrier */
#define FB_RDV_KEY_MAX   256
#define FB_RDV_GROUP_MAX 64

struct fb_rdv {
    fy_etcd *etcd;
    const char *endpoints, *group;
    char prefix[FB_RDV_KEY_MAX / 2]; /* "/ferry/bench/<group>/" */
    unsigned world, rank;
    double timeout_s;
    int64_t lease;
    pthread_t keeper;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
};

/* The group this process is in, left at exit (fb_die's included), so
 * that its rank is free again at once; a killed process's goes with its
 * lease. */
static fb_rdv *fb_rdv_live;

/* ---- keys ---- */

static void fb_rdv_key(const fb_rdv *r, char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fb_rdv_key(const fb_rdv *r, char *key, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(key, FB_RDV_KEY_MAX, "%s", r->prefix);
    va_start(ap, fmt);
    vsnprintf(key + n, FB_RDV_KEY_MAX - (size_t)n, fmt, ap);
    va_end(ap);
}

/* A group name is one key segment: no '/', nothing etcd tools print badly. */
static void fb_rdv_check_group(const char *group)
{
    size_t n = strlen(group);
    bool ok = n && n <= FB_RDV_GROUP_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = (group[i] >= 'a' && group[i] <= 'z') || (group[i] >= 'A' && group[i] <= 'Z') ||
             (group[i] >= '0' && group[i] <= '9') || strchr("._-", group[i]);
    if (!ok)
        fb_exit(FB_EXIT_USAGE,
                "--benchmark_group '%s': want 1 to %d letters, digits, '.', '_' or '-'", group,
                FB_RDV_GROUP_MAX);
}

static void fb_rdv_check_endpoints(const char *endpoints)
{
    fy_etcd *c;
    if (fy_etcd_new(endpoints, FB_RDV_REQ_MS, &c) != FERRY_OK)
        fb_exit(FB_EXIT_USAGE, "--etcd_endpoints %s: want comma-separated URLs", endpoints);
    fy_etcd_free(c);
}

bool fb_rdv_cli_check(fb_rdv_cli *cli, bool quiet)
{
    if (cli->runtime_type && strcasecmp(cli->runtime_type, "ETCD"))
        fb_exit(FB_EXIT_USAGE,
                "--runtime_type %s: want ETCD (nixlbench's ASIO runtime is not supported; "
                "without --runtime_type the tool starts its own processes on this host)",
                cli->runtime_type);
    if (cli->runtime_type && !cli->endpoints)
        cli->endpoints = FB_ETCD_DEFAULT_ENDPOINTS;
    if (!cli->endpoints) {
        if ((cli->group || cli->timeout_s != (uint64_t)FB_TIMEOUT_S) && !quiet)
            fb_warn("--benchmark_group and --etcd_timeout apply to etcd mode "
                    "(--etcd_endpoints); ignored");
        return false;
    }
    cli->group = cli->group ? cli->group : FB_ETCD_DEFAULT_GROUP;
    fb_rdv_check_group(cli->group);
    fb_rdv_check_endpoints(cli->endpoints);
    if (!cli->timeout_s)
        fb_exit(FB_EXIT_USAGE, "want --etcd_timeout >= 1 (seconds)");
    return true;
}

/* ---- the lease and its keeper ---- */

static void *fb_rdv_keeper_main(void *arg)
{
    fb_rdv *r = arg;
    bool warned = false;
    pthread_mutex_lock(&r->lock);
    while (!r->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += FB_RDV_TTL_S / 3;
        pthread_cond_timedwait(&r->wake, &r->lock, &ts);
        if (r->stop)
            break;
        pthread_mutex_unlock(&r->lock);
        ferry_status rc = fy_etcd_lease_keepalive(r->etcd, r->lease);
        if (rc != FERRY_OK && !warned)
            fb_warn("etcd lease of group %s: %s (its keys may be gone)", r->group,
                    ferry_strerror(rc));
        warned = warned || rc != FERRY_OK;
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

static void fb_rdv_unreachable(const fb_rdv *r, const char *what, ferry_status rc)
{
    fb_die("etcd at %s (--etcd_endpoints): %s: %s; is etcd running there?", r->endpoints, what,
           ferry_strerror(rc));
}

static void fb_rdv_connect(fb_rdv *r)
{
    fb_ok(fy_etcd_new(r->endpoints, FB_RDV_REQ_MS, &r->etcd), "etcd client");
    ferry_status rc = fy_etcd_lease_grant(r->etcd, FB_RDV_TTL_S, &r->lease);
    if (rc != FERRY_OK)
        fb_rdv_unreachable(r, "lease", rc);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    if (pthread_create(&r->keeper, NULL, fb_rdv_keeper_main, r))
        fb_die("cannot start the etcd lease thread");
}

static void fb_rdv_stop_keeper(fb_rdv *r)
{
    pthread_mutex_lock(&r->lock);
    r->stop = true;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->keeper, NULL);
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->lock);
}

void fb_rdv_leave(fb_rdv *r)
{
    if (!r)
        return;
    fb_rdv_live = NULL;
    fb_rdv_stop_keeper(r);
    ferry_status rc = fy_etcd_lease_revoke(r->etcd, r->lease);
    if (rc != FERRY_OK)
        fb_warn("leaving group %s: %s (its keys go when the lease runs out, in %d s)", r->group,
                ferry_strerror(rc), FB_RDV_TTL_S);
    fy_etcd_free(r->etcd);
    free(r);
}

static void fb_rdv_atexit(void)
{
    fb_rdv_leave(fb_rdv_live);
}

/* ---- values ---- */

void fb_rdv_put(fb_rdv *r, const char *name, const void *val, size_t len)
{
    char key[FB_RDV_KEY_MAX];
    fb_rdv_key(r, key, "%s", name);
    ferry_status rc = fy_etcd_put(r->etcd, key, val, len, r->lease);
    if (rc != FERRY_OK)
        fb_die("etcd at %s (--etcd_endpoints): writing %s (%zu bytes): %s; is etcd running "
               "there, and does it take values this large (--max-request-bytes)?",
               r->endpoints, key, len, ferry_strerror(rc));
}

void *fb_rdv_get(fb_rdv *r, const char *name, size_t *len)
{
    char key[FB_RDV_KEY_MAX];
    fy_etcd_kv kv;
    fb_rdv_key(r, key, "%s", name);
    ferry_status rc = fy_etcd_get(r->etcd, key, &kv);
    if (rc == FERRY_ERR_NOT_FOUND)
        fb_die("group %s: %s is missing in etcd (its process left the group)", r->group, key);
    if (rc != FERRY_OK)
        fb_rdv_unreachable(r, key, rc);
    char *val = fb_alloc(kv.len + 1); /* NUL-terminated for text */
    memcpy(val, kv.val, kv.len);
    free(kv.val);
    *len = kv.len;
    return val;
}

void fb_rdv_put_u64s(fb_rdv *r, const char *name, const uint64_t *v, size_t n)
{
    char *text = fb_alloc(n * 21 + 1);
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(text + len, "%s%" PRIu64, i ? " " : "", v[i]);
    fb_rdv_put(r, name, text, len);
    free(text);
}

void fb_rdv_get_u64s(fb_rdv *r, const char *name, uint64_t *v, size_t n)
{
    size_t len, got = 0;
    char *text = fb_rdv_get(r, name, &len), *p = text, *end;
    for (; got < n; got++, p = end) {
        v[got] = strtoull(p, &end, 10);
        if (end == p)
            break;
    }
    if (got != n || *p)
        fb_die("group %s: %s holds '%.60s', not %zu numbers (another program in the group?)",
               r->group, name, text, n);
    free(text);
}

/* ---- ranks and barriers ---- */

static int64_t fb_rdv_count(fb_rdv *r, const char *what)
{
    char key[FB_RDV_KEY_MAX];
    int64_t n = 0;
    fb_rdv_key(r, key, "%s", what);
    ferry_status rc = fy_etcd_count(r->etcd, key, &n);
    if (rc != FERRY_OK)
        fb_rdv_unreachable(r, key, rc);
    return n;
}

/* The lowest free rank, or none: the group already has its processes.
 * A rank's key holds its process's options. */
static bool fb_rdv_claim(fb_rdv *r, const char *options)
{
    char key[FB_RDV_KEY_MAX];
    for (r->rank = 0; r->rank < r->world; r->rank++) {
        bool created = false;
        fb_rdv_key(r, key, "rank/%u", r->rank);
        ferry_status rc =
            fy_etcd_create(r->etcd, key, options, strlen(options), r->lease, &created);
        if (rc != FERRY_OK)
            fb_rdv_unreachable(r, key, rc);
        if (created)
            return true;
    }
    return false;
}

void fb_rdv_barrier(fb_rdv *r, const char *name)
{
    char mine[FB_RDV_KEY_MAX], arrived[FB_RDV_KEY_MAX / 2];
    snprintf(arrived, sizeof(arrived), "barrier/%s/", name);
    snprintf(mine, sizeof(mine), "%s%u", arrived, r->rank);
    fb_rdv_put(r, mine, "1", 1);
    double deadline = fb_now_us() + r->timeout_s * 1e6;
    int64_t n;
    while ((n = fb_rdv_count(r, arrived)) < r->world) {
        if (fb_now_us() > deadline)
            fb_die("group %s at %s: timed out after %.0f s (--etcd_timeout) at barrier '%s': "
                   "%lld of %u processes there (%lld in the group); start the others with the "
                   "same --etcd_endpoints and --benchmark_group",
                   r->group, r->endpoints, r->timeout_s, name, (long long)n, r->world,
                   (long long)fb_rdv_count(r, "rank/"));
        usleep(FB_RDV_POLL_US);
    }
}

/* Every rank runs the same sweep: a process whose options differ from
 * rank 0's would wait for messages that never come. Checked against rank
 * 0's key (there when this rank was claimed) before the first barrier,
 * so that rank 0 times out there saying one process is missing. */
static void fb_rdv_agree(fb_rdv *r, const char *options)
{
    size_t len;
    char *first = r->rank ? fb_rdv_get(r, "rank/0", &len) : NULL;
    if (first && strcmp(first, options))
        fb_exit(FB_EXIT_USAGE,
                "group %s: options differ from rank 0's; rank 0 runs\n  %s\nthis process "
                "(rank %u) would run\n  %s",
                r->group, first, r->rank, options);
    free(first);
    fb_rdv_barrier(r, "joined");
}

fb_rdv *fb_rdv_join(const fb_rdv_cli *cli, unsigned world, const char *options)
{
    fb_rdv *r = fb_alloc(sizeof(*r));
    *r = (fb_rdv){.endpoints = cli->endpoints,
                  .group = cli->group,
                  .world = world,
                  .timeout_s = (double)cli->timeout_s};
    snprintf(r->prefix, sizeof(r->prefix), "/ferry/bench/%s/", cli->group);
    fb_rdv_connect(r);
    fb_rdv_live = r;
    static bool at_exit;
    if (!at_exit && !atexit(fb_rdv_atexit))
        at_exit = true;
    if (!fb_rdv_claim(r, options))
        fb_die("group %s at %s is full: its %u processes are there already (use another "
               "--benchmark_group, or wait for that run to end; a killed run's ranks free "
               "themselves within %d s)",
               r->group, r->endpoints, r->world, FB_RDV_TTL_S);
    fb_rdv_agree(r, options);
    return r;
}

unsigned fb_rdv_rank(const fb_rdv *r)
{
    return r->rank;
}

void fb_rdv_watch(fb_rdv *r, unsigned rank)
{
    char key[FB_RDV_KEY_MAX];
    fy_etcd_kv kv;
    fb_rdv_key(r, key, "rank/%u", rank);
    ferry_status rc = fy_etcd_get_rev(r->etcd, key, &kv);
    free(kv.val);
    if (rc == FERRY_ERR_NOT_FOUND)
        fb_die("group %s: rank %u left without saying goodbye (it ended, or was killed %d s "
               "ago at most)",
               r->group, rank, FB_RDV_TTL_S);
    if (rc != FERRY_OK)
        fb_warn("group %s: cannot ask etcd whether rank %u is there: %s", r->group, rank,
                ferry_strerror(rc));
}

/* ---- agents' metadata ---- */

void fb_rdv_put_md(fb_rdv *r, ferry_agent *a)
{
    void *blob;
    size_t len;
    char name[32];
    fb_ok(ferry_md_get_local(a, &blob, &len), "own metadata");
    snprintf(name, sizeof(name), "md/%u", r->rank);
    fb_rdv_put(r, name, blob, len);
    ferry_free(blob);
}

void fb_rdv_load_md(fb_rdv *r, ferry_agent *a, unsigned rank, const char *agent)
{
    char key[32], name[FERRY_NAME_MAX + 1];
    size_t len;
    snprintf(key, sizeof(key), "md/%u", rank);
    void *blob = fb_rdv_get(r, key, &len);
    ferry_status rc = ferry_md_load(a, blob, len, name, sizeof(name));
    free(blob);
    if (rc != FERRY_OK)
        fb_die("group %s: metadata of rank %u: %s", r->group, rank, ferry_strerror(rc));
    if (strcmp(name, agent))
        fb_die("group %s: rank %u is agent %s, expected %s (another program in the group?)",
               r->group, rank, name, agent);
}
