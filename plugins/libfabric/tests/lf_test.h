/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by LIBFABRIC's ops-level tests: the plugin built into the test
 * program (FERRY_PLUGIN_BUILTIN), instances of it with a fake host that
 * counts ERROR lines (and prints WARN and worse as TAP comments), on the
 * provider and domain the program was given; pairs of them (a target and
 * an initiator with a buffer each). */
#ifndef LF_TEST_H
#define LF_TEST_H

#include <stdarg.h>
#include <stdint.h>
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

/* Opens (instance name) with params and closes again: OK or the status,
 * and whether exactly one ERROR was logged meanwhile. */
static inline ferry_status lf_open_logged(const char *name, const ferry_param *params, size_t n,
                                          bool *logged)
{
    lf_inst a;
    unsigned before = n_errors;
    ferry_status rc = lf_inst_open_with(&a, name, 0x10, params, n);
    *logged = n_errors == before + 1;
    lf_inst_close(&a);
    return rc;
}

/* A target and an initiator, a registered buffer of len bytes each, the
 * target loaded at the initiator with its buffer's region. */
typedef struct lf_pair {
    lf_inst t, i;
    uint8_t *src, *dst; /* the initiator's, the target's */
    size_t len;
    void *treg, *ireg, *remote, *rr;
} lf_pair;

static inline ferry_status lf_pair_reg(lf_inst *a, uint8_t *buf, size_t len, void **region,
                                       void **pub, size_t *n)
{
    ferry_desc d = {(uintptr_t)buf, len, 0};
    return D->ops->reg(a->priv, FERRY_MEM_DRAM, &d, NULL, 0, region, pub, n);
}

/* The target's and the initiator's instances with these params (the
 * program's for NULL), then buffers, registrations and the target at the
 * initiator. */
static inline ferry_status lf_pair_open(lf_pair *s, const ferry_param *tp, size_t tn,
                                        const ferry_param *ip, size_t in, size_t len)
{
    void *tpub = NULL, *ipub = NULL, *info = NULL;
    size_t tlen = 0, ilen = 0, n = 0;
    s->len = len;
    s->src = (uint8_t *)calloc(1, len), s->dst = (uint8_t *)calloc(1, len);
    ferry_desc d = {(uintptr_t)s->dst, len, 0};
    ferry_status rc = s->src && s->dst ? FERRY_OK : FERRY_ERR_NO_MEMORY;
    if (rc == FERRY_OK)
        rc = lf_inst_open_with(&s->t, "pair-target", 0x40, tp, tn);
    if (rc == FERRY_OK)
        rc = lf_inst_open_with(&s->i, "pair-initiator", 0x41, ip, in);
    if (rc == FERRY_OK)
        rc = lf_pair_reg(&s->t, s->dst, len, &s->treg, &tpub, &tlen);
    if (rc == FERRY_OK)
        rc = lf_pair_reg(&s->i, s->src, len, &s->ireg, &ipub, &ilen);
    if (rc == FERRY_OK)
        rc = D->ops->conn_info(s->t.priv, &info, &n);
    if (rc == FERRY_OK)
        rc = D->ops->remote_load(s->i.priv, "pair-target", 0x40, info, n, &s->remote);
    if (rc == FERRY_OK)
        rc = D->ops->rregion_load(s->i.priv, s->remote, FERRY_MEM_DRAM, &d, tpub, tlen, &s->rr);
    free(tpub);
    free(ipub);
    free(info);
    return rc;
}

static inline void lf_pair_close(lf_pair *s)
{
    if (s->rr)
        D->ops->rregion_unload(s->i.priv, s->remote, s->rr);
    if (s->remote)
        D->ops->remote_unload(s->i.priv, s->remote);
    if (s->ireg)
        D->ops->dereg(s->i.priv, s->ireg);
    if (s->treg)
        D->ops->dereg(s->t.priv, s->treg);
    lf_inst_close(&s->i);
    lf_inst_close(&s->t);
    free(s->src);
    free(s->dst);
}

#endif
