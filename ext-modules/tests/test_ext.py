"""The driver of interpsafe's extension modules: every variant × interpreter kind × build, each
cell in a child process, so that a crash is a recorded cell rather than a dead driver.

A build is an interpreter and the `libinterpsafe_ext.so` built against it. The driver gives the
.so one file name per variant (`<variant>.so` symlinks in `target/interpsafe/ext/<build>/modules`:
one file, mapped once, one toolkit runtime for every variant), runs `ext_cell.py` per cell with
that interpreter, and writes every cell to `target/interpsafe/ext/<build>.json`.

Builds: `INTERPSAFE_EXT_BUILDS="NAME=PYTHON=SO,..."`, or by default each of 3.13, 3.13t and
3.13-debug whose interpreter is in the interpsafe cache (`$INTERPSAFE_CACHE`, else
`~/.cache/interpsafe`) and whose .so is at `target/ext-NAME/debug/libinterpsafe_ext.so`.

Only the checked strategies' cells assert (`ASSERTED`): they must import everywhere and pass every
check. `stock_pyo3` (PyO3 as it is) and `interpsafe_unchecked` (the baseline: process-global
once-cells) are run and recorded, never asserted: what they do is the finding.
"""

import json
import os
import signal
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT_DIR = os.path.join(ROOT, "target", "interpsafe", "ext")

VARIANTS = [
    "stock_pyo3",
    "interpsafe_unchecked",
    "interpsafe_tagged",
    "interpsafe_scoped",
    "interpsafe_branded",
    "interpsafe_affine",
]
ASSERTED = {"interpsafe_tagged", "interpsafe_scoped", "interpsafe_branded", "interpsafe_affine"}
KINDS = ["main", "isolated", "legacy"]
DEFAULT_BUILDS = {"3.13": "python3.13", "3.13t": "python3.13t", "3.13-debug": "python3.13d"}
TIMEOUT = int(os.environ.get("INTERPSAFE_EXT_TIMEOUT", "300"))


def discover_builds():
    spec = os.environ.get("INTERPSAFE_EXT_BUILDS")
    if spec:
        builds = {}
        for entry in filter(None, spec.split(",")):
            name, python, so = entry.split("=", 2)
            builds[name] = (python, so)
        return builds
    cache = os.environ.get("INTERPSAFE_CACHE") or os.path.expanduser("~/.cache/interpsafe")
    builds = {}
    for name, exe in DEFAULT_BUILDS.items():
        python = os.path.join(cache, "python", name, "bin", exe)
        so = os.path.join(ROOT, "target", f"ext-{name}", "debug", "libinterpsafe_ext.so")
        if os.path.exists(python) and os.path.exists(so):
            builds[name] = (python, so)
    return builds


BUILDS = discover_builds()


def module_dir(build):
    """The directory that gives the build's .so one name per variant."""
    _, so = BUILDS[build]
    path = os.path.join(OUT_DIR, build, "modules")
    os.makedirs(path, exist_ok=True)
    for variant in VARIANTS:
        link = os.path.join(path, f"{variant}.so")
        if os.path.islink(link) or os.path.exists(link):
            os.remove(link)
        os.symlink(os.path.abspath(so), link)
    return path


def run_cell(build, variant, kind):
    python, _ = BUILDS[build]
    out = os.path.join(OUT_DIR, build, f"{variant}-{kind}.json")
    if os.path.exists(out):
        os.remove(out)
    cmd = [python, os.path.join(HERE, "ext_cell.py"), module_dir(build), variant, kind, out]
    cell = {"build": build, "variant": variant, "kind": kind}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
        rc = proc.returncode
        cell["returncode"] = rc
        if rc < 0:
            cell["status"] = "crash"
            cell["signal"] = signal.Signals(-rc).name
        else:
            cell["status"] = "ok" if rc == 0 else "error"
        cell["stderr"] = proc.stderr[-2000:]
    except subprocess.TimeoutExpired as e:
        cell["status"] = "hang"
        cell["stderr"] = (e.stderr or b"")[-2000:].decode(errors="replace")
    try:
        with open(out) as f:
            cell["phases"] = json.load(f)["phases"]
    except (OSError, ValueError):
        cell["phases"] = {}
    cell["summary"] = summarize(cell)
    return cell


def summarize(cell):
    """The recorded findings of one cell, from its phases."""
    phases = cell["phases"]
    alive = [phases.get("main")] + list(phases.get("subs") or [])
    alive = [r for r in alive if r]
    every = alive + ([phases["reimport"]] if phases.get("reimport") else [])
    imported = [r for r in every if r.get("import") == "ok"]
    together = [r for r in alive if r.get("import") == "ok"]

    def distinct(key):
        ids = [r[key] for r in together]
        return len(set(ids)) == len(ids) if len(ids) > 1 else None

    deltas = {
        where: phases[where].get("refcount_deltas")
        for where in ("main", "reimport")
        if phases.get(where) and phases[where].get("refcount_deltas") is not None
    }
    return {
        "imports": [r.get("import") for r in every],
        "refusals": sorted({r.get("message") for r in every if r.get("import") != "ok"} - {None}),
        "types_per_interpreter": distinct("counter_type_id"),
        "exceptions_per_interpreter": distinct("error_type_id"),
        "caches_per_interpreter": distinct("cached_id"),
        "interned_local": all(r.get("interned_is_local") for r in imported) if imported else None,
        "instances_of_own_class": all(r.get("instance_type_is_class") for r in imported)
        if imported
        else None,
        "counts_exact": all(r.get("count_exact") for r in imported) if imported else None,
        "errors": [e for r in imported for e in r.get("errors", [])][:10],
        "refcount_deltas": deltas,
        "destroyed": phases.get("destroyed"),
        "reimported": (phases.get("reimport") or {}).get("import"),
    }


CELLS = [(b, v, k) for b in BUILDS for v in VARIANTS for k in KINDS]


@pytest.mark.parametrize("build,variant,kind", CELLS, ids=["-".join(c) for c in CELLS])
def test_cell(build, variant, kind, ext_results):
    cell = run_cell(build, variant, kind)
    ext_results.setdefault(build, []).append(cell)
    if variant not in ASSERTED:
        return
    s = cell["summary"]
    assert cell["status"] == "ok", (cell["status"], cell.get("signal"), cell["stderr"])
    assert set(s["imports"]) == {"ok"}, s["refusals"]
    assert s["errors"] == [], s["errors"]
    assert s["instances_of_own_class"] and s["counts_exact"] and s["interned_local"], s
    if kind != "main":
        assert s["types_per_interpreter"], "a Counter type is shared between interpreters"
        assert s["exceptions_per_interpreter"], "an Error class is shared between interpreters"
        assert s["caches_per_interpreter"], "cached() is shared between interpreters"
        assert set(s["destroyed"]) == {"ok"} and s["reimported"] == "ok", s
    for where, d in s["refcount_deltas"].items():
        assert d == [0] * len(d), f"refcount drift in {where}: {d}"


def test_builds_found():
    assert BUILDS, "no build: build ext-modules against an interpreter first (see the docstring)"
