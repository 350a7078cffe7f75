"""Property-based fuzzing of every webhook parser and signature check: no input raises.

Inputs are arbitrary bytes, arbitrary JSON, and valid platform payloads with fields replaced by
arbitrary JSON values (the shapes a buggy or hostile sender produces). Every result must be a
``Parsed`` that is either an error or messages with string fields.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.channels import messenger, telegram, twilio, x
from bot.channels.choices import PendingChoices
from bot.channels.common import Choice, Parsed, split_text, user_text
from bot.channels.shared_state import LocalState
from bot.channels.sms import keyword_of, segment_rule

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


def check(parsed: Parsed) -> None:
    assert isinstance(parsed, Parsed)
    if parsed.error is not None:
        assert isinstance(parsed.error, str) and not parsed.messages
    for message in parsed.messages:
        assert isinstance(message.sender, str) and message.sender
        assert isinstance(message.text, str)
        assert isinstance(message.message_id, str) and message.message_id
        assert message.language is None or isinstance(message.language, str)
    assert all(isinstance(reason, str) for reason in parsed.ignored)


def mutate(template: Any, path: list[Any], value: Any) -> bytes:
    """``template`` with the value at ``path`` (clipped to what exists) replaced."""
    document = json.loads(json.dumps(template))
    node = document
    for key in path[:-1]:
        child = node[key] if isinstance(node, dict) and key in node else None
        if child is None and isinstance(node, list) and isinstance(key, int) and key < len(node):
            child = node[key]
        if not isinstance(child, (dict, list)):
            break
        node = child
    last = path[-1]
    if isinstance(node, dict):
        node[last if isinstance(last, str) else str(last)] = value
    elif isinstance(node, list) and node:
        node[0] = value
    return json.dumps(document).encode()


MESSENGER = {
    "object": "page",
    "entry": [
        {
            "id": "P",
            "messaging": [
                {
                    "sender": {"id": "1"},
                    "message": {"mid": "m", "text": "hi", "quick_reply": {"payload": "/x"}},
                    "postback": {"payload": "/y", "mid": "p"},
                    "timestamp": 1,
                }
            ],
        }
    ],
}
X = {
    "for_user_id": "1",
    "direct_message_events": [
        {
            "type": "message_create",
            "id": "e",
            "message_create": {
                "sender_id": "2",
                "message_data": {"text": "hi", "quick_reply_response": {"metadata": "/x"}},
            },
        }
    ],
}
TELEGRAM = {
    "update_id": 1,
    "message": {
        "chat": {"id": 5, "type": "private"},
        "from": {"id": 5, "is_bot": False, "language_code": "en"},
        "text": "hi",
    },
    "callback_query": {"id": "q", "data": "o:1", "message": {"chat": {"id": 5}}, "from": {}},
}

MESSENGER_PATHS = st.sampled_from(
    [
        ["object"],
        ["entry"],
        ["entry", 0],
        ["entry", 0, "messaging"],
        ["entry", 0, "messaging", 0],
        ["entry", 0, "messaging", 0, "sender"],
        ["entry", 0, "messaging", 0, "sender", "id"],
        ["entry", 0, "messaging", 0, "message"],
        ["entry", 0, "messaging", 0, "message", "text"],
        ["entry", 0, "messaging", 0, "message", "mid"],
        ["entry", 0, "messaging", 0, "message", "quick_reply"],
        ["entry", 0, "messaging", 0, "message", "quick_reply", "payload"],
        ["entry", 0, "messaging", 0, "message", "is_echo"],
        ["entry", 0, "messaging", 0, "postback"],
        ["entry", 0, "messaging", 0, "timestamp"],
    ]
)
X_PATHS = st.sampled_from(
    [
        ["for_user_id"],
        ["direct_message_events"],
        ["direct_message_events", 0],
        ["direct_message_events", 0, "type"],
        ["direct_message_events", 0, "id"],
        ["direct_message_events", 0, "message_create"],
        ["direct_message_events", 0, "message_create", "sender_id"],
        ["direct_message_events", 0, "message_create", "message_data"],
        ["direct_message_events", 0, "message_create", "message_data", "text"],
        ["direct_message_events", 0, "message_create", "message_data", "quick_reply_response"],
    ]
)
TELEGRAM_PATHS = st.sampled_from(
    [
        ["update_id"],
        ["message"],
        ["message", "chat"],
        ["message", "chat", "id"],
        ["message", "chat", "type"],
        ["message", "from"],
        ["message", "from", "is_bot"],
        ["message", "from", "language_code"],
        ["message", "text"],
        ["callback_query"],
        ["callback_query", "id"],
        ["callback_query", "data"],
        ["callback_query", "message"],
    ]
)


@FUZZ
@given(st.binary(max_size=300))
def test_parsers_survive_arbitrary_bytes(body: bytes) -> None:
    check(messenger.parse_events(body))
    check(x.parse_events(body, own_user_id="1"))
    check(telegram.parse_update(body))
    pairs, error = twilio.parse_form(body)
    assert (pairs is None) == (error is not None)
    if pairs is not None:
        check(twilio.parse_message(pairs, whatsapp=False))
        check(twilio.parse_message(pairs, whatsapp=True))


@FUZZ
@given(json_values)
def test_parsers_survive_arbitrary_json(value: Any) -> None:
    body = json.dumps(value).encode()
    check(messenger.parse_events(body))
    check(x.parse_events(body))
    check(telegram.parse_update(body))


@FUZZ
@given(MESSENGER_PATHS, json_values)
def test_messenger_parser_survives_wrong_field_types(path: list[Any], value: Any) -> None:
    check(messenger.parse_events(mutate(MESSENGER, path, value)))


@FUZZ
@given(X_PATHS, json_values, st.none() | st.text(max_size=5))
def test_x_parser_survives_wrong_field_types(path: list[Any], value: Any, me: str | None) -> None:
    check(x.parse_events(mutate(X, path, value), own_user_id=me))


@FUZZ
@given(TELEGRAM_PATHS, json_values)
def test_telegram_parser_survives_wrong_field_types(path: list[Any], value: Any) -> None:
    check(telegram.parse_update(mutate(TELEGRAM, path, value)))


@FUZZ
@given(
    st.lists(st.tuples(st.text(max_size=15), st.text(max_size=40)), max_size=8),
    st.booleans(),
)
def test_twilio_parser_survives_any_form(pairs: list[tuple[str, str]], whatsapp: bool) -> None:
    check(twilio.parse_message(pairs, whatsapp))


@FUZZ
@given(st.binary(max_size=200), st.text(max_size=60), st.text(max_size=80))
def test_signature_checks_never_raise(body: bytes, header: str, url: str) -> None:
    assert messenger.valid_signature(body, header, "s") in (True, False)
    assert x.valid_signature(body, header, "s") in (True, False)
    assert twilio.valid_signature([url], [("a", header)], header, "s") in (True, False)
    assert twilio.url_variants(url)[0] == url


@FUZZ
@given(st.text(max_size=600), st.integers(min_value=1, max_value=200), st.booleans())
def test_split_text_respects_limits_and_keeps_words(text: str, limit: int, mark: bool) -> None:
    parts = split_text(text, limit, mark_parts=mark)
    assert all(len(part) <= limit for part in parts)
    if all(len(word) <= limit // 2 for word in text.split()) and not mark:
        assert [w for part in parts for w in part.split()] == text.split()


@FUZZ
@given(st.text(max_size=400))
def test_sms_parts_fit_one_segment(text: str) -> None:
    limit, measure = segment_rule(text)
    parts = split_text(text, limit, measure=measure, mark_parts=True)  # type: ignore[arg-type]
    assert all(measure(part) <= limit for part in parts)  # type: ignore[operator]


@FUZZ
@given(st.text(max_size=40), st.booleans())
def test_text_helpers_never_raise(text: str, opted_out: bool) -> None:
    assert not user_text(text).strip().startswith("/")
    keyword_of(text, opted_out)
    choices = PendingChoices(LocalState(), "sms")
    assert choices.resolve("c", text) is None
    choices.remember("c", [Choice("Yes", "/a"), Choice(text, "/b")])
    assert choices.resolve("c", text) in (None, "/a", "/b")
    assert choices.resolve("c", "1") is None  # used up by the reply, whatever it was
