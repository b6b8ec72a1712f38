/* SPDX-License-Identifier: Apache-2.0 */
/* One S3 HTTP request on a curl easy handle: its URL, its SigV4 signature
 * (curl's CURLOPT_AWS_SIGV4), the callbacks that move payload straight
 * between the wire and the caller's memory, and what its answer means. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "obj_internal.h"

uint64_t fy_obj_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const char *fy_obj_kind_name(enum fy_obj_kind kind)
{
    static const char *const names[] = {
        "GET", "PUT", "create upload", "upload part", "complete upload", "abort upload", "HEAD"};

    return (unsigned)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}

struct fy_obj_call *fy_obj_call_new(struct fy_obj *be, enum fy_obj_kind kind)
{
    struct fy_obj_call *c = calloc(1, sizeof(*c));

    if (c) {
        c->be = be;
        c->kind = kind;
    }
    return c;
}

void fy_obj_call_free(struct fy_obj_call *c)
{
    if (!c)
        return;
    curl_slist_free_all(c->hdrs);
    free(c->url);
    free(c->send);
    free(c->body);
    free(c->owned_key);
    free(c->owned_upload);
    free(c);
}

/* ---- URL ------------------------------------------------------------------ */

/* RFC 3986 unreserved characters stay, '/' separates key segments (S3
 * signs the path as sent, encoded once); everything else is %XX. */
static size_t fy_obj_encode(char *out, const char *key, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)key[i];
        if (isalnum(ch) || strchr("-._~/", ch)) {
            out[n++] = (char)ch;
            continue;
        }
        out[n++] = '%';
        out[n++] = hex[ch >> 4];
        out[n++] = hex[ch & 15];
    }
    out[n] = '\0';
    return n;
}

/* Path style: <endpoint>/<bucket>/<key>; virtual host style:
 * <scheme>://<bucket>.<host>/<key>. query (may be NULL) starts with '?'. */
ferry_status fy_obj_call_url(struct fy_obj_call *c, const char *key, size_t key_len,
                             const char *query)
{
    const struct fy_obj_cfg *cfg = &c->be->cfg;
    const char *host = strstr(cfg->endpoint, "://") + 3;
    size_t cap =
        strlen(cfg->endpoint) + strlen(cfg->bucket) + key_len * 3 + (query ? strlen(query) : 0) + 8;
    char *url = malloc(cap), *enc = malloc(key_len * 3 + 1);
    int n;

    if (!url || !enc) {
        free(url);
        free(enc);
        return FERRY_ERR_NO_MEMORY;
    }
    fy_obj_encode(enc, key, key_len);
    if (cfg->virtual_host)
        n = snprintf(url, cap, "%.*s%s.%s/%s%s", (int)(host - cfg->endpoint), cfg->endpoint,
                     cfg->bucket, host, enc, query ? query : "");
    else
        n = snprintf(url, cap, "%s/%s/%s%s", cfg->endpoint, cfg->bucket, enc, query ? query : "");
    free(enc);
    free(c->url);
    c->url = url;
    return n > 0 && (size_t)n < cap ? FERRY_OK : FERRY_ERR_INVALID_PARAM;
}

/* ---- callbacks -------------------------------------------------------------- */

/* Keeps up to FY_OBJ_BODY_MAX bytes of a non-payload answer; the rest is
 * dropped (an error document that large is not worth reading). */
static void fy_obj_keep(struct fy_obj_call *c, const char *p, size_t n)
{
    size_t room = FY_OBJ_BODY_MAX - c->body_len;
    char *nb;

    if (n > room)
        n = room;
    if (!n)
        return;
    nb = realloc(c->body, c->body_len + n + 1);
    if (!nb)
        return;
    c->body = nb;
    memcpy(c->body + c->body_len, p, n);
    c->body_len += n;
    c->body[c->body_len] = '\0';
}

/* A GET's payload goes to the caller's memory only when the answer is the
 * range asked for: 206, or 200 for a range starting at 0 (a server that
 * ignores Range sends the whole object; more bytes than asked fail). */
static bool fy_obj_is_payload(struct fy_obj_call *c)
{
    long code = 0;

    if (c->kind != FY_OBJ_GET)
        return false;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &code);
    return code == 206 || (code == 200 && c->obj_off == 0);
}

static size_t fy_obj_on_data(char *p, size_t size, size_t nmemb, void *arg)
{
    struct fy_obj_call *c = arg;
    size_t n = size * nmemb;

    if (!fy_obj_is_payload(c)) {
        if (c->kind == FY_OBJ_GET && c->obj_off) {
            long code = 0;
            curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &code);
            c->payload_bad = code == 200; /* the whole object, not our range */
        }
        fy_obj_keep(c, p, n);
        return c->payload_bad ? 0 : n;
    }
    if (n > c->len - c->moved) {
        c->payload_bad = true;
        return 0; /* curl fails the transfer: CURLE_WRITE_ERROR */
    }
    memcpy(c->data + c->moved, p, n);
    c->moved += n;
    return n;
}

static size_t fy_obj_on_read(char *p, size_t size, size_t nmemb, void *arg)
{
    struct fy_obj_call *c = arg;
    size_t n = size * nmemb;

    if (n > c->len - c->moved)
        n = (size_t)(c->len - c->moved);
    memcpy(p, c->data + c->moved, n);
    c->moved += n;
    return n;
}

/* curl rewinds an upload it must send again (a redirect, a reused
 * connection that was closed under it). */
static int fy_obj_on_seek(void *arg, curl_off_t off, int origin)
{
    struct fy_obj_call *c = arg;

    if (origin != SEEK_SET || off < 0 || (uint64_t)off > c->len)
        return CURL_SEEKFUNC_CANTSEEK;
    c->moved = (uint64_t)off;
    return CURL_SEEKFUNC_OK;
}

/* The ETag of an uploaded part, kept verbatim (quotes included) for the
 * completion document; a value that could break that document is refused. */
static void fy_obj_etag(struct fy_obj_call *c, const char *v, size_t n)
{
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    while (n && *v == ' ') {
        v++;
        n--;
    }
    if (n == 0 || n >= sizeof(c->etag) || memchr(v, '<', n) || memchr(v, '&', n) ||
        memchr(v, '>', n))
        return;
    memcpy(c->etag, v, n);
    c->etag[n] = '\0';
}

static size_t fy_obj_on_header(char *p, size_t size, size_t nmemb, void *arg)
{
    size_t n = size * nmemb;

    if (n > 5 && !strncasecmp(p, "etag:", 5))
        fy_obj_etag(arg, p + 5, n - 5);
    return n;
}

/* ---- setup -------------------------------------------------------------- */

void fy_obj_call_reset(struct fy_obj_call *c)
{
    c->moved = 0;
    c->send_off = 0;
    c->body_len = 0;
    c->etag[0] = '\0';
    c->curl_err[0] = '\0';
    c->http = 0;
    c->payload_bad = false;
}

static bool fy_obj_header(struct fy_obj_call *c, const char *h)
{
    struct curl_slist *l = curl_slist_append(c->hdrs, h);

    if (l)
        c->hdrs = l;
    return l != NULL;
}

/* The payload is not hashed into the signature (UNSIGNED-PAYLOAD, as the
 * AWS SDKs do over TLS): hashing gigabytes would cost a core. (No "Expect:"
 * header to turn "100 Continue" off: curl 7.88 signs that empty header it
 * then does not send; see CURLOPT_EXPECT_100_TIMEOUT_MS instead.) */
static ferry_status fy_obj_headers(struct fy_obj_call *c)
{
    const struct fy_obj_cfg *cfg = &c->be->cfg;
    char tok[4096];

    curl_slist_free_all(c->hdrs);
    c->hdrs = NULL;
    if (!fy_obj_header(c, "x-amz-content-sha256: UNSIGNED-PAYLOAD"))
        return FERRY_ERR_NO_MEMORY;
    if (c->kind == FY_OBJ_MPU_DONE && !fy_obj_header(c, "Content-Type: application/xml"))
        return FERRY_ERR_NO_MEMORY;
    if (cfg->session_token) {
        if ((size_t)snprintf(tok, sizeof(tok), "x-amz-security-token: %s", cfg->session_token) >=
            sizeof(tok))
            return FERRY_ERR_INVALID_PARAM;
        if (!fy_obj_header(c, tok))
            return FERRY_ERR_NO_MEMORY;
    }
    return FERRY_OK;
}

static void fy_obj_setup_auth(struct fy_obj_call *c, CURL *e)
{
    const struct fy_obj_cfg *cfg = &c->be->cfg;

    if (!cfg->access_key)
        return; /* anonymous: a public bucket */
    curl_easy_setopt(e, CURLOPT_AWS_SIGV4, c->be->sigv4);
    curl_easy_setopt(e, CURLOPT_USERNAME, cfg->access_key);
    curl_easy_setopt(e, CURLOPT_PASSWORD, cfg->secret_key);
}

/* Timeouts make a server that vanishes or goes silent an error, never a
 * hang: connect limit, low-speed limit (no byte for stall_timeout_s), and
 * an optional limit on the whole request. */
static void fy_obj_setup_limits(struct fy_obj_call *c, CURL *e)
{
    const struct fy_obj_cfg *cfg = &c->be->cfg;

    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)cfg->stall_timeout_s);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)cfg->request_timeout_ms);
    if (cfg->ca_bundle)
        curl_easy_setopt(e, CURLOPT_CAINFO, cfg->ca_bundle);
}

static void fy_obj_setup_method(struct fy_obj_call *c, CURL *e)
{
    char range[64];

    switch (c->kind) {
    case FY_OBJ_GET:
        snprintf(range, sizeof(range), "%llu-%llu", (unsigned long long)c->obj_off,
                 (unsigned long long)(c->obj_off + c->len - 1));
        curl_easy_setopt(e, CURLOPT_RANGE, range); /* curl copies it */
        break;
    case FY_OBJ_PUT:
    case FY_OBJ_MPU_PART:
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)c->len);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, fy_obj_on_read);
        curl_easy_setopt(e, CURLOPT_READDATA, c);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, fy_obj_on_seek);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, c);
        /* The body follows the headers at once: no wait for "100 Continue". */
        curl_easy_setopt(e, CURLOPT_EXPECT_100_TIMEOUT_MS, 0L);
        break;
    case FY_OBJ_MPU_CREATE:
    case FY_OBJ_MPU_DONE:
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->send_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->send ? c->send : "");
        break;
    case FY_OBJ_MPU_ABORT:
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
        break;
    case FY_OBJ_HEAD:
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        break;
    }
}

ferry_status fy_obj_call_setup(struct fy_obj_call *c, CURL *e)
{
    ferry_status st = fy_obj_headers(c);

    if (st != FERRY_OK)
        return st;
    c->easy = e;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, c->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, c);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L); /* keys may hold "./" and "../" */
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->hdrs);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->curl_err);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, fy_obj_on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, fy_obj_on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 512L * 1024);
    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 2L * 1024 * 1024);
    fy_obj_setup_auth(c, e);
    fy_obj_setup_limits(c, e);
    fy_obj_setup_method(c, e);
    return FERRY_OK;
}

/* ---- outcome ------------------------------------------------------------ */

/* Network failures worth another attempt: the server may be back. */
static bool fy_obj_curl_retry(CURLcode cc)
{
    return cc == CURLE_COULDNT_CONNECT || cc == CURLE_OPERATION_TIMEDOUT ||
           cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR || cc == CURLE_GOT_NOTHING ||
           cc == CURLE_PARTIAL_FILE || cc == CURLE_HTTP2_STREAM || cc == CURLE_SSL_CONNECT_ERROR;
}

static ferry_status fy_obj_curl_status(CURLcode cc)
{
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        return FERRY_ERR_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
        return FERRY_ERR_REMOTE_DISCONNECT;
    case CURLE_OUT_OF_MEMORY:
        return FERRY_ERR_NO_MEMORY;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
        return FERRY_ERR_AUTH;
    default:
        return FERRY_ERR_IO;
    }
}

static const char *fy_obj_key_of(const struct fy_obj_call *c)
{
    return c->job ? c->job->key : c->owned_key ? c->owned_key : "";
}

static int fy_obj_key_len(const struct fy_obj_call *c)
{
    return c->job ? (int)c->job->key_len : (int)strlen(fy_obj_key_of(c));
}

static ferry_status fy_obj_curl_outcome(struct fy_obj_call *c, CURLcode cc, bool *retry, char *err,
                                        size_t len)
{
    if (c->payload_bad) {
        snprintf(err, len, "%s %s/%.*s: the answer is not the range asked for (HTTP %ld)",
                 fy_obj_kind_name(c->kind), c->be->cfg.bucket, fy_obj_key_len(c), fy_obj_key_of(c),
                 c->http);
        return FERRY_ERR_IO;
    }
    *retry = fy_obj_curl_retry(cc);
    snprintf(err, len, "%s %s/%.*s at %s: %s%s%s", fy_obj_kind_name(c->kind), c->be->cfg.bucket,
             fy_obj_key_len(c), fy_obj_key_of(c), c->be->cfg.endpoint, curl_easy_strerror(cc),
             c->curl_err[0] ? ": " : "", c->curl_err);
    return fy_obj_curl_status(cc);
}

static bool fy_obj_code_in(const char *code, const char *const *set)
{
    for (; *set; set++)
        if (!strcmp(code, *set))
            return true;
    return false;
}

/* S3's error code and HTTP status to a ferry status. */
static ferry_status fy_obj_http_status(long http, const char *code, bool *retry)
{
    static const char *const auth[] = {
        "SignatureDoesNotMatch", "InvalidAccessKeyId",           "AccessDenied",    "ExpiredToken",
        "InvalidToken",          "AuthorizationHeaderMalformed", "InvalidSecurity", NULL};
    static const char *const again[] = {"SlowDown",           "RequestTimeout", "InternalError",
                                        "ServiceUnavailable", "Throttling",     NULL};

    *retry = http >= 500 || http == 429 || fy_obj_code_in(code, again);
    if (http == 401 || http == 403 || fy_obj_code_in(code, auth))
        return FERRY_ERR_AUTH;
    if (http == 404 || !strcmp(code, "NoSuchKey") || !strcmp(code, "NoSuchBucket") ||
        !strcmp(code, "NoSuchUpload"))
        return FERRY_ERR_NOT_FOUND;
    if (http == 416)
        return FERRY_ERR_INVALID_PARAM;
    return FERRY_ERR_BACKEND;
}

static const char *fy_obj_http_hint(long http)
{
    switch (http) {
    case 404:
        return " (no such object or bucket)";
    case 403:
        return " (credentials refused)";
    case 416:
        return " (range beyond the object's end)";
    default:
        return "";
    }
}

static ferry_status fy_obj_http_outcome(struct fy_obj_call *c, bool *retry, char *err, size_t len)
{
    char code[128], msg[256];
    ferry_status st;

    fy_obj_xml_error(c->body, c->body_len, code, sizeof(code), msg, sizeof(msg));
    st = fy_obj_http_status(c->http, code, retry);
    snprintf(err, len, "%s %s/%.*s: HTTP %ld%s%s%s%s%s", fy_obj_kind_name(c->kind),
             c->be->cfg.bucket, fy_obj_key_len(c), fy_obj_key_of(c), c->http,
             code[0] ? " " : fy_obj_http_hint(c->http), code, msg[0] ? ": " : "", msg,
             code[0] ? fy_obj_http_hint(c->http) : "");
    return st;
}

/* A 200 may still carry an error (CompleteMultipartUpload does), and a
 * GET must have delivered every byte asked for. */
static ferry_status fy_obj_ok_outcome(struct fy_obj_call *c, bool *retry, char *err, size_t len)
{
    char code[128], msg[256];

    if (c->kind == FY_OBJ_MPU_DONE &&
        fy_obj_xml_error(c->body, c->body_len, code, sizeof(code), msg, sizeof(msg)))
        return fy_obj_http_outcome(c, retry, err, len);
    if (c->kind == FY_OBJ_GET && c->moved != c->len) {
        snprintf(err, len, "GET %s/%.*s: %llu of %llu bytes (object shorter than the range?)",
                 c->be->cfg.bucket, fy_obj_key_len(c), fy_obj_key_of(c),
                 (unsigned long long)c->moved, (unsigned long long)c->len);
        return FERRY_ERR_IO;
    }
    if (c->kind == FY_OBJ_MPU_PART && !c->etag[0]) {
        snprintf(err, len, "upload part %u of %.*s: no usable ETag in the answer", c->part + 1,
                 fy_obj_key_len(c), fy_obj_key_of(c));
        return FERRY_ERR_BACKEND;
    }
    return FERRY_OK;
}

ferry_status fy_obj_call_outcome(struct fy_obj_call *c, CURLcode cc, bool *retry, char *err,
                                 size_t err_len)
{
    *retry = false;
    err[0] = '\0';
    if (cc != CURLE_OK)
        return fy_obj_curl_outcome(c, cc, retry, err, err_len);
    if (c->http < 200 || c->http > 299)
        return fy_obj_http_outcome(c, retry, err, err_len);
    return fy_obj_ok_outcome(c, retry, err, err_len);
}
