/* SPDX-License-Identifier: Apache-2.0 */
/* The plugin loader: plugins found in FERRY_PLUGIN_DIR (this directory's
 * build output, set before the library looks), listing order, the info
 * functions, and refusal of broken plugins: another ABI, no entry symbol,
 * an init that fails, a missing required op, a wrong name, a NULL
 * descriptor, a short ops table. Also an empty or missing plugin dir. */
#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ferry/ferry.h>
#include <ferry/plugin.h>

#include "harness.h"
#include "testutil.h"

#ifndef FY_TEST_PLUGIN_DIR
#error "meson passes the directory of the test plugins"
#endif

#define SENTINEL ((void *)0x5e5e5e5e)

static ferry_agent *new_agent(const char *name)
{
    ferry_agent_config cfg;
    ferry_agent *agent = NULL;
    ferry_agent_config_init(&cfg);
    cfg.name = name;
    return ferry_agent_create(&cfg, &agent) == FERRY_OK ? agent : NULL;
}

static size_t list(ferry_agent *agent, const char **names, size_t cap)
{
    size_t count = 0;
    if (ferry_plugin_list(agent, names, cap, &count) != FERRY_OK)
        return 0;
    return count;
}

static bool listed(const char **names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(names[i], name))
            return true;
    return false;
}

/* ---- listing ---- */

static const char *const test_plugins[] = {"BADABI", "INITFAIL", "MISNAMED", "MISSINGOP",
                                           "NOSYM",  "NULLDESC", "SMALLOPS", "TDRAM"};
#define NUM_TEST_PLUGINS (sizeof(test_plugins) / sizeof(test_plugins[0]))

static void test_list_includes_plugins(void)
{
    ferry_agent *agent = new_agent("list");
    const char *names[64];
    FY_REQUIRE(agent);
    size_t n = list(agent, names, 64);
    FY_REQUIRE(n >= 1 + NUM_TEST_PLUGINS && n <= 64);
    FY_CHECK(!strcmp(names[0], "LOCAL"));
    for (size_t i = 0; i < NUM_TEST_PLUGINS; i++) {
        if (!listed(names, n, test_plugins[i]))
            printf("# %s not listed\n", test_plugins[i]);
        FY_CHECK(listed(names, n, test_plugins[i]));
    }
    /* Listed once each (a later scan does not add them again). */
    size_t again = list(agent, names, 64);
    FY_CHECK_EQ(again, n);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            FY_CHECK(strcmp(names[i], names[j]) != 0);
    ferry_agent_destroy(agent);
}

/* agent.h: "compiled in first, then those found in FERRY_PLUGIN_DIR ...,
 * sorted within each group". */
static void test_list_sorted(void)
{
    ferry_agent *agent = new_agent("sorted");
    const char *names[64];
    FY_REQUIRE(agent);
    size_t n = list(agent, names, 64);
    FY_REQUIRE(n >= 2 && n <= 64);
    size_t builtins = 0;
    const char *path;
    uint32_t abi;
    while (builtins < n && ferry_plugin_path(agent, names[builtins], &path, &abi) == FERRY_OK &&
           !strcmp(path, "builtin"))
        builtins++;
    FY_CHECK(builtins >= 1);
    for (size_t i = builtins + 1; i < n; i++) {
        if (strcmp(names[i - 1], names[i]) > 0)
            printf("# not sorted: %s listed before %s\n", names[i - 1], names[i]);
        FY_CHECK(strcmp(names[i - 1], names[i]) <= 0);
    }
    ferry_agent_destroy(agent);
}

/* ---- broken plugins ---- */

/* Every entry point reports the plugin's defect the same way, and no
 * backend is left behind. */
static void check_refused(const char *plugin, ferry_status want)
{
    ferry_agent *agent = new_agent("refused");
    FY_REQUIRE(agent);
    ferry_backend *be = SENTINEL;
    const ferry_param_spec *specs = SENTINEL;
    size_t n;
    uint32_t mask = 0xdead, abi = 0xdead;
    const char *path = SENTINEL;
    FY_CHECK_EQ(ferry_backend_create(agent, plugin, NULL, 0, &be), want);
    FY_CHECK(be == SENTINEL);
    FY_CHECK_EQ(ferry_backend_create(agent, plugin, NULL, 0, &be), want); /* same again */
    FY_CHECK_EQ(ferry_plugin_params(agent, plugin, &specs, &n), want);
    FY_CHECK_EQ(ferry_plugin_mem_types(agent, plugin, &mask), want);
    FY_CHECK_EQ(ferry_plugin_path(agent, plugin, &path, &abi), want);
    FY_CHECK(specs == SENTINEL && mask == 0xdead && path == SENTINEL);
    FY_CHECK_EQ(ferry_backend_find(agent, plugin, &be), FERRY_ERR_NOT_FOUND);
    /* The loader still says where it is and why it was refused. */
    ferry_plugin_info info;
    ferry_plugin_info_init(&info);
    FY_CHECK_EQ(ferry_plugin_get_info(agent, plugin, &info), FERRY_OK);
    FY_CHECK_EQ(info.status, want);
    FY_CHECK(info.path && strstr(info.path, ".so") && info.error && info.error[0]);
    /* The agent is unharmed. */
    FY_CHECK_EQ(ferry_backend_create(agent, "LOCAL", NULL, 0, &be), FERRY_OK);
    ferry_agent_destroy(agent);
}

static void test_abi_mismatch(void)
{
    check_refused("BADABI", FERRY_ERR_ABI);
}
static void test_missing_symbol(void)
{
    check_refused("NOSYM", FERRY_ERR_BACKEND);
}
static void test_missing_required_op(void)
{
    check_refused("MISSINGOP", FERRY_ERR_BACKEND);
}
static void test_misnamed(void)
{
    check_refused("MISNAMED", FERRY_ERR_BACKEND);
}
static void test_null_descriptor(void)
{
    check_refused("NULLDESC", FERRY_ERR_BACKEND);
}
static void test_short_ops_table(void)
{
    check_refused("SMALLOPS", FERRY_ERR_BACKEND);
}

/* The counters of the INITFAIL .so, found through the loaded copy. */
static unsigned *initfail_counter(const char *symbol)
{
    void *dl = dlopen(FY_TEST_PLUGIN_DIR "/libferry_plugin_initfail.so", RTLD_NOW | RTLD_NOLOAD);
    if (!dl)
        return NULL;
    unsigned *counter = dlsym(dl, symbol);
    dlclose(dl); /* drops only our reference: the loader keeps its own */
    return counter;
}

static void check_init_fails(ferry_agent *agent, const char *mode, ferry_status want)
{
    ferry_param p[] = {{"fail", mode}};
    ferry_backend *be = SENTINEL;
    FY_CHECK_EQ(ferry_backend_create(agent, "INITFAIL", p, 1, &be), want);
    FY_CHECK(be == SENTINEL);
    FY_CHECK_EQ(ferry_backend_find(agent, "INITFAIL", &be), FERRY_ERR_NOT_FOUND);
}

/* A failing init is reported, fini is not called (the plugin undid its own
 * work), the core frees what it allocated (valgrind/ASan), and the plugin
 * can still be created afterwards. */
static void test_init_fails(void)
{
    ferry_agent *agent = new_agent("initfail");
    ferry_backend *be;
    FY_REQUIRE(agent);
    check_init_fails(agent, "backend", FERRY_ERR_BACKEND);
    unsigned *inits = initfail_counter("bad_plugin_inits");
    unsigned *finis = initfail_counter("bad_plugin_finis");
    FY_REQUIRE(inits && finis);
    check_init_fails(agent, "nomem", FERRY_ERR_NO_MEMORY);
    check_init_fails(agent, "positive", FERRY_ERR_BACKEND); /* not a success */
    FY_CHECK_EQ(*inits, 3);
    FY_CHECK_EQ(*finis, 0);

    ferry_param ok[] = {{"fail", "none"}};
    FY_CHECK_EQ(ferry_backend_create(agent, "INITFAIL", ok, 1, &be), FERRY_OK);
    FY_CHECK_EQ(*inits, 4);
    ferry_agent_destroy(agent);
    FY_CHECK_EQ(*finis, 1);
}

/* ---- a good plugin ---- */

static void test_good_plugin_info(void)
{
    ferry_agent *agent = new_agent("good");
    const ferry_param_spec *specs;
    size_t n;
    uint32_t mask, abi;
    const char *path;
    FY_REQUIRE(agent);
    FY_CHECK_EQ(ferry_plugin_params(agent, "TDRAM", &specs, &n), FERRY_OK);
    FY_CHECK_EQ(n, 5);
    FY_CHECK(n >= 1 && !strcmp(specs[0].key, "async") && !strcmp(specs[0].default_value, "1"));
    FY_CHECK_EQ(ferry_plugin_mem_types(agent, "tdram", &mask), FERRY_OK);
    FY_CHECK(mask & FERRY_MEM_MASK(FERRY_MEM_DRAM));
    FY_CHECK_EQ(ferry_plugin_path(agent, "TDRAM", &path, &abi), FERRY_OK);
    FY_CHECK(!strcmp(path, FY_TEST_PLUGIN_DIR "/libferry_plugin_tdram.so"));
    FY_CHECK_EQ(abi, FERRY_PLUGIN_ABI_VERSION);

    ferry_backend *be;
    ferry_backend_caps caps;
    ferry_backend_caps_init(&caps);
    FY_REQUIRE(ferry_backend_create(agent, "TDRAM", NULL, 0, &be) == FERRY_OK);
    FY_CHECK(!strcmp(ferry_backend_name(be), "TDRAM"));
    FY_CHECK_EQ(ferry_backend_get_caps(be, &caps), FERRY_OK);
    FY_CHECK_EQ(caps.flags, FERRY_CAP_LOCAL | FERRY_CAP_NOTIF | FERRY_CAP_PROGRESS);
    ferry_param bad[] = {{"async", "maybe"}};
    ferry_agent *other = new_agent("good-2");
    FY_REQUIRE(other);
    FY_CHECK_EQ(ferry_backend_create(other, "TDRAM", bad, 1, &be), FERRY_ERR_INVALID_PARAM);
    ferry_agent_destroy(other);
    ferry_agent_destroy(agent);
}

/* The LOCAL2 copy that plugins/local builds: the same code as the
 * built-in LOCAL, loaded from a .so, next to it in one agent. */
static void test_local2_copy(void)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/libferry_plugin_local2.so", FY_LOCAL2_DIR);
    if (access(path, R_OK) != 0)
        FY_SKIP("no LOCAL2 plugin in the build");
    setenv("FERRY_PLUGIN_DIR", FY_LOCAL2_DIR, 1);
    tu_loop lp;
    ferry_backend *local2;
    const char *where, *names[64];
    uint32_t abi;
    FY_REQUIRE(tu_loop_open(&lp, "local2", NULL, NULL, 0, 64 * 1024) == FERRY_OK);
    size_t n = list(lp.agent, names, 64);
    FY_CHECK(n >= 2 && !strcmp(names[0], "LOCAL") && listed(names, n, "LOCAL2"));
    FY_CHECK_EQ(ferry_plugin_path(lp.agent, "LOCAL2", &where, &abi), FERRY_OK);
    FY_CHECK(!strcmp(where, path));
    FY_REQUIRE(ferry_backend_create(lp.agent, "LOCAL2", NULL, 0, &local2) == FERRY_OK);
    /* Regions registered before LOCAL2 existed are LOCAL's only; register
     * them again (identical: they gain LOCAL2) and republish. */
    FY_CHECK_EQ(tu_register(lp.agent, lp.src, lp.len), FERRY_OK);
    FY_CHECK_EQ(tu_register(lp.agent, lp.dst, lp.len), FERRY_OK);
    FY_CHECK_EQ(tu_load_self(lp.agent), FERRY_OK);
    ferry_xfer_opts opts;
    ferry_xfer_opts_init(&opts);
    opts.backend = local2;
    ferry_dlist *l = tu_list1(lp.src, lp.len), *r = tu_list1(lp.dst, lp.len);
    ferry_xfer *x = NULL;
    FY_CHECK_EQ(ferry_xfer_create(lp.agent, FERRY_OP_WRITE, l, r, lp.name, &opts, &x), FERRY_OK);
    FY_CHECK(x && ferry_xfer_backend(x) == local2);
    FY_CHECK_EQ(x ? tu_post_wait(x) : FERRY_ERR_UNKNOWN, FERRY_OK);
    FY_CHECK(!memcmp(lp.src, lp.dst, lp.len));
    ferry_xfer_release(x);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    tu_loop_close(&lp);
    setenv("FERRY_PLUGIN_DIR", FY_TEST_PLUGIN_DIR, 1);
}

/* ---- the search path ---- */

/* With an empty or missing plugin dir only compiled-in plugins are listed
 * and found, even those loaded before from elsewhere. */
static void check_only_builtins(const char *dir)
{
    setenv("FERRY_PLUGIN_DIR", dir, 1);
    ferry_agent *agent = new_agent("builtins");
    const char *names[64], *path;
    uint32_t abi;
    ferry_backend *be;
    FY_REQUIRE(agent);
    size_t n = list(agent, names, 64);
    FY_CHECK(n >= 1);
    for (size_t i = 0; i < n; i++) {
        FY_CHECK_EQ(ferry_plugin_path(agent, names[i], &path, &abi), FERRY_OK);
        FY_CHECK(!strcmp(path, "builtin"));
    }
    FY_CHECK_EQ(ferry_backend_create(agent, "TDRAM", NULL, 0, &be), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(ferry_plugin_path(agent, "TDRAM", &path, &abi), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(ferry_backend_create(agent, "LOCAL", NULL, 0, &be), FERRY_OK);
    ferry_agent_destroy(agent);
    setenv("FERRY_PLUGIN_DIR", FY_TEST_PLUGIN_DIR, 1);
}

/* ferry_plugin_get_info on a loadable, a refused-by-ABI and an unknown name. */
static void test_plugin_get_info(void)
{
    ferry_agent *agent = new_agent("info");
    FY_REQUIRE(agent);
    ferry_plugin_info info;
    ferry_plugin_info_init(&info);
    FY_CHECK_EQ(ferry_plugin_get_info(agent, "LOCAL", &info), FERRY_OK);
    FY_CHECK(!strcmp(info.path, "builtin") && info.status == FERRY_OK && !info.error[0]);
    FY_CHECK_EQ(info.abi_version, FERRY_PLUGIN_ABI_VERSION);
    FY_CHECK_EQ(ferry_plugin_get_info(agent, "BADABI", &info), FERRY_OK);
    FY_CHECK_EQ(info.status, FERRY_ERR_ABI);
    FY_CHECK(info.abi_version != FERRY_PLUGIN_ABI_VERSION && strstr(info.error, "ABI"));
    FY_CHECK_EQ(ferry_plugin_get_info(agent, "NO_SUCH", &info), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(ferry_plugin_get_info(agent, NULL, &info), FERRY_ERR_INVALID_PARAM);
    info.size = 1;
    FY_CHECK_EQ(ferry_plugin_get_info(agent, "LOCAL", &info), FERRY_ERR_INVALID_PARAM);
    ferry_agent_destroy(agent);
}

static void test_empty_plugin_dir(void)
{
    char dir[] = "/tmp/ferry-empty-XXXXXX";
    FY_REQUIRE(mkdtemp(dir));
    check_only_builtins(dir);
    rmdir(dir);
}

static void test_missing_plugin_dir(void)
{
    check_only_builtins("/nonexistent/ferry/plugins");
}

/* A colon-separated path: a missing entry is skipped, later ones are used. */
static void test_plugin_path_list(void)
{
    setenv("FERRY_PLUGIN_DIR", "/nonexistent:" FY_TEST_PLUGIN_DIR, 1);
    ferry_agent *agent = new_agent("path-list");
    ferry_backend *be;
    FY_REQUIRE(agent);
    FY_CHECK_EQ(ferry_backend_create(agent, "TDRAM", NULL, 0, &be), FERRY_OK);
    ferry_agent_destroy(agent);
    setenv("FERRY_PLUGIN_DIR", FY_TEST_PLUGIN_DIR, 1);
}

int main(void)
{
    /* Before any library call: the loader reads it on each lookup. */
    setenv("FERRY_PLUGIN_DIR", FY_TEST_PLUGIN_DIR, 1);
    FY_RUN(test_list_includes_plugins);
    FY_RUN(test_list_sorted);
    FY_RUN(test_abi_mismatch);
    FY_RUN(test_missing_symbol);
    FY_RUN(test_missing_required_op);
    FY_RUN(test_misnamed);
    FY_RUN(test_null_descriptor);
    FY_RUN(test_short_ops_table);
    FY_RUN(test_init_fails);
    FY_RUN(test_good_plugin_info);
    FY_RUN(test_local2_copy);
    FY_RUN(test_plugin_get_info);
    FY_RUN(test_empty_plugin_dir);
    FY_RUN(test_missing_plugin_dir);
    FY_RUN(test_plugin_path_list);
    return fy_test_done();
}
