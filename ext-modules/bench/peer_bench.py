#!/usr/bin/env python3
"""The extension-module comparison's benches: every variant of the surface, every operation.

Run by `cargo xtask bench --only peers` (xtask/src/peer_bench.rs) with the interpreter under
test (the peers' venv python for the pyperf modes: pyperf is installed there). Every mode writes
a JSON list of figures whose fields are those of `interpsafe_results::ExtBenchFigure`
(`--out FILE`), so the Rust side only stamps the environment on them.

Modes (the first argument):

  pyperf [--second] --path DIRS --variants V,... --out FILE [pyperf options, e.g. --fast]
      Each variant x operation with pyperf's `bench_time_func` (its workers re-run this script):
      `main` (only main alive) or, with `--second`, `second-alive` (an own-GIL subinterpreter
      created through `_interpreters` and kept alive for the whole process).
  subinterp --path DIRS --variants V,... --out FILE [--iterations N] [--repeats R]
      Each variant in its own child process: imported in main, then in an own-GIL
      subinterpreter, where each operation's loop is timed with `time.perf_counter_ns` (pyperf
      cannot spawn workers there), R repeats of N calls; mean, stdev and min-max per call.
      A refused import (or a crashed child) is recorded as refused.
  scaling --path DIRS --variants V,... --out FILE [--iterations N] [--repeats R]
      `Counter().incr()` in 1 and then 2 own-GIL subinterpreters, each on its own thread, the
      throughput of 2 over that of 1; a pure-Python counter (variant `python-control`) the same
      way.
  count --path DIRS --variants V,... --out FILE [--n N] [--second]
      Instructions per call under callgrind: per variant, one `valgrind --tool=callgrind` child
      running `count-one`, which runs each operation N then 2N times between calls of
      `time.sleep(0)` (callgrind dumps before each: `--dump-before=time_sleep`), so that
      (I(2N) - I(N)) / N is the cost of one call plus the loop's iteration. PYTHONHASHSEED=0.

DIRS is an `os.pathsep`-separated list put in front of `sys.path` (the variants' `.so` files).
"""

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.abspath(__file__)

# Operation -> (setup, statement) run as `for _ in range(loops): statement` with `m` the module.
OPERATIONS = {
    "incr": ("c = m.Counter()", "c.incr()"),
    "value": ("c = m.Counter()", "c.value"),
    "identity": ("f = m.identity; o = object()", "f(o)"),
    "raise_error": (
        "f = m.raise_error; E = m.Error",
        "try:\n    f('x')\nexcept E:\n    pass",
    ),
    "interned": ("f = m.interned", "f()"),
    "cached": ("f = m.cached", "f()"),
    "call": ("f = m.call\ndef cb(x):\n    return x", "f(cb, 1)"),
    "empty_loop": ("", "pass"),
}


def loop_source(op, name="run"):
    """A function `name(m, loops)` that runs `op` `loops` times, returning perf_counter_ns spent."""
    setup, stmt = OPERATIONS[op]
    setup = "\n".join("    " + line for line in setup.splitlines())
    stmt = "\n".join("        " + line for line in stmt.splitlines())
    return (
        f"def {name}(m, loops):\n"
        "    from time import perf_counter_ns\n"
        f"{setup}\n"
        "    it = range(loops)\n"
        "    t0 = perf_counter_ns()\n"
        "    for _ in it:\n"
        f"{stmt}\n"
        "    return perf_counter_ns() - t0\n"
    )


def loop_function(op):
    ns = {}
    exec(loop_source(op), ns)
    return ns["run"]


def figure(variant, op, mode, method, interpreters=1, **more):
    out = {
        "variant": variant,
        "operation": op,
        "mode": mode,
        "interpreters": interpreters,
        "method": method,
    }
    out.update({k: v for k, v in more.items() if v is not None})
    return out


def spread(values):
    """(mean, stdev, min, max) of per-call values."""
    mean = statistics.fmean(values)
    stdev = statistics.stdev(values) if len(values) > 1 else None
    return mean, stdev, min(values), max(values)


def write(path, figures):
    with open(path, "w") as f:
        json.dump(figures, f, indent=1)


def opt(argv, name, default=None):
    if name in argv:
        i = argv.index(name)
        if i + 1 >= len(argv):
            sys.exit(f"peer_bench: {name} needs a value")
        return argv[i + 1]
    if default is None:
        sys.exit(f"peer_bench: missing {name}")
    return default


def add_path(dirs):
    for d in reversed([d for d in dirs.split(os.pathsep) if d]):
        sys.path.insert(0, d)


def create_isolated():
    import _interpreters

    return _interpreters.create("isolated")


def exec_in(interp, code):
    """Runs `code` in `interp`; the error text if it raised, else None."""
    import _interpreters

    res = _interpreters.exec(interp, code)
    if res is None:
        return None
    return getattr(res, "formatted", None) or getattr(res, "msg", None) or str(res)


# ---------------------------------------------------------------------------------------------
# pyperf


def pyperf_mode(argv):
    import pyperf

    def add_cmdline_args(cmd, args):
        cmd.extend(["--path", args.path, "--variants", args.variants, "--out", args.out])
        if args.second:
            cmd.append("--second")

    runner = pyperf.Runner(add_cmdline_args=add_cmdline_args)
    runner.argparser.add_argument("--path", required=True)
    runner.argparser.add_argument("--variants", required=True)
    runner.argparser.add_argument("--out", required=True)
    runner.argparser.add_argument("--second", action="store_true")
    args = runner.parse_args(argv)
    add_path(args.path)
    keep = None
    if args.second:
        keep = create_isolated()  # kept alive for the whole process, workers included
    mode = "second-alive" if args.second else "main"
    figures = []
    for variant in args.variants.split(","):
        for op in OPERATIONS:
            if op == "empty_loop" and variant != args.variants.split(",")[0]:
                continue
            run = loop_function(op)
            name = f"{variant}.{op}.{mode}"
            # Imported on first use: a worker runs one benchmark, so imports only its variant.
            b = runner.bench_time_func(
                name, lambda loops, run=run, v=variant: run(__import__(v), loops) / 1e9
            )
            if b is None or runner.args.worker:  # a worker: the manager records
                continue
            values = [v * 1e9 for v in b.get_values()]
            if not values:
                continue
            mean, stdev, lo, hi = spread(values)
            who = "python" if op == "empty_loop" else variant
            figures.append(
                figure(who, op, mode, "pyperf", 2 if args.second else 1, ns_per_op=mean,
                       ns_stdev=stdev, ns_interval={"low": lo, "high": hi})
            )
    if not runner.args.worker:
        write(args.out, figures)
    del keep


# ---------------------------------------------------------------------------------------------
# inside an own-GIL subinterpreter


def run_child(argv, timeout=600):
    """Runs this script with `argv` in a child; (figures or None, why not)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.json")
        cmd = [sys.executable, HERE] + argv + ["--out", out]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, f"timed out after {timeout} s"
        sys.stderr.write(p.stderr[-2000:])
        if p.returncode < 0:
            sig = signal.Signals(-p.returncode).name
            last = (p.stderr.strip().splitlines() or [""])[-1][:200]
            return None, f"crashed: {sig}" + (f" ({last})" if last else "")
        if p.returncode != 0 or not os.path.exists(out):
            last = (p.stderr.strip().splitlines() or [""])[-1][:200]
            return None, f"exit status {p.returncode}: {last}"
        with open(out) as f:
            return json.load(f), None


SUB_PRELUDE = """
import sys, json
sys.path[0:0] = {path!r}
"""


def subinterp_one(argv):
    variant = argv[0]
    dirs = opt(argv, "--path").split(os.pathsep)
    n, repeats, out = int(opt(argv, "--iterations", "20000")), int(opt(argv, "--repeats", "7")), opt(argv, "--out")
    add_path(os.pathsep.join(dirs))
    __import__(variant)  # imported in main first, as any program would
    interp = create_isolated()
    with tempfile.TemporaryDirectory() as tmp:
        result = os.path.join(tmp, "sub.json")
        code = SUB_PRELUDE.format(path=dirs) + "".join(
            loop_source(op, f"run_{op}") for op in OPERATIONS
        ) + f"""
try:
    m = __import__({variant!r})
except ImportError as e:
    json.dump({{"refused": str(e)}}, open({result!r}, "w"))
else:
    res = {{}}
    for op in {list(OPERATIONS)!r}:
        run = globals()["run_" + op]
        run(m, {n} // 10)
        res[op] = [run(m, {n}) / {n} for _ in range({repeats})]
    json.dump(res, open({result!r}, "w"))
"""
        err = exec_in(interp, code)
        figures = []
        if err is not None:
            data = {"refused": err.strip().splitlines()[-1][:300]}
        else:
            with open(result) as f:
                data = json.load(f)
    for op in OPERATIONS:
        who = "python" if op == "empty_loop" else variant
        if "refused" in data:
            figures.append(figure(who, op, "subinterpreter", "perf_counter_ns", refused=data["refused"]))
            continue
        mean, stdev, lo, hi = spread(data[op])
        figures.append(figure(who, op, "subinterpreter", "perf_counter_ns", ns_per_op=mean,
                              ns_stdev=stdev, ns_interval={"low": lo, "high": hi}))
    write(out, figures)


def without(argv, *names):
    """`argv` without the valued options `names`."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in names:
            skip = True
        else:
            out.append(a)
    return out


def per_variant(argv, child_mode, mode, ops):
    variants = opt(argv, "--variants").split(",")
    out = opt(argv, "--out")
    rest = without(argv, "--variants", "--out")
    figures = []
    for variant in variants:
        print(f"[peer_bench] {child_mode} {variant}", flush=True)
        got, why = run_child([child_mode, variant] + rest)
        if got is None:
            figures.extend(figure(variant, op, mode, "child", refused=why) for op in ops)
        else:
            figures.extend(got)
    write(out, figures)


# ---------------------------------------------------------------------------------------------
# scaling: 1 vs 2 own-GIL subinterpreters on their own threads

CONTROL = "python-control"
CONTROL_SOURCE = """
class Counter:
    __slots__ = ("n",)
    def __init__(self):
        self.n = 0
    def incr(self):
        self.n += 1
        return self.n
class m:
    Counter = Counter
"""


def scaling_one(argv):
    variant = argv[0]
    dirs = opt(argv, "--path").split(os.pathsep)
    n, repeats, out = int(opt(argv, "--iterations", "200000")), int(opt(argv, "--repeats", "5")), opt(argv, "--out")
    add_path(os.pathsep.join(dirs))
    if variant != CONTROL:
        __import__(variant)
    interps = [create_isolated(), create_isolated()]
    setup = SUB_PRELUDE.format(path=dirs) + loop_source("incr")
    setup += CONTROL_SOURCE if variant == CONTROL else f"m = __import__({variant!r})\n"
    for interp in interps:
        err = exec_in(interp, setup)
        if err is not None:
            write(out, [figure(variant, "incr", "scaling", "threads", 2,
                               refused=err.strip().splitlines()[-1][:300])])
            return
    code = f"run(m, {n})"

    def once(k):
        errors = []
        threads = [threading.Thread(target=lambda i=i: errors.append(exec_in(interps[i], code)))
                   for i in range(k)]
        t0 = time.perf_counter_ns()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        dt = time.perf_counter_ns() - t0
        if any(errors):
            raise RuntimeError(next(e for e in errors if e))
        return k * n / dt  # calls per ns

    once(1)
    one = [once(1) for _ in range(repeats)]
    two = [once(2) for _ in range(repeats)]
    best1 = max(one)
    ratios = [t / best1 for t in two]
    write(out, [figure(variant, "incr", "scaling", "threads", 2, scaling=max(ratios),
                       ns_per_op=1 / max(two), ns_interval={"low": 1 / max(two), "high": 1 / min(two)},
                       scaling_interval={"low": min(ratios), "high": max(ratios)})])


# ---------------------------------------------------------------------------------------------
# instruction counts


def count_one(argv):
    variant = argv[0]
    n = int(opt(argv, "--n", "2000"))
    add_path(opt(argv, "--path"))
    m = __import__(variant)
    keep = create_isolated() if "--second" in argv else None
    runs = {op: loop_function(op) for op in OPERATIONS}
    for op, run in runs.items():  # warm up (specialisation, caches) before the first dump
        run(m, 2 * n)
    for op, run in runs.items():
        time.sleep(0)
        run(m, n)
        time.sleep(0)
        run(m, 2 * n)
    time.sleep(0)
    del keep


def totals(path):
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith(("totals:", "summary:")):
                return int(line.split()[1])
    raise ValueError(f"{path}: no totals line")


def count_mode(argv):
    variants = opt(argv, "--variants").split(",")
    out, n, path = opt(argv, "--out"), int(opt(argv, "--n", "2000")), opt(argv, "--path")
    second = "--second" in argv
    mode = "second-alive" if second else "main"
    env = dict(os.environ, PYTHONHASHSEED="0")
    figures = []
    for variant in variants:
        print(f"[peer_bench] callgrind {variant} ({mode})", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            base = os.path.join(tmp, "cg.out")
            cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={base}",
                   "--dump-before=time_sleep", sys.executable, HERE, "count-one", variant,
                   "--path", path, "--n", str(n)] + (["--second"] if second else [])
            p = subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=env)
            dumps = sorted((f for f in os.listdir(tmp) if f.startswith("cg.out.")),
                           key=lambda f: int(f.rsplit(".", 1)[1]))
            # dump 1: start-up; then per operation: N, 2N; the last: after the final sleep.
            want = 1 + 2 * len(OPERATIONS)
            if p.returncode != 0 or len(dumps) < want:
                last = (p.stderr.strip().splitlines() or [""])[-1][:200]
                why = f"callgrind run failed (status {p.returncode}, {len(dumps)} dumps): {last}"
                figures.extend(figure(variant, op, mode, "callgrind", 2 if second else 1,
                                      refused=why) for op in OPERATIONS)
                continue
            counts = [totals(os.path.join(tmp, d)) for d in dumps]
            for i, op in enumerate(OPERATIONS):
                one, two = counts[1 + 2 * i], counts[2 + 2 * i]
                who = "python" if op == "empty_loop" else variant
                if who == "python" and variant != variants[0]:
                    continue
                figures.append(figure(who, op, mode, "callgrind", 2 if second else 1,
                                      instructions_per_op=(two - one) / n))
    write(out, figures)


def main():
    argv = sys.argv[1:]
    if not argv:
        sys.exit(__doc__)
    mode, rest = argv[0], argv[1:]
    if mode == "pyperf":
        pyperf_mode(rest)
    elif mode == "subinterp":
        per_variant(rest, "subinterp-one", "subinterpreter", OPERATIONS)
    elif mode == "subinterp-one":
        subinterp_one(rest)
    elif mode == "scaling":
        per_variant(rest, "scaling-one", "scaling", ["incr"])
        extra, why = run_child(["scaling-one", CONTROL] + without(rest, "--variants", "--out"))
        figures = json.load(open(opt(rest, "--out")))
        figures.extend(extra or [figure(CONTROL, "incr", "scaling", "threads", 2, refused=why)])
        write(opt(rest, "--out"), figures)
    elif mode == "scaling-one":
        scaling_one(rest)
    elif mode == "count":
        count_mode(rest)
    elif mode == "count-one":
        count_one(rest)
    elif mode == "--worker" or "--worker" in argv:
        pyperf_mode(argv)
    else:
        sys.exit(f"peer_bench: unknown mode {mode!r} (pyperf, subinterp, scaling, count)")


if __name__ == "__main__":
    main()
