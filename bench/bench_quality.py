"""Answer quality of the sample KB (issue #20): direct answers, one-click answers, out of scope.

Builds the sample KB (English + Spanish FAQs) in memory with the configured embedding model and
runs ``knowledge_base.evaluate`` (the code behind ``askagency kb evaluate``) on every labelled
file, each searched in its own language, in four configurations:

* ``before``: the KB as it was (5 variants per English FAQ: the first five, the later ones were
  added by issue #20) with the retriever and thresholds before issue #20 (classifier weight 0.1;
  answer 0.65, clarify 0.40, classifier lead 0.25 from the clarify threshold up, every option
  above the clarify threshold offered);
* ``five_variants``: the same 5-variant KB at the settings chosen for it on the development
  files (classifier weight 0.3, answer 0.70, clarify 0.45, lead 0.20 from 0.55);
* ``twelve_variants``: the KB as shipped (12 variants per English FAQ) scored as before
  2026-12-07 (each FAQ's mean of its best 3 variant and lexical similarities, lexical weight
  0.35) at the thresholds chosen for that on the development files (answer 0.70, clarify 0.50,
  lead 0.35 from 0.55, suggestions from 0.45);
* ``best_variant``: the same KB without its out-of-scope entries, scored by each FAQ's best
  variant (lexical weight 0.6), at the thresholds chosen for that on the development files
  (answer 0.75, clarify 0.55, lead 0.35 from 0.60): the defaults until the entries came;
* ``after``: the KB as shipped, with its 7 out-of-scope entries (examples of what the service
  does not answer; a question they match best is handed off), at the current defaults, chosen
  on the development files for it.

Every configuration but ``after`` leaves the out-of-scope entries out (they did not exist).

Development files (``eval_queries_dev.csv``, ``eval_queries_es_dev.csv``) are where settings are
chosen; the others are test files, only reported. Writes bench/results/quality.json.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_spanish import sample_records  # noqa: E402
from bench.common import RESULTS, ROOT, machine  # noqa: E402
from knowledge_base import retriever as retriever_module  # noqa: E402
from knowledge_base.evaluate import evaluate, load_labelled  # noqa: E402
from knowledge_base.factory import embedder_for, language_options  # noqa: E402
from knowledge_base.index import build_bundle  # noqa: E402
from knowledge_base.retriever import Retriever  # noqa: E402
from knowledge_base.types import FaqRecord  # noqa: E402

SAMPLE = ROOT / "knowledge_base" / "sample"
FILES = (
    ("eval_queries.csv", "en", "test"),
    ("eval_queries_dev.csv", "en", "development"),
    ("eval_queries_es.csv", "es", "test"),
    ("eval_queries_es_holdout.csv", "es", "test"),
    ("eval_queries_es_dev.csv", "es", "development"),
)
BEFORE = {
    "answer_threshold": 0.65,
    "clarify_threshold": 0.40,
    "answer_confidence": 0.25,
    "answer_confidence_floor": 0.0,  # = the clarify threshold (the floor never goes below it)
    "answer_margin": 0.05,
    "clarify_max_gap": 1.0,
    "language_thresholds": {
        "es": {"answer_threshold": 0.45, "clarify_threshold": 0.35, "answer_confidence": 0.45}
    },
}
# The retriever's scoring constants of each configuration (knowledge_base/retriever.py).
BEFORE_SCORING = {"CLASSIFIER_WEIGHT": 0.1, "TOP_VARIANTS": 3, "LEXICAL_WEIGHT": 0.35}
MEAN_OF_THREE_SCORING = {"CLASSIFIER_WEIGHT": 0.3, "TOP_VARIANTS": 3, "LEXICAL_WEIGHT": 0.35}
# Spanish's thresholds before its out-of-scope entries (the historical rows have none).
SPANISH_BEFORE_ENTRIES = {
    "es": {
        "answer_threshold": 0.45,
        "clarify_threshold": 0.35,
        "answer_confidence": 0.45,
        "answer_confidence_floor": 0.35,
        "suggest_threshold": 0.20,
        "answer_margin": 0.05,
    }
}
TWELVE_VARIANTS = {
    "answer_margin": 0.05,
    "answer_threshold": 0.70,
    "clarify_threshold": 0.50,
    "answer_confidence": 0.35,
    "answer_confidence_floor": 0.55,
    "suggest_threshold": 0.45,
    "language_thresholds": SPANISH_BEFORE_ENTRIES,
}
# The sample KB's English FAQs had this many variants before issue #20 added more after them.
BEFORE_VARIANTS = 5
BEST_VARIANT = {
    "answer_margin": 0.10,
    "answer_threshold": 0.75,
    "clarify_threshold": 0.55,
    "answer_confidence": 0.35,
    "answer_confidence_floor": 0.60,
    "suggest_threshold": 0.55,
    "language_thresholds": SPANISH_BEFORE_ENTRIES,
}
FIVE_VARIANTS = {
    "answer_margin": 0.05,
    "answer_threshold": 0.70,
    "clarify_threshold": 0.45,
    "answer_confidence": 0.20,
    "answer_confidence_floor": 0.55,
    "language_thresholds": SPANISH_BEFORE_ENTRIES,
}
KEYS = (
    "n_in_scope",
    "n_out_of_scope",
    "top1",
    "top3",
    "answered_correct",
    "answered_wrong",
    "within_one_click",
    "within_one_click_suggested",
    "suggestion_precision",
    "oos_suggested",
    "clarify_rate",
    "clarify_options_mean",
    "oos_recall",
)


def summary(report: Any) -> dict[str, Any]:
    data = report.to_dict()
    out = {k: round(v, 4) if isinstance(v, float) else v for k, v in data.items() if k in KEYS}
    # The "answered directly and correctly" is a share of all queries; of the in-scope
    # ones it is this:
    out["answered_correct_of_in_scope"] = round(data["answered_correct_in_scope"] or 0.0, 4)
    return out


@contextmanager
def scoring(constants: dict[str, float]) -> Iterator[None]:
    """The retriever's module-level scoring constants set to ``constants`` for the block."""
    saved = {name: getattr(retriever_module, name) for name in constants}
    for name, value in constants.items():
        setattr(retriever_module, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(retriever_module, name, value)


def first_variants(records: list[FaqRecord], n: int) -> list[FaqRecord]:
    """The English FAQs with only their first ``n`` variants (the KB before more were added)."""
    return [replace(r, variants=r.variants[:n]) if r.language == "en" else r for r in records]


def main(out: Path = RESULTS / "quality.json") -> int:
    from askagency.config import get_settings

    settings = get_settings()
    embedder = embedder_for(settings)
    records = sample_records()
    answers = [r for r in records if not r.out_of_scope]
    started = time.perf_counter()
    shipped = Retriever(
        build_bundle(records, embedder), embedder, languages=language_options(settings)
    )
    build_s = round(time.perf_counter() - started, 2)
    full = Retriever(
        build_bundle(answers, embedder), embedder, languages=language_options(settings)
    )
    five = Retriever(
        build_bundle(first_variants(answers, BEFORE_VARIANTS), embedder),
        embedder,
        languages=language_options(settings),
    )
    current_names = (*BEFORE.keys(), "clarify_max_options", "suggest_threshold")
    current_scoring = {name: getattr(retriever_module, name) for name in BEFORE_SCORING}
    configurations = {
        "before": (five, settings.model_copy(update=BEFORE), BEFORE_SCORING),
        "five_variants": (five, settings.model_copy(update=FIVE_VARIANTS), MEAN_OF_THREE_SCORING),
        "twelve_variants": (
            full,
            settings.model_copy(update=TWELVE_VARIANTS),
            MEAN_OF_THREE_SCORING,
        ),
        "best_variant": (full, settings.model_copy(update=BEST_VARIANT), current_scoring),
        "after": (shipped, settings, current_scoring),
    }
    results: dict[str, Any] = {
        "embedding_model": embedder.model_id,
        "build_s": build_s,
        "machine": machine(),
        "english_variants": {
            "before": sum(
                min(len(r.variants), BEFORE_VARIANTS) for r in answers if r.language == "en"
            ),
            "after": sum(len(r.variants) for r in answers if r.language == "en"),
        },
        "out_of_scope_examples": sum(len(r.question_texts()) for r in records if r.out_of_scope),
        "settings": {
            label: {
                **{name: getattr(chosen, name) for name in current_names},
                **{name.lower(): value for name, value in constants.items()},
            }
            for label, (_, chosen, constants) in configurations.items()
        },
        "files": {},
    }
    for name, language, role in FILES:
        labelled = load_labelled(SAMPLE / name)
        entry: dict[str, Any] = {"language": language, "role": role}
        for label, (retriever, chosen, constants) in configurations.items():
            with scoring(constants):
                report = evaluate(retriever, labelled, chosen, sweep=False, language=language)
            entry[label] = summary(report)
            print(
                f"{name:<30} {label:<15} right {report.answered_correct:.3f} wrong "
                f"{report.answered_wrong:.3f} one-click {report.within_one_click:.3f} "
                f"OOS recall {report.oos_recall:.3f} top-1 {report.top1:.3f}",
                flush=True,
            )
        results["files"][f"knowledge_base/sample/{name}"] = entry
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
