/* SPDX-License-Identifier: Apache-2.0 */
/* Argument conversion: names, messages, memory types, operations, backend
 * selections and index arrays. Index arrays are the hot path of
 * make_prepped_xfer: an int32/uint32 buffer (numpy) is handed to the library
 * in place; a list is read once in C, never through Python code. */
#include "fy_py.h"

#include <string.h>

PyObject *fyp_str(const char *s)
{
    if (!s)
        s = "";
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "surrogateescape");
}

/* str -> its cached UTF-8; bytes -> its buffer. Both live as long as obj,
 * which the caller's arguments keep alive for the whole call. */
static int fyp_name_from(PyObject *obj, fyp_name *out)
{
    const char *s;
    Py_ssize_t len;
    if (PyUnicode_Check(obj)) {
        s = PyUnicode_AsUTF8AndSize(obj, &len);
        if (!s)
            return 0;
    } else if (PyBytes_Check(obj)) {
        s = PyBytes_AS_STRING(obj);
        len = PyBytes_GET_SIZE(obj);
    } else {
        PyErr_Format(PyExc_TypeError, "agent name must be str or bytes, not %.80s",
                     Py_TYPE(obj)->tp_name);
        return 0;
    }
    if ((size_t)len != strlen(s)) {
        PyErr_SetString(PyExc_ValueError, "agent name contains a NUL byte");
        return 0;
    }
    out->s = s;
    return 1;
}

int fyp_conv_name(PyObject *obj, void *out)
{
    return fyp_name_from(obj, out);
}

int fyp_conv_name_opt(PyObject *obj, void *out)
{
    fyp_name *n = out;
    n->s = NULL;
    if (obj == Py_None)
        return 1;
    if (!fyp_name_from(obj, n))
        return 0;
    if (!*n->s)
        n->s = NULL;
    return 1;
}

int fyp_bytes_get(PyObject *obj, fyp_bytes *out, bool none_ok)
{
    memset(out, 0, sizeof(*out));
    if (obj == Py_None && none_ok)
        return 1;
    if (PyUnicode_Check(obj)) {
        Py_ssize_t len;
        out->buf = PyUnicode_AsUTF8AndSize(obj, &len);
        out->len = (size_t)len;
        return out->buf != NULL;
    }
    if (PyObject_GetBuffer(obj, &out->view, PyBUF_SIMPLE) < 0)
        return 0;
    out->held = true;
    out->buf = out->view.buf;
    out->len = (size_t)out->view.len;
    return 1;
}

void fyp_bytes_release(fyp_bytes *b)
{
    if (b->held)
        PyBuffer_Release(&b->view);
    b->held = false;
}

/* An int (ferry_mem_type value, IntEnum members included) or a name that
 * ferry_mem_type_parse knows ("DRAM", "cpu", "cuda", ...). */
int fyp_mem_type(PyObject *obj, ferry_mem_type *out)
{
    if (PyLong_Check(obj)) {
        long v = PyLong_AsLong(obj);
        if (v == -1 && PyErr_Occurred())
            return -1;
        if (v < 0 || v >= FERRY_MEM_TYPE_COUNT) {
            PyErr_Format(PyExc_ValueError, "unknown memory type %ld", v);
            return -1;
        }
        *out = (ferry_mem_type)v;
        return 0;
    }
    if (PyUnicode_Check(obj)) {
        const char *s = PyUnicode_AsUTF8(obj);
        if (!s)
            return -1;
        if (ferry_mem_type_parse(s, out) != FERRY_OK) {
            PyErr_Format(PyExc_KeyError, "%R", obj);
            return -1;
        }
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "memory type must be int or str, not %.80s",
                 Py_TYPE(obj)->tp_name);
    return -1;
}

int fyp_conv_mem_type(PyObject *obj, void *out)
{
    return fyp_mem_type(obj, out) == 0;
}

/* FERRY_OP_READ/WRITE as int, or "READ"/"WRITE". */
int fyp_conv_op(PyObject *obj, void *out)
{
    ferry_xfer_op *op = out;
    if (PyUnicode_Check(obj)) {
        const char *s = PyUnicode_AsUTF8(obj);
        if (!s)
            return 0;
        if (!strcmp(s, "READ")) {
            *op = FERRY_OP_READ;
            return 1;
        }
        if (!strcmp(s, "WRITE")) {
            *op = FERRY_OP_WRITE;
            return 1;
        }
        PyErr_Format(PyExc_KeyError, "%R", obj);
        return 0;
    }
    long v = PyLong_AsLong(obj);
    if (v == -1 && PyErr_Occurred())
        return 0;
    if (v != FERRY_OP_READ && v != FERRY_OP_WRITE) {
        PyErr_Format(PyExc_ValueError, "unknown operation %ld", v);
        return 0;
    }
    *op = (ferry_xfer_op)v;
    return 1;
}

/* One element of a backends list: a Backend of this agent or a plugin name. */
static int fyp_backend_item(FyAgent *agent, PyObject *item, ferry_backend **out)
{
    if (PyObject_TypeCheck(item, &FyBackend_Type)) {
        FyBackend *b = (FyBackend *)item;
        if (b->owner != agent) {
            PyErr_SetString(PyExc_ValueError, "backend belongs to another agent");
            return -1;
        }
        *out = b->backend;
        return 0;
    }
    fyp_name name;
    if (!fyp_name_from(item, &name))
        return -1;
    ferry_status rc = ferry_backend_find(agent->agent, name.s, out);
    if (rc != FERRY_OK) {
        fyp_raise(rc, name.s);
        return -1;
    }
    return 0;
}

int fyp_backends_get(FyAgent *agent, PyObject *obj, fyp_backends *out)
{
    out->selp = NULL;
    if (!obj || obj == Py_None)
        return 0;
    PyObject *seq = PySequence_Fast(obj, "backends must be a sequence");
    if (!seq)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > FYP_MAX_BACKENDS) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "too many backends");
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (fyp_backend_item(agent, PySequence_Fast_GET_ITEM(seq, i), &out->list[i]) < 0) {
            Py_DECREF(seq);
            return -1;
        }
    }
    Py_DECREF(seq);
    if (n == 0)
        return 0;
    ferry_backend_sel_init(&out->sel);
    out->sel.backends = out->list;
    out->sel.num_backends = (size_t)n;
    out->selp = &out->sel;
    return 0;
}

/* ---- index arrays ---- */

static uint32_t *fyp_indices_storage(fyp_indices *ix, size_t n)
{
    if (n <= sizeof(ix->small) / sizeof(ix->small[0]))
        return ix->small;
    ix->owned = PyMem_Malloc(n * sizeof(uint32_t));
    if (!ix->owned)
        PyErr_NoMemory();
    return ix->owned;
}

static int fyp_index_range(long long v)
{
    if (v < 0 || v > (long long)UINT32_MAX) {
        PyErr_Format(PyExc_IndexError, "descriptor index %lld out of range", v);
        return -1;
    }
    return 0;
}

char fyp_fmt_char(const Py_buffer *v)
{
    size_t n = v->format ? strlen(v->format) : 0;
    return n ? v->format[n - 1] : 'B'; /* no format: unsigned bytes (PEP 3118) */
}

/* Reads the integer at p, an element of v of any integer format: the value
 * as uint64 and whether it is negative. memcpy: p may be unaligned. */
int fyp_buf_elem(const Py_buffer *v, const char *p, uint64_t *out, bool *neg)
{
    char f = fyp_fmt_char(v);
    Py_ssize_t size = v->itemsize;
    if (!f || !strchr("bBhHiIlLqQnN", f) || !(size == 1 || size == 2 || size == 4 || size == 8)) {
        PyErr_Format(PyExc_TypeError, "array must hold integers, not format '%s'",
                     v->format ? v->format : "?");
        return -1;
    }
    union {
        int8_t i8;
        uint8_t u8;
        int16_t i16;
        uint16_t u16;
        int32_t i32;
        uint32_t u32;
        int64_t i64;
        uint64_t u64;
    } x;
    memcpy(&x, p, (size_t)size);
    bool is_signed = strchr("bhilqn", f) != NULL;
    int64_t s = size == 1 ? x.i8 : size == 2 ? x.i16 : size == 4 ? x.i32 : x.i64;
    uint64_t u = size == 1 ? x.u8 : size == 2 ? x.u16 : size == 4 ? x.u32 : x.u64;
    *neg = is_signed && s < 0;
    *out = is_signed ? (uint64_t)s : u;
    return 0;
}

static bool fyp_aligned(const Py_buffer *v, size_t align)
{
    return (uintptr_t)v->buf % align == 0;
}

static bool fyp_is_u32_format(const Py_buffer *v)
{
    char f = fyp_fmt_char(v);
    return v->itemsize == 4 && (f == 'i' || f == 'I' || f == 'l' || f == 'L') && fyp_aligned(v, 4);
}

/* Contiguous 64-bit integers (numpy's default int64, uint64): handed to
 * the library as they are (ferry_xfer_make64 narrows and checks them in
 * the pass that copies them). */
static bool fyp_is_wide_format(const Py_buffer *v)
{
    char f = fyp_fmt_char(v);
    return v->itemsize == 8 && f && strchr("lLqQnN", f) && fyp_aligned(v, 8);
}

/* Entries one by one, any integer format and stride, into 32 bits. */
static int fyp_indices_convert(fyp_indices *ix)
{
    uint32_t *dst = fyp_indices_storage(ix, ix->n);
    if (!dst)
        return -1;
    Py_ssize_t stride = ix->view.strides ? ix->view.strides[0] : ix->view.itemsize;
    for (size_t i = 0; i < ix->n; i++) {
        uint64_t v;
        bool neg;
        const char *p = (const char *)ix->view.buf + (Py_ssize_t)i * stride;
        if (fyp_buf_elem(&ix->view, p, &v, &neg) < 0 ||
            fyp_index_range(neg              ? -1
                            : v > UINT32_MAX ? (long long)UINT32_MAX + 1
                                             : (long long)v) < 0)
            return -1;
        dst[i] = (uint32_t)v;
    }
    ix->idx = dst;
    ix->wide = false;
    return 0;
}

/* A buffer (numpy array, array.array, memoryview): in place when it is a
 * contiguous 32-bit integer vector, else converted. int32 values are passed
 * as they are: a negative one reads as a huge index, which the library
 * refuses (INVALID_PARAM), as NIXL does. */
static int fyp_indices_buffer(PyObject *obj, fyp_indices *ix)
{
    if (PyObject_GetBuffer(obj, &ix->view, PyBUF_STRIDES | PyBUF_FORMAT) < 0)
        return -1;
    ix->held = true;
    if (ix->view.ndim != 1) {
        PyErr_SetString(PyExc_ValueError, "index array must be one-dimensional");
        return -1;
    }
    ix->n = (size_t)ix->view.shape[0];
    bool contiguous = !ix->view.strides || ix->view.strides[0] == ix->view.itemsize;
    if (contiguous && (fyp_is_u32_format(&ix->view) || fyp_is_wide_format(&ix->view))) {
        ix->idx = ix->view.buf;
        ix->wide = ix->view.itemsize == 8;
        return 0;
    }
    return fyp_indices_convert(ix);
}

/* Any sequence of ints (lists from Python code, ranges, tuples). */
static int fyp_indices_seq(PyObject *obj, fyp_indices *ix)
{
    PyObject *seq = PySequence_Fast(obj, "indices must be a sequence of ints or an array");
    if (!seq)
        return -1;
    ix->n = (size_t)PySequence_Fast_GET_SIZE(seq);
    uint32_t *dst = fyp_indices_storage(ix, ix->n);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (size_t i = 0; dst && i < ix->n; i++) {
        long long v = PyLong_AsLongLong(items[i]);
        if ((v == -1 && PyErr_Occurred()) || fyp_index_range(v) < 0) {
            dst = NULL;
            break;
        }
        dst[i] = (uint32_t)v;
    }
    Py_DECREF(seq);
    ix->idx = dst;
    return dst || ix->n == 0 ? 0 : -1;
}

int fyp_indices_get(PyObject *obj, fyp_indices *ix)
{
    ix->idx = NULL;
    ix->wide = false;
    ix->n = 0;
    ix->held = false;
    ix->owned = NULL;
    if (PyList_CheckExact(obj) || PyTuple_CheckExact(obj))
        return fyp_indices_seq(obj, ix);
    if (PyObject_CheckBuffer(obj))
        return fyp_indices_buffer(obj, ix);
    return fyp_indices_seq(obj, ix);
}

int fyp_indices_narrow(fyp_indices *ix)
{
    return ix->wide ? fyp_indices_convert(ix) : 0;
}

void fyp_indices_release(fyp_indices *ix)
{
    if (ix->held)
        PyBuffer_Release(&ix->view);
    PyMem_Free(ix->owned);
    ix->held = false;
    ix->owned = NULL;
}

/* ---- METH_FASTCALL argument matching (the hot path avoids building
 * tuples and dicts for every call) ---- */

static int fyp_kw_slot(const char *const *names, PyObject *key)
{
    for (int i = 0; names[i]; i++)
        if (PyUnicode_CompareWithASCIIString(key, names[i]) == 0)
            return i;
    return -1;
}

int fyp_args(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
             const char *const *names, int nreq, PyObject **out)
{
    int nnames = 0;
    while (names[nnames])
        out[nnames++] = NULL;
    if (nargs > nnames) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %d arguments (%zd given)", fname, nnames,
                     nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        out[i] = args[i];
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        int slot = fyp_kw_slot(names, key);
        if (slot < 0 || out[slot]) {
            PyErr_Format(PyExc_TypeError, "%s() got %s keyword argument '%U'", fname,
                         slot < 0 ? "an unexpected" : "a repeated", key);
            return -1;
        }
        out[slot] = args[nargs + k];
    }
    for (int i = 0; i < nreq; i++) {
        if (!out[i]) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fname, names[i]);
            return -1;
        }
    }
    return 0;
}
