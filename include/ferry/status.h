/* SPDX-License-Identifier: Apache-2.0 */
/* ferry status codes: one enum for the whole library. Codes are never
 * renumbered; a retired code stays as a placeholder. */
#ifndef FERRY_STATUS_H
#define FERRY_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ferry_status {
    FERRY_IN_PROGRESS = 1, /* posted, not complete yet */
    FERRY_OK = 0,          /* success / complete */
    /* NIXL's set, same numbers */
    FERRY_ERR_NOT_POSTED = -1,         /* request was never posted */
    FERRY_ERR_INVALID_PARAM = -2,      /* bad argument */
    FERRY_ERR_BACKEND = -3,            /* backend/transport failure */
    FERRY_ERR_NOT_FOUND = -4,          /* no such agent/plugin/region/backend */
    FERRY_ERR_MISMATCH = -5,           /* lists or types do not match */
    FERRY_ERR_NOT_ALLOWED = -6,        /* operation not allowed in this state */
    FERRY_ERR_REPOST_ACTIVE = -7,      /* repost while still in progress */
    FERRY_ERR_UNKNOWN = -8,            /* unexpected failure */
    FERRY_ERR_NOT_SUPPORTED = -9,      /* capability absent */
    FERRY_ERR_REMOTE_DISCONNECT = -10, /* peer gone */
    FERRY_ERR_CANCELED = -11,          /* request canceled */
    FERRY_ERR_NO_TELEMETRY = -12,      /* telemetry disabled */
    /* ferry's own */
    FERRY_ERR_NO_MEMORY = -13,    /* allocation failed */
    FERRY_ERR_TIMEOUT = -14,      /* deadline passed */
    FERRY_ERR_BAD_METADATA = -15, /* malformed/hostile metadata bytes */
    FERRY_ERR_IO = -16,           /* I/O error (file, socket) */
    FERRY_ERR_NO_RESOURCES = -17, /* cap reached (registration ledger, queue) */
    FERRY_ERR_AUTH = -18,         /* authentication failed */
    FERRY_ERR_STALE = -19,        /* handle prepared against invalidated metadata */
    FERRY_ERR_ABI = -20,          /* plugin of another ABI version */
} ferry_status;

/* Static, never-NULL description of a status code ("unknown status" for
 * values outside the enum). */
const char *ferry_strerror(ferry_status status);

/* Short symbolic name, e.g. "FERRY_ERR_NOT_FOUND". */
const char *ferry_status_name(ferry_status status);

/* Why calls of this thread failed: every line the library logged at ERROR
 * on this thread (a backend's prefixed with its name, e.g. "UCX: ...") and
 * the detail of failures it reports at a lower level, oldest first, joined
 * by "; ", since the last ferry_clear_error(). When they pass 511 bytes the
 * newest line stays. "" when none. A call that succeeds leaves it as it
 * was, like errno: clear it before a call whose detail alone you want. The
 * string belongs to the thread; it stays valid until the thread's next
 * ferry call. A request that fails while in progress (not in a call of
 * this thread) reports its detail in ferry_xfer_error() instead. */
const char *ferry_last_error(void);

/* Empties this thread's ferry_last_error(). */
void ferry_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
