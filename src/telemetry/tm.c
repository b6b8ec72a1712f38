/* SPDX-License-Identifier: Apache-2.0 */
/* An agent's telemetry: lifecycle, the counters and histograms the core
 * feeds, and the host-memory ledger with its caps. */
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "telemetry/prom.h"
#include "telemetry/ring.h"
#include "telemetry/tm.h"

#define FY_TM_LOG(...) fy_log(FERRY_LOG_ERROR, "telemetry", __VA_ARGS__)

static void fy_tm_hostname(fy_tm *tm)
{
    if (gethostname(tm->host, sizeof(tm->host) - 1) != 0)
        strcpy(tm->host, "unknown");
    tm->host[sizeof(tm->host) - 1] = '\0';
}

ferry_status fy_tm_init(fy_tm *tm, const char *agent, const fy_tm_settings *s)
{
    memset(tm, 0, sizeof(*tm));
    snprintf(tm->agent, sizeof(tm->agent), "%s", agent);
    fy_tm_hostname(tm);
    tm->status_name = s->status_name;
    tm->wall_minus_mono_us = fy_wall_us() - fy_now_ns() / 1000u;
    tm->mem_type_name = s->mem_type_name;
    ferry_status rc = fy_tm_config_resolve(s, &tm->cfg);
    if (rc == FERRY_OK && tm->cfg.ring)
        rc = fy_ring_create(tm->cfg.dir, agent, tm->cfg.ring_slots, &tm->ring);
    if (rc == FERRY_OK && tm->cfg.prometheus)
        rc = fy_prom_attach(tm);
    if (rc != FERRY_OK)
        fy_tm_fini(tm);
    return rc;
}

void fy_tm_fini(fy_tm *tm)
{
    if (tm->prom)
        fy_prom_detach(tm);
    fy_ring_destroy(tm->ring);
    tm->ring = NULL;
}

void fy_tm_backend_add(fy_tm *tm, uint32_t idx, const char *name)
{
    if (idx >= FY_TM_BACKENDS)
        return;
    snprintf(tm->be[idx].name, sizeof(tm->be[idx].name), "%s", name);
    tm->cfg.cap_backend[idx] = fy_tm_cap_of(tm->cfg.cap_spec, name);
    atomic_store_explicit(&tm->num_backends, idx + 1, memory_order_release);
}

/* ---- counters and histograms ---- */

#define FY_ADD(counter, v) atomic_fetch_add_explicit(&(counter), (v), memory_order_relaxed)

static void fy_tm_observe(const fy_tm_config *cfg, fy_tm_hist *h, uint64_t us)
{
    uint32_t i = 0;
    while (i < cfg->num_bounds && us > cfg->bounds_us[i])
        i++;
    FY_ADD(h->counts[i], 1); /* the count is their sum: one atomic less per observation */
    FY_ADD(h->sum, us);
}

void fy_tm_count_post(fy_tm *tm, uint32_t be, bool write, uint64_t bytes, bool notif)
{
    fy_tm_backend *b = &tm->be[be];
    FY_ADD(*(write ? &b->tx_requests : &b->rx_requests), 1);
    FY_ADD(*(write ? &b->tx_bytes : &b->rx_bytes), bytes);
    if (notif)
        FY_ADD(b->notifs_sent, 1);
}

void fy_tm_traffic(fy_tm *tm, uint64_t *tx_bytes, uint64_t *rx_bytes, uint64_t *tx_requests,
                   uint64_t *rx_requests)
{
    *tx_bytes = *rx_bytes = *tx_requests = *rx_requests = 0;
    for (uint32_t i = 0; i < FY_TM_BACKENDS; i++) {
        const fy_tm_backend *b = &tm->be[i];
        *tx_bytes += atomic_load_explicit(&b->tx_bytes, memory_order_relaxed);
        *rx_bytes += atomic_load_explicit(&b->rx_bytes, memory_order_relaxed);
        *tx_requests += atomic_load_explicit(&b->tx_requests, memory_order_relaxed);
        *rx_requests += atomic_load_explicit(&b->rx_requests, memory_order_relaxed);
    }
}

void fy_tm_xfer_post(fy_tm *tm, uint32_t be, bool write, uint64_t bytes, uint64_t post_us,
                     uint64_t now_ns)
{
    fy_tm_backend *b = &tm->be[be];
    fy_tm_observe(&tm->cfg, &b->post_time, post_us);
    if (tm->ring) /* the event is built only for a ring */
        fy_ring_put(tm->ring, &(fy_ring_event){.type = FERRY_RING_XFER_POST,
                                               .op = write,
                                               .value = bytes,
                                               .duration_us = post_us,
                                               .time_us = fy_tm_wall_us(tm, now_ns),
                                               .backend = b->name});
}

void fy_tm_xfer_done(fy_tm *tm, uint32_t be, bool write, uint64_t bytes, uint64_t xfer_us,
                     ferry_status rc, uint64_t now_ns)
{
    fy_tm_backend *b = &tm->be[be];
    if (rc == FERRY_OK)
        fy_tm_observe(&tm->cfg, &b->xfer_time, xfer_us);
    else
        fy_tm_xfer_failed(tm, be, rc);
    if (tm->ring) /* the event is built only for a ring */
        fy_ring_put(tm->ring, &(fy_ring_event){.type = FERRY_RING_XFER_DONE,
                                               .op = write,
                                               .status = rc,
                                               .value = bytes,
                                               .duration_us = xfer_us,
                                               .time_us = fy_tm_wall_us(tm, now_ns),
                                               .backend = b->name});
}

void fy_tm_xfer_failed(fy_tm *tm, uint32_t be, ferry_status rc)
{
    if (rc < 0 && (uint32_t)-rc < FY_TM_STATUSES)
        FY_ADD(tm->be[be].errors[-rc], 1);
}

void fy_tm_notif(fy_tm *tm, uint32_t be, int what)
{
    fy_tm_backend *b = &tm->be[be < FY_TM_BACKENDS ? be : 0];
    atomic_uint_fast64_t *c[] = {&b->notifs_sent, &b->notifs_received, &b->notifs_dropped};
    static const int type[] = {FERRY_RING_NOTIF_SENT, FERRY_RING_NOTIF_RECEIVED,
                               FERRY_RING_NOTIF_DROPPED};
    FY_ADD(*c[what], 1);
    if (tm->ring) /* the event is built only for a ring */
        fy_ring_put(tm->ring, &(fy_ring_event){.type = type[what], .backend = b->name});
}

/* ---- the ledger ---- */

bool fy_tm_pinned(ferry_mem_type type)
{
    return type == FERRY_MEM_DRAM || type == FERRY_MEM_VRAM;
}

ferry_status fy_tm_ledger_check(fy_tm *tm, uint32_t be, ferry_mem_type type, uint64_t len)
{
    uint64_t cap = tm->cfg.cap_backend[be];
    if (!cap || !fy_tm_pinned(type))
        return FERRY_OK;
    uint64_t now = atomic_load(&tm->be[be].ledger[FERRY_MEM_DRAM].bytes) +
                   atomic_load(&tm->be[be].ledger[FERRY_MEM_VRAM].bytes);
    if (now + len <= cap)
        return FERRY_OK;
    FY_TM_LOG("register: %llu more bytes would pass backend %s's registration cap of %llu bytes "
              "(%llu registered; FERRY_MAX_REGISTERED_BYTES or the agent's reg_cap_backends)",
              (unsigned long long)len, tm->be[be].name, (unsigned long long)cap,
              (unsigned long long)now);
    return FERRY_ERR_NO_RESOURCES;
}

static void fy_tm_ledger_move(fy_tm *tm, uint32_t be, ferry_mem_type type, uint64_t dev,
                              int64_t sign, uint64_t len)
{
    fy_tm_ledger *l[2] = {&tm->be[be].ledger[type], NULL};
    if (type == FERRY_MEM_VRAM)
        l[1] = &tm->be[be].vram_dev[dev < FY_TM_GPUS ? dev : FY_TM_GPUS - 1];
    for (int i = 0; i < 2 && l[i]; i++) {
        FY_ADD(l[i]->bytes, (uint64_t)sign * len);
        FY_ADD(l[i]->regions, (uint64_t)sign);
        FY_ADD(*(sign > 0 ? &l[i]->registered_total : &l[i]->deregistered_total), len);
    }
    if (tm->ring) /* the event is built only for a ring */
        fy_ring_put(tm->ring, &(fy_ring_event){.type = sign > 0 ? FERRY_RING_MEM_REGISTER
                                                                : FERRY_RING_MEM_DEREGISTER,
                                               .op = (uint32_t)type,
                                               .value = len,
                                               .backend = tm->be[be].name});
}

void fy_tm_ledger_add(fy_tm *tm, uint32_t be, ferry_mem_type type, uint64_t dev, uint64_t len)
{
    fy_tm_ledger_move(tm, be, type, dev, 1, len);
}

void fy_tm_ledger_sub(fy_tm *tm, uint32_t be, ferry_mem_type type, uint64_t dev, uint64_t len)
{
    fy_tm_ledger_move(tm, be, type, dev, -1, len);
}

void fy_tm_agent_ledger(fy_tm *tm, ferry_mem_type type, int64_t regions, int64_t bytes)
{
    fy_tm_ledger *l = &tm->agent_ledger[type];
    FY_ADD(l->bytes, (uint64_t)bytes);
    FY_ADD(l->regions, (uint64_t)regions);
    FY_ADD(*(bytes > 0 ? &l->registered_total : &l->deregistered_total),
           (uint64_t)(bytes > 0 ? bytes : -bytes));
}
