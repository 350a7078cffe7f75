"""bench/bench_ci.py reads each suite's time from what a CI run prints: make's command line names
the suite (with -O, when the suite ends) and pytest's last line gives its seconds."""

from __future__ import annotations

from bench.bench_ci import CiRun

# As `CI=true bash .ci/run` printed it on 2026-12-07 (shortened).
PRINTED = """\
restored .venv-rasa from /cache/askagency/venvs/.venv-rasa-18047e847f9d095a
restored .venv from /cache/askagency/venvs/.venv-37a83c646898ec2c
.venv-rasa/bin/python -m pytest -c tests/rasa_env/pytest.ini tests/rasa_env -q
........................................................................ [ 29%]
248 passed, 6 warnings in 39.38s
.venv/bin/python -m pytest -q -n 2 -p no:cacheprovider -p tests.clock_shift \\
  --clock-shift=year-ahead-sunday tests/unit
1280 passed in 164.90s (0:02:44)
ASKAGENCY_EMBEDDING_CACHE_FILE=/clone/build/test-embeddings.sqlite \\
  .venv/bin/python -m pytest -q -n 2 --dist loadgroup --durations=30 --ignore=tests/unit
45.43s call     tests/e2e/test_fault_drill.py::test_kill_each_process_in_turn_under_load
========== 1 failed, 164 passed in 454.34s (0:07:34) ==========
"""


def test_each_suite_gets_its_own_seconds_and_outcome() -> None:
    run = CiRun()
    for line in PRINTED.splitlines():
        run.read(line)
    assert run.restored == 2
    assert run.suites == {
        "rasa_env": {"seconds": 39.38, "summary": "248 passed, 6 warnings"},
        "unit_shifted": {"seconds": 164.9, "summary": "1280 passed"},
        "stack_suites": {"seconds": 454.34, "summary": "1 failed, 164 passed"},
    }


def test_nothing_is_credited_before_a_suite_starts() -> None:
    run = CiRun()
    run.read("3 passed in 1.00s")  # e.g. a set-up step's own check, before any suite
    assert run.suites == {}
