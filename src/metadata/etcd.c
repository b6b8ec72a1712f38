/* SPDX-License-Identifier: Apache-2.0 */
/* etcd's v3 JSON gateway over libcurl, answers read with jansson, keys and
 * values base64 (OpenSSL). See etcd.h. */
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "metadata/etcd.h"

#define FY_ETCD_ERR(...) fy_log_detail(FERRY_LOG_ERROR, "etcd", __VA_ARGS__)
#define FY_ETCD_DBG(...) fy_log(FERRY_LOG_DEBUG, "etcd", __VA_ARGS__)
#define FY_ETCD_URL_MAX  256u

struct fy_etcd {
    char urls[FY_ETCD_MAX_ENDPOINTS][FY_ETCD_URL_MAX];
    unsigned num_urls;
    atomic_uint current; /* the endpoint that answered last */
    uint32_t timeout_ms;
};

/* ---- base64 ---- */

static char *fy_b64_encode(const void *data, size_t len)
{
    if (len > INT32_MAX / 2)
        return NULL;
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (out)
        EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

/* EVP_DecodeBlock counts the bytes the padding stands for: take them off. */
static ferry_status fy_b64_decode(const char *text, uint8_t **out, size_t *out_len)
{
    size_t n = strlen(text);
    if (n % 4 || n > INT32_MAX)
        return FERRY_ERR_BAD_METADATA;
    uint8_t *buf = malloc(n / 4 * 3 + 1);
    if (!buf)
        return FERRY_ERR_NO_MEMORY;
    int got = n ? EVP_DecodeBlock(buf, (const unsigned char *)text, (int)n) : 0;
    if (got < 0) {
        free(buf);
        return FERRY_ERR_BAD_METADATA;
    }
    size_t pad = (n && text[n - 1] == '=') + (n > 1 && text[n - 2] == '=');
    *out = buf;
    *out_len = (size_t)got - pad;
    return FERRY_OK;
}

static json_t *fy_b64_json(const void *data, size_t len)
{
    char *text = fy_b64_encode(data, len);
    json_t *j = text ? json_string(text) : NULL;
    free(text);
    return j;
}

/* The key just after every key that starts with prefix (etcd's range_end). */
static json_t *fy_prefix_end(const char *prefix)
{
    size_t n = strlen(prefix);
    char *end = strdup(prefix);
    if (!end)
        return NULL;
    while (n && (unsigned char)end[n - 1] == 0xff)
        n--;
    json_t *j = NULL;
    if (n) {
        end[n - 1]++;
        j = fy_b64_json(end, n);
    } else {
        j = fy_b64_json("", 1); /* "\0": every key */
    }
    free(end);
    return j;
}

/* ---- JSON answers ---- */

json_t *fy_etcd_parse(const char *text, size_t len)
{
    json_error_t err;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* The gateway writes int64 as strings; absent means 0. */
static int64_t fy_json_i64(const json_t *obj, const char *field)
{
    const json_t *v = json_object_get(obj, field);
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_string(v))
        return strtoll(json_string_value(v), NULL, 10);
    return 0;
}

static int64_t fy_header_rev(const json_t *ans)
{
    return fy_json_i64(json_object_get(ans, "header"), "revision");
}

int fy_etcd_watch_event(const char *text, size_t len)
{
    json_t *msg = fy_etcd_parse(text, len);
    if (!msg)
        return -1;
    const json_t *events = json_object_get(json_object_get(msg, "result"), "events");
    int put = 0;
    size_t i;
    const json_t *ev;
    json_array_foreach(events, i, ev)
    {
        const char *type = json_string_value(json_object_get(ev, "type"));
        if (!type || !strcmp(type, "PUT"))
            put = 1; /* PUT is the default, left out of the JSON */
    }
    json_decref(msg);
    return put;
}

/* ---- HTTP ---- */

typedef struct fy_answer {
    char *buf;
    size_t len, cap;
    bool too_big;
    bool watch;    /* stop at the first put event */
    bool put_seen; /* (watch) one came */
} fy_answer;

static bool fy_answer_grow(fy_answer *a, size_t more)
{
    if (a->len + more + 1 <= a->cap)
        return true;
    size_t cap = a->cap ? a->cap : 4096;
    while (cap < a->len + more + 1)
        cap *= 2;
    char *p = realloc(a->buf, cap);
    if (!p)
        return false;
    a->buf = p;
    a->cap = cap;
    return true;
}

/* A watch stream is one JSON message per line: look at each whole one. */
static void fy_answer_scan_watch(fy_answer *a)
{
    char *nl;
    while (!a->put_seen && (nl = memchr(a->buf, '\n', a->len))) {
        size_t line = (size_t)(nl - a->buf) + 1;
        a->put_seen = fy_etcd_watch_event(a->buf, line - 1) == 1;
        memmove(a->buf, a->buf + line, a->len - line);
        a->len -= line;
    }
}

static size_t fy_answer_write(char *data, size_t size, size_t n, void *arg)
{
    fy_answer *a = arg;
    size_t bytes = size * n;
    if (a->len + bytes > FY_ETCD_MAX_ANSWER) {
        a->too_big = true;
        return 0;
    }
    if (!fy_answer_grow(a, bytes))
        return 0;
    memcpy(a->buf + a->len, data, bytes);
    a->len += bytes;
    a->buf[a->len] = '\0';
    if (a->watch)
        fy_answer_scan_watch(a);
    return a->put_seen ? 0 : bytes; /* 0 ends the stream: the put came */
}

static CURL *fy_curl_new(const char *url, const char *body, struct curl_slist *hdrs, fy_answer *a,
                         uint32_t timeout_ms)
{
    CURL *h = curl_easy_init();
    if (!h)
        return NULL;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fy_answer_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    return h;
}

typedef struct fy_call {
    const char *path;
    const char *body;
    uint32_t timeout_ms;
    bool watch;
    fy_answer ans;
    long http;
    CURLcode cc;
} fy_call;

static void fy_call_one(fy_etcd *c, unsigned idx, fy_call *call)
{
    char url[FY_ETCD_URL_MAX + 64];
    snprintf(url, sizeof(url), "%s%s", c->urls[idx], call->path);
    free(call->ans.buf);
    call->ans = (fy_answer){.watch = call->watch};
    call->http = 0;
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    CURL *h = hdrs ? fy_curl_new(url, call->body, hdrs, &call->ans, call->timeout_ms) : NULL;
    call->cc = h ? curl_easy_perform(h) : CURLE_OUT_OF_MEMORY;
    if (h)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &call->http);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
}

/* Reached the server and got its whole answer (or, watching, what we
 * waited for, or the watch's own time running out). */
static bool fy_call_answered(const fy_call *call)
{
    if (call->watch && (call->ans.put_seen || call->cc == CURLE_OPERATION_TIMEDOUT))
        return call->http == 200;
    return call->cc == CURLE_OK && call->http > 0 && call->http < 500;
}

static pthread_once_t fy_curl_once = PTHREAD_ONCE_INIT;

static void fy_curl_global(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* One endpoint after another from the one that answered last, until one
 * answers. IO (with every endpoint's error in the log) when none does. */
static ferry_status fy_call_run(fy_etcd *c, fy_call *call)
{
    pthread_once(&fy_curl_once, fy_curl_global);
    unsigned first = atomic_load(&c->current);
    for (unsigned k = 0; k < c->num_urls; k++) {
        unsigned idx = (first + k) % c->num_urls;
        fy_call_one(c, idx, call);
        if (fy_call_answered(call)) {
            atomic_store(&c->current, idx);
            return FERRY_OK;
        }
        FY_ETCD_DBG("%s%s: %s (HTTP %ld)", c->urls[idx], call->path,
                    call->ans.too_big ? "answer too large" : curl_easy_strerror(call->cc),
                    call->http);
    }
    FY_ETCD_ERR("etcd unreachable: %s%s (and %u other endpoint(s)): %s", c->urls[first], call->path,
                c->num_urls - 1,
                call->ans.too_big ? "answer too large" : curl_easy_strerror(call->cc));
    return FERRY_ERR_IO;
}

/* POSTs req (consumed) to path; *ans is the parsed answer of an HTTP 200. */
static ferry_status fy_etcd_post(fy_etcd *c, const char *path, json_t *req, json_t **ans)
{
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body)
        return FERRY_ERR_NO_MEMORY;
    fy_call call = {.path = path, .body = body, .timeout_ms = c->timeout_ms};
    ferry_status rc = fy_call_run(c, &call);
    json_t *j = rc == FERRY_OK ? fy_etcd_parse(call.ans.buf, call.ans.len) : NULL;
    if (rc == FERRY_OK && (!j || call.http != 200)) {
        const char *msg = json_string_value(json_object_get(j, "message"));
        FY_ETCD_ERR("etcd %s: HTTP %ld: %s", path, call.http, msg ? msg : "malformed answer");
        rc = FERRY_ERR_IO;
    }
    free(body);
    free(call.ans.buf);
    if (rc != FERRY_OK) {
        json_decref(j);
        return rc;
    }
    *ans = j;
    return FERRY_OK;
}

/* ---- the operations ---- */

static bool fy_url_add(fy_etcd *c, const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '/'))
        n--;
    if (!n || c->num_urls >= FY_ETCD_MAX_ENDPOINTS || n + 8 >= FY_ETCD_URL_MAX)
        return n == 0;
    bool scheme = memmem(s, n, "://", 3) != NULL;
    snprintf(c->urls[c->num_urls++], FY_ETCD_URL_MAX, "%s%.*s", scheme ? "" : "http://", (int)n, s);
    return true;
}

ferry_status fy_etcd_new(const char *endpoints, uint32_t timeout_ms, fy_etcd **out)
{
    fy_etcd *c = endpoints ? calloc(1, sizeof(*c)) : NULL;
    if (!c)
        return endpoints ? FERRY_ERR_NO_MEMORY : FERRY_ERR_INVALID_PARAM;
    c->timeout_ms = timeout_ms ? timeout_ms : 5000;
    bool ok = true;
    for (const char *p = endpoints; ok && *p;) {
        size_t n = strcspn(p, ",");
        ok = fy_url_add(c, p, n);
        p += n + (p[n] == ',');
    }
    if (!ok || !c->num_urls) {
        FY_ETCD_ERR("etcd endpoints '%s': expected up to %u comma-separated URLs", endpoints,
                    FY_ETCD_MAX_ENDPOINTS);
        free(c);
        return FERRY_ERR_INVALID_PARAM;
    }
    *out = c;
    return FERRY_OK;
}

void fy_etcd_free(fy_etcd *c)
{
    free(c);
}

ferry_status fy_etcd_put(fy_etcd *c, const char *key, const void *val, size_t len, int64_t lease)
{
    json_t *req = json_pack("{s:o*, s:o*, s:I}", "key", fy_b64_json(key, strlen(key)), "value",
                            fy_b64_json(val, len), "lease", (json_int_t)lease);
    json_t *ans = NULL;
    ferry_status rc = req ? fy_etcd_post(c, "/v3/kv/put", req, &ans) : FERRY_ERR_NO_MEMORY;
    json_decref(ans);
    return rc;
}

/* A transaction: compare the key's create revision with 0 (absent), put
 * on success, nothing otherwise; "succeeded" is left out when false. */
ferry_status fy_etcd_create(fy_etcd *c, const char *key, const void *val, size_t len, int64_t lease,
                            bool *created)
{
    json_t *k = fy_b64_json(key, strlen(key));
    json_t *req = k ? json_pack("{s:[{s:O, s:s, s:s, s:s}], s:[{s:{s:o, s:o*, s:I}}]}", "compare",
                                "key", k, "target", "CREATE", "result", "EQUAL", "create_revision",
                                "0", "success", "request_put", "key", k, "value",
                                fy_b64_json(val, len), "lease", (json_int_t)lease)
                    : NULL;
    json_t *ans = NULL;
    ferry_status rc = req ? fy_etcd_post(c, "/v3/kv/txn", req, &ans) : FERRY_ERR_NO_MEMORY;
    if (rc == FERRY_OK)
        *created = json_is_true(json_object_get(ans, "succeeded"));
    json_decref(ans);
    return rc;
}

static ferry_status fy_kv_read(const json_t *ans, const char *key, fy_etcd_kv *kv)
{
    const json_t *first = json_array_get(json_object_get(ans, "kvs"), 0);
    kv->header_rev = fy_header_rev(ans);
    if (!first)
        return FERRY_ERR_NOT_FOUND;
    const char *val = json_string_value(json_object_get(first, "value"));
    ferry_status rc = fy_b64_decode(val ? val : "", &kv->val, &kv->len);
    if (rc != FERRY_OK)
        FY_ETCD_ERR("etcd: the value of %s is not base64", key);
    kv->create_rev = fy_json_i64(first, "create_revision");
    kv->mod_rev = fy_json_i64(first, "mod_revision");
    return rc;
}

ferry_status fy_etcd_range_answer(const char *text, size_t len, fy_etcd_kv *kv)
{
    *kv = (fy_etcd_kv){0};
    json_t *ans = fy_etcd_parse(text, len);
    ferry_status rc = ans ? fy_kv_read(ans, "the key", kv) : FERRY_ERR_BAD_METADATA;
    json_decref(ans);
    return rc;
}

/* keys_only: the revisions without the value (kv->val empty). */
static ferry_status fy_etcd_range(fy_etcd *c, const char *key, bool keys_only, fy_etcd_kv *kv)
{
    *kv = (fy_etcd_kv){0};
    json_t *req =
        json_pack("{s:o*, s:b}", "key", fy_b64_json(key, strlen(key)), "keys_only", keys_only);
    json_t *ans = NULL;
    ferry_status rc = req ? fy_etcd_post(c, "/v3/kv/range", req, &ans) : FERRY_ERR_NO_MEMORY;
    if (rc == FERRY_OK)
        rc = fy_kv_read(ans, key, kv);
    json_decref(ans);
    return rc;
}

ferry_status fy_etcd_get(fy_etcd *c, const char *key, fy_etcd_kv *kv)
{
    return fy_etcd_range(c, key, false, kv);
}

ferry_status fy_etcd_get_rev(fy_etcd *c, const char *key, fy_etcd_kv *kv)
{
    return fy_etcd_range(c, key, true, kv);
}

ferry_status fy_etcd_count(fy_etcd *c, const char *prefix, int64_t *count)
{
    json_t *req = json_pack("{s:o*, s:o*, s:b}", "key", fy_b64_json(prefix, strlen(prefix)),
                            "range_end", fy_prefix_end(prefix), "count_only", 1);
    json_t *ans = NULL;
    ferry_status rc = req ? fy_etcd_post(c, "/v3/kv/range", req, &ans) : FERRY_ERR_NO_MEMORY;
    if (rc == FERRY_OK)
        *count = fy_json_i64(ans, "count");
    json_decref(ans);
    return rc;
}

ferry_status fy_etcd_delete_prefix(fy_etcd *c, const char *prefix)
{
    json_t *req = json_pack("{s:o*, s:o*}", "key", fy_b64_json(prefix, strlen(prefix)), "range_end",
                            fy_prefix_end(prefix));
    json_t *ans = NULL;
    ferry_status rc = req ? fy_etcd_post(c, "/v3/kv/deleterange", req, &ans) : FERRY_ERR_NO_MEMORY;
    json_decref(ans);
    return rc;
}

ferry_status fy_etcd_lease_grant(fy_etcd *c, int64_t ttl_s, int64_t *lease)
{
    json_t *req = json_pack("{s:I}", "TTL", (json_int_t)ttl_s);
    json_t *ans = NULL;
    ferry_status rc = req ? fy_etcd_post(c, "/v3/lease/grant", req, &ans) : FERRY_ERR_NO_MEMORY;
    int64_t id = rc == FERRY_OK ? fy_json_i64(ans, "ID") : 0;
    if (rc == FERRY_OK && id == 0) {
        FY_ETCD_ERR("etcd granted no lease");
        rc = FERRY_ERR_IO;
    }
    json_decref(ans);
    if (rc == FERRY_OK)
        *lease = id;
    return rc;
}

/* The answer's TTL is 0 (or absent) once the lease is gone. */
ferry_status fy_etcd_lease_keepalive(fy_etcd *c, int64_t lease)
{
    json_t *req = json_pack("{s:I}", "ID", (json_int_t)lease);
    json_t *ans = NULL;
    ferry_status rc = req ? fy_etcd_post(c, "/v3/lease/keepalive", req, &ans) : FERRY_ERR_NO_MEMORY;
    if (rc == FERRY_OK && fy_json_i64(json_object_get(ans, "result"), "TTL") <= 0)
        rc = FERRY_ERR_NOT_FOUND;
    json_decref(ans);
    return rc;
}

ferry_status fy_etcd_lease_revoke(fy_etcd *c, int64_t lease)
{
    json_t *req = json_pack("{s:I}", "ID", (json_int_t)lease);
    json_t *ans = NULL;
    ferry_status rc = req ? fy_etcd_post(c, "/v3/lease/revoke", req, &ans) : FERRY_ERR_NO_MEMORY;
    json_decref(ans);
    return rc;
}

ferry_status fy_etcd_watch_put(fy_etcd *c, const char *key, int64_t start_rev, uint32_t timeout_ms)
{
    json_t *req = json_pack("{s:{s:o*, s:I}}", "create_request", "key",
                            fy_b64_json(key, strlen(key)), "start_revision", (json_int_t)start_rev);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body)
        return FERRY_ERR_NO_MEMORY;
    fy_call call = {.path = "/v3/watch", .body = body, .timeout_ms = timeout_ms, .watch = true};
    ferry_status rc = fy_call_run(c, &call);
    if (rc == FERRY_OK && !call.ans.put_seen)
        rc = FERRY_ERR_TIMEOUT;
    free(body);
    free(call.ans.buf);
    return rc;
}
