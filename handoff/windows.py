"""How long after the citizen's last message a platform still takes a person's reply.

Messenger takes an agent's reply (the HUMAN_AGENT tag, bot/channels/messenger.py) up to 7 days
after the citizen's last message; WhatsApp takes free-form text up to 24 hours after it, later
only an approved template (bot/channels/twilio.py, ``ASKAGENCY_WHATSAPP_REPLY_TEMPLATE_SID``).
The console's outbox checks this before it asks Rasa to deliver, so an agent sees at once, in
the inbox, that a reply cannot reach the citizen and why, instead of a reply marked delivered
that the platform dropped. SMS, Telegram, X and the web widget have no such window.
"""

from __future__ import annotations

from datetime import datetime, timedelta

MESSENGER_HUMAN_AGENT = timedelta(days=7)
WHATSAPP_FREE_FORM = timedelta(hours=24)


CONTACT_WORDS = {"email": "an e-mail address", "phone": "a phone number"}


def refusal(
    channel: str,
    last_citizen_at: datetime | None,
    now: datetime,
    whatsapp_template: bool,
    contact_kind: str | None = None,
) -> str | None:
    """Why ``channel`` will refuse a person's reply now, or None when it takes it.
    ``contact_kind``: the kind of contact the citizen left on the ticket, if any
    (handoff.service.relay_citizen_message), which the error then points the agent to."""
    reason = _window_closed(channel, last_citizen_at, now, whatsapp_template)
    if reason is None or contact_kind is None:
        return reason
    what = CONTACT_WORDS.get(contact_kind, "a contact")
    return (
        f"{reason} The citizen left {what} for a reply (shown on this ticket): you may answer "
        "there yourself; nothing is sent to it automatically."
    )


def _window_closed(
    channel: str, last_citizen_at: datetime | None, now: datetime, whatsapp_template: bool
) -> str | None:
    if last_citizen_at is None:
        return None
    waited = now - last_citizen_at
    last = last_citizen_at.strftime("%Y-%m-%d %H:%M UTC")
    if channel == "messenger" and waited > MESSENGER_HUMAN_AGENT:
        return (
            "not sent: Messenger takes a person's reply up to 7 days after the citizen's last "
            f"message, and theirs was on {last}. It can reach them only if they write again."
        )
    if channel == "whatsapp" and waited > WHATSAPP_FREE_FORM and not whatsapp_template:
        return (
            "not sent: WhatsApp takes free-form replies up to 24 hours after the citizen's last "
            f"message, and theirs was on {last}. An administrator can set "
            "ASKAGENCY_WHATSAPP_REPLY_TEMPLATE_SID (an approved reply template) so such replies "
            "go out; then press Retry."
        )
    return None
