"""An FAQ's related questions for the editor: staff's list, the index's default suggestions
(the nearest FAQs of the same category and language in the live bundle) and what the bot offers
now. Staff set the list itself with the FAQ (``related`` in PUT/POST /api/kb/faqs)."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from sqlalchemy.orm import Session

from console.jsonapi import json_model
from console.kb.runtime import faq_id_param, off_loop, read, readers, runtime
from console.kb.schemas import RelatedItemOut, RelatedOut
from console.keys import SETTINGS_KEY
from knowledge_base import store
from knowledge_base.models import RELATED_MAX, FaqStatus
from knowledge_base.related import default_related, related_faqs
from knowledge_base.types import FaqRecord

logger = logging.getLogger(__name__)


def _item(faq_id: str, found: dict[str, Any], record: FaqRecord | None = None) -> RelatedItemOut:
    faq = found.get(faq_id)
    if faq is not None:
        return RelatedItemOut(
            id=faq.id,
            question=faq.question,
            language=faq.language,
            category=faq.category,
            status=FaqStatus(faq.status),
        )
    return RelatedItemOut(
        id=faq_id,
        question=record.question if record else faq_id,
        language=record.language if record else "",
        category=record.category if record else "",
        status=None,
    )


def _live_bundle(request: web.Request) -> Any:
    """The live index bundle, or None (no index yet, or a retriever without one)."""
    try:
        return getattr(runtime(request).retriever(), "bundle", None)
    except Exception as exc:  # no index built yet, model missing: the editor still works
        logger.info("no live index for related-FAQ suggestions: %s", exc)
        return None


def related_out(session: Session, faq_id: str, bundle: Any, limit: int) -> RelatedOut:
    """Staff's list, the index's default and the bot's current offer, with each FAQ's question
    read from the database (the bundle's copy may be older)."""
    faq = store.get_faq(session, faq_id)
    chosen = [link.related_id for link in faq.related_links]
    suggested = default_related(bundle, faq_id, RELATED_MAX) if bundle is not None else []
    offered = related_faqs(bundle, faq_id, limit) if bundle is not None else []
    records = {r.id: r for r in (*suggested, *offered)}
    found = store.load_faqs(session, list(dict.fromkeys([*chosen, *records])))
    return RelatedOut(
        faq_id=faq_id,
        limit=limit,
        max_chosen=RELATED_MAX,
        chosen=[_item(i, found) for i in chosen],
        suggested=[_item(r.id, found, r) for r in suggested],
        offered=[_item(r.id, found, r) for r in offered],
        in_index=bundle is not None and faq_id in bundle.faq_pos,
    )


@readers
async def api_related(request: web.Request) -> web.Response:
    faq_id = faq_id_param(request)
    limit = request.app[SETTINGS_KEY].related_faqs_max
    bundle = await off_loop(_live_bundle, request)
    result = await read(request, lambda s: related_out(s, faq_id, bundle, limit))
    return json_model(result)
