"""The unanswered-questions queue: clusters with suggested FAQs, accept as a variant, dismiss."""

from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy.orm import Session

from askagency.db import session_scope
from console.jsonapi import json_model, parse_json, parse_query
from console.kb.queries import UnansweredQuery
from console.kb.runtime import (
    KNOWN_ERRORS,
    KbRuntime,
    actor,
    is_published,
    model_unavailable,
    off_loop,
    publish_if,
    readers,
    runtime,
    store_error,
    write,
    writers,
)
from console.kb.schemas import (
    AcceptIn,
    ClusterOut,
    DismissIn,
    ExampleOut,
    FaqOut,
    QueueChangeOut,
    SuggestionOut,
    UnansweredOut,
    faq_out,
)
from knowledge_base import unanswered as queue

logger = logging.getLogger(__name__)


def unanswered_out(
    rt: KbRuntime, language: str | None, threshold: float, limit: int, out_of_scope: bool = False
) -> UnansweredOut:
    """The open questions that need an answer, clustered, or (``out_of_scope``) those the
    out-of-scope entries took, for staff to check that the entries take only what they should."""
    with session_scope(rt.settings.database_url) as session:
        rows = queue.open_questions(session, language=language, out_of_scope=out_of_scope)
        counts = queue.status_counts(session)
        counts["open_out_of_scope"] = queue.open_out_of_scope_count(session)
        clusters = queue.build_clusters(rows, rt.embed_citizen_texts, threshold)[:limit]
    error = None
    try:
        queue.add_suggestions(clusters, lambda text, lang: rt.search(text, lang, 3))
    except Exception as exc:  # noqa: BLE001 - the queue is useful without suggestions
        error = f"{type(exc).__name__}: {exc}"
    return UnansweredOut(
        clusters=[
            ClusterOut(
                key=c.key,
                language=c.language,
                representative=c.representative,
                count=c.count,
                question_ids=c.question_ids,
                examples=[ExampleOut(text=t, count=n) for t, n in c.examples],
                reasons=c.reasons,
                first_seen=c.first_seen,
                last_seen=c.last_seen,
                suggestions=[
                    SuggestionOut(faq_id=s.faq_id, question=s.question, score=round(s.score, 4))
                    for s in c.suggestions
                ],
                out_of_scope_entries=c.out_of_scope_entries,
                chosen=c.chosen,
            )
            for c in clusters
        ],
        counts=counts,
        threshold=threshold,
        suggestions_error=error,
    )


@readers
async def api_unanswered(request: web.Request) -> web.Response:
    query = parse_query(request, UnansweredQuery)
    try:
        out = await off_loop(
            unanswered_out,
            runtime(request),
            query.language,
            query.threshold,
            query.limit,
            query.out_of_scope,
        )
    except KNOWN_ERRORS as exc:
        raise store_error(exc) from exc
    except Exception as exc:  # noqa: BLE001 - the embedding model is missing or broken
        raise model_unavailable(exc) from exc
    return json_model(out)


@writers
async def api_accept(request: web.Request) -> web.Response:
    body = await parse_json(request, AcceptIn)
    who = actor(request)

    def work(session: Session) -> tuple[FaqOut, bool]:
        faq = queue.accept_as_variant(
            session, body.question_ids, body.faq_id, body.variant, who, body.expected_version
        )
        return faq_out(faq), is_published(faq.status)

    out, live = await write(request, work)
    result = QueueChangeOut(
        resolved=len(set(body.question_ids)), faq=out, index=await publish_if(request, live)
    )
    return json_model(result)


@writers
async def api_dismiss(request: web.Request) -> web.Response:
    body = await parse_json(request, DismissIn)
    who = actor(request)
    count = await write(request, lambda s: queue.dismiss(s, body.question_ids, who))
    return json_model(QueueChangeOut(resolved=count))
