"""One cell of the driver, run in a child process: one variant in one kind of interpreter.

    python ext_cell.py MODULE_DIR VARIANT KIND OUT.json

KIND is `main` (imported in the main interpreter only), `isolated` (main, then 4 own-GIL
interpreters at once, each on its own thread) or `legacy` (main, then 2 shared-GIL interpreters
at once). Each interpreter exercises the module from 2 threads (`ext_exercise.report`). Then the
subinterpreters are destroyed and the module is imported again in a new one of the same kind.
`isolated-first` is `isolated` without the import in main at the start: main imports last,
after the interpreters that filled the module's caches first have been destroyed.
`cpython-interpreters` drives the same phases through CPython's own high-level interpreters API
(`ext_interpreters.py`; the 3.13 package's directory in `$INTERPSAFE_EXT_INTERPRETERS`, or
`stdlib` for 3.14+'s `concurrent.interpreters`).
OUT.json is rewritten after every phase, so a crash keeps what came before it.
"""

import atexit
import json
import os
import shutil
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    module_dir, variant, kind, out = sys.argv[1:5]
    sys.path[:0] = [module_dir, HERE]
    import ext_exercise

    cell = {"variant": variant, "kind": kind, "phases": {}}

    def save():
        with open(out, "w") as f:
            json.dump(cell, f, indent=1)

    main_first = kind != "isolated-first"
    if main_first:
        cell["phases"]["main"] = ext_exercise.report(variant)
        save()
    if kind == "cpython-interpreters":
        import ext_interpreters

        package_root = os.environ["INTERPSAFE_EXT_INTERPRETERS"]
        if package_root != "stdlib":
            sys.path.append(package_root)
        ext_interpreters.run(cell, save, package_root, module_dir, HERE, variant)
        return
    if kind == "main":
        cell["phases"]["lifecycle_refcount_deltas"] = lifecycle_deltas(module_dir, variant)
        save()
        return
    import _interpreters

    count = 2 if kind == "legacy" else 4
    config = "legacy" if kind == "legacy" else "isolated"
    tmp = tempfile.mkdtemp(prefix="interpsafe-ext-")
    # Removed at exit (a crashed cell leaves its directory, with the reports it got).
    atexit.register(shutil.rmtree, tmp, True)

    def run_in(interp, name, refcounts):
        path = os.path.join(tmp, f"{name}.json")
        code = (
            f"import sys; sys.path[:0] = [{module_dir!r}, {HERE!r}]\n"
            f"import ext_exercise\n"
            f"ext_exercise.report_to({path!r}, {variant!r}, refcounts={refcounts!r})\n"
        )
        failure = _interpreters.exec(interp, code)
        if failure is not None:
            return {"import": "error", "message": getattr(failure, "formatted", None) or str(failure)}
        try:
            with open(path) as f:
                return json.load(f)
        except OSError as e:
            return {"import": "error", "message": f"no report: {e}"}

    interps = [_interpreters.create(config) for _ in range(count)]
    reports = [None] * count

    def on_thread(i):
        # Refcounts are measured where nothing else runs (main, and the re-import below).
        reports[i] = run_in(interps[i], f"sub{i}", False)

    threads = [threading.Thread(target=on_thread, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cell["phases"]["subs"] = reports
    save()
    if kind == "legacy":
        cell["phases"]["foreign"] = foreign_instances(interps[0], module_dir, variant, tmp)
        save()
    destroyed = []
    for interp in interps:
        try:
            _interpreters.destroy(interp)
            destroyed.append("ok")
        except BaseException as e:
            destroyed.append(f"{type(e).__name__}: {e}")
    cell["phases"]["destroyed"] = destroyed
    save()
    again = _interpreters.create(config)
    cell["phases"]["reimport"] = run_in(again, "again", True)
    save()
    _interpreters.destroy(again)
    cell["phases"]["reimport_destroyed"] = "ok"
    save()
    if not main_first:
        cell["phases"]["main_last"] = ext_exercise.report(variant)
        save()


FOREIGN = """
import ctypes, json, sys
sys.path[:0] = [{module_dir!r}]
m = __import__({variant!r})
x = ctypes.cast({address}, ctypes.py_object).value
seen = {{"sub_isinstance_main_instance": isinstance(x, m.Counter),
         "sub_type_is_main_class": type(x) is m.Counter}}
del x
import __main__
__main__._interpsafe_foreign = m.Counter()
seen["sub_instance_address"] = id(__main__._interpsafe_foreign)
with open({path!r}, "w") as f:
    json.dump(seen, f)
"""


def foreign_instances(interp, module_dir, variant, tmp):
    """Type identity across interpreters, checked for real: an instance made in one interpreter
    against the `Counter` class of the other, both ways, between main and a legacy
    subinterpreter (which shares main's GIL, so main's objects can be read there, by address
    through ctypes, while main waits in `_interpreters.exec`, and the subinterpreter's object
    in main while it is parked). Objects of arbitrary types cannot cross between own-GIL
    interpreters (no shareable channel carries them, and touching them there races on their
    refcounts), so own-GIL cells keep the id comparison. Each reference is dropped in the
    interpreter that took it."""
    m = sys.modules.get(variant)
    if m is None:
        return {"skipped": "main did not import the module"}
    mine = m.Counter()
    path = os.path.join(tmp, "foreign.json")
    code = FOREIGN.format(module_dir=module_dir, variant=variant, address=id(mine), path=path)
    failure = _interpreters_exec(interp, code)
    if failure is not None:
        return {"skipped": failure}
    with open(path) as f:
        seen = json.load(f)
    import ctypes

    theirs = ctypes.cast(seen.pop("sub_instance_address"), ctypes.py_object).value
    seen["main_isinstance_sub_instance"] = isinstance(theirs, m.Counter)
    seen["main_type_is_sub_class"] = type(theirs) is m.Counter
    del theirs
    # The subinterpreter's instance goes in the subinterpreter.
    _interpreters_exec(interp, "import __main__; del __main__._interpsafe_foreign")
    return seen


def _interpreters_exec(interp, code):
    """`_interpreters.exec`, its failure as text (None when the code ran)."""
    import _interpreters

    failure = _interpreters.exec(interp, code)
    if failure is None:
        return None
    return getattr(failure, "formatted", None) or str(failure)


LIFECYCLE = """
import sys
sys.path[:0] = [{module_dir!r}]
m = __import__({variant!r})
m.cached(); m.interned(); m.Counter().incr(); m.identity(1); m.call(abs, -1)
try:
    m.raise_error("x")
except m.Error:
    pass
"""


def lifecycle_deltas(module_dir, variant, rounds=3):
    """On a debug build: sys.gettotalrefcount() change, seen from main, over each of `rounds`
    rounds of creating an own-GIL interpreter, importing and using the module there and
    destroying it, after a warm-up round (minus the change over empty rounds). What an ended interpreter's objects still hold (once-cell
    values the toolkit never releases at an end, for instance) stays in the total. Recorded, not
    asserted."""
    if not hasattr(sys, "gettotalrefcount"):
        return None
    import _interpreters

    code = LIFECYCLE.format(module_dir=module_dir, variant=variant)

    def one():
        interp = _interpreters.create("isolated")
        failure = _interpreters.exec(interp, code)
        _interpreters.destroy(interp)
        return failure

    if one() is not None:
        return "refused"

    def measure(body):
        totals = [0] * (rounds + 1)
        totals[0] = sys.gettotalrefcount()
        for i in range(rounds):
            body()
            totals[i + 1] = sys.gettotalrefcount()
        return [totals[i + 1] - totals[i] for i in range(rounds)]

    # Minus the same loop over nothing: the stored totals themselves.
    empty = measure(lambda: None)
    return [full - e for full, e in zip(measure(one), empty)]


if __name__ == "__main__":
    main()
