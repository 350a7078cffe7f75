"""Cost of one abuse-limit check per citizen message: in memory vs shared through Redis.

Run in the Rasa environment (the limiter lives in bot/channels and uses Rasa's ``redis``):
    .venv-rasa/bin/python bench/bench_ratelimit.py
Writes bench/results/ratelimit.json. Needs Redis on 127.0.0.1:6379 for the shared figures.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.channels.ratelimit import Limits, RateLimiter  # noqa: E402
from bot.channels.shared_state import LocalState, RedisState  # noqa: E402

URL = os.environ.get("ASKAGENCY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/2")
CHECKS = 5000


def measure(limiter: RateLimiter) -> dict[str, float]:
    """Per-check latency over CHECKS messages from 500 senders on 50 addresses (all allowed:
    the full path of an accepted message, two buckets and the repeat counter)."""
    samples = []
    for i in range(CHECKS):
        start = time.perf_counter()
        limiter.check(f"sender-{i % 500}", f"203.0.113.{i % 50}", f"question {i}")
        samples.append((time.perf_counter() - start) * 1e6)
    samples.sort()
    return {
        "checks": CHECKS,
        "median_us": round(statistics.median(samples), 1),
        "p95_us": round(samples[int(0.95 * len(samples))], 1),
        "checks_per_s": round(CHECKS / (sum(samples) / 1e6)),
    }


def main() -> None:
    limits = Limits(sender_burst=1e9, ip_burst=1e9, repeat_limit=3)
    prefix = f"askagency-bench:{uuid.uuid4().hex}"
    shared = RedisState(URL, prefix)
    results = {
        "memory": measure(RateLimiter(limits, state=LocalState())),
        "redis": measure(RateLimiter(limits, state=shared)),
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
        },
    }
    client = shared._redis()
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    out = ROOT / "bench" / "results" / "ratelimit.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
