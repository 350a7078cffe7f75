"""Related questions in the console's knowledge-base API and editor over real HTTP (issue 21,
item 2): staff set up to 3 related FAQs with an FAQ, get clear errors for a bad list, see the
history of the list, and the editor shows the list and the live index's default suggestions."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from askagency.config import Settings
from askagency.db import session_scope
from console.app import create_app
from console.openapi import OPERATIONS_KEY, build_spec
from knowledge_base import store
from knowledge_base.index import build_bundle
from tests.unit.console.test_kb_api import (  # noqa: F401 - ctx, seeded, template_db: fixtures
    Ctx,
    ctx,
    new_faq,
    seeded,
    template_db,
    update_body,
)
from tests.unit.kb_tiny import shared_embedder


@pytest.fixture
def kb(ctx: Ctx) -> Ctx:  # noqa: F811 - the imported fixture, by name
    """The running console of the knowledge-base API tests (seeded, one user per role)."""
    return ctx


async def faq(kb: Ctx, faq_id: str) -> dict[str, Any]:
    reply = await (await kb.as_role("editor")).get(f"/api/kb/faqs/{faq_id}")
    assert reply.status == 200, reply.text
    return reply.body


async def test_staff_set_reorder_and_clear_the_related_list(kb: Ctx) -> None:
    editor = await kb.as_role("editor")
    liquids = await faq(kb, "liquids")
    assert liquids["related"] == []

    reply = await editor.put(
        "/api/kb/faqs/liquids", update_body(liquids, related=["pets", "laptops"])
    )
    assert reply.status == 200, reply.text
    assert reply.body["faq"]["related"] == ["pets", "laptops"]

    changed = await faq(kb, "liquids")
    reply = await editor.put("/api/kb/faqs/liquids", update_body(changed, related=["laptops"]))
    assert reply.body["faq"]["related"] == ["laptops"]

    history = (await editor.get("/api/kb/faqs/liquids/history")).body["entries"]
    assert {"field": "related", "before": ["pets", "laptops"], "after": ["laptops"]} in history[0][
        "changes"
    ]
    assert {"field": "related", "before": [], "after": ["pets", "laptops"]} in history[1]["changes"]


async def test_a_client_that_does_not_send_related_keeps_the_list(kb: Ctx) -> None:
    """Update bodies written before related FAQs existed (a CMS sync) do not wipe the list."""
    editor = await kb.as_role("editor")
    liquids = await faq(kb, "liquids")
    await editor.put("/api/kb/faqs/liquids", update_body(liquids, related=["laptops"]))
    changed = await faq(kb, "liquids")
    reply = await editor.put("/api/kb/faqs/liquids", update_body(changed, answer="New answer."))
    assert reply.status == 200, reply.text
    assert reply.body["faq"]["related"] == ["laptops"]
    assert reply.body["faq"]["answer"] == "New answer."


@pytest.mark.parametrize(
    ("related", "reason"),
    [
        (["laptops", "pets", "liquidos", "new-x"], "at most 3 related questions"),
        (["liquids"], "is this FAQ itself"),
        (["laptops", "laptops"], "repeats 'laptops'"),
        (["nope"], "'nope' does not exist"),
        (["liquidos"], "'liquidos' is in 'es', not 'en'"),
    ],
)
async def test_a_bad_related_list_is_refused_with_a_reason_for_the_field(
    kb: Ctx, related: list[str], reason: str
) -> None:
    editor = await kb.as_role("editor")
    liquids = await faq(kb, "liquids")
    reply = await editor.put("/api/kb/faqs/liquids", update_body(liquids, related=related))
    assert reply.status == 400, reply.text
    fields = {d["field"].split(".")[0]: d["reason"] for d in reply.body["details"]}
    assert reason in fields["related"]
    assert (await faq(kb, "liquids"))["related"] == []


async def test_a_new_faq_can_name_its_related_questions(kb: Ctx) -> None:
    editor = await kb.as_role("editor")
    reply = await editor.post("/api/kb/faqs", new_faq(related=["liquids"]))
    assert reply.status == 201, reply.text
    assert reply.body["faq"]["related"] == ["liquids"]


async def test_the_related_endpoint_shows_the_list_and_the_index_default(kb: Ctx) -> None:
    editor = await kb.as_role("editor")
    liquids = await faq(kb, "liquids")
    await editor.put("/api/kb/faqs/liquids", update_body(liquids, related=["pets"]))
    with session_scope(kb.runtime.settings.database_url) as session:
        records = store.published_records(session)
    bundle = build_bundle(records, shared_embedder(), classifier=False)
    kb.runtime.retriever = lambda: SimpleNamespace(bundle=bundle)  # type: ignore[method-assign]

    body = (await editor.get("/api/kb/faqs/liquids/related")).body
    assert body["in_index"] is True and body["limit"] == 3 and body["max_chosen"] == 3
    # "pets" is a draft: staff's list names it, but the bot cannot offer it yet.
    assert [(i["id"], i["status"]) for i in body["chosen"]] == [("pets", "draft")]
    assert [i["id"] for i in body["suggested"]] == ["laptops"]  # same category, same language
    assert [i["id"] for i in body["offered"]] == ["laptops"]
    assert body["suggested"][0]["question"] == "Do laptops come out of the bag?"

    draft = (await editor.get("/api/kb/faqs/pets/related")).body
    assert draft["in_index"] is False and draft["suggested"] == []
    assert (await editor.get("/api/kb/faqs/nope/related")).status == 404
    assert (await (await kb.as_role("anonymous")).get("/api/kb/faqs/liquids/related")).status in (
        401,
        302,
    )


async def test_without_an_index_the_editor_still_gets_the_list(kb: Ctx) -> None:
    def no_index() -> Any:
        raise FileNotFoundError("no index yet")

    kb.runtime.retriever = no_index  # type: ignore[method-assign]
    body = (await (await kb.as_role("editor")).get("/api/kb/faqs/liquids/related")).body
    assert body["in_index"] is False and body["suggested"] == [] and body["offered"] == []


async def test_the_editor_page_lists_the_related_questions_in_order(kb: Ctx) -> None:
    editor = await kb.as_role("editor")
    liquids = await faq(kb, "liquids")
    await editor.put("/api/kb/faqs/liquids", update_body(liquids, related=["pets", "laptops"]))
    page = await editor.request("GET", "/console/kb/faq/liquids")
    assert page.status == 200
    html = page.text
    assert 'id="related-search"' in html and 'data-max-related="3"' in html
    assert html.index('data-faq-id="pets"') < html.index('data-faq-id="laptops"')
    assert "Do laptops come out of the bag?" in html
    viewer = await kb.as_role("viewer")
    assert (
        'id="related-search"' not in (await viewer.request("GET", "/console/kb/faq/liquids")).text
    )


def test_openapi_documents_the_related_route_and_field(tmp_settings: Settings) -> None:
    spec = build_spec(create_app(tmp_settings)[OPERATIONS_KEY])
    assert "viewer" in spec["paths"]["/api/kb/faqs/{faq_id}/related"]["get"]["description"]
    schemas = spec["components"]["schemas"]
    assert "related" in schemas["FaqOut"]["properties"]
    assert "related" in schemas["FaqUpdateIn"]["properties"]
