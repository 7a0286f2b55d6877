"""Smoke check of one peer module: `python smoke.py MODULE PROBE` (run by `cargo xtask peers`).

The directory holding the built module must be on PYTHONPATH. PROBE is one of:

- `main`: import MODULE in the main interpreter, call every function of the shared surface, then
  call incr and cached from several threads at once (no lost increment, one cached object); on a
  free-threaded build the import must have left the GIL off;
- `isolated`: import it in main, then in an `_interpreters.create('isolated')` interpreter (own
  GIL), run the same checks there, and destroy that interpreter;
- `isolated-first`: the same without importing it in main first;
- `legacy`: import it in main, then in a `_interpreters.create('legacy')` interpreter (shares
  main's GIL: where a module that refuses own-GIL interpreters may still be let in).

Each step is printed (flushed) as `step: ...` before it runs, so when the process dies the last
such line says where. The outcome is the last line: `RESULT {json}` with `outcome` one of
`ok`, `import-error` (with `error`), `check-failed` (with `error`).

This is a smoke check, not the test matrix: it says whether a peer imports and works, and what
happens in a second interpreter.
"""

import json
import sys

# The checks, as source: they run in main and, through `_interpreters.exec`, in a subinterpreter.
CHECKS = r'''
def _peer_checks(m):
    done = []
    c = m.Counter()
    assert c.value == 0, c.value
    assert c.incr() == 1 and c.incr() == 2, "incr"
    assert c.value == 2 and type(c.value) is int, c.value
    done.append("Counter")
    o = object()
    assert m.identity(o) is o
    done.append("identity")
    assert issubclass(m.Error, Exception)
    try:
        m.raise_error("boom")
    except m.Error as e:
        assert type(e) is m.Error and e.args == ("boom",), repr(e)
    else:
        raise AssertionError("raise_error did not raise")
    done.append("raise_error")
    s = m.interned()
    assert s == "interpsafe" and s is m.interned(), repr(s)
    assert s is sys.intern("interpsafe"), "interned() is not the interned str"
    done.append("interned")
    lst = m.cached()
    assert type(lst) is list and lst is m.cached(), repr(lst)
    done.append("cached")
    assert m.call(lambda x: x + 1, 41) == 42
    done.append("call")
    return done


def _peer_threads(m, threads=4, rounds=2000):
    # Several threads on one Counter and on the first cached() call: no lost increment, one
    # list. (On a free-threaded build they really run at once.)
    import threading
    c = m.Counter()
    seen = []
    barrier = threading.Barrier(threads)
    def work():
        barrier.wait()
        seen.append(m.cached())
        for _ in range(rounds):
            c.incr()
    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert c.value == threads * rounds, f"lost increments: {c.value} != {threads * rounds}"
    assert all(x is seen[0] for x in seen), "cached() made more than one object"
    return ["threads"]
'''


def step(text):
    print(f"step: {text}", flush=True)


def result(**fields):
    print("RESULT " + json.dumps(fields), flush=True)


def in_main(name):
    step(f"import {name} in main")
    try:
        module = __import__(name)
    except ImportError as e:
        result(outcome="import-error", error=f"{type(e).__name__}: {e}")
        return
    step(f"call the surface of {name} in main")
    import sysconfig

    if sysconfig.get_config_var("Py_GIL_DISABLED") and sys._is_gil_enabled():
        # Importing a module that does not declare Py_mod_gil = Py_MOD_GIL_NOT_USED turns the
        # GIL back on for the whole process.
        result(outcome="check-failed", error=f"importing {name} enabled the GIL")
        return
    scope = {"sys": sys}
    exec(CHECKS, scope)
    try:
        done = scope["_peer_checks"](module) + scope["_peer_threads"](module)
    except Exception as e:  # noqa: BLE001 - any failure is the finding
        result(outcome="check-failed", error=f"{type(e).__name__}: {e}")
        return
    result(outcome="ok", checked=done, file=module.__file__)


def in_subinterpreter(name, config, import_in_main_first):
    import _interpreters

    if import_in_main_first:
        step(f"import {name} in main")
        __import__(name)
    step(f"create an interpreter ({config!r} config)")
    interp = _interpreters.create(config)
    setup = "import sys\nsys.path[:0] = " + repr(sys.path) + "\n"
    step(f"import {name} in interpreter {interp}")
    err = _interpreters.exec(interp, setup + f"import {name} as _peer")
    if err is not None:
        outcome = "import-error"
        detail = err.formatted
    else:
        step(f"call the surface of {name} in interpreter {interp}")
        err = _interpreters.exec(interp, CHECKS + "\n_peer_checks(_peer)\n")
        outcome = "ok" if err is None else "check-failed"
        detail = None if err is None else err.formatted
    step(f"destroy interpreter {interp}")
    _interpreters.destroy(interp)
    step("interpreter destroyed")
    fields = {"outcome": outcome}
    if detail is not None:
        fields["error"] = detail
    result(**fields)


def main(argv):
    probes = ("main", "isolated", "isolated-first", "legacy")
    if len(argv) != 3 or argv[2] not in probes:
        print(f"usage: smoke.py MODULE {'|'.join(probes)}", file=sys.stderr)
        return 2
    name, probe = argv[1], argv[2]
    if probe == "main":
        in_main(name)
    elif probe == "legacy":
        in_subinterpreter(name, "legacy", import_in_main_first=True)
    else:
        in_subinterpreter(name, "isolated", import_in_main_first=(probe == "isolated"))
    step("exit")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
