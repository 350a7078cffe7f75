"""End-to-end REST turn latency: the real Rasa server + action server, 200 sequential turns.

Starts its own stack (sample KB, free ports), warms it up, then times each POST to
/webhooks/rest/webhook from send to full reply. Two series: a new conversation per
question (first-turn cost) and one long conversation (the tracker grows, and Rasa
sends it to the action server every turn). A greeting series (no custom action) is
the in-process baseline for what our action adds.

The floor (issue 19): in the same run, before AskAgency's stack, a stock Rasa 3.6 assistant
(bench/rasa_floor.py: default pipeline and policies, in-memory tracker, one trivial rasa-sdk
action) is timed the same way, so "AskAgency's FAQ turn / stock custom-action turn" compares two
numbers measured minutes apart on the same machine.
Writes e2e_* keys into bench/results/latency.json and prints a table.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import rasa_floor  # noqa: E402 (bench/ is sys.path[0] when run as a script)
import yaml  # noqa: E402

from askagency.launcher import Stack  # noqa: E402
from askagency.ports import free_port  # noqa: E402
from askagency.secrets import ACTION_SECRET_HEADER, action_secret  # noqa: E402
from bench.stack_client import RestClient, action_call, cli, ensure_rasa_model  # noqa: E402
from bench.throwaway import stack_config  # noqa: E402

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


def answered_outright(client: RestClient, queries: list[str]) -> list[str]:
    """The questions the bot answers outright when asked alone (a new citizen each)."""
    answered = []
    for query in queries:
        replies = client.send(f"probe-{uuid.uuid4().hex[:8]}", query)
        if replies and (replies[0].get("custom") or {}).get("type") == "faq_answer":
            answered.append(query)
    return answered


def timed_plain_turns(base_url: str, texts: list[str]) -> list[float]:
    """REST turns on a stock Rasa (no ownership tokens), a new sender each."""
    out = []
    for text in texts:
        body = json.dumps({"sender": f"floor-{uuid.uuid4().hex[:8]}", "message": text}).encode()
        request = urllib.request.Request(
            f"{base_url}/webhooks/rest/webhook",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        start = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as resp:  # noqa: S310 (loopback)
            replies = json.loads(resp.read())
        out.append((time.perf_counter() - start) * 1000)
        assert replies, f"the stock assistant did not answer {text!r}"
    return out


def action_round_trips(stack: Stack, n: int = 200) -> dict[str, dict[str, float]]:
    """Where a turn's time goes, part 1: one call of ``action_detect_language`` (which Rasa makes
    on every user message, greetings included, to fill the language slot) straight to the
    action server, with the domain Rasa 3.6 sends along in every call and without it."""
    domain = yaml.safe_load((ROOT / "bot" / "domain.yml").read_text())
    secret = action_secret(stack.cfg.data_dir)

    def body(with_domain: bool) -> bytes:
        call = action_call(
            "action_detect_language",
            "hello",
            "greet",
            "bench-direct",
            domain if with_domain else None,
        )
        return json.dumps(call).encode()

    out = {}
    for name, with_domain in (("with_domain", True), ("without_domain", False)):
        payload = body(with_domain)
        timings = []
        for i in range(n + 20):
            request = urllib.request.Request(
                stack.cfg.action_url,
                data=payload,
                headers={"Content-Type": "application/json", ACTION_SECRET_HEADER: secret},
            )
            start = time.perf_counter()
            with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 (loopback)
                resp.read()
            if i >= 20:  # warm-up
                timings.append((time.perf_counter() - start) * 1000)
        out[name] = {**summarise(timings), "request_bytes": len(payload)}
    return out


def stock_floor(turns: int) -> dict[str, dict[str, float]]:
    questions = ["can I bring my laptop in my carry-on", "what ID do I need to fly"]
    with rasa_floor.running(free_port(), free_port()) as url:
        timed_plain_turns(url, questions * 10)  # warm-up
        action = summarise(timed_plain_turns(url, [questions[i % 2] for i in range(turns)]))
        greet = summarise(timed_plain_turns(url, ["hello"] * min(100, turns)))
    return {"custom_action": action, "greet": greet}


def publish_to_answer(client: RestClient, data_dir: Path, rounds: int = 3) -> dict[str, object]:
    """Edits a published FAQ's answer, rebuilds the index with the CLI and times until the
    citizen's REST answer carries the new text (action server hot reload, no Rasa retrain)."""
    question = "can I bring my laptop in my carry-on"
    sample = ROOT / "knowledge_base" / "sample" / "faqs.jsonl"
    faq = next(
        json.loads(line)
        for line in sample.read_text().splitlines()
        if '"electronics-laptop-carry-on"' in line
    )
    rebuild_s, live_s = [], []
    for round_no in range(rounds):
        marker = f"[edit {round_no} {uuid.uuid4().hex[:6]}]"
        edited = {**faq, "answer": f"{faq['answer']} {marker}"}
        path = data_dir / "edit.jsonl"
        path.write_text(json.dumps(edited) + "\n")
        start = time.perf_counter()
        cli(data_dir, "kb", "import", str(path), "--publish")
        cli(data_dir, "kb", "build-index")
        rebuild_s.append(time.perf_counter() - start)
        deadline = start + 60
        while time.perf_counter() < deadline:
            reply = client.send(f"bench-{uuid.uuid4().hex[:8]}", question)
            if reply and marker in (reply[0].get("text") or ""):
                break
            time.sleep(0.2)
        live_s.append(time.perf_counter() - start)
    return {
        "rounds": rounds,
        "import_and_rebuild_s_median": round(statistics.median(rebuild_s), 2),
        "publish_to_answer_s_median": round(statistics.median(live_s), 2),
        "publish_to_answer_s_max": round(max(live_s), 2),
        "note": "CLI import + build-index as separate processes (each loads Python, the "
        "database and the model), then REST polls every 0.2 s until the new text is answered",
    }


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

    floor = stock_floor(args.turns)
    data_dir = Path(tempfile.mkdtemp(prefix="askagency-bench-"))
    cli(data_dir, "kb", "load-sample")
    cli(data_dir, "kb", "build-index")
    cfg = stack_config(
        data_dir,
        model_path=ensure_rasa_model(),
        with_console=False,
        # One simulated citizen sends far faster than a person: the per-sender abuse limit
        # would answer 429, which is not what this benchmark measures.
        extra_env={"ASKAGENCY_RATE_LIMIT_ENABLED": "false"},
    )
    with Stack(cfg) as stack:
        client = RestClient(stack.cfg.rasa_url)
        timed_turns(client, texts[:20], same_sender=False)  # warm-up
        new_sender = summarise(timed_turns(client, texts, same_sender=False))
        # The test file's questions in one conversation: after a few unanswered ones the
        # citizen is handed to a person, and the rest are relayed to the agent (silent turns).
        same_sender = summarise(timed_turns(client, texts, same_sender=True))
        # One long conversation the bot keeps answering: questions it answers outright.
        answered = answered_outright(client, queries)
        long_answered = summarise(
            timed_turns(client, [answered[i % len(answered)] for i in range(args.turns)], True)
        )
        greet = summarise(timed_turns(client, ["hello"] * min(100, args.turns), False))
        round_trips = action_round_trips(stack)
        publish = publish_to_answer(client, data_dir)

    print(f"{'series':<28}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'n':>6}")
    for name, s in [
        ("FAQ question, new sender", new_sender),
        ("200 test questions, one sender", same_sender),
        ("200 answered questions, one sender", long_answered),
        ("greeting (no custom action)", greet),
        ("stock Rasa: custom action", floor["custom_action"]),
        ("stock Rasa: greeting", floor["greet"]),
        ("action call, Rasa's domain", round_trips["with_domain"]),
        ("action call, no domain", round_trips["without_domain"]),
    ]:
        print(f"{name:<28}{s['p50_ms']:>10}{s['p95_ms']:>10}{s['p99_ms']:>10}{s['n']:>6}")
    print(
        f"publish -> answered with the new text: median {publish['publish_to_answer_s_median']} s"
        f" (import + rebuild {publish['import_and_rebuild_s_median']} s)"
    )
    merge_results(ROOT / "bench" / "results" / "scale.json", {"publish": publish})
    merge_results(
        RESULTS,
        {
            "publish_to_answer_s": publish["publish_to_answer_s_median"],
            "e2e_p50_ms": new_sender["p50_ms"],
            "e2e_p95_ms": new_sender["p95_ms"],
            "e2e_new_sender": new_sender,
            "e2e_same_sender": same_sender,
            "e2e_same_sender_answered": long_answered,
            "e2e_greet_baseline": greet,
            "e2e_ratio_faq_over_greet_p50": round(new_sender["p50_ms"] / greet["p50_ms"], 2),
            "e2e_stock_rasa_floor": floor,
            "e2e_action_round_trip": round_trips,
            "e2e_ratio_faq_over_stock_action_p50": round(
                new_sender["p50_ms"] / floor["custom_action"]["p50_ms"], 2
            ),
            "e2e_ratio_faq_over_stock_action_p95": round(
                new_sender["p95_ms"] / floor["custom_action"]["p95_ms"], 2
            ),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        },
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
