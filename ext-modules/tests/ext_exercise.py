"""What one interpreter does with one variant: import it, exercise its surface from two threads,
and report what it saw as a JSON-ready dict.

Runs unchanged in the main interpreter and in subinterpreters (`_interpreters.exec` runs
`report(...)`); every check is recorded, none raises, so a failure is data for the driver.
"""

import gc
import sys
import threading


def _import(variant):
    try:
        return __import__(variant), None
    except BaseException as e:  # a refusal is a finding, not a failure of this code
        return None, f"{type(e).__name__}: {e}"


class Boom(Exception):
    pass


def _raise_boom(_):
    raise Boom("from the callback")


def _surface(m, errors):
    """One pass over the surface; appends what went wrong to `errors`."""
    o = object()
    if m.identity(o) is not o:
        errors.append("identity(o) is not o")
    try:
        m.raise_error("boom")
        errors.append("raise_error did not raise")
    except m.Error as e:
        if type(e) is not m.Error or e.args != ("boom",):
            errors.append(f"raise_error raised {type(e)!r} {e.args!r}")
    s = m.interned()
    if s != "interpsafe" or s is not m.interned():
        errors.append("interned() is not one 'interpsafe'")
    c = m.cached()
    if type(c) is not list or c is not m.cached():
        errors.append("cached() is not one list")
    if m.call(_plus_one, 41) != 42:
        errors.append("call(f, 41) != 42")
    try:
        m.call(_raise_boom, 1)
        errors.append("call did not propagate the callback's exception")
    except Boom:
        pass


def _plus_one(x):
    return x + 1


def _refcount_deltas(m, rounds=3):
    """sys.gettotalrefcount() change over each of `rounds` rounds after a warm-up round, minus
    the change over an empty round measured the same way (the stored totals themselves)."""
    total = getattr(sys, "gettotalrefcount", None)
    if total is None:
        return None

    def one_round():
        errors = []
        _surface(m, errors)
        counter = m.Counter()
        for _ in range(10):
            counter.incr()
        counter.value

    def measure(body):
        body()  # warm-up
        # The collector stays off while measuring: when it would run depends on how many
        # objects the threads before left behind, and a collection inside one round frees
        # garbage that round did not make (a negative drift that is not the module's).
        gc.collect()
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            totals = [0] * (rounds + 1)
            totals[0] = total()
            for i in range(rounds):
                body()
                totals[i + 1] = total()
        finally:
            if was_enabled:
                gc.enable()
        return [totals[i + 1] - totals[i] for i in range(rounds)]

    empty = measure(lambda: None)
    full = measure(one_round)
    return [f - e for f, e in zip(full, empty)]


def report(variant, threads=2, n=2000, refcounts=True):
    """Imports `variant` here and exercises it from `threads` threads at once."""
    rec = {"interpreter": _interp_id(), "threads": threads}
    m, refused = _import(variant)
    if m is None:
        rec["import"] = "refused"
        rec["message"] = refused
        return rec
    rec["import"] = "ok"
    # On a free-threaded build, importing a module that does not declare Py_MOD_GIL_NOT_USED
    # turns the GIL on.
    rec["gil_enabled"] = getattr(sys, "_is_gil_enabled", lambda: True)() if _free_threaded() else False
    rec["module_id"] = id(m)
    rec["counter_type_id"] = id(m.Counter)
    rec["error_type_id"] = id(m.Error)
    rec["error_is_exception"] = isinstance(m.Error, type) and issubclass(m.Error, Exception)
    rec["instance_type_is_class"] = type(m.Counter()) is m.Counter
    # The cache names the interpreter that first used it: a later interpreter that finds
    # another's name got an object of that interpreter (its address alone could be reused).
    cache = m.cached()
    if not cache:
        cache.append(rec["interpreter"])
    rec["cached_id"] = id(cache)
    rec["cached_owner"] = cache[0] if cache else None
    rec["interned_id"] = id(m.interned())
    rec["interned_is_local"] = m.interned() is sys.intern("interpsafe")
    counter = m.Counter()
    errors = []
    start = threading.Barrier(threads)

    def work():
        try:
            start.wait()
            for i in range(n):
                value = counter.incr()
                if type(value) is not int:
                    errors.append(f"incr returned {type(value)!r}")
                    break
                if i % 200 == 0:
                    _surface(m, errors)
        except BaseException as e:
            errors.append(f"{type(e).__name__}: {e}")

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    rec["count"] = counter.value
    rec["count_expected"] = threads * n
    rec["count_exact"] = counter.value == threads * n
    rec["errors"] = errors[:10]
    if refcounts:
        rec["refcount_deltas"] = _refcount_deltas(m)
    return rec


def _free_threaded():
    import sysconfig

    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def _interp_id():
    try:
        import _interpreters

        return _interpreters.get_current()[0]
    except Exception:
        return None


def report_to(path, variant, **kw):
    """`report`, written to `path` as JSON (how a subinterpreter hands its report back)."""
    import json

    try:
        rec = report(variant, **kw)
    except BaseException as e:
        rec = {"import": "error", "message": f"{type(e).__name__}: {e}"}
    with open(path, "w") as f:
        json.dump(rec, f)
