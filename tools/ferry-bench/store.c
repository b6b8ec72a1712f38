/* SPDX-License-Identifier: Apache-2.0 */
/* Storage buffers of both tools: FILE, BLOCK (a regular file standing in
 * for a volume, or a device named with --filenames) and OBJ segments.
 *
 * A storage buffer is addressed like memory, by byte offset, and mapped
 * onto what holds it:
 *   FILE, BLOCK: the buffer is cut in chunks (a thread's region, a KV
 *     plane); chunk c lies in file c % num_files at offset
 *     (c / num_files) x chunk, as nixlbench spreads its buffers.
 *   OBJ: the buffer is cut in groups (a slot, a plane) of per_group
 *     objects of `unit` bytes: an object is what one descriptor moves,
 *     since S3 writes objects whole. unit may change between steps
 *     (ferry-bench's block size); registrations cover unit_max.
 * The tools read and write the bytes through host copies (fb_view): files
 * with pread/pwrite on a buffered fd of their own, objects through the
 * agent itself (one request per view). */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fb_store {
    ferry_mem_type type;
    fb_store_cfg cfg;
    unsigned nfiles;
    int *fd, *check_fd; /* per file: the one transfers use, a buffered one */
    uint64_t *dev;      /* per file: fd (FILE) or volume id (BLOCK) */
    char **path;
    bool *own;          /* created by the tool: removed at the end */
    uint64_t first_obj; /* OBJ: index of the buffer's first object */
    size_t nobj;
};

/* Volume ids and object indices: unique in the process, as an agent needs. */
static uint64_t fb_store_ids;

bool fb_seg_storage(ferry_mem_type t)
{
    return t == FERRY_MEM_FILE || t == FERRY_MEM_BLOCK || t == FERRY_MEM_OBJ;
}

bool fb_mem_is_store(const fb_mem *m)
{
    return fb_seg_storage(m->type);
}

/* ---- files ---- */

/* The i-th name of a comma list, into buf; false when there is none. */
static bool fb_list_item(const char *list, unsigned i, char *buf, size_t cap)
{
    const char *p = list;
    for (unsigned k = 0; p && k < i; k++)
        p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL;
    if (!p || !*p)
        return false;
    size_t n = strcspn(p, ",");
    snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
    return n > 0;
}

static void fb_file_open(struct fb_store *s, unsigned i)
{
    char name[4096];
    const fb_store_cfg *c = &s->cfg;
    if (c->filenames) {
        if (!fb_list_item(c->filenames, i, name, sizeof(name)))
            fb_exit(FB_EXIT_USAGE, "--filenames names fewer files than --num_files (%u)",
                    s->nfiles);
    } else {
        snprintf(name, sizeof(name), "%s/%s_%d_%llu", c->dir ? c->dir : ".", fb_prog, (int)getpid(),
                 (unsigned long long)fb_store_ids);
        s->own[i] = true;
    }
    s->path[i] = strdup(name);
    s->check_fd[i] = open(name, O_RDWR | O_CREAT | (s->own[i] ? O_TRUNC : 0), 0644);
    if (s->check_fd[i] < 0)
        fb_exit(FB_EXIT_USAGE, "cannot open %s: %s (see --filepath)", name, strerror(errno));
    s->fd[i] = -1;
    if (s->type == FERRY_MEM_FILE)
        s->fd[i] = open(name, O_RDWR | (c->direct ? O_DIRECT : 0));
    if (s->type == FERRY_MEM_FILE && s->fd[i] < 0)
        fb_exit(FB_EXIT_USAGE, "cannot open %s%s: %s%s", name, c->direct ? " with O_DIRECT" : "",
                strerror(errno),
                c->direct && errno == EINVAL
                    ? " (its file system refuses O_DIRECT; ferry-check --storage DIR tells)"
                    : "");
    s->dev[i] = s->type == FERRY_MEM_FILE ? (uint64_t)s->fd[i] : fb_store_ids;
    fb_store_ids++;
}

static void fb_files_new(struct fb_store *s)
{
    s->nfiles = s->cfg.num_files ? s->cfg.num_files : 1;
    s->fd = fb_alloc(s->nfiles * sizeof(*s->fd));
    s->check_fd = fb_alloc(s->nfiles * sizeof(*s->check_fd));
    s->dev = fb_alloc(s->nfiles * sizeof(*s->dev));
    s->path = fb_alloc(s->nfiles * sizeof(*s->path));
    s->own = fb_alloc(s->nfiles * sizeof(*s->own));
    for (unsigned i = 0; i < s->nfiles; i++)
        fb_file_open(s, i);
}

static void fb_files_free(struct fb_store *s)
{
    for (unsigned i = 0; i < s->nfiles; i++) {
        if (s->fd[i] >= 0)
            close(s->fd[i]);
        close(s->check_fd[i]);
        if (s->own[i])
            unlink(s->path[i]);
        free(s->path[i]);
    }
    free(s->fd), free(s->check_fd), free(s->dev), free(s->path), free(s->own);
}

/* ---- where a byte is ---- */

typedef struct fb_loc {
    uint64_t addr, dev; /* as a descriptor names it */
    size_t left;        /* bytes from there to the end of its chunk or object */
    unsigned file;      /* FILE/BLOCK */
} fb_loc;

static fb_loc fb_store_loc(const struct fb_store *s, size_t off)
{
    const fb_store_cfg *c = &s->cfg;
    if (s->type == FERRY_MEM_OBJ) {
        size_t g = off / c->group, k = off % c->group / c->unit, in = off % c->group % c->unit;
        if (k >= c->per_group)
            fb_die("internal: offset %zu is past object %zu of its group", off, k);
        return (fb_loc){in, s->first_obj + g * c->per_group + k, c->unit - in, 0};
    }
    size_t chunk = off / c->chunk;
    unsigned file = (unsigned)(chunk % s->nfiles);
    uint64_t at = (chunk / s->nfiles) * c->chunk + off % c->chunk;
    return (fb_loc){at, s->dev[file], c->chunk - off % c->chunk, file};
}

void fb_mem_desc(const fb_mem *m, size_t off, uint64_t *addr, uint64_t *dev)
{
    if (!fb_mem_is_store(m)) {
        *addr = (uintptr_t)(m->ptr + off);
        *dev = (uint64_t)(m->dev < 0 ? 0 : m->dev);
        return;
    }
    fb_loc l = fb_store_loc(m->store, off);
    *addr = l.addr;
    *dev = l.dev;
}

void fb_mem_set_unit(fb_mem *m, size_t unit)
{
    if (m->type == FERRY_MEM_OBJ)
        m->store->cfg.unit = unit;
}

/* ---- registration ---- */

/* FILE: the path (for queries); BLOCK: the volume, opened by the backend;
 * OBJ: the key, unique to the process and the object. */
static void fb_reg_meta(const struct fb_store *s, const fb_loc *l, char *buf, size_t cap)
{
    if (s->type == FERRY_MEM_OBJ)
        snprintf(buf, cap, "%s-%d-%llu", fb_prog, (int)getpid(), (unsigned long long)l->dev);
    else if (s->type == FERRY_MEM_BLOCK && s->cfg.direct)
        snprintf(buf, cap, "rw,direct:%s", s->path[l->file]);
    else
        snprintf(buf, cap, "%s", s->path[l->file]);
}

static void fb_reg_add(ferry_dlist *l, const struct fb_store *s, const fb_loc *loc, uint64_t addr,
                       size_t len)
{
    char meta[4200];
    fb_reg_meta(s, loc, meta, sizeof(meta));
    fb_ok(ferry_dlist_add_meta(l, addr, len, loc->dev, meta, strlen(meta)), "dlist add");
}

/* One descriptor per chunk or object of [off, off+len): an object's
 * region covers the largest it will be (unit_max). */
ferry_dlist *fb_store_reg_list(const fb_mem *m, size_t off, size_t len)
{
    const struct fb_store *s = m->store;
    const fb_store_cfg *c = &s->cfg;
    bool obj = s->type == FERRY_MEM_OBJ;
    size_t step = obj ? c->group : c->chunk, per = obj ? c->per_group : 1;
    ferry_dlist *l;
    fb_ok(ferry_dlist_create(m->type, (len + step - 1) / step * per, &l), "dlist");
    for (size_t at = off; at < off + len; at += step) {
        for (size_t k = 0; obj && k < per; k++) {
            fb_loc loc = fb_store_loc(s, at + k * c->unit);
            fb_reg_add(l, s, &loc, 0, c->unit_max);
        }
        if (!obj) {
            fb_loc loc = fb_store_loc(s, at);
            fb_reg_add(l, s, &loc, loc.addr, step < off + len - at ? step : off + len - at);
        }
    }
    return l;
}

/* ---- bytes ---- */

static void fb_file_io(const struct fb_store *s, bool write, uint8_t *buf, size_t off, size_t len)
{
    for (size_t done = 0; done < len;) {
        fb_loc l = fb_store_loc(s, off + done);
        size_t n = l.left < len - done ? l.left : len - done;
        int fd = s->check_fd[l.file];
        ssize_t got = write ? pwrite(fd, buf + done, n, (off_t)l.addr)
                            : pread(fd, buf + done, n, (off_t)l.addr);
        if (got < 0)
            fb_die("%s %s: %s", write ? "write" : "read", s->path[l.file], strerror(errno));
        if (!got && !write)
            memset(buf + done, 0, n); /* never written: zeros, as fresh memory */
        done += got ? (size_t)got : n;
    }
}

/* The request of one view: a descriptor per object piece. */
static void fb_obj_request(const fb_mem *m, ferry_xfer_op op, uint8_t *buf, size_t off, size_t len)
{
    const struct fb_store *s = m->store;
    ferry_agent *a = s->cfg.agent;
    size_t n = len / s->cfg.unit + 2;
    ferry_dlist *l, *r;
    fb_ok(ferry_dlist_create(FERRY_MEM_DRAM, n, &l), "dlist");
    fb_ok(ferry_dlist_create(FERRY_MEM_OBJ, n, &r), "dlist");
    for (size_t done = 0, piece; done < len; done += piece) {
        fb_loc loc = fb_store_loc(s, off + done);
        piece = loc.left < len - done ? loc.left : len - done;
        fb_ok(ferry_dlist_add(l, (uintptr_t)(buf + done), piece, 0), "dlist add");
        fb_ok(ferry_dlist_add(r, loc.addr, piece, loc.dev), "dlist add");
    }
    ferry_dlist *reg;
    fb_ok(ferry_dlist_create(FERRY_MEM_DRAM, 1, &reg), "dlist");
    fb_ok(ferry_dlist_add(reg, (uintptr_t)buf, len, 0), "dlist add");
    fb_ok(ferry_register(a, reg, NULL), "register a host copy");
    ferry_xfer *x;
    fb_ok(ferry_xfer_create(a, op, l, r, ferry_agent_name(a), NULL, &x), "object request");
    ferry_status rc = fb_xfer_wait(x, fb_ok(ferry_xfer_post(x), "post"));
    if (rc != FERRY_OK)
        fb_die("%s objects: %s (%s)", op == FERRY_OP_READ ? "reading" : "writing",
               ferry_strerror(rc), ferry_xfer_error(x));
    ferry_xfer_release(x);
    fb_deregister(a, reg);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
}

/* Objects are written whole: a view that covers only part of one is
 * widened to whole objects, read first. */
static void fb_obj_write(const fb_mem *m, const uint8_t *buf, size_t off, size_t len)
{
    size_t unit = m->store->cfg.unit, group = m->store->cfg.group;
    size_t lo = off - off % group % unit, hi = off + len;
    fb_loc last = fb_store_loc(m->store, hi - 1);
    hi += last.left - 1;
    uint8_t *whole = fb_alloc(hi - lo);
    if (lo != off || hi != off + len)
        fb_obj_request(m, FERRY_OP_READ, whole, lo, hi - lo);
    memcpy(whole + (off - lo), buf, len);
    fb_obj_request(m, FERRY_OP_WRITE, whole, lo, hi - lo);
    free(whole);
}

void fb_store_read(const fb_mem *m, uint8_t *buf, size_t off, size_t len)
{
    if (m->type == FERRY_MEM_OBJ)
        fb_obj_request(m, FERRY_OP_READ, buf, off, len);
    else
        fb_file_io(m->store, false, buf, off, len);
}

void fb_store_write(const fb_mem *m, const uint8_t *buf, size_t off, size_t len)
{
    if (m->type == FERRY_MEM_OBJ)
        fb_obj_write(m, buf, off, len);
    else
        fb_file_io(m->store, true, (uint8_t *)buf, off, len);
}

/* ---- life ---- */

void fb_mem_alloc_store(fb_mem *m, ferry_mem_type type, size_t size, const fb_store_cfg *cfg)
{
    struct fb_store *s = fb_alloc(sizeof(*s));
    *m = (fb_mem){.type = type, .size = size, .store = s};
    s->type = type;
    s->cfg = *cfg;
    if (type != FERRY_MEM_OBJ) {
        fb_files_new(s);
        return;
    }
    s->nobj = (size + cfg->group - 1) / cfg->group * cfg->per_group;
    s->first_obj = fb_store_ids;
    fb_store_ids += s->nobj;
}

void fb_store_free(fb_mem *m)
{
    struct fb_store *s = m->store;
    if (s->type != FERRY_MEM_OBJ)
        fb_files_free(s);
    free(s);
}
