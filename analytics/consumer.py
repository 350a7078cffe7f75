"""``python -m analytics.consumer``: the long-running process that feeds the analytics tables.

It reads Rasa's event broker (the SQL broker file by default, RabbitMQ with
``--source rabbitmq``), ingests batch after batch and keeps going when the source is not there
yet (Rasa still starting, RabbitMQ restarting): it logs, waits and retries. A small HTTP
endpoint (``GET /health``) tells the launcher it is up and shows its progress. SIGTERM/SIGINT
finish the current batch and stop.

It also sends the weekly report e-mail when ``report_schedule`` is set: at most once a minute
it asks :func:`analytics.delivery.send_weekly` with ``if_due`` (nothing before the scheduled
moment, one SELECT after it), so a single-machine installation needs no scheduler of its own.
``--no-weekly-email`` leaves that to something else (the Kubernetes CronJob).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from askagency import metrics
from askagency.clock import now_utc
from askagency.config import Settings, get_settings
from askagency.db import session_scope
from askagency.logging_setup import configure_logging
from askagency.readiness import database_status
from askagency.secrets import private_umask

log = logging.getLogger("analytics.consumer")

MAX_BACKOFF_S = 30.0
WEEKLY_EMAIL_CHECK = timedelta(minutes=1)


@dataclass
class ConsumerStatus:
    source: str
    started_at: str = field(default_factory=lambda: now_utc().isoformat())
    batches: int = 0
    events_received: int = 0
    events_stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    last_batch_at: str | None = None
    last_error: str | None = None
    waiting_for_source: bool = False


def batch_lag_seconds(status: ConsumerStatus) -> float:
    """Seconds since the last batch was ingested (since the start before the first one).
    It also grows while nothing happens: alert on it together with Rasa's turns."""
    since = datetime.fromisoformat(status.last_batch_at or status.started_at)
    return max(0.0, (now_utc() - since).total_seconds())


class _HealthHandler(BaseHTTPRequestHandler):
    status: ConsumerStatus
    metrics_token: str = ""

    def _metrics(self) -> None:
        """``GET /metrics``; with a metrics token configured, only with that bearer token."""
        if self.metrics_token and not metrics.bearer_ok(
            self.headers.get("Authorization"), self.metrics_token
        ):
            self.send_error(401, "missing or wrong metrics token")
            return
        body = metrics.render()
        self.send_response(200)
        self.send_header("Content-Type", metrics.CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?")[0]
        if path == "/metrics":
            self._metrics()
            return
        if path not in ("/health", "/ready"):
            self.send_error(404)
            return
        code, body_dict = 200, {"status": "ok", **asdict(self.status)}
        if path == "/ready":
            # Ready: the analytics tables can be written (the event source is reported in
            # waiting_for_source; it may legitimately start later than the consumer).
            database = database_status()
            body_dict["database"] = database
            if not database["ok"]:
                code, body_dict["status"] = 503, "not_ready"
        body = json.dumps(body_dict).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:  # health checks would flood the log
        return


def start_health_server(
    host: str, port: int, status: ConsumerStatus, metrics_token: str = ""
) -> ThreadingHTTPServer:
    """``/health``, ``/ready`` and ``/metrics`` on an internal listener, in a thread."""
    handler = type(
        "HealthHandler", (_HealthHandler,), {"status": status, "metrics_token": metrics_token}
    )
    metrics.register_gauge(
        "askagency_analytics_batch_lag_seconds",
        "Seconds since the analytics consumer last ingested a batch.",
        lambda: batch_lag_seconds(status),
    )
    metrics.register_gauge(
        "askagency_analytics_waiting_for_source",
        "1 while the consumer cannot read Rasa's event broker.",
        lambda: 1.0 if status.waiting_for_source else 0.0,
    )
    server = ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server


class Consumer:
    """Runs one source until ``stop`` is set."""

    def __init__(
        self,
        settings: Settings,
        source_kind: str,
        once: bool = False,
        weekly_email: bool = True,
    ) -> None:
        from analytics.sources import RabbitEventSource, SqlEventSource

        self.settings = settings
        self.once = once
        # The scheduled e-mail (analytics.delivery); off when something else sends it.
        self.weekly_email = weekly_email and bool(settings.report_schedule)
        self._weekly_checked_at: datetime | None = None
        self.stop = threading.Event()
        if source_kind == "sql":
            self.source: Any = SqlEventSource.for_file(
                settings.events_db, settings.analytics_batch_size
            )
        elif source_kind == "rabbitmq":
            self.source = RabbitEventSource(
                settings.amqp_url,
                settings.amqp_queue,
                settings.analytics_batch_size,
                exchange=settings.amqp_exchange,
            )
        else:
            raise ValueError(f"unknown source {source_kind!r}: use 'sql' or 'rabbitmq'")
        self.kind = source_kind
        self.status = ConsumerStatus(source=self.source.name.split("@")[-1])

    def _poll(self) -> Any:
        url = self.settings.database_url
        if self.kind == "sql":
            with session_scope(url) as session:
                return self.source.poll_once(session)
        return self.source.poll_once(
            lambda: session_scope(url), wait_seconds=self.settings.analytics_poll_seconds
        )

    def run(self) -> None:
        from analytics.sources import SourceUnavailable

        backoff = self.settings.analytics_poll_seconds
        while not self.stop.is_set():
            self.check_weekly_email()
            try:
                result = self._poll()
            except SourceUnavailable as exc:
                if not self.status.waiting_for_source:
                    log.info("waiting for the event source: %s", exc)
                self.status.waiting_for_source = True
                self.status.last_error = str(exc)
                if self.once:
                    return
                self.stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            except Exception as exc:  # noqa: BLE001 - keep consuming; the batch is retried
                # Only errors that are not about one event get here (the database or the
                # broker down): analytics.ingest quarantines an event the database refuses.
                # The short form: SQLAlchemy's message lists every value of the batch.
                log.error("batch failed; it will be retried: %s", short_error(exc))
                log.debug("batch failure traceback", exc_info=True)
                self.status.last_error = short_error(exc)
                if self.once:
                    raise
                self.stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            backoff = self.settings.analytics_poll_seconds
            self.status.waiting_for_source = False
            if result.received:
                self._record(result)
            elif self.once:
                return
            elif self.kind == "sql":
                self.stop.wait(self.settings.analytics_poll_seconds)
        self.source.close()

    def check_weekly_email(self) -> None:
        """Sends the weekly report when it is due and not sent yet; checks at most once a
        minute. A failure is logged (and recorded by analytics.delivery): consuming goes on."""
        if not self.weekly_email:
            return
        now = now_utc()
        last = self._weekly_checked_at
        if last is not None and last <= now < last + WEEKLY_EMAIL_CHECK:
            return
        self._weekly_checked_at = now
        from analytics.delivery import send_weekly

        try:  # send_weekly logs what it sent or why sending failed
            send_weekly(self.settings, now, if_due=True)
        except Exception as exc:  # noqa: BLE001 - the e-mail must never stop the consumer
            log.error("weekly report e-mail: %s", short_error(exc))
            log.debug("weekly report failure traceback", exc_info=True)

    def _record(self, result: Any) -> None:
        s = self.status
        s.batches += 1
        s.events_received += result.received
        s.events_stored += result.stored
        s.duplicates += result.duplicates
        s.rejected += result.rejected
        s.last_batch_at = now_utc().isoformat()
        s.last_error = None
        metrics.ANALYTICS_BATCHES.inc()
        metrics.ANALYTICS_EVENTS_INGESTED.inc(result.stored)
        metrics.ANALYTICS_EVENTS_REJECTED.inc(result.rejected)
        log.info(
            "batch: %d received, %d stored, %d duplicates, %d rejected, %d conversations rebuilt",
            result.received,
            result.stored,
            result.duplicates,
            result.rejected,
            result.conversations_rebuilt,
        )


def short_error(exc: BaseException) -> str:
    """``Type: first line`` of the driver's error, without the statement and its parameters."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {lines[0] if lines else ''}"[:500]


def migrate_with_retry(url: str, attempts: int = 5) -> None:
    """Brings the database to head; another process of the stack may be migrating the same
    fresh database at this moment, so a failure is retried after it has finished."""
    from askagency.migrate import upgrade

    for attempt in range(1, attempts + 1):
        try:
            upgrade(url)
            return
        except Exception:
            if attempt == attempts:
                raise
            log.warning("migration attempt %d failed; retrying", attempt, exc_info=True)
            threading.Event().wait(attempt)


def ensure_rollups(url: str, zone: str) -> None:
    """Builds the daily roll-ups when they were never built or the agency's time zone setting
    changed since (analytics.rollup): until then the dashboard reads the rows, correct but slow
    at volume. From here on, ingest keeps them up to date."""
    from analytics import rollup

    with session_scope(url) as session:
        built = rollup.ensure(session, zone)
    if built is not None:
        log.info("daily roll-ups built in %s: %d conversations", zone, built.conversations)


def main(argv: list[str] | None = None) -> int:
    private_umask()  # the SQLite analytics tables it may create: this user's only
    settings = get_settings()
    parser = argparse.ArgumentParser(description="AskAgency analytics consumer")
    parser.add_argument("--source", choices=("sql", "rabbitmq"), default=settings.event_broker)
    parser.add_argument("--health-host", default="127.0.0.1")
    parser.add_argument("--health-port", type=int, default=0, help="0: no health endpoint")
    parser.add_argument("--once", action="store_true", help="drain what is there, then exit")
    parser.add_argument(
        "--no-weekly-email",
        action="store_true",
        help="do not send the scheduled weekly report (a CronJob runs 'askagency report send')",
    )
    args = parser.parse_args(argv)
    configure_logging(stream=sys.stderr)
    migrate_with_retry(settings.database_url)
    ensure_rollups(settings.database_url, settings.staffed_timezone)
    consumer = Consumer(
        settings, args.source, once=args.once, weekly_email=not args.no_weekly_email
    )
    server = None
    if args.health_port:
        server = start_health_server(
            args.health_host, args.health_port, consumer.status, settings.metrics_token
        )

    def _stop(signum: int, _frame: object) -> None:
        log.info("signal %d: finishing the current batch", signum)
        consumer.stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("consuming %s into %s", consumer.status.source, _db_label(settings.database_url))
    try:
        consumer.run()
    finally:
        if server is not None:
            server.shutdown()
    return 0


def _db_label(url: str) -> str:
    return url.split("@")[-1] if "@" in url else url


if __name__ == "__main__":
    raise SystemExit(main())
