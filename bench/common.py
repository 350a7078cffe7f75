"""Shared helpers for the retrieval benchmarks: BANKING77 as a KB, result files."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import platform
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

from knowledge_base.types import FaqRecord  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
# The BANKING77 files live next to the project (../shared/bench/banking77), not in it.
BANKING77 = Path(
    os.environ.get("ASKAGENCY_BANKING77", ROOT.parent / "shared" / "bench" / "banking77")
)


def status_kb(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` field in kB (VmRSS, VmHWM, RssAnon, ...); 0 when the process
    is gone."""
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def read_rows(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [(r["text"], r["category"]) for r in csv.DictReader(handle)]


def banking77_records(train: list[tuple[str, str]] | None = None) -> list[FaqRecord]:
    """77 categories -> 77 FAQs; the first train row of a category is its canonical
    question, the other train rows its variants."""
    rows = train if train is not None else read_rows(BANKING77 / "train.csv")
    by_category: dict[str, list[str]] = {}
    for text, category in rows:
        by_category.setdefault(category, []).append(text)
    return [
        FaqRecord(
            id=category,
            language="en",
            question=texts[0],
            answer=f"Answer for {category.replace('_', ' ')}.",
            category="banking",
            variants=tuple(texts[1:]),
        )
        for category, texts in by_category.items()
    ]


def banking77_queries() -> list[tuple[str, str]]:
    return read_rows(BANKING77 / "test.csv")


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile of ``values``: the nearest-rank value, no interpolation."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def latency_summary(ms: list[float], digits: int = 3) -> dict[str, float]:
    """Median and p95 of latencies in milliseconds, and how many: what the benchmarks report."""
    return {
        "p50_ms": round(statistics.median(ms), digits),
        "p95_ms": round(percentile(ms, 95), digits),
        "n": len(ms),
    }


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    payload = {**payload, "machine": machine(), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


def merge_result(name: str, updates: dict[str, Any]) -> Path:
    """Update only ``updates``' keys of a results file others also write."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            data = {}
    data.update(updates)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


@contextmanager
def timer() -> Iterator[dict[str, float]]:
    box: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield box
    finally:
        box["s"] = time.perf_counter() - start


LOADS = ("idle", "one_busy_core")


def _burn_one_core(stop: Any) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(10_000):
            x += 1


@contextmanager
def machine_load(load: str) -> Iterator[None]:
    """Runs the block under one of :data:`LOADS`: ``one_busy_core`` keeps a CPU-bound neighbour
    (as Rasa's NLU or another action server is) busy on one of the cores meanwhile."""
    if load == "idle":
        yield
        return
    stop = multiprocessing.Event()
    burner = multiprocessing.Process(target=_burn_one_core, args=(stop,), daemon=True)
    burner.start()
    time.sleep(0.5)
    try:
        yield
    finally:
        stop.set()
        burner.join(5)
