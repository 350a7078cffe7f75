"""tests/stack_groups.py on real pytest-xdist: a shared stack is started once even when its
modules' tests are spread over two processes, and a module's own stack once. This fails if a
pytest or xdist upgrade stops ``--dist loadgroup`` from honouring the groups (as pytest 9.2 did:
pytest-xdist issue #1386), which would quietly start the stacks twice in ``make test``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CONFTEST = """
import os
import pytest
from tests import stack_groups
from tests.stack_groups import pytest_collection_modifyitems, pytest_configure  # noqa: F401

# Measured seconds per group, as tests/stack_groups.py holds them for the real suites.
stack_groups.GROUP_SECONDS = {"test_own_2.py": 100, "stack": 50}

def record(event):
    with open(os.environ["SETUPS_LOG"], "a") as log:
        log.write(f"{event} {os.environ.get('PYTEST_XDIST_WORKER', '-')}\\n")

@pytest.fixture(scope="session")
def stack():
    record("stack")
    yield
"""

SHARED_MODULE = """
def test_{n}_a(stack): pass
def test_{n}_b(stack): pass
def test_{n}_c(stack): pass
"""

OWN_MODULE = """
import pytest
from conftest import record

@pytest.fixture(scope="module")
def own_stack():
    record("own_{n}")
    yield

def test_{n}_a(own_stack): pass
def test_{n}_b(own_stack): pass
def test_{n}_c(own_stack): pass
"""


def run_suite(tmp_path: Path, processes: int) -> list[str]:
    """Runs the small suite on ``processes`` xdist processes; returns its stack setups, in
    order, as "<stack> <process>" lines."""
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text(CONFTEST)
    for n in range(3):
        (suite / f"test_shared_{n}.py").write_text(SHARED_MODULE.format(n=n))
        (suite / f"test_own_{n}.py").write_text(OWN_MODULE.format(n=n))
    log = tmp_path / "setups.log"
    env = {**os.environ, "SETUPS_LOG": str(log), "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", str(processes)]
        + ["--dist", "loadgroup", "--rootdir", str(suite), "-c", os.devnull, str(suite)],
        cwd=suite,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "18 passed" in run.stdout
    return log.read_text().splitlines()


def test_the_longest_groups_start_first(tmp_path: Path) -> None:
    """One process takes the groups in the order they are handed out: the longest measured
    first (own_2, then the shared stack with the most tests), the rest in collection order.
    xdist's default order, most tests first, would start the shared stack first."""
    setups = [line.split()[0] for line in run_suite(tmp_path, processes=1)]
    assert setups == ["own_2", "stack", "own_0", "own_1"]


def test_each_stack_starts_once_on_two_processes(tmp_path: Path) -> None:
    lines = run_suite(tmp_path, processes=2)
    setups = sorted(line.split()[0] for line in lines)
    assert setups == ["own_0", "own_1", "own_2", "stack"]
    workers = {line.split()[1] for line in lines}
    assert workers == {"gw0", "gw1"}  # both processes had work
