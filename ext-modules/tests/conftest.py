"""Collects the driver's cells per build, writes `target/interpsafe/ext/<build>.json` at the end
of the session and prints the table of findings per variant."""

import json
import os
import platform
import subprocess

import pytest

from test_ext import BUILDS, KINDS, OUT_DIR, VARIANTS

_RESULTS = {}


@pytest.fixture(scope="session")
def ext_results():
    return _RESULTS


def _facts(python):
    code = "import sys, sysconfig, json; print(json.dumps({'version': sys.version, " \
        "'free_threaded': bool(sysconfig.get_config_var('Py_GIL_DISABLED')), " \
        "'debug': hasattr(sys, 'gettotalrefcount')}))"
    try:
        return json.loads(subprocess.run([python, "-c", code], capture_output=True, text=True,
                                         timeout=60).stdout)
    except Exception as e:  # recorded, not fatal
        return {"error": str(e)}


def pytest_sessionfinish(session, exitstatus):
    os.makedirs(OUT_DIR, exist_ok=True)
    for build, cells in _RESULTS.items():
        python, so = BUILDS[build]
        order = {(v, k): i for i, (v, k) in enumerate((v, k) for v in VARIANTS for k in KINDS)}
        cells.sort(key=lambda c: order.get((c["variant"], c["kind"]), 0))
        record = {
            "schema": "interpsafe-ext/1",
            "build": build,
            "python": python,
            "so": so,
            "interpreter": _facts(python),
            "machine": platform.machine(),
            "cells": cells,
        }
        with open(os.path.join(OUT_DIR, f"{build}.json"), "w") as f:
            json.dump(record, f, indent=1)


def _mark(v):
    return {True: "yes", False: "NO", None: "-"}.get(v, str(v))


def pytest_terminal_summary(terminalreporter):
    for build, cells in sorted(_RESULTS.items()):
        tr = terminalreporter
        tr.section(f"interpsafe-ext on {build} (target/interpsafe/ext/{build}.json)")
        tr.write_line("variant               kind      status  imports             types/int exc/int cache/int interned exact refcount")
        for c in cells:
            s = c["summary"]
            imports = ",".join("ok" if i == "ok" else "REF" if i == "refused" else str(i) for i in s["imports"])
            status = c["status"] + (f"({c['signal']})" if c.get("signal") else "")
            rc = ";".join(f"{w}:{d}" for w, d in s["refcount_deltas"].items()) or "-"
            tr.write_line(
                f"{c['variant']:<21} {c['kind']:<9} {status:<7} {imports:<18}  "
                f"{_mark(s['types_per_interpreter']):<9} {_mark(s['exceptions_per_interpreter']):<7} "
                f"{_mark(s['caches_per_interpreter']):<9} {_mark(s['interned_local']):<8} "
                f"{_mark(s['counts_exact']):<5} {rc}"
            )
            for r in s["refusals"]:
                tr.write_line(f"    refused: {r}")
            for e in s["errors"][:3]:
                tr.write_line(f"    error: {e}")
