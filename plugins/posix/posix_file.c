/* SPDX-License-Identifier: Apache-2.0 */
/* Registered files (FILE) and volumes (BLOCK).
 *
 * FILE, fd mode (NIXL's usual form): dev_id is an fd the caller opened and
 * keeps open; the metadata bytes are free (NIXL passes a name or the path,
 * which ferry_query_mem uses). FILE, path mode (NIXL's "<modes>:<path>"
 * metadata, e.g. "rw,direct:/data/kv.bin"): we open the file and dev_id
 * is only the key the transfer descriptors use. BLOCK: the metadata is the
 * volume's path (a block device, or a regular file standing in for one),
 * with or without modes (default "rw"); dev_id is the volume id.
 *
 * Whether I/O is O_DIRECT, and the alignment it then needs, is read once
 * here, from the fd's status flags and the kernel (statx DIOALIGN, or the
 * device's logical block size): re-register after changing the flags. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "posix_internal.h"

/* Without a kernel answer: the classic logical block size. */
#define FY_PX_ALIGN_DEFAULT 512u

/* One mode token of path-mode metadata into open(2) flags; -1 if unknown. */
static int fy_px_mode_flag(const char *tok, size_t len)
{
    static const struct {
        const char *name;
        int flag;
    } modes[] = {{"ro", O_RDONLY}, {"rw", O_RDWR},         {"direct", O_DIRECT},
                 {"sync", O_SYNC}, {"noatime", O_NOATIME}, {"create", O_CREAT}};
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        if (strlen(modes[i].name) == len && !memcmp(modes[i].name, tok, len))
            return modes[i].flag;
    return -1;
}

/* "<access>[,<flag>]*" (access first: ro or rw). False if it is not. */
static bool fy_px_parse_modes(const char *s, size_t len, int *flags)
{
    size_t i = 0;
    *flags = 0;
    for (int k = 0; i <= len; k++) {
        size_t j = i;
        while (j < len && s[j] != ',')
            j++;
        int f = fy_px_mode_flag(s + i, j - i);
        bool access = (j - i == 2) && (f == O_RDONLY || f == O_RDWR);
        if (f < 0 || (k == 0) != access)
            return false;
        *flags |= f;
        i = j + 1;
    }
    return true;
}

/* Splits metadata into open flags and a NUL-terminated path. Path mode:
 * "<modes>:<path>"; a plain path (allowed when plain_ok) opens "rw".
 * False when the metadata names no file that way. */
static bool fy_px_parse_meta(const void *meta, size_t len, bool plain_ok, int *flags,
                             char path[PATH_MAX])
{
    const char *s = meta, *colon = len ? memchr(s, ':', len) : NULL;
    if (!len || len >= PATH_MAX || memchr(s, '\0', len))
        return false;
    if (colon && colon + 1 < s + len && fy_px_parse_modes(s, (size_t)(colon - s), flags)) {
        len -= (size_t)(colon + 1 - s);
        s = colon + 1;
    } else if (plain_ok) {
        *flags = O_RDWR;
    } else {
        return false;
    }
    memcpy(path, s, len);
    path[len] = '\0';
    return true;
}

static void fy_px_file_align(struct fy_px_file *f)
{
    struct stat st;
    int lbs;
    f->mem_align = f->off_align = FY_PX_ALIGN_DEFAULT;
    if (fstat(f->fd, &st) == 0 && S_ISBLK(st.st_mode) && ioctl(f->fd, BLKSSZGET, &lbs) == 0 &&
        lbs > 0) {
        f->mem_align = f->off_align = (uint32_t)lbs;
        return;
    }
#ifdef STATX_DIOALIGN
    struct statx sx;
    if (statx(f->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
        (sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_offset_align) {
        f->mem_align = sx.stx_dio_mem_align;
        f->off_align = sx.stx_dio_offset_align;
    }
#endif
}

/* Opens the path the metadata names (path mode, BLOCK). */
static ferry_status fy_px_open_path(struct fy_px *be, struct fy_px_file *f, const void *meta,
                                    size_t meta_len)
{
    char path[PATH_MAX];
    int flags;
    if (!fy_px_parse_meta(meta, meta_len, f->type == FERRY_MEM_BLOCK, &flags, path)) {
        fy_px_log(be, FERRY_LOG_ERROR,
                  "BLOCK registration needs the volume's path as metadata "
                  "(\"/dev/...\" or \"<modes>:<path>\")");
        return FERRY_ERR_INVALID_PARAM;
    }
    f->fd = open(path, flags | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        int e = errno;
        fy_px_log(be, FERRY_LOG_ERROR, "open %s: %s (%s)", path, strerror(e), strerrorname_np(e));
        return e == ENOENT || e == EACCES || e == EINVAL ? FERRY_ERR_INVALID_PARAM
                                                         : FERRY_ERR_BACKEND;
    }
    f->owned = true;
    return FERRY_OK;
}

/* fd mode: the caller's fd must be open now. */
static ferry_status fy_px_use_fd(struct fy_px *be, struct fy_px_file *f, uint64_t dev_id)
{
    if (dev_id > INT_MAX || fcntl((int)dev_id, F_GETFL) < 0) {
        int e = dev_id > INT_MAX ? EBADF : errno;
        fy_px_log(be, FERRY_LOG_ERROR, "FILE registration: dev_id %llu is not an open fd: %s (%s)",
                  (unsigned long long)dev_id, strerror(e), strerrorname_np(e));
        return FERRY_ERR_INVALID_PARAM;
    }
    f->fd = (int)dev_id;
    return FERRY_OK;
}

static bool fy_px_is_path_mode(const void *meta, size_t len)
{
    int flags;
    char path[PATH_MAX];
    return fy_px_parse_meta(meta, len, false, &flags, path);
}

ferry_status fy_px_file_open(struct fy_px *be, ferry_mem_type type, const ferry_desc *desc,
                             const void *meta, size_t meta_len, struct fy_px_file **out)
{
    struct fy_px_file *f = calloc(1, sizeof(*f));
    if (!f)
        return FERRY_ERR_NO_MEMORY;
    f->type = type;
    bool by_path = type == FERRY_MEM_BLOCK || fy_px_is_path_mode(meta, meta_len);
    ferry_status rc =
        by_path ? fy_px_open_path(be, f, meta, meta_len) : fy_px_use_fd(be, f, desc->dev_id);
    if (rc != FERRY_OK) {
        free(f);
        return rc;
    }
    f->direct = (fcntl(f->fd, F_GETFL) & O_DIRECT) != 0;
    if (f->direct)
        fy_px_file_align(f);
    f->id = ++be->next_file_id;
    f->refs = 1;
    f->next = be->files;
    be->files = f;
    *out = f;
    return FERRY_OK;
}

struct fy_px_file *fy_px_file_find(struct fy_px *be, uint64_t id)
{
    for (struct fy_px_file *f = be->files; f; f = f->next)
        if (f->id == id)
            return f;
    return NULL;
}

static void fy_px_file_unlink(struct fy_px *be, struct fy_px_file *f)
{
    for (struct fy_px_file **p = &be->files; *p; p = &(*p)->next)
        if (*p == f) {
            *p = f->next;
            return;
        }
}

void fy_px_file_put(struct fy_px *be, struct fy_px_file *f)
{
    if (!f || --f->refs)
        return;
    fy_px_file_unlink(be, f);
    if (f->owned)
        close(f->fd);
    free(f);
}
