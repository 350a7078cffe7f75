"""Knowledge-base pages of the console: FAQ list, editor, history, "Try it",
unanswered queue, content health, import/export, locations.

The list, editor and history are rendered on the server (they are plain
database reads); every change, and the pages that need the embedding model
(Try it, unanswered, health), go through the JSON API from
``static/console/kb.js``. The CSP forbids inline script, so pages hand data to
the script in ``data-`` attributes. Viewers get the same pages read-only;
agents get 403.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from askagency.db import session_scope
from askagency.staff import Role
from console.auth import current_user
from console.kb.faqs import list_query, search_faqs
from console.kb.history import history_out
from console.kb.live import index_status_out
from console.kb.locations import list_out
from console.kb.queries import PER_PAGE_MAX, REVIEW_FILTERS, SORT_FIELDS
from console.kb.runtime import readers, runtime
from console.kb.schemas import SMS_PART, SMS_SINGLE, faq_out
from console.nav import page_context
from knowledge_base import store
from knowledge_base.locations.models import ALIAS_MAX_LEN, CODE_MAX_LEN, NAME_MAX_LEN
from knowledge_base.models import (
    ANSWER_MAX_LEN,
    QUESTION_MAX_LEN,
    RELATED_MAX,
    Faq,
    FaqStatus,
)
from knowledge_base.store import max_variants

TABS = (
    ("list", "/console/kb", "FAQs"),
    ("try", "/console/kb/try", "Try it"),
    ("unanswered", "/console/kb/unanswered", "Unanswered"),
    ("health", "/console/kb/health", "Content health"),
    ("import", "/console/kb/import", "Import / export"),
    ("locations", "/console/kb/locations", "Locations"),
)


def _can_edit(request: web.Request) -> bool:
    user = current_user(request)
    return user is not None and user.role in (Role.EDITOR, Role.ADMIN)


def _context(request: web.Request, tab: str, **extra: Any) -> dict[str, Any]:
    runtime(request).warm_up_in_background()
    return page_context(
        request,
        kb_tabs=TABS,
        kb_tab=tab,
        can_edit=_can_edit(request),
        index=index_status_out(runtime(request)),
        **extra,
    )


def _render(request: web.Request, template: str, context: dict[str, Any]) -> web.Response:
    return aiohttp_jinja2.render_template(template, request, context)


def _page_error(exc: web.HTTPException) -> web.HTTPException:
    """API-style 400s from shared query parsing, as a plain page error."""
    return web.HTTPBadRequest(text=f"Bad filter: {exc.text}")


@readers
async def list_page(request: web.Request) -> web.Response:
    try:
        params = list_query(request)
    except web.HTTPException as exc:
        raise _page_error(exc) from exc
    with session_scope() as session:
        result = search_faqs(session, params)

    def page_url(page: int) -> str:
        query = {k: v for k, v in request.query.items() if k != "page" and v}
        return "/console/kb?" + urlencode({**query, "page": page})

    def sort_url(field: str) -> str:
        current = params["sort"]
        new = f"-{field}" if current == field else field
        query = {k: v for k, v in request.query.items() if k not in ("sort", "page") and v}
        return "/console/kb?" + urlencode({**query, "sort": new})

    return _render(
        request,
        "kb_list.html",
        _context(
            request,
            "list",
            result=result,
            params=params,
            review_filters=REVIEW_FILTERS,
            sort_fields=SORT_FIELDS,
            per_page_max=PER_PAGE_MAX,
            page_url=page_url,
            sort_url=sort_url,
        ),
    )


def _editor_context(
    request: web.Request,
    faq: Any,
    categories: list[str],
    languages: list[str],
    related_items: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    return _context(
        request,
        "list",
        faq=faq,
        related_items=related_items or [],
        related_max=RELATED_MAX,
        categories=categories,
        languages=languages,
        statuses=[s.value for s in FaqStatus],
        answer_limit=ANSWER_MAX_LEN,
        question_limit=QUESTION_MAX_LEN,
        max_variants=max_variants(),
        sms_single=SMS_SINGLE,
        sms_part=SMS_PART,
    )


def _all_faqs() -> list[Faq]:
    with session_scope() as session:
        return store.list_faqs(session)


def _facets(faqs: list[Faq] | None = None) -> tuple[list[str], list[str]]:
    """Categories and languages of ``faqs`` (default: every FAQ)."""
    faqs = _all_faqs() if faqs is None else faqs
    categories = sorted({f.category for f in faqs}, key=str.casefold)
    languages = sorted({f.language for f in faqs} | {"en"})
    return categories, languages


@readers
async def new_page(request: web.Request) -> web.Response:
    if not _can_edit(request):
        raise web.HTTPForbidden(text="Your role may not create FAQs.")
    categories, languages = _facets()
    return _render(request, "kb_edit.html", _editor_context(request, None, categories, languages))


@readers
async def edit_page(request: web.Request) -> web.Response:
    faq_id = request.match_info["faq_id"]
    with session_scope() as session:
        try:
            faq = faq_out(store.get_faq(session, faq_id))
        except store.FaqNotFound:
            raise web.HTTPNotFound(text=f"No FAQ {faq_id!r}.") from None
        found = store.load_faqs(session, faq.related)
        related = [
            {"id": i, "question": found[i].question if i in found else i} for i in faq.related
        ]
    categories, languages = _facets()
    context = _editor_context(request, faq, categories, languages, related)
    return _render(request, "kb_edit.html", context)


@readers
async def history_page(request: web.Request) -> web.Response:
    faq_id = request.match_info["faq_id"]
    with session_scope() as session:
        try:
            history = history_out(session, faq_id)
        except store.FaqNotFound:
            raise web.HTTPNotFound(text=f"No FAQ {faq_id!r}.") from None
    return _render(request, "kb_history.html", _context(request, "list", history=history))


@readers
async def try_page(request: web.Request) -> web.Response:
    _categories, languages = _facets()
    return _render(
        request,
        "kb_try.html",
        _context(request, "try", languages=languages, text=request.query.get("q", "")[:2000]),
    )


def _target_label(faq: Faq) -> str:
    """How an FAQ is offered as the target of queued questions: out-of-scope entries say so,
    because adding a question to one is how staff mark it "not for us"."""
    kind = ", out of scope" if faq.out_of_scope else ""
    return f"{faq.question} ({faq.language}{kind})"


def _faq_targets(faqs: list[Faq]) -> list[dict[str, str]]:
    """The FAQs a queued question can be added to (archived ones are not offered), out-of-scope
    entries included: the suggestions come from the live index, which never returns them."""
    return [
        {"id": faq.id, "label": _target_label(faq)}
        for faq in faqs
        if faq.status != FaqStatus.ARCHIVED.value
    ]


@readers
async def unanswered_page(request: web.Request) -> web.Response:
    faqs = _all_faqs()  # one read for the language filter and the targets
    _categories, languages = _facets(faqs)
    context = _context(request, "unanswered", languages=languages, targets=_faq_targets(faqs))
    return _render(request, "kb_unanswered.html", context)


@readers
async def health_page(request: web.Request) -> web.Response:
    return _render(request, "kb_health.html", _context(request, "health"))


@readers
async def import_page(request: web.Request) -> web.Response:
    return _render(request, "kb_import.html", _context(request, "import"))


@readers
async def locations_page(request: web.Request) -> web.Response:
    with session_scope() as session:
        items = list_out(session).items
    return _render(
        request,
        "kb_locations.html",
        _context(
            request,
            "locations",
            locations=items,
            code_limit=CODE_MAX_LEN,
            name_limit=NAME_MAX_LEN,
            alias_limit=ALIAS_MAX_LEN,
        ),
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/console/kb", list_page)
    app.router.add_get("/console/kb/new", new_page)
    app.router.add_get("/console/kb/faq/{faq_id}", edit_page)
    app.router.add_get("/console/kb/faq/{faq_id}/history", history_page)
    app.router.add_get("/console/kb/try", try_page)
    app.router.add_get("/console/kb/unanswered", unanswered_page)
    app.router.add_get("/console/kb/health", health_page)
    app.router.add_get("/console/kb/import", import_page)
    app.router.add_get("/console/kb/locations", locations_page)
