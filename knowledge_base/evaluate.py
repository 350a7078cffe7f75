"""Measure retrieval and the answer/clarify/handoff decision on labelled queries.

Used by ``askagency kb evaluate`` and by bench/bench_banking77.py, so the
benchmark numbers come from the same code path staff use to pick thresholds.

Definitions (all rates are shares of *all* labelled queries unless noted):
- top1 / top3: expected FAQ ranked first / in the first three, in-scope queries only.
- answered_correct / answered_wrong: outcome ANSWER with the expected / any other FAQ
  (answering an out-of-scope query is wrong).
- OOS (out of scope, label "none"): predicted OOS = outcome HANDOFF.
  precision = OOS handoffs / all handoffs; recall = OOS handoffs / OOS queries.
- Recommended thresholds: the (answer, clarify) pair that maximises answered_correct
  subject to answered_wrong <= 2% and OOS recall >= 80% (when the file has OOS
  queries); among pairs with the same answer threshold (same correct answers) the
  lowest clarify threshold that still meets the constraints wins, so questions
  the bot is unsure about get a clarify question rather than a handoff.
"""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_base.decision import EPSILON, DecisionSettings, decide
from knowledge_base.types import FaqHit, Outcome

OUT_OF_SCOPE = "none"
MAX_WRONG_RATE = 0.02
MIN_OOS_RECALL = 0.80
ANSWER_GRID = tuple(round(float(x), 2) for x in np.arange(0.30, 0.951, 0.05))
CLARIFY_GRID = tuple(round(float(x), 2) for x in np.arange(0.15, 0.901, 0.05))


class LabelledFileError(ValueError):
    """The labelled query file is malformed."""


def load_labelled(path: Path | str) -> list[tuple[str, str]]:
    """Read ``text,expected_faq_id`` CSV rows ("none" = out of scope)."""
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise LabelledFileError(f"Cannot read {path}: {exc}") from exc
    with handle:
        reader = csv.DictReader(handle)
        fields = set(reader.fieldnames or [])
        if not {"text", "expected_faq_id"} <= fields:
            raise LabelledFileError(
                f"{path}: header must contain text,expected_faq_id (got {sorted(fields)})"
            )
        rows = []
        for line, row in enumerate(reader, start=2):
            text = (row.get("text") or "").strip()
            expected = (row.get("expected_faq_id") or "").strip()
            if not text or not expected:
                raise LabelledFileError(f"{path}:{line}: empty text or expected_faq_id")
            rows.append((text, OUT_OF_SCOPE if expected.lower() == OUT_OF_SCOPE else expected))
    if not rows:
        raise LabelledFileError(f"{path}: no labelled queries")
    return rows


@dataclass
class SweepRow:
    answer_threshold: float
    clarify_threshold: float
    answer_rate: float
    clarify_rate: float
    handoff_rate: float
    answered_correct: float
    answered_wrong: float
    oos_recall: float | None
    oos_precision: float | None
    meets_constraints: bool


@dataclass
class Confusion:
    expected: str
    got: str
    count: int
    example: str


@dataclass
class EvalReport:
    n_queries: int
    n_in_scope: int
    n_out_of_scope: int
    top1: float | None
    top3: float | None
    answer_rate: float
    clarify_rate: float
    handoff_rate: float
    answered_correct: float
    answered_wrong: float
    clarify_contains_expected: float | None
    oos_precision: float | None
    oos_recall: float | None
    thresholds: dict[str, float]
    index_version: str
    scorer: str
    seconds: float
    confusions: list[Confusion] = field(default_factory=list)
    sweep: list[SweepRow] = field(default_factory=list)
    recommended: SweepRow | None = None
    recommendation_rule: str = (
        f"maximise answered_correct subject to answered_wrong <= {MAX_WRONG_RATE:.0%} and "
        f"oos_recall >= {MIN_OOS_RECALL:.0%} (if OOS queries exist); ties: the lowest clarify "
        "threshold that still meets the constraints (clarify rather than hand off)"
    )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


def _ratio(num: float, den: float) -> float | None:
    return float(num) / den if den else None


def _top_and_margin(hits: Sequence[FaqHit]) -> tuple[float, float]:
    if not hits:
        return 0.0, 0.0
    top = hits[0].score
    return top, top - hits[1].score if len(hits) > 1 else top


def _outcome_arrays(
    tops: np.ndarray, margins: np.ndarray, answer: float, clarify: float, margin: float
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised ``decide`` (same rules) for the threshold sweep."""
    answered = (tops >= answer - EPSILON) & (margins >= margin - EPSILON)
    clarified = ~answered & (tops >= clarify - EPSILON)
    return answered, clarified


def _sweep(
    tops: np.ndarray,
    margins: np.ndarray,
    top1_correct: np.ndarray,
    oos: np.ndarray,
    margin: float,
) -> list[SweepRow]:
    n = len(tops)
    rows = []
    for a in ANSWER_GRID:
        for c in CLARIFY_GRID:
            if c > a:
                continue
            answered, clarified = _outcome_arrays(tops, margins, a, c, margin)
            handoff = ~answered & ~clarified
            correct = float((answered & top1_correct).sum()) / n
            wrong = float((answered & ~top1_correct).sum()) / n
            recall = _ratio((handoff & oos).sum(), oos.sum())
            precision = _ratio((handoff & oos).sum(), handoff.sum())
            ok = bool(wrong <= MAX_WRONG_RATE and (recall is None or recall >= MIN_OOS_RECALL))
            rows.append(
                SweepRow(
                    a,
                    c,
                    float(answered.mean()),
                    float(clarified.mean()),
                    float(handoff.mean()),
                    correct,
                    wrong,
                    recall,
                    precision,
                    ok,
                )
            )
    return rows


def recommend(rows: Sequence[SweepRow]) -> SweepRow | None:
    ok = [r for r in rows if r.meets_constraints]
    if not ok:
        return None
    return max(ok, key=lambda r: (r.answered_correct, -r.answer_threshold, -r.clarify_threshold))


def evaluate(
    retriever: Any,
    labelled: Sequence[tuple[str, str]],
    settings: DecisionSettings,
    *,
    sweep: bool = True,
    k: int = 5,
    language: str | None = None,
    max_confusions: int = 15,
) -> EvalReport:
    """Run every labelled query through ``retriever.search_many`` and ``decide``."""
    if not labelled:
        raise ValueError("evaluate() needs at least one labelled query")
    started = time.perf_counter()
    texts = [t for t, _ in labelled]
    expected = [e for _, e in labelled]
    results = retriever.search_many(texts, k=max(k, 3), language=language, cache_queries=True)
    n = len(labelled)
    oos = np.array([e == OUT_OF_SCOPE for e in expected])
    top1_ids = [hits[0].faq_id if hits else None for hits in results]
    top1_correct = np.array([t == e for t, e in zip(top1_ids, expected, strict=True)])
    top3_correct = np.array(
        [e in [h.faq_id for h in hits[:3]] for hits, e in zip(results, expected, strict=True)]
    )
    decisions = [decide(hits, settings) for hits in results]
    outcomes = np.array([d.outcome.value for d in decisions])
    answered = outcomes == Outcome.ANSWER.value
    clarified = outcomes == Outcome.CLARIFY.value
    handoff = outcomes == Outcome.HANDOFF.value
    in_scope = ~oos
    clarify_hit = [
        e in [h.faq_id for h in d.hits]
        for d, e, c in zip(decisions, expected, clarified & in_scope, strict=True)
        if c
    ]
    tm = np.array([_top_and_margin(h) for h in results]).reshape(n, 2)

    confusion_counts: Counter[tuple[str, str]] = Counter()
    examples: dict[tuple[str, str], str] = {}
    for text, exp, got, is_answered in zip(texts, expected, top1_ids, answered, strict=True):
        if exp == OUT_OF_SCOPE:
            if not is_answered:
                continue  # a clarify/handoff on an OOS query is not a confusion
        elif got == exp:
            continue
        key = (exp, got or "(no result)")
        confusion_counts[key] += 1
        examples.setdefault(key, text)
    confusions = [
        Confusion(exp, got, count, examples[(exp, got)])
        for (exp, got), count in confusion_counts.most_common(max_confusions)
    ]
    sweep_rows = (
        _sweep(tm[:, 0], tm[:, 1], top1_correct, oos, settings.answer_margin) if sweep else []
    )
    return EvalReport(
        n_queries=n,
        n_in_scope=int(in_scope.sum()),
        n_out_of_scope=int(oos.sum()),
        top1=_ratio(top1_correct[in_scope].sum(), in_scope.sum()),
        top3=_ratio(top3_correct[in_scope].sum(), in_scope.sum()),
        answer_rate=float(answered.mean()),
        clarify_rate=float(clarified.mean()),
        handoff_rate=float(handoff.mean()),
        answered_correct=float((answered & top1_correct).sum()) / n,
        answered_wrong=float((answered & ~top1_correct).sum()) / n,
        clarify_contains_expected=_ratio(sum(clarify_hit), len(clarify_hit)),
        oos_precision=_ratio((handoff & oos).sum(), handoff.sum()),
        oos_recall=_ratio((handoff & oos).sum(), oos.sum()),
        thresholds={
            "answer_threshold": settings.answer_threshold,
            "clarify_threshold": settings.clarify_threshold,
            "answer_margin": settings.answer_margin,
            "clarify_max_options": settings.clarify_max_options,
        },
        index_version=str(getattr(retriever, "version", "")),
        scorer=str(getattr(retriever, "scorer", "")),
        seconds=time.perf_counter() - started,
        confusions=confusions,
        sweep=sweep_rows,
        recommended=recommend(sweep_rows) if sweep else None,
    )


def with_thresholds(settings: Any, answer: float, clarify: float) -> Any:
    """Copy of ``settings`` with other thresholds (pydantic models or dataclasses)."""
    if hasattr(settings, "model_copy"):
        return settings.model_copy(
            update={"answer_threshold": answer, "clarify_threshold": clarify}
        )
    return replace(settings, answer_threshold=answer, clarify_threshold=clarify)
