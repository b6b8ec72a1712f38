/* SPDX-License-Identifier: Apache-2.0 */
/* Descriptor lists the tests build over and over. */
#ifndef FERRY_TESTS_DLISTS_H
#define FERRY_TESTS_DLISTS_H

#include <ferry/ferry.h>

/* A DRAM list of the one range [addr, addr + len) on device 0, or NULL
 * when it cannot be made (the caller's check then fails). */
static inline ferry_dlist *fy_t_range_list(uint64_t addr, uint64_t len)
{
    ferry_dlist *l = NULL;
    if (ferry_dlist_create(FERRY_MEM_DRAM, 1, &l) == FERRY_OK &&
        ferry_dlist_add(l, addr, len, 0) != FERRY_OK) {
        ferry_dlist_destroy(l);
        l = NULL;
    }
    return l;
}

#endif
