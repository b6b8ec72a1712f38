/* SPDX-License-Identifier: Apache-2.0 */
/* Drives the LOCAL plugin through its ops table, without the core: a small
 * fake host logs to stderr and records notifications, so each test sees
 * exactly what the plugin did and when. */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ferry/plugin.h"
#include "harness.h"

const ferry_plugin_desc *ferry_plugin_builtin_LOCAL(void);

/* ---- fake host -------------------------------------------------------- */

#define MAX_NOTIFS 4096
#define MSG_MAX    64

struct fake_notif {
    char from[32];
    char msg[MSG_MAX];
    size_t len;
    bool data_ok; /* the armed check held when it was delivered */
};

/* One fake agent for the whole program; tests reset it. */
static struct {
    pthread_mutex_t lock;
    struct fake_notif notifs[MAX_NOTIFS];
    size_t count, overflow;
    unsigned errors; /* log lines at ERROR level */
    /* Armed by a test: at delivery, dst must already equal expect. */
    const void *check_dst, *check_expect;
    size_t check_len;
} fk = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void fake_log(void *ctx, ferry_log_level level, const char *fmt, ...)
{
    va_list ap;

    (void)ctx;
    pthread_mutex_lock(&fk.lock);
    if (level == FERRY_LOG_ERROR)
        fk.errors++;
    pthread_mutex_unlock(&fk.lock);
    if (level > FERRY_LOG_INFO && !getenv("FY_TEST_VERBOSE"))
        return;
    va_start(ap, fmt);
    fprintf(stderr, "[LOCAL %d] ", (int)level);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void fake_deliver(void *ctx, const char *from, const void *msg, size_t len)
{
    struct fake_notif *n;

    (void)ctx;
    pthread_mutex_lock(&fk.lock);
    if (fk.count == MAX_NOTIFS || len >= MSG_MAX) {
        fk.overflow++;
        goto unlock;
    }
    n = &fk.notifs[fk.count++];
    snprintf(n->from, sizeof(n->from), "%s", from);
    memcpy(n->msg, msg, len);
    n->msg[len] = '\0';
    n->len = len;
    n->data_ok = !fk.check_dst || memcmp(fk.check_dst, fk.check_expect, fk.check_len) == 0;
unlock:
    pthread_mutex_unlock(&fk.lock);
}

static const ferry_plugin_host fake_host = {
    .size = sizeof(ferry_plugin_host),
    .agent_name = "agent-a",
    .agent_uid = 0x1122334455667788ull,
    .agent_ctx = &fk,
    .notif_deliver = fake_deliver,
    .log = fake_log,
};

static void fake_reset(void)
{
    pthread_mutex_lock(&fk.lock);
    fk.count = fk.overflow = 0;
    fk.errors = 0;
    fk.check_dst = fk.check_expect = NULL;
    fk.check_len = 0;
    pthread_mutex_unlock(&fk.lock);
}

static void fake_arm(const void *dst, const void *expect, size_t len)
{
    pthread_mutex_lock(&fk.lock);
    fk.check_dst = dst;
    fk.check_expect = expect;
    fk.check_len = len;
    pthread_mutex_unlock(&fk.lock);
}

/* How many notifications carry msg; *all_ok: each one saw its data. */
static size_t fake_count(const char *msg, bool *all_ok)
{
    size_t n = 0;

    pthread_mutex_lock(&fk.lock);
    if (all_ok)
        *all_ok = true;
    for (size_t i = 0; i < fk.count; i++) {
        if (strcmp(fk.notifs[i].msg, msg) != 0)
            continue;
        n++;
        if (all_ok && !fk.notifs[i].data_ok)
            *all_ok = false;
    }
    pthread_mutex_unlock(&fk.lock);
    return n;
}

static unsigned fake_errors(void)
{
    unsigned n;

    pthread_mutex_lock(&fk.lock);
    n = fk.errors;
    pthread_mutex_unlock(&fk.lock);
    return n;
}

/* ---- plugin instance ---------------------------------------------------- */

struct inst {
    const ferry_plugin_desc *d;
    const ferry_plugin_ops *o;
    void *priv;
    void *self; /* loopback remote */
};

static ferry_status inst_open_host(struct inst *in, const ferry_plugin_host *host,
                                   const ferry_param *p, size_t n)
{
    ferry_status st;
    void *info = NULL;
    size_t len = 0;

    in->d = ferry_plugin_builtin_LOCAL();
    in->o = in->d->ops;
    in->priv = calloc(1, in->d->priv_size);
    in->self = NULL;
    st = in->o->init(in->priv, host, p, n);
    if (st != FERRY_OK)
        goto free_priv;
    st = in->o->conn_info(in->priv, &info, &len);
    if (st == FERRY_OK)
        st = in->o->remote_load(in->priv, host->agent_name, host->agent_uid, info, len, &in->self);
    free(info);
    if (st != FERRY_OK)
        goto fini;
    return FERRY_OK;

fini:
    in->o->fini(in->priv);
free_priv:
    free(in->priv);
    in->priv = NULL;
    return st;
}

static ferry_status inst_open(struct inst *in, const ferry_param *p, size_t n)
{
    return inst_open_host(in, &fake_host, p, n);
}

static void inst_close(struct inst *in)
{
    in->o->remote_unload(in->priv, in->self);
    in->o->fini(in->priv);
    free(in->priv);
}

/* ---- transfers ---------------------------------------------------------- */

struct xf {
    ferry_plugin_xfer x;
    ferry_plugin_seg *l, *r;
};

static void xf_alloc(struct xf *t, struct inst *in, ferry_xfer_op op, size_t count)
{
    t->l = calloc(count ? count : 1, sizeof(*t->l));
    t->r = calloc(count ? count : 1, sizeof(*t->r));
    t->x = (ferry_plugin_xfer){
        .op = op,
        .local_type = FERRY_MEM_DRAM,
        .remote_type = FERRY_MEM_DRAM,
        .count = count,
        .local = t->l,
        .remote = t->r,
        .remote_agent = in->self,
    };
}

static void xf_set(struct xf *t, size_t i, const void *local, const void *remote, uint64_t len)
{
    t->l[i] = (ferry_plugin_seg){.addr = (uint64_t)(uintptr_t)local, .len = len};
    t->r[i] = (ferry_plugin_seg){.addr = (uint64_t)(uintptr_t)remote, .len = len};
    t->x.total_bytes += len;
}

static void xf_free(struct xf *t)
{
    free(t->l);
    free(t->r);
}

/* What the transfer must produce, by plain per-segment memmove: exp starts
 * as dst_init (what dst held before) and gets each segment from src_init
 * (what src held), at the offsets the segments have in dst and src. */
static void xf_reference(const struct xf *t, char *exp, const char *dst, const char *dst_init,
                         const char *src, const char *src_init, size_t n)
{
    bool read = t->x.op == FERRY_OP_READ;

    memcpy(exp, dst_init, n);
    for (size_t i = 0; i < t->x.count; i++) {
        uint64_t d = read ? t->l[i].addr : t->r[i].addr;
        uint64_t s = read ? t->r[i].addr : t->l[i].addr;

        memmove(exp + (d - (uint64_t)(uintptr_t)dst), src_init + (s - (uint64_t)(uintptr_t)src),
                t->l[i].len);
    }
}

static void fill(void *buf, size_t n, uint64_t seed)
{
    uint8_t *p = buf;
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)x;
    }
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};

    nanosleep(&ts, NULL);
}

/* Polls until the request leaves IN_PROGRESS (or 120 s pass). */
static ferry_status wait_done(struct inst *in, void *h)
{
    double deadline = now_s() + 120;
    ferry_status st;

    while ((st = in->o->xfer_check(in->priv, h)) == FERRY_IN_PROGRESS && now_s() < deadline)
        nap_us(50);
    return st;
}

/* ---- tests ------------------------------------------------------------- */

static void t_descriptor(void)
{
    const ferry_plugin_desc *d = ferry_plugin_builtin_LOCAL();
    const ferry_plugin_ops *o = d->ops;

    FY_REQUIRE(d && o);
    FY_CHECK_EQ(d->abi_version, FERRY_PLUGIN_ABI_VERSION);
    FY_CHECK(strcmp(d->name, "LOCAL") == 0);
    FY_CHECK(d->version && *d->version);
    FY_CHECK_EQ(d->flags, FERRY_PLUGIN_F_THREAD_SAFE);
    FY_CHECK_EQ(d->caps, FERRY_CAP_LOCAL | FERRY_CAP_NOTIF);
    FY_CHECK_EQ(d->mem_mask, FERRY_MEM_MASK(FERRY_MEM_DRAM));
    FY_CHECK(d->priv_size > 0);
    FY_CHECK_EQ(o->size, sizeof(ferry_plugin_ops));
    FY_CHECK(o->init && o->fini && o->reg && o->dereg && o->conn_info && o->remote_load);
    FY_CHECK(o->remote_unload && o->rregion_load && o->rregion_unload && o->xfer_prep);
    FY_CHECK(o->xfer_post && o->xfer_check && o->xfer_release);
    FY_CHECK(o->notif_send && o->estimate && o->xfer_error);
    FY_CHECK_EQ(d->num_params, 3);
    for (size_t i = 0; i < d->num_params; i++)
        FY_CHECK(d->params[i].key && d->params[i].default_value && d->params[i].help);
}

static void t_init_defaults(void)
{
    const ferry_plugin_desc *d = ferry_plugin_builtin_LOCAL();
    ferry_param p[3];
    struct inst in;

    for (size_t i = 0; i < 3; i++)
        p[i] = (ferry_param){d->params[i].key, d->params[i].default_value};
    FY_CHECK_EQ(inst_open(&in, p, 3), FERRY_OK);
    if (in.priv)
        inst_close(&in);
    /* A direct caller may leave keys out: defaults apply. */
    FY_CHECK_EQ(inst_open(&in, NULL, 0), FERRY_OK);
    if (in.priv)
        inst_close(&in);
}

static void t_init_params(void)
{
    static const ferry_param bad[] = {
        {"workers", ""},    {"workers", "abc"},   {"workers", "-1"},
        {"workers", "+2"},  {"workers", " 2"},    {"workers", "2x"},
        {"workers", "257"}, {"workers", NULL},    {"workers", "99999999999999999999999"},
        {"workers", "1KK"}, {"inline_max", "2T"}, {"inline_max", "16777216T"},
        {"chunk", "0"},     {"chunk", "4095"},    {"chunk", "2G"},
        {"chunk", "1M "},   {"worker", "2"},      {NULL, "2"},
    };
    static const ferry_param good[] = {
        {"workers", "0"},     {"workers", "256"}, {"inline_max", "0"},
        {"inline_max", "1T"}, {"chunk", "4K"},    {"chunk", "1g"},
    };
    struct inst in;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unsigned before = fake_errors();

        FY_CHECK_EQ(inst_open(&in, &bad[i], 1), FERRY_ERR_INVALID_PARAM);
        FY_CHECK(fake_errors() > before); /* said why */
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        FY_CHECK_EQ(inst_open(&in, &good[i], 1), FERRY_OK);
        if (in.priv)
            inst_close(&in);
    }
}

static void t_init_host(void)
{
    const ferry_plugin_desc *d = ferry_plugin_builtin_LOCAL();
    ferry_plugin_host h = fake_host;
    void *priv = calloc(1, d->priv_size);

    FY_CHECK_EQ(d->ops->init(priv, NULL, NULL, 0), FERRY_ERR_INVALID_PARAM);
    h.size = sizeof(h) - 1;
    FY_CHECK_EQ(d->ops->init(priv, &h, NULL, 0), FERRY_ERR_INVALID_PARAM);
    h = fake_host;
    h.notif_deliver = NULL;
    FY_CHECK_EQ(d->ops->init(priv, &h, NULL, 0), FERRY_ERR_INVALID_PARAM);
    free(priv);
}

static void t_reg(void)
{
    static char buf[4096];
    ferry_desc desc = {(uint64_t)(uintptr_t)buf, sizeof(buf), 0};
    void *region = &desc, *pub = &desc;
    size_t pub_len = 99;
    struct inst in;

    FY_REQUIRE(inst_open(&in, NULL, 0) == FERRY_OK);
    FY_CHECK_EQ(in.o->reg(in.priv, FERRY_MEM_DRAM, &desc, NULL, 0, &region, &pub, &pub_len),
                FERRY_OK);
    FY_CHECK(region == NULL && pub == NULL && pub_len == 0);
    in.o->dereg(in.priv, region);
    for (int t = FERRY_MEM_VRAM; t < FERRY_MEM_TYPE_COUNT; t++)
        FY_CHECK_EQ(in.o->reg(in.priv, (ferry_mem_type)t, &desc, NULL, 0, &region, &pub, &pub_len),
                    FERRY_ERR_NOT_SUPPORTED);
    desc.len = 0;
    FY_CHECK_EQ(in.o->reg(in.priv, FERRY_MEM_DRAM, &desc, NULL, 0, &region, &pub, &pub_len),
                FERRY_ERR_INVALID_PARAM);
    desc = (ferry_desc){UINT64_MAX - 10, 100, 0}; /* wraps */
    FY_CHECK_EQ(in.o->reg(in.priv, FERRY_MEM_DRAM, &desc, NULL, 0, &region, &pub, &pub_len),
                FERRY_ERR_INVALID_PARAM);
    inst_close(&in);
}

static void t_conn_info(void)
{
    ferry_plugin_host other = fake_host;
    struct inst a, b;
    uint8_t *info = NULL, *bad;
    size_t len = 0;
    void *r = NULL, *rr = &r;
    ferry_desc desc = {4096, 4096, 0};

    other.agent_name = "agent-b";
    other.agent_uid ^= 1;
    FY_REQUIRE(inst_open(&a, NULL, 0) == FERRY_OK);
    FY_REQUIRE(inst_open_host(&b, &other, NULL, 0) == FERRY_OK);
    FY_REQUIRE(a.o->conn_info(a.priv, (void **)&info, &len) == FERRY_OK);
    FY_CHECK(len > 0 && len <= 64);
    /* Loopback: our own info loads. */
    FY_CHECK_EQ(a.o->remote_load(a.priv, "agent-a", fake_host.agent_uid, info, len, &r), FERRY_OK);
    a.o->remote_unload(a.priv, r);
    /* Another agent (other uid) of the same process is not reachable. */
    FY_CHECK_EQ(b.o->remote_load(b.priv, "agent-a", fake_host.agent_uid, info, len, &r),
                FERRY_ERR_NOT_SUPPORTED);
    FY_CHECK_EQ(a.o->remote_load(a.priv, "agent-a", other.agent_uid, info, len, &r),
                FERRY_ERR_NOT_SUPPORTED);
    /* Any changed byte, a short blob, or none at all: foreign. */
    bad = malloc(len);
    for (size_t i = 0; i < len; i++) {
        memcpy(bad, info, len);
        bad[i] ^= 0x40;
        FY_CHECK_EQ(a.o->remote_load(a.priv, "x", fake_host.agent_uid, bad, len, &r),
                    FERRY_ERR_NOT_SUPPORTED);
    }
    FY_CHECK_EQ(a.o->remote_load(a.priv, "x", fake_host.agent_uid, info, len - 1, &r),
                FERRY_ERR_NOT_SUPPORTED);
    FY_CHECK_EQ(a.o->remote_load(a.priv, "x", fake_host.agent_uid, NULL, 0, &r),
                FERRY_ERR_NOT_SUPPORTED);
    /* Remote regions of ourselves: accepted, nothing to map. */
    FY_CHECK_EQ(a.o->rregion_load(a.priv, a.self, FERRY_MEM_DRAM, &desc, NULL, 0, &rr), FERRY_OK);
    FY_CHECK(rr == NULL);
    a.o->rregion_unload(a.priv, a.self, rr);
    FY_CHECK_EQ(a.o->rregion_load(a.priv, a.self, FERRY_MEM_VRAM, &desc, NULL, 0, &rr),
                FERRY_ERR_NOT_SUPPORTED);
    FY_CHECK_EQ(a.o->rregion_load(a.priv, b.self, FERRY_MEM_DRAM, &desc, NULL, 0, &rr),
                FERRY_ERR_INVALID_PARAM);
    free(bad);
    free(info);
    inst_close(&b);
    inst_close(&a);
}

static void t_notif_send(void)
{
    struct inst a, b;
    ferry_plugin_host other = fake_host;

    other.agent_uid ^= 2;
    fake_reset();
    FY_REQUIRE(inst_open(&a, NULL, 0) == FERRY_OK);
    FY_REQUIRE(inst_open_host(&b, &other, NULL, 0) == FERRY_OK);
    FY_CHECK_EQ(a.o->notif_send(a.priv, a.self, "hello", 5), FERRY_OK);
    FY_CHECK_EQ(fake_count("hello", NULL), 1); /* delivered before return */
    FY_CHECK(strcmp(fk.notifs[0].from, "agent-a") == 0);
    FY_CHECK_EQ(a.o->notif_send(a.priv, a.self, "", 0), FERRY_OK);
    FY_CHECK_EQ(a.o->notif_send(a.priv, NULL, "x", 1), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(a.o->notif_send(a.priv, b.self, "x", 1), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(a.o->notif_send(a.priv, a.self, NULL, 1), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(fake_count("x", NULL), 0);
    inst_close(&b);
    inst_close(&a);
}

/* Scatters count segments of random sizes over a buffer of n bytes, local
 * side in order, remote side in reverse order, so that a wrong offset or a
 * wrong segment shows. Returns the xfer. */
static void xf_scatter(struct xf *t, struct inst *in, ferry_xfer_op op, char *local, char *remote,
                       size_t n, size_t count, uint64_t seed)
{
    size_t *len = calloc(count, sizeof(*len)), lo = 0, ro = n;
    uint64_t s = seed | 1, left = n;

    for (size_t i = 0; i < count; i++) {
        size_t fair = left / (count - i);

        len[i] = i + 1 == count ? left : (fair ? rnd(&s) % (2 * fair) : 0);
        if (len[i] > left)
            len[i] = left;
        if (i % 97 == 13)
            len[i] = 0; /* the ABI allows none, but the copy must cope */
        left -= len[i];
    }
    xf_alloc(t, in, op, count);
    for (size_t i = 0; i < count; i++) {
        ro -= len[i];
        xf_set(t, i, local + lo, remote + ro, len[i]);
        lo += len[i];
    }
    free(len);
}

static void t_inline_read_write(void)
{
    enum { N = 64 * 1024 };
    char *a = malloc(N), *b = malloc(N), *a0 = malloc(N), *b0 = malloc(N), *exp = malloc(N);
    struct inst in;

    FY_REQUIRE(inst_open(&in, NULL, 0) == FERRY_OK);
    fake_reset();
    for (int op = FERRY_OP_READ; op <= FERRY_OP_WRITE; op++) {
        struct xf t;
        void *h = NULL;
        char *dst = op == FERRY_OP_READ ? a : b;
        const char *msg = op == FERRY_OP_READ ? "inline-read" : "inline-write";

        fill(a, N, 1 + op), fill(b, N, 7 + op);
        memcpy(a0, a, N), memcpy(b0, b, N);
        xf_scatter(&t, &in, (ferry_xfer_op)op, a, b, N, 50, 3 + op);
        if (op == FERRY_OP_READ)
            xf_reference(&t, exp, a, a0, b, b0, N);
        else
            xf_reference(&t, exp, b, b0, a, a0, N);
        fake_arm(dst, exp, N);
        FY_REQUIRE(in.o->xfer_prep(in.priv, &t.x, &h) == FERRY_OK);
        FY_CHECK_EQ(in.o->xfer_check(in.priv, h), FERRY_ERR_NOT_POSTED);
        FY_CHECK_EQ(in.o->xfer_post(in.priv, h, msg, strlen(msg)), FERRY_OK);
        FY_CHECK_EQ(in.o->xfer_check(in.priv, h), FERRY_OK);
        FY_CHECK(memcmp(dst, exp, N) == 0);
        FY_CHECK(memcmp(op == FERRY_OP_READ ? b : a, op == FERRY_OP_READ ? b0 : a0, N) == 0);
        bool ok = false;
        FY_CHECK_EQ(fake_count(msg, &ok), 1);
        FY_CHECK(ok);
        FY_CHECK(strcmp(in.o->xfer_error(in.priv, h), "") == 0);
        /* No notif: nothing delivered. */
        FY_CHECK_EQ(in.o->xfer_post(in.priv, h, NULL, 0), FERRY_OK);
        FY_CHECK_EQ(fake_count(msg, NULL), 1);
        FY_CHECK_EQ(in.o->xfer_release(in.priv, h), FERRY_OK);
        fake_arm(NULL, NULL, 0);
        xf_free(&t);
    }
    inst_close(&in);
    free(a), free(b), free(a0), free(b0), free(exp);
}

/* Loopback source and destination may overlap inside a segment: local is
 * buf, remote is buf + 50, both 900 bytes. */
static void t_overlap(void)
{
    char buf[1000], ref[1000];
    struct inst in;
    struct xf t;
    void *h;

    FY_REQUIRE(inst_open(&in, NULL, 0) == FERRY_OK);
    for (int op = FERRY_OP_READ; op <= FERRY_OP_WRITE; op++) {
        fill(buf, sizeof(buf), 11);
        memcpy(ref, buf, sizeof(ref));
        if (op == FERRY_OP_READ)
            memmove(ref, ref + 50, 900);
        else
            memmove(ref + 50, ref, 900);
        xf_alloc(&t, &in, (ferry_xfer_op)op, 1);
        xf_set(&t, 0, buf, buf + 50, 900);
        FY_REQUIRE(in.o->xfer_prep(in.priv, &t.x, &h) == FERRY_OK);
        FY_CHECK_EQ(in.o->xfer_post(in.priv, h, NULL, 0), FERRY_OK);
        FY_CHECK(memcmp(buf, ref, sizeof(buf)) == 0);
        in.o->xfer_release(in.priv, h);
        xf_free(&t);
    }
    inst_close(&in);
}

static void t_prep_refused(void)
{
    static char a[256], b[256];
    ferry_plugin_host other = fake_host;
    struct inst in, in2;
    struct xf t;
    void *h = NULL;

    other.agent_uid ^= 4;
    FY_REQUIRE(inst_open(&in, NULL, 0) == FERRY_OK);
    FY_REQUIRE(inst_open_host(&in2, &other, NULL, 0) == FERRY_OK);
    xf_alloc(&t, &in, FERRY_OP_WRITE, 2);
    xf_set(&t, 0, a, b, 100);
    xf_set(&t, 1, a + 100, b + 100, 100);
    t.x.local_type = FERRY_MEM_VRAM;
    FY_CHECK_EQ(in.o->xfer_prep(in.priv, &t.x, &h), FERRY_ERR_NOT_SUPPORTED);
    t.x.local_type = FERRY_MEM_DRAM;
    t.x.remote_type = FERRY_MEM_FILE;
    FY_CHECK_EQ(in.o->xfer_prep(in.priv, &t.x, &h), FERRY_ERR_NOT_SUPPORTED);
    t.x.remote_type = FERRY_MEM_DRAM;
    t.x.remote_agent = NULL;
    FY_CHECK_EQ(in.o->xfer_prep(in.priv, &t.x, &h), FERRY_ERR_INVALID_PARAM);
    t.x.remote_agent = in2.self; /* another backend's remote */
    FY_CHECK_EQ(in.o->xfer_prep(in.priv, &t.x, &h), FERRY_ERR_INVALID_PARAM);
    t.x.remote_agent = in.self;
    t.r[1].len = 99;
    FY_CHECK_EQ(in.o->xfer_prep(in.priv, &t.x, &h), FERRY_ERR_INVALID_PARAM);
    t.r[1].len = 100;
    t.x.total_bytes = 201;
    FY_CHECK_EQ(in.o->xfer_prep(in.priv, &t.x, &h), FERRY_ERR_INVALID_PARAM);
    t.x.total_bytes = 200;
    t.l[0].addr = 0;
    FY_CHECK_EQ(in.o->xfer_prep(in.priv, &t.x, &h), FERRY_ERR_INVALID_PARAM);
    FY_CHECK(h == NULL); /* outputs only on success */
    xf_free(&t);
    inst_close(&in2);
    inst_close(&in);
}

/* workers=0: even a large transfer completes inside post. */
static void t_no_workers(void)
{
    enum { N = 8 << 20 };
    ferry_param p = {"workers", "0"};
    char *a = malloc(N), *b = malloc(N);
    struct inst in;
    struct xf t;
    void *h;

    FY_REQUIRE(inst_open(&in, &p, 1) == FERRY_OK);
    fake_reset();
    fill(a, N, 5);
    memset(b, 0, N);
    xf_alloc(&t, &in, FERRY_OP_WRITE, 1);
    xf_set(&t, 0, a, b, N);
    FY_REQUIRE(in.o->xfer_prep(in.priv, &t.x, &h) == FERRY_OK);
    FY_CHECK_EQ(in.o->xfer_post(in.priv, h, "nw", 2), FERRY_OK);
    FY_CHECK_EQ(fake_count("nw", NULL), 1);
    FY_CHECK(memcmp(a, b, N) == 0);
    in.o->xfer_release(in.priv, h);
    xf_free(&t);
    inst_close(&in);
    free(a), free(b);
}

/* 64 MiB in a few hundred segments of random sizes, through the pool. The
 * notification must come once, and only when all data is there. */
static void t_pooled_64m(void)
{
    enum { N = 64 << 20 };
    char *src = malloc(N), *dst = malloc(N), *dst0 = malloc(N), *exp = malloc(N);
    struct inst in;
    struct xf t;
    void *h;
    bool ok = false;

    FY_REQUIRE(inst_open(&in, NULL, 0) == FERRY_OK);
    fake_reset();
    fill(src, N, 21);
    fill(dst, N, 22);
    memcpy(dst0, dst, N);
    xf_scatter(&t, &in, FERRY_OP_WRITE, src, dst, N, 400, 23);
    xf_reference(&t, exp, dst, dst0, src, src, N);
    fake_arm(dst, exp, N);
    FY_REQUIRE(in.o->xfer_prep(in.priv, &t.x, &h) == FERRY_OK);
    FY_CHECK_EQ(in.o->xfer_post(in.priv, h, "big", 3), FERRY_IN_PROGRESS);
    FY_CHECK_EQ(wait_done(&in, h), FERRY_OK);
    FY_CHECK_EQ(fake_count("big", &ok), 1); /* queued before OK was seen */
    FY_CHECK(ok);
    FY_CHECK(memcmp(dst, exp, N) == 0);
    FY_CHECK(strcmp(in.o->xfer_error(in.priv, h), "") == 0);
    FY_CHECK_EQ(in.o->xfer_release(in.priv, h), FERRY_OK);
    FY_CHECK_EQ(fake_count("big", NULL), 1);
    fake_arm(NULL, NULL, 0);
    xf_free(&t);
    inst_close(&in);
    free(src), free(dst), free(dst0), free(exp);
}

/* 100k 64-byte segments: READ from a strided source into a packed
 * destination in reverse order; pooled (default params) and inline. */
static void t_tiny_100k(void)
{
    enum { K = 100000, S = 64, STRIDE = 128 };
    ferry_param big_inline = {"inline_max", "64M"};
    char *src = malloc((size_t)K * STRIDE), *dst = malloc((size_t)K * S);
    const ferry_param *params[2] = {NULL, &big_inline};

    fill(src, (size_t)K * STRIDE, 31);
    for (int pass = 0; pass < 2; pass++) {
        struct inst in;
        struct xf t;
        void *h;
        double t0, t1;
        ferry_status st;
        bool ok = true;

        FY_REQUIRE(inst_open(&in, params[pass], params[pass] ? 1 : 0) == FERRY_OK);
        memset(dst, 0, (size_t)K * S);
        xf_alloc(&t, &in, FERRY_OP_READ, K);
        for (size_t i = 0; i < K; i++)
            xf_set(&t, i, dst + (K - 1 - i) * S, src + i * STRIDE, S);
        t0 = now_s();
        FY_REQUIRE(in.o->xfer_prep(in.priv, &t.x, &h) == FERRY_OK);
        t1 = now_s();
        st = in.o->xfer_post(in.priv, h, NULL, 0);
        printf("# %s: prep %.2f ms, post %.3f ms\n", pass ? "inline" : "pooled", (t1 - t0) * 1e3,
               (now_s() - t1) * 1e3);
        FY_CHECK_EQ(st, pass ? FERRY_OK : FERRY_IN_PROGRESS);
        FY_CHECK_EQ(wait_done(&in, h), FERRY_OK);
        for (size_t i = 0; i < K && ok; i++)
            ok = memcmp(dst + (K - 1 - i) * S, src + i * STRIDE, S) == 0;
        FY_CHECK(ok);
        in.o->xfer_release(in.priv, h);
        xf_free(&t);
        inst_close(&in);
    }
    free(src), free(dst);
}

/* Release right after post: unstarted items are dropped, running ones
 * finish before release returns, nothing writes afterwards, and the
 * notification of the canceled transfer never comes. */
static void t_release_in_progress(void)
{
    enum { N = 128 << 20 };
    char *src = malloc(N), *dst = malloc(N), *snap = malloc(N);
    struct inst in;
    struct xf t;
    void *h;

    FY_REQUIRE(inst_open(&in, NULL, 0) == FERRY_OK);
    fake_reset();
    memset(src, 0xab, N);
    memset(dst, 0, N);
    xf_alloc(&t, &in, FERRY_OP_WRITE, 4);
    for (size_t i = 0; i < 4; i++)
        xf_set(&t, i, src + i * (N / 4), dst + i * (N / 4), N / 4);
    FY_REQUIRE(in.o->xfer_prep(in.priv, &t.x, &h) == FERRY_OK);
    FY_CHECK_EQ(in.o->xfer_post(in.priv, h, "canceled", 8), FERRY_IN_PROGRESS);
    FY_CHECK_EQ(in.o->xfer_release(in.priv, h), FERRY_OK);
    memcpy(snap, dst, N);
    nap_us(100 * 1000);
    FY_CHECK(memcmp(snap, dst, N) == 0);
    /* Cut short (the normal case, the copy takes milliseconds): no notif.
     * A scheduler that starved this thread (valgrind's can) may let the
     * copy finish first; then the notif may have come, once at most. */
    if (memcmp(src, dst, N) != 0) {
        FY_CHECK_EQ(fake_count("canceled", NULL), 0);
    } else {
        printf("# finished before release could cancel it\n");
        FY_CHECK(fake_count("canceled", NULL) <= 1);
    }
    xf_free(&t);
    inst_close(&in);
    free(src), free(dst), free(snap);
}

/* A request runs again once done, with new data and a new notification;
 * posting it while in progress is refused. */
static void t_repost(void)
{
    enum { N = 16 << 20, BIG = 128 << 20 };
    char *src = malloc(BIG), *dst = malloc(BIG);
    struct inst in;
    struct xf t, tb;
    void *h, *hb;
    ferry_status st;
    bool ok;

    FY_REQUIRE(inst_open(&in, NULL, 0) == FERRY_OK);
    fake_reset();
    xf_alloc(&t, &in, FERRY_OP_WRITE, 1);
    xf_set(&t, 0, src, dst, N);
    FY_REQUIRE(in.o->xfer_prep(in.priv, &t.x, &h) == FERRY_OK);
    for (int round = 0; round < 3; round++) {
        char msg[32];

        snprintf(msg, sizeof(msg), "round-%d", round);
        fill(src, N, 40 + round);
        fake_arm(dst, src, N);
        st = in.o->xfer_post(in.priv, h, msg, strlen(msg));
        FY_CHECK_EQ(st, FERRY_IN_PROGRESS);
        FY_CHECK_EQ(wait_done(&in, h), FERRY_OK);
        FY_CHECK(memcmp(src, dst, N) == 0);
        FY_CHECK_EQ(fake_count(msg, &ok), 1);
        FY_CHECK(ok);
    }
    fake_arm(NULL, NULL, 0);
    in.o->xfer_release(in.priv, h);
    xf_free(&t);

    xf_alloc(&tb, &in, FERRY_OP_WRITE, 1);
    xf_set(&tb, 0, src, dst, BIG);
    FY_REQUIRE(in.o->xfer_prep(in.priv, &tb.x, &hb) == FERRY_OK);
    FY_CHECK_EQ(in.o->xfer_post(in.priv, hb, NULL, 0), FERRY_IN_PROGRESS);
    st = in.o->xfer_post(in.priv, hb, NULL, 0);
    /* 128 MiB cannot be done already unless this thread slept a long time. */
    FY_CHECK(st == FERRY_ERR_REPOST_ACTIVE || st == FERRY_IN_PROGRESS);
    if (st == FERRY_ERR_REPOST_ACTIVE)
        FY_CHECK(strlen(in.o->xfer_error(in.priv, hb)) > 0);
    FY_CHECK_EQ(wait_done(&in, hb), FERRY_OK);
    in.o->xfer_release(in.priv, hb);
    xf_free(&tb);
    inst_close(&in);
    free(src), free(dst);
}

static void t_estimate(void)
{
    enum { N = 64 << 20 };
    static char small[4096];
    char *big = malloc(N);
    struct inst in;
    struct xf ts, tb, tm;
    void *hs, *hb, *hm;
    ferry_xfer_cost cs = {.size = sizeof(cs)}, cb = cs, cm = cs;

    FY_REQUIRE(inst_open(&in, NULL, 0) == FERRY_OK);
    xf_alloc(&ts, &in, FERRY_OP_WRITE, 1);
    xf_set(&ts, 0, small, small + 2048, 2048);
    xf_alloc(&tb, &in, FERRY_OP_WRITE, 1);
    xf_set(&tb, 0, big, big + N / 2, N / 2);
    xf_alloc(&tm, &in, FERRY_OP_WRITE, 2048); /* same bytes, many segments */
    for (size_t i = 0; i < 2048; i++)
        xf_set(&tm, i, small + i, small + 2048 + i, 1);
    FY_REQUIRE(in.o->xfer_prep(in.priv, &ts.x, &hs) == FERRY_OK);
    FY_REQUIRE(in.o->xfer_prep(in.priv, &tb.x, &hb) == FERRY_OK);
    FY_REQUIRE(in.o->xfer_prep(in.priv, &tm.x, &hm) == FERRY_OK);
    FY_CHECK_EQ(in.o->estimate(in.priv, hs, &cs), FERRY_OK);
    FY_CHECK_EQ(in.o->estimate(in.priv, hb, &cb), FERRY_OK);
    FY_CHECK_EQ(in.o->estimate(in.priv, hm, &cm), FERRY_OK);
    printf("# estimate: 2 KiB %.2f us, 32 MiB %.1f us (+-%.1f), 2048 x 1 B %.2f us\n",
           cs.duration_us, cb.duration_us, cb.error_margin_us, cm.duration_us);
    FY_CHECK(cs.duration_us > 0 && cs.error_margin_us > 0);
    FY_CHECK(cb.duration_us > cs.duration_us);
    FY_CHECK(cm.duration_us > cs.duration_us);
    FY_CHECK_EQ(cb.method, FERRY_COST_ANALYTICAL);
    FY_CHECK_EQ(cb.size, sizeof(cb)); /* untouched */
    FY_CHECK_EQ(in.o->estimate(in.priv, NULL, &cb), FERRY_ERR_INVALID_PARAM);
    in.o->xfer_release(in.priv, hs);
    in.o->xfer_release(in.priv, hb);
    in.o->xfer_release(in.priv, hm);
    xf_free(&ts), xf_free(&tb), xf_free(&tm);
    inst_close(&in);
    free(big);
}

/* ---- many threads ------------------------------------------------------- */

enum { NTHREADS = 8, ITERS = 24, TBUF = 1 << 20 };

struct worker_arg {
    struct inst *in;
    int id;
    int failures;
    bool completed[ITERS]; /* notif must have come exactly once */
};

/* One iteration: prep, post, then poll to completion and verify, or
 * release while (probably) still in progress. */
static int thread_iter(struct worker_arg *w, char *src, char *dst, int it)
{
    struct inst *in = w->in;
    size_t len = it % 3 == 0 ? 4096 : TBUF; /* small ones run inline */
    size_t segs = it % 2 ? 64 : 1;
    struct xf t;
    void *h;
    char msg[32];
    int bad = 0;
    ferry_status st;

    snprintf(msg, sizeof(msg), "t%d-%d", w->id, it);
    fill(src, len, (uint64_t)(w->id * 1000 + it));
    xf_alloc(&t, in, FERRY_OP_WRITE, segs);
    for (size_t i = 0; i < segs; i++)
        xf_set(&t, i, src + i * (len / segs), dst + i * (len / segs), len / segs);
    if (in->o->xfer_prep(in->priv, &t.x, &h) != FERRY_OK)
        return 1;
    st = in->o->xfer_post(in->priv, h, msg, strlen(msg));
    bad += st != FERRY_OK && st != FERRY_IN_PROGRESS;
    if (it % 5 != 4) {
        bad += wait_done(in, h) != FERRY_OK;
        bad += memcmp(src, dst, len) != 0;
        w->completed[it] = true;
    }
    bad += in->o->xfer_release(in->priv, h) != FERRY_OK;
    xf_free(&t);
    return bad;
}

static void *thread_main(void *arg)
{
    struct worker_arg *w = arg;
    char *src = malloc(TBUF), *dst = malloc(TBUF);

    for (int it = 0; it < ITERS; it++)
        w->failures += thread_iter(w, src, dst, it);
    w->failures += w->in->o->notif_send(w->in->priv, w->in->self, "alone", 5) != FERRY_OK;
    free(src);
    free(dst);
    return NULL;
}

static void t_threads(void)
{
    ferry_param p[] = {{"inline_max", "65536"}, {"chunk", "64K"}, {"workers", "3"}};
    struct worker_arg w[NTHREADS];
    pthread_t th[NTHREADS];
    struct inst in;

    FY_REQUIRE(inst_open(&in, p, 3) == FERRY_OK);
    fake_reset();
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (struct worker_arg){.in = &in, .id = i};
        FY_REQUIRE(pthread_create(&th[i], NULL, thread_main, &w[i]) == 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < NTHREADS; i++) {
        FY_CHECK_EQ(w[i].failures, 0);
        for (int it = 0; it < ITERS; it++) {
            char msg[32];
            size_t n;

            snprintf(msg, sizeof(msg), "t%d-%d", i, it);
            n = fake_count(msg, NULL);
            if (w[i].completed[it])
                FY_CHECK_EQ(n, 1);
            else
                FY_CHECK(n <= 1);
        }
    }
    FY_CHECK_EQ(fake_count("alone", NULL), NTHREADS);
    FY_CHECK_EQ(fk.overflow, 0);
    inst_close(&in);
}

int main(void)
{
    FY_RUN(t_descriptor);
    FY_RUN(t_init_defaults);
    FY_RUN(t_init_params);
    FY_RUN(t_init_host);
    FY_RUN(t_reg);
    FY_RUN(t_conn_info);
    FY_RUN(t_notif_send);
    FY_RUN(t_inline_read_write);
    FY_RUN(t_overlap);
    FY_RUN(t_prep_refused);
    FY_RUN(t_no_workers);
    FY_RUN(t_pooled_64m);
    FY_RUN(t_tiny_100k);
    FY_RUN(t_release_in_progress);
    FY_RUN(t_repost);
    FY_RUN(t_estimate);
    FY_RUN(t_threads);
    return fy_test_done();
}
