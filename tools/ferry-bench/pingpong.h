/* SPDX-License-Identifier: Apache-2.0 */
/* The ping-pong that ferry-pingpong (through ferry) and ferry-ucx-anchor
 * (bare UCX) both run, so the two measure the same thing: two processes
 * take turns, numbered from 1, each writing a block whose last 8 bytes
 * carry the turn's number into the other's memory and spinning until the
 * other's answer lands. The figure is half a round trip. */
#ifndef FB_PINGPONG_H
#define FB_PINGPONG_H

#include "common.h"

#define FB_PP_MAX_BLOCK (1u << 20)

/* Each side's buffer: the block the peer writes into (inbox), then the
 * block it sends from (outbox), block bytes each. */

/* The turn number that last landed in the inbox (read afresh each call). */
static inline uint64_t fb_pp_landed(const uint8_t *buf, uint64_t block)
{
    return *(const volatile uint64_t *)(buf + block - 8);
}

/* Stamps turn seq into the outbox's last 8 bytes. */
static inline void fb_pp_stamp(uint8_t *buf, uint64_t block, uint64_t seq)
{
    *(uint64_t *)(buf + 2 * block - 8) = seq;
}

/* What a tool does for one turn; side is its own state. */
typedef struct fb_pp_ops {
    void (*send)(void *side, uint64_t seq);  /* write turn seq into the peer */
    void (*await)(void *side, uint64_t seq); /* spin until the peer's turn seq landed */
} fb_pp_ops;

/* Exits FB_EXIT_USAGE unless 8 <= block_size <= 1M, a multiple of 8, and
 * num_iter >= 1. */
void fb_pp_check(uint64_t block_size, uint64_t num_iter);
/* The pong process's pipe ends, from its --fb_role; sets fb_role_tag. */
void fb_pp_pong_pipes(const char *role, int *in, int *out);
/* Pong: answers `turns` turns. */
void fb_pp_pong(const fb_pp_ops *ops, void *side, uint64_t turns);
/* Ping: warmup turns, then iters timed ones, their half round trips (us)
 * into *half. */
void fb_pp_ping(const fb_pp_ops *ops, void *side, uint64_t warmup, uint64_t iters,
                fb_samples *half);
/* Prints "<prog>: <what>, <block> B, <n> round trips: one way median ..."
 * and, when json is set, writes one object to it (overwriting it): extra's
 * members, block_size, iterations and the figures. Sorts *half; takes
 * extra (a JSON object). */
void fb_pp_report(const char *what, uint64_t block_size, fb_samples *half, const char *json,
                  json_t *extra);

#endif
