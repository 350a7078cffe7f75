"""A citizen's photo or file (``action_receive_attachment``) and a person's file back
(``action_deliver_agent_message`` with an attachment), with rasa-sdk's own Tracker and
dispatcher, real sanitizing and storing on a migrated database; the knowledge base is faked as
in test_handoff.py."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import kb
from actions.attachments import ActionReceiveAttachment
from actions.handoff import ActionDeliverAgentMessage, ActionHandoff
from askagency import bot_messages as msg
from askagency.bot_messages import MessageType
from askagency.clock import FakeClock
from askagency.config import Settings, get_settings
from askagency.db import session_scope
from attachments import links, sanitize, store
from attachments.models import Attachment
from handoff import service
from handoff.models import Ticket
from knowledge_base.types import Decision, FaqHit, Outcome
from tests.unit.actions.test_handoff import LOW, decide

SENDER = "citizen-7"
PHOTO_REPLY = "Thank you for the photo. I can't look at pictures myself, but a person can."


@pytest.fixture
def settings(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("ASKAGENCY_HANDOFF_CONSOLE_BASE_URL", "https://console.agency.example")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()
    kb.set_handle(None)


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def stored(
    data: bytes, conversation_id: str = SENDER, direction: str = "citizen", name: str = ""
) -> str:
    clean = sanitize.sanitize(data, sanitize.Limits(max_bytes=10_000_000, max_pixels=10_000_000))
    with session_scope() as session:
        return store.save(
            session,
            clean,
            conversation_id=conversation_id,
            channel="socketio",
            direction=direction,
            name=name,
        ).id


def shared(
    ids: list[str],
    caption: str = "",
    *,
    error: str | None = None,
    slots: dict[str, Any] | None = None,
    language: str | None = None,
) -> Tracker:
    metadata: dict[str, Any] = {msg.METADATA_ATTACHMENTS: ids, msg.METADATA_CAPTION: caption}
    if error:
        metadata[msg.METADATA_ATTACHMENT_ERROR] = error
    if language:
        metadata["language"] = language
    text = "/" + msg.INTENT_SHARE_ATTACHMENT
    intent = {"name": msg.INTENT_SHARE_ATTACHMENT}
    return Tracker(
        sender_id=SENDER,
        slots=slots or {},
        latest_message={"text": text, "intent": intent, "entities": [], "metadata": metadata},
        events=[{"event": "user", "text": text, "parse_data": {"intent": intent}}],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )


async def run(action: Any, tracker: Tracker) -> tuple[list[dict], dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker, {})
    return dispatcher.messages, {e["name"]: e["value"] for e in events if e["event"] == "slot"}


def ticket_files(conversation_id: str = SENDER) -> list[tuple[str, list[str]]]:
    """(text, attachment ids) of each message on the conversation's open ticket."""
    with session_scope() as session:
        ticket = service.open_ticket_for(session, conversation_id)
        assert ticket is not None
        messages = service.messages_after(session, ticket.id)
        files = store.for_messages(session, [m.id for m in messages])
        return [(m.text, [a.id for a in files.get(m.id, [])]) for m in messages]


async def test_a_photo_alone_goes_to_a_person_with_the_file_on_the_ticket(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    decide(monkeypatch, LOW)
    photo = stored(png())
    messages, slots = await run(ActionReceiveAttachment(), shared([photo]))
    assert len(messages) == 1
    assert messages[0]["text"].startswith(PHOTO_REPLY)
    assert messages[0]["custom"]["type"] == MessageType.HANDOFF
    assert messages[0]["custom"]["reason"] == "attachment"
    assert slots["handoff_active"] is True
    with session_scope() as session:
        ticket = session.get(Ticket, messages[0]["ticket_id"])
        assert ticket.reason == "attachment" and ticket.trigger_text == "📎 photo"
    assert ticket_files() == [("📎 photo", [photo])]


async def test_a_captioned_photo_gets_the_faq_answer_first(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    hit = FaqHit("knives", 0.92, "Can I bring a knife?", "Knives go in checked bags.", "en")
    decide(monkeypatch, Decision(Outcome.ANSWER, (hit,), top_score=0.92))
    photo = stored(png())
    messages, slots = await run(ActionReceiveAttachment(), shared([photo], "can I bring my knife"))
    assert [m["custom"]["type"] for m in messages] == [MessageType.FAQ_ANSWER, MessageType.HANDOFF]
    assert messages[0]["text"] == "Knives go in checked bags."
    assert slots["last_faq_id"] == "knives" and slots["handoff_active"] is True
    assert ticket_files() == [("can I bring my knife", [photo])]


async def test_an_unsure_caption_gets_no_did_you_mean_list(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    hit = FaqHit("knives", 0.5, "Can I bring a knife?", "Knives go in checked bags.", "en")
    decide(monkeypatch, Decision(Outcome.CLARIFY, (hit,), top_score=0.5))
    messages, _ = await run(ActionReceiveAttachment(), shared([stored(png())], "can I bring this"))
    assert [m["custom"]["type"] for m in messages] == [MessageType.HANDOFF]


async def test_a_file_of_another_conversation_or_an_agent_does_nothing(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    decide(monkeypatch, LOW)
    foreign = stored(png(), conversation_id="someone-else")
    agents = stored(png(), direction="agent")
    forged = "0" * 32
    messages, slots = await run(ActionReceiveAttachment(), shared([foreign, agents, forged]))
    assert len(messages) == 1 and slots == {}
    assert messages[0]["custom"] == msg.prompt(msg.FallbackReason.ATTACHMENT_REFUSED)
    assert messages[0]["text"].startswith("Sorry, I couldn't receive your file just now.")
    with session_scope() as session:
        assert service.open_ticket_for(session, SENDER) is None
        assert session.get(Attachment, foreign).message_id is None


async def test_a_refused_file_is_explained_and_the_caption_still_answered(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    hit = FaqHit("knives", 0.92, "Can I bring a knife?", "Knives go in checked bags.", "en")
    decide(monkeypatch, Decision(Outcome.ANSWER, (hit,), top_score=0.92))
    messages, slots = await run(
        ActionReceiveAttachment(), shared([], "can I bring my knife", error="too_large")
    )
    assert messages[0]["text"].startswith("Sorry, that file is too big.")
    assert "up to 10 MB" in messages[0]["text"]
    assert messages[1]["text"] == "Knives go in checked bags."
    assert "handoff_active" not in slots
    unsupported, _ = await run(ActionReceiveAttachment(), shared([], error="unsupported_type"))
    assert "JPEG, PNG, WebP or HEIC" in unsupported[0]["text"]


async def test_spanish_citizen_gets_spanish_texts(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    decide(monkeypatch, LOW)
    messages, _ = await run(ActionReceiveAttachment(), shared([stored(png())], language="es"))
    assert messages[0]["text"].startswith("Gracias por la foto.")
    refused, _ = await run(ActionReceiveAttachment(), shared([], error="damaged", language="es"))
    assert refused[0]["text"].startswith("Lo siento, no he podido abrir ese archivo")


async def test_during_a_handoff_files_are_stored_silently_once(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    decide(monkeypatch, LOW)
    await run(ActionHandoff(), shared([], "talk to a person"))
    first, document = stored(png()), stored(PDF, name="boarding pass.pdf")
    active = {"handoff_active": True}
    messages, slots = await run(
        ActionReceiveAttachment(), shared([first, document], "this one", slots=active)
    )
    assert messages == [] and slots == {}
    assert ticket_files()[-1] == ("this one", [first, document])
    # The same ids again (a replayed message) do not post the files twice.
    again, _ = await run(ActionReceiveAttachment(), shared([first], slots=active))
    assert again[0]["custom"]["reason"] == msg.FallbackReason.ATTACHMENT_REFUSED
    assert len(ticket_files()) == 1


async def test_a_refused_file_during_a_handoff_still_relays_the_caption(settings: Settings) -> None:
    await run(ActionHandoff(), shared([], "talk to a person"))
    messages, _ = await run(
        ActionReceiveAttachment(),
        shared([], "my bag", error="unsupported_type", slots={"handoff_active": True}),
    )
    assert messages[0]["custom"]["type"] == MessageType.PROMPT  # ends no handoff in the widget
    assert ticket_files()[-1] == ("my bag", [])


def agent_message(attachment_id: str, text: str = "") -> Tracker:
    entities = [
        {"entity": msg.ENTITY_HANDOFF_TEXT, "value": text},
        {"entity": msg.ENTITY_HANDOFF_AGENT, "value": "Eve"},
        {"entity": msg.ENTITY_HANDOFF_MESSAGE, "value": 9},
        {"entity": msg.ENTITY_HANDOFF_ATTACHMENT, "value": attachment_id},
    ]
    intent = {"name": msg.INTENT_AGENT_MESSAGE}
    return Tracker(
        sender_id=SENDER,
        slots={"handoff_active": True},
        latest_message={"text": "EXTERNAL", "intent": intent, "entities": entities},
        events=[],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )


async def test_a_persons_image_goes_as_a_signed_link_that_expires(
    settings: Settings, clock: FakeClock
) -> None:
    image = stored(png(), direction="agent", name="allowed.png")
    messages, _ = await run(ActionDeliverAgentMessage(), agent_message(image))
    assert messages[0]["text"] is None and messages[0]["custom"]["agent"] == "Eve"
    url = urlsplit(messages[0]["image"])
    assert f"{url.scheme}://{url.netloc}" == "https://console.agency.example"
    assert url.path == f"/media/{image}"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    secret = links.link_secret(settings)
    assert links.verify(image, query["exp"], query["sig"], secret=secret, now=clock())
    later = clock() + timedelta(seconds=settings.attachment_link_ttl_s + 1)
    assert not links.verify(image, query["exp"], query["sig"], secret=secret, now=later)


async def test_a_persons_pdf_goes_as_a_file_and_a_citizens_file_never_does(
    settings: Settings,
) -> None:
    document = stored(PDF, direction="agent", name="rules.pdf")
    messages, _ = await run(ActionDeliverAgentMessage(), agent_message(document, "Here you go"))
    attachment = messages[0]["attachment"]
    assert messages[0]["text"] == "Here you go"
    assert attachment["type"] == "file" and attachment["mime"] == "application/pdf"
    assert attachment["name"] == "rules.pdf" and f"/media/{document}?" in attachment["url"]
    citizens = stored(png())
    messages, _ = await run(ActionDeliverAgentMessage(), agent_message(citizens, "see"))
    assert messages[0]["text"] == "see"
    assert messages[0]["image"] is None and messages[0]["attachment"] is None
