/* SPDX-License-Identifier: Apache-2.0 */
/* ferry_kv._ferry: the CPython extension over ferry's public C API.
 *
 * Object model (why it looks like this):
 *  - Agent owns a ferry_agent. Every handle (Backend, Prepped, Xfer) holds a
 *    strong reference to its Agent, so the agent outlives them unless it is
 *    closed explicitly. ferry_agent_destroy() frees every handle the agent
 *    still owns; a handle notices that through owner->agent == NULL and never
 *    touches its (now freed) C pointer again. Releasing handles and agents in
 *    any order is therefore safe.
 *  - DList owns a ferry_dlist and is independent of agents.
 *  - Calls that may block release the GIL, except on agents in
 *    FERRY_SYNC_NONE mode: there the GIL is what keeps calls one at a time. */
#ifndef FY_PY_H
#define FY_PY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <ferry/ferry.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct FyAgent {
    PyObject_HEAD ferry_agent *agent; /* NULL once closed */
    PyObject *name;                   /* str */
    bool keep_gil;                    /* FERRY_SYNC_NONE: the GIL serialises calls */
    int busy;                         /* calls running with the GIL released */
    Py_ssize_t views;                 /* open views of its mem_alloc memory */
    PyObject *weakrefs;
} FyAgent;

typedef struct FyBackend {
    PyObject_HEAD FyAgent *owner;
    ferry_backend *backend; /* owned by the agent */
} FyBackend;

typedef struct FyDList {
    PyObject_HEAD ferry_dlist *list;
} FyDList;

typedef struct FyPrepped {
    PyObject_HEAD FyAgent *owner;
    ferry_prepped *prepped; /* NULL once released */
    PyObject *remote;       /* remote agent name (str) or None for the local side */
} FyPrepped;

typedef struct FyXfer {
    PyObject_HEAD FyAgent *owner;
    ferry_xfer *xfer; /* NULL once released */
} FyXfer;

extern PyTypeObject FyAgent_Type, FyBackend_Type, FyDList_Type, FyPrepped_Type, FyXfer_Type;
extern PyStructSequence_Desc fyp_telemetry_desc;
extern PyTypeObject *FyTelemetry_Type;

/* ---- errors.c ---- */
int fyp_errors_init(PyObject *module);
/* Sets the exception of status (a negative ferry_status) with an optional
 * detail string; returns NULL so callers can `return fyp_raise(...)`. */
PyObject *fyp_raise(ferry_status status, const char *detail);

/* ---- convert.c: argument converters (for "O&") and helpers ---- */
/* A name given as str or bytes; .s is NULL for None when optional. */
typedef struct fyp_name {
    const char *s;
} fyp_name;
int fyp_conv_name(PyObject *obj, void *out);     /* required */
int fyp_conv_name_opt(PyObject *obj, void *out); /* None or "" -> NULL */

/* Bytes-like or str (UTF-8) message; release with fyp_bytes_release. */
typedef struct fyp_bytes {
    Py_buffer view;
    bool held;
    const void *buf;
    size_t len;
} fyp_bytes;
int fyp_bytes_get(PyObject *obj, fyp_bytes *out, bool none_ok);
void fyp_bytes_release(fyp_bytes *b);

int fyp_mem_type(PyObject *obj, ferry_mem_type *out);
int fyp_conv_mem_type(PyObject *obj, void *out);
int fyp_conv_op(PyObject *obj, void *out);

/* Backends chosen by Backend objects or names; sel is NULL when none. */
#define FYP_MAX_BACKENDS 16
typedef struct fyp_backends {
    ferry_backend *list[FYP_MAX_BACKENDS];
    ferry_backend_sel sel;
    const ferry_backend_sel *selp;
} fyp_backends;
int fyp_backends_get(FyAgent *agent, PyObject *obj, fyp_backends *out);

/* Index arrays: 1-D int32/uint32 buffers are used in place; anything else
 * (lists, other integer dtypes) is converted into owned storage. */
typedef struct fyp_indices {
    const void *idx; /* uint32_t entries, or int64_t ones when wide */
    bool wide;
    size_t n;
    Py_buffer view;
    bool held;
    uint32_t *owned;
    uint32_t small[64];
} fyp_indices;
int fyp_indices_get(PyObject *obj, fyp_indices *out);
/* A wide array as 32-bit entries (when the other side of a request is not
 * wide), refusing what does not fit (IndexError). */
int fyp_indices_narrow(fyp_indices *ix);
void fyp_indices_release(fyp_indices *ix);

/* Last character of v's struct format ('B' when it has none). */
char fyp_fmt_char(const Py_buffer *v);
/* The integer at p, an element of buffer v of any integer format. */
int fyp_buf_elem(const Py_buffer *v, const char *p, uint64_t *out, bool *neg);

PyObject *fyp_str(const char *s);

/* METH_FASTCALL | METH_KEYWORDS arguments matched to a NULL-terminated list
 * of names; out[i] is NULL when argument i was not given. The first nreq
 * are required. */
int fyp_args(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
             const char *const *names, int nreq,
             PyObject **out); /* str from UTF-8 (surrogateescape), "" for NULL */

/* ---- agent.c ---- */
/* Checks the agent is open; raises NotAllowedError otherwise. */
int fyp_agent_check(FyAgent *agent);
/* A timeout_ms argument: None/0 (the agent's) or 1 .. 2**32-1; -1 with an exception. */
int fyp_timeout_get(PyObject *obj, uint32_t *ms);
/* GIL release around a call, unless the agent keeps it (FERRY_SYNC_NONE). */
#define FYP_CALL(agent_, stmt)                                                                     \
    do {                                                                                           \
        if ((agent_)->keep_gil) {                                                                  \
            stmt;                                                                                  \
        } else {                                                                                   \
            (agent_)->busy++;                                                                      \
            PyThreadState *fyp_ts_ = PyEval_SaveThread();                                          \
            stmt;                                                                                  \
            PyEval_RestoreThread(fyp_ts_);                                                         \
            (agent_)->busy--;                                                                      \
        }                                                                                          \
    } while (0)

/* ---- query.c ---- */
/* Agent.query_mem(dlist, backend=None) -> [None or dict, ...] */
PyObject *fyp_agent_query_mem(FyAgent *self, PyObject *args, PyObject *kwds);

/* ---- alloc.c ---- */
/* Agent.mem_alloc(nbytes, mem_type="DRAM", dev_id=0, backend=None) -> Alloc */
PyObject *fyp_agent_mem_alloc(FyAgent *self, PyObject *args, PyObject *kwds);
int fyp_alloc_init(PyObject *module);

/* ---- handles.c ---- */
PyObject *fyp_backend_new(FyAgent *owner, ferry_backend *backend);
PyObject *fyp_prepped_new(FyAgent *owner, ferry_prepped *prepped, PyObject *remote);
PyObject *fyp_xfer_new(FyAgent *owner, ferry_xfer *xfer);
int fyp_handles_init(PyObject *module);

/* ---- dlist.c ---- */
int fyp_is_dlist(PyObject *obj);
int fyp_dlist_init_types(PyObject *module);
/* The list of obj, which must be a DList; raises TypeError otherwise. */
ferry_dlist *fyp_dlist_of(PyObject *obj, const char *what);

/* ---- util.c: raw memory helpers (tests, nixl._utils), DLPack ---- */
extern PyMethodDef fyp_util_methods[];

#endif
