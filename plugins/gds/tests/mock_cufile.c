/* SPDX-License-Identifier: Apache-2.0 */
/* A fake libcufile for hosts without GPUDirect Storage: the GDS tests point
 * FERRY_CUFILE_LIB at it, with the mock CUDA driver (whose device memory
 * is host memory), so the backend above cuFile runs byte for byte
 * anywhere. Reads and writes are pread/pwrite on the registered fd, as
 * cuFile's compatibility mode does.
 *
 * Strict where bugs would hide: every call but DriverOpen fails before
 * the driver is open; I/O on a handle not registered (or deregistered) is
 * -CU_FILE_HANDLE_NOT_REGISTERED; closing the driver with handles still
 * registered is reported on stderr and fails (CU_FILE_INTERNAL_ERROR), as
 * is deregistering one twice.
 *
 * The batch API runs a batch's I/Os when its status is asked for (at most
 * the number asked, so a batch may take several polls), so a batch
 * canceled before that moves nothing; submitting to a handle whose I/Os
 * are not all reaped is CU_FILE_BATCH_FULL, destroying one is reported.
 *
 * Environment: FY_MOCK_CUFILE_OPEN_ERROR (a status for cuFileDriverOpen),
 * FY_MOCK_CUFILE_REGISTER_ERROR (a status for cuFileHandleRegister, e.g.
 * 5027 as on a host whose volume lacks udev attributes),
 * FY_MOCK_CUFILE_NO_BATCH=1 (cuFileBatchIOSetUp fails: 5007). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define MOCK_API __attribute__((visibility("default")))

#define ST_HANDLE_NOT_REGISTERED  5027
#define ST_INVALID_VALUE          5022
#define ST_DRIVER_NOT_INITIALIZED 5001
#define ST_INTERNAL_ERROR         5030
#define ST_PLATFORM_NOT_SUPPORTED 5007
#define ST_BATCH_FULL             5037
#define MOCK_MAGIC                0x6d636668u

enum { B_WAITING = 1, B_INVALID = 4, B_CANCELED = 8, B_COMPLETE = 16, B_FAILED = 64 };

typedef struct mock_status {
    int err;
    int cu_err;
} mock_status;

typedef struct mock_descr {
    int type;
    union {
        int fd;
        void *handle;
    } handle;
    const void *fs_ops;
} mock_descr;

typedef struct mock_handle {
    unsigned magic;
    int fd;
} mock_handle;

static atomic_bool g_open;
static atomic_int g_handles;

static int env_status(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : 0;
}

MOCK_API mock_status cuFileDriverOpen(void)
{
    int err = env_status("FY_MOCK_CUFILE_OPEN_ERROR");
    if (!err)
        atomic_store(&g_open, true);
    return (mock_status){err, 0};
}

MOCK_API mock_status cuFileDriverClose_v2(void)
{
    if (!atomic_exchange(&g_open, false))
        return (mock_status){ST_DRIVER_NOT_INITIALIZED, 0};
    int left = atomic_load(&g_handles);
    if (left) {
        fprintf(stderr, "mock cuFile: driver closed with %d handle(s) registered\n", left);
        return (mock_status){ST_INTERNAL_ERROR, 0};
    }
    return (mock_status){0, 0};
}

MOCK_API mock_status cuFileHandleRegister(void **fh, mock_descr *d)
{
    int err = env_status("FY_MOCK_CUFILE_REGISTER_ERROR");
    if (!atomic_load(&g_open))
        return (mock_status){ST_DRIVER_NOT_INITIALIZED, 0};
    if (err)
        return (mock_status){err, 0};
    if (!fh || !d || d->type != 1 || fcntl(d->handle.fd, F_GETFL) < 0)
        return (mock_status){ST_INVALID_VALUE, 0};
    mock_handle *h = malloc(sizeof(*h));
    if (!h)
        return (mock_status){ST_INTERNAL_ERROR, 0};
    *h = (mock_handle){MOCK_MAGIC, d->handle.fd};
    atomic_fetch_add(&g_handles, 1);
    *fh = h;
    return (mock_status){0, 0};
}

MOCK_API void cuFileHandleDeregister(void *fh)
{
    mock_handle *h = fh;
    if (!h || h->magic != MOCK_MAGIC) {
        fprintf(stderr, "mock cuFile: deregister of an unknown handle %p\n", fh);
        return;
    }
    h->magic = 0;
    atomic_fetch_sub(&g_handles, 1);
    free(h);
}

static ssize_t mock_io(void *fh, void *buf, size_t size, off_t off, off_t buf_off, bool write)
{
    mock_handle *h = fh;
    if (!atomic_load(&g_open))
        return -ST_DRIVER_NOT_INITIALIZED;
    if (!h || h->magic != MOCK_MAGIC)
        return -ST_HANDLE_NOT_REGISTERED;
    if (!buf || buf_off < 0 || off < 0)
        return -ST_INVALID_VALUE;
    char *p = (char *)buf + buf_off;
    return write ? pwrite(h->fd, p, size, off) : pread(h->fd, p, size, off);
}

MOCK_API ssize_t cuFileRead(void *fh, void *buf, size_t size, off_t off, off_t buf_off)
{
    return mock_io(fh, buf, size, off, buf_off, false);
}

MOCK_API ssize_t cuFileWrite(void *fh, const void *buf, size_t size, off_t off, off_t buf_off)
{
    return mock_io(fh, (void *)(uintptr_t)buf, size, off, buf_off, true);
}

/* ---- the batch API ---- */

typedef struct mock_bio {
    int mode;
    union {
        struct {
            void *base;
            off_t file_offset;
            off_t base_offset;
            size_t size;
        } batch;
    } u;
    void *fh;
    int opcode;
    void *cookie;
} mock_bio;

typedef struct mock_event {
    void *cookie;
    int status;
    size_t ret;
} mock_event;

typedef struct mock_batch {
    unsigned cap, n, reaped;
    bool canceled;
    mock_bio *ios;
} mock_batch;

MOCK_API mock_status cuFileBatchIOSetUp(void **out, unsigned nr)
{
    if (!atomic_load(&g_open))
        return (mock_status){ST_DRIVER_NOT_INITIALIZED, 0};
    if (env_status("FY_MOCK_CUFILE_NO_BATCH"))
        return (mock_status){ST_PLATFORM_NOT_SUPPORTED, 0};
    mock_batch *b = calloc(1, sizeof(*b));
    if (!out || !nr || !b || !(b->ios = calloc(nr, sizeof(*b->ios)))) {
        free(b);
        return (mock_status){ST_INVALID_VALUE, 0};
    }
    b->cap = nr;
    *out = b;
    return (mock_status){0, 0};
}

MOCK_API mock_status cuFileBatchIOSubmit(void *h, unsigned nr, mock_bio *ios, unsigned flags)
{
    mock_batch *b = h;
    (void)flags;
    if (!b || !ios || !nr || nr > b->cap)
        return (mock_status){ST_INVALID_VALUE, 0};
    if (b->reaped != b->n)
        return (mock_status){ST_BATCH_FULL, 0};
    for (unsigned i = 0; i < nr; i++)
        b->ios[i] = ios[i];
    b->n = nr;
    b->reaped = 0;
    b->canceled = false;
    return (mock_status){0, 0};
}

/* Runs one I/O now, as cuFile's compatibility mode would have. */
static mock_event mock_run(mock_batch *b, const mock_bio *io)
{
    mock_event ev = {.cookie = io->cookie, .status = B_COMPLETE};
    if (b->canceled)
        return (mock_event){io->cookie, B_CANCELED, 0};
    if (io->mode != 1 || (io->opcode != 0 && io->opcode != 1))
        return (mock_event){io->cookie, B_INVALID, 0};
    ssize_t r = mock_io(io->fh, io->u.batch.base, io->u.batch.size, io->u.batch.file_offset,
                        io->u.batch.base_offset, io->opcode == 1);
    if (r < 0)
        ev.status = B_FAILED, r = r == -1 ? -errno : r;
    ev.ret = (size_t)r;
    return ev;
}

MOCK_API mock_status cuFileBatchIOGetStatus(void *h, unsigned min_nr, unsigned *nr,
                                            mock_event *events, struct timespec *timeout)
{
    mock_batch *b = h;
    (void)min_nr, (void)timeout;
    if (!b || !nr || !events)
        return (mock_status){ST_INVALID_VALUE, 0};
    unsigned want = *nr, got = 0;
    while (got < want && b->reaped < b->n)
        events[got++] = mock_run(b, &b->ios[b->reaped++]);
    *nr = got;
    return (mock_status){0, 0};
}

MOCK_API mock_status cuFileBatchIOCancel(void *h)
{
    mock_batch *b = h;
    if (!b)
        return (mock_status){ST_INVALID_VALUE, 0};
    b->canceled = true;
    return (mock_status){0, 0};
}

MOCK_API void cuFileBatchIODestroy(void *h)
{
    mock_batch *b = h;
    if (b && b->reaped != b->n)
        fprintf(stderr, "mock cuFile: batch destroyed with %u I/O(s) not reaped\n",
                b->n - b->reaped);
    if (b)
        free(b->ios);
    free(b);
}
