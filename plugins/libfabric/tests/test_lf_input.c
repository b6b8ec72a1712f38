/* SPDX-License-Identifier: Apache-2.0 */
/* Bad input to LIBFABRIC, through its ops (a fake host, no core, so that
 * nothing in front filters it): bad params, providers and domains that
 * cannot serve, hostile connection info and region keys, memory types it
 * does not move, notifications too long. Each gets its status and one
 * ERROR line where a caller needs the reason, and no crash or leak (the
 * sanitizer builds run it). And a peer that never progresses: a WRITE to
 * it fails with TIMEOUT after timeout_ms, and a repost once it runs works.
 * On shm: the segments killed processes left in /dev/shm are removed at
 * the next start, and only those.
 *
 *   test_lf_input PROVIDER [DOMAIN]     (exit 77: provider absent) */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <string.h>
#include <time.h>

#include "common/le.h"
#include "harness.h"
#include "lf_test.h"

static void test_bad_params(void)
{
    static const ferry_param bad[][2] = {
        {{"timeout_ms", "abc"}, {"provider", "tcp;ofi_rxm"}},
        {{"timeout_ms", "5"}, {"provider", "tcp;ofi_rxm"}},
        {{"release_ms", "-1"}, {"provider", "tcp;ofi_rxm"}},
        {{"nope", "1"}, {"provider", "tcp;ofi_rxm"}},
        {{"domain", "an-interface-name-far-longer-than-any-that-a-provider-could-ever-list"},
         {"provider", "tcp;ofi_rxm"}},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        bool logged;
        FY_CHECK_EQ(lf_open_logged("input", bad[k], 2, &logged), FERRY_ERR_INVALID_PARAM);
        FY_CHECK(logged);
    }
}

/* A provider that is not there, or lacks what is needed, or a domain it
 * does not have: NOT_SUPPORTED, with what is lacking. */
static void test_unusable_provider(void)
{
    static const ferry_param bad[][2] = {
        {{"provider", "no-such-provider"}, {"domain", ""}},
        {{"provider", "tcp;ofi_rxm"}, {"domain", "no-such-if0"}},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        bool logged;
        FY_CHECK_EQ(lf_open_logged("input", bad[k], 2, &logged), FERRY_ERR_NOT_SUPPORTED);
        FY_CHECK(logged);
    }
}

/* Connection info and region keys are a peer's bytes: every length and
 * magic is checked. */
static void test_hostile_bytes(void)
{
    lf_inst a;
    FY_REQUIRE(lf_inst_open(&a, "input", 0x20) == FERRY_OK);
    void *info = NULL, *remote = NULL;
    size_t len = 0;
    FY_REQUIRE(D->ops->conn_info(a.priv, &info, &len) == FERRY_OK);
    uint8_t *bytes = info;
    for (size_t cut = 0; cut < len; cut++) /* every truncation */
        FY_CHECK_EQ(D->ops->remote_load(a.priv, "peer", 0x20, bytes, cut, &remote),
                    FERRY_ERR_BAD_METADATA);
    fy_le_put(bytes + 6, 0xffff, 2); /* an address longer than the buffer */
    FY_CHECK_EQ(D->ops->remote_load(a.priv, "peer", 0x20, bytes, len, &remote),
                FERRY_ERR_BAD_METADATA);
    free(info);
    FY_REQUIRE(D->ops->conn_info(a.priv, &info, &len) == FERRY_OK);
    FY_CHECK_EQ(D->ops->remote_load(a.priv, "peer", 0x21, info, len, &remote),
                FERRY_ERR_BAD_METADATA); /* another instance's info */
    FY_REQUIRE(D->ops->remote_load(a.priv, "self", 0x20, info, len, &remote) == FERRY_OK);
    uint8_t pub[28] = {0};
    ferry_desc d = {4096, 4096, 0};
    void *rr = NULL;
    FY_CHECK_EQ(D->ops->rregion_load(a.priv, remote, FERRY_MEM_DRAM, &d, pub, sizeof(pub), &rr),
                FERRY_ERR_BAD_METADATA);
    FY_CHECK_EQ(D->ops->rregion_load(a.priv, remote, FERRY_MEM_DRAM, &d, pub, 3, &rr),
                FERRY_ERR_BAD_METADATA);
    FY_CHECK(rr == NULL);
    D->ops->remote_unload(a.priv, remote);
    free(info);
    lf_inst_close(&a);
}

static void test_types_and_sizes(void)
{
    lf_inst a;
    static uint8_t buf[4096];
    FY_REQUIRE(lf_inst_open(&a, "input", 0x30) == FERRY_OK);
    ferry_desc d = {(uintptr_t)buf, sizeof(buf), 0};
    void *region = NULL, *pub = NULL, *info = NULL, *remote = NULL;
    size_t pub_len = 0, len = 0;
    FY_CHECK_EQ(D->ops->reg(a.priv, FERRY_MEM_VRAM, &d, NULL, 0, &region, &pub, &pub_len),
                FERRY_ERR_NOT_SUPPORTED);
    ferry_desc empty = {(uintptr_t)buf, 0, 0};
    FY_CHECK_EQ(D->ops->reg(a.priv, FERRY_MEM_DRAM, &empty, NULL, 0, &region, &pub, &pub_len),
                FERRY_ERR_INVALID_PARAM);
    FY_REQUIRE(D->ops->conn_info(a.priv, &info, &len) == FERRY_OK);
    FY_REQUIRE(D->ops->remote_load(a.priv, "self", 0x30, info, len, &remote) == FERRY_OK);
    FY_CHECK_EQ(D->ops->notif_send(a.priv, remote, buf, FERRY_NOTIF_MAX_LEN + 1),
                FERRY_ERR_INVALID_PARAM);
    FY_CHECK_EQ(D->ops->notif_send(a.priv, remote, NULL, 4), FERRY_ERR_INVALID_PARAM);
    D->ops->remote_unload(a.priv, remote);
    free(info);
    lf_inst_close(&a);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Drives the initiator (and the target when it runs) until the request
 * ends or 5 s pass. */
static ferry_status drive(lf_inst *ini, lf_inst *tgt, void *h, ferry_status rc)
{
    for (uint64_t until = now_ms() + 5000; rc == FERRY_IN_PROGRESS && now_ms() < until;) {
        D->ops->progress(ini->priv);
        if (tgt)
            D->ops->progress(tgt->priv);
        rc = D->ops->xfer_check(ini->priv, h);
    }
    return rc;
}

static void test_stalled_peer(void)
{
    ferry_param ip[4] = {{"timeout_ms", "200"}, {"release_ms", "50"}, P[0], P[NP - 1]};
    lf_pair s = {0};
    void *h = NULL;
    FY_REQUIRE(lf_pair_open(&s, NULL, 0, ip, 2 + NP, 8192) == FERRY_OK);
    memset(s.src, 0x5a, s.len);
    ferry_plugin_seg l = {(uintptr_t)s.src, 8192, 0, s.ireg};
    ferry_plugin_seg r = {(uintptr_t)s.dst, 8192, 0, s.rr};
    ferry_plugin_xfer px = {.op = FERRY_OP_WRITE,
                            .local_type = FERRY_MEM_DRAM,
                            .remote_type = FERRY_MEM_DRAM,
                            .count = 1,
                            .local = &l,
                            .remote = &r,
                            .remote_agent = s.remote,
                            .total_bytes = 8192};
    FY_REQUIRE(D->ops->xfer_prep(s.i.priv, &px, &h) == FERRY_OK);
    uint64_t t0 = now_ms();
    ferry_status rc = drive(&s.i, NULL, h, D->ops->xfer_post(s.i.priv, h, NULL, 0));
    uint64_t took = now_ms() - t0;
    printf("# a peer that never progresses: %s after %llu ms (%s)\n", ferry_status_name(rc),
           (unsigned long long)took, D->ops->xfer_error(s.i.priv, h));
    FY_CHECK_EQ(rc, FERRY_ERR_TIMEOUT);
    FY_CHECK(took >= 190 && took < 3000);
    /* The target runs now: a repost goes through. */
    rc = drive(&s.i, &s.t, h, D->ops->xfer_post(s.i.priv, h, NULL, 0));
    FY_CHECK_EQ(rc, FERRY_OK);
    FY_CHECK(!memcmp(s.src, s.dst, s.len));
    D->ops->xfer_release(s.i.priv, h);
    lf_pair_close(&s);
}

/* /dev/shm/fylf-<pidns>-<pid>-<starttime>-<uid>-<n> (lf_shm.c), created. */
static bool seg_make(char *path, size_t cap, const char *pidns, long pid, const char *st)
{
    snprintf(path, cap, "/dev/shm/fylf-%s-%ld-%s-abc-7", pidns, pid, st);
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    return fd >= 0;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The pid namespace inode and this process's start time, as /proc has them. */
static bool self_ids(char *pidns, size_t ncap, char *st, size_t scap)
{
    struct stat ns;
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    for (int field = 2; p && field < 22; field++)
        p = strchr(p + 1, ' ');
    if (!p || stat("/proc/self/ns/pid", &ns) != 0)
        return false;
    snprintf(pidns, ncap, "%llu", (unsigned long long)ns.st_ino);
    snprintf(st, scap, "%.*s", (int)strcspn(p + 1, " "), p + 1);
    return true;
}

static void test_shm_stale_segments(void)
{
    char pidns[32], st[32], dead[128], live[128], other[128];
    if (strcmp(P[0].value, "shm"))
        FY_SKIP("the segments concern the shm provider");
    FY_REQUIRE(self_ids(pidns, sizeof(pidns), st, sizeof(st)));
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    FY_REQUIRE(child > 0 && waitpid(child, NULL, 0) == child); /* a pid that is gone */
    FY_REQUIRE(seg_make(dead, sizeof(dead), pidns, (long)child, "1"));
    FY_REQUIRE(seg_make(live, sizeof(live), pidns, (long)getpid(), st));
    FY_REQUIRE(seg_make(other, sizeof(other), "1", (long)child, "1")); /* another pid namespace */
    lf_inst a;
    FY_REQUIRE(lf_inst_open(&a, "sweeper", 0x50) == FERRY_OK);
    FY_CHECK(!exists(dead));
    FY_CHECK(exists(live));
    FY_CHECK(exists(other));
    lf_inst_close(&a);
    unlink(dead), unlink(live), unlink(other);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_lf_input PROVIDER [DOMAIN]\n");
        return 2;
    }
    lf_test_setup(argv[1], argc > 2 ? argv[2] : NULL);
    lf_inst probe;
    if (lf_inst_open(&probe, "input-probe", 0x3333) != FERRY_OK)
        fy_test_skip_all("the provider is not available here");
    lf_inst_close(&probe);
    FY_RUN(test_bad_params);
    FY_RUN(test_unusable_provider);
    FY_RUN(test_hostile_bytes);
    FY_RUN(test_types_and_sizes);
    FY_RUN(test_stalled_peer);
    FY_RUN(test_shm_stale_segments);
    return fy_test_done();
}
