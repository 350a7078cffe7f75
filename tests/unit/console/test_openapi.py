"""/api/openapi.json is generated from what the handlers enforce and parse: the roles from their
``require_role`` decorators and the query parameters from the pydantic models they validate
with, so the document and the server cannot disagree."""

from __future__ import annotations

from aiohttp import web

from askagency.config import Settings
from console.app import create_app
from console.kb import queries
from console.openapi import OPERATIONS_KEY, build_spec, roles_of
from tests.unit.console.test_auth import users  # noqa: F401 (fixture)


def _spec(settings: Settings) -> tuple[web.Application, dict]:
    app = create_app(settings)
    return app, build_spec(app[OPERATIONS_KEY])


def _query(spec: dict, method: str, path: str) -> dict[str, dict]:
    params = spec["paths"][path][method]["parameters"]
    return {p["name"]: p for p in params if p["in"] == "query"}


def test_query_parameters_come_from_the_handlers_models(tmp_settings: Settings) -> None:
    _, spec = _spec(tmp_settings)
    listing = _query(spec, "get", "/api/kb/faqs")
    assert set(listing) == set(queries.ListQuery.model_fields)
    assert listing["per_page"]["schema"]["maximum"] == queries.PER_PAGE_MAX
    assert listing["review"]["schema"]["enum"] == ["", "overdue", "soon", "none"]
    assert listing["page"]["schema"]["default"] == 1 and not listing["page"]["required"]
    assert _query(spec, "delete", "/api/kb/faqs/{faq_id}")["expected_version"]["required"]
    metrics = _query(spec, "get", "/api/metrics/conversations")
    assert {"from", "to", "channel", "language", "offset", "limit"} <= set(metrics)
    assert _query(spec, "get", "/api/tickets")["status"]["schema"]["enum"] == ["open", "closed"]


def test_documented_roles_are_the_decorators(tmp_settings: Settings) -> None:
    app, spec = _spec(tmp_settings)
    operations = app[OPERATIONS_KEY]
    assert len(operations) > 30
    for op in operations:
        handler = next(
            r.handler
            for r in app.router.routes()
            if r.method.lower() == op.method and r.resource.canonical == op.path
        )
        assert op.roles == roles_of(handler), op.path
    described = spec["paths"]["/api/kb/faqs"]["post"]["description"]
    assert described == "Roles: editor, admin."
    assert spec["paths"]["/api/kb/faqs"]["get"]["description"] == "Roles: viewer, editor, admin."
