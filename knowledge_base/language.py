"""Which language a citizen writes in: the detector's view combined with the channel's hint.

Detection uses lingua-language-detector, whose n-gram models ship inside the wheel (nothing is
downloaded at run time). It is restricted to the agency's ``detect_languages``: fewer candidates
mean fewer confusions (Spanish vs Italian/Portuguese) and less memory (+117 MB for two
languages, +198 MB for the default twelve, measured).
On the sample's labelled queries it made no confident mistake (357 English, 113 Spanish), where
langdetect confidently called 2 English and 7 Spanish queries French, Italian or Portuguese.

The rule (documented in docs/languages.md), because short texts are unreliable:

1. The *hint* is the language the channel states for this message (widget page language, message
   metadata ``language``), else the language of the conversation so far (the ``language`` slot).
2. With a hint, detection overrides it only when the text is long enough (>= ``OVERRIDE_WORDS``
   words and >= ``OVERRIDE_LETTERS`` letters) and the detector is confident (>=
   ``OVERRIDE_CONFIDENCE``): a Spanish speaker on an English page who writes a full sentence in
   Spanish gets Spanish, while "ok", "gracias" or a product name keep the page language.
3. Without a hint, detection wins when it is confident (>= ``DETECT_CONFIDENCE``) on at least
   ``DETECT_WORDS`` words; otherwise the agency's default language.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

logger = logging.getLogger(__name__)

DETECT_CONFIDENCE = 0.7
DETECT_WORDS = 2
OVERRIDE_CONFIDENCE = 0.7
OVERRIDE_WORDS = 4
OVERRIDE_LETTERS = 20

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)

Source = Literal["detected", "hint", "default"]


@dataclass(frozen=True)
class Detection:
    language: str  # ISO 639-1, lower case
    confidence: float  # 0..1, relative to the other candidate languages


@dataclass(frozen=True)
class LanguageChoice:
    language: str
    source: Source
    detection: Detection | None = None


def normalise(value: Any) -> str | None:
    """``"es-MX"`` / ``"ES_mx"`` -> ``"es"``; anything that is not a plausible tag -> None."""
    if not isinstance(value, str):
        return None
    primary = value.strip().replace("_", "-").split("-")[0].lower()
    if 2 <= len(primary) <= 3 and primary.isalpha():
        return primary
    return None


class LanguageDetector:
    """A lingua detector for a fixed set of languages, built on first use (about 3 s for 12
    languages): importing this module stays cheap for processes that never detect."""

    def __init__(self, languages: Iterable[str], *, low_accuracy: bool = False) -> None:
        self.low_accuracy = low_accuracy
        self.languages = tuple(sorted({code for code in map(normalise, languages) if code}))
        if len(self.languages) < 2:
            raise ValueError(f"language detection needs at least two languages, got {languages!r}")
        self._detector: Any = None
        self._lock = threading.Lock()

    def _build(self) -> Any:
        from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

        chosen = []
        for code in self.languages:
            try:
                chosen.append(Language.from_iso_code_639_1(IsoCode639_1.from_str(code)))
            except (ValueError, AttributeError) as exc:
                raise ValueError(f"lingua has no language with ISO 639-1 code {code!r}") from exc
        builder = LanguageDetectorBuilder.from_languages(*chosen)
        if self.low_accuracy:
            builder = builder.with_low_accuracy_mode()
        return builder.build()

    def _get(self) -> Any:
        with self._lock:
            if self._detector is None:
                self._detector = self._build()
            return self._detector

    def warm_up(self) -> None:
        """Load the models now (they load lazily on the first text otherwise)."""
        self.detect("warm up the language models")

    def detect(self, text: str) -> Detection | None:
        """The most likely language of ``text``, or None when it has no letters."""
        if not _WORD.search(text or ""):
            return None
        values = self._get().compute_language_confidence_values(text)
        if not values:
            return None
        top = values[0]
        return Detection(top.language.iso_code_639_1.name.lower(), float(top.value))


def choose(
    text: str,
    hint: str | None,
    default: str,
    detect: Callable[[str], Detection | None] | None = None,
) -> LanguageChoice:
    """The language of one message (see the module docstring for the rule).

    ``detect`` is a ``text -> Detection | None`` callable (:func:`detect_function`; None when
    detection is off); a failing detector never breaks a turn, the hint or the default is used
    instead.
    """
    hint = normalise(hint)
    fallback = LanguageChoice(hint, "hint") if hint else LanguageChoice(default, "default")
    stripped = (text or "").strip()
    if not stripped or stripped.startswith("/"):  # empty, or a button payload like /ask_human
        return fallback
    words = _WORD.findall(stripped)
    letters = sum(len(w) for w in words)
    needed_words = OVERRIDE_WORDS if hint else DETECT_WORDS
    if detect is None or len(words) < needed_words or (hint and letters < OVERRIDE_LETTERS):
        return fallback
    try:
        detection = detect(stripped)
    except Exception as exc:  # a detector problem must not cost the citizen an answer
        logger.error("language detection failed: %s: %s", type(exc).__name__, exc)
        return fallback
    if detection is None:
        return fallback
    needed = OVERRIDE_CONFIDENCE if hint else DETECT_CONFIDENCE
    if detection.confidence >= needed:
        return LanguageChoice(detection.language, "detected", detection)
    return LanguageChoice(fallback.language, fallback.source, detection)


_detectors: dict[frozenset[str], LanguageDetector] = {}
_detector_lock = threading.Lock()


def get_detector(languages: Iterable[str]) -> LanguageDetector | None:
    """The process-wide detector for these languages (setting ``detect_languages``); None when
    fewer than two are given (detection off: the channel's hint or the default language decide,
    and the action server saves the detector's memory, about 200 MB for 12 languages)."""
    codes = frozenset(code for code in map(normalise, languages) if code)
    if len(codes) < 2:
        return None
    with _detector_lock:
        detector = _detectors.get(codes)
        if detector is None:
            detector = _detectors[codes] = LanguageDetector(codes)
        return detector


def detect_function(languages: Iterable[str]) -> Callable[[str], Detection | None] | None:
    """The ``detect`` argument of :func:`choose` for these languages (None: detection off)."""
    detector = get_detector(languages)
    return detector.detect if detector is not None else None
