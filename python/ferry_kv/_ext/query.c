/* SPDX-License-Identifier: Apache-2.0 */
/* Agent.query_mem: ferry_query_mem, one answer per descriptor as None (not
 * found) or a dict of ints whose keys depend on the memory type. */
#include "fy_py.h"

/* The backend argument: None, a Backend of this agent or a plugin name
 * (the same rules as an element of a backends list). */
static int fyp_one_backend(FyAgent *self, PyObject *obj, ferry_backend **out)
{
    fyp_backends sel;
    *out = NULL;
    if (!obj || obj == Py_None)
        return 0;
    PyObject *one = PyTuple_Pack(1, obj);
    if (!one)
        return -1;
    int rc = fyp_backends_get(self, one, &sel);
    Py_DECREF(one);
    if (rc == 0)
        *out = sel.list[0];
    return rc;
}

static PyObject *fyp_info_dict(ferry_mem_type type, const ferry_mem_info *info)
{
    if (!info->found)
        Py_RETURN_NONE;
    if (type == FERRY_MEM_OBJ) /* the backend's answer: the object's size */
        return Py_BuildValue("{s:K}", "size", (unsigned long long)info->file_size);
    if (type == FERRY_MEM_FILE)
        return Py_BuildValue("{s:K,s:I,s:L}", "size", (unsigned long long)info->file_size, "mode",
                             (unsigned int)info->file_mode, "mtime", (long long)info->file_mtime);
    return Py_BuildValue("{s:K,s:K,s:K}", "addr", (unsigned long long)info->region_addr, "len",
                         (unsigned long long)info->region_len, "dev_id",
                         (unsigned long long)info->dev_id);
}

static PyObject *fyp_infos_list(ferry_mem_type type, const ferry_mem_info *infos, size_t n)
{
    PyObject *out = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; out && i < n; i++) {
        PyObject *item = fyp_info_dict(type, &infos[i]);
        if (!item)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, (Py_ssize_t)i, item);
    }
    return out;
}

PyObject *fyp_agent_query_mem(FyAgent *self, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"dlist", "backend", NULL};
    PyObject *dl, *bobj = NULL;
    ferry_backend *be;
    if (fyp_agent_check(self) < 0 ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "O|O:query_mem", kw, &dl, &bobj))
        return NULL;
    ferry_dlist *list = fyp_dlist_of(dl, "dlist");
    if (!list || fyp_one_backend(self, bobj, &be) < 0)
        return NULL;
    size_t n = ferry_dlist_count(list);
    ferry_mem_info *infos = PyMem_Calloc(n ? n : 1, sizeof(*infos));
    if (!infos)
        return PyErr_NoMemory();
    for (size_t i = 0; i < n; i++)
        ferry_mem_info_init(&infos[i]);
    ferry_status rc;
    /* FILE answers stat() each path, which may block (network file systems). */
    FYP_CALL(self, rc = ferry_query_mem(self->agent, list, be, infos, n));
    PyObject *out =
        rc == FERRY_OK ? fyp_infos_list(ferry_dlist_mem_type(list), infos, n) : fyp_raise(rc, NULL);
    PyMem_Free(infos);
    return out;
}
