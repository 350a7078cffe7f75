"""`make bench`: runs every benchmark in its own process and prints one summary table.

Each benchmark writes its own JSON under bench/results/; this script only
orchestrates and summarises, so a single benchmark can also be re-run alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BENCHMARKS = ["bench_banking77.py", "bench_retrieval.py", "bench_e2e.py"]


def load(name: str) -> dict:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else {}


def main() -> int:
    failed = []
    for script in BENCHMARKS:
        path = ROOT / "bench" / script
        if not path.exists():
            continue
        print(f"\n=== {script}", flush=True)
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, str(path)], cwd=ROOT)
        print(f"=== {script}: exit {proc.returncode} in {time.perf_counter() - start:.0f} s")
        if proc.returncode != 0:
            failed.append(script)
    banking = load("banking77.json")
    latency = load("latency.json")
    rows = [
        ("BANKING77 top-1", banking.get("top1"), ">= 0.94"),
        ("BANKING77 top-3", banking.get("top3"), ""),
        ("retrieval p50 ms (10k variants)", latency.get("retrieval_p50_ms"), ""),
        ("retrieval p95 ms (10k variants)", latency.get("retrieval_p95_ms"), "<= 20"),
        ("index build 10k variants, s", latency.get("build_10k_s"), "<= 30"),
        ("e2e REST turn p50 ms", latency.get("e2e_p50_ms"), "<= 80"),
        ("e2e REST turn p95 ms", latency.get("e2e_p95_ms"), ""),
    ]
    print(f"\n{'measure':<36}{'value':>12}  target")
    for name, value, target in rows:
        shown = (
            "-"
            if value is None
            else (f"{value:.4f}" if isinstance(value, float) and value < 1 else value)
        )
        print(f"{name:<36}{shown!s:>12}  {target}")
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
