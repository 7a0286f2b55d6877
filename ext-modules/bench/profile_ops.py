"""Where a variant's extra instructions per call go: callgrind's per-function cost of one
operation, for two variants, net of everything else.

    python profile_ops.py SO OPERATION VARIANT BASELINE [N]

SO is a release build of the toolkit's `.so` (`target/ext-<build>/release/libinterpsafe_ext.so`,
which `cargo xtask bench --only peers` builds). Each variant runs OPERATION (one of the peer
bench's operations, `peer_bench.OPERATIONS`) N and 2N times under `valgrind --tool=callgrind` with a fixed
`PYTHONHASHSEED`; a function's cost per call is its self cost at 2N minus at N, over N, so start-up
and teardown cancel out. Prints, per function, VARIANT's cost per call minus BASELINE's, largest
first: the profile behind a missed instruction target (docs/extension-modules.md cites it).
"""

import collections
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import peer_bench  # noqa: E402  (the operations' source, shared with the bench)


def self_costs(out):
    """Self cost by function from a callgrind output file (`callgrind_annotate`)."""
    text = subprocess.run(
        ["callgrind_annotate", "--threshold=100", out], capture_output=True, text=True, check=True
    ).stdout
    costs = collections.Counter()
    for line in text.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$", line)
        if m and m.group(2) != "PROGRAM TOTALS":
            costs[m.group(2).strip()] += int(m.group(1).replace(",", ""))
    return costs


def per_call(so, op, variant, n, tmp):
    """Self cost per call of `op` by function, for `variant`."""
    os.symlink(os.path.abspath(so), os.path.join(tmp, f"{variant}.so"))
    setup, stmt = peer_bench.OPERATIONS[op]
    body = "\n".join("    " + line for line in stmt.splitlines())
    runs = []
    for loops in (n, 2 * n):
        script = os.path.join(tmp, f"{variant}-{loops}.py")
        with open(script, "w") as f:
            f.write(
                f"import sys\nsys.path.insert(0, {tmp!r})\nm = __import__({variant!r})\n{setup}\n"
                f"for _ in range({loops}):\n{body}\n"
            )
        out = os.path.join(tmp, f"{variant}-{loops}.callgrind")
        env = dict(os.environ, PYTHONHASHSEED="0")
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, script],
            env=env, check=True, capture_output=True,
        )
        runs.append(self_costs(out))
    small, large = runs
    return {k: (large[k] - small[k]) / n for k in set(small) | set(large)}


def main():
    so, op, variant, baseline = sys.argv[1:5]
    n = int(sys.argv[5]) if len(sys.argv) > 5 else 2000
    with tempfile.TemporaryDirectory(prefix="interpsafe-profile-") as tmp:
        a = per_call(so, op, variant, n, tmp)
        b = per_call(so, op, baseline, n, tmp)
    diff = sorted(((a.get(k, 0) - b.get(k, 0), k) for k in set(a) | set(b)), key=lambda x: -abs(x[0]))
    print(f"{op}: {variant} minus {baseline}, instructions per call, by function (self cost)")
    for d, name in diff:
        if abs(d) >= 1:
            print(f"{d:+9.1f}  {name[:160]}")
    print(f"{sum(d for d, _ in diff):+9.1f}  total")


if __name__ == "__main__":
    main()
