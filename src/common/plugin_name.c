/* SPDX-License-Identifier: Apache-2.0 */
/* The plugin file-name rule (plugin_name.h). */
#include "plugin_name.h"

#include <ctype.h>
#include <string.h>

bool fy_plugin_name_from_file(const char *file, char *name, size_t cap)
{
    static const char prefix[] = FY_PLUGIN_FILE_PREFIX, suffix[] = FY_PLUGIN_FILE_SUFFIX;
    size_t n = strlen(file), pre = sizeof(prefix) - 1, suf = sizeof(suffix) - 1;
    if (n <= pre + suf || strncmp(file, prefix, pre) || strcmp(file + n - suf, suffix))
        return false;
    size_t len = n - pre - suf;
    if (len >= cap)
        return false;
    for (size_t i = 0; i < len; i++)
        name[i] = (char)toupper((unsigned char)file[pre + i]);
    name[len] = '\0';
    return true;
}
