"""Import (preview, then commit) and export of FAQs as CSV or JSON lines."""

from __future__ import annotations

import hashlib
import logging

from aiohttp import web
from sqlalchemy.orm import Session

from askagency.clock import now_utc
from askagency.db import get_sessionmaker
from console.jsonapi import json_error, json_model, parse_query, read_upload
from console.kb.queries import ExportQuery, ImportCommitQuery, ImportQuery
from console.kb.runtime import (
    actor,
    is_published,
    off_loop,
    publish_if,
    read,
    readers,
    write,
    writers,
)
from console.kb.schemas import ImportCommitOut, ImportPreviewOut, ImportRowOut, RowErrorOut
from console.keys import SETTINGS_KEY
from knowledge_base import io as kb_io
from knowledge_base import store

logger = logging.getLogger(__name__)


def _import_options(request: web.Request) -> tuple[str, str, str, bool]:
    query = parse_query(request, ImportQuery)
    return query.format, query.filename, query.mode, query.publish


def preview_import(
    database_url: str, data: bytes, fmt: str, name: str, mode: str, publish: bool
) -> ImportPreviewOut:
    """Validate and dry-run the import in a transaction that is always rolled
    back: the counts are exactly what a commit would do, nothing is written."""
    parsed = kb_io.parse_bytes(data, fmt=fmt, name=name)  # type: ignore[arg-type]
    errors = [RowErrorOut(line=e.line, field=e.field, reason=e.reason) for e in parsed.errors]
    rows: list[ImportRowOut] = []
    session = get_sessionmaker(database_url)()
    try:
        ids = [row.id for row in parsed.rows]
        before = {f.id: f.version for f in store.list_faqs(session) if f.id in set(ids)}
        try:
            kb_io.import_rows(session, parsed.rows, "preview", publish=publish, mode=mode)  # type: ignore[arg-type]
            session.flush()
            after = {f.id: f.version for f in store.list_faqs(session) if f.id in set(ids)}
            for line, row in zip(parsed.lines, parsed.rows, strict=True):
                if row.id not in before:
                    action = "create"
                elif after.get(row.id) != before[row.id]:
                    action = "update"
                else:
                    action = "unchanged"
                rows.append(ImportRowOut(line=line, id=row.id, action=action))  # type: ignore[arg-type]
        except kb_io.ImportRefused as exc:
            errors.append(RowErrorOut(line=0, field=None, reason=str(exc)))
    finally:
        session.rollback()
        session.close()
    counts = {action: sum(r.action == action for r in rows) for action in ("create", "update")}
    counts["unchanged"] = sum(r.action == "unchanged" for r in rows)
    counts["errors"] = len(errors)
    return ImportPreviewOut(
        format=parsed.format,
        sha256=hashlib.sha256(data).hexdigest(),
        counts=counts,
        rows=rows,
        errors=errors,
        can_commit=not errors and bool(rows),
    )


async def _upload(request: web.Request) -> bytes:
    limit = f"{kb_io.MAX_FILE_BYTES // (1024 * 1024)} MB"
    return await read_upload(request, kb_io.MAX_FILE_BYTES, "the CSV or JSONL file", limit)


@writers
async def api_import_preview(request: web.Request) -> web.Response:
    fmt, name, mode, publish = _import_options(request)
    data = await _upload(request)
    url = request.app[SETTINGS_KEY].database_url
    out = await off_loop(preview_import, url, data, fmt, name, mode, publish)
    return json_model(out)


@writers
async def api_import_commit(request: web.Request) -> web.Response:
    query = parse_query(request, ImportCommitQuery)
    fmt, name, mode, publish = query.format, query.filename, query.mode, query.publish
    data = await _upload(request)
    expected_sha = query.sha256
    if expected_sha and expected_sha != hashlib.sha256(data).hexdigest():
        raise json_error(409, "the file differs from the one you previewed; preview it again")
    parsed = await off_loop(kb_io.parse_bytes, data, fmt, name)
    if parsed.errors:
        raise json_error(
            400,
            f"the file has {len(parsed.errors)} problem(s); nothing was imported",
            [{"line": e.line, "field": e.field, "reason": e.reason} for e in parsed.errors],
        )
    who = actor(request)

    def work(session: Session) -> tuple[kb_io.ImportSummary, bool]:
        ids = {row.id for row in parsed.rows}
        was_live = any(is_published(f.status) for f in store.list_faqs(session) if f.id in ids)
        summary = kb_io.import_rows(session, parsed.rows, who, publish=publish, mode=mode)  # type: ignore[arg-type]
        now_live = any(is_published(f.status) for f in store.list_faqs(session) if f.id in ids)
        return summary, (was_live or now_live) and (summary.created + summary.updated) > 0

    summary, live = await write(request, work)
    out = ImportCommitOut(
        created=summary.created,
        updated=summary.updated,
        unchanged=summary.unchanged,
        index=await publish_if(request, live),
    )
    return json_model(out)


@readers
async def api_export(request: web.Request) -> web.StreamResponse:
    import io

    query = parse_query(request, ExportQuery)
    fmt, status_param = query.format, query.status
    status = None if status_param == "all" else status_param
    exporter = kb_io.export_csv if fmt == "csv" else kb_io.export_jsonl

    def work(session: Session) -> str:
        buffer = io.StringIO(newline="")
        exporter(session, buffer, status=status)
        return buffer.getvalue()

    text = await read(request, work)
    stamp = now_utc().strftime("%Y%m%d")
    filename = f"faqs-{status_param}-{stamp}.{fmt}"
    return web.Response(
        text=text,
        content_type="text/csv" if fmt == "csv" else "application/x-ndjson",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
