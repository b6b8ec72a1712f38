/* SPDX-License-Identifier: Apache-2.0 */
/* The detail of failed calls (ferry_last_error, per thread) and the logger:
 * a handler receiving the lines of the core and of plugins, the level set
 * and read, and the NIXL names of the environment (FERRY_* first), which
 * are read once per process: those cases run this program again as a
 * child with the environment under test. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ferry/ferry.h>

#include "harness.h"
#include "testutil.h"

#define LEN 4096u

static bool has(const char *text, const char *part)
{
    return strstr(text, part) != NULL;
}

/* A DRAM buffer that is not registered, prepared: NOT_FOUND. */
static ferry_status prep_unregistered(ferry_agent *agent)
{
    static uint8_t buf[LEN];
    ferry_dlist *l = tu_list1(buf, LEN);
    ferry_prepped *p = NULL;
    ferry_status rc = l ? ferry_prep_dlist(agent, NULL, l, NULL, &p) : FERRY_ERR_NO_MEMORY;
    ferry_prepped_release(p);
    ferry_dlist_destroy(l);
    return rc;
}

/* ---- ferry_last_error ---- */

static void test_prep_unregistered(void)
{
    ferry_agent *agent;
    FY_REQUIRE(tu_agent("log-prep", &agent) == FERRY_OK);
    ferry_clear_error();
    FY_CHECK_EQ(ferry_last_error()[0], '\0');
    FY_CHECK_EQ(prep_unregistered(agent), FERRY_ERR_NOT_FOUND);
    FY_CHECK(has(ferry_last_error(), "descriptor 0 ("));
    FY_CHECK(has(ferry_last_error(), "is not inside a registered region"));
    ferry_clear_error();
    FY_CHECK_EQ(ferry_last_error()[0], '\0');
    ferry_agent_destroy(agent);
}

static void test_unknown_plugin(void)
{
    ferry_agent *agent;
    ferry_backend *be = NULL;
    FY_REQUIRE(tu_agent("log-plugin", &agent) == FERRY_OK);
    ferry_clear_error();
    FY_CHECK_EQ(ferry_backend_create(agent, "NOSUCHPLUGIN", NULL, 0, &be), FERRY_ERR_NOT_FOUND);
    FY_CHECK(has(ferry_last_error(), "loader: no plugin named NOSUCHPLUGIN"));
    FY_CHECK(be == NULL);
    ferry_agent_destroy(agent);
}

/* A refused plugin is logged once, at load; every failing call on it still
 * gets the reason. */
static void test_refused_plugin(void)
{
    ferry_agent *agent;
    ferry_backend *be = NULL;
    FY_REQUIRE(tu_agent("log-refused", &agent) == FERRY_OK);
    for (int i = 0; i < 2; i++) {
        ferry_clear_error();
        FY_CHECK_EQ(ferry_backend_create(agent, "BADABI", NULL, 0, &be), FERRY_ERR_ABI);
        FY_CHECK(has(ferry_last_error(), "plugin BADABI"));
        FY_CHECK(has(ferry_last_error(), "refused"));
    }
    ferry_agent_destroy(agent);
}

/* A plugin's ERROR line is the detail, under the plugin's name. */
static void test_plugin_line(void)
{
    static const ferry_param fail[] = {{"fail", "backend"}};
    ferry_agent *agent;
    ferry_backend *be = NULL;
    FY_REQUIRE(tu_agent("log-initfail", &agent) == FERRY_OK);
    ferry_clear_error();
    FY_CHECK_EQ(ferry_backend_create(agent, "INITFAIL", fail, 1, &be), FERRY_ERR_BACKEND);
    FY_CHECK(has(ferry_last_error(), "INITFAIL: init fails as its param asks"));
    FY_CHECK(has(ferry_last_error(), "backend INITFAIL: init failed"));
    ferry_agent_destroy(agent);
}

static void test_bad_metadata(void)
{
    static const uint8_t junk[64] = {'n', 'o', 't', ' ', 'm', 'e', 't', 'a'};
    char name[FERRY_NAME_MAX + 1];
    ferry_agent *agent;
    FY_REQUIRE(tu_agent("log-md", &agent) == FERRY_OK);
    ferry_clear_error();
    FY_CHECK_EQ(ferry_md_load(agent, junk, sizeof(junk), name, sizeof(name)),
                FERRY_ERR_BAD_METADATA);
    FY_CHECK(has(ferry_last_error(), "malformed metadata blob of 64 bytes"));
    FY_CHECK(has(ferry_md_error(), "malformed metadata blob of 64 bytes"));
    /* ferry_md_error keeps its contract: the last metadata call's. */
    FY_CHECK_EQ(tu_load_self(agent), FERRY_OK);
    FY_CHECK_EQ(ferry_md_error()[0], '\0');
    FY_CHECK(has(ferry_last_error(), "malformed")); /* kept until cleared */
    ferry_agent_destroy(agent);
}

/* A request made against an agent whose metadata is not loaded. */
static void test_create_unknown_remote(void)
{
    tu_loop lp;
    ferry_xfer *x = NULL;
    FY_REQUIRE(tu_loop_open(&lp, "log-create", NULL, NULL, 0, LEN) == FERRY_OK);
    ferry_dlist *l = tu_list1(lp.src, LEN), *r = tu_list1(lp.dst, LEN);
    FY_REQUIRE(l && r);
    ferry_clear_error();
    FY_CHECK_EQ(ferry_xfer_create(lp.agent, FERRY_OP_WRITE, l, r, "nobody", NULL, &x),
                FERRY_ERR_NOT_FOUND);
    FY_CHECK(has(ferry_last_error(), "no metadata loaded for agent 'nobody'"));
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    tu_loop_close(&lp);
}

/* Argument errors that docs/api promises a detail for. */
static void test_argument_details(void)
{
    ferry_dlist *l = NULL;
    ferry_agent *agent;
    char name[FERRY_NAME_MAX + 1];
    FY_REQUIRE(tu_agent("log-args", &agent) == FERRY_OK);
    ferry_clear_error();
    FY_CHECK_EQ(ferry_dlist_create(FERRY_MEM_DRAM, 4, NULL), FERRY_ERR_INVALID_PARAM);
    FY_CHECK(has(ferry_last_error(), "no out pointer"));
    ferry_clear_error();
    FY_CHECK_EQ(ferry_dlist_create_strided(FERRY_MEM_DRAM, 4096, 64, 8, 0, 0, &l),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK(has(ferry_last_error(), "descriptor length 0"));
    ferry_clear_error();
    FY_CHECK_EQ(ferry_dlist_create_strided(FERRY_MEM_DRAM, UINT64_MAX - 10, 64, 8, 64, 0, &l),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK(has(ferry_last_error(), "wrap the address space"));
    ferry_clear_error();
    FY_CHECK_EQ(ferry_md_load(agent, "xx", 2, NULL, 0), FERRY_ERR_INVALID_PARAM);
    FY_CHECK(has(ferry_last_error(), "no room for the agent's name"));
    ferry_clear_error();
    FY_CHECK_EQ(ferry_md_load(agent, NULL, 2, name, sizeof(name)), FERRY_ERR_INVALID_PARAM);
    FY_CHECK(has(ferry_last_error(), "no blob"));
    ferry_clear_error();
    FY_CHECK_EQ(ferry_notif_send(agent, "nobody", "x", 1, NULL), FERRY_ERR_NOT_FOUND);
    FY_CHECK(has(ferry_last_error(), "no metadata loaded for agent 'nobody'"));
    ferry_clear_error();
    FY_CHECK_EQ(ferry_md_invalidate(agent, "nobody"), FERRY_ERR_NOT_FOUND);
    FY_CHECK(has(ferry_last_error(), "invalidate: no metadata loaded for agent 'nobody'"));
    ferry_agent_destroy(agent);
}

/* Lines accumulate, oldest first; the newest stays when they overflow. */
static void test_accumulate(void)
{
    ferry_agent *agent;
    ferry_backend *be;
    char name[40];
    FY_REQUIRE(tu_agent("log-acc", &agent) == FERRY_OK);
    ferry_clear_error();
    FY_CHECK_EQ(ferry_backend_create(agent, "NOSUCH1", NULL, 0, &be), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(prep_unregistered(agent), FERRY_ERR_NOT_FOUND);
    const char *d = ferry_last_error();
    FY_CHECK(has(d, "NOSUCH1; prep: descriptor 0"));
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof(name), "NOSUCH_%d", i);
        FY_CHECK_EQ(ferry_backend_create(agent, name, NULL, 0, &be), FERRY_ERR_NOT_FOUND);
    }
    FY_CHECK(strlen(ferry_last_error()) < 512);
    FY_CHECK(has(ferry_last_error(), "no plugin named NOSUCH_39"));
    FY_CHECK(!has(ferry_last_error(), "NOSUCH1;"));
    ferry_agent_destroy(agent);
}

/* ---- threads ---- */

typedef struct thread_arg {
    ferry_agent *agent;
    char seen_before[512], seen_after[512];
    pthread_barrier_t *bar;
} thread_arg;

static void *other_thread(void *p)
{
    thread_arg *t = p;
    ferry_backend *be;
    pthread_barrier_wait(t->bar); /* main has failed a call */
    snprintf(t->seen_before, sizeof(t->seen_before), "%s", ferry_last_error());
    ferry_backend_create(t->agent, "OTHERTHREAD", NULL, 0, &be);
    snprintf(t->seen_after, sizeof(t->seen_after), "%s", ferry_last_error());
    pthread_barrier_wait(t->bar);
    return NULL;
}

static void test_per_thread(void)
{
    pthread_barrier_t bar;
    pthread_t th;
    thread_arg t = {.bar = &bar};
    FY_REQUIRE(tu_agent("log-threads", &t.agent) == FERRY_OK);
    pthread_barrier_init(&bar, NULL, 2);
    FY_REQUIRE(pthread_create(&th, NULL, other_thread, &t) == 0);
    ferry_clear_error();
    FY_CHECK_EQ(prep_unregistered(t.agent), FERRY_ERR_NOT_FOUND);
    pthread_barrier_wait(&bar);
    pthread_barrier_wait(&bar); /* the other thread has failed its own call */
    pthread_join(th, NULL);
    FY_CHECK_EQ(t.seen_before[0], '\0');
    FY_CHECK(has(t.seen_after, "OTHERTHREAD"));
    FY_CHECK(!has(t.seen_after, "registered region"));
    FY_CHECK(has(ferry_last_error(), "registered region"));
    FY_CHECK(!has(ferry_last_error(), "OTHERTHREAD"));
    pthread_barrier_destroy(&bar);
    ferry_agent_destroy(t.agent);
}

/* ---- the log handler and the level ---- */

typedef struct captured {
    pthread_mutex_t mu;
    int lines;
    ferry_log_level level;
    char who[64], line[512];
} captured;

static void capture(void *ctx, ferry_log_level level, const char *who, const char *line)
{
    captured *c = ctx;
    pthread_mutex_lock(&c->mu);
    c->lines++;
    c->level = level;
    snprintf(c->who, sizeof(c->who), "%s", who);
    snprintf(c->line, sizeof(c->line), "%s", line);
    pthread_mutex_unlock(&c->mu);
}

static void test_handler_core_line(void)
{
    captured c = {.mu = PTHREAD_MUTEX_INITIALIZER};
    ferry_agent *agent;
    FY_REQUIRE(tu_agent("log-handler", &agent) == FERRY_OK);
    ferry_set_log_handler(capture, &c);
    FY_CHECK_EQ(prep_unregistered(agent), FERRY_ERR_NOT_FOUND);
    ferry_set_log_handler(NULL, NULL);
    FY_CHECK_EQ(c.lines, 1);
    FY_CHECK_EQ(c.level, FERRY_LOG_ERROR);
    FY_CHECK(!strcmp(c.who, "core"));
    FY_CHECK(has(c.line, "is not inside a registered region"));
    FY_CHECK(c.line[strlen(c.line) - 1] != '\n');
    FY_CHECK_EQ(prep_unregistered(agent), FERRY_ERR_NOT_FOUND); /* to stderr again */
    FY_CHECK_EQ(c.lines, 1);
    ferry_agent_destroy(agent);
}

static void test_handler_plugin_line(void)
{
    static const ferry_param fail[] = {{"fail", "nomem"}};
    captured c = {.mu = PTHREAD_MUTEX_INITIALIZER};
    ferry_agent *agent;
    ferry_backend *be;
    FY_REQUIRE(tu_agent("log-handler-plugin", &agent) == FERRY_OK);
    ferry_set_log_handler(capture, &c);
    FY_CHECK_EQ(ferry_backend_create(agent, "INITFAIL", fail, 1, &be), FERRY_ERR_NO_MEMORY);
    ferry_set_log_handler(NULL, NULL);
    FY_CHECK_EQ(c.lines, 2); /* the plugin's line, then the core's */
    FY_CHECK(!strcmp(c.who, "core"));
    FY_CHECK(has(c.line, "backend INITFAIL: init failed"));
    ferry_agent_destroy(agent);
}

/* Who logged each line, in order. */
typedef struct whos {
    int n;
    char who[4][32];
} whos;

static void record_who(void *ctx, ferry_log_level level, const char *who, const char *line)
{
    whos *w = ctx;
    (void)level;
    (void)line;
    if (w->n < 4)
        snprintf(w->who[w->n++], sizeof(w->who[0]), "%s", who);
}

static void test_handler_plugin_name(void)
{
    static const ferry_param fail[] = {{"fail", "backend"}};
    whos w = {0};
    ferry_agent *agent;
    ferry_backend *be;
    FY_REQUIRE(tu_agent("log-who", &agent) == FERRY_OK);
    ferry_set_log_handler(record_who, &w);
    ferry_backend_create(agent, "INITFAIL", fail, 1, &be);
    ferry_set_log_handler(NULL, NULL);
    FY_CHECK_EQ(w.n, 2);
    FY_CHECK(!strcmp(w.who[0], "INITFAIL"));
    FY_CHECK(!strcmp(w.who[1], "core"));
    ferry_agent_destroy(agent);
}

/* Lines below the level reach no handler, but a failure's detail is kept. */
static void test_level(void)
{
    captured c = {.mu = PTHREAD_MUTEX_INITIALIZER};
    ferry_agent *agent;
    ferry_backend *be;
    ferry_log_level old = ferry_get_log_level();
    FY_REQUIRE(tu_agent("log-level", &agent) == FERRY_OK);
    ferry_set_log_level(FERRY_LOG_DEBUG);
    FY_CHECK_EQ(ferry_get_log_level(), FERRY_LOG_DEBUG);
    ferry_set_log_level((ferry_log_level)99);
    FY_CHECK_EQ(ferry_get_log_level(), FERRY_LOG_DEBUG);
    ferry_set_log_level((ferry_log_level)-1);
    FY_CHECK_EQ(ferry_get_log_level(), FERRY_LOG_DEBUG);
    ferry_set_log_handler(capture, &c);
    ferry_set_log_level(FERRY_LOG_ERROR);
    ferry_clear_error();
    FY_CHECK_EQ(ferry_backend_create(agent, "NOSUCH2", NULL, 0, &be), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(c.lines, 0); /* "no plugin named" is a WARN line */
    FY_CHECK(has(ferry_last_error(), "NOSUCH2"));
    ferry_set_log_level(FERRY_LOG_WARN);
    FY_CHECK_EQ(ferry_backend_create(agent, "NOSUCH3", NULL, 0, &be), FERRY_ERR_NOT_FOUND);
    FY_CHECK_EQ(c.lines, 1);
    FY_CHECK_EQ(c.level, FERRY_LOG_WARN);
    FY_CHECK(!strcmp(c.who, "loader") && has(c.line, "NOSUCH3"));
    ferry_set_log_handler(NULL, NULL);
    ferry_set_log_level(old);
    ferry_agent_destroy(agent);
}

/* Threads log while the handler changes under them (run under TSan). */
typedef struct storm {
    ferry_agent *agent;
    atomic_int stop;
} storm;

static void *storm_thread(void *p)
{
    storm *s = p;
    while (!atomic_load(&s->stop))
        prep_unregistered(s->agent);
    return NULL;
}

static int lines_of(captured *c)
{
    pthread_mutex_lock(&c->mu);
    int n = c->lines;
    pthread_mutex_unlock(&c->mu);
    return n;
}

static void test_handler_threads(void)
{
    captured a = {.mu = PTHREAD_MUTEX_INITIALIZER}, b = {.mu = PTHREAD_MUTEX_INITIALIZER};
    storm s = {0};
    pthread_t th[3];
    FY_REQUIRE(tu_agent("log-storm", &s.agent) == FERRY_OK);
    for (int i = 0; i < 3; i++)
        FY_REQUIRE(pthread_create(&th[i], NULL, storm_thread, &s) == 0);
    /* 20 switches: enough for the handler to change under running lines;
     * under valgrind (threads take turns) each one waits out the others. */
    for (int i = 0; i < 20; i++) {
        ferry_set_log_handler(capture, i % 2 ? &a : &b);
        tu_sleep_us(1000);
    }
    ferry_set_log_handler(NULL, NULL);
    int seen = lines_of(&a) + lines_of(&b); /* no handler runs once set returns */
    atomic_store(&s.stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    FY_CHECK(seen > 0);
    FY_CHECK_EQ(lines_of(&a) + lines_of(&b), seen);
    ferry_agent_destroy(s.agent);
}

/* ---- the environment, in a child process ---- */

static const char *self_path; /* argv[0]: /proc/self/exe would be valgrind's under it */

/* Runs this program as `--child what` with the variables given ("NAME=v"
 * sets, "NAME" unsets); its exit status. */
static int run_child(const char *what, const char *const *env)
{
    pid_t pid = fork();
    if (pid == 0) {
        for (; *env; env++) {
            const char *eq = strchr(*env, '=');
            char name[64];
            snprintf(name, sizeof(name), "%.*s", eq ? (int)(eq - *env) : 63, *env);
            if (eq)
                setenv(name, eq + 1, 1);
            else
                unsetenv(name);
        }
        execl(self_path, self_path, "--child", what, (char *)NULL);
        _exit(99);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_env_level(void)
{
    const char *none[] = {"FERRY_LOG_LEVEL", "NIXL_LOG_LEVEL", NULL};
    const char *nixl_debug[] = {"FERRY_LOG_LEVEL", "NIXL_LOG_LEVEL=DEBUG", NULL};
    const char *nixl_trace[] = {"FERRY_LOG_LEVEL=", "NIXL_LOG_LEVEL=trace", NULL};
    const char *nixl_fatal[] = {"FERRY_LOG_LEVEL", "NIXL_LOG_LEVEL=FATAL", NULL};
    const char *nixl_info[] = {"FERRY_LOG_LEVEL", "NIXL_LOG_LEVEL=Info", NULL};
    const char *both[] = {"FERRY_LOG_LEVEL=error", "NIXL_LOG_LEVEL=TRACE", NULL};
    const char *bad[] = {"FERRY_LOG_LEVEL=loud", "NIXL_LOG_LEVEL=WARN", NULL};
    FY_CHECK_EQ(run_child("level", none), FERRY_LOG_WARN);
    FY_CHECK_EQ(run_child("level", nixl_debug), FERRY_LOG_DEBUG);
    FY_CHECK_EQ(run_child("level", nixl_trace), FERRY_LOG_TRACE);
    FY_CHECK_EQ(run_child("level", nixl_fatal), FERRY_LOG_ERROR);
    FY_CHECK_EQ(run_child("level", nixl_info), FERRY_LOG_INFO);
    FY_CHECK_EQ(run_child("level", both), FERRY_LOG_ERROR);
    FY_CHECK_EQ(run_child("level", bad), FERRY_LOG_WARN);
}

/* "off" prints nothing, not even an error, but keeps the detail. */
static void test_env_off(void)
{
    const char *off[] = {"FERRY_LOG_LEVEL=off", "NIXL_LOG_LEVEL=debug", NULL};
    const char *nixl_off[] = {"FERRY_LOG_LEVEL", "NIXL_LOG_LEVEL=OFF", NULL};
    const char *error[] = {"FERRY_LOG_LEVEL=error", NULL};
    FY_CHECK_EQ(run_child("quiet", off), 0);
    FY_CHECK_EQ(run_child("quiet", nixl_off), 0);
    FY_CHECK_EQ(run_child("quiet", error), 1); /* the check itself sees lines */
}

/* The child's side of test_env_off: 0 when an error left a detail and no
 * byte on stderr. */
static int child_quiet(void)
{
    FILE *err = tmpfile();
    if (!err || dup2(fileno(err), 2) < 0)
        return 2;
    ferry_agent *agent;
    if (tu_agent("log-quiet", &agent) != FERRY_OK)
        return 2;
    int failed = prep_unregistered(agent) != FERRY_OK;
    ferry_agent_destroy(agent);
    fflush(stderr);
    return failed && ferry_last_error()[0] && lseek(2, 0, SEEK_END) == 0 ? 0 : 1;
}

/* TDRAM lives only in the test plugin dir (the last of FERRY_PLUGIN_DIR
 * here), never beside libferry. */
static void test_env_plugin_dir(void)
{
    const char *dirs = getenv("FERRY_PLUGIN_DIR");
    if (!dirs || !strstr(dirs, "tests/plugins"))
        FY_SKIP("FERRY_PLUGIN_DIR does not name the test plugins");
    char nixl[4200], first[4200];
    snprintf(nixl, sizeof(nixl), "NIXL_PLUGIN_DIR=%s", dirs);
    snprintf(first, sizeof(first), "FERRY_PLUGIN_DIR=%.*s", (int)strcspn(dirs, ":"), dirs);
    const char *neither[] = {"FERRY_PLUGIN_DIR", "NIXL_PLUGIN_DIR", NULL};
    const char *nixl_only[] = {"FERRY_PLUGIN_DIR", nixl, NULL};
    const char *ferry_first[] = {first, nixl, NULL};
    FY_CHECK_EQ(run_child("tdram", neither), 1);
    FY_CHECK_EQ(run_child("tdram", nixl_only), 0);
    FY_CHECK_EQ(run_child("tdram", ferry_first), 1);
}

/* The child's side: the level as exit status, or 0 when TDRAM is found. */
static int child_main(const char *what)
{
    if (!strcmp(what, "level"))
        return (int)ferry_get_log_level();
    if (!strcmp(what, "quiet"))
        return child_quiet();
    ferry_agent *agent;
    if (tu_agent("log-child", &agent) != FERRY_OK)
        return 2;
    const char *path;
    uint32_t abi;
    ferry_set_log_level(FERRY_LOG_ERROR); /* "no plugin named" is expected */
    int found = ferry_plugin_path(agent, "TDRAM", &path, &abi) == FERRY_OK;
    ferry_agent_destroy(agent);
    return found ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--child"))
        return child_main(argv[2]);
    self_path = argv[0];
    FY_RUN(test_prep_unregistered);
    FY_RUN(test_unknown_plugin);
    FY_RUN(test_refused_plugin);
    FY_RUN(test_plugin_line);
    FY_RUN(test_bad_metadata);
    FY_RUN(test_create_unknown_remote);
    FY_RUN(test_argument_details);
    FY_RUN(test_accumulate);
    FY_RUN(test_per_thread);
    FY_RUN(test_handler_core_line);
    FY_RUN(test_handler_plugin_line);
    FY_RUN(test_handler_plugin_name);
    FY_RUN(test_level);
    FY_RUN(test_handler_threads);
    FY_RUN(test_env_level);
    FY_RUN(test_env_off);
    FY_RUN(test_env_plugin_dir);
    return fy_test_done();
}
