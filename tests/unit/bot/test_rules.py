"""The bot stays silent while a person has the conversation: every intent the citizen can
produce has a relay rule for ``handoff_active: true`` and every other rule requires ``false``.
Checked on the real domain and rules, so a new intent cannot make the bot talk over an agent."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
EXTERNAL = {
    "agent_message": "action_deliver_agent_message",
    "handoff_closed": "action_handoff_closed",
}
# Citizen intents with their own action during a handoff: leaving ends it, at the citizen's
# request; a photo is stored on the ticket with its file, silently, like any relayed message.
DURING_HANDOFF = {
    "cancel_handoff": "action_leave_handoff",
    "share_attachment": "action_receive_attachment",
}


def _load() -> tuple[list[str], list[dict]]:
    domain = yaml.safe_load((ROOT / "bot" / "domain.yml").read_text())
    intents = [i if isinstance(i, str) else next(iter(i)) for i in domain["intents"]]
    rules: list[dict] = []
    for path in sorted((ROOT / "bot" / "data").glob("*.yml")):
        rules += (yaml.safe_load(path.read_text()) or {}).get("rules") or []
    return intents, rules


def _condition(rule: dict) -> object:
    for item in rule.get("condition") or []:
        slots = item.get("slot_was_set") or []
        for slot in slots:
            if "handoff_active" in slot:
                return slot["handoff_active"]
    return None


def _intent_and_action(rule: dict) -> tuple[str | None, str | None]:
    steps = rule.get("steps") or []
    intent = next((s["intent"] for s in steps if "intent" in s), None)
    action = next((s["action"] for s in steps if "action" in s), None)
    return intent, action


def test_every_citizen_intent_is_relayed_during_a_handoff() -> None:
    intents, rules = _load()
    relayed = {
        _intent_and_action(r)[0]
        for r in rules
        if _condition(r) is True and _intent_and_action(r)[1] == "action_relay_to_agent"
    }
    handled = {
        intent
        for r in rules
        if _condition(r) is True
        and (intent := _intent_and_action(r)[0]) in DURING_HANDOFF
        and _intent_and_action(r)[1] == DURING_HANDOFF[intent]
    }
    citizen_intents = (set(intents) - set(EXTERNAL)) | {"nlu_fallback"}
    assert citizen_intents - relayed - handled == set(), "intents without a relay rule"
    assert handled == set(DURING_HANDOFF)


def test_bot_rules_only_run_when_no_person_has_the_conversation() -> None:
    _, rules = _load()
    for rule in rules:
        intent, action = _intent_and_action(rule)
        if intent in EXTERNAL:
            assert action == EXTERNAL[intent], rule
        elif intent in DURING_HANDOFF:
            assert action == DURING_HANDOFF[intent], rule
        elif action != "action_relay_to_agent":
            assert _condition(rule) is False, f"rule {rule.get('rule')!r} may run during a handoff"


def test_external_intents_exist_and_ignore_entities_for_prediction() -> None:
    domain = yaml.safe_load((ROOT / "bot" / "domain.yml").read_text())
    declared = {next(iter(i)): i[next(iter(i))] for i in domain["intents"] if isinstance(i, dict)}
    for intent in EXTERNAL:
        assert declared[intent]["use_entities"] == []
    for action in (*EXTERNAL.values(), "action_relay_to_agent", "action_handoff"):
        assert action in domain["actions"]


# The actions that set the ``language`` slot themselves (actions.tracker_info.language_slot_update).
SETS_LANGUAGE = {"action_answer_faq", "action_relay_to_agent"}


def test_question_turns_skip_language_detection_only_where_their_action_sets_the_slot() -> None:
    """The slot's mapping skips question turns (one action-server call per question instead of
    two); that is only right while every rule for them runs an action that sets the slot."""
    from askagency.bot_messages import LANGUAGE_SET_BY_THE_ACTION, SLOT_LANGUAGE

    domain = yaml.safe_load((ROOT / "bot" / "domain.yml").read_text())
    (mapping,) = domain["slots"][SLOT_LANGUAGE]["mappings"]
    skipped = set(mapping["not_intent"])
    assert skipped == set(LANGUAGE_SET_BY_THE_ACTION) | set(EXTERNAL)
    _, rules = _load()
    actions = {
        _intent_and_action(r)[1]
        for r in rules
        if _intent_and_action(r)[0] in LANGUAGE_SET_BY_THE_ACTION
    }
    assert actions and actions <= SETS_LANGUAGE, actions - SETS_LANGUAGE
