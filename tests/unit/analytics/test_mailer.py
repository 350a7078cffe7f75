"""The weekly report e-mail, end to end against a real SMTP server (aiosmtpd on a loopback port).

The seeded scenario's week is Monday 2026-03-02 to Sunday 2026-03-08 (UTC); the schedule is
"mon 08:00", so the e-mail of that week is due from Monday 2026-03-09 08:00. Every "now" is
given explicitly or through the product's injectable clock, never the machine's.
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
import ssl
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from agencyctl.cli import app
from analytics.consumer import Consumer
from analytics.delivery import (
    ReportDelivery,
    is_due,
    next_due,
    report_week,
    scheduled_at,
    send_weekly,
)
from askagency.clock import FakeClock, use_clock
from askagency.config import Settings, get_settings
from askagency.db import session_scope
from askagency.paths import PROJECT_ROOT
from askagency.ports import free_port
from askagency.smtp import MailError, send
from tests.smtp_server import SmtpServer, tls_of
from tests.unit.analytics.test_scenario import seed

RECIPIENTS = ["director@agency.example", "deputy@agency.example"]
SENDER = "AskAgency <askagency@agency.example>"
DUE = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)  # Monday 08:00 UTC: the scenario week's e-mail
A4_POINTS = (595.0, 842.0)
HIGHLIGHT = "Negative sentiment was 33.3% of conversations"


# --- a real SMTP server ------------------------------------------------------------------------


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(free_port()) as server:
        yield server


def configure(monkeypatch: pytest.MonkeyPatch, port: int, **extra: str) -> Settings:
    """The process's settings (environment variables, as in production) for the SMTP server at
    127.0.0.1:``port``, on top of the test's data folder and database."""
    values = {
        "ASKAGENCY_SMTP_HOST": "127.0.0.1",
        "ASKAGENCY_SMTP_PORT": str(port),
        "ASKAGENCY_SMTP_SECURITY": "none",
        "ASKAGENCY_SMTP_TIMEOUT_S": "5",
        "ASKAGENCY_REPORT_FROM": SENDER,
        "ASKAGENCY_REPORT_RECIPIENTS": json.dumps(RECIPIENTS),
        "ASKAGENCY_REPORT_SCHEDULE": "mon 08:00",
        "ASKAGENCY_REPORT_WEEKS": "4",
        **extra,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture
def seeded(db_session: Session) -> Session:
    seed(db_session)
    return db_session


@pytest.fixture
def settings(seeded: Session, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> Settings:
    return configure(monkeypatch, smtp.port)


# --- what a PDF looks like ---------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedPdf:
    pages: int
    size: tuple[float, float]  # of the first page, in points
    png: bytes  # the first page rendered
    ink: float  # share of its pixels that are not (near) white


def render_pdf_page(data: bytes, docs_image: bool = False) -> RenderedPdf:
    """Renders the first page with PDFium (what Chrome uses) to a PNG; the ink share tells a
    real page from a blank one. With ``docs_image`` (one test: the page with every part),
    ``ASKAGENCY_UPDATE_SCREENSHOTS=1`` refreshes the docs' image."""
    import pypdfium2

    document = pypdfium2.PdfDocument(data)
    try:
        page = document[0]
        size = page.get_size()
        if docs_image and os.environ.get("ASKAGENCY_UPDATE_SCREENSHOTS") == "1":
            page.render(scale=1.6).to_pil().save(PROJECT_ROOT / "docs/screenshots/report-page.png")
        image = page.render(scale=1).to_pil().convert("L")
        histogram = image.histogram()
        ink = sum(histogram[:200]) / (image.width * image.height)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return RenderedPdf(len(document), size, buffer.getvalue(), ink)
    finally:
        document.close()


def attachments(message: EmailMessage) -> dict[str, tuple[str, bytes]]:
    return {
        part.get_filename(): (part.get_content_type(), part.get_content())
        for part in message.iter_attachments()
    }


def plain(output: str) -> str:
    """CLI output without Rich's error box and line breaks."""
    return " ".join(output.replace("│", " ").split())


def delivery_rows() -> list[ReportDelivery]:
    with session_scope() as session:
        return list(session.scalars(select(ReportDelivery).order_by(ReportDelivery.id)))


# --- the e-mail --------------------------------------------------------------------------------


def test_the_weekly_email_arrives_once_with_the_pdf_and_the_csvs(
    settings: Settings, smtp: SmtpServer, tmp_path: Path
) -> None:
    result = send_weekly(settings, DUE, if_due=True)
    assert (result.outcome, result.week_start) == ("sent", date(2026, 3, 2))
    assert result.message == (
        "Sent the report of the week of 2026-03-02 to director@agency.example, "
        "deputy@agency.example."
    )
    ((mail_from, rcpt_tos, message),) = smtp.messages
    assert (mail_from, rcpt_tos) == ("askagency@agency.example", RECIPIENTS)
    assert message["Subject"] == "AskAgency weekly report, week of 2026-03-02"
    assert message["To"] == "director@agency.example, deputy@agency.example"
    assert message["Auto-Submitted"] == "auto-generated"
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "Scope: 2026-03-02 to 2026-03-08 (7 days, UTC)." in text
    assert f"* {HIGHLIGHT} (no scored conversation the week before)" in text
    assert "Conversations" in text and "6 (13 messages)" in text
    assert "Staff hours saved" in text and "0.2 h, 0.01 FTE" in text
    assert "The week before (2026-02-23): 0 conversations" in text

    files = attachments(message)
    assert set(files) == {
        "askagency-report-2026-03-02.pdf",
        "askagency-report-2026-03-02-csv.zip",
    }
    content_type, pdf = files["askagency-report-2026-03-02.pdf"]
    assert content_type == "application/pdf" and pdf.startswith(b"%PDF")
    page = render_pdf_page(pdf)
    (tmp_path / "weekly.png").write_bytes(page.png)  # for a person to look at when it fails
    assert page.pages == 1
    assert page.size == pytest.approx(A4_POINTS, abs=1)
    assert page.png.startswith(b"\x89PNG")
    assert page.ink > 0.01, "the rendered page is blank"

    content_type, zipped = files["askagency-report-2026-03-02-csv.zip"]
    assert content_type == "application/zip"
    with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
        names = set(archive.namelist())
        headline = archive.read("headline.csv").decode()
    assert {"headline.csv", "by_location.csv", "weekly_trend.csv", "week_over_week.csv"} <= names
    assert headline.splitlines()[1].startswith("Conversations,6")

    again = send_weekly(settings, DUE + timedelta(hours=1), if_due=True)
    assert again.outcome == "already_sent" and "already sent on 2026-03-09 08:" in again.message
    forced = send_weekly(settings, DUE + timedelta(hours=2))  # without --if-due: still once
    assert forced.outcome == "already_sent"
    assert len(smtp.messages) == 1
    (row,) = delivery_rows()
    assert (row.week_start, row.scope, row.status, row.attempts) == (
        date(2026, 3, 2),
        "all",
        "sent",
        1,
    )
    assert row.recipients == "director@agency.example, deputy@agency.example"
    assert row.sent_at is not None and row.sent_at >= DUE and row.error is None


def pdf_text(data: bytes) -> str:
    """The words PDFium reads off the first page, on one line."""
    import pypdfium2

    document = pypdfium2.PdfDocument(data)
    try:
        return " ".join(document[0].get_textpage().get_text_range().split())
    finally:
        document.close()


def test_the_email_and_the_page_name_the_weeks_gaps(
    seeded: Session, settings: Settings, smtp: SmtpServer, tmp_path: Path
) -> None:
    """What the bot could not answer directly that week, most asked first, and what
    out-of-scope entries took: the part of the report that says where the FAQs fall short."""
    from knowledge_base.unanswered import record_unanswered

    asked = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
    for text, reason, entry in [
        ("Can I bring a drone?", "low_confidence", None),
        ("can i bring a drone", "clarified", None),
        ("is the $5 fee or $10 fee refundable", "handoff", None),
        ("cancel my flight", "out_of_scope", "out-of-scope-bookings"),
        ("refund my ticket", "out_of_scope", "out-of-scope-bookings"),
        ("renew my passport", "out_of_scope", "out-of-scope-passports"),
    ]:
        record_unanswered(seeded, text, reason, top_faq_id=entry, now=asked)
    record_unanswered(seeded, "asked the week before", "low_confidence", now=asked - timedelta(7))
    seeded.commit()

    assert send_weekly(settings, DUE, if_due=True).outcome == "sent"
    ((_, _, message),) = smtp.messages
    text = message.get_body(preferencelist=("plain",)).get_content()
    lines = text.splitlines()  # the message's lines end in CRLF
    gaps = lines[lines.index("Gaps") + 1 : lines.index("Gaps") + 3]
    assert gaps == [
        "* Asked most without a direct answer: “Can I bring a drone?” (2), "
        "“is the $5 fee or $10 fee refundable” (1).",
        "* Not answered by design (out-of-scope entries): out-of-scope-bookings (2), "
        "out-of-scope-passports (1).",
    ]
    pdf = attachments(message)["askagency-report-2026-03-02.pdf"][1]
    # The page docs/metrics.md shows.
    (tmp_path / "gaps.png").write_bytes(render_pdf_page(pdf, docs_image=True).png)
    words = pdf_text(pdf)
    # Citizens' words print as typed: a "$" pair is not read as a formula.
    assert "“Can I bring a drone?” (2), “is the $5 fee or $10 fee refundable” (1)." in words
    assert "out-of-scope-bookings (2), out-of-scope-passports (1)." in words
    assert "asked the week before" not in words + text


def test_two_senders_at_once_send_one_email(settings: Settings, smtp: SmtpServer) -> None:
    """Two replicas (threads here, each with its own connections) ask at the same moment."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: send_weekly(settings, DUE, if_due=True), range(2)))
    assert sorted(r.outcome for r in results) in (
        ["already_sent", "sent"],
        ["in_progress", "sent"],
    )
    assert len(smtp.messages) == 1


def test_smtp_server_down_is_recorded_and_a_later_run_sends(
    seeded: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()  # nothing listens there yet
    settings = configure(monkeypatch, port)
    failed = send_weekly(settings, DUE, if_due=True)
    assert failed.outcome == "failed" and not failed.ok
    assert f"cannot send through SMTP server 127.0.0.1:{port} (none)" in failed.message
    assert "Connection refused" in failed.message
    assert failed.message.endswith("Recorded as failed; the next run tries again.")
    (row,) = delivery_rows()
    assert row.status == "failed" and f"127.0.0.1:{port}" in (row.error or "")

    # A scheduler asking again within RETRY_AFTER does not hammer the server.
    soon = send_weekly(settings, DUE + timedelta(minutes=5), if_due=True)
    assert soon.outcome == "retry_later" and "tried again 10 minutes after" in soon.message

    with SmtpServer(port) as server:
        later = send_weekly(settings, DUE + timedelta(minutes=11), if_due=True)
        assert later.outcome == "sent"
        assert len(server.messages) == 1
    (row,) = delivery_rows()
    assert (row.status, row.attempts, row.error) == ("sent", 2, None)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_login_and_a_refused_password_never_shows_the_password(
    seeded: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"reports",
            b"s3cret-pass",
        )
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd replies 535

    port = free_port()
    kwargs = {"authenticator": authenticator, "auth_require_tls": False, "auth_required": True}
    with SmtpServer(port, **kwargs) as server:
        settings = configure(
            monkeypatch,
            port,
            ASKAGENCY_SMTP_USERNAME="reports",
            ASKAGENCY_SMTP_PASSWORD="wrong-horse",
        )
        assert "wrong-horse" not in repr(settings) and "wrong-horse" not in str(settings)
        failed = send_weekly(settings, DUE)
        assert failed.outcome == "failed"
        assert f"SMTP server 127.0.0.1:{port} (none) refused the login of 'reports': 535" in (
            failed.message
        )
        assert "wrong-horse" not in failed.message
        assert "wrong-horse" not in (delivery_rows()[0].error or "")
        assert server.messages == []

        settings = configure(
            monkeypatch,
            port,
            ASKAGENCY_SMTP_USERNAME="reports",
            ASKAGENCY_SMTP_PASSWORD="s3cret-pass",
        )
        assert send_weekly(settings, DUE).outcome == "sent"
        assert len(server.messages) == 1


def test_send_needs_a_server_a_sender_and_recipients(settings: Settings) -> None:
    message = EmailMessage()
    with pytest.raises(MailError, match="set ASKAGENCY_SMTP_HOST"):
        send(message, settings.model_copy(update={"smtp_host": ""}))
    nobody = settings.model_copy(update={"report_from": ""})
    result = send_weekly(nobody, DUE, to=["x@agency.example"])
    assert result.outcome == "failed" and "set ASKAGENCY_REPORT_FROM" in result.message


# --- TLS: STARTTLS and TLS from the start, against a local server with its own CA -------------


@dataclass(frozen=True)
class Pki:
    """A throwaway CA and certificates it signed, as PEM files."""

    ca_file: Path  # what ASKAGENCY_SMTP_CA_FILE points at
    cert_file: Path  # the server's, for 127.0.0.1 and localhost
    key_file: Path
    other_cert_file: Path  # signed by the same CA, but for mail.agency.example only
    other_key_file: Path

    def server_context(self, *, other_name: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        if other_name:
            context.load_cert_chain(self.other_cert_file, self.other_key_file)
        else:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Made at test time with `cryptography` (a test dependency, imported here so that a
    checkout without it fails only these tests). The validity is fixed, 2000 to 9999, so the
    certificates are valid whatever the machine's clock says; nothing reads the time."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder = tmp_path_factory.mktemp("pki")
    not_before = datetime(2000, 1, 1, tzinfo=UTC)
    not_after = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return path

    def write_cert(cert: x509.Certificate, path: Path) -> Path:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    def usage(signs_certificates: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=signs_certificates,
            crl_sign=signs_certificates,
            encipher_only=False,
            decipher_only=False,
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_usage = usage(signs_certificates=True)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("AskAgency test CA"))
        .issuer_name(name("AskAgency test CA"))
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(ca_usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    def server_cert(serial: int, names: list[x509.GeneralName]) -> tuple[x509.Certificate, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        server_usage = usage(signs_certificates=False)
        ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        cert = (
            x509.CertificateBuilder()
            .subject_name(name("AskAgency test SMTP server"))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(server_usage, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), False
            )
            .sign(ca_key, hashes.SHA256())
        )
        return cert, key

    loopback = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    cert, key = server_cert(2, loopback)
    other_cert, other_key = server_cert(3, [x509.DNSName("mail.agency.example")])
    return Pki(
        ca_file=write_cert(ca_cert, folder / "agency-ca.pem"),
        cert_file=write_cert(cert, folder / "smtp.pem"),
        key_file=write_key(key, folder / "smtp-key.pem"),
        other_cert_file=write_cert(other_cert, folder / "other.pem"),
        other_key_file=write_key(other_key, folder / "other-key.pem"),
    )


def starttls_server(pki: Pki, **kwargs: Any) -> SmtpServer:
    """A relay on port 587's terms: offers STARTTLS and refuses mail until it is used."""
    return SmtpServer(
        free_port(), tls_context=pki.server_context(), require_starttls=True, **kwargs
    )


def ssl_server(pki: Pki, *, other_name: bool = False) -> SmtpServer:
    """A relay on port 465's terms: TLS from the first byte. (aiosmtpd 1.4.6's Controller checks
    that it is up with its own TLS connection that verifies nothing, so it needs no host name.)"""
    return SmtpServer(free_port(), ssl_context=pki.server_context(other_name=other_name))


def small_message(subject: str = "TLS check") -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = SENDER
    message["To"] = ", ".join(RECIPIENTS)
    message.set_content("Sent over TLS.\n")
    return message


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_the_email_arrives_over_tls_verified_against_the_agencys_ca(
    security: str, pki: Pki, tmp_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = starttls_server(pki) if security == "starttls" else ssl_server(pki)
    with server:
        settings = configure(
            monkeypatch,
            server.port,
            ASKAGENCY_SMTP_SECURITY=security,
            ASKAGENCY_SMTP_CA_FILE=str(pki.ca_file),
        )
        assert settings.smtp_ca_file == str(pki.ca_file)
        assert send(small_message(), settings) == {}
        ((mail_from, rcpt_tos, message),) = server.messages
    assert (mail_from, rcpt_tos, message["Subject"]) == (
        "askagency@agency.example",
        RECIPIENTS,
        "TLS check",
    )
    (version,) = server.inbox.tls
    assert version is not None and version.startswith("TLSv1.")
    assert server.inbox.starttls == [security == "starttls"]


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_a_certificate_the_client_cannot_verify_stops_the_send(
    security: str, pki: Pki, tmp_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the CA file the system's trust store is used, which does not know the test CA."""
    server = starttls_server(pki) if security == "starttls" else ssl_server(pki)
    with server:
        settings = configure(monkeypatch, server.port, ASKAGENCY_SMTP_SECURITY=security)
        assert settings.smtp_ca_file == ""
        with pytest.raises(MailError) as failed:
            send(small_message(), settings)
        assert server.messages == []
    text = str(failed.value)
    assert text.startswith(f"SMTP server 127.0.0.1:{server.port} ({security}): TLS failed, ")
    assert "certificate verify failed: unable to get local issuer certificate" in text
    assert "set ASKAGENCY_SMTP_CA_FILE" in text


def test_the_host_name_is_verified_even_with_the_right_ca(
    pki: Pki, tmp_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A certificate from the trusted CA, but for another name: refused."""
    with ssl_server(pki, other_name=True) as server:
        settings = configure(
            monkeypatch,
            server.port,
            ASKAGENCY_SMTP_SECURITY="ssl",
            ASKAGENCY_SMTP_CA_FILE=str(pki.ca_file),
        )
        with pytest.raises(MailError, match="certificate verify failed: IP address mismatch"):
            send(small_message(), settings)
        assert server.messages == []


def test_a_plain_client_is_refused_by_a_server_that_requires_starttls(
    pki: Pki, tmp_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with starttls_server(pki) as server:
        settings = configure(monkeypatch, server.port, ASKAGENCY_SMTP_SECURITY="none")
        with pytest.raises(MailError) as failed:
            send(small_message(), settings)
        assert server.messages == []
    assert str(failed.value) == (
        f"SMTP server 127.0.0.1:{server.port} (none) answered 530 Must issue a STARTTLS "
        "command first"
    )


def test_starttls_against_a_server_without_it_never_falls_back_to_plain_text(
    pki: Pki, tmp_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpServer(free_port()) as server:  # plain SMTP, no STARTTLS offered
        settings = configure(
            monkeypatch,
            server.port,
            ASKAGENCY_SMTP_SECURITY="starttls",
            ASKAGENCY_SMTP_CA_FILE=str(pki.ca_file),
            ASKAGENCY_SMTP_USERNAME="reports",
            ASKAGENCY_SMTP_PASSWORD="s3cret-pass",
        )
        with pytest.raises(MailError) as failed:
            send(small_message(), settings)
        assert server.messages == []
    text = str(failed.value)
    assert text.startswith(
        f"SMTP server 127.0.0.1:{server.port} (starttls) does not offer STARTTLS, so nothing was "
        "sent"
    )
    assert "ASKAGENCY_SMTP_SECURITY" in text and "s3cret-pass" not in text


@pytest.mark.parametrize("problem", ["missing", "not PEM", "a folder"])
def test_a_ca_file_that_cannot_be_used_is_a_clear_error(
    problem: str, pki: Pki, tmp_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca_file = tmp_path / "agency-ca.pem"
    if problem == "not PEM":
        ca_file.write_text("this is not a certificate\n")
    elif problem == "a folder":
        ca_file.mkdir()
    with starttls_server(pki) as server:
        settings = configure(
            monkeypatch,
            server.port,
            ASKAGENCY_SMTP_SECURITY="starttls",
            ASKAGENCY_SMTP_CA_FILE=str(ca_file),
        )
        with pytest.raises(MailError) as failed:
            send(small_message(), settings)
        assert server.messages == []
    text = str(failed.value)
    assert text.startswith(f"cannot use ASKAGENCY_SMTP_CA_FILE='{ca_file}': ")
    assert "readable PEM file of the CA" in text
    expected = {
        "missing": "No such file or directory",
        "not PEM": "not a usable PEM certificate file (NO_CERTIFICATE_OR_CRL_FOUND)",
        "a folder": "Is a directory",
    }
    assert expected[problem] in text


def test_the_login_goes_over_tls_only(
    seeded: Session, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The weekly e-mail, end to end, with a login on a relay that offers AUTH only after
    STARTTLS (aiosmtpd's auth_require_tls): the password is only ever sent encrypted."""
    logins: list[tuple[bytes, str | None]] = []  # (login, TLS version at the time)

    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login, tls_of(server)))
        return AuthResult(success=(data.login, data.password) == (b"reports", b"s3cret-pass"))

    kwargs = {"authenticator": authenticator, "auth_require_tls": True, "auth_required": True}
    with starttls_server(pki, **kwargs) as server:
        login = {"ASKAGENCY_SMTP_USERNAME": "reports", "ASKAGENCY_SMTP_PASSWORD": "s3cret-pass"}
        settings = configure(
            monkeypatch,
            server.port,
            ASKAGENCY_SMTP_SECURITY="starttls",
            ASKAGENCY_SMTP_CA_FILE=str(pki.ca_file),
            **login,
        )
        result = send_weekly(settings, DUE)
        assert result.outcome == "sent", result.message
        ((_, rcpt_tos, message),) = server.messages
        assert rcpt_tos == RECIPIENTS
        assert set(attachments(message)) == {
            "askagency-report-2026-03-02.pdf",
            "askagency-report-2026-03-02-csv.zip",
        }
        assert server.inbox.starttls == [True]
        (login_seen,) = logins
        assert login_seen[0] == b"reports"
        assert login_seen[1] is not None and login_seen[1].startswith("TLSv1.")

        # The same login without TLS: the server does not even offer AUTH, nothing is sent.
        plain_settings = configure(
            monkeypatch, server.port, ASKAGENCY_SMTP_SECURITY="none", **login
        )
        with pytest.raises(MailError) as failed:
            send(small_message(), plain_settings)
        assert "SMTP AUTH extension not supported by server" in str(failed.value)
        assert "s3cret-pass" not in str(failed.value)
        assert len(logins) == 1 and len(server.messages) == 1


# --- when it is due ----------------------------------------------------------------------------


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "zone", "moment"),
    [
        # The Monday boundary: due from Monday 08:00, and still due on Sunday night.
        ("mon 08:00", "UTC", utc(2026, 3, 9, 8, 0)),
        # Denver moves to daylight time on Sunday 2026-03-08: 08:00 that Sunday is 14:00 UTC,
        # not the 15:00 UTC that week's Monday offset would give.
        ("sun 08:00", "America/Denver", utc(2026, 3, 8, 14, 0)),
        # 02:30 does not exist that day in Denver: it is taken as 03:30 MDT.
        ("sun 02:30", "America/Denver", utc(2026, 3, 8, 9, 30)),
        # 01:30 happens twice on Sunday 2026-11-01 in Denver: the first one (MDT) counts.
        ("sun 01:30", "America/Denver", utc(2026, 11, 1, 7, 30)),
        # Auckland (UTC+13): Monday 08:00 there is still Sunday evening in UTC.
        ("mon 08:00", "Pacific/Auckland", utc(2026, 3, 8, 19, 0)),
        # Auckland leaves daylight time on Sunday 2026-04-05 (03:00 -> 02:00): the first 02:30.
        ("sun 02:30", "Pacific/Auckland", utc(2026, 4, 4, 13, 30)),
        # ...and enters it on Sunday 2026-09-27 (02:00 -> 03:00): Monday 08:00 is UTC+13 again.
        ("mon 08:00", "Pacific/Auckland", utc(2026, 9, 27, 19, 0)),
    ],
)
def test_is_due_from_the_scheduled_moment_of_the_agencys_week(
    schedule: str, zone: str, moment: datetime
) -> None:
    local_monday = moment.astimezone(ZoneInfo(zone)).date()
    local_monday -= timedelta(days=local_monday.weekday())
    assert scheduled_at(local_monday, schedule, zone) == moment
    assert not is_due(moment - timedelta(seconds=1), schedule, zone)
    assert is_due(moment, schedule, zone)
    assert next_due(moment - timedelta(minutes=1), schedule, zone) == moment
    # Due until the agency's week ends; the new week waits for its own moment.
    week_end = datetime.combine(local_monday + timedelta(days=7), time.min, ZoneInfo(zone))
    assert is_due(week_end.astimezone(UTC) - timedelta(seconds=1), schedule, zone)
    assert not is_due(week_end.astimezone(UTC), schedule, zone)
    # What is sent is the week before the current one, on the agency's calendar.
    assert report_week(moment, zone) == local_monday - timedelta(days=7)


def test_nothing_is_due_without_a_schedule(settings: Settings) -> None:
    assert not is_due(DUE, "", "UTC")
    quiet = settings.model_copy(update={"report_schedule": ""})
    result = send_weekly(quiet, DUE, if_due=True)
    assert result.outcome == "not_due" and "ASKAGENCY_REPORT_SCHEDULE is empty" in result.message


def test_a_bad_schedule_is_refused_with_the_expected_form(
    tmp_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASKAGENCY_REPORT_SCHEDULE", "every monday")
    get_settings.cache_clear()
    with pytest.raises(ValueError, match='such as "mon 08:00"'):
        get_settings()
    monkeypatch.setenv("ASKAGENCY_REPORT_SCHEDULE", "Monday 8:00")
    get_settings.cache_clear()
    assert get_settings().report_schedule == "mon 08:00"


# --- the command and the consumer --------------------------------------------------------------


def test_report_send_command(settings: Settings, smtp: SmtpServer) -> None:
    runner = CliRunner()
    clock = FakeClock(DUE - timedelta(minutes=1))
    with use_clock(clock):
        early = runner.invoke(app, ["report", "send", "--if-due"])
        assert early.exit_code == 0, early.output
        assert "Not due yet: the next e-mail goes out on 2026-03-09 08:00 UTC" in early.output
        assert smtp.messages == []

        clock.advance(minutes=1)
        sent = runner.invoke(app, ["report", "send", "--if-due"])
        assert sent.exit_code == 0, sent.output
        assert "Sent the report of the week of 2026-03-02" in sent.output
        again = runner.invoke(app, ["report", "send", "--if-due"])
        assert again.exit_code == 0 and "already sent" in again.output
        assert len(smtp.messages) == 1

        # An ad-hoc copy of any full week to another address: sent, not recorded.
        copy = runner.invoke(
            app, ["report", "send", "--week-of", "2026-03-04", "--to", "analyst@agency.example"]
        )
        assert copy.exit_code == 0, copy.output
        assert "not recorded as the scheduled delivery" in copy.output
        assert smtp.messages[-1][1] == ["analyst@agency.example"]
        assert len(delivery_rows()) == 1

        unfinished = runner.invoke(app, ["report", "send", "--week-of", "2026-03-09"])
        assert unfinished.exit_code == 2
        assert "the week of 2026-03-09 ends on 2026-03-16 00:00 UTC" in plain(unfinished.output)
        bad = runner.invoke(app, ["report", "send", "--week-of", "next week"])
        assert bad.exit_code == 2 and "--week-of must look like 2026-03-02" in plain(bad.output)
    assert len(smtp.messages) == 2


def test_report_send_command_fails_clearly_when_the_server_is_down(
    seeded: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    configure(monkeypatch, port)
    with use_clock(FakeClock(DUE)):
        result = CliRunner().invoke(app, ["report", "send"])
    assert result.exit_code == 1
    assert f"127.0.0.1:{port}" in result.output and "Recorded as failed" in plain(result.output)


def test_the_consumer_sends_when_due_checking_at_most_once_a_minute(
    settings: Settings, smtp: SmtpServer
) -> None:
    clock = FakeClock(DUE - timedelta(seconds=30))
    with use_clock(clock):
        consumer = Consumer(settings, "sql", once=True)  # no Rasa broker file: one pass
        consumer.run()
        assert smtp.messages == []  # not due yet
        clock.advance(seconds=40)  # due now, but checked 40 s ago
        consumer.run()
        assert smtp.messages == []
        clock.advance(seconds=30)
        consumer.run()
        assert len(smtp.messages) == 1
        clock.advance(minutes=5)
        consumer.run()  # one SELECT: already sent
        assert len(smtp.messages) == 1
        off = Consumer(settings, "sql", once=True, weekly_email=False)
        assert not off.weekly_email


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_one_claim_wins_among_concurrent_senders(backend: str, tmp_path: Path) -> None:
    """The claim itself, four senders at once per week, on both databases: for a new week and
    for the retry of a failed one, exactly one sender gets it."""
    import threading
    from contextlib import ExitStack

    from analytics.delivery import claim, record
    from askagency.db import get_engine
    from askagency.migrate import upgrade
    from tests.services import fresh_schema

    with ExitStack() as stack:
        if backend == "postgresql":
            url = stack.enter_context(fresh_schema())
        else:
            url = f"sqlite:///{tmp_path / 'claims.db'}"
        upgrade(url)
        stack.callback(lambda: get_engine(url).dispose())

        def open_session() -> Any:
            return session_scope(url)

        for i in range(6):
            week = date(2026, 1, 5) + timedelta(days=7 * i)
            if i % 2:
                assert claim(open_session, week, RECIPIENTS, DUE) == "claimed"
                record(open_session, week, "failed", DUE, "refused")
            outcomes: list[str] = []
            start = threading.Barrier(4)

            def sender(
                week: date = week, outcomes: list[str] = outcomes, start: Any = start
            ) -> None:
                start.wait()
                outcomes.append(claim(open_session, week, RECIPIENTS, DUE))

            threads = [threading.Thread(target=sender) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(outcomes) == ["claimed", "sending", "sending", "sending"], (i, outcomes)


def test_the_consumer_process_accepts_no_weekly_email(settings: Settings, smtp: SmtpServer) -> None:
    """`python -m analytics.consumer --no-weekly-email` (how Kubernetes runs it, next to the
    CronJob) starts, drains and sends nothing, whatever the day."""
    import subprocess
    import sys

    env = dict(os.environ)  # the test's settings: data folder, database, SMTP server, schedule
    command = [sys.executable, "-m", "analytics.consumer", "--once", "--no-weekly-email"]
    done = subprocess.run(command, env=env, cwd=PROJECT_ROOT, timeout=120, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert smtp.messages == []
