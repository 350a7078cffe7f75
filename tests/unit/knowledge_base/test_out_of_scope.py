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
from tests.unit.kb_tiny import TINY_KB, shared_embedder

BOOKINGS = FaqRecord(
    id="out-of-scope-bookings",
    language="en",
    question="how do I change my flight booking",
    answer="Bookings are handled by the airline.",
    category="Out of scope",
    variants=(
        "can I get a refund for my plane ticket",
        "how do i cancel my flight",
        "change the date of my flight",
        "airline ticket refund",
    ),
    kind=FaqKind.OUT_OF_SCOPE,
)
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
