/* SPDX-License-Identifier: Apache-2.0 */
/* libcufile opened at run time, as the CUDA driver is (src/gpu): one build
 * serves hosts with and without GPUDirect Storage, and the build needs no
 * CUDA toolkit. The few types and entry points used are declared in
 * gds_internal.h from cuFile's ABI.
 *
 * cuFileDriverOpen reads cuFile's configuration: the file named by
 * CUFILE_ENV_PATH_JSON, else /etc/cufile.json. Without the nvidia-fs
 * kernel driver, cuFile works only in compatibility mode (its own POSIX
 * I/O through host bounce buffers), which that file must allow
 * (plugins/gds/cufile.json, README.md). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gds_internal.h"

typedef struct fy_cufile_sym {
    const char *name, *alt;
    size_t offset;
    bool optional; /* the batch API: older libraries lack it */
} fy_cufile_sym;

static const fy_cufile_sym fy_cufile_syms[] = {
    {"cuFileDriverOpen", NULL, offsetof(fy_cufile, DriverOpen), false},
    {"cuFileDriverClose_v2", "cuFileDriverClose", offsetof(fy_cufile, DriverClose), false},
    {"cuFileHandleRegister", NULL, offsetof(fy_cufile, HandleRegister), false},
    {"cuFileHandleDeregister", NULL, offsetof(fy_cufile, HandleDeregister), false},
    {"cuFileRead", NULL, offsetof(fy_cufile, Read), false},
    {"cuFileWrite", NULL, offsetof(fy_cufile, Write), false},
    {"cuFileBatchIOSetUp", NULL, offsetof(fy_cufile, BatchIOSetUp), true},
    {"cuFileBatchIOSubmit", NULL, offsetof(fy_cufile, BatchIOSubmit), true},
    {"cuFileBatchIOGetStatus", NULL, offsetof(fy_cufile, BatchIOGetStatus), true},
    {"cuFileBatchIOCancel", NULL, offsetof(fy_cufile, BatchIOCancel), true},
    {"cuFileBatchIODestroy", NULL, offsetof(fy_cufile, BatchIODestroy), true},
};

/* The names of the statuses a user may meet when setting cuFile up. */
static const struct {
    int err;
    const char *name;
} fy_cufile_names[] = {
    {5001, "CU_FILE_DRIVER_NOT_INITIALIZED"},
    {5002, "CU_FILE_DRIVER_INVALID_PROPS"},
    {5004, "CU_FILE_DRIVER_VERSION_MISMATCH"},
    {5007, "CU_FILE_PLATFORM_NOT_SUPPORTED"},
    {5008, "CU_FILE_IO_NOT_SUPPORTED"},
    {5009, "CU_FILE_DEVICE_NOT_SUPPORTED"},
    {5010, "CU_FILE_NVFS_DRIVER_ERROR"},
    {5011, "CU_FILE_CUDA_DRIVER_ERROR"},
    {5018, "CU_FILE_INVALID_FILE_TYPE"},
    {5019, "CU_FILE_INVALID_FILE_OPEN_FLAG"},
    {5020, "CU_FILE_DIO_NOT_SET"},
    {5022, "CU_FILE_INVALID_VALUE"},
    {5025, "CU_FILE_PERMISSION_DENIED"},
    {5027, "CU_FILE_HANDLE_NOT_REGISTERED"},
    {5029, "CU_FILE_DEVICE_NOT_FOUND"},
    {5030, "CU_FILE_INTERNAL_ERROR"},
    {5033, "CU_FILE_NVFS_SETUP_ERROR"},
    {5034, "CU_FILE_IO_DISABLED"},
};

const char *fy_cufile_errname(int err, char *buf, size_t cap)
{
    for (size_t i = 0; i < sizeof(fy_cufile_names) / sizeof(fy_cufile_names[0]); i++)
        if (fy_cufile_names[i].err == err) {
            snprintf(buf, cap, "%s (%d)", fy_cufile_names[i].name, err);
            return buf;
        }
    snprintf(buf, cap, "cuFile status %d", err);
    return buf;
}

static void *fy_cufile_dlopen(char *why, size_t why_len)
{
    const char *env = getenv("FERRY_CUFILE_LIB");
    const char *names[] = {env && *env ? env : "libcufile.so.0",
                           env && *env ? NULL : "libcufile.so"};
    for (size_t i = 0; i < 2 && names[i]; i++) {
        void *lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (lib)
            return lib;
        const char *err = dlerror();
        snprintf(why, why_len, "no cuFile library: %s", err ? err : names[i]);
    }
    return NULL;
}

/* dlsym into each slot (memcpy: ISO C has no cast from void * to a
 * function pointer). */
static bool fy_cufile_bind(void *lib, fy_cufile *cf, char *why, size_t why_len)
{
    for (size_t i = 0; i < sizeof(fy_cufile_syms) / sizeof(fy_cufile_syms[0]); i++) {
        const fy_cufile_sym *s = &fy_cufile_syms[i];
        void *p = dlsym(lib, s->name);
        if (!p && s->alt)
            p = dlsym(lib, s->alt);
        if (!p && !s->optional) {
            snprintf(why, why_len, "the cuFile library has no %s", s->name);
            return false;
        }
        if (p)
            memcpy((char *)cf + s->offset, &p, sizeof(p));
    }
    return true;
}

ferry_status fy_cufile_open(fy_cufile *cf, void **lib, char *why, size_t why_len)
{
    char name[64];
    *lib = fy_cufile_dlopen(why, why_len);
    if (!*lib)
        return FERRY_ERR_NOT_SUPPORTED;
    if (fy_cufile_bind(*lib, cf, why, why_len)) {
        fy_cufile_status st = cf->DriverOpen();
        if (st.err == FY_CU_FILE_SUCCESS)
            return FERRY_OK;
        snprintf(why, why_len, "cuFileDriverOpen: %s (CUresult %d)",
                 fy_cufile_errname(st.err, name, sizeof(name)), st.cu_err);
    }
    dlclose(*lib);
    *lib = NULL;
    return FERRY_ERR_NOT_SUPPORTED;
}

void fy_cufile_close(fy_cufile *cf, void *lib)
{
    cf->DriverClose();
    dlclose(lib);
}
