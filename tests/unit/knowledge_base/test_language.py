"""Language detection (real lingua models) and the rule that combines it with the channel hint."""

from __future__ import annotations

import pytest

from knowledge_base import language
from knowledge_base.language import Detection, LanguageDetector, choose, normalise


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector(["en", "es", "fr", "de", "pt", "it"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Can I bring my laptop through airport security?", "en"),
        ("¿Puedo llevar mi computadora portátil por el control de seguridad?", "es"),
        ("Puis-je apporter mon ordinateur portable dans l'avion ?", "fr"),
        ("Darf ich mein Taschenmesser im Handgepäck mitnehmen?", "de"),
        ("cuanta formula puedo llevar para mi bebe", "es"),
    ],
)
def test_real_detector_recognises_languages(detector, text, expected) -> None:
    detection = detector.detect(text)
    assert detection is not None
    assert detection.language == expected
    assert detection.confidence >= language.DETECT_CONFIDENCE


def test_detector_ignores_texts_without_letters(detector) -> None:
    assert detector.detect("") is None
    assert detector.detect("123 !!! 42") is None


def test_detector_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError, match="at least two"):
        LanguageDetector(["en"])
    with pytest.raises(ValueError, match="no language"):
        LanguageDetector(["en", "qq"]).detect("hello there friend")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("es-MX", "es"), ("ES_mx", "es"), (" fr ", "fr"), ("", None), (42, None), ("e", None)],
)
def test_normalise(value, expected) -> None:
    assert normalise(value) == expected


def fixed(lang: str, confidence: float):
    return lambda _text: Detection(lang, confidence)


def test_hint_wins_for_short_texts() -> None:
    # "gracias" / a product name on a Spanish page: too short to overrule the page language.
    choice = choose("laptop ok", "es", "en", detect=fixed("en", 1.0))
    assert (choice.language, choice.source) == ("es", "hint")


def test_long_confident_detection_overrides_the_hint() -> None:
    text = "puedo llevar mi computadora portatil en el avion"
    choice = choose(text, "en", "en", detect=fixed("es", 0.95))
    assert (choice.language, choice.source) == ("es", "detected")


def test_unsure_detection_keeps_the_hint() -> None:
    text = "puedo llevar mi computadora portatil en el avion"
    choice = choose(text, "en", "en", detect=fixed("es", 0.6))
    assert (choice.language, choice.source) == ("en", "hint")
    assert choice.detection == Detection("es", 0.6)


def test_without_hint_detection_or_default() -> None:
    assert choose("hola amigos", None, "en", detect=fixed("es", 0.75)).language == "es"
    assert choose("hola amigos", None, "en", detect=fixed("es", 0.5)).source == "default"
    assert choose("hola", None, "en", detect=fixed("es", 1.0)).source == "default"


def test_payloads_and_empty_texts_use_the_hint() -> None:
    calls: list[str] = []

    def detect(text: str) -> Detection:
        calls.append(text)
        return Detection("fr", 1.0)

    assert choose('/choose_faq{"faq_id": "x"}', "es", "en", detect=detect).language == "es"
    assert choose("   ", None, "en", detect=detect).language == "en"
    assert calls == []


def test_a_failing_detector_never_breaks_a_turn() -> None:
    def broken(_text: str) -> Detection:
        raise RuntimeError("model missing")

    text = "puedo llevar mi computadora portatil en el avion"
    assert choose(text, "es", "en", detect=broken).language == "es"
    assert choose(text, None, "en", detect=broken).language == "en"


def test_real_rule_on_mixed_signals(detector) -> None:
    spanish = "¿puedo llevar mi computadora portátil en el equipaje de mano?"
    assert choose(spanish, "en", "en", detect=detector.detect).language == "es"
    assert choose("gracias", "en", "en", detect=detector.detect).language == "en"
    english = "can I bring my laptop in my carry-on bag please"
    assert choose(english, "es", "en", detect=detector.detect).language == "en"


def test_detection_can_be_switched_off() -> None:
    assert language.get_detector(["en"]) is None
    assert language.get_detector([]) is None
    assert language.detect_function(["en", "EN"]) is None
    text = "puedo llevar mi computadora portatil en el avion"
    assert choose(text, "en", "en", detect=None).language == "en"


def test_one_detector_per_language_set() -> None:
    first = language.get_detector(["en", "es"])
    assert first is not None and language.get_detector(["es-MX", "en"]) is first
    assert language.get_detector(["en", "fr"]) is not first
