/* SPDX-License-Identifier: Apache-2.0 */
/* OBJ: S3 object storage (NIXL's OBJ backend) over libcurl. Shared state of
 * the plugin's files:
 *   obj.c       the ops table: params, registration, remotes, transfers
 *   obj_cfg.c   params and AWS_* environment variables -> fy_obj_cfg
 *   obj_call.c  one HTTP request (a "call"): URL, signing, callbacks,
 *               classification of its outcome
 *   obj_run.c   the engine: queue, curl multi, retries, jobs, requests
 *   obj_xml.c   the server's XML answers (libxml2), bounded
 *
 * Threading: the plugin is not FERRY_PLUGIN_F_THREAD_SAFE, so the core
 * serialises every op; the curl multi handle is only ever touched from
 * inside an op (progress, post, check, release). */
#ifndef FY_OBJ_INTERNAL_H
#define FY_OBJ_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "ferry/plugin.h"

#define FY_OBJ_VERSION "0.1.0"

#define FY_OBJ_KEY_MAX   1024u  /* S3's limit on a key, in bytes */
#define FY_OBJ_BODY_MAX  65536u /* bytes kept of an XML answer */
#define FY_OBJ_ETAG_MAX  128u
#define FY_OBJ_ERR_MAX   384u
#define FY_OBJ_PARTS_MAX 10000u /* S3's limit on parts of an upload */
#define FY_OBJ_EASY_POOL 64u    /* idle easy handles kept for reuse */

#define fy_obj_log(be, level, ...) (be)->host->log((be)->host->agent_ctx, (level), __VA_ARGS__)

/* The effective configuration: params first, then AWS_* variables, then
 * defaults. Strings are malloc'd (NULL when unset). */
struct fy_obj_cfg {
    char *endpoint; /* scheme://host[:port], no trailing slash */
    char *bucket, *region;
    char *access_key, *secret_key, *session_token;
    char *ca_bundle;
    bool virtual_host;
    uint64_t mpu_threshold, part_size;
    unsigned max_inflight, max_attempts;
    uint64_t retry_base_ms, retry_max_ms, retry_timeout_ms;
    uint64_t connect_timeout_ms, stall_timeout_s, request_timeout_ms;
};

enum fy_obj_kind {
    FY_OBJ_GET,        /* a ranged GET into local memory */
    FY_OBJ_PUT,        /* one PUT of a whole object */
    FY_OBJ_MPU_CREATE, /* POST ?uploads= : starts a multipart upload */
    FY_OBJ_MPU_PART,   /* PUT ?partNumber=&uploadId= */
    FY_OBJ_MPU_DONE,   /* POST ?uploadId= with the list of parts */
    FY_OBJ_MPU_ABORT,  /* DELETE ?uploadId= : after a failure */
    FY_OBJ_HEAD,       /* query_memory */
};

struct fy_obj;
struct fy_obj_req;

/* One segment of a transfer: one object range (GET) or one object (PUT). */
struct fy_obj_job {
    const char *key; /* the rregion's, valid until release */
    size_t key_len;
    uint8_t *mem; /* local memory */
    uint64_t off, len;
    bool mpu;
    uint32_t parts, parts_left;
    char *upload_id; /* multipart upload in progress */
    char (*etags)[FY_OBJ_ETAG_MAX];
};

/* One HTTP request and its retries. A call of a request lives on the
 * request's list; a detached one (abort of an upload after a failure or a
 * release) belongs to the backend alone and owns copies of what it names. */
struct fy_obj_call {
    struct fy_obj *be;
    struct fy_obj_req *req; /* NULL: detached */
    struct fy_obj_job *job; /* NULL: detached */
    enum fy_obj_kind kind;
    uint32_t part;       /* part index (MPU_PART) */
    uint8_t *data;       /* GET: destination; PUT/part: source */
    uint64_t obj_off;    /* GET: first byte of the range */
    uint64_t len, moved; /* payload bytes wanted, moved so far */
    char *send;          /* a small request body (MPU_DONE), owned */
    size_t send_len, send_off;
    char *body; /* the answer when it is not payload, bounded */
    size_t body_len;
    char etag[FY_OBJ_ETAG_MAX];
    char *url;                      /* owned */
    char *owned_key, *owned_upload; /* detached calls only */
    CURL *easy;
    struct curl_slist *hdrs;
    char curl_err[CURL_ERROR_SIZE];
    long http;
    bool payload_bad; /* the answer carried more or other bytes than asked */
    unsigned attempt;
    uint64_t first_ns, due_ns;
    bool running;
    struct fy_obj_call *q_prev, *q_next; /* backend queue (waiting) */
    struct fy_obj_call *r_prev, *r_next; /* request's or detached list */
};

struct fy_obj_list {
    struct fy_obj_call *head, *tail;
};

struct fy_obj_req {
    struct fy_obj *be;
    const ferry_plugin_xfer *xfer;
    struct fy_obj_job *jobs;
    size_t njobs, jobs_left;
    struct fy_obj_list calls;
    ferry_status state;
    char err[FY_OBJ_ERR_MAX];
};

/* The backend's private state (priv_size bytes, zeroed by the core). */
struct fy_obj {
    const ferry_plugin_host *host;
    struct fy_obj_cfg cfg;
    char sigv4[160]; /* "aws:amz:<region>:s3" */
    CURLM *multi;
    CURL *sync; /* query_memory's HEADs, blocking */
    CURL *pool[FY_OBJ_EASY_POOL];
    unsigned npool, running;
    struct fy_obj_list queue;    /* calls waiting for a slot or a retry */
    struct fy_obj_list detached; /* aborts of uploads nobody waits for */
    int epfd, tfd;               /* the wait fd: curl's sockets and a timerfd */
    uint64_t curl_due_ns;        /* when curl wants its timeouts run; 0: never */
};

/* ---- obj_cfg.c ---- */
#define FY_OBJ_NUM_PARAMS 22
extern const ferry_param_spec fy_obj_params[FY_OBJ_NUM_PARAMS];
ferry_status fy_obj_cfg_load(struct fy_obj *be, const ferry_param *params, size_t n);
void fy_obj_cfg_free(struct fy_obj_cfg *cfg);

/* ---- obj_call.c ---- */
struct fy_obj_call *fy_obj_call_new(struct fy_obj *be, enum fy_obj_kind kind);
void fy_obj_call_free(struct fy_obj_call *c);
ferry_status fy_obj_call_url(struct fy_obj_call *c, const char *key, size_t key_len,
                             const char *query);
/* Sets the easy handle up for the call's next attempt. */
ferry_status fy_obj_call_setup(struct fy_obj_call *c, CURL *easy);
void fy_obj_call_reset(struct fy_obj_call *c);
/* The status of a finished attempt; *retry when another attempt may help.
 * Writes the detail into err. */
ferry_status fy_obj_call_outcome(struct fy_obj_call *c, CURLcode cc, bool *retry, char *err,
                                 size_t err_len);
const char *fy_obj_kind_name(enum fy_obj_kind kind);
uint64_t fy_obj_now_ns(void);

/* ---- obj_run.c ---- */
ferry_status fy_obj_run_start(struct fy_obj *be);
void fy_obj_run_stop(struct fy_obj *be);
ferry_status fy_obj_req_post(struct fy_obj_req *req);
/* Takes every call of req out of the engine (aborting its uploads). */
void fy_obj_req_cancel(struct fy_obj_req *req);
/* Drives the engine once; true when something finished or started. */
bool fy_obj_run_progress(struct fy_obj *be);
/* The arm op's answer: false when a call or a timeout is due now. */
bool fy_obj_run_arm(struct fy_obj *be);

/* ---- obj_wake.c ---- */
ferry_status fy_obj_wake_open(struct fy_obj *be);
void fy_obj_wake_stop(struct fy_obj *be);
void fy_obj_wake_drive(struct fy_obj *be);
bool fy_obj_wake_arm(struct fy_obj *be, uint64_t due_ns);
ferry_status fy_obj_head(struct fy_obj *be, const char *key, size_t key_len, bool *found,
                         uint64_t *size, char *err, size_t err_len);

/* ---- obj_xml.c ---- */
/* The text of the first element named `name` (anywhere in the document)
 * into out (NUL-terminated); false when absent, too long or not XML. */
bool fy_obj_xml_text(const char *xml, size_t len, const char *name, char *out, size_t out_len);
/* S3 error answer: Code and Message (empty when absent). True when the
 * document's root is <Error>. */
bool fy_obj_xml_error(const char *xml, size_t len, char *code, size_t code_len, char *msg,
                      size_t msg_len);

#endif
