/* SPDX-License-Identifier: Apache-2.0 */
/* Shared code of ferry-bench and ferry-kvbench: messages, statistics,
 * agents, waiting, the end-of-step protocol, the pattern, output rows.
 * Options live in opts.c, processes and pipes in proc.c. */
#include "common.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

const char *fb_prog = "ferry-bench";
const char *fb_role_tag;

void fb_children_kill(void); /* proc.c */

/* ---- messages ---- */

static void fb_vmsg(const char *kind, const char *fmt, va_list ap)
{
    fflush(stdout); /* keep the table and the message in order on a terminal */
    fprintf(stderr, "%s%s%s%s: %s", fb_prog, fb_role_tag ? " (" : "",
            fb_role_tag ? fb_role_tag : "", fb_role_tag ? ")" : "", kind);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void fb_exit(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fb_vmsg("", fmt, ap);
    va_end(ap);
    fb_children_kill();
    exit(code);
}

void fb_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fb_vmsg("", fmt, ap);
    va_end(ap);
    fb_children_kill();
    exit(FB_EXIT_ERROR);
}

void fb_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fb_vmsg("warning: ", fmt, ap);
    va_end(ap);
}

ferry_status fb_ok(ferry_status rc, const char *what)
{
    if (rc < 0)
        fb_die("%s: %s", what, ferry_strerror(rc));
    return rc;
}

void *fb_alloc(size_t size)
{
    void *p = calloc(1, size ? size : 1);
    if (!p)
        fb_die("out of memory (%zu bytes)", size);
    return p;
}

uint8_t *fb_alloc_pages(size_t bytes)
{
    size_t len = (bytes + 4095) / 4096 * 4096;
    uint8_t *p = aligned_alloc(4096, len ? len : 4096);
    if (!p)
        fb_die("out of memory (%zu bytes)", bytes);
    memset(p, 0, len); /* touch every page now, not in the timed loop */
    return p;
}

/* ---- time and statistics ---- */

double fb_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

void fb_samples_add(fb_samples *s, double v)
{
    fb_samples_append(s, &v, 1);
}

void fb_samples_append(fb_samples *s, const double *v, size_t n)
{
    if (s->n + n > s->cap) {
        size_t cap = s->cap ? s->cap : 64;
        while (cap < s->n + n)
            cap *= 2;
        double *nv = realloc(s->v, cap * sizeof(*nv));
        if (!nv)
            fb_die("out of memory (samples)");
        s->v = nv;
        s->cap = cap;
    }
    if (n)
        memcpy(s->v + s->n, v, n * sizeof(*v));
    s->n += n;
}

void fb_samples_clear(fb_samples *s)
{
    s->n = 0;
}

void fb_samples_free(fb_samples *s)
{
    free(s->v);
    *s = (fb_samples){0};
}

double fb_avg(const fb_samples *s)
{
    double sum = 0;
    for (size_t i = 0; i < s->n; i++)
        sum += s->v[i];
    return s->n ? sum / (double)s->n : 0;
}

static int fb_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The smallest sample that at least 99% of the samples do not exceed. */
double fb_p99(fb_samples *s)
{
    if (!s->n)
        return 0;
    qsort(s->v, s->n, sizeof(*s->v), fb_cmp_double);
    size_t rank = (size_t)ceil(0.99 * (double)s->n);
    return s->v[rank ? rank - 1 : 0];
}

/* ---- agents and backends ---- */

/* "k=v,k=v" into params (pointing into buf, which it cuts up). A piece
 * without '=' continues the previous value, so UCX's lists pass through:
 * "tls=shm,tcp,devices=lo" is tls="shm,tcp" and devices="lo". */
static size_t fb_split_params(char *buf, ferry_param *params, size_t cap)
{
    size_t n = 0;
    char *p = buf;
    while (*p) {
        char *eq = strchr(p, '='), *end = eq ? eq : p + strlen(p);
        if (!eq || eq == p || memchr(p, ',', (size_t)(eq - p)) || n == cap)
            fb_exit(FB_EXIT_USAGE,
                    "backend params: '%s' is not key=value[,key=value] (at most %zu)", p, cap);
        *eq = '\0';
        params[n++] = (ferry_param){p, eq + 1};
        for (end = eq + 1; *end; end++)
            if (*end == ',' && strchr(end + 1, '=') &&
                !memchr(end + 1, ',', (size_t)(strchr(end + 1, '=') - end - 1)))
                break;
        p = *end ? end + 1 : end;
        *end = '\0';
    }
    return n;
}

static void fb_list_plugins(ferry_agent *a, char *out, size_t cap)
{
    const char *names[32];
    size_t n = 0;
    out[0] = '\0';
    if (ferry_plugin_list(a, names, 32, &n) != FERRY_OK)
        return;
    for (size_t i = 0; i < n && i < 32; i++)
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? " " : "", names[i]);
}

static void fb_backend_failed(ferry_agent *a, const char *backend, ferry_status rc)
{
    char names[512];
    fb_list_plugins(a, names, sizeof(names));
    if (rc == FERRY_ERR_NOT_FOUND)
        fb_exit(FB_EXIT_USAGE, "backend %s: not found (available: %s)", backend, names);
    char why[256];
    if (rc == FERRY_ERR_NOT_SUPPORTED && !strcasecmp(backend, "CUDA") &&
        !fb_vram_usable(why, sizeof(why)))
        fb_exit(FB_EXIT_USAGE, "backend %s: not supported on this host (no usable CUDA driver: %s)",
                backend, why);
    if (rc == FERRY_ERR_NOT_SUPPORTED)
        fb_exit(FB_EXIT_USAGE,
                "backend %s: not supported here with these params (the line above says why)",
                backend);
    if (rc == FERRY_ERR_INVALID_PARAM)
        fb_exit(FB_EXIT_USAGE,
                "backend %s refused its params (see --backend_params; FERRY_LOG_LEVEL=error "
                "names the bad one)",
                backend);
    fb_die("backend %s: %s", backend, ferry_strerror(rc));
}

static ferry_backend *fb_backend_new(ferry_agent *a, const char *backend, const char *params)
{
    ferry_param kv[32];
    char *buf = strdup(params ? params : "");
    if (!buf)
        fb_die("out of memory");
    size_t n = fb_split_params(buf, kv, 32);
    ferry_backend *be = NULL;
    ferry_status rc = ferry_backend_create(a, backend, kv, n, &be);
    free(buf);
    if (rc != FERRY_OK)
        fb_backend_failed(a, backend, rc);
    return be;
}

ferry_agent *fb_agent_new(const fb_agent_opts *o, ferry_backend **be)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = o->name;
    cfg.listen = o->listen;
    cfg.listen_host = "127.0.0.1";
    cfg.progress_thread = o->progress;
    cfg.telemetry = o->telemetry;
    cfg.sc_timeout_ms = (uint32_t)(FB_TIMEOUT_S * 1000);
    ferry_agent *a;
    fb_ok(ferry_agent_create(&cfg, &a), "create agent");
    *be = fb_backend_new(a, o->backend, o->params);
    return a;
}

static void fb_mask_names(uint32_t mask, char *out, size_t cap)
{
    out[0] = '\0';
    for (int t = 0; t < FERRY_MEM_TYPE_COUNT; t++)
        if (mask & FERRY_MEM_MASK(t))
            snprintf(out + strlen(out), cap - strlen(out), "%s%s", out[0] ? " " : "",
                     ferry_mem_type_name((ferry_mem_type)t));
}

ferry_mem_type fb_seg_parse(const char *option, const char *seg)
{
    ferry_mem_type t;
    if (ferry_mem_type_parse(seg, &t) != FERRY_OK)
        fb_exit(FB_EXIT_USAGE, "--%s %s: unknown segment type (DRAM, VRAM, FILE, BLOCK, OBJ)",
                option, seg);
    return t;
}

/* Why the tools cannot use memory type `seg` (given as `option`) with the
 * backend whose memory mask is `mem_mask`, in `why`; false when they can. */
static bool fb_seg_unusable(uint32_t mem_mask, const char *backend, const char *option,
                            const char *seg, char *why, size_t cap)
{
    ferry_mem_type t = fb_seg_parse(option, seg);
    char names[64];
    fb_mask_names(mem_mask, names, sizeof(names));
    char driver[256];
    if (!(mem_mask & FERRY_MEM_MASK(t)))
        snprintf(why, cap, "--%s %s: not supported by backend %s (it serves: %s)", option, seg,
                 backend, names);
    else if (t != FERRY_MEM_DRAM && t != FERRY_MEM_VRAM && strcmp(option, "target_seg_type"))
        snprintf(why, cap,
                 "--%s %s: storage is the target side (--target_seg_type); the initiator's "
                 "memory is DRAM or VRAM (backend %s serves: %s)",
                 option, seg, backend, names);
    else if (t == FERRY_MEM_VRAM && !fb_vram_usable(driver, sizeof(driver)))
        snprintf(why, cap, "--%s VRAM: no usable CUDA driver: %s", option, driver);
    else
        return false;
    return true;
}

uint32_t fb_probe(const char *backend, const char *params, const char *initiator_seg,
                  const char *target_seg)
{
    fb_agent_opts o = {.name = "fb-probe", .backend = backend, .params = params};
    ferry_backend *be;
    ferry_agent *a = fb_agent_new(&o, &be);
    ferry_backend_caps caps;
    ferry_backend_caps_init(&caps);
    fb_ok(ferry_backend_get_caps(be, &caps), "backend caps");
    /* The agent goes before any exit: a process leaving with a UCX agent
     * alive has its threads running while exit handlers (and LeakSanitizer)
     * tear the process down. */
    ferry_agent_destroy(a);
    char why[512];
    if (fb_seg_unusable(caps.mem_mask, backend, "initiator_seg_type", initiator_seg, why,
                        sizeof(why)) ||
        fb_seg_unusable(caps.mem_mask, backend, "target_seg_type", target_seg, why, sizeof(why)))
        fb_exit(FB_EXIT_USAGE, "%s", why);
    return caps.flags;
}

/* A combination the backend cannot move (CUDA: DRAM in another process,
 * or DRAM <-> DRAM) shows first when a request is made, which both tools
 * do before anything is timed: a usage error, not a failure. */
void fb_make_failed(const char *backend, const char *iseg, const char *tseg, const char *peer,
                    ferry_status rc)
{
    if (rc == FERRY_ERR_NOT_SUPPORTED || rc == FERRY_ERR_NOT_FOUND)
        fb_exit(FB_EXIT_USAGE, "backend %s cannot move %s -> %s with %s: %s", backend, iseg, tseg,
                peer, ferry_strerror(rc));
    fb_die("make request with %s: %s", peer, ferry_strerror(rc));
}

void fb_deregister(ferry_agent *a, ferry_dlist *regions)
{
    if (!regions)
        return;
    fb_ok(ferry_deregister(a, regions, NULL), "deregister memory");
    ferry_dlist_destroy(regions);
}

void fb_load_self(ferry_agent *a)
{
    void *blob;
    size_t len;
    char name[FERRY_NAME_MAX + 1];
    fb_ok(ferry_md_get_local(a, &blob, &len), "own metadata");
    fb_ok(ferry_md_load(a, blob, len, name, sizeof(name)), "load own metadata");
    ferry_free(blob);
}

ferry_status fb_xfer_wait(ferry_xfer *x, ferry_status rc)
{
    double deadline = fb_now_us() + FB_TIMEOUT_S * 1e6;
    for (unsigned n = 0; rc == FERRY_IN_PROGRESS; n++) {
        rc = ferry_xfer_status(x);
        if (rc == FERRY_IN_PROGRESS && (n & 1023) == 1023 && fb_now_us() > deadline)
            return FERRY_ERR_TIMEOUT;
    }
    return rc;
}

/* ---- peers: side channel and the end-of-step protocol ---- */

void fb_peer_fetch(ferry_agent *a, const char *peer, uint16_t port)
{
    uint32_t ms = (uint32_t)(FB_TIMEOUT_S * 1000);
    ferry_status rc = ferry_md_fetch_wait(a, peer, "127.0.0.1", port, NULL, ms);
    if (rc != FERRY_OK)
        fb_die("metadata of %s from 127.0.0.1:%u: %s", peer, port, ferry_strerror(rc));
}

void fb_peer_link(ferry_agent *a, const char *peer, uint16_t port)
{
    fb_peer_fetch(a, peer, port);
    ferry_status rc = ferry_md_send_local(a, "127.0.0.1", port);
    if (rc != FERRY_OK)
        fb_die("sending our metadata to %s: %s", peer, ferry_strerror(rc));
    fb_ok(ferry_md_connect(a, peer, NULL), "connect");
}

void fb_notif_send(ferry_agent *a, const char *peer, const char *msg)
{
    ferry_status rc = ferry_notif_send(a, peer, msg, strlen(msg), NULL);
    if (rc != FERRY_OK)
        fb_die("notification '%s' to %s: %s", msg, peer, ferry_strerror(rc));
}

static bool fb_take(ferry_agent *a, const char *peer, const char *tag)
{
    return ferry_notif_take_tag(a, peer, tag, strlen(tag), false) == FERRY_OK;
}

bool fb_step_end(ferry_agent *a, const char *peer, unsigned step)
{
    char msg[64], ok[64], bad[64];
    snprintf(msg, sizeof(msg), "fb end %u", step);
    snprintf(ok, sizeof(ok), "fb ack %u ok", step);
    snprintf(bad, sizeof(bad), "fb ack %u bad", step);
    fb_notif_send(a, peer, msg);
    double deadline = fb_now_us() + FB_TIMEOUT_S * 1e6;
    while (fb_now_us() < deadline) {
        if (fb_take(a, peer, ok))
            return true;
        if (fb_take(a, peer, bad))
            return false;
        usleep(100);
    }
    fb_die("%s did not answer the end of step %u within %.0f s", peer, step, FB_TIMEOUT_S);
}

/* Both sides forget each other after the last word, the target first,
 * so neither takes the other's exit for a failure (UCX would report an
 * endpoint timeout). */
void fb_bye(ferry_agent *a, const char *peer)
{
    fb_notif_send(a, peer, "fb bye");
    double deadline = fb_now_us() + FB_TIMEOUT_S * 1e6;
    while (!fb_take(a, peer, "fb bye ok") && fb_now_us() < deadline)
        usleep(100);
    ferry_md_invalidate(a, peer);
}

typedef struct fb_serving {
    ferry_agent *agent;
    fb_end_cb on_end;
    void *ctx;
    unsigned byes;
    bool ok;
} fb_serving;

/* One message: "fb end K" (check, answer) or "fb bye". */
static void fb_serve_one(fb_serving *s, const char *from, const char *msg, size_t len)
{
    char text[64], reply[64];
    unsigned step;
    snprintf(text, sizeof(text), "%.*s", (int)(len < 63 ? len : 63), msg);
    if (!strcmp(text, "fb bye")) {
        s->byes++;
        fb_notif_send(s->agent, from, "fb bye ok");
        ferry_md_invalidate(s->agent, from);
        return;
    }
    if (sscanf(text, "fb end %u", &step) != 1) {
        fb_warn("unexpected notification '%s' from %s", text, from);
        return;
    }
    bool ok = s->on_end(s->ctx, from, step);
    s->ok = s->ok && ok;
    snprintf(reply, sizeof(reply), "fb ack %u %s", step, ok ? "ok" : "bad");
    fb_notif_send(s->agent, from, reply);
}

/* Handles what is queued; returns how many notifications there were. */
static size_t fb_serve_batch(fb_serving *s)
{
    ferry_notif_batch *b;
    fb_ok(ferry_notif_take(s->agent, NULL, &b), "take notifications");
    size_t n = ferry_notif_batch_count(b);
    for (size_t i = 0; i < n; i++) {
        const char *from;
        const void *msg;
        size_t len;
        fb_ok(ferry_notif_batch_get(b, i, &from, &msg, &len), "notification");
        fb_serve_one(s, from, msg, len);
    }
    ferry_notif_batch_free(b);
    return n;
}

bool fb_serve(ferry_agent *a, unsigned n_peers, fb_end_cb on_end, fb_watch_cb watch, void *ctx)
{
    fb_serving s = {.agent = a, .on_end = on_end, .ctx = ctx, .ok = true};
    double next_watch = fb_now_us() + 1e6;
    while (s.byes < n_peers) {
        if (fb_serve_batch(&s))
            continue;
        usleep(200); /* the progress thread does the work meanwhile */
        if (watch && fb_now_us() > next_watch) {
            watch(ctx);
            next_watch = fb_now_us() + 1e6;
        }
    }
    return s.ok;
}

/* ---- data pattern ---- */

/* splitmix64's finaliser: every input bit reaches every output bit. */
static uint64_t fb_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t fb_seed(uint64_t a, uint64_t b, uint64_t c)
{
    return fb_mix(fb_mix(fb_mix(a) ^ b) ^ c);
}

uint8_t fb_pattern_byte(uint64_t seed, uint64_t off)
{
    return (uint8_t)(fb_mix(seed ^ (off >> 3)) >> ((off & 7) * 8));
}

void fb_fill(uint8_t *p, size_t len, uint64_t seed, uint64_t off0)
{
    uint64_t o = off0, end = off0 + len;
    while (o < end) {
        uint64_t w = fb_mix(seed ^ (o >> 3));
        for (unsigned b = (unsigned)(o & 7); b < 8 && o < end; b++, o++)
            p[o - off0] = (uint8_t)(w >> (b * 8));
    }
}

bool fb_check(const uint8_t *p, size_t len, uint64_t seed, uint64_t off0, size_t *bad)
{
    uint64_t o = off0, end = off0 + len;
    while (o < end) {
        uint64_t w = fb_mix(seed ^ (o >> 3));
        for (unsigned b = (unsigned)(o & 7); b < 8 && o < end; b++, o++)
            if (p[o - off0] != (uint8_t)(w >> (b * 8))) {
                *bad = (size_t)(o - off0);
                return false;
            }
    }
    return true;
}

/* ---- CSV and JSON rows ---- */

static void fb_put_value(FILE *f, const fb_field *x, bool quote)
{
    if (x->str)
        fprintf(f, quote ? "\"%s\"" : "%s", x->str);
    else if (x->decimals < 0)
        fprintf(f, "%.0f", x->num);
    else
        fprintf(f, "%.*f", x->decimals, x->num);
}

void fb_csv_header(FILE *f, const fb_field *fields, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%s", i ? "," : "", fields[i].key);
    fputc('\n', f);
}

void fb_csv_row(FILE *f, const fb_field *fields, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc(',', f);
        fb_put_value(f, &fields[i], false);
    }
    fputc('\n', f);
}

/* One object a line, with ferry's version, the host and the time
 * (tool-common.h); integers stay integers, decimals are rounded as in the
 * table. */
void fb_json_row(FILE *f, const fb_field *fields, size_t n)
{
    json_t *row = json_object();
    for (size_t i = 0; i < n; i++) {
        const fb_field *x = &fields[i];
        json_t *v;
        if (x->str)
            v = json_string(x->str);
        else if (x->decimals < 0)
            v = json_integer((json_int_t)llround(x->num));
        else
            v = json_real(round(x->num * pow(10, x->decimals)) / pow(10, x->decimals));
        json_object_set_new(row, x->key, v ? v : json_null());
    }
    if (!ft_json_line(f, row))
        fb_die("writing a JSON row: %s", strerror(errno));
}

FILE *fb_open_out(const char *path)
{
    if (!path)
        return NULL;
    FILE *f = ft_out_open(path);
    if (!f)
        fb_exit(FB_EXIT_USAGE, "cannot write %s: %s", path, strerror(errno));
    return f;
}

void fb_close_out(FILE *f, const char *path)
{
    if (f && !ft_out_close(f))
        fb_die("writing %s: %s", path, strerror(errno));
}

/* ---- which transport carried the data ---- */

static pthread_mutex_t fb_tp_lock = PTHREAD_MUTEX_INITIALIZER;
static char fb_tp_seen[512]; /* "tcp/lo.0 (TCP)" */
static ferry_log_level fb_tp_user_level = FERRY_LOG_WARN;

static void fb_tp_tap(void *ctx, ferry_log_level level, const char *who, const char *line)
{
    static const char *const names[] = {"error", "warn", "info", "debug", "trace"};
    static const char tag[] = "transports to ";
    (void)ctx;
    const char *colon = !strncmp(line, tag, sizeof(tag) - 1) ? strstr(line, ": ") : NULL;
    if (level == FERRY_LOG_INFO && !strcmp(who, "UCX") && colon) {
        pthread_mutex_lock(&fb_tp_lock);
        if (!fb_tp_seen[0])
            snprintf(fb_tp_seen, sizeof(fb_tp_seen), "%s", colon + 2);
        pthread_mutex_unlock(&fb_tp_lock);
    }
    if (level <= fb_tp_user_level)
        fprintf(stderr, "ferry %s [%s]: %s\n", names[level <= FERRY_LOG_TRACE ? level : 4], who,
                line);
}

void fb_transport_watch(void)
{
    fb_tp_user_level = ferry_get_log_level();
    ferry_set_log_handler(fb_tp_tap, NULL);
    if (fb_tp_user_level < FERRY_LOG_INFO)
        ferry_set_log_level(FERRY_LOG_INFO);
}

const char *fb_transport(const char *backend, char *buf, size_t cap)
{
    char seen[512];
    pthread_mutex_lock(&fb_tp_lock);
    snprintf(seen, sizeof(seen), "%s", fb_tp_seen);
    pthread_mutex_unlock(&fb_tp_lock);
    char *kind = strrchr(seen, '(');
    if (seen[0] && kind && kind > seen) {
        kind[-1] = '\0'; /* seen: the transports; kind: "(TCP)" */
        snprintf(buf, cap, "%s over %.*s (%s)", backend, (int)(strlen(kind) - 2), kind + 1, seen);
    } else if (!strcasecmp(backend, "LOCAL")) {
        snprintf(buf, cap, "LOCAL (copies in this process)");
    } else {
        snprintf(buf, cap, "%s", backend);
    }
    return buf;
}

void fb_transport_report(const char *backend, const char *params)
{
    char tp[600];
    fb_transport(backend, tp, sizeof(tp));
    printf("transport: %s\n", tp);
    if (strstr(tp, " over TCP") && !(params && strstr(params, "error_handling=")))
        printf("  processes of one host move it faster through shared memory: --backend SHM "
               "(docs/tools.md, \"Which transport\")\n");
    fflush(stdout);
}

/* ---- data files ---- */

char *fb_find_file(const char *env, const char *rel, const char *const *dirs, size_t n)
{
    const char *e = env ? getenv(env) : NULL;
    if (e && *e)
        return strdup(e);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dirs[i], rel);
        if (access(path, R_OK) == 0)
            return strdup(path);
    }
    return NULL;
}
