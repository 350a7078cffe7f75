"""Retriever scoring/grouping and the hot-reloading RetrieverHandle."""

from __future__ import annotations

import os
import threading
import time

import pytest

from knowledge_base.index import CURRENT_FILE, IndexLoadError, build_bundle, save_bundle
from knowledge_base.retriever import (
    SCORERS,
    LanguageOptions,
    Retriever,
    RetrieverHandle,
    clean_query,
)
from knowledge_base.types import FaqRecord
from tests.unit.kb_tiny import TINY_KB, shared_embedder


@pytest.fixture(scope="module")
def bundle():
    return build_bundle(TINY_KB, shared_embedder())


@pytest.fixture(scope="module")
def retriever(bundle):
    return Retriever(bundle, shared_embedder(), max_chars=200)


def test_hits_grouped_per_faq_best_first(retriever):
    hits = retriever.search("is a swiss army knife ok in my hand luggage", k=10)
    ids = [h.faq_id for h in hits]
    assert ids[0] == "knives"
    assert len(ids) == len(set(ids))  # one hit per FAQ
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)
    top = hits[0]
    assert top.answer.startswith("Knives") and top.source_url == "https://example.gov/knives"
    assert top.matched_text == "is a swiss army knife allowed in hand luggage"


@pytest.mark.parametrize(
    "query,expected",
    [
        ("can I take shampoo on the plane", "liquids"),
        ("what identification should I show", "id-docs"),
        # Not "my dog at the checkpoint": it shares "at the checkpoint" with id-docs' question,
        # and scoring each FAQ by its best row (retriever.TOP_VARIANTS) ranks id-docs first at
        # 0.46 against 0.44 (a handoff either way; the development file measured the trade).
        ("travelling with my dog", "pets"),
    ],
)
def test_every_scorer_finds_the_obvious_faq(bundle, query, expected):
    for scorer in SCORERS:
        hits = Retriever(bundle, shared_embedder(), scorer=scorer).search(query, k=3)
        assert hits[0].faq_id == expected, scorer


def test_unrelated_question_scores_low(retriever):
    related = retriever.search("can I bring a water bottle through security", k=1)[0].score
    unrelated = retriever.search("what is the capital of mongolia", k=1)[0].score
    assert related > 0.45
    assert unrelated < 0.3
    assert related - unrelated > 0.2


def test_language_filter_and_k(retriever):
    hits = retriever.search("líquidos en el equipaje de mano", k=5, language="es")
    assert [h.faq_id for h in hits] == ["liquidos"]
    assert retriever.search("liquids", k=5, language="fr") == []
    assert len(retriever.search("liquids", k=2)) == 2


def test_empty_and_long_queries(retriever):
    assert retriever.search("") == []
    assert retriever.search("   \n\t ") == []
    assert retriever.search(None) == []  # type: ignore[arg-type]
    assert retriever.search("knife", k=0) == []
    long = "can I pack a pocket knife " + "x" * 50_000
    assert retriever.search(long, k=1)[0].faq_id == "knives"
    assert clean_query("  a \n b  ", 100) == "a b"
    assert len(clean_query("y" * 5000, 200)) == 200


def test_search_many_matches_search(retriever):
    queries = ["pocket knife", "", "passport for domestic flights"]
    batch = retriever.search_many(queries, k=3)
    assert batch[1] == []
    for query, hits in zip(queries, batch, strict=True):
        single = retriever.search(query, k=3)
        assert [h.faq_id for h in hits] == [h.faq_id for h in single]
        assert [h.score for h in hits] == pytest.approx([h.score for h in single], abs=1e-4)


def test_unknown_scorer(bundle):
    with pytest.raises(ValueError, match="Unknown scorer"):
        Retriever(bundle, shared_embedder(), scorer="magic")


def test_handle_hot_reloads_and_survives_a_corrupt_version(bundle, tmp_path):
    with pytest.raises(IndexLoadError):
        RetrieverHandle(tmp_path, shared_embedder()).get()
    save_bundle(bundle, tmp_path)
    handle = RetrieverHandle(tmp_path, shared_embedder())
    first = handle.get()
    assert handle.get() is first  # unchanged CURRENT: same object, no reload
    assert first.search("lost and found", k=1)[0].faq_id != "lost"

    added = [
        *TINY_KB,
        FaqRecord(
            id="lost",
            language="en",
            question="Where is lost and found?",
            answer="Ask at the information desk.",
        ),
    ]
    new_version = save_bundle(build_bundle(added, shared_embedder(), previous=bundle), tmp_path)
    second = handle.get()
    assert second is not first and second.version == new_version
    assert second.search("where is the lost and found office", k=1)[0].faq_id == "lost"
    # The old retriever still works for requests that already hold it.
    assert first.search("pocket knife", k=1)[0].faq_id == "knives"

    # A corrupt new version: keep serving the previous one and say why.
    bad = save_bundle(bundle, tmp_path)
    (tmp_path / bad / "vectors.npy").write_bytes(b"garbage")
    assert handle.get() is second
    assert handle.last_error and "corrupt" in handle.last_error
    assert handle.get() is second  # not retried on every request

    # Fixing it (a new good version) clears the error.
    good = save_bundle(bundle, tmp_path)
    assert handle.get().version == good and handle.last_error is None


def test_handle_serves_during_concurrent_swaps(bundle, tmp_path):
    save_bundle(bundle, tmp_path)
    handle = RetrieverHandle(tmp_path, shared_embedder())
    handle.get()
    failures: list[Exception] = []
    stop = threading.Event()

    def ask() -> None:
        while not stop.is_set():
            try:
                assert handle.get().search("pocket knife", k=1)[0].faq_id == "knives"
            except Exception as exc:  # noqa: BLE001
                failures.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(4):
        save_bundle(bundle, tmp_path)
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    assert failures == []
    assert handle.reloads >= 2


def test_handle_notices_same_second_rewrite(bundle, tmp_path):
    save_bundle(bundle, tmp_path)
    handle = RetrieverHandle(tmp_path, shared_embedder())
    handle.get()
    version = save_bundle(bundle, tmp_path)
    st = os.stat(tmp_path / CURRENT_FILE)
    os.utime(tmp_path / CURRENT_FILE, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert handle.get().version == version


def test_hits_carry_classifier_confidence_without_changing_ranking(bundle):
    query = "is a swiss army knife ok in my hand luggage"
    hits = Retriever(bundle, shared_embedder(), max_chars=200).search(query, k=10)
    confidences = [h.confidence for h in hits]
    assert all(0.0 < c <= 1.0 for c in confidences)
    assert sum(confidences) <= 1.0 + 1e-6  # probabilities over all FAQs, hits are a subset
    assert hits[0].faq_id == "knives" and hits[0].confidence == max(confidences)
    # Restricted to one language the probabilities are renormalised over its FAQs.
    english = Retriever(bundle, shared_embedder(), max_chars=200).search(query, language="en")
    assert [h.faq_id for h in english][:3] == [h.faq_id for h in hits if h.language == "en"][:3]
    assert english[0].confidence >= hits[0].confidence
    # Scorers without the classifier report no confidence.
    hybrid = Retriever(bundle, shared_embedder(), scorer="hybrid").search(query, k=3)
    assert all(h.confidence == 0.0 for h in hybrid)


# Two Spanish FAQs next to the tiny English KB.
SPANISH = [
    FaqRecord(
        id="knives-es",
        language="es",
        question="¿Puedo llevar una navaja?",
        answer="Las navajas solo en el equipaje facturado.",
        category="items",
        source_url="https://example.gov/knives",
        translation_group="knives",
        variants=("cuchillo en la mochila", "navaja suiza en el equipaje de mano"),
    ),
    FaqRecord(
        id="liquids-es",
        language="es",
        question="¿Puedo llevar líquidos?",
        answer="Envases de 100 ml o menos en una bolsa transparente.",
        category="items",
        source_url="https://example.gov/liquids",
        translation_group="liquids",
        variants=("champú en el equipaje de mano", "botella de agua en el control"),
    ),
]


def test_handle_prepares_other_languages_before_serving_a_new_version(tmp_path):
    """A reloaded bundle is swapped in with its Spanish scorer already built, so the first
    Spanish question after a publish does not wait for it."""
    bundle = build_bundle([*TINY_KB, *SPANISH], shared_embedder())
    save_bundle(bundle, tmp_path)
    handle = RetrieverHandle(tmp_path, shared_embedder())
    retriever = handle.get()
    # Start-up: built before the first question.
    assert set(retriever._language_scorers) == {"es"}
    assert retriever._language_scorers["es"] is not None
    assert retriever.search("navaja en la mochila", k=1, language="es")[0].faq_id == "knives-es"

    # A publish: the new version serves at once, its Spanish scorer follows in the background.
    save_bundle(bundle, tmp_path)
    reloaded = handle.get()
    assert reloaded is not retriever
    for builder in [t for t in threading.enumerate() if t.name == "prepare-languages"]:
        builder.join(timeout=60)  # (it may have finished already)
    assert reloaded._language_scorers.get("es") is not None
    assert reloaded._predecessor is None  # released once its own scorer was built


def test_a_new_version_leaves_other_languages_to_its_predecessor_until_built(tmp_path):
    """During the build after a publish (seconds, more on busy cores), a Spanish question is
    answered by the version being replaced instead of waiting for the build on the request
    path; English, scored by the bundle's own index, is the new version's at once."""
    old = Retriever(
        build_bundle([*TINY_KB, *SPANISH], shared_embedder()),
        shared_embedder(),
        languages=LanguageOptions(main_language="en"),
    )
    old.prepare_languages()
    new = Retriever(
        build_bundle([*TINY_KB, *SPANISH], shared_embedder()),
        shared_embedder(),
        languages=LanguageOptions(main_language="en"),
    )
    new.succeed(old)
    hits = new.search("navaja en la mochila", k=1, language="es")
    assert hits[0].faq_id == "knives-es"
    assert new._language_scorers == {}  # nothing was built on the request path
    assert new.search("pocket knife", k=1, language="en")[0].faq_id == "knives"
    assert new._language_scorers == {}
    assert new.prepare_languages() == ["es"]
    assert new._predecessor is None
    assert new.search("navaja en la mochila", k=1, language="es")[0].faq_id == "knives-es"


def test_quick_successive_publishes_answer_from_the_newest_ready_version(tmp_path):
    """Two publishes closer together than a build (busy cores): the middle version has not
    built its Spanish scorer either, so the newest answers through the chain from the last
    ready version, and the superseded version stops building (CI saw the question wait for
    the build past Rasa's action timeout)."""
    options = LanguageOptions(main_language="en")
    ready = Retriever(
        build_bundle([*TINY_KB, *SPANISH], shared_embedder()), shared_embedder(), languages=options
    )
    ready.prepare_languages()
    middle = Retriever(
        build_bundle([*TINY_KB, *SPANISH], shared_embedder()), shared_embedder(), languages=options
    )
    middle.succeed(ready)
    newest = Retriever(
        build_bundle([*TINY_KB, *SPANISH], shared_embedder()), shared_embedder(), languages=options
    )
    newest.succeed(middle)

    assert newest.search("navaja en la mochila", k=1, language="es")[0].faq_id == "knives-es"
    assert newest._language_scorers == {} and middle._language_scorers == {}

    assert middle.prepare_languages(wanted=lambda: False) == []  # superseded: builds nothing
    assert middle._language_scorers == {}
    assert newest.prepare_languages(wanted=lambda: True) == ["es"]
    assert newest._predecessor is None
