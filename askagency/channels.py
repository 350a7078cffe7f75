"""Which channel a conversation belongs to, as the server knows it, never as a client names it.

Why: an agent's reply (and the "this conversation is closed" notice) is sent through the channel
recorded on the ticket. With Rasa's ``output_channel=latest`` that was the channel of the last
message, which a REST client could name itself (``"input_channel": "sms"``), so a web visitor
could make the agency text, WhatsApp, DM or Telegram anyone it chose, billed to the agency.

Messaging platforms own a conversation-id namespace: their webhooks (signed by the platform)
create ids ``<channel>-<platform id>`` (``sms-15551234567``, ``telegram-42``; see
bot/channels/platform.py), and the web channels refuse those prefixes. A ticket records a
platform only when the message that opened it came through that platform's webhook: its input
channel is the platform *and* its message id is one the webhook made
(:func:`platform_message_id`; the web channels let Rasa draw a random one, a client cannot
choose it). A message goes out on a platform only when the id carries that platform's prefix
*and* the ticket recorded the same channel; web conversations get the reply pushed to their
socket.io room and kept in the tracker (where REST clients and the widget's history read it).

No dependencies: imported by the Rasa channels (Python 3.10 env), the action server and the
console.
"""

from __future__ import annotations

import hashlib

# The platform channels' names (``PlatformInput.name()``), each also its conversation-id prefix.
PLATFORM_CHANNELS = ("sms", "whatsapp", "telegram", "messenger", "x")
# The web channels (bot/channels/rest.py, socketio.py); a client may not name any other.
WEB_CHANNELS = ("socketio", "rest")
# Web conversations get agent replies through socket.io: pushed to the widget's room (only the
# conversation's own socket is in it) and stored in the tracker for REST clients and history.
WEB_DELIVERY_CHANNEL = "socketio"
# Recorded on a ticket whose conversation claimed a channel it cannot belong to.
UNKNOWN_CHANNEL = "unknown"


class ChannelMismatch(ValueError):
    """The ticket's recorded channel and its conversation id disagree: nothing is sent."""


def platform_of(conversation_id: str) -> str | None:
    """The platform whose namespace the id is in (``sms-1555`` -> ``sms``), else None."""
    prefix = conversation_id.split("-", 1)[0] if "-" in conversation_id else ""
    return prefix if prefix in PLATFORM_CHANNELS else None


def platform_message_id(channel: str, platform_id: str) -> str:
    """The Rasa message id a platform webhook gives a message (``sms-SM0123...``)."""
    return f"{channel}-{platform_id}"


def trusted_channel(
    conversation_id: str, input_channel: str | None, message_id: str | None = None
) -> str:
    """The channel to record on a ticket: the one the conversation can really belong to.

    A platform id keeps its platform only when the message came in through that platform's
    webhook (``input_channel`` and ``message_id`` both say so); a web id keeps the web channel
    it used. Anything else (a platform name claimed by a web client, an empty or unknown name)
    is recorded as :data:`UNKNOWN_CHANNEL` for a platform id (nothing will be sent) and as the
    web delivery channel for a web id.
    """
    claimed = (input_channel or "").strip()
    platform = platform_of(conversation_id)
    if platform is not None:
        from_webhook = (message_id or "").startswith(platform_message_id(platform, ""))
        return platform if claimed == platform and from_webhook else UNKNOWN_CHANNEL
    return claimed if claimed in WEB_CHANNELS else WEB_DELIVERY_CHANNEL


def delivery_channel(conversation_id: str, recorded: str | None) -> str:
    """The output channel for a reply to ``conversation_id`` whose ticket recorded ``recorded``.

    Raises :class:`ChannelMismatch` when they disagree (an ``sms`` ticket on a non-``sms-`` id,
    a platform id recorded as anything but its platform): such a ticket was opened by someone
    who could not receive messages on that channel, so nothing is sent.
    """
    recorded = (recorded or "").strip()
    platform = platform_of(conversation_id)
    if platform is not None:
        if recorded != platform:
            raise ChannelMismatch(
                f"conversation {conversation_id[:40]!r} is a {platform} conversation but its "
                f"ticket recorded channel {recorded[:20]!r}: not sent"
            )
        return platform
    if recorded in PLATFORM_CHANNELS:
        raise ChannelMismatch(
            f"ticket recorded channel {recorded!r} but conversation {conversation_id[:40]!r} "
            f"is not a {recorded} conversation (no '{recorded}-' prefix): not sent"
        )
    return WEB_DELIVERY_CHANNEL


def log_ref(conversation_id: str) -> str:
    """A stable, short stand-in for a conversation id in log lines (``sms:1f0c2a9b``).

    Platform ids are phone numbers and account ids, and logs are kept outside the privacy
    tools' reach (``privacy delete`` / ``purge``); the hash still lets an operator follow one
    conversation through the logs, or find it by hashing an id they already have.
    """
    digest = hashlib.blake2b(conversation_id.encode("utf-8", "replace"), digest_size=4)
    return f"{platform_of(conversation_id) or 'web'}:{digest.hexdigest()}"
