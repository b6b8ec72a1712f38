/* SPDX-License-Identifier: Apache-2.0 */
/* etcd mode against a real etcd (Debian etcd-server) that the test starts
 * on free loopback ports with a temporary data dir and stops: publish,
 * fetch, watch until present, labels, invalidation, a killed agent's keys
 * expiring, etcd down and back, fail-over, authentication, the client's
 * create-once transaction. Skipped (77)
 * when no etcd binary is installed. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>

#include "harness.h"
#include "metadata/etcd.h"
#include "sc_util.h"

#define KEY     "0123456789abcdef-etcd-test-key"
#define TTL_S   2u
#define WAIT_MS 1500u

static pid_t etcd_pid;
static char self_exe[4096]; /* this program, for the publisher child */
static char etcd_url[64], etcd_dir[64];
static uint16_t etcd_port, etcd_peer_port;

static void etcd_exec(void)
{
    char client[64], peer[64], cluster[96];
    snprintf(client, sizeof(client), "http://127.0.0.1:%u", etcd_port);
    snprintf(peer, sizeof(peer), "http://127.0.0.1:%u", etcd_peer_port);
    snprintf(cluster, sizeof(cluster), "default=%s", peer);
    if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
        _exit(126);
    execlp("etcd", "etcd", "--data-dir", etcd_dir, "--listen-client-urls", client,
           "--advertise-client-urls", client, "--listen-peer-urls", peer,
           "--initial-advertise-peer-urls", peer, "--initial-cluster", cluster, (char *)NULL);
    _exit(127);
}

/* Up when a put answers, within 10 s. */
static bool etcd_start(void)
{
    fflush(stdout); /* the child's freopen would write it again */
    etcd_pid = fork();
    if (etcd_pid == 0)
        etcd_exec();
    fy_etcd *c;
    if (etcd_pid < 0 || fy_etcd_new(etcd_url, 500, &c) != FERRY_OK)
        return false;
    bool up = false;
    for (uint64_t end = sc_now_ms() + 10000; !up && sc_now_ms() < end; sc_sleep_ms(100))
        up = fy_etcd_put(c, "/probe", "x", 1, 0) == FERRY_OK;
    fy_etcd_free(c);
    return up;
}

static void etcd_stop(void)
{
    if (etcd_pid > 0) {
        kill(etcd_pid, SIGTERM);
        waitpid(etcd_pid, NULL, 0);
    }
    etcd_pid = 0;
}

/* libferry's ferry_md_error: the copy of the logger linked into this
 * program with the etcd client (for probes and tampering) has its own. */
static const char *lib_md_error(void)
{
    const char *(*fn)(void) = (const char *(*)(void))dlsym(RTLD_NEXT, "ferry_md_error");
    return fn ? fn() : "";
}

static ferry_status open_agent(sc_agent *a, const char *name, const char *endpoints,
                               const char *key)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = name;
    cfg.etcd_endpoints = endpoints;
    cfg.etcd_ttl_s = TTL_S;
    cfg.etcd_watch_timeout_ms = WAIT_MS;
    cfg.sc_timeout_ms = 1000;
    cfg.auth_key = key;
    return sc_open_cfg(a, &cfg);
}

/* The shared cases' agent: on the test's etcd. */
static ferry_status svc_open(sc_agent *a, const char *name, const char *key)
{
    return open_agent(a, name, etcd_url, key);
}

#include "mdsvc_cases.h"

/* The child (this program run again: a fresh process, not a fork of one
 * with threads) publishes agent "ka" and waits to be killed. */
static int publisher_main(const char *url)
{
    sc_agent a;
    if (open_agent(&a, "ka", url, NULL) != FERRY_OK ||
        ferry_md_send_local(a.agent, NULL, 0) != FERRY_OK)
        return 1;
    for (;;)
        pause();
}

static pid_t spawn_publisher(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl(self_exe, "test_etcd", "--publish", etcd_url, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* A slow child (under valgrind) may publish after one watch timeout. */
static ferry_status fetch_child(sc_agent *b)
{
    ferry_status rc = FERRY_ERR_NOT_FOUND;
    for (uint64_t end = sc_now_ms() + 20000; rc == FERRY_ERR_NOT_FOUND && sc_now_ms() < end;)
        rc = fetch(b, "ka", NULL);
    return rc;
}

static void test_kill_expire_restart(void)
{
    sc_agent b;
    FY_REQUIRE(open_agent(&b, "kb", etcd_url, NULL) == FERRY_OK);
    pid_t child = spawn_publisher();
    FY_CHECK_EQ(fetch_child(&b), FERRY_OK);
    uint64_t gen1 = 0, gen2 = 0;
    FY_CHECK_EQ(ferry_md_generation(b.agent, "ka", &gen1), FERRY_OK);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    FY_CHECK(check_within(&b, "ka", FERRY_ERR_NOT_FOUND, (TTL_S + 2) * 1000));
    FY_CHECK_EQ(fetch(&b, "ka", NULL), FERRY_ERR_NOT_FOUND);
    /* Under the same name again: fetched and usable (a new generation). */
    child = spawn_publisher();
    FY_CHECK_EQ(fetch_child(&b), FERRY_OK);
    FY_CHECK_EQ(ferry_md_generation(b.agent, "ka", &gen2), FERRY_OK);
    FY_CHECK(gen2 > gen1);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    sc_close(&b);
}

/* etcd down: calls fail with IO and say so; back up: they work. */
static void test_etcd_restart(void)
{
    sc_agent a, b;
    FY_REQUIRE(open_agent(&a, "ra", etcd_url, NULL) == FERRY_OK);
    FY_REQUIRE(open_agent(&b, "rb", etcd_url, NULL) == FERRY_OK);
    FY_CHECK_EQ(ferry_md_send_local(a.agent, NULL, 0), FERRY_OK);
    etcd_stop();
    FY_CHECK_EQ(ferry_md_send_local(a.agent, NULL, 0), FERRY_ERR_IO);
    const char *detail = lib_md_error();
    if (!strstr(detail, "etcd unreachable"))
        printf("# detail: %s\n", detail);
    FY_CHECK(strstr(detail, "etcd unreachable") != NULL);
    FY_CHECK_EQ(fetch(&b, "ra", NULL), FERRY_ERR_IO);
    FY_REQUIRE(etcd_start());
    FY_CHECK_EQ(ferry_md_send_local(a.agent, NULL, 0), FERRY_OK);
    FY_CHECK_EQ(fetch(&b, "ra", NULL), FERRY_OK);
    sc_close(&b);
    sc_close(&a);
}

/* The first endpoint refuses connections: the second serves. */
static void test_failover(void)
{
    char endpoints[160];
    snprintf(endpoints, sizeof(endpoints), "http://127.0.0.1:%u,%s", sc_free_port(), etcd_url);
    sc_agent a, b;
    FY_REQUIRE(open_agent(&a, "fa", endpoints, NULL) == FERRY_OK);
    FY_REQUIRE(open_agent(&b, "fb", endpoints, NULL) == FERRY_OK);
    FY_CHECK_EQ(ferry_md_send_local(a.agent, NULL, 0), FERRY_OK);
    FY_CHECK_EQ(fetch(&b, "fa", NULL), FERRY_OK);
    sc_close(&b);
    sc_close(&a);
}

/* Values carry the MAC: the right key loads, a wrong one or a tampered
 * value does not. */
static void test_auth(void)
{
    sc_agent a, b, w;
    FY_REQUIRE(open_agent(&a, "aa", etcd_url, KEY) == FERRY_OK);
    FY_REQUIRE(open_agent(&b, "ab", etcd_url, KEY) == FERRY_OK);
    FY_REQUIRE(open_agent(&w, "aw", etcd_url, "another-key-0123456789") == FERRY_OK);
    FY_CHECK_EQ(ferry_md_send_local(a.agent, NULL, 0), FERRY_OK);
    FY_CHECK_EQ(fetch(&b, "aa", NULL), FERRY_OK);
    FY_CHECK_EQ(fetch(&w, "aa", NULL), FERRY_ERR_AUTH);
    fy_etcd *c;
    fy_etcd_kv kv;
    FY_REQUIRE(fy_etcd_new(etcd_url, 1000, &c) == FERRY_OK);
    FY_CHECK_EQ(fy_etcd_get(c, "/ferry/agents/aa/metadata", &kv), FERRY_OK);
    if (kv.len > 40) {
        kv.val[kv.len / 2] ^= 1;
        FY_CHECK_EQ(fy_etcd_put(c, "/ferry/agents/tamper/metadata", kv.val, kv.len, 0), FERRY_OK);
        FY_CHECK(fetch(&b, "tamper", NULL) < 0);
        FY_CHECK_EQ(ferry_md_check(b.agent, "tamper", NULL), FERRY_ERR_NOT_FOUND);
        FY_CHECK_EQ(fy_etcd_put(c, "/ferry/agents/aa/metadata", kv.val, kv.len, 0), FERRY_OK);
        FY_CHECK(fetch(&b, "aa", NULL) != FERRY_OK);
    }
    free(kv.val);
    fy_etcd_free(c);
    sc_close(&w);
    sc_close(&b);
    sc_close(&a);
}

/* fy_etcd_create: one of two creations of a key wins; a lease's revoke
 * frees the key for the next. */
static void test_create_once(void)
{
    fy_etcd *c;
    fy_etcd_kv kv;
    bool first = false, second = true, again = false;
    int64_t lease = 0;
    FY_REQUIRE(fy_etcd_new(etcd_url, 1000, &c) == FERRY_OK);
    FY_REQUIRE(fy_etcd_lease_grant(c, 10, &lease) == FERRY_OK);
    FY_CHECK_EQ(fy_etcd_create(c, "/create/once", "a", 1, lease, &first), FERRY_OK);
    FY_CHECK_EQ(fy_etcd_create(c, "/create/once", "b", 1, 0, &second), FERRY_OK);
    FY_CHECK(first && !second);
    FY_CHECK_EQ(fy_etcd_get(c, "/create/once", &kv), FERRY_OK);
    FY_CHECK(kv.len == 1 && kv.val[0] == 'a');
    free(kv.val);
    FY_CHECK_EQ(fy_etcd_lease_revoke(c, lease), FERRY_OK);
    FY_CHECK_EQ(fy_etcd_create(c, "/create/once", "c", 1, 0, &again), FERRY_OK);
    FY_CHECK(again);
    FY_CHECK_EQ(fy_etcd_delete_prefix(c, "/create/"), FERRY_OK);
    fy_etcd_free(c);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--publish"))
        return publisher_main(argv[2]);
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
    if (n <= 0)
        fy_test_skip_all("cannot find this program's path");
    self_exe[n] = '\0';
    if (system("command -v etcd >/dev/null 2>&1") != 0)
        fy_test_skip_all("no etcd binary (Debian etcd-server)");
    snprintf(etcd_dir, sizeof(etcd_dir), "/tmp/ferry-etcd-XXXXXX");
    if (!mkdtemp(etcd_dir))
        fy_test_skip_all("no temporary directory");
    etcd_port = sc_free_port();
    etcd_peer_port = sc_free_port();
    snprintf(etcd_url, sizeof(etcd_url), "http://127.0.0.1:%u", etcd_port);
    if (!etcd_start()) {
        etcd_stop();
        printf("not ok 1 - etcd did not start\n1..1\n");
        return 1;
    }
    FY_RUN(test_publish_fetch);
    FY_RUN(test_watch_until_present);
    FY_RUN(test_partial_label);
    FY_RUN(test_invalidate);
    FY_RUN(test_kill_expire_restart);
    FY_RUN(test_etcd_restart);
    FY_RUN(test_failover);
    FY_RUN(test_auth);
    FY_RUN(test_create_once);
    etcd_stop();
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", etcd_dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", etcd_dir);
    return fy_test_done();
}
