"""The per-language scorer: accent folding, lexical + dense + classifier ranking, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge_base.language_scorer import LanguageScorer
from knowledge_base.text import fold, word_analyzer

TEXTS = [
    "¿Puedo llevar un cuchillo?",
    "navaja en la mochila",
    "¿Necesito REAL ID para volar?",
    "identificación para el avión",
    "¿Puedo llevar líquidos?",
    "champú en el equipaje de mano",
]
OFFSETS = [0, 2, 4, 6]
POSITIONS = [10, 11, 12]  # bundle positions of the three FAQs


def fake_vectors(texts: list[str]) -> np.ndarray:
    """Deterministic unit vectors by first letter: enough signal to test the plumbing."""
    out = np.zeros((len(texts), 8), dtype=np.float32)
    for i, text in enumerate(texts):
        out[i, ord(fold(text)[0]) % 8] = 1.0
        out[i, len(text) % 8] += 0.5
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def scorer() -> LanguageScorer:
    return LanguageScorer(POSITIONS, TEXTS, OFFSETS, fake_vectors(TEXTS), fake_vectors)


def test_fold_removes_case_and_accents() -> None:
    assert fold("¿Qué LÍQUIDOS? Champú") == "¿que liquidos? champu"


def test_ranks_the_faq_sharing_words_first_without_accents() -> None:
    [ranked] = scorer().score(["necesito real id para volar"])
    positions = [r[0] for r in ranked]
    assert positions[0] == 11 and sorted(positions) == POSITIONS
    pos, score, dense, lexical, prob, best, confidence = ranked[0]
    assert 0 < score <= 1 and lexical > 0.5
    assert TEXTS[best] == "¿Necesito REAL ID para volar?"
    assert abs(sum(r[6] for r in ranked) - 1.0) < 1e-5  # classifier probabilities

    [ranked] = scorer().score(["liquidos en la maleta"])
    assert ranked[0][0] == 12
    assert scorer().score([]) == []


def test_bad_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="offsets"):
        LanguageScorer(POSITIONS, TEXTS, [0, 2, 6], fake_vectors(TEXTS), fake_vectors)
    with pytest.raises(ValueError, match="one vector per row"):
        LanguageScorer(POSITIONS, TEXTS, OFFSETS, fake_vectors(TEXTS[:3]), fake_vectors)


def test_a_single_faq_scores_without_a_classifier() -> None:
    single = LanguageScorer([3], TEXTS[:2], [0, 2], fake_vectors(TEXTS[:2]), fake_vectors)
    [ranked] = single.score(["cuchillo"])
    assert ranked[0][0] == 3 and ranked[0][6] == 0.0


def test_word_analyzer_stems_spanish_and_folds_accents() -> None:
    analyze = word_analyzer("es")
    assert analyze("Pastillas") == analyze("pastilla")
    assert analyze("¿Identificación?") == analyze("identificaciones")
    assert word_analyzer("xx")("Pastillas y más") == ["pastillas", "mas"]  # no stemmer: words


def test_inflected_words_match_as_whole_words() -> None:
    texts = ["medicamentos recetados", "pastilla en el avión", "bolsa de líquidos", "bolsa ziploc"]
    scored = LanguageScorer(
        [1, 2], texts, [0, 2, 4], fake_vectors(texts), fake_vectors, language="es"
    )
    [ranked] = scored.score(["llevo mis pastillas"])
    assert ranked[0][0] == 1


def test_translation_rows_lift_their_faq() -> None:
    """Two FAQs the Spanish side cannot tell apart; the query is near the second FAQ's
    translation only, so the pivot signal decides."""
    texts = ["pregunta uno", "pregunta uno bis", "pregunta dos", "pregunta dos bis"]
    vectors = np.tile(np.eye(8, dtype=np.float32)[0], (4, 1))
    pivots = np.eye(8, dtype=np.float32)[[1, 2]]
    query = np.eye(8, dtype=np.float32)[[2]]

    def encode(_texts: list[str]) -> np.ndarray:
        return query

    scored = LanguageScorer(
        [5, 6], texts, [0, 2, 4], vectors, encode, pivot_vectors=pivots, pivot_offsets=[0, 1, 2]
    )
    [ranked] = scored.score(["pregunta"])
    assert ranked[0][0] == 6 and ranked[0][1] > ranked[1][1]
    no_pivot = LanguageScorer([5, 6], texts, [0, 2, 4], vectors, encode)
    [flat] = no_pivot.score(["pregunta"])
    with_pivot = {r[0]: r[1] for r in ranked}
    without = {r[0]: r[1] for r in flat}
    assert with_pivot[6] - with_pivot[5] > without[6] - without[5]
    with pytest.raises(ValueError, match="pivot_offsets"):
        LanguageScorer([5, 6], texts, [0, 2, 4], vectors, encode, pivot_vectors=pivots)


def test_texts_without_words_still_score_on_characters() -> None:
    texts = ["1 2", "3 4", "5 6", "7 8"]
    scored = LanguageScorer([0, 1], texts, [0, 2, 4], fake_vectors(texts), fake_vectors)
    [ranked] = scored.score(["5 6"])
    assert ranked[0][0] == 1


def test_an_faq_without_translation_is_not_penalised() -> None:
    """Only the first FAQ has a translation row; the second's score is the same as with no
    translation signal at all (it is averaged over the signals it has)."""
    texts = TEXTS[:4]
    pivots = fake_vectors(["cuchillo"])
    mixed = LanguageScorer(
        POSITIONS[:2],
        texts,
        [0, 2, 4],
        fake_vectors(texts),
        fake_vectors,
        pivot_vectors=pivots,
        pivot_offsets=[0, 1, 1],
    )
    plain = LanguageScorer(POSITIONS[:2], texts, [0, 2, 4], fake_vectors(texts), fake_vectors)
    [with_pivot] = mixed.score(["identificación para volar"])
    [without] = plain.score(["identificación para volar"])
    second = POSITIONS[1]
    assert {r[0]: r[1] for r in with_pivot}[second] == pytest.approx(
        {r[0]: r[1] for r in without}[second], rel=1e-5
    )
    assert {r[0]: r[1] for r in with_pivot}[second] > 0.3


def test_translated_question_lifts_the_faq_of_its_translation() -> None:
    """The Spanish side cannot tell the two FAQs apart and the raw question is far from both
    translations; its word-by-word translation is near the second FAQ's, so that decides."""
    texts = ["pregunta uno", "pregunta uno bis", "pregunta dos", "pregunta dos bis"]
    vectors = np.tile(np.eye(8, dtype=np.float32)[0], (4, 1))
    pivots = np.eye(8, dtype=np.float32)[[1, 2]]
    seen: list[str] = []

    def encode(batch: list[str]) -> np.ndarray:
        seen.extend(batch)
        return np.stack(
            [np.eye(8, dtype=np.float32)[2 if t == "question two" else 3] for t in batch]
        )

    def build(translate: object) -> LanguageScorer:
        return LanguageScorer(
            [5, 6],
            texts,
            [0, 2, 4],
            vectors,
            encode,
            pivot_vectors=pivots,
            pivot_offsets=[0, 1, 2],
            translate=translate,  # type: ignore[arg-type]
        )

    [ranked] = build(lambda text: "question two").score(["pregunta dos"])
    assert ranked[0][0] == 6 and ranked[0][1] > ranked[1][1]
    assert seen == ["pregunta dos", "question two"]
    [flat] = build(None).score(["pregunta dos"])
    lead = {r[0]: r[1] for r in ranked}
    lead_without = {r[0]: r[1] for r in flat}
    assert lead[6] - lead[5] > lead_without[6] - lead_without[5] + 0.1
