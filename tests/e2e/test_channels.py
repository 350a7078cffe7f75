"""Messenger, X DMs, Twilio SMS/WhatsApp and Telegram end to end.

The shared test stack's real Rasa server (with bot/credentials.yml), action server and console
have channel settings from the environment (as an operator would set them) that point the
platforms' API base URLs at an in-test fake (tests/platform_fake.py): a local aiohttp server that
records every send-API call and checks its authentication. Webhooks are signed here with an
independent implementation of each platform's scheme. The FAQ outcome of each turn is read back
from Rasa's tracker.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import re
import time
import urllib.error
import urllib.request
import uuid
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import pytest
from PIL import Image

from askagency.bot_messages import MessageType
from askagency.launcher import Stack
from tests.e2e.test_handoff import Console, create_agent
from tests.platform_fake import (
    APP_SECRET,
    TG_SECRET,
    TW_FROM,
    TW_SID,
    TW_TOKEN,
    VERIFY_TOKEN,
    WA_FROM,
    X_CRC,
    X_ME,
    X_SECRET,
    Call,
    PlatformFake,
)
from tests.stack import RestClient

pytestmark = pytest.mark.e2e

LAPTOP = "can I bring my laptop in my carry-on"
LAPTOP_FAQ = "electronics-laptop-carry-on"
# Short questions the sample KB may answer with "did you mean ...?"; which of them clarifies
# depends on the thresholds, so the module asks the REST channel and uses the first that does.
AMBIGUOUS_CANDIDATES = [
    "lighter",
    "lighters",
    "knife",
    "batteries",
    "liquids",
    "food",
    "tools",
    "medication",
    "camping gear",
    "sports equipment",
    "baby",
    "gun",
    # Since issue #20 clarify options stay within 0.10 of the top score and the clarify
    # threshold is 0.45, so the one-word questions above get a single "Did you mean" option
    # or a handoff; this one still gets two.
    "liquids rule",
]


# --- signed webhooks --------------------------------------------------------------------------


class Webhooks:
    """Signs and posts webhooks the way each platform does."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.base = stack.cfg.rasa_url

    def post(self, channel: str, body: bytes, headers: dict[str, str]) -> int:
        request = urllib.request.Request(
            f"{self.base}/webhooks/{channel}/webhook", data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return resp.status
        except urllib.error.HTTPError as err:
            return err.code

    def get(self, channel: str, query: dict[str, str]) -> tuple[int, bytes]:
        url = f"{self.base}/webhooks/{channel}/webhook?{urlencode(query)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def messenger(self, psid: str, mid: str, text: str, secret: str = APP_SECRET) -> int:
        body = json.dumps(
            {
                "object": "page",
                "entry": [
                    {
                        "id": "PAGE",
                        "time": 1,
                        "messaging": [
                            {
                                "sender": {"id": psid},
                                "recipient": {"id": "PAGE"},
                                "timestamp": 1,
                                "message": {"mid": mid, "text": text},
                            }
                        ],
                    }
                ],
            }
        ).encode()
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return self.post("messenger", body, {"X-Hub-Signature-256": signature})

    def x(
        self,
        sender: str,
        event_id: str,
        text: str,
        secret: str = X_SECRET,
        quick_reply: str | None = None,
    ) -> int:
        return self.x_signed(self.x_body(sender, event_id, text, quick_reply), secret)

    def x_signed(self, body: bytes, secret: str = X_SECRET) -> int:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        signature = "sha256=" + base64.b64encode(digest).decode()
        return self.post("x", body, {"x-twitter-webhooks-signature": signature})

    @staticmethod
    def x_body(sender: str, event_id: str, text: str, quick_reply: str | None = None) -> bytes:
        data: dict[str, Any] = {"text": text, "entities": {}}
        if quick_reply is not None:
            data["quick_reply_response"] = {"type": "options", "metadata": quick_reply}
        return json.dumps(
            {
                "for_user_id": X_ME,
                "direct_message_events": [
                    {
                        "type": "message_create",
                        "id": event_id,
                        "created_timestamp": "1700000000000",
                        "message_create": {
                            "target": {"recipient_id": X_ME if sender != X_ME else "1"},
                            "sender_id": sender,
                            "message_data": data,
                        },
                    }
                ],
            }
        ).encode()

    def twilio(
        self,
        channel: str,
        sender: str,
        sid: str,
        text: str,
        token: str = TW_TOKEN,
        media: list[tuple[str, str]] = (),  # type: ignore[assignment]
    ) -> int:
        url = f"{self.base}/webhooks/{channel}/webhook"
        form = {
            "MessageSid": sid,
            "AccountSid": TW_SID,
            "From": sender,
            "To": WA_FROM if channel == "whatsapp" else TW_FROM,
            "Body": text,
            "NumMedia": str(len(media)),
        }
        for i, (media_url, content_type) in enumerate(media):
            form[f"MediaUrl{i}"], form[f"MediaContentType{i}"] = media_url, content_type
        data = url + "".join(k + v for k, v in sorted(form.items()))
        signature = base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest())
        headers = {
            "X-Twilio-Signature": signature.decode(),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        return self.post(channel, urlencode(form).encode(), headers)

    def telegram(self, update: dict[str, Any], secret: str = TG_SECRET) -> int:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret, "Content-Type": "application/json"}
        return self.post("telegram", json.dumps(update).encode(), headers)

    def tracker_events(self, conversation_id: str) -> list[dict[str, Any]]:
        url = (
            f"{self.base}/conversations/{quote(conversation_id, safe='')}/tracker"
            f"?token={self.stack.cfg.rasa_token}"
        )
        with urllib.request.urlopen(url, timeout=30) as resp:
            return json.loads(resp.read()).get("events") or []

    def tracker_bot_customs(
        self, conversation_id: str, at_least: int = 1, timeout: float = 20.0
    ) -> list[dict[str, Any]]:
        """The ``custom`` of every bot event, once there are ``at_least`` of them: Rasa saves
        the tracker after the turn, a moment after the platform got the reply."""
        deadline = time.monotonic() + timeout
        while True:
            customs = [
                (e.get("data") or {}).get("custom") or {}
                for e in self.tracker_events(conversation_id)
                if e.get("event") == "bot"
            ]
            if len(customs) >= at_least or time.monotonic() > deadline:
                return customs
            time.sleep(0.2)

    def user_channels(self, conversation_id: str) -> list[str]:
        events = self.tracker_events(conversation_id)
        return [e.get("input_channel") for e in events if e.get("event") == "user"]


@pytest.fixture(scope="module")
def fake(platform_fake: PlatformFake) -> PlatformFake:
    """The shared stack's platforms (tests/stack.py starts them before the stack)."""
    return platform_fake


@pytest.fixture(scope="module")
def hooks(stack: Stack) -> Webhooks:
    return Webhooks(stack)


@pytest.fixture(scope="module")
def ambiguous(stack: Stack) -> str:
    rest = RestClient(stack.cfg.rasa_url)
    for question in AMBIGUOUS_CANDIDATES:
        messages = rest.send(f"probe-{uuid.uuid4().hex}", question)
        custom = (messages[0].get("custom") or {}) if messages else {}
        if custom.get("type") == MessageType.CLARIFY and len(custom.get("options") or []) >= 2:
            return question
    raise AssertionError(f"none of {AMBIGUOUS_CANDIDATES} makes the sample KB clarify")


def sms_text(calls: list[Call]) -> str:
    """The SMS parts of one message put back together (without their "(i/n)" markers)."""
    return " ".join(re.sub(r" \(\d+/\d+\)$", "", c.form()["Body"]) for c in calls)


def tg_message(update_id: int, chat_id: int, text: str) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1700000000,
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": chat_id, "is_bot": False, "language_code": "en"},
            "text": text,
        },
    }


def tg_press(update_id: int, chat_id: int, data: str) -> dict[str, Any]:
    """A Telegram update for a press of the inline button carrying ``data``."""
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"cq-{chat_id}",
            "from": {"id": chat_id, "is_bot": False, "language_code": "en"},
            "message": {"message_id": 1, "chat": {"id": chat_id, "type": "private"}},
            "data": data,
        },
    }


def new_number() -> int:
    return int(uuid.uuid4().int % 10**9) + 10**9


# --- the tests ---------------------------------------------------------------------------------


def test_messenger_question_gets_the_faq_answer(hooks: Webhooks, fake: PlatformFake) -> None:
    psid = str(new_number())
    status, challenge = hooks.get(
        "messenger",
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "c-123"},
    )
    assert (status, challenge) == (200, b"c-123")

    assert hooks.messenger(psid, f"mid.{psid}", LAPTOP) == 200
    (call,) = fake.wait(lambda c: c.to() == psid)
    assert call.status == 200, "the fake refused the access token"
    body = call.json()
    assert body["recipient"] == {"id": psid} and body["messaging_type"] == "RESPONSE"
    custom = hooks.tracker_bot_customs(f"messenger-{psid}")[-1]
    assert custom["type"] == MessageType.FAQ_ANSWER and custom["faq_id"] == LAPTOP_FAQ
    assert "laptop" in body["message"]["text"].lower()
    assert custom["source_url"] in body["message"]["text"]
    assert hooks.user_channels(f"messenger-{psid}") == ["messenger"]


def test_x_dm_answer_is_signed_and_own_messages_are_ignored(
    hooks: Webhooks, fake: PlatformFake
) -> None:
    user = str(new_number())
    status, crc = hooks.get("x", {"crc_token": X_CRC})
    expected = base64.b64encode(
        hmac.new(X_SECRET.encode(), X_CRC.encode(), hashlib.sha256).digest()
    )
    assert status == 200 and json.loads(crc) == {"response_token": "sha256=" + expected.decode()}

    assert hooks.x(user, f"ev-{user}", LAPTOP) == 200
    assert hooks.x(X_ME, f"ev-own-{user}", f"echo of our reply to {user}") == 200
    (call,) = fake.wait(lambda c: c.to() == user)
    assert call.status == 200, "the fake rejected the OAuth 1.0a signature"
    create = call.json()["event"]["message_create"]
    assert create["target"] == {"recipient_id": user}
    assert "laptop" in create["message_data"]["text"].lower()
    assert hooks.tracker_bot_customs(f"x-{user}")[-1]["faq_id"] == LAPTOP_FAQ
    assert hooks.user_channels(f"x-{X_ME}") == []


def test_sms_clarify_reply_2_selects_the_second_option(
    hooks: Webhooks, fake: PlatformFake, ambiguous: str
) -> None:
    number = f"+1555{new_number() % 10**7:07d}"
    conversation = f"sms-{number[1:]}"
    assert hooks.twilio("sms", number, f"SM{uuid.uuid4().hex}", ambiguous) == 200
    clarify = hooks.tracker_bot_customs(conversation)[-1]
    assert clarify["type"] == MessageType.CLARIFY
    options = clarify["options"]
    fake.wait(lambda c: c.to() == number)
    time.sleep(1)  # a long list goes out in several single-segment parts
    listing = fake.matching(lambda c: c.to() == number)
    assert all(c.status == 200 for c in listing), "the fake refused the Basic credentials"
    assert all(c.form()["From"] == TW_FROM for c in listing)
    assert all(len(c.form()["Body"]) <= 160 for c in listing)
    shown = sms_text(listing)
    for number_shown, option in enumerate(options, start=1):
        assert f"{number_shown}. {option['title']}" in shown, shown

    assert hooks.twilio("sms", number, f"SM{uuid.uuid4().hex}", "2") == 200
    chosen = hooks.tracker_bot_customs(conversation, at_least=2)[-1]
    assert chosen["type"] == MessageType.FAQ_ANSWER and chosen["faq_id"] == options[1]["faq_id"]
    answer = fake.wait(lambda c: c.to() == number, count=len(listing) + 1)[len(listing) :]
    assert all(len(c.form()["Body"]) <= 160 for c in answer)
    assert hooks.user_channels(conversation) == ["sms", "sms"]


def test_sms_stop_silences_the_number_until_start(hooks: Webhooks, fake: PlatformFake) -> None:
    number = f"+1555{new_number() % 10**7:07d}"

    def bodies() -> list[str]:
        return [c.form()["Body"] for c in fake.matching(lambda c: c.to() == number)]

    assert hooks.twilio("sms", number, f"SM{uuid.uuid4().hex}", "STOP") == 200
    fake.wait(lambda c: c.to() == number)
    assert hooks.twilio("sms", number, f"SM{uuid.uuid4().hex}", LAPTOP) == 200
    time.sleep(3)
    assert len(bodies()) == 1 and "unsubscribed" in bodies()[0]
    assert hooks.user_channels(f"sms-{number[1:]}") == []  # the bot never saw either message
    assert hooks.twilio("sms", number, f"SM{uuid.uuid4().hex}", "START") == 200
    assert hooks.twilio("sms", number, f"SM{uuid.uuid4().hex}", LAPTOP) == 200
    fake.wait(lambda c: c.to() == number, count=3)
    assert "subscribed again" in bodies()[1]
    assert hooks.tracker_bot_customs(f"sms-{number[1:]}")[-1]["faq_id"] == LAPTOP_FAQ


def test_whatsapp_question_goes_out_from_the_whatsapp_number(
    hooks: Webhooks, fake: PlatformFake
) -> None:
    number = f"+44770{new_number() % 10**6:06d}"
    assert hooks.twilio("whatsapp", f"whatsapp:{number}", f"SM{uuid.uuid4().hex}", LAPTOP) == 200
    (call,) = fake.wait(lambda c: c.to() == f"whatsapp:{number}")
    form = call.form()
    assert form["From"] == f"whatsapp:{WA_FROM}" and "laptop" in form["Body"].lower()
    assert hooks.tracker_bot_customs(f"whatsapp-{number[1:]}")[-1]["faq_id"] == LAPTOP_FAQ


def test_telegram_inline_keyboard_and_button_press(
    hooks: Webhooks, fake: PlatformFake, ambiguous: str
) -> None:
    chat = new_number()
    base_update = new_number()
    assert hooks.telegram(tg_message(base_update, chat, ambiguous)) == 200
    (keyboard_call,) = fake.wait(lambda c: c.path.endswith("/sendMessage") and c.to() == str(chat))
    assert keyboard_call.status == 200
    options = hooks.tracker_bot_customs(f"telegram-{chat}")[-1]["options"]
    rows = keyboard_call.json()["reply_markup"]["inline_keyboard"]
    # The clarify's buttons are its options plus "None of these" (issue #20).
    assert [row[0]["text"] for row in rows] == [*(o["title"] for o in options), "None of these"]

    assert hooks.telegram(tg_press(base_update + 1, chat, rows[1][0]["callback_data"])) == 200
    fake.wait(lambda c: c.path.endswith("/answerCallbackQuery") and f"cq-{chat}".encode() in c.body)
    fake.wait(lambda c: c.path.endswith("/sendMessage") and c.to() == str(chat), count=2)
    chosen = hooks.tracker_bot_customs(f"telegram-{chat}", at_least=2)[-1]
    assert chosen["type"] == MessageType.FAQ_ANSWER and chosen["faq_id"] == options[1]["faq_id"]


def test_wrong_signatures_are_rejected_and_nothing_is_processed(
    hooks: Webhooks, fake: PlatformFake
) -> None:
    marker = str(new_number())
    number = f"+1666{marker[-7:]}"
    assert hooks.messenger(marker, f"m-{marker}", LAPTOP, secret="forged") == 403
    assert hooks.x(marker, f"e-{marker}", LAPTOP, secret="forged") == 403
    assert hooks.twilio("sms", number, f"SM{marker}", LAPTOP, token="forged") == 403
    assert hooks.twilio("whatsapp", f"whatsapp:{number}", f"SM{marker}", LAPTOP, token="x") == 403
    assert hooks.telegram(tg_message(int(marker), int(marker), LAPTOP), secret="forged") == 403
    assert hooks.post("telegram", b"{}", {}) == 403  # no secret header at all
    # Malformed bodies with a valid signature/secret are a 400; unknown events a 200.
    assert hooks.telegram({"no": "update id"}) == 400
    assert hooks.telegram({"update_id": int(marker), "my_chat_member": {}}) == 200
    time.sleep(3)
    recipients = {marker, number, f"whatsapp:{number}"}
    assert fake.matching(lambda c: c.to() in recipients) == []
    for conversation in (
        f"messenger-{marker}",
        f"x-{marker}",
        f"sms-{number[1:]}",
        f"telegram-{marker}",
    ):
        assert hooks.user_channels(conversation) == []


def test_a_redelivered_message_is_answered_once(hooks: Webhooks, fake: PlatformFake) -> None:
    psid, chat = str(new_number()), new_number()
    number = f"+1777{new_number() % 10**7:07d}"
    update = tg_message(new_number(), chat, LAPTOP)
    sid = f"SM{uuid.uuid4().hex}"
    for _ in range(3):
        assert hooks.messenger(psid, f"mid.{psid}", LAPTOP) == 200
        assert hooks.telegram(update) == 200
        assert hooks.twilio("sms", number, sid, LAPTOP) == 200
    fake.wait(lambda c: c.to() == psid)
    fake.wait(lambda c: c.path.endswith("/sendMessage") and c.to() == str(chat))
    fake.wait(lambda c: c.to() == number)
    time.sleep(3)
    assert len(fake.matching(lambda c: c.to() == psid)) == 1
    assert len(fake.matching(lambda c: c.to() == str(chat))) == 1
    # One answer, split into single-segment SMS parts "(1/n)" .. "(n/n)", each sent once.
    parts = [c.form()["Body"] for c in fake.matching(lambda c: c.to() == number)]
    assert len(parts) == len(set(parts)) and parts[-1].endswith(f"({len(parts)}/{len(parts)})")
    assert hooks.user_channels(f"messenger-{psid}") == ["messenger"]


def test_send_api_errors_are_retried_or_logged_and_the_channel_keeps_working(
    hooks: Webhooks, fake: PlatformFake, stack: Stack
) -> None:
    flaky, broken = str(new_number()), str(new_number())
    fake.fail_for(flaky, [503])
    fake.fail_for(broken, [400])
    assert hooks.messenger(flaky, f"mid.{flaky}", LAPTOP) == 200
    assert hooks.messenger(broken, f"mid.{broken}", LAPTOP) == 200
    retried = fake.wait(lambda c: flaky.encode() in c.body, count=2)
    assert [c.status for c in retried] == [503, 200]
    assert retried[0].body == retried[1].body
    fake.wait(lambda c: broken.encode() in c.body)
    time.sleep(2)
    assert [c.status for c in fake.matching(lambda c: broken.encode() in c.body)] == [400]
    assert "not retried" in stack.tail("rasa", 200)
    # The same conversation still works afterwards.
    assert hooks.messenger(broken, f"mid2.{broken}", LAPTOP) == 200
    later = fake.wait(lambda c: broken.encode() in c.body, count=2)
    assert later[-1].status == 200


async def test_agent_reply_from_the_console_goes_out_on_telegram(
    hooks: Webhooks, fake: PlatformFake, stack: Stack
) -> None:
    create_agent(stack.cfg.data_dir, "tg-agent", "Agent Tess")
    chat = new_number()
    first = new_number()
    assert hooks.telegram(tg_message(first, chat, "I want to talk to a person")) == 200
    await asyncio.to_thread(
        fake.wait, lambda c: c.path.endswith("/sendMessage") and c.to() == str(chat)
    )
    assert hooks.tracker_bot_customs(f"telegram-{chat}")[-1]["type"] == MessageType.HANDOFF

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        console = Console(stack.cfg.console_url, http)
        await console.login("tg-agent")
        ticket = await console.ticket_for(f"telegram-{chat}")
        assert ticket["channel"] == "telegram"
        reply = f"Hello from Tess, chat {chat}"
        status, _ = await console.post(f"/api/tickets/{ticket['id']}/replies", {"text": reply})
        assert status == 201
        (sent,) = await asyncio.to_thread(
            fake.wait, lambda c: c.path.endswith("/sendMessage") and reply.encode() in c.body
        )
        assert sent.json() == {"chat_id": chat, "text": reply}
        await console.wait_delivery(ticket["id"])


async def test_agent_reply_from_the_console_goes_out_by_sms(
    hooks: Webhooks, fake: PlatformFake, stack: Stack
) -> None:
    """An SMS citizen (sender "+1555...") hands off; the agent's reply reaches the number."""
    create_agent(stack.cfg.data_dir, "sms-agent", "Agent Sol")
    number = f"+1555{new_number() % 10**7:07d}"
    conversation = f"sms-{number[1:]}"
    assert hooks.twilio("sms", number, f"SM{uuid.uuid4().hex}", "I want to talk to a person") == 200
    await asyncio.to_thread(fake.wait, lambda c: c.to() == number)
    assert hooks.tracker_bot_customs(conversation)[-1]["type"] == MessageType.HANDOFF

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        console = Console(stack.cfg.console_url, http)
        await console.login("sms-agent")
        ticket = await console.ticket_for(conversation)
        assert ticket["channel"] == "sms"
        reply = f"Hello from Sol, number {number}"
        status, _ = await console.post(f"/api/tickets/{ticket['id']}/replies", {"text": reply})
        assert status == 201
        sent = await asyncio.to_thread(
            fake.wait, lambda c: c.to() == number and "from Sol" in c.form().get("Body", "")
        )
        assert sms_text(sent) == reply and sent[0].form()["From"] == TW_FROM
        await console.wait_delivery(ticket["id"])


async def test_an_mms_photo_reaches_the_inbox_and_the_agents_photo_goes_back_as_media(
    hooks: Webhooks, fake: PlatformFake, stack: Stack
) -> None:
    """Issue 21, item 1, on a platform: the channel downloads the MMS photo with the account's
    credentials, the action server stores it re-encoded, the ticket shows it; the agent's photo
    goes out as Twilio ``MediaUrl``, a signed link Twilio fetches from the console."""
    create_agent(stack.cfg.data_dir, "mms-agent", "Agent Max")
    number = f"+1555{new_number() % 10**7:07d}"
    conversation = f"sms-{number[1:]}"
    original = io.BytesIO()
    Image.new("RGB", (80, 60), (220, 40, 40)).save(original, "JPEG")
    media_path = f"/2010-04-01/Accounts/{TW_SID}/Messages/MM{uuid.uuid4().hex}/Media/ME1"
    fake.media[media_path] = ("image/jpeg", original.getvalue())
    sid = f"MM{uuid.uuid4().hex}"
    media = [(fake.url + media_path, "image/jpeg")]
    assert hooks.twilio("sms", number, sid, "can I bring this", media=media) == 200
    told = await asyncio.to_thread(fake.wait, lambda c: c.to() == number)
    assert sms_text(told).startswith("Thank you for the photo.")
    downloads = fake.matching(lambda c: c.path == media_path)
    assert [c.status for c in downloads] == [200]
    assert hooks.tracker_bot_customs(conversation)[-1]["reason"] == "attachment"

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        console = Console(stack.cfg.console_url, http)
        await console.login("mms-agent")
        ticket = await console.ticket_for(conversation)
        assert (ticket["channel"], ticket["reason"]) == ("sms", "attachment")
        _, detail = await console.get(f"/api/tickets/{ticket['id']}")
        (message,) = [m for m in detail["messages"] if m["direction"] == "citizen"]
        assert message["text"] == "can I bring this"
        (attachment,) = message["attachments"]
        async with http.get(stack.cfg.console_url + attachment["url"]) as resp:
            assert resp.status == 200
            assert Image.open(io.BytesIO(await resp.read())).size == (80, 60)

        reply_photo = io.BytesIO()
        Image.new("RGB", (30, 30), (20, 20, 220)).save(reply_photo, "PNG")
        form = aiohttp.FormData()
        form.add_field("file", reply_photo.getvalue(), filename="ok.png")
        form.add_field("text", "Yes, that one is allowed.")
        async with http.post(
            f"{stack.cfg.console_url}/api/tickets/{ticket['id']}/attachments",
            data=form,
            headers={"X-CSRF-Token": console.csrf},
        ) as resp:
            assert resp.status == 201, await resp.text()
        sent = await asyncio.to_thread(
            fake.wait, lambda c: c.to() == number and "MediaUrl" in c.form()
        )
        link = sent[-1].form()["MediaUrl"]
        assert link.startswith(stack.cfg.console_url + "/media/")
        async with http.get(link) as resp:  # what Twilio does with it
            assert resp.status == 200 and resp.headers["Content-Type"] == "image/png"
        await console.wait_delivery(ticket["id"])


# --- attacks from the security review (issue #17) ------------------------------------------


def test_x_crc_is_no_signing_oracle_and_forged_quick_replies_never_run(
    hooks: Webhooks, fake: PlatformFake
) -> None:
    """C1, the review's live test: the attacker asks the CRC endpoint to sign a webhook body
    whose quick reply is ``/agent_message{...}``. The CRC endpoint refuses; and even a body
    with a valid signature (as if the secret had leaked) cannot run the intent."""
    victim = str(new_number())
    forged = (
        '/agent_message{"handoff_text": "Your case is suspended. Verify at '
        'https://evil.example", "handoff_agent": "Agency staff"}'
    )
    body = hooks.x_body(victim, f"forged-{victim}", "x", quick_reply=forged)
    status, answer = hooks.get("x", {"crc_token": body.decode()})
    assert status == 400 and b"response_token" not in answer

    assert hooks.x_signed(body) == 200
    (sent,) = fake.wait(lambda c: c.to() == victim)
    assert "expired" in sent.json()["event"]["message_create"]["message_data"]["text"]
    time.sleep(2)
    assert len(fake.matching(lambda c: c.to() == victim)) == 1
    assert hooks.tracker_bot_customs(f"x-{victim}", timeout=2) == []
    assert "evil.example" not in json.dumps(hooks.tracker_events(f"x-{victim}"))


async def test_web_clients_cannot_make_the_agency_text_anyone(
    hooks: Webhooks, fake: PlatformFake, stack: Stack
) -> None:
    """H1/H2, the review's live test: a REST client names an SMS channel or an SMS
    conversation id and asks for a person; the agent replies and closes the ticket. No text
    message goes out (the agency pays for it and the recipient never asked), and the outbox
    says why. A real SMS conversation still gets the agent's reply (test above)."""
    create_agent(stack.cfg.data_dir, "spoof-agent", "Agent Sue")
    rest = RestClient(stack.cfg.rasa_url)
    victim = f"44770{new_number() % 10**7:07d}"
    squatted = f"1555{new_number() % 10**7:07d}"
    attempts = [
        {"sender": victim, "message": "/ask_human", "input_channel": "sms"},
        {"sender": f"sms-{squatted}", "message": "/ask_human", "input_channel": "sms"},
        {"sender": f"sms-{squatted}x", "message": "/ask_human"},
    ]
    for attempt in attempts:
        # The web channels may refuse such a request outright (4xx); either way, no SMS.
        rest.post_raw(json.dumps(attempt).encode())

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        console = Console(stack.cfg.console_url, http)
        await console.login("spoof-agent")
        _, listing = await console.get("/api/tickets")
        senders = {a["sender"] for a in attempts}
        tickets = [t for t in listing["tickets"] if t["conversation_id"] in senders]
        for ticket in tickets:
            assert ticket["channel"] != "sms" or ticket["conversation_id"].startswith("sms-")
            status, _ = await console.post(
                f"/api/tickets/{ticket['id']}/replies", {"text": f"reply {ticket['id']}"}
            )
            assert status == 201
            status, _ = await console.post(
                f"/api/tickets/{ticket['id']}/close", {"resolved": False}
            )
            assert status == 200
        deadline = time.monotonic() + 20
        for ticket in tickets:
            while True:
                _, detail = await console.get(f"/api/tickets/{ticket['id']}")
                outbox = [m for m in detail["messages"] if m["delivery_status"]]
                if all(m["delivery_status"] != "pending" for m in outbox):
                    break
                assert time.monotonic() < deadline, outbox
                await asyncio.sleep(0.3)
            for message in outbox:  # a web conversation's tracker, or refused: never an SMS
                assert message["delivery_status"] in ("delivered", "failed"), message
                if message["delivery_status"] == "failed":
                    assert "not sent" in (message["last_error"] or ""), message
    time.sleep(2)
    numbers = {f"+{victim}", f"+{squatted}", f"whatsapp:+{victim}"}
    assert fake.matching(lambda c: c.platform == "twilio" and c.to() in numbers) == []
