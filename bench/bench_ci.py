"""Issue 19's CI row: a fresh clone's ``CI=true bash .ci/run`` (that is ``make test``), timed whole.

What a CI system does, done here: clone the committed tree into a temporary folder, run the CI
entry point in it, and time the process from outside, while each suite's own "N passed in X s"
line says where the time went. What lives outside a checkout is used as CI systems keep it
between runs, keyed by what it was built from: the virtual environments
(``scripts/venv-cache.sh``), pip's wheels and Rasa's training cache; the result says whether the
environments were restored. Writes ``bench/results/ci.json``. One run takes about ten minutes,
so ``make bench`` runs it last.

    python bench/bench_ci.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, write_result  # noqa: E402

GOAL_MINUTES = 10.0
# The command line make prints before each suite's output (with -O, when the suite ends).
SUITE_COMMANDS = {
    "rasa_env": "tests/rasa_env",
    "unit_shifted": "tests.clock_shift",
    "stack_suites": "--ignore=tests/unit",
}
SUMMARY = re.compile(r"=*\s*(?P<summary>\d+ (?:passed|failed)[^=]*?) in (?P<seconds>[\d.]+)s")


@dataclass
class CiRun:
    """What one CI run printed, read line by line."""

    suites: dict[str, dict[str, object]] = field(default_factory=dict)
    restored: int = 0
    _current: str | None = None

    def read(self, line: str) -> None:
        if line.startswith("restored "):
            self.restored += 1
        for name, marker in SUITE_COMMANDS.items():
            if marker in line and "-m pytest" in line:
                self._current = name
        match = SUMMARY.search(line)
        if match and self._current is not None:
            self.suites[self._current] = {
                "seconds": float(match["seconds"]),
                "summary": match["summary"].strip(" ,"),
            }


def git(folder: Path, *args: str) -> str:
    """What ``git <args>`` prints in ``folder``."""
    done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def committed_tree_is_what_runs() -> None:
    """A clone holds the last commit only: say so when the working tree differs from it."""
    if git(ROOT, "status", "--porcelain", "--untracked-files=no"):
        print("bench_ci: uncommitted changes are not part of the clone that is timed")


def one_run(log: Path) -> dict[str, object]:
    """Clones HEAD, runs ``CI=true bash .ci/run`` there; the wall time, exit code and suites."""
    with tempfile.TemporaryDirectory(prefix="askagency-ci-") as tmp:
        clone = Path(tmp) / "clone"
        git(ROOT, "clone", "-q", str(ROOT), str(clone))
        commit = git(clone, "rev-parse", "--short", "HEAD")
        # The clone's own settings only: nothing of this process's environment that names a
        # data folder, a virtual environment or a port.
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("ASKAGENCY_", "VIRTUAL_ENV"))
        }
        env["CI"] = "true"
        run = CiRun()
        started = time.monotonic()
        with log.open("w", encoding="utf-8") as out:
            proc = subprocess.Popen(
                ["bash", ".ci/run"],
                cwd=clone,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(f"{time.monotonic() - started:8.1f} {line}")
                run.read(line)
            code = proc.wait()
        wall = time.monotonic() - started
    suite_seconds = {name: float(s["seconds"]) for name, s in run.suites.items()}
    parallel = max(suite_seconds.get("rasa_env", 0.0), suite_seconds.get("unit_shifted", 0.0))
    return {
        "commit": commit,
        "exit_code": code,
        "wall_s": round(wall, 1),
        "wall_min": round(wall / 60, 2),
        "environments_restored": run.restored,
        "suites": run.suites,
        # Set-up (environments, model, browser) and what make does between the suites.
        "setup_and_between_s": round(wall - parallel - suite_seconds.get("stack_suites", 0.0), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=1, help="CI runs, one after the other")
    parser.add_argument(
        "--log-dir", type=Path, default=ROOT / "build" / "bench-ci", help="each run's output"
    )
    args = parser.parse_args()
    committed_tree_is_what_runs()
    args.log_dir.mkdir(parents=True, exist_ok=True)
    runs = []
    for n in range(1, args.rounds + 1):
        result = one_run(args.log_dir / f"run-{n}.log")
        runs.append(result)
        print(
            f"run {n}: {result['commit']} exit {result['exit_code']}, "
            f"{result['wall_min']} min, suites {result['suites']}"
        )
    walls = [float(r["wall_min"]) for r in runs]
    path = write_result(
        "ci.json",
        {
            "what": "fresh clone, CI=true bash .ci/run (make test), wall time",
            "goal_min": GOAL_MINUTES,
            "wall_min_median": round(statistics.median(walls), 2),
            "all_passed": all(r["exit_code"] == 0 for r in runs),
            "runs": runs,
        },
    )
    print(f"wrote {path}")
    return 0 if all(r["exit_code"] == 0 for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
