"""The knowledge-base console API and pages over real HTTP: every operation, every role,
CSRF, 401/403/404/400/409, import preview before write, publishing, the unanswered queue.

The embedding model is replaced by a deterministic bag-of-words fake (``FakeRuntime``)
so these tests run in seconds; ``test_real_publish_and_try`` uses the real model and
index once, end to end inside one process.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from askagency import migrate
from askagency.config import Settings, get_settings
from askagency.db import get_engine, session_scope
from askagency.staff import Role
from console.app import create_app
from console.auth import create_user
from console.kb import runtime as kb_runtime
from console.kb import schemas as kb_schemas
from knowledge_base import store
from knowledge_base.decision import suggest_floor, thresholds_for
from knowledge_base.models import AuditLog, Faq
from knowledge_base.publish import Publisher, PublishResult
from knowledge_base.store import FaqInput
from knowledge_base.unanswered import UnansweredQuestion, record_choice, record_unanswered
from tests.console_helpers import PASSWORD, login
from tests.fakes import DatabaseRetriever, bag_of_words


# ----------------------------------------------------------------------------- fakes
class FakeRuntime(kb_runtime.KbRuntime):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.rebuilds = 0

    def warm_up(self) -> None:
        """No model in these tests."""

    def rebuild(self) -> PublishResult:
        self.rebuilds += 1
        with session_scope(self.settings.database_url) as session:
            count = len(store.published_records(session))
        return PublishResult(ok=True, version=f"v{self.rebuilds}", faqs=count)

    def retriever(self) -> DatabaseRetriever:
        return DatabaseRetriever(self.settings.database_url)

    def embed_faq_texts(self, texts: Any) -> np.ndarray:
        return bag_of_words(list(texts))

    def embed_citizen_texts(self, texts: Any) -> np.ndarray:
        return bag_of_words(list(texts))


# ----------------------------------------------------------------------------- clients
@dataclass
class Reply:
    status: int
    body: Any
    text: str
    headers: Any


class Browser:
    """One logged-in person: own cookie jar, sends the session's CSRF token."""

    def __init__(self, server: TestServer) -> None:
        self.server = server
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def login(self, username: str) -> None:
        self.csrf = await login(self.session, username, url=self.server.make_url)

    async def request(
        self,
        method: str,
        path: str,
        json_body: Any = None,
        data: bytes | None = None,
        csrf: bool = True,
    ) -> Reply:
        headers = {"Accept": "application/json"}
        if csrf and self.csrf and method != "GET":
            headers["X-CSRF-Token"] = self.csrf
        kwargs: dict[str, Any] = {"headers": headers, "allow_redirects": False}
        if json_body is not None:
            kwargs["json"] = json_body
        if data is not None:
            kwargs["data"] = data
            headers["Content-Type"] = "application/octet-stream"
        async with self.session.request(method, self.server.make_url(path), **kwargs) as resp:
            text = await resp.text()
            try:
                body = json.loads(text)
            except ValueError:
                body = None
            return Reply(resp.status, body, text, resp.headers)

    async def get(self, path: str) -> Reply:
        return await self.request("GET", path)

    async def post(self, path: str, body: Any = None, data: bytes | None = None) -> Reply:
        if data is not None:
            return await self.request("POST", path, data=data)
        return await self.request("POST", path, body if body is not None else {})

    async def put(self, path: str, body: Any, **kw: Any) -> Reply:
        return await self.request("PUT", path, body, **kw)

    async def delete(self, path: str, **kw: Any) -> Reply:
        return await self.request("DELETE", path, **kw)

    async def close(self) -> None:
        await self.session.close()


SEED_FAQS = [
    ("liquids", "security", "Can I bring liquids in my carry-on?", "published", None),
    ("laptops", "security", "Do laptops come out of the bag?", "published", None),
    ("pets", "animals", "Can I fly with my cat?", "draft", date(2020, 1, 1)),
    ("liquidos", "security", "¿Puedo llevar líquidos?", "published", None),
]


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrated, with one user per role and four FAQs; built once per module
    (argon2 hashing and migrations dominate set-up time) and copied per test."""
    path = tmp_path_factory.mktemp("kb-api") / "template.db"
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    with session_scope(url) as session:
        for role in Role:
            create_user(session, role.value, PASSWORD, role)
        for faq_id, category, question, status, review_by in SEED_FAQS:
            store.create_faq(
                session,
                FaqInput(
                    id=faq_id,
                    language="es" if faq_id == "liquidos" else "en",
                    category=category,
                    question=question,
                    answer=f"Answer about {faq_id}.",
                    variants=("shampoo in hand luggage",) if faq_id == "liquids" else (),
                    status=status,  # type: ignore[arg-type]
                    review_by=review_by,
                ),
                "seed",
            )
    get_engine(url).dispose()
    get_engine.cache_clear()
    return path


@pytest.fixture
def seeded(tmp_settings: Settings, template_db: Path) -> str:
    target = Path(tmp_settings.database_url.removeprefix("sqlite:///"))
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(template_db, target)
    return tmp_settings.database_url


class Ctx:
    """The running console; ``await ctx.as_role("editor")`` logs a person in on
    first use (argon2 makes each login cost a noticeable fraction of a second)."""

    def __init__(self, server: TestServer, runtime: FakeRuntime) -> None:
        self.server = server
        self.runtime = runtime
        self.browsers: dict[str, Browser] = {}

    async def as_role(self, role: str) -> Browser:
        if role not in self.browsers:
            browser = Browser(self.server)
            if role != "anonymous":
                await browser.login(role)
            self.browsers[role] = browser
        return self.browsers[role]


@pytest.fixture
async def ctx(tmp_settings: Settings, seeded: str) -> AsyncIterator[Ctx]:
    app = create_app(tmp_settings)
    runtime = FakeRuntime(tmp_settings)
    app[kb_runtime.RUNTIME_KEY] = runtime
    server = TestServer(app)
    await server.start_server()
    context = Ctx(server, runtime)
    try:
        yield context
    finally:
        for browser in context.browsers.values():
            await browser.close()
        await server.close()


def new_faq(faq_id: str = "new-one", **extra: Any) -> dict[str, Any]:
    return {
        "id": faq_id,
        "language": "en",
        "category": "general",
        "question": "Where is the lost and found?",
        "answer": "Ask the airport.",
        "variants": ["lost property"],
        "status": "draft",
        **extra,
    }


def update_body(faq: dict[str, Any], **changes: Any) -> dict[str, Any]:
    keys = ("language", "category", "question", "answer", "variants", "source_url")
    body = {k: faq[k] for k in keys}
    body.update(status=faq["status"], review_by=faq["review_by"], expected_version=faq["version"])
    body.update(changes)
    return body


# ----------------------------------------------------------------------------- roles
READS = [
    ("GET", "/api/kb/faqs"),
    ("GET", "/api/kb/faqs/liquids"),
    ("GET", "/api/kb/faqs/liquids/history"),
    ("GET", "/api/kb/index"),
    ("POST", "/api/kb/try"),
    ("GET", "/api/kb/unanswered"),
    ("GET", "/api/kb/conflicts"),
    ("GET", "/api/kb/health"),
    ("GET", "/api/kb/export"),
]
WRITES = [
    ("POST", "/api/kb/faqs"),
    ("PUT", "/api/kb/faqs/liquids"),
    ("DELETE", "/api/kb/faqs/liquids?expected_version=1"),
    ("POST", "/api/kb/faqs/liquids/status"),
    ("POST", "/api/kb/faqs/liquids/restore"),
    ("POST", "/api/kb/publish"),
    ("POST", "/api/kb/unanswered/accept"),
    ("POST", "/api/kb/unanswered/dismiss"),
    ("POST", "/api/kb/import/preview"),
    ("POST", "/api/kb/import/commit"),
]
BODIES: dict[str, Any] = {"/api/kb/try": {"text": "liquids"}}


async def _call(browser: Browser, method: str, path: str, csrf: bool = True) -> Reply:
    body = BODIES.get(path, {}) if method in ("POST", "PUT") else None
    return await browser.request(method, path, body, csrf=csrf)


async def test_logged_out_gets_401_everywhere(ctx: Ctx) -> None:
    anonymous = await ctx.as_role("anonymous")
    for method, path in READS + WRITES:
        reply = await _call(anonymous, method, path)
        assert reply.status == 401, (method, path, reply.text)
        assert reply.body == {"error": "login required"}


async def test_agent_gets_403_everywhere(ctx: Ctx) -> None:
    agent = await ctx.as_role("agent")
    for method, path in READS + WRITES:
        reply = await _call(agent, method, path)
        assert reply.status == 403, (method, path, reply.text)
    for page in ("/console/kb", "/console/kb/faq/liquids", "/console/kb/unanswered"):
        assert (await agent.request("GET", page)).status == 403


async def test_viewer_reads_but_cannot_write(ctx: Ctx) -> None:
    viewer = await ctx.as_role("viewer")
    for method, path in READS:
        reply = await _call(viewer, method, path)
        assert reply.status == 200, (method, path, reply.text)
    for method, path in WRITES:
        reply = await _call(viewer, method, path)
        assert reply.status == 403, (method, path, reply.text)
        assert reply.body == {"error": "your role may not do this"}


async def test_writes_without_csrf_token_are_refused(ctx: Ctx) -> None:
    editor = await ctx.as_role("editor")
    for method, path in WRITES:
        reply = await _call(editor, method, path, csrf=False)
        assert reply.status == 403, (method, path)
        assert reply.body == {"error": "missing or wrong CSRF token"}
    # Nothing was changed by the refused requests.
    assert (await editor.get("/api/kb/faqs/liquids")).body["version"] == 1


async def test_openapi_documents_every_kb_route(ctx: Ctx) -> None:
    viewer = await ctx.as_role("viewer")
    spec = (await viewer.get("/api/openapi.json")).body
    paths = {p for p in spec["paths"] if p.startswith("/api/kb/")}
    assert paths == {
        "/api/kb/faqs",
        "/api/kb/faqs/{faq_id}",
        "/api/kb/faqs/{faq_id}/status",
        "/api/kb/faqs/{faq_id}/history",
        "/api/kb/faqs/{faq_id}/restore",
        "/api/kb/faqs/{faq_id}/related",
        "/api/kb/index",
        "/api/kb/publish",
        "/api/kb/try",
        "/api/kb/unanswered",
        "/api/kb/unanswered/accept",
        "/api/kb/unanswered/dismiss",
        "/api/kb/conflicts",
        "/api/kb/health",
        "/api/kb/import/preview",
        "/api/kb/import/commit",
        "/api/kb/export",
        "/api/kb/locations",
        "/api/kb/locations/import",
        "/api/kb/locations/export",
        "/api/kb/locations/{code}",
    }
    put = spec["paths"]["/api/kb/faqs/{faq_id}"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "FaqUpdateIn"
    )
    assert "editor" in put["description"] and "viewer" not in put["description"]
    assert "expected_version" in spec["components"]["schemas"]["FaqUpdateIn"]["properties"]


# ----------------------------------------------------------------------------- CRUD
async def test_create_draft_does_not_publish(ctx: Ctx) -> None:
    editor = await ctx.as_role("editor")
    reply = await editor.post("/api/kb/faqs", new_faq())
    assert reply.status == 201, reply.text
    faq = reply.body["faq"]
    assert (faq["id"], faq["status"], faq["version"], faq["created_by"]) == (
        "new-one",
        "draft",
        1,
        "editor",
    )
    assert faq["variants"] == ["lost property"]
    assert faq["sms"] == {"chars": 16, "segments": 1, "unicode": False}
    assert reply.body["index"] is None and ctx.runtime.rebuilds == 0


async def test_create_published_goes_live(ctx: Ctx) -> None:
    admin = await ctx.as_role("admin")
    reply = await admin.post("/api/kb/faqs", new_faq(status="published"))
    assert reply.status == 201
    assert reply.body["index"]["ok"] is True and reply.body["index"]["version"] == "v1"
    assert ctx.runtime.rebuilds == 1


async def test_create_bad_body_gets_field_errors(ctx: Ctx) -> None:
    editor = await ctx.as_role("editor")
    bad = new_faq(id="Bad Id!", answer="", variants=["lost property", "Lost Property"])
    reply = await editor.post("/api/kb/faqs", bad)
    assert reply.status == 400
    fields = {d["field"] for d in reply.body["details"]}
    assert {"id", "answer", "variants"} <= fields
    assert any("repeats variant 1" in d["reason"] for d in reply.body["details"])
    unknown = await editor.post("/api/kb/faqs", new_faq(colour="blue"))
    assert unknown.status == 400 and unknown.body["details"][0]["field"] == "colour"
    not_json = await editor.request("POST", "/api/kb/faqs", data=b"{nope")
    assert not_json.status == 400 and "not valid JSON" in not_json.body["error"]
    too_long = await editor.post("/api/kb/faqs", new_faq(answer="x" * 2001))
    assert too_long.status == 400 and too_long.body["details"][0]["field"] == "answer"


async def test_create_existing_id_conflicts(ctx: Ctx) -> None:
    editor = await ctx.as_role("editor")
    reply = await editor.post("/api/kb/faqs", new_faq("liquids"))
    assert reply.status == 409 and "already exists" in reply.body["error"]


async def test_unknown_faq_is_404(ctx: Ctx) -> None:
    editor = await ctx.as_role("editor")
    assert (await editor.get("/api/kb/faqs/nope")).status == 404
    assert (await editor.get("/api/kb/faqs/nope/history")).status == 404
    body = update_body((await editor.get("/api/kb/faqs/liquids")).body)
    reply = await editor.put("/api/kb/faqs/nope", body)
    assert reply.status == 404 and reply.body["error"] == "no FAQ with id 'nope'"
    status = await editor.post(
        "/api/kb/faqs/nope/status", {"status": "draft", "expected_version": 1}
    )
    assert status.status == 404
    assert (await editor.delete("/api/kb/faqs/nope?expected_version=1")).status == 404
    restore = await editor.post("/api/kb/faqs/liquids/restore", {"audit_id": 99999})
    assert restore.status == 404


async def test_update_with_optimistic_concurrency(ctx: Ctx) -> None:
    editor, admin = await ctx.as_role("editor"), await ctx.as_role("admin")
    loaded = (await editor.get("/api/kb/faqs/liquids")).body
    first = await editor.put(
        "/api/kb/faqs/liquids", update_body(loaded, answer="Up to 3.4 oz (100 ml).")
    )
    assert first.status == 200, first.text
    assert first.body["faq"]["version"] == 2 and first.body["faq"]["updated_by"] == "editor"
    assert first.body["index"]["ok"] and ctx.runtime.rebuilds == 1  # published: goes live
    # The admin still has version 1 open: their save is refused, nothing is lost.
    stale = await admin.put("/api/kb/faqs/liquids", update_body(loaded, answer="Other text"))
    assert stale.status == 409
    assert "you edited version 1 but it is now at version 2" in stale.body["error"]
    assert stale.body["details"] == {"expected": 1, "actual": 2}
    current = (await admin.get("/api/kb/faqs/liquids")).body
    assert current["answer"] == "Up to 3.4 oz (100 ml)."
    # Unchanged content: no new version, no audit entry.
    same = await editor.put("/api/kb/faqs/liquids", update_body(current))
    assert same.status == 200 and same.body["faq"]["version"] == 2


async def test_update_body_errors(ctx: Ctx) -> None:
    editor = await ctx.as_role("editor")
    loaded = (await editor.get("/api/kb/faqs/liquids")).body
    body = update_body(loaded)
    del body["expected_version"]
    missing = await editor.put("/api/kb/faqs/liquids", body)
    assert missing.status == 400
    assert missing.body["details"][0]["field"] == "expected_version"
    renamed = await editor.put("/api/kb/faqs/liquids", update_body(loaded, id="other"))
    assert renamed.status == 400 and renamed.body["details"][0]["field"] == "id"
    bad_url = await editor.put("/api/kb/faqs/liquids", update_body(loaded, source_url="ftp://x"))
    assert bad_url.status == 400 and bad_url.body["details"][0]["field"] == "source_url"
    bad_date = await editor.put("/api/kb/faqs/liquids", update_body(loaded, review_by="31/12"))
    assert bad_date.status == 400 and bad_date.body["details"][0]["field"] == "review_by"


async def test_status_lifecycle_publishes_only_when_live_content_changes(ctx: Ctx) -> None:
    editor = await ctx.as_role("editor")
    publish = await editor.post(
        "/api/kb/faqs/pets/status", {"status": "published", "expected_version": 1}
    )
    assert publish.status == 200 and publish.body["faq"]["status"] == "published"
    assert publish.body["index"]["ok"] and ctx.runtime.rebuilds == 1
    archive = await editor.post(
        "/api/kb/faqs/pets/status", {"status": "archived", "expected_version": 2}
    )
    assert archive.body["faq"]["status"] == "archived" and ctx.runtime.rebuilds == 2
    draft = await editor.post(
        "/api/kb/faqs/pets/status", {"status": "draft", "expected_version": 3}
    )
    assert draft.body["index"] is None and ctx.runtime.rebuilds == 2
    stale = await editor.post(
        "/api/kb/faqs/pets/status", {"status": "draft", "expected_version": 1}
    )
    assert stale.status == 409
    bad = await editor.post("/api/kb/faqs/pets/status", {"status": "live", "expected_version": 4})
    assert bad.status == 400 and bad.body["details"][0]["field"] == "status"


async def test_delete_history_and_restore(ctx: Ctx) -> None:
    editor = await ctx.as_role("editor")
    loaded = (await editor.get("/api/kb/faqs/liquids")).body
    await editor.put("/api/kb/faqs/liquids", update_body(loaded, answer="Changed answer."))
    assert (await editor.delete("/api/kb/faqs/liquids")).status == 400
    assert (await editor.delete("/api/kb/faqs/liquids?expected_version=1")).status == 409
    gone = await editor.delete("/api/kb/faqs/liquids?expected_version=2")
    assert gone.status == 200 and gone.body["faq"] is None and gone.body["index"]["ok"]
    assert (await editor.get("/api/kb/faqs/liquids")).status == 404

    history = (await editor.get("/api/kb/faqs/liquids/history")).body
    assert history["exists"] is False
    actions = [e["action"] for e in history["entries"]]
    assert actions == ["delete", "update", "create"]
    update = history["entries"][1]
    assert update["actor"] == "editor" and update["version"] == 2
    assert update["changes"] == [
        {"field": "answer", "before": "Answer about liquids.", "after": "Changed answer."}
    ]
    created = history["entries"][2]
    restored = await editor.post("/api/kb/faqs/liquids/restore", {"audit_id": created["id"]})
    assert restored.status == 200, restored.text
    faq = restored.body["faq"]
    assert faq["answer"] == "Answer about liquids." and faq["version"] == 3
    assert faq["variants"] == ["shampoo in hand luggage"]
    again = (await editor.get("/api/kb/faqs/liquids/history")).body
    assert again["entries"][0]["action"] == "restore" and again["current_version"] == 3
    stale = await editor.post(
        "/api/kb/faqs/liquids/restore", {"audit_id": created["id"], "expected_version": 1}
    )
    assert stale.status == 409


# ----------------------------------------------------------------------------- listing
async def test_list_search_filter_sort_page(ctx: Ctx) -> None:
    viewer = await ctx.as_role("viewer")
    everything = (await viewer.get("/api/kb/faqs")).body
    assert everything["total"] == 4 and [i["id"] for i in everything["items"]] == [
        "laptops",
        "liquidos",
        "liquids",
        "pets",
    ]
    assert everything["facets"]["categories"] == ["animals", "security"]
    assert everything["facets"]["languages"] == ["en", "es"]
    by_variant = (await viewer.get("/api/kb/faqs?q=SHAMPOO")).body
    assert [i["id"] for i in by_variant["items"]] == ["liquids"]
    assert (await viewer.get("/api/kb/faqs?language=es")).body["total"] == 1
    assert (await viewer.get("/api/kb/faqs?category=animals&status=draft")).body["total"] == 1
    overdue = (await viewer.get("/api/kb/faqs?review=overdue")).body
    assert [i["id"] for i in overdue["items"]] == ["pets"] and overdue["items"][0]["review_due"]
    assert (await viewer.get("/api/kb/faqs?review=none")).body["total"] == 3
    desc = (await viewer.get("/api/kb/faqs?sort=-id&per_page=2&page=2")).body
    assert [i["id"] for i in desc["items"]] == ["liquidos", "laptops"]
    assert (desc["page"], desc["pages"], desc["per_page"]) == (2, 2, 2)
    for bad in ("sort=colour", "page=0", "per_page=abc", "status=live", "review=later"):
        reply = await viewer.get(f"/api/kb/faqs?{bad}")
        assert reply.status == 400, bad


# ----------------------------------------------------------------------------- kind
OUT_OF_SCOPE = "out_of_scope"


def out_of_scope_faq(faq_id: str = "not-for-us", **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "category": "Out of scope",
        "question": "Can you book my flight?",
        "answer": "Airline bookings: send people to their airline.",
        "variants": ["change my seat"],
        "kind": "out-of-scope",  # the spelling staff type in CSV files is accepted too
    }
    return new_faq(faq_id, **{**fields, **extra})


async def test_kind_round_trips_through_the_api(ctx: Ctx) -> None:
    editor = await ctx.as_role("editor")
    created = await editor.post("/api/kb/faqs", out_of_scope_faq())
    assert created.status == 201, created.text
    assert created.body["faq"]["kind"] == OUT_OF_SCOPE
    loaded = (await editor.get("/api/kb/faqs/not-for-us")).body
    assert loaded["kind"] == OUT_OF_SCOPE
    # Omitted on create: an answer, as before kinds existed.
    assert (await editor.get("/api/kb/faqs/liquids")).body["kind"] == "answer"

    # A client that predates kinds sends no "kind": the entry stays out of scope.
    old_client = await editor.put(
        "/api/kb/faqs/not-for-us", update_body(loaded, answer="Airlines handle bookings.")
    )
    assert old_client.status == 200, old_client.text
    assert old_client.body["faq"]["kind"] == OUT_OF_SCOPE
    assert old_client.body["faq"]["version"] == 2
    # Only the kind changes: a new version, and the history says what changed.
    to_answer = await editor.put(
        "/api/kb/faqs/not-for-us", update_body(old_client.body["faq"], kind="answer")
    )
    assert to_answer.status == 200, to_answer.text
    assert (to_answer.body["faq"]["kind"], to_answer.body["faq"]["version"]) == ("answer", 3)
    history = (await editor.get("/api/kb/faqs/not-for-us/history")).body
    assert history["entries"][0]["changes"] == [
        {"field": "kind", "before": OUT_OF_SCOPE, "after": "answer"}
    ]

    bad = await editor.put(
        "/api/kb/faqs/not-for-us", update_body(to_answer.body["faq"], kind="chit-chat")
    )
    assert bad.status == 400 and bad.body["details"][0]["field"] == "kind"
    bad_create = await editor.post("/api/kb/faqs", out_of_scope_faq("other", kind="maybe"))
    assert bad_create.status == 400 and bad_create.body["details"][0]["field"] == "kind"


async def test_list_shows_and_filters_kind(ctx: Ctx) -> None:
    editor = await ctx.as_role("editor")
    assert (await editor.post("/api/kb/faqs", out_of_scope_faq())).status == 201
    everything = (await editor.get("/api/kb/faqs")).body
    kinds = {item["id"]: item["kind"] for item in everything["items"]}
    assert kinds == {
        "laptops": "answer",
        "liquidos": "answer",
        "liquids": "answer",
        "not-for-us": OUT_OF_SCOPE,
        "pets": "answer",
    }
    assert everything["facets"]["kinds"] == ["answer", OUT_OF_SCOPE]
    only = (await editor.get("/api/kb/faqs?kind=out_of_scope")).body
    assert [item["id"] for item in only["items"]] == ["not-for-us"]
    assert (await editor.get("/api/kb/faqs?kind=answer")).body["total"] == 4
    assert (await editor.get("/api/kb/faqs?kind=chit-chat")).status == 400

    page = (await editor.request("GET", "/console/kb?kind=out_of_scope")).text
    assert 'href="/console/kb/faq/not-for-us"' in page and "/console/kb/faq/liquids" not in page
    assert page.count('class="badge kind-out-of-scope"') == 1
    assert '<option value="out_of_scope" selected>Out of scope</option>' in page
    mixed = (await editor.request("GET", "/console/kb")).text
    assert mixed.count('class="badge kind-out-of-scope"') == 1


async def test_editor_page_labels_follow_the_kind(ctx: Ctx) -> None:
    editor = await ctx.as_role("editor")
    assert (await editor.post("/api/kb/faqs", out_of_scope_faq())).status == 201
    scoped = (await editor.request("GET", "/console/kb/faq/not-for-us")).text
    assert '<option value="out_of_scope" selected>Out of scope' in scoped
    assert 'data-kind="out_of_scope"' in scoped
    assert '">Note for staff</span>' in scoped and '">Answer</span>' not in scoped
    answer = (await editor.request("GET", "/console/kb/faq/liquids")).text
    assert '<option value="answer" selected>Answer</option>' in answer
    assert '">Answer</span>' in answer and '">Note for staff</span>' not in answer
    # Both wordings are on the page for the script to switch between.
    assert 'data-answer="Answer" data-out-of-scope="Note for staff"' in answer
    new = (await editor.request("GET", "/console/kb/new")).text
    assert '<option value="answer" selected>Answer</option>' in new
    viewer = await ctx.as_role("viewer")
    read_only = (await viewer.request("GET", "/console/kb/faq/not-for-us")).text
    assert '<select id="faq-kind" name="kind" disabled' in read_only


# ----------------------------------------------------------------------------- try it
def ctx_settings_answer_threshold() -> float:
    """The configured threshold the page must report (not a copy of the default)."""
    return get_settings().answer_threshold


async def test_try_shows_top_hits_and_decision(ctx: Ctx) -> None:
    viewer = await ctx.as_role("viewer")
    reply = await viewer.post(
        "/api/kb/try", {"text": "Do laptops come out of the bag?", "language": "en"}
    )
    assert reply.status == 200, reply.text
    body = reply.body
    assert body["outcome"] == "answer" and body["chosen"] == ["laptops"]
    assert body["hits"][0]["faq_id"] == "laptops" and body["hits"][0]["score"] == pytest.approx(1)
    assert len(body["hits"]) == 2  # published English FAQs only
    assert body["thresholds"]["answer_threshold"] == ctx_settings_answer_threshold()
    assert body["thresholds"]["suggest_threshold"] == get_settings().suggest_threshold
    # A Spanish question is decided with Spanish thresholds, and the page says which.
    spanish = await viewer.post("/api/kb/try", {"text": "líquidos", "language": "es"})
    assert spanish.status == 200, spanish.text
    assert spanish.body["hits"][0]["faq_id"] == "liquidos"
    es = get_settings().language_thresholds["es"]
    assert spanish.body["thresholds"]["answer_threshold"] == es["answer_threshold"]
    assert spanish.body["thresholds"]["clarify_threshold"] == es["clarify_threshold"]
    # Spanish suggestions are off (suggest_threshold at its clarify threshold): none shown.
    expected_suggest = suggest_floor(thresholds_for(get_settings(), "es"))
    assert spanish.body["thresholds"]["suggest_threshold"] == expected_suggest
    assert es["answer_threshold"] != ctx_settings_answer_threshold()
    nothing = await viewer.post("/api/kb/try", {"text": "zebra umbrella", "language": "en"})
    assert nothing.body["outcome"] == "handoff"
    # A handoff suggests only near misses from the suggest threshold up.
    floor = get_settings().suggest_threshold
    near = [h["faq_id"] for h in nothing.body["hits"] if h["score"] >= floor]
    assert nothing.body["chosen"] == near[: len(nothing.body["chosen"])]
    empty = await viewer.post("/api/kb/try", {"text": ""})
    assert empty.status == 400 and empty.body["details"][0]["field"] == "text"


# ----------------------------------------------------------------------------- unanswered
def _queue(texts: list[tuple[str, str]]) -> list[int]:
    with session_scope() as session:
        rows = [
            record_unanswered(session, text, "low_confidence", language=lang)
            for text, lang in texts
        ]
        return [row.id for row in rows if row is not None]


async def test_unanswered_queue_is_redacted_clustered_and_accepted(ctx: Ctx) -> None:
    ids = _queue(
        [
            ("shampoo bottle in carry on? mail me at ann@x.org", "en"),
            ("shampoo bottle in carry on", "en"),
            ("can I bring my cat", "en"),
        ]
    )
    viewer, editor = await ctx.as_role("viewer"), await ctx.as_role("editor")
    data = (await viewer.get("/api/kb/unanswered?threshold=0.5")).body
    assert data["counts"]["open"] == 3
    texts = [e["text"] for c in data["clusters"] for e in c["examples"]]
    assert "shampoo bottle in carry on? mail me at [EMAIL]" in texts
    assert not any("ann@x.org" in t for t in texts)
    top = data["clusters"][0]
    assert top["count"] == 2 and sorted(top["question_ids"]) == ids[:2]
    assert top["suggestions"][0]["faq_id"] == "liquids"

    accepted = await editor.post(
        "/api/kb/unanswered/accept",
        {
            "question_ids": top["question_ids"],
            "faq_id": "liquids",
            "variant": "shampoo bottle in carry on",
        },
    )
    assert accepted.status == 200, accepted.text
    assert accepted.body["resolved"] == 2
    assert "shampoo bottle in carry on" in accepted.body["faq"]["variants"]
    assert accepted.body["index"]["ok"] and ctx.runtime.rebuilds == 1
    again = await editor.post(
        "/api/kb/unanswered/accept",
        {"question_ids": top["question_ids"], "faq_id": "liquids", "variant": "other wording"},
    )
    assert again.status == 409 and "already handled" in again.body["error"]
    unknown = await editor.post(
        "/api/kb/unanswered/accept", {"question_ids": [999], "faq_id": "liquids", "variant": "xyz"}
    )
    assert unknown.status == 404
    missing_faq = await editor.post(
        "/api/kb/unanswered/accept", {"question_ids": [ids[2]], "faq_id": "nope", "variant": "xyz"}
    )
    assert missing_faq.status == 404
    bad = await editor.post("/api/kb/unanswered/accept", {"question_ids": [], "faq_id": "x"})
    assert bad.status == 400 and {d["field"] for d in bad.body["details"]} >= {
        "question_ids",
        "variant",
    }

    # The accepted wording now finds the FAQ ("answered next time").
    tried = await viewer.post("/api/kb/try", {"text": "shampoo bottle in carry on"})
    assert tried.body["outcome"] == "answer" and tried.body["chosen"] == ["liquids"]

    created = await editor.post(
        "/api/kb/faqs", new_faq("cats", question="can I bring my cat", unanswered_ids=[ids[2]])
    )
    assert created.status == 201
    left = (await viewer.get("/api/kb/unanswered")).body
    assert left["clusters"] == [] and left["counts"] == {
        "open": 0,
        "accepted": 2,
        "created": 1,
        "dismissed": 0,
        "open_out_of_scope": 0,
    }


async def test_questions_out_of_scope_entries_took_are_listed_apart(ctx: Ctx) -> None:
    """The queue lists the questions that need an answer; ``out_of_scope=true`` lists those an
    out-of-scope entry took (handed off by design), each group naming the entry, so staff can
    check what the entries take and dismiss or re-file them like any other."""
    ids = _queue([("can I bring my cat", "en")])
    with session_scope() as session:
        taken = record_unanswered(
            session, "cancel my flight", "out_of_scope", top_faq_id="out-of-scope-bookings"
        )
        assert taken is not None
        taken_id = taken.id
    viewer, editor = await ctx.as_role("viewer"), await ctx.as_role("editor")
    needing = (await viewer.get("/api/kb/unanswered")).body
    assert [c["question_ids"] for c in needing["clusters"]] == [ids]
    assert needing["counts"]["open"] == 2 and needing["counts"]["open_out_of_scope"] == 1
    listed = (await viewer.get("/api/kb/unanswered?out_of_scope=true")).body
    (cluster,) = listed["clusters"]
    assert cluster["question_ids"] == [taken_id]
    assert cluster["reasons"] == {"out_of_scope": 1}
    assert cluster["out_of_scope_entries"] == {"out-of-scope-bookings": 1}
    assert not any(s["faq_id"].startswith("out-of-scope") for s in cluster["suggestions"])
    bad = await viewer.get("/api/kb/unanswered?out_of_scope=maybe")
    assert bad.status == 400 and bad.body["details"][0]["field"] == "out_of_scope"
    dismissed = await editor.post("/api/kb/unanswered/dismiss", {"question_ids": [taken_id]})
    assert dismissed.status == 200
    assert (await viewer.get("/api/kb/unanswered?out_of_scope=true")).body["clusters"] == []


async def test_a_cluster_says_which_faqs_citizens_chose_for_its_questions(ctx: Ctx) -> None:
    """A citizen's pick among the bot's options (knowledge_base.unanswered.record_choice) is
    listed with the cluster, so staff add the wording to the FAQ citizens themselves chose."""
    ids = _queue([("gel or liquid", "en"), ("gel or liquid", "en"), ("gel or liquid", "en")])
    with session_scope() as session:
        for faq_id in ("liquids", "liquids"):
            assert record_choice(session, "gel or liquid", "en", faq_id) is not None
    viewer = await ctx.as_role("viewer")
    (cluster,) = (await viewer.get("/api/kb/unanswered")).body["clusters"]
    assert cluster["question_ids"] == ids
    assert cluster["chosen"] == {"liquids": 2}


async def test_dismiss(ctx: Ctx) -> None:
    editor = await ctx.as_role("editor")
    ids = _queue([("what time is it in Tokyo", "en")])
    reply = await editor.post("/api/kb/unanswered/dismiss", {"question_ids": ids})
    assert reply.status == 200 and reply.body["resolved"] == 1
    again = await editor.post("/api/kb/unanswered/dismiss", {"question_ids": ids})
    assert again.status == 409
    with session_scope() as session:
        row = session.get(UnansweredQuestion, ids[0])
        assert row is not None and row.status == "dismissed" and row.resolved_by == "editor"


async def test_queued_question_goes_to_an_out_of_scope_entry(ctx: Ctx) -> None:
    """Adding queued questions to an out-of-scope entry is how staff mark them "not for us": the
    page offers such entries, labelled, and the entry stays out of scope."""
    editor = await ctx.as_role("editor")
    assert (await editor.post("/api/kb/faqs", out_of_scope_faq(status="published"))).status == 201
    page = (await editor.request("GET", "/console/kb/unanswered")).text
    assert '<option value="not-for-us" label="Can you book my flight? (en, out of scope)">' in page
    assert '<option value="liquids" label="Can I bring liquids in my carry-on? (en)">' in page
    ids = _queue([("please book me a flight to Lisbon", "en")])
    accepted = await editor.post(
        "/api/kb/unanswered/accept",
        {"question_ids": ids, "faq_id": "not-for-us", "variant": "book me a flight to Lisbon"},
    )
    assert accepted.status == 200, accepted.text
    faq = accepted.body["faq"]
    assert faq["kind"] == OUT_OF_SCOPE and "book me a flight to Lisbon" in faq["variants"]
    assert (await editor.get("/api/kb/unanswered")).body["counts"]["accepted"] == 1


# ----------------------------------------------------------------------------- health
async def test_conflicts_and_health(ctx: Ctx) -> None:
    viewer = await ctx.as_role("viewer")
    editor = await ctx.as_role("editor")
    laptops = (await editor.get("/api/kb/faqs/laptops")).body
    await editor.put(
        "/api/kb/faqs/laptops",
        update_body(laptops, variants=["laptop bag", "can I bring liquids in my carry-on"]),
    )
    conflicts = (await viewer.get("/api/kb/conflicts?margin=0.1")).body
    assert conflicts["total"] >= 1
    first = conflicts["conflicts"][0]
    assert (first["faq_id"], first["text"], first["other_faq_id"]) == (
        "laptops",
        "can I bring liquids in my carry-on",
        "liquids",
    )
    only_pets = (await viewer.get("/api/kb/conflicts?faq_id=pets")).body
    assert only_pets["conflicts"] == []
    assert (await viewer.get("/api/kb/conflicts?margin=2")).status == 400

    # An out-of-scope entry is never given as an answer by design: not "never matched".
    entry = out_of_scope_faq(status="published")
    assert (await editor.post("/api/kb/faqs", entry)).status == 201
    health = (await viewer.get("/api/kb/health")).body
    assert [i["faq_id"] for i in health["review_overdue"]] == ["pets"]
    assert {i["faq_id"] for i in health["never_matched"]} == {"laptops", "liquids", "liquidos"}
    assert health["counts"]["conflicts"] >= 1 and health["similarity_error"] is None
    # Published FAQs under the advised 10 variants, fewest first (the draft is left out).
    assert health["advised_variants"] == 10 and health["counts"]["few_variants"] == 4
    assert [(i["faq_id"], i["detail"]) for i in health["few_variants"]] == [
        ("liquidos", "0 question variants; 10 or more advised"),
        ("liquids", "1 question variant; 10 or more advised"),
        ("not-for-us", "1 question variant; 10 or more advised"),
        ("laptops", "2 question variants; 10 or more advised"),
    ]


# ----------------------------------------------------------------------------- import / export
CSV_OK = (
    "id,language,category,question,answer,variants,status\n"
    "liquids,en,security,Can I bring liquids in my carry-on?,New liquids answer.,"
    "shampoo in hand luggage,published\n"
    "laptops,en,security,Do laptops come out of the bag?,Answer about laptops.,,published\n"
    "gloves,en,clothing,Can I keep my gloves on?,Yes.,mittens | hand warmers,\n"
)


def _counts() -> tuple[int, int]:
    with session_scope() as session:
        return (
            session.scalar(select(func.count()).select_from(Faq)) or 0,
            session.scalar(select(func.count()).select_from(AuditLog)) or 0,
        )


async def test_import_preview_writes_nothing_then_commit(ctx: Ctx) -> None:
    editor = await ctx.as_role("editor")
    before = _counts()
    preview = await editor.post("/api/kb/import/preview?filename=faqs.csv", data=CSV_OK.encode())
    assert preview.status == 200, preview.text
    body = preview.body
    assert body["counts"] == {"create": 1, "update": 1, "unchanged": 1, "errors": 0}
    assert [(r["line"], r["id"], r["action"]) for r in body["rows"]] == [
        (2, "liquids", "update"),
        (3, "laptops", "unchanged"),
        (4, "gloves", "create"),
    ]
    assert body["can_commit"] and body["format"] == "csv"
    assert _counts() == before  # nothing written by the preview

    stale = await editor.post(
        "/api/kb/import/commit?filename=faqs.csv&sha256=deadbeef", data=CSV_OK.encode()
    )
    assert stale.status == 409 and _counts() == before
    done = await editor.post(
        f"/api/kb/import/commit?filename=faqs.csv&sha256={body['sha256']}", data=CSV_OK.encode()
    )
    assert done.status == 200, done.text
    assert (done.body["created"], done.body["updated"], done.body["unchanged"]) == (1, 1, 1)
    assert done.body["index"]["ok"] and ctx.runtime.rebuilds == 1
    gloves = (await editor.get("/api/kb/faqs/gloves")).body
    assert gloves["variants"] == ["mittens", "hand warmers"] and gloves["status"] == "draft"


async def test_import_errors_are_listed_per_row_and_nothing_is_written(ctx: Ctx) -> None:
    editor = await ctx.as_role("editor")
    bad = (
        '{"id": "ok-row", "language": "en", "category": "c", "question": "Fine question?", '
        '"answer": "ok"}\n'
        '{"id": "Bad Id", "language": "english", "category": "c", "question": "Q?", "answer": ""}\n'
        "not json\n"
    )
    before = _counts()
    preview = await editor.post("/api/kb/import/preview?format=jsonl", data=bad.encode())
    assert preview.status == 200
    body = preview.body
    assert body["can_commit"] is False and body["counts"]["create"] == 1
    problems = {(e["line"], e["field"]) for e in body["errors"]}
    assert {(2, "id"), (2, "language"), (2, "answer"), (3, None)} <= problems
    commit = await editor.post("/api/kb/import/commit?format=jsonl", data=bad.encode())
    assert commit.status == 400 and "nothing was imported" in commit.body["error"]
    assert any(d["line"] == 3 for d in commit.body["details"])
    assert _counts() == before
    empty = await editor.post("/api/kb/import/preview", data=b"")
    assert empty.status == 400
    refused = await editor.post(
        "/api/kb/import/preview?mode=create&filename=x.csv", data=CSV_OK.encode()
    )
    assert refused.body["can_commit"] is False
    assert "already exist" in refused.body["errors"][0]["reason"]
    refused_commit = await editor.post(
        "/api/kb/import/commit?mode=create&filename=x.csv", data=CSV_OK.encode()
    )
    assert refused_commit.status == 409 and _counts() == before


async def test_export_round_trips(ctx: Ctx) -> None:
    viewer = await ctx.as_role("viewer")
    csv_reply = await viewer.get("/api/kb/export?format=csv&status=published")
    assert csv_reply.status == 200
    assert csv_reply.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in csv_reply.headers["Content-Disposition"]
    lines = csv_reply.text.strip().splitlines()
    assert lines[0].startswith("id,language,category,question,answer,variants")
    assert len(lines) == 4  # header + three published FAQs
    jsonl = await viewer.get("/api/kb/export?format=jsonl")
    rows = [json.loads(line) for line in jsonl.text.splitlines()]
    assert {r["id"] for r in rows} == {"liquids", "laptops", "pets", "liquidos"}
    assert (await viewer.get("/api/kb/export?format=xml")).status == 400


# ----------------------------------------------------------------------------- pages
async def test_pages_render_for_viewer_read_only(ctx: Ctx) -> None:
    anonymous = await ctx.as_role("anonymous")
    viewer = await ctx.as_role("viewer")
    listing = await viewer.request("GET", "/console/kb?q=liquid&sort=-id")
    assert listing.status == 200
    assert 'href="/console/kb/faq/liquids"' in listing.text and "laptops" not in listing.text
    assert "New FAQ" not in listing.text
    editor_page = await viewer.request("GET", "/console/kb/faq/liquids")
    assert editor_page.status == 200 and "readonly" in editor_page.text
    assert 'id="faq-save"' not in editor_page.text
    assert (await viewer.request("GET", "/console/kb/new")).status == 403
    assert (await viewer.request("GET", "/console/kb/faq/nope")).status == 404
    for page in ("try", "unanswered", "health", "import"):
        reply = await viewer.request("GET", f"/console/kb/{page}")
        assert reply.status == 200, page
        assert '<script src="/static/console/kb.js' in reply.text
        assert "<script>" not in reply.text  # CSP: no inline script
    history = await viewer.request("GET", "/console/kb/faq/liquids/history")
    assert history.status == 200 and "create" in history.text and "Restore" not in history.text
    anonymous = await anonymous.request("GET", "/console/kb")
    assert anonymous.status in (302, 401)


async def test_pages_for_editor(ctx: Ctx) -> None:
    editor = await ctx.as_role("editor")
    page = await editor.request("GET", "/console/kb/faq/liquids")
    assert 'id="faq-publish"' in page.text and 'data-version="1"' in page.text
    assert "Publish now" in page.text
    new = await editor.request("GET", "/console/kb/new")
    assert new.status == 200 and 'data-mode="new"' in new.text
    loaded = (await editor.get("/api/kb/faqs/liquids")).body
    await editor.put("/api/kb/faqs/liquids", update_body(loaded, answer="Changed."))
    history = await editor.request("GET", "/console/kb/faq/liquids/history")
    assert "Restore this version" in history.text and "Changed." in history.text
    bad_filter = await editor.request("GET", "/console/kb?sort=nope")
    assert bad_filter.status == 400


# ----------------------------------------------------------------------------- publisher
async def test_publisher_coalesces_and_reports_failures() -> None:
    calls = 0

    def rebuild() -> PublishResult:
        nonlocal calls
        calls += 1
        return PublishResult(ok=True, version=f"v{calls}")

    publisher = Publisher(rebuild)
    first = asyncio.create_task(publisher.publish())
    await asyncio.sleep(0)  # first holds the lock and is rebuilding
    rest = [asyncio.create_task(publisher.publish()) for _ in range(5)]
    results = await asyncio.gather(first, *rest)
    assert all(r.ok for r in results)
    assert calls == 2 and publisher.rebuilds == 2  # six requests, two rebuilds
    assert results[-1].version == f"v{calls}"

    def broken() -> PublishResult:
        raise RuntimeError("disk full")

    failing = Publisher(broken)
    result = await failing.publish()
    assert result.ok is False and result.error == "RuntimeError: disk full"
    assert (await failing.publish()).ok is False and failing.rebuilds == 2  # retried, not cached


# ----------------------------------------------------------------------------- real model
@pytest.mark.slow
async def test_real_publish_and_try(tmp_settings: Settings, seeded: str) -> None:
    """The real runtime: publishing builds a bundle with the bundled model, Try it
    reads it, an edit re-embeds only the changed text and goes live."""
    app = create_app(tmp_settings)
    server = TestServer(app)
    await server.start_server()
    editor = Browser(server)
    try:
        await editor.login("editor")
        first = await editor.post("/api/kb/publish")
        assert first.status == 200, first.text
        assert first.body["faqs"] == 3 and first.body["embedded"] >= 1
        tried = await editor.post("/api/kb/try", {"text": "can I take shampoo in hand luggage"})
        assert tried.status == 200, tried.text
        assert tried.body["hits"][0]["faq_id"] == "liquids"
        assert tried.body["index_version"] == first.body["version"]

        loaded = (await editor.get("/api/kb/faqs/liquids")).body
        edit = await editor.put(
            "/api/kb/faqs/liquids",
            update_body(loaded, answer="Liquids: 3.4 oz.", variants=["toothpaste allowed?"]),
        )
        index = edit.body["index"]
        assert index["ok"] and index["version"] != first.body["version"]
        assert index["embedded"] == 1  # only the new variant went through the model
        assert index["seconds"] < 10
        status = (await editor.get("/api/kb/index")).body
        assert status["live"] and status["version"] == index["version"]
        tried = await editor.post("/api/kb/try", {"text": "is toothpaste allowed?"})
        assert tried.body["hits"][0]["answer"] == "Liquids: 3.4 oz."
        assert tried.body["index_version"] == index["version"]
        assert Path(tmp_settings.index_dir, "CURRENT").read_text().strip() == index["version"]
        assert tried.body["out_of_scope"] is None

        # A published out-of-scope entry takes the questions it resembles: no hits, a
        # handoff, and Try it names the entry and the example the question is closest to.
        entry = out_of_scope_faq(
            status="published",
            variants=["can I get a refund for my plane ticket", "how do i cancel my flight"],
        )
        assert (await editor.post("/api/kb/faqs", entry)).status == 201
        tried = await editor.post("/api/kb/try", {"text": "refund for my plane ticket please"})
        assert tried.status == 200, tried.text
        assert (tried.body["outcome"], tried.body["hits"]) == ("handoff", [])
        entry_hit = tried.body["out_of_scope"]
        assert entry_hit["faq_id"] == "not-for-us"
        assert entry_hit["matched_text"] == "can I get a refund for my plane ticket"
        tried = await editor.post("/api/kb/try", {"text": "is toothpaste allowed?"})
        assert tried.body["hits"][0]["faq_id"] == "liquids" and tried.body["out_of_scope"] is None
    finally:
        await editor.close()
        await server.close()


def test_sms_length_counts_gsm_and_unicode() -> None:
    assert kb_schemas.sms_length("a" * 160).model_dump() == {
        "chars": 160,
        "segments": 1,
        "unicode": False,
    }
    assert kb_schemas.sms_length("a" * 161).segments == 2
    assert kb_schemas.sms_length("a" * 306).segments == 2
    assert kb_schemas.sms_length("a" * 307).segments == 3
    assert kb_schemas.sms_length("¿Puedo llevar líquidos?").unicode is True
    assert kb_schemas.sms_length("x" * 71 + "í").segments == 2


def test_review_due_ignores_archived(clock) -> None:
    faq = Faq(review_by=clock.now.date() - timedelta(days=1), status="archived")
    assert kb_schemas.is_review_due(faq) is False
    faq.status = "draft"
    assert kb_schemas.is_review_due(faq) is True
