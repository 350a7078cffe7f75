"""An FAQ's versions, what changed between them, and restoring one."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from sqlalchemy.orm import Session

from console.jsonapi import json_model, parse_json
from console.kb.runtime import (
    actor,
    faq_id_param,
    is_published,
    publish_if,
    read,
    readers,
    write,
    write_reply,
    writers,
)
from console.kb.schemas import FaqOut, FieldChange, HistoryEntryOut, HistoryOut, RestoreIn, faq_out
from knowledge_base import store
from knowledge_base.models import AuditLog, Faq

logger = logging.getLogger(__name__)


_DIFF_FIELDS = (*store.SNAPSHOT_FIELDS, "variants", "related", "kind")


def _changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[FieldChange]:
    changes = []
    for name in _DIFF_FIELDS:
        # Snapshots from before related FAQs existed lack the key: that is an empty list.
        missing = [] if name == "related" else None
        old = (before or {}).get(name, missing) if before is not None else None
        new = (after or {}).get(name, missing) if after is not None else None
        if old != new:
            changes.append(FieldChange(field=name, before=old, after=new))
    return changes


def history_out(session: Session, faq_id: str) -> HistoryOut:
    entries: list[AuditLog] = store.faq_history(session, faq_id)
    current = session.get(Faq, faq_id)
    return HistoryOut(
        faq_id=faq_id,
        exists=current is not None,
        current_version=current.version if current else None,
        entries=[
            HistoryEntryOut(
                id=entry.id,
                at=entry.at,
                actor=entry.actor,
                action=entry.action,
                version=(entry.after or entry.before or {}).get("version"),
                changes=_changes(entry.before, entry.after),
                restorable=(entry.after or entry.before) is not None,
            )
            for entry in entries
        ],
    )


@readers
async def api_history(request: web.Request) -> web.Response:
    faq_id = faq_id_param(request)
    result = await read(request, lambda s: history_out(s, faq_id))
    return json_model(result)


@writers
async def api_restore(request: web.Request) -> web.Response:
    faq_id = faq_id_param(request)
    body = await parse_json(request, RestoreIn)
    who = actor(request)

    def work(session: Session) -> tuple[FaqOut, bool]:
        current = session.get(Faq, faq_id)
        before = current.status if current else None
        expected = body.expected_version
        if current is not None and expected is not None and current.version != expected:
            raise store.VersionConflict(faq_id, expected, current.version)
        faq = store.restore_version(session, faq_id, body.audit_id, who)
        return faq_out(faq), is_published(before) or is_published(faq.status)

    out, live = await write(request, work)
    return write_reply(out, await publish_if(request, live))
