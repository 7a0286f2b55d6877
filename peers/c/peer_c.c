/*
 * peer_c: the hand-written floor of the extension-module comparison (see peers/README.md).
 *
 * Multi-phase init (PEP 489) with the module's objects in module state, a heap type made from the
 * module (so a method can find its module's state from the type), and both declarations a module
 * needs to be imported in an own-GIL subinterpreter and, without re-enabling the GIL, in a
 * free-threaded build. Every object lives in one interpreter's module instance; nothing is
 * static but the specs and the definition.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>

/* The counter word: plain under a GIL (an object is only touched with its interpreter's GIL
 * held), atomic on a free-threaded build (threads may call incr on one Counter at once). */
#ifdef Py_GIL_DISABLED
#define COUNT_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define COUNT_CAS(p, expected, desired)                                                        \
    __atomic_compare_exchange_n((p), (expected), (desired), 1, __ATOMIC_RELAXED,             \
                                __ATOMIC_RELAXED)
#define CACHE_LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define CACHE_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#else
#define COUNT_LOAD(p) (*(p))
#define COUNT_CAS(p, expected, desired) (*(p) = (desired), 1)
#define CACHE_LOAD(p) (*(p))
#define CACHE_STORE(p, v) (*(p) = (v))
#endif

/* Everything the module owns, one copy per module instance (so per interpreter). */
typedef struct {
    PyTypeObject *counter_type;
    PyObject *error;    /* peer_c.Error */
    PyObject *interned; /* the interned str "interpsafe", made at exec */
    PyObject *cached;   /* the list cached() makes on first use, or NULL */
} peer_state;

static struct PyModuleDef peer_module;

static inline peer_state *
state_of(PyObject *module)
{
    return (peer_state *)PyModule_GetState(module);
}

/* ---- Counter ---------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    long long count;
} CounterObject;

static PyObject *
counter_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0)) {
        PyErr_SetString(PyExc_TypeError, "Counter() takes no arguments");
        return NULL;
    }
    CounterObject *self = (CounterObject *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->count = 0;
    }
    return (PyObject *)self;
}

static void
counter_dealloc(PyObject *self)
{
    /* A heap type's instances own a reference to it (taken by tp_alloc). */
    PyTypeObject *type = Py_TYPE(self);
    type->tp_free(self);
    Py_DECREF(type);
}

/* The slow path of incr: the module's Error, found from the instance's type. */
static PyObject *
counter_overflow(PyObject *self)
{
    PyObject *module = PyType_GetModuleByDef(Py_TYPE(self), &peer_module);
    if (module == NULL) {
        return NULL;
    }
    PyErr_SetString(state_of(module)->error, "Counter overflowed");
    return NULL;
}

static PyObject *
counter_incr(PyObject *op, PyObject *Py_UNUSED(unused))
{
    CounterObject *self = (CounterObject *)op;
    long long old = COUNT_LOAD(&self->count);
    do {
        if (old == LLONG_MAX) {
            return counter_overflow(op);
        }
    } while (!COUNT_CAS(&self->count, &old, old + 1));
    return PyLong_FromLongLong(old + 1);
}

static PyObject *
counter_get_value(PyObject *op, void *Py_UNUSED(closure))
{
    return PyLong_FromLongLong(COUNT_LOAD(&((CounterObject *)op)->count));
}

static PyMethodDef counter_methods[] = {
    {"incr", counter_incr, METH_NOARGS, PyDoc_STR("Add 1 and return the new count.")},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef counter_getset[] = {
    {"value", counter_get_value, NULL, PyDoc_STR("The count."), NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot counter_slots[] = {
    {Py_tp_new, counter_new},
    {Py_tp_dealloc, counter_dealloc},
    {Py_tp_methods, counter_methods},
    {Py_tp_getset, counter_getset},
    {Py_tp_doc, (void *)PyDoc_STR("Counter(): incr() adds 1 and returns the count.")},
    {0, NULL},
};

static PyType_Spec counter_spec = {
    .name = "peer_c.Counter",
    .basicsize = sizeof(CounterObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = counter_slots,
};

/* ---- module functions ------------------------------------------------------------------- */

static PyObject *
peer_identity(PyObject *Py_UNUSED(module), PyObject *obj)
{
    return Py_NewRef(obj);
}

static PyObject *
peer_raise_error(PyObject *module, PyObject *msg)
{
    PyObject *exc = PyObject_CallOneArg(state_of(module)->error, msg);
    if (exc != NULL) {
        PyErr_SetRaisedException(exc); /* steals exc */
    }
    return NULL;
}

static PyObject *
peer_interned(PyObject *module, PyObject *Py_UNUSED(unused))
{
    return Py_NewRef(state_of(module)->interned);
}

static PyObject *
peer_cached(PyObject *module, PyObject *Py_UNUSED(unused))
{
    peer_state *st = state_of(module);
    /* The list lives until the module's state is cleared, and the caller holds the module. */
    PyObject *list = CACHE_LOAD(&st->cached);
    if (list != NULL) {
        return Py_NewRef(list);
    }
    /* First use: one thread makes it (a no-op lock under a GIL). */
    Py_BEGIN_CRITICAL_SECTION(module);
    list = st->cached;
    if (list == NULL) {
        list = PyList_New(0);
        if (list != NULL) {
            CACHE_STORE(&st->cached, list);
        }
    }
    Py_XINCREF(list);
    Py_END_CRITICAL_SECTION();
    return list;
}

static PyObject *
peer_call(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "call() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    return PyObject_CallOneArg(args[0], args[1]);
}

static PyMethodDef peer_methods[] = {
    {"identity", peer_identity, METH_O, PyDoc_STR("identity(obj): return obj.")},
    {"raise_error", peer_raise_error, METH_O, PyDoc_STR("raise_error(msg): raise Error(msg).")},
    {"interned", peer_interned, METH_NOARGS,
     PyDoc_STR("The interned str 'interpsafe', the same object every call.")},
    {"cached", peer_cached, METH_NOARGS,
     PyDoc_STR("A list made on first use, the same object every call.")},
    {"call", (PyCFunction)(void (*)(void))peer_call, METH_FASTCALL,
     PyDoc_STR("call(f, x): return f(x).")},
    {NULL, NULL, 0, NULL},
};

/* ---- module lifecycle ------------------------------------------------------------------- */

static int
peer_exec(PyObject *module)
{
    peer_state *st = state_of(module);
    st->counter_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &counter_spec, NULL);
    if (st->counter_type == NULL || PyModule_AddType(module, st->counter_type) < 0) {
        return -1;
    }
    st->error = PyErr_NewException("peer_c.Error", NULL, NULL);
    if (st->error == NULL || PyModule_AddObjectRef(module, "Error", st->error) < 0) {
        return -1;
    }
    st->interned = PyUnicode_InternFromString("interpsafe");
    if (st->interned == NULL) {
        return -1;
    }
    st->cached = NULL;
    return 0;
}

static int
peer_traverse(PyObject *module, visitproc visit, void *arg)
{
    peer_state *st = state_of(module);
    Py_VISIT(st->counter_type);
    Py_VISIT(st->error);
    Py_VISIT(st->interned);
    Py_VISIT(st->cached);
    return 0;
}

static int
peer_clear(PyObject *module)
{
    peer_state *st = state_of(module);
    Py_CLEAR(st->counter_type);
    Py_CLEAR(st->error);
    Py_CLEAR(st->interned);
    Py_CLEAR(st->cached);
    return 0;
}

static void
peer_free(void *module)
{
    (void)peer_clear((PyObject *)module);
}

static PyModuleDef_Slot peer_slots[] = {
    {Py_mod_exec, peer_exec},
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef peer_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "peer_c",
    .m_doc = "The hand-written C floor of interpsafe's extension-module comparison.",
    .m_size = sizeof(peer_state),
    .m_methods = peer_methods,
    .m_slots = peer_slots,
    .m_traverse = peer_traverse,
    .m_clear = peer_clear,
    .m_free = peer_free,
};

PyMODINIT_FUNC
PyInit_peer_c(void)
{
    return PyModuleDef_Init(&peer_module);
}
