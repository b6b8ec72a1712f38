/* SPDX-License-Identifier: Apache-2.0 */
/* What the storage tests (POSIX, GDS) share: loopback requests of an
 * agent to itself, a temp dir under /tmp, files in it, and a small file
 * system to fill (a loop-mounted 8 MiB ext4
 * image when mount works (root), else a 4 MiB tmpfs (root, or a private
 * mount namespace), else RLIMIT_FSIZE of 4 MiB, so a write past it fails
 * with EFBIG instead of ENOSPC). */
#ifndef FY_PX_TESTFS_H
#define FY_PX_TESTFS_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ferry/ferry.h>

#include "conformance/testutil.h"

#define KB 1024ull
#define MB (1024ull * 1024ull)

static char g_dir[64]; /* the temp dir */

/* Zeroed, aligned test memory: a WRITE of it hands the kernel defined
 * bytes (valgrind checks what io_submit's buffers hold). */
static inline void *px_alloc(size_t len)
{
    void *p = tu_alloc(len);
    if (p)
        memset(p, 0, len);
    return p;
}

/* ---- an agent talking to itself (its name: self) ---- */

typedef struct tfs_agent {
    ferry_agent *ag;
    ferry_backend *be;
} tfs_agent;

/* The agent (with its progress thread or not) and one backend. */
static inline ferry_status tfs_open(tfs_agent *t, const char *self, bool thread,
                                    const char *backend, const ferry_param *params, size_t n)
{
    ferry_agent_config cfg;
    ferry_clear_error(); /* the errors of this thread accumulate */
    ferry_agent_config_init(&cfg);
    cfg.name = self;
    cfg.progress_thread = thread;
    ferry_status rc = ferry_agent_create(&cfg, &t->ag);
    if (rc != FERRY_OK)
        return rc;
    rc = ferry_backend_create(t->ag, backend, params, n, &t->be);
    if (rc != FERRY_OK)
        ferry_agent_destroy(t->ag);
    return rc;
}

/* Loads the agent's own metadata again (a new generation), after
 * registering. */
static inline ferry_status tfs_publish(ferry_agent *ag, const char *self)
{
    ferry_status rc = ferry_md_invalidate(ag, self);
    if (rc != FERRY_OK && rc != FERRY_ERR_NOT_FOUND)
        return rc;
    return tu_load_self(ag);
}

/* Registers [0, len) of fd as FILE with its path as metadata, then
 * publishes it. */
static inline ferry_status tfs_reg_file(ferry_agent *ag, const char *self, int fd, uint64_t len,
                                        const char *path)
{
    ferry_dlist *l;
    ferry_clear_error();
    ferry_status rc = ferry_dlist_create(FERRY_MEM_FILE, 1, &l);
    if (rc != FERRY_OK)
        return rc;
    rc = ferry_dlist_add_meta(l, 0, len, (uint64_t)fd, path, strlen(path));
    if (rc == FERRY_OK)
        rc = ferry_register(ag, l, NULL);
    ferry_dlist_destroy(l);
    return rc == FERRY_OK ? tfs_publish(ag, self) : rc;
}

/* Makes, posts and waits for one request to self; *out (when not NULL)
 * keeps it, for its error, else it is released. */
static inline ferry_status tfs_run(ferry_agent *ag, const char *self, ferry_xfer_op op,
                                   const ferry_dlist *l, const ferry_dlist *r, ferry_xfer **out)
{
    ferry_xfer *x;
    ferry_status rc = ferry_xfer_create(ag, op, l, r, self, NULL, &x);
    if (rc != FERRY_OK)
        return rc;
    rc = tu_post_wait(x);
    if (out)
        *out = x;
    else
        ferry_xfer_release(x);
    return rc;
}

/* ---- files ---- */

static inline void path_of(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", g_dir, name);
}

static inline int open_file(const char *name, bool direct, uint64_t size, char *path, size_t cap)
{
    path_of(path, cap, name);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | (direct ? O_DIRECT : 0), 0600);
    if (fd >= 0 && ftruncate(fd, (off_t)size) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The file's bytes, read back without ferry. */
static inline uint8_t *slurp(const char *path, uint64_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    int fd = open(path, O_RDONLY);
    if (!buf || fd < 0 || pread(fd, buf, size, 0) != (ssize_t)size) {
        free(buf);
        buf = NULL;
    }
    if (fd >= 0)
        close(fd);
    return buf;
}

/* Does the temp dir's file system take O_DIRECT? */
static inline bool probe_direct(void)
{
    char path[128];
    int fd = open_file("probe", true, 4096, path, sizeof(path));
    void *buf = px_alloc(4096);
    bool ok = fd >= 0 && buf && pread(fd, buf, 4096, 0) == 4096;
    if (fd >= 0)
        close(fd);
    unlink(path);
    free(buf);
    return ok;
}

/* ---- a full file system ---- */

typedef struct smallfs {
    char dir[128], image[128];
    const char *how;
    bool mounted;
    struct rlimit old; /* not mounted: the file size limit before ours */
} smallfs;

static inline bool run_quiet(const char *cmd)
{
    char full[520];
    snprintf(full, sizeof(full), "%.480s >/dev/null 2>&1", cmd);
    return system(full) == 0;
}

static inline bool smallfs_ext4(smallfs *fs)
{
    char cmd[600];
    snprintf(fs->image, sizeof(fs->image), "%s/ext4.img", g_dir);
    snprintf(cmd, sizeof(cmd), "truncate -s 8M %s && mkfs.ext4 -q -F %s && mount -o loop %s %s",
             fs->image, fs->image, fs->image, fs->dir);
    fs->how = "loop-mounted 8 MiB ext4 image";
    return run_quiet(cmd);
}

static inline bool smallfs_open(smallfs *fs)
{
    snprintf(fs->dir, sizeof(fs->dir), "%s/small", g_dir);
    if (mkdir(fs->dir, 0700) != 0)
        return false;
    if (geteuid() == 0 && smallfs_ext4(fs))
        return fs->mounted = true;
    fs->how = "4 MiB tmpfs";
    if (mount("tmpfs", fs->dir, "tmpfs", 0, "size=4m") == 0)
        return fs->mounted = true;
    fs->how = "RLIMIT_FSIZE 4 MiB (no mount here)";
    struct rlimit lim = {4 * MB, RLIM_INFINITY};
    getrlimit(RLIMIT_FSIZE, &fs->old);
    lim.rlim_max = fs->old.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &lim);
    return true;
}

/* A new file "full" in the small file system (path: its name), after
 * saying which file system that is. */
static inline int smallfs_file(const smallfs *fs, char *path, size_t cap)
{
    printf("# small file system: %s\n", fs->how);
    snprintf(path, cap, "%s/full", fs->dir);
    return open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
}

/* The errno a write past the small file system's room reports. */
static inline const char *smallfs_errno(const smallfs *fs)
{
    return fs->mounted ? "ENOSPC" : "EFBIG";
}

static inline void smallfs_close(smallfs *fs)
{
    if (fs->mounted)
        umount2(fs->dir, MNT_DETACH);
    else
        setrlimit(RLIMIT_FSIZE, &fs->old);
    if (fs->image[0])
        unlink(fs->image);
    rmdir(fs->dir);
}

#endif
