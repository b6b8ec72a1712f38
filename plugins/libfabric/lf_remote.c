/* SPDX-License-Identifier: Apache-2.0 */
/* LIBFABRIC peers. Connection info: magic u32 | ident_len u16 |
 * addr_len u16 | who the agent is (plugins/common/fyp_ident.h) | rail 0's
 * endpoint address (fi_getname) | then for each further rail: addr_len
 * u16 | its address. The addresses go into the rails' address vectors
 * (rail i of ours to rail i of the peer's, as many rails as both have);
 * the identity tells, for a peer of this host and pid namespace, whether
 * its process still runs: a peer killed while RMA to it is out is then
 * reported at once, where a provider would wait for its own timeouts
 * (shm waits forever for a dead peer to take its commands). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/le.h"
#include "lf_internal.h"

#define FY_LF_CONN_MAGIC 0x314e434cu /* "LCN1" */
#define FY_LF_CONN_HDR   8u
#define FY_LF_CHECK_NS   50000000u

static size_t fy_lf_conn_len(const fy_lf *be, size_t id_len)
{
    size_t len = FY_LF_CONN_HDR + id_len + be->rails[0].addr_len;
    for (uint32_t i = 1; i < be->nrails; i++)
        len += 2 + be->rails[i].addr_len;
    return len;
}

/* The further rails' addresses, each after its length. */
static void fy_lf_conn_put_rails(const fy_lf *be, uint8_t *p)
{
    for (uint32_t i = 1; i < be->nrails; i++) {
        fy_le_put(p, be->rails[i].addr_len, 2);
        memcpy(p + 2, be->rails[i].addr, be->rails[i].addr_len);
        p += 2 + be->rails[i].addr_len;
    }
}

ferry_status fy_lf_conn_info(void *priv, void **info, size_t *len)
{
    fy_lf *be = priv;
    const fy_lf_rail *r0 = &be->rails[0];
    uint8_t id[FYP_IDENT_FIXED + FYP_SOCK_MAX];
    size_t id_len = fyp_ident_encode("LFID", &be->self, id, sizeof(id));
    uint8_t *p = malloc(fy_lf_conn_len(be, id_len));
    if (!p || !id_len) {
        free(p);
        return FERRY_ERR_NO_MEMORY;
    }
    fy_le_put(p, FY_LF_CONN_MAGIC, 4);
    fy_le_put(p + 4, id_len, 2);
    fy_le_put(p + 6, r0->addr_len, 2);
    memcpy(p + FY_LF_CONN_HDR, id, id_len);
    memcpy(p + FY_LF_CONN_HDR + id_len, r0->addr, r0->addr_len);
    fy_lf_conn_put_rails(be, p + FY_LF_CONN_HDR + id_len + r0->addr_len);
    *info = p;
    *len = fy_lf_conn_len(be, id_len);
    return FERRY_OK;
}

/* One address of a peer's rail (hostile length), kept when we have that
 * rail too. */
static bool fy_lf_conn_addr(const fy_lf *be, const uint8_t *p, size_t len, fy_lf_remote *r,
                            uint32_t rail)
{
    if (!len || len > FY_LF_ADDR_MAX || rail >= FY_LF_RAILS_MAX)
        return false;
    if (rail < be->nrails) {
        memcpy(r->rails[rail].addr, p, len);
        r->rails[rail].addr_len = len;
        r->nrails = rail + 1;
    }
    return true;
}

/* The further rails: u16 length, address, to the end of the bytes. */
static bool fy_lf_conn_rails(const fy_lf *be, const uint8_t *p, size_t left, fy_lf_remote *r)
{
    for (uint32_t rail = 1; left; rail++) {
        size_t len = left >= 2 ? (size_t)fy_le_get(p, 2) : 0;
        if (left < 2 || len > left - 2 || !fy_lf_conn_addr(be, p + 2, len, r, rail))
            return false;
        p += 2 + len, left -= 2 + len;
    }
    return true;
}

/* Parses a peer's connection info into r (hostile bytes). */
static ferry_status fy_lf_conn_parse(fy_lf *be, const void *info, size_t len, fy_lf_remote *r)
{
    const uint8_t *p = info;
    if (!p || len < FY_LF_CONN_HDR || fy_le_get(p, 4) != FY_LF_CONN_MAGIC)
        return FERRY_ERR_BAD_METADATA;
    size_t id_len = (size_t)fy_le_get(p + 4, 2), addr_len = (size_t)fy_le_get(p + 6, 2);
    if (id_len + addr_len > len - FY_LF_CONN_HDR)
        return FERRY_ERR_BAD_METADATA;
    const uint8_t *rails = p + FY_LF_CONN_HDR + id_len + addr_len;
    if (!fy_lf_conn_addr(be, p + FY_LF_CONN_HDR + id_len, addr_len, r, 0) ||
        !fy_lf_conn_rails(be, rails, len - FY_LF_CONN_HDR - id_len - addr_len, r))
        return FERRY_ERR_BAD_METADATA;
    if (fyp_ident_decode("LFID", p + FY_LF_CONN_HDR, id_len, &r->id) != FERRY_OK)
        return FERRY_ERR_BAD_METADATA;
    r->pid_known = !memcmp(r->id.boot_id, be->self.boot_id, 16) && r->id.pidns == be->self.pidns &&
                   r->id.starttime;
    return FERRY_OK;
}

static ferry_status fy_lf_av_insert(fy_lf_remote *r, uint32_t rail)
{
    fy_lf *be = r->be;
    fy_lf_peer_rail *pr = &r->rails[rail];
    int n = fi_av_insert(be->rails[rail].av, pr->addr, 1, &pr->fi_addr, 0, NULL);
    if (n == 1)
        return FERRY_OK;
    pr->fi_addr = FI_ADDR_NOTAVAIL;
    fy_lf_log(be, FERRY_LOG_ERROR, "fi_av_insert of %s's address on rail %u: %s", r->name, rail,
              n < 0 ? fi_strerror(-n) : "refused by the provider");
    return FERRY_ERR_BACKEND;
}

static void fy_lf_av_remove(fy_lf_remote *r, uint32_t rail)
{
    if (r->rails[rail].fi_addr != FI_ADDR_NOTAVAIL)
        fi_av_remove(r->be->rails[rail].av, &r->rails[rail].fi_addr, 1, 0);
    r->rails[rail].fi_addr = FI_ADDR_NOTAVAIL;
}

static ferry_status fy_lf_av_insert_all(fy_lf_remote *r)
{
    ferry_status rc = FERRY_OK;
    for (uint32_t i = 0; i < r->nrails && rc == FERRY_OK; i++)
        rc = fy_lf_av_insert(r, i);
    return rc;
}

static void fy_lf_av_remove_all(fy_lf_remote *r)
{
    for (uint32_t i = 0; i < r->nrails; i++)
        fy_lf_av_remove(r, i);
}

static fy_lf_remote *fy_lf_remote_new(fy_lf *be, const char *name)
{
    fy_lf_remote *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->be = be;
    snprintf(r->name, sizeof(r->name), "%s", name);
    for (uint32_t i = 0; i < FY_LF_RAILS_MAX; i++)
        r->rails[i].fi_addr = FI_ADDR_NOTAVAIL;
    return r;
}

ferry_status fy_lf_remote_load(void *priv, const char *name, uint64_t uid, const void *info,
                               size_t len, void **remote)
{
    fy_lf *be = priv;
    fy_lf_remote *r = fy_lf_remote_new(be, name);
    if (!r)
        return FERRY_ERR_NO_MEMORY;
    ferry_status rc = fy_lf_conn_parse(be, info, len, r);
    if (rc == FERRY_OK && r->id.uid != uid)
        rc = FERRY_ERR_BAD_METADATA; /* another instance's info under this name */
    if (rc != FERRY_OK)
        fy_lf_log(be, FERRY_LOG_ERROR, "connection info of %s: malformed", name);
    if (rc == FERRY_OK)
        rc = fy_lf_av_insert_all(r);
    if (rc != FERRY_OK) {
        fy_lf_av_remove_all(r);
        free(r);
        return rc;
    }
    if (r->nrails < be->nrails)
        fy_lf_log(be, FERRY_LOG_INFO, "%s has %u rail(s) of our %u: striping over %u", name,
                  r->nrails, be->nrails, r->nrails);
    *remote = r;
    return FERRY_OK;
}

void fy_lf_remote_unload(void *priv, void *remote)
{
    (void)priv;
    fy_lf_av_remove_all(remote);
    free(remote);
}

void fy_lf_remote_reset(fy_lf_remote *r)
{
    r->reset_ns = fy_lf_now_ns();
    fy_lf_av_remove_all(r);
    if (fy_lf_av_insert_all(r) != FERRY_OK)
        r->dead = true;
}

/* The same instance's metadata again: a peer whose connection was given
 * up (it froze, then resumed) gets a fresh one; a healthy one is left. */
ferry_status fy_lf_remote_refresh(void *priv, void *remote, const void *info, size_t len)
{
    fy_lf *be = priv;
    fy_lf_remote *r = remote, *fresh = fy_lf_remote_new(be, r->name);
    if (!fresh)
        return FERRY_ERR_NO_MEMORY;
    ferry_status rc = fy_lf_conn_parse(be, info, len, fresh);
    bool same = rc == FERRY_OK && fresh->id.uid == r->id.uid && fresh->nrails == r->nrails;
    free(fresh);
    if (!same)
        return FERRY_ERR_BAD_METADATA;
    if (!r->dead)
        return FERRY_OK;
    r->dead = false;
    fy_lf_remote_reset(r);
    return r->dead ? FERRY_ERR_BACKEND : FERRY_OK;
}

bool fy_lf_remote_alive(fy_lf_remote *r)
{
    if (r->dead || !r->pid_known)
        return !r->dead;
    uint64_t now = fy_lf_now_ns();
    if (now < r->next_check_ns)
        return true;
    r->next_check_ns = now + FY_LF_CHECK_NS;
    r->dead = !fyp_pid_alive(r->id.pid, r->id.starttime);
    return !r->dead;
}
