/* SPDX-License-Identifier: Apache-2.0 */
/* Little-endian fields, byte by byte: formats that cross processes or hosts
 * (side-channel frames, plugins' published bytes, UCX active messages) do
 * not depend on the host's endianness or on struct layout. Header only, so
 * plugins and tests use it without linking libferry's internals. */
#ifndef FY_COMMON_LE_H
#define FY_COMMON_LE_H

#include <stdint.h>

/* Writes the low `bytes` bytes of v (1..8) at p. */
static inline void fy_le_put(uint8_t *p, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Reads `bytes` bytes (1..8) at p. */
static inline uint64_t fy_le_get(const uint8_t *p, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

#endif
