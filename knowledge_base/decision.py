"""Turn ranked hits into answer / clarify / handoff.

Thresholds live in configuration and are chosen with ``askagency kb evaluate``.
Answering needs both a high score and a clear lead over the next FAQ: two
near-identical candidates mean the bot should ask, not guess.

A second way to answer uses the retriever's classifier: a question that is in
scope (score >= answer_confidence_floor, itself >= clarify_threshold) and whose top
FAQ leads the next different FAQ by >= answer_confidence in classifier probability
is answered too. Paraphrases
far from every stored variant score low on similarity, yet the classifier (fitted
on all variants) often singles out their FAQ; on the sample KB's held-out queries
this lead separates right from wrong top hits better than the score (AUC 0.87 vs
0.84): correct direct answers rose from 18% to 31% at the same 1.1% wrong answers
(35% at the 2% limit), and on BANKING77 from 74% to 85% at <= 2% wrong. The score
still gates it, so out-of-scope questions keep going to a person.

Clarify options are the hits within ``clarify_max_gap`` of the top score (and above
clarify_threshold): a list whose second option is far below the first only dilutes the
right one. One option left makes the clarify a yes/no "Did you mean ...?" (actions/faq.py).

Below the clarify threshold the question is out of scope for the bot: the citizen is told there
is no sure answer and offered a person. Near misses scoring at least ``suggest_threshold``
(within the same gap) are shown there too, as "these may help" buttons: an in-scope question
worded far from every variant often still has its FAQ first among them, and one press answers
it, while an out-of-scope question loses nothing (the person is offered the same way). On the
sample KB's Spanish development file a floor of 0.20 (clarify 0.35) put the right FAQ one press
away for 74.6% -> 91.0% of in-scope questions, showing a list to 61% of out-of-scope ones; its
English one has no floor where a third of the lists help, so English's is off (docs/quality.md).
A ``suggest_threshold`` at or above ``clarify_threshold`` turns suggestions off.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from knowledge_base.types import Decision, FaqHit, FaqRetriever, Outcome

# Scores are floats: 0.60 - 0.55 is 0.0499999... A margin equal to the setting
# must count as enough, so comparisons allow this much rounding error.
EPSILON = 1e-9
# answer_confidence at or above this turns the confidence rule off (a lead of 1.0
# needs a single FAQ with probability 1, which says nothing).
CONFIDENCE_OFF = 1.0
# Default clarify_max_gap for settings objects without one (chosen on the development files:
# docs/quality.md).
DEFAULT_CLARIFY_GAP = 0.10


class DecisionSettings(Protocol):
    answer_threshold: float
    clarify_threshold: float
    answer_margin: float
    clarify_max_options: int
    # Optional ``answer_confidence`` (float in [0, 1]): read with getattr so settings
    # objects written before it existed keep working; missing or >= 1 turns it off.
    # Optional ``clarify_max_gap``: clarify options score at least top - gap (getattr too).
    # Optional ``suggest_threshold``: the lowest score a near miss is suggested at below the
    # clarify threshold (getattr; missing turns suggestions off).


THRESHOLD_FIELDS = (
    "answer_threshold",
    "clarify_threshold",
    "answer_margin",
    "answer_confidence",
    "answer_confidence_floor",
    "clarify_max_gap",
    "suggest_threshold",
)


@dataclass(frozen=True)
class LanguageThresholds:
    """The decision settings with one language's overrides applied."""

    answer_threshold: float
    clarify_threshold: float
    answer_margin: float
    clarify_max_options: int
    answer_confidence: float | None
    answer_confidence_floor: float | None = None
    clarify_max_gap: float | None = None
    suggest_threshold: float | None = None


def thresholds_for(settings: Any, language: str | None) -> Any:
    """``settings`` with ``language_thresholds[language]`` applied, when it has any.

    Why per language: scores of a language searched by the language scorer (another scale of
    signals: translations, stems) are not on the main language's scale, so the same threshold
    answers a different share of its questions. An agency calibrates each language with
    ``askagency kb evaluate --language xx --sweep`` on labelled questions in it.
    """
    overrides: Mapping[str, float] = (getattr(settings, "language_thresholds", None) or {}).get(
        language or "", {}
    )
    if not overrides:
        return settings
    values = {name: getattr(settings, name, None) for name in THRESHOLD_FIELDS}
    values.update({k: float(v) for k, v in overrides.items() if k in THRESHOLD_FIELDS})
    return LanguageThresholds(clarify_max_options=settings.clarify_max_options, **values)


def for_index(settings: Any, out_of_scope_languages: Collection[str]) -> Any:
    """``settings`` for an index whose out-of-scope entries are in ``out_of_scope_languages``:
    a language without any gets ``thresholds_without_out_of_scope``'s values for each threshold
    the agency did not set itself.

    Why: the default thresholds were chosen for the sample KB with its out-of-scope entries,
    which take the questions the service does not answer, so they clarify and answer lower
    than a KB without entries can afford: on the sample's development file without its entries
    they answered 2.9% wrongly and handed off 74.7% of the out-of-scope questions, against
    1.5% and 91.4% at the thresholds chosen without them (docs/quality.md). A value the agency
    set (environment, ``.env``, ``kb evaluate --apply``, ``kb calibrate --apply``: pydantic's
    ``model_fields_set``) is never replaced; nor is any language's when it set
    ``language_thresholds``. Settings objects without ``model_copy`` are returned as they are.
    """
    profiles: Mapping[str, Mapping[str, float]] = (
        getattr(settings, "thresholds_without_out_of_scope", None) or {}
    )
    if not profiles or not hasattr(settings, "model_copy"):
        return settings
    explicit = getattr(settings, "model_fields_set", set())
    main = getattr(settings, "default_language", None)
    update: dict[str, Any] = {}
    for language, values in profiles.items():
        if language in out_of_scope_languages:
            continue
        own = {k: float(v) for k, v in values.items() if k in THRESHOLD_FIELDS}
        if language == main:
            update.update({k: v for k, v in own.items() if k not in explicit})
        elif "language_thresholds" not in explicit:
            merged = update.setdefault(
                "language_thresholds",
                {lang: dict(v) for lang, v in (settings.language_thresholds or {}).items()},
            )
            merged.setdefault(language, {}).update(own)
    return settings.model_copy(update=update) if update else settings


def for_retriever(settings: Any, retriever: Any) -> Any:
    """:func:`for_index` for the index ``retriever`` searches (unchanged when it does not say
    which languages have out-of-scope entries)."""
    languages = getattr(retriever, "out_of_scope_languages", None)
    return settings if languages is None else for_index(settings, languages)


def _same_question(a: FaqHit, b: FaqHit, groups: dict[str, str]) -> bool:
    """True when ``b`` is a translation of ``a`` (same translation group)."""
    group_a, group_b = groups.get(a.faq_id, ""), groups.get(b.faq_id, "")
    return bool(group_a) and group_a == group_b


def confidence_lead(top: FaqHit, rivals: Sequence[FaqHit]) -> float:
    """The top FAQ's classifier probability minus the most probable rival's."""
    return top.confidence - max((h.confidence for h in rivals), default=0.0)


def confidence_floor(settings: Any) -> float:
    """The lowest top score the confidence rule answers at: ``answer_confidence_floor``, never
    below clarify_threshold (a question handed off as out of scope is never answered)."""
    floor = getattr(settings, "answer_confidence_floor", None)
    clarify = float(settings.clarify_threshold)
    return clarify if floor is None else max(clarify, float(floor))


def clarify_gap(settings: Any) -> float:
    """How far below the top score a clarify option may be (``clarify_max_gap``)."""
    gap = getattr(settings, "clarify_max_gap", None)
    return DEFAULT_CLARIFY_GAP if gap is None else float(gap)


def suggest_floor(settings: Any) -> float | None:
    """The lowest top score whose near misses are suggested on a handoff, or None when
    suggestions are off (no ``suggest_threshold``, or one at or above clarify_threshold)."""
    floor = getattr(settings, "suggest_threshold", None)
    if floor is None or float(floor) >= float(settings.clarify_threshold) - EPSILON:
        return None
    return float(floor)


def clarify_options(
    ranked: Sequence[FaqHit], settings: Any, threshold: float | None = None
) -> tuple[FaqHit, ...]:
    """The clarify buttons: hits at or above ``threshold`` (default clarify_threshold) and
    within clarify_max_gap of the top one, at most clarify_max_options (the top hit always)."""
    lowest = settings.clarify_threshold if threshold is None else threshold
    floor = max(lowest, ranked[0].score - clarify_gap(settings)) - EPSILON
    options = [ranked[0], *(h for h in ranked[1:] if h.score >= floor)]
    return tuple(options[: max(1, settings.clarify_max_options)])


def suggestions_for(ranked: Sequence[FaqHit], settings: Any) -> tuple[FaqHit, ...]:
    """The near misses a handoff shows as "these may help": chosen like clarify options,
    from suggest_threshold instead of clarify_threshold; none when the top is below it."""
    floor = suggest_floor(settings)
    if floor is None or not ranked or ranked[0].score < floor - EPSILON:
        return ()
    return clarify_options(ranked, settings, floor)


def thresholds_used(settings: Any, hits: Sequence[FaqHit]) -> Any:
    """The thresholds :func:`decide` applies to ``hits``: its best hit's language's. Whatever
    shows a decision beside its thresholds (``kb search``, the console's "Try it") prints these,
    not the main language's."""
    top = max(hits, key=lambda h: h.score, default=None)
    return thresholds_for(settings, top.language if top is not None else None)


def decide(
    hits: Sequence[FaqHit],
    settings: DecisionSettings,
    translation_groups: dict[str, str] | None = None,
) -> Decision:
    """ANSWER when top >= answer_threshold and it leads the next *different*
    FAQ by >= answer_margin, or when top >= answer_confidence_floor (default: the
    clarify_threshold) and its classifier confidence leads every different FAQ's by
    >= answer_confidence; CLARIFY
    when top >= clarify_threshold, offering the hits within reach (score >=
    clarify_threshold and >= top - clarify_max_gap) up to clarify_max_options;
    otherwise HANDOFF with the near misses for the agent's context, and the ones above
    suggest_threshold as ``suggestions`` for the citizen."""
    ranked = sorted(hits, key=lambda h: -h.score)
    if not ranked:
        return Decision(Outcome.HANDOFF, (), 0.0)
    groups = translation_groups or {}
    top = ranked[0]
    settings = thresholds_used(settings, ranked)
    rivals = [h for h in ranked[1:] if not _same_question(top, h, groups)]
    margin = top.score - rivals[0].score if rivals else top.score
    if (
        top.score >= settings.answer_threshold - EPSILON
        and margin >= settings.answer_margin - EPSILON
    ):
        return Decision(Outcome.ANSWER, (top,), top.score)
    answer_confidence = getattr(settings, "answer_confidence", None)
    if (
        answer_confidence is not None
        and answer_confidence < CONFIDENCE_OFF
        and top.confidence > 0.0
        and top.score >= confidence_floor(settings) - EPSILON
        and confidence_lead(top, rivals) >= answer_confidence - EPSILON
    ):
        return Decision(Outcome.ANSWER, (top,), top.score)
    if top.score >= settings.clarify_threshold - EPSILON:
        return Decision(Outcome.CLARIFY, clarify_options(ranked, settings), top.score)
    return Decision(
        Outcome.HANDOFF,
        tuple(ranked[: max(1, settings.clarify_max_options)]),
        top.score,
        suggestions_for(ranked, settings),
    )


def explained(
    retriever: FaqRetriever, text: str, language: str | None, decision: Decision
) -> Decision:
    """``decision`` with the out-of-scope entry that took ``text`` when it is a handoff with
    nothing found (an entry ranking first leaves search() empty): staff then see the question
    as handed off by design, not as a gap. One more search, for those handoffs only."""
    if decision.outcome != Outcome.HANDOFF or decision.hits or decision.out_of_scope is not None:
        return decision
    entry = retriever.out_of_scope_match(text, language)
    return decision if entry is None else replace(decision, out_of_scope=entry)
