/* SPDX-License-Identifier: Apache-2.0 */
/* UCX backend: transfers as active messages, the initiator's side.
 *
 * Why: where UCX emulates RMA (TCP, and shared memory to memory UCX did
 * not map itself), the target's CPU copies every put and get, and UCX's
 * emulation takes the address from the peer without checking it against
 * anything: a peer could read or write any byte of the process. So unless
 * RMA is asked for (param rma=on, see ucx.c), the context has no RMA at
 * all (UCX then installs no emulation), and every transfer goes as active
 * messages that the target checks (ucx_amt.c): each range must lie in DRAM
 * registered there, or nothing of the message is copied.
 *
 * A transfer's descriptors are cut into pieces and grouped into parts of
 * at most 4096 pieces and am_write_max (WRITE) or am_read_max (READ) bytes
 * of data. A WRITE part is one message with its pieces' data (and the
 * notification, when the WRITE is one part), answered by a 16-byte
 * acknowledgement; a READ part is one message asking for its pieces,
 * answered with their bytes, which land in our memory as they arrive (by
 * rendezvous straight into the pieces). Parts go round-robin over the
 * workers' endpoints, all in flight at once. The request completes when
 * every part is answered OK: only then is every byte known to have
 * arrived. Each part sent and each answer is counted in ucx_order.c,
 * which decides where the notification goes: inside the message of a
 * one-part WRITE, else after the last answer.
 *
 * With rma=on, WRITEs of up to am_write_max bytes still go this way to
 * peers reached only over TCP (am_writes=auto): two messages a WRITE where
 * a put costs four with its flush.
 *
 * Ids: each part in flight waits in u->amw_waiting under a fresh random id
 * (getrandom), so a third party cannot guess one and answer in the
 * target's place; an answer for an id nobody waits for (released
 * meanwhile, or forged) is dropped, and so is one of the wrong kind or
 * length. Release waits for every answer (bounded): until then the
 * target's memory (WRITE) or ours (READ) may still change. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "ucx_amw_wire.h"
#include "ucx_internal.h"

/* ---- the choice ---- */

static bool fy_ucx_amw_dram(const ferry_plugin_xfer *px)
{
    return px->local_type == FERRY_MEM_DRAM && px->remote_type == FERRY_MEM_DRAM;
}

/* Whether x goes as active messages (*fits); NOT_SUPPORTED when it must
 * (we or the target serve no RMA) and cannot (not DRAM on both sides). */
ferry_status fy_ucx_amw_check(const fy_ucx_xfer *x, bool *fits)
{
    const ferry_plugin_xfer *px = x->px;
    const fy_ucx *u = x->u;
    bool dram = fy_ucx_amw_dram(px) && strlen(u->host->agent_name) <= FY_AMW_MAX_FROM;
    if (!u->rma || !x->remote->rma) {
        if (!dram)
            UCX_LOG(u, FERRY_LOG_ERROR,
                    "%s with %s: only DRAM moves as checked active messages (param rma=off here "
                    "or at the peer)",
                    px->op == FERRY_OP_WRITE ? "WRITE" : "READ", x->remote->name);
        *fits = dram;
        return dram ? FERRY_OK : FERRY_ERR_NOT_SUPPORTED;
    }
    *fits = x->remote->amw && px->op == FERRY_OP_WRITE && dram && px->total_bytes &&
            px->total_bytes <= u->amw_max;
    return FERRY_OK;
}

/* ---- prep: pieces and parts ---- */

/* A piece: one descriptor, or a slice of one larger than a part. */
typedef struct fy_ucx_piece {
    uint64_t laddr, raddr;
    uint32_t len;
} fy_ucx_piece;

/* x's non-empty descriptors cut into slices of at most max bytes, into out
 * (NULL: only counted); returns how many. */
static size_t fy_ucx_amw_pieces(const ferry_plugin_xfer *px, uint64_t max, fy_ucx_piece *out)
{
    size_t n = 0;
    for (size_t i = 0; i < px->count; i++) {
        const ferry_plugin_seg *l = &px->local[i], *r = &px->remote[i];
        for (uint64_t off = 0; off < l->len; off += max, n++) {
            uint64_t len = l->len - off < max ? l->len - off : max;
            if (out)
                out[n] = (fy_ucx_piece){l->addr + off, r->addr + off, (uint32_t)len};
        }
    }
    return n;
}

/* Groups consecutive pieces into parts of at most FY_AMW_MAX_SEGS pieces
 * and max bytes; fills parts' pieces and bytes when parts is not NULL.
 * Returns how many parts. */
static unsigned fy_ucx_amw_group(const fy_ucx_piece *pc, size_t n, uint64_t max,
                                 fy_ucx_amw_part *parts)
{
    unsigned k = 0;
    for (size_t i = 0; i < n; k++) {
        uint32_t count = 0;
        uint64_t bytes = 0;
        for (; i < n && count < FY_AMW_MAX_SEGS && (!count || bytes + pc[i].len <= max); i++) {
            bytes += pc[i].len;
            count++;
        }
        if (parts) {
            parts[k].pieces = count;
            parts[k].bytes = bytes;
        }
    }
    return k;
}

static bool fy_ucx_amw_read(const fy_ucx_xfer *x)
{
    return x->px->op == FERRY_OP_READ;
}

/* A part's head (room for the fixed part, its segment table, written now,
 * the name and no notification), its iov (the head, then its pieces), what
 * is sent (a WRITE's data too) and where a READ's answer goes. */
static bool fy_ucx_amw_part_init(fy_ucx_xfer *x, fy_ucx_amw_part *p, ucp_dt_iov_t *iov,
                                 const fy_ucx_piece *pc)
{
    p->x = x;
    p->iov = iov;
    p->head_cap = fy_amw_prefix_len(p->pieces, FY_AMW_MAX_FROM, 0);
    p->head = malloc(p->head_cap);
    if (!p->head)
        return false;
    for (uint32_t i = 0; i < p->pieces; i++) {
        fy_amw_prefix_seg(p->head, i, pc[i].raddr, pc[i].len);
        iov[1 + i] = (ucp_dt_iov_t){.buffer = (void *)(uintptr_t)pc[i].laddr, .length = pc[i].len};
    }
    bool read = fy_ucx_amw_read(x);
    fy_ucx_pack_init(&p->pack, iov, read ? 1 : 1 + (size_t)p->pieces); /* the head per post */
    fy_ucx_pack_init(&p->dest, iov + 1, read ? p->pieces : 0);
    return true;
}

static ferry_status fy_ucx_amw_build(fy_ucx_xfer *x, fy_ucx_amw *a, const fy_ucx_piece *pc,
                                     size_t n, uint64_t max)
{
    a->num_parts = fy_ucx_amw_group(pc, n, max, NULL);
    a->parts = calloc(a->num_parts, sizeof(*a->parts));
    a->iov = calloc(n + a->num_parts, sizeof(*a->iov));
    if (!a->parts || !a->iov)
        return FERRY_ERR_NO_MEMORY;
    (void)fy_ucx_amw_group(pc, n, max, a->parts);
    size_t piece = 0, slot = 0;
    for (unsigned k = 0; k < a->num_parts; k++) {
        fy_ucx_amw_part *p = &a->parts[k];
        p->worker = k % x->u->num_workers;
        if (!fy_ucx_amw_part_init(x, p, a->iov + slot, pc + piece))
            return FERRY_ERR_NO_MEMORY;
        piece += p->pieces;
        slot += 1 + (size_t)p->pieces;
    }
    return FERRY_OK;
}

ferry_status fy_ucx_amw_prep(fy_ucx_xfer *x)
{
    uint64_t max = fy_ucx_amw_read(x) ? x->u->amr_max : x->u->amw_max;
    size_t n = fy_ucx_amw_pieces(x->px, max, NULL);
    fy_ucx_piece *pc = malloc((n ? n : 1) * sizeof(*pc));
    x->amw = calloc(1, sizeof(*x->amw));
    ferry_status rc = pc && x->amw ? FERRY_OK : FERRY_ERR_NO_MEMORY;
    if (rc == FERRY_OK) {
        (void)fy_ucx_amw_pieces(x->px, max, pc);
        rc = fy_ucx_amw_build(x, x->amw, pc, n, max);
    }
    free(pc);
    if (rc != FERRY_OK)
        fy_ucx_amw_free(x);
    return rc;
}

void fy_ucx_amw_free(fy_ucx_xfer *x)
{
    fy_ucx_amw *a = x->amw;
    if (!a)
        return;
    for (unsigned k = 0; a->parts && k < a->num_parts; k++)
        free(a->parts[k].head);
    free(a->parts);
    free(a->iov);
    free(a);
    x->amw = NULL;
}

/* ---- ids and the parts awaiting answers ---- */

/* A fresh random id (never 0), drawn from the kernel FY_UCX_IDS at a time.
 * Falls back to a counter mixed with the last draw only if getrandom fails. */
static uint64_t fy_ucx_amw_new_id(fy_ucx *u)
{
    if (!u->ids_left) {
        if (getrandom(u->ids, sizeof(u->ids), 0) != (ssize_t)sizeof(u->ids))
            for (unsigned i = 0; i < FY_UCX_IDS; i++)
                u->ids[i] = u->ids[i] * 6364136223846793005ull + 1442695040888963407ull + i;
        u->ids_left = FY_UCX_IDS;
    }
    uint64_t id = u->ids[--u->ids_left];
    return id ? id : 1;
}

static fy_ucx_amw_part **fy_ucx_amw_bucket(fy_ucx *u, uint64_t id)
{
    return &u->amw_waiting[id % FY_UCX_AMW_BUCKETS];
}

static void fy_ucx_amw_wait(fy_ucx *u, fy_ucx_amw_part *p)
{
    fy_ucx_amw_part **b = fy_ucx_amw_bucket(u, p->id);
    p->next_waiting = *b;
    p->waiting = true;
    *b = p;
}

/* Unlinks and returns the part of that kind waiting under id, or NULL. */
static fy_ucx_amw_part *fy_ucx_amw_take(fy_ucx *u, uint64_t id, bool read)
{
    for (fy_ucx_amw_part **link = fy_ucx_amw_bucket(u, id); *link; link = &(*link)->next_waiting) {
        fy_ucx_amw_part *p = *link;
        if (p->id == id && fy_ucx_amw_read(p->x) == read) {
            *link = p->next_waiting;
            p->waiting = false;
            return p;
        }
    }
    return NULL;
}

/* x no longer waits for answers (released, or failed). */
void fy_ucx_amw_forget(fy_ucx_xfer *x)
{
    for (unsigned k = 0; x->amw && k < x->amw->num_parts; k++)
        if (x->amw->parts[k].waiting)
            (void)fy_ucx_amw_take(x->u, x->amw->parts[k].id, fy_ucx_amw_read(x));
}

/* ---- post ---- */

static const char *fy_ucx_amw_what(const fy_ucx_xfer *x)
{
    return fy_ucx_amw_read(x) ? "read request" : "write message";
}

static void fy_ucx_amw_sent(void *req, ucs_status_t st, void *arg)
{
    fy_ucx_amw_part *p = arg;
    fy_ucx_xfer *x = p->x;
    if (!fy_ucx_req_done(x, req, &p->req))
        return;
    if (st != UCS_OK) {
        fy_ucx_amw_forget(x);
        fy_ucx_fail(x, st, fy_ucx_amw_what(x));
    }
}

/* Whether x's data is one WRITE message, which the target lands whole
 * before it delivers what came with it (ucx_amt.c): then its
 * notification may ride in it. */
bool fy_ucx_amw_one_message(const fy_ucx_xfer *x)
{
    return x->amw->num_parts == 1 && !fy_ucx_amw_read(x);
}

/* The fixed part and the name of this post, and the notification when
 * ucx_order.c lets it ride. */
static bool fy_ucx_amw_head(fy_ucx_xfer *x, fy_ucx_amw_part *p)
{
    const char *me = x->u->host->agent_name;
    bool read = fy_ucx_amw_read(x);
    size_t notif_len;
    const void *notif = fy_ucx_order_riding(x, &notif_len);
    size_t from_len = strlen(me), len = fy_amw_prefix_len(p->pieces, from_len, notif_len);
    if (len > p->head_cap) {
        uint8_t *h = realloc(p->head, len); /* keeps the segment table */
        if (!h)
            return false;
        p->head = h;
        p->head_cap = len;
    }
    fy_amw_prefix_begin(p->head, read, p->id, p->pieces, me, from_len, notif, notif_len);
    p->pack.len += len - p->iov[0].length;
    p->iov[0] = (ucp_dt_iov_t){.buffer = p->head, .length = len};
    return true;
}

/* Sends one part; false when that failed (x failed with it). */
static bool fy_ucx_amw_send(fy_ucx_xfer *x, fy_ucx_amw_part *p)
{
    p->id = fy_ucx_amw_new_id(x->u);
    if (!fy_ucx_amw_head(x, p)) {
        fy_ucx_fail(x, UCS_ERR_NO_MEMORY, fy_ucx_amw_what(x));
        return false;
    }
    ucp_request_param_t prm = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS | UCP_OP_ATTR_FIELD_DATATYPE |
                        UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
        /* eager: the target handles the message whole in its handler;
         * reply: it answers on the endpoint the message came from */
        .flags = UCP_AM_SEND_FLAG_EAGER | UCP_AM_SEND_FLAG_REPLY,
        .datatype = x->u->pack_dt,
        .cb.send = fy_ucx_amw_sent,
        .user_data = p,
    };
    unsigned id = fy_ucx_amw_read(x) ? FY_UCX_AM_READ : FY_UCX_AM_WRITE;
    fy_ucx_amw_wait(x->u, p);
    fy_ucx_order_sending(x);
    void *req = ucp_am_send_nbx(x->remote->ep[p->worker], id, NULL, 0, &p->pack, 1, &prm);
    if (UCS_PTR_IS_ERR(req)) {
        fy_ucx_amw_forget(x);
        fy_ucx_fail(x, UCS_PTR_STATUS(req), fy_ucx_amw_what(x));
        return false;
    }
    p->req = req; /* NULL: sent already */
    return true;
}

/* Sends every part; the answers complete the request. */
void fy_ucx_amw_post(fy_ucx_xfer *x)
{
    for (unsigned k = 0; k < x->amw->num_parts; k++)
        if (!fy_ucx_amw_send(x, &x->amw->parts[k]))
            return;
}

/* ---- answers ---- */

/* A part answered with an error: the request fails (the first error stays). */
static void fy_ucx_amw_part_refused(fy_ucx_xfer *x, int32_t status)
{
    if (status == FERRY_ERR_NOT_FOUND)
        fy_ucx_order_refused(x, FERRY_ERR_NOT_FOUND, fy_ucx_amw_what(x),
                             "the target has no registered DRAM there");
    else
        fy_ucx_order_refused(x, FERRY_ERR_BACKEND, fy_ucx_amw_what(x),
                             "the target refused it as malformed");
}

/* Whether an answer came over the endpoint the part went out on: UCX
 * names it when the target answers with the reply flag, as ours does. */
static bool fy_ucx_amw_from_target(const fy_ucx_amw_part *p, const ucp_am_recv_param_t *param)
{
    return !(param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP) ||
           param->reply_ep == p->x->remote->ep[p->worker];
}

ucs_status_t fy_ucx_amw_ack_recv(void *arg, const void *header, size_t header_len, void *data,
                                 size_t len, const ucp_am_recv_param_t *param)
{
    fy_ucx *u = ((fy_ucx_worker *)arg)->u;
    uint64_t id;
    int32_t status;
    (void)header, (void)header_len;
    if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV ||
        !fy_amw_ack_parse(data, len, &id, &status)) {
        UCX_LOG(u, FERRY_LOG_WARN, "dropped a malformed answer to a write (%zu bytes)", len);
        return UCS_OK;
    }
    fy_ucx_amw_part *p = fy_ucx_amw_take(u, id, false);
    if (!p || !fy_ucx_amw_from_target(p, param)) {
        if (p)
            fy_ucx_amw_wait(u, p); /* not its target's: the real answer may come */
        UCX_LOG(u, FERRY_LOG_DEBUG, "dropped an answer to write %#llx: nobody waits for it",
                (unsigned long long)id);
        return UCS_OK;
    }
    if (status == FERRY_OK)
        fy_ucx_order_landed(p->x, UCS_OK, "write answer");
    else
        fy_ucx_amw_part_refused(p->x, status);
    return UCS_OK;
}

/* The answer to a READ part arrived whole in our pieces (rendezvous). */
static void fy_ucx_amr_received(void *req, ucs_status_t st, size_t length, void *arg)
{
    fy_ucx_amw_part *p = arg;
    fy_ucx_xfer *x = p->x;
    (void)length;
    if (fy_ucx_req_done(x, req, &p->rreq))
        fy_ucx_order_landed(x, st, "read answer");
}

/* Takes the data of an answer for p: copied now (eager), or received
 * straight into p's pieces (rendezvous). */
static void fy_ucx_amr_take_data(fy_ucx_worker *w, fy_ucx_amw_part *p, void *data, size_t len,
                                 const ucp_am_recv_param_t *param)
{
    if (!(param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV)) {
        fy_ucx_order_observe(); /* the target's reads of its memory, before our copy */
        fy_ucx_pack_out(&p->dest, 0, data, len);
        fy_ucx_order_landed(p->x, UCS_OK, "read answer");
        return;
    }
    ucp_request_param_t rp = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
        .cb.recv_am = fy_ucx_amr_received,
        .user_data = p,
    };
    size_t count;
    void *buf = fy_ucx_pack_param(w->u, &p->dest, &rp, &count);
    void *req = ucp_am_recv_data_nbx(w->h, data, buf, count, &rp);
    if (UCS_PTR_IS_PTR(req))
        p->rreq = req;
    else
        fy_ucx_order_landed(p->x, UCS_PTR_STATUS(req), "read answer");
}

/* The part an answer to a READ is for, when it may take it: else NULL
 * (the answer is dropped, with a line saying why). */
static fy_ucx_amw_part *fy_ucx_amr_claim(fy_ucx *u, const void *header, size_t header_len,
                                         size_t len, const ucp_am_recv_param_t *param,
                                         int32_t *status)
{
    uint64_t id;
    if (!fy_amw_rdata_parse(header, header_len, &id, status)) {
        UCX_LOG(u, FERRY_LOG_WARN, "dropped a malformed answer to a read");
        return NULL;
    }
    fy_ucx_amw_part *p = fy_ucx_amw_take(u, id, true);
    if (p && fy_ucx_amw_from_target(p, param) && (*status != FERRY_OK || len == p->bytes))
        return p;
    if (p) {
        fy_ucx_amw_wait(u, p); /* not its target's, or not its size: the real one may come */
        UCX_LOG(u, FERRY_LOG_WARN,
                "dropped an answer to read %#llx: %zu bytes for %llu, or "
                "not from its target",
                (unsigned long long)id, len, (unsigned long long)p->bytes);
        return NULL;
    }
    UCX_LOG(u, FERRY_LOG_DEBUG, "dropped an answer to read %#llx: nobody waits for it",
            (unsigned long long)id);
    return NULL;
}

ucs_status_t fy_ucx_amr_data_recv(void *arg, const void *header, size_t header_len, void *data,
                                  size_t len, const ucp_am_recv_param_t *param)
{
    fy_ucx_worker *w = arg;
    int32_t status = FERRY_ERR_BACKEND;
    fy_ucx_amw_part *p = fy_ucx_amr_claim(w->u, header, header_len, len, param, &status);
    if (p && status == FERRY_OK) {
        fy_ucx_amr_take_data(w, p, data, len, param);
        return UCS_OK;
    }
    if (p)
        fy_ucx_amw_part_refused(p->x, status);
    if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV)
        ucp_am_data_release(w->h, data);
    return UCS_OK;
}
