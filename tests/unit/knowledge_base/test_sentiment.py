"""Sentiment of citizen messages in English and Spanish (knowledge_base/sentiment.py), on the
labelled development file ``knowledge_base/sample/sentiment_dev.csv`` (40 messages per
language: questions, complaints and thanks) and on the rules Spanish needs."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from knowledge_base import sentiment
from knowledge_base.sentiment import compound, label

DEV = Path(__file__).parents[3] / "knowledge_base" / "sample" / "sentiment_dev.csv"


def scores(language: str) -> tuple[float, float, float]:
    """Accuracy over three labels, and precision and recall of "negative"."""
    rows = [r for r in csv.DictReader(DEV.open(encoding="utf-8")) if r["language"] == language]
    pairs = Counter((r["label"], label(compound(r["text"], language))) for r in rows)
    right = sum(n for (want, got), n in pairs.items() if want == got)
    hit = pairs[("negative", "negative")]
    said = sum(n for (_, got), n in pairs.items() if got == "negative")
    meant = sum(n for (want, _), n in pairs.items() if want == "negative")
    return right / len(rows), hit / said, hit / meant


@pytest.mark.parametrize(
    ("language", "accuracy", "precision", "recall"),
    # Measured 2026-12-05: en 0.825 / 0.917 / 0.786, es 0.900 / 0.917 / 0.786.
    [("en", 0.8, 0.9, 0.75), ("es", 0.85, 0.9, 0.75)],
)
def test_development_file(language: str, accuracy: float, precision: float, recall: float) -> None:
    got = scores(language)
    assert all(g >= w for g, w in zip(got, (accuracy, precision, recall), strict=True)), got


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("¿puedo llevar un cuchillo?", "neutral"),
        ("estoy muy enojada con el servicio", "negative"),  # "enojada" matches "enojado"
        ("no me sirve de nada, qué desastre", "negative"),  # "no ... nada" negates once
        ("no entiendo nada, esto es inútil", "negative"),  # the negation ends at the comma
        ("ESTO ES UNA VERGÜENZA!!!", "negative"),
        ("perfecto, gracias", "positive"),
        ("no es malo", "positive"),  # VADER's "not bad"
    ],
)
def test_spanish_rules(text: str, expected: str) -> None:
    assert label(compound(text, "es")) == expected


def test_languages_without_a_lexicon_are_not_scored() -> None:
    assert compound("c'est terrible", "fr") is None
    assert compound("   ", "en") is None
    assert compound("this is terrible", "en") < -0.4


def test_without_the_dictionary_spanish_keeps_the_projects_own_words() -> None:
    assert label(compound("esto es un desastre", "es", ())) == "negative"
    assert len(sentiment.analyzer("es", ()).vader.lexicon) < len(
        sentiment.analyzer("es").vader.lexicon
    )


def test_feelings_are_not_topics() -> None:
    assert sentiment.is_sentiment_word("ridiculous") and sentiment.is_sentiment_word("enojada")
    assert not sentiment.is_sentiment_word("line") and not sentiment.is_sentiment_word("fila")
