"""End-to-end REST turn latency: the real Rasa server + action server, 200 sequential turns.

Starts its own stack (sample KB, free ports), warms it up, then times each POST to
/webhooks/rest/webhook from send to full reply. Two series: a new conversation per
question (first-turn cost) and one long conversation (the tracker grows, and Rasa
sends it to the action server every turn). A greeting series (no custom action) is
the in-process baseline for what our action adds.
Writes e2e_* keys into bench/results/latency.json and prints a table.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from askagency.launcher import Stack, StackConfig, free_port  # noqa: E402
from tests.e2e.conftest import RestClient, cli, ensure_rasa_model  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "latency.json"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[idx]


def summarise(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values), 1),
        "p95_ms": round(percentile(values, 95), 1),
        "p99_ms": round(percentile(values, 99), 1),
        "n": len(values),
    }


def timed_turns(client: RestClient, texts: list[str], same_sender: bool) -> list[float]:
    sender = f"bench-{uuid.uuid4().hex[:8]}"
    out = []
    for text in texts:
        if not same_sender:
            sender = f"bench-{uuid.uuid4().hex[:8]}"
        start = time.perf_counter()
        client.send(sender, text)
        out.append((time.perf_counter() - start) * 1000)
    return out


def merge_results(path: Path, values: dict) -> None:
    current = json.loads(path.read_text()) if path.exists() else {}
    current.update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=200)
    args = parser.parse_args()

    with open(ROOT / "knowledge_base" / "sample" / "eval_queries.csv", newline="") as fh:
        queries = [r["text"] for r in csv.DictReader(fh) if r["expected_faq_id"] != "none"]
    texts = [queries[i % len(queries)] for i in range(args.turns)]

    data_dir = Path(tempfile.mkdtemp(prefix="askagency-bench-"))
    cli(data_dir, "kb", "load-sample")
    cli(data_dir, "kb", "build-index")
    cfg = StackConfig(
        data_dir=data_dir,
        rasa_port=free_port(),
        action_port=free_port(),
        console_port=free_port(),
        analytics_port=free_port(),
        rasa_token="bench",
        model_path=ensure_rasa_model(),
        log_dir=data_dir / "logs",
        with_console=False,
    )
    with Stack(cfg) as stack:
        client = RestClient(stack.cfg.rasa_url)
        timed_turns(client, texts[:20], same_sender=False)  # warm-up
        new_sender = summarise(timed_turns(client, texts, same_sender=False))
        same_sender = summarise(timed_turns(client, texts, same_sender=True))
        greet = summarise(timed_turns(client, ["hello"] * min(100, args.turns), False))

    print(f"{'series':<28}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'n':>6}")
    for name, s in [
        ("FAQ question, new sender", new_sender),
        ("FAQ question, same sender", same_sender),
        ("greeting (no custom action)", greet),
    ]:
        print(f"{name:<28}{s['p50_ms']:>10}{s['p95_ms']:>10}{s['p99_ms']:>10}{s['n']:>6}")
    merge_results(
        RESULTS,
        {
            "e2e_p50_ms": new_sender["p50_ms"],
            "e2e_p95_ms": new_sender["p95_ms"],
            "e2e_new_sender": new_sender,
            "e2e_same_sender": same_sender,
            "e2e_greet_baseline": greet,
            "e2e_ratio_faq_over_greet_p50": round(new_sender["p50_ms"] / greet["p50_ms"], 2),
        },
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
