/* SPDX-License-Identifier: Apache-2.0 */
/* The far side of the two-process UCX tests: one agent in its own process,
 * steered by line commands on stdin, answering on stdout.
 *
 *   ucx_peer NAME SIZE REGIONS HOST [--alloc] [key=value ...]
 *
 * With --alloc the buffer comes from ferry_mem_alloc (memory UCX maps
 * itself, shared with peers on this host) instead of aligned_alloc.
 * Creates agent NAME with a UCX backend (or the one FY_RT_BACKEND names,
 * LIBFABRIC's tests run it so) with the key=value params, its
 * progress thread on (UCX emulates RMA on malloc'd memory with active
 * messages between processes of one host, so the target must progress by
 * itself) and a side-channel listener on HOST, port chosen by the system.
 * Registers SIZE bytes as REGIONS equal regions, filled with pattern(1),
 * and prints "READY <port> <pid>". Then, one reply line per command:
 *
 *   info                      INFO <base> <size> <regions>
 *   fill SEED                 OK (whole buffer := pattern(SEED))
 *   check SEED OFF LEN        OK | BAD <off>  (buffer[OFF, +LEN) == pattern)
 *   hash OFF LEN              HASH <hex>      (rt_hash of buffer[OFF, +LEN))
 *   cmp PATH                  OK | BAD <off>  (whole buffer == file PATH)
 *   notifs FROM               NOTIF <verdict> <msg> ... then END
 *   notify TO MSG             OK | ERR <status>  (ferry_notif_send)
 *   knows NAME                OK | ERR <status>  (ferry_md_check)
 *   partial IP PORT CONN R..  OK | ERR <status>  (ferry_md_send_partial of
 *                             regions R.., with connection info if CONN 1)
 *   forget IP PORT            OK | ERR <status>  (ferry_md_invalidate_local)
 *   alloc SIZE                OK <ms> | ERR <status> <ms>  (ferry_mem_alloc of
 *                             SIZE bytes of DRAM, freed at once; ms: its time)
 *   quit                      exits 0 (so does end of input)
 *
 * Notifications are taken from the agent between commands, every
 * millisecond. One that reads "T <tag> <off> <len> <hash>" is checked at
 * once against the buffer: "ok" when rt_hash(buffer[off, +len)) == hash,
 * "bad" otherwise; since the sender computes the hash of the data its
 * transfer wrote, "ok" shows the data was in place when the notification
 * arrived. Other messages get the verdict "-". Exit codes: 0 after quit,
 * 2 on setup errors. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <ferry/ferry.h>

#include "rt_util.h"

#define PEER_MAX_REGIONS 16
#define PEER_MAX_PARAMS  16
#define PEER_MSG_MAX     200
#define PEER_LIFETIME_S  600 /* backstop: a stuck driver cannot leave us behind */

typedef struct peer_notif {
    char from[64];
    char msg[PEER_MSG_MAX + 1];
    const char *verdict;
} peer_notif;

typedef struct peer {
    ferry_agent *agent;
    ferry_backend *be;
    uint8_t *mem;
    bool alloc; /* mem is from ferry_mem_alloc */
    size_t size, region_size;
    unsigned regions;
    ferry_dlist *region[PEER_MAX_REGIONS];
    ferry_dlist *all;
    peer_notif *notifs; /* seen, not yet reported */
    size_t num_notifs, cap_notifs;
} peer;

static void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void reply_status(ferry_status rc)
{
    if (rc == FERRY_OK)
        reply("OK");
    else
        reply("ERR %s", ferry_status_name(rc));
}

/* ---- setup ---- */

static ferry_status peer_register(peer *p)
{
    ferry_status rc = ferry_dlist_create(FERRY_MEM_DRAM, p->regions, &p->all);
    for (unsigned i = 0; i < p->regions && rc == FERRY_OK; i++) {
        uint64_t addr = (uintptr_t)p->mem + i * p->region_size;
        rc = ferry_dlist_create(FERRY_MEM_DRAM, 1, &p->region[i]);
        if (rc == FERRY_OK)
            rc = ferry_dlist_add(p->region[i], addr, p->region_size, 0);
        if (rc == FERRY_OK)
            rc = ferry_dlist_add(p->all, addr, p->region_size, 0);
    }
    return rc == FERRY_OK ? ferry_register(p->agent, p->all, NULL) : rc;
}

/* The buffer, filled with pattern(1). */
static ferry_status peer_buffer(peer *p, ferry_backend *be)
{
    size_t rounded = (p->size + 4095) & ~(size_t)4095;
    void *mem = NULL;
    ferry_status rc = FERRY_OK;
    if (p->alloc)
        rc = ferry_mem_alloc(p->agent, be, FERRY_MEM_DRAM, rounded, 0, &mem);
    else if (!(mem = aligned_alloc(4096, rounded)))
        rc = FERRY_ERR_NO_MEMORY;
    if (rc == FERRY_OK) {
        p->mem = mem;
        rt_pattern(p->mem, 1, 0, p->size);
    }
    return rc;
}

static ferry_status peer_open(peer *p, const char *name, const char *host,
                              const ferry_param *params, size_t num_params)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = name;
    cfg.progress_thread = true;
    cfg.listen = true;
    cfg.listen_host = host;
    cfg.listen_port = 0;
    ferry_status rc = ferry_agent_create(&cfg, &p->agent);
    if (rc == FERRY_OK)
        rc = ferry_backend_create(p->agent, rt_backend(), params, num_params, &p->be);
    if (rc == FERRY_OK)
        rc = peer_buffer(p, p->be);
    if (rc == FERRY_OK)
        rc = peer_register(p);
    return rc;
}

static void peer_close(peer *p)
{
    ferry_agent_destroy(p->agent);
    for (unsigned i = 0; i < p->regions; i++)
        ferry_dlist_destroy(p->region[i]);
    ferry_dlist_destroy(p->all);
    if (!p->alloc)
        free(p->mem); /* ferry_mem_alloc'd memory went with the agent */
    free(p->notifs);
}

/* ---- notifications ---- */

/* The verdict of a "T <tag> <off> <len> <hash>" message, checked now. */
static const char *peer_verdict(const peer *p, const char *msg)
{
    char tag[64];
    unsigned long long off, len, hash;
    if (sscanf(msg, "T %63s %llu %llu %llx", tag, &off, &len, &hash) != 4)
        return "-";
    if (off > p->size || len > p->size - off)
        return "bad";
    return rt_hash(p->mem + off, len) == hash ? "ok" : "bad";
}

static void peer_record(peer *p, const char *from, const void *msg, size_t len)
{
    if (p->num_notifs == p->cap_notifs) {
        size_t cap = p->cap_notifs ? 2 * p->cap_notifs : 64;
        peer_notif *n = realloc(p->notifs, cap * sizeof(*n));
        if (!n)
            return; /* the driver will see it missing */
        p->notifs = n;
        p->cap_notifs = cap;
    }
    peer_notif *n = &p->notifs[p->num_notifs++];
    snprintf(n->from, sizeof(n->from), "%s", from);
    size_t k = len < PEER_MSG_MAX ? len : PEER_MSG_MAX;
    for (size_t i = 0; i < k; i++) { /* one line per notification, whatever its bytes */
        char c = ((const char *)msg)[i];
        n->msg[i] = c >= 0x20 && c < 0x7f ? c : '?';
    }
    n->msg[k] = '\0';
    n->verdict = peer_verdict(p, n->msg);
}

static void peer_take_notifs(peer *p)
{
    ferry_notif_batch *b = NULL;
    if (ferry_notif_take(p->agent, NULL, &b) != FERRY_OK)
        return;
    for (size_t i = 0; i < ferry_notif_batch_count(b); i++) {
        const char *from;
        const void *msg;
        size_t len;
        if (ferry_notif_batch_get(b, i, &from, &msg, &len) == FERRY_OK)
            peer_record(p, from, msg, len);
    }
    ferry_notif_batch_free(b);
}

/* Reports (and forgets) the notifications seen from `from`. */
static void peer_report(peer *p, const char *from)
{
    size_t keep = 0;
    for (size_t i = 0; i < p->num_notifs; i++) {
        peer_notif *n = &p->notifs[i];
        if (!strcmp(n->from, from))
            printf("NOTIF %s %s\n", n->verdict, n->msg);
        else
            p->notifs[keep++] = *n;
    }
    p->num_notifs = keep;
    reply("END");
}

/* ---- data commands ---- */

static bool peer_range(const peer *p, unsigned long long off, unsigned long long len)
{
    return off <= p->size && len <= p->size - off;
}

static void cmd_check(peer *p, const char *args)
{
    unsigned long long seed, off, len;
    if (sscanf(args, "%llu %llu %llu", &seed, &off, &len) != 3 || !peer_range(p, off, len)) {
        reply("ERR usage");
        return;
    }
    long long bad = rt_pattern_diff(p->mem + off, seed, off, len);
    if (bad < 0)
        reply("OK");
    else
        reply("BAD %llu", off + (unsigned long long)bad);
}

static void cmd_hash(peer *p, const char *args)
{
    unsigned long long off, len;
    if (sscanf(args, "%llu %llu", &off, &len) != 2 || !peer_range(p, off, len))
        reply("ERR usage");
    else
        reply("HASH %016" PRIx64, rt_hash(p->mem + off, len));
}

/* Byte-for-byte comparison with an expected image the driver wrote. */
static void cmd_cmp(peer *p, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        reply("ERR open");
        return;
    }
    static uint8_t chunk[1 << 16];
    size_t off = 0;
    ssize_t n;
    while (off < p->size && (n = read(fd, chunk, sizeof(chunk))) > 0) {
        size_t k = (size_t)n < p->size - off ? (size_t)n : p->size - off;
        for (size_t i = 0; memcmp(chunk, p->mem + off, k) && i < k; i++)
            if (chunk[i] != p->mem[off + i]) {
                close(fd);
                reply("BAD %zu", off + i);
                return;
            }
        off += k;
    }
    close(fd);
    if (off < p->size)
        reply("BAD %zu (short file)", off);
    else
        reply("OK");
}

/* ---- side-channel commands ---- */

static void cmd_partial(peer *p, char *args)
{
    char ip[64];
    unsigned port, conn;
    int used = 0;
    if (sscanf(args, "%63s %u %u%n", ip, &port, &conn, &used) != 3) {
        reply("ERR usage");
        return;
    }
    const ferry_dlist *lists[PEER_MAX_REGIONS];
    size_t n = 0;
    unsigned r;
    int more;
    for (char *s = args + used; n < PEER_MAX_REGIONS && sscanf(s, "%u%n", &r, &more) == 1;
         s += more) {
        if (r >= p->regions) {
            reply("ERR region");
            return;
        }
        lists[n++] = p->region[r];
    }
    reply_status(
        ferry_md_send_partial(p->agent, lists, n, conn != 0, NULL, NULL, ip, (uint16_t)port));
}

static void cmd_forget(peer *p, const char *args)
{
    char ip[64];
    unsigned port;
    if (sscanf(args, "%63s %u", ip, &port) != 2)
        reply("ERR usage");
    else
        reply_status(ferry_md_invalidate_local(p->agent, ip, (uint16_t)port));
}

static void cmd_alloc(peer *p, const char *args)
{
    void *mem = NULL;
    uint64_t t0 = rt_now_ms();
    ferry_status rc =
        ferry_mem_alloc(p->agent, p->be, FERRY_MEM_DRAM, strtoull(args, NULL, 0), 0, &mem);
    unsigned long long ms = rt_now_ms() - t0;
    if (rc == FERRY_OK) {
        ferry_mem_free(p->agent, mem);
        reply("OK %llu", ms);
    } else {
        reply("ERR %s %llu", ferry_status_name(rc), ms);
    }
}

static void cmd_notify(peer *p, const char *args)
{
    char to[64];
    int used = 0;
    if (sscanf(args, "%63s %n", to, &used) != 1 || !args[used])
        reply("ERR usage");
    else
        reply_status(ferry_notif_send(p->agent, to, args + used, strlen(args + used), NULL));
}

/* Runs one command; false for quit. */
static bool peer_command(peer *p, char *line)
{
    char *args = strchr(line, ' ');
    args = args ? args + 1 : line + strlen(line);
    if (!strcmp(line, "quit"))
        return false;
    if (!strcmp(line, "info"))
        reply("INFO %#" PRIxPTR " %zu %u", (uintptr_t)p->mem, p->size, p->regions);
    else if (!strncmp(line, "fill ", 5)) {
        rt_pattern(p->mem, strtoull(args, NULL, 10), 0, p->size);
        reply("OK");
    } else if (!strncmp(line, "check ", 6))
        cmd_check(p, args);
    else if (!strncmp(line, "hash ", 5))
        cmd_hash(p, args);
    else if (!strncmp(line, "cmp ", 4))
        cmd_cmp(p, args);
    else if (!strncmp(line, "notifs ", 7)) {
        peer_take_notifs(p);
        peer_report(p, args);
    } else if (!strncmp(line, "notify ", 7))
        cmd_notify(p, args);
    else if (!strncmp(line, "knows ", 6))
        reply_status(ferry_md_check(p->agent, args, NULL));
    else if (!strncmp(line, "partial ", 8))
        cmd_partial(p, args);
    else if (!strncmp(line, "forget ", 7))
        cmd_forget(p, args);
    else if (!strncmp(line, "alloc ", 6))
        cmd_alloc(p, args);
    else
        reply("ERR unknown command");
    return true;
}

/* Commands until quit or end of input; notifications are taken (and
 * checked) every millisecond in between. */
static void peer_loop(peer *p)
{
    rt_lines in = {.fd = STDIN_FILENO};
    char line[1024];
    for (;;) {
        peer_take_notifs(p);
        int got = rt_read_line(&in, line, sizeof(line), rt_now_ms() + 1);
        if (got < 0 || (got > 0 && !peer_command(p, line)))
            return;
    }
}

static bool parse_args(int argc, char **argv, peer *p, ferry_param *params, size_t *num_params)
{
    if (argc < 5)
        return false;
    char *end;
    p->size = strtoull(argv[2], &end, 0);
    p->regions = (unsigned)strtoul(argv[3], NULL, 0);
    if (!p->size || *end || !p->regions || p->regions > PEER_MAX_REGIONS || p->size % p->regions)
        return false;
    p->region_size = p->size / p->regions;
    for (int i = 5; i < argc; i++) {
        if (!strcmp(argv[i], "--alloc")) {
            p->alloc = true;
            continue;
        }
        char *eq = strchr(argv[i], '=');
        if (!eq || *num_params == PEER_MAX_PARAMS)
            return false;
        *eq = '\0';
        params[(*num_params)++] = (ferry_param){argv[i], eq + 1};
    }
    return true;
}

int main(int argc, char **argv)
{
    peer p = {0};
    ferry_param params[PEER_MAX_PARAMS];
    size_t num_params = 0;
    if (!parse_args(argc, argv, &p, params, &num_params)) {
        fprintf(stderr, "usage: ucx_peer NAME SIZE REGIONS HOST [--alloc] [key=value ...]\n");
        return 2;
    }
    alarm(PEER_LIFETIME_S);
    ferry_status rc = peer_open(&p, argv[1], argv[4], params, num_params);
    uint16_t port = 0;
    if (rc == FERRY_OK)
        rc = ferry_md_listen_port(p.agent, &port);
    if (rc != FERRY_OK) {
        fprintf(stderr, "ucx_peer %s: setup failed: %s\n", argv[1], ferry_status_name(rc));
        peer_close(&p);
        return 2;
    }
    reply("READY %u %ld", (unsigned)port, (long)getpid());
    peer_loop(&p);
    peer_close(&p);
    return 0;
}
