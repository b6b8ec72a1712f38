/* SPDX-License-Identifier: Apache-2.0 */
/* The Prometheus endpoint, over libmicrohttpd.
 *
 * One fy_prom_server per port in the process, holding the agents that
 * export there. Its thread either publishes (another process serves the
 * port) or idles (this process serves it); libmicrohttpd's own thread
 * answers scrapes. Sharing between processes (docs/telemetry.md, "One
 * endpoint per host"): a process that cannot bind the port writes its
 * samples to <dir>/prometheus-<port>/<pid>.prom (write to a temporary
 * file, then rename: a reader sees a whole file) every interval and tries
 * to bind again; the serving process adds every such file whose process
 * is alive to each scrape and removes those of dead ones. Every family's
 * HELP/TYPE lines are written by the server from its own table, so the
 * samples of all processes merge into one valid exposition.
 *
 * Locking: fy_prom_mu guards the list of servers and each server's list
 * of agents; a scrape and a publication hold it while they take their
 * snapshots, so an agent that detaches is never read after. */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "telemetry/prom.h"
#include "telemetry/ring.h"

#ifdef FERRY_HAVE_MICROHTTPD
#include <microhttpd.h>

#define FY_PROM_LOG(lvl, ...) fy_log(lvl, "telemetry", __VA_ARGS__)

typedef struct fy_prom_server {
    struct fy_prom_server *next;
    uint16_t port;
    bool local;
    uint32_t interval_ms;
    char dir[600];             /* <telemetry dir>/prometheus-<port> */
    struct MHD_Daemon *daemon; /* NULL: publishing */
    fy_tm *agents;
    pthread_t tid;
    bool stop;
    pthread_cond_t cv;
} fy_prom_server;

static pthread_mutex_t fy_prom_mu = PTHREAD_MUTEX_INITIALIZER;
static fy_prom_server *fy_servers;

/* ---- samples ---- */

/* Appends every agent's samples of s to f (fy_prom_mu held). */
static void fy_prom_own_samples(fy_prom_server *s, FILE *f)
{
    for (fy_tm *tm = s->agents; tm; tm = tm->prom_next) {
        ferry_metrics *m;
        if (fy_tm_snapshot(tm, &m) != FERRY_OK)
            continue;
        fy_tm_samples(m, f);
        ferry_metrics_free(m);
    }
}

static void fy_prom_peer_path(const fy_prom_server *s, pid_t pid, const char *ext, char *buf,
                              size_t cap)
{
    snprintf(buf, cap, "%s/%ld.prom%s", s->dir, (long)pid, ext);
}

static void fy_prom_copy_file(const char *path, FILE *f)
{
    FILE *in = fopen(path, "re");
    char buf[4096];
    size_t n;
    while (in && (n = fread(buf, 1, sizeof(buf), in)) > 0)
        fwrite(buf, 1, n, f);
    if (in)
        fclose(in);
}

/* A peer file's process: alive (copied), gone (file removed), or this one. */
static void fy_prom_peer(const fy_prom_server *s, const char *name, FILE *f)
{
    char *end;
    long pid = strtol(name, &end, 10);
    char path[700];
    if (end == name || strcmp(end, ".prom") || pid == (long)getpid())
        return;
    fy_prom_peer_path(s, (pid_t)pid, "", path, sizeof(path));
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
        unlink(path);
    else
        fy_prom_copy_file(path, f);
}

static void fy_prom_peer_samples(const fy_prom_server *s, FILE *f)
{
    DIR *d = opendir(s->dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        fy_prom_peer(s, e->d_name, f);
    if (d)
        closedir(d);
}

/* The whole exposition of a scrape: ours and the peers', grouped. */
static char *fy_prom_render(fy_prom_server *s, size_t *len)
{
    char *samples = NULL, *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&samples, &n);
    if (!f)
        return NULL;
    pthread_mutex_lock(&fy_prom_mu);
    fy_prom_own_samples(s, f);
    pthread_mutex_unlock(&fy_prom_mu);
    fy_prom_peer_samples(s, f);
    fclose(f);
    FILE *g = samples ? open_memstream(&text, len) : NULL;
    if (g) {
        fy_tm_expose(samples, g);
        fclose(g);
    }
    free(samples);
    return text;
}

/* ---- serving ---- */

static enum MHD_Result fy_prom_reply(struct MHD_Connection *c, unsigned code, char *body,
                                     size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4");
    enum MHD_Result ok = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result fy_prom_handle(void *cls, struct MHD_Connection *c, const char *url,
                                      const char *method, const char *version, const char *upload,
                                      size_t *upload_len, void **state)
{
    (void)version, (void)upload, (void)upload_len, (void)state;
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return fy_prom_reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, NULL, 0);
    if (strcmp(url, "/metrics"))
        return fy_prom_reply(c, MHD_HTTP_NOT_FOUND, NULL, 0);
    size_t len = 0;
    char *text = fy_prom_render(cls, &len);
    if (!text)
        return fy_prom_reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, 0);
    return fy_prom_reply(c, MHD_HTTP_OK, text, len);
}

static struct MHD_Daemon *fy_prom_bind(fy_prom_server *s)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(s->port)};
    sa.sin_addr.s_addr = htonl(s->local ? INADDR_LOOPBACK : INADDR_ANY);
    /* AUTO: epoll on Linux; select() would fail in a process past 1024 fds. */
    return MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD, s->port, NULL, NULL, fy_prom_handle, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
}

/* ---- publishing ---- */

static void fy_prom_publish(fy_prom_server *s)
{
    char tmp[700], path[700];
    fy_prom_peer_path(s, getpid(), ".tmp", tmp, sizeof(tmp));
    fy_prom_peer_path(s, getpid(), "", path, sizeof(path));
    FILE *f = fopen(tmp, "we");
    if (!f)
        return;
    pthread_mutex_lock(&fy_prom_mu);
    fy_prom_own_samples(s, f);
    pthread_mutex_unlock(&fy_prom_mu);
    if (fclose(f) == 0)
        rename(tmp, path);
    else
        unlink(tmp);
}

static void fy_prom_unpublish(fy_prom_server *s)
{
    char path[700];
    fy_prom_peer_path(s, getpid(), "", path, sizeof(path));
    unlink(path);
}

/* Publishing: each interval, our samples to the file, then a try at the
 * port, which the serving process may have left. */
static void fy_prom_tick(fy_prom_server *s)
{
    fy_prom_publish(s);
    struct MHD_Daemon *d = fy_prom_bind(s);
    if (!d)
        return;
    fy_prom_unpublish(s);
    FY_PROM_LOG(FERRY_LOG_INFO, "serving /metrics on port %u (the previous server left)", s->port);
    pthread_mutex_lock(&fy_prom_mu);
    s->daemon = d;
    pthread_mutex_unlock(&fy_prom_mu);
}

static void fy_prom_wait(fy_prom_server *s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)s->interval_ms * 1000000u;
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    pthread_mutex_lock(&fy_prom_mu);
    if (!s->stop)
        pthread_cond_timedwait(&s->cv, &fy_prom_mu, &ts);
    pthread_mutex_unlock(&fy_prom_mu);
}

static void *fy_prom_thread(void *arg)
{
    fy_prom_server *s = arg;
    for (;;) {
        pthread_mutex_lock(&fy_prom_mu);
        bool stop = s->stop, serving = s->daemon != NULL;
        pthread_mutex_unlock(&fy_prom_mu);
        if (stop)
            break;
        if (!serving)
            fy_prom_tick(s);
        fy_prom_wait(s);
    }
    return NULL;
}

/* ---- attach / detach ---- */

static fy_prom_server *fy_prom_find(uint16_t port)
{
    fy_prom_server *s = fy_servers;
    while (s && s->port != port)
        s = s->next;
    return s;
}

static ferry_status fy_prom_start(fy_prom_server *s, const fy_tm *tm)
{
    snprintf(s->dir, sizeof(s->dir), "%s/prometheus-%u", tm->cfg.dir, tm->cfg.prom_port);
    if (fy_mkdirs(s->dir) != 0) /* publishing needs it; serving may not */
        FY_PROM_LOG(FERRY_LOG_WARN, "%s: %s: this process's metrics cannot be shared", s->dir,
                    strerror(errno));
    s->daemon = fy_prom_bind(s);
    if (!s->daemon)
        FY_PROM_LOG(FERRY_LOG_INFO,
                    "port %u cannot be bound here (taken by another process?): "
                    "publishing this process's metrics to its server through %s",
                    s->port, s->dir);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->tid, NULL, fy_prom_thread, s) == 0)
        return FERRY_OK;
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    pthread_cond_destroy(&s->cv);
    FY_PROM_LOG(FERRY_LOG_ERROR, "Prometheus exporter: cannot start its thread");
    return FERRY_ERR_NO_RESOURCES;
}

static ferry_status fy_prom_new(fy_tm *tm, fy_prom_server **out)
{
    fy_prom_server *s = calloc(1, sizeof(*s));
    if (!s)
        return FERRY_ERR_NO_MEMORY;
    s->port = tm->cfg.prom_port;
    s->local = tm->cfg.prom_local;
    s->interval_ms = tm->cfg.interval_ms;
    ferry_status rc = fy_prom_start(s, tm);
    if (rc != FERRY_OK) {
        free(s);
        return rc;
    }
    s->next = fy_servers;
    fy_servers = s;
    *out = s;
    return FERRY_OK;
}

ferry_status fy_prom_attach(fy_tm *tm)
{
    pthread_mutex_lock(&fy_prom_mu);
    fy_prom_server *s = fy_prom_find(tm->cfg.prom_port);
    ferry_status rc = s ? FERRY_OK : fy_prom_new(tm, &s);
    if (rc == FERRY_OK) {
        tm->prom_next = s->agents;
        s->agents = tm;
        tm->prom = s;
    }
    pthread_mutex_unlock(&fy_prom_mu);
    return rc;
}

static void fy_prom_unlink_server(fy_prom_server *s)
{
    fy_prom_server **p = &fy_servers;
    while (*p != s)
        p = &(*p)->next;
    *p = s->next;
}

static void fy_prom_stop(fy_prom_server *s)
{
    pthread_join(s->tid, NULL);
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    else
        fy_prom_unpublish(s);
    pthread_cond_destroy(&s->cv);
    free(s);
}

void fy_prom_detach(fy_tm *tm)
{
    fy_prom_server *s = tm->prom;
    pthread_mutex_lock(&fy_prom_mu);
    fy_tm **p = &s->agents;
    while (*p != tm)
        p = &(*p)->prom_next;
    *p = tm->prom_next;
    bool last = !s->agents;
    if (last) {
        fy_prom_unlink_server(s);
        s->stop = true;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&fy_prom_mu);
    tm->prom = NULL;
    if (last)
        fy_prom_stop(s);
}

#else /* !FERRY_HAVE_MICROHTTPD */

ferry_status fy_prom_attach(fy_tm *tm)
{
    (void)tm;
    fy_log(FERRY_LOG_ERROR, "telemetry",
           "the Prometheus exporter is not built in (libmicrohttpd was not found at build time)");
    return FERRY_ERR_NOT_SUPPORTED;
}

void fy_prom_detach(fy_tm *tm)
{
    (void)tm;
}

#endif
