"""pytest over the extension driver (`ext_driver.py`): one test per cell, each run in a child
process; only the checked strategies' cells can fail (`ext_driver.failures`). The session's
cells are written per build by `conftest.py`."""

import pytest

from ext_driver import BUILDS, CELLS, failures, run_cell


@pytest.mark.parametrize("build,variant,kind", CELLS, ids=["-".join(c) for c in CELLS])
def test_cell(build, variant, kind, ext_results):
    cell = run_cell(build, variant, kind)
    ext_results.setdefault(build, []).append(cell)
    assert failures(cell) == []


def test_builds_found():
    assert BUILDS, "no build: build ext-modules against an interpreter first (see ext_driver.py)"
