/* SPDX-License-Identifier: Apache-2.0 */
/* ferry.Agent: one ferry_agent. Methods map one to one onto the C API;
 * names and defaults are the Pythonic ones (docs/python.md). */
#include "fy_py.h"

#include <string.h>

int fyp_agent_check(FyAgent *agent)
{
    if (agent->agent)
        return 0;
    fyp_raise(FERRY_ERR_NOT_ALLOWED, "the agent is closed");
    return -1;
}

/* The exception of a failed metadata call: what the call was about (a
 * peer address or agent name), then why (its ferry_md_error(), which is
 * part of the ferry_last_error() that fyp_raise adds). */
static PyObject *fyp_md_raise(ferry_status rc, const char *about)
{
    return fyp_raise(rc, about);
}

/* None, or the exception of a failed metadata call. */
static PyObject *fyp_md_done(ferry_status rc, const char *about)
{
    if (rc < 0)
        return fyp_md_raise(rc, about);
    Py_RETURN_NONE;
}

/* Result of a call that returns only a status: None or the exception. */
static PyObject *fyp_done(ferry_status rc, const char *detail)
{
    if (rc < 0)
        return fyp_raise(rc, detail);
    Py_RETURN_NONE;
}

/* ---- lifecycle ---- */

typedef struct fyp_agent_opts {
    int progress_thread, listen, telemetry;
    unsigned int progress_delay_us, notif_queue_cap, sc_timeout_ms, sc_max_frame, xfer_timeout_ms;
    unsigned int etcd_ttl_s, etcd_watch_timeout_ms;
    unsigned long long reg_cap_bytes;
    int listen_port, sync_mode, prometheus_port;
    const char *listen_host, *auth_key, *etcd_endpoints, *etcd_namespace, *tcpstore_endpoint;
    const char *telemetry_exporters, *telemetry_dir, *telemetry_metrics, *telemetry_buckets_us;
    const char *reg_cap_backends;
} fyp_agent_opts;

/* Zero-valued numeric options keep the library's defaults. */
static void fyp_apply_opts(ferry_agent_config *cfg, const fyp_agent_opts *o)
{
    cfg->progress_thread = o->progress_thread;
    cfg->listen = o->listen;
    cfg->telemetry = o->telemetry;
    cfg->listen_port = (uint16_t)o->listen_port;
    cfg->sync_mode = (ferry_sync_mode)o->sync_mode;
    cfg->reg_cap_bytes = o->reg_cap_bytes;
    if (o->listen_host)
        cfg->listen_host = o->listen_host;
    cfg->auth_key = o->auth_key; /* None: FERRY_AUTH_KEY, if set */
    if (o->progress_delay_us)
        cfg->progress_delay_us = o->progress_delay_us;
    if (o->notif_queue_cap)
        cfg->notif_queue_cap = o->notif_queue_cap;
    if (o->sc_timeout_ms)
        cfg->sc_timeout_ms = o->sc_timeout_ms;
    if (o->sc_max_frame)
        cfg->sc_max_frame = o->sc_max_frame;
    if (o->xfer_timeout_ms)
        cfg->xfer_timeout_ms = o->xfer_timeout_ms;
    /* None and 0: the environment's, else the library's defaults. */
    cfg->etcd_endpoints = o->etcd_endpoints;
    cfg->etcd_namespace = o->etcd_namespace;
    cfg->etcd_ttl_s = o->etcd_ttl_s;
    cfg->etcd_watch_timeout_ms = o->etcd_watch_timeout_ms;
    cfg->tcpstore_endpoint = o->tcpstore_endpoint;
    cfg->telemetry_exporters = o->telemetry_exporters;
    cfg->telemetry_dir = o->telemetry_dir;
    cfg->telemetry_prometheus_port = (uint16_t)o->prometheus_port;
    cfg->telemetry_metrics = o->telemetry_metrics;
    cfg->telemetry_buckets_us = o->telemetry_buckets_us;
    cfg->reg_cap_backends = o->reg_cap_backends;
}

static int Agent_init(FyAgent *self, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"name",
                         "progress_thread",
                         "progress_delay_us",
                         "listen",
                         "listen_host",
                         "listen_port",
                         "telemetry",
                         "sync_mode",
                         "notif_queue_cap",
                         "reg_cap_bytes",
                         "sc_timeout_ms",
                         "sc_max_frame",
                         "auth_key",
                         "xfer_timeout_ms",
                         "etcd_endpoints",
                         "etcd_namespace",
                         "etcd_ttl_s",
                         "etcd_watch_timeout_ms",
                         "tcpstore_endpoint",
                         "telemetry_exporters",
                         "telemetry_dir",
                         "telemetry_prometheus_port",
                         "telemetry_metrics",
                         "telemetry_buckets_us",
                         "reg_cap_backends",
                         NULL};
    fyp_agent_opts o = {0};
    PyObject *name;
    if (self->agent) {
        PyErr_SetString(PyExc_RuntimeError, "Agent is already initialised");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(
            args, kwds, "U|$pIpzipiIKIIzIzzIIzzzizzz:Agent", kw, &name, &o.progress_thread,
            &o.progress_delay_us, &o.listen, &o.listen_host, &o.listen_port, &o.telemetry,
            &o.sync_mode, &o.notif_queue_cap, &o.reg_cap_bytes, &o.sc_timeout_ms, &o.sc_max_frame,
            &o.auth_key, &o.xfer_timeout_ms, &o.etcd_endpoints, &o.etcd_namespace, &o.etcd_ttl_s,
            &o.etcd_watch_timeout_ms, &o.tcpstore_endpoint, &o.telemetry_exporters,
            &o.telemetry_dir, &o.prometheus_port, &o.telemetry_metrics, &o.telemetry_buckets_us,
            &o.reg_cap_backends))
        return -1;
    if (o.listen_port < 0 || o.listen_port > 65535 || o.prometheus_port < 0 ||
        o.prometheus_port > 65535) {
        PyErr_SetString(PyExc_ValueError,
                        "listen_port and telemetry_prometheus_port must be 0..65535");
        return -1;
    }
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = PyUnicode_AsUTF8(name);
    if (!cfg.name)
        return -1;
    fyp_apply_opts(&cfg, &o);
    ferry_agent *a = NULL;
    ferry_status rc;
    PyThreadState *ts = PyEval_SaveThread(); /* starting threads, binding: may take a while */
    rc = ferry_agent_create(&cfg, &a);
    PyEval_RestoreThread(ts);
    if (rc != FERRY_OK)
        return fyp_raise(rc, cfg.name), -1;
    self->agent = a;
    self->keep_gil = cfg.sync_mode == FERRY_SYNC_NONE;
    Py_INCREF(name);
    Py_XSETREF(self->name, name);
    return 0;
}

/* Destroys the C agent; every handle still open sees owner->agent == NULL
 * from now on and treats itself as released. */
static void fyp_agent_destroy(FyAgent *self)
{
    ferry_agent *a = self->agent;
    self->agent = NULL;
    if (!a)
        return;
    PyThreadState *ts = PyEval_SaveThread(); /* joins threads, cancels requests */
    ferry_agent_destroy(a);
    PyEval_RestoreThread(ts);
}

static PyObject *Agent_close(FyAgent *self, PyObject *unused)
{
    (void)unused;
    if (self->busy)
        return fyp_raise(FERRY_ERR_NOT_ALLOWED, "another thread is inside a call on this agent");
    if (self->views)
        return fyp_raise(FERRY_ERR_NOT_ALLOWED,
                         "views of memory from its mem_alloc are still open");
    fyp_agent_destroy(self);
    Py_RETURN_NONE;
}

static void Agent_dealloc(FyAgent *self)
{
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    fyp_agent_destroy(self);
    Py_CLEAR(self->name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Agent_enter(FyAgent *self, PyObject *unused)
{
    (void)unused;
    if (fyp_agent_check(self) < 0)
        return NULL;
    return Py_NewRef(self);
}

static PyObject *Agent_exit(FyAgent *self, PyObject *args)
{
    (void)args;
    return Agent_close(self, NULL);
}

static PyObject *Agent_progress(FyAgent *self, PyObject *unused)
{
    (void)unused;
    if (fyp_agent_check(self) < 0)
        return NULL;
    ferry_status rc;
    FYP_CALL(self, rc = ferry_agent_progress(self->agent));
    return fyp_done(rc, NULL);
}

/* ---- plugins and backends ---- */

static PyObject *Agent_plugins(FyAgent *self, PyObject *unused)
{
    (void)unused;
    size_t count = 0;
    if (fyp_agent_check(self) < 0)
        return NULL;
    ferry_status rc = ferry_plugin_list(self->agent, NULL, 0, &count);
    if (rc != FERRY_OK)
        return fyp_raise(rc, NULL);
    const char **names = PyMem_Calloc(count ? count : 1, sizeof(*names));
    if (!names)
        return PyErr_NoMemory();
    rc = ferry_plugin_list(self->agent, names, count, &count);
    PyObject *out = rc == FERRY_OK ? PyList_New(0) : fyp_raise(rc, NULL);
    for (size_t i = 0; out && i < count; i++) {
        PyObject *s = fyp_str(names[i]);
        if (!s || PyList_Append(out, s) < 0)
            Py_CLEAR(out);
        Py_XDECREF(s);
    }
    PyMem_Free(names);
    return out;
}

static PyObject *Agent_plugin_params(FyAgent *self, PyObject *arg)
{
    fyp_name plugin;
    if (fyp_agent_check(self) < 0 || !fyp_conv_name(arg, &plugin))
        return NULL;
    const ferry_param_spec *specs;
    size_t n;
    ferry_status rc = ferry_plugin_params(self->agent, plugin.s, &specs, &n);
    if (rc != FERRY_OK)
        return fyp_raise(rc, plugin.s);
    PyObject *out = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; out && i < n; i++) {
        PyObject *t = Py_BuildValue("(szs)", specs[i].key, specs[i].default_value,
                                    specs[i].help ? specs[i].help : "");
        if (!t)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, (Py_ssize_t)i, t);
    }
    return out;
}

/* Names of the memory types in a FERRY_MEM_MASK bit set. */
static PyObject *fyp_mem_names(uint32_t mask)
{
    PyObject *out = PyList_New(0);
    for (int t = 0; out && t < FERRY_MEM_TYPE_COUNT; t++) {
        if (!(mask & FERRY_MEM_MASK(t)))
            continue;
        PyObject *s = fyp_str(ferry_mem_type_name((ferry_mem_type)t));
        if (!s || PyList_Append(out, s) < 0)
            Py_CLEAR(out);
        Py_XDECREF(s);
    }
    return out;
}

static PyObject *Agent_plugin_mem_types(FyAgent *self, PyObject *arg)
{
    fyp_name plugin;
    uint32_t mask;
    if (fyp_agent_check(self) < 0 || !fyp_conv_name(arg, &plugin))
        return NULL;
    ferry_status rc = ferry_plugin_mem_types(self->agent, plugin.s, &mask);
    return rc == FERRY_OK ? fyp_mem_names(mask) : fyp_raise(rc, plugin.s);
}

static PyObject *Agent_plugin_path(FyAgent *self, PyObject *arg)
{
    fyp_name plugin;
    const char *path;
    uint32_t abi;
    if (fyp_agent_check(self) < 0 || !fyp_conv_name(arg, &plugin))
        return NULL;
    ferry_status rc = ferry_plugin_path(self->agent, plugin.s, &path, &abi);
    if (rc != FERRY_OK)
        return fyp_raise(rc, plugin.s);
    return Py_BuildValue("(NI)", fyp_str(path), (unsigned int)abi);
}

/* {key: value} -> ferry_param[]; keys and values are str (values via str()). */
static int fyp_params(PyObject *dict, ferry_param **out, size_t *n, PyObject **keep)
{
    *out = NULL;
    *n = 0;
    *keep = PyList_New(0);
    if (!*keep)
        return -1;
    if (!dict || dict == Py_None)
        return 0;
    if (!PyDict_Check(dict)) {
        PyErr_SetString(PyExc_TypeError, "params must be a dict of str to str");
        return -1;
    }
    *out = PyMem_Calloc((size_t)PyDict_GET_SIZE(dict) + 1, sizeof(**out));
    if (!*out)
        return PyErr_NoMemory(), -1;
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (PyDict_Next(dict, &pos, &k, &v)) {
        PyObject *ks = PyObject_Str(k), *vs = PyObject_Str(v);
        int bad = !ks || !vs || PyList_Append(*keep, ks) < 0 || PyList_Append(*keep, vs) < 0;
        Py_XDECREF(ks);
        Py_XDECREF(vs);
        if (bad)
            return -1;
        (*out)[*n].key = PyUnicode_AsUTF8(ks); /* kept alive by *keep */
        (*out)[*n].value = PyUnicode_AsUTF8(vs);
        if (!(*out)[*n].key || !(*out)[*n].value)
            return -1;
        (*n)++;
    }
    return 0;
}

static PyObject *Agent_create_backend(FyAgent *self, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"plugin", "params", NULL};
    fyp_name plugin;
    PyObject *dict = NULL, *keep = NULL, *out = NULL;
    ferry_param *params = NULL;
    size_t n;
    if (fyp_agent_check(self) < 0 ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "O&|O:create_backend", kw, fyp_conv_name, &plugin,
                                     &dict))
        return NULL;
    if (fyp_params(dict, &params, &n, &keep) == 0) {
        ferry_backend *be = NULL;
        ferry_status rc;
        FYP_CALL(self, rc = ferry_backend_create(self->agent, plugin.s, params, n, &be));
        out = rc == FERRY_OK ? fyp_backend_new(self, be) : fyp_raise(rc, plugin.s);
    }
    PyMem_Free(params);
    Py_XDECREF(keep);
    return out;
}

static PyObject *Agent_backend(FyAgent *self, PyObject *arg)
{
    fyp_name plugin;
    ferry_backend *be;
    if (fyp_agent_check(self) < 0 || !fyp_conv_name(arg, &plugin))
        return NULL;
    ferry_status rc = ferry_backend_find(self->agent, plugin.s, &be);
    return rc == FERRY_OK ? fyp_backend_new(self, be) : fyp_raise(rc, plugin.s);
}

/* ---- registration ---- */

static PyObject *fyp_reg_call(FyAgent *self, PyObject *args, PyObject *kwds, bool reg)
{
    static char *kw[] = {"dlist", "backends", NULL};
    PyObject *dl, *bes = NULL;
    fyp_backends sel;
    if (fyp_agent_check(self) < 0 ||
        !PyArg_ParseTupleAndKeywords(args, kwds, reg ? "O|O:register" : "O|O:deregister", kw, &dl,
                                     &bes))
        return NULL;
    ferry_dlist *list = fyp_dlist_of(dl, "dlist");
    if (!list || fyp_backends_get(self, bes, &sel) < 0)
        return NULL;
    ferry_status rc;
    if (reg)
        FYP_CALL(self, rc = ferry_register(self->agent, list, sel.selp));
    else
        FYP_CALL(self, rc = ferry_deregister(self->agent, list, sel.selp));
    return fyp_done(rc, NULL);
}

static PyObject *Agent_register(FyAgent *self, PyObject *args, PyObject *kwds)
{
    return fyp_reg_call(self, args, kwds, true);
}

static PyObject *Agent_deregister(FyAgent *self, PyObject *args, PyObject *kwds)
{
    return fyp_reg_call(self, args, kwds, false);
}

static PyObject *Agent_mem_usage(FyAgent *self, PyObject *unused)
{
    (void)unused;
    ferry_mem_usage u;
    ferry_mem_usage_init(&u);
    if (fyp_agent_check(self) < 0)
        return NULL;
    ferry_status rc = ferry_mem_usage_get(self->agent, &u);
    if (rc != FERRY_OK)
        return fyp_raise(rc, NULL);
    PyObject *out = PyDict_New();
    for (int t = 0; out && t < FERRY_MEM_TYPE_COUNT; t++) {
        PyObject *v =
            Py_BuildValue("(KK)", (unsigned long long)u.bytes[t], (unsigned long long)u.regions[t]);
        if (!v || PyDict_SetItemString(out, ferry_mem_type_name((ferry_mem_type)t), v) < 0)
            Py_CLEAR(out);
        Py_XDECREF(v);
    }
    return out;
}

static PyObject *Agent_counters(FyAgent *self, PyObject *unused)
{
    (void)unused;
    ferry_counters c;
    ferry_counters_init(&c);
    if (fyp_agent_check(self) < 0)
        return NULL;
    ferry_status rc = ferry_counters_get(self->agent, &c);
    if (rc != FERRY_OK)
        return fyp_raise(rc, NULL);
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}", "tx_bytes", c.tx_bytes,
                         "rx_bytes", c.rx_bytes, "tx_requests", c.tx_requests, "rx_requests",
                         c.rx_requests, "xfer_errors", c.xfer_errors, "notifs_received",
                         c.notifs_received, "notifs_dropped", c.notifs_dropped, "mem_registered",
                         c.mem_registered, "regions", c.regions, "auth_failures", c.auth_failures);
}

/* One series as a dict: name, kind, labels, value, and for histograms
 * buckets [(upper bound µs or inf, cumulative count)] and count. */
static PyObject *fyp_metric_dict(const ferry_metric *mt)
{
    static const char *const kinds[] = {"counter", "gauge", "histogram"};
    PyObject *labels = PyDict_New();
    for (size_t i = 0; labels && i < mt->num_labels; i++) {
        PyObject *v = PyUnicode_FromString(mt->labels[i].value);
        if (!v || PyDict_SetItemString(labels, mt->labels[i].key, v) < 0)
            Py_CLEAR(labels);
        Py_XDECREF(v);
    }
    if (!labels)
        return NULL;
    PyObject *d = Py_BuildValue("{s:s,s:s,s:N,s:K}", "name", mt->name, "kind", kinds[mt->kind],
                                "labels", labels, "value", (unsigned long long)mt->value);
    if (!d || mt->kind != FERRY_METRIC_HISTOGRAM)
        return d;
    PyObject *buckets = PyList_New((Py_ssize_t)mt->num_buckets + 1);
    for (size_t b = 0; buckets && b <= mt->num_buckets; b++) {
        PyObject *bound = b < mt->num_buckets ? PyFloat_FromDouble((double)mt->bounds[b])
                                              : PyFloat_FromDouble(Py_HUGE_VAL);
        PyList_SET_ITEM(buckets, (Py_ssize_t)b,
                        Py_BuildValue("(NK)", bound, (unsigned long long)mt->counts[b]));
    }
    PyObject *count = PyLong_FromUnsignedLongLong(mt->count);
    if (!buckets || !count || PyDict_SetItemString(d, "buckets", buckets) < 0 ||
        PyDict_SetItemString(d, "count", count) < 0)
        Py_CLEAR(d);
    Py_XDECREF(buckets);
    Py_XDECREF(count);
    return d;
}

static ferry_metrics *fyp_metrics_get(FyAgent *self)
{
    ferry_metrics *m = NULL;
    if (fyp_agent_check(self) < 0)
        return NULL;
    ferry_status rc = ferry_metrics_get(self->agent, &m);
    if (rc != FERRY_OK)
        fyp_raise(rc, NULL);
    return m;
}

static PyObject *Agent_metrics(FyAgent *self, PyObject *unused)
{
    (void)unused;
    ferry_metrics *m = fyp_metrics_get(self);
    if (!m)
        return NULL;
    size_t n = ferry_metrics_count(m);
    PyObject *out = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; out && i < n; i++) {
        PyObject *d = fyp_metric_dict(ferry_metrics_at(m, i));
        if (!d)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, (Py_ssize_t)i, d);
    }
    ferry_metrics_free(m);
    return out;
}

static PyObject *Agent_metrics_text(FyAgent *self, PyObject *unused)
{
    (void)unused;
    ferry_metrics *m = fyp_metrics_get(self);
    if (!m)
        return NULL;
    const char *text = ferry_metrics_text(m);
    PyObject *out = text ? PyUnicode_FromString(text) : PyErr_NoMemory();
    ferry_metrics_free(m);
    return out;
}

/* ---- prepared lists and requests ---- */

static PyObject *Agent_prep(FyAgent *self, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames)
{
    static const char *const names[] = {"dlist", "agent_name", "backends", NULL};
    PyObject *a[3];
    fyp_name remote = {NULL};
    fyp_backends sel;
    if (fyp_agent_check(self) < 0 || fyp_args("prep", args, nargs, kwnames, names, 1, a) < 0)
        return NULL;
    ferry_dlist *list = fyp_dlist_of(a[0], "dlist");
    if (!list || (a[1] && !fyp_conv_name_opt(a[1], &remote)) ||
        fyp_backends_get(self, a[2], &sel) < 0)
        return NULL;
    ferry_prepped *p = NULL;
    ferry_status rc;
    FYP_CALL(self, rc = ferry_prep_dlist(self->agent, remote.s, list, sel.selp, &p));
    if (rc != FERRY_OK)
        return fyp_raise(rc, remote.s);
    PyObject *rname = remote.s ? fyp_str(remote.s) : Py_NewRef(Py_None);
    PyObject *out = rname ? fyp_prepped_new(self, p, rname) : NULL;
    Py_XDECREF(rname);
    if (!out)
        ferry_prepped_release(p);
    return out;
}

/* The shared options of make and create: notif, backends, skip_merge,
 * backend, timeout_ms. */
typedef struct fyp_xopts {
    ferry_xfer_opts opts;
    fyp_bytes notif;
    fyp_backends sel;
} fyp_xopts;

/* timeout_ms: None/0 = the agent's, else 1 .. 2**32-1 (ferry.TIMEOUT_NONE: none). */
int fyp_timeout_get(PyObject *obj, uint32_t *ms)
{
    if (!obj || obj == Py_None) {
        *ms = 0;
        return 0;
    }
    unsigned long long v = PyLong_AsUnsignedLongLong(obj);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    if (v > FERRY_TIMEOUT_NONE) {
        PyErr_SetString(PyExc_ValueError, "timeout_ms must be 0 .. 2**32-1");
        return -1;
    }
    *ms = (uint32_t)v;
    return 0;
}

static int fyp_xopts_get(FyAgent *self, fyp_xopts *x, PyObject *const *a)
{
    PyObject *notif = a[0], *backends = a[1], *skip_merge = a[2], *backend = a[3];
    ferry_xfer_opts_init(&x->opts);
    memset(&x->notif, 0, sizeof(x->notif));
    if (fyp_timeout_get(a[4], &x->opts.timeout_ms) < 0)
        return -1;
    if (notif && !fyp_bytes_get(notif, &x->notif, true))
        return -1;
    if (x->notif.len) {
        x->opts.notif = x->notif.buf;
        x->opts.notif_len = x->notif.len;
    }
    if (fyp_backends_get(self, backends, &x->sel) < 0)
        return -1;
    x->opts.sel = x->sel.selp;
    if (skip_merge) {
        int v = PyObject_IsTrue(skip_merge);
        if (v < 0)
            return -1;
        x->opts.skip_merge = v;
    }
    if (backend && backend != Py_None) {
        fyp_backends one;
        PyObject *tup = PyTuple_Pack(1, backend);
        int rc = tup ? fyp_backends_get(self, tup, &one) : -1;
        Py_XDECREF(tup);
        if (rc < 0)
            return -1;
        x->opts.backend = one.list[0];
    }
    return 0;
}

static FyPrepped *fyp_prepped_arg(FyAgent *self, PyObject *obj, const char *what)
{
    if (!PyObject_TypeCheck(obj, &FyPrepped_Type)) {
        PyErr_Format(PyExc_TypeError, "%s must be a prepared list (Prepped), not %.80s", what,
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    FyPrepped *p = (FyPrepped *)obj;
    if (p->owner != self) {
        PyErr_Format(PyExc_ValueError, "%s was prepared by another agent", what);
        return NULL;
    }
    if (!p->prepped) {
        fyp_raise(FERRY_ERR_INVALID_PARAM, "prepared list already released");
        return NULL;
    }
    return p;
}

static PyObject *fyp_make(FyAgent *self, ferry_xfer_op op, FyPrepped *lp, fyp_indices *li,
                          FyPrepped *rp, fyp_indices *ri, fyp_xopts *x)
{
    if (li->n != ri->n)
        return fyp_raise(FERRY_ERR_INVALID_PARAM, "local and remote index lists differ in length");
    if (li->wide != ri->wide && (fyp_indices_narrow(li) < 0 || fyp_indices_narrow(ri) < 0))
        return NULL;
    ferry_xfer *xfer = NULL;
    ferry_status rc;
    if (li->wide)
        FYP_CALL(self, rc = ferry_xfer_make64(self->agent, op, lp->prepped, li->idx, rp->prepped,
                                              ri->idx, li->n, &x->opts, &xfer));
    else
        FYP_CALL(self, rc = ferry_xfer_make(self->agent, op, lp->prepped, li->idx, rp->prepped,
                                            ri->idx, li->n, &x->opts, &xfer));
    if (rc != FERRY_OK)
        return fyp_raise(rc, NULL);
    PyObject *out = fyp_xfer_new(self, xfer);
    if (!out)
        ferry_xfer_release(xfer);
    return out;
}

static PyObject *Agent_make_xfer(FyAgent *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames)
{
    static const char *const names[] = {
        "op",         "local",   "local_indices", "remote", "remote_indices", "notif", "backends",
        "skip_merge", "backend", "timeout_ms",    NULL};
    PyObject *a[10];
    ferry_xfer_op op;
    if (fyp_agent_check(self) < 0 || fyp_args("make_xfer", args, nargs, kwnames, names, 5, a) < 0 ||
        !fyp_conv_op(a[0], &op))
        return NULL;
    FyPrepped *lp = fyp_prepped_arg(self, a[1], "local");
    FyPrepped *rp = lp ? fyp_prepped_arg(self, a[3], "remote") : NULL;
    if (!rp)
        return NULL;
    fyp_indices li, ri;
    fyp_xopts x;
    PyObject *out = NULL;
    int ok_l = fyp_indices_get(a[2], &li) == 0;
    int ok_r = ok_l && fyp_indices_get(a[4], &ri) == 0;
    if (ok_r && fyp_xopts_get(self, &x, a + 5) == 0)
        out = fyp_make(self, op, lp, &li, rp, &ri, &x);
    if (ok_r)
        fyp_bytes_release(&x.notif);
    if (ok_l)
        fyp_indices_release(&ri); /* also when it failed half-way (a bad index) */
    fyp_indices_release(&li);
    return out;
}

static PyObject *Agent_create_xfer(FyAgent *self, PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames)
{
    static const char *const names[] = {"op",         "local",    "remote",     "remote_agent",
                                        "notif",      "backends", "skip_merge", "backend",
                                        "timeout_ms", NULL};
    PyObject *a[9];
    ferry_xfer_op op;
    fyp_name remote;
    fyp_xopts x;
    if (fyp_agent_check(self) < 0 ||
        fyp_args("create_xfer", args, nargs, kwnames, names, 4, a) < 0 || !fyp_conv_op(a[0], &op) ||
        !fyp_conv_name(a[3], &remote))
        return NULL;
    ferry_dlist *l = fyp_dlist_of(a[1], "local");
    ferry_dlist *r = l ? fyp_dlist_of(a[2], "remote") : NULL;
    if (!r || fyp_xopts_get(self, &x, a + 4) < 0)
        return NULL;
    ferry_xfer *xfer = NULL;
    ferry_status rc;
    FYP_CALL(self, rc = ferry_xfer_create(self->agent, op, l, r, remote.s, &x.opts, &xfer));
    fyp_bytes_release(&x.notif);
    if (rc != FERRY_OK)
        return fyp_raise(rc, remote.s);
    PyObject *out = fyp_xfer_new(self, xfer);
    if (!out)
        ferry_xfer_release(xfer);
    return out;
}

/* ---- notifications ---- */

static PyObject *Agent_send_notif(FyAgent *self, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"remote_agent", "msg", "backends", NULL};
    fyp_name remote;
    PyObject *msg, *bes = NULL;
    fyp_bytes m;
    fyp_backends sel;
    if (fyp_agent_check(self) < 0 ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "O&O|O:send_notif", kw, fyp_conv_name, &remote,
                                     &msg, &bes) ||
        fyp_backends_get(self, bes, &sel) < 0 || !fyp_bytes_get(msg, &m, false))
        return NULL;
    ferry_status rc;
    FYP_CALL(self, rc = ferry_notif_send(self->agent, remote.s, m.buf, m.len, sel.selp));
    fyp_bytes_release(&m);
    return fyp_done(rc, remote.s);
}

/* Appends msg to dict[name] (a list, created when missing). */
static int fyp_notif_add(PyObject *dict, const char *name, const void *msg, size_t len)
{
    PyObject *key = fyp_str(name);
    if (!key)
        return -1;
    PyObject *list = PyDict_GetItemWithError(dict, key);
    int rc = -1;
    if (!list && !PyErr_Occurred()) {
        list = PyList_New(0);
        if (list && PyDict_SetItem(dict, key, list) == 0)
            Py_DECREF(list); /* the dict holds it */
        else
            Py_CLEAR(list);
    }
    PyObject *b = list ? PyBytes_FromStringAndSize(msg, (Py_ssize_t)len) : NULL;
    if (b)
        rc = PyList_Append(list, b);
    Py_XDECREF(b);
    Py_DECREF(key);
    return rc;
}

/* get_notifs(remote=None, into=None): {sender: [bytes, ...]}, oldest first;
 * with into, appended to that dict, which is returned. */
static PyObject *Agent_get_notifs(FyAgent *self, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"remote_agent", "into", NULL};
    fyp_name remote = {NULL};
    PyObject *into = NULL;
    if (fyp_agent_check(self) < 0 ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "|O&O!:get_notifs", kw, fyp_conv_name_opt, &remote,
                                     &PyDict_Type, &into))
        return NULL;
    ferry_notif_batch *batch = NULL;
    ferry_status rc;
    FYP_CALL(self, rc = ferry_notif_take(self->agent, remote.s, &batch));
    if (rc != FERRY_OK)
        return fyp_raise(rc, NULL);
    PyObject *out = into ? Py_NewRef(into) : PyDict_New();
    size_t n = ferry_notif_batch_count(batch);
    for (size_t i = 0; out && i < n; i++) {
        const char *who;
        const void *msg;
        size_t len;
        if (ferry_notif_batch_get(batch, i, &who, &msg, &len) == FERRY_OK &&
            fyp_notif_add(out, who, msg, len) < 0)
            Py_CLEAR(out);
    }
    ferry_notif_batch_free(batch);
    return out;
}

static PyObject *Agent_take_notif_tag(FyAgent *self, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"remote_agent", "tag", "prefix", NULL};
    fyp_name remote;
    PyObject *tag;
    int prefix = 1;
    fyp_bytes t;
    if (fyp_agent_check(self) < 0 ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "O&O|p:take_notif_tag", kw, fyp_conv_name, &remote,
                                     &tag, &prefix) ||
        !fyp_bytes_get(tag, &t, false))
        return NULL;
    ferry_status rc;
    FYP_CALL(self, rc = ferry_notif_take_tag(self->agent, remote.s, t.buf, t.len, (bool)prefix));
    fyp_bytes_release(&t);
    if (rc == FERRY_OK)
        Py_RETURN_TRUE;
    if (rc == FERRY_ERR_NOT_FOUND)
        Py_RETURN_FALSE;
    return fyp_raise(rc, remote.s);
}

static PyObject *Agent_get_notifs_dropped(FyAgent *self, void *closure)
{
    (void)closure;
    if (fyp_agent_check(self) < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(ferry_notif_dropped(self->agent));
}

/* ---- metadata ---- */

static PyObject *fyp_blob(ferry_status rc, void *blob, size_t len)
{
    if (rc != FERRY_OK)
        return fyp_raise(rc, NULL);
    PyObject *out = PyBytes_FromStringAndSize(blob, (Py_ssize_t)len);
    ferry_free(blob);
    return out;
}

static PyObject *Agent_metadata(FyAgent *self, PyObject *unused)
{
    (void)unused;
    void *blob = NULL;
    size_t len = 0;
    if (fyp_agent_check(self) < 0)
        return NULL;
    ferry_status rc;
    FYP_CALL(self, rc = ferry_md_get_local(self->agent, &blob, &len));
    return fyp_blob(rc, blob, len);
}

/* A DList or a sequence of DLists -> array of ferry_dlist pointers. */
typedef struct fyp_lists {
    const ferry_dlist **lists;
    size_t n;
} fyp_lists;

static int fyp_lists_get(PyObject *obj, fyp_lists *out)
{
    out->lists = NULL;
    out->n = 0;
    if (!obj || obj == Py_None)
        return 0;
    if (fyp_is_dlist(obj)) {
        out->lists = PyMem_Malloc(sizeof(*out->lists));
        if (!out->lists)
            return PyErr_NoMemory(), -1;
        out->lists[0] = fyp_dlist_of(obj, "dlists");
        out->n = ferry_dlist_count(out->lists[0]) ? 1 : 0; /* empty: connection info only */
        return out->lists[0] ? 0 : -1;
    }
    PyObject *seq = PySequence_Fast(obj, "dlists must be a DList or a sequence of DLists");
    if (!seq)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    out->lists = PyMem_Malloc(sizeof(*out->lists) * (size_t)(n ? n : 1));
    int rc = out->lists ? 0 : (PyErr_NoMemory(), -1);
    for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
        out->lists[i] = fyp_dlist_of(PySequence_Fast_GET_ITEM(seq, i), "dlists item");
        rc = out->lists[i] ? 0 : -1;
    }
    out->n = (size_t)n;
    Py_DECREF(seq); /* the caller's sequence keeps the DLists alive */
    return rc;
}

static PyObject *Agent_partial_metadata(FyAgent *self, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"dlists", "include_conn_info", "backends", NULL};
    PyObject *dls = NULL, *bes = NULL, *out = NULL;
    int conn = 0;
    fyp_lists l = {NULL, 0};
    fyp_backends sel;
    if (fyp_agent_check(self) < 0 ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "|OpO:partial_metadata", kw, &dls, &conn, &bes))
        return NULL;
    if (fyp_lists_get(dls, &l) == 0 && fyp_backends_get(self, bes, &sel) == 0) {
        void *blob = NULL;
        size_t len = 0;
        ferry_status rc;
        FYP_CALL(self,
                 rc = ferry_md_get_partial(self->agent, l.lists, l.n, conn, sel.selp, &blob, &len));
        out = fyp_blob(rc, blob, len);
    }
    PyMem_Free(l.lists);
    return out;
}

static PyObject *Agent_load_metadata(FyAgent *self, PyObject *arg)
{
    fyp_bytes b;
    char name[FERRY_NAME_MAX + 1];
    if (fyp_agent_check(self) < 0 || !fyp_bytes_get(arg, &b, false))
        return NULL;
    ferry_status rc;
    FYP_CALL(self, rc = ferry_md_load(self->agent, b.buf, b.len, name, sizeof(name)));
    fyp_bytes_release(&b);
    return rc == FERRY_OK ? fyp_str(name) : fyp_md_raise(rc, NULL);
}

static PyObject *Agent_invalidate_remote(FyAgent *self, PyObject *arg)
{
    fyp_name remote;
    if (fyp_agent_check(self) < 0 || !fyp_conv_name(arg, &remote))
        return NULL;
    ferry_status rc;
    FYP_CALL(self, rc = ferry_md_invalidate(self->agent, remote.s));
    return fyp_done(rc, remote.s);
}

static PyObject *Agent_check_remote(FyAgent *self, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"remote_agent", "dlist", NULL};
    fyp_name remote;
    PyObject *dl = NULL;
    ferry_dlist *list = NULL;
    if (fyp_agent_check(self) < 0 || !PyArg_ParseTupleAndKeywords(args, kwds, "O&|O:check_remote",
                                                                  kw, fyp_conv_name, &remote, &dl))
        return NULL;
    if (dl && dl != Py_None && !(list = fyp_dlist_of(dl, "dlist")))
        return NULL;
    ferry_status rc;
    FYP_CALL(self, rc = ferry_md_check(self->agent, remote.s, list));
    if (rc == FERRY_OK)
        Py_RETURN_TRUE;
    if (rc == FERRY_ERR_NOT_FOUND)
        Py_RETURN_FALSE;
    return fyp_raise(rc, remote.s);
}

static PyObject *Agent_connect(FyAgent *self, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"remote_agent", "backends", NULL};
    fyp_name remote;
    PyObject *bes = NULL;
    fyp_backends sel;
    if (fyp_agent_check(self) < 0 ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "O&|O:connect", kw, fyp_conv_name, &remote,
                                     &bes) ||
        fyp_backends_get(self, bes, &sel) < 0)
        return NULL;
    ferry_status rc;
    FYP_CALL(self, rc = ferry_md_connect(self->agent, remote.s, sel.selp));
    return fyp_done(rc, remote.s);
}

static PyObject *Agent_generation(FyAgent *self, PyObject *arg)
{
    fyp_name remote;
    uint64_t gen;
    if (fyp_agent_check(self) < 0 || !fyp_conv_name(arg, &remote))
        return NULL;
    ferry_status rc = ferry_md_generation(self->agent, remote.s, &gen);
    return rc == FERRY_OK ? PyLong_FromUnsignedLongLong(gen) : fyp_raise(rc, remote.s);
}

/* ---- the side channel ---- */

static PyObject *Agent_get_listen_port(FyAgent *self, void *closure)
{
    (void)closure;
    uint16_t port;
    if (fyp_agent_check(self) < 0)
        return NULL;
    if (ferry_md_listen_port(self->agent, &port) != FERRY_OK)
        Py_RETURN_NONE;
    return PyLong_FromLong(port);
}

static int fyp_port(int port)
{
    if (port >= 0 && port <= 65535)
        return 0;
    PyErr_SetString(PyExc_ValueError, "port must be 0..65535");
    return -1;
}

static PyObject *Agent_send_metadata(FyAgent *self, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"ip", "port", NULL};
    const char *ip;
    int port;
    if (fyp_agent_check(self) < 0 ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "si:send_metadata", kw, &ip, &port) ||
        fyp_port(port) < 0)
        return NULL;
    ferry_status rc;
    FYP_CALL(self, rc = ferry_md_send_local(self->agent, ip, (uint16_t)port));
    return fyp_md_done(rc, ip);
}

static PyObject *Agent_send_partial_metadata(FyAgent *self, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"dlists", "ip", "port", "include_conn_info", "backends", "label", NULL};
    PyObject *dls, *bes = NULL, *out = NULL;
    const char *ip, *label = NULL;
    int port, conn = 0;
    fyp_lists l = {NULL, 0};
    fyp_backends sel;
    if (fyp_agent_check(self) < 0 ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "Osi|pOz:send_partial_metadata", kw, &dls, &ip,
                                     &port, &conn, &bes, &label) ||
        fyp_port(port) < 0)
        return NULL;
    if (label && !*label)
        label = NULL;
    if (fyp_lists_get(dls, &l) == 0 && fyp_backends_get(self, bes, &sel) == 0) {
        ferry_status rc;
        FYP_CALL(self, rc = ferry_md_send_partial(self->agent, l.lists, l.n, conn, sel.selp, label,
                                                  ip, (uint16_t)port));
        out = fyp_md_done(rc, ip);
    }
    PyMem_Free(l.lists);
    return out;
}

static PyObject *Agent_fetch_metadata(FyAgent *self, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"remote_agent", "ip", "port", "label", "wait_ms", NULL};
    fyp_name remote;
    const char *ip, *label = NULL;
    int port;
    PyObject *wait = Py_None;
    if (fyp_agent_check(self) < 0 ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "O&si|zO:fetch_metadata", kw, fyp_conv_name,
                                     &remote, &ip, &port, &label, &wait) ||
        fyp_port(port) < 0)
        return NULL;
    if (label && !*label)
        label = NULL;
    ferry_status rc;
    if (wait == Py_None) {
        FYP_CALL(self, rc = ferry_md_fetch(self->agent, remote.s, ip, (uint16_t)port, label));
        return fyp_md_done(rc, remote.s);
    }
    unsigned long ms = PyLong_AsUnsignedLong(wait);
    if (ms == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    FYP_CALL(self, rc = ferry_md_fetch_wait(self->agent, remote.s, ip, (uint16_t)port, label,
                                            (uint32_t)ms));
    return fyp_md_done(rc, remote.s);
}

static PyObject *Agent_fetch_status(FyAgent *self, PyObject *arg)
{
    fyp_name remote;
    if (fyp_agent_check(self) < 0 || !fyp_conv_name(arg, &remote))
        return NULL;
    return PyLong_FromLong(ferry_md_fetch_check(self->agent, remote.s));
}

static PyObject *Agent_invalidate_local(FyAgent *self, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"ip", "port", NULL};
    const char *ip;
    int port;
    if (fyp_agent_check(self) < 0 ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "si:invalidate_local", kw, &ip, &port) ||
        fyp_port(port) < 0)
        return NULL;
    ferry_status rc;
    FYP_CALL(self, rc = ferry_md_invalidate_local(self->agent, ip, (uint16_t)port));
    return fyp_md_done(rc, ip);
}

/* ---- attributes ---- */

static PyObject *Agent_get_name(FyAgent *self, void *closure)
{
    (void)closure;
    return Py_NewRef(self->name ? self->name : Py_None);
}

static PyObject *Agent_get_closed(FyAgent *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->agent == NULL);
}

static PyObject *Agent_repr(FyAgent *self)
{
    return PyUnicode_FromFormat("<ferry.Agent %R%s>", self->name ? self->name : Py_None,
                                self->agent ? "" : " closed");
}

#define FYP_FAST(fn) (PyCFunction)(void (*)(void))(fn), METH_FASTCALL | METH_KEYWORDS
#define FYP_KW(fn)   (PyCFunction)(void (*)(void))(fn), METH_VARARGS | METH_KEYWORDS

static PyMethodDef Agent_methods[] = {
    {"close", (PyCFunction)Agent_close, METH_NOARGS,
     "Destroys the agent now; its handles become released."},
    {"__enter__", (PyCFunction)Agent_enter, METH_NOARGS,
     "__enter__() -> Agent: the agent itself; leaving the block destroys it."},
    {"__exit__", (PyCFunction)Agent_exit, METH_VARARGS,
     "__exit__(*exc) -> None: destroys the agent (as close()); exceptions propagate."},
    {"progress", (PyCFunction)Agent_progress, METH_NOARGS, "Drives every backend once."},
    {"plugins", (PyCFunction)Agent_plugins, METH_NOARGS, "Names of the available plugins."},
    {"plugin_params", (PyCFunction)Agent_plugin_params, METH_O,
     "plugin_params(plugin): [(key, default or None, help), ...]"},
    {"mem_alloc", (PyCFunction)(void (*)(void))fyp_agent_mem_alloc, METH_VARARGS | METH_KEYWORDS,
     "mem_alloc(nbytes, mem_type='DRAM', dev_id=0, backend=None) -> Alloc: memory a backend "
     "allocates (SHM: memfd-backed host memory a peer on this host maps); register it to move it"},
    {"plugin_mem_types", (PyCFunction)Agent_plugin_mem_types, METH_O,
     "plugin_mem_types(plugin): memory type names"},
    {"plugin_path", (PyCFunction)Agent_plugin_path, METH_O,
     "plugin_path(plugin): (path or 'builtin', ABI version)"},
    {"create_backend", FYP_KW(Agent_create_backend),
     "create_backend(plugin, params=None) -> Backend"},
    {"backend", (PyCFunction)Agent_backend, METH_O, "backend(plugin) -> Backend (NotFoundError)"},
    {"register", FYP_KW(Agent_register), "register(dlist, backends=None)"},
    {"deregister", FYP_KW(Agent_deregister), "deregister(dlist, backends=None)"},
    {"query_mem", FYP_KW(fyp_agent_query_mem),
     "query_mem(dlist, backend=None) -> per descriptor None (not found) or a dict: DRAM/VRAM "
     "{addr, len, dev_id} of the registered region covering it (held by backend, when given), "
     "FILE {size, mode, mtime} of the file in its metadata, OBJ {size} of the object named in its "
     "metadata (asked of the store by the backend)"},
    {"mem_usage", (PyCFunction)Agent_mem_usage, METH_NOARGS,
     "{mem type name: (bytes, regions)} registered"},
    {"counters", (PyCFunction)Agent_counters, METH_NOARGS, "Agent-wide counters (dict)."},
    {"metrics", (PyCFunction)Agent_metrics, METH_NOARGS,
     "Snapshot of every metric series (list of dicts: name, kind, labels, value; "
     "histograms also buckets and count). See docs/telemetry.md."},
    {"metrics_text", (PyCFunction)Agent_metrics_text, METH_NOARGS,
     "The metrics in Prometheus' text exposition format (str)."},
    {"prep", FYP_FAST(Agent_prep),
     "prep(dlist, agent_name=None, backends=None) -> Prepped; agent_name None/'' = local side"},
    {"make_xfer", FYP_FAST(Agent_make_xfer),
     "make_xfer(op, local, local_indices, remote, remote_indices, notif=None, backends=None, "
     "skip_merge=False, backend=None, timeout_ms=None) -> Xfer; timeout_ms: deadline after "
     "each post (None/0: the agent's xfer_timeout_ms, TIMEOUT_NONE: none)"},
    {"create_xfer", FYP_FAST(Agent_create_xfer),
     "create_xfer(op, local, remote, remote_agent, notif=None, backends=None, "
     "skip_merge=False, backend=None, timeout_ms=None) -> Xfer"},
    {"send_notif", FYP_KW(Agent_send_notif), "send_notif(remote_agent, msg, backends=None)"},
    {"get_notifs", FYP_KW(Agent_get_notifs),
     "get_notifs(remote_agent=None, into=None) -> {sender: [bytes, ...]}"},
    {"take_notif_tag", FYP_KW(Agent_take_notif_tag),
     "take_notif_tag(remote_agent, tag, prefix=True) -> bool"},
    {"metadata", (PyCFunction)Agent_metadata, METH_NOARGS, "Full local metadata (bytes)."},
    {"partial_metadata", FYP_KW(Agent_partial_metadata),
     "partial_metadata(dlists=None, include_conn_info=False, backends=None) -> bytes"},
    {"load_metadata", (PyCFunction)Agent_load_metadata, METH_O,
     "load_metadata(blob) -> remote agent name"},
    {"invalidate_remote", (PyCFunction)Agent_invalidate_remote, METH_O,
     "invalidate_remote(name): forgets a remote agent"},
    {"check_remote", FYP_KW(Agent_check_remote), "check_remote(remote_agent, dlist=None) -> bool"},
    {"connect", FYP_KW(Agent_connect), "connect(remote_agent, backends=None)"},
    {"generation", (PyCFunction)Agent_generation, METH_O, "generation(remote_agent) -> int"},
    {"send_metadata", FYP_KW(Agent_send_metadata), "send_metadata(ip, port)"},
    {"send_partial_metadata", FYP_KW(Agent_send_partial_metadata),
     "send_partial_metadata(dlists, ip, port, include_conn_info=False, backends=None, "
     "label=None)"},
    {"fetch_metadata", FYP_KW(Agent_fetch_metadata),
     "fetch_metadata(remote_agent, ip, port, label=None, wait_ms=None): starts a fetch; with "
     "wait_ms, waits that long for it to end"},
    {"fetch_status", (PyCFunction)Agent_fetch_status, METH_O,
     "fetch_status(remote_agent) -> status code of the last fetch (0 done, 1 in progress)"},
    {"invalidate_local", FYP_KW(Agent_invalidate_local), "invalidate_local(ip, port)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Agent_getset[] = {
    {"name", (getter)Agent_get_name, NULL, "the agent's name", NULL},
    {"closed", (getter)Agent_get_closed, NULL, "True once closed", NULL},
    {"listen_port", (getter)Agent_get_listen_port, NULL,
     "the side-channel listener's port (None when not listening)", NULL},
    {"notifs_dropped", (getter)Agent_get_notifs_dropped, NULL,
     "notifications dropped because the queue was full", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject FyAgent_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ferry_kv.Agent",
    .tp_basicsize = sizeof(FyAgent),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Agent(name, *, progress_thread=False, progress_delay_us=0, listen=False, "
              "listen_host=None, listen_port=0, telemetry=False, sync_mode=0, "
              "notif_queue_cap=0, reg_cap_bytes=0, sc_timeout_ms=0, sc_max_frame=0, "
              "auth_key=None, xfer_timeout_ms=0, etcd_endpoints=None, etcd_namespace=None, "
              "etcd_ttl_s=0, etcd_watch_timeout_ms=0, tcpstore_endpoint=None, "
              "telemetry_exporters=None, telemetry_dir=None, telemetry_prometheus_port=0, "
              "telemetry_metrics=None, telemetry_buckets_us=None, reg_cap_backends=None)\n\n"
              "A ferry agent. Zero numeric options keep the library's defaults "
              "(xfer_timeout_ms: 60000 or FERRY_XFER_TIMEOUT_MS; TIMEOUT_NONE: no deadline).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Agent_init,
    .tp_dealloc = (destructor)Agent_dealloc,
    .tp_repr = (reprfunc)Agent_repr,
    .tp_weaklistoffset = offsetof(FyAgent, weakrefs),
    .tp_methods = Agent_methods,
    .tp_getset = Agent_getset,
};
