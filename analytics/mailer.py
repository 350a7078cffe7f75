"""The weekly report as an e-mail.

:func:`compose` builds a standard-library :class:`~email.message.EmailMessage`: a plain-text body
that can be read without opening anything (the scope, the highlight sentences and the headline
figures, the same rows as the PDF's headline table) and two attachments, the one-page PDF and a
zip of the CSVs behind every figure. :func:`askagency.smtp.send` delivers it.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from datetime import date
from email.message import EmailMessage
from io import BytesIO
from pathlib import Path

from analytics.metrics import Dashboard
from analytics.pdf import gap_sentences, headline_rows, scope_line
from analytics.weekly import WeeklyTrend
from askagency.clock import now_utc
from askagency.smtp import MailError, new_message


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
    """The plain-text body: what the report covers, the highlights, the headline figures and
    the knowledge base's gaps."""
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
    gaps = gap_sentences(d)
    if gaps:
        lines += ["", "Gaps", *[f"* {sentence}" for sentence in gaps]]
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
    if sender and not recipients:  # a missing sender is reported first, by new_message
        raise MailError(
            "no recipients: set ASKAGENCY_REPORT_RECIPIENTS (a JSON list) or pass --to ADDRESS"
        )
    message = new_message(subject(monday), sender, recipients, now_utc())
    message.set_content(body(d, weekly, monday))
    pdf_name, zip_name = attachment_names(monday)
    message.add_attachment(
        Path(pdf).read_bytes(), maintype="application", subtype="pdf", filename=pdf_name
    )
    message.add_attachment(
        zip_csvs(csvs, monday), maintype="application", subtype="zip", filename=zip_name
    )
    return message
