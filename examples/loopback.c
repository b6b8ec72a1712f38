/* SPDX-License-Identifier: Apache-2.0 */
/* The README's example: one agent, the LOCAL backend, a loopback WRITE of
 * four blocks with a notification. Build: cc loopback.c $(pkg-config --cflags
 * --libs ferry). */
#include <ferry/ferry.h>
#include <stdio.h>
#include <string.h>

#define CHECK(call)                                                                                \
    do {                                                                                           \
        ferry_status rc_ = (call);                                                                 \
        if (rc_ < 0) {                                                                             \
            fprintf(stderr, "%s: %s\n", #call, ferry_strerror(rc_));                               \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

int main(void)
{
    static char src[4][4096], dst[4][4096];
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = "example";
    ferry_agent *agent;
    ferry_backend *local;
    CHECK(ferry_agent_create(&cfg, &agent));
    CHECK(ferry_backend_create(agent, "LOCAL", NULL, 0, &local));

    /* Register both buffers: one region each. */
    ferry_dlist *regs;
    CHECK(ferry_dlist_create(FERRY_MEM_DRAM, 2, &regs));
    CHECK(ferry_dlist_add(regs, (uintptr_t)src, sizeof(src), 0));
    CHECK(ferry_dlist_add(regs, (uintptr_t)dst, sizeof(dst), 0));
    CHECK(ferry_register(agent, regs, NULL));

    /* Loopback: load our own metadata, as a peer's would be loaded. */
    void *blob;
    size_t blob_len;
    char peer[FERRY_NAME_MAX + 1];
    CHECK(ferry_md_get_local(agent, &blob, &blob_len));
    CHECK(ferry_md_load(agent, blob, blob_len, peer, sizeof(peer)));
    ferry_free(blob);

    /* Strided lists describe the blocks without materialising them. */
    ferry_dlist *from, *to;
    CHECK(ferry_dlist_create_strided(FERRY_MEM_DRAM, (uintptr_t)src, 4096, 4, 4096, 0, &from));
    CHECK(ferry_dlist_create_strided(FERRY_MEM_DRAM, (uintptr_t)dst, 4096, 4, 4096, 0, &to));
    ferry_prepped *local_side, *remote_side;
    CHECK(ferry_prep_dlist(agent, NULL, from, NULL, &local_side));
    CHECK(ferry_prep_dlist(agent, peer, to, NULL, &remote_side));

    memset(src, 'k', sizeof(src));
    uint32_t idx[] = {3, 1, 2, 0};
    ferry_xfer_opts opts;
    ferry_xfer_opts_init(&opts);
    opts.notif = "req-1";
    opts.notif_len = 5;
    ferry_xfer *xfer;
    CHECK(
        ferry_xfer_make(agent, FERRY_OP_WRITE, local_side, idx, remote_side, idx, 4, &opts, &xfer));
    ferry_status rc = ferry_xfer_post(xfer);
    while (rc == FERRY_IN_PROGRESS)
        rc = ferry_xfer_status(xfer);
    CHECK(rc);
    CHECK(ferry_notif_take_tag(agent, peer, "req-1", 5, false));
    printf("moved %zu bytes through %s: %s\n", sizeof(src), ferry_backend_name(local),
           memcmp(src, dst, sizeof(src)) ? "MISMATCH" : "verified");

    ferry_xfer_release(xfer);
    ferry_prepped_release(local_side);
    ferry_prepped_release(remote_side);
    ferry_dlist_destroy(from);
    ferry_dlist_destroy(to);
    CHECK(ferry_deregister(agent, regs, NULL));
    ferry_dlist_destroy(regs);
    ferry_agent_destroy(agent);
    return 0;
}
