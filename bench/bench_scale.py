"""End-to-end REST turns under concurrency, embedded vs scale profile (issue 10, benchmark 2+3).

For each profile it starts the real stack on free ports (the scale profile in its own
PostgreSQL databases and RabbitMQ queue, dropped afterwards), warms it up, then runs closed-loop
load: C simulated citizens each hold a conversation of ten in-scope questions from the sample
evaluation set (a new conversation after ten), sending the next message when the reply arrived.
Each level is bounded in turns and in seconds and targets 127.0.0.1 only.

Per profile and concurrency: p50/p95/p99 ms, turns per second, errors, and the reply mix; the
concurrency where p95 first passes 300 ms; RSS (now and peak) of every process of the stack.
The load generator runs on the same 2 cores as the stack, so it takes a share of them.
Writes the ``e2e`` key of bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from askagency.launcher import (  # noqa: E402
    ScaleConfig,
    Stack,
    StackConfig,
)
from bench.common import RESULTS, machine, merge_result, status_kb  # noqa: E402
from bench.local_services import PG_URL, delete_queue, pg_admin  # noqa: E402
from bench.stack_client import cli, ensure_rasa_model, signed_body  # noqa: E402
from bench.throwaway import scale_config, stack_config  # noqa: E402

LEVELS = (1, 2, 4, 8, 16, 32)
P95_LIMIT_MS = 300.0
TURNS_PER_CONVERSATION = 10


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[idx]


def questions() -> list[str]:
    path = ROOT / "knowledge_base" / "sample" / "eval_queries.csv"
    with open(path, newline="", encoding="utf-8") as fh:
        return [r["text"] for r in csv.DictReader(fh) if r["expected_faq_id"] != "none"]


async def citizen(
    session: aiohttp.ClientSession,
    url: str,
    texts: list[str],
    offset: int,
    stop_at: float,
    budget: list[int],
    latencies: list[float],
    kinds: Counter[str],
    errors: Counter[str],
) -> None:
    """One simulated citizen: questions in a row, a new conversation every ten."""
    turn = 0
    sender = f"bench-{uuid.uuid4().hex[:10]}"
    while time.monotonic() < stop_at and budget[0] > 0:
        budget[0] -= 1
        if turn and turn % TURNS_PER_CONVERSATION == 0:
            sender = f"bench-{uuid.uuid4().hex[:10]}"
        text = texts[(offset + turn * 37) % len(texts)]
        turn += 1
        payload = signed_body(sender, text, metadata={"language": "en"})
        started = time.perf_counter()
        try:
            async with session.post(url, json=payload) as resp:
                body = await resp.read()
                if resp.status != 200:
                    errors[f"http {resp.status}"] += 1
                    continue
        except (aiohttp.ClientError, TimeoutError) as exc:
            errors[type(exc).__name__] += 1
            continue
        latencies.append((time.perf_counter() - started) * 1000)
        replies = json.loads(body)
        kinds[(replies[0].get("custom") or {}).get("type", "none") if replies else "empty"] += 1


async def run_level(
    base_url: str, concurrency: int, max_turns: int, max_seconds: float
) -> dict[str, Any]:
    texts = questions()
    latencies: list[float] = []
    kinds: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    budget = [max_turns]
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        started = time.monotonic()
        await asyncio.gather(
            *(
                citizen(
                    session,
                    f"{base_url}/webhooks/rest/webhook",
                    texts,
                    i * 11,
                    started + max_seconds,
                    budget,
                    latencies,
                    kinds,
                    errors,
                )
                for i in range(concurrency)
            )
        )
        wall = time.monotonic() - started
    if not latencies:
        return {"turns": 0, "errors": dict(errors)}
    return {
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "turns_per_s": round(len(latencies) / wall, 1),
        "turns": len(latencies),
        "seconds": round(wall, 1),
        "errors": dict(errors),
        "replies": dict(kinds),
    }


def _tree_pids(root: int) -> list[int]:
    """``root`` and its descendants (some processes fork helpers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def rss_mb(stack: Stack) -> dict[str, dict[str, float]]:
    """RSS now, peak (VmHWM), anonymous and file-backed, per service, summed over its process
    tree."""
    out = {}
    for name, proc in stack.procs.items():
        pids = _tree_pids(proc.pid)
        out[name] = {
            "rss_mb": round(sum(status_kb(p, "VmRSS") for p in pids) / 1024, 1),
            "peak_mb": round(sum(status_kb(p, "VmHWM") for p in pids) / 1024, 1),
            # File-backed pages (libraries, model weights, mapped index) are shared between
            # processes of one host; anonymous memory is each process's own.
            "anon_mb": round(sum(status_kb(p, "RssAnon") for p in pids) / 1024, 1),
            "file_mb": round(sum(status_kb(p, "RssFile") for p in pids) / 1024, 1),
        }
    return out


@contextmanager
def scale_resources(data_dir: Path) -> Iterator[ScaleConfig]:
    """Own PostgreSQL databases and RabbitMQ queue for one benchmark run, removed afterwards."""
    from sqlalchemy.engine import make_url

    suffix = uuid.uuid4().hex[:8]
    app_db, tracker_db, queue = f"askagency_bench_{suffix}", f"askagency_btrk_{suffix}", ""
    pg_admin(f'CREATE DATABASE "{app_db}"')
    app_url = make_url(PG_URL).set(database=app_db).render_as_string(hide_password=False)
    try:
        env = {"ASKAGENCY_DATABASE_URL": app_url}
        cli(data_dir, "kb", "load-sample", env=env)
        cli(data_dir, "kb", "build-index", env=env)
        queue = f"askagency_bench_{suffix}"
        yield scale_config(app_url, tracker_db, queue)
    finally:
        if queue:
            with suppress(Exception):
                delete_queue(queue)
        for name in (app_db, tracker_db):
            pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_profile(
    profile: str, levels: tuple[int, ...], turns_per_citizen: int, max_seconds: float
) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"askagency-bench-{profile}-"))
    with profile_config(profile, data_dir) as cfg, Stack(cfg) as stack:
        base = stack.cfg.rasa_url
        asyncio.run(run_level(base, 2, 30, 60))  # warm-up: first encodes, DB pools, JIT paths
        result: dict[str, Any] = {"concurrency": {}}
        for level in levels:
            max_turns = max(60, turns_per_citizen * level)
            summary = asyncio.run(run_level(base, level, max_turns, max_seconds))
            result["concurrency"][str(level)] = summary
            cells = [summary.get(k, "-") for k in ("p50_ms", "p95_ms", "p99_ms")]
            print(
                f"{profile:<9}{level:>4}{cells[0]:>9}{cells[1]:>9}{cells[2]:>9}"
                f"{summary.get('turns_per_s', '-'):>8}{summary.get('turns', 0):>7}"
                f"  {summary.get('errors') or ''}",
                flush=True,
            )
        result["rss"] = rss_mb(stack)
        result["processes"] = sorted(stack.procs)
    over = [int(c) for c, s in result["concurrency"].items() if s.get("p95_ms", 1e9) > P95_LIMIT_MS]
    result["p95_passes_300ms_at"] = min(over) if over else None
    best = max(result["concurrency"].values(), key=lambda s: s.get("turns_per_s", 0))
    result["max_turns_per_s"] = best.get("turns_per_s")
    ok = [
        s.get("turns_per_s", 0)
        for s in result["concurrency"].values()
        if s.get("p95_ms", 1e9) <= P95_LIMIT_MS
    ]
    result["max_turns_per_s_with_p95_le_300ms"] = max(ok) if ok else None
    return result


@contextmanager
def profile_config(profile: str, data_dir: Path) -> Iterator[StackConfig]:
    model = ensure_rasa_model()
    if profile == "embedded":
        cli(data_dir, "kb", "load-sample")
        cli(data_dir, "kb", "build-index")
        yield stack_config(data_dir, model_path=model, with_console=False)
        return
    with scale_resources(data_dir) as scale:
        yield stack_config(data_dir, model_path=model, with_console=False, scale=scale)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profiles", default="embedded,scale")
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)))
    parser.add_argument("--turns-per-citizen", type=int, default=12, help="turn budget per level")
    parser.add_argument("--max-seconds", type=float, default=45.0, help="time cap per level")
    args = parser.parse_args()
    levels = tuple(int(x) for x in args.levels.split(","))
    print(f"{'profile':<9}{'C':>4}{'p50':>9}{'p95':>9}{'p99':>9}{'turn/s':>8}{'n':>7}")
    results: dict[str, Any] = {}
    for profile in args.profiles.split(","):
        results[profile] = bench_profile(profile, levels, args.turns_per_citizen, args.max_seconds)
        for name, mem in results[profile]["rss"].items():
            print(f"  {profile} {name:<12} RSS {mem['rss_mb']:>7} MB (peak {mem['peak_mb']} MB)")
        print(f"  {profile}: p95 passes 300 ms at C={results[profile]['p95_passes_300ms_at']}")
    previous: dict[str, Any] = {}
    with suppress(OSError, ValueError):
        previous = json.loads((RESULTS / "scale.json").read_text()).get("e2e", {})
    path = merge_result(
        "scale.json",
        {
            "e2e": {
                **previous,
                **results,
                "note": "closed-loop REST turns, 10 per conversation; the load generator "
                "shares the 2 cores with the stack",
                "machine": machine(),
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
