/* SPDX-License-Identifier: Apache-2.0 */
/* LIBFABRIC: host memory to and from other agents through libfabric
 * (OFI): EFA, verbs, tcp and shm providers, as NIXL's LIBFABRIC backend.
 *
 * One reliable-datagram endpoint (FI_EP_RDM) per rail, found by fi_getinfo
 * for the provider named by the `provider` param or FI_PROVIDER (lf.c:
 * capability negotiation names what a provider lacks) and the rail's
 * domain; a backend has one rail (the `domain` param) or several (the
 * `rails` param: NICs, or tcp interfaces; lf_rail.c). The endpoints'
 * addresses are the connection info; a peer's go into the address vectors
 * at remote_load (lf_remote.c). Regions are registered on every rail and
 * published as {addr, len, key per rail} (lf_mem.c); transfers are
 * fi_write and fi_read against those keys, a window of operations in
 * flight per request, a segment of striping_threshold bytes or more cut
 * into one stripe per rail, shorter ones spread over the rails in turn
 * (lf_xfer.c); a notification is a message sent on rail 0 once every
 * operation of its transfer completed, on every rail (lf_notif.c). Each
 * rail's completion queue carries its operations; their wait fds (where
 * the provider has them) let an idle progress thread sleep.
 *
 * Trust: the target checks every access in the provider against the
 * registered key's range. With tcp and shm (software RMA, run by the
 * target's CPU) that check is libfabric's own (its key map verifies
 * address and length against the region before it touches memory);
 * test_lf_reach shows a forged range fails with nothing written. With
 * EFA and verbs the NIC checks it.
 *
 * Threading: not FERRY_PLUGIN_F_THREAD_SAFE: the core serialises every op,
 * so the domain is opened FI_THREAD_DOMAIN. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "fyp_params.h"
#include "lf_internal.h"

#define FY_LF_VERSION  "0.1.0"
#define FY_LF_API      FI_VERSION(1, 9)
#define FY_LF_RX_BUFS  16u
#define FY_LF_TX_BUFS  32u
#define FY_LF_CQ_BATCH 16

/* The providers tried in order when neither the param nor FI_PROVIDER
 * names one: hardware first, TCP as the fallback every host has. */
static const char *const fy_lf_auto[] = {"efa", "verbs;ofi_rxm", "tcp;ofi_rxm"};

static const ferry_param_spec fy_lf_params[] = {
    {"timeout_ms", "10000",
     "ms (100..3600000) an RMA transfer may go without any completion before it fails with "
     "FERRY_ERR_TIMEOUT (a peer gone silent)"},
    {"release_ms", "2000",
     "ms (10..60000) releasing a request in flight waits for its operations before it tears "
     "the peer's connection down"},
    {"striping_threshold", "131072",
     "bytes (1K..1T; K, M, G suffixes): a segment this long or longer is cut into one stripe "
     "per rail when there are several; shorter ones go whole, on the rails in turn"},
    {"provider", "",
     "libfabric provider: efa, verbs;ofi_rxm, tcp;ofi_rxm, shm, ... (empty: FI_PROVIDER, else "
     "the first of efa, verbs;ofi_rxm, tcp;ofi_rxm found)"},
    {"domain", "",
     "the provider's domain (tcp: a network interface such as lo or eth0; "
     "empty: the first the provider lists)"},
    {"rails", "",
     "domains to stripe over, comma-separated (tcp: interfaces, e.g. eth0,eth1; EFA: "
     "devices); one rail each, at most 32; instead of domain"},
};
#define FY_LF_NUM_PARAMS  (sizeof(fy_lf_params) / sizeof(fy_lf_params[0]))
#define FY_LF_NUM_NUMERIC 3u
static const fyp_range fy_lf_ranges[] = {{100, 3600000}, {10, 60000}, {1024, 1ull << 40}};

uint64_t fy_lf_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- capability negotiation ---- */

/* What ferry asks of a provider, one step at a time, so that a provider
 * that cannot serve is refused with the first thing it lacks. */
typedef struct fy_lf_need {
    uint64_t caps;
    bool mr_modes; /* the memory-registration modes ferry handles */
    const char *what;
} fy_lf_need;

static const fy_lf_need fy_lf_needs[] = {
    {0, false, "a reliable-datagram endpoint (FI_EP_RDM)"},
    {FI_RMA | FI_READ | FI_WRITE | FI_REMOTE_READ | FI_REMOTE_WRITE, false,
     "one-sided RMA (FI_RMA: fi_read/fi_write into registered memory)"},
    {FI_MSG | FI_SEND | FI_RECV, false, "messages (FI_MSG, for notifications)"},
    {0, true,
     "a memory-registration mode ferry handles (keys of 8 bytes at most: no FI_MR_RAW; "
     "FI_MR_LOCAL, FI_MR_VIRT_ADDR, FI_MR_ALLOCATED, FI_MR_PROV_KEY, FI_MR_ENDPOINT allowed)"},
};

/* Registration modes: those ferry handles, and (for the steps before the
 * registration one) any a provider may ask for. */
#define FY_LF_MR_OURS                                                                              \
    (FI_MR_ALLOCATED | FI_MR_PROV_KEY | FI_MR_VIRT_ADDR | FI_MR_LOCAL | FI_MR_ENDPOINT |           \
     FI_MR_RMA_EVENT)
#define FY_LF_MR_ANY (FY_LF_MR_OURS | FI_MR_RAW | FI_MR_HMEM | FI_MR_MMU_NOTIFY)

static struct fi_info *fy_lf_hints(const char *prov, const char *domain, size_t steps,
                                   uint64_t extra)
{
    struct fi_info *h = fi_allocinfo();
    if (!h)
        return NULL;
    h->ep_attr->type = FI_EP_RDM;
    h->mode = FI_CONTEXT | FI_CONTEXT2;
    h->domain_attr->threading = FI_THREAD_DOMAIN;
    h->domain_attr->mr_mode = FY_LF_MR_ANY;
    h->fabric_attr->prov_name = prov && *prov ? strdup(prov) : NULL;
    h->domain_attr->name = domain && *domain ? strdup(domain) : NULL;
    for (size_t i = 0; i < steps; i++) {
        h->caps |= fy_lf_needs[i].caps;
        if (fy_lf_needs[i].mr_modes)
            h->domain_attr->mr_mode = FY_LF_MR_OURS;
    }
    h->caps |= extra;
    return h;
}

/* The first entry of the domain asked for (layered providers such as
 * ofi_rxm list every domain whatever the hint), as a list of its own. */
static int fy_lf_pick(struct fi_info *list, const char *domain, struct fi_info **out)
{
    for (struct fi_info *i = list; i; i = i->next) {
        if (*domain && (!i->domain_attr->name || strcmp(i->domain_attr->name, domain)))
            continue;
        *out = fi_dupinfo(i);
        return *out ? 0 : -FI_ENOMEM;
    }
    return -FI_ENODATA;
}

/* fi_getinfo with the first `steps` needs, and the extra caps. */
static int fy_lf_getinfo_x(const char *prov, const char *domain, size_t steps, uint64_t extra,
                           struct fi_info **out)
{
    struct fi_info *h = fy_lf_hints(prov, domain, steps, extra), *list = NULL;
    if (!h)
        return -FI_ENOMEM;
    int rc = fi_getinfo(FY_LF_API, NULL, NULL, 0, h, &list);
    fi_freeinfo(h);
    if (rc == 0)
        rc = fy_lf_pick(list, domain, out);
    fi_freeinfo(list);
    return rc;
}

static int fy_lf_getinfo(const char *prov, const char *domain, size_t steps, struct fi_info **out)
{
    return fy_lf_getinfo_x(prov, domain, steps, 0, out);
}

static bool fy_lf_info_ok(const struct fi_info *i)
{
    return !(i->domain_attr->mr_mode & FI_MR_RAW) && i->domain_attr->mr_key_size <= 8;
}

/* Counts of RMA this endpoint served (FI_RMA_EVENT), where the provider
 * offers them: a provider without a wait fd (shm) does a peer's RMA inside
 * our progress calls without any completion of ours, so the counter is
 * how progress learns it did work (and the progress thread keeps polling
 * while a peer moves data through us). */
static void fy_lf_want_rma_events(fy_lf_rail *rail, const char *prov)
{
    struct fi_info *info = NULL;
    size_t all = sizeof(fy_lf_needs) / sizeof(fy_lf_needs[0]);
    if (fy_lf_getinfo_x(prov, rail->name, all, FI_RMA_EVENT, &info) == 0 && fy_lf_info_ok(info)) {
        fi_freeinfo(rail->info);
        rail->info = info;
        return;
    }
    fi_freeinfo(info);
}

/* Says what the provider lacks: the need of the first step that found
 * nothing (a domain it does not have, when that is why). */
static void fy_lf_log_lack(fy_lf_rail *rail, const char *prov, size_t step, int rc)
{
    const size_t all = sizeof(fy_lf_needs) / sizeof(fy_lf_needs[0]);
    struct fi_info *info = NULL;
    if (step == 1 && *rail->name && fy_lf_getinfo(prov, "", 1, &info) == 0) {
        fi_freeinfo(info);
        fy_lf_log(rail->be, FERRY_LOG_ERROR,
                  "provider '%s' has no domain '%s' (fi_info -p '%s' lists its domains)", prov,
                  rail->name, prov);
        return;
    }
    fy_lf_log(rail->be, FERRY_LOG_ERROR, "provider '%s'%s%s %s %s (%s)", prov,
              *rail->name ? " on domain " : "", rail->name,
              step == 1 ? "is not available here (fi_info -l lists them) or lacks" : "lacks",
              fy_lf_needs[step > all ? all - 1 : step - 1].what,
              rc ? fi_strerror(-rc) : "raw keys");
}

/* Finds the provider's info for the rail's domain, or logs what it lacks. */
static ferry_status fy_lf_negotiate(fy_lf_rail *rail, const char *prov, bool quiet)
{
    const size_t all = sizeof(fy_lf_needs) / sizeof(fy_lf_needs[0]);
    struct fi_info *info = NULL;
    size_t step;
    int rc = 0;
    for (step = 1; step <= all && rc == 0; step++) {
        fi_freeinfo(info);
        info = NULL;
        rc = fy_lf_getinfo(prov, rail->name, step, &info);
    }
    if (rc == 0 && fy_lf_info_ok(info)) {
        rail->info = info;
        fy_lf_want_rma_events(rail, prov);
        return FERRY_OK;
    }
    fi_freeinfo(info);
    if (!quiet)
        fy_lf_log_lack(rail, prov, rc ? step - 1 : step, rc);
    return FERRY_ERR_NOT_SUPPORTED;
}

/* Rail 0's provider: the param, else FI_PROVIDER, else the first of
 * fy_lf_auto found. */
static ferry_status fy_lf_choose(fy_lf *be)
{
    const char *env = getenv("FI_PROVIDER");
    if (*be->provider || (env && *env))
        return fy_lf_negotiate(&be->rails[0], *be->provider ? be->provider : env, false);
    for (size_t i = 0; i < sizeof(fy_lf_auto) / sizeof(fy_lf_auto[0]); i++)
        if (fy_lf_negotiate(&be->rails[0], fy_lf_auto[i], true) == FERRY_OK)
            return FERRY_OK;
    fy_lf_log(be, FERRY_LOG_ERROR,
              "no provider of efa, verbs;ofi_rxm, tcp;ofi_rxm serves "
              "reliable datagrams with RMA and messages here");
    return FERRY_ERR_NOT_SUPPORTED;
}

/* Every rail on rail 0's provider (the one the auto choice found, too). */
static ferry_status fy_lf_choose_rails(fy_lf *be)
{
    ferry_status rc = fy_lf_choose(be);
    const char *prov = rc == FERRY_OK ? be->rails[0].info->fabric_attr->prov_name : NULL;
    for (uint32_t i = 1; i < be->nrails && rc == FERRY_OK; i++)
        rc = fy_lf_negotiate(&be->rails[i], prov, false);
    return rc;
}

/* ---- the shm provider's reach ---- */

/* Whether processes of this user may already read and write this whole
 * process (ptrace, /proc/<pid>/mem, cross-memory attach): Yama allows it
 * to any of them (ptrace_scope 0, or no Yama) and this process is
 * dumpable. */
static bool fy_lf_same_user_reach(void)
{
    char scope = '0';
    FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "r");
    if (f) {
        if (fread(&scope, 1, 1, f) != 1)
            scope = '?';
        fclose(f);
    }
    return scope == '0' && prctl(PR_GET_DUMPABLE) == 1;
}

/* libfabric's shm provider does not check region keys or ranges (1.17:
 * a peer reads and writes any address of the target, test_lf_reach shows
 * it), and any process of this user can reach its segment. It is served
 * only where such a process could reach all of this one's memory anyway,
 * as the SHM backend's cross-memory attach does. */
static ferry_status fy_lf_shm_gate(fy_lf *be)
{
    if (strcmp(be->rails[0].info->fabric_attr->prov_name, "shm") || fy_lf_same_user_reach())
        return FERRY_OK;
    fy_lf_log(be, FERRY_LOG_ERROR,
              "provider shm does not bound peers to registered memory, and processes of this "
              "user cannot otherwise reach this one (Yama ptrace_scope > 0, or not dumpable): "
              "refused; use tcp;ofi_rxm or the SHM backend");
    return FERRY_ERR_NOT_SUPPORTED;
}

/* ---- opening ---- */

static ferry_status fy_lf_open(fy_lf *be)
{
    ferry_status rc = FERRY_OK;
    for (uint32_t i = 0; i < be->nrails && rc == FERRY_OK; i++)
        rc = fy_lf_rail_open(&be->rails[i]);
    if (rc == FERRY_OK)
        rc = fy_lf_wait_set(be);
    return rc == FERRY_OK ? fy_lf_notif_open(be, FY_LF_RX_BUFS, FY_LF_TX_BUFS) : rc;
}

static void fy_lf_fini(void *priv)
{
    fy_lf *be = priv;
    /* The endpoints first: nothing completes into buffers freed after them. */
    for (uint32_t i = 0; i < be->nrails; i++) {
        if (be->rails[i].ep)
            fi_close(&be->rails[i].ep->fid);
        be->rails[i].ep = NULL;
    }
    fy_lf_notif_close(be);
    fy_lf_orphans_free(be);
    fy_lf_wait_set_close(be);
    for (uint32_t i = 0; i < be->nrails; i++) {
        if (be->rails[i].rma_bytes)
            fy_lf_log(be, FERRY_LOG_DEBUG, "rail %u (%s) moved %llu bytes", i, be->rails[i].name,
                      (unsigned long long)be->rails[i].rma_bytes);
        fy_lf_rail_close(&be->rails[i]);
    }
}

/* ---- params ---- */

static ferry_status fy_lf_copy_param(fy_lf *be, const ferry_param *p, char *dst, size_t cap)
{
    if (strlen(p->value) < cap) {
        snprintf(dst, cap, "%s", p->value);
        return FERRY_OK;
    }
    fy_lf_log(be, FERRY_LOG_ERROR, "param %s: longer than %zu characters", p->key, cap - 1);
    return FERRY_ERR_INVALID_PARAM;
}

/* What is wrong with the next name of the rails list, or NULL. */
static const char *fy_lf_rail_name_fault(const fy_lf *be, size_t len)
{
    if (!len)
        return "an empty name";
    if (len >= sizeof(be->rails[0].name))
        return "a name too long";
    return be->nrails == FY_LF_RAILS_MAX ? "too many rails" : NULL;
}

/* One name of the rails list into the next rail. */
static ferry_status fy_lf_add_rail(fy_lf *be, const char *name, size_t len)
{
    const char *fault = fy_lf_rail_name_fault(be, len);
    if (fault) {
        fy_lf_log(be, FERRY_LOG_ERROR,
                  "param rails: %s (a comma-separated list of at most %u domain names of at "
                  "most %zu characters)",
                  fault, FY_LF_RAILS_MAX, sizeof(be->rails[0].name) - 1);
        return FERRY_ERR_INVALID_PARAM;
    }
    snprintf(be->rails[be->nrails++].name, sizeof(be->rails[0].name), "%.*s", (int)len, name);
    return FERRY_OK;
}

/* rails=eth0,eth1: a rail per name, in order. */
static ferry_status fy_lf_rails_param(fy_lf *be, const char *list)
{
    be->nrails = 0;
    for (const char *p = list;; p++) {
        size_t len = strcspn(p, ",");
        ferry_status rc = fy_lf_add_rail(be, p, len);
        p += len;
        if (rc != FERRY_OK || !*p)
            return rc;
    }
}

/* The string params; the numeric ones went through fyp_params_parse.
 * Without rails, one rail on `domain` (empty: the provider's first). */
static ferry_status fy_lf_string_params(fy_lf *be, const ferry_param *params, size_t n)
{
    ferry_status rc = FERRY_OK;
    const char *rails = "";
    be->nrails = 1;
    for (size_t i = 0; i < n && rc == FERRY_OK; i++) {
        if (!strcmp(params[i].key, "provider"))
            rc = fy_lf_copy_param(be, &params[i], be->provider, sizeof(be->provider));
        else if (!strcmp(params[i].key, "domain"))
            rc = fy_lf_copy_param(be, &params[i], be->rails[0].name, sizeof(be->rails[0].name));
        else if (!strcmp(params[i].key, "rails"))
            rails = params[i].value;
    }
    if (rc != FERRY_OK || !*rails)
        return rc;
    if (*be->rails[0].name) {
        fy_lf_log(be, FERRY_LOG_ERROR, "params domain and rails: give one of them, not both");
        return FERRY_ERR_INVALID_PARAM;
    }
    return fy_lf_rails_param(be, rails);
}

static bool fy_lf_is_string_param(const char *key)
{
    return !strcmp(key, "provider") || !strcmp(key, "domain") || !strcmp(key, "rails");
}

/* fyp_params_parse sees the numeric keys only; the string ones are
 * checked by name here. */
static ferry_status fy_lf_params_parse(fy_lf *be, const ferry_param *params, size_t n)
{
    ferry_param numeric[FY_LF_NUM_PARAMS] = {{0}};
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool known = false;
        for (size_t j = 0; j < FY_LF_NUM_PARAMS; j++)
            known |= !strcmp(params[i].key, fy_lf_params[j].key);
        if (!known || k == FY_LF_NUM_PARAMS) {
            fy_lf_log(be, FERRY_LOG_ERROR, "unknown param %s", params[i].key);
            return FERRY_ERR_INVALID_PARAM;
        }
        if (!fy_lf_is_string_param(params[i].key))
            numeric[k++] = params[i];
    }
    uint64_t vals[FY_LF_NUM_NUMERIC];
    ferry_status rc =
        fyp_params_parse(be->host, fy_lf_params, fy_lf_ranges, FY_LF_NUM_NUMERIC, numeric, k, vals);
    if (rc != FERRY_OK)
        return rc;
    be->timeout_ms = vals[0];
    be->release_ms = vals[1];
    be->stripe_min = vals[2];
    return fy_lf_string_params(be, params, n);
}

static void fy_lf_rails_init(fy_lf *be)
{
    be->wait_fd = be->epoll_fd = -1;
    for (uint32_t i = 0; i < FY_LF_RAILS_MAX; i++)
        be->rails[i] = (fy_lf_rail){.be = be, .index = i, .wait_fd = -1};
}

static ferry_status fy_lf_init(void *priv, const ferry_plugin_host *host, const ferry_param *params,
                               size_t num_params)
{
    fy_lf *be = priv;
    if (!host || host->size < sizeof(*host) || !host->log || !host->notif_deliver)
        return FERRY_ERR_INVALID_PARAM;
    be->host = host;
    fy_lf_rails_init(be);
    ferry_status rc = fy_lf_params_parse(be, params, num_params);
    if (rc == FERRY_OK)
        rc = fy_lf_choose_rails(be);
    if (rc == FERRY_OK)
        rc = fy_lf_shm_gate(be);
    fyp_ident_self(&be->self, host->agent_uid, "libfabric");
    if (rc == FERRY_OK)
        rc = fy_lf_open(be);
    if (rc != FERRY_OK) {
        fy_lf_fini(be);
        return rc;
    }
    const fy_lf_rail *r0 = &be->rails[0];
    fy_lf_log(be, FERRY_LOG_DEBUG,
              "provider %s, %u rail(s), first on domain %s, mr_mode %#llx, "
              "wait fd %d%s",
              r0->info->fabric_attr->prov_name, be->nrails, r0->info->domain_attr->name,
              (unsigned long long)r0->info->domain_attr->mr_mode, be->wait_fd,
              r0->rma_cntr ? ", RMA event counter" : "");
    return FERRY_OK;
}

/* ---- completions and progress ---- */

static void fy_lf_dispatch(fy_lf *be, const struct fi_cq_msg_entry *e, int err, const char *why)
{
    fy_lf_op *op = e->op_context;
    /* A peer's WRITE with remote CQ data (write_flags) carries no context
     * of ours: it only tells progress that it did work. */
    if (!op || (e->flags & (FI_REMOTE_WRITE | FI_REMOTE_READ)))
        return;
    if (op->kind == FY_LF_OP_RMA)
        fy_lf_rma_done(be, op, err, why);
    else
        fy_lf_notif_done(be, op, e, err);
}

/* One error entry: the operation it names ends with the provider's text. */
static void fy_lf_cq_error(fy_lf *be, struct fid_cq *cq)
{
    struct fi_cq_err_entry err = {0};
    if (fi_cq_readerr(cq, &err, 0) != 1)
        return;
    char buf[160];
    const char *why =
        err.prov_errno ? fi_cq_strerror(cq, err.prov_errno, err.err_data, buf, sizeof(buf)) : NULL;
    struct fi_cq_msg_entry e = {.op_context = err.op_context, .flags = err.flags, .len = err.len};
    fy_lf_dispatch(be, &e, err.err ? err.err : FI_EIO, why ? why : fi_strerror(err.err));
}

static size_t fy_lf_cq_drain_one(fy_lf *be, struct fid_cq *cq)
{
    struct fi_cq_msg_entry e[FY_LF_CQ_BATCH];
    size_t total = 0;
    for (;;) {
        ssize_t n = fi_cq_read(cq, e, FY_LF_CQ_BATCH);
        if (n == -FI_EAVAIL) {
            fy_lf_cq_error(be, cq);
            total++;
            continue;
        }
        if (n <= 0)
            return total;
        for (ssize_t i = 0; i < n; i++)
            fy_lf_dispatch(be, &e[i], 0, NULL);
        total += (size_t)n;
    }
}

size_t fy_lf_cq_drain(fy_lf *be)
{
    size_t total = 0;
    for (uint32_t i = 0; i < be->nrails; i++)
        total += fy_lf_cq_drain_one(be, be->rails[i].cq);
    return total;
}

/* Whether peers' RMA went through the rail's counter since last time. */
static bool fy_lf_served(fy_lf_rail *rail)
{
    uint64_t served = rail->rma_cntr ? fi_cntr_read(rail->rma_cntr) : 0;
    bool moved = served != rail->rma_served;
    rail->rma_served = served;
    return moved;
}

static ferry_status fy_lf_progress(void *priv)
{
    fy_lf *be = priv;
    size_t work = fy_lf_cq_drain(be);
    work += fy_lf_xfer_sweep(be);
    for (uint32_t i = 0; i < be->nrails; i++)
        work += fy_lf_served(&be->rails[i]);
    return work ? FERRY_IN_PROGRESS : FERRY_OK;
}

static ferry_status fy_lf_wait_fd(void *priv, int *fd)
{
    fy_lf *be = priv;
    if (be->wait_fd < 0)
        return FERRY_ERR_NOT_SUPPORTED;
    *fd = be->wait_fd;
    return FERRY_OK;
}

/* fi_trywait: safe to sleep on the fd only when the provider says so. */
static ferry_status fy_lf_arm(void *priv)
{
    return fy_lf_rails_trywait(priv) ? FERRY_OK : FERRY_IN_PROGRESS;
}

/* ---- descriptor ---- */

/* Left NULL: supports and mem_types (DRAM only, mem_mask says it all),
 * connect/disconnect (the provider connects on first use), estimate,
 * query, mem_alloc/mem_free (ordinary memory is what RMA registers). */
static const ferry_plugin_ops fy_lf_ops = {
    .size = sizeof(ferry_plugin_ops),
    .init = fy_lf_init,
    .fini = fy_lf_fini,
    .reg = fy_lf_reg,
    .dereg = fy_lf_dereg,
    .conn_info = fy_lf_conn_info,
    .remote_load = fy_lf_remote_load,
    .remote_unload = fy_lf_remote_unload,
    .rregion_load = fy_lf_rregion_load,
    .rregion_unload = fy_lf_rregion_unload,
    .xfer_prep = fy_lf_xfer_prep,
    .xfer_post = fy_lf_xfer_post,
    .xfer_check = fy_lf_xfer_check,
    .xfer_release = fy_lf_xfer_release,
    .notif_send = fy_lf_notif_send,
    .progress = fy_lf_progress,
    .xfer_error = fy_lf_xfer_error,
    .wait_fd = fy_lf_wait_fd,
    .arm = fy_lf_arm,
    .remote_refresh = fy_lf_remote_refresh,
    .reg_pins = fy_lf_reg_pins,
};

static const ferry_plugin_desc fy_lf_desc = {
    .abi_version = FERRY_PLUGIN_ABI_VERSION,
    .flags = 0,
    .name = "LIBFABRIC",
    .version = FY_LF_VERSION,
    .caps = FERRY_CAP_LOCAL | FERRY_CAP_REMOTE | FERRY_CAP_NOTIF | FERRY_CAP_PROGRESS,
    .mem_mask = FERRY_MEM_MASK(FERRY_MEM_DRAM),
    .params = fy_lf_params,
    .num_params = FY_LF_NUM_PARAMS,
    .priv_size = sizeof(fy_lf),
    .ops = &fy_lf_ops,
};

FERRY_PLUGIN_DEFINE(LIBFABRIC, fy_lf_desc)
