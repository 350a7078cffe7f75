"""Twilio SMS/WhatsApp channel: signatures, forms, numbered options, segments, keywords."""

from __future__ import annotations

import asyncio
import base64
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import redis
from channel_kit import CLARIFY_BUTTONS, FAST, FakeBot, FakePlatform, migrated_database, serve
from rasa.core.channels.channel import UserMessage
from redis_kit import REDIS, require_redis

from askagency.opt_out import OptOutList, normalise_number
from bot.channels import platform
from bot.channels.common import ChannelLocations, ConfigError, split_text
from bot.channels.shared_state import LocalState, RedisState
from bot.channels.sms import (
    Keyword,
    gsm7_length,
    import_legacy_list,
    is_gsm7,
    keyword_of,
    segment_rule,
)
from bot.channels.twilio import (
    SmsInput,
    WhatsAppInput,
    parse_form,
    parse_message,
    signature_of,
    valid_signature,
)

SID = "AC123"
TOKEN = "auth-token"


def sms_credentials(api: str, tmp_path: Path) -> dict[str, Any]:
    """An SMS channel on the fake Twilio API at ``api`` with a migrated product database (the
    shared opt-out table) and a legacy opt-out file to import."""
    return {
        "account_sid": SID,
        "auth_token": TOKEN,
        "from_number": "+15550000000",
        "api_base_url": api,
        "database_url": migrated_database(tmp_path),
        "opt_out_db": str(tmp_path / "legacy_opt_out.db"),
        **FAST,
    }


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for prefix in ("SMS", "WHATSAPP", "TWILIO"):
        for key in ("ACCOUNT_SID", "AUTH_TOKEN", "FROM_NUMBER", "WEBHOOK_URL", "API_BASE_URL"):
            monkeypatch.delenv(f"ASKAGENCY_{prefix}_{key}", raising=False)


def test_signature_matches_twilios_documented_example() -> None:
    params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675310"),
        ("Digits", "1234"),
        ("From", "+14158675310"),
        ("To", "+18005551212"),
    ]
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert signature_of(url, params, "12345") == "GvWf1cFY/Q7PnoempGyD5oXAezc="
    assert valid_signature([url], list(reversed(params)), "GvWf1cFY/Q7PnoempGyD5oXAezc=", "12345")
    # Twilio may sign the URL with or without the default port.
    with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    assert valid_signature([with_port], params, "GvWf1cFY/Q7PnoempGyD5oXAezc=", "12345")
    assert not valid_signature([url], params[1:], "GvWf1cFY/Q7PnoempGyD5oXAezc=", "12345")
    assert not valid_signature([url], params, None, "12345")


def test_form_parsing_and_message_fields() -> None:
    pairs, error = parse_form(b"MessageSid=SM1&From=%2B15551230000&To=%2B1555&Body=Hi+there")
    assert error is None
    (message,) = parse_message(pairs, whatsapp=False).messages
    assert (message.sender, message.text, message.message_id) == ("15551230000", "Hi there", "SM1")

    wa, _ = parse_form(b"MessageSid=SM2&From=whatsapp%3A%2B447700900123&Body=hola")
    assert parse_message(wa, whatsapp=True).messages[0].sender == "447700900123"
    assert not parse_message(wa, whatsapp=False).messages  # wrong webhook: ignored, logged

    # Replies go to E.164 numbers only (and conversation ids stay URL-safe).
    for sender in (b"12345", b"%2B1+2", b"%2B12ab456789"):
        odd, _ = parse_form(b"MessageSid=SM9&Body=hi&From=" + sender)
        assert not parse_message(odd, whatsapp=False).messages

    status, _ = parse_form(b"MessageSid=SM3&MessageStatus=delivered&From=%2B1")
    assert parse_message(status, whatsapp=False).ignored
    no_url, _ = parse_form(b"MessageSid=SM4&From=%2B15551230000&Body=&NumMedia=1")
    assert not parse_message(no_url, whatsapp=False).messages
    media, _ = parse_form(
        b"MessageSid=MM4&From=%2B15551230000&Body=&NumMedia=1&MediaUrl0=https%3A%2F%2Fapi.twilio"
        b".com%2FMedia%2FME1&MediaContentType0=image%2Fjpeg"
    )
    (photo,) = parse_message(media, whatsapp=False).messages  # tests in test_channel_media.py
    assert photo.text == "" and [m.ref for m in photo.media] == ["https://api.twilio.com/Media/ME1"]
    missing, _ = parse_form(b"Body=hi")
    assert "MessageSid" in (parse_message(missing, whatsapp=False).error or "")

    assert parse_form(b"\xff\xfe")[1]
    assert parse_form(b"a=1&&=&b")[1]


def test_sms_segments_depend_on_the_encoding() -> None:
    assert is_gsm7("Liquids: 3.4 oz @ £1 {ok}") and gsm7_length("{}") == 4
    assert segment_rule("plain text")[0] == 160
    assert segment_rule("Prohibido ✈")[0] == 70
    answer = "Laptops should be removed from your bag and placed in a separate bin. " * 6
    limit, measure = segment_rule(answer)
    parts = split_text(answer, limit, measure=measure, mark_parts=True)  # type: ignore[arg-type]
    assert len(parts) == 3 and all(gsm7_length(p) <= 160 for p in parts)
    words = answer.split()
    assert [w for p in parts for w in p.rsplit(" ", 1)[0].split()] == words


@pytest.mark.parametrize(
    ("text", "opted_out", "keyword"),
    [
        ("STOP", False, Keyword.STOP),
        (" unsubscribe ", False, Keyword.STOP),
        ("start", True, Keyword.START),
        ("yes", True, Keyword.START),
        ("yes", False, None),
        ("Help", False, Keyword.HELP),
        ("stop sending me laptops", False, None),
    ],
)
def test_keywords(text: str, opted_out: bool, keyword: Keyword | None) -> None:
    assert keyword_of(text, opted_out) == keyword


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("+15551234567", "+15551234567"),
        ("15551234567", "+15551234567"),
        ("sms-15551234567", "+15551234567"),
        ("whatsapp:+447700900123", "+447700900123"),
        ("+1 (555) 123-4567", "+15551234567"),
        ("+0555", None),
        ("sms-abc", None),
        ("", None),
    ],
)
def test_numbers_are_normalised_to_e164(text: str, number: str | None) -> None:
    assert normalise_number(text) == number


def test_opt_out_list_is_shared_and_kept_per_channel(tmp_path: Path) -> None:
    url = migrated_database(tmp_path)
    replica_a, replica_b = OptOutList(url), OptOutList(url)  # two processes, one database
    replica_a.opt_out("sms", "+15551234567")
    replica_a.opt_out("sms", "+15551234567")  # a repeated STOP is fine
    assert replica_b.is_opted_out("sms", "+15551234567")
    assert not replica_b.is_opted_out("whatsapp", "+15551234567")  # a separate consent
    replica_b.opt_in("sms", "+15551234567")
    assert not replica_a.is_opted_out("sms", "+15551234567")


def test_the_old_per_process_list_is_imported_once(tmp_path: Path) -> None:
    import sqlite3

    legacy = tmp_path / "channel_opt_out.db"
    with sqlite3.connect(legacy) as db:
        db.execute("CREATE TABLE channel_opt_out (address TEXT PRIMARY KEY, opted_out_at REAL)")
        db.executemany(
            "INSERT INTO channel_opt_out VALUES (?, 1.0)",
            [("sms-15551234567",), ("whatsapp-447700900123",), ("telegram-5",)],
        )
    opt_outs = OptOutList(migrated_database(tmp_path))
    assert import_legacy_list(legacy, opt_outs) == 2
    assert opt_outs.is_opted_out("sms", "+15551234567")
    assert opt_outs.is_opted_out("whatsapp", "+447700900123")
    assert not legacy.exists() and (tmp_path / "channel_opt_out.db.imported").exists()
    assert import_legacy_list(legacy, opt_outs) == 0


def test_stop_holds_on_every_replica_and_for_every_spelling_of_the_number(
    tmp_path: Path,
) -> None:
    """H2: a STOP received by one Rasa replica silences the number on another one, also for a
    message addressed without the ``sms-`` prefix (the review's bypass), and after a restart."""

    async def scenario() -> FakePlatform:
        fake = FakePlatform()
        api = await fake.start()
        credentials = sms_credentials(api, tmp_path)
        replica_a = SmsInput.from_credentials(credentials)
        server, base = await serve(FakeBot(), replica_a)
        url = base + "/webhooks/sms/webhook"
        try:
            async with aiohttp.ClientSession() as http:
                form = {"MessageSid": "SMS1", "From": "+15551112222", "To": "+1", "Body": "STOP"}
                body, headers = _signed(url, form)
                async with http.post(url, data=body, headers=headers) as resp:
                    assert resp.status == 200
                await replica_a.drain()
            replica_b = SmsInput.from_credentials(credentials)  # another replica, or a restart
            output = replica_b.get_output_channel()
            for recipient in ("sms-15551112222", "15551112222", "+15551112222"):
                await output.send_text_message(recipient, "The person has closed this chat.")
            await replica_b.http.close()
        finally:
            await server.close()
            await replica_a.http.close()
            await fake.stop()
        return fake

    fake = asyncio.run(scenario())
    bodies = [r.form()["Body"] for r in fake.requests]
    assert len(bodies) == 1 and "unsubscribed" in bodies[0]  # only the STOP confirmation


def _signed(url: str, form: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    body = urlencode(form).encode()
    headers = {
        "X-Twilio-Signature": signature_of(url, sorted(form.items()), TOKEN),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return body, headers


def test_sms_webhook_end_to_end(tmp_path: Path) -> None:
    async def scenario() -> dict[str, Any]:
        fake = FakePlatform()
        api = await fake.start()
        bot = FakeBot()
        channel = SmsInput.from_credentials(sms_credentials(api, tmp_path))
        server, base = await serve(bot, channel)
        url = base + "/webhooks/sms/webhook"
        out: dict[str, Any] = {"codes": []}
        try:
            async with aiohttp.ClientSession() as http:

                async def post(sid: str, text: str, tamper: bool = False) -> int:
                    form = {"MessageSid": sid, "From": "+15551112222", "To": "+1555", "Body": text}
                    body, headers = _signed(url, form)
                    if tamper:
                        body = body.replace(b"Body=", b"Body=x")
                    async with http.post(url, data=body, headers=headers) as resp:
                        await channel.drain()
                        if sid == "SM1":
                            out["twiml"] = await resp.text()
                        return resp.status

                out["codes"].append(await post("SM1", "options"))
                out["codes"].append(await post("SM1", "options"))  # redelivery
                out["codes"].append(await post("SM2", "2"))
                out["codes"].append(await post("SM3", "evil", tamper=True))
                async with http.post(url, data=b"Body=hi") as resp:
                    out["codes"].append(resp.status)  # no signature at all
                body, headers = _signed(url, {"Body": "no sid"})
                async with http.post(url, data=body, headers=headers) as resp:
                    out["codes"].append(resp.status)
                out["codes"].append(await post("SM4", "STOP"))
                out["codes"].append(await post("SM5", "are you there?"))
                await channel.get_output_channel().send_text_message("sms-15551112222", "agent")
                out["codes"].append(await post("SM6", "HELP"))
                out["codes"].append(await post("SM7", "START"))
                out["codes"].append(await post("SM8", "thanks " * 40))
        finally:
            await server.close()
            await channel.http.close()
            await fake.stop()
        out["bot"], out["fake"] = bot, fake
        return out

    out = asyncio.run(scenario())
    assert out["codes"] == [200, 200, 200, 403, 403, 400, 200, 200, 200, 200, 200]
    assert out["twiml"].endswith("<Response></Response>")
    seen = out["bot"].seen
    assert [m.text for m in seen[:2]] == ["options", CLARIFY_BUTTONS[1]["payload"]]
    assert all(m.sender_id == "sms-15551112222" and m.input_channel == "sms" for m in seen)
    assert len(seen) == 3  # STOP, the message while opted out, HELP and START never reach the bot

    sends = out["fake"].sent(f"/2010-04-01/Accounts/{SID}/Messages.json")
    auth = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert all(r.headers["Authorization"] == f"Basic {auth}" for r in sends)
    forms = [r.form() for r in sends]
    assert all(f["To"] == "+15551112222" and f["From"] == "+15550000000" for f in forms)
    bodies = [f["Body"] for f in forms]
    assert bodies[0] == (
        "Did you mean one of these?\n\n1. Can I bring a lighter in my carry-on bag?\n"
        "2. Can I pack a lighter in checked bags?\n3. Torch lighters"
    )
    assert bodies[1] == "You said: " + CLARIFY_BUTTONS[1]["payload"]
    assert "unsubscribed" in bodies[2]  # STOP confirmed; the agent's message is NOT sent
    assert "STOP to stop" in bodies[3]  # HELP
    assert "subscribed again" in bodies[4]  # START
    assert bodies[5].startswith("You said: thanks") and bodies[5].endswith("thanks (1/2)")
    assert bodies[6].endswith("thanks (2/2)")
    assert len(bodies) == 7 and all(len(b) <= 160 for b in bodies)


def test_a_number_texted_back_to_another_replica_selects_the_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two SMS replicas behind a load balancer sharing Redis (the scale profile): replica A
    sends the numbered options, the citizen's "2" reaches replica B, which selects option 2;
    the options are then used up on both."""
    require_redis()
    prefix = f"askagency-test:{uuid.uuid4().hex}"
    url = f"redis://{REDIS[0]}:{REDIS[1]}/2"
    # Each replica its own connection, as two processes; a test prefix (platform.py asks
    # state_for for the configured Redis).
    monkeypatch.setattr(platform, "state_for", lambda _url: RedisState(url, prefix))

    async def scenario() -> tuple[FakeBot, FakePlatform]:
        fake = FakePlatform()
        api = await fake.start()
        bot = FakeBot()
        credentials = sms_credentials(api, tmp_path)
        replicas = [SmsInput.from_credentials(credentials) for _ in range(2)]
        servers = [await serve(bot, replica) for replica in replicas]
        try:
            async with aiohttp.ClientSession() as http:
                for sid, text, index in (
                    ("SMR1", "options", 0),
                    ("SMR2", "2", 1),
                    ("SMR3", "2", 0),
                ):
                    webhook = servers[index][1] + "/webhooks/sms/webhook"
                    form = {"MessageSid": sid, "From": "+15551112222", "To": "+1", "Body": text}
                    body, headers = _signed(webhook, form)
                    async with http.post(webhook, data=body, headers=headers) as resp:
                        assert resp.status == 200
                    await replicas[index].drain()
        finally:
            for (server, _), replica in zip(servers, replicas, strict=True):
                await server.close()
                await replica.http.close()
            await fake.stop()
        return bot, fake

    try:
        bot, fake = asyncio.run(scenario())
        stored = redis.Redis.from_url(url).keys(f"{prefix}:*")
    finally:
        client = redis.Redis.from_url(url)
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
    assert [m.text for m in bot.seen] == ["options", CLARIFY_BUTTONS[1]["payload"], "2"]
    bodies = [r.form()["Body"] for r in fake.requests]
    assert bodies[0].endswith("2. Can I pack a lighter in checked bags?\n3. Torch lighters")
    assert bodies[1:] == ["You said: " + CLARIFY_BUTTONS[1]["payload"], "You said: 2"]
    assert all(b"15551112222" not in key for key in stored)


def test_whatsapp_addresses_and_a_configured_public_url(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[int], FakePlatform, FakeBot]:
        fake = FakePlatform()
        api = await fake.start()
        bot = FakeBot()
        public = "https://bot.example.gov/webhooks/whatsapp/webhook"
        channel = WhatsAppInput.from_credentials(
            {
                "account_sid": SID,
                "auth_token": TOKEN,
                "from_number": "+14155238886",
                "api_base_url": api,
                "webhook_url": public,
                "database_url": migrated_database(tmp_path),
                "opt_out_db": str(tmp_path / "legacy_opt_out.db"),
                **FAST,
            }
        )
        server, base = await serve(bot, channel)
        codes = []
        try:
            async with aiohttp.ClientSession() as http:
                form = {"MessageSid": "SMW1", "From": "whatsapp:+447700900123", "Body": "hola"}
                for signed_url in (public, base + "/webhooks/whatsapp/webhook"):
                    body, headers = _signed(signed_url, form)
                    async with http.post(
                        base + "/webhooks/whatsapp/webhook", data=body, headers=headers
                    ) as r:
                        codes.append(r.status)
                    await channel.drain()
        finally:
            await server.close()
            await channel.http.close()
            await fake.stop()
        return codes, fake, bot

    codes, fake, bot = asyncio.run(scenario())
    assert codes == [200, 403]  # only the registered public URL's signature counts
    assert [m.sender_id for m in bot.seen] == ["whatsapp-447700900123"]
    (sent,) = fake.requests
    assert sent.form() == {
        "To": "whatsapp:+447700900123",
        "From": "whatsapp:+14155238886",
        "Body": "You said: hola",
    }


def test_a_hostile_host_header_is_a_403_not_a_crash(tmp_path: Path) -> None:
    async def scenario() -> list[int]:
        bot = FakeBot()
        channel = SmsInput.from_credentials(
            {"account_sid": SID, "auth_token": TOKEN, "from_number": "+15550000000", **FAST}
        )
        server, base = await serve(bot, channel)
        codes = []
        try:
            async with aiohttp.ClientSession() as http:
                for host in ("127.0.0.1:notaport", "[::1", "bot.example.gov"):
                    body, headers = _signed(base + "/webhooks/sms/webhook", {"MessageSid": "S"})
                    headers = {**headers, "Host": host, "X-Forwarded-Host": host + ":x"}
                    async with http.post(
                        base + "/webhooks/sms/webhook", data=body, headers=headers
                    ) as resp:
                        codes.append(resp.status)
        finally:
            await server.close()
        assert not bot.seen
        return codes

    codes = asyncio.run(scenario())
    assert all(code in (400, 403) for code in codes), codes


def test_messages_of_one_number_are_handled_in_arrival_order(tmp_path: Path) -> None:
    """STOP, START and a question posted back to back: the question is answered (the
    opt-out checks wait for the database, so the three must not race)."""

    async def scenario() -> tuple[FakeBot, FakePlatform]:
        fake = FakePlatform()
        api = await fake.start()
        bot = FakeBot()
        channel = SmsInput.from_credentials(sms_credentials(api, tmp_path))
        server, base = await serve(bot, channel)
        url = base + "/webhooks/sms/webhook"
        try:
            async with aiohttp.ClientSession() as http:
                for sid, text in (("SMA", "STOP"), ("SMB", "START"), ("SMC", "hello")):
                    form = {"MessageSid": sid, "From": "+15553334444", "To": "+1", "Body": text}
                    body, headers = _signed(url, form)
                    async with http.post(url, data=body, headers=headers) as resp:
                        assert resp.status == 200
                await channel.drain()
        finally:
            await server.close()
            await channel.http.close()
            await fake.stop()
        return bot, fake

    bot, fake = asyncio.run(scenario())
    assert [m.text for m in bot.seen] == ["hello"]
    bodies = [r.form()["Body"] for r in fake.requests]
    assert len(bodies) == 3 and bodies[-1] == "You said: hello"


def test_the_opt_out_list_works_on_postgresql_from_rasas_env() -> None:
    """The scale profile: Rasa (SQLAlchemy 1.4, psycopg2) reads the same table the app env
    migrates, given the app's ``postgresql+psycopg://`` URL."""
    from sqlalchemy import MetaData, create_engine

    from askagency.opt_out import database_url, define_table
    from tests.services import PG_URL, fresh_schema

    url = database_url({"ASKAGENCY_DATABASE_URL": PG_URL})
    assert url.startswith("postgresql+psycopg2://")
    with fresh_schema("optout", url) as scoped:
        define_table(MetaData()).create(create_engine(scoped))  # the migration's table
        replica_a, replica_b = OptOutList(scoped), OptOutList(scoped)
        replica_a.opt_out("sms", "+15551234567")
        replica_a.opt_out("sms", "+15551234567")
        assert replica_b.is_opted_out("sms", "+15551234567")
        replica_b.opt_in("sms", "+15551234567")
        assert not replica_a.is_opted_out("sms", "+15551234567")
        replica_a.close()
        replica_b.close()


def test_the_number_written_to_sets_the_location(tmp_path: Path) -> None:
    """A number per airport (issue 22): the channel's ``location`` setting maps the number the
    citizen texted to a location code, set by the server in the message metadata."""

    async def scenario() -> list[UserMessage]:
        fake = FakePlatform()
        api = await fake.start()
        bot = FakeBot()
        credentials = {
            **sms_credentials(api, tmp_path),
            "location": "+13035550100=den, *=ORD",
        }
        channel = SmsInput.from_credentials(credentials)
        server, base = await serve(bot, channel)
        url = base + "/webhooks/sms/webhook"
        try:
            async with aiohttp.ClientSession() as http:
                for sid, to in (("SM1", "+13035550100"), ("SM2", "+13125550100")):
                    form = {"MessageSid": sid, "From": "+15551112222", "To": to, "Body": "hi"}
                    body, headers = _signed(url, form)
                    async with http.post(url, data=body, headers=headers) as resp:
                        assert resp.status == 200
                    await channel.drain()
        finally:
            await server.close()
            await channel.http.close()
            await fake.stop()
        return bot.seen

    seen = asyncio.run(scenario())
    assert [m.metadata["location"] for m in seen] == ["DEN", "ORD"]


@pytest.mark.parametrize(
    ("setting", "default", "by_address"),
    [
        ("", None, {}),
        ("den", "DEN", {}),
        (
            "+13035550100=DEN, +13125550100=ord",
            None,
            {"+13035550100": "DEN", "+13125550100": "ORD"},
        ),
        ("*=ATL,123456=JFK", "ATL", {"123456": "JFK"}),
    ],
)
def test_channel_location_settings(
    setting: str, default: str | None, by_address: dict[str, str]
) -> None:
    parsed = ChannelLocations.parse(setting)
    assert (parsed.default, dict(parsed.by_address)) == (default, by_address)
    assert parsed.for_address("nobody") == default


@pytest.mark.parametrize("setting", ["DEN;drop", "+1303=", "=DEN", "+1303=not a code"])
def test_a_malformed_location_setting_names_the_problem(setting: str) -> None:
    with pytest.raises(ConfigError, match="(?i)location"):
        ChannelLocations.parse(setting, "ASKAGENCY_SMS_LOCATION")


def test_a_persons_reply_after_whatsapps_24_hours_goes_as_the_template(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 21, item 3: WhatsApp refuses free-form text 24 hours after the citizen's last
    message. The citizen's message opens the window (kept in the channels' shared state); an
    agent's reply inside it is text, after it the configured Content Template with the reply as
    variable 1; without a template the reply is sent as text and the operator is told why it
    will be refused. The bot's own messages are never templated."""
    now = [1_000.0]

    async def scenario(template: str) -> FakePlatform:
        folder = tmp_path / (template or "none")
        folder.mkdir()
        fake = FakePlatform()
        api = await fake.start()
        bot = FakeBot()
        channel = WhatsAppInput.from_credentials(
            {
                "account_sid": SID,
                "auth_token": TOKEN,
                "from_number": "+14155238886",
                "api_base_url": api,
                "webhook_url": "https://bot.example.gov/webhooks/whatsapp/webhook",
                "database_url": migrated_database(folder),
                "opt_out_db": str(folder / "legacy.db"),
                "reply_template_sid": template,
                **FAST,
            }
        )
        channel.state = LocalState(clock=lambda: now[0])
        channel.choices.state = channel.state
        server, base = await serve(bot, channel)
        output = channel.get_output_channel()
        agent = {"text": "Hi, Ana here", "custom": {"type": "agent_message", "agent": "Ana"}}
        try:
            async with aiohttp.ClientSession() as http:
                form = {"MessageSid": "SMW7", "From": "whatsapp:+447700900123", "Body": "hola"}
                body, headers = _signed("https://bot.example.gov/webhooks/whatsapp/webhook", form)
                async with http.post(
                    base + "/webhooks/whatsapp/webhook", data=body, headers=headers
                ) as r:
                    assert r.status == 200
                await channel.drain()
            await output.send_response("whatsapp-447700900123", agent)  # within the window
            now[0] += 24 * 3600  # the next day
            await output.send_response("whatsapp-447700900123", agent)
            bot_notice = {"text": "Sorry, nobody could take it", "custom": {"type": "prompt"}}
            await output.send_response("whatsapp-447700900123", bot_notice)
        finally:
            await server.close()
            await channel.http.close()
            await fake.stop()
        return fake

    with_template = asyncio.run(scenario("HX0123456789abcdef"))
    forms = [r.form() for r in with_template.requests]
    assert [f.get("Body") for f in forms] == [
        "You said: hola",
        "Hi, Ana here",
        None,
        "Sorry, nobody could take it",
    ]
    assert forms[2] == {
        "To": "whatsapp:+447700900123",
        "From": "whatsapp:+14155238886",
        "ContentSid": "HX0123456789abcdef",
        "ContentVariables": '{"1": "Hi, Ana here"}',
    }

    now[0] = 1_000.0
    without = asyncio.run(scenario(""))
    assert [r.form().get("Body") for r in without.requests][2] == "Hi, Ana here"
    assert "no reply template is set (ASKAGENCY_WHATSAPP_REPLY_TEMPLATE_SID" in caplog.text
