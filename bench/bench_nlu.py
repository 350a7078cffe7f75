"""NLU pipelines side by side: accuracy, training time and parse time (issue 19).

Rasa's NLU here only separates the control intents (greet, ask_human, feedback, ...) from real
questions, which the FAQ retriever answers. This compares the shipped pipeline (config.yml) with
lighter ones on:

* 5-fold cross-validation over bot/data (``rasa test nlu --cross-validation``): intent accuracy
  and macro F1, and the share of ``ask_question`` examples taken for a control intent (a real
  question that would get "hello!" instead of an answer);
* the held-out phrases of bench/data/nlu_heldout.yml (not in the training data);
* training time of the full model and parse time per message (median, p95) in this process.

Run with Rasa's Python: ``.venv-rasa/bin/python bench/bench_nlu.py`` (``make bench`` does).
Writes bench/results/nlu.json.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the custom NLU component (bot.nlu) in the trained models
RESULTS = ROOT / "bench" / "results" / "nlu.json"
HELDOUT = ROOT / "bench" / "data" / "nlu_heldout.yml"
RASA = Path(sys.executable).parent / "rasa"
CONTROL_FREE = {"ask_question", "nlu_fallback"}  # what a real question may be taken for


def candidates() -> dict[str, dict[str, Any]]:
    """The shipped config.yml and the same featurizers with a lighter classifier."""
    shipped = yaml.safe_load((ROOT / "config.yml").read_text())
    out = {"shipped": shipped}
    for name, classifier in (
        ("logreg", {"name": "LogisticRegressionClassifier", "max_iter": 200, "random_state": 42}),
    ):
        config = copy.deepcopy(shipped)
        config["pipeline"] = [
            classifier if step["name"] == "DIETClassifier" else step for step in config["pipeline"]
        ]
        out[name] = config
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def rasa(*args: str, cwd: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RASA_TELEMETRY_ENABLED": "false"}
    started = time.perf_counter()
    subprocess.run(  # noqa: S603 (Rasa's own CLI)
        [str(RASA), *args], cwd=cwd, env=env, check=True, capture_output=True
    )
    return time.perf_counter() - started


def cross_validation(config_path: Path, work: Path, folds: int) -> dict[str, Any]:
    out = work / "cv"
    seconds = rasa(
        "test",
        "nlu",
        "--nlu",
        str(ROOT / "bot" / "data"),
        "--config",
        str(config_path),
        "--cross-validation",
        "--folds",
        str(folds),
        "--out",
        str(out),
        "--no-plot",
        cwd=work,
    )
    report = json.loads((out / "intent_report.json").read_text())
    errors_path = out / "intent_errors.json"
    errors = json.loads(errors_path.read_text()) if errors_path.exists() else []
    questions = report.get("ask_question", {}).get("support", 0)
    taken = [
        e
        for e in errors
        if e["intent"] == "ask_question" and e["intent_prediction"]["name"] not in CONTROL_FREE
    ]
    return {
        "folds": folds,
        "accuracy": round(report["accuracy"], 4),
        "macro_f1": round(report["macro avg"]["f1-score"], 4),
        "questions_taken_for_control_intents": len(taken),
        "questions": questions,
        "seconds": round(seconds, 1),
    }


def heldout_and_speed(model: Path) -> dict[str, Any]:
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    rows = yaml.safe_load(HELDOUT.read_text())

    async def parse(text: str) -> str:
        return (await agent.parse_message(text))["intent"]["name"]

    async def run() -> dict[str, Any]:
        result: dict[str, Any] = {}
        for language, examples in rows.items():
            wrong = []
            for text, intent in examples:
                got = await parse(text)
                if got != intent and not (intent == "ask_question" and got in CONTROL_FREE):
                    wrong.append([text, intent, got])
            result[f"heldout_{language}"] = {
                "n": len(examples),
                "right": len(examples) - len(wrong),
                "wrong": wrong,
            }
        texts = [t for examples in rows.values() for t, _ in examples]
        for text in texts[:10]:  # warm-up
            await parse(text)
        timings = []
        for _ in range(5):
            for text in texts:
                started = time.perf_counter()
                await parse(text)
                timings.append((time.perf_counter() - started) * 1000)
        result["parse_ms"] = {
            "p50": round(statistics.median(timings), 2),
            "p95": round(percentile(timings, 95), 2),
            "n": len(timings),
        }
        return result

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--only", nargs="*", help="candidate names")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    for name, config in candidates().items():
        if args.only and name not in args.only:
            continue
        with tempfile.TemporaryDirectory(prefix=f"nlu-{name}-") as tmp:
            work = Path(tmp)
            config_path = work / "config.yml"
            config_path.write_text(yaml.safe_dump(config, sort_keys=False))
            train_s = rasa(
                "train",
                "nlu",
                "--config",
                str(config_path),
                "--nlu",
                str(ROOT / "bot" / "data"),
                "--out",
                str(work / "models"),
                "--fixed-model-name",
                "nlu",
                cwd=work,
            )
            entry = {"train_nlu_s": round(train_s, 1)}
            entry.update(heldout_and_speed(work / "models" / "nlu.tar.gz"))
            entry["cross_validation"] = cross_validation(config_path, work, args.folds)
            results[name] = entry
            print(name, json.dumps(entry, indent=1), flush=True)
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    previous.update(results)
    previous["load_avg_1m"] = round(os.getloadavg()[0], 2)
    RESULTS.write_text(json.dumps(previous, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
