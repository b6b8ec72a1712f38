/* SPDX-License-Identifier: Apache-2.0 */
/* Reseals a metadata blob after a test edited it, so the edit reaches the
 * decoder behind the checksum (docs/wire-format.md: body length, u32 LE at
 * 8; CRC-32C at 12 over header bytes 0..11 and the body from 16). Written
 * here bit by bit, independent of the codec's own table. */
#ifndef FERRY_TESTS_BLOB_SEAL_H
#define FERRY_TESTS_BLOB_SEAL_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t fy_t_crc32c(uint32_t crc, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return crc;
}

static inline void fy_t_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* len >= 16: the blob's whole length. */
static inline void fy_t_blob_reseal(uint8_t *b, size_t len)
{
    fy_t_put32(b + 8, (uint32_t)(len - 16));
    fy_t_put32(b + 12, ~fy_t_crc32c(fy_t_crc32c(0xffffffffu, b, 12), b + 16, len - 16));
}

#endif
