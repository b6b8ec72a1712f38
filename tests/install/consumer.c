/* SPDX-License-Identifier: Apache-2.0 */
/* A program of a ferry user, built against an installed ferry only
 * (check-install.sh builds it three ways: C and C++ through pkg-config, and
 * CMake's find_package). It lists the plugins libferry finds by itself, and
 * reads a buffer through the LOCAL backend in loopback.
 *
 * Usage: consumer [PLUGIN_DIR]
 *   With PLUGIN_DIR, every plugin listed must have been found there (the
 *   installed plugin directory, with no FERRY_PLUGIN_DIR), and at least one.
 * Valid C and C++ alike. */
#include <ferry/ferry.h>
#include <stdio.h>
#include <string.h>

#define CHECK(call)                                                                                \
    do {                                                                                           \
        ferry_status rc_ = (call);                                                                 \
        if (rc_ < 0) {                                                                             \
            fprintf(stderr, "consumer: %s: %s\n", #call, ferry_strerror(rc_));                     \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

static char src[4][4096], dst[4][4096];

int main(int argc, char **argv)
{
    const char *plugin_dir = argc > 1 ? argv[1] : NULL;
    printf("libferry %s (headers %d.%d.%d), as %s\n", ferry_version_string(), FERRY_VERSION_MAJOR,
           FERRY_VERSION_MINOR, FERRY_VERSION_PATCH,
#ifdef __cplusplus
           "C++"
#else
           "C"
#endif
    );
    if (ferry_version() < FERRY_VERSION) {
        fprintf(stderr, "consumer: libferry is older than its headers\n");
        return 1;
    }

    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = "consumer";
    ferry_agent *agent;
    CHECK(ferry_agent_create(&cfg, &agent));

    /* The plugins: compiled in, or found beside the installed libferry. */
    const char *names[32];
    size_t count = 0, found_there = 0;
    CHECK(ferry_plugin_list(agent, names, 32, &count));
    for (size_t i = 0; i < count && i < 32; i++) {
        ferry_plugin_info info;
        ferry_plugin_info_init(&info);
        CHECK(ferry_plugin_get_info(agent, names[i], &info));
        printf("plugin %-6s %s%s%s\n", names[i], info.path, info.status ? ": " : "",
               info.status ? info.error : "");
        if (!strcmp(info.path, "builtin"))
            continue;
        if (plugin_dir && strncmp(info.path, plugin_dir, strlen(plugin_dir)) != 0) {
            fprintf(stderr, "consumer: plugin %s is not from %s\n", names[i], plugin_dir);
            return 1;
        }
        found_there++;
    }
    if (plugin_dir && found_there == 0) {
        fprintf(stderr, "consumer: no plugin found in %s\n", plugin_dir);
        return 1;
    }

    /* A loopback READ through LOCAL, made ad hoc from two plain lists (the
     * example examples/loopback.c shows prepared lists and a WRITE). */
    ferry_backend *local;
    CHECK(ferry_backend_create(agent, "LOCAL", NULL, 0, &local));
    for (size_t i = 0; i < sizeof(src); i++)
        src[i / 4096][i % 4096] = (char)(i * 7 + 1);
    ferry_dlist *here, *there;
    CHECK(ferry_dlist_create(FERRY_MEM_DRAM, 1, &here));
    CHECK(ferry_dlist_create(FERRY_MEM_DRAM, 1, &there));
    CHECK(ferry_dlist_add(here, (uintptr_t)dst, sizeof(dst), 0));
    CHECK(ferry_dlist_add(there, (uintptr_t)src, sizeof(src), 0));
    CHECK(ferry_register(agent, here, NULL));
    CHECK(ferry_register(agent, there, NULL));
    void *blob;
    size_t blob_len;
    char self[FERRY_NAME_MAX + 1];
    CHECK(ferry_md_get_local(agent, &blob, &blob_len));
    CHECK(ferry_md_load(agent, blob, blob_len, self, sizeof(self)));
    ferry_free(blob);
    ferry_xfer *xfer;
    CHECK(ferry_xfer_create(agent, FERRY_OP_READ, here, there, self, NULL, &xfer));
    ferry_status rc = ferry_xfer_post(xfer);
    while (rc == FERRY_IN_PROGRESS)
        rc = ferry_xfer_status(xfer);
    CHECK(rc);
    int same = !memcmp(src, dst, sizeof(src));
    printf("read %zu bytes through %s in loopback: %s\n", sizeof(dst),
           ferry_xfer_backend(xfer) == local ? ferry_backend_name(local) : "another backend",
           same ? "verified" : "MISMATCH");
    ferry_xfer_release(xfer);
    CHECK(ferry_deregister(agent, here, NULL));
    CHECK(ferry_deregister(agent, there, NULL));
    ferry_dlist_destroy(here);
    ferry_dlist_destroy(there);
    ferry_agent_destroy(agent);
    return same ? 0 : 1;
}
