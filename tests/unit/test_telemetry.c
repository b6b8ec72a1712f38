/* SPDX-License-Identifier: Apache-2.0 */
/* Telemetry: the metrics snapshot against a known workload (counters,
 * histograms and per-request telemetry agree), errors by status,
 * notifications, the switches (config, FERRY_/NIXL_ variables), the
 * enabled-metrics filter, the per-backend ledger and caps, and the
 * Prometheus text of a snapshot. */
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ferry/ferry.h"
#include "harness.h"
#include "telemetry/tm.h"
#include "testutil.h"

#define KB 1024u

static ferry_agent_config tt_config(bool telemetry)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.telemetry = telemetry;
    return cfg;
}

static void test_off_has_ledger_only(void)
{
    ferry_agent_config cfg = tt_config(false);
    tu_loop lp;
    FY_REQUIRE(tu_loop_open(&lp, "tm-off", &cfg, NULL, 0, 8 * KB) == FERRY_OK);
    ferry_xfer *x = NULL;
    FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, 4 * KB, NULL, &x) == FERRY_OK);
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    ferry_metrics *m = NULL;
    FY_REQUIRE(ferry_metrics_get(lp.agent, &m) == FERRY_OK);
    FY_CHECK(tu_metric_find(m, "agent_tx_bytes", NULL) == NULL);
    FY_CHECK(tu_metric_find(m, "agent_xfer_time_us", NULL) == NULL);
    const ferry_metric *reg =
        tu_metric_find(m, "ferry_registered_bytes", "backend", "LOCAL", "mem_type", "DRAM", NULL);
    FY_CHECK(reg && reg->value == 16 * KB && reg->kind == FERRY_METRIC_GAUGE);
    const ferry_metric *rss = tu_metric_find(m, "ferry_process_resident_bytes", NULL);
    FY_CHECK(rss && rss->value > 0);
    const ferry_metric *avail = tu_metric_find(m, "ferry_host_mem_available_bytes", NULL);
    FY_CHECK(avail && avail->value > 0);
    FY_CHECK(tu_metric_find(m, "ferry_memlock_limit_bytes", "agent_name", "tm-off", NULL) != NULL);
    ferry_metrics_free(m);
    ferry_xfer_release(x);
    tu_loop_close(&lp);
}

/* Posts `n` requests of op over len bytes; sums their per-request times. */
static void tt_run(tu_loop *lp, ferry_xfer_op op, size_t len, int n, uint64_t *xfer_us,
                   uint64_t *post_us)
{
    for (int i = 0; i < n; i++) {
        ferry_xfer *x = NULL;
        FY_REQUIRE(tu_loop_xfer(lp, op, len, NULL, &x) == FERRY_OK);
        FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
        ferry_xfer_telemetry t;
        ferry_xfer_telemetry_init(&t);
        FY_CHECK_EQ(ferry_xfer_get_telemetry(x, &t), FERRY_OK);
        FY_CHECK(t.xfer_us > 0 && t.total_bytes == len);
        *xfer_us += t.xfer_us;
        *post_us += t.post_us;
        ferry_xfer_release(x);
    }
}

static void tt_check_hist(const ferry_metric *h, uint64_t count, uint64_t sum)
{
    FY_REQUIRE(h != NULL);
    FY_CHECK_EQ(h->kind, FERRY_METRIC_HISTOGRAM);
    FY_CHECK_EQ(h->count, count);
    FY_CHECK_EQ(h->value, sum);
    FY_CHECK_EQ(h->counts[h->num_buckets], count); /* +Inf holds everything */
    for (size_t b = 1; b <= h->num_buckets; b++)
        FY_CHECK(h->counts[b] >= h->counts[b - 1]);
}

static void test_workload_matches(void)
{
    ferry_agent_config cfg = tt_config(true);
    tu_loop lp;
    FY_REQUIRE(tu_loop_open(&lp, "tm-work", &cfg, NULL, 0, 64 * KB) == FERRY_OK);
    uint64_t xfer_us = 0, post_us = 0;
    tt_run(&lp, FERRY_OP_WRITE, 4 * KB, 7, &xfer_us, &post_us);
    tt_run(&lp, FERRY_OP_READ, 16 * KB, 3, &xfer_us, &post_us);
    ferry_metrics *m = NULL;
    FY_REQUIRE(ferry_metrics_get(lp.agent, &m) == FERRY_OK);
    const ferry_metric *tx = tu_metric_find(m, "agent_tx_bytes", "backend", "LOCAL", NULL);
    FY_CHECK(tx && tx->value == 7 * 4 * KB && tx->kind == FERRY_METRIC_COUNTER);
    FY_CHECK(tu_metric_find(m, "agent_rx_bytes", NULL)->value == 3 * 16 * KB);
    FY_CHECK(tu_metric_find(m, "agent_tx_requests_num", NULL)->value == 7);
    FY_CHECK(tu_metric_find(m, "agent_rx_requests_num", NULL)->value == 3);
    tt_check_hist(tu_metric_find(m, "agent_xfer_time_us", "backend", "LOCAL", NULL), 10, xfer_us);
    tt_check_hist(tu_metric_find(m, "agent_xfer_post_time_us", "backend", "LOCAL", NULL), 10,
                  post_us);
    FY_CHECK(tu_metric_find(m, "agent_errors", NULL) == NULL);
    ferry_counters c;
    ferry_counters_init(&c);
    FY_CHECK_EQ(ferry_counters_get(lp.agent, &c), FERRY_OK);
    FY_CHECK_EQ(c.tx_bytes, tx ? tx->value : 0);
    ferry_metrics_free(m);
    tu_loop_close(&lp);
}

/* A request reposted: every post counted, the first and every
 * FY_TM_TIME_EVERY-th after it timed (histograms, per-request times). */
static void test_reposts_sampled(void)
{
    ferry_agent_config cfg = tt_config(true);
    tu_loop lp;
    FY_REQUIRE(tu_loop_open(&lp, "tm-repost", &cfg, NULL, 0, 8 * KB) == FERRY_OK);
    ferry_xfer *x = NULL;
    FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, 4 * KB, NULL, &x) == FERRY_OK);
    const uint32_t posts = 2 * FY_TM_TIME_EVERY + 1;
    for (uint32_t i = 0; i < posts; i++)
        FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    ferry_metrics *m = NULL;
    FY_REQUIRE(ferry_metrics_get(lp.agent, &m) == FERRY_OK);
    FY_CHECK_EQ(tu_metric_find(m, "agent_tx_requests_num", NULL)->value, posts);
    FY_CHECK_EQ(tu_metric_find(m, "agent_tx_bytes", NULL)->value, posts * 4 * KB);
    const ferry_metric *xt = tu_metric_find(m, "agent_xfer_time_us", "backend", "LOCAL", NULL);
    const ferry_metric *pt = tu_metric_find(m, "agent_xfer_post_time_us", "backend", "LOCAL", NULL);
    FY_CHECK(xt && xt->count == 3 && pt && pt->count == 3);
    ferry_xfer_telemetry t; /* the last post was a timed one */
    ferry_xfer_telemetry_init(&t);
    FY_CHECK_EQ(ferry_xfer_get_telemetry(x, &t), FERRY_OK);
    FY_CHECK(t.xfer_us > 0 && t.start_us > 0 && t.total_bytes == 4 * KB);
    ferry_counters c;
    ferry_counters_init(&c);
    FY_CHECK_EQ(ferry_counters_get(lp.agent, &c), FERRY_OK);
    FY_CHECK_EQ(c.tx_requests, posts);
    ferry_metrics_free(m);
    ferry_xfer_release(x);
    tu_loop_close(&lp);
}

static void test_errors_by_status(void)
{
    ferry_agent_config cfg = tt_config(true);
    tu_loop lp;
    FY_REQUIRE(tu_loop_open(&lp, "tm-err", &cfg, NULL, 0, 8 * KB) == FERRY_OK);
    ferry_xfer *x = NULL;
    FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, 4 * KB, NULL, &x) == FERRY_OK);
    FY_CHECK_EQ(ferry_md_invalidate(lp.agent, "tm-err"), FERRY_OK);
    FY_CHECK_EQ(ferry_xfer_post(x), FERRY_ERR_STALE);
    FY_CHECK_EQ(ferry_xfer_post(x), FERRY_ERR_STALE);
    FY_CHECK_EQ(tu_metric_value(lp.agent, "agent_errors", "status", "FERRY_ERR_STALE", NULL), 2);
    FY_CHECK_EQ(tu_metric_value(lp.agent, "agent_tx_requests_num", "backend", "LOCAL", NULL), 0);
    ferry_xfer_release(x);
    tu_loop_close(&lp);
}

static void test_notifications(void)
{
    ferry_agent_config cfg = tt_config(true);
    cfg.notif_queue_cap = 1;
    tu_loop lp;
    FY_REQUIRE(tu_loop_open(&lp, "tm-notif", &cfg, NULL, 0, 8 * KB) == FERRY_OK);
    for (int i = 0; i < 2; i++) {
        ferry_xfer *x = NULL;
        FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, 1 * KB, "tag", &x) == FERRY_OK);
        FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
        ferry_xfer_release(x);
    }
    FY_CHECK_EQ(ferry_notif_send(lp.agent, "tm-notif", "alone", 5, NULL), FERRY_OK);
    for (int i = 0;
         i < 100 && tu_metric_value(lp.agent, "agent_notifs_dropped", "backend", "LOCAL", NULL) < 2;
         i++) {
        ferry_agent_progress(lp.agent);
        tu_sleep_us(1000);
    }
    FY_CHECK_EQ(tu_metric_value(lp.agent, "agent_notifs_sent", "backend", "LOCAL", NULL), 3);
    FY_CHECK_EQ(tu_metric_value(lp.agent, "agent_notifs_received", "backend", "LOCAL", NULL), 1);
    FY_CHECK_EQ(tu_metric_value(lp.agent, "agent_notifs_dropped", "backend", "LOCAL", NULL), 2);
    tu_loop_close(&lp);
}

static ferry_status tt_agent_env(const char *var, const char *value, ferry_agent **out)
{
    setenv(var, value, 1);
    ferry_agent_config cfg = tt_config(false);
    ferry_status rc = tu_agent_with("tm-env", &cfg, NULL, 0, out, NULL);
    unsetenv(var);
    return rc;
}

static void test_environment(void)
{
    ferry_agent *a = NULL;
    /* NIXL's switch turns it on; NIXL's bucket variable shapes histograms. */
    setenv("NIXL_TELEMETRY_HISTOGRAM_BUCKETS_US", "5,50,500", 1);
    FY_REQUIRE(tt_agent_env("NIXL_TELEMETRY_ENABLE", "y", &a) == FERRY_OK);
    unsetenv("NIXL_TELEMETRY_HISTOGRAM_BUCKETS_US");
    ferry_metrics *m = NULL;
    FY_REQUIRE(ferry_metrics_get(a, &m) == FERRY_OK);
    const ferry_metric *h = tu_metric_find(m, "agent_xfer_time_us", NULL);
    FY_CHECK(h && h->num_buckets == 3 && h->bounds[0] == 5 && h->bounds[2] == 500);
    ferry_metrics_free(m);
    ferry_agent_destroy(a);
    /* Malformed values are refused, naming the variable. */
    FY_CHECK_EQ(tt_agent_env("FERRY_TELEMETRY_HISTOGRAM_BUCKETS_US", "10,5", &a),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK(strstr(ferry_last_error(), "FERRY_TELEMETRY_HISTOGRAM_BUCKETS_US") != NULL);
    FY_CHECK_EQ(tt_agent_env("FERRY_TELEMETRY_EXPORTER", "carrier-pigeon", &a),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(tt_agent_env("NIXL_TELEMETRY_PROMETHEUS_PORT", "99999", &a),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(tt_agent_env("FERRY_MAX_REGISTERED_BYTES", "12Q", &a), FERRY_ERR_INVALID_PARAM);
    FY_CHECK(strstr(ferry_last_error(), "FERRY_MAX_REGISTERED_BYTES") != NULL);
}

static void test_enabled_metrics(void)
{
    ferry_agent_config cfg = tt_config(true);
    cfg.telemetry_metrics = "agent_tx_*,ferry_registered_bytes";
    tu_loop lp;
    FY_REQUIRE(tu_loop_open(&lp, "tm-filter", &cfg, NULL, 0, 8 * KB) == FERRY_OK);
    ferry_metrics *m = NULL;
    FY_REQUIRE(ferry_metrics_get(lp.agent, &m) == FERRY_OK);
    for (size_t i = 0; i < ferry_metrics_count(m); i++) {
        const char *n = ferry_metrics_at(m, i)->name;
        FY_CHECK(!strncmp(n, "agent_tx_", 9) || !strcmp(n, "ferry_registered_bytes"));
    }
    FY_CHECK(tu_metric_find(m, "agent_tx_requests_num", NULL) != NULL);
    FY_CHECK(ferry_metrics_at(m, ferry_metrics_count(m)) == NULL);
    ferry_metrics_free(m);
    tu_loop_close(&lp);
}

/* The per-backend cap: registrations up to it succeed, the next fails
 * with a message naming it and leaves the others, deregistration frees. */
static void test_backend_cap(void)
{
    ferry_agent *a = NULL;
    ferry_agent_config cfg = tt_config(false);
    cfg.reg_cap_backends = "LOCAL=32K";
    FY_REQUIRE(tu_agent_with("tm-cap", &cfg, NULL, 0, &a, NULL) == FERRY_OK);
    uint8_t *buf = tu_alloc(64 * KB);
    FY_CHECK_EQ(tu_register(a, buf, 16 * KB), FERRY_OK);
    FY_CHECK_EQ(tu_register(a, buf + 16 * KB, 16 * KB), FERRY_OK);
    FY_CHECK_EQ(tu_register(a, buf + 32 * KB, 1), FERRY_ERR_NO_RESOURCES);
    FY_CHECK(strstr(ferry_last_error(), "cap of 32768 bytes") != NULL);
    FY_CHECK(strstr(ferry_last_error(), "LOCAL") != NULL);
    FY_CHECK_EQ(tu_metric_value(a, "ferry_registered_bytes", "backend", "LOCAL", NULL), 32 * KB);
    FY_CHECK_EQ(tu_metric_value(a, "ferry_registered_regions", "backend", "LOCAL", NULL), 2);
    FY_CHECK_EQ(tu_metric_value(a, "ferry_registered_cap_bytes", "backend", "LOCAL", NULL),
                32 * KB);
    FY_CHECK_EQ(tu_deregister(a, buf, 16 * KB), FERRY_OK);
    FY_CHECK_EQ(tu_register(a, buf + 32 * KB, 16 * KB), FERRY_OK);
    FY_CHECK_EQ(tu_metric_value(a, "agent_memory_deregistered", "backend", "LOCAL", NULL), 16 * KB);
    FY_CHECK_EQ(tu_metric_value(a, "agent_memory_registered", "backend", "LOCAL", NULL), 48 * KB);
    ferry_agent_destroy(a);
    free(buf);
    /* Malformed lists are refused, naming the field. */
    cfg.reg_cap_backends = "LOCAL=lots";
    FY_CHECK_EQ(tu_agent_with("tm-cap", &cfg, NULL, 0, &a, NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK(strstr(ferry_last_error(), "reg_cap_backends") != NULL);
    cfg.reg_cap_backends = "8G"; /* the agent's cap has a field of its own */
    FY_CHECK_EQ(tu_agent_with("tm-cap", &cfg, NULL, 0, &a, NULL), FERRY_ERR_INVALID_PARAM);
}

/* FERRY_MAX_REGISTERED_BYTES: the agent's cap and a backend's. */
static void test_cap_environment(void)
{
    ferry_agent *a = NULL;
    uint8_t *buf = tu_alloc(64 * KB);
    FY_REQUIRE(tt_agent_env("FERRY_MAX_REGISTERED_BYTES", "24K", &a) == FERRY_OK);
    FY_CHECK_EQ(tu_register(a, buf, 16 * KB), FERRY_OK);
    FY_CHECK_EQ(tu_register(a, buf + 16 * KB, 16 * KB), FERRY_ERR_NO_RESOURCES);
    FY_CHECK(strstr(ferry_last_error(), "registration cap of 24576 bytes") != NULL);
    FY_CHECK_EQ(tu_metric_value(a, "ferry_agent_registered_bytes", "mem_type", "DRAM", NULL),
                16 * KB);
    ferry_agent_destroy(a);
    FY_REQUIRE(tt_agent_env("FERRY_MAX_REGISTERED_BYTES", "1G,local=8K", &a) == FERRY_OK);
    FY_CHECK_EQ(tu_register(a, buf, 16 * KB), FERRY_ERR_NO_RESOURCES);
    FY_CHECK_EQ(tu_register(a, buf, 8 * KB), FERRY_OK);
    ferry_metrics *m = NULL;
    FY_REQUIRE(ferry_metrics_get(a, &m) == FERRY_OK);
    FY_CHECK(strstr(ferry_metrics_text(m), "\"} 1073741824\n") != NULL); /* the agent's */
    FY_CHECK(strstr(ferry_metrics_text(m), ",backend=\"LOCAL\"} 8192\n") != NULL);
    ferry_metrics_free(m);
    ferry_agent_destroy(a);
    free(buf);
}

static void test_prometheus_text(void)
{
    ferry_agent_config cfg = tt_config(true);
    tu_loop lp;
    FY_REQUIRE(tu_loop_open(&lp, "tm \"text\"", &cfg, NULL, 0, 8 * KB) == FERRY_OK);
    uint64_t xfer_us = 0, post_us = 0;
    tt_run(&lp, FERRY_OP_WRITE, 2 * KB, 2, &xfer_us, &post_us);
    ferry_metrics *m = NULL;
    FY_REQUIRE(ferry_metrics_get(lp.agent, &m) == FERRY_OK);
    const char *t = ferry_metrics_text(m);
    FY_REQUIRE(t != NULL);
    FY_CHECK(strstr(t, "# TYPE agent_tx_bytes_total counter\n") != NULL);
    FY_CHECK(strstr(t, "agent_tx_bytes_total{agent_name=\"tm \\\"text\\\"\",") != NULL);
    FY_CHECK(strstr(t, ",backend=\"LOCAL\"} 4096\n") != NULL);
    FY_CHECK(strstr(t, "# TYPE agent_xfer_time_us histogram\n") != NULL);
    FY_CHECK(strstr(t, "le=\"+Inf\"} 2\n") != NULL);
    FY_CHECK(strstr(t, "# TYPE ferry_registered_bytes gauge\n") != NULL);
    /* One HELP per family: the families are grouped. */
    const char *first = strstr(t, "# HELP agent_tx_bytes_total");
    FY_CHECK(first && !strstr(first + 1, "# HELP agent_tx_bytes_total"));
    ferry_metrics_free(m);
    tu_loop_close(&lp);
}

/* ---- threads posting while snapshots and scrapes read ---- */

#define TT_THREADS 4
#define TT_POSTS   300

typedef struct tt_poster_arg {
    tu_loop *lp;
    size_t off; /* each thread writes its own KiB of dst */
} tt_poster_arg;

static void *tt_poster(void *arg)
{
    tt_poster_arg *a = arg;
    ferry_dlist *l = tu_list1(a->lp->src + a->off, 1 * KB);
    ferry_dlist *r = tu_list1(a->lp->dst + a->off, 1 * KB);
    for (int i = 0; l && r && i < TT_POSTS; i++) {
        ferry_xfer *x = NULL;
        if (ferry_xfer_create(a->lp->agent, FERRY_OP_WRITE, l, r, a->lp->name, NULL, &x) ==
            FERRY_OK)
            tu_post_wait(x);
        ferry_xfer_release(x);
    }
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    return NULL;
}

static uint16_t tt_free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
        getsockname(fd, (struct sockaddr *)&sa, &len))
        sa.sin_port = 0;
    if (fd >= 0)
        close(fd);
    return ntohs(sa.sin_port);
}

typedef struct tt_body {
    char text[1 << 16];
    size_t len;
} tt_body;

static size_t tt_collect(char *p, size_t size, size_t n, void *arg)
{
    tt_body *b = arg;
    size_t k = size * n, room = sizeof(b->text) - 1 - b->len;
    memcpy(b->text + b->len, p, k < room ? k : room);
    b->len += k < room ? k : room;
    b->text[b->len] = '\0';
    return k;
}

/* GET /metrics of the endpoint (libcurl), into b; the HTTP status. */
static long tt_scrape(uint16_t port, tt_body *b)
{
    char url[64];
    long code = 0;
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", port);
    b->len = 0;
    b->text[0] = '\0';
    CURL *c = curl_easy_init();
    if (!c)
        return 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tt_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    return code;
}

static void test_concurrent_scrapes(void)
{
    static tt_body body;
    char dir[] = "/tmp/ferry-tm-XXXXXX";
    FY_REQUIRE(mkdtemp(dir) != NULL);
    ferry_agent_config cfg = tt_config(true);
    cfg.telemetry_exporters = "prometheus,ring";
    cfg.telemetry_dir = dir;
    cfg.telemetry_prometheus_port = tt_free_port();
    setenv("FERRY_TELEMETRY_PROMETHEUS_LOCAL", "y", 1);
    tu_loop lp;
    FY_REQUIRE(tu_loop_open(&lp, "tm-conc", &cfg, NULL, 0, 4 * KB) == FERRY_OK);
    pthread_t t[TT_THREADS];
    tt_poster_arg args[TT_THREADS];
    for (int i = 0; i < TT_THREADS; i++) {
        args[i] = (tt_poster_arg){&lp, (size_t)i * KB};
        FY_REQUIRE(pthread_create(&t[i], NULL, tt_poster, &args[i]) == 0);
    }
    int scrapes = 0;
    for (; scrapes < 20; scrapes++) {
        FY_CHECK_EQ(tt_scrape(cfg.telemetry_prometheus_port, &body), 200);
        FY_CHECK(tu_metric_value(lp.agent, "agent_tx_requests_num", NULL) >= 0);
    }
    for (int i = 0; i < TT_THREADS; i++)
        pthread_join(t[i], NULL);
    FY_CHECK_EQ(tu_metric_value(lp.agent, "agent_tx_requests_num", NULL), TT_THREADS * TT_POSTS);
    FY_CHECK_EQ(tu_metric_value(lp.agent, "agent_xfer_time_us", NULL), TT_THREADS * TT_POSTS);
    FY_CHECK_EQ(tt_scrape(cfg.telemetry_prometheus_port, &body), 200);
    FY_CHECK(strstr(body.text, "agent_tx_requests_num_total{agent_name=\"tm-conc\"") != NULL);
    FY_CHECK(strstr(body.text, ",backend=\"LOCAL\"} 1200\n") != NULL);
    tu_loop_close(&lp);
    unsetenv("FERRY_TELEMETRY_PROMETHEUS_LOCAL");
    char path[64];
    snprintf(path, sizeof(path), "%s/prometheus-%u", dir, cfg.telemetry_prometheus_port);
    rmdir(path);
    FY_CHECK(rmdir(dir) == 0); /* the ring went with the agent */
}

static void test_bad_args(void)
{
    ferry_metrics *m = NULL;
    FY_CHECK_EQ(ferry_metrics_get(NULL, &m), FERRY_ERR_INVALID_PARAM);
    FY_CHECK(m == NULL);
    FY_CHECK_EQ(ferry_metrics_count(NULL), 0);
    FY_CHECK(ferry_metrics_at(NULL, 0) == NULL);
    FY_CHECK(ferry_metrics_text(NULL) == NULL);
    ferry_metrics_free(NULL);
}

int main(void)
{
    unsetenv("FERRY_TELEMETRY");
    FY_RUN(test_off_has_ledger_only);
    FY_RUN(test_workload_matches);
    FY_RUN(test_reposts_sampled);
    FY_RUN(test_errors_by_status);
    FY_RUN(test_notifications);
    FY_RUN(test_environment);
    FY_RUN(test_enabled_metrics);
    FY_RUN(test_backend_cap);
    FY_RUN(test_cap_environment);
    FY_RUN(test_prometheus_text);
    FY_RUN(test_concurrent_scrapes);
    FY_RUN(test_bad_args);
    return fy_test_done();
}
