"""What the platform channels (Messenger, X, Twilio SMS/WhatsApp, Telegram) share.

* configuration: every option comes from ``ASKAGENCY_<CHANNEL>_<OPTION>`` in the environment,
  else from the channel's block in ``bot/credentials.yml``, else a default. Rasa's own ``${VAR}``
  expansion in credentials.yml stops the server when a variable is unset, so a newcomer without
  platform accounts could not start ``make run``; reading the environment here avoids that. A
  channel whose secret is missing stays mounted and rejects every webhook with 403.
* :class:`TtlSet` / :class:`TtlMap`: in-memory, per-process memory with expiry, behind the
  channels' state of the embedded profile (bot/channels/shared_state.py :class:`LocalState`).
* :class:`Choice`, :func:`choices_of`, :func:`numbered_list`: the options a citizen can pick
  by number (kept per conversation by bot/channels/choices.py).
* :func:`split_text`: long answers split between words to a platform's length limit.
* :func:`user_text`: typed text never reaches Rasa as an intent shortcut (``/intent{...}``).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from askagency import bot_messages as msg
from askagency.location_codes import normalise_code

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MAX_BODY_BYTES = 256 * 1024  # far above any platform's webhook payload for one text message


# --- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One channel setting: its key in credentials.yml, its default and its type."""

    key: str
    default: Any = None
    kind: type = str
    secret: bool = False


class ConfigError(ValueError):
    """A configured value has the wrong type; the message names the setting."""


def _convert(raw: Any, option: Option, source: str) -> Any:
    if raw is None:
        return None
    if option.kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{source}: expected true/false, got {raw!r}")
    if option.kind in (int, float):
        try:
            return option.kind(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: expected a number, got {raw!r}") from exc
    return str(raw)


@dataclass(frozen=True)
class ChannelLocations:
    """Which agency location a platform channel's messages are about (issue 22: "a number per
    airport"). Configured as the channel's ``location`` setting: ``DEN`` for the whole channel,
    or ``+13035550100=DEN, +13125550100=ORD`` per address the citizen wrote to (the Twilio
    number, the Messenger page id, the X account id), with ``*=DEN`` for the rest.

    Set on the server, so a citizen cannot choose it; analytics still counts a code only when
    it is in the agency's location list."""

    default: str | None = None
    by_address: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: str | None, source: str = "location") -> ChannelLocations:
        default: str | None = None
        by_address: dict[str, str] = {}
        for part in (raw or "").split(","):
            part = part.strip()
            if not part:
                continue
            address, has_address, code_text = part.rpartition("=")
            code = normalise_code(code_text)
            if code is None:
                raise ConfigError(f"{source}: {code_text.strip()!r} is not a location code")
            address = address.strip()
            if not has_address or address == "*":
                default = code
            elif address:
                by_address[address] = code
            else:
                raise ConfigError(f"{source}: {part!r} has no address before '='")
        return cls(default=default, by_address=by_address)

    def for_address(self, address: str | None) -> str | None:
        if address is not None and address in self.by_address:
            return self.by_address[address]
        return self.default


def resolve_options(
    env_prefixes: Sequence[str],
    credentials: Mapping[str, Any] | None,
    options: Sequence[Option],
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Environment (``ASKAGENCY_<PREFIX>_<KEY>``, first prefix that has it) wins over
    credentials.yml, which wins over the default. Empty strings count as unset."""
    environ = os.environ if environ is None else environ
    credentials = credentials if isinstance(credentials, Mapping) else {}
    values: dict[str, Any] = {}
    for option in options:
        raw: Any = None
        source = f"credentials.yml key {option.key!r}"
        for prefix in env_prefixes:
            name = f"ASKAGENCY_{prefix}_{option.key.upper()}"
            if environ.get(name, "").strip():
                raw, source = environ[name].strip(), f"environment variable {name}"
                break
        if raw is None:
            candidate = credentials.get(option.key)
            if candidate is not None and str(candidate).strip() != "":
                raw = candidate
        value = _convert(raw, option, source)
        values[option.key] = option.default if value is None else value
    return values


def default_data_dir() -> Path:
    """Where channel state that must survive a restart lives (the SMS opt-out list)."""
    configured = os.environ.get("ASKAGENCY_DATA_DIR", "").strip()
    return Path(configured) if configured else PROJECT_ROOT / "var"


# --- incoming messages -----------------------------------------------------------------------


@dataclass(frozen=True)
class MediaRef:
    """A photo or file a citizen sent, as the platform names it: a URL (Messenger, Twilio, X)
    or a file id to resolve first (Telegram). ``content_type``, ``name`` and ``size`` are what
    the platform declares, never trusted: the action server decides what the bytes are
    (attachments.sanitize); a declared size over the limit only spares a useless download."""

    ref: str
    content_type: str = ""
    name: str = ""
    size: int | None = None


@dataclass(frozen=True)
class Incoming:
    """One citizen message taken from a webhook, before it becomes a Rasa ``UserMessage``.

    ``sender`` is the platform's id (PSID, user id, chat id, phone number); ``message_id`` is
    the platform's id of this delivery, used to drop redeliveries; ``is_payload`` marks a button
    press, whose text is a token to redeem (bot/channels/buttons.py), never a payload.
    """

    sender: str
    text: str
    message_id: str
    is_payload: bool = False
    language: str | None = None
    # The address the citizen wrote to (our number, page or account): picks the location.
    recipient: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Photos and files sent with the message (``text`` is then their caption, maybe "").
    media: tuple[MediaRef, ...] = ()


@dataclass
class Parsed:
    """What a webhook parser found. ``error`` set: the body is malformed (HTTP 400)."""

    messages: list[Incoming] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    error: str | None = None


def json_object(body: bytes) -> dict[str, Any] | Parsed:
    """A webhook body as a JSON object, or a :class:`Parsed` carrying the 400 reason."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: "[[[[..."
        return Parsed(error="body is not valid JSON")
    if not isinstance(data, dict):
        return Parsed(error="body is not a JSON object")
    return data


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def id_text(value: Any) -> str | None:
    """Platform ids arrive as strings or integers; anything else is not an id."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")


def language_tag(value: Any) -> str | None:
    """``"en"``, ``"pt-br"``, ``"es_MX"`` -> the primary subtag, lower case; else None."""
    if not isinstance(value, str) or not _LANGUAGE.match(value.strip()):
        return None
    return re.split(r"[-_]", value.strip())[0].lower()


def user_text(text: str) -> str:
    """Typed text as Rasa should see it: a leading ``/`` would make Rasa skip NLU and trigger
    any intent with any entities (e.g. the console's ``agent_message``), so it is removed.
    Button presses are tokens, redeemed by bot/channels/buttons.py, not typed text."""
    stripped = text.strip()  # Rasa strips before looking for the "/"
    if not stripped.startswith("/"):
        return text
    while stripped.startswith("/"):
        stripped = stripped[1:].strip()
    return stripped


# --- signatures --------------------------------------------------------------------------------


def same_secret(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison; an unset expected secret never matches."""
    if not expected or given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


# --- memory with expiry ------------------------------------------------------------------------

T = TypeVar("T")


class TtlMap(Generic[T]):
    """A bounded dict whose entries expire ``ttl_s`` seconds after they were set.

    Per process and in memory: after a restart, or on another Rasa replica, it is empty.
    """

    def __init__(
        self, ttl_s: float, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self._items: OrderedDict[str, tuple[float, T]] = OrderedDict()

    def _expire(self) -> None:
        now = self.clock()
        while self._items:
            key, (expires, _) = next(iter(self._items.items()))
            if expires > now and len(self._items) <= self.max_entries:
                break
            del self._items[key]

    def set(self, key: str, value: T) -> None:
        self._items.pop(key, None)
        self._items[key] = (self.clock() + self.ttl_s, value)
        self._expire()

    def get(self, key: str) -> T | None:
        self._expire()
        item = self._items.get(key)
        return None if item is None else item[1]

    def pop(self, key: str) -> T | None:
        self._expire()
        item = self._items.pop(key, None)
        return None if item is None else item[1]

    def __len__(self) -> int:
        self._expire()
        return len(self._items)


class TtlSet:
    """Message ids seen recently. :meth:`add` returns False when the id was already there."""

    def __init__(
        self, ttl_s: float, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._map: TtlMap[bool] = TtlMap(ttl_s, max_entries, clock)

    def add(self, key: str) -> bool:
        if self._map.get(key) is not None:
            return False
        self._map.set(key, True)
        return True

    def __contains__(self, key: str) -> bool:
        return self._map.get(key) is not None

    def __len__(self) -> int:
        return len(self._map)


# --- numbered options --------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    title: str
    payload: str


def numbered_list(titles: Sequence[str]) -> str:
    return "\n".join(f"{number}. {title}" for number, title in enumerate(titles, start=1))


# --- splitting long texts ------------------------------------------------------------------------


def _hard_split(word: str, limit: int, measure: Callable[[str], int]) -> list[str]:
    pieces, current = [], ""
    for char in word:
        if current and measure(current + char) > limit:
            pieces.append(current)
            current = ""
        current += char
    if current:
        pieces.append(current)
    return pieces


def _greedy(text: str, limit: int, measure: Callable[[str], int]) -> list[str]:
    chunks: list[str] = []
    current = ""
    for token in re.split(r"(\s+)", text):
        if not token:
            continue
        if token.isspace():
            if current:
                current += token
            continue
        if measure(current + token) <= limit:
            current += token
            continue
        if current.strip():
            chunks.append(current.rstrip())
        current = ""
        if measure(token) <= limit:
            current = token
        else:
            *full, current = _hard_split(token, limit, measure)
            chunks.extend(full)
    if current.strip():
        chunks.append(current.rstrip())
    return chunks


def split_text(
    text: str,
    limit: int,
    measure: Callable[[str], int] = len,
    mark_parts: bool = False,
) -> list[str]:
    """Splits ``text`` into parts of at most ``limit`` (as counted by ``measure``), between
    words; a single word longer than the limit (a long URL) is the only thing ever cut.

    ``mark_parts`` appends `` (i/n)`` to each part when there is more than one, inside the
    limit: SMS parts can arrive out of order.
    """
    text = text.strip()
    if not text:
        return []
    if limit < 1:
        raise ValueError("limit must be positive")
    if measure(text) <= limit:
        return [text]
    if not mark_parts:
        return _greedy(text, limit, measure)
    count = len(_greedy(text, limit, measure))
    for _ in range(5):  # the marker's width depends on the number of parts; settle it
        width = measure(f" ({count}/{count})")
        if width >= limit:
            return _greedy(text, limit, measure)
        parts = _greedy(text, limit - width, measure)
        if len(str(len(parts))) <= len(str(count)):
            break
        count = len(parts)
    total = len(parts)
    return [f"{part} ({index}/{total})" for index, part in enumerate(parts, start=1)]


def truncate(text: str, limit: int, measure: Callable[[str], int] = len) -> str:
    """``text`` cut to ``limit`` with an ellipsis, for button labels."""
    if measure(text) <= limit:
        return text
    out = ""
    for char in text:
        if measure(out + char + "…") > limit:
            break
        out += char
    return out.rstrip() + "…"


def plain_text_of(message: Mapping[str, Any]) -> str:
    """Text of a client message plus any image/attachment link, for text-only platforms."""
    parts = [str(message["text"])] if message.get("text") else []
    for key in ("image", "attachment"):
        value = message.get(key)
        if isinstance(value, dict):  # {"type": "file", "url": ..., "name": ...}
            value = value.get("url")
        if isinstance(value, str) and value:
            parts.append(value)
    return "\n".join(parts)


@dataclass(frozen=True)
class OutgoingMedia:
    """An agent's image or file in a bot message (``image``: a URL; ``attachment``:
    ``{"type": "file", "url", "name", "mime"}``), a signed link the platform fetches itself."""

    url: str
    is_image: bool
    name: str = ""
    mime: str = ""


def _web_url(value: Any) -> str | None:
    return value if isinstance(value, str) and value.startswith(("https://", "http://")) else None


def outgoing_media(message: Mapping[str, Any]) -> OutgoingMedia | None:
    """The image or file a platform can send natively, else None (text only, or no URL)."""
    image = _web_url(message.get("image"))
    if image:
        return OutgoingMedia(image, is_image=True)
    attachment = message.get("attachment")
    if isinstance(attachment, Mapping) and _web_url(attachment.get("url")):
        return OutgoingMedia(
            attachment["url"],
            is_image=attachment.get("type") == "image",
            name=str(attachment.get("name") or ""),
            mime=str(attachment.get("mime") or ""),
        )
    if _web_url(attachment):
        return OutgoingMedia(attachment, is_image=False)
    return None


def text_of(message: Mapping[str, Any], media: OutgoingMedia | None) -> str:
    """The text to send beside ``media`` sent natively (no link), else :func:`plain_text_of`."""
    if media is None:
        return plain_text_of(message)
    return str(message["text"]) if message.get("text") else ""


def choices_of(message: Mapping[str, Any]) -> list[Choice]:
    return [Choice(b["title"], b["payload"]) for b in message.get("buttons") or []]


def log_ignored(channel: str, parsed: Parsed) -> None:
    for reason in parsed.ignored:
        logger.info("%s webhook: ignored %s", channel, reason)


def from_a_person(custom: Any) -> bool:
    """An agent's reply, or the hand-back after an agent closed the ticket: what platforms let
    a person send after their window for automated replies closed (Messenger's HUMAN_AGENT tag,
    WhatsApp's templates)."""
    kind = msg.type_of(custom)
    if kind == msg.MessageType.AGENT_MESSAGE:
        return True
    ended_by = custom.get("ended_by") if isinstance(custom, dict) else None
    return kind == msg.MessageType.HANDOFF_CLOSED and ended_by == msg.HandoffEnd.AGENT.value
