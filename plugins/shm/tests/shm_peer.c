/* SPDX-License-Identifier: Apache-2.0 */
/* The far side of the SHM two-process tests: one agent in its own process,
 * steered by line commands on stdin, answering one line each on stdout.
 *
 *   shm_peer NAME memfd|malloc [cma-denied] [ucx|ucx-first] [buf=BYTES]
 *
 * Creates agent NAME (progress thread on) with an SHM backend, then a UCX
 * one if "ucx" is given ("ucx-first": UCX before SHM; SHM is still chosen
 * first wherever it can carry a request). Its buffer of ST_BUF bytes comes from
 * ferry_mem_alloc on SHM (memfd) or aligned_alloc (malloc) (buf=: another
 * size, a multiple of 4096), filled with
 * pattern 1 and registered. "cma-denied" first installs a seccomp filter
 * that fails process_vm_readv/writev with EPERM, as a hardened container
 * would. Prints "MD <hex of its metadata>", then:
 *
 *   fill SEED                    OK (buffer := pattern SEED)
 *   hash                         HASH <hex> (of the whole buffer)
 *   load <hex>                   OK | ERR <status> (loads a peer's metadata)
 *   write NAME BASE SEED         OK <backend> | ERR <status> <detail>: buffer
 *                                := pattern SEED, then one WRITE of it to NAME's
 *                                buffer at BASE, with notification "w<SEED>"
 *   spin NAME BASE               writes the buffer to NAME in a loop, forever
 *   notifs N TIMEOUT_MS          NOTIFS <unique> <dups> <bad>: takes notifications
 *                                "n<i>" (i < N) until N were seen (then 200 ms
 *                                more, for duplicates) or the timeout; "bad"
 *                                counts those whose block i (ST_BLOCK bytes at
 *                                i * ST_BLOCK) did not hold st_block_byte(i)
 *                                when it arrived
 *   declined                     DECLINED <the log line of SHM declining a peer> | NONE
 *   quit                         exits 0 (so does end of input)
 *
 * Exit 2 on setup errors; an alarm ends it after 10 minutes in any case. */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <ferry/ferry.h>

#include "no_cma.h"
#include "shm_test.h"

static size_t buf_len = ST_BUF;

typedef struct peer {
    ferry_agent *agent;
    ferry_backend *shm, *ucx;
    uint8_t *buf;
    char name[64];
} peer;

/* The last line in which SHM declined a peer (INFO level). */
static char declined[512];

static void on_log(void *ctx, ferry_log_level level, const char *who, const char *line)
{
    (void)ctx;
    if (!strcmp(who, "SHM") && strstr(line, "not served by SHM"))
        snprintf(declined, sizeof(declined), "%s", line);
    else if (level <= FERRY_LOG_ERROR)
        fprintf(stderr, "shm_peer: %s: %s\n", who, line);
}

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

static ferry_status peer_buffer(peer *p, bool memfd)
{
    void *b = NULL;
    ferry_status rc = memfd ? ferry_mem_alloc(p->agent, p->shm, FERRY_MEM_DRAM, buf_len, 0, &b)
                      : (b = aligned_alloc(4096, buf_len)) ? FERRY_OK
                                                           : FERRY_ERR_NO_MEMORY;
    if (rc != FERRY_OK)
        return rc;
    p->buf = b;
    st_fill(p->buf, buf_len, 1);
    ferry_dlist *l = NULL;
    rc = ferry_dlist_create(FERRY_MEM_DRAM, 1, &l);
    if (rc == FERRY_OK && (rc = ferry_dlist_add(l, (uintptr_t)b, buf_len, 0)) == FERRY_OK)
        rc = ferry_register(p->agent, l, NULL);
    ferry_dlist_destroy(l);
    return rc;
}

static ferry_status peer_ucx(peer *p, bool want)
{
    return want ? ferry_backend_create(p->agent, "UCX", NULL, 0, &p->ucx) : FERRY_OK;
}

/* ucx: 0 none, 1 after SHM, 2 before it. */
static ferry_status peer_open(peer *p, const char *name, bool memfd, int ucx)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = name;
    cfg.progress_thread = true;
    snprintf(p->name, sizeof(p->name), "%s", name);
    ferry_status rc = ferry_agent_create(&cfg, &p->agent);
    if (rc == FERRY_OK)
        rc = peer_ucx(p, ucx == 2);
    if (rc == FERRY_OK)
        rc = ferry_backend_create(p->agent, "SHM", NULL, 0, &p->shm);
    if (rc == FERRY_OK)
        rc = peer_ucx(p, ucx == 1);
    return rc == FERRY_OK ? peer_buffer(p, memfd) : rc;
}

static void peer_md(peer *p)
{
    char *hex = st_md_hex(p->agent);
    if (!hex)
        exit(2);
    reply("MD %s", hex);
    free(hex);
}

static void cmd_load(peer *p, const char *hex)
{
    ferry_status rc = st_md_load(p->agent, hex);
    if (rc == FERRY_OK)
        reply("OK");
    else
        reply("ERR %d %s", rc, ferry_md_error());
}

/* One WRITE of the whole buffer to the peer's buffer at base. */
static ferry_status peer_write(peer *p, const char *to, uint64_t base, const char *notif,
                               ferry_xfer **out)
{
    ferry_dlist *l = NULL, *r = NULL;
    ferry_xfer_opts o;
    ferry_xfer_opts_init(&o);
    o.notif = notif;
    o.notif_len = notif ? strlen(notif) : 0;
    ferry_status rc = ferry_dlist_create(FERRY_MEM_DRAM, 1, &l);
    if (rc == FERRY_OK)
        rc = ferry_dlist_create(FERRY_MEM_DRAM, 1, &r);
    if (rc == FERRY_OK && (rc = ferry_dlist_add(l, (uintptr_t)p->buf, buf_len, 0)) == FERRY_OK &&
        (rc = ferry_dlist_add(r, base, buf_len, 0)) == FERRY_OK)
        rc = ferry_xfer_create(p->agent, FERRY_OP_WRITE, l, r, to, &o, out);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    return rc;
}

static void cmd_write(peer *p, const char *to, uint64_t base, uint64_t seed)
{
    char notif[32];
    ferry_xfer *x = NULL;
    st_fill(p->buf, buf_len, seed);
    snprintf(notif, sizeof(notif), "w%" PRIu64, seed);
    ferry_status rc = peer_write(p, to, base, notif, &x);
    if (rc == FERRY_OK)
        rc = st_wait(x, ferry_xfer_post(x));
    if (rc == FERRY_OK)
        reply("OK %s", ferry_backend_name(ferry_xfer_backend(x)));
    else
        reply("ERR %d %s", rc, x ? ferry_xfer_error(x) : ferry_last_error());
    ferry_xfer_release(x);
}

static void cmd_spin(peer *p, const char *to, uint64_t base)
{
    ferry_xfer *x = NULL;
    if (peer_write(p, to, base, NULL, &x) != FERRY_OK) {
        reply("ERR");
        return;
    }
    reply("SPINNING");
    for (;;)
        st_wait(x, ferry_xfer_post(x));
}

static bool block_ok(const peer *p, unsigned i)
{
    const uint8_t *b = p->buf + (size_t)i * ST_BLOCK;
    for (unsigned k = 0; k < ST_BLOCK; k++)
        if (b[k] != st_block_byte(i))
            return false;
    return true;
}

typedef struct tally {
    unsigned want, unique, dups, bad;
    uint8_t *seen;
} tally;

static void tally_one(peer *p, tally *t, const void *msg, size_t len)
{
    char s[32];
    unsigned i;
    snprintf(s, sizeof(s), "%.*s", (int)(len < 31 ? len : 31), (const char *)msg);
    if (sscanf(s, "n%u", &i) != 1 || i >= t->want)
        return;
    if (t->seen[i]++) {
        t->dups++;
        return;
    }
    t->unique++;
    t->bad += !block_ok(p, i);
}

static void take_notifs(peer *p, tally *t)
{
    ferry_notif_batch *b = NULL;
    if (ferry_notif_take(p->agent, NULL, &b) != FERRY_OK)
        return;
    for (size_t i = 0; i < ferry_notif_batch_count(b); i++) {
        const char *from;
        const void *msg;
        size_t len;
        if (ferry_notif_batch_get(b, i, &from, &msg, &len) == FERRY_OK)
            tally_one(p, t, msg, len);
    }
    ferry_notif_batch_free(b);
}

static void cmd_notifs(peer *p, unsigned want, uint64_t timeout_ms)
{
    tally t = {.want = want, .seen = calloc(want ? want : 1, 1)};
    uint64_t end = st_now_ms() + timeout_ms, quiet_end = 0;
    reply("LISTENING");
    while (st_now_ms() < end && (!quiet_end || st_now_ms() < quiet_end)) {
        take_notifs(p, &t);
        if (t.unique == want && !quiet_end)
            quiet_end = st_now_ms() + 200;
        usleep(200);
    }
    free(t.seen);
    reply("NOTIFS %u %u %u", t.unique, t.dups, t.bad);
}

static bool dispatch(peer *p, char *line)
{
    char name[128], hex[ST_LINE_MAX];
    uint64_t a, b;
    unsigned n;
    if (!strncmp(line, "quit", 4))
        return false;
    if (sscanf(line, "fill %" SCNu64, &a) == 1) {
        st_fill(p->buf, buf_len, a);
        reply("OK");
    } else if (!strncmp(line, "declined", 8)) {
        reply(declined[0] ? "DECLINED %s" : "NONE", declined);
    } else if (!strncmp(line, "hash", 4)) {
        reply("HASH %016" PRIx64, st_hash(p->buf, buf_len));
    } else if (sscanf(line, "load %65535s", hex) == 1) {
        cmd_load(p, hex);
    } else if (sscanf(line, "write %127s %" SCNx64 " %" SCNu64, name, &a, &b) == 3) {
        cmd_write(p, name, a, b);
    } else if (sscanf(line, "spin %127s %" SCNx64, name, &a) == 2) {
        cmd_spin(p, name, a);
    } else if (sscanf(line, "notifs %u %" SCNu64, &n, &a) == 2) {
        cmd_notifs(p, n, a);
    } else {
        reply("ERR unknown command");
    }
    return true;
}

int main(int argc, char **argv)
{
    static char line[ST_LINE_MAX + 64];
    peer p = {0};
    bool denied = false;
    int ucx = 0;
    if (argc < 3)
        return 2;
    for (int i = 3; i < argc; i++) {
        denied |= !strcmp(argv[i], "cma-denied");
        if (!strcmp(argv[i], "ucx") || !strcmp(argv[i], "ucx-first"))
            ucx = argv[i][3] ? 2 : 1;
        if (!strncmp(argv[i], "buf=", 4))
            buf_len = (size_t)strtoull(argv[i] + 4, NULL, 0);
    }
    alarm(600);
    ferry_set_log_handler(on_log, NULL);
    ferry_set_log_level(FERRY_LOG_INFO);
    if (denied && deny_cma() != 0)
        return 2;
    if (peer_open(&p, argv[1], !strcmp(argv[2], "memfd"), ucx) != FERRY_OK) {
        fprintf(stderr, "shm_peer: setup: %s\n", ferry_last_error());
        return 2;
    }
    peer_md(&p);
    reply("BASE %" PRIx64, (uint64_t)(uintptr_t)p.buf);
    while (fgets(line, sizeof(line), stdin) && dispatch(&p, line))
        ;
    ferry_agent_destroy(p.agent);
    if (strcmp(argv[2], "memfd"))
        free(p.buf);
    return 0;
}
