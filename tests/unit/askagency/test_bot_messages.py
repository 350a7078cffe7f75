"""The bot message contract (askagency/bot_messages.py) against its other two spellings: the
Rasa domain and the web widget. A type, slot, intent or entity written in one of them and not in
the contract (or the other way round) fails here, not in a citizen's browser."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from askagency import bot_messages as msg
from askagency.bot_messages import FallbackReason, MessageType

ROOT = Path(__file__).resolve().parents[3]
DOMAIN = yaml.safe_load((ROOT / "bot" / "domain.yml").read_text())
WIDGET = (ROOT / "console" / "static" / "widget" / "askagency-widget.js").read_text()
TYPES = {kind.value for kind in MessageType}


def _constants(prefix: str) -> set[str]:
    return {value for name, value in vars(msg).items() if name.startswith(prefix)}


def _js_set(name: str) -> set[str]:
    match = re.search(rf"var {name} = \{{([^}}]*)\}};", WIDGET)
    assert match, f"{name} not found in the widget"
    return set(re.findall(r"(\w+): 1", match.group(1)))


def test_every_domain_response_type_is_a_message_type() -> None:
    used = {
        variant["custom"]["type"]
        for variants in DOMAIN["responses"].values()
        for variant in variants
    }
    assert used <= TYPES, used - TYPES
    assert {"greeting", "feedback_ack"} <= used


def test_domain_slots_are_exactly_the_contract_slots() -> None:
    assert set(DOMAIN["slots"]) == msg.SLOTS == _constants("SLOT_")


def test_contract_intents_and_entities_are_declared_in_the_domain() -> None:
    intents = {i if isinstance(i, str) else next(iter(i)) for i in DOMAIN["intents"]}
    assert _constants("INTENT_") <= intents, _constants("INTENT_") - intents
    assert _constants("ENTITY_") == set(DOMAIN["entities"])


def test_widget_type_lists_match_the_contract() -> None:
    assert _js_set("HANDOFF_START") == {str(t) for t in msg.HANDOFF_START_TYPES}
    assert _js_set("HANDOFF_END") == {str(t) for t in msg.HANDOFF_END_TYPES}
    assert f'var CANCEL_HANDOFF_INTENT = "{msg.INTENT_CANCEL_HANDOFF}";' in WIDGET
    compared = set(re.findall(r"custom\.type === \"(\w+)\"", WIDGET))
    built = set(re.findall(r"custom: \{ type: \"(\w+)\"", WIDGET))
    assert compared and built
    assert compared | built <= TYPES, (compared | built) - TYPES


def test_builders_give_plain_json_with_the_type_as_a_string() -> None:
    payloads = [
        msg.faq_answer(faq_id="liquids", score=0.87654, source_url=None, language="en"),
        msg.clarify([msg.clarify_option(faq_id="a", title="A?", score=0.5)]),
        msg.fallback(FallbackReason.LOW_CONFIDENCE, score=0.123456),
        msg.prompt(FallbackReason.EMPTY),
        msg.handoff(reason="requested", after_hours=True, expected_reply_at=None, queued=True),
        msg.agent_message(agent="Ana", message_id=7),
        msg.handoff_closed(resolved=True, message_id=8),
    ]
    decoded = json.loads(json.dumps(payloads))
    assert [p["type"] for p in decoded] == [
        "faq_answer",
        "clarify",
        "fallback",
        "prompt",
        "handoff",
        "agent_message",
        "handoff_closed",
    ]
    assert decoded[0]["score"] == 0.877 and decoded[2] == {
        "type": "fallback",
        "reason": "low_confidence",
        "score": 0.123,
    }
    assert decoded[4]["queued"] is True and "ticket_id" not in decoded[4]
    assert all(type(p["type"]) is str for p in payloads)


def test_untranslated_marks_a_copy() -> None:
    answer = msg.faq_answer(faq_id="x", score=1, source_url=None, language="en")
    marked = msg.untranslated(answer, "fr")
    assert marked["translated"] is False and marked["requested_language"] == "fr"
    assert "translated" not in answer


def test_enum_values_print_as_their_wire_value() -> None:
    assert str(MessageType.FAQ_ANSWER) == "faq_answer" == f"{MessageType.FAQ_ANSWER}"
    assert msg.type_of({"type": "clarify"}) == MessageType.CLARIFY
    assert msg.type_of({"type": 3}) is None and msg.type_of(None) is None
    assert msg.is_type({"type": "handoff"}, MessageType.HANDOFF)
