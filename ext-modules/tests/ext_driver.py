"""The driver of interpsafe's extension modules: every variant × interpreter kind × build, each
cell in a child process, so that a crash is a recorded cell rather than a dead driver.

A build is an interpreter and the `libinterpsafe_ext.so` built against it. The driver gives the
.so one file name per variant (`<variant>.so` symlinks in `target/interpsafe/ext/<build>/modules`:
one file, mapped once, one toolkit runtime for every variant), runs `ext_cell.py` per cell with
that interpreter, and writes every cell to `target/interpsafe/ext/<build>.json` as
`interpsafe_results` records (`kind: ext_cell`), and in full to `target/interpsafe/ext/<build>/cells.json`.

Builds: `INTERPSAFE_EXT_BUILDS="NAME=PYTHON=SO,..."`, or by default each of 3.13, 3.13t and
3.13-debug whose interpreter is in the interpsafe cache (`$INTERPSAFE_CACHE`, else
`~/.cache/interpsafe`) and whose .so is at `target/ext-NAME/debug/libinterpsafe_ext.so`.

Run by pytest (`test_ext.py`, which asserts through [`failures`]) or on its own
(`python ext_driver.py`, as `cargo xtask test` runs it, with no pytest needed): it then runs
every cell of every build, writes the JSON, prints the table and exits non-zero if a cell that
must pass did not.

Peer modules (`peers/`: pybind11, nanobind, Cython, C, with the same surface) found for a build
are run as more variants (`discover_peers`). Only the checked strategies' cells assert
(`ASSERTED`): they must import everywhere and pass every
check. `stock_pyo3` (PyO3 as it is) and `interpsafe_unchecked` (the baseline: process-global
once-cells) and the peers are run and recorded, never asserted: what they do is the finding.
"""

import json
import os
import platform
import signal
import subprocess
import sys

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
KINDS = ["main", "isolated", "legacy", "isolated-first", "cpython-interpreters"]
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


def _tarball():
    """The CPython source tarball the interpreters were built from (the interpsafe cache's)."""
    cache = os.environ.get("INTERPSAFE_CACHE") or os.path.expanduser("~/.cache/interpsafe")
    return os.environ.get("INTERPSAFE_EXT_CPYTHON_TARBALL") or os.path.join(
        cache, "src", "python3.13_3.13.15.orig.tar.xz"
    )


def interpreters_package():
    """The directory holding CPython's `interpreters` package (`Lib/test/support/interpreters`
    of the source tarball, which the builds do not install), extracted into
    `target/interpsafe/ext/cpython-interpreters/` once per tarball; or why there is none."""
    import tarfile

    if sys.version_info[:2] >= (3, 14):
        # PEP 734's API in the standard library: `stdlib` tells the cell to use it.
        import importlib.util

        if importlib.util.find_spec("concurrent.interpreters") is None:
            return None, "this 3.14+ build has no concurrent.interpreters"
        return "stdlib", None
    if sys.version_info[:2] != (3, 13):
        return None, f"no interpreters API known for {sys.version_info[0]}.{sys.version_info[1]}"
    # The cached tarball is 3.13.15's, and its package drives 3.13's `_interpreters` module,
    # whose API changed in 3.14.
    tarball = _tarball()
    dest = os.path.join(OUT_DIR, "cpython-interpreters")
    stamp = os.path.join(dest, "from.txt")
    try:
        with open(stamp) as f:
            if f.read() == tarball and os.path.isdir(os.path.join(dest, "interpreters")):
                return dest, None
    except OSError:
        pass
    if not os.path.isfile(tarball):
        return None, f"no CPython source tarball at {tarball} (set INTERPSAFE_EXT_CPYTHON_TARBALL)"
    os.makedirs(dest, exist_ok=True)
    marker = "/Lib/test/support/interpreters/"
    with tarfile.open(tarball) as tar:
        members = [m for m in tar.getmembers() if marker in m.name and m.isfile()]
        if not members:
            return None, f"{tarball} holds no Lib/test/support/interpreters"
        for m in members:
            m.name = "interpreters/" + m.name.split(marker, 1)[1]
            tar.extract(m, dest, filter="data")
    with open(stamp, "w") as f:
        f.write(tarball)
    return dest, None


try:
    INTERPRETERS, INTERPRETERS_MISSING = interpreters_package()
except Exception as e:  # no lzma module, a damaged tarball: the cells are not run, and say why
    INTERPRETERS, INTERPRETERS_MISSING = None, f"cannot extract the interpreters package: {e}"


def kinds():
    """The interpreter kinds run: `cpython-interpreters` only with CPython's package found."""
    return KINDS if INTERPRETERS else [k for k in KINDS if k != "cpython-interpreters"]


def discover_peers(build):
    """The peer modules built for `build` (`peer_<binding>.cpython-*.so` in
    `$INTERPSAFE_EXT_PEERS/<build>`, by default `target/interpsafe/peers/<build>`, where
    `cargo xtask peers build` puts them): variant name -> file. Recorded, never asserted."""
    root = os.environ.get("INTERPSAFE_EXT_PEERS") or os.path.join(ROOT, "target", "interpsafe", "peers")
    folder = os.path.join(root, build)
    if not os.path.isdir(folder):
        return {}
    return {
        name.split(".", 1)[0]: os.path.join(folder, name)
        for name in sorted(os.listdir(folder))
        if name.startswith("peer_") and name.endswith(".so")
    }


PEERS = {build: discover_peers(build) for build in BUILDS}


def variants(build):
    """Every variant run on `build`: the crate's, then the peers found for it."""
    return VARIANTS + list(PEERS.get(build, {}))


def module_dir(build):
    """The directory that gives the build's .so one name per variant (and links the peers)."""
    _, so = BUILDS[build]
    files = {variant: so for variant in VARIANTS}
    files.update(PEERS.get(build, {}))
    path = os.path.join(OUT_DIR, build, "modules")
    os.makedirs(path, exist_ok=True)
    for variant, target in files.items():
        link = os.path.join(path, f"{variant}.so")
        if os.path.islink(link) or os.path.exists(link):
            os.remove(link)
        os.symlink(os.path.abspath(target), link)
    return path


def run_cell(build, variant, kind):
    python, _ = BUILDS[build]
    out = os.path.join(OUT_DIR, build, f"{variant}-{kind}.json")
    if os.path.exists(out):
        os.remove(out)
    cmd = [python, os.path.join(HERE, "ext_cell.py"), module_dir(build), variant, kind, out]
    cell = {"build": build, "variant": variant, "kind": kind}
    env = dict(os.environ)
    if INTERPRETERS:
        env["INTERPSAFE_EXT_INTERPRETERS"] = INTERPRETERS
    if kind == "cpython-interpreters":
        # The pool's worker interpreters import the task's module by name as they start.
        paths = [module_dir(build), HERE, env.get("PYTHONPATH")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    try:
        # A crash can leave any bytes on stderr (a debug build's freed-memory pattern).
        proc = subprocess.run(
            cmd, capture_output=True, encoding="utf-8", errors="replace", timeout=TIMEOUT, env=env
        )
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
    later = [phases.get("reimport"), phases.get("main_last")]
    # The InterpreterPoolExecutor's tasks (3.14+): checked like the rest, but not compared for
    # distinct modules (two workers run the four tasks, so reports share interpreters).
    every = alive + [r for r in later if r] + list(phases.get("pool") or [])
    imported = [r for r in every if r.get("import") == "ok"]
    together = [r for r in alive if r.get("import") == "ok"]

    def distinct(key):
        ids = [r[key] for r in together]
        return len(set(ids)) == len(ids) if len(ids) > 1 else None

    deltas = {
        where: phases[where].get("refcount_deltas")
        for where in ("main", "reimport", "main_last")
        if phases.get(where) and phases[where].get("refcount_deltas") is not None
    }
    return {
        "imports": [r.get("import") for r in every],
        "refusals": sorted({r.get("message") for r in every if r.get("import") != "ok"} - {None}),
        "modules_per_interpreter": distinct("module_id"),
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
        # An interpreter made after the subinterpreters were destroyed (or a pool worker) got
        # a cached() object that another interpreter made first: a cache that outlived its
        # owner, or one shared between interpreters (the cache names its first user).
        "stale_cache_suspected": any(
            r.get("cached_owner") not in (None, r.get("interpreter"))
            for r in [phases.get("reimport")] + list(phases.get("pool") or [])
            if r and r.get("import") == "ok"
        ),
        # An instance made in one interpreter passed isinstance against the other's class
        # (legacy cells only; see ext_cell.foreign_instances).
        "foreign_instance_isinstance": _foreign(phases.get("foreign")),
        "lifecycle_refcount_deltas": phases.get("lifecycle_refcount_deltas"),
        "destroyed": phases.get("destroyed"),
        "reimported": (phases.get("reimport") or {}).get("import"),
        # Read where nothing else runs: in 3.13t an import enables the GIL for the time it runs
        # an extension's init, and legacy interpreters share one GIL, so a subinterpreter can
        # see another one's import in flight.
        "gil_enabled": any(
            (phases.get(w) or {}).get("gil_enabled") for w in ("main", "reimport", "main_last")
        ),
    }


def _foreign(seen):
    """Whether either interpreter took the other's instance for one of its own (None if the
    check did not run)."""
    if not seen or "skipped" in seen:
        return None
    return any(
        seen.get(k)
        for k in ("sub_isinstance_main_instance", "main_isinstance_sub_instance")
    )


CELLS = [(b, v, k) for b in BUILDS for v in variants(b) for k in kinds()]


def failures(cell):
    """Why a cell of an asserted variant failed (empty if it passed, or if it is only observed)."""
    if cell["variant"] not in ASSERTED:
        return []
    s, kind, bad = cell["summary"], cell["kind"], []
    if cell["status"] != "ok":
        bad.append(f"status {cell['status']} {cell.get('signal') or ''}: {cell['stderr'][-500:]}")
    if set(s["imports"]) != {"ok"}:
        bad.append(f"imports {s['imports']}: {s['refusals']}")
    if s["errors"]:
        bad.append(f"errors: {s['errors']}")
    for check in ("instances_of_own_class", "counts_exact", "interned_local"):
        if not s[check]:
            bad.append(f"{check} is {s[check]}")
    if s["gil_enabled"]:
        bad.append("importing it enabled the GIL of a free-threaded build")
    if s["stale_cache_suspected"]:
        bad.append(
            "a later interpreter (after the destroys, or a pool worker) got a cached() object "
            "another interpreter made"
        )
    if kind != "main":
        for check in (
            "modules_per_interpreter",
            "types_per_interpreter",
            "exceptions_per_interpreter",
            "caches_per_interpreter",
        ):
            if not s[check]:
                bad.append(f"{check} is {s[check]}")
        if kind == "legacy" and s["foreign_instance_isinstance"] is not False:
            bad.append(
                f"a foreign instance passed isinstance (or was not checked): "
                f"{cell['phases'].get('foreign')}"
            )
        if set(s["destroyed"] or []) != {"ok"} or s["reimported"] != "ok":
            bad.append(f"destroy {s['destroyed']}, re-import {s['reimported']}")
    for where, d in s["refcount_deltas"].items():
        if d != [0] * len(d):
            bad.append(f"refcount drift in {where}: {d}")
    return bad


def _facts(python):
    code = (
        "import sys, sysconfig, json, platform; print(json.dumps({'version': sys.version, "
        "'release': platform.python_version(), "
        "'free_threaded': bool(sysconfig.get_config_var('Py_GIL_DISABLED')), "
        "'debug': hasattr(sys, 'gettotalrefcount')}))"
    )
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
        return json.loads(out.stdout)
    except Exception as e:  # recorded, not fatal
        return {"error": str(e)}


def _pyo3_version():
    """The PyO3 version the workspace locks (what `stock_pyo3` and the toolkit link)."""
    try:
        with open(os.path.join(ROOT, "Cargo.lock")) as f:
            lock = f.read()
    except OSError:
        return "unknown"
    for package in lock.split("[[package]]"):
        lines = dict(
            line.split(" = ", 1) for line in package.strip().splitlines() if " = " in line
        )
        if lines.get("name") == '"pyo3"':
            return lines.get("version", '"unknown"').strip('"')
    return "unknown"


def _machine():
    """The machine as `interpsafe_results::Machine::detect` describes it (no host names)."""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        info = ""

    def field(name):
        for line in info.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == name:
                return value.strip()
        return None

    siblings, cores = field("siblings"), field("cpu cores")
    per_core = None
    if siblings and cores and siblings.isdigit() and cores.isdigit() and int(cores) > 0:
        per_core = int(siblings) // int(cores)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "os": sys.platform if sys.platform != "linux" else "linux",
        "arch": platform.machine(),
        "cpus": cpus or 1,
        "cpu_model": field("model name"),
        "threads_per_core": per_core,
    }


def environment(build, facts):
    """The `interpsafe_results::Environment` of the build's records."""
    variant = build.split("-", 1)[1] if "-" in build else None
    return {
        "interpreter": {
            "name": build,
            "version": facts.get("release", "unknown"),
            "free_threaded": bool(facts.get("free_threaded")),
            "variant": variant,
        },
        "pyo3_version": _pyo3_version(),
        "machine": _machine(),
    }


def outcome(cell):
    """The cell's `interpsafe_results::ExtOutcome`."""
    if cell["status"] == "crash":
        return {"status": "crashed", "signal": cell.get("signal") or "unknown"}
    if cell["status"] == "hang":
        return {"status": "hung"}
    if cell["status"] != "ok":
        return {"status": "failed", "message": cell["stderr"].strip()[-500:]}
    s = cell["summary"]
    if s["refusals"] and "refused" in s["imports"]:
        return {"status": "refused", "message": s["refusals"][0]}
    if set(s["imports"]) != {"ok"}:
        return {"status": "failed", "message": "; ".join(s["refusals"]) or str(s["imports"])}
    return {"status": "imported"}


def record(cell, env):
    """The cell as an `interpsafe_results` record (`kind: ext_cell`)."""
    s = cell["summary"]
    drift = [d for deltas in s["refcount_deltas"].values() for d in deltas]
    return {
        "environment": env,
        "kind": "ext_cell",
        "variant": cell["variant"],
        "interpreter_kind": cell["kind"],
        "build": cell["build"],
        "outcome": outcome(cell),
        "asserted": cell["variant"] in ASSERTED,
        "modules_per_interpreter": s["modules_per_interpreter"],
        "types_per_interpreter": s["types_per_interpreter"],
        "exceptions_per_interpreter": s["exceptions_per_interpreter"],
        "caches_per_interpreter": s["caches_per_interpreter"],
        "foreign_instance_isinstance": s.get("foreign_instance_isinstance"),
        "counts_exact": s["counts_exact"],
        "refcount_drift": drift,
        "failures": failures(cell),
    }


def write_results(build, cells, producer="ext-modules/tests/ext_driver.py"):
    """Writes `target/interpsafe/ext/<build>.json`, an `interpsafe_results` file with one
    `ext_cell` record per cell (what the report and `cargo xtask docs --refresh` read), and
    `target/interpsafe/ext/<build>/cells.json`, the build's facts and every cell in full."""
    python, so = BUILDS[build]
    order = {(v, k): i for i, (v, k) in enumerate((v, k) for v in variants(build) for k in kinds())}
    cells = sorted(cells, key=lambda c: order.get((c["variant"], c["kind"]), 0))
    raw = {
        "schema": "interpsafe-ext/1",
        "build": build,
        "python": python,
        "so": so,
        "peers": PEERS.get(build, {}),
        "interpreter": _facts(python),
        "machine": platform.machine(),
        "cells": cells,
    }
    os.makedirs(os.path.join(OUT_DIR, build), exist_ok=True)
    with open(os.path.join(OUT_DIR, build, "cells.json"), "w") as f:
        json.dump(raw, f, indent=1)
    env = environment(build, raw["interpreter"])
    results = {
        "schema": "interpsafe-results/1",
        "producer": producer,
        "records": [record(c, env) for c in cells],
    }
    path = os.path.join(OUT_DIR, f"{build}.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    return path


def _mark(v):
    return {True: "yes", False: "NO", None: "-"}.get(v, str(v))


def _passed(v):
    """A check where `True` is the finding (a foreign instance passed isinstance)."""
    return {True: "PASSED", False: "no", None: "-"}[v]


def table(cells):
    """The findings per cell, one line each (and the refusals and errors under it)."""
    lines = [
        f"{'variant':<21} {'kind':<14} {'status':<7} {'imports':<22} {'mod/int':<7} {'types/int':<9} "
        f"{'exc/int':<7} {'cache/int':<9} {'foreign':<7} {'interned':<8} {'exact':<5} {'gil':<4} {'stale':<5} refcount"
    ]
    for c in cells:
        s = c["summary"]
        short = {"ok": "ok", "refused": "REF"}
        imports = ",".join(short.get(i, str(i)) for i in s["imports"])
        status = c["status"] + (f"({c['signal']})" if c.get("signal") else "")
        rc = ";".join(f"{w}:{d}" for w, d in s["refcount_deltas"].items()) or "-"
        lines.append(
            f"{c['variant']:<21} {c['kind']:<14} {status:<7} {imports:<22} "
            f"{_mark(s['modules_per_interpreter']):<7} {_mark(s['types_per_interpreter']):<9} "
            f"{_mark(s['exceptions_per_interpreter']):<7} "
            f"{_mark(s['caches_per_interpreter']):<9} "
            f"{_passed(s['foreign_instance_isinstance']):<7} {_mark(s['interned_local']):<8} "
            f"{_mark(s['counts_exact']):<5} {'on' if s['gil_enabled'] else 'off':<4} "
            f"{'YES' if s['stale_cache_suspected'] else 'no':<5} {rc}"
        )
        if s["lifecycle_refcount_deltas"] is not None:
            lines.append(f"    interpreter lifecycle refcount: {s['lifecycle_refcount_deltas']}")
        lines += [f"    refused: {r}" for r in s["refusals"]]
        lines += [f"    error: {e}" for e in s["errors"][:3]]
    return lines


def main():
    if not BUILDS:
        print("no build found (see the module docs)", file=sys.stderr)
        return 2
    if INTERPRETERS_MISSING:
        print(f"not running the cpython-interpreters cells: {INTERPRETERS_MISSING}", flush=True)
    failed = []
    for build in BUILDS:
        cells = []
        for _, variant, kind in [c for c in CELLS if c[0] == build]:
            cell = run_cell(build, variant, kind)
            cells.append(cell)
            bad = failures(cell)
            verdict = "FAILED" if bad else ("ok" if variant in ASSERTED else "recorded")
            print(f"{build} {variant} {kind}: {verdict}", flush=True)
            for b in bad:
                print(f"    {b}", flush=True)
            if bad:
                failed.append(f"{build} {variant} {kind}: {'; '.join(bad)}")
        path = write_results(build, cells)
        print(f"== {build} ({path})")
        print("\n".join(table(cells)), flush=True)
    # Last, so that a log cut to its end still says which cells failed and why.
    for line in failed:
        print(f"FAILED {line}"[:600], flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
