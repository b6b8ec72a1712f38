/* SPDX-License-Identifier: Apache-2.0 */
/* Shared code of ferry-info and ferry-check (see info-common.h). */
#include "info-common.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ferry-build-config.h"
#include "common/plugin_name.h"
#include "ferry/plugin.h"

extern char **environ;

/* ---- the build ---- */

static const fi_built_plugin fi_built_plugins[] = {FERRY_BUILD_PLUGINS};

const fi_build *fi_build_get(void)
{
    static const fi_build b = {
        .version = FERRY_BUILD_VERSION,
        .buildtype = FERRY_BUILD_TYPE,
        .compiler = FERRY_BUILD_COMPILER,
        .prefix = FERRY_BUILD_PREFIX,
        .plugin_install_dir = FERRY_BUILD_PLUGIN_INSTALL_DIR,
        .opt_ucx = FERRY_BUILD_OPT_UCX,
        .opt_cuda = FERRY_BUILD_OPT_CUDA,
        .opt_fuzzing = FERRY_BUILD_OPT_FUZZING,
        .opt_tests = FERRY_BUILD_OPT_TESTS,
        .sanitize = FERRY_BUILD_SANITIZE,
        .ucx_prefix = FERRY_BUILD_UCX_PREFIX,
        .plugins = fi_built_plugins,
        .num_plugins = sizeof(fi_built_plugins) / sizeof(fi_built_plugins[0]),
    };
    return &b;
}

/* ---- the plugin search path (mirrors src/core/plugin_loader.c) ---- */

static void fi_dir_scan(fi_dir *d)
{
    DIR *dir = opendir(d->path);
    if (!dir) {
        d->err = errno;
        return;
    }
    d->exists = true;
    struct dirent *e;
    char name[64];
    while ((e = readdir(dir)))
        if (fy_plugin_name_from_file(e->d_name, name, sizeof(name)))
            d->plugin_files++;
    closedir(dir);
}

/* libferry's own file: the loader's default dirs are relative to it. dlsym
 * gives the definition inside libferry (a function's address taken in the
 * program could be a PLT stub of the program itself). */
static void fi_lib_path(char *buf, size_t cap)
{
    Dl_info info;
    void *sym = dlsym(RTLD_DEFAULT, "ferry_agent_create");
    buf[0] = '\0';
    if (!sym || !dladdr(sym, &info) || !info.dli_fname)
        return;
    /* Canonical: an rpath of $ORIGIN/.. would otherwise show through. */
    char *real = realpath(info.dli_fname, NULL);
    snprintf(buf, cap, "%s", real ? real : info.dli_fname);
    free(real);
}

static void fi_search_add(fi_search *s, const char *path)
{
    if (s->num_dirs == FI_MAX_DIRS)
        return;
    fi_dir *d = &s->dirs[s->num_dirs++];
    snprintf(d->path, sizeof(d->path), "%s", path);
    fi_dir_scan(d);
}

/* As the loader: FERRY_PLUGIN_DIR, else NIXL_PLUGIN_DIR; NULL when neither
 * is set (or set empty). */
const char *fi_plugin_dir_env(void)
{
    static const char *const names[] = {"FERRY_PLUGIN_DIR", "NIXL_PLUGIN_DIR"};
    for (size_t i = 0; i < 2; i++) {
        const char *v = getenv(names[i]);
        if (v && *v)
            return names[i];
    }
    return NULL;
}

void fi_search_get(fi_search *s)
{
    memset(s, 0, sizeof(*s));
    fi_lib_path(s->lib, sizeof(s->lib));
    s->env_name = fi_plugin_dir_env();
    const char *env = s->env_name ? getenv(s->env_name) : NULL;
    if (env) {
        s->from_env = true;
        char *copy = strdup(env), *save = NULL;
        for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save))
            fi_search_add(s, dir);
        free(copy);
        return;
    }
    char dir[1024], path[1100];
    snprintf(dir, sizeof(dir), "%s", s->lib[0] ? s->lib : "./libferry.so");
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    snprintf(path, sizeof(path), "%s/plugins", dir);
    fi_search_add(s, path);
    snprintf(path, sizeof(path), "%s/ferry/plugins", dir);
    fi_search_add(s, path);
}

/* ---- plugins ---- */

/* Fills what the loader knows (path, ABI, why refused), then for a
 * loadable plugin its declared memory types and params. */
static void fi_plugin_fill(ferry_agent *agent, fi_plugin *p)
{
    ferry_plugin_info info;
    ferry_plugin_info_init(&info);
    p->status = ferry_plugin_get_info(agent, p->name, &info);
    if (p->status != FERRY_OK) {
        snprintf(p->error, sizeof(p->error), "%s", ferry_status_name(p->status));
        return;
    }
    snprintf(p->path, sizeof(p->path), "%s", info.path);
    p->abi = info.abi_version;
    p->status = info.status;
    snprintf(p->error, sizeof(p->error), "%s", info.error);
    if (p->status != FERRY_OK)
        return;
    ferry_plugin_mem_types(agent, p->name, &p->mem_mask);
    ferry_plugin_params(agent, p->name, &p->params, &p->num_params);
}

ferry_status fi_plugins_collect(ferry_agent *agent, fi_plugin **out, size_t *count)
{
    size_t n = 0;
    *out = NULL;
    *count = 0;
    ferry_status rc = ferry_plugin_list(agent, NULL, 0, &n);
    if (rc != FERRY_OK)
        return rc;
    const char **names = calloc(n ? n : 1, sizeof(*names));
    fi_plugin *list = calloc(n ? n : 1, sizeof(*list));
    if (!names || !list) {
        free(names);
        free(list);
        return FERRY_ERR_NO_MEMORY;
    }
    size_t cap = n;
    rc = ferry_plugin_list(agent, names, cap, &n);
    if (n > cap) /* a file appeared in between: keep what fits */
        n = cap;
    for (size_t i = 0; rc == FERRY_OK && i < n; i++) {
        snprintf(list[i].name, sizeof(list[i].name), "%s", names[i]);
        fi_plugin_fill(agent, &list[i]);
    }
    free(names);
    *out = list;
    *count = n;
    return rc;
}

void fi_plugin_instantiate(ferry_agent *agent, fi_plugin *p)
{
    ferry_backend *be = NULL;
    if (p->tried || p->status != FERRY_OK)
        return;
    p->tried = true;
    p->create_rc = ferry_backend_create(agent, p->name, NULL, 0, &be);
    if (p->create_rc != FERRY_OK)
        return;
    ferry_backend_caps caps;
    ferry_backend_caps_init(&caps);
    if (ferry_backend_get_caps(be, &caps) == FERRY_OK) {
        p->caps = caps.flags;
        p->rt_mem_mask = caps.mem_mask;
    }
    ferry_backend_params(be, &p->values, &p->num_values);
    p->created = true;
}

static const char *fi_flags_str(uint32_t bits, const char *const *names, size_t n, char *buf,
                                size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && len < cap; i++)
        if (names[i] && (bits & (1u << i)))
            len += (size_t)snprintf(buf + len, cap - len, "%s%s", len ? " " : "", names[i]);
    if (!buf[0])
        snprintf(buf, cap, "none");
    return buf;
}

const char *fi_caps_str(uint32_t caps, char *buf, size_t cap)
{
    static const char *const names[] = {"LOCAL", "REMOTE", "NOTIF", "PROGRESS"};
    return fi_flags_str(caps, names, 4, buf, cap);
}

const char *fi_mem_str(uint32_t mask, char *buf, size_t cap)
{
    const char *names[FERRY_MEM_TYPE_COUNT];
    for (int t = 0; t < FERRY_MEM_TYPE_COUNT; t++)
        names[t] = ferry_mem_type_name((ferry_mem_type)t);
    return fi_flags_str(mask, names, FERRY_MEM_TYPE_COUNT, buf, cap);
}

ferry_agent *fi_scratch_agent(const char *prog)
{
    char name[96];
    snprintf(name, sizeof(name), "%s-%ld", prog, (long)getpid());
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = name;
    ferry_agent *agent = NULL;
    ferry_status rc = ferry_agent_create(&cfg, &agent);
    if (rc != FERRY_OK) {
        fprintf(stderr, "%s: cannot create an agent: %s\n", prog, ferry_strerror(rc));
        return NULL;
    }
    return agent;
}

/* ---- running a program ---- */

bool fi_which(const char *prog, char *buf, size_t cap)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    char *copy = strdup(path), *save = NULL;
    bool found = false;
    for (char *dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
        struct stat st;
        snprintf(buf, cap, "%s/%s", dir, prog);
        found = stat(buf, &st) == 0 && S_ISREG(st.st_mode) && access(buf, X_OK) == 0;
    }
    free(copy);
    if (!found)
        buf[0] = '\0';
    return found;
}

static long fi_ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* The child: only async-signal-safe calls between fork and exec (the tools
 * may have threads of a ferry agent running). */
/* Starts argv[0] with stdin and stderr on /dev/null and stdout on out_fd.
 * posix_spawn, not fork: it runs no fork handlers of the libraries loaded
 * here (UCX's, with a plugin loaded, trip ThreadSanitizer). */
static int fi_spawn(int out_fd, char *const argv[], pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc)
        return rc;
    if (!(rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) &&
        !(rc = posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0)))
        rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    if (!rc)
        rc = posix_spawn(pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

/* Reads the child's stdout until EOF or the deadline. */
static bool fi_read_all(int fd, int timeout_ms, char **buf, size_t *len)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t cap = 65536;
    *len = 0;
    if (!(*buf = malloc(cap)))
        return true;
    for (;;) {
        long left = timeout_ms - fi_ms_since(&t0);
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, (int)left) == 0)
            return false;
        if (*len + 4096 + 1 > cap && cap < (64u << 20)) {
            char *bigger = realloc(*buf, cap * 2);
            if (!bigger)
                return true; /* keep what was read */
            *buf = bigger;
            cap *= 2;
        }
        size_t room = cap - *len - 1;
        ssize_t r = read(fd, *buf + *len, room > 4096 ? 4096 : room);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return true;
        *len += (size_t)r;
    }
}

int fi_run(char *const argv[], int timeout_ms, char **out, char *why, size_t why_cap)
{
    int fds[2];
    *out = NULL;
    if (pipe2(fds, O_CLOEXEC)) {
        snprintf(why, why_cap, "pipe: %s", strerror(errno));
        return -1;
    }
    pid_t pid;
    int rc = fi_spawn(fds[1], argv, &pid);
    close(fds[1]);
    if (rc) {
        close(fds[0]);
        snprintf(why, why_cap, "%s could not be executed: %s", argv[0], strerror(rc));
        return -1;
    }
    size_t len = 0;
    bool done = fi_read_all(fds[0], timeout_ms, out, &len);
    close(fds[0]);
    if (*out)
        (*out)[len] = '\0';
    if (!done)
        kill(pid, SIGKILL); /* hung: a tool must answer in bounded time */
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!done) {
        snprintf(why, why_cap, "%s timed out after %d ms", argv[0], timeout_ms);
        return -1;
    }
    if (!WIFEXITED(st)) {
        snprintf(why, why_cap, "%s died of signal %d", argv[0], WTERMSIG(st));
        return -1;
    }
    if (WEXITSTATUS(st) == 127 && len == 0) {
        snprintf(why, why_cap, "%s could not be executed", argv[0]);
        return -1;
    }
    return WEXITSTATUS(st);
}

/* ---- UCX ---- */

/* ucx_info: FERRY_UCX_INFO names it (a site's UCX outside PATH, or a test's
 * stand-in), else PATH, else the bin/ of the UCX this build linked against. */
static bool fi_ucx_info_path(char *buf, size_t cap)
{
    const char *env = getenv("FERRY_UCX_INFO");
    if (env) {
        snprintf(buf, cap, "%s", env);
        return *env && access(buf, X_OK) == 0;
    }
    if (fi_which("ucx_info", buf, cap))
        return true;
    const char *prefix = fi_build_get()->ucx_prefix;
    if (*prefix) {
        snprintf(buf, cap, "%s/bin/ucx_info", prefix);
        if (access(buf, X_OK) == 0)
            return true;
    }
    buf[0] = '\0';
    return false;
}

/* The value after "Key:" on a "#   Key: value" line, or NULL. */
static const char *fi_ucx_field(const char *line, const char *key)
{
    while (*line == '#' || *line == ' ' || *line == '\t')
        line++;
    size_t n = strlen(key);
    if (strncmp(line, key, n) || line[n] != ':')
        return NULL;
    line += n + 1;
    while (*line == ' ')
        line++;
    return line;
}

static void fi_copy_token(char *dst, size_t cap, const char *src)
{
    size_t n = strcspn(src, " \t\r\n");
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static fi_ucx_tl *fi_ucx_tl_get(fi_ucx *u, const char *name)
{
    for (size_t i = 0; i < u->num_tls; i++)
        if (!strcmp(u->tls[i].name, name))
            return &u->tls[i];
    if (u->num_tls == FI_MAX_TLS)
        return NULL;
    fi_ucx_tl *tl = &u->tls[u->num_tls++];
    snprintf(tl->name, sizeof(tl->name), "%s", name);
    return tl;
}

/* ucx_info -d: "Transport: X" starts a resource, "Device: Y" and "Type: Z"
 * follow it; one transport may appear once per device. */
static void fi_ucx_parse_devices(fi_ucx *u, char *text)
{
    fi_ucx_tl *tl = NULL;
    fi_ucx_dev *dev = NULL;
    char *save = NULL, tok[64];
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        const char *v;
        if ((v = fi_ucx_field(line, "Memory domain")) || (v = fi_ucx_field(line, "Component"))) {
            tl = NULL;
            dev = NULL;
        } else if ((v = fi_ucx_field(line, "Transport"))) {
            fi_copy_token(tok, sizeof(tok), v);
            tl = fi_ucx_tl_get(u, tok);
            dev = NULL;
        } else if ((v = fi_ucx_field(line, "Device")) && tl && tl->num_devs < FI_MAX_DEVS) {
            dev = &tl->devs[tl->num_devs++];
            fi_copy_token(dev->name, sizeof(dev->name), v);
        } else if ((v = fi_ucx_field(line, "Type")) && dev) {
            fi_copy_token(dev->type, sizeof(dev->type), v);
        }
    }
}

/* "# Library version: 1.16.0" (newer UCX) or "# Version 1.13.1". */
static void fi_ucx_parse_version(fi_ucx *u, char *text)
{
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        const char *v = fi_ucx_field(line, "Library version");
        if (!v && !strncmp(line, "# Version ", 10))
            v = line + 10;
        if (v && !u->version[0])
            fi_copy_token(u->version, sizeof(u->version), v);
    }
}

void fi_ucx_probe(fi_ucx *u)
{
    memset(u, 0, sizeof(*u));
    const char *env = getenv("FERRY_UCX_INFO");
    if (!fi_ucx_info_path(u->ucx_info, sizeof(u->ucx_info)) && env) {
        snprintf(u->error, sizeof(u->error), "FERRY_UCX_INFO=%s is no executable", env);
        u->ucx_info[0] = '\0';
        return;
    }
    if (!u->ucx_info[0]) {
        snprintf(u->error, sizeof(u->error), "ucx_info not found (PATH%s%s%s)",
                 *fi_build_get()->ucx_prefix ? ", " : "", fi_build_get()->ucx_prefix,
                 *fi_build_get()->ucx_prefix ? "/bin" : "");
        return;
    }
    char *out = NULL;
    char *argv_v[] = {u->ucx_info, "-v", NULL}, *argv_d[] = {u->ucx_info, "-d", NULL};
    if (fi_run(argv_v, 10000, &out, u->error, sizeof(u->error)) == 0 && out)
        fi_ucx_parse_version(u, out);
    free(out);
    out = NULL;
    int rc = fi_run(argv_d, 20000, &out, u->error, sizeof(u->error));
    if (rc > 0)
        snprintf(u->error, sizeof(u->error), "%s -d exited with status %d", u->ucx_info, rc);
    if (rc == 0 && out) {
        fi_ucx_parse_devices(u, out);
        u->ok = true;
    }
    free(out);
}

const fi_ucx_tl *fi_ucx_find_tl(const fi_ucx *u, const char *name)
{
    for (size_t i = 0; i < u->num_tls; i++)
        if (!strcasecmp(u->tls[i].name, name))
            return &u->tls[i];
    return NULL;
}

bool fi_ucx_has_dev(const fi_ucx *u, const char *dev)
{
    for (size_t i = 0; i < u->num_tls; i++)
        for (size_t k = 0; k < u->tls[i].num_devs; k++)
            if (!strcmp(u->tls[i].devs[k].name, dev))
                return true;
    return false;
}

/* ---- libfabric ---- */

static fi_fab_prov *fi_fab_prov_get(fi_fab *f, const char *name)
{
    for (size_t i = 0; i < f->num_provs; i++)
        if (!strcmp(f->provs[i].name, name))
            return &f->provs[i];
    if (f->num_provs == FI_MAX_PROVS)
        return NULL;
    fi_fab_prov *p = &f->provs[f->num_provs++];
    snprintf(p->name, sizeof(p->name), "%s", name);
    return p;
}

static void fi_fab_add_domain(fi_fab_prov *p, const char *domain)
{
    for (size_t i = 0; i < p->num_domains; i++)
        if (!strcmp(p->domains[i], domain))
            return;
    if (p->num_domains < FI_MAX_DOMAINS)
        snprintf(p->domains[p->num_domains++], sizeof(p->domains[0]), "%s", domain);
}

/* fi_info: "provider: X" starts an entry, "    domain: Y" follows. */
static void fi_fab_parse(fi_fab *f, char *text)
{
    fi_fab_prov *p = NULL;
    char *save = NULL, tok[64];
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        const char *v;
        if ((v = fi_ucx_field(line, "provider"))) {
            fi_copy_token(tok, sizeof(tok), v);
            p = fi_fab_prov_get(f, tok);
        } else if ((v = fi_ucx_field(line, "domain")) && p) {
            fi_copy_token(tok, sizeof(tok), v);
            fi_fab_add_domain(p, tok);
        }
    }
}

void fi_fab_probe(fi_fab *f)
{
    memset(f, 0, sizeof(*f));
    const char *env = getenv("FERRY_FI_INFO");
    if (env)
        snprintf(f->fi_info, sizeof(f->fi_info), "%s", env);
    if (env ? !*env || access(f->fi_info, X_OK)
            : !fi_which("fi_info", f->fi_info, sizeof(f->fi_info))) {
        snprintf(f->error, sizeof(f->error), "%s",
                 env ? "FERRY_FI_INFO is no executable" : "fi_info not found (PATH)");
        f->fi_info[0] = '\0';
        return;
    }
    char *out = NULL;
    char *argv[] = {f->fi_info, "-t", "FI_EP_RDM", "-c", "FI_RMA", NULL};
    int rc = fi_run(argv, 20000, &out, f->error, sizeof(f->error));
    /* fi_info exits 1 ("No data available") when no provider matches. */
    if (rc == 0 || (rc == 1 && out && strstr(out, "No data available"))) {
        f->ok = true;
        f->error[0] = '\0';
        if (rc == 0)
            fi_fab_parse(f, out);
    } else if (rc > 0) {
        snprintf(f->error, sizeof(f->error), "%s exited with status %d", f->fi_info, rc);
    }
    free(out);
}

/* ---- GPUs ---- */

typedef int (*fi_cu_int_fn)(int *);
typedef int (*fi_cu_init_fn)(unsigned);
typedef int (*fi_cu_get_fn)(int *, int);
typedef int (*fi_cu_name_fn)(char *, int, int);
typedef int (*fi_cu_uuid_fn)(unsigned char *, int);
typedef int (*fi_cu_mem_fn)(size_t *, int);
typedef int (*fi_cu_attr_fn)(int *, int, int);
typedef int (*fi_cu_errname_fn)(int, const char **);

/* The slice of the driver API used here, with the driver's own numbers. */
typedef struct fi_cu {
    fi_cu_init_fn init;
    fi_cu_int_fn driver_version, count;
    fi_cu_get_fn get;
    fi_cu_name_fn name, pci;
    fi_cu_uuid_fn uuid;
    fi_cu_mem_fn total_mem;
    fi_cu_attr_fn attr;
    fi_cu_errname_fn errname;
} fi_cu;
#define FI_CU_ATTR_CC_MAJOR 75
#define FI_CU_ATTR_CC_MINOR 76

/* dlsym into a function-pointer slot; alt is an older name of the symbol. */
static bool fi_sym(void *lib, const char *name, const char *alt, void *slot, size_t size)
{
    void *p = dlsym(lib, name);
    if (!p && alt)
        p = dlsym(lib, alt);
    memcpy(slot, &p, size);
    return p != NULL;
}
#define FI_SYM(lib, name, alt, field) fi_sym(lib, name, alt, &(field), sizeof(field))

static void fi_cu_errstr(const fi_cu *cu, int r, char *buf, size_t cap)
{
    const char *s = NULL;
    if (!cu->errname || cu->errname(r, &s) != 0 || !s)
        snprintf(buf, cap, "CUresult %d", r);
    else
        snprintf(buf, cap, "%s", s);
}

static void fi_gpu_dev_fill(const fi_cu *cu, int ordinal, fi_gpu_dev *d)
{
    int dev = 0;
    snprintf(d->name, sizeof(d->name), "unknown");
    if (cu->get(&dev, ordinal) != 0)
        return;
    if (cu->name)
        cu->name(d->name, (int)sizeof(d->name), dev);
    unsigned char u[16];
    if (cu->uuid && cu->uuid(u, dev) == 0)
        snprintf(d->uuid, sizeof(d->uuid),
                 "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
                 u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
                 u[14], u[15]);
    size_t mem = 0;
    if (cu->total_mem && cu->total_mem(&mem, dev) == 0)
        d->mem_bytes = mem;
    if (cu->attr) {
        cu->attr(&d->cc_major, FI_CU_ATTR_CC_MAJOR, dev);
        cu->attr(&d->cc_minor, FI_CU_ATTR_CC_MINOR, dev);
    }
    if (cu->pci)
        cu->pci(d->pci, (int)sizeof(d->pci), dev);
}

/* FERRY_CUDA_LIB overrides the driver's name, as for libferry (src/gpu):
 * sites with the driver outside the loader's path, and tests with a mock. */
static void fi_cuda_probe(fi_gpu *g)
{
    const char *env = getenv("FERRY_CUDA_LIB");
    snprintf(g->lib, sizeof(g->lib), "%s", env && *env ? env : "libcuda.so.1");
    dlerror();
    void *lib = dlopen(g->lib, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(g->error, sizeof(g->error), "no CUDA driver: %s", dlerror());
        return;
    }
    fi_cu cu = {0};
    bool ok = FI_SYM(lib, "cuInit", NULL, cu.init) &&
              FI_SYM(lib, "cuDriverGetVersion", NULL, cu.driver_version) &&
              FI_SYM(lib, "cuDeviceGetCount", NULL, cu.count) &&
              FI_SYM(lib, "cuDeviceGet", NULL, cu.get);
    FI_SYM(lib, "cuDeviceGetName", NULL, cu.name);
    FI_SYM(lib, "cuDeviceGetPCIBusId", NULL, cu.pci);
    FI_SYM(lib, "cuDeviceGetUuid_v2", "cuDeviceGetUuid", cu.uuid);
    FI_SYM(lib, "cuDeviceTotalMem_v2", "cuDeviceTotalMem", cu.total_mem);
    FI_SYM(lib, "cuDeviceGetAttribute", NULL, cu.attr);
    FI_SYM(lib, "cuGetErrorName", NULL, cu.errname);
    if (!ok) {
        snprintf(g->error, sizeof(g->error), "%s lacks the driver's entry points", g->lib);
        return; /* left open: unloading a driver library is not safe */
    }
    g->driver = true;
    if (cu.driver_version(&g->driver_version) != 0 || g->driver_version < 0)
        g->driver_version = 0;
    int r = cu.init(0);
    if (r != 0) {
        char name[64];
        fi_cu_errstr(&cu, r, name, sizeof(name));
        snprintf(g->error, sizeof(g->error), "cuInit failed: %s%s", name,
                 r == 100   ? " (no GPU visible: CUDA_VISIBLE_DEVICES, or nvidia-smi)"
                 : r == 34  ? " (a stub library, not the driver)"
                 : r == 999 ? " (driver and kernel module disagree? see dmesg)"
                            : "");
        return;
    }
    g->ok = true;
    cu.count(&g->count);
    for (int i = 0; i < g->count && i < FI_MAX_GPUS; i++)
        fi_gpu_dev_fill(&cu, i, &g->devs[i]);
}

/* cuFile is only looked for (cuFileDriverOpen would start the GDS driver,
 * which is the application's business, not an inventory's). */
static void fi_cufile_probe(fi_gpu *g)
{
    const char *env = getenv("FERRY_CUFILE_LIB");
    snprintf(g->cufile_lib, sizeof(g->cufile_lib), "%s", env && *env ? env : "libcufile.so.0");
    dlerror();
    void *lib = dlopen(g->cufile_lib, RTLD_LAZY | RTLD_LOCAL);
    if (!lib) {
        snprintf(g->cufile_error, sizeof(g->cufile_error), "%s", dlerror());
    } else if (!dlsym(lib, "cuFileDriverOpen")) {
        snprintf(g->cufile_error, sizeof(g->cufile_error), "%s has no cuFileDriverOpen",
                 g->cufile_lib);
    } else {
        g->cufile = true;
    }
    g->nvidia_fs = access("/sys/module/nvidia_fs", F_OK) == 0;
}

void fi_gpu_probe(fi_gpu *g)
{
    memset(g, 0, sizeof(*g));
    fi_cuda_probe(g);
    fi_cufile_probe(g);
}

/* ---- parsing ---- */

bool fi_parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s || !isdigit((unsigned char)*s))
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return false;
    static const struct {
        const char *suffix;
        unsigned shift;
    } units[] = {{"", 0},     {"B", 0},   {"K", 10},   {"KB", 10}, {"KIB", 10},
                 {"M", 20},   {"MB", 20}, {"MIB", 20}, {"G", 30},  {"GB", 30},
                 {"GIB", 30}, {"T", 40},  {"TB", 40},  {"TIB", 40}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (!strcasecmp(end, units[i].suffix)) {
            if (units[i].shift && v > (UINT64_MAX >> units[i].shift))
                return false;
            *out = (uint64_t)v << units[i].shift;
            return true;
        }
    return false;
}

const char *fi_size_str(uint64_t bytes, char *buf, size_t cap)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, cap, "%.*f %s", v == (double)(uint64_t)v ? 0 : 1, v, units[u]);
    return buf;
}

static bool fi_parse_port(const char *s, size_t len, uint16_t *port)
{
    if (len == 0 || len > 5)
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

bool fi_parse_endpoint(const char *s, uint16_t default_port, char *host, size_t host_cap,
                       uint16_t *port)
{
    while (isspace((unsigned char)*s))
        s++;
    const char *scheme = strstr(s, "://");
    if (scheme) {
        if (!strncmp(s, "unix", 4))
            return false; /* a socket path: nothing to connect to over TCP */
        s = scheme + 3;
    }
    size_t end = strcspn(s, "/ \t"); /* a path after the authority is ignored */
    const char *h = s, *colon;
    size_t hlen;
    if (*s == '[') { /* [v6]:port */
        const char *close = memchr(s, ']', end);
        if (!close)
            return false;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1 < s + end && close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = memchr(s, ':', end);
        hlen = colon ? (size_t)(colon - s) : end;
    }
    if (hlen == 0 || hlen >= host_cap)
        return false;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = default_port;
    if (colon)
        return fi_parse_port(colon + 1, (size_t)(s + end - colon - 1), port);
    return true;
}

const char *fi_cuda_version_str(int v, char *buf, size_t cap)
{
    if (v <= 0)
        snprintf(buf, cap, "unknown");
    else
        snprintf(buf, cap, "%d.%d", v / 1000, v % 1000 / 10);
    return buf;
}

/* ---- JSON (jansson) ---- */

/* Adds v under key to the innermost open container (appends to an array). */
static void fj_put(fi_json *j, const char *key, json_t *v)
{
    json_t *top = j->stack[j->depth];
    if (json_is_array(top))
        json_array_append_new(top, v);
    else
        json_object_set_new(top, key ? key : "", v);
}

static void fj_open(fi_json *j, const char *key, json_t *c)
{
    fj_put(j, key, c);
    if (j->depth + 1 < FJ_MAX_DEPTH)
        j->stack[++j->depth] = c; /* borrowed: the parent holds it */
}

void fj_begin(fi_json *j, FILE *f)
{
    memset(j, 0, sizeof(*j));
    j->f = f;
    j->stack[0] = json_object();
}

bool fj_end(fi_json *j)
{
    json_t *root = j->stack[0];
    ft_json_meta(root);
    int rc = json_dumpf(root, j->f, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    json_decref(root);
    j->stack[0] = NULL;
    return rc == 0 && fputc('\n', j->f) != EOF && fflush(j->f) == 0;
}

void fj_obj(fi_json *j, const char *key)
{
    fj_open(j, key, json_object());
}

void fj_arr(fi_json *j, const char *key)
{
    fj_open(j, key, json_array());
}

void fj_close_obj(fi_json *j)
{
    if (j->depth)
        j->depth--;
}

void fj_close_arr(fi_json *j)
{
    if (j->depth)
        j->depth--;
}

void fj_str(fi_json *j, const char *key, const char *v)
{
    /* Bytes that are not UTF-8 (a device name, say) are not dropped. */
    fj_put(j, key, v ? json_stringn_nocheck(v, strlen(v)) : json_null());
}

void fj_int(fi_json *j, const char *key, long long v)
{
    fj_put(j, key, json_integer(v));
}

void fj_bool(fi_json *j, const char *key, bool v)
{
    fj_put(j, key, json_boolean(v));
}
