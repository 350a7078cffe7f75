"""How thresholds chosen by ``kb evaluate --sweep`` do on questions they were not chosen on.

Why: the sweep picks the thresholds that answer the most questions of a labelled file right
within the wrong-answer and out-of-scope limits, and reports that file's figures at them. Those
figures are optimistic: the thresholds were fitted to the very questions they are measured on,
and a citizen's next question is not among them. Repeated halvings give the honest figure:
the file is split at random into two halves, the sweep chooses on one half and the result is
measured on the other, and the same the other way round, ``rounds`` times. The mean is what an
agency can expect on new questions like its file's; the spread says how much a file of this
size can tell two settings apart (a change worth keeping wins in most halves, not on average
by a hair). It is also how the sample KB's settings were chosen (docs/quality.md).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from statistics import fmean
from typing import Any

from knowledge_base.evaluate import DEFAULT_LIMITS, SweepLimits, evaluate
from knowledge_base.tuning import recommended_values, with_recommendation
from knowledge_base.types import FaqHit

DEFAULT_ROUNDS = 10
DEFAULT_SEED = 7
MIN_HALF = 10  # fewer labelled questions per half cannot choose thresholds


@dataclass(frozen=True)
class HalfResult:
    """One held-out half: the thresholds chosen on the other half and what they gave here
    (``None`` thresholds: no setting met the constraints on the other half)."""

    answered_correct: float
    answered_wrong: float
    oos_recall: float | None
    within_one_click: float | None
    thresholds: dict[str, float] | None


@dataclass
class HoldoutReport:
    rounds: int
    seed: int
    n_queries: int
    halves: list[HalfResult] = field(default_factory=list)

    def mean(self, name: str) -> float | None:
        values = [getattr(h, name) for h in self.halves if getattr(h, name) is not None]
        return fmean(values) if values else None

    def spread(self, name: str) -> tuple[float, float] | None:
        values = [getattr(h, name) for h in self.halves if getattr(h, name) is not None]
        return (min(values), max(values)) if values else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mean"] = {
            name: self.mean(name)
            for name in ("answered_correct", "answered_wrong", "oos_recall", "within_one_click")
        }
        return data


class _Precomputed:
    """A retriever stand-in that returns hits searched once for the whole file: each half is
    evaluated many times and searching is most of evaluate()'s cost."""

    def __init__(self, retriever: Any, hits: dict[str, list[FaqHit]]) -> None:
        self._retriever = retriever
        self._hits = hits

    def __getattr__(self, name: str) -> Any:
        return getattr(self._retriever, name)

    def search_many(
        self, texts: Sequence[str], k: int = 5, language: str | None = None, **_: Any
    ) -> list[list[FaqHit]]:
        return [self._hits[text][:k] for text in texts]


def holdout(
    retriever: Any,
    labelled: Sequence[tuple[str, str]],
    settings: Any,
    *,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = DEFAULT_SEED,
    language: str | None = None,
    k: int = 5,
    limits: SweepLimits = DEFAULT_LIMITS,
) -> HoldoutReport:
    """``rounds`` random halvings of ``labelled``; each half measured at the thresholds the
    sweep chose on the other (within ``limits``). A half whose other half met no constraints
    is measured at ``settings`` unchanged (its ``thresholds`` is ``None``)."""
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    if len(labelled) < 2 * MIN_HALF:
        raise ValueError(
            f"a held-out estimate needs at least {2 * MIN_HALF} labelled questions "
            f"({len(labelled)} given)"
        )
    texts = list(dict.fromkeys(text for text, _ in labelled))
    found = retriever.search_many(texts, k=max(k, 3), language=language, cache_queries=True)
    searched = _Precomputed(retriever, dict(zip(texts, found, strict=True)))
    rng = random.Random(seed)
    report = HoldoutReport(rounds=rounds, seed=seed, n_queries=len(labelled))
    for _ in range(rounds):
        order = list(range(len(labelled)))
        rng.shuffle(order)
        middle = len(order) // 2
        first = [labelled[i] for i in order[:middle]]
        second = [labelled[i] for i in order[middle:]]
        for choose_on, measure_on in ((first, second), (second, first)):
            # No confusions: they are not read here, and naming them searches again.
            swept = evaluate(
                searched,
                choose_on,
                settings,
                sweep=True,
                k=k,
                language=language,
                limits=limits,
                max_confusions=0,
            )
            chosen = with_recommendation(settings, swept.recommended, language)
            measured = evaluate(
                searched,
                measure_on,
                chosen or settings,
                sweep=False,
                k=k,
                language=language,
                max_confusions=0,
            )
            report.halves.append(
                HalfResult(
                    answered_correct=measured.answered_correct,
                    answered_wrong=measured.answered_wrong,
                    oos_recall=measured.oos_recall,
                    within_one_click=measured.within_one_click,
                    thresholds=recommended_values(swept.recommended) if chosen else None,
                )
            )
    return report
