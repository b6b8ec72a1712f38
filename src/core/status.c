/* SPDX-License-Identifier: Apache-2.0 */
/* Status strings and library version. */
#include "common/api.h"
#include "ferry/ferry.h"

typedef struct fy_status_text {
    ferry_status status;
    const char *name;
    const char *text;
} fy_status_text;

static const fy_status_text fy_status_table[] = {
    {FERRY_IN_PROGRESS, "FERRY_IN_PROGRESS", "in progress"},
    {FERRY_OK, "FERRY_OK", "success"},
    {FERRY_ERR_NOT_POSTED, "FERRY_ERR_NOT_POSTED", "request not posted"},
    {FERRY_ERR_INVALID_PARAM, "FERRY_ERR_INVALID_PARAM", "invalid parameter"},
    {FERRY_ERR_BACKEND, "FERRY_ERR_BACKEND", "backend error"},
    {FERRY_ERR_NOT_FOUND, "FERRY_ERR_NOT_FOUND", "not found"},
    {FERRY_ERR_MISMATCH, "FERRY_ERR_MISMATCH", "mismatch"},
    {FERRY_ERR_NOT_ALLOWED, "FERRY_ERR_NOT_ALLOWED", "operation not allowed"},
    {FERRY_ERR_REPOST_ACTIVE, "FERRY_ERR_REPOST_ACTIVE", "repost while request in progress"},
    {FERRY_ERR_UNKNOWN, "FERRY_ERR_UNKNOWN", "unknown error"},
    {FERRY_ERR_NOT_SUPPORTED, "FERRY_ERR_NOT_SUPPORTED", "not supported"},
    {FERRY_ERR_REMOTE_DISCONNECT, "FERRY_ERR_REMOTE_DISCONNECT", "remote agent disconnected"},
    {FERRY_ERR_CANCELED, "FERRY_ERR_CANCELED", "canceled"},
    {FERRY_ERR_NO_TELEMETRY, "FERRY_ERR_NO_TELEMETRY", "telemetry not enabled"},
    {FERRY_ERR_NO_MEMORY, "FERRY_ERR_NO_MEMORY", "out of memory"},
    {FERRY_ERR_TIMEOUT, "FERRY_ERR_TIMEOUT", "timed out"},
    {FERRY_ERR_BAD_METADATA, "FERRY_ERR_BAD_METADATA", "malformed metadata"},
    {FERRY_ERR_IO, "FERRY_ERR_IO", "I/O error"},
    {FERRY_ERR_NO_RESOURCES, "FERRY_ERR_NO_RESOURCES", "resource limit reached"},
    {FERRY_ERR_AUTH, "FERRY_ERR_AUTH", "authentication failed"},
    {FERRY_ERR_STALE, "FERRY_ERR_STALE", "stale handle: remote metadata was invalidated"},
    {FERRY_ERR_ABI, "FERRY_ERR_ABI", "plugin ABI version mismatch"},
};

static const fy_status_text *fy_status_lookup(ferry_status status)
{
    for (size_t i = 0; i < sizeof(fy_status_table) / sizeof(fy_status_table[0]); i++)
        if (fy_status_table[i].status == status)
            return &fy_status_table[i];
    return NULL;
}

FY_API const char *ferry_strerror(ferry_status status)
{
    const fy_status_text *t = fy_status_lookup(status);
    return t ? t->text : "unknown status";
}

FY_API const char *ferry_status_name(ferry_status status)
{
    const fy_status_text *t = fy_status_lookup(status);
    return t ? t->name : "FERRY_STATUS_UNKNOWN";
}

FY_API unsigned ferry_version(void)
{
    return FERRY_VERSION;
}

#define FY_STR2(x) #x
#define FY_STR(x)  FY_STR2(x)
FY_API const char *ferry_version_string(void)
{
    return FY_STR(FERRY_VERSION_MAJOR) "." FY_STR(FERRY_VERSION_MINOR) "." FY_STR(
        FERRY_VERSION_PATCH);
}
