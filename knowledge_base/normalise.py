"""Spelling and texting normalisation of a question before it is searched.

Why: the embedding model and the character n-grams both see "wat r the rules 4 liquids" as
mostly unknown pieces. Two steps, both cheap and per language:

* **texting shorthand** ("u" -> "you", "4" -> "for", "pls" -> "please"): a fixed table of
  general English chat abbreviations, written from common usage, not from any labelled file;
* **spelling** against the knowledge base's own vocabulary (its questions, variants and
  answers): a word the KB does not know, of 4+ letters, is replaced by the most frequent KB
  word one edit away (two for words of 8+ letters). Words the KB does not know and that have
  no close KB word stay as they are, so an unrelated question keeps its own words (and its
  low score).

Both are measured in docs/quality.md on the development files; ``query_normalisation`` turns
them off.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

_WORD = re.compile(r"[a-z0-9']+")
# Words, plus the slash forms of "with"/"without" ("w/", "w/o"), case-insensitive.
_TOKEN = re.compile(r"\bw/o\b|\bw/|[A-Za-z0-9']+")

# General English chat shorthand -> words. Only unambiguous entries: "2" (to/two) and "no"
# stay out; "r", "u", "4" are unambiguous in a question to an agency.
TEXTING_EN: dict[str, str] = {
    "u": "you",
    "ur": "your",
    "r": "are",
    "4": "for",
    "b4": "before",
    "pls": "please",
    "plz": "please",
    "thx": "thanks",
    "wat": "what",
    "wut": "what",
    "wht": "what",
    "whats": "what is",
    "abt": "about",
    "bc": "because",
    "cuz": "because",
    "coz": "because",
    "thru": "through",
    "w/": "with",
    "w/o": "without",
    "wo": "without",
    "ppl": "people",
    "im": "i am",
    "dont": "do not",
    "cant": "can not",
    "wont": "will not",
    "isnt": "is not",
    "doesnt": "does not",
    "didnt": "did not",
    "ive": "i have",
    "idk": "i do not know",
    "tho": "though",
    "n": "and",
    "y": "why",
    "k": "ok",
    "hw": "how",
    "cn": "can",
    "shd": "should",
    "wld": "would",
    "bday": "birthday",
    "info": "information",
    "govt": "government",
    "tmrw": "tomorrow",
    "2day": "today",
    "gr8": "great",
    "luggages": "luggage",
}

TEXTING: dict[str, dict[str, str]] = {"en": TEXTING_EN}
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
MIN_CORRECTED = 4  # shorter words are too often real words the KB lacks
TWO_EDITS_FROM = 8  # words this long may be two edits away


def _edits1(word: str) -> set[str]:
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    deletes = {a + b[1:] for a, b in splits if b}
    transposes = {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    replaces = {a + c + b[1:] for a, b in splits if b for c in _LETTERS}
    inserts = {a + c + b for a, b in splits for c in _LETTERS}
    return deletes | transposes | replaces | inserts


class Normaliser:
    """Texting table + spelling against one language's KB vocabulary."""

    def __init__(self, language: str | None, texts: Iterable[str], *, spelling: bool = True):
        self.texting = TEXTING.get(language or "", {})
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(_WORD.findall(text.lower()))
        self.vocabulary = counts
        self.spelling = spelling
        self._cache: dict[str, str] = {}

    def correct(self, word: str) -> str:
        """The KB word closest to ``word`` (itself when known, short, or nothing is close)."""
        if (
            not self.spelling
            or len(word) < MIN_CORRECTED
            or not word.isalpha()
            or word in self.vocabulary
        ):
            return word
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        near = _edits1(word)
        known = [w for w in near if w in self.vocabulary]
        if not known and len(word) >= TWO_EDITS_FROM:
            known = [w2 for w1 in near for w2 in _edits1(w1) if w2 in self.vocabulary]
        best = max(known, key=lambda w: (self.vocabulary[w], w)) if known else word
        if len(self._cache) < 50_000:
            self._cache[word] = best
        return best

    def __call__(self, text: str) -> str:
        """``text`` with shorthand expanded and misspelt words corrected; punctuation,
        case of untouched words and spacing stay as they were."""

        def replace(match: re.Match[str]) -> str:
            token = match.group(0)
            lower = token.lower()
            mapped = self.texting.get(lower)
            if mapped is not None:
                return mapped
            corrected = self.correct(lower)
            return token if corrected == lower else corrected

        return _TOKEN.sub(replace, text)
