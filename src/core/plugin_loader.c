/* SPDX-License-Identifier: Apache-2.0 */
/* Plugin loader: compiled-in plugins, then libferry_plugin_<name>.so found in
 * FERRY_PLUGIN_DIR (colon-separated), else NIXL_PLUGIN_DIR, or, when neither
 * is set, in plugins/ and ferry/plugins/ beside libferry itself. Loaded plugins stay loaded for the
 * life of the process (code may be referenced by live backends), so the
 * table only grows; it is guarded by one mutex. */
#include <pthread.h>
#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/api.h"
#include "common/log.h"
#include "common/plugin_name.h"
#include "core/handles.h"
#include "core/plugin_loader.h"
#include "ferry/ferry.h"

const ferry_plugin_desc *ferry_plugin_builtin_LOCAL(void);

typedef const ferry_plugin_desc *(*fy_builtin_fn)(void);
static const fy_builtin_fn fy_builtins[] = {ferry_plugin_builtin_LOCAL};
#define FY_NUM_BUILTINS (sizeof(fy_builtins) / sizeof(fy_builtins[0]))

#define FY_MAX_PLUGINS 256
static fy_plugin *fy_plugins[FY_MAX_PLUGINS];
static size_t fy_num_plugins;
static pthread_mutex_t fy_plugins_mu = PTHREAD_MUTEX_INITIALIZER;

/* Slots every plugin must fill; the rest are optional. */
static const size_t fy_required_ops[] = {
    offsetof(ferry_plugin_ops, init),
    offsetof(ferry_plugin_ops, fini),
    offsetof(ferry_plugin_ops, reg),
    offsetof(ferry_plugin_ops, dereg),
    offsetof(ferry_plugin_ops, conn_info),
    offsetof(ferry_plugin_ops, remote_load),
    offsetof(ferry_plugin_ops, remote_unload),
    offsetof(ferry_plugin_ops, rregion_load),
    offsetof(ferry_plugin_ops, rregion_unload),
    offsetof(ferry_plugin_ops, xfer_prep),
    offsetof(ferry_plugin_ops, xfer_post),
    offsetof(ferry_plugin_ops, xfer_check),
    offsetof(ferry_plugin_ops, xfer_release),
};

bool fy_ops_has(const ferry_plugin_ops *ops, size_t offset)
{
    if (offset + sizeof(void (*)(void)) > ops->size)
        return false;
    void (*slot)(void);
    memcpy(&slot, (const char *)ops + offset, sizeof(slot));
    return slot != NULL;
}

static ferry_status fy_plugin_refuse(fy_plugin *p, ferry_status rc, const char *why)
{
    p->status = rc;
    p->desc = NULL;
    snprintf(p->error, sizeof(p->error), "%s", why);
    fy_log(FERRY_LOG_ERROR, "loader", "plugin %s (%s) refused: %s", p->name, p->path, why);
    return rc;
}

/* Checks a descriptor before anything of it is used. */
static ferry_status fy_plugin_validate(fy_plugin *p, const ferry_plugin_desc *d)
{
    char why[200];
    if (!d)
        return fy_plugin_refuse(p, FERRY_ERR_BACKEND, "entry point returned NULL");
    p->abi = d->abi_version; /* the first field in every ABI: safe to read */
    if (d->abi_version != FERRY_PLUGIN_ABI_VERSION) {
        snprintf(why, sizeof(why), "plugin ABI %u, this libferry speaks ABI %u", d->abi_version,
                 FERRY_PLUGIN_ABI_VERSION);
        return fy_plugin_refuse(p, FERRY_ERR_ABI, why);
    }
    if (!d->name || strcasecmp(d->name, p->name) != 0)
        return fy_plugin_refuse(p, FERRY_ERR_BACKEND, "descriptor name differs from file name");
    if (!d->ops || d->ops->size < offsetof(ferry_plugin_ops, supports) ||
        (d->num_params && !d->params) || d->priv_size > (1u << 30))
        return fy_plugin_refuse(p, FERRY_ERR_BACKEND, "malformed descriptor or ops table");
    for (size_t i = 0; i < sizeof(fy_required_ops) / sizeof(fy_required_ops[0]); i++)
        if (!fy_ops_has(d->ops, fy_required_ops[i]))
            return fy_plugin_refuse(p, FERRY_ERR_BACKEND, "a required op is missing");
    if (fy_ops_has(d->ops, offsetof(ferry_plugin_ops, xfer_idx_alloc)) !=
        fy_ops_has(d->ops, offsetof(ferry_plugin_ops, xfer_idx_free)))
        return fy_plugin_refuse(p, FERRY_ERR_BACKEND, "xfer_idx_alloc without xfer_idx_free");
    p->desc = d;
    p->status = FERRY_OK;
    return FERRY_OK;
}

static fy_plugin *fy_plugin_add(const char *name, const char *path)
{
    if (fy_num_plugins == FY_MAX_PLUGINS)
        return NULL;
    fy_plugin *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->path, sizeof(p->path), "%s", path);
    p->status = FERRY_ERR_NOT_FOUND;
    fy_plugins[fy_num_plugins++] = p;
    return p;
}

static void fy_builtins_register(void)
{
    if (fy_num_plugins)
        return;
    for (size_t i = 0; i < FY_NUM_BUILTINS; i++) {
        const ferry_plugin_desc *d = fy_builtins[i]();
        fy_plugin *p = fy_plugin_add(d->name, "builtin");
        if (p)
            fy_plugin_validate(p, d);
    }
}

static fy_plugin *fy_plugin_by_name(const char *name, const char *path)
{
    for (size_t i = 0; i < fy_num_plugins; i++)
        if (!strcasecmp(fy_plugins[i]->name, name) && (!path || !strcmp(fy_plugins[i]->path, path)))
            return fy_plugins[i];
    return NULL;
}

/* dlopens a .so and validates its descriptor; failures are kept in p. */
static void fy_plugin_open(fy_plugin *p)
{
    void *dl = dlopen(p->path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        char why[200];
        snprintf(why, sizeof(why), "dlopen: %s", dlerror());
        fy_plugin_refuse(p, FERRY_ERR_BACKEND, why);
        return;
    }
    ferry_plugin_get_fn get;
    void *sym = dlsym(dl, FERRY_PLUGIN_SYMBOL);
    if (!sym) {
        fy_plugin_refuse(p, FERRY_ERR_BACKEND,
                         "no " FERRY_PLUGIN_SYMBOL " symbol (not built with FERRY_PLUGIN_DEFINE)");
        dlclose(dl);
        return;
    }
    memcpy(&get, &sym, sizeof(get));
    if (fy_plugin_validate(p, get()) != FERRY_OK)
        dlclose(dl); /* nothing of it is referenced */
}

/* The directory holding libferry itself. */
static void fy_lib_dir(char *dir, size_t cap)
{
    Dl_info info;
    dir[0] = '\0';
    if (!dladdr((void *)fy_lib_dir, &info) || !info.dli_fname)
        return;
    snprintf(dir, cap, "%s", info.dli_fname);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, cap, ".");
}

/* Fills dirs (colon-separated list) with the plugin search path. */
static void fy_search_path(char *dirs, size_t cap)
{
    const char *env = getenv("FERRY_PLUGIN_DIR");
    if (!env || !*env)
        env = getenv("NIXL_PLUGIN_DIR"); /* a setup made for NIXL works unchanged */
    if (env && *env) {
        snprintf(dirs, cap, "%s", env);
        return;
    }
    char lib[2048];
    fy_lib_dir(lib, sizeof(lib));
    snprintf(dirs, cap, "%s/plugins:%s/ferry/plugins", lib, lib);
}

/* Records every plugin file of one directory (not loaded yet). */
static void fy_scan_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char name[64], path[4096];
        if (!fy_plugin_name_from_file(e->d_name, name, sizeof(name)))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (!fy_plugin_by_name(name, path))
            fy_plugin_add(name, path);
    }
    closedir(d);
}

/* Calls fn for each directory of the search path. */
static void fy_each_dir(void (*fn)(const char *dir, void *arg), void *arg)
{
    char dirs[8192];
    fy_search_path(dirs, sizeof(dirs));
    char *save = NULL;
    for (char *dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save))
        fn(dir, arg);
}

static void fy_scan_cb(const char *dir, void *arg)
{
    (void)arg;
    fy_scan_dir(dir);
}

/* True when path lies directly in one of the current search dirs. */
typedef struct fy_in_path {
    const char *path;
    bool found;
} fy_in_path;
static void fy_in_path_cb(const char *dir, void *arg)
{
    fy_in_path *q = arg;
    size_t n = strlen(dir);
    if (!strncmp(q->path, dir, n) && q->path[n] == '/' && !strchr(q->path + n + 1, '/'))
        q->found = true;
}

static bool fy_plugin_visible(const fy_plugin *p)
{
    if (!strcmp(p->path, "builtin"))
        return true;
    fy_in_path q = {p->path, false};
    fy_each_dir(fy_in_path_cb, &q);
    return q.found && access(p->path, R_OK) == 0;
}

ferry_status fy_plugin_find(const char *name, fy_plugin **out)
{
    pthread_mutex_lock(&fy_plugins_mu);
    fy_builtins_register();
    fy_each_dir(fy_scan_cb, NULL);
    fy_plugin *found = NULL;
    for (size_t i = 0; i < fy_num_plugins && !found; i++)
        if (!strcasecmp(fy_plugins[i]->name, name) && fy_plugin_visible(fy_plugins[i]))
            found = fy_plugins[i];
    if (found && !found->desc && found->status == FERRY_ERR_NOT_FOUND)
        fy_plugin_open(found);
    ferry_status rc = found ? found->status : FERRY_ERR_NOT_FOUND;
    pthread_mutex_unlock(&fy_plugins_mu);
    if (!found)
        fy_log_fail(FERRY_LOG_WARN, "loader", "no plugin named %s", name);
    *out = found;
    return rc;
}

/* fy_plugin_find for a caller that fails when the plugin was refused: the
 * refusal was logged once, at load; each such call gets it as detail. */
ferry_status fy_plugin_usable(const char *name, fy_plugin **out)
{
    ferry_status rc = fy_plugin_find(name, out);
    if (rc != FERRY_OK && *out)
        fy_error_set("loader", "plugin %s (%s) refused: %s", (*out)->name, (*out)->path,
                     (*out)->error);
    return rc;
}

static int fy_name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Builtins first (in table order), then shared plugins sorted by name. */
ferry_status fy_plugin_names(const char **names, size_t cap, size_t *count)
{
    pthread_mutex_lock(&fy_plugins_mu);
    fy_builtins_register();
    fy_each_dir(fy_scan_cb, NULL);
    size_t n = 0;
    for (size_t i = 0; i < fy_num_plugins; i++) {
        fy_plugin *p = fy_plugins[i];
        if (!fy_plugin_visible(p) || fy_plugin_by_name(p->name, NULL) != p)
            continue; /* a builtin or an earlier directory shadows it */
        if (n < cap)
            names[n] = p->name;
        n++;
    }
    pthread_mutex_unlock(&fy_plugins_mu);
    size_t first_shared = FY_NUM_BUILTINS < n ? FY_NUM_BUILTINS : n;
    size_t shown = n < cap ? n : cap;
    if (shown > first_shared)
        qsort(names + first_shared, shown - first_shared, sizeof(*names), fy_name_cmp);
    *count = n;
    return FERRY_OK;
}

/* ---- public ---- */

FY_API ferry_status ferry_plugin_list(ferry_agent *agent, const char **names, size_t cap,
                                      size_t *count)
{
    if (!FY_AGENT_OK(agent) || !count || (cap && !names))
        return FERRY_ERR_INVALID_PARAM;
    return fy_plugin_names(names, cap, count);
}

static ferry_status fy_plugin_desc_of(const char *name, const ferry_plugin_desc **out)
{
    if (!name)
        return FERRY_ERR_INVALID_PARAM;
    fy_plugin *p;
    ferry_status rc = fy_plugin_usable(name, &p);
    if (rc == FERRY_OK)
        *out = p->desc;
    return rc;
}

FY_API ferry_status ferry_plugin_params(ferry_agent *agent, const char *plugin,
                                        const ferry_param_spec **params, size_t *count)
{
    const ferry_plugin_desc *d;
    if (!FY_AGENT_OK(agent) || !params || !count)
        return FERRY_ERR_INVALID_PARAM;
    ferry_status rc = fy_plugin_desc_of(plugin, &d);
    if (rc != FERRY_OK)
        return rc;
    *params = d->params;
    *count = d->num_params;
    return FERRY_OK;
}

FY_API ferry_status ferry_plugin_mem_types(ferry_agent *agent, const char *plugin,
                                           uint32_t *mem_mask)
{
    const ferry_plugin_desc *d;
    if (!FY_AGENT_OK(agent) || !mem_mask)
        return FERRY_ERR_INVALID_PARAM;
    ferry_status rc = fy_plugin_desc_of(plugin, &d);
    if (rc == FERRY_OK)
        *mem_mask = d->mem_mask;
    return rc;
}

FY_API ferry_status ferry_plugin_path(ferry_agent *agent, const char *plugin, const char **path,
                                      uint32_t *abi_version)
{
    if (!FY_AGENT_OK(agent) || !plugin || !path || !abi_version)
        return FERRY_ERR_INVALID_PARAM;
    fy_plugin *p;
    ferry_status rc = fy_plugin_usable(plugin, &p);
    if (rc != FERRY_OK)
        return rc;
    *path = p->path;
    *abi_version = p->desc->abi_version;
    return FERRY_OK;
}

FY_API void ferry_plugin_info_init(ferry_plugin_info *info)
{
    if (!info)
        return;
    memset(info, 0, sizeof(*info));
    info->size = sizeof(*info);
}

FY_API ferry_status ferry_plugin_get_info(ferry_agent *agent, const char *plugin,
                                          ferry_plugin_info *info)
{
    if (!FY_AGENT_OK(agent) || !plugin || !info || info->size < sizeof(*info))
        return FERRY_ERR_INVALID_PARAM;
    fy_plugin *p;
    ferry_status rc = fy_plugin_find(plugin, &p);
    if (!p)
        return rc;
    info->path = p->path;
    info->abi_version = p->abi;
    info->status = rc;
    info->error = rc == FERRY_OK ? "" : p->error;
    return FERRY_OK;
}
