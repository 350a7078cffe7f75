"""PII redaction: what citizens really paste into chat, and what must survive."""

from __future__ import annotations

import pytest

from askagency.privacy import (
    ADDRESS,
    CARD,
    EMAIL,
    ID_NUMBER,
    KTN,
    PASSPORT,
    PHONE,
    SSN,
    contains_pii,
    luhn_valid,
    redact,
    redact_with_counts,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "my email is jane.doe+tsa@example.co.uk, can you write me?",
            f"my email is {EMAIL}, can you write me?",
        ),
        ("Contact J_Smith99@agency.gov please", f"Contact {EMAIL} please"),
        ("call me at (202) 555-0143 about my bag", f"call me at {PHONE} about my bag"),
        ("my number: 202-555-0143.", f"my number: {PHONE}."),
        ("text 202.555.0143 when found", f"text {PHONE} when found"),
        ("reach me on +1 202 555 0143", f"reach me on {PHONE}"),
        ("1-800-555-0199 is the number I called", f"{PHONE} is the number I called"),
        ("I am at +44 20 7946 0958 in London", f"I am at {PHONE} in London"),
        ("Mexican cell +52 55 1234 5678", f"Mexican cell {PHONE}"),
        ("call 0044 20 7946 0958", f"call {PHONE}"),
        ("UK mobile 07700 900123", f"UK mobile {PHONE}"),
        ("my ssn is 123-45-6789 will I need it", f"my ssn is {SSN} will I need it"),
        ("SSN: 123456789", f"SSN: {SSN}"),
        ("social security number 123 45 6789", f"social security number {SSN}"),
        ("card 4111 1111 1111 1111 was charged twice", f"card {CARD} was charged twice"),
        ("paid with 5500-0000-0000-0004", f"paid with {CARD}"),
        ("amex 378282246310005", f"amex {CARD}"),
        ("passport number is 912803456, lost it", f"passport number is {PASSPORT}, lost it"),
        ("Passport no. A12345678 expired", f"Passport no. {PASSPORT} expired"),
        ("my KTN TT1234567 is not on my boarding pass", f"my KTN {KTN} is not on my boarding pass"),
        ("Known Traveler Number: 987654321", f"Known Traveler Number: {KTN}"),
        ("PASS ID 151234567 for Global Entry", f"PASS ID {KTN} for Global Entry"),
        ("redress number 1234567 please check", f"redress number {KTN} please check"),
        ("TT12345678 missing", f"{KTN} missing"),
        ("I live at 1600 Pennsylvania Avenue NW", f"I live at {ADDRESS}"),
        ("ship it to 42 Wallaby Way, Sydney", f"ship it to {ADDRESS}"),
        ("send to 221B Baker St. Apt 4, London", f"send to {ADDRESS}"),
        ("my address is 350 5th Ave, New York, NY 10118", f"my address is {ADDRESS}"),
        ("mail to 123 main street", f"mail to {ADDRESS}"),
        ("go from 42 Wallaby Way to the airport", f"go from {ADDRESS} to the airport"),
        ("PO Box 1234 is my mailing address", f"{ADDRESS} is my mailing address"),
        ("case 0012345678901 still open", f"case {ID_NUMBER} still open"),
    ],
)
def test_redacts_realistic_personal_data(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Can I bring liquids in 3.4 oz containers?",
        "what is the 3-1-1 rule for liquids",
        "My flight UA 1234 leaves at 10:30 from gate B12",
        "flight DL2045 on 2025-03-15 and back on 03/22/2025",
        "Is 100 ml the limit? I have 2 bags on the road trip",
        "I have 3 gels in one place and 2 bottles per bag",
        "the fee is $1,234.56 for 2 people",
        "I was born in 1985 and live in ZIP 20001",
        "Terminal 5 opens at 4 am, is PreCheck open?",
        "Do I need REAL ID after May 7, 2025?",
        "How long is the line at 6 pm on 12/24?",
        "Can I fly with 2 checked bags of 23 kg each",
        "Order 4 items from gate 23",
        "is a 12345 zip code ok",
        "My passport expires soon, can I still fly?",
        "What is a Known Traveler Number?",
        "I called 311 and got nothing",
    ],
)
def test_leaves_ordinary_travel_questions_alone(text: str) -> None:
    assert redact(text) == text
    assert not contains_pii(text)


def test_luhn_rejects_random_sixteen_digit_numbers() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    # Not a card (fails Luhn), but still a long identifier: never kept verbatim.
    assert redact("ref 4111 1111 1111 1112") == f"ref {ID_NUMBER}"


def test_invalid_ssn_shapes_are_not_called_ssn() -> None:
    # Area 000 / 666 / 9xx are never issued.
    assert SSN not in redact("code 000-12-3456")
    assert SSN not in redact("code 666-12-3456")
    assert SSN not in redact("code 912-34-5678")


def test_counts_and_several_kinds_in_one_message() -> None:
    text = (
        "Hi, I'm Ana (ana@mail.com, +1 415 555 0100). My KTN TT7654321 wasn't on the "
        "pass and card 4012 8888 8888 1881 was charged."
    )
    redacted, counts = redact_with_counts(text)
    assert redacted == (
        f"Hi, I'm Ana ({EMAIL}, {PHONE}). My KTN {KTN} wasn't on the "
        f"pass and card {CARD} was charged."
    )
    assert counts == {"email": 1, "phone": 1, "ktn": 1, "card": 1}


def test_redaction_is_idempotent() -> None:
    once = redact("me: bob@x.org, 202-555-0143, SSN 123-45-6789, 42 Wallaby Way")
    assert redact(once) == once
    assert not contains_pii(once)


def test_empty_and_unicode_text() -> None:
    assert redact("") == ""
    assert redact("¿Puedo llevar líquidos? Llámame al +34 612 345 678") == (
        f"¿Puedo llevar líquidos? Llámame al {PHONE}"
    )
