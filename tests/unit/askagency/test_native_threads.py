"""askagency/native_threads.py: each AskAgency process keeps OpenBLAS/OpenMP to one thread.

Checked on the libraries themselves (threadpoolctl reads the thread count each loaded pool
uses), in a fresh interpreter, because the count is fixed when NumPy is loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from askagency.native_threads import THREAD_COUNT_VARIABLES, limit_this_process, thread_env

POOLS = (
    "import json, numpy, sklearn.linear_model\n"
    "from threadpoolctl import threadpool_info\n"
    "print(json.dumps(sorted({(p['internal_api'], p['num_threads']) for p in threadpool_info()})))"
)


def pools_after(prelude: str, **env: str) -> set[tuple[str, int]]:
    """The (library, threads) of every pool loaded by NumPy and scikit-learn after ``prelude``."""
    clean = {k: v for k, v in os.environ.items() if k not in THREAD_COUNT_VARIABLES}
    out = subprocess.run(
        [sys.executable, "-c", f"{prelude}\n{POOLS}"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return {(api, n) for api, n in json.loads(out)}


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: one thread either way")
def test_the_command_line_runs_numpy_on_one_thread() -> None:
    untouched = pools_after("")
    assert {n for _, n in untouched} == {os.cpu_count()}  # what the limit is for
    assert {api for api, _ in untouched} >= {"openblas", "openmp"}
    limited = pools_after("import agencyctl.cli")
    assert {api for api, _ in limited} == {api for api, _ in untouched}
    assert {n for _, n in limited} == {1}


def test_a_count_the_operator_set_wins() -> None:
    pools = pools_after("import agencyctl.cli", OPENBLAS_NUM_THREADS="2")
    assert ("openblas", 2) in pools and ("openmp", 1) in pools


def test_thread_env_fills_only_what_is_unset() -> None:
    assert thread_env({}) == dict.fromkeys(THREAD_COUNT_VARIABLES, "1")
    assert thread_env({"OMP_NUM_THREADS": "3"})["OMP_NUM_THREADS"] == "3"
    environ = {"MKL_NUM_THREADS": "2"}
    limit_this_process(environ)
    assert environ == {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "2"}
