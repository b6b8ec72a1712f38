/* SPDX-License-Identifier: Apache-2.0 */
/* Agents, plugins, backends, status strings, versions, memory type names,
 * counters, sync modes, the progress thread and destroying an agent that
 * still owns handles of every kind. */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/ferry.h>
#include <ferry/plugin.h>

#include "harness.h"
#include "testutil.h"

/* A pointer no function may write on failure ("outputs only on success"). */
#define SENTINEL ((void *)0x5e5e5e5e)

/* ---- config and lifecycle ---- */

static void test_config_init_defaults(void)
{
    ferry_agent_config cfg;
    memset(&cfg, 0xab, sizeof(cfg));
    ferry_agent_config_init(&cfg);
    FY_CHECK_EQ(cfg.size, sizeof(cfg));
    FY_CHECK(cfg.name == NULL);
    FY_CHECK(!cfg.progress_thread);
    FY_CHECK_EQ(cfg.progress_delay_us, 100);
    FY_CHECK(!cfg.listen);
    FY_CHECK(cfg.listen_host && !strcmp(cfg.listen_host, "0.0.0.0"));
    FY_CHECK_EQ(cfg.listen_port, 0);
    FY_CHECK(!cfg.telemetry);
    FY_CHECK_EQ(cfg.sync_mode, FERRY_SYNC_RW);
    FY_CHECK_EQ(cfg.notif_queue_cap, 65536);
    FY_CHECK_EQ(cfg.reg_cap_bytes, 0);
    ferry_agent_config_init(NULL); /* no crash */
}

/* Every refusal must leave *out untouched. */
static void check_create_refused(const ferry_agent_config *cfg)
{
    ferry_agent *agent = SENTINEL;
    FY_CHECK_EQ(ferry_agent_create(cfg, &agent), FERRY_ERR_INVALID_PARAM);
    FY_CHECK(agent == SENTINEL);
}

static void test_agent_create_errors(void)
{
    ferry_agent_config cfg;
    char long_name[FERRY_NAME_MAX + 2];
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';

    check_create_refused(NULL);
    ferry_agent_config_init(&cfg);
    check_create_refused(&cfg); /* no name */
    cfg.name = "";
    check_create_refused(&cfg);
    cfg.name = long_name;
    check_create_refused(&cfg);
    cfg.name = "ok";
    cfg.size = 0;
    check_create_refused(&cfg);
    cfg.size = sizeof(size_t);
    check_create_refused(&cfg);
    ferry_agent_config_init(&cfg);
    cfg.name = "ok";
    cfg.sync_mode = (ferry_sync_mode)7;
    check_create_refused(&cfg);
    /* A listener thread would race a caller that promised no concurrency. */
    ferry_agent_config_init(&cfg);
    cfg.name = "ok";
    cfg.listen = true;
    cfg.listen_host = "127.0.0.1";
    cfg.sync_mode = FERRY_SYNC_NONE;
    check_create_refused(&cfg);
    ferry_agent_config_init(&cfg);
    cfg.name = "ok";
    FY_CHECK_EQ(ferry_agent_create(&cfg, NULL), FERRY_ERR_INVALID_PARAM);
}

static void test_agent_create_destroy(void)
{
    ferry_agent_config cfg;
    ferry_agent *agent = NULL;
    char max_name[FERRY_NAME_MAX + 1];
    memset(max_name, 'm', FERRY_NAME_MAX);
    max_name[FERRY_NAME_MAX] = '\0';

    ferry_agent_config_init(&cfg);
    cfg.name = max_name; /* the longest name allowed */
    FY_REQUIRE(ferry_agent_create(&cfg, &agent) == FERRY_OK);
    FY_CHECK(!strcmp(ferry_agent_name(agent), max_name));
    FY_CHECK_EQ(ferry_agent_progress(agent), FERRY_OK); /* no backend: nothing to do */
    ferry_agent_destroy(agent);

    /* The agent keeps its own copy of the name. */
    char name[16] = "copied";
    cfg.name = name;
    FY_REQUIRE(ferry_agent_create(&cfg, &agent) == FERRY_OK);
    strcpy(name, "changed");
    FY_CHECK(!strcmp(ferry_agent_name(agent), "copied"));
    ferry_agent_destroy(agent);

    FY_CHECK(ferry_agent_name(NULL) == NULL);
    FY_CHECK_EQ(ferry_agent_progress(NULL), FERRY_ERR_INVALID_PARAM);
    ferry_agent_destroy(NULL); /* no-op */
}

/* A caller compiled against an older, shorter config: the fields it lacks
 * take their defaults, whatever lies beyond its size. */
static void test_agent_config_older_size(void)
{
    ferry_agent_config cfg;
    ferry_agent *agent = NULL;
    ferry_agent_config_init(&cfg);
    cfg.name = "older";
    cfg.size = offsetof(ferry_agent_config, sync_mode);
    cfg.sync_mode = (ferry_sync_mode)99; /* beyond size: ignored */
    cfg.notif_queue_cap = 1;
    FY_REQUIRE(ferry_agent_create(&cfg, &agent) == FERRY_OK);
    /* The queue must have its default capacity, not 1: send two. */
    void *mem = tu_alloc(4096);
    ferry_backend *be;
    FY_REQUIRE(ferry_backend_create(agent, "LOCAL", NULL, 0, &be) == FERRY_OK);
    FY_REQUIRE(tu_register(agent, mem, 4096) == FERRY_OK);
    FY_REQUIRE(tu_load_self(agent) == FERRY_OK);
    FY_CHECK_EQ(ferry_notif_send(agent, "older", "a", 1, NULL), FERRY_OK);
    FY_CHECK_EQ(ferry_notif_send(agent, "older", "b", 1, NULL), FERRY_OK);
    FY_CHECK_EQ(tu_drain_notifs(agent, NULL), 2);
    FY_CHECK_EQ(ferry_notif_dropped(agent), 0);
    ferry_agent_destroy(agent);
    free(mem);
}

/* ---- plugins ---- */

/* An agent without backends. */
static ferry_agent *bare_agent(const char *name)
{
    ferry_agent_config cfg;
    ferry_agent *agent = NULL;
    ferry_agent_config_init(&cfg);
    cfg.name = name;
    return ferry_agent_create(&cfg, &agent) == FERRY_OK ? agent : NULL;
}

static void test_plugin_list(void)
{
    ferry_agent *agent;
    size_t count = 0, count2 = 0;
    const char *names[64];
    FY_REQUIRE((agent = bare_agent("plugins")));
    FY_CHECK_EQ(ferry_plugin_list(agent, NULL, 0, &count), FERRY_OK);
    FY_CHECK(count >= 1);
    FY_REQUIRE(count <= 64);
    FY_CHECK_EQ(ferry_plugin_list(agent, names, 64, &count2), FERRY_OK);
    FY_CHECK_EQ(count2, count);
    FY_CHECK(!strcmp(names[0], "LOCAL")); /* compiled-in plugins come first */
    for (size_t i = 0; i < count; i++)
        for (size_t j = i + 1; j < count; j++)
            FY_CHECK(strcmp(names[i], names[j]) != 0);

    /* A short array gets the first entries and the full count. */
    const char *one[1] = {NULL};
    FY_CHECK_EQ(ferry_plugin_list(agent, one, 1, &count2), FERRY_OK);
    FY_CHECK_EQ(count2, count);
    FY_CHECK(one[0] && !strcmp(one[0], "LOCAL"));

    FY_CHECK_EQ(ferry_plugin_list(NULL, names, 64, &count), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_plugin_list(agent, names, 64, NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_plugin_list(agent, NULL, 4, &count), FERRY_ERR_INVALID_PARAM);
    ferry_agent_destroy(agent);
}

static const ferry_param_spec *find_spec(const ferry_param_spec *specs, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(specs[i].key, key))
            return &specs[i];
    return NULL;
}

static void test_plugin_info_local(void)
{
    ferry_agent *agent;
    const ferry_param_spec *specs = SENTINEL;
    size_t n = 0;
    uint32_t mask = 0, abi = 0;
    const char *path = NULL;
    FY_REQUIRE((agent = bare_agent("info")));
    FY_CHECK_EQ(ferry_plugin_params(agent, "LOCAL", &specs, &n), FERRY_OK);
    FY_CHECK_EQ(n, 3);
    const char *keys[] = {"workers", "inline_max", "chunk"};
    for (size_t i = 0; i < 3; i++) {
        const ferry_param_spec *s = find_spec(specs, n, keys[i]);
        FY_CHECK(s && s->default_value && s->help && s->help[0]);
    }
    FY_CHECK_EQ(ferry_plugin_mem_types(agent, "LOCAL", &mask), FERRY_OK);
    FY_CHECK_EQ(mask, FERRY_MEM_MASK(FERRY_MEM_DRAM));
    FY_CHECK_EQ(ferry_plugin_path(agent, "LOCAL", &path, &abi), FERRY_OK);
    FY_CHECK(path && !strcmp(path, "builtin"));
    FY_CHECK_EQ(abi, FERRY_PLUGIN_ABI_VERSION);
    /* Plugin names are case-insensitive. */
    FY_CHECK_EQ(ferry_plugin_mem_types(agent, "local", &mask), FERRY_OK);

    specs = SENTINEL;
    FY_CHECK_EQ(ferry_plugin_params(agent, "NO_SUCH_PLUGIN", &specs, &n), FERRY_ERR_NOT_FOUND);
    FY_CHECK(specs == SENTINEL);
    FY_CHECK_EQ(ferry_plugin_mem_types(agent, "NO_SUCH_PLUGIN", &mask), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(ferry_plugin_path(agent, "NO_SUCH_PLUGIN", &path, &abi), FERRY_ERR_NOT_FOUND);

    FY_CHECK_EQ(ferry_plugin_params(NULL, "LOCAL", &specs, &n), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_plugin_params(agent, NULL, &specs, &n), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_plugin_params(agent, "LOCAL", NULL, &n), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_plugin_params(agent, "LOCAL", &specs, NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_plugin_mem_types(NULL, "LOCAL", &mask), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_plugin_mem_types(agent, NULL, &mask), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_plugin_mem_types(agent, "LOCAL", NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_plugin_path(NULL, "LOCAL", &path, &abi), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_plugin_path(agent, NULL, &path, &abi), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_plugin_path(agent, "LOCAL", NULL, &abi), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_plugin_path(agent, "LOCAL", &path, NULL), FERRY_ERR_INVALID_PARAM);
    ferry_agent_destroy(agent);
}

/* ---- backends ---- */

static void check_backend_refused(ferry_agent *agent, const char *plugin, const ferry_param *p,
                                  size_t n, ferry_status want)
{
    ferry_backend *be = SENTINEL;
    FY_CHECK_EQ(ferry_backend_create(agent, plugin, p, n, &be), want);
    FY_CHECK(be == SENTINEL);
}

static void test_backend_create_errors(void)
{
    ferry_agent *agent = bare_agent("be-errors");
    ferry_backend *be;
    FY_REQUIRE(agent);
    ferry_param unknown[] = {{"no_such_key", "1"}};
    ferry_param not_number[] = {{"workers", "abc"}};
    ferry_param out_of_range[] = {{"workers", "100000"}};
    ferry_param negative[] = {{"inline_max", "-1"}};
    ferry_param small_chunk[] = {{"chunk", "1"}};
    ferry_param null_value[] = {{"workers", NULL}};
    ferry_param null_key[] = {{NULL, "1"}};
    check_backend_refused(agent, "NO_SUCH_PLUGIN", NULL, 0, FERRY_ERR_NOT_FOUND);
    check_backend_refused(agent, "LOCAL", unknown, 1, FERRY_ERR_INVALID_PARAM);
    check_backend_refused(agent, "LOCAL", not_number, 1, FERRY_ERR_INVALID_PARAM);
    check_backend_refused(agent, "LOCAL", out_of_range, 1, FERRY_ERR_INVALID_PARAM);
    check_backend_refused(agent, "LOCAL", negative, 1, FERRY_ERR_INVALID_PARAM);
    check_backend_refused(agent, "LOCAL", small_chunk, 1, FERRY_ERR_INVALID_PARAM);
    check_backend_refused(agent, "LOCAL", null_value, 1, FERRY_ERR_INVALID_PARAM);
    check_backend_refused(agent, "LOCAL", null_key, 1, FERRY_ERR_INVALID_PARAM);
    check_backend_refused(agent, "LOCAL", NULL, 2, FERRY_ERR_INVALID_PARAM);
    check_backend_refused(NULL, "LOCAL", NULL, 0, FERRY_ERR_INVALID_PARAM);
    check_backend_refused(agent, NULL, NULL, 0, FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_backend_create(agent, "LOCAL", NULL, 0, NULL), FERRY_ERR_INVALID_PARAM);
    /* None of the refusals left a backend behind. */
    FY_CHECK_EQ(ferry_backend_find(agent, "LOCAL", &be), FERRY_ERR_NOT_FOUND);

    FY_CHECK_EQ(ferry_backend_create(agent, "LOCAL", NULL, 0, &be), FERRY_OK);
    /* One backend per plugin per agent, whatever the case of the name. */
    check_backend_refused(agent, "LOCAL", NULL, 0, FERRY_ERR_NOT_ALLOWED);
    check_backend_refused(agent, "local", NULL, 0, FERRY_ERR_NOT_ALLOWED);
    ferry_agent_destroy(agent);
}

static const char *param_value(const ferry_param *p, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(p[i].key, key))
            return p[i].value;
    return NULL;
}

static void test_backend_info(void)
{
    ferry_agent *agent = bare_agent("be-info");
    ferry_backend *be, *found = NULL;
    FY_REQUIRE(agent);
    ferry_param given[] = {{"workers", "3"}, {"chunk", "64K"}};
    FY_REQUIRE(ferry_backend_create(agent, "LOCAL", given, 2, &be) == FERRY_OK);
    FY_CHECK(!strcmp(ferry_backend_name(be), "LOCAL"));
    FY_CHECK(ferry_backend_name(NULL) == NULL);

    ferry_backend_caps caps;
    ferry_backend_caps_init(&caps);
    FY_CHECK_EQ(caps.size, sizeof(caps));
    FY_CHECK_EQ(ferry_backend_get_caps(be, &caps), FERRY_OK);
    FY_CHECK(caps.flags & FERRY_CAP_LOCAL);
    FY_CHECK(caps.flags & FERRY_CAP_NOTIF);
    FY_CHECK(!(caps.flags & FERRY_CAP_REMOTE));
    FY_CHECK_EQ(caps.mem_mask, FERRY_MEM_MASK(FERRY_MEM_DRAM));
    caps.size = 4;
    FY_CHECK_EQ(ferry_backend_get_caps(be, &caps), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_backend_get_caps(NULL, &caps), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_backend_get_caps(be, NULL), FERRY_ERR_INVALID_PARAM);
    ferry_backend_caps_init(NULL);

    /* Effective params: the given values and the defaults of the rest. */
    const ferry_param *params = NULL;
    size_t n = 0;
    FY_CHECK_EQ(ferry_backend_params(be, &params, &n), FERRY_OK);
    FY_CHECK_EQ(n, 3);
    const char *workers = param_value(params, n, "workers");
    const char *chunk = param_value(params, n, "chunk");
    const char *inline_max = param_value(params, n, "inline_max");
    FY_CHECK(workers && !strcmp(workers, "3"));
    FY_CHECK(chunk && !strcmp(chunk, "64K"));
    FY_CHECK(inline_max && !strcmp(inline_max, "1048576"));
    FY_CHECK_EQ(ferry_backend_params(NULL, &params, &n), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_backend_params(be, NULL, &n), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_backend_params(be, &params, NULL), FERRY_ERR_INVALID_PARAM);

    FY_CHECK_EQ(ferry_backend_find(agent, "LOCAL", &found), FERRY_OK);
    FY_CHECK(found == be);
    found = NULL;
    FY_CHECK_EQ(ferry_backend_find(agent, "local", &found), FERRY_OK);
    FY_CHECK(found == be);
    found = SENTINEL;
    FY_CHECK_EQ(ferry_backend_find(agent, "UCX", &found), FERRY_ERR_NOT_FOUND);
    FY_CHECK(found == SENTINEL);
    FY_CHECK_EQ(ferry_backend_find(NULL, "LOCAL", &found), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_backend_find(agent, NULL, &found), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_backend_find(agent, "LOCAL", NULL), FERRY_ERR_INVALID_PARAM);
    ferry_agent_destroy(agent);
}

/* ---- status strings, versions, memory type names ---- */

static void test_status_strings(void)
{
    const char *names[64] = {0};
    int k = 0;
    for (int s = FERRY_ERR_ABI; s <= FERRY_IN_PROGRESS; s++, k++) {
        const char *text = ferry_strerror((ferry_status)s);
        const char *name = ferry_status_name((ferry_status)s);
        FY_CHECK(text && text[0] && strcmp(text, "unknown status") != 0);
        FY_CHECK(name && !strncmp(name, "FERRY_", 6));
        FY_CHECK(name && strcmp(name, "FERRY_STATUS_UNKNOWN") != 0);
        names[k] = name;
        for (int j = 0; j < k; j++)
            FY_CHECK(strcmp(names[j], name) != 0);
    }
    FY_CHECK(!strcmp(ferry_status_name(FERRY_OK), "FERRY_OK"));
    FY_CHECK(!strcmp(ferry_status_name(FERRY_IN_PROGRESS), "FERRY_IN_PROGRESS"));
    FY_CHECK(!strcmp(ferry_status_name(FERRY_ERR_NOT_FOUND), "FERRY_ERR_NOT_FOUND"));
    FY_CHECK(!strcmp(ferry_status_name(FERRY_ERR_STALE), "FERRY_ERR_STALE"));
    FY_CHECK(!strcmp(ferry_status_name(FERRY_ERR_ABI), "FERRY_ERR_ABI"));
    /* NIXL's numbers are part of the contract. */
    FY_CHECK_EQ(FERRY_ERR_NOT_POSTED, -1);
    FY_CHECK_EQ(FERRY_ERR_NO_TELEMETRY, -12);

    const int unknown[] = {2, 100, FERRY_ERR_ABI - 1, -1000, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        FY_CHECK(!strcmp(ferry_strerror((ferry_status)unknown[i]), "unknown status"));
        FY_CHECK(!strcmp(ferry_status_name((ferry_status)unknown[i]), "FERRY_STATUS_UNKNOWN"));
    }
}

static void test_version(void)
{
    char want[32];
    snprintf(want, sizeof(want), "%d.%d.%d", FERRY_VERSION_MAJOR, FERRY_VERSION_MINOR,
             FERRY_VERSION_PATCH);
    FY_CHECK_EQ(ferry_version(), FERRY_VERSION);
    FY_CHECK_EQ(FERRY_VERSION,
                FERRY_VERSION_NUM(FERRY_VERSION_MAJOR, FERRY_VERSION_MINOR, FERRY_VERSION_PATCH));
    FY_CHECK(ferry_version_string() && !strcmp(ferry_version_string(), want));
}

static void test_mem_type_names(void)
{
    const char *want[] = {"DRAM", "VRAM", "FILE", "BLOCK", "OBJ"};
    ferry_mem_type t;
    for (int i = 0; i < FERRY_MEM_TYPE_COUNT; i++) {
        const char *name = ferry_mem_type_name((ferry_mem_type)i);
        FY_CHECK(name && !strcmp(name, want[i]));
        t = (ferry_mem_type)-1;
        FY_CHECK_EQ(ferry_mem_type_parse(want[i], &t), FERRY_OK);
        FY_CHECK_EQ(t, i);
    }
    FY_CHECK(ferry_mem_type_name((ferry_mem_type)FERRY_MEM_TYPE_COUNT) == NULL);
    FY_CHECK(ferry_mem_type_name((ferry_mem_type)-1) == NULL);

    const struct {
        const char *text;
        ferry_mem_type type;
    } aliases[] = {{"dram", FERRY_MEM_DRAM}, {"Vram", FERRY_MEM_VRAM},  {"cpu", FERRY_MEM_DRAM},
                   {"CPU", FERRY_MEM_DRAM},  {"cuda", FERRY_MEM_VRAM},  {"CUDA", FERRY_MEM_VRAM},
                   {"obj", FERRY_MEM_OBJ},   {"block", FERRY_MEM_BLOCK}};
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++) {
        t = (ferry_mem_type)-1;
        FY_CHECK_EQ(ferry_mem_type_parse(aliases[i].text, &t), FERRY_OK);
        FY_CHECK_EQ(t, aliases[i].type);
    }
    t = FERRY_MEM_OBJ;
    FY_CHECK_EQ(ferry_mem_type_parse("bogus", &t), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(ferry_mem_type_parse("", &t), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(ferry_mem_type_parse("DRAMX", &t), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(t, FERRY_MEM_OBJ); /* untouched on failure */
    FY_CHECK_EQ(ferry_mem_type_parse(NULL, &t), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_mem_type_parse("DRAM", NULL), FERRY_ERR_INVALID_PARAM);
}

/* ---- counters ---- */

static void test_counters(void)
{
    tu_loop lp;
    ferry_counters c;
    ferry_xfer *x;
    FY_REQUIRE(tu_loop_open(&lp, "counters", NULL, NULL, 0, 8192) == FERRY_OK);
    ferry_counters_init(&c);
    FY_CHECK_EQ(c.size, sizeof(c));
    FY_CHECK_EQ(ferry_counters_get(lp.agent, &c), FERRY_OK);
    FY_CHECK_EQ(c.mem_registered, 2 * 8192);
    FY_CHECK_EQ(c.regions, 2);
    FY_CHECK_EQ(c.tx_bytes + c.rx_bytes + c.tx_requests + c.rx_requests, 0);

    FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, 1000, "w", &x) == FERRY_OK);
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK); /* each post counts */
    ferry_xfer_release(x);
    FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_READ, 300, NULL, &x) == FERRY_OK);
    FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
    ferry_xfer_release(x);

    FY_CHECK_EQ(ferry_counters_get(lp.agent, &c), FERRY_OK);
    FY_CHECK_EQ(c.tx_bytes, 2000);
    FY_CHECK_EQ(c.tx_requests, 2);
    FY_CHECK_EQ(c.rx_bytes, 300);
    FY_CHECK_EQ(c.rx_requests, 1);
    FY_CHECK_EQ(c.xfer_errors, 0);
    FY_CHECK_EQ(c.notifs_received, 2);
    FY_CHECK_EQ(c.notifs_dropped, 0);

    FY_CHECK_EQ(tu_deregister(lp.agent, lp.src, lp.len), FERRY_OK);
    FY_CHECK_EQ(ferry_counters_get(lp.agent, &c), FERRY_OK);
    FY_CHECK_EQ(c.mem_registered, 8192);
    FY_CHECK_EQ(c.regions, 1);

    c.size = 8;
    FY_CHECK_EQ(ferry_counters_get(lp.agent, &c), FERRY_ERR_INVALID_PARAM);
    ferry_counters_init(&c);
    FY_CHECK_EQ(ferry_counters_get(NULL, &c), FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(ferry_counters_get(lp.agent, NULL), FERRY_ERR_INVALID_PARAM);
    ferry_counters_init(NULL);
    tu_loop_close(&lp);
}

/* ---- sync modes and the progress thread ---- */

/* One inline and one pooled WRITE, verified, in the given mode. */
static void run_sync_mode(ferry_sync_mode mode, bool progress_thread)
{
    ferry_agent_config cfg;
    ferry_param pool[] = TU_POOL_PARAMS("2", "4096", "64K");
    tu_loop lp;
    ferry_xfer *x;
    ferry_agent_config_init(&cfg);
    cfg.sync_mode = mode;
    cfg.progress_thread = progress_thread;
    FY_REQUIRE(tu_loop_open(&lp, "sync", &cfg, pool, 3, 1u << 20) == FERRY_OK);
    const size_t sizes[] = {1000, 1u << 20};
    for (size_t i = 0; i < 2; i++) {
        memset(lp.dst, 0, lp.len);
        FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, sizes[i], "sync", &x) == FERRY_OK);
        FY_CHECK_EQ(tu_post_wait(x), FERRY_OK);
        FY_CHECK(!memcmp(lp.src, lp.dst, sizes[i]));
        FY_CHECK_EQ(ferry_notif_take_tag(lp.agent, "sync", "sync", 4, false), FERRY_OK);
        FY_CHECK_EQ(ferry_xfer_release(x), FERRY_OK);
    }
    tu_loop_close(&lp);
}

static void test_sync_rw(void)
{
    run_sync_mode(FERRY_SYNC_RW, false);
}
static void test_sync_strict(void)
{
    run_sync_mode(FERRY_SYNC_STRICT, false);
}
static void test_sync_none(void)
{
    run_sync_mode(FERRY_SYNC_NONE, false);
}
static void test_sync_strict_progress_thread(void)
{
    run_sync_mode(FERRY_SYNC_STRICT, true);
}

/* With the progress thread on, a pooled transfer completes and notifies
 * without anyone polling; the status call afterwards only reads the result. */
static void test_progress_thread(void)
{
    ferry_agent_config cfg;
    ferry_param pool[] = TU_POOL_PARAMS("2", "4096", "64K");
    tu_loop lp;
    ferry_xfer *x;
    ferry_agent_config_init(&cfg);
    cfg.progress_thread = true;
    cfg.progress_delay_us = 50;
    FY_REQUIRE(tu_loop_open(&lp, "progress", &cfg, pool, 3, 4u << 20) == FERRY_OK);
    FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, lp.len, "pt", &x) == FERRY_OK);
    ferry_status rc = ferry_xfer_post(x);
    FY_CHECK(rc == FERRY_IN_PROGRESS || rc == FERRY_OK);
    uint64_t deadline = tu_now_ms() + TU_TIMEOUT_MS;
    while ((rc = ferry_notif_take_tag(lp.agent, "progress", "pt", 2, false)) != FERRY_OK &&
           tu_now_ms() < deadline)
        tu_sleep_us(200);
    FY_CHECK_EQ(rc, FERRY_OK);
    FY_CHECK(!memcmp(lp.src, lp.dst, lp.len));
    FY_CHECK_EQ(tu_wait(x, TU_TIMEOUT_MS), FERRY_OK);
    ferry_xfer_release(x);
    tu_loop_close(&lp);
}

/* ---- destroy with live handles ---- */

/* Everything an application may forget: registrations, two remotes,
 * prepared lists, requests done, never posted and in progress, queued
 * notifications. Destroy must free all of it (valgrind/ASan check) and
 * stop the pool while a transfer runs. */
static void run_destroy_live(bool progress_thread)
{
    ferry_agent_config cfg;
    ferry_param pool[] = TU_POOL_PARAMS("2", "4096", "4096");
    tu_loop lp;
    ferry_agent *peer;
    ferry_xfer *done, *idle, *running;
    ferry_prepped *pl, *pr;
    ferry_agent_config_init(&cfg);
    cfg.progress_thread = progress_thread;
    FY_REQUIRE(tu_loop_open(&lp, "live", &cfg, pool, 3, 32u << 20) == FERRY_OK);
    FY_REQUIRE(tu_agent("live-peer", &peer) == FERRY_OK);
    FY_CHECK_EQ(tu_load_md(lp.agent, peer), FERRY_OK);
    ferry_agent_destroy(peer);

    ferry_dlist *ls = tu_list1(lp.src, 4096), *rs = tu_list1(lp.dst, 4096);
    FY_REQUIRE(ls && rs);
    FY_CHECK_EQ(ferry_prep_dlist(lp.agent, NULL, ls, NULL, &pl), FERRY_OK);
    FY_CHECK_EQ(ferry_prep_dlist(lp.agent, "live", rs, NULL, &pr), FERRY_OK);
    ferry_dlist_destroy(ls);
    ferry_dlist_destroy(rs);
    FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, 100, "done", &done) == FERRY_OK);
    FY_CHECK_EQ(tu_post_wait(done), FERRY_OK);
    FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, 100, "idle", &idle) == FERRY_OK);
    FY_REQUIRE(tu_loop_xfer(&lp, FERRY_OP_WRITE, lp.len, "running", &running) == FERRY_OK);
    ferry_status rc = ferry_xfer_post(running);
    FY_CHECK(rc == FERRY_IN_PROGRESS || rc == FERRY_OK);
    FY_CHECK_EQ(ferry_notif_send(lp.agent, "live", "queued", 6, NULL), FERRY_OK);
    ferry_agent_destroy(lp.agent);
    free(lp.src);
    free(lp.dst);
}

static void test_destroy_with_live_handles(void)
{
    run_destroy_live(false);
}
static void test_destroy_with_live_handles_progress(void)
{
    run_destroy_live(true);
}

int main(void)
{
    FY_RUN(test_config_init_defaults);
    FY_RUN(test_agent_create_errors);
    FY_RUN(test_agent_create_destroy);
    FY_RUN(test_agent_config_older_size);
    FY_RUN(test_plugin_list);
    FY_RUN(test_plugin_info_local);
    FY_RUN(test_backend_create_errors);
    FY_RUN(test_backend_info);
    FY_RUN(test_status_strings);
    FY_RUN(test_version);
    FY_RUN(test_mem_type_names);
    FY_RUN(test_counters);
    FY_RUN(test_sync_rw);
    FY_RUN(test_sync_strict);
    FY_RUN(test_sync_none);
    FY_RUN(test_sync_strict_progress_thread);
    FY_RUN(test_progress_thread);
    FY_RUN(test_destroy_with_live_handles);
    FY_RUN(test_destroy_with_live_handles_progress);
    return fy_test_done();
}
