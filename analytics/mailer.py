"""The weekly report as an e-mail, and sending it through the agency's SMTP server.

:func:`compose` builds a standard-library :class:`~email.message.EmailMessage`: a plain-text body
that can be read without opening anything (the scope, the highlight sentences and the headline
figures, the same rows as the PDF's headline table) and two attachments, the one-page PDF and a
zip of the CSVs behind every figure. :func:`send` delivers it with :mod:`smtplib` (STARTTLS,
TLS from the start, or plain for a local relay; login when a username is configured) and turns
every failure into one :class:`MailError` whose message names the server and its reply, never
the password. TLS always verifies the server's certificate and host name, against the system's
trust store or the CA file of ``smtp_ca_file``; a "starttls" server that does not offer STARTTLS
is an error, never a reason to send in plain text.
"""

from __future__ import annotations

import smtplib
import ssl
import zipfile
from collections.abc import Mapping, Sequence
from datetime import date
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from io import BytesIO
from pathlib import Path

from analytics.metrics import Dashboard
from analytics.pdf import headline_rows, scope_line
from analytics.weekly import WeeklyTrend
from askagency.clock import now_utc
from askagency.config import Settings


class MailError(RuntimeError):
    """The e-mail could not be sent; the message says where and why (no secrets)."""


def subject(monday: date) -> str:
    return f"AskAgency weekly report, week of {monday.isoformat()}"


def attachment_names(monday: date) -> tuple[str, str]:
    """File names of the PDF and of the CSV zip: dated, so a week's files do not overwrite the
    week before's in a downloads folder."""
    stem = f"askagency-report-{monday.isoformat()}"
    return f"{stem}.pdf", f"{stem}-csv.zip"


def zip_csvs(csvs: Mapping[str, Path], monday: date) -> bytes:
    """One zip of the CSV files (``headline.csv`` ...), stamped with the week's Monday so the same
    week always gives the same bytes."""
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(csvs):
            info = zipfile.ZipInfo(
                f"{name}.csv", date_time=(monday.year, monday.month, monday.day, 0, 0, 0)
            )
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            archive.writestr(info, Path(csvs[name]).read_bytes())
    return buffer.getvalue()


def body(d: Dashboard, weekly: WeeklyTrend | None, monday: date) -> str:
    """The plain-text body: what the report covers, the highlights, the headline figures."""
    pdf_name, zip_name = attachment_names(monday)
    lines = [
        f"AskAgency weekly report, week of {monday.isoformat()} (Monday to Sunday, {d.time_zone}).",
        "",
        f"Scope: {scope_line(d)}.",
        "",
    ]
    highlights = weekly.highlights if weekly is not None else []
    if highlights:
        lines += ["Highlights", *[f"* {sentence}" for sentence in highlights], ""]
    width = max(len(label) for label, _ in headline_rows(d))
    lines += ["Headline", *[f"{label:<{width}}  {value}" for label, value in headline_rows(d)]]
    if weekly is not None and len(weekly.weeks) >= 2:
        before = weekly.weeks[-2]
        lines += [
            "",
            f"The week before ({before.week}): {before.conversations:,} conversations, "
            f"{before.bot_resolved:,} resolved by the bot, {before.handoffs:,} handed off.",
        ]
    m = d.summary.mission
    lines += [
        "",
        f"Staff hours saved: {m.method} {m.assumption}",
        "",
        f"Attached: {pdf_name} (the one-page report) and {zip_name} (one CSV per table, the "
        "data behind every figure). Definitions: docs/metrics.md.",
        "",
        "-- ",
        "Sent by AskAgency (askagency report send).",
        "",
    ]
    return "\n".join(lines)


def compose(
    d: Dashboard,
    weekly: WeeklyTrend | None,
    pdf: Path,
    csvs: Mapping[str, Path],
    monday: date,
    sender: str,
    recipients: Sequence[str],
) -> EmailMessage:
    """The weekly e-mail for the week starting ``monday``: body plus the PDF and the CSV zip."""
    if not sender:
        raise MailError("no sender address: set ASKAGENCY_REPORT_FROM (e.g. askagency@agency.gov)")
    if not recipients:
        raise MailError(
            "no recipients: set ASKAGENCY_REPORT_RECIPIENTS (a JSON list) or pass --to ADDRESS"
        )
    message = EmailMessage()
    message["Subject"] = subject(monday)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(now_utc())
    # The sender's domain: make_msgid's default looks the host name up in DNS.
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip("> ") or "localhost")
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    message.set_content(body(d, weekly, monday))
    pdf_name, zip_name = attachment_names(monday)
    message.add_attachment(
        Path(pdf).read_bytes(), maintype="application", subtype="pdf", filename=pdf_name
    )
    message.add_attachment(
        zip_csvs(csvs, monday), maintype="application", subtype="zip", filename=zip_name
    )
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
