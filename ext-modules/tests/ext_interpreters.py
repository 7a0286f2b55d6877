"""The `cpython-interpreters` cell: a client nobody here wrote, CPython's own high-level
interpreters API (`Lib/test/support/interpreters` of the 3.13 sources, PEP 734's prototype,
which the builds do not install; the driver extracts it from the source tarball, see
`ext_driver.interpreters_package`), drives the module.

Main has imported and exercised the variant (`ext_cell.py`); then `interpreters.create()` (own GIL) twice, each
handed a `queues.Queue` with `prepare_main`, exercises it from a thread of its own through
`Interpreter.call` (a no-argument function, as 3.13's `call` requires) and sends its report back
over the queue; `Interpreter.exec` then checks the module is still the same one there; `close()`
destroys them, and a new interpreter imports it again. The phases have the driver's shape
(`main`, `subs`, `destroyed`, `reimport`), so the same summary and checks apply.
"""

import json
import threading


def _report_over_queue():
    """Runs in the subinterpreter (through `Interpreter.call`): everything it needs comes from
    its `__main__`, which `prepare_main` filled."""
    import __main__
    import json
    import ext_exercise

    rec = ext_exercise.report(__main__.variant, refcounts=__main__.refcounts)
    __main__.q.put(json.dumps(rec))


def _prepare(interp, package_root, module_dir, here, q, variant, refcounts):
    """Puts the paths in the subinterpreter's `sys.path`, imports the queues module there (a
    queue can only be shared into an interpreter that has imported it) and binds the queue and
    the parameters into its `__main__`."""
    interp.exec(
        f"import sys; sys.path[:0] = [{module_dir!r}, {here!r}, {package_root!r}]\n"
        "from interpreters import queues\n"
    )
    interp.prepare_main(q=q, variant=variant, refcounts=refcounts)


def _run(interp, q, reports, i):
    """`Interpreter.call` on this thread; the report from the queue, or the failure."""
    try:
        interp.call(_report_over_queue)
        reports[i] = json.loads(q.get(timeout=120))
    except BaseException as e:  # a failure is data for the driver
        reports[i] = {"import": "error", "message": f"{type(e).__name__}: {e}"}


def run(cell, save, package_root, module_dir, here, variant, count=2):
    """Fills `cell["phases"]` after main's (saving after each phase)."""
    import interpreters
    from interpreters import queues

    cell["phases"]["api"] = interpreters.__file__
    q = queues.create()
    interps = [interpreters.create() for _ in range(count)]
    reports = [None] * count
    for interp in interps:
        _prepare(interp, package_root, module_dir, here, q, variant, False)
    threads = [threading.Thread(target=_run, args=(it, q, reports, i)) for i, it in enumerate(interps)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # exec: the module there is still the one the call imported (sys.modules per interpreter).
    for interp, rec in zip(interps, reports):
        if rec.get("import") != "ok":
            continue
        interp.exec(
            f"import sys, json; m = sys.modules[{variant!r}]\n"
            "q.put(json.dumps([id(m), id(m.Counter)]))\n"
        )
        module_id, type_id = json.loads(q.get(timeout=60))
        if [module_id, type_id] != [rec["module_id"], rec["counter_type_id"]]:
            rec.setdefault("errors", []).append("exec saw another module than call imported")
    cell["phases"]["subs"] = reports
    save()
    destroyed = []
    for interp in interps:
        try:
            interp.close()
            destroyed.append("ok")
        except BaseException as e:
            destroyed.append(f"{type(e).__name__}: {e}")
    cell["phases"]["destroyed"] = destroyed
    save()
    again = interpreters.create()
    reports = [None]
    try:
        _prepare(again, package_root, module_dir, here, q, variant, True)
        _run(again, q, reports, 0)
    except BaseException as e:
        reports[0] = {"import": "error", "message": f"{type(e).__name__}: {e}"}
    cell["phases"]["reimport"] = reports[0]
    save()
    again.close()
    cell["phases"]["reimport_destroyed"] = "ok"
    save()
    # The queue goes before the interpreter's end (its __del__ at exit would find its module
    # half torn down).
    del q
