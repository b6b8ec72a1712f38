/* SPDX-License-Identifier: Apache-2.0 */
/* Agent.mem_alloc: memory a backend allocates (ferry_mem_alloc), e.g. SHM's
 * memfd-backed host memory, which a peer on the same host maps instead of
 * copying through the kernel. DRAM allocations expose the buffer protocol,
 * so numpy.frombuffer, memoryview and torch.frombuffer see them without a
 * copy.
 *
 * Lifetime: the memory belongs to the agent (ferry_agent_destroy frees
 * what is left). A view of it must not outlive it, so free() and the
 * agent's close() are refused while views are open, the way bytearray
 * refuses to resize. */
#include "fy_py.h"

#include <stdio.h>

typedef struct FyAlloc {
    PyObject_HEAD FyAgent *owner;
    void *addr; /* NULL once freed */
    uint64_t len;
    ferry_mem_type type;
    Py_ssize_t views; /* buffer-protocol views open */
} FyAlloc;

static PyTypeObject FyAlloc_Type;

static bool fyp_alloc_live(const FyAlloc *self)
{
    return self->addr && self->owner && self->owner->agent;
}

static ferry_status fyp_alloc_release(FyAlloc *self)
{
    ferry_status rc = FERRY_OK;
    if (fyp_alloc_live(self))
        rc = ferry_mem_free(self->owner->agent, self->addr);
    if (rc == FERRY_OK)
        self->addr = NULL;
    return rc;
}

static void Alloc_dealloc(FyAlloc *self)
{
    fyp_alloc_release(self); /* a region still registered keeps it (agent frees it) */
    Py_CLEAR(self->owner);
    PyObject_Free(self);
}

static PyObject *Alloc_free(FyAlloc *self, PyObject *unused)
{
    (void)unused;
    if (self->views)
        return fyp_raise(FERRY_ERR_NOT_ALLOWED, "views of this memory are still open");
    ferry_status rc = fyp_alloc_release(self);
    if (rc != FERRY_OK)
        return fyp_raise(rc, "free (deregister the regions inside it first)");
    Py_RETURN_NONE;
}

static PyObject *Alloc_enter(FyAlloc *self, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(self);
}

static PyObject *Alloc_exit(FyAlloc *self, PyObject *args)
{
    (void)args;
    return Alloc_free(self, NULL);
}

static int Alloc_getbuffer(FyAlloc *self, Py_buffer *view, int flags)
{
    if (!fyp_alloc_live(self)) {
        PyErr_SetString(PyExc_BufferError, "the memory was freed (or its agent closed)");
        return -1;
    }
    if (self->type != FERRY_MEM_DRAM) {
        PyErr_SetString(PyExc_BufferError, "only host memory (DRAM) is viewable from Python");
        return -1;
    }
    if (PyBuffer_FillInfo(view, (PyObject *)self, self->addr, (Py_ssize_t)self->len, 0, flags) < 0)
        return -1;
    self->views++;
    self->owner->views++;
    return 0;
}

static void Alloc_releasebuffer(FyAlloc *self, Py_buffer *view)
{
    (void)view;
    self->views--;
    self->owner->views--;
}

static PyObject *Alloc_get_addr(FyAlloc *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLongLong(fyp_alloc_live(self) ? (uintptr_t)self->addr : 0);
}

static PyObject *Alloc_get_nbytes(FyAlloc *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLongLong(self->len);
}

static PyObject *Alloc_get_mem_type(FyAlloc *self, void *closure)
{
    (void)closure;
    return fyp_str(ferry_mem_type_name(self->type));
}

static PyObject *Alloc_repr(FyAlloc *self)
{
    char text[128];
    snprintf(text, sizeof(text), "<ferry.Alloc %s 0x%llx+%llu%s>", ferry_mem_type_name(self->type),
             (unsigned long long)(uintptr_t)self->addr, (unsigned long long)self->len,
             fyp_alloc_live(self) ? "" : " freed");
    return PyUnicode_FromString(text);
}

static PyMethodDef Alloc_methods[] = {
    {"free", (PyCFunction)Alloc_free, METH_NOARGS,
     "free(): gives the memory back (refused while views are open or regions lie inside it)"},
    {"__enter__", (PyCFunction)Alloc_enter, METH_NOARGS, "__enter__() -> the allocation"},
    {"__exit__", (PyCFunction)Alloc_exit, METH_VARARGS, "__exit__(*exc): free()"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Alloc_getset[] = {
    {"addr", (getter)Alloc_get_addr, NULL, "start address (0 once freed)", NULL},
    {"nbytes", (getter)Alloc_get_nbytes, NULL, "length in bytes", NULL},
    {"mem_type", (getter)Alloc_get_mem_type, NULL, "memory type name", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyBufferProcs Alloc_as_buffer = {
    .bf_getbuffer = (getbufferproc)Alloc_getbuffer,
    .bf_releasebuffer = (releasebufferproc)Alloc_releasebuffer,
};

static PyTypeObject FyAlloc_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ferry_kv.Alloc",
    .tp_basicsize = sizeof(FyAlloc),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Memory a backend allocated (Agent.mem_alloc); DRAM supports the buffer "
              "protocol. A context manager (leaving it frees the memory).",
    .tp_dealloc = (destructor)Alloc_dealloc,
    .tp_repr = (reprfunc)Alloc_repr,
    .tp_methods = Alloc_methods,
    .tp_getset = Alloc_getset,
    .tp_as_buffer = &Alloc_as_buffer,
};

/* The backend argument: None (any that allocates the type) or a Backend. */
static int fyp_alloc_backend(FyAgent *agent, PyObject *obj, ferry_backend **out)
{
    *out = NULL;
    if (!obj || obj == Py_None)
        return 0;
    if (!PyObject_TypeCheck(obj, &FyBackend_Type) || ((FyBackend *)obj)->owner != agent) {
        PyErr_SetString(PyExc_TypeError, "backend must be a Backend of this agent or None");
        return -1;
    }
    *out = ((FyBackend *)obj)->backend;
    return 0;
}

PyObject *fyp_agent_mem_alloc(FyAgent *self, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"nbytes", "mem_type", "dev_id", "backend", NULL};
    unsigned long long len, dev = 0;
    ferry_mem_type type = FERRY_MEM_DRAM;
    PyObject *backend_obj = NULL;
    ferry_backend *backend;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "K|O&KO:mem_alloc", kw, &len, fyp_conv_mem_type,
                                     &type, &dev, &backend_obj) ||
        fyp_alloc_backend(self, backend_obj, &backend) < 0)
        return NULL;
    if (!self->agent)
        return fyp_raise(FERRY_ERR_NOT_ALLOWED, "the agent is closed");
    void *addr = NULL;
    ferry_status rc;
    FYP_CALL(self, rc = ferry_mem_alloc(self->agent, backend, type, len, dev, &addr));
    if (rc != FERRY_OK)
        return fyp_raise(rc, "mem_alloc");
    FyAlloc *a = PyObject_New(FyAlloc, &FyAlloc_Type);
    if (!a) {
        ferry_mem_free(self->agent, addr);
        return NULL;
    }
    *a = (FyAlloc){.ob_base = a->ob_base,
                   .owner = (FyAgent *)Py_NewRef(self),
                   .addr = addr,
                   .len = len,
                   .type = type};
    return (PyObject *)a;
}

int fyp_alloc_init(PyObject *module)
{
    if (PyType_Ready(&FyAlloc_Type) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "Alloc", (PyObject *)&FyAlloc_Type);
}
