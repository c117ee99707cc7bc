"""Opt-in pytest plugin: every response of every sandbox the tests start is checked against the
provider's OpenAPI document; the run fails if any drifts from it.

    python3 -m pytest -p tests.contracts.recorder tests/

``PSP_CONTRACT_REPORT=FILE`` also writes what was checked and what failed, as JSON. Works with
pytest-xdist (the workers' findings are merged).
"""
from __future__ import annotations

import json
import os

import pytest

from .contract_check import ContractChecker

checker = ContractChecker()


def pytest_configure(config):
    checker.install_on_new_apps()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    found = json.loads(node.workeroutput.get("contract", "{}"))
    for where, count in found.get("checked", {}).items():
        checker.checked[where] = checker.checked.get(where, 0) + count
    for problem in found.get("problems", []):
        checker._problem(problem)


def pytest_sessionfinish(session, exitstatus):
    found = {"checked": checker.checked, "problems": checker.problems}
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:   # an xdist worker: the controller reports
        workeroutput["contract"] = json.dumps(found)
        return
    if os.environ.get("PSP_CONTRACT_REPORT"):
        with open(os.environ["PSP_CONTRACT_REPORT"], "w", encoding="utf-8") as fh:
            json.dump(found, fh, indent=1)
    if checker.problems:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if getattr(terminalreporter.config, "workeroutput", None) is not None:
        return
    total = sum(checker.checked.values())
    terminalreporter.write_line(f"contract: {total} responses over {len(checker.checked)} operation/status pairs "
                                f"checked, {len(checker.problems)} problem(s)")
    for problem in checker.problems[:200]:
        terminalreporter.write_line("  " + problem)
