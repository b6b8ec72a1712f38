/* SPDX-License-Identifier: Apache-2.0 */
/* UCX backend: the datatype of every active message with data (WRITEs,
 * answers to READs, notifications).
 *
 * A generic datatype over an fy_ucx_pack (a list of byte ranges), so that
 * UCX copies the bytes into its own buffers when it sends (bcopy) instead
 * of sending from ours (zcopy): UCX 1.13's TCP transport can complete a
 * zero-copy send twice when the peer dies with it in flight, and aborts
 * the process on its assertion (seen in CI: uct_iface.h "comp->count > 0",
 * kill -9 during a 64 MiB WRITE sent as 1 MiB messages). Received through
 * it (the answer to a READ arriving by rendezvous), UCX hands the bytes to
 * fy_ucx_pack_out, which scatters them over the ranges.
 *
 * On UCX 1.22 and newer (found at run time) the answer to a READ goes as
 * an iov datatype instead, from the target's checked ranges straight into
 * the reader's pieces (fy_ucx_pack_param): a rendezvous that UCX serves
 * with one kernel copy between the processes of one host (CMA), where the
 * generic datatype adds a copy on each side. The assertion above is UCX
 * 1.13's; ucx_loss and ucx_2proc kill peers during such READs on 1.22. */
#include <string.h>

#include "ucx_internal.h"

void fy_ucx_pack_init(fy_ucx_pack *pk, const ucp_dt_iov_t *iov, size_t num_iov)
{
    *pk = (fy_ucx_pack){.iov = iov, .num_iov = num_iov};
    for (size_t i = 0; i < num_iov; i++)
        pk->len += iov[i].length;
}

static void fy_ucx_pack_seek(fy_ucx_pack *pk, uint64_t at)
{
    pk->cur_iov = 0;
    pk->cur_off = 0;
    pk->cur_at = 0;
    while (pk->cur_iov < pk->num_iov && pk->cur_at + pk->iov[pk->cur_iov].length <= at)
        pk->cur_at += pk->iov[pk->cur_iov++].length;
    if (pk->cur_iov < pk->num_iov) {
        pk->cur_off = (size_t)(at - pk->cur_at);
        pk->cur_at = at;
    }
}

/* Copies up to max bytes between buf and the ranges from offset at on:
 * out of the ranges into buf, or (into_ranges) out of buf into them. */
static size_t fy_ucx_pack_copy(fy_ucx_pack *pk, uint64_t at, uint8_t *buf, size_t max,
                               bool into_ranges)
{
    if (at != pk->cur_at)
        fy_ucx_pack_seek(pk, at);
    size_t done = 0;
    while (done < max && pk->cur_iov < pk->num_iov) {
        const ucp_dt_iov_t *v = &pk->iov[pk->cur_iov];
        size_t n = v->length - pk->cur_off < max - done ? v->length - pk->cur_off : max - done;
        uint8_t *range = (uint8_t *)v->buffer + pk->cur_off;
        memcpy(into_ranges ? range : buf + done, into_ranges ? buf + done : range, n);
        done += n;
        pk->cur_off += n;
        if (pk->cur_off == v->length) {
            pk->cur_iov++;
            pk->cur_off = 0;
        }
    }
    pk->cur_at += done;
    return done;
}

/* Received bytes [at, at+len) of a message: into the ranges. Bytes beyond
 * them are dropped (the caller checked the length first). */
void fy_ucx_pack_out(fy_ucx_pack *pk, uint64_t at, const void *src, size_t len)
{
    (void)fy_ucx_pack_copy(pk, at, (uint8_t *)(uintptr_t)src, len, true);
}

static void *fy_ucx_pack_start(void *ctx, const void *buffer, size_t count)
{
    fy_ucx_pack *pk = (fy_ucx_pack *)(uintptr_t)buffer;
    (void)ctx, (void)count;
    fy_ucx_pack_seek(pk, 0);
    return pk;
}

static size_t fy_ucx_pack_size(void *state)
{
    return (size_t)((fy_ucx_pack *)state)->len;
}

static size_t fy_ucx_pack_some(void *state, size_t offset, void *dest, size_t max)
{
    size_t done = fy_ucx_pack_copy(state, offset, dest, max, false);
    fy_ucx_order_publish(); /* our reads, before the peer's answer */
    return done;
}

static void *fy_ucx_pack_start_unpack(void *ctx, void *buffer, size_t count)
{
    (void)ctx, (void)count;
    fy_ucx_pack_seek(buffer, 0);
    return buffer;
}

static ucs_status_t fy_ucx_pack_unpack(void *state, size_t offset, const void *src, size_t len)
{
    fy_ucx_pack *pk = state;
    if (offset > pk->len || len > pk->len - offset)
        return UCS_ERR_MESSAGE_TRUNCATED;
    fy_ucx_pack_out(pk, offset, src, len);
    return UCS_OK;
}

static void fy_ucx_pack_finish(void *state)
{
    (void)state;
}

ucs_status_t fy_ucx_pack_dt_init(fy_ucx *u)
{
    static const ucp_generic_dt_ops_t ops = {
        .start_pack = fy_ucx_pack_start,
        .start_unpack = fy_ucx_pack_start_unpack,
        .packed_size = fy_ucx_pack_size,
        .pack = fy_ucx_pack_some,
        .unpack = fy_ucx_pack_unpack,
        .finish = fy_ucx_pack_finish,
    };
    ucs_status_t st = ucp_dt_create_generic(&ops, u, &u->pack_dt);
    u->pack_dt_made = st == UCS_OK;
    return st;
}

/* After the workers are gone: no message uses the datatype any more. */
void fy_ucx_pack_dt_fini(fy_ucx *u)
{
    if (u->pack_dt_made)
        ucp_dt_destroy(u->pack_dt);
    u->pack_dt_made = false;
}

/* Whether data messages go from and into the ranges themselves (iov)
 * rather than through UCX's buffers: only on a UCX newer than the one
 * whose zero-copy sends could complete twice. */
void fy_ucx_pack_choose(fy_ucx *u)
{
    u->zcopy = fy_ucx_runs_at_least(u, 1, 22);
}

/* The datatype, buffer and count of a message over pk's ranges, for
 * ucp_am_send_nbx and ucp_am_recv_data_nbx: the ranges as an iov where
 * u->zcopy, else pk through the generic datatype. */
void *fy_ucx_pack_param(const fy_ucx *u, fy_ucx_pack *pk, ucp_request_param_t *p, size_t *count)
{
    p->op_attr_mask |= UCP_OP_ATTR_FIELD_DATATYPE;
    if (u->zcopy) {
        p->datatype = ucp_dt_make_iov();
        *count = pk->num_iov;
        return (void *)(uintptr_t)pk->iov;
    }
    p->datatype = u->pack_dt;
    *count = 1;
    return pk;
}
