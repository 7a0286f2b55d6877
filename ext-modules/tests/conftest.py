"""Collects the pytest session's cells per build, writes them with `ext_driver.write_results`
and prints `ext_driver.table` per build in the terminal summary."""

import pytest

from ext_driver import table, write_results

_RESULTS = {}


@pytest.fixture(scope="session")
def ext_results():
    return _RESULTS


def pytest_sessionfinish(session, exitstatus):
    for build, cells in _RESULTS.items():
        write_results(build, cells)


def pytest_terminal_summary(terminalreporter):
    for build, cells in sorted(_RESULTS.items()):
        terminalreporter.section(f"interpsafe-ext on {build} (target/interpsafe/ext/{build}.json)")
        for line in table(cells):
            terminalreporter.write_line(line)
