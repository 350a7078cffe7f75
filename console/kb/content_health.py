"""Content health: conflicting variants, overdue reviews, never-matched FAQs, near duplicates,
FAQs with few variants."""

from __future__ import annotations

import logging

from aiohttp import web

from askagency.db import session_scope
from console.jsonapi import json_model, parse_query
from console.kb.queries import CONFLICT_MARGIN, ConflictsQuery, HealthQuery
from console.kb.runtime import KbRuntime, model_unavailable, off_loop, readers, runtime
from console.kb.schemas import ConflictOut, ConflictsOut, HealthOut
from knowledge_base import store
from knowledge_base import unanswered as queue
from knowledge_base.conflicts import Conflict, conflicts_for, detect_conflicts
from knowledge_base.health import content_health

logger = logging.getLogger(__name__)


def _conflict_out(conflict: Conflict) -> ConflictOut:
    return ConflictOut(**conflict.to_dict())


def conflicts_out(rt: KbRuntime, margin: float, faq_id: str | None) -> ConflictsOut:
    with session_scope(rt.settings.database_url) as session:
        records = store.published_records(session)
    found = detect_conflicts(records, rt.embed_faq_texts, margin=margin)
    if faq_id:
        found = conflicts_for(found, faq_id)
    return ConflictsOut(
        conflicts=[_conflict_out(c) for c in found], total=len(found), margin=margin
    )


@readers
async def api_conflicts(request: web.Request) -> web.Response:
    query = parse_query(request, ConflictsQuery)
    try:
        out = await off_loop(conflicts_out, runtime(request), query.margin, query.faq_id)
    except Exception as exc:  # noqa: BLE001 - the embedding model is missing or broken
        raise model_unavailable(exc) from exc
    return json_model(out)


def health_out(rt: KbRuntime, limit: int) -> HealthOut:
    with session_scope(rt.settings.database_url) as session:
        report = content_health(
            session,
            queue.usage_counts(session),
            rt.embed_faq_texts,
            advised_variants=rt.settings.advised_variants,
        )
    conflicts = [c for c in report.conflicts if c.gap > CONFLICT_MARGIN]
    counts = {**report.counts(), "conflicts": len(conflicts)}
    return HealthOut(
        generated_at=report.generated_at,
        counts=counts,
        review_overdue=report.review_overdue[:limit],
        never_matched=report.never_matched[:limit],
        near_duplicates=report.near_duplicates[:limit],
        conflicts=[_conflict_out(c) for c in conflicts[:limit]],
        few_variants=report.few_variants[:limit],
        advised_variants=rt.settings.advised_variants,
        similarity_error=report.similarity_error,
    )


@readers
async def api_health(request: web.Request) -> web.Response:
    limit = parse_query(request, HealthQuery).limit
    out = await off_loop(health_out, runtime(request), limit)
    return json_model(out)
