"""OpenAPI 3.1 description of the console's JSON API, built from the routes themselves.

Each API module registers its routes with ``api_route`` (method, path, summary,
roles, pydantic request/response models); the spec served at
``/api/openapi.json`` is generated from that registry, so it cannot drift from
what the server accepts, and Schemathesis can test against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from askagency.staff import Role
from console.auth import Handler, require_role


@dataclass(frozen=True)
class ApiOperation:
    method: str
    path: str
    summary: str
    tags: tuple[str, ...]
    roles: tuple[str, ...]
    request_model: type[BaseModel] | None = None
    response_model: type[BaseModel] | None = None
    query_model: type[BaseModel] | None = None
    responses: dict[int, str] = field(default_factory=dict)


OPERATIONS_KEY = web.AppKey("api_operations", list)


def api_route(
    app: web.Application,
    method: str,
    path: str,
    handler: Handler,
    *,
    summary: str,
    tags: Sequence[str],
    roles: Sequence[str] | None = None,
    request_model: type[BaseModel] | None = None,
    response_model: type[BaseModel] | None = None,
    query_model: type[BaseModel] | None = None,
    responses: dict[int, str] | None = None,
) -> None:
    """Adds the route and records its contract for the OpenAPI document. ``roles`` default to
    the ones the handler's ``require_role`` decorator enforces, so they are written once;
    ``query_model`` is the pydantic model the handler parses its query with
    (``jsonapi.parse_query``)."""
    if roles is None:
        roles = roles_of(handler)
    app.router.add_route(method, path, handler)
    if OPERATIONS_KEY not in app:
        app[OPERATIONS_KEY] = []
    app[OPERATIONS_KEY].append(
        ApiOperation(
            method=method.lower(),
            path=path,
            summary=summary,
            tags=tuple(tags),
            roles=tuple(roles),
            request_model=request_model,
            response_model=response_model,
            query_model=query_model,
            responses=dict(responses or {}),
        )
    )


def roles_of(handler: Handler) -> tuple[str, ...]:
    """The roles ``require_role`` lets through (admin included), in the enum's order."""
    required = getattr(handler, "required_roles", None)
    if not required:
        raise ValueError(f"{handler.__name__} has no require_role decorator: pass roles=")
    return tuple(role.value for role in Role if role in required)


def _query_params(model: type[BaseModel] | None) -> list[dict[str, Any]]:
    """One OpenAPI query parameter per field of ``model`` (type, bounds, enum, default)."""
    if model is None:
        return []
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        description = prop.pop("description", "")
        prop.pop("title", None)
        params.append(
            {
                "name": name,
                "in": "query",
                "required": name in required,
                "description": description,
                "schema": prop,
            }
        )
    return params


def _path_params(path: str) -> list[dict[str, Any]]:
    params = []
    for part in path.split("/"):
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1].split(":")[0]
            params.append(
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            )
    return params


def build_spec(operations: Sequence[ApiOperation]) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    error = {"$ref": "#/components/schemas/Error"}

    def ref(model: type[BaseModel]) -> dict[str, str]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in schema.pop("$defs", {}).items():
            schemas[name] = sub
        schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    for op in operations:
        clean_path = "/".join(
            "{" + p[1:-1].split(":")[0] + "}" if p.startswith("{") else p
            for p in op.path.split("/")
        )
        entry: dict[str, Any] = {
            "summary": op.summary,
            "tags": list(op.tags),
            "description": f"Roles: {', '.join(op.roles)}.",
            "parameters": _path_params(op.path) + _query_params(op.query_model),
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": ref(op.response_model)}}
                    if op.response_model
                    else {"application/json": {"schema": {"type": "object"}}},
                },
                "400": {
                    "description": "Invalid input",
                    "content": {"application/json": {"schema": error}},
                },
                "401": {"description": "Login required"},
                "403": {"description": "Role not allowed or CSRF token missing"},
                **{str(code): {"description": text} for code, text in op.responses.items()},
            },
            "security": [{"session": []}],
        }
        if op.request_model is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(op.request_model)}},
            }
        paths.setdefault(clean_path, {})[op.method] = entry
    schemas["Error"] = {
        "type": "object",
        "properties": {"error": {"type": "string"}, "details": {}},
        "required": ["error"],
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "AskAgency console API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "askagency_session"}
            },
        },
    }


@require_role(Role.VIEWER)  # the API's map is for staff, not for whoever probes the host
async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(build_spec(request.app.get(OPERATIONS_KEY, [])))


def setup(app: web.Application) -> None:
    app.router.add_get("/api/openapi.json", openapi_json)
