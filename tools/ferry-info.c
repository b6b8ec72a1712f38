/* SPDX-License-Identifier: Apache-2.0 */
/* ferry-info: what this ferry installation has, like ucx_info and fi_info:
 * the build's features, the plugins found (path, ABI, why one is refused),
 * each backend's capabilities, memory types and params, UCX's transports
 * and devices, the GPUs and cuFile. Text for people, --json for scripts.
 *
 * Runtime facts come from a scratch agent: a backend is created from each
 * loadable plugin, because only an instance knows its capabilities and the
 * memory types this host really serves (VRAM needs a driver at run time). */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "info-common.h"

static const char *prog = "ferry-info";

typedef struct fi_opts {
    bool build, plugins, ucx, fab, gpu; /* sections shown */
    const char *backend;                /* -b: only that plugin, in detail */
    const char *json;                   /* --json: where to, "-" for stdout */
} fi_opts;

/* Everything learnt, gathered before printing in either format. */
typedef struct fi_facts {
    fi_search search;
    fi_plugin *plugins;
    size_t num_plugins;
    fi_ucx ucx;
    fi_fab fab;
    fi_gpu gpu;
} fi_facts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s [-p] [-b NAME] [-u] [-f] [-g] [-B] [--json [FILE]]\n"
            "Lists what this ferry installation has (all sections when none is chosen):\n"
            "  -p, --plugins       plugins found: path, ABI, capabilities, memory types, params\n"
            "  -b, --backend NAME  one plugin only, with its backend instance's params\n"
            "  -u, --ucx           UCX transports and devices (from ucx_info)\n"
            "  -f, --fabric        libfabric providers with RMA on reliable datagrams, and\n"
            "                      their domains (from fi_info): what LIBFABRIC can use\n"
            "  -g, --gpu           GPUs seen through the CUDA driver, and cuFile\n"
            "  -B, --build         version and the build's features\n"
            "      --json [FILE]   one JSON object instead of text, to FILE (overwritten)\n"
            "                      or standard output (no FILE, or -)\n"
            "      --version       the version, one line\n"
            "  -h, --help          this text\n"
            "Exit status: 0 done, 1 failed (no such plugin, no agent), 2 bad usage.\n"
            "Environment: FERRY_PLUGIN_DIR (plugin search path; else NIXL_PLUGIN_DIR),\n"
            "FERRY_UCX_INFO (ucx_info to run), FERRY_FI_INFO (fi_info to run),\n"
            "FERRY_CUDA_LIB (CUDA driver library),\n"
            "FERRY_CUFILE_LIB (cuFile library).\n",
            prog);
}

static int parse_opts(int argc, char **argv, fi_opts *o)
{
    static const struct option longs[] = {
        {"plugins", no_argument, NULL, 'p'},    {"backend", required_argument, NULL, 'b'},
        {"ucx", no_argument, NULL, 'u'},        {"fabric", no_argument, NULL, 'f'},
        {"gpu", no_argument, NULL, 'g'},        {"build", no_argument, NULL, 'B'},
        {"json", optional_argument, NULL, 'J'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},    {NULL, 0, NULL, 0},
    };
    int c;
    memset(o, 0, sizeof(*o));
    while ((c = getopt_long(argc, argv, "pb:ufgBh", longs, NULL)) != -1) {
        switch (c) {
        case 'p':
            o->plugins = true;
            break;
        case 'b':
            o->backend = optarg;
            o->plugins = true;
            break;
        case 'u':
            o->ucx = true;
            break;
        case 'f':
            o->fab = true;
            break;
        case 'g':
            o->gpu = true;
            break;
        case 'B':
            o->build = true;
            break;
        case 'J':
            o->json = ft_json_dest(optarg, argc, argv, &optind);
            break;
        case 'V':
            ft_print_version(prog);
            exit(0);
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!o->build && !o->plugins && !o->ucx && !o->fab && !o->gpu)
        o->build = o->plugins = o->ucx = o->fab = o->gpu = true;
    return 0;
}

/* ---- text ---- */

static void text_build(const fi_search *s)
{
    const fi_build *b = fi_build_get();
    printf("ferry %s (libferry %s: %s)\n", b->version, ferry_version_string(),
           s->lib[0] ? s->lib : "path unknown");
    printf("  build: %s, %s, prefix %s, sanitizers %s\n", b->buildtype, b->compiler, b->prefix,
           b->sanitize);
    printf("  options: ucx=%s cuda=%s fuzzing=%s tests=%s\n", b->opt_ucx, b->opt_cuda,
           b->opt_fuzzing, b->opt_tests);
    printf("  plugins built:\n");
    for (size_t i = 0; i < b->num_plugins; i++)
        printf("    %-8s %s\n", b->plugins[i].name, b->plugins[i].how);
    printf("  plugin dir when installed: %s\n", b->plugin_install_dir);
}

static void text_search(const fi_search *s)
{
    printf("Plugin search path (%s):\n", s->from_env ? s->env_name : "beside libferry");
    for (size_t i = 0; i < s->num_dirs; i++) {
        const fi_dir *d = &s->dirs[i];
        if (d->exists)
            printf("  %s: %d plugin file%s\n", d->path, d->plugin_files,
                   d->plugin_files == 1 ? "" : "s");
        else
            printf("  %s: %s\n", d->path, strerror(d->err));
    }
}

static void text_params(const fi_plugin *p)
{
    if (!p->num_params) {
        printf("    params: none\n");
        return;
    }
    int w = 0;
    for (size_t i = 0; i < p->num_params; i++)
        if ((int)strlen(p->params[i].key) > w)
            w = (int)strlen(p->params[i].key);
    printf("    params (key = default: help):\n");
    for (size_t i = 0; i < p->num_params; i++) {
        const ferry_param_spec *ps = &p->params[i];
        printf("      %-*s = \"%s\": %s", w, ps->key, ps->default_value ? ps->default_value : "",
               ps->help ? ps->help : "");
        /* The instance's value, where it differs (environment, probing). */
        for (size_t k = 0; k < p->num_values; k++)
            if (!strcmp(p->values[k].key, ps->key) && p->values[k].value &&
                strcmp(p->values[k].value, ps->default_value ? ps->default_value : ""))
                printf(" [here: \"%s\"]", p->values[k].value);
        printf("\n");
    }
}

static void text_plugin(const fi_plugin *p)
{
    char a[128], b[128];
    if (p->status != FERRY_OK) {
        printf("  %-8s %s  ABI %s  REFUSED (%s): %s\n", p->name, p->path[0] ? p->path : "?",
               p->abi ? (snprintf(a, sizeof(a), "%u", p->abi), a) : "?",
               ferry_status_name(p->status), p->error);
        return;
    }
    printf("  %-8s %s  ABI %u  loaded\n", p->name, p->path, p->abi);
    if (p->created) {
        printf("    capabilities: %s\n", fi_caps_str(p->caps, a, sizeof(a)));
        printf("    memory types: %s (declared); %s (this host)\n",
               fi_mem_str(p->mem_mask, a, sizeof(a)), fi_mem_str(p->rt_mem_mask, b, sizeof(b)));
    } else {
        printf("    backend: cannot be created here: %s (%s)\n", ferry_status_name(p->create_rc),
               ferry_strerror(p->create_rc));
        printf("    capabilities: unknown without a backend\n");
        printf("    memory types: %s (declared)\n", fi_mem_str(p->mem_mask, a, sizeof(a)));
    }
    text_params(p);
}

static void text_plugins(const fi_facts *f, const char *only)
{
    if (!only) {
        text_search(&f->search);
        printf("Plugins (%zu):\n", f->num_plugins);
    }
    for (size_t i = 0; i < f->num_plugins; i++)
        if (!only || !strcasecmp(only, f->plugins[i].name))
            text_plugin(&f->plugins[i]);
}

static void text_ucx(const fi_ucx *u)
{
    const fi_build *b = fi_build_get();
    const char *how = "not in this build";
    for (size_t i = 0; i < b->num_plugins; i++)
        if (!strcmp(b->plugins[i].name, "UCX"))
            how = b->plugins[i].how;
    printf("UCX:\n  ferry's UCX backend: %s\n", how);
    if (!u->ok) {
        printf("  transports and devices unknown: %s%s\n", u->error,
               u->ucx_info[0] ? "" : " (it comes with UCX: ucx-utils / libucx-dev packages)");
        return;
    }
    printf("  ucx_info: %s (UCX %s)\n", u->ucx_info, u->version[0] ? u->version : "version ?");
    printf("  transports: devices (type)\n");
    for (size_t i = 0; i < u->num_tls; i++) {
        const fi_ucx_tl *tl = &u->tls[i];
        printf("    %-12s", tl->name);
        for (size_t k = 0; k < tl->num_devs; k++)
            printf("%s%s (%s)", k ? ", " : " ", tl->devs[k].name,
                   tl->devs[k].type[0] ? tl->devs[k].type : "?");
        printf("\n");
    }
}

static void text_fab(const fi_fab *f)
{
    const fi_build *b = fi_build_get();
    const char *how = "not in this build";
    for (size_t i = 0; i < b->num_plugins; i++)
        if (!strcmp(b->plugins[i].name, "LIBFABRIC"))
            how = b->plugins[i].how;
    printf("libfabric:\n  ferry's LIBFABRIC backend: %s\n", how);
    if (!f->ok) {
        printf("  providers unknown: %s%s\n", f->error,
               f->fi_info[0] ? "" : " (it comes with libfabric: the libfabric-bin package)");
        return;
    }
    printf("  fi_info: %s\n  providers with RMA on reliable datagrams: domains\n", f->fi_info);
    if (!f->num_provs)
        printf("    (none)\n");
    for (size_t i = 0; i < f->num_provs; i++) {
        printf("    %-16s", f->provs[i].name);
        for (size_t k = 0; k < f->provs[i].num_domains; k++)
            printf("%s%s", k ? ", " : " ", f->provs[i].domains[k]);
        printf("\n");
    }
}

static void text_gpu(const fi_gpu *g)
{
    char mem[32];
    if (!g->ok) {
        printf("GPUs: none seen: %s\n", g->error);
    } else {
        char cv[32];
        printf("GPUs: %d (driver %s, CUDA %s)\n", g->count, g->lib,
               fi_cuda_version_str(g->driver_version, cv, sizeof(cv)));
        for (int i = 0; i < g->count && i < FI_MAX_GPUS; i++) {
            const fi_gpu_dev *d = &g->devs[i];
            printf("  %d: %s, %s, %s, sm_%d%d, PCI %s\n", i, d->name, d->uuid[0] ? d->uuid : "?",
                   d->mem_bytes ? fi_size_str(d->mem_bytes, mem, sizeof(mem)) : "memory ?",
                   d->cc_major, d->cc_minor, d->pci[0] ? d->pci : "?");
        }
    }
    if (g->cufile)
        printf("cuFile: %s found; nvidia_fs module %s\n", g->cufile_lib,
               g->nvidia_fs ? "loaded" : "not loaded (GDS would run in compatibility mode)");
    else
        printf("cuFile: not found (%s)\n", g->cufile_error);
}

static void print_text(const fi_opts *o, const fi_facts *f)
{
    bool sep = false;
    if (o->build && !o->backend) {
        text_build(&f->search);
        sep = true;
    }
    if (o->plugins) {
        if (sep)
            printf("\n");
        text_plugins(f, o->backend);
        sep = true;
    }
    if (o->ucx) {
        if (sep)
            printf("\n");
        text_ucx(&f->ucx);
        sep = true;
    }
    if (o->fab) {
        if (sep)
            printf("\n");
        text_fab(&f->fab);
        sep = true;
    }
    if (o->gpu) {
        if (sep)
            printf("\n");
        text_gpu(&f->gpu);
    }
}

/* ---- JSON ---- */

static void json_build(fi_json *j, const fi_search *s)
{
    const fi_build *b = fi_build_get();
    fj_obj(j, "ferry");
    fj_str(j, "version", b->version);
    fj_str(j, "library_version", ferry_version_string());
    fj_str(j, "library", s->lib[0] ? s->lib : NULL);
    fj_close_obj(j);
    fj_obj(j, "build");
    fj_str(j, "buildtype", b->buildtype);
    fj_str(j, "compiler", b->compiler);
    fj_str(j, "prefix", b->prefix);
    fj_str(j, "plugin_install_dir", b->plugin_install_dir);
    fj_str(j, "sanitize", b->sanitize);
    fj_obj(j, "options");
    fj_str(j, "ucx", b->opt_ucx);
    fj_str(j, "cuda", b->opt_cuda);
    fj_str(j, "fuzzing", b->opt_fuzzing);
    fj_bool(j, "tests", !strcmp(b->opt_tests, "true"));
    fj_close_obj(j);
    fj_obj(j, "plugins");
    for (size_t i = 0; i < b->num_plugins; i++)
        fj_str(j, b->plugins[i].name, b->plugins[i].how);
    fj_close_obj(j);
    fj_close_obj(j);
}

static void json_search(fi_json *j, const fi_search *s)
{
    fj_obj(j, "plugin_search_path");
    fj_str(j, "source", s->from_env ? s->env_name : "default");
    fj_arr(j, "dirs");
    for (size_t i = 0; i < s->num_dirs; i++) {
        fj_obj(j, NULL);
        fj_str(j, "path", s->dirs[i].path);
        fj_bool(j, "exists", s->dirs[i].exists);
        fj_str(j, "error", s->dirs[i].exists ? NULL : strerror(s->dirs[i].err));
        fj_int(j, "plugin_files", s->dirs[i].plugin_files);
        fj_close_obj(j);
    }
    fj_close_arr(j);
    fj_close_obj(j);
}

/* Set bits as an array of names (caps or memory types). */
static void json_names(fi_json *j, const char *key, uint32_t bits, bool mem)
{
    static const char *const caps[] = {"LOCAL", "REMOTE", "NOTIF", "PROGRESS"};
    fj_arr(j, key);
    for (unsigned i = 0; i < (mem ? FERRY_MEM_TYPE_COUNT : 4u); i++)
        if (bits & (1u << i))
            fj_str(j, NULL, mem ? ferry_mem_type_name((ferry_mem_type)i) : caps[i]);
    fj_close_arr(j);
}

static const char *param_value(const fi_plugin *p, const char *key)
{
    for (size_t k = 0; k < p->num_values; k++)
        if (!strcmp(p->values[k].key, key))
            return p->values[k].value;
    return NULL;
}

static void json_plugin(fi_json *j, const fi_plugin *p)
{
    fj_obj(j, NULL);
    fj_str(j, "name", p->name);
    fj_str(j, "path", p->path[0] ? p->path : NULL);
    if (p->abi)
        fj_int(j, "abi_version", p->abi);
    else
        fj_str(j, "abi_version", NULL);
    fj_str(j, "status", p->status == FERRY_OK ? "loaded" : "refused");
    fj_str(j, "error", p->status == FERRY_OK ? NULL : p->error);
    fj_str(j, "error_code", p->status == FERRY_OK ? NULL : ferry_status_name(p->status));
    if (p->status == FERRY_OK) {
        json_names(j, "mem_types", p->mem_mask, true);
        fj_bool(j, "backend_created", p->created);
        fj_str(j, "backend_error", p->created ? NULL : ferry_status_name(p->create_rc));
        if (p->created) {
            json_names(j, "caps", p->caps, false);
            json_names(j, "runtime_mem_types", p->rt_mem_mask, true);
        }
        fj_arr(j, "params");
        for (size_t i = 0; i < p->num_params; i++) {
            fj_obj(j, NULL);
            fj_str(j, "key", p->params[i].key);
            fj_str(j, "default", p->params[i].default_value);
            fj_str(j, "help", p->params[i].help);
            if (p->created)
                fj_str(j, "value", param_value(p, p->params[i].key));
            fj_close_obj(j);
        }
        fj_close_arr(j);
    }
    fj_close_obj(j);
}

static void json_ucx(fi_json *j, const fi_ucx *u)
{
    fj_obj(j, "ucx");
    fj_str(j, "ucx_info", u->ucx_info[0] ? u->ucx_info : NULL);
    fj_str(j, "version", u->version[0] ? u->version : NULL);
    fj_str(j, "error", u->ok ? NULL : u->error);
    fj_arr(j, "transports");
    for (size_t i = 0; i < u->num_tls; i++) {
        fj_obj(j, NULL);
        fj_str(j, "name", u->tls[i].name);
        fj_arr(j, "devices");
        for (size_t k = 0; k < u->tls[i].num_devs; k++) {
            fj_obj(j, NULL);
            fj_str(j, "name", u->tls[i].devs[k].name);
            fj_str(j, "type", u->tls[i].devs[k].type);
            fj_close_obj(j);
        }
        fj_close_arr(j);
        fj_close_obj(j);
    }
    fj_close_arr(j);
    fj_close_obj(j);
}

static void json_fab(fi_json *j, const fi_fab *f)
{
    fj_obj(j, "libfabric");
    fj_str(j, "fi_info", f->fi_info[0] ? f->fi_info : NULL);
    fj_str(j, "error", f->ok ? NULL : f->error);
    fj_arr(j, "providers");
    for (size_t i = 0; i < f->num_provs; i++) {
        fj_obj(j, NULL);
        fj_str(j, "name", f->provs[i].name);
        fj_arr(j, "domains");
        for (size_t k = 0; k < f->provs[i].num_domains; k++)
            fj_str(j, NULL, f->provs[i].domains[k]);
        fj_close_arr(j);
        fj_close_obj(j);
    }
    fj_close_arr(j);
    fj_close_obj(j);
}

static void json_gpu(fi_json *j, const fi_gpu *g)
{
    fj_obj(j, "gpu");
    fj_str(j, "driver", g->lib);
    fj_bool(j, "driver_found", g->driver);
    if (g->driver_version > 0)
        fj_int(j, "driver_version", g->driver_version);
    else
        fj_str(j, "driver_version", NULL); /* unknown */
    fj_str(j, "error", g->ok ? NULL : g->error);
    fj_arr(j, "devices");
    for (int i = 0; g->ok && i < g->count && i < FI_MAX_GPUS; i++) {
        const fi_gpu_dev *d = &g->devs[i];
        char cc[16];
        snprintf(cc, sizeof(cc), "%d.%d", d->cc_major, d->cc_minor);
        fj_obj(j, NULL);
        fj_int(j, "index", i);
        fj_str(j, "name", d->name);
        fj_str(j, "uuid", d->uuid[0] ? d->uuid : NULL);
        if (d->mem_bytes)
            fj_int(j, "memory_bytes", (long long)d->mem_bytes);
        else
            fj_str(j, "memory_bytes", NULL);
        fj_str(j, "compute_capability", cc);
        fj_str(j, "pci_bus_id", d->pci[0] ? d->pci : NULL);
        fj_close_obj(j);
    }
    fj_close_arr(j);
    fj_obj(j, "cufile");
    fj_str(j, "library", g->cufile_lib);
    fj_bool(j, "found", g->cufile);
    fj_str(j, "error", g->cufile ? NULL : g->cufile_error);
    fj_bool(j, "nvidia_fs", g->nvidia_fs);
    fj_close_obj(j);
    fj_close_obj(j);
}

static bool print_json(const fi_opts *o, const fi_facts *f)
{
    FILE *out = ft_out_open(o->json);
    if (!out) {
        fprintf(stderr, "%s: cannot write %s: %s\n", prog, o->json, strerror(errno));
        return false;
    }
    fi_json j;
    fj_begin(&j, out);
    if (o->build && !o->backend)
        json_build(&j, &f->search);
    if (o->plugins) {
        if (!o->backend)
            json_search(&j, &f->search);
        fj_arr(&j, "plugins");
        for (size_t i = 0; i < f->num_plugins; i++)
            if (!o->backend || !strcasecmp(o->backend, f->plugins[i].name))
                json_plugin(&j, &f->plugins[i]);
        fj_close_arr(&j);
    }
    if (o->ucx)
        json_ucx(&j, &f->ucx);
    if (o->fab)
        json_fab(&j, &f->fab);
    if (o->gpu)
        json_gpu(&j, &f->gpu);
    bool ok = fj_end(&j);
    if (!ft_out_close(out) || !ok) {
        fprintf(stderr, "%s: writing %s failed\n", prog, o->json);
        return false;
    }
    return true;
}

/* ---- main ---- */

/* The plugins, each with a backend instance when it loads. With -b, only
 * that one is instantiated; false when it is not there. */
static bool gather_plugins(ferry_agent *agent, const fi_opts *o, fi_facts *f)
{
    ferry_status rc = fi_plugins_collect(agent, &f->plugins, &f->num_plugins);
    if (rc != FERRY_OK) {
        fprintf(stderr, "%s: cannot list plugins: %s\n", prog, ferry_strerror(rc));
        return false;
    }
    bool found = !o->backend;
    for (size_t i = 0; i < f->num_plugins; i++) {
        if (o->backend && strcasecmp(o->backend, f->plugins[i].name))
            continue;
        found = true;
        fi_plugin_instantiate(agent, &f->plugins[i]);
    }
    if (!found) {
        fprintf(stderr, "%s: no plugin named %s; found:", prog, o->backend);
        for (size_t i = 0; i < f->num_plugins; i++)
            fprintf(stderr, " %s", f->plugins[i].name);
        fprintf(stderr, " (search path: %s)\n",
                fi_plugin_dir_env() ? fi_plugin_dir_env() : "beside libferry");
    }
    return found;
}

int main(int argc, char **argv)
{
    fi_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc)
        return rc;
    /* Refusals and backend failures are reported here; the library's own
     * warnings about them would only repeat it (errors still show). */
    setenv("FERRY_LOG_LEVEL", "error", 0);
    setenv("UCX_LOG_FILE", "stderr", 0); /* UCX logs to stdout: keep --json parseable */
    static fi_facts f;                   /* large (UCX and GPU tables): not on the stack */
    fi_search_get(&f.search);
    ferry_agent *agent = NULL;
    if (o.plugins) {
        if (!(agent = fi_scratch_agent(prog)))
            return 1;
        if (!gather_plugins(agent, &o, &f)) {
            ferry_agent_destroy(agent);
            return 1;
        }
    }
    if (o.ucx)
        fi_ucx_probe(&f.ucx);
    if (o.fab)
        fi_fab_probe(&f.fab);
    if (o.gpu)
        fi_gpu_probe(&f.gpu);
    bool ok = true;
    if (o.json)
        ok = print_json(&o, &f);
    else
        print_text(&o, &f);
    /* The backends' params are owned by the agent: destroy after printing. */
    ferry_agent_destroy(agent);
    free(f.plugins);
    return ok ? 0 : 1;
}
