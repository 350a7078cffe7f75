"""Outgoing calls to a platform's send API: timeouts, bounded retries, never an exception.

A platform answering 429 or 5xx, timing out or refusing the connection is retried (after its
``Retry-After`` when given, else exponential backoff) up to ``max_attempts`` in total; any
other 4xx means the request itself is wrong and is not retried. Every failure is logged with
the platform's error body and the caller gets a :class:`SendResult`, so a broken platform never
crashes a conversation turn. URLs are logged without their query string (Messenger's access
token) and through ``redact`` (Telegram's bot token sits in the path).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import aiohttp

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class SendResult:
    ok: bool
    status: int | None
    body: Any
    attempts: int
    error: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    timeout_s: float = 10.0
    max_attempts: int = 3
    backoff_s: float = 0.5
    max_wait_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_wait_s)
        return min(self.backoff_s * (2 ** (attempt - 1)), self.max_wait_s)


@dataclass(frozen=True)
class Retry(Generic[T]):
    """An attempt's answer worth another attempt (429, 5xx): why, the platform's wait if it
    gave one, and what the caller gets if it was the last attempt."""

    error: str
    give_up: T
    retry_after: float | None = None


def retryable(status: int) -> bool:
    return status == 429 or status >= 500


def retry_after_of(headers: Mapping[str, str], body: Any) -> float | None:
    """``Retry-After`` in seconds, or Telegram's ``parameters.retry_after``."""
    value = headers.get("Retry-After")
    if value:
        try:
            return float(value)
        except ValueError:
            pass
    if isinstance(body, dict):
        params = body.get("parameters")
        if isinstance(params, dict) and isinstance(params.get("retry_after"), (int, float)):
            return float(params["retry_after"])
    return None


class PlatformHttp:
    """One aiohttp session per event loop (Rasa runs one loop; tests start several)."""

    def __init__(
        self,
        platform: str,
        policy: RetryPolicy | None = None,
        redact: Callable[[str], str] = lambda url: url,
    ) -> None:
        self.platform = platform
        self.policy = policy or RetryPolicy()
        self.redact = redact
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.policy.timeout_s)
            )
            self._loop = loop
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def retrying(
        self,
        label: str,
        url: str,
        once: Callable[[int], Awaitable[T | Retry[T]]],
        failed: Callable[[str], T],
    ) -> T:
        """Runs ``once(attempt)`` until it returns something other than a :class:`Retry`, with
        the policy's attempts and backoff; a timeout or a connection error counts as a failed
        attempt (``failed(error)`` if it was the last). Logs each failure, never raises."""
        shown = self.redact(url.split("?", 1)[0])
        error = ""
        last: T | None = None
        for attempt in range(1, self.policy.max_attempts + 1):
            retry_after = None
            try:
                outcome = await once(attempt)
                if not isinstance(outcome, Retry):
                    return outcome
                error, retry_after, last = outcome.error, outcome.retry_after, outcome.give_up
            # Python 3.10 (Rasa's venv): asyncio.TimeoutError is not the builtin TimeoutError.
            except asyncio.TimeoutError:  # noqa: UP041
                error = f"no answer within {self.policy.timeout_s:g} s"
                last = failed(error)
            except aiohttp.ClientError as exc:
                error = f"{type(exc).__name__}: {exc}"
                last = failed(error)
            if attempt < self.policy.max_attempts:
                wait = self.policy.delay(attempt, retry_after)
                logger.warning(
                    "%s %s (%s) attempt %d/%d failed (%s); retrying in %.2f s",
                    self.platform,
                    label,
                    shown,
                    attempt,
                    self.policy.max_attempts,
                    self.redact(error),
                    wait,
                )
                await asyncio.sleep(wait)
        logger.error(
            "%s %s (%s) failed after %d attempts: %s",
            self.platform,
            label,
            shown,
            self.policy.max_attempts,
            self.redact(error),
        )
        assert last is not None  # max_attempts >= 1
        return last

    async def request(
        self,
        method: str,
        url: str,
        *,
        label: str,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Callable[[], dict[str, str]] | None = None,
        auth: aiohttp.BasicAuth | None = None,
    ) -> SendResult:
        """Sends until success, a non-retryable answer or ``max_attempts``; ``headers`` is
        called per attempt (OAuth signatures carry a fresh nonce and timestamp)."""
        shown = self.redact(url.split("?", 1)[0])

        async def once(attempt: int) -> SendResult | Retry[SendResult]:
            async with self._client().request(
                method,
                url,
                json=json_body,
                data=dict(form) if form is not None else None,
                params=dict(params) if params else None,
                headers=headers() if headers else None,
                auth=auth,
            ) as resp:
                status = resp.status
                body = _decode(await resp.read())
                if 200 <= status < 300:
                    return SendResult(True, status, body, attempt)
                error = f"HTTP {status}: {_short(body)}"
                result = SendResult(False, status, body, attempt, error)
                if retryable(status):
                    return Retry(error, result, retry_after_of(resp.headers, body))
                logger.error(
                    "%s %s (%s) failed, not retried: %s", self.platform, label, shown, error
                )
                return result

        return await self.retrying(
            label,
            url,
            once,
            lambda error: SendResult(False, None, None, self.policy.max_attempts, error),
        )


def _decode(raw: bytes) -> Any:
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _short(body: Any, limit: int = 300) -> str:
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"
