"""Issue 20 levers measured side by side on the sample KB, by held-out halvings of the English
and Spanish development files (knowledge_base/holdout.py: thresholds swept on one half,
measured on the other, 10 rounds), with the shipped retriever and defaults:

* ``shipped``: the sample KB as it is (12 variants per English FAQ, 7 out-of-scope entries);
* ``without_out_of_scope_entries``: the same without its out-of-scope entries, English and
  Spanish (as shipped until 2026-12-07);
* ``out_of_scope_topics``: instead of the 7 entries, the 33 topics they were grouped from (airline
  fees, bookings, passports, airport services, chit-chat, ...; 10 example questions each,
  bench/data/levers/out_of_scope_topics.json), one out-of-scope entry per topic;
* ``more_variants``: the sample KB plus a third round of 8 variants per English FAQ in other
  citizens' forms (bench/data/levers/variants_round3.json);
* ``synonyms``: the sample KB with staff synonyms (Azure QnA Maker's "alterations",
  bench/data/levers/synonyms.json): English questions and the English FAQs' wordings rewritten
  to the KB's own word for a thing ("hand luggage" -> "carry-on") before they are embedded and
  matched;
* ``five_variants`` and ``five_variants_synonyms``: the same two with only the first 5 variants of
  each English FAQ, a thinner KB like a new agency's, where other words for a thing are likelier
  to be missing.

Neither data file was written from a labelled file (their ``about`` says how). Per row: the
development file at the shipped defaults, the held-out estimate with the halves it wins against
``shipped`` (same splits), the best the whole development file allows at <= 2% wrong and >= 95%
out-of-scope recall (the issue's goals), and the test files at the defaults (reported only).
Writes bench/results/levers.json.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_spanish import sample_records  # noqa: E402
from bench.common import ROOT, write_result  # noqa: E402
from knowledge_base.evaluate import (  # noqa: E402
    MAX_WRONG_RATE,
    SweepLimits,
    evaluate,
    load_labelled,
)
from knowledge_base.factory import embedder_for, language_options  # noqa: E402
from knowledge_base.holdout import DEFAULT_ROUNDS, holdout  # noqa: E402
from knowledge_base.index import build_bundle  # noqa: E402
from knowledge_base.retriever import Retriever  # noqa: E402
from knowledge_base.types import FaqKind, FaqRecord  # noqa: E402

DATA = ROOT / "bench" / "data" / "levers"
SAMPLE = ROOT / "knowledge_base" / "sample"
# Issue 20's goals: at most 2% answered wrongly, at least 95% of out-of-scope questions handed off.
GOALS = SweepLimits(max_wrong=MAX_WRONG_RATE, min_oos_recall=0.95)
RESULT = "levers.json"
# The development files estimated by held-out halvings, and the key of each in the results.
HELD_OUT = (
    ("eval_queries_dev.csv", "en", "development_held_out"),
    ("eval_queries_es_dev.csv", "es", "development_held_out_es"),
)
METRICS = ("answered_correct", "answered_wrong", "oos_recall", "within_one_click")
FILES = (
    ("eval_queries_dev.csv", "en", "development"),
    ("eval_queries_es_dev.csv", "es", "development"),
    ("eval_queries.csv", "en", "test"),
    ("eval_queries_es.csv", "es", "test"),
)


def with_more_variants(records: list[FaqRecord]) -> list[FaqRecord]:
    extra = json.loads((DATA / "variants_round3.json").read_text())["variants"]
    return [
        replace(r, variants=(*r.variants, *extra[r.id])) if r.id in extra else r for r in records
    ]


def synonym_rewriter() -> Callable[[str], str]:
    """Text -> the same text with every listed synonym replaced by the KB's own word (whole
    words, case-insensitive, longest synonym first so "carry on bag" is not read as "carry on")."""
    listed = json.loads((DATA / "synonyms.json").read_text())["synonyms"]
    own_word = {alt.lower(): word for word, alts in listed.items() for alt in alts}
    alternatives = sorted(own_word, key=len, reverse=True)
    pattern = re.compile(
        r"(?<![\w-])(" + "|".join(re.escape(a) for a in alternatives) + r")(?![\w-])", re.I
    )
    return lambda text: pattern.sub(lambda m: own_word[m.group(0).lower()], text)


def with_synonyms(records: list[FaqRecord], rewrite: Callable[[str], str]) -> list[FaqRecord]:
    return [
        replace(r, question=rewrite(r.question), variants=tuple(rewrite(v) for v in r.variants))
        if r.language == "en"
        else r
        for r in records
    ]


class SynonymRetriever(Retriever):
    """The shipped retriever with English questions rewritten like the KB's wordings."""

    rewrite: Callable[[str], str] = staticmethod(lambda text: text)

    def normalised(self, query: str) -> str:
        return self.rewrite(super().normalised(query))


def topic_records() -> list[FaqRecord]:
    topics = json.loads((DATA / "out_of_scope_topics.json").read_text())["topics"]
    return [
        FaqRecord(
            id=f"out-of-scope-{name}",
            language="en",
            question=topic["examples"][0],
            answer=topic["redirect"],
            category="Out of scope",
            variants=tuple(topic["examples"][1:]),
            kind=FaqKind.OUT_OF_SCOPE,
        )
        for name, topic in topics.items()
    ]


def best_within_goals(report: Any) -> dict[str, Any] | None:
    """The sweep's recommendation within the issue's goals (``GOALS``), if any."""
    best = report.recommended
    if best is None:
        return None
    return {
        "answered_correct": round(best.answered_correct, 4),
        "answered_wrong": round(best.answered_wrong, 4),
        "oos_recall": round(best.oos_recall or 0.0, 4),
        "within_one_click": round(best.within_one_click or 0.0, 4),
        "answer_threshold": best.answer_threshold,
        "clarify_threshold": best.clarify_threshold,
    }


def at_defaults(report: Any) -> dict[str, Any]:
    return {
        name: round(value, 4) if isinstance(value, float) else value
        for name, value in (
            ("top1", report.top1),
            ("answered_correct", report.answered_correct),
            ("answered_wrong", report.answered_wrong),
            ("within_one_click", report.within_one_click),
            ("oos_recall", report.oos_recall),
        )
    }


def main() -> int:
    from askagency.config import get_settings

    settings = get_settings()
    embedder = embedder_for(settings)
    records = sample_records()
    languages = language_options(settings)
    started = time.perf_counter()

    def retriever(kb: list[FaqRecord]) -> Retriever:
        return Retriever(build_bundle(kb, embedder), embedder, languages=languages)

    def synonyms_retriever(kb: list[FaqRecord]) -> Retriever:
        rewrite = synonym_rewriter()
        searcher = SynonymRetriever(
            build_bundle(with_synonyms(kb, rewrite), embedder), embedder, languages=languages
        )
        searcher.rewrite = rewrite
        return searcher

    answers = [r for r in records if not r.out_of_scope]
    five_variants = [
        replace(r, variants=r.variants[:5]) if r.language == "en" else r for r in records
    ]
    configurations: dict[str, Any] = {
        "shipped": retriever(records),
        "without_out_of_scope_entries": retriever(answers),
        "out_of_scope_topics": retriever(answers + topic_records()),
        "more_variants": retriever(with_more_variants(records)),
        "synonyms": synonyms_retriever(records),
        "five_variants": retriever(five_variants),
        "five_variants_synonyms": synonyms_retriever(five_variants),
    }
    labelled = {name: load_labelled(SAMPLE / name) for name, _, _ in FILES}
    results: dict[str, Any] = {
        "embedding_model": embedder.model_id,
        "holdout_rounds": DEFAULT_ROUNDS,
        "configurations": {},
    }
    shipped_halves: dict[str, list[float]] = {}
    for label, searcher in configurations.items():
        entry: dict[str, Any] = {}
        for name, language, key in HELD_OUT:
            held = holdout(searcher, labelled[name], settings, language=language)
            halves = [h.answered_correct for h in held.halves]
            baseline = shipped_halves.setdefault(key, halves)
            entry[key] = {
                **{metric: round(held.mean(metric) or 0.0, 4) for metric in METRICS},
                "halves_better_than_shipped": sum(
                    a > b for a, b in zip(halves, baseline, strict=True)
                ),
                "halves_worse_than_shipped": sum(
                    a < b for a, b in zip(halves, baseline, strict=True)
                ),
                "halves": len(halves),
            }
            dev = entry[key]
            print(
                f"{label:<28} {language} held out: right {dev['answered_correct']:.3f} wrong "
                f"{dev['answered_wrong']:.3f} OOS {dev['oos_recall']:.3f} one click "
                f"{dev['within_one_click']:.3f} better/worse halves "
                f"{dev['halves_better_than_shipped']}/{dev['halves_worse_than_shipped']}",
                flush=True,
            )
        for name, language, role in FILES:
            report = evaluate(
                searcher, labelled[name], settings, sweep=True, language=language, limits=GOALS
            )
            entry[name] = {"role": role, "defaults": at_defaults(report)}
            if role == "development":
                entry[name]["best_within_goals"] = best_within_goals(report)
        results["configurations"][label] = entry
    results["seconds"] = round(time.perf_counter() - started, 1)
    print(f"wrote {write_result(RESULT, results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
