"""Thresholds from a KB's own wordings (knowledge_base/calibrate.py, `askagency kb calibrate`)
against the built-in defaults, on knowledge bases they were not chosen for.

* BANKING77 with held-out intents: 20 of its 77 intents (3 random draws) are left out of the
  KB and their test questions become out-of-scope ones (the usual way to make an intent set
  with out-of-scope questions, e.g. Zhang et al. 2021 for BANKING77-OOS). The KB is the other
  57 intents' train rows; all 3,080 test rows are asked. Such out-of-scope questions sit next
  to the KB's topics, as the ones that draw wrong answers do. Reported for reference: the
  sweep's choice on the very questions measured (the best any thresholds could do, in-sample).
* The sample KB, English with and without its out-of-scope entries and Spanish, on the
  development files, with the held-out estimate of a development file's own sweep
  (knowledge_base/holdout.py) beside it; the test files are reported only.

Nothing here chose the calibration's settings (folds, out-of-scope share, wordings per left-out
FAQ: calibrate.py says why each). Writes bench/results/calibration.json.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_spanish import sample_records  # noqa: E402
from bench.common import ROOT, banking77_queries, banking77_records, write_result  # noqa: E402
from knowledge_base.calibrate import calibrate  # noqa: E402
from knowledge_base.evaluate import OUT_OF_SCOPE, evaluate, load_labelled  # noqa: E402
from knowledge_base.factory import embedder_for, retriever_over  # noqa: E402
from knowledge_base.holdout import holdout  # noqa: E402
from knowledge_base.retriever import Retriever  # noqa: E402
from knowledge_base.tuning import recommended_values, with_recommendation  # noqa: E402
from knowledge_base.types import FaqRecord  # noqa: E402

SAMPLE = ROOT / "knowledge_base" / "sample"
HELD_OUT_INTENTS = 20
DRAWS = 3
METRICS = ("answered_correct", "answered_wrong", "oos_recall", "within_one_click")


def figures(report: Any) -> dict[str, Any]:
    return {name: round(float(getattr(report, name) or 0.0), 4) for name in METRICS}


def main() -> int:
    from askagency.config import get_settings

    settings = get_settings()
    embedder = embedder_for(settings)
    started = time.perf_counter()

    def retriever(kb: Any) -> Retriever:
        return retriever_over(kb, settings, embedder)

    def compare(
        kb: list[FaqRecord], questions: Any, language: str, label: str, searcher: Retriever
    ) -> tuple[dict[str, Any], Any]:
        """The defaults and the calibration on ``questions``; the calibrated settings."""
        calibration = calibrate(kb, retriever, settings, language)
        defaults = evaluate(searcher, questions, settings, language=language, max_confusions=0)
        tuned = with_recommendation(settings, calibration.recommended, language)
        entry: dict[str, Any] = {
            "calibration": {
                "in_scope_questions": calibration.n_in_scope,
                "out_of_scope_questions": calibration.n_out_of_scope,
                "seconds": round(calibration.seconds, 1),
                "thresholds": recommended_values(calibration.recommended)
                if calibration.recommended
                else None,
            },
            "defaults": figures(defaults),
            "in_sample_sweep_best": figures(defaults.recommended) if defaults.recommended else None,
        }
        if tuned is not None:
            at = evaluate(
                searcher, questions, tuned, sweep=False, language=language, max_confusions=0
            )
            entry["calibrated"] = figures(at)
        print(label, entry, flush=True)
        return entry, tuned

    results: dict[str, Any] = {
        "embedding_model": embedder.model_id,
        "banking77_oos": [],
        "sample": {},
    }
    records = banking77_records()
    queries = banking77_queries()
    for draw in range(DRAWS):
        held = set(random.Random(draw).sample(sorted(r.id for r in records), HELD_OUT_INTENTS))
        kb = [r for r in records if r.id not in held]
        asked = [(text, OUT_OF_SCOPE if c in held else c) for text, c in queries]
        entry, _ = compare(kb, asked, "en", f"banking77 draw {draw}", retriever(kb))
        results["banking77_oos"].append({"draw": draw, "held_out_intents": sorted(held), **entry})

    sample = sample_records()
    answers = [r for r in sample if not r.out_of_scope]
    for label, kb, language, dev, test in (
        ("english", sample, "en", "eval_queries_dev.csv", "eval_queries.csv"),
        ("english_without_entries", answers, "en", "eval_queries_dev.csv", "eval_queries.csv"),
        ("spanish", sample, "es", "eval_queries_es_dev.csv", "eval_queries_es.csv"),
    ):
        dev_questions = load_labelled(SAMPLE / dev)
        searcher = retriever(kb)
        entry, tuned = compare(kb, dev_questions, language, f"{label} development", searcher)
        held = holdout(searcher, dev_questions, settings, language=language)
        entry["development_file_sweep_held_out"] = {
            name: round(held.mean(name) or 0.0, 4) for name in METRICS
        }
        test_questions = load_labelled(SAMPLE / test)
        entry["test_reported_only"] = {
            "defaults": figures(
                evaluate(
                    searcher,
                    test_questions,
                    settings,
                    sweep=False,
                    language=language,
                    max_confusions=0,
                )
            ),
            "calibrated": figures(
                evaluate(
                    searcher,
                    test_questions,
                    tuned,
                    sweep=False,
                    language=language,
                    max_confusions=0,
                )
            )
            if tuned is not None
            else None,
        }
        results["sample"][label] = entry
        print(label, entry, flush=True)
    results["seconds"] = round(time.perf_counter() - started, 1)
    print(f"wrote {write_result('calibration.json', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
