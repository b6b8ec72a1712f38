/* SPDX-License-Identifier: Apache-2.0 */
/* Module ferry_kv._ferry: types, exceptions, constants and small functions. */
#include "fy_py.h"

static PyObject *fyp_version(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    return PyUnicode_FromString(ferry_version_string());
}

static PyObject *fyp_strerror(PyObject *mod, PyObject *arg)
{
    (void)mod;
    long st = PyLong_AsLong(arg);
    if (st == -1 && PyErr_Occurred())
        return NULL;
    return PyUnicode_FromString(ferry_strerror((ferry_status)st));
}

static PyObject *fyp_status_name(PyObject *mod, PyObject *arg)
{
    (void)mod;
    long st = PyLong_AsLong(arg);
    if (st == -1 && PyErr_Occurred())
        return NULL;
    return PyUnicode_FromString(ferry_status_name((ferry_status)st));
}

/* raise_status(code, detail=None): raises the class of code (tests, Python layer). */
static PyObject *fyp_raise_status(PyObject *mod, PyObject *args)
{
    (void)mod;
    int st;
    const char *detail = NULL;
    if (!PyArg_ParseTuple(args, "i|z:raise_status", &st, &detail))
        return NULL;
    if (st >= 0)
        Py_RETURN_NONE;
    return fyp_raise((ferry_status)st, detail);
}

static PyObject *fyp_mem_type_parse(PyObject *mod, PyObject *arg)
{
    (void)mod;
    ferry_mem_type t;
    if (fyp_mem_type(arg, &t) < 0)
        return NULL;
    return PyLong_FromLong(t);
}

static PyObject *fyp_mem_type_name(PyObject *mod, PyObject *arg)
{
    (void)mod;
    ferry_mem_type t;
    if (fyp_mem_type(arg, &t) < 0)
        return NULL;
    return PyUnicode_FromString(ferry_mem_type_name(t));
}

static PyMethodDef fyp_methods[] = {
    {"version", fyp_version, METH_NOARGS, "Version string of the loaded libferry."},
    {"strerror", fyp_strerror, METH_O, "strerror(status) -> description"},
    {"status_name", fyp_status_name, METH_O, "status_name(status) -> 'FERRY_ERR_...'"},
    {"raise_status", fyp_raise_status, METH_VARARGS,
     "raise_status(status, detail=None): raises the exception of a negative status"},
    {"mem_type_parse", fyp_mem_type_parse, METH_O, "mem_type_parse(name or int) -> int"},
    {"mem_type_name", fyp_mem_type_name, METH_O, "mem_type_name(int or name) -> 'DRAM', ..."},
    {NULL, NULL, 0, NULL},
};

static int fyp_add_ints(PyObject *m)
{
    static const struct {
        const char *name;
        long value;
    } ints[] = {
        {"MEM_DRAM", FERRY_MEM_DRAM},
        {"MEM_VRAM", FERRY_MEM_VRAM},
        {"MEM_FILE", FERRY_MEM_FILE},
        {"MEM_BLOCK", FERRY_MEM_BLOCK},
        {"MEM_OBJ", FERRY_MEM_OBJ},
        {"OP_READ", FERRY_OP_READ},
        {"OP_WRITE", FERRY_OP_WRITE},
        {"SYNC_RW", FERRY_SYNC_RW},
        {"SYNC_STRICT", FERRY_SYNC_STRICT},
        {"SYNC_NONE", FERRY_SYNC_NONE},
        {"CAP_LOCAL", FERRY_CAP_LOCAL},
        {"CAP_REMOTE", FERRY_CAP_REMOTE},
        {"CAP_NOTIF", FERRY_CAP_NOTIF},
        {"CAP_PROGRESS", FERRY_CAP_PROGRESS},
        {"COST_ANALYTICAL", FERRY_COST_ANALYTICAL},
        {"COST_MEASURED", FERRY_COST_MEASURED},
        {"OK", FERRY_OK},
        {"IN_PROGRESS", FERRY_IN_PROGRESS},
        {"NOTIF_MAX_LEN", FERRY_NOTIF_MAX_LEN},
        {"NAME_MAX", FERRY_NAME_MAX},
        {"VERSION", FERRY_VERSION},
        {"TIMEOUT_NONE", (long)FERRY_TIMEOUT_NONE},
        {"XFER_TIMEOUT_DEFAULT_MS", FERRY_XFER_TIMEOUT_DEFAULT_MS},
    };
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
        if (PyModule_AddIntConstant(m, ints[i].name, ints[i].value) < 0)
            return -1;
    return 0;
}

static struct PyModuleDef fyp_module = {
    PyModuleDef_HEAD_INIT,
    "ferry_kv._ferry",
    "CPython extension over ferry's C API; use the ferry package.",
    -1,
    NULL,
};

static int fyp_add_functions(PyObject *m)
{
    if (PyModule_AddFunctions(m, fyp_methods) < 0)
        return -1;
    return PyModule_AddFunctions(m, fyp_util_methods);
}

PyMODINIT_FUNC PyInit__ferry(void)
{
    PyObject *m = PyModule_Create(&fyp_module);
    if (!m)
        return NULL;
    if (fyp_add_functions(m) < 0 || fyp_errors_init(m) < 0 || fyp_dlist_init_types(m) < 0 ||
        fyp_handles_init(m) < 0 || fyp_alloc_init(m) < 0 || fyp_add_ints(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
