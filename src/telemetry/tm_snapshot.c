/* SPDX-License-Identifier: Apache-2.0 */
/* Snapshots of an agent's metrics (the public ferry_metrics_* calls sit on
 * them) and their Prometheus text form. Every family is in one table:
 * its name, kind and help, in the order the exposition lists them. */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "common/api.h"
#include "telemetry/tm.h"

enum {
    FAM_TX_BYTES,
    FAM_RX_BYTES,
    FAM_TX_REQS,
    FAM_RX_REQS,
    FAM_ERRORS,
    FAM_NOTIF_SENT,
    FAM_NOTIF_RECV,
    FAM_NOTIF_DROP,
    FAM_XFER_TIME,
    FAM_POST_TIME,
    FAM_MEM_REG,
    FAM_MEM_DEREG,
    FAM_REG_BYTES,
    FAM_REG_REGIONS,
    FAM_AGENT_REG_BYTES,
    FAM_AGENT_REG_REGIONS,
    FAM_CAP,
    FAM_RSS,
    FAM_MEM_AVAIL,
    FAM_MEMLOCK,
    FAM_COUNT
};

typedef struct fy_family {
    const char *name;
    ferry_metric_kind kind;
    const char *help;
} fy_family;

#define C FERRY_METRIC_COUNTER
#define G FERRY_METRIC_GAUGE
#define H FERRY_METRIC_HISTOGRAM
static const fy_family fy_families[FAM_COUNT] = {
    {"agent_tx_bytes", C, "Bytes of WRITE requests posted"},
    {"agent_rx_bytes", C, "Bytes of READ requests posted"},
    {"agent_tx_requests_num", C, "WRITE requests posted"},
    {"agent_rx_requests_num", C, "READ requests posted"},
    {"agent_errors", C, "Requests ended with an error, by status"},
    {"agent_notifs_sent", C, "Notifications sent (with a transfer or alone)"},
    {"agent_notifs_received", C, "Notifications received and queued"},
    {"agent_notifs_dropped", C, "Notifications dropped: the queue was full"},
    {"agent_xfer_time_us", H, "Post to completion of successful requests, microseconds"},
    {"agent_xfer_post_time_us", H, "Time spent in post, microseconds"},
    {"agent_memory_registered", C, "Bytes registered with a backend, cumulative"},
    {"agent_memory_deregistered", C, "Bytes deregistered from a backend, cumulative"},
    {"ferry_registered_bytes", G, "Bytes registered now, per backend, memory type and GPU"},
    {"ferry_registered_regions", G, "Regions registered now, per backend, memory type and GPU"},
    {"ferry_agent_registered_bytes", G, "Bytes registered now by the agent, each region once"},
    {"ferry_agent_registered_regions", G, "Regions registered now by the agent"},
    {"ferry_registered_cap_bytes", G,
     "Registration cap on DRAM+VRAM bytes (no backend label: the agent's)"},
    {"ferry_process_resident_bytes", G, "Resident set size of the process"},
    {"ferry_host_mem_available_bytes", G, "MemAvailable of the host"},
    {"ferry_memlock_limit_bytes", G, "RLIMIT_MEMLOCK of the process (+Inf: unlimited)"},
};
#undef C
#undef G
#undef H

#define FY_LABELS_MAX 6

typedef struct fy_series {
    int family;
    ferry_metric m;
    ferry_metric_label labels[FY_LABELS_MAX];
    char device[24];
    uint64_t counts[FY_TM_BUCKETS_MAX + 1];
} fy_series;

struct ferry_metrics {
    size_t count, cap;
    fy_series *s;
    char agent[65], host[65];
    char backend[FY_TM_BACKENDS][32];
    uint64_t bounds[FY_TM_BUCKETS_MAX];
    char *text;
    bool oom;
    const fy_tm *tm; /* for the filter and the names; not used after the snapshot */
};

/* ---- building ---- */

/* fy_tm_each_item's callback: false (stop) at a glob matching the name. */
static bool fy_glob_misses(const char *glob, void *name)
{
    return fnmatch(glob, name, 0) != 0;
}

static bool fy_family_enabled(const char *filter, int fam)
{
    return !filter[0] || !fy_tm_each_item(filter, fy_glob_misses, (void *)fy_families[fam].name);
}

/* A new series of family fam with the agent's labels; NULL when filtered
 * out or out of memory (then m->oom). */
static fy_series *fy_add(ferry_metrics *m, int fam, const char *backend)
{
    if (!fy_family_enabled(m->tm->cfg.metrics, fam))
        return NULL;
    if (m->count == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        fy_series *s = realloc(m->s, cap * sizeof(*s));
        if (!s) {
            m->oom = true;
            return NULL;
        }
        m->s = s;
        m->cap = cap;
    }
    fy_series *s = &m->s[m->count++];
    memset(s, 0, sizeof(*s));
    s->family = fam;
    s->m.size = sizeof(s->m);
    s->m.name = fy_families[fam].name;
    s->m.help = fy_families[fam].help;
    s->m.kind = fy_families[fam].kind;
    s->labels[0] = (ferry_metric_label){"agent_name", m->agent};
    s->labels[1] = (ferry_metric_label){"hostname", m->host};
    s->m.num_labels = 2;
    if (backend)
        s->labels[s->m.num_labels++] = (ferry_metric_label){"backend", backend};
    return s;
}

static void fy_label(fy_series *s, const char *key, const char *value)
{
    if (s)
        s->labels[s->m.num_labels++] = (ferry_metric_label){key, value};
}

static void fy_value(ferry_metrics *m, int fam, const char *backend, uint64_t v)
{
    fy_series *s = fy_add(m, fam, backend);
    if (s)
        s->m.value = v;
}

static void fy_hist(ferry_metrics *m, int fam, const char *backend, const fy_tm_hist *h)
{
    fy_series *s = fy_add(m, fam, backend);
    if (!s)
        return;
    uint32_t n = m->tm->cfg.num_bounds;
    uint64_t run = 0;
    for (uint32_t i = 0; i <= n; i++) {
        run += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        s->counts[i] = run;
    }
    s->m.num_buckets = n;
    s->m.value = atomic_load_explicit(&h->sum, memory_order_relaxed);
    s->m.count = run; /* the +Inf bucket: consistent with the buckets read */
}

#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)

static void fy_snap_transfers(ferry_metrics *m, const fy_tm_backend *b, const char *name)
{
    fy_value(m, FAM_TX_BYTES, name, LD(b->tx_bytes));
    fy_value(m, FAM_RX_BYTES, name, LD(b->rx_bytes));
    fy_value(m, FAM_TX_REQS, name, LD(b->tx_requests));
    fy_value(m, FAM_RX_REQS, name, LD(b->rx_requests));
    for (uint32_t e = 1; e < FY_TM_STATUSES; e++) {
        uint64_t n = LD(b->errors[e]);
        fy_series *s = n ? fy_add(m, FAM_ERRORS, name) : NULL;
        if (s)
            s->m.value = n;
        fy_label(s, "status", m->tm->status_name((ferry_status) - (int)e));
    }
    fy_value(m, FAM_NOTIF_SENT, name, LD(b->notifs_sent));
    fy_value(m, FAM_NOTIF_RECV, name, LD(b->notifs_received));
    fy_value(m, FAM_NOTIF_DROP, name, LD(b->notifs_dropped));
    fy_hist(m, FAM_XFER_TIME, name, &b->xfer_time);
    fy_hist(m, FAM_POST_TIME, name, &b->post_time);
}

/* The ledger of one (backend, memory type[, GPU]): series only where
 * something was ever registered. */
static void fy_snap_ledger_one(ferry_metrics *m, const fy_tm_ledger *l, const char *name,
                               const char *type, const char *device)
{
    if (!LD(l->registered_total))
        return;
    uint64_t v[4] = {LD(l->registered_total), LD(l->deregistered_total), LD(l->bytes),
                     LD(l->regions)};
    static const int fam[4] = {FAM_MEM_REG, FAM_MEM_DEREG, FAM_REG_BYTES, FAM_REG_REGIONS};
    for (int i = 0; i < 4; i++) {
        fy_series *s = fy_add(m, fam[i], name);
        if (!s)
            continue;
        s->m.value = v[i];
        fy_label(s, "mem_type", type);
        if (device) { /* the value is set by fy_snap_fixup: s moves until then */
            snprintf(s->device, sizeof(s->device), "%s", device);
            fy_label(s, "device", NULL);
        }
    }
}

static void fy_snap_ledger(ferry_metrics *m, const fy_tm_backend *b, const char *name)
{
    for (int t = 0; t < FERRY_MEM_TYPE_COUNT; t++)
        if (t != FERRY_MEM_VRAM)
            fy_snap_ledger_one(m, &b->ledger[t], name, m->tm->mem_type_name(t), NULL);
    for (uint32_t d = 0; d < FY_TM_GPUS; d++) {
        char dev[24];
        snprintf(dev, sizeof(dev), "%u", d);
        fy_snap_ledger_one(m, &b->vram_dev[d], name, m->tm->mem_type_name(FERRY_MEM_VRAM), dev);
    }
}

static void fy_snap_agent(ferry_metrics *m, const fy_tm *tm)
{
    for (int t = 0; t < FERRY_MEM_TYPE_COUNT; t++) {
        const fy_tm_ledger *l = &tm->agent_ledger[t];
        if (!LD(l->registered_total))
            continue;
        fy_series *s = fy_add(m, FAM_AGENT_REG_BYTES, NULL);
        if (s)
            s->m.value = LD(l->bytes);
        fy_label(s, "mem_type", tm->mem_type_name(t));
        s = fy_add(m, FAM_AGENT_REG_REGIONS, NULL);
        if (s)
            s->m.value = LD(l->regions);
        fy_label(s, "mem_type", tm->mem_type_name(t));
    }
    if (tm->cfg.cap_agent)
        fy_value(m, FAM_CAP, NULL, tm->cfg.cap_agent);
}

static void fy_snap_host(ferry_metrics *m)
{
    fy_value(m, FAM_RSS, NULL, fy_host_rss_bytes());
    fy_value(m, FAM_MEM_AVAIL, NULL, fy_host_mem_available_bytes());
    fy_value(m, FAM_MEMLOCK, NULL, fy_host_memlock_limit_bytes());
}

/* Labels, bounds and a series' own strings point into the snapshot: set
 * once the array stops moving. */
static void fy_snap_fixup(ferry_metrics *m)
{
    for (size_t i = 0; i < m->count; i++) {
        fy_series *s = &m->s[i];
        s->m.labels = s->labels;
        for (size_t l = 0; l < s->m.num_labels; l++)
            if (!s->labels[l].value)
                s->labels[l].value = s->device;
        if (s->m.kind == FERRY_METRIC_HISTOGRAM) {
            s->m.bounds = m->bounds;
            s->m.counts = s->counts;
        }
    }
}

/* Families in table order, so that the exposition groups them. */
static int fy_series_cmp(const void *a, const void *b)
{
    const fy_series *x = a, *y = b;
    if (x->family != y->family)
        return x->family - y->family;
    return x < y ? -1 : x > y;
}

static void fy_snap_backends(ferry_metrics *m, const fy_tm *tm)
{
    uint32_t n = atomic_load_explicit(&tm->num_backends, memory_order_acquire);
    for (uint32_t i = 0; i < n; i++) {
        const fy_tm_backend *b = &tm->be[i];
        if (!b->name[0])
            continue;
        snprintf(m->backend[i], sizeof(m->backend[i]), "%s", b->name);
        if (tm->cfg.on)
            fy_snap_transfers(m, b, m->backend[i]);
        fy_snap_ledger(m, b, m->backend[i]);
        if (tm->cfg.cap_backend[i])
            fy_value(m, FAM_CAP, m->backend[i], tm->cfg.cap_backend[i]);
    }
}

ferry_status fy_tm_snapshot(fy_tm *tm, ferry_metrics **out)
{
    ferry_metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return FERRY_ERR_NO_MEMORY;
    m->tm = tm;
    snprintf(m->agent, sizeof(m->agent), "%s", tm->agent);
    snprintf(m->host, sizeof(m->host), "%s", tm->host);
    memcpy(m->bounds, tm->cfg.bounds_us, sizeof(m->bounds));
    fy_snap_backends(m, tm);
    fy_snap_agent(m, tm);
    fy_snap_host(m);
    m->tm = NULL;
    if (!m->oom) {
        qsort(m->s, m->count, sizeof(*m->s), fy_series_cmp);
        fy_snap_fixup(m);
        *out = m;
        return FERRY_OK;
    }
    ferry_metrics_free(m);
    return FERRY_ERR_NO_MEMORY;
}

FY_API size_t ferry_metrics_count(const ferry_metrics *m)
{
    return m ? m->count : 0;
}

FY_API const ferry_metric *ferry_metrics_at(const ferry_metrics *m, size_t i)
{
    return m && i < m->count ? &m->s[i].m : NULL;
}

FY_API void ferry_metrics_free(ferry_metrics *m)
{
    if (!m)
        return;
    free(m->s);
    free(m->text);
    free(m);
}

/* ---- Prometheus text ---- */

/* A label value as the exposition format quotes it. */
static void fy_put_escaped(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fprintf(f, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

static void fy_put_labels(FILE *f, const ferry_metric *mt, const char *le)
{
    fputc('{', f);
    for (size_t i = 0; i < mt->num_labels; i++) {
        fprintf(f, "%s%s=\"", i ? "," : "", mt->labels[i].key);
        fy_put_escaped(f, mt->labels[i].value);
        fputc('"', f);
    }
    if (le)
        fprintf(f, ",le=\"%s\"", le);
    fputc('}', f);
}

static void fy_put_value(FILE *f, uint64_t v)
{
    if (v == UINT64_MAX)
        fputs(" +Inf\n", f);
    else
        fprintf(f, " %llu\n", (unsigned long long)v);
}

static void fy_put_histogram(FILE *f, const ferry_metric *mt)
{
    char le[32];
    for (size_t b = 0; b <= mt->num_buckets; b++) {
        if (b < mt->num_buckets)
            snprintf(le, sizeof(le), "%llu", (unsigned long long)mt->bounds[b]);
        else
            strcpy(le, "+Inf");
        fprintf(f, "%s_bucket", mt->name);
        fy_put_labels(f, mt, le);
        fy_put_value(f, mt->counts[b]);
    }
    fprintf(f, "%s_sum", mt->name);
    fy_put_labels(f, mt, NULL);
    fy_put_value(f, mt->value);
    fprintf(f, "%s_count", mt->name);
    fy_put_labels(f, mt, NULL);
    fy_put_value(f, mt->count);
}

void fy_tm_samples(const ferry_metrics *m, FILE *f)
{
    for (size_t i = 0; i < m->count; i++) {
        const ferry_metric *mt = &m->s[i].m;
        if (mt->kind == FERRY_METRIC_HISTOGRAM) {
            fy_put_histogram(f, mt);
            continue;
        }
        fprintf(f, "%s%s", mt->name, mt->kind == FERRY_METRIC_COUNTER ? "_total" : "");
        fy_put_labels(f, mt, NULL);
        fy_put_value(f, mt->value);
    }
}

static bool fy_name_is(const char *name, size_t len, const char *fam, const char *suffix)
{
    size_t n = strlen(fam), k = strlen(suffix);
    return len == n + k && !strncmp(name, fam, n) && !strncmp(name + n, suffix, k);
}

int fy_tm_family_of_line(const char *line)
{
    size_t len = strcspn(line, "{ ");
    static const char *const sfx[3][3] = {
        {"_total", NULL, NULL}, {"", NULL, NULL}, {"_bucket", "_sum", "_count"}};
    for (int i = 0; i < FAM_COUNT; i++)
        for (int j = 0; j < 3 && sfx[fy_families[i].kind][j]; j++)
            if (fy_name_is(line, len, fy_families[i].name, sfx[fy_families[i].kind][j]))
                return i;
    return -1;
}

void fy_tm_family_header(int i, FILE *f)
{
    static const char *const kinds[] = {"counter", "gauge", "histogram"};
    const fy_family *fam = &fy_families[i];
    const char *total = fam->kind == FERRY_METRIC_COUNTER ? "_total" : "";
    fprintf(f, "# HELP %s%s %s\n# TYPE %s%s %s\n", fam->name, total, fam->help, fam->name, total,
            kinds[fam->kind]);
}

void fy_tm_expose(const char *samples, FILE *out)
{
    for (int fam = 0; fam < FAM_COUNT; fam++) {
        bool header = false;
        for (const char *l = samples; *l; l += strcspn(l, "\n") + (l[strcspn(l, "\n")] != 0)) {
            if (fy_tm_family_of_line(l) != fam)
                continue;
            if (!header)
                fy_tm_family_header(fam, out);
            header = true;
            fprintf(out, "%.*s\n", (int)strcspn(l, "\n"), l);
        }
    }
}

FY_API const char *ferry_metrics_text(ferry_metrics *m)
{
    if (!m)
        return NULL;
    if (m->text)
        return m->text;
    char *samples = NULL, *text = NULL;
    size_t n = 0, k = 0;
    FILE *f = open_memstream(&samples, &n);
    if (!f)
        return NULL;
    fy_tm_samples(m, f);
    fclose(f);
    FILE *g = samples ? open_memstream(&text, &k) : NULL;
    if (g) {
        fy_tm_expose(samples, g);
        fclose(g);
    }
    free(samples);
    m->text = text;
    return text;
}
