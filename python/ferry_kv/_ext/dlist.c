/* SPDX-License-Identifier: Apache-2.0 */
/* ferry.DList: a descriptor list (ferry_dlist). Built from
 *  - nothing or a capacity (int),
 *  - a sequence of (addr, len, dev_id[, meta]) tuples,
 *  - an N x 3 integer array (numpy or any buffer): a C-contiguous 64-bit
 *    array is appended in one call, since ferry_desc has that very layout;
 *    other integer layouts are read element by element in C.
 * Python subclasses (ferry.nixl's nixlXferDList / nixlRegDList) are kept
 * through copies, deserialisation and pickling. */
#include "fy_py.h"

#include <string.h>

static PyObject *fyp_dlist_wrap(PyTypeObject *cls, ferry_dlist *list)
{
    FyDList *self = (FyDList *)cls->tp_alloc(cls, 0);
    if (!self) {
        ferry_dlist_destroy(list);
        return NULL;
    }
    self->list = list;
    return (PyObject *)self;
}

int fyp_is_dlist(PyObject *obj)
{
    return PyObject_TypeCheck(obj, &FyDList_Type);
}

ferry_dlist *fyp_dlist_of(PyObject *obj, const char *what)
{
    if (!fyp_is_dlist(obj) || !((FyDList *)obj)->list) {
        PyErr_Format(PyExc_TypeError, "%s must be a ferry.DList, not %.80s", what,
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    return ((FyDList *)obj)->list;
}

/* ---- building ---- */

static int fyp_u64(PyObject *obj, uint64_t *out, const char *what)
{
    PyObject *idx = PyNumber_Index(obj);
    if (!idx)
        return -1;
    unsigned long long v = PyLong_AsUnsignedLongLong(idx);
    Py_DECREF(idx);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Format(PyExc_ValueError, "descriptor %s must be a non-negative 64-bit int", what);
        return -1;
    }
    *out = v;
    return 0;
}

/* One (addr, len, dev_id[, meta]) tuple. */
static int fyp_add_tuple(ferry_dlist *list, PyObject *item)
{
    if (!PyTuple_Check(item) && !PyList_Check(item)) {
        PyErr_Format(PyExc_TypeError, "descriptor must be a tuple, not %.80s",
                     Py_TYPE(item)->tp_name);
        return -1;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(item);
    if (n != 3 && n != 4) {
        PyErr_SetString(PyExc_ValueError, "descriptor must be (addr, len, dev_id[, meta])");
        return -1;
    }
    PyObject **f = PySequence_Fast_ITEMS(item);
    uint64_t addr, len, dev;
    if (fyp_u64(f[0], &addr, "addr") < 0 || fyp_u64(f[1], &len, "len") < 0 ||
        fyp_u64(f[2], &dev, "dev_id") < 0)
        return -1;
    fyp_bytes meta;
    if (!fyp_bytes_get(n == 4 ? f[3] : Py_None, &meta, true))
        return -1;
    ferry_status rc = ferry_dlist_add_meta(list, addr, len, dev, meta.buf, meta.len);
    fyp_bytes_release(&meta);
    return rc == FERRY_OK ? 0 : (fyp_raise(rc, "descriptor"), -1);
}

static int fyp_add_seq(ferry_dlist *list, PyObject *descs)
{
    PyObject *seq = PySequence_Fast(descs, "descriptors must be a sequence or an N x 3 array");
    if (!seq)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (fyp_add_tuple(list, PySequence_Fast_GET_ITEM(seq, i)) < 0) {
            Py_DECREF(seq);
            return -1;
        }
    }
    Py_DECREF(seq);
    return 0;
}

/* An N x 3 array of another integer layout: element by element. */
static int fyp_add_strided(ferry_dlist *list, const Py_buffer *v)
{
    for (Py_ssize_t i = 0; i < v->shape[0]; i++) {
        uint64_t d[3];
        for (int j = 0; j < 3; j++) {
            const char *p = (const char *)v->buf + i * v->strides[0] + j * v->strides[1];
            bool neg;
            if (fyp_buf_elem(v, p, &d[j], &neg) < 0)
                return -1;
            if (neg) {
                PyErr_SetString(PyExc_ValueError, "negative value in descriptor array");
                return -1;
            }
        }
        ferry_status rc = ferry_dlist_add(list, d[0], d[1], d[2]);
        if (rc != FERRY_OK)
            return fyp_raise(rc, "descriptor"), -1;
    }
    return 0;
}

/* C-contiguous, aligned 64-bit integers: exactly an array of ferry_desc. */
static bool fyp_is_int64_layout(const Py_buffer *v)
{
    char f = fyp_fmt_char(v);
    return v->itemsize == 8 && f && strchr("lLqQnN", f) && PyBuffer_IsContiguous(v, 'C') &&
           (uintptr_t)v->buf % _Alignof(ferry_desc) == 0;
}

static int fyp_add_array(ferry_dlist *list, PyObject *arr)
{
    Py_buffer v;
    if (PyObject_GetBuffer(arr, &v, PyBUF_STRIDES | PyBUF_FORMAT) < 0)
        return -1;
    int rc = -1;
    if (v.ndim != 2 || v.shape[1] != 3) {
        PyErr_SetString(PyExc_ValueError, "descriptor array must have shape (N, 3)");
    } else if (fyp_is_int64_layout(&v)) {
        ferry_status st = ferry_dlist_add_array(list, v.buf, (size_t)v.shape[0]);
        rc = st == FERRY_OK ? 0 : (fyp_raise(st, "descriptor array"), -1);
    } else {
        rc = fyp_add_strided(list, &v);
    }
    PyBuffer_Release(&v);
    return rc;
}

static bool fyp_is_array(PyObject *obj)
{
    return PyObject_CheckBuffer(obj) && !PyBytes_Check(obj) && !PyByteArray_Check(obj) &&
           !PyUnicode_Check(obj);
}

static int fyp_dlist_fill(ferry_dlist *list, PyObject *descs)
{
    if (!descs || descs == Py_None || PyLong_Check(descs))
        return 0;
    if (fyp_is_array(descs))
        return fyp_add_array(list, descs);
    return fyp_add_seq(list, descs);
}

static int DList_init(FyDList *self, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"mem_type", "descs", NULL};
    ferry_mem_type type;
    PyObject *descs = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&|O:DList", kw, fyp_conv_mem_type, &type,
                                     &descs))
        return -1;
    size_t cap = 0;
    if (descs && PyLong_Check(descs)) {
        Py_ssize_t c = PyLong_AsSsize_t(descs);
        if (c < 0)
            return PyErr_Occurred() ? -1 : (PyErr_SetString(PyExc_ValueError, "negative size"), -1);
        cap = (size_t)c;
    }
    ferry_dlist *list;
    ferry_status rc = ferry_dlist_create(type, cap, &list);
    if (rc != FERRY_OK)
        return fyp_raise(rc, NULL), -1;
    if (fyp_dlist_fill(list, descs) < 0) {
        ferry_dlist_destroy(list);
        return -1;
    }
    ferry_dlist_destroy(self->list); /* __init__ called again */
    self->list = list;
    return 0;
}

static void DList_dealloc(FyDList *self)
{
    ferry_dlist_destroy(self->list);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ---- reading ---- */

static Py_ssize_t DList_len(FyDList *self)
{
    return self->list ? (Py_ssize_t)ferry_dlist_count(self->list) : 0;
}

/* (addr, len, dev_id) or, when the entry has metadata, (addr, len, dev_id, meta). */
static PyObject *fyp_desc_tuple(const ferry_dlist *list, size_t i, bool always_meta)
{
    ferry_desc d;
    ferry_status rc = ferry_dlist_get(list, i, &d);
    if (rc != FERRY_OK)
        return fyp_raise(rc, NULL);
    const void *meta = NULL;
    size_t meta_len = 0;
    ferry_dlist_get_meta(list, i, &meta, &meta_len);
    if (!meta_len && !always_meta)
        return Py_BuildValue("(KKK)", (unsigned long long)d.addr, (unsigned long long)d.len,
                             (unsigned long long)d.dev_id);
    return Py_BuildValue("(KKKy#)", (unsigned long long)d.addr, (unsigned long long)d.len,
                         (unsigned long long)d.dev_id, meta ? (const char *)meta : "",
                         (Py_ssize_t)meta_len);
}

static PyObject *DList_item(FyDList *self, Py_ssize_t i)
{
    if (!self->list || i < 0 || (size_t)i >= ferry_dlist_count(self->list)) {
        PyErr_SetString(PyExc_IndexError, "descriptor index out of range");
        return NULL;
    }
    return fyp_desc_tuple(self->list, (size_t)i, false);
}

static PyObject *DList_get(FyDList *self, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"index", "meta", NULL};
    Py_ssize_t i;
    int meta = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "n|p:get", kw, &i, &meta))
        return NULL;
    Py_ssize_t n = DList_len(self);
    if (i < 0)
        i += n;
    if (i < 0 || i >= n) {
        PyErr_SetString(PyExc_IndexError, "descriptor index out of range");
        return NULL;
    }
    return fyp_desc_tuple(self->list, (size_t)i, meta);
}

static PyObject *DList_get_mem_type(FyDList *self, void *closure)
{
    (void)closure;
    return PyLong_FromLong(self->list ? (long)ferry_dlist_mem_type(self->list) : 0);
}

static PyObject *DList_get_mem_type_name(FyDList *self, void *closure)
{
    (void)closure;
    return fyp_str(self->list ? ferry_mem_type_name(ferry_dlist_mem_type(self->list)) : "DRAM");
}

static PyObject *DList_get_strided(FyDList *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->list && ferry_dlist_is_strided(self->list));
}

/* The descriptors as bytes of N x 3 native uint64 (numpy.frombuffer-ready). */
static PyObject *DList_to_bytes(FyDList *self, PyObject *unused)
{
    (void)unused;
    size_t n = (size_t)DList_len(self);
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * sizeof(ferry_desc)));
    if (!out)
        return NULL;
    ferry_desc *d = (ferry_desc *)PyBytes_AS_STRING(out);
    for (size_t i = 0; i < n; i++)
        ferry_dlist_get(self->list, i, &d[i]);
    return out;
}

/* ---- modifying ---- */

static ferry_dlist *fyp_need_list(FyDList *self)
{
    if (!self->list)
        PyErr_SetString(PyExc_ValueError, "DList was not initialised");
    return self->list;
}

static PyObject *DList_append(FyDList *self, PyObject *desc)
{
    if (!fyp_need_list(self) || fyp_add_tuple(self->list, desc) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *DList_extend(FyDList *self, PyObject *descs)
{
    if (!fyp_need_list(self) || fyp_dlist_fill(self->list, descs) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* ferry_dlist has no in-place removal or replacement: these rebuild the list
 * (O(n)); they are conveniences, never on a hot path. */
static int fyp_copy_entry(ferry_dlist *dst, const ferry_dlist *src, size_t i, bool with_meta)
{
    ferry_desc d;
    const void *meta = NULL;
    size_t meta_len = 0;
    ferry_dlist_get(src, i, &d);
    if (with_meta)
        ferry_dlist_get_meta(src, i, &meta, &meta_len);
    ferry_status rc = ferry_dlist_add_meta(dst, d.addr, d.len, d.dev_id, meta, meta_len);
    return rc == FERRY_OK ? 0 : (fyp_raise(rc, NULL), -1);
}

/* A plain copy of src without entry `skip` (-1: none), with or without meta. */
static ferry_dlist *fyp_rebuild(const ferry_dlist *src, Py_ssize_t skip, bool with_meta)
{
    size_t n = ferry_dlist_count(src);
    ferry_dlist *dst;
    ferry_status rc = ferry_dlist_create(ferry_dlist_mem_type(src), n, &dst);
    if (rc != FERRY_OK)
        return fyp_raise(rc, NULL), NULL;
    for (size_t i = 0; i < n; i++) {
        if ((Py_ssize_t)i != skip && fyp_copy_entry(dst, src, i, with_meta) < 0) {
            ferry_dlist_destroy(dst);
            return NULL;
        }
    }
    return dst;
}

static int fyp_norm_index(FyDList *self, Py_ssize_t *i)
{
    Py_ssize_t n = DList_len(self);
    if (*i < 0)
        *i += n;
    if (*i < 0 || *i >= n) {
        PyErr_SetString(PyExc_IndexError, "descriptor index out of range");
        return -1;
    }
    return 0;
}

static PyObject *DList_remove_at(FyDList *self, PyObject *arg)
{
    Py_ssize_t i = PyNumber_AsSsize_t(arg, PyExc_IndexError);
    if ((i == -1 && PyErr_Occurred()) || !fyp_need_list(self) || fyp_norm_index(self, &i) < 0)
        return NULL;
    ferry_dlist *l = fyp_rebuild(self->list, i, true);
    if (!l)
        return NULL;
    ferry_dlist_destroy(self->list);
    self->list = l;
    Py_RETURN_NONE;
}

static int DList_ass_item(FyDList *self, Py_ssize_t i, PyObject *desc)
{
    if (!fyp_need_list(self) || fyp_norm_index(self, &i) < 0)
        return -1;
    if (!desc) { /* del list[i] */
        PyObject *pos = PyLong_FromSsize_t(i);
        PyObject *r = pos ? DList_remove_at(self, pos) : NULL;
        Py_XDECREF(pos);
        Py_XDECREF(r);
        return r ? 0 : -1;
    }
    size_t n = ferry_dlist_count(self->list);
    ferry_dlist *dst;
    ferry_status rc = ferry_dlist_create(ferry_dlist_mem_type(self->list), n, &dst);
    if (rc != FERRY_OK)
        return fyp_raise(rc, NULL), -1;
    for (size_t k = 0; k < n; k++) {
        int r = (Py_ssize_t)k == i ? fyp_add_tuple(dst, desc)
                                   : fyp_copy_entry(dst, self->list, k, true);
        if (r < 0) {
            ferry_dlist_destroy(dst);
            return -1;
        }
    }
    ferry_dlist_destroy(self->list);
    self->list = dst;
    return 0;
}

static PyObject *DList_clear(FyDList *self, PyObject *unused)
{
    (void)unused;
    if (!fyp_need_list(self))
        return NULL;
    ferry_dlist *l;
    ferry_status rc = ferry_dlist_create(ferry_dlist_mem_type(self->list), 0, &l);
    if (rc != FERRY_OK)
        return fyp_raise(rc, NULL);
    ferry_dlist_destroy(self->list);
    self->list = l;
    Py_RETURN_NONE;
}

/* Position of the first descriptor equal to (addr, len, dev_id); ValueError if none. */
static PyObject *DList_index(FyDList *self, PyObject *desc)
{
    ferry_dlist *probe;
    if (!fyp_need_list(self) || ferry_dlist_create(FERRY_MEM_DRAM, 1, &probe) != FERRY_OK)
        return NULL;
    if (fyp_add_tuple(probe, desc) < 0) {
        ferry_dlist_destroy(probe);
        return NULL;
    }
    ferry_desc want, d;
    ferry_dlist_get(probe, 0, &want);
    ferry_dlist_destroy(probe);
    size_t n = ferry_dlist_count(self->list);
    for (size_t i = 0; i < n; i++) {
        ferry_dlist_get(self->list, i, &d);
        if (d.addr == want.addr && d.len == want.len && d.dev_id == want.dev_id)
            return PyLong_FromSize_t(i);
    }
    PyErr_SetString(PyExc_ValueError, "descriptor not in list");
    return NULL;
}

/* copy(with_meta=True, cls=None): a plain copy, as cls (default: same type). */
static PyObject *DList_copy(FyDList *self, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"with_meta", "cls", NULL};
    int with_meta = 1;
    PyObject *cls = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|pO:copy", kw, &with_meta, &cls))
        return NULL;
    if (cls == Py_None)
        cls = NULL;
    if (cls && (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &FyDList_Type))) {
        PyErr_SetString(PyExc_TypeError, "cls must be a DList subclass");
        return NULL;
    }
    if (!fyp_need_list(self))
        return NULL;
    ferry_dlist *l = fyp_rebuild(self->list, -1, with_meta);
    return l ? fyp_dlist_wrap(cls ? (PyTypeObject *)cls : Py_TYPE(self), l) : NULL;
}

/* ---- strided lists ---- */

static PyObject *DList_strided(PyObject *cls, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"mem_type", "base", "stride", "count", "length", "dev_id", NULL};
    ferry_mem_type type;
    unsigned long long base, stride, len, dev = 0;
    Py_ssize_t count;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&KKnK|K:strided", kw, fyp_conv_mem_type, &type,
                                     &base, &stride, &count, &len, &dev))
        return NULL;
    if (count < 0) {
        PyErr_SetString(PyExc_ValueError, "negative count");
        return NULL;
    }
    ferry_dlist *l;
    ferry_status rc = ferry_dlist_create_strided(type, base, stride, (size_t)count, len, dev, &l);
    if (rc != FERRY_OK)
        return fyp_raise(rc, NULL);
    return fyp_dlist_wrap((PyTypeObject *)cls, l);
}

/* ---- serialisation and pickling ---- */

static PyObject *DList_serialize(FyDList *self, PyObject *unused)
{
    (void)unused;
    void *buf;
    size_t len;
    if (!fyp_need_list(self))
        return NULL;
    ferry_status rc = ferry_dlist_serialize(self->list, &buf, &len);
    if (rc != FERRY_OK)
        return fyp_raise(rc, NULL);
    PyObject *out = PyBytes_FromStringAndSize(buf, (Py_ssize_t)len);
    ferry_free(buf);
    return out;
}

static PyObject *DList_deserialize(PyObject *cls, PyObject *data)
{
    fyp_bytes b;
    if (!fyp_bytes_get(data, &b, false))
        return NULL;
    ferry_dlist *l;
    ferry_status rc = ferry_dlist_deserialize(b.buf, b.len, &l);
    fyp_bytes_release(&b);
    if (rc != FERRY_OK)
        return fyp_raise(rc, NULL);
    return fyp_dlist_wrap((PyTypeObject *)cls, l);
}

static PyObject *DList_reduce(FyDList *self, PyObject *unused)
{
    (void)unused;
    PyObject *data = DList_serialize(self, NULL);
    if (!data)
        return NULL;
    PyObject *fn = PyObject_GetAttrString((PyObject *)Py_TYPE(self), "deserialize");
    PyObject *out = fn ? Py_BuildValue("(O(O))", fn, data) : NULL;
    Py_XDECREF(fn);
    Py_DECREF(data);
    return out;
}

/* ---- comparison and repr ---- */

static bool fyp_meta_equal(const ferry_dlist *a, const ferry_dlist *b, size_t i)
{
    const void *ma = NULL, *mb = NULL;
    size_t la = 0, lb = 0;
    ferry_dlist_get_meta(a, i, &ma, &la);
    ferry_dlist_get_meta(b, i, &mb, &lb);
    return la == lb && (!la || !memcmp(ma, mb, la));
}

static bool fyp_dlist_equal(const ferry_dlist *a, const ferry_dlist *b)
{
    size_t n = ferry_dlist_count(a);
    if (ferry_dlist_mem_type(a) != ferry_dlist_mem_type(b) || n != ferry_dlist_count(b))
        return false;
    for (size_t i = 0; i < n; i++) {
        ferry_desc x, y;
        ferry_dlist_get(a, i, &x);
        ferry_dlist_get(b, i, &y);
        if (x.addr != y.addr || x.len != y.len || x.dev_id != y.dev_id || !fyp_meta_equal(a, b, i))
            return false;
    }
    return true;
}

static PyObject *DList_richcompare(PyObject *a, PyObject *b, int op)
{
    if ((op != Py_EQ && op != Py_NE) || !fyp_is_dlist(b))
        Py_RETURN_NOTIMPLEMENTED;
    ferry_dlist *la = ((FyDList *)a)->list, *lb = ((FyDList *)b)->list;
    bool eq = la && lb ? fyp_dlist_equal(la, lb) : la == lb;
    return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

static PyObject *DList_repr(FyDList *self)
{
    return PyUnicode_FromFormat(
        "%s(%s, %zd descriptors%s)", Py_TYPE(self)->tp_name,
        self->list ? ferry_mem_type_name(ferry_dlist_mem_type(self->list)) : "?", DList_len(self),
        self->list && ferry_dlist_is_strided(self->list) ? ", strided" : "");
}

static PyMethodDef DList_methods[] = {
    {"get", (PyCFunction)(void (*)(void))DList_get, METH_VARARGS | METH_KEYWORDS,
     "get(index, meta=False): descriptor as a tuple; meta=True always adds the meta bytes."},
    {"append", (PyCFunction)DList_append, METH_O, "append((addr, len, dev_id[, meta]))"},
    {"extend", (PyCFunction)DList_extend, METH_O,
     "extend(descs): tuples or an N x 3 integer array"},
    {"remove_at", (PyCFunction)DList_remove_at, METH_O, "remove_at(index) (rebuilds the list)"},
    {"clear", (PyCFunction)DList_clear, METH_NOARGS, "Removes every descriptor."},
    {"index", (PyCFunction)DList_index, METH_O,
     "index((addr, len, dev_id)): position of the first equal descriptor"},
    {"copy", (PyCFunction)(void (*)(void))DList_copy, METH_VARARGS | METH_KEYWORDS,
     "copy(with_meta=True, cls=None): a plain copy, as cls (default: the same type)"},
    {"to_bytes", (PyCFunction)DList_to_bytes, METH_NOARGS,
     "Descriptors as N x 3 native uint64 bytes (numpy.frombuffer(b, 'u8').reshape(-1, 3))."},
    {"serialize", (PyCFunction)DList_serialize, METH_NOARGS,
     "Bytes in ferry's wire format (type, descriptors, metadata)."},
    {"deserialize", (PyCFunction)DList_deserialize, METH_O | METH_CLASS,
     "deserialize(data): a list from serialize()'s bytes, as this class."},
    {"strided", (PyCFunction)(void (*)(void))DList_strided,
     METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "strided(mem_type, base, stride, count, length, dev_id=0): descriptor i is "
     "(base + i * stride, length, dev_id), never materialised."},
    {"__reduce__", (PyCFunction)DList_reduce, METH_NOARGS,
     "__reduce__(): pickling support; the list is rebuilt from its type and descriptors."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef DList_getset[] = {
    {"mem_type", (getter)DList_get_mem_type, NULL, "memory type (int, ferry_mem_type)", NULL},
    {"mem_type_name", (getter)DList_get_mem_type_name, NULL, "memory type name", NULL},
    {"is_strided", (getter)DList_get_strided, NULL, "strided list?", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods DList_as_sequence = {
    .sq_length = (lenfunc)DList_len,
    .sq_item = (ssizeargfunc)DList_item,
    .sq_ass_item = (ssizeobjargproc)DList_ass_item,
};

PyTypeObject FyDList_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ferry_kv.DList",
    .tp_basicsize = sizeof(FyDList),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "DList(mem_type, descs=None): a descriptor list.\n\n"
              "mem_type: int or name ('DRAM', 'VRAM', 'FILE', 'BLOCK', 'OBJ', 'cpu', 'cuda').\n"
              "descs: None, a capacity, (addr, len, dev_id[, meta]) tuples, or an N x 3 "
              "integer array.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)DList_init,
    .tp_dealloc = (destructor)DList_dealloc,
    .tp_repr = (reprfunc)DList_repr,
    .tp_richcompare = DList_richcompare,
    .tp_hash = PyObject_HashNotImplemented,
    .tp_as_sequence = &DList_as_sequence,
    .tp_methods = DList_methods,
    .tp_getset = DList_getset,
};

int fyp_dlist_init_types(PyObject *module)
{
    if (PyType_Ready(&FyDList_Type) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "DList", (PyObject *)&FyDList_Type);
}
