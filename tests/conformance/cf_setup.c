/* SPDX-License-Identifier: Apache-2.0 */
/* The conformance suite's setup layer (see conformance.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"
#include "testutil.h"

/* ---- arguments ---- */

static ferry_status cf_parse_param(cf_env *env, char *arg)
{
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg || env->num_params == CF_MAX_PARAMS)
        return FERRY_ERR_INVALID_PARAM;
    *eq = '\0';
    env->params[env->num_params++] = (ferry_param){arg, eq + 1};
    return FERRY_OK;
}

/* --store=TYPE, --direct, --dir=DIR: the storage mode's arguments. */
static ferry_status cf_parse_storage(cf_env *env, const char *arg, bool *taken)
{
    *taken = true;
    if (!strncmp(arg, "--store=", 8)) {
        ferry_status rc = ferry_mem_type_parse(arg + 8, &env->store_type);
        return rc == FERRY_OK && env->store_type > FERRY_MEM_VRAM ? FERRY_OK
                                                                  : FERRY_ERR_INVALID_PARAM;
    }
    if (!strcmp(arg, "--direct")) {
        env->direct = true;
        env->align = 4096; /* every O_DIRECT alignment a kernel asks for */
        return FERRY_OK;
    }
    if (!strncmp(arg, "--dir=", 6) && strlen(arg + 6) < sizeof(env->dir) - 32) {
        snprintf(env->dir, sizeof(env->dir), "%s", arg + 6);
        return FERRY_OK;
    }
    *taken = false;
    return FERRY_OK;
}

/* Returns the topology forced on the command line: 1 pair, 0 loopback,
 * -1 none. */
static ferry_status cf_parse(cf_env *env, int argc, char **argv, int *forced)
{
    bool taken;
    *forced = -1;
    if (argc < 2 || !argv[1][0])
        return FERRY_ERR_INVALID_PARAM;
    env->plugin = argv[1];
    for (int i = 2; i < argc; i++) {
        if (cf_parse_storage(env, argv[i], &taken) != FERRY_OK)
            return FERRY_ERR_INVALID_PARAM;
        else if (taken)
            continue;
        else if (!strncmp(argv[i], "--plugin-dir=", 13))
            setenv("FERRY_PLUGIN_DIR", argv[i] + 13, 1); /* before any lookup */
        else if (!strcmp(argv[i], "--pair"))
            *forced = 1;
        else if (!strcmp(argv[i], "--loopback"))
            *forced = 0;
        else if (!strcmp(argv[i], "--alloc"))
            env->alloc = true; /* e.g. SHM: memfd memory the initiator maps */
        else if (cf_parse_param(env, argv[i]) != FERRY_OK)
            return FERRY_ERR_INVALID_PARAM;
    }
    /* A store lives on this host: storage backends reach only their own agent. */
    return env->direct && !cf_storage(env) ? FERRY_ERR_INVALID_PARAM : FERRY_OK;
}

/* ---- agents ---- */

/* A target in pair topology runs a progress thread: it stands for a peer
 * process that makes progress on its own, also while the initiator blocks
 * (e.g. in a release waiting for the transport). */
static ferry_status cf_agent(cf_env *env, const char *name, bool progress_thread,
                             ferry_agent **agent, ferry_backend **be)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = name;
    cfg.telemetry = true;
    cfg.progress_thread = progress_thread;
    ferry_status rc = ferry_agent_create(&cfg, agent);
    if (rc != FERRY_OK)
        return rc;
    rc = ferry_backend_create(*agent, env->plugin, env->params, env->num_params, be);
    if (rc != FERRY_OK) {
        ferry_agent_destroy(*agent);
        *agent = NULL;
    }
    return rc;
}

/* The suite moves DRAM to the target's memory type; the topology needs
 * its capability. */
static ferry_status cf_check_caps(cf_env *env, const char **why)
{
    ferry_backend_caps_init(&env->caps);
    ferry_status rc = ferry_backend_get_caps(env->ini_be, &env->caps);
    if (rc != FERRY_OK)
        return rc;
    if (!(env->caps.mem_mask & FERRY_MEM_MASK(FERRY_MEM_DRAM))) {
        *why = "the backend does not move DRAM";
        return FERRY_ERR_NOT_SUPPORTED;
    }
    if (!(env->caps.mem_mask & FERRY_MEM_MASK(env->store_type))) {
        *why = "the backend does not serve the --store memory type";
        return FERRY_ERR_NOT_SUPPORTED;
    }
    uint32_t need = env->pair ? FERRY_CAP_REMOTE : FERRY_CAP_LOCAL;
    if (!(env->caps.flags & need)) {
        *why = env->pair ? "pair topology needs FERRY_CAP_REMOTE"
                         : "loopback topology needs FERRY_CAP_LOCAL";
        return FERRY_ERR_NOT_SUPPORTED;
    }
    return FERRY_OK;
}

ferry_status cf_agent_new(cf_env *env, const char *name, ferry_agent **agent)
{
    ferry_backend *be;
    return cf_agent(env, name, false, agent, &be);
}

static ferry_status cf_agents(cf_env *env, int forced, const char **why)
{
    ferry_status rc = cf_agent(env, env->ini_name, false, &env->ini, &env->ini_be);
    if (rc != FERRY_OK) {
        *why = rc == FERRY_ERR_NOT_FOUND ? "plugin not available" : "cannot create the backend";
        return rc;
    }
    ferry_backend_caps caps;
    ferry_backend_caps_init(&caps);
    ferry_backend_get_caps(env->ini_be, &caps);
    env->pair =
        forced >= 0 ? forced == 1 : (caps.flags & FERRY_CAP_REMOTE) != 0 && !cf_storage(env);
    rc = cf_check_caps(env, why);
    if (rc != FERRY_OK || !env->pair) {
        env->tgt = env->ini;
        env->tgt_be = env->ini_be;
        snprintf(env->tgt_name, sizeof(env->tgt_name), "%s", env->ini_name);
        return rc;
    }
    snprintf(env->tgt_name, sizeof(env->tgt_name), "cf-%s-target", env->plugin);
    rc = cf_agent(env, env->tgt_name, true, &env->tgt, &env->tgt_be);
    if (rc != FERRY_OK)
        *why = "cannot create the target's backend";
    return rc;
}

ferry_status cf_env_open(cf_env *env, int argc, char **argv, const char **why)
{
    int forced;
    memset(env, 0, sizeof(*env));
    env->store_type = FERRY_MEM_DRAM;
    env->align = 1;
    *why = "usage: conformance PLUGIN [key=value ...] [--pair|--loopback] [--plugin-dir=DIR] "
           "[--store=FILE|BLOCK|OBJ [--direct] [--dir=DIR]]";
    if (cf_parse(env, argc, argv, &forced) != FERRY_OK)
        return FERRY_ERR_INVALID_PARAM;
    snprintf(env->ini_name, sizeof(env->ini_name), "cf-%s", env->plugin);
    ferry_status rc = cf_store_dir(env, why);
    if (rc == FERRY_OK)
        rc = cf_agents(env, forced, why);
    if (rc == FERRY_OK)
        rc = cf_publish(env);
    if (rc != FERRY_OK)
        cf_env_close(env);
    return rc;
}

void cf_env_close(cf_env *env)
{
    if (env->tgt && env->tgt != env->ini)
        ferry_agent_destroy(env->tgt);
    ferry_agent_destroy(env->ini);
    env->ini = env->tgt = NULL;
    cf_store_dir_remove(env);
}

/* ---- memory and metadata ---- */

/* Same-instance reloads keep the keys of regions already known, so a
 * region registered again at the same addresses would keep a dead key:
 * publishing always starts a new generation instead. */
ferry_status cf_publish(cf_env *env)
{
    ferry_status rc = ferry_md_invalidate(env->ini, env->tgt_name);
    if (rc != FERRY_OK && rc != FERRY_ERR_NOT_FOUND)
        return rc;
    return tu_load_md(env->ini, env->tgt);
}

ferry_status cf_register_list(cf_env *env, bool target, const ferry_dlist *list)
{
    ferry_status rc = ferry_register(target ? env->tgt : env->ini, list, NULL);
    if (rc == FERRY_OK && target)
        rc = cf_publish(env);
    return rc;
}

ferry_status cf_register(cf_env *env, bool target, const void *buf, size_t len)
{
    ferry_dlist *l = tu_list1(buf, len);
    if (!l)
        return FERRY_ERR_NO_MEMORY;
    ferry_status rc = cf_register_list(env, target, l);
    ferry_dlist_destroy(l);
    return rc;
}

ferry_status cf_deregister(cf_env *env, bool target, const void *buf, size_t len)
{
    return tu_deregister(target ? env->tgt : env->ini, buf, len);
}

/* ---- waiting ---- */

void cf_progress(cf_env *env)
{
    ferry_agent_progress(env->ini);
    if (env->tgt != env->ini)
        ferry_agent_progress(env->tgt);
}

ferry_status cf_wait(cf_env *env, ferry_xfer *x, uint64_t timeout_ms)
{
    uint64_t deadline = tu_now_ms() + timeout_ms;
    ferry_status rc;
    while ((rc = ferry_xfer_status(x)) == FERRY_IN_PROGRESS) {
        if (tu_now_ms() > deadline)
            return FERRY_ERR_TIMEOUT;
        if (env->tgt != env->ini)
            ferry_agent_progress(env->tgt);
        tu_sleep_us(20);
    }
    return rc;
}

ferry_status cf_post_wait(cf_env *env, ferry_xfer *x)
{
    ferry_status rc = ferry_xfer_post(x);
    return rc == FERRY_IN_PROGRESS ? cf_wait(env, x, TU_TIMEOUT_MS) : rc;
}

ferry_status cf_wait_notif(cf_env *env, const void *tag, size_t len, uint64_t timeout_ms)
{
    uint64_t deadline = tu_now_ms() + timeout_ms;
    ferry_status rc;
    while ((rc = ferry_notif_take_tag(env->tgt, env->ini_name, tag, len, false)) ==
           FERRY_ERR_NOT_FOUND) {
        if (tu_now_ms() > deadline)
            return FERRY_ERR_TIMEOUT;
        cf_progress(env);
        tu_sleep_us(20);
    }
    return rc;
}

size_t cf_drain_notifs(cf_env *env, unsigned settle_ms)
{
    uint64_t until = tu_now_ms() + settle_ms;
    do {
        cf_progress(env);
        tu_sleep_us(200);
    } while (tu_now_ms() < until);
    return tu_drain_notifs(env->tgt, env->ini_name);
}
