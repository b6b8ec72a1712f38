/* SPDX-License-Identifier: Apache-2.0 */
/* One exception class per ferry_status error, all derived from ferry.Error
 * (itself a RuntimeError), so callers catch one status or all of them. Each
 * class carries its code as `status` and its symbolic name as `status_name`. */
#include "fy_py.h"

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
    PyObject *dict = Py_BuildValue("{s:O,s:O,s:s}", "status", Py_None, "status_name", Py_None,
                                   "__doc__", "Base class of every ferry error.");
    if (!dict)
        return -1;
    fyp_err_base = PyErr_NewException("ferry_kv.Error", PyExc_RuntimeError, dict);
    Py_DECREF(dict);
    if (!fyp_err_base || PyModule_AddObjectRef(module, "Error", fyp_err_base) < 0)
        return -1;
    for (size_t i = 0; i < FYP_NUM_ERRS; i++)
        if (fyp_err_add(module, &fyp_errs[i]) < 0)
            return -1;
    return fyp_err_map(module);
}

PyObject *fyp_raise(ferry_status status, const char *detail)
{
    int slot = -(int)status;
    PyObject *cls =
        slot > 0 && slot < FYP_ERR_SLOTS && fyp_err_cls[slot] ? fyp_err_cls[slot] : fyp_err_base;
    if (detail && *detail)
        PyErr_Format(cls, "%s: %s (%s)", ferry_status_name(status), ferry_strerror(status), detail);
    else
        PyErr_Format(cls, "%s: %s", ferry_status_name(status), ferry_strerror(status));
    return NULL;
}
