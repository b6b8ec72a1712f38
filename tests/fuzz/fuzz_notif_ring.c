/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for what a peer of this host controls in its
 * notifications: the control datagrams of the channel's rings
 * (fyp_ctl_decode) and the bytes of a ring it shares with us
 * (fyp_ring_take), plugins/common/fyp_chan_ring.c and fyp_ring.c.
 *
 * Each input is used two ways:
 *  1. as a control datagram: whatever parses must re-encode to exactly the
 *     same bytes;
 *  2. as a ring: its first 8 bytes the head (where the receiver stands),
 *     the next 8 the published tail, both taken near each other so that
 *     records are found, and the rest the ring's bytes from the head on,
 *     wrapping at the end. Taking must deliver only whole records inside
 *     what was published, in no more than the ring's bytes, or say the
 *     ring is malformed.
 * Anything else aborts, so that the fuzzer reports it. tests/fuzz/
 * replay_main.c builds the same file without libFuzzer to replay the
 * corpus (tests/fuzz/corpus/notif_ring). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/le.h"
#include "fyp_chan_ring.h"
#include "fyp_ring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(bool cond)
{
    if (!cond)
        abort();
}

static void fuzz_control(const uint8_t *data, size_t size)
{
    int kind;
    uint64_t id;
    char name[FYP_NAME_MAX + 1];
    if (fyp_ctl_decode(data, size, &kind, &id, name) != FERRY_OK)
        return;
    uint8_t again[FYP_CTL_MAX];
    size_t n = fyp_ctl_encode(again, sizeof(again), kind, id, name[0] ? name : NULL);
    must(n == size && !memcmp(again, data, n));
}

typedef struct seen {
    size_t records, bytes;
} seen;

static void count(void *arg, const void *msg, size_t len)
{
    seen *s = arg;
    (void)msg;
    must(len <= FYP_RING_REC_MAX);
    s->records++;
    s->bytes += len;
}

static void fuzz_ring(const uint8_t *data, size_t size)
{
    if (size < 16)
        return;
    static uint8_t *mem, *buf;
    if (!mem) {
        mem = aligned_alloc(64, FYP_RING_DATA + FYP_RING_CAP);
        buf = malloc(FYP_RING_REC_MAX);
    }
    memset(mem, 0, FYP_RING_DATA + FYP_RING_CAP);
    fyp_ring r;
    fyp_ring_over(&r, mem);
    uint64_t head = fy_le_get(data, 8), delta = fy_le_get(data + 8, 8);
    /* Mostly a tail a little past the head; the full range now and then. */
    uint64_t tail = delta >> 63 ? delta : head + (delta % (2ull * FYP_RING_CAP));
    for (size_t i = 16; i < size; i++)
        r.data[(head + i - 16) & (FYP_RING_CAP - 1)] = data[i];
    atomic_store(&r.sh->head, head);
    atomic_store(&r.sh->tail, tail);
    r.pos = head;
    seen s = {0, 0};
    long n = fyp_ring_take(&r, fyp_ring_tail(&r), buf, (size_t)-1, count, &s);
    must(n < 0 || (size_t)n == s.records);
    must(r.pos - head <= tail - head && r.pos - head <= FYP_RING_CAP);
    must(s.bytes + 8 * s.records <= r.pos - head);
    must(atomic_load(&r.sh->head) == r.pos);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_control(data, size);
    fuzz_ring(data, size);
    return 0;
}
