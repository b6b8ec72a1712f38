/* SPDX-License-Identifier: Apache-2.0 */
/* Broken plugins for the loader tests, one source built once per defect
 * (meson passes BAD_KIND and BAD_NAME):
 *   BAD_ABI        another ABI version                 -> FERRY_ERR_ABI
 *   BAD_NOSYM      no ferry_plugin_get symbol          -> FERRY_ERR_BACKEND
 *   BAD_INITFAIL   init fails as param fail= says      -> that error, no leak
 *   BAD_MISSINGOP  a required op (xfer_check) is NULL  -> refused
 *   BAD_MISNAMED   descriptor name differs from file   -> refused
 *   BAD_NULLDESC   the entry point returns NULL        -> refused
 *   BAD_SMALLOPS   ops table shorter than the required -> refused
 * Apart from its defect each is a complete, if useless, backend, so that a
 * refusal can only come from the defect under test. */
#include <stdlib.h>
#include <string.h>

#include "ferry/plugin.h"

#define BAD_ABI       1
#define BAD_NOSYM     2
#define BAD_INITFAIL  3
#define BAD_MISSINGOP 4
#define BAD_MISNAMED  5
#define BAD_NULLDESC  6
#define BAD_SMALLOPS  7

#if !defined(BAD_KIND) || !defined(BAD_NAME)
#error "build with -DBAD_KIND=<kind> -DBAD_NAME=<plugin name>"
#endif

#define EXPORT __attribute__((visibility("default")))

/* Counters the test reads through dlsym, to see which ops ran. */
EXPORT unsigned bad_plugin_inits, bad_plugin_finis;

typedef struct bad {
    void *scratch; /* allocated by init: a failing init must free it */
} bad;

static const ferry_param_spec bad_params[] = {
    {"fail", "none", "none, backend, nomem or positive: what init returns"},
};

static ferry_status bad_init_result(const ferry_param *params, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(params[i].key, "fail") != 0)
            continue;
        if (!strcmp(params[i].value, "backend"))
            return FERRY_ERR_BACKEND;
        if (!strcmp(params[i].value, "nomem"))
            return FERRY_ERR_NO_MEMORY;
        if (!strcmp(params[i].value, "positive"))
            return FERRY_IN_PROGRESS; /* not a valid init result: must not pass */
    }
    return FERRY_OK;
}

static ferry_status bad_init(void *priv, const ferry_plugin_host *host, const ferry_param *params,
                             size_t num_params)
{
    bad *b = priv;
    bad_plugin_inits++;
    b->scratch = malloc(1024);
    if (!b->scratch)
        return FERRY_ERR_NO_MEMORY;
    ferry_status rc = BAD_KIND == BAD_INITFAIL ? bad_init_result(params, num_params) : FERRY_OK;
    if (rc != FERRY_OK) {
        /* As a real plugin says why: the caller's ferry_last_error shows it. */
        host->log(host->agent_ctx, FERRY_LOG_ERROR, "init fails as its param asks");
        free(b->scratch); /* the contract: on error, undo everything */
        b->scratch = NULL;
    }
    return rc;
}

static void bad_fini(void *priv)
{
    bad *b = priv;
    bad_plugin_finis++;
    free(b->scratch);
}

static ferry_status bad_reg(void *priv, ferry_mem_type type, const ferry_desc *desc,
                            const void *meta, size_t meta_len, void **region, void **pub,
                            size_t *pub_len)
{
    (void)priv, (void)type, (void)desc, (void)meta, (void)meta_len;
    (void)region, (void)pub, (void)pub_len;
    return FERRY_ERR_NOT_SUPPORTED;
}

static void bad_dereg(void *priv, void *region)
{
    (void)priv, (void)region;
}

static ferry_status bad_conn_info(void *priv, void **info, size_t *len)
{
    (void)priv;
    *info = NULL;
    *len = 0;
    return FERRY_OK;
}

static ferry_status bad_remote_load(void *priv, const char *name, uint64_t uid, const void *info,
                                    size_t len, void **remote)
{
    (void)priv, (void)name, (void)uid, (void)info, (void)len, (void)remote;
    return FERRY_ERR_NOT_SUPPORTED;
}

static void bad_remote_unload(void *priv, void *remote)
{
    (void)priv, (void)remote;
}

static ferry_status bad_rregion_load(void *priv, void *remote, ferry_mem_type type,
                                     const ferry_desc *desc, const void *pub, size_t pub_len,
                                     void **rregion)
{
    (void)priv, (void)remote, (void)type, (void)desc, (void)pub, (void)pub_len, (void)rregion;
    return FERRY_ERR_NOT_SUPPORTED;
}

static void bad_rregion_unload(void *priv, void *remote, void *rregion)
{
    (void)priv, (void)remote, (void)rregion;
}

static ferry_status bad_xfer_prep(void *priv, const ferry_plugin_xfer *xfer, void **handle)
{
    (void)priv, (void)xfer, (void)handle;
    return FERRY_ERR_NOT_SUPPORTED;
}

static ferry_status bad_xfer_post(void *priv, void *handle, const void *notif, size_t len)
{
    (void)priv, (void)handle, (void)notif, (void)len;
    return FERRY_ERR_NOT_SUPPORTED;
}

/* Unused in the BAD_MISSINGOP build, which leaves its slot NULL. */
__attribute__((unused)) static ferry_status bad_xfer_check(void *priv, void *handle)
{
    (void)priv, (void)handle;
    return FERRY_ERR_NOT_SUPPORTED;
}

static ferry_status bad_xfer_release(void *priv, void *handle)
{
    (void)priv, (void)handle;
    return FERRY_OK;
}

static const ferry_plugin_ops bad_ops = {
#if BAD_KIND == BAD_SMALLOPS
    .size = offsetof(ferry_plugin_ops, reg),
#else
    .size = sizeof(ferry_plugin_ops),
#endif
    .init = bad_init,
    .fini = bad_fini,
    .reg = bad_reg,
    .dereg = bad_dereg,
    .conn_info = bad_conn_info,
    .remote_load = bad_remote_load,
    .remote_unload = bad_remote_unload,
    .rregion_load = bad_rregion_load,
    .rregion_unload = bad_rregion_unload,
    .xfer_prep = bad_xfer_prep,
    .xfer_post = bad_xfer_post,
#if BAD_KIND != BAD_MISSINGOP
    .xfer_check = bad_xfer_check,
#endif
    .xfer_release = bad_xfer_release,
};

static const ferry_plugin_desc bad_desc = {
#if BAD_KIND == BAD_ABI
    .abi_version = FERRY_PLUGIN_ABI_VERSION + 1,
#else
    .abi_version = FERRY_PLUGIN_ABI_VERSION,
#endif
#if BAD_KIND == BAD_MISNAMED
    .name = "SOMETHING_ELSE",
#else
    .name = BAD_NAME,
#endif
    .version = "0",
    .caps = FERRY_CAP_LOCAL,
    .mem_mask = FERRY_MEM_MASK(FERRY_MEM_DRAM),
    .params = bad_params,
    .num_params = 1,
    .priv_size = sizeof(bad),
    .ops = &bad_ops,
};

#if BAD_KIND == BAD_NOSYM
/* A plausible but wrong entry point name. */
EXPORT const ferry_plugin_desc *ferry_plugin_get_v2(void);
EXPORT const ferry_plugin_desc *ferry_plugin_get_v2(void)
{
    return &bad_desc;
}
#elif BAD_KIND == BAD_NULLDESC
EXPORT const ferry_plugin_desc *ferry_plugin_get(void);
EXPORT const ferry_plugin_desc *ferry_plugin_get(void)
{
    (void)bad_desc;
    return NULL;
}
#else
FERRY_PLUGIN_DEFINE(BAD, bad_desc)
#endif
