"""One cell of the driver, run in a child process: one variant in one kind of interpreter.

    python ext_cell.py MODULE_DIR VARIANT KIND OUT.json

KIND is `main` (imported in the main interpreter only), `isolated` (main, then 4 own-GIL
interpreters at once, each on its own thread) or `legacy` (main, then 2 shared-GIL interpreters
at once). Each interpreter exercises the module from 2 threads (`ext_exercise.report`). Then the
subinterpreters are destroyed and the module is imported again in a new one of the same kind.
`isolated-first` is `isolated` without the import in main at the start: main imports last,
after the interpreters that filled the module's caches first have been destroyed.
OUT.json is rewritten after every phase, so a crash keeps what came before it.
"""

import json
import os
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
    if kind == "main":
        cell["phases"]["lifecycle_refcount_deltas"] = lifecycle_deltas(module_dir, variant)
        save()
        return
    import _interpreters

    count = 2 if kind == "legacy" else 4
    config = "legacy" if kind == "legacy" else "isolated"
    tmp = tempfile.mkdtemp(prefix="interpsafe-ext-")

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
