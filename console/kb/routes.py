"""The knowledge-base API's route table: one entry per route. Roles come from the handlers'
``require_role`` decorators and query parameters from their models, so OpenAPI
(``/api/openapi.json``) cannot drift from what a handler enforces or parses."""

from __future__ import annotations

from typing import Any, NamedTuple

from aiohttp import web
from pydantic import BaseModel

from console.kb import (
    content_health,
    faqs,
    history,
    live,
    locations,
    related,
    transfer,
    unanswered,
)
from console.kb import queries as q
from console.kb import schemas as s
from console.kb.runtime import RUNTIME_KEY, KbRuntime
from console.keys import SETTINGS_KEY
from console.openapi import api_route

TAGS = ("knowledge base",)
FAQ = "/api/kb/faqs/{faq_id}"
UNKNOWN = {404: "Unknown FAQ"}
CONFLICT = {404: "Unknown FAQ", 409: "Someone saved a newer version"}
LOCATION = "/api/kb/locations/{code}"


class Route(NamedTuple):
    method: str
    path: str
    handler: Any
    summary: str
    request: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    responses: dict[int, str] | None = None


ROUTES = (
    Route("GET", "/api/kb/faqs", faqs.api_list, "Search, filter, sort and page FAQs",
          response=s.FaqListOut, query=q.ListQuery),
    Route("POST", "/api/kb/faqs", faqs.api_create, "Create an FAQ (published ones go live)",
          s.FaqCreateIn, s.FaqWriteOut, responses={201: "Created", 409: "The id exists"}),
    Route("GET", FAQ, faqs.api_get, "One FAQ with its variants and version",
          response=s.FaqOut, responses=UNKNOWN),
    Route("PUT", FAQ, faqs.api_update, "Replace an FAQ's content (optimistic concurrency)",
          s.FaqUpdateIn, s.FaqWriteOut, responses=CONFLICT),
    Route("DELETE", FAQ, faqs.api_delete, "Delete an FAQ (its history can restore it)",
          response=s.FaqWriteOut, query=q.DeleteQuery, responses=CONFLICT),
    Route("POST", FAQ + "/status", faqs.api_set_status, "Draft, publish or archive an FAQ",
          s.StatusIn, s.FaqWriteOut, responses=CONFLICT),
    Route("GET", FAQ + "/related", related.api_related,
          "Related FAQs: staff's list, the index's default suggestions, what the bot offers",
          response=s.RelatedOut, responses=UNKNOWN),
    Route("GET", FAQ + "/history", history.api_history, "Audit log of an FAQ with field diffs",
          response=s.HistoryOut, responses=UNKNOWN),
    Route("POST", FAQ + "/restore", history.api_restore, "Restore an FAQ to an earlier version",
          s.RestoreIn, s.FaqWriteOut,
          responses={404: "Unknown FAQ or history entry", 409: "Newer version exists"}),
    Route("GET", "/api/kb/index", live.api_index, "The live index bundle and the last publish",
          response=s.IndexStatusOut),
    Route("POST", "/api/kb/publish", live.api_publish, "Rebuild the index from published FAQs now",
          response=s.IndexOut, responses={503: "The index could not be built"}),
    Route("POST", "/api/kb/try", live.api_try, "Top-5 FAQs and the bot's decision for a question",
          s.TryIn, s.TryOut, responses={503: "No index or model available"}),
    Route("GET", "/api/kb/unanswered", unanswered.api_unanswered,
          "Open unanswered questions, clustered, with suggested FAQs",
          response=s.UnansweredOut, query=q.UnansweredQuery),
    Route("POST", "/api/kb/unanswered/accept", unanswered.api_accept,
          "Add a question as a variant of an FAQ and close it (goes live)",
          s.AcceptIn, s.QueueChangeOut,
          responses={404: "Unknown FAQ or questions", 409: "Already handled or newer version"}),
    Route("POST", "/api/kb/unanswered/dismiss", unanswered.api_dismiss,
          "Dismiss unanswered questions", s.DismissIn, s.QueueChangeOut,
          responses={404: "Unknown questions", 409: "Already handled"}),
    Route("GET", "/api/kb/conflicts", content_health.api_conflicts,
          "Question texts closer to another FAQ than to their own",
          response=s.ConflictsOut, query=q.ConflictsQuery),
    Route("GET", "/api/kb/health", content_health.api_health,
          "Content health: overdue reviews, never matched, near-duplicates, conflicts",
          response=s.HealthOut, query=q.HealthQuery),
    Route("POST", "/api/kb/import/preview", transfer.api_import_preview,
          "Dry-run an import (body: the CSV/JSONL file); nothing is written",
          response=s.ImportPreviewOut, query=q.ImportQuery),
    Route("POST", "/api/kb/import/commit", transfer.api_import_commit,
          "Import a file (body: the CSV/JSONL file) in one transaction",
          response=s.ImportCommitOut, query=q.ImportCommitQuery,
          responses={409: "File differs from the preview, or ids exist in create mode"}),
    Route("GET", "/api/kb/export", transfer.api_export, "Export FAQs as CSV or JSONL",
          query=q.ExportQuery),
    Route("GET", "/api/kb/locations", locations.api_list,
          "Every location (airport, office) with its aliases", response=s.LocationListOut),
    Route("POST", "/api/kb/locations/import", locations.api_import,
          "Create or replace locations from a CSV body (code,name,aliases,active); all or nothing",
          response=s.LocationImportOut, responses={413: "File too large"}),
    Route("GET", "/api/kb/locations/export", locations.api_export,
          "Export the locations as CSV (the import format)"),
    Route("PUT", LOCATION, locations.api_put,
          "Create or replace a location (201 when created); the body's code, if sent, must match",
          s.LocationPutIn, s.LocationOut, responses={201: "Created"}),
    Route("DELETE", LOCATION, locations.api_delete, "Remove a location from the list",
          response=s.LocationDeletedOut, responses={404: "Unknown location"}),
)  # fmt: skip


def setup(app: web.Application, rt: KbRuntime | None = None) -> None:
    app[RUNTIME_KEY] = rt or KbRuntime(app[SETTINGS_KEY])
    for route in ROUTES:
        api_route(
            app,
            route.method,
            route.path,
            route.handler,
            summary=route.summary,
            tags=TAGS,
            request_model=route.request,
            response_model=route.response,
            query_model=route.query,
            responses=route.responses,
        )
