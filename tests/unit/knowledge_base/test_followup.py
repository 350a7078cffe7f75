"""Follow-up questions (issue 21, item 2): when a short message is read with the question just
answered, and which earlier exchange counts (knowledge_base/followup.py,
actions/tracker_info.previous_exchange)."""

from __future__ import annotations

from typing import Any

import pytest

from actions.tracker_info import previous_exchange
from knowledge_base.followup import ANSWERED, NOTHING, OPTIONS, joined, resolve

PREVIOUS = ("can I bring my laptop in my carry-on?", "laptop-carry-on")


class Book:
    """decide_text over a fixed table: text -> (rank, faq), recording each call."""

    def __init__(self, table: dict[str, tuple[int, str]]) -> None:
        self.table = table
        self.calls: list[tuple[str, str | None]] = []

    def __call__(self, text: str, exclude: str | None) -> tuple[int, str]:
        self.calls.append((text, exclude))
        return self.table.get(text, (NOTHING, ""))


def rank(decision: tuple[int, str]) -> int:
    return decision[0]


JOINED = joined(PREVIOUS[0], "and in checked bags?")


def test_joined_reads_the_follow_up_as_part_of_the_question() -> None:
    assert JOINED == "can I bring my laptop in my carry-on and in checked bags?"


@pytest.mark.parametrize(
    ("alone", "with_previous", "expected", "carried"),
    [
        ((OPTIONS, "checked-prohibited"), (ANSWERED, "laptop-checked"), "laptop-checked", True),
        ((NOTHING, ""), (OPTIONS, "laptop-checked"), "laptop-checked", True),
        ((OPTIONS, "checked-prohibited"), (OPTIONS, "laptop-checked"), "laptop-checked", True),
        ((OPTIONS, "checked-prohibited"), (NOTHING, ""), "checked-prohibited", False),
        (
            (ANSWERED, "checked-prohibited"),
            (ANSWERED, "laptop-checked"),
            "checked-prohibited",
            False,
        ),
    ],
)
def test_the_joined_reading_wins_only_when_it_gives_at_least_as_much(
    alone: tuple[int, str], with_previous: tuple[int, str], expected: str, carried: bool
) -> None:
    book = Book({"and in checked bags?": alone, JOINED: with_previous})
    decision, used = resolve("and in checked bags?", PREVIOUS, book, rank, 6)
    assert (decision[1], used) == (expected, carried)
    if alone[0] < ANSWERED:  # the previous answer is never a candidate of the joined reading
        assert book.calls[-1] == (JOINED, "laptop-carry-on")


def test_long_messages_no_previous_answer_or_switched_off_are_read_alone() -> None:
    long_question = "what are the rules for lithium batteries in checked luggage on long flights"
    book = Book({joined(PREVIOUS[0], long_question): (ANSWERED, "x")})
    assert resolve(long_question, PREVIOUS, book, rank, 6) == ((NOTHING, ""), False)
    book = Book({JOINED: (ANSWERED, "laptop-checked")})
    assert resolve("and in checked bags?", None, book, rank, 6) == ((NOTHING, ""), False)
    assert resolve("and in checked bags?", PREVIOUS, book, rank, 0) == ((NOTHING, ""), False)


def user(text: str) -> dict[str, Any]:
    return {"event": "user", "text": text}


def bot(kind: str, **custom: Any) -> dict[str, Any]:
    return {"event": "bot", "text": "…", "data": {"custom": {"type": kind, **custom}}}


def test_the_previous_exchange_is_the_answer_just_given_and_its_typed_question() -> None:
    typed = [user("laptop in carry-on?"), bot("faq_answer", faq_id="laptop-carry-on")]
    assert previous_exchange([*typed, user("and checked?")]) == (
        "laptop in carry-on?",
        "laptop-carry-on",
    )
    picked = [
        user("laptop rules"),
        bot("clarify", options=[{"faq_id": "laptop-carry-on"}]),
        user('/choose_faq{"faq_id": "laptop-carry-on"}'),
        bot("faq_answer", faq_id="laptop-carry-on"),
        {"event": "action", "name": "action_listen"},
        user("and checked?"),
    ]
    assert previous_exchange(picked) == ("laptop rules", "laptop-carry-on")
    after_fallback = [*typed, user("hm"), bot("fallback"), user("and checked?")]
    assert previous_exchange(after_fallback) is None
    assert previous_exchange([user("and checked?")]) is None
