"""Sending one e-mail through the agency's SMTP server (relay): the weekly report
(analytics.mailer) and new-ticket alerts to the on-duty list (handoff.notify) both use it.

:func:`send` uses :mod:`smtplib`: STARTTLS, TLS from the start, or plain for a local relay; login
when a username is configured. Every failure becomes one :class:`MailError` whose message names
the server and its reply, never the password. TLS always verifies the server's certificate and
host name, against the system's trust store or the CA file of ``smtp_ca_file``; a "starttls"
server that does not offer STARTTLS is an error, never a reason to send in plain text.
:func:`new_message` starts every e-mail with the same headers.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from askagency.config import Settings


class MailError(RuntimeError):
    """The e-mail could not be sent; the message says where and why (no secrets)."""


def new_message(
    subject: str, sender: str, recipients: Sequence[str], sent_at: datetime
) -> EmailMessage:
    """An e-mail from AskAgency with its headers set and no body yet; :class:`MailError` when
    no sender is configured."""
    if not sender:
        raise MailError("no sender address: set ASKAGENCY_REPORT_FROM (e.g. askagency@agency.gov)")
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(sent_at)
    # The sender's domain: make_msgid's default looks the host name up in DNS.
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip("> ") or "localhost")
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    return message


def _reply(code: int, text: bytes | str) -> str:
    words = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(words.split())}"


def tls_context(settings: Settings) -> ssl.SSLContext:
    """The client TLS context: certificate and host-name verification always on, trusting the
    CA file of ``smtp_ca_file`` when set, else the system's trust store."""
    ca_file = settings.smtp_ca_file.strip()
    try:
        return ssl.create_default_context(cafile=ca_file or None)
    except (OSError, ValueError) as exc:
        if isinstance(exc, ssl.SSLError):  # read, but no certificate in it
            reason = f"not a usable PEM certificate file ({exc.reason or exc})"
        else:  # missing, a folder, not readable ...
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise MailError(
            f"cannot use ASKAGENCY_SMTP_CA_FILE={ca_file!r}: {reason} (it must be a readable PEM "
            "file of the CA that signed the SMTP server's certificate; empty uses the system's "
            "trust store)"
        ) from exc


def _tls_failure(where: str, exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"{where}: TLS failed, certificate verify failed: {exc.verify_message} (if the "
            "server's certificate is signed by the agency's own CA, set ASKAGENCY_SMTP_CA_FILE to "
            "a PEM file of that CA)"
        )
    return f"{where}: TLS failed ({exc.reason or exc})"


def send(message: EmailMessage, settings: Settings) -> dict[str, tuple[int, bytes]]:
    """Sends ``message`` through the configured SMTP server; returns the recipients the server
    refused when it accepted others (empty: everyone). Raises :class:`MailError` otherwise."""
    host, port = settings.smtp_host.strip(), settings.smtp_port
    if not host:
        raise MailError("no SMTP server: set ASKAGENCY_SMTP_HOST (and _SMTP_PORT, _SMTP_SECURITY)")
    where = f"SMTP server {host}:{port} ({settings.smtp_security})"
    timeout = settings.smtp_timeout_s
    security = settings.smtp_security
    context = tls_context(settings) if security in ("starttls", "ssl") else None
    try:
        if security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            if security == "starttls":
                try:
                    smtp.starttls(context=context)
                except smtplib.SMTPNotSupportedError as exc:
                    raise MailError(
                        f"{where} does not offer STARTTLS, so nothing was sent rather than "
                        "sending in plain text: set ASKAGENCY_SMTP_SECURITY=ssl if the server "
                        "speaks TLS from the start (usually port 465), or =none only for a relay "
                        "on this machine"
                    ) from exc
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            return smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        refused = "; ".join(f"{r}: {_reply(*reply)}" for r, reply in exc.recipients.items())
        raise MailError(f"{where} refused every recipient: {refused}") from exc
    except smtplib.SMTPAuthenticationError as exc:
        raise MailError(
            f"{where} refused the login of {settings.smtp_username!r}: "
            f"{_reply(exc.smtp_code, exc.smtp_error)} (check ASKAGENCY_SMTP_USERNAME and "
            "ASKAGENCY_SMTP_PASSWORD)"
        ) from exc
    except smtplib.SMTPResponseException as exc:
        raise MailError(f"{where} answered {_reply(exc.smtp_code, exc.smtp_error)}") from exc
    except ssl.SSLError as exc:
        raise MailError(_tls_failure(where, exc)) from exc
    except (smtplib.SMTPException, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        raise MailError(f"cannot send through {where}: {reason}") from exc
