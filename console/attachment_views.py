"""Serving the stored photos and files of conversations (issue 21, item 1), and taking an agent's.

Two doors, never one:

* ``GET /console/attachments/{id}`` (``?variant=thumbnail``, ``?download=1``): staff who may read
  tickets (agents and admins) see any file, the citizen's photo above all. Everyone else gets the
  same 404 as for an unknown id, so a viewer account cannot even learn that an id exists.
* ``GET /media/{id}?exp=...&sig=...``: the citizen's side. Messaging platforms fetch an agent's
  image by URL and the widget shows it, neither with a console session, so the link carries an
  expiring HMAC signature (``attachments.links``). Only files an *agent* sent are served there: a
  citizen's own upload is never public, whatever link someone manages to build.

Every file answer carries the same defences, because the bytes came from outside: the type the
sanitizer decided (``attachments.sanitize``; anything unexpected is served as an opaque
download), ``nosniff``, a CSP that lets the response do nothing (``default-src 'none';
sandbox``: an image opened in its own tab cannot run script even if a browser were fooled), PDFs
only as a download, and ``Cache-Control: private, no-store``. No-store rather than a private
max-age: the ids never change content, but these are people's photos on shared agency
workstations, and a file deleted for privacy (``askagency privacy delete``) must stop being shown
at once instead of living on in a browser's disk cache.

The agent's side of uploads (``read_agent_upload``) lives here too: the ticket API
(``console.api_tickets``) turns its result into a reply.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web
from aiohttp.web_request import FileField
from pydantic import BaseModel

from askagency.clock import now_utc
from askagency.db import session_scope
from askagency.staff import Role
from attachments import links, store
from attachments.models import Attachment
from attachments.sanitize import (
    ACCEPTED_MIME_TYPES,
    MIME_JPEG,
    MIME_PDF,
    MIME_PNG,
    MIME_WEBP,
    Clean,
    Kind,
    Limits,
    RejectCode,
    Rejected,
    sanitize,
)
from console.auth import current_user, wants_json
from console.jsonapi import json_error
from console.keys import SETTINGS_KEY
from handoff.models import MESSAGE_MAX_CHARS

STAFF_PREFIX = "/console/attachments/"
PUBLIC_PREFIX = "/media/"
THUMBNAIL = "thumbnail"
# Who may look at conversation files in the console: whoever may read tickets
# (console.api_tickets requires the agent role; an admin may do everything).
STAFF_ROLES = frozenset({Role.AGENT, Role.ADMIN})

FILE_CSP = "default-src 'none'; sandbox"
CACHE_CONTROL = "private, no-store"
# What the sanitizer stores; anything else in a row (a bug, a hand-edited database) is served as
# an opaque download, never with a type a browser would render.
SERVED_TYPES = frozenset({MIME_JPEG, MIME_PNG, MIME_WEBP, MIME_PDF})
OPAQUE = "application/octet-stream"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")

UPLOAD_FIELD = "file"
CAPTION_FIELD = "text"
# What the agent is told when a file is refused (the sanitizer's code stays in ``details``).
REFUSALS = {
    RejectCode.EMPTY: "The file is empty.",
    RejectCode.TOO_LARGE: "The file is too large (at most {limit}).",
    RejectCode.UNSUPPORTED: "Only photos (JPEG, PNG, WebP, HEIC) and PDF documents can be sent.",
    RejectCode.DAMAGED: "The file is damaged and cannot be read.",
    RejectCode.TOO_MANY_PIXELS: "The image has too many pixels; send a smaller one.",
}


# ----------------------------------------------------------------------------- URLs and JSON
def staff_url(attachment_id: str, *, thumbnail: bool = False, download: bool = False) -> str:
    """The console address of a file for staff (relative: the inbox page is on the console)."""
    url = STAFF_PREFIX + quote(attachment_id, safe="")
    if thumbnail:
        return url + "?variant=" + THUMBNAIL
    return url + "?download=1" if download else url


class AttachmentOut(BaseModel):
    """A file of a ticket message as the inbox shows it (no bytes: they are fetched by URL)."""

    id: str
    kind: str
    mime: str
    name: str
    width: int | None
    height: int | None
    size_bytes: int
    url: str
    download_url: str
    thumbnail_url: str | None


def attachment_out(attachment: Attachment) -> AttachmentOut:
    described = store.describe(attachment)
    has_thumbnail = described["kind"] == Kind.IMAGE.value
    return AttachmentOut(
        **described,
        url=staff_url(attachment.id),
        download_url=staff_url(attachment.id, download=True),
        thumbnail_url=staff_url(attachment.id, thumbnail=True) if has_thumbnail else None,
    )


class UploadRulesOut(BaseModel):
    """What the reply form's file picker may offer, and the size it may send."""

    accept: list[str]
    max_bytes: int


# ----------------------------------------------------------------------------- serving
@dataclass(frozen=True)
class Served:
    """The bytes of one file (or its thumbnail) and what the response says about them."""

    data: bytes
    mime: str
    name: str
    inline: bool


def content_disposition(name: str, inline: bool) -> str:
    """``inline`` or ``attachment`` with the file name safely encoded: an ASCII fallback without
    quotes, separators or control characters, and the exact name as RFC 5987 ``filename*``."""
    kind = "inline" if inline else "attachment"
    fallback = _SAFE_NAME.sub("_", name).strip(" .") or "file"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name or fallback, safe='')}"


def _image_type(data: bytes) -> str | None:
    """The type of a stored thumbnail, from its first bytes (the sanitizer writes JPEG)."""
    if data.startswith(b"\xff\xd8\xff"):
        return MIME_JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return MIME_PNG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return MIME_WEBP
    return None


def _load(
    attachment_id: str, variant: str, allowed: Callable[[Attachment], bool], download: bool
) -> Served | None:
    """The file to serve, or None (unknown id, not ``allowed``, no such variant)."""
    with session_scope() as session:
        attachment = store.get(session, attachment_id)
        if attachment is None or not allowed(attachment):
            return None
        mime = attachment.mime if attachment.mime in SERVED_TYPES else OPAQUE
        if variant == THUMBNAIL:
            thumbnail = attachment.thumbnail
            thumb_type = _image_type(thumbnail) if thumbnail else None
            if thumbnail is None or thumb_type is None:
                return None
            return Served(thumbnail, thumb_type, attachment.name, inline=not download)
        # Only images are ever shown in place; a PDF (or anything odd) is always a download.
        inline = mime.startswith("image/") and not download
        return Served(bytes(attachment.data), mime, attachment.name, inline=inline)


def _file_response(served: Served) -> web.Response:
    response = web.Response(body=served.data, content_type=served.mime)
    headers = response.headers
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Content-Security-Policy"] = FILE_CSP
    headers["Cache-Control"] = CACHE_CONTROL
    headers["Content-Disposition"] = content_disposition(served.name, served.inline)
    return response


def _variant(request: web.Request) -> str:
    variant = request.query.get("variant", "")
    if variant not in ("", THUMBNAIL):
        raise web.HTTPBadRequest(text=f"variant must be {THUMBNAIL!r} or absent")
    return variant


def _download(request: web.Request) -> bool:
    return request.query.get("download", "") in ("1", "true")


def _not_found() -> web.HTTPNotFound:
    return web.HTTPNotFound(text="No such file.")


async def staff_file(request: web.Request) -> web.StreamResponse:
    """A conversation file for logged-in staff. Not logged in: the usual login redirect (401 for
    JSON clients); logged in without a ticket-reading role: 404, as for an unknown id."""
    user = current_user(request)
    if user is None:
        if wants_json(request):
            raise web.HTTPUnauthorized(
                text='{"error": "login required"}', content_type="application/json"
            )
        raise web.HTTPFound(f"/console/login?next={quote(request.path_qs, safe='/')}")
    if user.role not in STAFF_ROLES:
        raise _not_found()
    variant, download = _variant(request), _download(request)
    attachment_id = request.match_info["attachment_id"]
    served = await asyncio.to_thread(_load, attachment_id, variant, lambda _a: True, download)
    if served is None:
        raise _not_found()
    response = _file_response(served)
    # Staff files are for the console's own pages: another site cannot embed them.
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    return response


LINK_SECRET_KEY = web.AppKey("attachment_link_secret", bytes)


async def _load_link_secret(app: web.Application) -> None:
    """The signing secret, read (or created) once when the console starts."""
    app[LINK_SECRET_KEY] = await asyncio.to_thread(links.link_secret, app[SETTINGS_KEY])


def _from_agent(attachment: Attachment) -> bool:
    return attachment.from_agent


async def public_file(request: web.Request) -> web.StreamResponse:
    """An agent's file for the citizen's side, by signed link: 403 for a missing, tampered or
    expired signature, 404 for an unknown id or a file that is not an agent's."""
    attachment_id = request.match_info["attachment_id"]
    exp, sig = request.query.get("exp", ""), request.query.get("sig", "")
    if not exp or not sig:
        raise web.HTTPForbidden(text="This link is not valid.")
    secret = request.app[LINK_SECRET_KEY]
    if not links.verify(attachment_id, exp, sig, secret=secret, now=now_utc()):
        raise web.HTTPForbidden(text="This link is not valid or has expired.")
    variant, download = _variant(request), _download(request)
    served = await asyncio.to_thread(_load, attachment_id, variant, _from_agent, download)
    if served is None:
        raise _not_found()
    return _file_response(served)


# ----------------------------------------------------------------------------- agent uploads
@dataclass(frozen=True)
class AgentUpload:
    """A file an agent chose, sanitized, with its display name and the caption typed with it."""

    clean: Clean
    name: str
    caption: str


def _limit_text(max_bytes: int) -> str:
    return f"{max_bytes / (1024 * 1024):.0f} MB"


def _refusal(code: RejectCode, limits: Limits) -> web.HTTPException:
    status = 413 if code == RejectCode.TOO_LARGE else 422
    message = REFUSALS.get(code, "The file cannot be sent.").format(
        limit=_limit_text(limits.max_bytes)
    )
    return json_error(status, message, {"code": code.value})


def _read_and_sanitize(field: FileField, limits: Limits) -> Clean:
    """Reads at most one byte more than allowed (the rest never leaves the temporary file),
    then lets the sanitizer decide what the file is."""
    data = field.file.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        raise Rejected(RejectCode.TOO_LARGE)
    return sanitize(data, limits)


async def read_agent_upload(request: web.Request) -> AgentUpload:
    """The ``file`` (and optional ``text`` caption) of a multipart reply form, sanitized in a
    thread. 400 for a malformed form, 413/422 with the sanitizer's code for a refused file."""
    limits = Limits.from_settings(request.app[SETTINGS_KEY])
    slack = 64 * 1024  # the multipart framing and the caption around the file
    if request.content_length is not None and request.content_length > limits.max_bytes + slack:
        raise _refusal(RejectCode.TOO_LARGE, limits)
    if not request.content_type.startswith("multipart/form-data"):
        raise json_error(400, f"send a multipart/form-data form with a {UPLOAD_FIELD!r} field")
    try:
        form: Any = await request.post()  # already parsed (and cached) by the CSRF check
    except ValueError as exc:
        raise json_error(400, f"unreadable form: {exc}") from exc
    field = form.get(UPLOAD_FIELD)
    if not isinstance(field, FileField):
        raise json_error(400, f"send the file in the form field {UPLOAD_FIELD!r}")
    caption = form.get(CAPTION_FIELD, "")
    if not isinstance(caption, str):
        raise json_error(400, f"{CAPTION_FIELD!r} must be text")
    caption = caption.strip()
    if len(caption) > MESSAGE_MAX_CHARS:
        raise json_error(400, f"the caption is longer than {MESSAGE_MAX_CHARS} characters")
    try:
        clean = await asyncio.to_thread(_read_and_sanitize, field, limits)
    except Rejected as exc:
        raise _refusal(exc.code, limits) from exc
    return AgentUpload(clean=clean, name=field.filename or "", caption=caption)


def upload_rules(settings: Any) -> UploadRulesOut:
    return UploadRulesOut(
        accept=list(ACCEPTED_MIME_TYPES), max_bytes=int(settings.attachment_max_bytes)
    )


def setup(app: web.Application) -> None:
    app.on_startup.append(_load_link_secret)
    app.router.add_get(STAFF_PREFIX + "{attachment_id}", staff_file)
    app.router.add_get(PUBLIC_PREFIX + "{attachment_id}", public_file)
