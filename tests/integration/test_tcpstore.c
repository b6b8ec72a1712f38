/* SPDX-License-Identifier: Apache-2.0 */
/* TCPStore mode against a real PyTorch TCPStore server (Debian's
 * python3-torch, tcpstore_server.py) that the test starts on a free
 * loopback port and stops: the cases every service passes
 * (mdsvc_cases.h), PyTorch's own client reading what ferry wrote, a
 * killed peer invalidated by its stopped heartbeat and back under the same
 * name, a clean stop deleting its keys, the store down and back,
 * authentication, bad endpoints, a listener that is no TCPStore. Skipped (77) when
 * torch.distributed cannot be imported. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>

#include "harness.h"
#include "sc_util.h"

#define KEY     "0123456789abcdef-tcpstore-key"
#define WAIT_MS 1500u
#define TTL_S   2u

static const char *server_py; /* tcpstore_server.py */
static char self_exe[4096];   /* this program, for the publisher child */
static pid_t server_pid;
static int server_stdin = -1;
static uint16_t store_port;
static char endpoint[64];

/* Reads the server's "port N" line, up to 20 s. */
static bool server_read_port(int fd)
{
    char line[64];
    size_t n = 0;
    for (uint64_t end = sc_now_ms() + 20000; n < sizeof(line) - 1 && sc_now_ms() < end;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 200) <= 0)
            continue;
        if (read(fd, line + n, 1) != 1)
            return false;
        if (line[n++] == '\n')
            break;
    }
    line[n] = '\0';
    unsigned port = 0;
    if (sscanf(line, "port %u", &port) != 1 || !port || port > 65535)
        return false;
    store_port = (uint16_t)port;
    return true;
}

static void server_exec(int in_fd, int out_fd, uint16_t port)
{
    char port_s[8];
    snprintf(port_s, sizeof(port_s), "%u", port);
    dup2(in_fd, 0);
    dup2(out_fd, 1);
    execl(fy_test_python(), fy_test_python(), server_py, "serve", "127.0.0.1", port_s,
          (char *)NULL);
    _exit(127);
}

/* Starts the store on port (0: a free one). False when it did not start. */
static bool server_start(uint16_t port)
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
        return false;
    fflush(stdout);
    server_pid = fork();
    if (server_pid == 0)
        server_exec(in[0], out[1], port);
    close(in[0]);
    close(out[1]);
    server_stdin = in[1];
    bool up = server_pid > 0 && server_read_port(out[0]);
    close(out[0]);
    snprintf(endpoint, sizeof(endpoint), "127.0.0.1:%u", store_port);
    return up;
}

static void server_stop(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
    }
    if (server_stdin >= 0)
        close(server_stdin);
    server_pid = 0;
    server_stdin = -1;
}

static ferry_status open_agent(sc_agent *a, const char *name, const char *ep, const char *key)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = name;
    cfg.tcpstore_endpoint = ep;
    cfg.etcd_watch_timeout_ms = WAIT_MS;
    cfg.etcd_ttl_s = TTL_S; /* the heartbeat's */
    cfg.sc_timeout_ms = 1000;
    cfg.auth_key = key;
    return sc_open_cfg(a, &cfg);
}

/* The shared cases' agent: on the test's store. */
static ferry_status svc_open(sc_agent *a, const char *name, const char *key)
{
    return open_agent(a, name, endpoint, key);
}

#include "mdsvc_cases.h"

/* Runs tcpstore_server.py with a client command; its first output line as
 * a number, -1 when it failed. PyTorch's client puts "/" before every key:
 * ferry's "/ferry/agents/..." is its "ferry/agents/...". */
static long py_client(const char *cmd, const char *key, const char *newkey)
{
    char line[1024], port_s[8];
    snprintf(port_s, sizeof(port_s), "%u", store_port);
    snprintf(line, sizeof(line), "'%s' '%s' %s 127.0.0.1 %s '%s' '%s'", fy_test_python(), server_py,
             cmd, port_s, key, newkey ? newkey : "");
    if (!newkey)
        line[strlen(line) - 3] = '\0'; /* no empty last argument */
    FILE *f = popen(line, "r");
    long n = -1;
    if (f && fscanf(f, "%ld", &n) != 1)
        n = -1;
    if (f && pclose(f) != 0)
        n = -1;
    return n;
}

/* PyTorch's own client reads the blob ferry published, byte count intact. */
static void test_pytorch_reads(void)
{
    sc_agent a;
    FY_REQUIRE(svc_open(&a, "ya", NULL) == FERRY_OK);
    FY_CHECK_EQ(ferry_md_send_local(a.agent, NULL, 0), FERRY_OK);
    void *blob = NULL;
    size_t len = 0;
    FY_CHECK_EQ(ferry_md_get_local(a.agent, &blob, &len), FERRY_OK);
    FY_CHECK_EQ(py_client("get", "ferry/agents/ya/metadata", NULL), (long)len);
    free(blob);
    sc_close(&a);
}

/* The child (this program run again) publishes agent "ka", says "ready"
 * on stdout, then waits for SIGTERM (a clean stop) or SIGKILL. */
static volatile sig_atomic_t publisher_stop;

static void on_term(int sig)
{
    (void)sig;
    publisher_stop = 1;
}

static int publisher_main(const char *ep)
{
    signal(SIGTERM, on_term);
    sc_agent a;
    if (open_agent(&a, "ka", ep, NULL) != FERRY_OK ||
        ferry_md_send_local(a.agent, NULL, 0) != FERRY_OK)
        return 1;
    printf("ready\n");
    fflush(stdout);
    while (!publisher_stop)
        sc_sleep_ms(20);
    sc_close(&a);
    return 0;
}

/* Starts the publisher and waits (20 s at most) until it has published. */
static pid_t spawn_publisher(void)
{
    int out[2];
    if (pipe2(out, O_CLOEXEC) < 0)
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        execl(self_exe, "test_tcpstore", "--publish", endpoint, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    struct pollfd p = {out[0], POLLIN, 0};
    char c = 0;
    bool ready = pid > 0 && poll(&p, 1, 20000) == 1 && read(out[0], &c, 1) == 1 && c == 'r';
    close(out[0]);
    if (!ready)
        printf("# the publisher did not say ready\n");
    return pid;
}

/* TCPStore has no leases: a killed agent's keys stay, but its heartbeat
 * stops and its peers invalidate it within TTL + 2 s. Under the same name
 * again it is fetched and usable (a new generation); a clean stop deletes
 * its keys and the peer forgets it. */
static void test_kill_restart_stop(void)
{
    sc_agent b;
    FY_REQUIRE(svc_open(&b, "kb", NULL) == FERRY_OK);
    pid_t child = spawn_publisher();
    FY_CHECK_EQ(fetch(&b, "ka", NULL), FERRY_OK);
    uint64_t gen1 = 0, gen2 = 0;
    FY_CHECK_EQ(ferry_md_generation(b.agent, "ka", &gen1), FERRY_OK);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    FY_CHECK(check_within(&b, "ka", FERRY_ERR_NOT_FOUND, (TTL_S + 2) * 1000));
    child = spawn_publisher();
    FY_CHECK_EQ(fetch(&b, "ka", NULL), FERRY_OK);
    FY_CHECK_EQ(ferry_md_generation(b.agent, "ka", &gen2), FERRY_OK);
    FY_CHECK(gen2 > gen1);
    sc_sleep_ms((TTL_S + 1) * 1000); /* alive: its heartbeat keeps it */
    FY_CHECK_EQ(ferry_md_check(b.agent, "ka", NULL), FERRY_OK);
    kill(child, SIGTERM);
    int st = -1;
    waitpid(child, &st, 0);
    FY_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    FY_CHECK(check_within(&b, "ka", FERRY_ERR_NOT_FOUND, 2000));
    sc_close(&b);
}

/* The store down: calls fail with IO and say so; back on its port: they
 * work again, on new connections. */
static void test_store_restart(void)
{
    sc_agent a, b;
    FY_REQUIRE(svc_open(&a, "ra", NULL) == FERRY_OK);
    FY_REQUIRE(svc_open(&b, "rb", NULL) == FERRY_OK);
    FY_CHECK_EQ(ferry_md_send_local(a.agent, NULL, 0), FERRY_OK);
    uint16_t port = store_port;
    server_stop();
    FY_CHECK_EQ(ferry_md_send_local(a.agent, NULL, 0), FERRY_ERR_IO);
    const char *detail = ferry_md_error();
    if (!strstr(detail, "TCPStore unreachable"))
        printf("# detail: %s\n", detail);
    FY_CHECK(strstr(detail, "TCPStore unreachable") != NULL);
    FY_CHECK_EQ(fetch(&b, "ra", NULL), FERRY_ERR_IO);
    FY_REQUIRE(server_start(port));
    FY_CHECK_EQ(ferry_md_send_local(a.agent, NULL, 0), FERRY_OK);
    FY_CHECK_EQ(fetch(&b, "ra", NULL), FERRY_OK);
    sc_close(&b);
    sc_close(&a);
}

/* Values carry the MAC: the right key loads; a wrong one, or a value
 * altered by another client of the store, does not. */
static void test_auth(void)
{
    sc_agent a, b, w;
    FY_REQUIRE(svc_open(&a, "aa", KEY) == FERRY_OK);
    FY_REQUIRE(svc_open(&b, "ab", KEY) == FERRY_OK);
    FY_REQUIRE(svc_open(&w, "aw", "another-key-0123456789") == FERRY_OK);
    FY_CHECK_EQ(ferry_md_send_local(a.agent, NULL, 0), FERRY_OK);
    FY_CHECK_EQ(fetch(&b, "aa", NULL), FERRY_OK);
    FY_CHECK_EQ(fetch(&w, "aa", NULL), FERRY_ERR_AUTH);
    FY_CHECK(py_client("flip", "ferry/agents/aa/metadata", "ferry/agents/tamper/metadata") > 40);
    FY_CHECK(fetch(&b, "tamper", NULL) < 0);
    FY_CHECK_EQ(ferry_md_check(b.agent, "tamper", NULL), FERRY_ERR_NOT_FOUND);
    FY_CHECK(fetch(&b, "aa", NULL) != FERRY_OK);
    sc_close(&w);
    sc_close(&b);
    sc_close(&a);
}

/* An endpoint that does not parse is refused at creation; one where no
 * store listens fails calls with IO within the timeout. */
static void test_bad_endpoint(void)
{
    sc_agent a;
    const char *bad[] = {"nohost", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:70000", ":80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        FY_CHECK_EQ(open_agent(&a, "ea", bad[i], NULL), FERRY_ERR_INVALID_PARAM);
        sc_close(&a);
    }
    char none[64];
    snprintf(none, sizeof(none), "tcp://127.0.0.1:%u", sc_free_port());
    FY_REQUIRE(open_agent(&a, "ea", none, NULL) == FERRY_OK);
    uint64_t t0 = sc_now_ms();
    FY_CHECK_EQ(ferry_md_send_local(a.agent, NULL, 0), FERRY_ERR_IO);
    FY_CHECK(sc_now_ms() - t0 < 3000);
    sc_close(&a);
}

/* A listener that answers anything with 4 bytes that are no ping echo,
 * and otherwise stays silent: the client says it is not a TCPStore. */
static pid_t fake_store(uint16_t *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, len) < 0 || listen(fd, 4) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
        return -1;
    *port = ntohs(sa.sin_port);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        for (int c; (c = accept(fd, NULL, NULL)) >= 0;) {
            char buf[64];
            if (read(c, buf, sizeof(buf)) > 0 && write(c, "\xde\xad\xbe\xef", 4) != 4)
                _exit(1);
        }
        _exit(0);
    }
    close(fd);
    return pid;
}

static void test_not_a_store(void)
{
    uint16_t port = 0;
    pid_t pid = fake_store(&port);
    FY_REQUIRE(pid > 0);
    char ep[64];
    snprintf(ep, sizeof(ep), "127.0.0.1:%u", port);
    sc_agent a;
    FY_REQUIRE(open_agent(&a, "na", ep, NULL) == FERRY_OK);
    FY_CHECK_EQ(ferry_md_send_local(a.agent, NULL, 0), FERRY_ERR_IO);
    const char *detail = ferry_md_error();
    if (!strstr(detail, "not a TCPStore"))
        printf("# detail: %s\n", detail);
    FY_CHECK(strstr(detail, "not a TCPStore") != NULL);
    sc_close(&a);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--publish"))
        return publisher_main(argv[2]);
    if (argc != 2)
        fy_test_skip_all("usage: test_tcpstore tcpstore_server.py");
    server_py = argv[1];
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
    if (n <= 0)
        fy_test_skip_all("cannot find this program's path");
    self_exe[n] = '\0';
    fy_test_need_torch();
    if (!server_start(0)) {
        server_stop();
        printf("not ok 1 - the TCPStore server did not start\n1..1\n");
        return 1;
    }
    FY_RUN(test_publish_fetch);
    FY_RUN(test_watch_until_present);
    FY_RUN(test_partial_label);
    FY_RUN(test_invalidate);
    FY_RUN(test_pytorch_reads);
    FY_RUN(test_kill_restart_stop);
    FY_RUN(test_store_restart);
    FY_RUN(test_auth);
    FY_RUN(test_bad_endpoint);
    FY_RUN(test_not_a_store);
    server_stop();
    return fy_test_done();
}
