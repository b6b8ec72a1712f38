/* SPDX-License-Identifier: Apache-2.0 */
/* ferry-check: diagnoses a ferry installation. One line per problem found,
 * each saying what to do about it:
 *
 *   ferry-check: PROBLEM <what is wrong>; fix: <what to do>
 *
 * and exit status 0 when healthy, 1 when a problem was found (2: bad usage).
 * -v adds an "ok" line per check passed. "note" lines say what could not be
 * checked or may matter; they never fail the run. --json writes the same
 * as one JSON object (problems with their fixes, notes, checks passed).
 *
 * Checks that need a question answered (a registration size, a port, GPUs)
 * run only when asked, by an option or by the environment configuring that
 * use: a CPU-only host has no GPU problem. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "ferry/plugin.h"
#include "info-common.h"

static const char *prog = "ferry-check";

#define FC_MAX_LIST 32

typedef struct fc_opts {
    bool verbose, gpu, gds;
    const char *etcd[FC_MAX_LIST];
    size_t num_etcd;
    const char *backends[FC_MAX_LIST];
    size_t num_backends;
    const char *tls; /* --tls: a UCX transport list besides UCX_TLS */
    bool has_reg;
    uint64_t reg_bytes;
    int listen_port; /* 0: not asked */
    const char *listen_host;
    int timeout_ms;
    const char *json;    /* --json: where to, "-" for stdout */
    const char *storage; /* --storage: a dir the POSIX backend will use */
} fc_opts;

static fc_opts opts;
static int problems, passed, warnings;
/* --json: what the lines say, gathered ("problems", "notes", "passed"). */
static json_t *fc_doc;

static void fc_record(const char *list, json_t *item)
{
    if (!fc_doc) {
        json_decref(item);
        return;
    }
    json_t *arr = json_object_get(fc_doc, list);
    if (!arr) {
        arr = json_array();
        json_object_set_new(fc_doc, list, arr);
    }
    json_array_append_new(arr, item);
}

/* ---- reporting ---- */

static void fc_problem(const char *what, const char *fix)
{
    printf("%s: PROBLEM %s; fix: %s\n", prog, what, fix);
    fflush(stdout);
    problems++;
    fc_record("problems", json_pack("{s:s, s:s}", "what", what, "fix", fix));
}

/* A setting that makes trouble likely, not certain: reported with its fix,
 * but the installation still counts as healthy. */
static void fc_warn(const char *what, const char *fix)
{
    printf("%s: WARNING %s; fix: %s\n", prog, what, fix);
    fflush(stdout);
    warnings++;
    fc_record("warnings", json_pack("{s:s, s:s}", "what", what, "fix", fix));
}

static void fc_ok(const char *what)
{
    passed++;
    fc_record("passed", json_string(what));
    if (opts.verbose) {
        printf("%s: ok: %s\n", prog, what);
        fflush(stdout);
    }
}

static void fc_note(const char *what)
{
    printf("%s: note: %s\n", prog, what);
    fflush(stdout);
    fc_record("notes", json_string(what));
}

/* snprintf into buf, returning buf: keeps each check's messages short. */
static const char *fmt(char *buf, size_t cap, const char *f, ...)
    __attribute__((format(printf, 3, 4)));
static const char *fmt(char *buf, size_t cap, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, cap, f, ap);
    va_end(ap);
    return buf;
}
#define F(buf, ...) fmt(buf, sizeof(buf), __VA_ARGS__)

/* ---- options ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s [-v] [--backend NAME]... [--tls LIST] [--etcd HOST:PORT]...\n"
            "                   [--gpu] [--gds] [--reg-bytes N] [--listen-port P] [--storage DIR]\n"
            "                   [--listen-host H] [--timeout-ms MS] [--json [FILE]]\n"
            "Diagnoses this ferry installation: one line per problem, exit 0 when healthy,\n"
            "1 when a problem was found, 2 on bad usage.\n"
            "  -v, --verbose        also an \"ok\" line per check passed\n"
            "  -b, --backend NAME   this backend must load and be created here (repeatable)\n"
            "      --tls LIST       UCX transports that must exist (as UCX_TLS, also checked)\n"
            "      --etcd HOST:PORT etcd endpoint to reach (repeatable, or a comma list; also\n"
            "                       NIXL_ETCD_ENDPOINTS and FERRY_ETCD_ENDPOINTS)\n"
            "      --gpu            the CUDA driver and a GPU must be there\n"
            "      --gds            cuFile (GPUDirect Storage) must be there (implies --gpu)\n"
            "      --reg-bytes N    bytes to register (4K, 64MiB, 8G): locked-memory limit\n"
            "      --listen-port P  the side-channel listener's port must be free\n"
            "      --listen-host H  its address (default 0.0.0.0, the agent's default)\n"
            "      --timeout-ms MS  bound of each network probe (default 1000)\n"
            "      --storage DIR    the POSIX backend's needs there: O_DIRECT (and its\n"
            "                       alignment), io_uring allowed by the kernel\n"
            "      --json [FILE]    also the result as one JSON object, to FILE (overwritten)\n"
            "                       or standard output (no FILE, or -: the lines go to stderr)\n"
            "      --version        the version, one line\n"
            "  -h, --help           this text\n",
            prog);
}

static bool add_list(const char **list, size_t *n, const char *v)
{
    if (*n == FC_MAX_LIST) {
        fprintf(stderr, "%s: at most %d of each repeatable option\n", prog, FC_MAX_LIST);
        return false;
    }
    list[(*n)++] = v;
    return true;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_opts(int argc, char **argv)
{
    enum {
        O_TLS = 256,
        O_ETCD,
        O_GPU,
        O_GDS,
        O_REG,
        O_PORT,
        O_HOST,
        O_TIMEOUT,
        O_JSON,
        O_VER,
        O_STORAGE
    };
    static const struct option longs[] = {
        {"verbose", no_argument, NULL, 'v'},
        {"backend", required_argument, NULL, 'b'},
        {"tls", required_argument, NULL, O_TLS},
        {"etcd", required_argument, NULL, O_ETCD},
        {"gpu", no_argument, NULL, O_GPU},
        {"gds", no_argument, NULL, O_GDS},
        {"reg-bytes", required_argument, NULL, O_REG},
        {"listen-port", required_argument, NULL, O_PORT},
        {"listen-host", required_argument, NULL, O_HOST},
        {"timeout-ms", required_argument, NULL, O_TIMEOUT},
        {"json", optional_argument, NULL, O_JSON},
        {"storage", required_argument, NULL, O_STORAGE},
        {"version", no_argument, NULL, O_VER},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opts.listen_host = "0.0.0.0";
    opts.timeout_ms = 1000;
    int c;
    while ((c = getopt_long(argc, argv, "vb:h", longs, NULL)) != -1) {
        bool good = true;
        switch (c) {
        case 'v':
            opts.verbose = true;
            break;
        case 'b':
            good = add_list(opts.backends, &opts.num_backends, optarg);
            break;
        case O_TLS:
            opts.tls = optarg;
            break;
        case O_ETCD:
            good = add_list(opts.etcd, &opts.num_etcd, optarg);
            break;
        case O_GPU:
            opts.gpu = true;
            break;
        case O_GDS:
            opts.gds = opts.gpu = true;
            break;
        case O_REG:
            good = opts.has_reg = fi_parse_size(optarg, &opts.reg_bytes);
            break;
        case O_PORT:
            good = parse_int(optarg, 1, 65535, &opts.listen_port) == 0;
            break;
        case O_HOST:
            opts.listen_host = optarg;
            break;
        case O_TIMEOUT:
            good = parse_int(optarg, 1, 600000, &opts.timeout_ms) == 0;
            break;
        case O_JSON:
            opts.json = ft_json_dest(optarg, argc, argv, &optind);
            break;
        case O_STORAGE:
            opts.storage = optarg;
            break;
        case O_VER:
            ft_print_version(prog);
            exit(0);
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return 2;
        }
        if (!good) {
            fprintf(stderr, "%s: bad value '%s' for %s\n", prog, optarg, argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
        return 2;
    }
    return 0;
}

/* ---- the library and the plugin search path ---- */

/* A tool of one installation running with another's libferry (an older
 * LD_LIBRARY_PATH entry) explains many strange failures at once. */
static void check_version(const fi_search *s)
{
    char what[1200];
    const char *built = fi_build_get()->version, *loaded = ferry_version_string();
    if (strcmp(built, loaded))
        fc_problem(F(what, "%s %s runs with libferry %s (%s)", prog, built, loaded, s->lib),
                   "put this installation's libferry first (LD_LIBRARY_PATH, ldconfig), or run "
                   "the ferry-check installed with that libferry");
    else
        fc_ok(F(what, "libferry %s (%s)", loaded, s->lib[0] ? s->lib : "path unknown"));
}

static int expected_shared(void)
{
    int n = 0;
    const fi_build *b = fi_build_get();
    for (size_t i = 0; i < b->num_plugins; i++)
        n += b->plugins[i].shared;
    return n;
}

/* FERRY_PLUGIN_DIR (or NIXL_PLUGIN_DIR) is taken as given: each of its dirs must exist and hold
 * plugins (the loader silently skips a wrong one, so a typo there only shows
 * later as a backend "not found"). Without it, the dirs beside libferry must
 * hold the plugins this build made. */
static void check_plugin_dirs(const fi_search *s)
{
    char what[1400], fix[1400];
    const char *install = fi_build_get()->plugin_install_dir;
    F(fix,
      "point FERRY_PLUGIN_DIR at the dir holding libferry_plugin_*.so (this build installs "
      "them to %s), or unset it to use the dirs beside libferry",
      install);
    int total = 0;
    for (size_t i = 0; i < s->num_dirs; i++) {
        const fi_dir *d = &s->dirs[i];
        total += d->plugin_files;
        if (!s->from_env)
            continue;
        if (!d->exists)
            fc_problem(F(what, "%s names %s: %s", s->env_name, d->path, strerror(d->err)), fix);
        else if (!d->plugin_files && expected_shared() > 0)
            fc_problem(
                F(what, "%s names %s, which holds no libferry_plugin_*.so", s->env_name, d->path),
                fix);
        else if (!d->plugin_files) /* nothing is lost: this build made no shared plugin */
            fc_note(F(what,
                      "%s names %s, which holds no plugin (this build has "
                      "builtin plugins only)",
                      s->env_name, d->path));
        else
            fc_ok(F(what, "plugin dir %s: %d plugin file(s)", d->path, d->plugin_files));
    }
    if (s->from_env)
        return;
    if (!total && expected_shared() > 0)
        fc_problem(F(what, "no plugin beside libferry (%s, %s): only builtin backends load",
                     s->dirs[0].path, s->num_dirs > 1 ? s->dirs[1].path : "?"),
                   F(fix,
                     "install the plugins (ninja install puts them in %s), or set "
                     "FERRY_PLUGIN_DIR to the dir holding them",
                     install));
    else
        fc_ok(F(what, "plugin dirs beside libferry: %d plugin file(s)", total));
}

/* ---- plugins and backends ---- */

static const char *dir_of(const char *path, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", path);
    char *slash = strrchr(buf, '/');
    if (slash)
        *slash = '\0';
    return buf;
}

static void check_refused(const fi_plugin *p)
{
    char what[1800], fix[1400], dir[1024];
    dir_of(p->path, dir, sizeof(dir));
    if (p->status == FERRY_ERR_ABI) {
        fc_problem(F(what, "plugin %s (%s) is built for plugin ABI %u; this libferry speaks ABI %u",
                     p->name, p->path, p->abi, (unsigned)FERRY_PLUGIN_ABI_VERSION),
                   F(fix,
                     "rebuild it against this ferry's include/ferry/plugin.h, or remove it "
                     "from %s",
                     dir));
        return;
    }
    if (strstr(p->error, "dlopen") && strstr(p->error, "cannot open shared object"))
        F(fix, "install the library it needs (ldd %s shows which) or remove it from %s", p->path,
          dir);
    else
        F(fix, "rebuild it with FERRY_PLUGIN_DEFINE against this ferry, or remove it from %s", dir);
    fc_problem(F(what, "plugin %s (%s) cannot be loaded: %s", p->name, p->path[0] ? p->path : "?",
                 p->error),
               fix);
}

static const fi_plugin *find_plugin(const fi_plugin *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcasecmp(list[i].name, name))
            return &list[i];
    return NULL;
}

static bool backend_named(const char *name)
{
    for (size_t i = 0; i < opts.num_backends; i++)
        if (!strcasecmp(opts.backends[i], name))
            return true;
    return false;
}

/* A plugin this build made must be found, or its backend is simply
 * missing at run time ("no plugin named UCX"). */
static void check_built(const fi_plugin *list, size_t n)
{
    char what[600], fix[1400], lower[64];
    const fi_build *b = fi_build_get();
    for (size_t i = 0; i < b->num_plugins; i++) {
        const fi_built_plugin *bp = &b->plugins[i];
        if (!bp->shared || find_plugin(list, n, bp->name))
            continue;
        size_t k = 0;
        for (; bp->name[k] && k + 1 < sizeof(lower); k++)
            lower[k] =
                (char)(bp->name[k] >= 'A' && bp->name[k] <= 'Z' ? bp->name[k] + 32 : bp->name[k]);
        lower[k] = '\0';
        fc_problem(F(what, "plugin %s was built (%s) but is not along the plugin search path",
                     bp->name, bp->how),
                   F(fix,
                     "install libferry_plugin_%s.so to %s, or add the dir holding it to "
                     "FERRY_PLUGIN_DIR",
                     lower, b->plugin_install_dir));
    }
}

/* OBJ reaches its store only when asked: one HEAD (query_mem of a key no
 * one uses) tells a reachable endpoint from an unreachable one or refused
 * credentials; a missing object is the normal answer. */
static void check_obj(ferry_agent *agent)
{
    char what[900];
    ferry_backend *be;
    ferry_dlist *l = NULL;
    ferry_mem_info info;
    if (ferry_backend_find(agent, "OBJ", &be) != FERRY_OK ||
        ferry_dlist_create(FERRY_MEM_OBJ, 1, &l) != FERRY_OK)
        return;
    ferry_dlist_add_meta(l, 0, 1, 0, "ferry-check-probe", 17);
    ferry_mem_info_init(&info);
    ferry_clear_error();
    ferry_status rc = ferry_query_mem(agent, l, be, &info, 1);
    ferry_dlist_destroy(l);
    if (rc == FERRY_OK)
        fc_ok(F(what, "OBJ: the S3 endpoint answers (bucket reachable, credentials accepted)"));
    else
        fc_problem(F(what, "OBJ: the S3 endpoint cannot be used: %s: %s", ferry_status_name(rc),
                     ferry_last_error()),
                   "check endpoint_override/AWS_ENDPOINT_URL, the bucket and the credentials");
}

/* Backends named with --backend must be created here; any other that
 * cannot be only gets a note (a CUDA plugin on a CPU host is normal). */
static void check_backend(ferry_agent *agent, fi_plugin *p)
{
    char what[600], fix[600];
    fi_plugin_instantiate(agent, p);
    if (p->created) {
        char caps[96], mem[96];
        fc_ok(F(what, "backend %s created: %s; memory %s", p->name,
                fi_caps_str(p->caps, caps, sizeof(caps)),
                fi_mem_str(p->rt_mem_mask, mem, sizeof(mem))));
        if (!strcmp(p->name, "OBJ"))
            check_obj(agent);
        return;
    }
    F(what, "backend %s cannot be created here: %s (%s)", p->name, ferry_status_name(p->create_rc),
      ferry_strerror(p->create_rc));
    if (backend_named(p->name))
        fc_problem(what, F(fix,
                           "run with FERRY_LOG_LEVEL=info to see the plugin's reason; "
                           "ferry-info -b %s lists its params",
                           p->name));
    else
        fc_note(what);
}

static void check_plugins(ferry_agent *agent, fi_plugin **list_out, size_t *n_out)
{
    char what[1400];
    fi_plugin *list = NULL;
    size_t n = 0;
    ferry_status rc = fi_plugins_collect(agent, &list, &n);
    if (rc != FERRY_OK) {
        fc_problem(F(what, "cannot list plugins: %s", ferry_strerror(rc)),
                   "check that libferry is complete (reinstall it)");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (list[i].status != FERRY_OK) {
            check_refused(&list[i]);
            continue;
        }
        fc_ok(F(what, "plugin %s loads (%s, ABI %u)", list[i].name, list[i].path, list[i].abi));
        check_backend(agent, &list[i]);
    }
    check_built(list, n);
    for (size_t i = 0; i < opts.num_backends; i++)
        if (!find_plugin(list, n, opts.backends[i]))
            fc_problem(F(what, "no plugin named %s along the plugin search path", opts.backends[i]),
                       "check the name (ferry-info -p lists the plugins found) or install it");
    *list_out = list;
    *n_out = n;
}

/* ---- UCX transports ---- */

/* UCX_TLS names transports and aliases for families of them; an alias is
 * satisfied by any member (UCX uses what exists of it). */
static const struct {
    const char *alias, *members;
} ucx_aliases[] = {
    {"sm", "posix,sysv,xpmem,cma,knem"},
    {"shm", "posix,sysv,xpmem,cma,knem"},
    {"mm", "posix,sysv,xpmem"},
    {"ib", "rc_verbs,rc_mlx5,ud_verbs,ud_mlx5,dc_mlx5"},
    {"rc", "rc_verbs,rc_mlx5"},
    {"rc_v", "rc_verbs"},
    {"rc_x", "rc_mlx5"},
    {"ud", "ud_verbs,ud_mlx5"},
    {"ud_v", "ud_verbs"},
    {"ud_x", "ud_mlx5"},
    {"dc", "dc_mlx5"},
    {"dc_x", "dc_mlx5"},
    {"cuda", "cuda_copy,cuda_ipc,gdr_copy"},
    {"rocm", "rocm_copy,rocm_ipc,rocm_gdr"},
    {"ugni", "ugni_rdma,ugni_udt,ugni_smsg"},
};

static const char *ucx_members(const char *tl)
{
    for (size_t i = 0; i < sizeof(ucx_aliases) / sizeof(ucx_aliases[0]); i++)
        if (!strcasecmp(ucx_aliases[i].alias, tl))
            return ucx_aliases[i].members;
    return tl;
}

/* Is any transport of a comma list there? */
static bool ucx_any(const fi_ucx *u, const char *members)
{
    char copy[256], *save = NULL;
    snprintf(copy, sizeof(copy), "%s", members);
    for (char *m = strtok_r(copy, ",", &save); m; m = strtok_r(NULL, ",", &save))
        if (fi_ucx_find_tl(u, m))
            return true;
    return false;
}

/* What makes a family of transports appear. */
static const char *ucx_fix(const char *members)
{
    if (strstr(members, "verbs") || strstr(members, "mlx5"))
        return "needs an RDMA device: install rdma-core and UCX's IB support (libucx0 built "
               "--with-verbs/--with-mlx5), check ibv_devinfo, or drop it from UCX_TLS";
    if (strstr(members, "cuda") || strstr(members, "gdr"))
        return "needs UCX built with CUDA (its cuda module) and a GPU; gdr_copy also the gdrdrv "
               "module; or drop it from UCX_TLS";
    if (strstr(members, "rocm"))
        return "needs UCX built with ROCm and an AMD GPU; or drop it from UCX_TLS";
    if (!strcmp(members, "cma"))
        return "cma needs ptrace between processes: sysctl kernel.yama.ptrace_scope=0, or "
               "--cap-add SYS_PTRACE in a container; or drop it from UCX_TLS";
    if (strstr(members, "posix") || strstr(members, "sysv"))
        return "shared memory needs a writable /dev/shm (containers: --ipc=host or a larger "
               "--shm-size); or drop it from UCX_TLS";
    if (!strcmp(members, "knem") || !strcmp(members, "xpmem"))
        return "load its kernel module and use a UCX built with it; or drop it from UCX_TLS";
    if (!strcmp(members, "tcp"))
        return "no network interface UCX can use: check UCX_NET_DEVICES and the interfaces";
    return "check the spelling against ucx_info -d, or drop it from UCX_TLS";
}

static void ucx_available(const fi_ucx *u, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < u->num_tls && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? " " : "", u->tls[i].name);
}

/* One entry of a UCX_TLS list (":aux" marks an auxiliary transport). */
static void check_tl(const fi_ucx *u, const char *var, char *entry)
{
    char what[1200], fix[800], avail[512];
    char *aux = strchr(entry, ':');
    if (aux)
        *aux = '\0';
    if (!*entry || !strcasecmp(entry, "all"))
        return;
    const char *members = ucx_members(entry);
    if (ucx_any(u, members)) {
        fc_ok(F(what, "%s entry %s: UCX has it", var, entry));
        return;
    }
    ucx_available(u, avail, sizeof(avail));
    bool alias = strcmp(members, entry) != 0;
    fc_problem(F(what, "%s asks for %s but UCX here has no %s transport%s%s%s (it has: %s)", var,
                 entry, alias ? "such" : entry, alias ? " (" : "", alias ? members : "",
                 alias ? ")" : "", avail),
               F(fix, "%s: %s", entry, ucx_fix(members)));
}

static void check_tls_list(const fi_ucx *u, const char *var, const char *list)
{
    char what[600];
    if (list[0] == '^') { /* "all but these": nothing is required */
        fc_ok(F(what, "%s=%s excludes transports only", var, list));
        return;
    }
    char *copy = strdup(list), *save = NULL;
    for (char *e = strtok_r(copy, ",", &save); e; e = strtok_r(NULL, ",", &save))
        check_tl(u, var, e);
    free(copy);
}

/* Was this network device listed by an earlier transport (tcp and rc both
 * list a NIC)? */
static bool net_dev_seen(const fi_ucx *u, size_t tl, size_t dev)
{
    const char *name = u->tls[tl].devs[dev].name;
    for (size_t i = 0; i <= tl; i++)
        for (size_t k = 0; k < (i == tl ? dev : u->tls[i].num_devs); k++)
            if (!strcmp(u->tls[i].devs[k].name, name))
                return true;
    return false;
}

static void check_net_devices(const fi_ucx *u, const char *list)
{
    char what[600], fix[800], seen[400] = "";
    size_t len = 0;
    for (size_t i = 0; i < u->num_tls; i++) /* network devices: those UCX_NET_DEVICES picks */
        for (size_t k = 0; k < u->tls[i].num_devs && len < sizeof(seen); k++) {
            const fi_ucx_dev *d = &u->tls[i].devs[k];
            if (!strcmp(d->type, "network") && !net_dev_seen(u, i, k))
                len += (size_t)snprintf(seen + len, sizeof(seen) - len, "%s%s", len ? ", " : "",
                                        d->name);
        }
    F(fix, "use devices UCX lists (%s), or unset it", len ? seen : "none here");
    char *copy = strdup(list), *save = NULL;
    for (char *d = strtok_r(copy, ",", &save); d; d = strtok_r(NULL, ",", &save)) {
        if (!strcasecmp(d, "all") || fi_ucx_has_dev(u, d)) {
            fc_ok(F(what, "UCX_NET_DEVICES entry %s: UCX sees it", d));
            continue;
        }
        fc_problem(F(what, "UCX_NET_DEVICES names %s, which UCX does not see", d), fix);
    }
    free(copy);
}

/* UCX_TLS (and --tls) against the transports ucx_info reports. */
static void check_ucx(const fi_plugin *list, size_t n)
{
    char what[600];
    const char *env = getenv("UCX_TLS"), *dev = getenv("UCX_NET_DEVICES");
    bool want_tls = (env && *env) || opts.tls, want_dev = dev && *dev;
    if (!want_tls && !want_dev)
        return;
    const fi_plugin *p = find_plugin(list, n, "UCX");
    if (!p || p->status != FERRY_OK)
        fc_problem(F(what, "UCX transports are asked for (%s) but the UCX plugin is %s",
                     want_tls ? "UCX_TLS/--tls" : "UCX_NET_DEVICES", p ? "refused" : "not found"),
                   "build ferry with UCX (libucx-dev; meson -Ducx=enabled) and install its plugin");
    static fi_ucx u; /* large: not on the stack */
    fi_ucx_probe(&u);
    if (!u.ok) {
        fc_note(F(what, "cannot check UCX's transports: %s%s", u.error,
                  u.ucx_info[0] ? "" : " (install ucx-utils, or set FERRY_UCX_INFO)"));
        return;
    }
    if (env && *env)
        check_tls_list(&u, "UCX_TLS", env);
    if (opts.tls)
        check_tls_list(&u, "--tls", opts.tls);
    if (want_dev)
        check_net_devices(&u, dev);
}

/* ---- etcd ---- */

/* A TCP connect bounded by opts.timeout_ms; "" when it connected, else
 * why not, into why. */
static bool tcp_reach(const char *host, uint16_t port, char *why, size_t cap)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *list;
    char service[8];
    snprintf(service, sizeof(service), "%u", port);
    int gai = getaddrinfo(host, service, &hints, &list);
    if (gai) {
        snprintf(why, cap, "cannot resolve %s: %s", host, gai_strerror(gai));
        return false;
    }
    bool ok = false;
    snprintf(why, cap, "no address");
    for (struct addrinfo *ai = list; ai && !ok; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int err = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : errno;
        if (err == EINPROGRESS) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            socklen_t len = sizeof(err);
            if (poll(&pfd, 1, opts.timeout_ms) == 1)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            else
                err = ETIMEDOUT;
        }
        close(fd);
        ok = err == 0;
        if (err == ETIMEDOUT)
            snprintf(why, cap, "no answer within %d ms", opts.timeout_ms);
        else if (err)
            snprintf(why, cap, "%s", strerror(err));
    }
    freeaddrinfo(list);
    return ok;
}

static void check_endpoints(const char *source, const char *value)
{
    char what[1600], fix[600], host[256], why[600];
    char *copy = strdup(value), *save = NULL;
    for (char *e = strtok_r(copy, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
        uint16_t port;
        if (!strncmp(e, "unix:", 5)) { /* a socket file: no TCP to try */
            fc_note(F(what, "etcd endpoint %s (from %s) is a unix socket: not checked", e, source));
        } else if (!fi_parse_endpoint(e, 2379, host, sizeof(host), &port)) {
            fc_problem(F(what, "%s: cannot use etcd endpoint '%s'", source, e),
                       "write it as host:port or http://host:port");
        } else if (!tcp_reach(host, port, why, sizeof(why))) {
            fc_problem(F(what, "etcd endpoint %s (from %s) is unreachable: %s", e, source, why),
                       F(fix,
                         "start etcd there (--listen-client-urls http://0.0.0.0:%u), open "
                         "the firewall to it, or correct %s",
                         port, source));
        } else {
            fc_ok(F(what, "etcd endpoint %s (from %s) accepts connections", e, source));
        }
    }
    free(copy);
}

static void check_etcd(void)
{
    static const char *const vars[] = {"NIXL_ETCD_ENDPOINTS", "FERRY_ETCD_ENDPOINTS"};
    for (size_t i = 0; i < opts.num_etcd; i++)
        check_endpoints("--etcd", opts.etcd[i]);
    for (size_t i = 0; i < 2; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            check_endpoints(vars[i], v);
    }
}

/* ---- GPUs and cuFile ---- */

/* GPU use is configured by an option, a GPU backend asked for, CUDA
 * transports in UCX_TLS or a cuFile configuration. */
static bool wants_gds(void)
{
    return opts.gds || backend_named("GDS") || backend_named("GDS_MT") ||
           getenv("CUFILE_ENV_PATH_JSON");
}

/* A transport list asking for CUDA transports ("^cuda" excludes them). */
static bool tls_wants_cuda(const char *tls)
{
    return tls && tls[0] != '^' && (strstr(tls, "cuda") || strstr(tls, "gdr"));
}

static bool wants_gpu(void)
{
    bool cuda_tls = tls_wants_cuda(getenv("UCX_TLS")) || tls_wants_cuda(opts.tls);
    return opts.gpu || backend_named("CUDA") || cuda_tls || wants_gds();
}

static void check_cuda(const fi_gpu *g)
{
    char what[1200];
    if (!g->driver) {
        fc_problem(F(what, "%s", g->error),
                   "install the NVIDIA driver (libcuda.so.1 comes with it; in a container: "
                   "--gpus all with the NVIDIA container toolkit), or set FERRY_CUDA_LIB to it");
    } else if (!g->ok) {
        fc_problem(F(what, "CUDA driver %s found but %s", g->lib, g->error),
                   "check nvidia-smi, CUDA_VISIBLE_DEVICES and the container's GPU access");
    } else if (g->count == 0) {
        fc_problem(F(what, "CUDA driver %s sees no GPU", g->lib),
                   "check nvidia-smi and CUDA_VISIBLE_DEVICES");
    } else {
        char cv[32];
        fc_ok(F(what, "CUDA driver %s (CUDA %s): %d GPU(s), GPU 0: %s", g->lib,
                fi_cuda_version_str(g->driver_version, cv, sizeof(cv)), g->count, g->devs[0].name));
    }
}

static void check_cufile(const fi_gpu *g)
{
    char what[1200];
    if (!g->cufile) {
        fc_problem(F(what, "cuFile (%s) not found: %s", g->cufile_lib, g->cufile_error),
                   "install GPUDirect Storage (nvidia-gds, libcufile) or add its lib dir to "
                   "LD_LIBRARY_PATH; FERRY_CUFILE_LIB names another library");
        return;
    }
    fc_ok(F(what, "cuFile %s found", g->cufile_lib));
    if (!g->nvidia_fs)
        fc_note("the nvidia_fs kernel module is not loaded: cuFile runs in compatibility mode "
                "(through host memory); modprobe nvidia_fs for direct transfers");
}

static void check_gpu(void)
{
    if (!wants_gpu())
        return;
    static fi_gpu g; /* large: not on the stack */
    fi_gpu_probe(&g);
    check_cuda(&g);
    if (wants_gds())
        check_cufile(&g);
}

/* ---- locked memory ---- */

/* CAP_IPC_LOCK (bit 14) lifts RLIMIT_MEMLOCK for mlock and for RDMA
 * registration alike. */
static bool has_cap_ipc_lock(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long eff = 0;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "CapEff: %llx", &eff) == 1)
            break;
    if (f)
        fclose(f);
    return (eff >> 14) & 1;
}

static void check_memlock(void)
{
    if (!opts.has_reg)
        return;
    char what[600], fix[600], a[32], b[32];
    struct rlimit rl;
    if (getrlimit(RLIMIT_MEMLOCK, &rl)) {
        fc_note(F(what, "getrlimit(RLIMIT_MEMLOCK): %s", strerror(errno)));
        return;
    }
    fi_size_str(opts.reg_bytes, b, sizeof(b));
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= opts.reg_bytes) {
        fc_ok(F(what, "locked-memory limit %s covers %s",
                rl.rlim_cur == RLIM_INFINITY ? "unlimited" : fi_size_str(rl.rlim_cur, a, sizeof(a)),
                b));
        return;
    }
    fi_size_str(rl.rlim_cur, a, sizeof(a));
    if (has_cap_ipc_lock()) {
        fc_ok(F(what, "locked-memory limit %s is below %s, but CAP_IPC_LOCK lifts it", a, b));
        return;
    }
    unsigned long long kib = (opts.reg_bytes + 1023) / 1024;
    if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= opts.reg_bytes)
        F(fix, "raise it where the process starts: ulimit -l %llu (KiB) or ulimit -l unlimited",
          kib);
    else
        F(fix, "raise the hard limit too (memlock in /etc/security/limits.conf, "
               "LimitMEMLOCK=infinity for systemd, docker run --ulimit memlock=-1:-1), then "
               "ulimit -l unlimited");
    fc_problem(F(what, "locked-memory limit (ulimit -l) is %s, below the %s to register", a, b),
               fix);
}

/* ---- host memory: what bounds the memory registrations pin ---- */

static uint64_t mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    unsigned long long kb = 0;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return (uint64_t)kb * 1024u;
}

/* The agent cap of FERRY_MAX_REGISTERED_BYTES (its item without a name),
 * 0 when none. */
static uint64_t registration_cap(void)
{
    const char *v = getenv("FERRY_MAX_REGISTERED_BYTES");
    char item[128];
    uint64_t cap;
    for (const char *p = v; p && *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
        snprintf(item, sizeof(item), "%.*s", (int)strcspn(p, ","), p);
        if (!strchr(item, '=') && fi_parse_size(item, &cap))
            return cap;
    }
    return 0;
}

/* The locked-memory limit that applies, UINT64_MAX when none does. */
static uint64_t memlock_bound(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_MEMLOCK, &rl) || rl.rlim_cur == RLIM_INFINITY || has_cap_ipc_lock())
        return UINT64_MAX;
    return rl.rlim_cur;
}

static void check_pin_bounds(uint64_t avail, uint64_t lock, uint64_t cap)
{
    char what[600], fix[600], a[32], b[32];
    fi_size_str(avail, a, sizeof(a));
    if (cap > avail)
        fc_warn(F(what, "FERRY_MAX_REGISTERED_BYTES (%s) is above the host's MemAvailable (%s)",
                  fi_size_str(cap, b, sizeof(b)), a),
                F(fix, "lower FERRY_MAX_REGISTERED_BYTES below %s", a));
    else if (!cap && lock == UINT64_MAX)
        fc_warn("nothing bounds the memory registrations pin: ulimit -l is unlimited (or "
                "CAP_IPC_LOCK lifts it) and FERRY_MAX_REGISTERED_BYTES is unset",
                F(fix,
                  "set FERRY_MAX_REGISTERED_BYTES (or the agent's reg_cap_bytes) below "
                  "MemAvailable (%s), e.g. to half of it",
                  a));
    else if (!cap && lock > avail)
        fc_warn(F(what,
                  "ulimit -l (%s) is above the host's MemAvailable (%s): registrations can "
                  "exhaust host memory before the limit stops them",
                  fi_size_str(lock, b, sizeof(b)), a),
                F(fix, "lower ulimit -l, or set FERRY_MAX_REGISTERED_BYTES below %s", a));
    else
        fc_ok(F(what, "pinned memory is bounded below MemAvailable (%s)", a));
}

/* InfiniBand transports, whose registrations pin (tcp, shm and cma do not). */
static bool ucx_has_ib(const fi_ucx *u)
{
    for (size_t i = 0; i < u->num_tls; i++)
        if (!strncmp(u->tls[i].name, "rc", 2) || !strncmp(u->tls[i].name, "ud", 2) ||
            !strncmp(u->tls[i].name, "dc", 2))
            return true;
    return false;
}

/* UCX's InfiniBand registration cache keeps freed buffers pinned until it
 * is full; by default it is never full. */
static void check_ucx_rcache(uint64_t avail, uint64_t lock)
{
    char what[600], fix[600], a[32], b[32];
    const char *v = getenv("UCX_IB_RCACHE_MAX_SIZE");
    uint64_t size = UINT64_MAX;
    if (v && *v && strcasecmp(v, "inf") && !fi_parse_size(v, &size))
        return; /* UCX itself refuses a value it cannot read */
    fi_size_str(avail, a, sizeof(a));
    if (size == UINT64_MAX && lock == UINT64_MAX)
        fc_warn(
            F(what,
              "UCX's InfiniBand registration cache is unbounded "
              "(UCX_IB_RCACHE_MAX_SIZE=%s) and so is locked memory: buffers stay "
              "pinned after they are freed",
              v && *v ? v : "inf, UCX's default"),
            F(fix, "set UCX_IB_RCACHE_MAX_SIZE below MemAvailable (%s), e.g. a quarter of it", a));
    else if (size != UINT64_MAX && size > avail)
        fc_warn(F(what, "UCX_IB_RCACHE_MAX_SIZE (%s) is above the host's MemAvailable (%s)",
                  fi_size_str(size, b, sizeof(b)), a),
                F(fix, "lower UCX_IB_RCACHE_MAX_SIZE below %s", a));
}

static void check_host_memory(const fi_plugin *list, size_t n)
{
    uint64_t avail = mem_available(), lock = memlock_bound();
    if (!avail) {
        fc_note("cannot read MemAvailable from /proc/meminfo: host memory not checked");
        return;
    }
    check_pin_bounds(avail, lock, registration_cap());
    const fi_plugin *p = find_plugin(list, n, "UCX");
    if (!p || p->status != FERRY_OK)
        return;
    static fi_ucx u; /* large: not on the stack */
    fi_ucx_probe(&u);
    if (u.ok && ucx_has_ib(&u))
        check_ucx_rcache(avail, lock);
}

/* ---- the listener's port ---- */

/* Binds (and listens on) the port the way the side-channel listener does
 * (SO_REUSEADDR), so the answer is the one the agent will get. */
static int try_listen(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return errno;
    int one = 1, err = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 1))
        err = errno;
    close(fd);
    return err;
}

static void check_listen(void)
{
    if (!opts.listen_port)
        return;
    char what[600], fix[600], service[8];
    snprintf(service, sizeof(service), "%d", opts.listen_port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *list;
    int gai = getaddrinfo(opts.listen_host, service, &hints, &list);
    if (gai) {
        fc_problem(F(what, "listen host %s: %s", opts.listen_host, gai_strerror(gai)),
                   "set listen_host to an address or name of this host (0.0.0.0: all)");
        return;
    }
    int err = ENOENT;
    for (struct addrinfo *ai = list; ai && err; ai = ai->ai_next)
        err = try_listen(ai);
    freeaddrinfo(list);
    F(what, "listener %s:%d: %s", opts.listen_host, opts.listen_port, strerror(err));
    if (!err)
        fc_ok(F(what, "listener port %s:%d is free", opts.listen_host, opts.listen_port));
    else if (err == EADDRINUSE)
        fc_problem(F(what, "listener port %s:%d is busy (another socket holds it)",
                     opts.listen_host, opts.listen_port),
                   F(fix,
                     "stop what holds it (ss -ltnp 'sport = :%d' shows it), or choose "
                     "another listen_port (0: any free port)",
                     opts.listen_port));
    else if (err == EACCES)
        fc_problem(what, "use a port >= 1024, or give the process CAP_NET_BIND_SERVICE");
    else if (err == EADDRNOTAVAIL)
        fc_problem(F(what, "listen host %s is not an address of this host", opts.listen_host),
                   "set listen_host to one of this host's addresses, or 0.0.0.0");
    else
        fc_problem(what, "check the address and port given to the listener");
}

/* ---- main ---- */

/* ---- storage (--storage DIR): what the POSIX backend needs there ---- */

static const char *fs_name(long magic)
{
    switch ((unsigned long)magic) {
    case 0xef53:
        return "ext4";
    case 0x58465342:
        return "xfs";
    case 0x9123683e:
        return "btrfs";
    case 0x01021994:
        return "tmpfs";
    case 0x794c7630:
        return "overlayfs";
    case 0x6969:
        return "nfs";
    case 0x65735546:
        return "fuse";
    default:
        return "another file system";
    }
}

/* Whether one process may read another's memory by cross-memory attach, as
 * SHM's peers do: a child reads a word of its parent, which is not its
 * descendant (like two agents started apart: Yama's ptrace_scope=1 refuses
 * it). 0 when allowed, else the errno. */
static int cma_probe(void)
{
    static volatile uint64_t word = 0x6665727279636d61ull;
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) {
        uint64_t got = 0;
        struct iovec mine = {&got, sizeof(got)}, theirs = {(void *)&word, sizeof(word)};
        ssize_t n = process_vm_readv(parent, &mine, 1, &theirs, 1, 0);
        _exit(n == (ssize_t)sizeof(got) ? (got == word ? 0 : EIO) : (errno & 0xff));
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return errno;
    return WIFEXITED(status) ? WEXITSTATUS(status) : ECHILD;
}

static int yama_scope(void)
{
    FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "r");
    int v = -1;
    if (f && fscanf(f, "%d", &v) != 1)
        v = -1;
    if (f)
        fclose(f);
    return v;
}

/* cma_probe's verdict, taken before any plugin is loaded: a fork after
 * UCX is in runs UCX's fork handlers for nothing. */
static int cma_err;

/* Which path SHM takes to peers of this host: the kernel decides. */
static void check_shm(const fi_plugin *list, size_t n)
{
    char what[600], scope[48] = "";
    const fi_plugin *p = find_plugin(list, n, "SHM");
    if (!p || p->status != FERRY_OK)
        return;
    int err = cma_err;
    if (!err) {
        fc_ok("SHM: cross-memory attach between processes is allowed: peers on this host "
              "are served by SHM (memfd mappings for ferry_mem_alloc memory, cross-memory "
              "attach for other memory)");
        return;
    }
    if (yama_scope() >= 0)
        snprintf(scope, sizeof(scope), "; kernel.yama.ptrace_scope=%d", yama_scope());
    fc_note(F(what,
              "SHM: cross-memory attach is refused here (process_vm_readv: %s%s): SHM "
              "declines peers on this host and UCX carries their data; to allow it: "
              "sysctl kernel.yama.ptrace_scope=0, agents under one user, no seccomp "
              "filter or LSM rule denying process_vm_readv",
              strerror(err), scope));
}

/* kernel.io_uring_disabled: 0 allowed, 1 for one group only, 2 never. */
static void check_io_uring_allowed(void)
{
    char what[300];
    FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
    int v = 0;
    if (f && fscanf(f, "%d", &v) != 1)
        v = 0;
    if (f)
        fclose(f);
    if (v == 0)
        fc_ok("io_uring is allowed by the kernel (the POSIX backend's default engine)");
    else
        fc_note(F(what,
                  "kernel.io_uring_disabled=%d: the POSIX backend falls back to Linux AIO "
                  "(engine=auto), engine=uring fails",
                  v));
}

/* Opens a scratch file of dir with O_DIRECT, writes one aligned block and
 * asks the kernel for the file's O_DIRECT alignment (sx). */
static int direct_probe(const char *dir, char *path, size_t cap, struct statx *sx)
{
    snprintf(path, cap, "%s/.ferry-check-XXXXXX", dir);
    int fd = mkstemp(path), err = 0;
    if (fd < 0)
        return errno;
    close(fd);
    void *buf = NULL;
    fd = open(path, O_RDWR | O_DIRECT);
    if (fd < 0 || posix_memalign(&buf, 4096, 4096) != 0)
        err = fd < 0 ? errno : ENOMEM;
    else if (memset(buf, 0, 4096) && pwrite(fd, buf, 4096, 0) != 4096)
        err = errno;
    if (fd >= 0 && statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, sx) != 0)
        sx->stx_mask = 0;
    if (fd >= 0)
        close(fd);
    free(buf);
    unlink(path);
    return err;
}

static void direct_align(const char *dir, const char *fs, const struct statx *sx)
{
    char what[900];
    if ((sx->stx_mask & STATX_DIOALIGN) && sx->stx_dio_offset_align)
        fc_ok(F(what, "%s (%s) takes O_DIRECT: buffers aligned to %u, offsets and lengths to %u",
                dir, fs, sx->stx_dio_mem_align, sx->stx_dio_offset_align));
    else
        fc_ok(F(what, "%s (%s) takes O_DIRECT (alignment not reported: 512 assumed)", dir, fs));
}

static void check_storage(const fi_plugin *list, size_t n)
{
    char what[900], path[PATH_MAX];
    struct statfs sf;
    struct statx sx = {0};
    if (!opts.storage)
        return;
    const fi_plugin *p = find_plugin(list, n, "POSIX");
    if (!p || p->status != FERRY_OK)
        fc_problem(F(what, "--storage: the POSIX plugin is %s", p ? "refused" : "not found"),
                   "build ferry with liburing-dev or libaio-dev and install its plugins");
    check_io_uring_allowed();
    if (statfs(opts.storage, &sf) != 0) {
        fc_problem(F(what, "--storage %s: %s", opts.storage, strerror(errno)),
                   "name an existing directory");
        return;
    }
    const char *fs = fs_name((long)sf.f_type);
    int err = direct_probe(opts.storage, path, sizeof(path), &sx);
    if (!err)
        direct_align(opts.storage, fs, &sx);
    else if (err == EINVAL)
        fc_problem(F(what,
                     "%s (%s) refuses O_DIRECT: FILE registrations of fds opened with "
                     "O_DIRECT (or path mode \"direct\") there fail",
                     opts.storage, fs),
                   "use buffered I/O there, or keep O_DIRECT files on ext4, xfs or a block device");
    else
        fc_problem(
            F(what, "--storage %s: cannot write a scratch file: %s", opts.storage, strerror(err)),
            "check the directory's permissions and free space");
}

int main(int argc, char **argv)
{
    int rc = parse_opts(argc, argv);
    if (rc)
        return rc;
    FILE *json_out = NULL;
    if (opts.json) {
        if (!(json_out = ft_out_open(opts.json))) {
            fprintf(stderr, "%s: cannot write %s: %s\n", prog, opts.json, strerror(errno));
            return 2;
        }
        fc_doc = json_object();
        json_object_set_new(fc_doc, "problems", json_array());
        json_object_set_new(fc_doc, "notes", json_array());
        json_object_set_new(fc_doc, "passed", json_array());
        json_object_set_new(fc_doc, "warnings", json_array());
    }
    /* The problems are reported here, once and with a fix; the library's
     * warnings about the same things would only repeat them. */
    setenv("FERRY_LOG_LEVEL", "error", 0);
    setenv("UCX_LOG_FILE", "stderr", 0); /* UCX logs to stdout, between our lines */
    static fi_search s;
    cma_err = cma_probe();
    fi_search_get(&s);
    check_version(&s);
    check_plugin_dirs(&s);
    fi_plugin *list = NULL;
    size_t n = 0;
    ferry_agent *agent = fi_scratch_agent(prog);
    if (agent)
        check_plugins(agent, &list, &n);
    else
        fc_problem("cannot create a ferry agent", "run with FERRY_LOG_LEVEL=info to see why");
    check_ucx(list, n);
    check_etcd();
    check_gpu();
    check_memlock();
    check_host_memory(list, n);
    check_listen();
    check_storage(list, n);
    check_shm(list, n);
    ferry_agent_destroy(agent);
    free(list);
    if (problems)
        printf("%s: %d problem%s found\n", prog, problems, problems == 1 ? "" : "s");
    else
        printf("%s: healthy (%d check%s passed%s)\n", prog, passed, passed == 1 ? "" : "s",
               warnings ? ", with warnings" : "");
    if (fc_doc) {
        json_object_set_new(fc_doc, "healthy", json_boolean(!problems));
        ft_json_meta(fc_doc);
        bool ok = json_dumpf(fc_doc, json_out,
                             JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15)) == 0 &&
                  fputc('\n', json_out) != EOF;
        json_decref(fc_doc);
        if (!ft_out_close(json_out) || !ok) {
            fprintf(stderr, "%s: writing %s failed\n", prog, opts.json);
            return 1;
        }
    }
    return problems ? 1 : 0;
}
