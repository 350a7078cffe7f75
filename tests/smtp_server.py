"""A real SMTP server on a loopback port (aiosmtpd) for the tests of every e-mail AskAgency
sends: it keeps each message it receives and how its connection was secured."""

from __future__ import annotations

import email
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


def tls_of(server: Any) -> str | None:
    """The TLS version of an aiosmtpd connection ("TLSv1.3"), None for plain text. Works for TLS
    from the start and after STARTTLS (whose transport is then the TLS one)."""
    ssl_object = server.transport.get_extra_info("ssl_object")
    return None if ssl_object is None else str(ssl_object.version())


@dataclass
class Inbox:
    """aiosmtpd handler: keeps every message it is given, and how its connection was secured."""

    messages: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    tls: list[str | None] = field(default_factory=list)  # per message: TLS version or None
    starttls: list[bool] = field(default_factory=list)  # per message: upgraded by STARTTLS

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        self.tls.append(tls_of(server))
        self.starttls.append(session.ssl is not None)  # aiosmtpd sets it on STARTTLS only
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self, port: int, **kwargs: Any) -> None:
        self.inbox = Inbox()
        self.port = port
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=port, **kwargs)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[tuple[str, list[str], EmailMessage]]:
        return self.inbox.messages
