/* SPDX-License-Identifier: Apache-2.0 */
/* Two processes over CUDA IPC: this program (the initiator) starts a copy of
 * itself as the peer (--peer ...), each with its own agent and CUDA
 * backend, and they exchange metadata over a pipe. Then only ferry talks:
 * the initiator WRITEs blocks into the peer's VRAM with a notification, the
 * peer checks its whole buffer against its own mirror and answers with a
 * notification; READ rounds go the other way. With two GPUs the peer runs
 * on the other one and sees the GPUs in the opposite order
 * (CUDA_VISIBLE_DEVICES reversed), so its region says "GPU 0" for what the
 * initiator calls GPU 1: only the UUID in the key tells them apart.
 * With one GPU both run on GPU 0.
 *
 * Then peers die: a target killed while transfers to it run (the initiator
 * must see FERRY_ERR_REMOTE_DISCONNECT, release cleanly and keep working),
 * and an initiator killed while it writes into us (we keep working).
 *
 *   test_cuda_ipc [--child-visible=LIST]   LIST: the peer's visible GPUs
 * Skips without a GPU (or the mock driver). */
#include "gpu_proc.h"

#define KB 1024ull
#define MB (1024ull * 1024ull)
#define SZ (64 * MB) /* each side's buffer */

static const char *MAIN_NAME = "ipc-main", *PEER_NAME = "ipc-peer";

typedef struct buf_info {
    uint64_t addr, size, dev;
} buf_info;

/* ---- one side's setup ---- */

typedef struct sidecar {
    ferry_agent *a;
    uint8_t *buf;
    ferry_mem_type type;
    buf_info peer;
} sidecar;

static ferry_status side_open(sidecar *s, const char *name, const char *mode, ferry_mem_type type,
                              bool progress_thread)
{
    ferry_agent_config cfg;
    ferry_backend *be;
    ferry_param p[] = {{"mode", mode}};
    ferry_agent_config_init(&cfg);
    cfg.name = name;
    cfg.progress_thread = progress_thread;
    memset(s, 0, sizeof(*s));
    s->type = type;
    ferry_status rc = ferry_agent_create(&cfg, &s->a);
    if (rc == FERRY_OK)
        rc = ferry_backend_create(s->a, "CUDA", p, 1, &be);
    s->buf = type == FERRY_MEM_VRAM ? gt_alloc(0, SZ) : tu_alloc(SZ);
    if (rc == FERRY_OK)
        rc = gt_register(s->a, type, s->buf, SZ, 0);
    return rc;
}

static void side_close(sidecar *s)
{
    ferry_agent_destroy(s->a);
    if (s->type == FERRY_MEM_VRAM)
        gt_free(0, s->buf);
    else
        free(s->buf);
}

/* Our blob and buffer out, the peer's in. */
static ferry_status side_exchange(sidecar *s, int rfd, int wfd)
{
    void *blob = NULL;
    size_t len = 0;
    uint32_t got;
    char name[FERRY_NAME_MAX + 1];
    buf_info mine = {(uintptr_t)s->buf, SZ, 0};
    ferry_status rc = ferry_md_get_local(s->a, &blob, &len);
    if (rc != FERRY_OK)
        return rc;
    bool ok = gp_send(wfd, blob, (uint32_t)len) && gp_send(wfd, &mine, sizeof(mine));
    ferry_free(blob);
    uint32_t blob_len = 0;
    void *theirs = ok ? gp_recv(rfd, &blob_len) : NULL;
    buf_info *info = theirs ? gp_recv(rfd, &got) : NULL;
    if (!theirs || !info || got != sizeof(*info)) {
        free(theirs);
        free(info);
        return FERRY_ERR_IO;
    }
    rc = ferry_md_load(s->a, theirs, blob_len, name, sizeof(name));
    free(theirs);
    s->peer = *info;
    free(info);
    return rc;
}

/* ---- rounds: block layouts both sides derive from the round number ---- */

typedef struct blocks {
    size_t n;
    uint64_t *len, *ioff, *poff; /* initiator's and peer's offsets */
} blocks;

static const struct {
    size_t n;
    uint64_t slot;
    bool odd; /* random lengths and placements within the slot */
} SHAPES[] = {{2000, 8 * KB, false},
              {3000, 4 * KB, true},
              {200, 128 * KB, false},
              {1, 32 * MB, false},
              {16384, 4 * KB, false}};
#define NSHAPES (sizeof(SHAPES) / sizeof(SHAPES[0]))

static void perm(size_t *p, size_t n, tu_rng *rng)
{
    for (size_t i = 0; i < n; i++)
        p[i] = i;
    for (size_t i = n; i-- > 1;) {
        size_t j = (size_t)tu_rand_range(rng, 0, i), t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
}

static void blocks_make(blocks *b, unsigned round)
{
    size_t shape = round % NSHAPES, n = SHAPES[shape].n, slots = SZ / SHAPES[shape].slot;
    uint64_t slot = SHAPES[shape].slot;
    tu_rng rng = tu_rng_seed(1000 + round);
    size_t *pi = malloc(slots * sizeof(*pi)), *pp = malloc(slots * sizeof(*pp));
    b->n = n;
    b->len = malloc(n * sizeof(uint64_t));
    b->ioff = malloc(n * sizeof(uint64_t));
    b->poff = malloc(n * sizeof(uint64_t));
    perm(pi, slots, &rng);
    perm(pp, slots, &rng);
    for (size_t i = 0; i < n; i++) {
        uint64_t len = SHAPES[shape].odd ? tu_rand_range(&rng, 1, slot) : slot;
        uint64_t slack = slot - len;
        b->len[i] = len;
        b->ioff[i] = pi[i] * slot + (slack ? tu_rand_range(&rng, 0, slack) : 0);
        b->poff[i] = pp[i] * slot + (slack ? tu_rand_range(&rng, 0, slack) : 0);
    }
    free(pi);
    free(pp);
}

static void blocks_free(blocks *b)
{
    free(b->len);
    free(b->ioff);
    free(b->poff);
}

static ferry_dlist *blocks_list(const blocks *b, ferry_mem_type type, uint64_t base, bool peer,
                                uint64_t dev)
{
    ferry_dlist *l;
    if (ferry_dlist_create(type, b->n, &l) != FERRY_OK)
        return NULL;
    for (size_t i = 0; i < b->n; i++)
        ferry_dlist_add(l, base + (peer ? b->poff[i] : b->ioff[i]), b->len[i], dev);
    return l;
}

/* ---- the peer process ---- */

static ferry_status wait_notif_prefix(ferry_agent *a, const char *from, char *out, size_t cap)
{
    uint64_t deadline = tu_now_ms() + TU_TIMEOUT_MS;
    while (tu_now_ms() < deadline) {
        ferry_notif_batch *b = NULL;
        if (ferry_notif_take(a, from, &b) == FERRY_OK && ferry_notif_batch_count(b)) {
            const char *who;
            const void *msg;
            size_t len;
            ferry_notif_batch_get(b, 0, &who, &msg, &len);
            size_t n = len < cap - 1 ? len : cap - 1;
            memcpy(out, msg, n);
            out[n] = '\0';
            ferry_notif_batch_free(b); /* one message at a time in this protocol */
            return FERRY_OK;
        }
        ferry_notif_batch_free(b);
        ferry_agent_progress(a);
        tu_sleep_us(50);
    }
    return FERRY_ERR_TIMEOUT;
}

/* The peer's mirror of its buffer, kept in step with what it was told. */
static void peer_apply_write(uint8_t *mirror, unsigned round)
{
    blocks b;
    blocks_make(&b, round);
    uint8_t *src = malloc(SZ);
    tu_fill(src, SZ, 2000 + round);
    for (size_t i = 0; i < b.n; i++)
        memcpy(mirror + b.poff[i], src + b.ioff[i], b.len[i]);
    free(src);
    blocks_free(&b);
}

static void peer_reply(sidecar *s, const char *what, unsigned round)
{
    char msg[64];
    snprintf(msg, sizeof(msg), "%s%u", what, round);
    ferry_status rc = ferry_notif_send(s->a, MAIN_NAME, msg, strlen(msg), NULL);
    if (rc != FERRY_OK)
        fprintf(stderr, "peer: reply %s: %s\n", msg, ferry_strerror(rc));
}

static int peer_serve(sidecar *s)
{
    uint8_t *mirror = malloc(SZ);
    tu_fill(mirror, SZ, 3000);
    for (;;) {
        char cmd[64];
        unsigned k = 0;
        if (wait_notif_prefix(s->a, MAIN_NAME, cmd, sizeof(cmd)) != FERRY_OK)
            return 3;
        if (cmd[0] == 'q')
            break;
        k = (unsigned)strtoul(cmd + 1, NULL, 10);
        if (cmd[0] == 'w') { /* the initiator wrote round k: check everything */
            peer_apply_write(mirror, k);
            uint8_t *got = gt_read(s->buf, SZ);
            peer_reply(s, memcmp(got, mirror, SZ) ? "bad" : "ok", k);
            free(got);
        } else if (cmd[0] == 'f') { /* new contents for a READ round */
            tu_fill(mirror, SZ, 4000 + k);
            gt_copy(s->buf, mirror, SZ);
            peer_reply(s, "filled", k);
        }
    }
    free(mirror);
    return 0;
}

/* Writes into the initiator's buffer until killed. */
static int peer_write_forever(sidecar *s)
{
    blocks b;
    blocks_make(&b, 4);
    ferry_dlist *l = blocks_list(&b, s->type, (uintptr_t)s->buf, true, 0);
    ferry_dlist *r = blocks_list(&b, FERRY_MEM_VRAM, s->peer.addr, false, s->peer.dev);
    ferry_xfer_opts o;
    ferry_xfer_opts_init(&o);
    o.notif = "wr";
    o.notif_len = 2;
    ferry_xfer *x;
    if (ferry_xfer_create(s->a, FERRY_OP_WRITE, l, r, MAIN_NAME, &o, &x) != FERRY_OK)
        return 4;
    for (;;)
        if (tu_post_wait(x) != FERRY_OK)
            return 5;
}

static int peer_main(int argc, char **argv)
{
    if (argc < 6)
        return 2;
    int rfd = atoi(argv[2]), wfd = atoi(argv[3]);
    const char *role = argv[4], *mode = argv[5];
    sidecar s;
    alarm(300); /* a lost initiator never leaves us behind for long */
    gt_init_or_skip();
    if (side_open(&s, PEER_NAME, mode, FERRY_MEM_VRAM, true) != FERRY_OK)
        return 2;
    gt_fill(s.buf, SZ, 3000); /* what peer_serve's mirror starts from */
    if (side_exchange(&s, rfd, wfd) != FERRY_OK)
        return 2;
    char ready = 'r';
    if (!gp_io(wfd, &ready, 1, true))
        return 2;
    int rc = !strcmp(role, "writer") ? peer_write_forever(&s) : peer_serve(&s);
    side_close(&s);
    return rc;
}

/* ---- the initiator ---- */

static const char *CHILD_VISIBLE; /* --child-visible=LIST */

/* Starts a peer and connects; 77 when the peer found no GPU. */
static int connect_peer(sidecar *s, gp_child *c, const char *role, const char *mode,
                        ferry_mem_type type)
{
    char ready;
    if (side_open(s, MAIN_NAME, mode, type, false) != FERRY_OK ||
        !gp_start(c, CHILD_VISIBLE, role, mode))
        return 1;
    if (side_exchange(s, c->rfd, c->wfd) != FERRY_OK || !gp_io(c->rfd, &ready, 1, false)) {
        int st = gp_reap(c, true);
        side_close(s);
        return st == 77 ? 77 : 1;
    }
    return 0;
}

static ferry_status wait_reply(sidecar *s, const char *want)
{
    char got[64];
    ferry_status rc = wait_notif_prefix(s->a, PEER_NAME, got, sizeof(got));
    if (rc == FERRY_OK && strcmp(got, want)) {
        printf("# peer answered %s, expected %s\n", got, want);
        return FERRY_ERR_MISMATCH;
    }
    return rc;
}

static ferry_status tell(sidecar *s, const char *what, unsigned round)
{
    char msg[64];
    snprintf(msg, sizeof(msg), "%s%u", what, round);
    return ferry_notif_send(s->a, PEER_NAME, msg, strlen(msg), NULL);
}

static ferry_status round_xfer(sidecar *s, unsigned round, ferry_xfer_op op, ferry_xfer **out)
{
    blocks b;
    blocks_make(&b, round);
    ferry_dlist *l = blocks_list(&b, s->type, (uintptr_t)s->buf, false, 0);
    ferry_dlist *r = blocks_list(&b, FERRY_MEM_VRAM, s->peer.addr, true, s->peer.dev);
    char tag[32];
    snprintf(tag, sizeof(tag), "w%u", round);
    ferry_xfer_opts o;
    ferry_xfer_opts_init(&o);
    o.notif = op == FERRY_OP_WRITE ? tag : NULL;
    o.notif_len = op == FERRY_OP_WRITE ? strlen(tag) : 0;
    ferry_status rc =
        l && r ? ferry_xfer_create(s->a, op, l, r, PEER_NAME, &o, out) : FERRY_ERR_NO_MEMORY;
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    blocks_free(&b);
    return rc;
}

/* WRITE round: our data lands, the peer checks its whole buffer. */
static ferry_status write_round(sidecar *s, unsigned round)
{
    ferry_xfer *x;
    gt_fill(s->buf, SZ, 2000 + round);
    ferry_status rc = round_xfer(s, round, FERRY_OP_WRITE, &x);
    if (rc != FERRY_OK)
        return rc;
    rc = tu_post_wait(x);
    if (rc != FERRY_OK)
        printf("# write round %u: %s (%s)\n", round, ferry_strerror(rc), ferry_xfer_error(x));
    ferry_xfer_release(x);
    char want[32];
    snprintf(want, sizeof(want), "ok%u", round);
    return rc == FERRY_OK ? wait_reply(s, want) : rc;
}

/* READ round: the peer refills its buffer, we read blocks and check ours. */
static ferry_status read_round(sidecar *s, unsigned round)
{
    ferry_xfer *x;
    char want[32];
    snprintf(want, sizeof(want), "filled%u", round);
    ferry_status rc = tell(s, "f", round);
    if (rc == FERRY_OK)
        rc = wait_reply(s, want);
    if (rc == FERRY_OK)
        rc = round_xfer(s, round, FERRY_OP_READ, &x);
    if (rc != FERRY_OK)
        return rc;
    gt_fill(s->buf, SZ, 5000 + round);
    uint8_t *expect = gt_read(s->buf, SZ), *theirs = malloc(SZ);
    tu_fill(theirs, SZ, 4000 + round);
    blocks b;
    blocks_make(&b, round);
    for (size_t i = 0; i < b.n; i++)
        memcpy(expect + b.ioff[i], theirs + b.poff[i], b.len[i]);
    rc = tu_post_wait(x);
    uint8_t *got = gt_read(s->buf, SZ);
    if (rc == FERRY_OK && memcmp(got, expect, SZ))
        rc = FERRY_ERR_MISMATCH;
    free(got);
    free(expect);
    free(theirs);
    blocks_free(&b);
    ferry_xfer_release(x);
    return rc;
}

static void run_rounds(const char *mode, ferry_mem_type type)
{
    sidecar s;
    gp_child c;
    int st = connect_peer(&s, &c, "target", mode, type);
    if (st == 77)
        FY_SKIP("the peer process found no GPU");
    FY_REQUIRE(st == 0);
    for (unsigned round = 0; round < NSHAPES; round++) {
        ferry_status rc = write_round(&s, round);
        if (rc != FERRY_OK)
            printf("# %s %s: write round %u (%zu blocks): %s\n", mode, ferry_mem_type_name(type),
                   round, SHAPES[round].n, ferry_strerror(rc));
        FY_CHECK_EQ(rc, FERRY_OK);
        rc = read_round(&s, round);
        if (rc != FERRY_OK)
            printf("# %s %s: read round %u: %s\n", mode, ferry_mem_type_name(type), round,
                   ferry_strerror(rc));
        FY_CHECK_EQ(rc, FERRY_OK);
    }
    FY_CHECK_EQ(tell(&s, "q", 0), FERRY_OK);
    FY_CHECK_EQ(gp_reap(&c, false), 0);
    side_close(&s);
}

static void test_vram_kernel(void)
{
    if (!GT_HAVE_KERNELS)
        FY_SKIP("this build has no copy kernels (nvcc was not found)");
    run_rounds("kernel", FERRY_MEM_VRAM);
}

static void test_vram_copy_engine(void)
{
    run_rounds("copy_engine", FERRY_MEM_VRAM);
}

static void test_dram_to_peer_vram(void)
{
    run_rounds(GT_KERNEL_MODE, FERRY_MEM_DRAM);
}

/* A local VRAM -> VRAM copy still works: the context survived. */
static ferry_status local_copy_works(sidecar *s)
{
    uint8_t *a = gt_alloc(0, MB), *b = gt_alloc(0, MB);
    gt_fill(a, MB, 42);
    ferry_status rc = gt_register(s->a, FERRY_MEM_VRAM, a, MB, 0);
    if (rc == FERRY_OK)
        rc = gt_register(s->a, FERRY_MEM_VRAM, b, MB, 0);
    if (rc == FERRY_OK)
        rc = tu_load_self(s->a);
    ferry_dlist *l = gt_list1(FERRY_MEM_VRAM, a, MB, 0), *r = gt_list1(FERRY_MEM_VRAM, b, MB, 0);
    ferry_xfer *x;
    if (rc == FERRY_OK)
        rc = ferry_xfer_create(s->a, FERRY_OP_WRITE, l, r, MAIN_NAME, NULL, &x);
    if (rc == FERRY_OK) {
        rc = tu_post_wait(x);
        uint8_t *ha = gt_read(a, MB), *hb = gt_read(b, MB);
        if (rc == FERRY_OK && memcmp(ha, hb, MB))
            rc = FERRY_ERR_MISMATCH;
        free(ha);
        free(hb);
        ferry_xfer_release(x);
    }
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    gt_deregister(s->a, FERRY_MEM_VRAM, a, MB, 0);
    gt_deregister(s->a, FERRY_MEM_VRAM, b, MB, 0);
    gt_free(0, a);
    gt_free(0, b);
    return rc;
}

/* Keeps posting to a peer that gets SIGKILL after a few posts: some post
 * or status must report REMOTE_DISCONNECT within seconds, never hang. */
static void test_target_killed(void)
{
    sidecar s;
    gp_child c;
    ferry_xfer *x;
    int st = connect_peer(&s, &c, "target", GT_KERNEL_MODE, FERRY_MEM_VRAM);
    if (st == 77)
        FY_SKIP("the peer process found no GPU");
    FY_REQUIRE(st == 0);
    FY_REQUIRE(round_xfer(&s, 4, FERRY_OP_WRITE, &x) == FERRY_OK); /* 16384 x 4 KiB */
    ferry_status rc = FERRY_OK;
    uint64_t deadline = 0;
    for (int posts = 0; rc != FERRY_ERR_REMOTE_DISCONNECT; posts++) {
        if (posts == 3) {
            gp_reap(&c, true);
            deadline = tu_now_ms() + 10000;
        }
        if (deadline && tu_now_ms() > deadline)
            break;
        rc = ferry_xfer_post(x);
        if (rc == FERRY_IN_PROGRESS)
            rc = tu_wait(x, 10000);
        FY_CHECK(rc == FERRY_OK || rc == FERRY_ERR_REMOTE_DISCONNECT);
        if (rc != FERRY_OK && rc != FERRY_ERR_REMOTE_DISCONNECT)
            break;
    }
    FY_CHECK_EQ(rc, FERRY_ERR_REMOTE_DISCONNECT);
    printf("# after the kill: %s (%s)\n", ferry_strerror(rc), ferry_xfer_error(x));
    FY_CHECK_EQ(ferry_xfer_release(x), FERRY_OK);
    FY_CHECK_EQ(ferry_notif_send(s.a, PEER_NAME, "x", 1, NULL), FERRY_ERR_REMOTE_DISCONNECT);
    FY_CHECK_EQ(ferry_md_invalidate(s.a, PEER_NAME), FERRY_OK);
    FY_CHECK_EQ(local_copy_works(&s), FERRY_OK);
    side_close(&s);
}

/* The peer writes into us in a loop and is killed mid-transfer: we notice
 * on our next send, and our GPU keeps working. */
static void test_initiator_killed(void)
{
    sidecar s;
    gp_child c;
    char got[16];
    int st = connect_peer(&s, &c, "writer", GT_KERNEL_MODE, FERRY_MEM_VRAM);
    if (st == 77)
        FY_SKIP("the peer process found no GPU");
    FY_REQUIRE(st == 0);
    for (int i = 0; i < 3; i++) /* its writes are landing */
        FY_REQUIRE(wait_notif_prefix(s.a, PEER_NAME, got, sizeof(got)) == FERRY_OK);
    gp_reap(&c, true);
    FY_CHECK_EQ(ferry_notif_send(s.a, PEER_NAME, "x", 1, NULL), FERRY_ERR_REMOTE_DISCONNECT);
    FY_CHECK_EQ(ferry_agent_progress(s.a), FERRY_OK);
    FY_CHECK_EQ(local_copy_works(&s), FERRY_OK);
    side_close(&s);
}

int main(int argc, char **argv)
{
    gp_set_self(argv[0]);
    if (argc > 1 && !strcmp(argv[1], "--peer"))
        return peer_main(argc, argv);
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], "--child-visible=", 16))
            CHILD_VISIBLE = argv[i] + 16;
    signal(SIGPIPE, SIG_IGN);
    gt_init_or_skip();
    printf("# %s\n", GT.ndev > 1 || CHILD_VISIBLE ? "the peer runs on another GPU, GPUs reordered"
                                                  : "one GPU: both processes on GPU 0");
    FY_RUN(test_vram_kernel);
    FY_RUN(test_vram_copy_engine);
    FY_RUN(test_dram_to_peer_vram);
    FY_RUN(test_target_killed);
    FY_RUN(test_initiator_killed);
    return fy_test_done();
}
