"""Redaction of personal data from citizen text before anything stores it.

Citizens paste e-mail addresses, phone numbers, card numbers and travel
document numbers into chat ("my KTN is TT1234567, why no PreCheck?"). The
unanswered-question queue, analytics and logs only need the *question*, so
every module that persists citizen text calls :func:`redact` first.

Design choices:

* Typed placeholders (``[EMAIL]``, ``[PHONE]``, ...) keep the sentence readable
  for staff and still cluster well ("my [PHONE] is not working").
* Detectors run from the most to the least specific, each on the output of the
  previous one, so a card number is never half-eaten by the phone detector.
* Numbers the agency's own content is full of must survive: flight numbers
  (``UA 1234``), dates, times, the "3-1-1" liquids rule, "3.4 oz", prices,
  years and five-digit ZIP codes. Card numbers are Luhn-checked; bare nine-digit
  numbers are only called an SSN when written like one or named as one.
* Redaction is idempotent: redacting redacted text changes nothing, so callers
  may redact defensively at every boundary.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

EMAIL = "[EMAIL]"
PHONE = "[PHONE]"
SSN = "[SSN]"
CARD = "[CARD]"
PASSPORT = "[PASSPORT]"
KTN = "[KTN]"
ADDRESS = "[ADDRESS]"
ID_NUMBER = "[ID]"

PLACEHOLDERS = (EMAIL, PHONE, SSN, CARD, PASSPORT, KTN, ADDRESS, ID_NUMBER)

# Digits that are not glued to letters/digits on either side (so "UA1234" or
# "A12345678" are not read as bare numbers).
_LEFT = r"(?<![\w@])"
_RIGHT = r"(?![\w@])"

_EMAIL_RE = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b"
)

# 13-19 digits, optionally in groups separated by one space or hyphen.
_CARD_RE = re.compile(_LEFT + r"\d(?:[ -]?\d){12,18}" + _RIGHT)

_SSN_DASHED_RE = re.compile(_LEFT + r"(\d{3})([- ])(\d{2})\2(\d{4})" + _RIGHT)
_SSN_NAMED_RE = re.compile(
    r"(?i)\b(?:ssn|social\s+security(?:\s+(?:number|no\.?|#))?|ss\s?#)"
    r"(?:\s*(?:is|was|:|#|=|-))*\s*"
    r"(\d{3}[- ]?\d{2}[- ]?\d{4})" + _RIGHT
)

# Document numbers are only recognisable by the words around them.
_PASSPORT_RE = re.compile(
    r"(?i)\bpassport(?:\s+card)?(?:\s+(?:number|num|no\.?|#|id))?"
    r"(?:\s*(?:is|was|:|#|=|-))*\s*"
    r"([A-Z]{0,2}\d{6,9}[A-Z]?)" + _RIGHT
)
_KTN_NAMED_RE = re.compile(
    r"(?i)\b(?:ktn|known\s+travell?er(?:\s+(?:number|num|no\.?|#|id))?|pass\s?id|"
    r"global\s+entry(?:\s+(?:number|num|no\.?|#|id))?|"
    r"pre-?check(?:\s+(?:number|num|no\.?|#|id))?|redress(?:\s+(?:number|num|no\.?|#))?|"
    r"nexus(?:\s+(?:number|num|no\.?|#|id))?|sentri(?:\s+(?:number|num|no\.?|#|id))?)"
    r"(?:\s*(?:is|was|:|#|=|-))*\s*"
    r"([A-Z]{0,3}\d{6,10}[A-Z]?)" + _RIGHT
)
# TSA PreCheck numbers have a recognisable shape even without a keyword.
_KTN_SHAPE_RE = re.compile(r"\bTT\d{7,8}\b")

# Phone numbers: international with + or 00, North American, and generic
# grouped numbers of 10-15 digits. Checked after dates/SSNs/cards are gone.
_PHONE_INTL_RE = re.compile(
    r"(?<![\w+])(?:\+|00)[1-9]\d{0,2}(?:[ .-]?(?:\(\d{1,5}\)|\d{1,5})){2,6}" + _RIGHT
)
_PHONE_NANP_RE = re.compile(
    _LEFT + r"(?:1[ .-]?)?(?:\(\d{3}\)\s?|\d{3}[ .-]?)\d{3}[ .-]?\d{4}" + r"(?![\w@]|-\d)"
)
_PHONE_GROUPED_RE = re.compile(_LEFT + r"0\d{1,4}(?:[ .-]\d{2,6}){1,4}" + _RIGHT)

_STREET_SUFFIXES = (
    "street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|"
    "terrace|ter|parkway|pkwy|highway|hwy|circle|cir|square|sq|trail|trl|alley|pike|"
    "plaza|crescent|close"
)
# Words that can sit between a house number and a street suffix in ordinary
# sentences ("2 bags on the road", "3 gels in one place"): never part of a name.
_NOT_NAME_WORDS = frozenset(
    " ".join(
        (
            "a an the in on at of to for from by with and or but my your our their his her its",
            "this that these those some any one two three four five six seven eight nine ten",
            "per each every i you we they he she it is are was were be bags bag items item",
            "liquids gels bottles bottle oz ml kg lbs lb pounds minutes hours days times people",
        )
    ).split()
)
_ADDRESS_RE = re.compile(
    r"(?i)" + _LEFT + r"(\d{1,6}[A-Za-z]?)\s+"
    r"((?:(?:[NSEW]|north|south|east|west)\.?\s+)?"
    r"(?:[A-Za-z][A-Za-z'.-]*|\d{1,3}(?:st|nd|rd|th))(?:\s+[A-Za-z][A-Za-z'.-]*){0,3})\s+"
    r"(" + _STREET_SUFFIXES + r")\b\.?"
    r"(?:,?\s*(?:apt|apartment|unit|suite|ste|#)\.?\s*#?\w{1,6})?"
    r"(?-i:(?:,\s*[A-Z][A-Za-z]+(?:\s+[A-Z][A-Za-z]+){0,2})?)"
    r"(?-i:(?:,?\s+[A-Z]{2}\b)?)"
    r"(?:\s+\d{5}(?:-\d{4})?\b)?"
)
_PO_BOX_RE = re.compile(r"(?i)\bp\.?\s?o\.?\s*box\s+\d{1,8}\b")

# Anything still left that is a long run of digits is an identifier of some
# kind (account, case, document number); no FAQ needs it to be understood.
_LONG_NUMBER_RE = re.compile(_LEFT + r"\d(?:[ -]?\d){7,}" + _RIGHT)


def luhn_valid(digits: str) -> bool:
    """The check digit every payment card number carries."""
    if not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _card(match: re.Match[str]) -> str | None:
    digits = _digits(match.group(0))
    if 13 <= len(digits) <= 19 and luhn_valid(digits) and len(set(digits)) > 1:
        return CARD
    return None


def _ssn_plausible(area: str, group: str, serial: str) -> bool:
    """SSA never issues area 000, 666 or 900-999, group 00 or serial 0000."""
    return (
        area not in ("000", "666")
        and not area.startswith("9")
        and group != "00"
        and serial != "0000"
    )


def _ssn_dashed(match: re.Match[str]) -> str | None:
    return SSN if _ssn_plausible(match.group(1), match.group(3), match.group(4)) else None


def _keep_prefix(placeholder: str) -> Callable[[re.Match[str]], str]:
    """Replace only the number after a keyword: "passport number [PASSPORT]"."""

    def replace(match: re.Match[str]) -> str:
        start, end = match.span(1)
        whole_start = match.start(0)
        text = match.group(0)
        return text[: start - whole_start] + placeholder + text[end - whole_start :]

    return replace


def _phone(match: re.Match[str]) -> str | None:
    text = match.group(0)
    if text.startswith("00") and text.isdigit():
        return None  # "00" + digits with no grouping is more likely a reference number
    return PHONE if 8 <= len(_digits(text)) <= 15 else None


def _phone_nanp(match: re.Match[str]) -> str | None:
    digits = _digits(match.group(0))
    if len(digits) == 11 and not digits.startswith("1"):
        return None
    area = digits[-10:-7]
    # North American area and exchange codes never start with 0 or 1.
    if area[0] in "01" or digits[-7] in "01":
        return None
    return PHONE


def _grouped_phone(match: re.Match[str]) -> str | None:
    digits = _digits(match.group(0))
    return PHONE if 10 <= len(digits) <= 13 else None


def _address(match: re.Match[str]) -> str | None:
    words = [w.lower().strip(".") for w in match.group(2).split()]
    if any(word in _NOT_NAME_WORDS for word in words):
        return None
    return ADDRESS


_DATE_RE = re.compile(r"\d{4}[- ]\d{1,2}[- ]\d{1,2}|\d{1,2}[- ]\d{1,2}[- ]\d{4}")


def _long_number(match: re.Match[str]) -> str | None:
    if _DATE_RE.fullmatch(match.group(0)):
        return None
    return ID_NUMBER if len(_digits(match.group(0))) >= 8 else None


@dataclass(frozen=True)
class _Detector:
    kind: str
    pattern: re.Pattern[str]
    replace: Callable[[re.Match[str]], str | None]


def _constant(placeholder: str) -> Callable[[re.Match[str]], str]:
    return lambda _match: placeholder


_DETECTORS: tuple[_Detector, ...] = (
    _Detector("email", _EMAIL_RE, _constant(EMAIL)),
    _Detector("ssn", _SSN_NAMED_RE, _keep_prefix(SSN)),
    _Detector("passport", _PASSPORT_RE, _keep_prefix(PASSPORT)),
    _Detector("ktn", _KTN_NAMED_RE, _keep_prefix(KTN)),
    _Detector("ktn", _KTN_SHAPE_RE, _constant(KTN)),
    _Detector("card", _CARD_RE, _card),
    _Detector("ssn", _SSN_DASHED_RE, _ssn_dashed),
    _Detector("phone", _PHONE_INTL_RE, _phone),
    _Detector("phone", _PHONE_NANP_RE, _phone_nanp),
    _Detector("phone", _PHONE_GROUPED_RE, _grouped_phone),
    _Detector("address", _PO_BOX_RE, _constant(ADDRESS)),
    _Detector("address", _ADDRESS_RE, _address),
    _Detector("id", _LONG_NUMBER_RE, _long_number),
)


def redact_with_counts(text: str) -> tuple[str, Counter[str]]:
    """The redacted text and how many items of each kind were replaced
    (for logs and metrics: "3 phone numbers redacted today")."""
    counts: Counter[str] = Counter()
    for detector in _DETECTORS:

        def substitute(match: re.Match[str], detector: _Detector = detector) -> str:
            replacement = detector.replace(match)
            if replacement is None:
                return match.group(0)
            counts[detector.kind] += 1
            return replacement

        text = detector.pattern.sub(substitute, text)
    return text, counts


def redact(text: str) -> str:
    """``text`` with personal data replaced by typed placeholders."""
    return redact_with_counts(text)[0]


def contains_pii(text: str) -> bool:
    return bool(redact_with_counts(text)[1])
