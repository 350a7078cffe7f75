"""Out-of-scope entries (issue 20): examples of what the service does not answer.

A question that resembles one of them more than any FAQ gets no hits (decide() hands it to a
person); otherwise they never appear among the hits (options, suggestions) or related FAQs."""

from __future__ import annotations

import pytest

from askagency.config import Settings
from knowledge_base.decision import decide
from knowledge_base.index import build_bundle
from knowledge_base.related import default_related, related_faqs
from knowledge_base.retriever import Retriever
from knowledge_base.types import FaqKind, FaqRecord, Outcome
from tests.unit.kb_tiny import BOOKINGS, TINY_KB, shared_embedder

# An out-of-scope entry filed under an FAQ category: still never related to its FAQs.
LIQUID_SHOPS = FaqRecord(
    id="out-of-scope-liquid-shops",
    language="en",
    question="which terminal shop sells travel size shampoo",
    answer="Shops are run by the airport.",
    category="items",
    variants=("where can I buy mini toiletries at the airport",),
    kind=FaqKind.OUT_OF_SCOPE,
)
LIQUIDS_MORE = FaqRecord(
    id="liquids-more",
    language="en",
    question="Is toothpaste a liquid?",
    answer="Yes, toothpaste counts as a liquid.",
    category="items",
    variants=("does toothpaste count as a gel",),
    related=("out-of-scope-liquid-shops", "liquids"),
)


@pytest.fixture(scope="module")
def retriever() -> Retriever:
    kb = [*TINY_KB, LIQUIDS_MORE, BOOKINGS, LIQUID_SHOPS]
    return Retriever(build_bundle(kb, shared_embedder()), shared_embedder())


@pytest.fixture(scope="module")
def without_entries() -> Retriever:
    kb = [*TINY_KB, LIQUIDS_MORE]
    return Retriever(build_bundle(kb, shared_embedder()), shared_embedder())


def test_a_question_like_an_out_of_scope_example_gets_no_hits(
    retriever: Retriever, without_entries: Retriever
) -> None:
    question = "can I get my money back for a cancelled plane ticket"
    # Without the entry the nearest FAQ is returned (and may be answered or offered) ...
    assert without_entries.search(question, k=3)
    # ... with it the question has no hits, in both search paths, so the bot hands off.
    assert retriever.search(question, k=3) == []
    assert retriever.search_many([question, "is a swiss army knife ok"], k=3)[0] == []
    assert decide(retriever.search(question, k=3), Settings()).outcome is Outcome.HANDOFF


def test_out_of_scope_entries_are_never_among_the_hits(retriever: Retriever) -> None:
    for question in (
        "can I take shampoo on the plane",
        "is a swiss army knife ok in my hand luggage",
        "travelling with my dog",
    ):
        hits = retriever.search(question, k=10)
        assert hits, question
        assert all(not h.faq_id.startswith("out-of-scope") for h in hits), question
    many = retriever.search_many(["can I take shampoo on the plane"], k=10)[0]
    assert many and all(not h.faq_id.startswith("out-of-scope") for h in many)


def test_out_of_scope_entries_are_never_related(retriever: Retriever) -> None:
    bundle = retriever.bundle
    # Staff's list names one: it is skipped, the rest is kept in order.
    assert [r.id for r in related_faqs(bundle, "liquids-more", 3)] == ["liquids"]
    # The nearest FAQs of the category (offered when staff set no list) leave it out too.
    nearest = [r.id for r in default_related(bundle, "liquids", 3)]
    assert sorted(nearest) == ["knives", "liquids-more"]


def test_an_index_without_kinds_reads_every_entry_as_an_answer() -> None:
    """Bundles written before kinds existed have no "kind" in faqs.json: answers."""
    assert FaqRecord(id="x", language="en", question="q", answer="a").kind == FaqKind.ANSWER
    assert not FaqRecord(id="x", language="en", question="q", answer="a").out_of_scope
    assert BOOKINGS.out_of_scope


def test_building_without_out_of_scope_entries_warns_until_thresholds_are_tuned() -> None:
    """The default thresholds expect out-of-scope entries in the main language (they take the
    questions not answered); `kb build-index` says so when there are none and nobody tuned the
    thresholds for this KB (`kb evaluate --apply` records thresholds_model)."""
    from knowledge_base import cli_index

    def warning(records: list[FaqRecord], settings: Settings) -> str:
        with cli_index.err_console.capture() as captured:
            cli_index._warn_without_out_of_scope(records, settings)
        return " ".join(captured.get().split())

    defaults = Settings(default_language="en")
    assert "no out-of-scope entries in en" in warning(list(TINY_KB), defaults)
    assert "`askagency kb calibrate --apply` without labelled questions" in warning(
        list(TINY_KB), defaults
    )
    assert warning([*TINY_KB, BOOKINGS], defaults) == ""
    tuned = Settings(default_language="en", thresholds_model="some-model;scoring=2")
    assert warning(list(TINY_KB), tuned) == ""
    # Only Spanish answers: the main language has nothing to answer, nothing to warn about.
    assert warning([r for r in TINY_KB if r.language == "es"], defaults) == ""


def test_evaluate_names_the_entry_that_took_an_in_scope_question(retriever: Retriever) -> None:
    """An entry that reaches into what the KB answers shows in `kb evaluate`: the count of
    in-scope questions it took, and the confusion names it instead of "(no result)"."""
    from knowledge_base.evaluate import OUT_OF_SCOPE, evaluate

    labelled = [
        # Labelled in scope (as if the KB answered refunds), taken by the bookings entry.
        ("refund for my plane ticket please", "liquids"),
        ("can I take shampoo on the plane", "liquids"),
        ("how do i cancel my flight", OUT_OF_SCOPE),
    ]
    report = evaluate(retriever, labelled, Settings(), sweep=False, language="en")
    assert report.taken_by_out_of_scope == 1
    assert [(c.expected, c.got, c.example) for c in report.confusions] == [
        ("liquids", "out-of-scope-bookings", "refund for my plane ticket please")
    ]
    assert report.to_dict()["taken_by_out_of_scope"] == 1
    # Not counted when confusions are not wanted (the held-out halves): no second search.
    quiet = evaluate(retriever, labelled, Settings(), sweep=False, language="en", max_confusions=0)
    assert quiet.taken_by_out_of_scope is None and quiet.confusions == []


def test_a_language_without_entries_is_decided_at_its_own_defaults() -> None:
    """The defaults were chosen with out-of-scope entries; a language of the KB without any
    gets thresholds_without_out_of_scope instead (decision.for_index), for each threshold
    the agency did not set, in the main language's fields or in language_thresholds."""
    from knowledge_base.decision import for_index, thresholds_for

    defaults = Settings()
    no_entries = for_index(defaults, frozenset())
    profile = defaults.thresholds_without_out_of_scope
    for name, value in profile["en"].items():
        assert getattr(no_entries, name) == value
        assert getattr(defaults, name) != value  # the entries' defaults are another set
    assert no_entries.answer_threshold == defaults.answer_threshold  # not in the profile
    spanish = thresholds_for(no_entries, "es")
    assert spanish.clarify_threshold == profile["es"]["clarify_threshold"]
    assert spanish.answer_threshold == defaults.language_thresholds["es"]["answer_threshold"]
    # Entries in a language keep its defaults; the other language still changes.
    english_only = for_index(defaults, {"en"})
    assert english_only.clarify_threshold == defaults.clarify_threshold
    assert (
        thresholds_for(english_only, "es").clarify_threshold == profile["es"]["clarify_threshold"]
    )
    assert for_index(defaults, {"en", "es"}) is defaults
    # What the agency set is never replaced.
    tuned = Settings(clarify_threshold=0.42, language_thresholds={"es": {"clarify_threshold": 0.3}})
    kept = for_index(tuned, frozenset())
    assert kept.clarify_threshold == 0.42
    assert kept.answer_confidence == profile["en"]["answer_confidence"]
    assert thresholds_for(kept, "es").clarify_threshold == 0.3


def test_the_index_decides_which_defaults_apply(
    retriever: Retriever, without_entries: Retriever
) -> None:
    """Through the real retriever: `kb evaluate` (and so the sweep, the action server's and
    the console's decisions, which call decision.for_retriever the same way) reports the
    thresholds for a KB without entries only on the index without them."""
    from knowledge_base.evaluate import evaluate

    labelled = [("can I take shampoo on the plane", "liquids")]
    defaults = Settings()
    with_them = evaluate(retriever, labelled, defaults, sweep=False, language="en")
    assert retriever.out_of_scope_languages == frozenset({"en"})
    assert with_them.thresholds["clarify_threshold"] == defaults.clarify_threshold
    without = evaluate(without_entries, labelled, defaults, sweep=False, language="en")
    assert without_entries.out_of_scope_languages == frozenset()
    assert (
        without.thresholds["clarify_threshold"]
        == defaults.thresholds_without_out_of_scope["en"]["clarify_threshold"]
    )
