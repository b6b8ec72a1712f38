/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers that Python cannot do without ctypes: page-aligned raw
 * buffers and views of them (tests, benchmarks, nixl._utils), and reading a
 * DLPack capsule (tensors of any framework that exports __dlpack__). */
#include "fy_py.h"

#include <stdlib.h>
#include <string.h>

static PyObject *fyp_alloc(PyObject *mod, PyObject *arg)
{
    (void)mod;
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n <= 0) {
        PyErr_SetString(PyExc_ValueError, "size must be positive");
        return NULL;
    }
    size_t rounded = ((size_t)n + 4095) & ~(size_t)4095; /* aligned_alloc wants a multiple */
    void *p = aligned_alloc(4096, rounded);
    if (!p)
        return PyErr_NoMemory();
    memset(p, 0, rounded);
    return PyLong_FromVoidPtr(p);
}

static PyObject *fyp_free(PyObject *mod, PyObject *arg)
{
    (void)mod;
    void *p = PyLong_AsVoidPtr(arg);
    if (!p && PyErr_Occurred())
        return NULL;
    free(p);
    Py_RETURN_NONE;
}

/* Parses (addr, size) with a positive size. */
static int fyp_addr_size(PyObject *args, const char *fmt, void **addr, Py_ssize_t *size, int *extra)
{
    PyObject *a;
    if (extra ? !PyArg_ParseTuple(args, fmt, &a, size, extra)
              : !PyArg_ParseTuple(args, fmt, &a, size))
        return -1;
    *addr = PyLong_AsVoidPtr(a);
    if (PyErr_Occurred())
        return -1;
    if (!*addr || *size < 0) {
        PyErr_SetString(PyExc_ValueError, "NULL address or negative size");
        return -1;
    }
    return 0;
}

static PyObject *fyp_fill(PyObject *mod, PyObject *args)
{
    (void)mod;
    void *addr;
    Py_ssize_t size;
    int byte;
    if (fyp_addr_size(args, "Oni:fill", &addr, &size, &byte) < 0)
        return NULL;
    memset(addr, byte, (size_t)size);
    Py_RETURN_NONE;
}

static PyObject *fyp_compare(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *a, *b;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "OOn:compare", &a, &b, &size))
        return NULL;
    void *pa = PyLong_AsVoidPtr(a), *pb = PyLong_AsVoidPtr(b);
    if (PyErr_Occurred())
        return NULL;
    if (!pa || !pb || size < 0) {
        PyErr_SetString(PyExc_ValueError, "NULL address or negative size");
        return NULL;
    }
    return PyBool_FromLong(memcmp(pa, pb, (size_t)size) == 0);
}

/* A writable memoryview of raw memory (the caller keeps it alive). */
static PyObject *fyp_memview(PyObject *mod, PyObject *args)
{
    (void)mod;
    void *addr;
    Py_ssize_t size;
    if (fyp_addr_size(args, "On:memview", &addr, &size, NULL) < 0)
        return NULL;
    return PyMemoryView_FromMemory(addr, size, PyBUF_WRITE);
}

/* ---- DLPack (the public ABI of dlpack.h, declared here) ---- */

typedef struct {
    int32_t device_type;
    int32_t device_id;
} fyp_dl_device;

typedef struct {
    uint8_t code, bits;
    uint16_t lanes;
} fyp_dl_dtype;

typedef struct {
    void *data;
    fyp_dl_device device;
    int32_t ndim;
    fyp_dl_dtype dtype;
    int64_t *shape;
    int64_t *strides;
    uint64_t byte_offset;
} fyp_dl_tensor;

typedef struct fyp_dl_managed {
    fyp_dl_tensor dl_tensor;
    void *manager_ctx;
    void (*deleter)(struct fyp_dl_managed *self);
} fyp_dl_managed;

/* Compact row-major (strides NULL or matching the shape)? */
static bool fyp_dl_compact(const fyp_dl_tensor *t)
{
    if (!t->strides)
        return true;
    int64_t expect = 1;
    for (int32_t i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->strides[i] != expect)
            return false;
        expect *= t->shape[i];
    }
    return true;
}

static PyObject *fyp_dl_describe(const fyp_dl_tensor *t)
{
    if (!fyp_dl_compact(t)) {
        PyErr_SetString(PyExc_ValueError, "DLPack tensor is not contiguous");
        return NULL;
    }
    uint64_t n = 1;
    for (int32_t i = 0; i < t->ndim; i++)
        n *= (uint64_t)t->shape[i];
    uint64_t bytes = n * ((uint64_t)t->dtype.bits * t->dtype.lanes / 8);
    uint64_t addr = (uint64_t)(uintptr_t)t->data + t->byte_offset;
    return Py_BuildValue("(KKii)", (unsigned long long)addr, (unsigned long long)bytes,
                         (int)t->device.device_type, (int)t->device.device_id);
}

/* dlpack_info(obj) -> (addr, nbytes, device_type, device_id). We consume the
 * capsule as DLPack says (rename it "used_dltensor", call the deleter): the
 * memory stays owned by obj, which the caller holds. */
static PyObject *fyp_dlpack_info(PyObject *mod, PyObject *obj)
{
    (void)mod;
    PyObject *cap = PyObject_CallMethod(obj, "__dlpack__", NULL);
    if (!cap)
        return NULL;
    fyp_dl_managed *m = PyCapsule_GetPointer(cap, "dltensor");
    PyObject *out = m ? fyp_dl_describe(&m->dl_tensor) : NULL;
    if (m && PyCapsule_SetName(cap, "used_dltensor") == 0 && m->deleter)
        m->deleter(m);
    Py_DECREF(cap);
    return out;
}

PyMethodDef fyp_util_methods[] = {
    {"aligned_alloc", fyp_alloc, METH_O,
     "aligned_alloc(size) -> address of zeroed, page-aligned memory (free with aligned_free)"},
    {"aligned_free", fyp_free, METH_O, "aligned_free(address)"},
    {"fill", fyp_fill, METH_VARARGS, "fill(address, size, byte)"},
    {"compare", fyp_compare, METH_VARARGS, "compare(addr_a, addr_b, size) -> bool (equal)"},
    {"memview", fyp_memview, METH_VARARGS,
     "memview(address, size) -> writable memoryview over raw memory"},
    {"dlpack_info", fyp_dlpack_info, METH_O,
     "dlpack_info(obj) -> (addr, nbytes, device_type, device_id) of obj.__dlpack__()"},
    {NULL, NULL, 0, NULL},
};
