"""Word-level text helpers shared by the language scorer and the glossary.

Both match citizens' words the same way: lower case with accents folded (citizens often omit
them) and, where Snowball has a stemmer for the language, reduced to their stem. Kept apart so
that the glossary (which the scorer uses to translate questions) does not import the scorer.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable


def one_line(text: str, limit: int) -> str:
    """``text`` on one line (each run of whitespace one space), cut to ``limit`` characters
    with an ellipsis marking the cut: how a citizen's question is stored in the queue and
    quoted in the weekly report."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def fold(text: str) -> str:
    """Lower case without accents: "¿Qué líquidos?" and "que liquidos" match fully."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_WORD = re.compile(r"\w+")
# ISO 639-1 codes (what FAQs carry) -> Snowball algorithm names.
_SNOWBALL_NAMES = {
    "es": "spanish",
    "fr": "french",
    "de": "german",
    "pt": "portuguese",
    "it": "italian",
    "nl": "dutch",
    "ru": "russian",
    "sv": "swedish",
    "da": "danish",
    "no": "norwegian",
    "fi": "finnish",
    "hu": "hungarian",
    "ro": "romanian",
    "tr": "turkish",
    "ca": "catalan",
    "en": "english",
    "ar": "arabic",
    "id": "indonesian",
    "el": "greek",
}


def word_analyzer(language: str | None) -> Callable[[str], list[str]]:
    """Folded words reduced to their Snowball stem ("pastillas"/"pastilla" -> "pastill"),
    so inflected forms match as whole words; plain folded words when Snowball has no
    stemmer for ``language``."""
    stem: Callable[[list[str]], list[str]] = list
    if language:
        import snowballstemmer

        name = _SNOWBALL_NAMES.get(language, language)
        if name in {n.lower() for n in snowballstemmer.algorithms()}:
            # A Snowball stemmer keeps state while it works: one per thread, because the
            # action server scores messages concurrently.
            local = threading.local()

            def stem(words: list[str]) -> list[str]:
                stemmer = getattr(local, "stemmer", None)
                if stemmer is None:
                    stemmer = local.stemmer = snowballstemmer.stemmer(name)
                return stemmer.stemWords(words)

    def analyze(text: str) -> list[str]:
        return [w for w in stem(_WORD.findall(fold(text))) if len(w) > 1]

    return analyze
