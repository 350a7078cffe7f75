"""LanguageDetector's low-accuracy mode (measured in bench/bench_memory.py: 16 MB instead of
182 MB for 12 languages, but confident mistakes on short texts, so it is not the default)."""

from __future__ import annotations

from knowledge_base.language import LanguageDetector


def test_low_accuracy_mode_is_opt_in_and_still_detects_clear_sentences() -> None:
    assert LanguageDetector(["en", "es"]).low_accuracy is False
    detector = LanguageDetector(["en", "es", "fr"], low_accuracy=True)
    found = detector.detect("¿Dónde puedo renovar mi pasaporte si vivo en el extranjero?")
    assert found is not None and found.language == "es"
    found = detector.detect("Where can I renew my passport if I live abroad?")
    assert found is not None and found.language == "en"
