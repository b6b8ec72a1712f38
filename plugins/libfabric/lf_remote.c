/* SPDX-License-Identifier: Apache-2.0 */
/* LIBFABRIC peers. Connection info: magic u32 | ident_len u16 |
 * addr_len u16 | who the agent is (plugins/common/fyp_ident.h) | its
 * endpoint's address (fi_getname). The address goes into the address
 * vector; the identity tells, for a peer of this host and pid namespace,
 * whether its process still runs: a peer killed while RMA to it is out
 * is then reported at once, where a provider would wait for its own
 * timeouts (shm waits forever for a dead peer to take its commands). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/le.h"
#include "lf_internal.h"

#define FY_LF_CONN_MAGIC 0x314e434cu /* "LCN1" */
#define FY_LF_CONN_HDR   8u
#define FY_LF_CHECK_NS   50000000u

ferry_status fy_lf_conn_info(void *priv, void **info, size_t *len)
{
    fy_lf *be = priv;
    uint8_t id[FYP_IDENT_FIXED + FYP_SOCK_MAX];
    size_t id_len = fyp_ident_encode("LFID", &be->self, id, sizeof(id));
    uint8_t *p = malloc(FY_LF_CONN_HDR + id_len + be->addr_len);
    if (!p || !id_len) {
        free(p);
        return FERRY_ERR_NO_MEMORY;
    }
    fy_le_put(p, FY_LF_CONN_MAGIC, 4);
    fy_le_put(p + 4, id_len, 2);
    fy_le_put(p + 6, be->addr_len, 2);
    memcpy(p + FY_LF_CONN_HDR, id, id_len);
    memcpy(p + FY_LF_CONN_HDR + id_len, be->addr, be->addr_len);
    *info = p;
    *len = FY_LF_CONN_HDR + id_len + be->addr_len;
    return FERRY_OK;
}

/* Parses a peer's connection info into r (hostile bytes). */
static ferry_status fy_lf_conn_parse(fy_lf *be, const void *info, size_t len, fy_lf_remote *r)
{
    const uint8_t *p = info;
    if (!p || len < FY_LF_CONN_HDR || fy_le_get(p, 4) != FY_LF_CONN_MAGIC)
        return FERRY_ERR_BAD_METADATA;
    size_t id_len = (size_t)fy_le_get(p + 4, 2), addr_len = (size_t)fy_le_get(p + 6, 2);
    if (id_len + addr_len != len - FY_LF_CONN_HDR || !addr_len || addr_len > FY_LF_ADDR_MAX)
        return FERRY_ERR_BAD_METADATA;
    if (fyp_ident_decode("LFID", p + FY_LF_CONN_HDR, id_len, &r->id) != FERRY_OK)
        return FERRY_ERR_BAD_METADATA;
    memcpy(r->addr, p + FY_LF_CONN_HDR + id_len, addr_len);
    r->addr_len = addr_len;
    r->pid_known = !memcmp(r->id.boot_id, be->self.boot_id, 16) && r->id.pidns == be->self.pidns &&
                   r->id.starttime;
    return FERRY_OK;
}

static ferry_status fy_lf_av_insert(fy_lf_remote *r)
{
    fy_lf *be = r->be;
    int n = fi_av_insert(be->av, r->addr, 1, &r->fi_addr, 0, NULL);
    if (n == 1)
        return FERRY_OK;
    fy_lf_log(be, FERRY_LOG_ERROR, "fi_av_insert of %s's address: %s", r->name,
              n < 0 ? fi_strerror(-n) : "refused by the provider");
    return FERRY_ERR_BACKEND;
}

ferry_status fy_lf_remote_load(void *priv, const char *name, uint64_t uid, const void *info,
                               size_t len, void **remote)
{
    fy_lf *be = priv;
    fy_lf_remote *r = calloc(1, sizeof(*r));
    if (!r)
        return FERRY_ERR_NO_MEMORY;
    r->be = be;
    snprintf(r->name, sizeof(r->name), "%s", name);
    ferry_status rc = fy_lf_conn_parse(be, info, len, r);
    if (rc == FERRY_OK && r->id.uid != uid)
        rc = FERRY_ERR_BAD_METADATA; /* another instance's info under this name */
    if (rc != FERRY_OK)
        fy_lf_log(be, FERRY_LOG_ERROR, "connection info of %s: malformed", name);
    if (rc == FERRY_OK)
        rc = fy_lf_av_insert(r);
    if (rc != FERRY_OK) {
        free(r);
        return rc;
    }
    *remote = r;
    return FERRY_OK;
}

void fy_lf_remote_unload(void *priv, void *remote)
{
    fy_lf *be = priv;
    fy_lf_remote *r = remote;
    fi_av_remove(be->av, &r->fi_addr, 1, 0);
    free(r);
}

void fy_lf_remote_reset(fy_lf_remote *r)
{
    fy_lf *be = r->be;
    r->reset_ns = fy_lf_now_ns();
    fi_av_remove(be->av, &r->fi_addr, 1, 0);
    if (fy_lf_av_insert(r) != FERRY_OK)
        r->dead = true;
}

/* The same instance's metadata again: a peer whose connection was given
 * up (it froze, then resumed) gets a fresh one; a healthy one is left. */
ferry_status fy_lf_remote_refresh(void *priv, void *remote, const void *info, size_t len)
{
    fy_lf *be = priv;
    fy_lf_remote *r = remote, fresh = {.be = be};
    ferry_status rc = fy_lf_conn_parse(be, info, len, &fresh);
    if (rc != FERRY_OK || fresh.id.uid != r->id.uid)
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
