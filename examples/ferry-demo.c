/* SPDX-License-Identifier: Apache-2.0 */
/* ferry-demo: disaggregated serving's main move, between two processes.
 *
 * A prefill process holds a KV cache shaped like Llama-3.1-8B's (32 layers,
 * K and V, 8 KV heads, head dim 128, bf16, 16 tokens per block: 32 KiB
 * blocks), registered one region per layer and K/V as engines do. A decode
 * process fetches its metadata over ferry's side channel and READs the
 * blocks of one request by index into its own free blocks, with
 * a notification carrying the request id and a digest of what arrived.
 * Decode checks every byte against the pattern; prefill checks the digest
 * against its own blocks. With --write the prefill side WRITEs instead (it
 * fetches the decode side's metadata) and decode checks on arrival.
 *
 * Like engines, the two sides tell each other where their caches start out
 * of band (here: the pipe between the processes; vLLM uses ZMQ); ferry's own
 * side channel carries the metadata.
 *
 * Both sides create SHM and UCX (or only --backend NAME); ferry carries
 * each request on the fastest one that can: SHM between processes of one
 * host, UCX where SHM declines the peer. It ends by saying which backend
 * and transport carried the data (SHM and UCX log the transports of each
 * new peer at INFO level; a log handler catches the lines).
 *
 * Usage: ferry-demo [--write] [--tokens N] [--iters N] [--backend NAME]
 *                   [--backend_params K=V,K=V] [--help] [--version]
 * (the program starts the prefill process itself). */
#include <ferry/ferry.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LAYERS      32
#define PLANES      (LAYERS * 2)
#define BLOCK_BYTES (16u * 8u * 128u * 2u) /* tokens x KV heads x head dim x bf16 */
#define NUM_BLOCKS  128u
#define PLANE_BYTES ((size_t)BLOCK_BYTES * NUM_BLOCKS)
#define TIMEOUT_MS  10000u

typedef struct demo {
    bool write, is_prefill;
    unsigned tokens, iters, n; /* n: blocks per plane in the request */
    const char *backend;       /* --backend; NULL: SHM and UCX */
    const char *via;           /* the backend that carried the requests */
    char *params;              /* --backend_params, cut into kv (a copy) */
    ferry_param kv[16];
    size_t nkv;
    ferry_agent *agent;
    ferry_backend *shm; /* the caches come from it: peers map them */
    uint8_t *planes[PLANES];
    ferry_dlist *regions, *blocks;
    unsigned src[NUM_BLOCKS], dst[NUM_BLOCKS]; /* request's blocks on each side */
    uint16_t peer_port;
    uint64_t peer_planes[PLANES]; /* the other side's plane addresses */
    int to_peer, from_peer;       /* the out-of-band pipe */
} demo;

#define CHECK(call)                                                                                \
    do {                                                                                           \
        ferry_status rc_ = (call);                                                                 \
        if (rc_ < 0) {                                                                             \
            fprintf(stderr, "ferry-demo %s: %s: %s\n", d->is_prefill ? "prefill" : "decode",       \
                    #call, ferry_strerror(rc_));                                                   \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint8_t pattern(unsigned plane, unsigned block, size_t off)
{
    return (uint8_t)(plane * 131u + block * 31u + off * 7u + (off >> 9));
}

/* FNV-1a over the request's blocks, in request order. */
static uint64_t digest(const demo *d, const unsigned *blocks)
{
    uint64_t h = 1469598103934665603ull;
    for (unsigned p = 0; p < PLANES; p++)
        for (unsigned i = 0; i < d->n; i++)
            for (size_t o = 0; o < BLOCK_BYTES; o++)
                h = (h ^ d->planes[p][(size_t)blocks[i] * BLOCK_BYTES + o]) * 1099511628211ull;
    return h;
}

static size_t count_bad(const demo *d)
{
    size_t bad = 0;
    for (unsigned p = 0; p < PLANES; p++)
        for (unsigned i = 0; i < d->n; i++)
            for (size_t o = 0; o < BLOCK_BYTES; o++)
                bad +=
                    d->planes[p][(size_t)d->dst[i] * BLOCK_BYTES + o] != pattern(p, d->src[i], o);
    return bad;
}

/* ---- setup ---- */

static void demo_agent(demo *d, const char *name)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = name;
    cfg.telemetry = true;
    cfg.listen = true;
    cfg.listen_host = "127.0.0.1";
    /* The side serving the other's requests makes progress on its own. */
    cfg.progress_thread = true;
    ferry_backend *be;
    CHECK(ferry_agent_create(&cfg, &d->agent));
    if (d->backend) {
        CHECK(ferry_backend_create(d->agent, d->backend, d->kv, d->nkv, &be));
        return;
    }
    /* SHM where this build and host have it (ferry picks it ahead of UCX
     * for a peer on this host); --backend_params go to UCX. */
    if (ferry_backend_create(d->agent, "SHM", NULL, 0, &d->shm) != FERRY_OK)
        fprintf(stderr, "ferry-demo: no SHM backend here (see the log); UCX only\n");
    CHECK(ferry_backend_create(d->agent, "UCX", d->kv, d->nkv, &be));
}

/* ---- which transport carried the data ---- */

/* UCX logs "transports to <peer>: <tl/dev>... (<kind>)" at INFO when it
 * connects, SHM when it admits a peer; this handler keeps each backend's
 * first such line and shows every other line as the library would at the
 * level the user chose. */
#define TP_BACKENDS 4
static pthread_mutex_t tp_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char who[32], line[480];
} tp_seen[TP_BACKENDS];
static ferry_log_level tp_user_level;

static void tp_keep(const char *who, const char *line)
{
    pthread_mutex_lock(&tp_lock);
    for (int i = 0; i < TP_BACKENDS; i++) {
        if (tp_seen[i].who[0] && strcmp(tp_seen[i].who, who))
            continue;
        if (!tp_seen[i].who[0]) {
            snprintf(tp_seen[i].who, sizeof(tp_seen[i].who), "%s", who);
            snprintf(tp_seen[i].line, sizeof(tp_seen[i].line), "%s", line);
        }
        break;
    }
    pthread_mutex_unlock(&tp_lock);
}

static void tp_tap(void *ctx, ferry_log_level level, const char *who, const char *line)
{
    static const char *const names[] = {"error", "warn", "info", "debug", "trace"};
    const char *colon = strncmp(line, "transports to ", 14) ? NULL : strstr(line, ": ");
    (void)ctx;
    if (level == FERRY_LOG_INFO && colon && who)
        tp_keep(who, colon + 2);
    if (level <= tp_user_level)
        fprintf(stderr, "ferry %s [%s]: %s\n", names[level <= FERRY_LOG_TRACE ? level : 4], who,
                line);
}

static void tp_watch(void)
{
    tp_user_level = ferry_get_log_level();
    ferry_set_log_handler(tp_tap, NULL);
    if (tp_user_level < FERRY_LOG_INFO)
        ferry_set_log_level(FERRY_LOG_INFO);
}

static void tp_report(const demo *d)
{
    char seen[512] = "";
    pthread_mutex_lock(&tp_lock);
    for (int i = 0; i < TP_BACKENDS; i++)
        if (!strcasecmp(tp_seen[i].who, d->via))
            snprintf(seen, sizeof(seen), "%s", tp_seen[i].line);
    pthread_mutex_unlock(&tp_lock);
    if (!seen[0]) {
        printf("  transport: %s\n", d->via);
        return;
    }
    printf("  transport: %s over %s\n", d->via, seen);
    if (!strstr(seen, "(TCP)"))
        return;
    if (d->backend)
        printf("  processes of one host move it faster without --backend (SHM is then used)\n");
    else
        printf("  SHM declined this peer: FERRY_LOG_LEVEL=info shows why\n");
}

/* With SHM, memory it allocates (a memfd): a peer on this host maps it and
 * copies with memcpy, no system call per block. */
static uint8_t *plane_alloc(demo *d)
{
    void *p = NULL;
    if (!d->shm)
        return aligned_alloc(4096, PLANE_BYTES);
    return ferry_mem_alloc(d->agent, d->shm, FERRY_MEM_DRAM, PLANE_BYTES, 0, &p) == FERRY_OK ? p
                                                                                             : NULL;
}

/* One region per plane; a descriptor per block: (plane * NUM_BLOCKS + b). */
static void demo_cache(demo *d)
{
    CHECK(ferry_dlist_create(FERRY_MEM_DRAM, PLANES, &d->regions));
    CHECK(ferry_dlist_create(FERRY_MEM_DRAM, PLANES * NUM_BLOCKS, &d->blocks));
    for (unsigned p = 0; p < PLANES; p++) {
        d->planes[p] = plane_alloc(d);
        if (!d->planes[p]) {
            fprintf(stderr, "ferry-demo: out of memory\n");
            exit(1);
        }
        memset(d->planes[p], 0, PLANE_BYTES);
        CHECK(ferry_dlist_add(d->regions, (uintptr_t)d->planes[p], PLANE_BYTES, 0));
        for (unsigned b = 0; b < NUM_BLOCKS; b++)
            CHECK(ferry_dlist_add(d->blocks, (uintptr_t)(d->planes[p] + (size_t)b * BLOCK_BYTES),
                                  BLOCK_BYTES, 0));
    }
    CHECK(ferry_register(d->agent, d->regions, NULL));
    /* The prompt sits in scattered prefill blocks; decode has other free ones. */
    for (unsigned i = 0; i < d->n; i++) {
        d->src[i] = (i * 7u + 3u) % NUM_BLOCKS;
        d->dst[i] = NUM_BLOCKS - 1 - i;
    }
    if (d->is_prefill)
        for (unsigned p = 0; p < PLANES; p++)
            for (unsigned i = 0; i < d->n; i++)
                for (size_t o = 0; o < BLOCK_BYTES; o++)
                    d->planes[p][(size_t)d->src[i] * BLOCK_BYTES + o] = pattern(p, d->src[i], o);
}

static void demo_free(demo *d)
{
    CHECK(ferry_deregister(d->agent, d->regions, NULL));
    ferry_dlist_destroy(d->regions);
    ferry_dlist_destroy(d->blocks);
    ferry_agent_destroy(d->agent); /* frees SHM's memory */
    for (unsigned p = 0; p < PLANES && !d->shm; p++)
        free(d->planes[p]);
}

static uint32_t *request_indices(const demo *d, const unsigned *blocks)
{
    uint32_t *idx = malloc(sizeof(*idx) * PLANES * d->n);
    for (unsigned p = 0; p < PLANES; p++)
        for (unsigned i = 0; i < d->n; i++)
            idx[p * d->n + i] = p * NUM_BLOCKS + blocks[i];
    return idx;
}

/* ---- notifications ---- */

/* Waits for the notification `tag` from `from` (notifications are not
 * ordered across requests, so each is looked up by its content). */
static void wait_tag(demo *d, const char *from, const char *tag)
{
    double deadline = now_s() + TIMEOUT_MS / 1000.0;
    while (now_s() < deadline) {
        ferry_status rc = ferry_notif_take_tag(d->agent, from, tag, strlen(tag), false);
        if (rc == FERRY_OK)
            return;
        CHECK(rc == FERRY_ERR_NOT_FOUND ? FERRY_OK : rc);
        usleep(50);
    }
    fprintf(stderr, "ferry-demo: no notification '%s' from %s within %u ms\n", tag, from,
            TIMEOUT_MS);
    exit(1);
}

/* Waits for a notification starting with `prefix` and copies it into msg. */
static void wait_prefixed(demo *d, const char *from, const char *prefix, char *msg, size_t cap)
{
    double deadline = now_s() + TIMEOUT_MS / 1000.0;
    while (now_s() < deadline) {
        ferry_notif_batch *b;
        CHECK(ferry_notif_take(d->agent, from, &b));
        bool got = false;
        for (size_t i = 0; !got && i < ferry_notif_batch_count(b); i++) {
            const char *who;
            const void *m;
            size_t len;
            CHECK(ferry_notif_batch_get(b, i, &who, &m, &len));
            got = len >= strlen(prefix) && !memcmp(m, prefix, strlen(prefix));
            len = len < cap - 1 ? len : cap - 1;
            memcpy(msg, m, got ? len : 0);
            msg[got ? len : 0] = '\0';
        }
        ferry_notif_batch_free(b);
        if (got)
            return;
        usleep(50);
    }
    fprintf(stderr, "ferry-demo: no '%s' notification from %s within %u ms\n", prefix, from,
            TIMEOUT_MS);
    exit(1);
}

/* ---- out of band: ports and plane addresses over the pipe ---- */

static void oob_send(demo *d)
{
    uint16_t port;
    CHECK(ferry_md_listen_port(d->agent, &port));
    uint64_t msg[1 + PLANES] = {port};
    for (unsigned p = 0; p < PLANES; p++)
        msg[1 + p] = (uintptr_t)d->planes[p];
    if (write(d->to_peer, msg, sizeof(msg)) != (ssize_t)sizeof(msg))
        exit(1);
}

static void oob_recv(demo *d)
{
    uint64_t msg[1 + PLANES];
    size_t got = 0;
    while (got < sizeof(msg)) {
        ssize_t n = read(d->from_peer, (char *)msg + got, sizeof(msg) - got);
        if (n <= 0) {
            fprintf(stderr, "ferry-demo: the other process went away\n");
            exit(1);
        }
        got += (size_t)n;
    }
    d->peer_port = (uint16_t)msg[0];
    memcpy(d->peer_planes, msg + 1, sizeof(d->peer_planes));
}

/* The peer's block list, from its plane addresses. */
static ferry_dlist *peer_blocks(demo *d)
{
    ferry_dlist *l;
    CHECK(ferry_dlist_create(FERRY_MEM_DRAM, PLANES * NUM_BLOCKS, &l));
    for (unsigned p = 0; p < PLANES; p++)
        for (unsigned b = 0; b < NUM_BLOCKS; b++)
            CHECK(
                ferry_dlist_add(l, d->peer_planes[p] + (uint64_t)b * BLOCK_BYTES, BLOCK_BYTES, 0));
    return l;
}

/* ---- the mover: whichever side initiates ---- */

typedef struct stats {
    double total, best, make, post;
} stats;

static ferry_status wait_done(ferry_xfer *x, ferry_status rc)
{
    double deadline = now_s() + TIMEOUT_MS / 1000.0;
    while (rc == FERRY_IN_PROGRESS && now_s() < deadline)
        rc = ferry_xfer_status(x);
    return rc == FERRY_IN_PROGRESS ? FERRY_ERR_TIMEOUT : rc;
}

/* One request: make from the prepared lists by index, post, wait. The
 * notification carries the request id and, for READ, the decode side's
 * digest of what arrived (the data is complete once the request is). */
static void one_request(demo *d, ferry_xfer_op op, ferry_prepped *local, ferry_prepped *remote,
                        const uint32_t *lidx, const uint32_t *ridx, unsigned it, stats *st)
{
    ferry_xfer_opts opts;
    ferry_xfer_opts_init(&opts);
    char note[64];
    snprintf(note, sizeof(note), "req-%u", it);
    opts.notif = note;
    opts.notif_len = strlen(note);
    ferry_xfer *x;
    double t0 = now_s();
    CHECK(
        ferry_xfer_make(d->agent, op, local, lidx, remote, ridx, (size_t)PLANES * d->n, &opts, &x));
    double t1 = now_s();
    CHECK(wait_done(x, ferry_xfer_post(x)));
    double t = now_s() - t0;
    ferry_xfer_telemetry tm;
    ferry_xfer_telemetry_init(&tm);
    if (ferry_xfer_get_telemetry(x, &tm) == FERRY_OK)
        st->post += (double)tm.post_us * 1e-6;
    d->via = ferry_backend_name(ferry_xfer_backend(x));
    CHECK(ferry_xfer_release(x));
    st->make += t1 - t0;
    st->total += t;
    st->best = it == 0 || t < st->best ? t : st->best;
}

static void mover(demo *d, const char *peer, ferry_xfer_op op, stats *st)
{
    char name[FERRY_NAME_MAX + 1];
    snprintf(name, sizeof(name), "%s", peer);
    CHECK(ferry_md_fetch_wait(d->agent, name, "127.0.0.1", d->peer_port, NULL, TIMEOUT_MS));
    ferry_dlist *theirs = peer_blocks(d);
    ferry_prepped *local, *remote;
    CHECK(ferry_prep_dlist(d->agent, NULL, d->blocks, NULL, &local));
    CHECK(ferry_prep_dlist(d->agent, name, theirs, NULL, &remote));
    /* READ: local = decode (dst), remote = prefill (src); WRITE: reverse. */
    bool read = op == FERRY_OP_READ;
    uint32_t *lidx = request_indices(d, read ? d->dst : d->src);
    uint32_t *ridx = request_indices(d, read ? d->src : d->dst);
    for (unsigned it = 0; it < d->iters; it++)
        one_request(d, op, local, remote, lidx, ridx, it, st);
    free(lidx);
    free(ridx);
    ferry_prepped_release(local);
    ferry_prepped_release(remote);
    ferry_dlist_destroy(theirs);
}

/* ---- the two roles ---- */

static void report(const demo *d, const stats *st)
{
    size_t descs = (size_t)PLANES * d->n, bytes = descs * BLOCK_BYTES;
    double avg = st->total / d->iters;
    printf("ferry-demo: Llama-3.1-8B KV cache, %d layers x K/V, %u KiB blocks, %s via %s\n", LAYERS,
           BLOCK_BYTES / 1024, d->write ? "prefill WRITEs" : "decode READs", d->via);
    printf("  metadata exchange %s\n", getenv("FERRY_AUTH_KEY")
                                           ? "authenticated (HMAC-SHA256, key in FERRY_AUTH_KEY)"
                                           : "unauthenticated");
    printf("  request: %u-token prompt = %u blocks per layer and K/V = %zu descriptors, "
           "%.1f MiB\n",
           d->tokens, d->n, descs, (double)bytes / (1 << 20));
    printf("  %u requests: %.2f GB/s avg (%.2f best), latency %.3f ms avg (%.3f best); "
           "make %.1f us, post %.1f us per request\n",
           d->iters, (double)bytes / avg / 1e9, (double)bytes / st->best / 1e9, avg * 1e3,
           st->best * 1e3, st->make / d->iters * 1e6, st->post / d->iters * 1e6);
    tp_report(d);
}

/* Decode: READs (default) and checks, or checks what prefill WRITEs. */
static int decode_role(demo *d)
{
    demo_agent(d, "decode");
    demo_cache(d);
    oob_send(d);
    oob_recv(d);
    stats st = {0};
    char want[64];
    if (!d->write)
        mover(d, "prefill", FERRY_OP_READ, &st);
    for (unsigned it = 0; d->write && it < d->iters; it++) {
        snprintf(want, sizeof(want), "req-%u", it);
        wait_tag(d, "prefill", want);
    }
    size_t bad = count_bad(d);
    /* Tell prefill what arrived; it checks against its own blocks. */
    char verdict[64];
    snprintf(verdict, sizeof(verdict), "digest %016" PRIx64, digest(d, d->dst));
    if (!d->write)
        report(d, &st);
    printf("  decode: %zu bytes checked, %s\n", (size_t)PLANES * d->n * BLOCK_BYTES,
           bad ? "MISMATCH" : "every byte as prefill wrote it");
    fflush(stdout);
    if (!d->write)
        CHECK(ferry_notif_send(d->agent, "prefill", verdict, strlen(verdict), NULL));
    else if (write(d->to_peer, verdict, sizeof(verdict)) != (ssize_t)sizeof(verdict))
        return 1;
    demo_free(d);
    return bad ? 1 : 0;
}

/* Prefill: serves READs (counting the notifications), or WRITEs. */
static int prefill_role(demo *d)
{
    demo_agent(d, "prefill");
    demo_cache(d);
    oob_send(d);
    oob_recv(d);
    stats st = {0};
    char msg[64], want[64], expect[64];
    snprintf(expect, sizeof(expect), "digest %016" PRIx64, digest(d, d->src));
    if (d->write) {
        mover(d, "decode", FERRY_OP_WRITE, &st);
        report(d, &st);
        fflush(stdout);
        if (read(d->from_peer, msg, sizeof(msg)) != (ssize_t)sizeof(msg))
            return 1;
    } else {
        for (unsigned it = 0; it < d->iters; it++) {
            snprintf(want, sizeof(want), "req-%u", it);
            wait_tag(d, "decode", want);
        }
        wait_prefixed(d, "decode", "digest ", msg, sizeof(msg));
    }
    bool ok = !strcmp(msg, expect);
    printf("  prefill: %u requests %s; decode's digest %s its blocks\n", d->iters,
           d->write ? "written, each notified" : "served, each notification seen",
           ok ? "matches" : "DOES NOT match");
    demo_free(d);
    return ok ? 0 : 1;
}

/* ---- start-up ---- */

static void usage_to(FILE *f)
{
    fprintf(f,
            "usage: ferry-demo [--write] [--tokens N (16..%u)] [--iters N] "
            "[--backend NAME]\n"
            "                  [--backend_params K=V,K=V] [--help] [--version]\n"
            "Moves one request's KV blocks (Llama-3.1-8B's shape) from a prefill process to\n"
            "this decode process, checks every byte, and says how fast and over which\n"
            "transport. Both sides use SHM and UCX, ferry picking the fastest that serves\n"
            "the peer (--backend: that one only; --backend_params: for UCX or it).\n"
            "Exit status: 0 done and intact, 1 failed, 2 bad usage.\n",
            NUM_BLOCKS / 2 * 16);
}

static void usage(void)
{
    usage_to(stderr);
    exit(2);
}

/* "k=v,k=v" into d->kv (at most 16 pairs). */
static void parse_params(demo *d, const char *list)
{
    d->params = strdup(list);
    if (!d->params)
        exit(1);
    for (char *save = NULL, *p = strtok_r(d->params, ",", &save); p;
         p = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(p, '=');
        if (!eq || eq == p || d->nkv == 16)
            usage();
        *eq = '\0';
        d->kv[d->nkv++] = (ferry_param){p, eq + 1};
    }
}

static void parse(demo *d, int argc, char **argv)
{
    *d = (demo){.tokens = 1000,
                .iters = 20,
                .backend = NULL,
                .via = "(no request)",
                .to_peer = -1,
                .from_peer = -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--write"))
            d->write = true;
        else if (!strcmp(a, "--tokens") && v && ++i)
            d->tokens = (unsigned)atoi(v);
        else if (!strcmp(a, "--iters") && v && ++i)
            d->iters = (unsigned)atoi(v);
        else if (!strcmp(a, "--backend") && v && ++i)
            d->backend = v;
        else if ((!strcmp(a, "--backend_params") || !strcmp(a, "--backend-params")) && v && ++i)
            parse_params(d, v);
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage_to(stdout);
            exit(0);
        } else if (!strcmp(a, "--version")) {
            printf("ferry-demo %d.%d.%d (libferry %s)\n", FERRY_VERSION_MAJOR, FERRY_VERSION_MINOR,
                   FERRY_VERSION_PATCH, ferry_version_string());
            exit(0);
        } else if (!strcmp(a, "--prefill-fds") && v && i + 2 < argc && ++i) {
            d->is_prefill = true;
            d->from_peer = atoi(argv[i++]);
            d->to_peer = atoi(argv[i]);
        } else
            usage();
    }
    d->n = (d->tokens + 15) / 16;
    if (!d->n || d->n > NUM_BLOCKS / 2 || !d->iters)
        usage();
}

/* Both processes authenticate the side channel and their metadata with one
 * key (inherited through FERRY_AUTH_KEY): a random one for this run unless
 * the environment names one. */
static void demo_key(void)
{
    uint8_t raw[24];
    char hex[2 * sizeof(raw) + 1];
    if (getenv("FERRY_AUTH_KEY") || getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        return;
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    setenv("FERRY_AUTH_KEY", hex, 1);
}

/* Starts the prefill process: this program again, with the pipe's fds. */
static pid_t spawn_prefill(demo *d, int argc, char **argv)
{
    int down[2], up[2];
    if (pipe(down) || pipe(up))
        exit(1);
    pid_t pid = fork();
    if (pid == 0) {
        char in[16], out[16];
        snprintf(in, sizeof(in), "%d", down[0]);
        snprintf(out, sizeof(out), "%d", up[1]);
        char **args = calloc((size_t)argc + 4, sizeof(*args));
        for (int i = 0; i < argc; i++)
            args[i] = argv[i];
        args[argc] = "--prefill-fds";
        args[argc + 1] = in;
        args[argc + 2] = out;
        close(down[1]);
        close(up[0]);
        execv("/proc/self/exe", args);
        _exit(127);
    }
    close(down[0]);
    close(up[1]);
    d->to_peer = down[1];
    d->from_peer = up[0];
    return pid;
}

int main(int argc, char **argv)
{
    demo d;
    parse(&d, argc, argv);
    tp_watch();
    if (d.is_prefill)
        return prefill_role(&d);
    demo_key();
    pid_t pid = spawn_prefill(&d, argc, argv);
    if (pid < 0)
        return 1;
    int rc = decode_role(&d), status = 0;
    waitpid(pid, &status, 0);
    bool prefill_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!prefill_ok)
        fprintf(stderr, "ferry-demo: the prefill process failed\n");
    return rc || !prefill_ok;
}
