"""Listing, reading, creating, changing and deleting FAQs."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from aiohttp import web
from pydantic import ValidationError
from sqlalchemy.orm import Session

from console.jsonapi import json_error, json_model, parse_json, parse_query
from console.kb.queries import DeleteQuery, ListQuery
from console.kb.runtime import (
    actor,
    faq_id_param,
    is_published,
    publish_if,
    read,
    readers,
    validation_details,
    write,
    write_reply,
    writers,
)
from console.kb.schemas import (
    REVIEW_SOON_DAYS,
    Facets,
    FaqCreateIn,
    FaqListOut,
    FaqOut,
    FaqUpdateIn,
    StatusIn,
    faq_out,
    faq_summary,
    is_review_due,
    today,
)
from knowledge_base import store
from knowledge_base import unanswered as queue
from knowledge_base.models import Faq, FaqStatus
from knowledge_base.store import FaqInput
from knowledge_base.types import FaqKind

logger = logging.getLogger(__name__)


def list_query(request: web.Request) -> dict[str, Any]:
    """Parsed and checked list filters (shared by the API and the list page)."""
    return parse_query(request, ListQuery).model_dump()


def _matches(faq: Faq, needle: str) -> bool:
    if not needle:
        return True
    haystack = [faq.id, faq.question, faq.answer, faq.category, *(v.text for v in faq.variants)]
    return any(needle in text.casefold() for text in haystack)


def _review_filter(faq: Faq, review: str, on: date) -> bool:
    if review == "overdue":
        return is_review_due(faq, on)
    if review == "soon":
        return faq.review_by is not None and faq.review_by <= on + timedelta(days=REVIEW_SOON_DAYS)
    if review == "none":
        return faq.review_by is None
    return True


def _sort_key(field: str) -> Callable[[Faq], Any]:
    if field == "review_by":
        return lambda f: (f.review_by is None, f.review_by or date.max, f.id)
    if field == "updated_at":
        return lambda f: (f.updated_at, f.id)
    return lambda f: (str(getattr(f, field)).casefold(), f.id)


def search_faqs(session: Session, params: dict[str, Any]) -> FaqListOut:
    everything = store.list_faqs(session)
    on = today()
    needle = params["q"].casefold()
    selected = [
        faq
        for faq in everything
        if (params["status"] is None or faq.status == params["status"])
        and (params["language"] is None or faq.language == params["language"])
        and (params["category"] is None or faq.category == params["category"])
        and (params["kind"] is None or faq.kind == params["kind"])
        and _review_filter(faq, params["review"], on)
        and _matches(faq, needle)
    ]
    field = params["sort"].lstrip("-")
    selected.sort(key=_sort_key(field), reverse=params["sort"].startswith("-"))
    per_page = params["per_page"]
    pages = max(1, math.ceil(len(selected) / per_page))
    page = min(params["page"], pages)
    chunk = selected[(page - 1) * per_page : page * per_page]
    return FaqListOut(
        items=[faq_summary(faq) for faq in chunk],
        total=len(selected),
        page=page,
        per_page=per_page,
        pages=pages,
        facets=Facets(
            categories=sorted({f.category for f in everything}, key=str.casefold),
            languages=sorted({f.language for f in everything}),
            statuses=[s.value for s in FaqStatus],
            kinds=[k.value for k in FaqKind],
        ),
    )


@readers
async def api_list(request: web.Request) -> web.Response:
    params = list_query(request)
    result = await read(request, lambda s: search_faqs(s, params))
    return json_model(result)


@readers
async def api_get(request: web.Request) -> web.Response:
    faq_id = faq_id_param(request)
    result = await read(request, lambda s: faq_out(store.get_faq(s, faq_id)))
    return json_model(result)


@writers
async def api_create(request: web.Request) -> web.Response:
    body = await parse_json(request, FaqCreateIn)
    data = FaqInput.model_validate(body.model_dump(exclude={"unanswered_ids"}))
    who = actor(request)

    def work(session: Session) -> FaqOut:
        faq = store.create_faq(session, data, who)
        if body.unanswered_ids:
            queue.mark_created(session, body.unanswered_ids, faq.id, who)
        return faq_out(faq)

    out = await write(request, work)
    return write_reply(out, await publish_if(request, is_published(out.status)), status=201)


@writers
async def api_update(request: web.Request) -> web.Response:
    faq_id = faq_id_param(request)
    body = await parse_json(request, FaqUpdateIn)
    if body.id not in (None, faq_id):
        raise json_error(
            400, "FAQ ids cannot be changed", [{"field": "id", "reason": "must match the URL"}]
        )
    try:
        data = FaqInput.model_validate(
            {**body.model_dump(exclude={"expected_version"}), "id": faq_id}
        )
    except ValidationError as exc:
        raise json_error(400, "invalid request body", validation_details(exc)) from exc
    who = actor(request)
    omitted = store.omitted_fields(body)  # a body without "related" or "kind" keeps them

    def work(session: Session) -> tuple[FaqOut, bool]:
        current = store.get_faq(session, faq_id)
        before = current.status
        content = data.model_copy(update=store.stored_values(current, omitted))
        faq = store.update_faq(session, faq_id, content, who, body.expected_version)
        return faq_out(faq), is_published(before) or is_published(faq.status)

    out, live = await write(request, work)
    return write_reply(out, await publish_if(request, live))


@writers
async def api_set_status(request: web.Request) -> web.Response:
    faq_id = faq_id_param(request)
    body = await parse_json(request, StatusIn)
    who = actor(request)

    def work(session: Session) -> tuple[FaqOut, bool]:
        before = store.get_faq(session, faq_id).status
        faq = store.set_status(session, faq_id, body.status, who, body.expected_version)
        changed = before != faq.status
        return faq_out(faq), changed and (is_published(before) or is_published(faq.status))

    out, live = await write(request, work)
    return write_reply(out, await publish_if(request, live))


@writers
async def api_delete(request: web.Request) -> web.Response:
    faq_id = faq_id_param(request)
    expected = parse_query(request, DeleteQuery).expected_version
    who = actor(request)

    def work(session: Session) -> bool:
        was_live = is_published(store.get_faq(session, faq_id).status)
        store.delete_faq(session, faq_id, who, expected)
        return was_live

    live = await write(request, work)
    return write_reply(None, await publish_if(request, live))
