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
 * Environment: FY_MOCK_CUFILE_OPEN_ERROR (a status for cuFileDriverOpen),
 * FY_MOCK_CUFILE_REGISTER_ERROR (a status for cuFileHandleRegister, e.g.
 * 5027 as on a host whose volume lacks udev attributes). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#define MOCK_API __attribute__((visibility("default")))

#define ST_HANDLE_NOT_REGISTERED  5027
#define ST_INVALID_VALUE          5022
#define ST_DRIVER_NOT_INITIALIZED 5001
#define ST_INTERNAL_ERROR         5030
#define MOCK_MAGIC                0x6d636668u

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
