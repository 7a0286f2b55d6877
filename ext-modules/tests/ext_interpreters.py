"""The `cpython-interpreters` cell: a client nobody here wrote, CPython's own high-level
interpreters API, drives the module: on 3.13 `Lib/test/support/interpreters` of the sources
(PEP 734's prototype, which the builds do not install; the driver extracts it from the source
tarball, see `ext_driver.interpreters_package`), on 3.14 and later the standard library's
`concurrent.interpreters` and, beside it, `concurrent.futures.InterpreterPoolExecutor`.

Main has imported and exercised the variant (`ext_cell.py`); then `interpreters.create()` (own GIL) twice, each
handed a `queues.Queue` with `prepare_main`, exercises it from a thread of its own through
`Interpreter.call` (a no-argument function, as 3.13's `call` requires) and sends its report back
over the queue; `Interpreter.exec` then checks the module is still the same one there; `close()`
destroys them, and a new interpreter imports it again. The phases have the driver's shape
(`main`, `subs`, `destroyed`, `reimport`), so the same summary and checks apply. With the
standard library's API, a `pool` phase follows: an `InterpreterPoolExecutor` of 2 workers runs
4 tasks that import and exercise the module, and each returns its report (the worker
interpreters find the module through `PYTHONPATH`, which the driver sets for this kind: they
import the task's function by name before any initializer could extend `sys.path`).
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


def _api(package_root):
    """(the interpreters module, its queue constructor, the statement that imports the queues
    module in a subinterpreter, the paths a subinterpreter needs): `package_root` is the 3.13
    package's directory, or `stdlib` for `concurrent.interpreters`."""
    if package_root == "stdlib":
        from concurrent import interpreters

        return interpreters, interpreters.create_queue, "from concurrent import interpreters\n", []
    import interpreters
    from interpreters import queues

    return interpreters, queues.create, "from interpreters import queues\n", [package_root]


def _prepare(interp, api, module_dir, here, q, variant, refcounts):
    """Puts the paths in the subinterpreter's `sys.path`, imports the queues module there (a
    queue can only be shared into an interpreter that has imported it) and binds the queue and
    the parameters into its `__main__`."""
    paths = [module_dir, here] + api[3]
    interp.exec(f"import sys; sys.path[:0] = {paths!r}\n{api[2]}")
    interp.prepare_main(q=q, variant=variant, refcounts=refcounts)


def _pool_task(variant):
    """One `InterpreterPoolExecutor` task, in a worker interpreter: the report, as JSON."""
    import ext_exercise

    return json.dumps(ext_exercise.report(variant, refcounts=False))


def _pool(variant, workers=2, tasks=4):
    """The `pool` phase: every task's report (or its failure)."""
    from concurrent.futures import InterpreterPoolExecutor

    reports = []
    try:
        with InterpreterPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_pool_task, variant) for _ in range(tasks)]
            for f in futures:
                try:
                    reports.append(json.loads(f.result(timeout=120)))
                except BaseException as e:  # a failure is data for the driver
                    reports.append({"import": "error", "message": f"{type(e).__name__}: {e}"})
    except BaseException as e:
        reports.append({"import": "error", "message": f"pool: {type(e).__name__}: {e}"})
    return reports


def _run(interp, q, reports, i):
    """`Interpreter.call` on this thread; the report from the queue, or the failure."""
    try:
        interp.call(_report_over_queue)
        reports[i] = json.loads(q.get(timeout=120))
    except BaseException as e:  # a failure is data for the driver
        reports[i] = {"import": "error", "message": f"{type(e).__name__}: {e}"}


def run(cell, save, package_root, module_dir, here, variant, count=2):
    """Fills `cell["phases"]` after main's (saving after each phase)."""
    api = _api(package_root)
    interpreters = api[0]
    cell["phases"]["api"] = interpreters.__name__
    # A queue per interpreter: over one shared queue a thread could take the other
    # interpreter's report (both put at once) and the exec check would compare the wrong ids.
    qs = [api[1]() for _ in range(count)]
    interps = [interpreters.create() for _ in range(count)]
    reports = [None] * count
    for interp, q in zip(interps, qs):
        _prepare(interp, api, module_dir, here, q, variant, False)
    threads = [
        threading.Thread(target=_run, args=(it, q, reports, i))
        for i, (it, q) in enumerate(zip(interps, qs))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # exec: the module there is still the one the call imported (sys.modules per interpreter).
    for interp, q, rec in zip(interps, qs, reports):
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
    q = qs[0]
    again = interpreters.create()
    reports = [None]
    try:
        _prepare(again, api, module_dir, here, q, variant, True)
        _run(again, q, reports, 0)
    except BaseException as e:
        reports[0] = {"import": "error", "message": f"{type(e).__name__}: {e}"}
    cell["phases"]["reimport"] = reports[0]
    save()
    again.close()
    cell["phases"]["reimport_destroyed"] = "ok"
    save()
    if package_root == "stdlib":
        cell["phases"]["pool"] = _pool(variant)
        save()
    # The queue goes before the interpreter's end (its __del__ at exit would find its module
    # half torn down).
    del q, qs
