"""Conflict detection (a variant closer to another FAQ than its own) and near-duplicates."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge_base.conflicts import conflicts_for, detect_conflicts, find_conflicts
from knowledge_base.health import find_near_duplicates
from knowledge_base.types import FaqRecord


def unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


LIQUIDS = FaqRecord(
    id="liquids",
    language="en",
    question="Can I bring liquids?",
    answer="3.4 oz",
    variants=("shampoo in carry-on?", "can I take my laptop out"),
)
LAPTOPS = FaqRecord(
    id="laptops",
    language="en",
    question="Do laptops come out of the bag?",
    answer="Yes",
    variants=("electronics in bins?",),
)
# Axis 0 = liquids topic, axis 1 = electronics topic.
VECTORS = {
    "Can I bring liquids?": unit(1, 0.05),
    "shampoo in carry-on?": unit(0.95, 0.1),
    "can I take my laptop out": unit(0.1, 1),  # misfiled: it is about laptops
    "Do laptops come out of the bag?": unit(0.05, 1),
    "electronics in bins?": unit(0.04, 1),
}


def fake_embed(texts: list[str]) -> np.ndarray:
    return np.stack([VECTORS[t] for t in texts])


def test_flags_the_misfiled_variant_only() -> None:
    conflicts = detect_conflicts([LIQUIDS, LAPTOPS], fake_embed)
    assert [(c.faq_id, c.text, c.other_faq_id) for c in conflicts] == [
        ("liquids", "can I take my laptop out", "laptops")
    ]
    conflict = conflicts[0]
    assert conflict.other_text == "Do laptops come out of the bag?"
    assert conflict.other_score > conflict.own_score
    assert conflict.gap == pytest.approx(conflict.other_score - conflict.own_score)
    assert not conflict.is_canonical
    assert conflict.to_dict()["gap"] > 0.5


def test_margin_suppresses_borderline_cases() -> None:
    assert detect_conflicts([LIQUIDS, LAPTOPS], fake_embed, margin=0.95) == []


def test_languages_are_never_compared() -> None:
    spanish = FaqRecord(
        id="laptops-es", language="es", question="Do laptops come out of the bag?", answer="Sí"
    )
    english_only = FaqRecord(
        id="liquids",
        language="en",
        question="Can I bring liquids?",
        answer="x",
        variants=("can I take my laptop out",),
    )
    # The only close text lives in another language: no conflict.
    assert detect_conflicts([english_only, spanish], fake_embed) == []


def test_single_text_faqs_are_only_the_other_side() -> None:
    lonely = FaqRecord(id="lonely", language="en", question="electronics in bins?", answer="x")
    texts = [LAPTOPS.question, *LAPTOPS.variants, lonely.question]
    vectors = np.stack([VECTORS[t] for t in texts])
    conflicts = find_conflicts([LAPTOPS, lonely], vectors)
    # "electronics in bins?" exists in both; LAPTOPS' copy is closer to lonely's (1.0).
    assert [(c.faq_id, c.other_faq_id) for c in conflicts] == [("laptops", "lonely")]
    assert conflicts_for(conflicts, "lonely") == conflicts
    assert conflicts_for(conflicts, "liquids") == []


def test_vector_count_must_match() -> None:
    with pytest.raises(ValueError, match="expected 5 vectors"):
        find_conflicts([LIQUIDS, LAPTOPS], np.zeros((2, 2), dtype=np.float32))


def test_near_duplicates_need_same_language_and_similar_answers() -> None:
    records = [
        FaqRecord(id="a", language="en", question="q1", answer="x"),
        FaqRecord(id="b", language="en", question="q2", answer="x"),
        FaqRecord(id="c", language="es", question="q3", answer="x"),
        FaqRecord(id="d", language="en", question="q4", answer="x"),
        FaqRecord(id="e", language="en", question="q5", answer="y"),
    ]
    questions = np.stack([unit(1, 0), unit(1, 0.3), unit(1, 0), unit(0, 1), unit(1, 0.31)])
    answers = np.stack([unit(1, 0), unit(1, 0.05), unit(1, 0), unit(1, 0), unit(0, 1)])
    pairs = find_near_duplicates(
        records, questions, answers, threshold=0.9, answer_threshold=0.9, question_only=1.01
    )
    # a/b: similar questions and answers. a/e and b/e: similar questions, different answers.
    # a/c: other language. d: a different question.
    assert [(p.faq_id, p.other_faq_id) for p in pairs] == [("a", "b")]
    assert pairs[0].score == pytest.approx(float(unit(1, 0) @ unit(1, 0.3)), abs=1e-4)
    identical = find_near_duplicates(
        records[:1] + records[4:], questions[[0, 0]], answers[[0, 4]], question_only=0.99
    )
    assert [(p.faq_id, p.other_faq_id) for p in identical] == [("a", "e")]


@pytest.mark.slow
def test_real_model_flags_a_variant_filed_under_the_wrong_faq() -> None:
    from askagency.config import bundled_model_path
    from knowledge_base.embedder import Embedder

    embedder = Embedder(bundled_model_path())
    records = [
        FaqRecord(
            id="liquids",
            language="en",
            question="Can I bring liquids in my carry-on bag?",
            answer="x",
            variants=(
                "How much liquid can I take in hand luggage?",
                "Is there a limit on liquids in carry-on?",
                "Do I need to take my laptop out at security?",
            ),
        ),
        FaqRecord(
            id="laptops",
            language="en",
            question="Do I have to take my laptop out of my bag at security?",
            answer="x",
            variants=("Must I remove my computer from the bag for screening?",),
        ),
    ]
    conflicts = detect_conflicts(records, embedder.encode, margin=0.1)
    assert [(c.faq_id, c.text, c.other_faq_id) for c in conflicts] == [
        ("liquids", "Do I need to take my laptop out at security?", "laptops")
    ]
