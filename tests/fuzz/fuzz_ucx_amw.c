/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the bytes of the UCX backend's active-message
 * writes, read requests, their answers and peers' packed remote keys
 * (plugins/ucx/ucx_amw_wire.c), which arrive from peers.
 *
 * Each input is used three ways:
 *  1. parsed as it is, as a message, as an answer to a write or to a read
 *     and as a remote key: whatever parses must re-encode to exactly the
 *     same bytes, a write's segments must add up to the data that came,
 *     and a key's sizes must stay inside it;
 *  2. made nearly right (magic set, counts and lengths cut to what fits)
 *     and parsed at the exact length it then announces, because random
 *     bytes almost never get the length sum right and the checks behind
 *     it are what needs fuzzing; whether it parses must agree with an
 *     independent reading of the rules;
 *  3. the same cut one byte short and one byte long: never parses.
 * Anything else aborts, so that the fuzzer reports it. tests/fuzz/
 * replay_main.c builds the same file without libFuzzer to replay the
 * corpus (tests/fuzz/corpus/ucx_amw). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/le.h"
#include "ucx/ucx_amw_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(bool cond)
{
    if (!cond)
        abort();
}

/* A parsed message re-encoded: the same bytes, segment sum = data. */
static void check_message(const uint8_t *b, size_t n, const fy_amw_msg *m)
{
    size_t head = fy_amw_prefix_len(m->count, m->from_len, m->notif_len);
    uint8_t *copy = malloc(n ? n : 1);
    must(copy && head <= n && head + m->data_len == n);
    must(!m->read || (m->data_len == 0 && m->notif_len == 0 && m->read_len <= FY_AMW_MAX_READ));
    fy_amw_prefix_begin(copy, m->read, m->id, m->count, m->from, m->from_len, m->notif,
                        m->notif_len);
    uint64_t sum = 0;
    for (uint32_t i = 0; i < m->count; i++) {
        uint64_t addr;
        uint32_t len;
        fy_amw_seg(m, i, &addr, &len);
        must(addr + len >= addr);
        fy_amw_prefix_seg(copy, i, addr, len);
        sum += len;
    }
    must(m->read ? sum == m->read_len : sum == m->data_len);
    memcpy(copy + head, m->data, m->data_len);
    must(memcmp(copy, b, n) == 0);
    uint64_t id;
    bool read;
    must(fy_amw_peek_id(b, n, &id, &read) && id == m->id && read == m->read);
    free(copy);
}

/* A key the check accepts: every domain's size byte and bytes inside it,
 * counted here by the set bits' number instead of clearing them. */
static void check_key(const uint8_t *b, size_t n)
{
    if (!fy_ucx_rkey_well_formed(b, n))
        return;
    must(n >= 9 && fy_le_get(b, 8) != 0);
    unsigned domains = (unsigned)__builtin_popcountll(fy_le_get(b, 8));
    size_t off = 9;
    for (unsigned i = 0; i < domains; i++) {
        must(off < n);
        off += 1u + b[off];
        must(off <= n);
    }
}

static void as_is(const uint8_t *b, size_t n)
{
    fy_amw_msg m;
    if (fy_amw_parse(b, n, &m))
        check_message(b, n, &m);
    uint64_t id;
    int32_t st;
    if (fy_amw_ack_parse(b, n, &id, &st)) {
        uint8_t again[FY_AMW_ACK_LEN];
        fy_amw_ack_encode(again, id, st);
        must(n == FY_AMW_ACK_LEN && memcmp(again, b, n) == 0);
    }
    if (fy_amw_rdata_parse(b, n, &id, &st)) {
        uint8_t again[FY_AMW_ACK_LEN];
        fy_amw_rdata_encode(again, id, st);
        must(n == FY_AMW_ACK_LEN && memcmp(again, b, n) == 0);
    }
    check_key(b, n);
}

/* Sets the magic, cuts count and lengths to what the input holds; returns
 * the length the message then announces (0: not even a head), and whether
 * the rules accept it. */
static size_t make_nearly_right(uint8_t *b, size_t n, bool *valid)
{
    if (n < FY_AMW_FIXED)
        return 0;
    bool read = b[4] & 1; /* a bit of the id picks the kind */
    fy_le_put(b, read ? FY_AMW_READ_MAGIC : FY_AMW_MAGIC, 4);
    uint32_t count = (uint32_t)(fy_le_get(b + 12, 4) % 32u); /* 0 stays possible */
    size_t from_len = (size_t)(fy_le_get(b + 20, 2) % 300u),
           notif_len = (size_t)(fy_le_get(b + 16, 4) % 300u);
    if (read && !(b[5] & 1))
        notif_len = 0; /* mostly without: a read with one is refused */
    if (fy_le_get(b + 16, 4) & 0x80000000u)
        notif_len = FY_AMW_MAX_NOTIF + 1; /* now and then, one too long */
    fy_le_put(b + 12, count, 4);
    fy_le_put(b + 16, notif_len, 4);
    fy_le_put(b + 20, from_len, 2);
    size_t head = fy_amw_prefix_len(count, from_len, notif_len);
    if (FY_AMW_FIXED + (size_t)count * FY_AMW_SEG > n)
        return 0;
    uint64_t sum = 0;
    bool wraps = false;
    for (uint32_t i = 0; i < count; i++) {
        uint8_t *s = b + FY_AMW_FIXED + (size_t)i * FY_AMW_SEG;
        uint32_t len = (uint32_t)(fy_le_get(s + 8, 4) % 64u);
        fy_le_put(s + 8, len, 4);
        wraps |= fy_le_get(s, 8) + len < fy_le_get(s, 8);
        sum += len;
    }
    *valid = count > 0 && from_len > 0 && from_len <= FY_AMW_MAX_FROM &&
             notif_len <= FY_AMW_MAX_NOTIF && !wraps && !(read && notif_len);
    return read ? head : head + sum;
}

static void nearly_right(const uint8_t *data, size_t size)
{
    uint8_t *b = malloc(size ? size : 1);
    must(b != NULL);
    memcpy(b, data, size);
    bool valid = false;
    size_t want = make_nearly_right(b, size, &valid);
    fy_amw_msg m;
    if (want && want <= size) {
        bool ok = fy_amw_parse(b, want, &m);
        must(ok == valid);
        if (ok)
            check_message(b, want, &m);
        must(!fy_amw_parse(b, want - 1, &m));
        if (want < size)
            must(!fy_amw_parse(b, want + 1, &m));
    }
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    as_is(data, size);
    nearly_right(data, size);
    return 0;
}
