/* SPDX-License-Identifier: Apache-2.0 */
/* The plugin file-name rule: "libferry_plugin_<name>.so" holds the plugin
 * <NAME> (upper-cased). One function, shared by the loader's callers that
 * must agree with it (ferry-info and ferry-check walk the plugin search path
 * themselves to say where a refused plugin lives). Internal: not part of
 * libferry's ABI; it is in the fy_common archive, which such programs link. */
#ifndef FERRY_COMMON_PLUGIN_NAME_H
#define FERRY_COMMON_PLUGIN_NAME_H

#include <stdbool.h>
#include <stddef.h>

#define FY_PLUGIN_FILE_PREFIX "libferry_plugin_"
#define FY_PLUGIN_FILE_SUFFIX ".so"

/* The plugin name of a file name (no directory part), upper-cased, into
 * name (cap bytes with the NUL); false when file does not follow the rule
 * or the name does not fit. */
bool fy_plugin_name_from_file(const char *file, char *name, size_t cap);

#endif
