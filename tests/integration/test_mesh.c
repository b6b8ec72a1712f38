/* SPDX-License-Identifier: Apache-2.0 */
/* Full mesh through a metadata service: N agents in N processes find each
 * other by name and each reads from every other.
 *
 *   test_mesh etcd N                      a real etcd (Debian etcd-server)
 *   test_mesh tcpstore N tcpstore_server.py   a PyTorch TCPStore server
 *
 * The test starts the store on free loopback ports, then N copies of
 * itself ("--peer I N SERVICE ENDPOINT"). Peer I creates agent "mesh<I>"
 * with the SHM backend and a registered 4 KiB buffer filled with I,
 * publishes its metadata (no address: the service), and reports its
 * buffer's address; once the test has handed every peer the table of
 * addresses, it fetches every other agent by name (waiting for those not
 * published yet) and READs 64 bytes of its buffer, which must all be that
 * peer's index. It reports when it is done and stays up (serving reads)
 * until the test closes its stdin. Prints the time to full mesh: from the
 * first peer's start to the last peer done. Skipped (77) without the store
 * or without cross-memory attach between processes (SHM). Each peer does
 * little, so 32 of them fit in a few seconds on a small host. */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>

#include "harness.h"
#include "sc_util.h"

#define MAX_PEERS 64
#define BUF_LEN   4096u
#define READ_LEN  64u
#define DEADLINE  60000u /* ms, the whole mesh */

/* ---- a peer ---- */

typedef struct peer {
    int idx, n;
    ferry_agent *agent;
    uint8_t *buf, *got;
    uint64_t addr[MAX_PEERS];
} peer;

static ferry_status peer_open(peer *p, const char *service, const char *endpoint)
{
    char name[32];
    snprintf(name, sizeof(name), "mesh%d", p->idx);
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = name;
    if (!strcmp(service, "etcd"))
        cfg.etcd_endpoints = endpoint;
    else
        cfg.tcpstore_endpoint = endpoint;
    cfg.etcd_watch_timeout_ms = DEADLINE / 2;
    cfg.sc_timeout_ms = 10000;
    ferry_backend *be;
    ferry_status rc = ferry_agent_create(&cfg, &p->agent);
    if (rc == FERRY_OK)
        rc = ferry_backend_create(p->agent, "SHM", NULL, 0, &be);
    return rc;
}

static ferry_status peer_register(peer *p)
{
    p->buf = malloc(BUF_LEN);
    p->got = calloc(MAX_PEERS, READ_LEN);
    if (!p->buf || !p->got)
        return FERRY_ERR_NO_MEMORY;
    memset(p->buf, p->idx, BUF_LEN);
    ferry_dlist *l = NULL;
    ferry_status rc = ferry_dlist_create(FERRY_MEM_DRAM, 2, &l);
    if (rc == FERRY_OK)
        rc = ferry_dlist_add(l, (uintptr_t)p->buf, BUF_LEN, 0);
    if (rc == FERRY_OK)
        rc = ferry_dlist_add(l, (uintptr_t)p->got, MAX_PEERS * READ_LEN, 0);
    if (rc == FERRY_OK)
        rc = ferry_register(p->agent, l, NULL);
    ferry_dlist_destroy(l);
    return rc;
}

/* One dlist of one descriptor. */
static ferry_dlist *one_desc(uint64_t addr, uint64_t len)
{
    ferry_dlist *l = NULL;
    if (ferry_dlist_create(FERRY_MEM_DRAM, 1, &l) == FERRY_OK &&
        ferry_dlist_add(l, addr, len, 0) != FERRY_OK) {
        ferry_dlist_destroy(l);
        l = NULL;
    }
    return l;
}

static ferry_status peer_wait_xfer(ferry_xfer *x)
{
    ferry_status rc = ferry_xfer_post(x);
    for (uint64_t end = sc_now_ms() + 10000; rc == FERRY_IN_PROGRESS && sc_now_ms() < end;)
        rc = ferry_xfer_status(x);
    return rc;
}

/* Fetches peer j by name, reads READ_LEN bytes of its buffer, checks them. */
static ferry_status peer_read(peer *p, int j)
{
    char name[32];
    snprintf(name, sizeof(name), "mesh%d", j);
    ferry_status rc = ferry_md_fetch_wait(p->agent, name, NULL, 0, NULL, DEADLINE);
    uint8_t *dst = p->got + (size_t)j * READ_LEN;
    ferry_dlist *local = one_desc((uintptr_t)dst, READ_LEN);
    ferry_dlist *remote = one_desc(p->addr[j], READ_LEN);
    ferry_xfer *x = NULL;
    if (rc == FERRY_OK)
        rc = local && remote
                 ? ferry_xfer_create(p->agent, FERRY_OP_READ, local, remote, name, NULL, &x)
                 : FERRY_ERR_NO_MEMORY;
    if (rc == FERRY_OK)
        rc = peer_wait_xfer(x);
    for (unsigned k = 0; rc == FERRY_OK && k < READ_LEN; k++)
        if (dst[k] != (uint8_t)j)
            rc = FERRY_ERR_MISMATCH;
    ferry_xfer_release(x);
    ferry_dlist_destroy(local);
    ferry_dlist_destroy(remote);
    return rc;
}

/* The test's table: N lines "J ADDR". */
static bool peer_read_table(peer *p)
{
    for (int k = 0; k < p->n; k++) {
        int j;
        uint64_t addr;
        if (scanf("%d %" SCNx64, &j, &addr) != 2 || j < 0 || j >= p->n)
            return false;
        p->addr[j] = addr;
    }
    return true;
}

/* Peers in turn from the next one, so that not all start with peer 0. */
static ferry_status peer_mesh(peer *p, uint64_t t0, uint64_t *first_us)
{
    ferry_status rc = FERRY_OK;
    for (int k = 1; k < p->n && rc == FERRY_OK; k++) {
        rc = peer_read(p, (p->idx + k) % p->n);
        if (k == 1)
            *first_us = sc_now_ms() - t0;
    }
    return rc;
}

static int peer_main(int idx, int n, const char *service, const char *endpoint)
{
    peer p = {.idx = idx, .n = n};
    uint64_t t0 = sc_now_ms(), first = 0;
    ferry_status rc = peer_open(&p, service, endpoint);
    if (rc == FERRY_OK)
        rc = peer_register(&p);
    if (rc == FERRY_OK)
        rc = ferry_md_send_local(p.agent, NULL, 0);
    printf("addr %d %" PRIx64 "\n", idx, (uint64_t)(uintptr_t)p.buf);
    fflush(stdout);
    if (rc == FERRY_OK && !peer_read_table(&p))
        rc = FERRY_ERR_INVALID_PARAM;
    if (rc == FERRY_OK)
        rc = peer_mesh(&p, t0, &first);
    printf("done %d %d %" PRIu64 " %s\n", idx, (int)rc, first,
           rc == FERRY_OK ? "" : ferry_md_error());
    fflush(stdout);
    while (getchar() != EOF) /* serve the others' reads until told */
        ;
    ferry_agent_destroy(p.agent);
    free(p.buf);
    free(p.got);
    return rc == FERRY_OK ? 0 : 1;
}

/* ---- the store ---- */

static pid_t store_pid;
static int store_in = -1;
static char endpoint[96], store_dir[64];

static void etcd_exec(uint16_t port, uint16_t peer_port)
{
    char client[64], peer_url[64], cluster[96];
    snprintf(client, sizeof(client), "http://127.0.0.1:%u", port);
    snprintf(peer_url, sizeof(peer_url), "http://127.0.0.1:%u", peer_port);
    snprintf(cluster, sizeof(cluster), "default=%s", peer_url);
    if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
        _exit(126);
    execlp("etcd", "etcd", "--data-dir", store_dir, "--listen-client-urls", client,
           "--advertise-client-urls", client, "--listen-peer-urls", peer_url,
           "--initial-advertise-peer-urls", peer_url, "--initial-cluster", cluster, (char *)NULL);
    _exit(127);
}

/* Up when a throw-away agent can publish through it, within 20 s. */
static bool store_ready(const char *service)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = "mesh-probe";
    cfg.sc_timeout_ms = 500;
    if (!strcmp(service, "etcd"))
        cfg.etcd_endpoints = endpoint;
    else
        cfg.tcpstore_endpoint = endpoint;
    ferry_agent *a = NULL;
    bool up = false;
    if (ferry_agent_create(&cfg, &a) == FERRY_OK)
        for (uint64_t end = sc_now_ms() + 20000; !up && sc_now_ms() < end; sc_sleep_ms(100))
            up = ferry_md_send_local(a, NULL, 0) == FERRY_OK;
    ferry_agent_destroy(a); /* deletes its key */
    return up;
}

static bool etcd_start(void)
{
    snprintf(store_dir, sizeof(store_dir), "/tmp/ferry-mesh-XXXXXX");
    if (system("command -v etcd >/dev/null 2>&1") != 0 || !mkdtemp(store_dir))
        fy_test_skip_all("no etcd binary (Debian etcd-server)");
    uint16_t port = sc_free_port(), peer_port = sc_free_port();
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%u", port);
    fflush(stdout);
    store_pid = fork();
    if (store_pid == 0)
        etcd_exec(port, peer_port);
    return store_pid > 0 && store_ready("etcd");
}

/* tcpstore_server.py prints "port N" once it listens. */
static bool tcpstore_start(const char *server_py)
{
    fy_test_need_torch();
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
        return false;
    fflush(stdout);
    store_pid = fork();
    if (store_pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        execl(fy_test_python(), fy_test_python(), server_py, "serve", "127.0.0.1", "0",
              (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    store_in = in[1];
    FILE *f = fdopen(out[0], "r");
    unsigned port = 0;
    bool ok = f && fscanf(f, "port %u", &port) == 1 && port && port < 65536;
    if (f)
        fclose(f);
    snprintf(endpoint, sizeof(endpoint), "127.0.0.1:%u", port);
    return ok && store_ready("tcpstore");
}

static void store_stop(void)
{
    if (store_pid > 0) {
        kill(store_pid, SIGTERM);
        waitpid(store_pid, NULL, 0);
    }
    if (store_in >= 0)
        close(store_in);
    if (store_dir[0]) {
        char cmd[96];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", store_dir);
        if (system(cmd) != 0)
            printf("# could not remove %s\n", store_dir);
    }
}

/* ---- the mesh ---- */

typedef struct mesh {
    int n;
    const char *service;
    pid_t pid[MAX_PEERS];
    int in[MAX_PEERS]; /* each peer's stdin */
    FILE *out;         /* every peer's stdout */
    uint64_t addr[MAX_PEERS], first_ms[MAX_PEERS];
    int status[MAX_PEERS];
    bool done[MAX_PEERS];
} mesh;

static char self_exe[4096];

static bool mesh_spawn(mesh *m, int i, int out_wr)
{
    int in[2];
    if (pipe2(in, O_CLOEXEC) < 0)
        return false;
    char idx[16], n[16];
    snprintf(idx, sizeof(idx), "%d", i);
    snprintf(n, sizeof(n), "%d", m->n);
    m->pid[i] = fork();
    if (m->pid[i] == 0) {
        dup2(in[0], 0);
        dup2(out_wr, 1);
        execl(self_exe, "test_mesh", "--peer", idx, n, m->service, endpoint, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    m->in[i] = in[1];
    return m->pid[i] > 0;
}

/* Reads one line of a peer: "addr I HEX" or "done I STATUS FIRST_MS ...". */
static bool mesh_line(mesh *m, int *dones, int *addrs)
{
    char line[512], what[8];
    int i, st;
    uint64_t v;
    if (!fgets(line, sizeof(line), m->out))
        return false;
    if (sscanf(line, "%7s %d %" SCNx64, what, &i, &v) == 3 && !strcmp(what, "addr") && i >= 0 &&
        i < m->n) {
        m->addr[i] = v;
        (*addrs)++;
    } else if (sscanf(line, "%7s %d %d %" SCNu64, what, &i, &st, &v) == 4 &&
               !strcmp(what, "done") && i >= 0 && i < m->n && !m->done[i]) {
        m->done[i] = true;
        m->status[i] = st;
        m->first_ms[i] = v;
        (*dones)++;
        if (st != FERRY_OK)
            printf("# peer %d: %s", i, line);
    }
    return true;
}

static void mesh_send_table(mesh *m)
{
    for (int i = 0; i < m->n; i++) {
        FILE *f = fdopen(dup(m->in[i]), "w");
        for (int j = 0; f && j < m->n; j++)
            fprintf(f, "%d %" PRIx64 "\n", j, m->addr[j]);
        if (f)
            fclose(f);
    }
}

static void mesh_end(mesh *m)
{
    for (int i = 0; i < m->n; i++)
        if (m->in[i] >= 0)
            close(m->in[i]);
    for (int i = 0; i < m->n; i++) {
        int st = 0;
        if (m->pid[i] > 0 && waitpid(m->pid[i], &st, 0) == m->pid[i] && !m->done[i])
            m->status[i] = -1;
    }
    if (m->out)
        fclose(m->out);
}

static mesh the_mesh;

static void test_full_mesh(void)
{
    mesh *m = &the_mesh;
    int out[2];
    FY_REQUIRE(pipe2(out, O_CLOEXEC) == 0);
    uint64_t t0 = sc_now_ms();
    bool spawned = true;
    for (int i = 0; i < m->n; i++)
        spawned &= mesh_spawn(m, i, out[1]);
    close(out[1]);
    m->out = fdopen(out[0], "r");
    int dones = 0, addrs = 0;
    bool table = false;
    while (spawned && m->out && dones < m->n && mesh_line(m, &dones, &addrs))
        if (addrs == m->n && !table) {
            mesh_send_table(m);
            table = true;
        }
    uint64_t mesh_ms = sc_now_ms() - t0;
    mesh_end(m);
    int ok = 0;
    uint64_t first_max = 0;
    for (int i = 0; i < m->n; i++) {
        ok += m->done[i] && m->status[i] == FERRY_OK;
        first_max = m->first_ms[i] > first_max ? m->first_ms[i] : first_max;
    }
    printf("# %s: %d agents, %d in full mesh, time to full mesh %" PRIu64
           " ms (slowest start to first transfer %" PRIu64 " ms)\n",
           m->service, m->n, ok, mesh_ms, first_max);
    FY_CHECK_EQ(ok, m->n);
    FY_CHECK(mesh_ms < DEADLINE);
}

int main(int argc, char **argv)
{
    if (argc == 6 && !strcmp(argv[1], "--peer"))
        return peer_main(atoi(argv[2]), atoi(argv[3]), argv[4], argv[5]);
    mesh *m = &the_mesh;
    m->n = argc >= 3 ? atoi(argv[2]) : 0;
    m->service = argc >= 2 ? argv[1] : "";
    bool etcd = !strcmp(m->service, "etcd");
    if (m->n < 2 || m->n > MAX_PEERS || (!etcd && (strcmp(m->service, "tcpstore") || argc != 4)))
        fy_test_skip_all("usage: test_mesh etcd N | test_mesh tcpstore N tcpstore_server.py");
    ssize_t len = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
    if (len <= 0)
        fy_test_skip_all("cannot find this program's path");
    self_exe[len] = '\0';
    for (int i = 0; i < m->n; i++)
        m->in[i] = -1;
    if (!(etcd ? etcd_start() : tcpstore_start(argv[3]))) {
        store_stop();
        printf("not ok 1 - the store did not start\n1..1\n");
        return 1;
    }
    FY_RUN(test_full_mesh);
    store_stop();
    return fy_test_done();
}
