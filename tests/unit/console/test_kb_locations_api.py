"""The location API (/api/kb/locations) and the Locations page over real HTTP: roles, CSRF,
create/replace/delete, CSV import (all or nothing) and export, bad input stores nothing.

The console, accounts and fixtures are the knowledge-base API tests' (test_kb_api.py)."""

from __future__ import annotations

from sqlalchemy import select

from askagency.db import session_scope
from knowledge_base.locations import store
from knowledge_base.models import AuditLog
from tests.unit.console import test_kb_api
from tests.unit.console.test_kb_api import Ctx

# The knowledge-base API tests' fixtures: a console with one account per role.
template_db = test_kb_api.template_db
seeded = test_kb_api.seeded
ctx = test_kb_api.ctx

BASE = "/api/kb/locations"
DEN = {"name": "Denver International Airport", "aliases": ["Denver airport", "DIA"]}
CSV = (
    "code,name,aliases,active\n"
    "ORD,Chicago O'Hare International Airport,O'Hare|Chicago O'Hare,true\n"
    "MIA,Miami International Airport,Miami airport,false\n"
)
READS = [("GET", BASE), ("GET", BASE + "/export")]
WRITES = [("PUT", BASE + "/DEN"), ("DELETE", BASE + "/DEN"), ("POST", BASE + "/import")]


def stored() -> dict[str, list[str]]:
    with session_scope() as session:
        return {r.code: list(r.aliases) for r in store.list_locations(session)}


async def test_roles(ctx: Ctx) -> None:
    anonymous, agent = await ctx.as_role("anonymous"), await ctx.as_role("agent")
    viewer, editor = await ctx.as_role("viewer"), await ctx.as_role("editor")
    for method, path in READS + WRITES:
        assert (await anonymous.request(method, path, {})).status == 401, (method, path)
        assert (await agent.request(method, path, {})).status == 403, (method, path)
    for method, path in READS:
        assert (await viewer.request(method, path)).status == 200, path
    for method, path in WRITES:
        reply = await viewer.request(method, path, DEN)
        assert reply.status == 403, (method, path)
        assert reply.body == {"error": "your role may not do this"}
    assert (await agent.request("GET", "/console/kb/locations")).status == 403
    assert stored() == {}
    assert (await editor.put(BASE + "/DEN", DEN)).status == 201
    admin = await ctx.as_role("admin")
    assert (await admin.put(BASE + "/DEN", DEN)).status == 200


async def test_writes_need_the_csrf_token(ctx: Ctx) -> None:
    editor = await ctx.as_role("editor")
    for method, path in WRITES:
        reply = await editor.request(method, path, DEN, csrf=False)
        assert reply.status == 403, (method, path)
        assert reply.body == {"error": "missing or wrong CSRF token"}
    assert stored() == {}


async def test_create_replace_delete(ctx: Ctx) -> None:
    editor = await ctx.as_role("editor")
    created = await editor.put(BASE + "/den", DEN)  # any case in the path
    assert created.status == 201, created.text
    assert created.body["code"] == "DEN" and created.body["updated_by"] == "editor"
    assert created.body["aliases"] == ["Denver airport", "DIA"] and created.body["active"]

    # The body may repeat the code (a GET result sent back) but not change it.
    changed = {**created.body, "aliases": ["DIA"], "active": False}
    replaced = await editor.put(BASE + "/DEN", changed)
    assert replaced.status == 200, replaced.text
    assert (replaced.body["aliases"], replaced.body["active"]) == (["DIA"], False)
    renamed = await editor.put(BASE + "/DEN", {**DEN, "code": "DVR"})
    assert renamed.status == 400 and renamed.body["error"] == "location codes cannot be changed"

    listing = await (await ctx.as_role("viewer")).get(BASE)
    assert [(i["code"], i["active"]) for i in listing.body["items"]] == [("DEN", False)]

    deleted = await editor.delete(BASE + "/den")
    assert deleted.status == 200 and deleted.body == {"deleted": "DEN"}
    assert stored() == {}
    for path in (BASE + "/DEN", BASE + "/not%20a%20code"):
        missing = await editor.delete(path)
        assert missing.status == 404 and "no location" in missing.body["error"], path

    with session_scope() as session:
        log = session.scalars(select(AuditLog).where(AuditLog.entity_type == "location")).all()
        assert [(e.action, e.actor) for e in log] == [
            ("create", "editor"),
            ("update", "editor"),
            ("delete", "editor"),
        ]


async def test_bad_input_gets_400_with_a_message_and_stores_nothing(ctx: Ctx) -> None:
    editor = await ctx.as_role("editor")
    assert (
        await editor.put(BASE + "/ORD", {"name": "Chicago", "aliases": ["O'Hare"]})
    ).status == 201
    bad = [
        ("/MDW", {"name": "Midway", "aliases": ["ohare"]}, "'ohare' already names ORD (Chicago)"),
        ("/MDW", {"name": "   "}, "invalid request body"),
        ("/MDW", {"name": "Midway", "aliases": ["x"]}, "invalid request body"),
        ("/MDW", {"aliases": []}, "invalid request body"),
        ("/MDW", {"name": "Midway", "active": "perhaps"}, "invalid request body"),
        ("/D%20E%20N", {"name": "Denver"}, "not a location code"),
        ("/" + "X" * 17, {"name": "Long"}, "not a location code"),
    ]
    for path, body, message in bad:
        reply = await editor.put(BASE + path, body)
        assert reply.status == 400, (path, body, reply.text)
        assert reply.body["error"] == message, reply.body
    empty = await editor.put(BASE + "/MDW", {"name": "  "})
    assert empty.body["details"][0]["field"] == "name"
    assert "the name is empty" in empty.body["details"][0]["reason"]
    not_json = await editor.request("PUT", BASE + "/MDW", data=b"{nope")
    assert not_json.status == 400
    assert stored() == {"ORD": ["O'Hare"]}


async def test_import_is_all_or_nothing_and_export_round_trips(ctx: Ctx) -> None:
    editor = await ctx.as_role("editor")
    await editor.put(BASE + "/DEN", DEN)
    imported = await editor.post(BASE + "/import", data=("\ufeff" + CSV).encode())
    assert imported.status == 200, imported.text
    assert imported.body == {"imported": 2, "created": 2, "updated": 0}
    again = await editor.post(BASE + "/import", data=CSV.encode())
    assert again.body == {"imported": 2, "created": 0, "updated": 2}

    refused = [
        (CSV + "x y,Nowhere,,true\n", "line 4: code: a code is 1-16 letters"),
        (CSV + "MDW,Midway,O'Hare,true\n", 'MDW: "O\'Hare" already names ORD'),
        ("code,aliases\nMDW,Midway\n", "the header lacks name"),
        ("code,name\n", "the file has no locations"),
    ]
    for text, message in refused:
        reply = await editor.post(BASE + "/import", data=text.encode())
        assert reply.status == 400, reply.text
        assert message in reply.body["error"] and "nothing was imported" in reply.body["error"]
    assert (await editor.post(BASE + "/import", data=b"\xff\xfe\x00")).status == 400
    too_big = await editor.post(BASE + "/import", data=b"code,name\n" + b"X,Y\n" * 300_000)
    assert too_big.status == 413
    assert (await editor.request("POST", BASE + "/import")).status == 400  # no body
    assert sorted(stored()) == ["DEN", "MIA", "ORD"]

    export = await (await ctx.as_role("viewer")).get(BASE + "/export")
    assert export.status == 200
    assert export.headers["Content-Type"].startswith("text/csv")
    assert 'attachment; filename="locations-' in export.headers["Content-Disposition"]
    assert export.text.splitlines() == [
        "code,name,aliases,active",
        "DEN,Denver International Airport,Denver airport|DIA,true",
        "MIA,Miami International Airport,Miami airport,false",
        "ORD,Chicago O'Hare International Airport,O'Hare|Chicago O'Hare,true",
    ]
    # What was exported imports back unchanged.
    await editor.delete(BASE + "/DEN")
    back = await editor.post(BASE + "/import", data=export.text.encode())
    assert back.body == {"imported": 3, "created": 1, "updated": 2}
    assert (await editor.get(BASE + "/export")).text == export.text


async def test_openapi_documents_the_location_routes(ctx: Ctx) -> None:
    spec = (await (await ctx.as_role("viewer")).get("/api/openapi.json")).body
    put = spec["paths"]["/api/kb/locations/{code}"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "LocationPutIn"
    )
    assert "201" in put["responses"] and put["description"] == "Roles: editor, admin."
    listing = spec["paths"]["/api/kb/locations"]["get"]
    assert listing["description"] == "Roles: viewer, editor, admin."
    assert "LocationOut" in spec["components"]["schemas"]


async def test_locations_page(ctx: Ctx) -> None:
    editor = await ctx.as_role("editor")
    await editor.put(BASE + "/DEN", {**DEN, "aliases": ['Denver "<b>" airport', "DIA"]})
    page = await editor.request("GET", "/console/kb/locations")
    assert page.status == 200
    assert 'aria-current="page">Locations</a>' in page.text
    assert 'data-page="locations"' in page.text and 'id="location-form"' in page.text
    assert 'data-aliases="Denver &#34;&lt;b&gt;&#34; airport\nDIA"' in page.text  # escaped
    assert "<b>" not in page.text and "<script>" not in page.text  # CSP: no inline script
    assert 'id="locations-import-form"' in page.text

    viewer_page = await (await ctx.as_role("viewer")).request("GET", "/console/kb/locations")
    assert viewer_page.status == 200 and "DEN" in viewer_page.text
    assert (
        'id="location-form"' not in viewer_page.text and "location-delete" not in viewer_page.text
    )
    assert 'href="/api/kb/locations/export"' in viewer_page.text
    kb_home = await editor.request("GET", "/console/kb")
    assert 'href="/console/kb/locations"' in kb_home.text
