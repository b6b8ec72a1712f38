/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by LIBFABRIC's ops-level tests: the plugin built into the test
 * program (FERRY_PLUGIN_BUILTIN), instances of it with a fake host that
 * counts ERROR lines (and prints WARN and worse as TAP comments), on the
 * provider and domain the program was given. */
#ifndef LF_TEST_H
#define LF_TEST_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "ferry/plugin.h"

const ferry_plugin_desc *ferry_plugin_builtin_LIBFABRIC(void);

static const ferry_plugin_desc *D;
static ferry_param P[2]; /* provider, domain */
static size_t NP;
static unsigned n_errors;

static void lf_fake_log(void *ctx, ferry_log_level level, const char *fmt, ...)
{
    (void)ctx;
    n_errors += level == FERRY_LOG_ERROR;
    if (level > FERRY_LOG_WARN && !getenv("FY_TEST_VERBOSE"))
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "# [LIBFABRIC %d] ", (int)level);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void lf_fake_deliver(void *ctx, const char *from, const void *msg, size_t len)
{
    (void)ctx, (void)from, (void)msg, (void)len;
}

static inline void lf_test_setup(const char *provider, const char *domain)
{
    D = ferry_plugin_builtin_LIBFABRIC();
    P[NP++] = (ferry_param){"provider", provider};
    if (domain)
        P[NP++] = (ferry_param){"domain", domain};
}

typedef struct lf_inst {
    ferry_plugin_host host;
    void *priv;
} lf_inst;

/* An instance with these params (the program's when params is NULL). */
static inline ferry_status lf_inst_open_with(lf_inst *a, const char *name, uint64_t uid,
                                             const ferry_param *params, size_t n)
{
    a->host = (ferry_plugin_host){.size = sizeof(a->host),
                                  .agent_name = name,
                                  .agent_uid = uid,
                                  .notif_deliver = lf_fake_deliver,
                                  .log = lf_fake_log};
    a->priv = calloc(1, D->priv_size);
    if (!a->priv)
        return FERRY_ERR_NO_MEMORY;
    ferry_status rc = D->ops->init(a->priv, &a->host, params ? params : P, params ? n : NP);
    if (rc != FERRY_OK) {
        free(a->priv);
        a->priv = NULL;
    }
    return rc;
}

static inline ferry_status lf_inst_open(lf_inst *a, const char *name, uint64_t uid)
{
    return lf_inst_open_with(a, name, uid, NULL, 0);
}

static inline void lf_inst_close(lf_inst *a)
{
    if (a->priv)
        D->ops->fini(a->priv);
    free(a->priv);
    a->priv = NULL;
}

#endif
