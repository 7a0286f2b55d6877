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


if __name__ == "__main__":
    main()
