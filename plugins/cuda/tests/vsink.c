/* SPDX-License-Identifier: Apache-2.0 */
/* VSINK: a test backend that accepts DRAM and VRAM registrations and does
 * nothing else, so the core's own check of VRAM registrations (through the
 * CUDA driver) can be tested on hosts where the CUDA backend itself cannot
 * be created. Built as libferry_plugin_vsink.so into the tests' folder. */
#include <ferry/plugin.h>

static ferry_status vs_init(void *priv, const ferry_plugin_host *host, const ferry_param *params,
                            size_t num_params)
{
    (void)priv, (void)host, (void)params, (void)num_params;
    return FERRY_OK;
}

static void vs_fini(void *priv)
{
    (void)priv;
}

static ferry_status vs_reg(void *priv, ferry_mem_type type, const ferry_desc *desc,
                           const void *meta, size_t meta_len, void **region, void **pub,
                           size_t *pub_len)
{
    (void)priv, (void)type, (void)desc, (void)meta, (void)meta_len;
    *region = NULL;
    *pub = NULL;
    *pub_len = 0;
    return FERRY_OK;
}

static void vs_dereg(void *priv, void *region)
{
    (void)priv, (void)region;
}

static ferry_status vs_conn_info(void *priv, void **info, size_t *len)
{
    (void)priv;
    *info = NULL;
    *len = 0;
    return FERRY_OK;
}

static ferry_status vs_remote_load(void *priv, const char *name, uint64_t uid, const void *info,
                                   size_t len, void **remote)
{
    (void)priv, (void)name, (void)uid, (void)info, (void)len, (void)remote;
    return FERRY_ERR_NOT_SUPPORTED;
}

static void vs_remote_unload(void *priv, void *remote)
{
    (void)priv, (void)remote;
}

static ferry_status vs_rregion_load(void *priv, void *remote, ferry_mem_type type,
                                    const ferry_desc *desc, const void *pub, size_t pub_len,
                                    void **rregion)
{
    (void)priv, (void)remote, (void)type, (void)desc, (void)pub, (void)pub_len, (void)rregion;
    return FERRY_ERR_NOT_SUPPORTED;
}

static void vs_rregion_unload(void *priv, void *remote, void *rregion)
{
    (void)priv, (void)remote, (void)rregion;
}

static ferry_status vs_prep(void *priv, const ferry_plugin_xfer *x, void **handle)
{
    (void)priv, (void)x, (void)handle;
    return FERRY_ERR_NOT_SUPPORTED;
}

static ferry_status vs_post(void *priv, void *handle, const void *notif, size_t len)
{
    (void)priv, (void)handle, (void)notif, (void)len;
    return FERRY_ERR_NOT_SUPPORTED;
}

static ferry_status vs_check(void *priv, void *handle)
{
    (void)priv, (void)handle;
    return FERRY_ERR_NOT_SUPPORTED;
}

static ferry_status vs_release(void *priv, void *handle)
{
    (void)priv, (void)handle;
    return FERRY_OK;
}

static const ferry_plugin_ops vs_ops = {
    .size = sizeof(ferry_plugin_ops),
    .init = vs_init,
    .fini = vs_fini,
    .reg = vs_reg,
    .dereg = vs_dereg,
    .conn_info = vs_conn_info,
    .remote_load = vs_remote_load,
    .remote_unload = vs_remote_unload,
    .rregion_load = vs_rregion_load,
    .rregion_unload = vs_rregion_unload,
    .xfer_prep = vs_prep,
    .xfer_post = vs_post,
    .xfer_check = vs_check,
    .xfer_release = vs_release,
};

static const ferry_plugin_desc vs_desc = {
    .abi_version = FERRY_PLUGIN_ABI_VERSION,
    .name = "VSINK",
    .version = "test",
    .caps = FERRY_CAP_LOCAL,
    .mem_mask = FERRY_MEM_MASK(FERRY_MEM_DRAM) | FERRY_MEM_MASK(FERRY_MEM_VRAM),
    .priv_size = 8,
    .ops = &vs_ops,
};

FERRY_PLUGIN_DEFINE(VSINK, vs_desc)
