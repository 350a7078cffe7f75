"""Photos and files citizens send on a messaging platform: fetched, then stored by the action
server (issue 21, item 1).

Why here and not in the action server: only the channel holds the platform's credentials
(Twilio media needs the account's basic auth, Telegram's file URL carries the bot token, X's
media needs an OAuth 1.0a signature), and Rasa's environment cannot import the store
(``attachments``, SQLAlchemy 2 and Pillow 13 live in the app env). So each file is fetched here
and its bytes are posted to the action server's ``POST /attachments``, which checks what the
file really is, stores it and answers its id.

Guards, each against a way this could be abused:

* at most :data:`MAX_FILES` files per message (the store's ``MAX_PER_MESSAGE``);
* a file is fetched only from the platform's own hosts (:class:`MediaHosts`): the configured
  API base URL's origin plus the platform's media CDNs; a URL elsewhere, redirects included,
  is never requested (no server-side request forgery through a crafted media URL);
* credentials go only to the platform's own origin: a redirect to another host (Twilio's media
  redirect to its CDN) is followed without them;
* reading stops past the size limit (``media_max_bytes``, default 10 MiB): a huge file costs
  at most that much memory;
* timeouts and bounded retries like every platform call (bot/channels/http.py).

Failures never silence the citizen: :func:`ingest` answers the ids it stored and, when none,
the first reject code (the store's own, e.g. ``unsupported_type``; :data:`TOO_LARGE` when the
download passed the limit; :data:`UNAVAILABLE` when a file could not be fetched or the action
server could not be reached), which the bot turns into a message in the citizen's language.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import aiohttp

from askagency import bot_messages as msg
from askagency.channels import log_ref
from askagency.secrets import ACTION_SECRET_ENV, ACTION_SECRET_HEADER
from bot.channels.common import MediaRef
from bot.channels.http import PlatformHttp, Retry, SendResult, retry_after_of, retryable

logger = logging.getLogger(__name__)

MAX_FILES = msg.MAX_ATTACHMENTS_PER_MESSAGE
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
# Reject codes the channel decides itself; the others come from the action server's answer
# (attachments.sanitize.RejectCode). TOO_LARGE is RejectCode.TOO_LARGE's value.
TOO_LARGE = "too_large"
UNAVAILABLE = "unavailable"
# Where the Rasa process finds the action server (bot/endpoints*.yml use the same variable).
ACTION_URL_ENV = "ASKAGENCY_ACTION_URL"
UPLOAD_PATH = "/attachments"
NAME_HEADER = "X-Attachment-Name"
NAME_LIMIT = 200
MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHUNK_BYTES = 64 * 1024
# What the store answers: an id (attachments.store); a reject code is a short lower-case word.
_ID = re.compile(rf"^{msg.ATTACHMENT_ID_PATTERN}$")
_CODE = re.compile(r"^[a-z][a-z_]{0,39}$")


def origin(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of ``url``, the port spelled out; None when it is not http(s)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or {"http": 80, "https": 443}[scheme]


@dataclass(frozen=True)
class MediaHosts:
    """Where a platform's files may be fetched from: exact origins (the configured API base
    URL, and any ``scheme://host:port`` listed, so tests and proxies work) and HTTPS host
    names, ``.example.com`` meaning any host under it (the platform's CDN)."""

    origins: frozenset[tuple[str, str, int | None]] = frozenset()
    names: tuple[str, ...] = ()

    @classmethod
    def of(cls, base_urls: Sequence[str], hosts: str = "") -> MediaHosts:
        entries = [h.strip().lower() for h in hosts.split(",") if h.strip()]
        urls = [*base_urls, *(e for e in entries if "://" in e)]
        origins = {found for found in (origin(url) for url in urls) if found}
        return cls(frozenset(origins), tuple(e for e in entries if "://" not in e))

    def allows(self, url: str) -> bool:
        found = origin(url)
        if found is None:
            return False
        if found in self.origins:
            return True
        scheme, host, _ = found
        if scheme != "https":
            return False
        return any(
            host.endswith(name) if name.startswith(".") else host == name for name in self.names
        )


@dataclass(frozen=True)
class MediaSource:
    """How to fetch one file: its URL, and the credentials for the platform's own origin
    (``headers`` is called with the URL of each request: OAuth signs the URL)."""

    url: str
    auth: aiohttp.BasicAuth | None = None
    headers: Callable[[str], dict[str, str]] | None = None
    name: str = ""


@dataclass(frozen=True)
class Fetched:
    """A download's bytes, or the reject code of why there are none."""

    data: bytes | None
    code: str | None = None


class MediaHttp(PlatformHttp):
    """:class:`PlatformHttp` (one session, retry policy, log redaction) plus the two calls of
    a file's way in: a capped download from the platform, a raw-bytes upload to the action
    server."""

    async def download(
        self, source: MediaSource, *, hosts: MediaHosts, max_bytes: int, label: str = "media"
    ) -> Fetched:
        """The file at ``source.url``: only from ``hosts`` (each redirect checked too), with
        credentials only on the first URL's origin, at most ``max_bytes`` read."""
        return await self.retrying(
            label,
            source.url,
            lambda _attempt: self._download_once(source, hosts, max_bytes, label),
            lambda _error: Fetched(None, UNAVAILABLE),
        )

    async def _download_once(
        self, source: MediaSource, hosts: MediaHosts, max_bytes: int, label: str
    ) -> Fetched | Retry[Fetched]:
        url, own = source.url, origin(source.url)
        for _ in range(MAX_REDIRECTS + 1):
            if not hosts.allows(url):
                logger.warning(
                    "%s %s: %s is not one of the platform's hosts; not fetched",
                    self.platform,
                    label,
                    self.redact(url.split("?", 1)[0]),
                )
                return Fetched(None, UNAVAILABLE)
            credentials = origin(url) == own
            # Uncompressed: a small gzip body could inflate past the cap inside one chunk.
            headers = {"Accept-Encoding": "identity"}
            if credentials and source.headers:
                headers.update(source.headers(url))
            async with self._client().get(
                url,
                allow_redirects=False,
                auth=source.auth if credentials else None,
                headers=headers,
                auto_decompress=False,
            ) as resp:
                location = resp.headers.get("Location")
                if resp.status in REDIRECT_STATUSES and location:
                    url = urljoin(url, location)
                    continue
                if 200 <= resp.status < 300:
                    return await _read_capped(resp, max_bytes, self.platform, label)
                if retryable(resp.status):
                    return Retry(
                        f"HTTP {resp.status}",
                        Fetched(None, UNAVAILABLE),
                        retry_after_of(resp.headers, None),
                    )
                logger.error(
                    "%s %s (%s) failed, not retried: HTTP %d",
                    self.platform,
                    label,
                    self.redact(url.split("?", 1)[0]),
                    resp.status,
                )
                return Fetched(None, UNAVAILABLE)
        logger.error("%s %s: more than %d redirects", self.platform, label, MAX_REDIRECTS)
        return Fetched(None, UNAVAILABLE)

    async def post_bytes(
        self,
        url: str,
        data: bytes,
        *,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        label: str,
    ) -> SendResult:
        """POSTs raw bytes; 429/5xx and network failures are retried, other answers returned."""

        async def once(attempt: int) -> SendResult | Retry[SendResult]:
            async with self._client().post(
                url, data=data, params=dict(params), headers=dict(headers)
            ) as resp:
                raw = await resp.read()
                body: Any
                try:
                    body = await resp.json(content_type=None) if raw else None
                except ValueError:
                    body = raw[:300].decode("utf-8", "replace")
                result = SendResult(200 <= resp.status < 300, resp.status, body, attempt)
                if retryable(resp.status):
                    error = f"HTTP {resp.status}"
                    return Retry(error, result, retry_after_of(resp.headers, body))
                return result

        return await self.retrying(
            label,
            url,
            once,
            lambda error: SendResult(False, None, None, self.policy.max_attempts, error),
        )


async def _read_capped(
    resp: aiohttp.ClientResponse, max_bytes: int, platform: str, label: str
) -> Fetched:
    """The body, or :data:`TOO_LARGE` as soon as it (or its declared length) passes the cap:
    the rest is never read."""
    if resp.content_length is not None and resp.content_length > max_bytes:
        logger.info(
            "%s %s: %d bytes declared, over %d", platform, label, resp.content_length, max_bytes
        )
        return Fetched(None, TOO_LARGE)
    data = bytearray()
    async for chunk in resp.content.iter_chunked(CHUNK_BYTES):
        data += chunk
        if len(data) > max_bytes:
            logger.info("%s %s: over %d bytes; download stopped", platform, label, max_bytes)
            return Fetched(None, TOO_LARGE)
    return Fetched(bytes(data))


def header_name(name: str) -> str:
    """A file name as the action server reads it: percent-encoded UTF-8 (HTTP headers are
    Latin-1), control characters dropped, at most :data:`NAME_LIMIT` characters before
    encoding; the store cleans it again for display."""
    printable = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    return quote(printable.strip()[:NAME_LIMIT], safe=" ()._-")


def upload_url(action_url: str) -> str:
    """The action server's ``/attachments`` from Rasa's action endpoint (``.../webhook``)."""
    parts = urlsplit(action_url.strip())
    path = parts.path.rstrip("/")
    path = path[: -len("/webhook")] if path.endswith("/webhook") else path
    return urlunsplit(parts._replace(path=path + UPLOAD_PATH, query="", fragment=""))


@dataclass(frozen=True)
class Stored:
    """The action server's answer for one file: its id, or a reject code."""

    attachment_id: str | None
    code: str | None = None


@dataclass(frozen=True)
class AttachmentUploads:
    """The action server's ``POST /attachments``, behind its shared secret."""

    url: str = ""
    secret: str = ""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> AttachmentUploads:
        """From the variables the launcher gives Rasa (also used by bot/endpoints.yml)."""
        environ = os.environ if environ is None else environ
        action_url = environ.get(ACTION_URL_ENV, "").strip()
        return cls(
            upload_url(action_url) if action_url else "", environ.get(ACTION_SECRET_ENV, "").strip()
        )

    async def store(
        self, http: MediaHttp, data: bytes, *, conversation_id: str, channel: str, name: str
    ) -> Stored:
        if not self.url or not self.secret:
            logger.error(
                "%s: %s or %s unset; a citizen's file cannot be stored",
                channel,
                ACTION_URL_ENV,
                ACTION_SECRET_ENV,
            )
            return Stored(None, UNAVAILABLE)
        headers = {ACTION_SECRET_HEADER: self.secret, "Content-Type": "application/octet-stream"}
        if header_name(name):
            headers[NAME_HEADER] = header_name(name)
        result = await http.post_bytes(
            self.url,
            data,
            params={"conversation_id": conversation_id, "channel": channel},
            headers=headers,
            label="store attachment",
        )
        body = result.body if isinstance(result.body, dict) else {}
        if result.ok and isinstance(body.get("id"), str) and _ID.match(body["id"]):
            return Stored(body["id"])
        code = body.get("error")
        if result.status in (413, 422) and isinstance(code, str) and _CODE.match(code):
            logger.info("%s: %s refused by the store (%s)", channel, log_ref(conversation_id), code)
            return Stored(None, code)
        logger.error(
            "%s: storing a file of %s failed (HTTP %s)",
            channel,
            log_ref(conversation_id),
            result.status,
        )
        return Stored(None, UNAVAILABLE)


Resolver = Callable[[MediaRef], Awaitable["MediaSource | str"]]


@dataclass
class Ingested:
    """What became of a message's files: the stored ids, in order, and the first reject code
    (kept when every file failed: the bot tells the citizen why)."""

    ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def error(self) -> str | None:
        return None if self.ids or not self.errors else self.errors[0]


async def ingest(
    media: Sequence[MediaRef],
    *,
    resolve: Resolver,
    http: MediaHttp,
    hosts: MediaHosts,
    max_bytes: int,
    uploads: AttachmentUploads,
    conversation_id: str,
    channel: str,
) -> Ingested:
    """Fetches each file (the first :data:`MAX_FILES`) and has the action server store it.

    ``resolve`` turns a platform reference into a :class:`MediaSource` with the platform's
    credentials, or a reject code (Telegram's ``getFile`` failed, a declared size over the
    limit)."""
    result = Ingested()
    if len(media) > MAX_FILES:
        logger.info(
            "%s: %s sent %d files; only the first %d are taken",
            channel,
            log_ref(conversation_id),
            len(media),
            MAX_FILES,
        )
    for ref in media[:MAX_FILES]:
        if ref.size is not None and ref.size > max_bytes:
            result.errors.append(TOO_LARGE)
            continue
        source = await resolve(ref)
        if isinstance(source, str):
            result.errors.append(source)
            continue
        fetched = await http.download(source, hosts=hosts, max_bytes=max_bytes)
        if fetched.data is None:
            result.errors.append(fetched.code or UNAVAILABLE)
            continue
        stored = await uploads.store(
            http,
            fetched.data,
            conversation_id=conversation_id,
            channel=channel,
            name=source.name or ref.name,
        )
        if stored.attachment_id:
            result.ids.append(stored.attachment_id)
        else:
            result.errors.append(stored.code or UNAVAILABLE)
    return result
