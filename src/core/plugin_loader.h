/* SPDX-License-Identifier: Apache-2.0 */
/* Plugins (plugin_loader.c): a process-wide table, entries never freed. */
#ifndef FY_CORE_PLUGIN_LOADER_H
#define FY_CORE_PLUGIN_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/plugin.h"

typedef struct fy_plugin {
    char name[64];
    char path[4096];               /* "builtin" or the .so path */
    const ferry_plugin_desc *desc; /* NULL until loaded */
    ferry_status status;           /* load result */
    uint32_t abi;                  /* the descriptor's ABI version, once read */
    char error[256];
} fy_plugin;
ferry_status fy_plugin_find(const char *name, fy_plugin **out);
/* The same, for callers that fail on a refused plugin (sets the detail). */
ferry_status fy_plugin_usable(const char *name, fy_plugin **out);
ferry_status fy_plugin_names(const char **names, size_t cap, size_t *count);
bool fy_ops_has(const ferry_plugin_ops *ops, size_t offset);
#define FY_OP(be, slot)                                                                            \
    (fy_ops_has((be)->ops, offsetof(ferry_plugin_ops, slot)) ? (be)->ops->slot : NULL)

#endif
