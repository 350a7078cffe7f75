"""Go live: the index's state, publishing, and "Try it" against the live index."""

from __future__ import annotations

import logging

from aiohttp import web

from console.jsonapi import json_error, json_model, parse_json
from console.kb.runtime import (
    KbRuntime,
    model_unavailable,
    off_loop,
    publish_if,
    readers,
    runtime,
    writers,
)
from console.kb.schemas import HitOut, IndexOut, IndexStatusOut, Thresholds, TryIn, TryOut
from knowledge_base.publish import index_status
from knowledge_base.types import FaqHit

logger = logging.getLogger(__name__)


def index_status_out(rt: KbRuntime) -> IndexStatusOut:
    status = index_status(rt.index_dir)
    last = rt.publisher.last
    last_out = IndexOut(**last.to_dict()) if last else None
    if status is None:
        return IndexStatusOut(live=False, last_publish=last_out)
    return IndexStatusOut(
        live=True,
        version=status["version"],
        created_at=status["created_at"],
        faqs=status["faqs"],
        vectors=status["vectors"],
        languages=status["languages"],
        last_publish=last_out,
    )


@readers
async def api_index(request: web.Request) -> web.Response:
    out = await off_loop(index_status_out, runtime(request))
    return json_model(out)


@writers
async def api_publish(request: web.Request) -> web.Response:
    out = await publish_if(request, True)
    assert out is not None
    if not out.ok:
        raise json_error(503, f"the index could not be rebuilt: {out.error}", out.model_dump())
    return json_model(out)


def hit_out(hit: FaqHit) -> HitOut:
    return HitOut(
        faq_id=hit.faq_id,
        question=hit.question,
        score=round(float(hit.score), 4),
        matched_text=hit.matched_text,
        category=hit.category,
        answer=hit.answer,
        source_url=hit.source_url,
    )


def try_question(rt: KbRuntime, text: str, language: str) -> TryOut:
    from knowledge_base.decision import (
        decide,
        explained,
        for_retriever,
        suggest_floor,
        thresholds_used,
    )

    retriever = rt.retriever()
    settings = for_retriever(rt.settings, retriever)
    hits = list(retriever.search(text, k=5, language=language))
    decision = explained(retriever, text, language, decide(hits, settings))
    used = thresholds_used(settings, hits)
    entry = decision.out_of_scope
    return TryOut(
        text=text,
        language=language,
        outcome=decision.outcome.value,  # type: ignore[arg-type]
        top_score=round(float(decision.top_score), 4),
        # A handoff offers its suggestions (near misses above suggest_threshold), if any.
        chosen=[
            hit.faq_id
            for hit in (decision.suggestions if decision.outcome == "handoff" else decision.hits)
        ],
        hits=[hit_out(hit) for hit in hits],
        out_of_scope=None if entry is None else hit_out(entry),
        thresholds=Thresholds(
            answer_threshold=used.answer_threshold,
            clarify_threshold=used.clarify_threshold,
            answer_margin=used.answer_margin,
            suggest_threshold=suggest_floor(used),
        ),
        index_version=retriever.version,
    )


@readers
async def api_try(request: web.Request) -> web.Response:
    body = await parse_json(request, TryIn)
    rt = runtime(request)
    language = (body.language or rt.settings.default_language).strip().lower()
    try:
        out = await off_loop(try_question, rt, body.text, language)
    except Exception as exc:  # noqa: BLE001 - no index or model: say so, do not 500
        raise model_unavailable(exc) from exc
    return json_model(out)
