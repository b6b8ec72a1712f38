/* SPDX-License-Identifier: Apache-2.0 */
/* One exception class per ferry_status error, all derived from ferry.Error
 * (itself a RuntimeError), so callers catch one status or all of them. Each
 * class carries its code as `status` and its symbolic name as `status_name`;
 * each exception also its `detail`: why the library says the call failed
 * (ferry_last_error), which otherwise would only reach the log. */
#include "fy_py.h"

#include <string.h>

typedef struct fyp_err_spec {
    ferry_status status;
    const char *name;
} fyp_err_spec;

static const fyp_err_spec fyp_errs[] = {
    {FERRY_ERR_NOT_POSTED, "NotPostedError"},
    {FERRY_ERR_INVALID_PARAM, "InvalidParamError"},
    {FERRY_ERR_BACKEND, "BackendError"},
    {FERRY_ERR_NOT_FOUND, "NotFoundError"},
    {FERRY_ERR_MISMATCH, "MismatchError"},
    {FERRY_ERR_NOT_ALLOWED, "NotAllowedError"},
    {FERRY_ERR_REPOST_ACTIVE, "RepostActiveError"},
    {FERRY_ERR_UNKNOWN, "UnknownError"},
    {FERRY_ERR_NOT_SUPPORTED, "NotSupportedError"},
    {FERRY_ERR_REMOTE_DISCONNECT, "RemoteDisconnectError"},
    {FERRY_ERR_CANCELED, "CanceledError"},
    {FERRY_ERR_NO_TELEMETRY, "NoTelemetryError"},
    {FERRY_ERR_NO_MEMORY, "NoMemoryError"},
    {FERRY_ERR_TIMEOUT, "TimedOutError"},
    {FERRY_ERR_BAD_METADATA, "BadMetadataError"},
    {FERRY_ERR_IO, "IoError"},
    {FERRY_ERR_NO_RESOURCES, "NoResourcesError"},
    {FERRY_ERR_AUTH, "AuthError"},
    {FERRY_ERR_STALE, "StaleError"},
    {FERRY_ERR_ABI, "AbiError"},
};
#define FYP_NUM_ERRS (sizeof(fyp_errs) / sizeof(fyp_errs[0]))
/* Indexed by -status; codes outside the table map to the base class. */
#define FYP_ERR_SLOTS 32
static PyObject *fyp_err_base;
static int fyp_err_add_ints(PyObject *module);
static PyObject *fyp_err_cls[FYP_ERR_SLOTS];

/* A class body dict: status, status_name and a docstring from the library. */
static PyObject *fyp_err_dict(ferry_status status)
{
    PyObject *d = Py_BuildValue("{s:i,s:s,s:s}", "status", (int)status, "status_name",
                                ferry_status_name(status), "__doc__", ferry_strerror(status));
    return d;
}

static int fyp_err_add(PyObject *module, const fyp_err_spec *spec)
{
    char qual[96];
    snprintf(qual, sizeof(qual), "ferry_kv.%s", spec->name);
    PyObject *dict = fyp_err_dict(spec->status);
    if (!dict)
        return -1;
    PyObject *cls = PyErr_NewException(qual, fyp_err_base, dict);
    Py_DECREF(dict);
    if (!cls)
        return -1;
    fyp_err_cls[-spec->status] = cls; /* the module keeps a reference too */
    if (PyModule_AddObjectRef(module, spec->name, cls) < 0)
        return -1;
    return 0;
}

/* {status: class} for the Python layer (ferry.error_class). */
static int fyp_err_map(PyObject *module)
{
    PyObject *map = PyDict_New();
    if (!map)
        return -1;
    for (size_t i = 0; i < FYP_NUM_ERRS; i++) {
        PyObject *key = PyLong_FromLong(fyp_errs[i].status);
        int rc = key ? PyDict_SetItem(map, key, fyp_err_cls[-fyp_errs[i].status]) : -1;
        Py_XDECREF(key);
        if (rc < 0) {
            Py_DECREF(map);
            return -1;
        }
    }
    int rc = PyModule_AddObjectRef(module, "error_classes", map);
    Py_DECREF(map);
    return rc;
}

int fyp_errors_init(PyObject *module)
{
    PyObject *dict = Py_BuildValue("{s:O,s:O,s:s,s:s}", "status", Py_None, "status_name", Py_None,
                                   "detail", "", "__doc__", "Base class of every ferry error.");
    if (!dict)
        return -1;
    fyp_err_base = PyErr_NewException("ferry_kv.Error", PyExc_Exception, dict);
    Py_DECREF(dict);
    if (!fyp_err_base || PyModule_AddObjectRef(module, "Error", fyp_err_base) < 0)
        return -1;
    for (size_t i = 0; i < FYP_NUM_ERRS; i++)
        if (fyp_err_add(module, &fyp_errs[i]) < 0)
            return -1;
    if (fyp_err_map(module) < 0)
        return -1;
    return fyp_err_add_ints(module);
}

/* The detail of an exception: the caller's (what the call was about, or a
 * request's ferry_xfer_error) and the library's (ferry_last_error), once
 * when one holds the other. */
static void fyp_err_detail(char *out, size_t cap, const char *mine, const char *lib)
{
    mine = mine ? mine : "";
    if (!*lib || strstr(mine, lib))
        snprintf(out, cap, "%s", mine);
    else if (!*mine || strstr(lib, mine))
        snprintf(out, cap, "%s", lib);
    else
        snprintf(out, cap, "%s: %s", mine, lib);
}

/* cls(message) with .status and .detail set on the instance: the base
 * class has no status of its own. */
static PyObject *fyp_err_new(PyObject *cls, ferry_status status, const char *detail)
{
    char msg[1024];
    if (*detail)
        snprintf(msg, sizeof(msg), "%s: %s (%s)", ferry_status_name(status), ferry_strerror(status),
                 detail);
    else
        snprintf(msg, sizeof(msg), "%s: %s", ferry_status_name(status), ferry_strerror(status));
    PyObject *text = PyUnicode_DecodeUTF8(msg, (Py_ssize_t)strlen(msg), "replace");
    PyObject *exc = text ? PyObject_CallOneArg(cls, text) : NULL;
    Py_XDECREF(text);
    PyObject *st = exc ? PyLong_FromLong(status) : NULL;
    PyObject *det = st ? PyUnicode_DecodeUTF8(detail, (Py_ssize_t)strlen(detail), "replace") : NULL;
    int rc = det ? PyObject_SetAttrString(exc, "status", st) : -1;
    if (rc == 0)
        rc = PyObject_SetAttrString(exc, "detail", det);
    Py_XDECREF(st);
    Py_XDECREF(det);
    if (rc < 0)
        Py_CLEAR(exc);
    return exc;
}

/* Only failures come here: a call that succeeds reads no detail. The
 * library's detail is taken (cleared) so the next exception does not
 * repeat it. */
PyObject *fyp_raise(ferry_status status, const char *detail)
{
    int slot = -(int)status;
    PyObject *cls =
        slot > 0 && slot < FYP_ERR_SLOTS && fyp_err_cls[slot] ? fyp_err_cls[slot] : fyp_err_base;
    char text[1024];
    fyp_err_detail(text, sizeof(text), detail, ferry_last_error());
    ferry_clear_error();
    PyObject *exc = fyp_err_new(cls, status, text);
    if (!exc)
        return NULL;
    PyErr_SetObject(cls, exc);
    Py_DECREF(exc);
    return NULL;
}

/* ---- module functions: the detail and the log level ---- */

static PyObject *fyp_last_error(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    const char *d = ferry_last_error();
    return PyUnicode_DecodeUTF8(d, (Py_ssize_t)strlen(d), "replace");
}

static PyObject *fyp_clear_error(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    ferry_clear_error();
    Py_RETURN_NONE;
}

static PyObject *fyp_set_log_level(PyObject *mod, PyObject *arg)
{
    (void)mod;
    long level = PyLong_AsLong(arg);
    if (level == -1 && PyErr_Occurred())
        return NULL;
    if (level < FERRY_LOG_ERROR || level > FERRY_LOG_TRACE)
        return PyErr_Format(PyExc_ValueError, "log level %ld is not in 0 (error) .. 4 (trace)",
                            level);
    ferry_set_log_level((ferry_log_level)level);
    Py_RETURN_NONE;
}

static PyObject *fyp_get_log_level(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    return PyLong_FromLong(ferry_get_log_level());
}

static PyMethodDef fyp_err_methods[] = {
    {"last_error", fyp_last_error, METH_NOARGS,
     "last_error() -> str: why this thread's calls failed since the last exception or "
     "clear_error() (ferry_last_error)"},
    {"clear_error", fyp_clear_error, METH_NOARGS, "clear_error(): empties last_error()"},
    {"set_log_level", fyp_set_log_level, METH_O,
     "set_log_level(level): 0 error, 1 warn, 2 info, 3 debug, 4 trace (whole process)"},
    {"get_log_level", fyp_get_log_level, METH_NOARGS, "get_log_level() -> int"},
    {NULL, NULL, 0, NULL},
};

static int fyp_err_add_ints(PyObject *module)
{
    static const char *const names[] = {"LOG_ERROR", "LOG_WARN", "LOG_INFO", "LOG_DEBUG",
                                        "LOG_TRACE"};
    for (int i = FERRY_LOG_ERROR; i <= FERRY_LOG_TRACE; i++)
        if (PyModule_AddIntConstant(module, names[i], i) < 0)
            return -1;
    return PyModule_AddFunctions(module, fyp_err_methods);
}
