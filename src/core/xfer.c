/* SPDX-License-Identifier: Apache-2.0 */
/* Transfer requests: make (by index from prepared lists) or create (from
 * plain lists), post, status, release, telemetry, cost.
 *
 * The hot path is ferry_xfer_make: one pass over the index arrays, merging
 * pairs contiguous on both sides, writing the backend's segment arrays
 * directly. Post/status/release take no agent lock in RW mode. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/api.h"
#include "common/clock.h"
#include "common/log.h"
#include "core/agent.h"
#include "core/backend.h"
#include "core/dlist.h"
#include "core/handles.h"
#include "core/hlist.h"
#include "core/plugin_loader.h"
#include "core/prep.h"
#include "core/registry.h"
#include "core/remote.h"
#include "core/sync.h"
#include "core/wake.h"
#include "core/xfer.h"
#include "core/xfer_idx.h"
#include "ferry/ferry.h"

FY_API void ferry_xfer_opts_init(ferry_xfer_opts *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->size = sizeof(*opts);
}

/* ---- backend choice ---- */

static bool fy_be_fits(ferry_backend *be, uint32_t mask, ferry_mem_type lt, ferry_mem_type rt,
                       bool is_remote, bool notif)
{
    if (!(mask & (1u << be->index)) || !fy_be_supports(be, lt, rt, is_remote))
        return false;
    return !notif || (be->plugin->desc->caps & FERRY_CAP_NOTIF);
}

static bool fy_be_host_first(const ferry_backend *be)
{
    return (be->plugin->desc->flags & FERRY_PLUGIN_F_HOST_FIRST) != 0;
}

/* Without the caller's order: the first fitting one-host fast path
 * (FERRY_PLUGIN_F_HOST_FIRST), else the first fitting backend, each in
 * creation order. */
static ferry_backend *fy_choose_default(ferry_agent *agent, uint32_t mask, const ferry_prepped *l,
                                        const ferry_prepped *r, bool is_remote, bool notif)
{
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < agent->num_backends; i++) {
            ferry_backend *be = agent->backends[i];
            if (fy_be_host_first(be) == (pass == 0) &&
                fy_be_fits(be, mask, l->type, r->type, is_remote, notif))
                return be;
        }
    return NULL;
}

/* The caller's list, in its order. */
static ferry_backend *fy_choose_listed(ferry_agent *agent, const ferry_backend_sel *sel,
                                       uint32_t mask, const ferry_prepped *l,
                                       const ferry_prepped *r, bool is_remote, bool notif)
{
    for (size_t i = 0; i < sel->num_backends; i++) {
        ferry_backend *be = sel->backends[i];
        if (fy_be_of(be, agent, __func__) &&
            fy_be_fits(be, mask, l->type, r->type, is_remote, notif))
            return be;
    }
    return NULL;
}

static ferry_status fy_choose_forced(ferry_agent *agent, ferry_backend *be, uint32_t mask,
                                     const ferry_prepped *l, const ferry_prepped *r, bool is_remote,
                                     bool notif, ferry_backend **out)
{
    if (!FY_BACKEND_OK(be))
        return FERRY_ERR_INVALID_PARAM; /* its agent was destroyed */
    if (be->agent == agent && fy_be_fits(be, mask, l->type, r->type, is_remote, notif)) {
        *out = be;
        return FERRY_OK;
    }
    FY_ERR("make: the forced backend cannot serve this request");
    return FERRY_ERR_NOT_FOUND;
}

/* The first fitting backend: the forced one, else in the caller's order,
 * else one-host fast paths first, then in creation order. */
static ferry_status fy_choose(ferry_agent *agent, uint32_t mask, const ferry_xfer_opts *o,
                              const ferry_prepped *l, const ferry_prepped *r, ferry_backend **out)
{
    bool is_remote = r->remote->uid != agent->uid, notif = o && o->notif_len;
    const ferry_backend_sel *sel = o ? o->sel : NULL;
    if (o && o->backend)
        return fy_choose_forced(agent, o->backend, mask, l, r, is_remote, notif, out);
    *out = sel && sel->num_backends ? fy_choose_listed(agent, sel, mask, l, r, is_remote, notif)
                                    : fy_choose_default(agent, mask, l, r, is_remote, notif);
    if (*out)
        return FERRY_OK;
    FY_ERR("make: no backend serves %s -> %s %s for agent %s", ferry_mem_type_name(l->type),
           ferry_mem_type_name(r->type), is_remote ? "remotely" : "locally", r->remote->name);
    return FERRY_ERR_NOT_FOUND;
}

/* ---- building the request ---- */

static ferry_xfer *fy_xfer_alloc(ferry_agent *agent)
{
    ferry_xfer *x = calloc(1, sizeof(*x));
    if (!x)
        return NULL;
    x->agent = agent;
    x->link.next = x->link.prev = &x->link;
    atomic_init(&x->state, FY_X_IDLE);
    return x;
}

/* Room for the segment form: n pairs, and the local regions they hold. */
static ferry_status fy_xfer_room(ferry_xfer *x, size_t n)
{
    size_t cap = n ? n : 1;
    x->segs = malloc(2 * cap * sizeof(*x->segs));
    x->held = malloc(cap * sizeof(*x->held));
    return x->segs && x->held ? FERRY_OK : FERRY_ERR_NO_MEMORY;
}

/* The request's own index arrays, local then remote (a re-prep after a
 * deadline needs them after the caller's are gone): memory the backend
 * hands out when it has xfer_idx_alloc (pinned memory a GPU reads, so the
 * backend copies nothing), else the heap. NOT_SUPPORTED: the backend does
 * not take this request in strided form. */
static ferry_status fy_idx_take(ferry_xfer *x, size_t bytes)
{
    ferry_backend *be = x->be;
    if (!FY_OP(be, xfer_idx_alloc)) {
        x->idx = malloc(bytes);
        return x->idx ? FERRY_OK : FERRY_ERR_NO_MEMORY;
    }
    void *buf = NULL;
    fy_be_enter(be);
    ferry_status rc = be->ops->xfer_idx_alloc(be->priv, &x->sx, bytes, &buf);
    fy_be_leave(be);
    if (rc != FERRY_OK)
        return rc > 0 ? FERRY_ERR_BACKEND : rc;
    x->idx = buf;
    x->idx_staged = true;
    return FERRY_OK;
}

static void fy_idx_drop(ferry_xfer *x)
{
    if (x->idx_staged) {
        fy_be_enter(x->be);
        x->be->ops->xfer_idx_free(x->be->priv, x->idx);
        fy_be_leave(x->be);
    } else {
        free(x->idx);
    }
    x->idx = NULL;
    x->idx_staged = false;
}

static void fy_xfer_free(ferry_xfer *x)
{
    for (size_t i = 0; i < x->num_held; i++)
        fy_region_unref(x->held[i]);
    if (x->remote)
        fy_remote_unref(x->remote);
    free(x->segs);
    free(x->held);
    if (x->idx)
        fy_idx_drop(x);
    free(x->notif);
    fy_handle_free(x);
}

/* State of the merge pass. */
typedef struct fy_fill {
    ferry_xfer *x;
    ferry_plugin_seg *lo, *ro; /* output arrays */
    size_t k;                  /* segments written */
    uint32_t be;
    bool merge;
    const void *last_lr, *last_rr; /* core regions of segment k-1 */
    uint64_t bytes;
} fy_fill;

static void fy_fill_hold(fy_fill *f, fy_region *r)
{
    ferry_xfer *x = f->x;
    if (x->num_held && x->held[x->num_held - 1] == r)
        return;
    fy_region_ref(r);
    x->held[x->num_held++] = r;
}

static void fy_fill_pair(fy_fill *f, const fy_pseg *l, const fy_pseg *r)
{
    f->bytes += l->len;
    if (f->merge && f->k && l->region == f->last_lr && r->region == f->last_rr) {
        ferry_plugin_seg *pl = &f->lo[f->k - 1], *pr = &f->ro[f->k - 1];
        if (pl->addr + pl->len == l->addr && pr->addr + pr->len == r->addr) {
            pl->len += l->len;
            pr->len += r->len;
            return;
        }
    }
    const fy_region *lr = l->region;
    const fy_rregion *rr = r->region;
    f->lo[f->k] = (ferry_plugin_seg){l->addr, l->len, l->dev_id,
                                     fy_slot_priv(lr->slots, lr->num_slots, f->be)};
    f->ro[f->k] = (ferry_plugin_seg){r->addr, r->len, r->dev_id,
                                     fy_slot_priv(rr->slots, rr->num_slots, f->be)};
    f->last_lr = lr;
    f->last_rr = rr;
    f->k++;
    fy_fill_hold(f, (fy_region *)lr);
}

static ferry_status fy_fill_run(fy_fill *f, const ferry_prepped *l, const uint32_t *li,
                                const ferry_prepped *r, const uint32_t *ri, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t a = li ? li[i] : (uint32_t)i, b = ri ? ri[i] : (uint32_t)i;
        if (a >= l->count || b >= r->count) /* names the pair */
            return fy_idx_check((fy_idx){li, false}, l->count, (fy_idx){ri, false}, r->count, n);
        fy_pseg ls = fy_prepped_at(l, a), rs = fy_prepped_at(r, b);
        if (ls.len != rs.len) {
            FY_ERR("make: pair %zu has lengths %llu and %llu", i, (unsigned long long)ls.len,
                   (unsigned long long)rs.len);
            return FERRY_ERR_MISMATCH;
        }
        fy_fill_pair(f, &ls, &rs);
    }
    return FERRY_OK;
}

static ferry_status fy_xfer_set_notif_bytes(ferry_xfer *x, const void *notif, size_t len)
{
    uint8_t *copy = NULL;
    if (len > FERRY_NOTIF_MAX_LEN || (len && !notif))
        return FERRY_ERR_INVALID_PARAM;
    if (len && !(copy = malloc(len)))
        return FERRY_ERR_NO_MEMORY;
    if (len)
        memcpy(copy, notif, len);
    free(x->notif);
    x->notif = copy;
    x->notif_len = len;
    return FERRY_OK;
}

static ferry_status fy_xfer_prep_call(ferry_xfer *x)
{
    fy_be_enter(x->be);
    ferry_status rc = x->strided ? x->be->ops->xfer_prep_strided(x->be->priv, &x->sx, &x->handle)
                                 : x->be->ops->xfer_prep(x->be->priv, &x->px, &x->handle);
    fy_be_leave(x->be);
    return rc > 0 ? FERRY_ERR_BACKEND : rc;
}

static ferry_status fy_xfer_prep_failed(ferry_xfer *x, ferry_status rc)
{
    fy_log(FERRY_LOG_ERROR, x->be->plugin->name, "preparing a request failed: %s",
           ferry_strerror(rc));
    return rc;
}

/* Prepares the request with the backend: at make, and again on the first
 * post after a deadline dropped the backend's handle. */
static ferry_status fy_xfer_prep_handle(ferry_xfer *x)
{
    ferry_status rc = fy_xfer_prep_call(x);
    return rc == FERRY_OK ? rc : fy_xfer_prep_failed(x, rc);
}

static ferry_status fy_xfer_backend_prep(ferry_xfer *x, ferry_xfer_op op, const ferry_prepped *l,
                                         const ferry_prepped *r, size_t k, uint64_t bytes)
{
    x->px = (ferry_plugin_xfer){
        op, l->type, r->type, k, x->segs, x->segs + k, r->remote->be_remote[x->be->index], bytes};
    return fy_xfer_prep_handle(x);
}

/* ---- the strided form: index arrays handed over unexpanded ---- */

static ferry_plugin_strided fy_strided_side(const ferry_prepped *p, uint32_t be)
{
    const fy_pseg *s = &p->stride_seg;
    void *priv = p->remote ? fy_slot_priv(((const fy_rregion *)s->region)->slots,
                                          ((const fy_rregion *)s->region)->num_slots, be)
                           : fy_slot_priv(((const fy_region *)s->region)->slots,
                                          ((const fy_region *)s->region)->num_slots, be);
    return (ferry_plugin_strided){s->addr, p->stride, s->len, s->dev_id, p->count, priv};
}

/* Copies both index arrays into the request's memory, checked on the way:
 * one pass over what the caller handed in. */
static ferry_status fy_strided_indices(ferry_xfer *x, const ferry_prepped *l, fy_idx li,
                                       const ferry_prepped *r, fy_idx ri, size_t n)
{
    ferry_status rc = fy_idx_take(x, 2 * n * sizeof(*x->idx));
    if (rc != FERRY_OK)
        return rc;
    uint64_t any_l = fy_idx_copy(x->idx, li, n), any_r = fy_idx_copy(x->idx + n, ri, n);
    rc = any_l < l->count && any_r < r->count ? FERRY_OK
                                              : fy_idx_check(li, l->count, ri, r->count, n);
    if (rc != FERRY_OK)
        fy_idx_drop(x);
    return rc;
}

static bool fy_strided_fits(const ferry_backend *be, const ferry_prepped *l, fy_idx li,
                            const ferry_prepped *r, fy_idx ri)
{
    return li.p && ri.p && l->strided && r->strided && l->stride_seg.len == r->stride_seg.len &&
           FY_OP(be, xfer_prep_strided);
}

/* The request holds the one local region a strided list lies in. */
static ferry_status fy_strided_hold(ferry_xfer *x, const ferry_prepped *l)
{
    if (!(x->held = malloc(sizeof(*x->held))))
        return FERRY_ERR_NO_MEMORY;
    x->held[x->num_held++] = l->stride_seg.region;
    fy_region_ref(l->stride_seg.region);
    return FERRY_OK;
}

/* Both lists strided and the backend takes the request as it is: per
 * request the core copies and checks the index arrays and nothing else.
 * NOT_SUPPORTED: the segment form serves it. */
static ferry_status fy_make_strided(ferry_xfer *x, ferry_xfer_op op, const ferry_prepped *l,
                                    fy_idx li, const ferry_prepped *r, fy_idx ri, size_t n)
{
    if (!fy_strided_fits(x->be, l, li, r, ri))
        return FERRY_ERR_NOT_SUPPORTED;
    uint32_t b = x->be->index;
    uint64_t bytes = n * l->stride_seg.len;
    void *ra = r->remote->be_remote[b];
    x->sx = (ferry_plugin_sxfer){
        op,   l->type, r->type, n,    fy_strided_side(l, b), fy_strided_side(r, b),
        NULL, NULL,    ra,      bytes};
    ferry_status rc = fy_strided_indices(x, l, li, r, ri, n);
    if (rc != FERRY_OK)
        return rc;
    x->sx.local_idx = x->idx;
    x->sx.remote_idx = x->idx + n;
    x->px = (ferry_plugin_xfer){op, l->type, r->type, n, NULL, NULL, ra, bytes};
    x->strided = true;
    rc = fy_xfer_prep_call(x);
    if (rc == FERRY_OK)
        return fy_strided_hold(x, l);
    x->strided = false;
    fy_idx_drop(x);
    return rc == FERRY_ERR_NOT_SUPPORTED ? rc : fy_xfer_prep_failed(x, rc);
}

/* The segment form: pairs resolved, merged and handed over as segments. */
static ferry_status fy_make_segments(ferry_xfer *x, ferry_xfer_op op, const ferry_prepped *l,
                                     const uint32_t *li, const ferry_prepped *r, const uint32_t *ri,
                                     size_t n, const ferry_xfer_opts *o)
{
    ferry_status rc = fy_xfer_room(x, n);
    if (rc != FERRY_OK)
        return rc;
    fy_fill f = {.x = x,
                 .lo = x->segs,
                 .ro = x->segs + n,
                 .be = x->be->index,
                 .merge = !(o && o->skip_merge)};
    rc = fy_fill_run(&f, l, li, r, ri, n);
    if (rc != FERRY_OK)
        return rc;
    /* The remote half was written after room for n local segments;
     * merging may have left fewer: close the gap. */
    memmove(x->segs + f.k, f.ro, f.k * sizeof(*x->segs));
    return fy_xfer_backend_prep(x, op, l, r, f.k, f.bytes);
}

/* The segment form from index arrays of either width: 64-bit ones are
 * narrowed first (this form walks every pair anyway). */
static ferry_status fy_make_segments_idx(ferry_xfer *x, ferry_xfer_op op, const ferry_prepped *l,
                                         fy_idx li, const ferry_prepped *r, fy_idx ri, size_t n,
                                         const ferry_xfer_opts *o)
{
    uint32_t *own_l = NULL, *own_r = NULL;
    const uint32_t *l32 = NULL, *r32 = NULL;
    ferry_status rc = fy_idx_narrow(li, n, "local", &own_l, &l32);
    if (rc == FERRY_OK)
        rc = fy_idx_narrow(ri, n, "remote", &own_r, &r32);
    if (rc == FERRY_OK)
        rc = fy_make_segments(x, op, l, l32, r, r32, n, o);
    free(own_l);
    free(own_r);
    return rc;
}

/* Cancels (when in progress) and frees the backend's handle; the backend
 * returns once nothing can still write the request's memory. */
static ferry_status fy_xfer_drop_handle(ferry_xfer *x)
{
    if (!x->handle)
        return FERRY_OK;
    fy_be_enter(x->be);
    ferry_status rc = x->be->ops->xfer_release(x->be->priv, x->handle);
    fy_be_leave(x->be);
    x->handle = NULL;
    if (rc != FERRY_OK)
        fy_log(FERRY_LOG_WARN, x->be->plugin->name, "release: %s", ferry_strerror(rc));
    return rc > 0 ? FERRY_ERR_BACKEND : rc;
}

/* The effective per-post timeout: the request's own, else the agent's. */
static uint32_t fy_xfer_timeout(const ferry_agent *agent, uint32_t timeout_ms)
{
    return timeout_ms ? timeout_ms : agent->cfg.xfer_timeout_ms;
}

static ferry_status fy_make_checks(const ferry_agent *agent, const ferry_prepped *l, fy_idx li,
                                   const ferry_prepped *r, fy_idx ri, size_t n,
                                   const ferry_xfer_opts *o)
{
    if (!l || !r || !n || !li.p != !ri.p || l->remote || !r->remote)
        return FERRY_ERR_INVALID_PARAM;
    if (l->agent != agent || r->agent != agent || (o && o->size < sizeof(*o)))
        return FERRY_ERR_INVALID_PARAM;
    if (!atomic_load_explicit(&r->remote->valid, memory_order_acquire)) {
        FY_ERR("make: metadata of %s was invalidated or reloaded after prep", r->remote->name);
        return FERRY_ERR_STALE;
    }
    return FERRY_OK;
}

static ferry_status fy_make(ferry_agent *agent, ferry_xfer_op op, const ferry_prepped *l, fy_idx li,
                            const ferry_prepped *r, fy_idx ri, size_t n, const ferry_xfer_opts *o,
                            ferry_xfer **out)
{
    ferry_backend *be = NULL;
    ferry_status rc =
        op > FERRY_OP_WRITE ? FERRY_ERR_INVALID_PARAM : fy_make_checks(agent, l, li, r, ri, n, o);
    if (rc == FERRY_OK)
        rc = fy_choose(agent, l->backend_mask & r->backend_mask, o, l, r, &be);
    ferry_xfer *x = rc == FERRY_OK ? fy_xfer_alloc(agent) : NULL;
    if (rc == FERRY_OK && !x)
        rc = FERRY_ERR_NO_MEMORY;
    if (rc != FERRY_OK)
        return rc;
    x->be = be;
    x->desc_count = n;
    x->timeout_ms = fy_xfer_timeout(agent, o ? o->timeout_ms : 0);
    x->remote = r->remote;
    fy_remote_ref(x->remote);
    if (o)
        rc = fy_xfer_set_notif_bytes(x, o->notif, o->notif_len);
    if (rc == FERRY_OK && (rc = fy_make_strided(x, op, l, li, r, ri, n)) == FERRY_ERR_NOT_SUPPORTED)
        rc = fy_make_segments_idx(x, op, l, li, r, ri, n, o);
    if (rc != FERRY_OK) {
        fy_xfer_free(x);
        return rc;
    }
    *out = x;
    return FERRY_OK;
}

/* Hands a made request out: recorded as live and on the agent's list. */
static ferry_status fy_xfer_publish(ferry_xfer *x, ferry_xfer **out)
{
    ferry_status rc = fy_handle_add(x, FY_H_XFER);
    if (rc != FERRY_OK) {
        fy_xfer_drop_handle(x);
        fy_xfer_free(x);
        return rc;
    }
    fy_hlist_add(&x->agent->xfers, &x->link);
    *out = x;
    return FERRY_OK;
}

static ferry_status fy_make_public(ferry_agent *agent, ferry_xfer_op op, const ferry_prepped *local,
                                   fy_idx li, const ferry_prepped *remote, fy_idx ri, size_t n,
                                   const ferry_xfer_opts *opts, ferry_xfer **out)
{
    if (!FY_AGENT_OK(agent) || !out || !li.p || !ri.p)
        return FERRY_ERR_INVALID_PARAM;
    if ((local && !FY_PREPPED_OK(local)) || (remote && !FY_PREPPED_OK(remote)))
        return FERRY_ERR_INVALID_PARAM;
    ferry_xfer *x = NULL;
    fy_lock_rd(&agent->lock);
    ferry_status rc = fy_make(agent, op, local, li, remote, ri, n, opts, &x);
    fy_unlock(&agent->lock, false);
    return rc == FERRY_OK ? fy_xfer_publish(x, out) : rc;
}

FY_API ferry_status ferry_xfer_make(ferry_agent *agent, ferry_xfer_op op,
                                    const ferry_prepped *local, const uint32_t *local_idx,
                                    const ferry_prepped *remote, const uint32_t *remote_idx,
                                    size_t n, const ferry_xfer_opts *opts, ferry_xfer **out)
{
    return fy_make_public(agent, op, local, (fy_idx){local_idx, false}, remote,
                          (fy_idx){remote_idx, false}, n, opts, out);
}

FY_API ferry_status ferry_xfer_make64(ferry_agent *agent, ferry_xfer_op op,
                                      const ferry_prepped *local, const int64_t *local_idx,
                                      const ferry_prepped *remote, const int64_t *remote_idx,
                                      size_t n, const ferry_xfer_opts *opts, ferry_xfer **out)
{
    return fy_make_public(agent, op, local, (fy_idx){local_idx, true}, remote,
                          (fy_idx){remote_idx, true}, n, opts, out);
}

static ferry_status fy_create(ferry_agent *agent, ferry_xfer_op op, const ferry_dlist *local,
                              const ferry_dlist *remote, const char *remote_agent,
                              const ferry_xfer_opts *opts, ferry_xfer **out)
{
    ferry_prepped *l = NULL, *r = NULL;
    const ferry_backend_sel *sel = opts && opts->size >= sizeof(*opts) ? opts->sel : NULL;
    ferry_status rc = fy_prep(agent, NULL, local, sel, &l);
    if (rc == FERRY_OK)
        rc = fy_prep(agent, remote_agent, remote, sel, &r);
    if (rc == FERRY_OK) /* NULL index arrays: pair i with i */
        rc = fy_make(agent, op, l, (fy_idx){0}, r, (fy_idx){0}, local->count, opts, out);
    if (l)
        fy_prepped_free(l);
    if (r)
        fy_prepped_free(r);
    return rc;
}

FY_API ferry_status ferry_xfer_create(ferry_agent *agent, ferry_xfer_op op,
                                      const ferry_dlist *local, const ferry_dlist *remote,
                                      const char *remote_agent, const ferry_xfer_opts *opts,
                                      ferry_xfer **out)
{
    if (!FY_AGENT_OK(agent) || !local || !remote || !remote_agent || !remote_agent[0] || !out)
        return FERRY_ERR_INVALID_PARAM;
    if (local->count != remote->count) {
        FY_ERR("create: %zu local and %zu remote descriptors", local->count, remote->count);
        return FERRY_ERR_MISMATCH;
    }
    ferry_xfer *x = NULL;
    fy_lock_rd(&agent->lock);
    ferry_status rc = fy_create(agent, op, local, remote, remote_agent, opts, &x);
    fy_unlock(&agent->lock, false);
    return rc == FERRY_OK ? fy_xfer_publish(x, out) : rc;
}

/* ---- post / status / release ---- */

/* Microseconds since t0, rounded up: a post that took 300 ns took time,
 * and telemetry consumers (NIXL's among them) read 0 as "not measured". */
static uint64_t fy_us_between(uint64_t t0_ns, uint64_t t1_ns)
{
    return (t1_ns - t0_ns + 999u) / 1000u;
}

static uint64_t fy_elapsed_us(uint64_t t0_ns)
{
    return fy_us_between(t0_ns, fy_now_ns());
}

static void fy_xfer_note_error(ferry_xfer *x, ferry_status rc)
{
    const char *(*detail)(void *, void *) = FY_OP(x->be, xfer_error);
    const char *msg = detail && x->handle ? detail(x->be->priv, x->handle) : NULL;
    snprintf(x->error, sizeof(x->error), "%s: %s", x->be->plugin->name,
             msg && *msg ? msg : ferry_strerror(rc));
    atomic_fetch_add_explicit(&x->agent->xfer_errors, 1, memory_order_relaxed);
}

/* The request no longer counts as in flight for the progress thread. */
static void fy_xfer_uncount(ferry_xfer *x)
{
    if (atomic_exchange(&x->counted_inflight, false)) {
        atomic_fetch_sub(&x->be->inflight, 1);
        atomic_fetch_sub(&x->agent->inflight, 1);
    }
}

/* Metrics of an ended timed request: its time and status. now_ns: the
 * clock already read at its end (a post complete inline), or 0 to read
 * it: the clock is most of what telemetry costs a small post. */
static void fy_xfer_report(ferry_xfer *x, ferry_status rc, uint64_t now_ns)
{
    now_ns = now_ns ? now_ns : fy_now_ns();
    x->xfer_us = fy_us_between(x->t_post_ns, now_ns);
    fy_tm_xfer_done(&x->agent->tm, x->be->index, x->px.op == FERRY_OP_WRITE, x->px.total_bytes,
                    x->xfer_us, rc, now_ns);
}

static void fy_xfer_end(ferry_xfer *x, ferry_status rc, uint64_t now_ns)
{
    fy_xfer_uncount(x);
    /* x->timed is only ever set with telemetry on: an untimed success, the
     * hot path, tests one flag of the request itself. */
    if (x->timed)
        fy_xfer_report(x, rc, now_ns);
    else if (rc != FERRY_OK && x->agent->cfg.telemetry)
        fy_tm_xfer_failed(&x->agent->tm, x->be->index, rc);
    x->result = rc;
    if (rc != FERRY_OK)
        fy_xfer_note_error(x, rc);
    atomic_store_explicit(&x->state, rc == FERRY_OK ? FY_X_DONE : FY_X_FAILED,
                          memory_order_release);
}

static void fy_xfer_finish(ferry_xfer *x, ferry_status rc)
{
    fy_xfer_end(x, rc, 0);
}

/* The running post passed its deadline. The backend's release cancels it
 * and returns once nothing can still write our memory (a cancel-only op
 * would save only the re-prep of the next post, which is rare). */
static ferry_status fy_xfer_expire(ferry_xfer *x)
{
    ferry_status rc = fy_xfer_drop_handle(x);
    fy_xfer_finish(x, FERRY_ERR_TIMEOUT);
    snprintf(x->error, sizeof(x->error), "no completion within %" PRIu32 " ms%s%s", x->timeout_ms,
             rc == FERRY_OK ? "" : "; canceling: ", rc == FERRY_OK ? "" : ferry_strerror(rc));
    return FERRY_ERR_TIMEOUT;
}

/* Asks the backend once; updates the state when the transfer ended. */
static ferry_status fy_xfer_poll(ferry_xfer *x)
{
    ferry_backend *be = x->be;
    ferry_status (*progress)(void *) = FY_OP(be, progress);
    fy_be_enter(be);
    /* Checked first: a request already complete costs no progress call
     * (a system call on some transports) on its way to the caller. */
    ferry_status rc = be->ops->xfer_check(be->priv, x->handle);
    if (rc == FERRY_IN_PROGRESS && progress && !x->agent->progress_running) {
        progress(be->priv);
        rc = be->ops->xfer_check(be->priv, x->handle);
    }
    fy_be_leave(be);
    if (rc == FERRY_IN_PROGRESS && x->deadline_ns && fy_coarse_ns() >= x->deadline_ns)
        return fy_xfer_expire(x);
    if (rc != FERRY_IN_PROGRESS)
        fy_xfer_finish(x, rc > 0 ? FERRY_ERR_BACKEND : rc);
    return rc;
}

static void fy_xfer_count(ferry_xfer *x)
{
    fy_tm_count_post(&x->agent->tm, x->be->index, x->px.op == FERRY_OP_WRITE, x->px.total_bytes,
                     x->notif_len > 0);
}

/* Whether this post is timed (FY_TM_TIME_EVERY): counters count every
 * post, the time histograms and per-request times only the timed ones. */
static bool fy_xfer_timed(ferry_xfer *x)
{
    if (!x->agent->cfg.telemetry)
        return false;
    if (x->untimed_left) {
        x->untimed_left--;
        return false;
    }
    x->untimed_left = x->agent->tm.ring ? 0 : FY_TM_TIME_EVERY - 1;
    return true;
}

static ferry_status fy_post(ferry_xfer *x)
{
    int st = atomic_load_explicit(&x->state, memory_order_acquire);
    if (st == FY_X_RUNNING && fy_xfer_poll(x) == FERRY_IN_PROGRESS)
        return FERRY_ERR_REPOST_ACTIVE;
    bool telem = x->timed = fy_xfer_timed(x);
    if (telem) {
        x->t_post_ns = fy_now_ns();
        x->start_us = fy_tm_wall_us(&x->agent->tm, x->t_post_ns);
    }
    if (!atomic_load_explicit(&x->remote->valid, memory_order_acquire)) {
        fy_xfer_finish(x, FERRY_ERR_STALE); /* status reports it too */
        snprintf(x->error, sizeof(x->error), "metadata of %s was invalidated", x->remote->name);
        fy_error_set("core", "post: %s", x->error);
        return FERRY_ERR_STALE;
    }
    x->error[0] = '\0';
    ferry_status rc = x->handle ? FERRY_OK : fy_xfer_prep_handle(x);
    if (rc == FERRY_OK) {
        fy_be_enter(x->be);
        rc = x->be->ops->xfer_post(x->be->priv, x->handle, x->notif, x->notif_len);
        fy_be_leave(x->be);
    }
    uint64_t t_end = telem ? fy_now_ns() : 0;
    if (telem) {
        x->post_us = fy_us_between(x->t_post_ns, t_end);
        if (rc >= 0)
            fy_tm_xfer_post(&x->agent->tm, x->be->index, x->px.op == FERRY_OP_WRITE,
                            x->px.total_bytes, x->post_us, t_end);
    }
    if (rc < 0) {
        fy_xfer_end(x, rc, t_end);
        /* Not logged: a peer gone fails every post until the caller stops. */
        fy_error_set("core", "post: %s", x->error);
        return rc;
    }
    fy_xfer_count(x);
    if (rc == FERRY_OK)
        fy_xfer_end(x, FERRY_OK, t_end);
    else {
        /* Stamped only here: a post complete inline reads no clock. With
         * the fine clock: the coarse one lags and would fire early. */
        x->deadline_ns = x->timeout_ms == FERRY_TIMEOUT_NONE
                             ? 0
                             : (t_end ? t_end : fy_now_ns()) + (uint64_t)x->timeout_ms * 1000000u;
        atomic_store_explicit(&x->state, FY_X_RUNNING, memory_order_release);
        atomic_store(&x->counted_inflight, true);
        atomic_fetch_add(&x->be->inflight, 1);
        if (atomic_fetch_add(&x->agent->inflight, 1) == 0)
            fy_wake_kick_if_asleep(&x->agent->progress_wake); /* switch it to polling */
    }
    return rc;
}

FY_API ferry_status ferry_xfer_post(ferry_xfer *x)
{
    if (!FY_XFER_OK(x))
        return FERRY_ERR_INVALID_PARAM;
    fy_hot_enter(&x->agent->lock);
    ferry_status rc = fy_post(x);
    fy_hot_leave(&x->agent->lock);
    return rc;
}

FY_API ferry_status ferry_xfer_status(ferry_xfer *x)
{
    if (!FY_XFER_OK(x))
        return FERRY_ERR_INVALID_PARAM;
    int st = atomic_load_explicit(&x->state, memory_order_acquire);
    if (st == FY_X_DONE)
        return FERRY_OK;
    if (st == FY_X_FAILED)
        return x->result;
    if (st == FY_X_IDLE)
        return FERRY_ERR_NOT_POSTED;
    fy_hot_enter(&x->agent->lock);
    ferry_status rc = fy_xfer_poll(x);
    fy_hot_leave(&x->agent->lock);
    return rc == FERRY_IN_PROGRESS ? FERRY_IN_PROGRESS : x->result;
}

FY_API ferry_status ferry_xfer_set_timeout(ferry_xfer *x, uint32_t timeout_ms)
{
    if (!FY_XFER_OK(x))
        return FERRY_ERR_INVALID_PARAM;
    x->timeout_ms = fy_xfer_timeout(x->agent, timeout_ms);
    return FERRY_OK;
}

FY_API ferry_status ferry_xfer_set_notif(ferry_xfer *x, const void *notif, size_t len)
{
    if (!FY_XFER_OK(x))
        return FERRY_ERR_INVALID_PARAM;
    if (atomic_load_explicit(&x->state, memory_order_acquire) == FY_X_RUNNING &&
        ferry_xfer_status(x) == FERRY_IN_PROGRESS)
        return FERRY_ERR_REPOST_ACTIVE; /* the backend may still read the old one */
    if (len && !(x->be->plugin->desc->caps & FERRY_CAP_NOTIF))
        return FERRY_ERR_NOT_SUPPORTED;
    return fy_xfer_set_notif_bytes(x, notif, len);
}

FY_API ferry_status ferry_xfer_release(ferry_xfer *x)
{
    if (!x)
        return FERRY_OK;
    if (!fy_handle_del(x, FY_H_XFER, __func__))
        return FERRY_ERR_INVALID_PARAM; /* released twice, or its agent destroyed */
    fy_hlist_del(&x->agent->xfers, &x->link);
    fy_hot_enter(&x->agent->lock);
    ferry_status rc = fy_xfer_drop_handle(x);
    fy_xfer_uncount(x);
    fy_hot_leave(&x->agent->lock);
    fy_xfer_free(x);
    return rc;
}

FY_API ferry_backend *ferry_xfer_backend(const ferry_xfer *x)
{
    return FY_XFER_OK(x) ? x->be : NULL;
}

FY_API size_t ferry_xfer_count(const ferry_xfer *x)
{
    return FY_XFER_OK(x) ? x->px.count : 0;
}

FY_API const char *ferry_xfer_error(const ferry_xfer *x)
{
    return FY_XFER_OK(x) ? x->error : "";
}

FY_API void ferry_xfer_telemetry_init(ferry_xfer_telemetry *t)
{
    if (!t)
        return;
    memset(t, 0, sizeof(*t));
    t->size = sizeof(*t);
}

FY_API ferry_status ferry_xfer_get_telemetry(const ferry_xfer *x, ferry_xfer_telemetry *t)
{
    if (!FY_XFER_OK(x) || !t || t->size < sizeof(*t))
        return FERRY_ERR_INVALID_PARAM;
    if (!x->agent->cfg.telemetry)
        return FERRY_ERR_NO_TELEMETRY;
    int st = atomic_load_explicit(&x->state, memory_order_acquire);
    if (st == FY_X_IDLE)
        return FERRY_ERR_NOT_POSTED;
    t->start_us = x->start_us;
    t->post_us = x->post_us;
    /* An untimed post running: its own time is unknown, "not measured". */
    t->xfer_us = st != FY_X_RUNNING ? x->xfer_us : x->timed ? fy_elapsed_us(x->t_post_ns) : 0;
    t->total_bytes = x->px.total_bytes;
    t->desc_count = x->desc_count;
    return st == FY_X_RUNNING ? FERRY_IN_PROGRESS : FERRY_OK;
}

FY_API void ferry_xfer_cost_init(ferry_xfer_cost *c)
{
    if (!c)
        return;
    memset(c, 0, sizeof(*c));
    c->size = sizeof(*c);
}

FY_API ferry_status ferry_xfer_estimate(const ferry_xfer *x, ferry_xfer_cost *c)
{
    if (!FY_XFER_OK(x) || !c || c->size < sizeof(*c))
        return FERRY_ERR_INVALID_PARAM;
    ferry_status (*estimate)(void *, void *, ferry_xfer_cost *) = FY_OP(x->be, estimate);
    if (!estimate)
        return FERRY_ERR_NOT_SUPPORTED;
    /* A deadline dropped the backend's handle: the estimator needs one, and
     * the next post would prepare it anyway. */
    ferry_status rc = x->handle ? FERRY_OK : fy_xfer_prep_handle((ferry_xfer *)x);
    if (rc != FERRY_OK)
        return rc;
    fy_be_enter(x->be);
    rc = estimate(x->be->priv, x->handle, c);
    fy_be_leave(x->be);
    return rc;
}
