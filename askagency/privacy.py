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
  (``UA 1234``, ``DL2045``: two letters and at most four digits), gates (``B12``),
  dates, times, the "3-1-1" liquids rule, "3.4 oz", prices, years and five-digit
  ZIP codes. Card numbers are Luhn-checked and IBANs checksum-checked; bare
  nine-digit numbers are only called an SSN when written like one or named as one.
  A date is only personal when a birth keyword names it ("DOB 03/12/1985",
  "nací el 12 de marzo de 1985"); "born in 1985" keeps its year.
* Documents are recognised by their words in English and Spanish ("passport",
  "pasaporte", "licencia de conducir", "A-number", "DNI", ...) and, without a
  word, by their shape: one to three letters glued to six to ten digits
  (``C12345678``, ``A123456789``, ``D1234567``) or seven to eight digits glued to
  a letter (``12345678Z``) is an identifier, never a flight or a gate.
* Redaction is idempotent: redacting redacted text changes nothing, so callers
  may redact defensively at every boundary.
* Every pattern runs in time linear in the text (review finding L3): no
  quantified group can split the same characters in more than one way, so a
  crafted message cannot make a pattern backtrack exponentially. Only constructs
  Python 3.10 also has are used (no atomic groups), so the module stays usable in
  the Rasa environment. The text scanned is bounded (:data:`MAX_SCAN_CHARS`); what
  lies beyond is cut, never passed through unredacted.

Redaction runs on text that is *stored* (the unanswered queue, analytics, exports),
never on the text the knowledge base searches with: a citizen's question is
answered as written, so redacting more never costs retrieval quality.
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
IBAN = "[IBAN]"
DOB = "[DOB]"

PLACEHOLDERS = (EMAIL, PHONE, SSN, CARD, PASSPORT, KTN, ADDRESS, ID_NUMBER, IBAN, DOB)

# Channels refuse messages over 2,000 characters; stored payloads are cut to 20,000. Text beyond
# this is cut rather than scanned: it bounds the work per call whatever the caller passes.
MAX_SCAN_CHARS = 20_000

# Digits that are not glued to letters/digits on either side (so "UA1234" or
# "A12345678" are not read as bare numbers).
_LEFT = r"(?<![\w@])"
_RIGHT = r"(?![\w@])"

_EMAIL_RE = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b"
)

# What may follow a keyword before the number: "is", ":", "number", "es", "nº" ...
# Each alternative starts differently, so the repetition cannot backtrack much.
_FILLER = r"(?:\s*(?:is|was|es|era|:|#|=|-|n[úu]mero|num|no\.?|n[º°]\.?))*\s*"

# 13-19 digits, optionally in groups separated by one space, dot or hyphen.
_CARD_RE = re.compile(_LEFT + r"\d(?:[ .-]?\d){12,18}" + _RIGHT)

_SSN_DASHED_RE = re.compile(_LEFT + r"(\d{3})([- ])(\d{2})\2(\d{4})" + _RIGHT)
_SSN_NAMED_RE = re.compile(
    r"(?i)\b(?:ssn|social\s+security(?:\s+(?:number|no\.?|#))?|ss\s?#|"
    r"(?:n[úu]mero\s+(?:de\s+|del\s+)?)?seguro\s+social|nss)"
    + _FILLER
    + r"(\d{3}[- ]?\d{2}[- ]?\d{4})"
    + _RIGHT
)

# Document numbers named by the words around them, in English and Spanish.
_PASSPORT_RE = re.compile(
    r"(?i)\b(?:passport(?:\s+card)?(?:\s+(?:number|num|no\.?|#|id))?|pasaporte)"
    + _FILLER
    + r"([A-Z]{0,2}\d{6,9}[A-Z]?)"
    + _RIGHT
)
# Driver's licences, A-numbers, national ids: the number goes, the word stays.
_ID_NAMED_RE = re.compile(
    r"(?i)\b(?:driver'?s?\s+licen[cs]e|driving\s+licen[cs]e|licen[cs]e(?:\s+(?:number|no\.?|#))?|"
    r"licencia(?:\s+de\s+(?:conducir|manejo|manejar))?|permiso\s+de\s+conducir|"
    r"carn[eé]t?(?:\s+de\s+conducir)?|"
    r"a-?\s?number|a-?\s?no\.|alien(?:\s+registration)?\s+(?:number|no\.?|#)|"
    r"uscis(?:\s+(?:number|no\.?|#))?|n[úu]mero\s+(?:de\s+)?(?:a|extranjero|uscis)|"
    r"dni|nie|nif|c[ée]dula(?:\s+de\s+identidad)?|green\s+card(?:\s+(?:number|no\.?|#))?|"
    r"tarjeta\s+de\s+residen(?:cia|te)|id\s+(?:number|no\.?|#)|"
    r"n[úu]mero\s+de\s+identificaci[óo]n|documento(?:\s+de\s+identidad)?)"
    + _FILLER
    + r"([A-Z]{0,3}[- ]?\d(?:[ -]?\d){4,13}[A-Z]?)"
    + _RIGHT
)
# Without a keyword: one to three letters glued to six to ten digits (passport C12345678,
# A-number A123456789, licence D1234567, NIE X1234567L), or seven to eight digits glued to a
# letter (DNI 12345678Z). Flight numbers have at most four digits and gates two.
_ID_LETTER_PREFIX_RE = re.compile(_LEFT + r"[A-Za-z]{1,3}-?\d{6,10}[A-Za-z]?" + _RIGHT)
_ID_LETTER_SUFFIX_RE = re.compile(_LEFT + r"\d{7,8}-?[A-Za-z]" + _RIGHT)

# IBAN: country code, two check digits, 11-30 letters or digits, optionally grouped by spaces.
# One character per repetition (unambiguous); the mod-97 check decides, see _iban.
_IBAN_RE = re.compile(r"(?i)" + _LEFT + r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}" + _RIGHT)

# Dates of birth: a date right after a birth keyword (English, Spanish).
_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec|"
    "enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|"
    "noviembre|diciembre|ene|abr|ago|dic"
)
_DOB_RE = re.compile(
    r"(?i)\b(?:d\.?o\.?b\.?|date\s+of\s+birth|birth\s?date|birthday|born(?:\s+on)?|"
    r"fecha\s+de\s+nacimiento|f\.?\s?de\s+nac\.?|nacid[oa](?:\s+el)?|nac[ií](?:\s+el)?|"
    r"cumpleaños)"
    r"(?:\s*(?:is|was|es|era|on|in|el|:|=|-|,))*\s*"
    r"(\d{1,4}[-/. ]\d{1,2}[-/. ]\d{2,4}"
    r"|\d{1,2}(?:st|nd|rd|th|º)?\s+(?:de\s+)?(?:" + _MONTHS + r")\.?,?\s+(?:de\s+|del\s+)?\d{4}"
    r"|(?:" + _MONTHS + r")\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4})"
    r"(?![\w@])"
)
_KTN_NAMED_RE = re.compile(
    r"(?i)\b(?:ktn|known\s+travell?er(?:\s+(?:number|num|no\.?|#|id))?|pass\s?id|"
    r"global\s+entry(?:\s+(?:number|num|no\.?|#|id))?|"
    r"pre-?check(?:\s+(?:number|num|no\.?|#|id))?|redress(?:\s+(?:number|num|no\.?|#))?|"
    r"nexus(?:\s+(?:number|num|no\.?|#|id))?|sentri(?:\s+(?:number|num|no\.?|#|id))?)"
    + _FILLER
    + r"([A-Z]{0,3}\d{6,10}[A-Z]?)"
    + _RIGHT
)
# TSA PreCheck numbers have a recognisable shape even without a keyword.
_KTN_SHAPE_RE = re.compile(r"\bTT\d{7,8}\b")

# Phone numbers: international with + or 00, North American, and generic
# grouped numbers of 10-15 digits. Checked after dates/SSNs/cards are gone.
# One digit (or one parenthesised area code) per repetition, so the digits cannot be split
# into groups in more than one way: the old ``(?:[ .-]?\d{1,5}){2,6}`` tried tens of thousands of
# splits of "+1" followed by 34 digits (review finding L3). _phone checks the digit count.
_PHONE_INTL_RE = re.compile(r"(?<![\w+])(?:\+|00)[1-9](?:[ .-]?(?:\(\d{1,5}\)|\d)){6,20}" + _RIGHT)
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
# Spanish-style addresses put the street type first and the number last: "Calle Mayor 12,
# Madrid", "Avda. de la Paz, nº 3". The name must start with a capital so that "la calle
# está cerrada 3 horas" is left alone.
_ES_ADDRESS_RE = re.compile(
    r"(?i:\b(?:calle|c/|avenida|avda\.?|av\.|paseo|plaza|pza\.?|carrera|camino|carretera|"
    r"ronda|traves[ií]a|callej[oó]n|bulevar|glorieta))\s*"
    r"(?:(?:de|del|la|las|los)\s+){0,3}"
    r"[A-ZÁÉÍÓÚÑ][^\W\d_]*(?:\s+(?:de|del|la|las|los|y|[A-ZÁÉÍÓÚÑ][^\W\d_]*)){0,4}"
    r",?\s+(?:(?i:n[º°o]\.?)\s*)?\d{1,5}[A-Za-z]?(?![\w@])"
    r"(?:,\s*[A-ZÁÉÍÓÚÑ][^\W\d_]+(?:\s+[A-ZÁÉÍÓÚÑ][^\W\d_]+){0,2})?"
)

# Anything still left that is a long run of digits is an identifier of some
# kind (account, case, document number); no FAQ needs it to be understood.
_LONG_NUMBER_RE = re.compile(_LEFT + r"\d(?:[ .-]?\d){7,}" + _RIGHT)


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


_DATE_RE = re.compile(r"\d{4}[-. ]\d{1,2}[-. ]\d{1,2}|\d{1,2}[-. ]\d{1,2}[-. ]\d{4}")


def iban_valid(candidate: str) -> bool:
    """ISO 13616 check: the rearranged IBAN, letters as 10..35, is 1 modulo 97."""
    compact = candidate.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact.isalnum() or not compact.isascii():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _iban(match: re.Match[str]) -> str | None:
    """The match may run into the words after the IBAN ("... 3000 OK"): drop trailing
    space-separated parts until the checksum holds, and keep what was dropped."""
    parts = match.group(0).split(" ")
    for keep in range(len(parts), 0, -1):
        if iban_valid("".join(parts[:keep])):
            rest = " ".join(parts[keep:])
            return IBAN + (" " + rest if rest else "")
    return None


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
    _Detector("dob", _DOB_RE, _keep_prefix(DOB)),
    _Detector("id", _ID_NAMED_RE, _keep_prefix(ID_NUMBER)),
    _Detector("iban", _IBAN_RE, _iban),
    _Detector("card", _CARD_RE, _card),
    _Detector("ssn", _SSN_DASHED_RE, _ssn_dashed),
    _Detector("phone", _PHONE_INTL_RE, _phone),
    _Detector("phone", _PHONE_NANP_RE, _phone_nanp),
    _Detector("phone", _PHONE_GROUPED_RE, _grouped_phone),
    _Detector("address", _PO_BOX_RE, _constant(ADDRESS)),
    _Detector("address", _ADDRESS_RE, _address),
    _Detector("address", _ES_ADDRESS_RE, _constant(ADDRESS)),
    _Detector("id", _ID_LETTER_PREFIX_RE, _constant(ID_NUMBER)),
    _Detector("id", _ID_LETTER_SUFFIX_RE, _constant(ID_NUMBER)),
    _Detector("id", _LONG_NUMBER_RE, _long_number),
)


def redact_with_counts(text: str) -> tuple[str, Counter[str]]:
    """The redacted text and how many items of each kind were replaced
    (for logs and metrics: "3 phone numbers redacted today"). Text beyond
    :data:`MAX_SCAN_CHARS` is cut off."""
    counts: Counter[str] = Counter()
    text = text[:MAX_SCAN_CHARS]
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


# --- a contact the citizen leaves for a reply (handoff) --------------------------------------
CONTACT_EMAIL = "email"
CONTACT_PHONE = "phone"
CONTACT_MAX_CHARS = 254  # the longest e-mail address a mail server takes (RFC 5321)
_SENTINEL = "\x00"


# Where a contact was found, as NUL + its number in letters (0 -> A ... 9 -> J) + NUL: no later
# pattern reads letters fenced by NULs as a number, a word or part of one.
_TO_LETTERS = str.maketrans("0123456789", "ABCDEFGHIJ")
_FROM_LETTERS = str.maketrans("ABCDEFGHIJ", "0123456789")
_MARKER_RE = re.compile(_SENTINEL + "([A-J]+)" + _SENTINEL)


def _marker(index: int) -> str:
    return _SENTINEL + str(index).translate(_TO_LETTERS) + _SENTINEL


@dataclass(frozen=True)
class Contact:
    """An e-mail address or phone number found in a citizen's message, exactly as written."""

    kind: str  # CONTACT_EMAIL or CONTACT_PHONE
    value: str


def first_contact(text: str) -> Contact | None:
    """The first e-mail address or phone number in ``text`` (by position), or None.

    What :func:`redact` would replace with ``[EMAIL]`` or ``[PHONE]``, found by the same
    detectors in the same order, so a card number, an SSN or a date is never taken for a phone
    number. Used by the handoff relay to keep the contact a citizen leaves for a reply; the
    value only ever contains the characters these patterns allow (no markup)."""
    found: list[Contact] = []
    text = text[:MAX_SCAN_CHARS].replace(_SENTINEL, "")
    for detector in _DETECTORS:

        def substitute(match: re.Match[str], detector: _Detector = detector) -> str:
            replacement = detector.replace(match)
            if replacement is None:
                return match.group(0)
            if detector.kind not in (CONTACT_EMAIL, CONTACT_PHONE):
                return replacement
            found.append(Contact(detector.kind, match.group(0).strip()))
            return _marker(len(found) - 1)

        text = detector.pattern.sub(substitute, text)
    for marker in _MARKER_RE.finditer(text):
        contact = found[int(marker.group(1).translate(_FROM_LETTERS))]
        if len(contact.value) <= CONTACT_MAX_CHARS:
            return contact
    return None
