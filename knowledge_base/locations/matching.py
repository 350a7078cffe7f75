"""Recognising a location in a citizen's text, and checking a location code a client sent.

Why two rules: aliases ("O'Hare", "Denver airport") are matched case- and accent-insensitively
as whole words, because citizens type them any way; bare codes are matched only in upper case
("DEN", "MIA", "SEA"), because in lower case they are ordinary words ("den", "mia", "sea").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from askagency.location_codes import UNKNOWN_LOCATION, normalise_code

__all__ = ["UNKNOWN_LOCATION", "EMPTY", "LocationMatcher", "Place", "fold", "normalise_code"]

_APOSTROPHES = re.compile(r"['’`´]")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def fold(text: str) -> str:
    """Text as aliases are compared: no accents, lower case, apostrophes dropped ("O'Hare" and
    "OHare" are one word), every other non-alphanumeric run one space."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return _NON_WORD.sub(" ", _APOSTROPHES.sub("", plain)).strip()


@dataclass(frozen=True)
class Place:
    """What the matcher needs of a location."""

    code: str
    name: str
    aliases: tuple[str, ...] = ()


class LocationMatcher:
    """Finds the first location a text names, among the active locations it was built from."""

    def __init__(self, places: Iterable[Place]) -> None:
        self._codes: set[str] = set()
        by_phrase: dict[str, str] = {}
        for place in places:
            self._codes.add(place.code)
            for phrase in (place.name, *place.aliases):
                folded = fold(phrase)
                if len(folded) >= 2:
                    by_phrase.setdefault(folded, place.code)
        self._by_phrase = by_phrase
        # Longest phrase first, so "chicago ohare" wins over "chicago" at the same position.
        phrases = sorted(by_phrase, key=len, reverse=True)
        self._phrase_re = (
            re.compile(r"(?<![a-z0-9])(" + "|".join(map(re.escape, phrases)) + r")(?![a-z0-9])")
            if phrases
            else None
        )
        codes = sorted(self._codes, key=len, reverse=True)
        self._code_re = (
            re.compile(r"(?<![A-Za-z0-9])(" + "|".join(map(re.escape, codes)) + r")(?![A-Za-z0-9])")
            if codes
            else None
        )

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(self._codes)

    def known(self, value: object) -> str | None:
        """The code of an active location, from a value a client or a channel sent; else None
        (a forged or retired code never reaches a report)."""
        code = normalise_code(value)
        return code if code in self._codes else None

    def find(self, text: str | None) -> str | None:
        """The location the text names first; None when it names none."""
        if not text:
            return None
        folded = fold(text)
        found: list[tuple[int, str]] = []  # (position in the folded text, code)
        if self._code_re is not None:
            code_hit = self._code_re.search(text)
            if code_hit:
                found.append((len(fold(text[: code_hit.start()])), code_hit.group(1)))
        if self._phrase_re is not None:
            phrase_hit = self._phrase_re.search(folded)
            if phrase_hit:
                found.append((phrase_hit.start(), self._by_phrase[phrase_hit.group(1)]))
        return min(found)[1] if found else None


EMPTY = LocationMatcher(())
