"""The per-language scorer: accent folding, lexical + dense + classifier ranking, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge_base.language_scorer import LanguageScorer, fold

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
