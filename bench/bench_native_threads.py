"""One thread per process for OpenBLAS/OpenMP (askagency/native_threads.py) against the libraries'
default of one thread per core, measured in the same run.

Each setting runs in a fresh interpreter (the libraries read the thread count when NumPy is
loaded), over the sample KB (English and Spanish), idle and with a CPU-bound neighbour on one
core (as Rasa or another action server is on a 2-core machine):

* ``fit``: the FAQ classifier the index build and every ``kb calibrate`` round fit
  (knowledge_base/index.py fit_classifier), wall and CPU seconds, ``--fits`` times;
* ``lookup``: one citizen question through the retriever as the action server runs it, with
  its question vector already cached, so what is timed is the arithmetic the thread pools run;
  the development file's questions, p50/p95 in milliseconds;
* ``calibrate``: ``askagency kb calibrate`` on the sample KB as a whole command (idle only;
  ``--no-calibrate`` leaves it out);
* ``scale``: the scale profile's closed-loop REST turns (bench/bench_scale.py: two Rasa
  replicas, two action servers, HAProxy, PostgreSQL, RabbitMQ) at 8 and 12 citizens, every
  process of the stack under the setting, ``--stack-rounds`` times each in alternating order
  (``--no-stack`` leaves it out).

Writes bench/results/native_threads.json.

    python bench/bench_native_threads.py [--fits N] [--no-calibrate] [--no-stack] [--stack-rounds N]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest.mock import patch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from askagency.launcher import OFFLINE_ENV  # noqa: E402
from askagency.native_threads import ONE_THREAD, THREAD_COUNT_VARIABLES  # noqa: E402
from bench.common import LOADS, latency_summary, machine_load, write_result  # noqa: E402
from bench.stack_client import cli  # noqa: E402

SAMPLE = ROOT / "knowledge_base" / "sample"
SETTINGS = {"one_thread": "shipped", "one_per_core": "the libraries' default"}
STACK_LEVELS = (8, 12)


def child(fits: int) -> dict[str, Any]:
    """Runs in the fresh interpreter: the fit and lookup timings under this process's setting."""
    from threadpoolctl import threadpool_info

    from askagency.config import get_settings
    from bench.bench_spanish import sample_records
    from knowledge_base.factory import embedder_for, retriever_over
    from knowledge_base.index import fit_classifier

    settings = get_settings()
    retriever = retriever_over(sample_records(), settings, embedder_for(settings))
    bundle = retriever.bundle
    fit_wall, fit_cpu = [], []
    for _ in range(fits):
        wall, cpu = time.perf_counter(), time.process_time()
        fit_classifier(bundle.vectors, bundle.row_faq, len(bundle.faqs))
        fit_wall.append(time.perf_counter() - wall)
        fit_cpu.append(time.process_time() - cpu)
    with (SAMPLE / "eval_queries_dev.csv").open(encoding="utf-8", newline="") as fh:
        questions = [row["text"] for row in csv.DictReader(fh)]
    for text in questions:  # caches each question's vector: the lookups time the arithmetic
        retriever.search(text, k=5, language="en")
    lookup_ms = []
    for text in questions:
        start = time.perf_counter()
        retriever.search(text, k=5, language="en")
        lookup_ms.append((time.perf_counter() - start) * 1000)
    return {
        "pools": sorted({f"{p['internal_api']}:{p['num_threads']}" for p in threadpool_info()}),
        "fit": {
            "wall_s_median": round(statistics.median(fit_wall), 3),
            "wall_s_max": round(max(fit_wall), 3),
            "cpu_s_median": round(statistics.median(fit_cpu), 3),
            "n": fits,
        },
        "lookup": latency_summary(lookup_ms),
    }


def thread_counts(setting: str) -> dict[str, str]:
    """The variables of ``setting``; the libraries' default is one thread per core."""
    count = ONE_THREAD if setting == "one_thread" else str(os.cpu_count() or 1)
    return dict.fromkeys(THREAD_COUNT_VARIABLES, count)


def setting_env(setting: str, data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        **OFFLINE_ENV,
        **thread_counts(setting),
        "ASKAGENCY_DATA_DIR": str(data_dir),
    }


def run_child(setting: str, data_dir: Path, fits: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--fits", str(fits)],
        env=setting_env(setting, data_dir),
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def calibrate_seconds(setting: str, data_dir: Path) -> float:
    """``kb calibrate`` whole (the command line keeps a count it is given)."""
    start = time.perf_counter()
    cli(data_dir, "kb", "calibrate", env=thread_counts(setting))
    return round(time.perf_counter() - start, 1)


def scale_turns(setting: str) -> dict[str, Any]:
    """The scale profile's turns with every process of the stack under ``setting``: the
    launcher passes this process's values on (askagency/native_threads.py)."""
    from bench.bench_scale import bench_profile

    with patch.dict(os.environ, thread_counts(setting)):
        result = bench_profile("scale", STACK_LEVELS, turns_per_citizen=40, max_seconds=45.0)
    return result["concurrency"]


def scale_rounds(rounds: int) -> dict[str, Any]:
    """``rounds`` runs of each setting, the order alternated round by round (the first stack of
    a run meets colder caches), and per setting and level the medians over the rounds."""
    runs: dict[str, list[dict[str, Any]]] = {setting: [] for setting in SETTINGS}
    for n in range(rounds):
        order = list(SETTINGS) if n % 2 == 0 else list(reversed(SETTINGS))
        for setting in order:
            runs[setting].append(scale_turns(setting))
    medians = {
        setting: {
            str(level): {
                key: round(statistics.median(run[str(level)][key] for run in runs[setting]), 1)
                for key in ("p50_ms", "p95_ms", "turns_per_s")
            }
            for level in STACK_LEVELS
        }
        for setting in SETTINGS
    }
    return {"rounds": rounds, "median": medians, "runs": runs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=7)
    parser.add_argument("--no-calibrate", action="store_true")
    parser.add_argument("--no-stack", action="store_true")
    parser.add_argument("--stack-rounds", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.fits)))
        return 0

    results: dict[str, Any] = {"settings": SETTINGS, "load": {}}
    with tempfile.TemporaryDirectory(prefix="askagency-threads-") as tmp:
        data_dir = Path(tmp)
        for step in ("load-sample", "build-index"):
            cli(data_dir, "kb", step, env=thread_counts("one_thread"))
        for load in LOADS:
            with machine_load(load):
                results["load"][load] = {
                    setting: run_child(setting, data_dir, args.fits) for setting in SETTINGS
                }
            print(load, json.dumps(results["load"][load], indent=1), flush=True)
        if not args.no_calibrate:
            results["calibrate_wall_s_idle"] = {
                setting: calibrate_seconds(setting, data_dir) for setting in SETTINGS
            }
            print("kb calibrate", results["calibrate_wall_s_idle"], flush=True)
    if not args.no_stack:
        results["scale_profile"] = scale_rounds(args.stack_rounds)
        print("scale profile", json.dumps(results["scale_profile"]["median"]), flush=True)
    print(write_result("native_threads.json", results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
