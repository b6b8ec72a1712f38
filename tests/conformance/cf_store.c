/* SPDX-License-Identifier: Apache-2.0 */
/* The target's bytes (see conformance.h): DRAM, or in storage mode a file,
 * a volume (a regular file standing in for a block device) or an object,
 * with a DRAM mirror the suite compares against. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_DIRECT */
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conformance.h"
#include "testutil.h"

bool cf_storage(const cf_env *env)
{
    return env->store_type != FERRY_MEM_DRAM;
}

/* S3 cannot patch an object: a WRITE replaces it from offset 0. */
bool cf_store_writes_at(const cf_env *env)
{
    return env->store_type != FERRY_MEM_OBJ;
}

static bool cf_uses_files(const cf_env *env)
{
    return env->store_type == FERRY_MEM_FILE || env->store_type == FERRY_MEM_BLOCK;
}

/* ---- the directory ---- */

/* A file system that refuses O_DIRECT refuses the open: the suite is then
 * skipped for that dir, not failed. */
static ferry_status cf_probe_direct(cf_env *env, const char **why)
{
    char path[CF_PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/cf-probe", env->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_DIRECT, 0600);
    if (fd < 0) {
        *why = "the directory's file system refuses O_DIRECT";
        return FERRY_ERR_NOT_SUPPORTED;
    }
    close(fd);
    unlink(path);
    return FERRY_OK;
}

ferry_status cf_store_dir(cf_env *env, const char **why)
{
    if (!cf_uses_files(env))
        return FERRY_OK;
    if (!env->dir[0]) {
        snprintf(env->dir, sizeof(env->dir), "/tmp/ferry-cf-XXXXXX");
        if (!mkdtemp(env->dir)) {
            *why = "cannot make a temp dir in /tmp";
            return FERRY_ERR_IO;
        }
        env->own_dir = true;
    }
    return env->direct ? cf_probe_direct(env, why) : FERRY_OK;
}

/* Files a failed test left behind go too: the dir is the suite's own. */
void cf_store_dir_remove(cf_env *env)
{
    DIR *d = env->own_dir ? opendir(env->dir) : NULL;
    struct dirent *e;
    char path[CF_PATH_MAX + 256];
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, "cf-", 3))
            continue;
        snprintf(path, sizeof(path), "%s/%s", env->dir, e->d_name);
        unlink(path);
    }
    if (d) {
        closedir(d);
        rmdir(env->dir);
    }
    env->own_dir = false;
}

/* ---- descriptors ---- */

ferry_dlist *cf_store_list(const cf_store *st, size_t capacity)
{
    ferry_dlist *l = NULL;
    return ferry_dlist_create(st->type, capacity, &l) == FERRY_OK ? l : NULL;
}

/* Registration metadata: FILE (fd mode) the path, for queries; BLOCK the
 * volume's path, opened by the backend (with its O_DIRECT mode); OBJ the key. */
static const char *cf_store_meta(const cf_store *st, char *buf, size_t cap)
{
    if (st->type == FERRY_MEM_BLOCK && st->direct)
        snprintf(buf, cap, "rw,direct:%s", st->name);
    else
        snprintf(buf, cap, "%s", st->name);
    return st->type == FERRY_MEM_DRAM ? NULL : buf;
}

ferry_status cf_store_add(ferry_dlist *l, const cf_store *st, size_t off, size_t len, bool reg)
{
    char buf[CF_PATH_MAX + 64];
    uint64_t addr = st->type == FERRY_MEM_DRAM ? (uintptr_t)st->mirror + off : off;
    const char *meta = reg ? cf_store_meta(st, buf, sizeof(buf)) : NULL;
    if (!meta)
        return ferry_dlist_add(l, addr, len, st->dev);
    return ferry_dlist_add_meta(l, addr, len, st->dev, meta, strlen(meta));
}

static ferry_status cf_store_reg(cf_env *env, cf_store *st, bool reg)
{
    ferry_dlist *l = cf_store_list(st, 1);
    ferry_status rc = l ? cf_store_add(l, st, 0, st->size, true) : FERRY_ERR_NO_MEMORY;
    if (rc == FERRY_OK)
        rc = reg ? cf_register_list(env, true, l) : ferry_deregister(env->tgt, l, NULL);
    ferry_dlist_destroy(l);
    if (rc == FERRY_OK)
        st->registered = reg;
    return rc;
}

/* ---- bytes in and out ---- */

/* An object's bytes move through the backend itself, from and to the
 * mirror (registered with the initiator as DRAM). */
static ferry_status cf_store_xfer(cf_env *env, cf_store *st, ferry_xfer_op op, size_t off,
                                  size_t len)
{
    ferry_dlist *l = tu_list1(st->mirror + off, len), *r = cf_store_list(st, 1);
    ferry_xfer *x = NULL;
    ferry_status rc = l && r ? cf_store_add(r, st, off, len, false) : FERRY_ERR_NO_MEMORY;
    if (rc == FERRY_OK)
        rc = ferry_xfer_create(env->ini, op, l, r, env->tgt_name, NULL, &x);
    if (rc == FERRY_OK)
        rc = cf_post_wait(env, x);
    ferry_xfer_release(x);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    return rc;
}

/* Whole-range pread/pwrite through the buffered fd. */
static ferry_status cf_file_io(cf_store *st, bool write, size_t off, size_t len)
{
    for (size_t done = 0; done < len;) {
        uint8_t *p = st->mirror + off + done;
        ssize_t n = write ? pwrite(st->check_fd, p, len - done, (off_t)(off + done))
                          : pread(st->check_fd, p, len - done, (off_t)(off + done));
        if (n <= 0)
            return FERRY_ERR_IO;
        done += (size_t)n;
    }
    return FERRY_OK;
}

ferry_status cf_store_sync(cf_env *env, cf_store *st, size_t off, size_t len)
{
    if (st->type == FERRY_MEM_DRAM || !len)
        return FERRY_OK;
    if (st->type == FERRY_MEM_OBJ)
        return cf_store_xfer(env, st, FERRY_OP_READ, off, len);
    return cf_file_io(st, false, off, len);
}

/* ---- creation ---- */

static ferry_status cf_file_create(cf_env *env, cf_store *st, unsigned n)
{
    snprintf(st->name, sizeof(st->name), "%s/cf-%u", env->dir, n);
    st->check_fd = open(st->name, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (st->check_fd < 0)
        return FERRY_ERR_IO;
    if (st->type == FERRY_MEM_FILE) {
        st->fd = open(st->name, O_RDWR | (env->direct ? O_DIRECT : 0));
        if (st->fd < 0)
            return FERRY_ERR_IO;
    }
    st->dev = st->type == FERRY_MEM_FILE ? (uint64_t)st->fd : n; /* fd, or volume id */
    return cf_file_io(st, true, 0, st->size);
}

/* The object is written whole, so it exists before any READ of it. */
static ferry_status cf_obj_create(cf_env *env, cf_store *st, unsigned n)
{
    snprintf(st->name, sizeof(st->name), "cf-%d-%u", (int)getpid(), n);
    st->dev = n;
    ferry_status rc = cf_register(env, false, st->mirror, st->size);
    if (rc == FERRY_OK)
        rc = cf_store_reg(env, st, true);
    return rc == FERRY_OK ? cf_store_xfer(env, st, FERRY_OP_WRITE, 0, st->size) : rc;
}

/* The target's DRAM: from its backend with --alloc, else page-aligned heap. */
static uint8_t *cf_store_mem(cf_env *env, cf_store *st, size_t size)
{
    void *p = NULL;
    st->allocated = env->alloc && st->type == FERRY_MEM_DRAM;
    if (!st->allocated)
        return tu_alloc(size);
    ferry_status rc = ferry_mem_alloc(env->tgt, env->tgt_be, FERRY_MEM_DRAM, size, 0, &p);
    if (rc != FERRY_OK)
        printf("# ferry_mem_alloc of %zu bytes: %s\n", size, ferry_strerror(rc));
    return p;
}

ferry_status cf_store_create(cf_env *env, cf_store *st, size_t size, uint64_t seed)
{
    memset(st, 0, sizeof(*st));
    st->type = env->store_type;
    st->direct = env->direct;
    st->size = size;
    st->fd = st->check_fd = -1;
    st->mirror = cf_store_mem(env, st, size);
    if (!st->mirror)
        return FERRY_ERR_NO_MEMORY;
    tu_fill(st->mirror, size, seed);
    unsigned n = env->next_store++;
    if (st->type == FERRY_MEM_OBJ)
        return cf_obj_create(env, st, n);
    return cf_uses_files(env) ? cf_file_create(env, st, n) : FERRY_OK;
}

ferry_status cf_store_open(cf_env *env, cf_store *st, size_t size, uint64_t seed)
{
    ferry_status rc = cf_store_create(env, st, size, seed);
    if (rc == FERRY_OK && !st->registered)
        rc = cf_store_reg(env, st, true);
    return rc;
}

void cf_store_close(cf_env *env, cf_store *st)
{
    if (st->registered)
        cf_store_reg(env, st, false);
    if (st->type == FERRY_MEM_OBJ && st->mirror)
        cf_deregister(env, false, st->mirror, st->size);
    if (st->fd >= 0)
        close(st->fd);
    if (st->check_fd >= 0) {
        close(st->check_fd);
        unlink(st->name);
    }
    if (st->allocated && st->mirror)
        ferry_mem_free(env->tgt, st->mirror);
    else
        free(st->mirror);
    memset(st, 0, sizeof(*st));
    st->fd = st->check_fd = -1;
}
