/* SPDX-License-Identifier: Apache-2.0 */
/* Handles that belong to an agent: Backend, Prepped (a prepared list) and
 * Xfer (a transfer request). Each holds a strong reference to its Agent.
 * A handle whose agent was closed is released already: ferry_agent_destroy()
 * freed its C object, so it is never touched again. */
#include "fy_py.h"

#include <sched.h>
#include <time.h>

/* The agent of a handle, or NULL (and the C pointer forgotten) once closed. */
static bool fyp_owner_open(FyAgent *owner)
{
    return owner && owner->agent;
}

/* ---- Backend ---- */

PyObject *fyp_backend_new(FyAgent *owner, ferry_backend *backend)
{
    FyBackend *b = PyObject_New(FyBackend, &FyBackend_Type);
    if (!b)
        return NULL;
    b->owner = (FyAgent *)Py_NewRef(owner);
    b->backend = backend;
    return (PyObject *)b;
}

static void Backend_dealloc(FyBackend *self)
{
    Py_CLEAR(self->owner);
    PyObject_Free(self);
}

static int fyp_backend_check(FyBackend *self)
{
    if (fyp_owner_open(self->owner))
        return 0;
    fyp_raise(FERRY_ERR_NOT_ALLOWED, "the agent is closed");
    return -1;
}

static PyObject *Backend_get_name(FyBackend *self, void *closure)
{
    (void)closure;
    if (fyp_backend_check(self) < 0)
        return NULL;
    return fyp_str(ferry_backend_name(self->backend));
}

static PyObject *Backend_get_agent(FyBackend *self, void *closure)
{
    (void)closure;
    return Py_NewRef(self->owner);
}

/* caps() -> (flags, [memory type names]) */
static PyObject *Backend_caps(FyBackend *self, PyObject *unused)
{
    (void)unused;
    ferry_backend_caps caps;
    ferry_backend_caps_init(&caps);
    if (fyp_backend_check(self) < 0)
        return NULL;
    ferry_status rc = ferry_backend_get_caps(self->backend, &caps);
    if (rc != FERRY_OK)
        return fyp_raise(rc, NULL);
    PyObject *mems = PyList_New(0);
    for (int t = 0; mems && t < FERRY_MEM_TYPE_COUNT; t++) {
        if (!(caps.mem_mask & FERRY_MEM_MASK(t)))
            continue;
        PyObject *s = fyp_str(ferry_mem_type_name((ferry_mem_type)t));
        if (!s || PyList_Append(mems, s) < 0)
            Py_CLEAR(mems);
        Py_XDECREF(s);
    }
    return mems ? Py_BuildValue("(IN)", (unsigned int)caps.flags, mems) : NULL;
}

static PyObject *Backend_params(FyBackend *self, PyObject *unused)
{
    (void)unused;
    const ferry_param *params;
    size_t n;
    if (fyp_backend_check(self) < 0)
        return NULL;
    ferry_status rc = ferry_backend_params(self->backend, &params, &n);
    if (rc != FERRY_OK)
        return fyp_raise(rc, NULL);
    PyObject *out = PyDict_New();
    for (size_t i = 0; out && i < n; i++) {
        PyObject *v = fyp_str(params[i].value);
        if (!v || PyDict_SetItemString(out, params[i].key, v) < 0)
            Py_CLEAR(out);
        Py_XDECREF(v);
    }
    return out;
}

static PyObject *Backend_richcompare(PyObject *a, PyObject *b, int op)
{
    if ((op != Py_EQ && op != Py_NE) || !PyObject_TypeCheck(b, &FyBackend_Type))
        Py_RETURN_NOTIMPLEMENTED;
    bool eq = ((FyBackend *)a)->backend == ((FyBackend *)b)->backend;
    return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

static Py_hash_t Backend_hash(FyBackend *self)
{
    return _Py_HashPointer(self->backend);
}

static PyObject *Backend_repr(FyBackend *self)
{
    if (!fyp_owner_open(self->owner))
        return PyUnicode_FromString("<ferry.Backend of a closed agent>");
    return PyUnicode_FromFormat("<ferry.Backend %s>", ferry_backend_name(self->backend));
}

static PyMethodDef Backend_methods[] = {
    {"caps", (PyCFunction)Backend_caps, METH_NOARGS, "caps() -> (flags, [mem type names])"},
    {"params", (PyCFunction)Backend_params, METH_NOARGS, "Effective params (dict)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Backend_getset[] = {
    {"name", (getter)Backend_get_name, NULL, "plugin name", NULL},
    {"agent", (getter)Backend_get_agent, NULL, "owning Agent", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject FyBackend_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ferry_kv.Backend",
    .tp_basicsize = sizeof(FyBackend),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A backend of an agent (Agent.create_backend / Agent.backend).",
    .tp_dealloc = (destructor)Backend_dealloc,
    .tp_repr = (reprfunc)Backend_repr,
    .tp_hash = (hashfunc)Backend_hash,
    .tp_richcompare = Backend_richcompare,
    .tp_methods = Backend_methods,
    .tp_getset = Backend_getset,
};

/* ---- Prepped ---- */

PyObject *fyp_prepped_new(FyAgent *owner, ferry_prepped *prepped, PyObject *remote)
{
    FyPrepped *p = PyObject_New(FyPrepped, &FyPrepped_Type);
    if (!p)
        return NULL;
    p->owner = (FyAgent *)Py_NewRef(owner);
    p->prepped = prepped;
    p->remote = Py_NewRef(remote);
    return (PyObject *)p;
}

/* Forgets the C object: released here, or already freed with the agent. */
static void fyp_prepped_drop(FyPrepped *self)
{
    ferry_prepped *p = self->prepped;
    self->prepped = NULL;
    if (p && fyp_owner_open(self->owner))
        ferry_prepped_release(p);
}

static void Prepped_dealloc(FyPrepped *self)
{
    fyp_prepped_drop(self);
    Py_CLEAR(self->owner);
    Py_CLEAR(self->remote);
    PyObject_Free(self);
}

static PyObject *Prepped_release(FyPrepped *self, PyObject *unused)
{
    (void)unused;
    fyp_prepped_drop(self);
    Py_RETURN_NONE;
}

static PyObject *Prepped_enter(FyPrepped *self, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(self);
}

static PyObject *Prepped_exit(FyPrepped *self, PyObject *args)
{
    (void)args;
    return Prepped_release(self, NULL);
}

static bool fyp_prepped_live(FyPrepped *self)
{
    if (self->prepped && !fyp_owner_open(self->owner))
        self->prepped = NULL; /* freed with the agent */
    return self->prepped != NULL;
}

static Py_ssize_t Prepped_len(FyPrepped *self)
{
    if (!fyp_prepped_live(self)) {
        fyp_raise(FERRY_ERR_INVALID_PARAM, "prepared list released");
        return -1;
    }
    return (Py_ssize_t)ferry_prepped_count(self->prepped);
}

static PyObject *Prepped_get_released(FyPrepped *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(!fyp_prepped_live(self));
}

static PyObject *Prepped_get_remote(FyPrepped *self, void *closure)
{
    (void)closure;
    return Py_NewRef(self->remote);
}

static PyObject *Prepped_get_agent(FyPrepped *self, void *closure)
{
    (void)closure;
    return Py_NewRef(self->owner);
}

static PyObject *Prepped_get_handle(FyPrepped *self, void *closure)
{
    (void)closure;
    return PyLong_FromVoidPtr(fyp_prepped_live(self) ? self->prepped : NULL);
}

static PyObject *Prepped_repr(FyPrepped *self)
{
    bool live = fyp_prepped_live(self);
    Py_ssize_t n = live ? (Py_ssize_t)ferry_prepped_count(self->prepped) : 0;
    const char *state = live ? "" : ", released";
    if (self->remote == Py_None)
        return PyUnicode_FromFormat("<ferry.Prepped local, %zd descriptors%s>", n, state);
    return PyUnicode_FromFormat("<ferry.Prepped remote %R, %zd descriptors%s>", self->remote, n,
                                state);
}

static PyMethodDef Prepped_methods[] = {
    {"release", (PyCFunction)Prepped_release, METH_NOARGS,
     "Releases the prepared list (idempotent). Requests made from it stay valid."},
    {"__enter__", (PyCFunction)Prepped_enter, METH_NOARGS,
     "__enter__() -> Prepped: the prepared list itself; leaving the block releases it."},
    {"__exit__", (PyCFunction)Prepped_exit, METH_VARARGS,
     "__exit__(*exc) -> None: releases the prepared list; exceptions propagate."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Prepped_getset[] = {
    {"released", (getter)Prepped_get_released, NULL, "True once released", NULL},
    {"remote", (getter)Prepped_get_remote, NULL, "remote agent name, None for the local side",
     NULL},
    {"agent", (getter)Prepped_get_agent, NULL, "owning Agent", NULL},
    {"_handle", (getter)Prepped_get_handle, NULL, "address of the C handle (0 once released)",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods Prepped_as_sequence = {.sq_length = (lenfunc)Prepped_len};

PyTypeObject FyPrepped_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ferry_kv.Prepped",
    .tp_basicsize = sizeof(FyPrepped),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A prepared descriptor list (Agent.prep). A context manager.",
    .tp_dealloc = (destructor)Prepped_dealloc,
    .tp_repr = (reprfunc)Prepped_repr,
    .tp_as_sequence = &Prepped_as_sequence,
    .tp_methods = Prepped_methods,
    .tp_getset = Prepped_getset,
};

/* ---- Xfer ---- */

static PyStructSequence_Field fyp_telemetry_fields[] = {
    {"start_us", "post time, microseconds since the epoch"},
    {"post_us", "time spent in post, microseconds"},
    {"xfer_us", "post to completion seen, microseconds"},
    {"total_bytes", "bytes moved per post"},
    {"desc_count", "descriptors after merging"},
    {"backend", "name of the serving backend"},
    {"done", "True when the last post has ended"},
    {NULL, NULL},
};

PyStructSequence_Desc fyp_telemetry_desc = {
    "ferry_kv.XferTelemetry", "Telemetry of a request's last post.", fyp_telemetry_fields, 7};
PyTypeObject *FyTelemetry_Type;

PyObject *fyp_xfer_new(FyAgent *owner, ferry_xfer *xfer)
{
    FyXfer *x = PyObject_New(FyXfer, &FyXfer_Type);
    if (!x)
        return NULL;
    x->owner = (FyAgent *)Py_NewRef(owner);
    x->xfer = xfer;
    return (PyObject *)x;
}

static bool fyp_xfer_live(FyXfer *self)
{
    if (self->xfer && !fyp_owner_open(self->owner))
        self->xfer = NULL; /* freed with the agent */
    return self->xfer != NULL;
}

static int fyp_xfer_check(FyXfer *self)
{
    if (fyp_xfer_live(self))
        return 0;
    fyp_raise(FERRY_ERR_INVALID_PARAM, "transfer request released");
    return -1;
}

/* Release cancels a request in progress and may wait for the backend:
 * without the GIL, unless the agent keeps it. */
static ferry_status fyp_xfer_drop(FyXfer *self)
{
    ferry_xfer *x = self->xfer;
    ferry_status rc = FERRY_OK;
    self->xfer = NULL;
    if (x && fyp_owner_open(self->owner))
        FYP_CALL(self->owner, rc = ferry_xfer_release(x));
    return rc;
}

static void Xfer_dealloc(FyXfer *self)
{
    fyp_xfer_drop(self);
    Py_CLEAR(self->owner);
    PyObject_Free(self);
}

static PyObject *Xfer_release(FyXfer *self, PyObject *unused)
{
    (void)unused;
    ferry_status rc = fyp_xfer_drop(self);
    if (rc < 0)
        return fyp_raise(rc, "release");
    Py_RETURN_NONE;
}

static PyObject *Xfer_enter(FyXfer *self, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(self);
}

static PyObject *Xfer_exit(FyXfer *self, PyObject *args)
{
    (void)args;
    return Xfer_release(self, NULL);
}

static PyObject *fyp_xfer_result(FyXfer *self, ferry_status rc)
{
    if (rc >= 0)
        return PyLong_FromLong(rc);
    return fyp_raise(rc, ferry_xfer_error(self->xfer));
}

static int fyp_set_notif(FyXfer *self, PyObject *notif)
{
    fyp_bytes m;
    if (!notif || notif == Py_None)
        return 0;
    if (!fyp_bytes_get(notif, &m, false))
        return -1;
    ferry_status rc = FERRY_OK;
    if (m.len)
        rc = ferry_xfer_set_notif(self->xfer, m.buf, m.len);
    fyp_bytes_release(&m);
    return rc == FERRY_OK ? 0 : (fyp_raise(rc, "notification"), -1);
}

/* post(notif=None) -> 0 (done inline) or 1 (in progress); a non-empty notif
 * replaces the request's notification first. */
static PyObject *Xfer_post(FyXfer *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"notif", NULL};
    PyObject *a[1];
    if (fyp_args("post", args, nargs, kwnames, names, 0, a) < 0 || fyp_xfer_check(self) < 0 ||
        fyp_set_notif(self, a[0]) < 0)
        return NULL;
    ferry_status rc;
    FYP_CALL(self->owner, rc = ferry_xfer_post(self->xfer));
    return fyp_xfer_result(self, rc);
}

/* status() -> 0 (done) or 1 (in progress); the error that ended it raises. */
static PyObject *Xfer_status(FyXfer *self, PyObject *unused)
{
    (void)unused;
    if (fyp_xfer_check(self) < 0)
        return NULL;
    ferry_status rc;
    FYP_CALL(self->owner, rc = ferry_xfer_status(self->xfer));
    return fyp_xfer_result(self, rc);
}

static double fyp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Polls until the request ends or timeout (seconds, negative: forever). */
static ferry_status fyp_wait(ferry_xfer *x, double timeout)
{
    double deadline = fyp_now() + timeout;
    ferry_status rc = ferry_xfer_status(x);
    while (rc == FERRY_IN_PROGRESS && (timeout < 0 || fyp_now() < deadline)) {
        sched_yield();
        rc = ferry_xfer_status(x);
    }
    return rc;
}

/* wait(timeout=None) -> True when done, False on timeout; errors raise. */
static PyObject *Xfer_wait(FyXfer *self, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"timeout", NULL};
    PyObject *t = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:wait", kw, &t) || fyp_xfer_check(self) < 0)
        return NULL;
    double timeout = t == Py_None ? -1.0 : PyFloat_AsDouble(t);
    if (timeout == -1.0 && PyErr_Occurred())
        return NULL;
    ferry_status rc;
    FYP_CALL(self->owner, rc = fyp_wait(self->xfer, timeout));
    if (rc < 0)
        return fyp_raise(rc, ferry_xfer_error(self->xfer));
    return PyBool_FromLong(rc == FERRY_OK);
}

static PyObject *Xfer_set_notif(FyXfer *self, PyObject *arg)
{
    if (fyp_xfer_check(self) < 0)
        return NULL;
    fyp_bytes m;
    if (!fyp_bytes_get(arg, &m, true))
        return NULL;
    ferry_status rc = ferry_xfer_set_notif(self->xfer, m.len ? m.buf : NULL, m.len);
    fyp_bytes_release(&m);
    if (rc != FERRY_OK)
        return fyp_raise(rc, NULL);
    Py_RETURN_NONE;
}

/* set_timeout(ms): deadline of the next posts (0/None: the agent's). */
static PyObject *Xfer_set_timeout(FyXfer *self, PyObject *arg)
{
    uint32_t ms;
    if (fyp_xfer_check(self) < 0 || fyp_timeout_get(arg, &ms) < 0)
        return NULL;
    ferry_status rc = ferry_xfer_set_timeout(self->xfer, ms);
    if (rc != FERRY_OK)
        return fyp_raise(rc, NULL);
    Py_RETURN_NONE;
}

static PyObject *fyp_telemetry_tuple(FyXfer *self, const ferry_xfer_telemetry *t, bool done)
{
    PyObject *out = PyStructSequence_New(FyTelemetry_Type);
    if (!out)
        return NULL;
    PyObject *v[7] = {
        PyLong_FromUnsignedLongLong(t->start_us),
        PyLong_FromUnsignedLongLong(t->post_us),
        PyLong_FromUnsignedLongLong(t->xfer_us),
        PyLong_FromUnsignedLongLong(t->total_bytes),
        PyLong_FromUnsignedLongLong(t->desc_count),
        fyp_str(ferry_backend_name(ferry_xfer_backend(self->xfer))),
        PyBool_FromLong(done),
    };
    for (int i = 0; i < 7; i++) {
        if (!v[i]) {
            for (int j = i + 1; j < 7; j++)
                Py_XDECREF(v[j]);
            Py_DECREF(out);
            return NULL;
        }
        PyStructSequence_SET_ITEM(out, i, v[i]);
    }
    return out;
}

static PyObject *Xfer_telemetry(FyXfer *self, PyObject *unused)
{
    (void)unused;
    if (fyp_xfer_check(self) < 0)
        return NULL;
    ferry_xfer_telemetry t;
    ferry_xfer_telemetry_init(&t);
    ferry_status rc = ferry_xfer_get_telemetry(self->xfer, &t);
    if (rc < 0)
        return fyp_raise(rc, NULL);
    return fyp_telemetry_tuple(self, &t, rc == FERRY_OK);
}

/* estimate() -> (duration_us, error_margin_us, method) */
static PyObject *Xfer_estimate(FyXfer *self, PyObject *unused)
{
    (void)unused;
    if (fyp_xfer_check(self) < 0)
        return NULL;
    ferry_xfer_cost c;
    ferry_xfer_cost_init(&c);
    ferry_status rc = ferry_xfer_estimate(self->xfer, &c);
    if (rc != FERRY_OK)
        return fyp_raise(rc, NULL);
    return Py_BuildValue("(ddi)", c.duration_us, c.error_margin_us, (int)c.method);
}

static PyObject *Xfer_get_backend(FyXfer *self, void *closure)
{
    (void)closure;
    if (fyp_xfer_check(self) < 0)
        return NULL;
    return fyp_str(ferry_backend_name(ferry_xfer_backend(self->xfer)));
}

static PyObject *Xfer_get_count(FyXfer *self, void *closure)
{
    (void)closure;
    if (fyp_xfer_check(self) < 0)
        return NULL;
    return PyLong_FromSize_t(ferry_xfer_count(self->xfer));
}

static PyObject *Xfer_get_error(FyXfer *self, void *closure)
{
    (void)closure;
    if (fyp_xfer_check(self) < 0)
        return NULL;
    return fyp_str(ferry_xfer_error(self->xfer));
}

static PyObject *Xfer_get_released(FyXfer *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(!fyp_xfer_live(self));
}

static PyObject *Xfer_get_agent(FyXfer *self, void *closure)
{
    (void)closure;
    return Py_NewRef(self->owner);
}

static PyObject *Xfer_get_handle(FyXfer *self, void *closure)
{
    (void)closure;
    return PyLong_FromVoidPtr(fyp_xfer_live(self) ? self->xfer : NULL);
}

static PyObject *Xfer_repr(FyXfer *self)
{
    if (!fyp_xfer_live(self))
        return PyUnicode_FromString("<ferry.Xfer released>");
    return PyUnicode_FromFormat("<ferry.Xfer %zu segments via %s>", ferry_xfer_count(self->xfer),
                                ferry_backend_name(ferry_xfer_backend(self->xfer)));
}

static PyMethodDef Xfer_methods[] = {
    {"post", (PyCFunction)(void (*)(void))Xfer_post, METH_FASTCALL | METH_KEYWORDS,
     "post(notif=None) -> 0 done inline, 1 in progress; errors raise"},
    {"status", (PyCFunction)Xfer_status, METH_NOARGS,
     "status() -> 0 done, 1 in progress; the error that ended the request raises"},
    {"wait", (PyCFunction)(void (*)(void))Xfer_wait, METH_VARARGS | METH_KEYWORDS,
     "wait(timeout=None) -> True when done, False on timeout (seconds)"},
    {"set_notif", (PyCFunction)Xfer_set_notif, METH_O,
     "set_notif(msg): notification of the next post (None or b'': none)"},
    {"set_timeout", (PyCFunction)Xfer_set_timeout, METH_O,
     "set_timeout(ms): deadline of the next posts (None/0: the agent's xfer_timeout_ms, "
     "TIMEOUT_NONE: none); a post past it ends with TimedOutError"},
    {"telemetry", (PyCFunction)Xfer_telemetry, METH_NOARGS, "Telemetry of the last post."},
    {"estimate", (PyCFunction)Xfer_estimate, METH_NOARGS,
     "estimate() -> (duration_us, error_margin_us, method)"},
    {"release", (PyCFunction)Xfer_release, METH_NOARGS,
     "Releases the request (cancels it if in progress); idempotent."},
    {"__enter__", (PyCFunction)Xfer_enter, METH_NOARGS,
     "__enter__() -> Xfer: the request itself; leaving the block releases it."},
    {"__exit__", (PyCFunction)Xfer_exit, METH_VARARGS,
     "__exit__(*exc) -> None: releases the request (canceling it if in progress); "
     "exceptions propagate."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Xfer_getset[] = {
    {"backend", (getter)Xfer_get_backend, NULL, "name of the serving backend", NULL},
    {"count", (getter)Xfer_get_count, NULL, "segments after merging", NULL},
    {"error", (getter)Xfer_get_error, NULL, "the backend's message for the last error", NULL},
    {"released", (getter)Xfer_get_released, NULL, "True once released", NULL},
    {"agent", (getter)Xfer_get_agent, NULL, "owning Agent", NULL},
    {"_handle", (getter)Xfer_get_handle, NULL, "address of the C handle (0 once released)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject FyXfer_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ferry_kv.Xfer",
    .tp_basicsize = sizeof(FyXfer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A transfer request (Agent.make_xfer / Agent.create_xfer). A context manager.",
    .tp_dealloc = (destructor)Xfer_dealloc,
    .tp_repr = (reprfunc)Xfer_repr,
    .tp_methods = Xfer_methods,
    .tp_getset = Xfer_getset,
};

int fyp_handles_init(PyObject *module)
{
    PyTypeObject *types[] = {&FyAgent_Type, &FyBackend_Type, &FyPrepped_Type, &FyXfer_Type};
    const char *names[] = {"Agent", "Backend", "Prepped", "Xfer"};
    for (int i = 0; i < 4; i++)
        if (PyType_Ready(types[i]) < 0 ||
            PyModule_AddObjectRef(module, names[i], (PyObject *)types[i]) < 0)
            return -1;
    FyTelemetry_Type = PyStructSequence_NewType(&fyp_telemetry_desc);
    if (!FyTelemetry_Type)
        return -1;
    return PyModule_AddObjectRef(module, "XferTelemetry", (PyObject *)FyTelemetry_Type);
}
