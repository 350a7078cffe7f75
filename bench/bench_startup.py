"""How long each process of the embedded stack takes from spawn to ready: what a restart after a
crash costs (docs/scale.md, "Fault drill") and what every test stack pays.

Rasa is started alternately with Rasa's own model loader (``ASKAGENCY_MODEL_LOADING=rasa``, the
baseline) and ours (bot/model_loading.py); the action server alternately as the first start
after an index build (no stored classifier fit: the baseline) and as a restart, which reads the
Spanish scorer's fit the first start stored (knowledge_base/fitted_cache.py). Alternating keeps
both sides of each comparison on the same machine state. Each process runs with the
environment and argv the launcher gives it (``service_specs``) on a throw-away data folder
holding the sample KB, alone: nothing else starts beside it. Reported per series: seconds to
ready (median, p95) and the process's CPU seconds until then.

    .venv/bin/python bench/bench_startup.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from askagency.config import Settings  # noqa: E402
from askagency.launcher import ServiceSpec, service_specs  # noqa: E402
from bench.bench_e2e import merge_results, percentile  # noqa: E402
from bench.common import RESULTS  # noqa: E402
from bench.stack_client import cli, ensure_rasa_model  # noqa: E402
from bench.throwaway import stack_config  # noqa: E402
from bot.model_loading import MODEL_LOADING_ENV  # noqa: E402 (read in Rasa's env; no Rasa here)
from knowledge_base.retriever import fitted_classifiers_folder  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_to_ready(
    spec: ServiceSpec, extra_env: dict[str, str], forget: Path | None = None
) -> tuple[float, float]:
    """Seconds from spawn until ``spec``'s readiness URL answers, and the CPU seconds used
    (``forget``: a folder removed first)."""
    if forget is not None:
        shutil.rmtree(forget, ignore_errors=True)
    env = {**os.environ, **spec.env, **extra_env}
    began = time.monotonic()
    proc = subprocess.Popen(
        spec.argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while time.monotonic() - began < spec.ready_timeout_s:
            if proc.poll() is not None:
                raise RuntimeError(f"{spec.name} exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(spec.wait_url, timeout=2) as response:
                    if response.status == 200:
                        return time.monotonic() - began, cpu_seconds(proc.pid)
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{spec.name} not ready within {spec.ready_timeout_s} s")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def summary(samples: list[tuple[float, float]]) -> dict[str, float]:
    ready = [s for s, _ in samples]
    cpu = [c for _, c in samples]
    return {
        "n": len(samples),
        "ready_p50_s": round(statistics.median(ready), 2),
        "ready_p95_s": round(percentile(ready, 95), 2),
        "cpu_p50_s": round(statistics.median(cpu), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="askagency-startup-"))
    cli(data_dir, "kb", "load-sample")
    cli(data_dir, "kb", "build-index")
    specs = {
        spec.name: spec
        for spec in service_specs(stack_config(data_dir, model_path=ensure_rasa_model()))
    }
    # Beside the embedding cache the action server uses (its environment is this one's).
    fitted = fitted_classifiers_folder(Settings(data_dir=data_dir).embedding_cache)
    runs = (
        ("rasa_rasas_loader", specs["rasa"], {MODEL_LOADING_ENV: "rasa"}, None),
        ("rasa", specs["rasa"], {}, None),
        ("actions_first_start", specs["actions"], {}, fitted),
        ("actions", specs["actions"], {}, None),
    )
    series: dict[str, list[tuple[float, float]]] = {name: [] for name, *_ in runs}
    for round_ in range(args.rounds):
        for name, spec, env, forget in runs:
            series[name].append(time_to_ready(spec, env, forget))
            ready, cpu = series[name][-1]
            print(f"round {round_ + 1} {name}: ready {ready:.1f} s, cpu {cpu:.1f} s", flush=True)
    results = {name: summary(samples) for name, samples in series.items()}
    for name, values in results.items():
        print(name, values)
    merge_results(RESULTS / "latency.json", {"startup": results})


if __name__ == "__main__":
    main()
