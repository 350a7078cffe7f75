"""Run the action server: ``python -m actions.server --port 5055``.

One process instead of ``python -m rasa_sdk``'s Sanic primary + worker pair: the primary would
hold torch without using it (about 470 MB), and loading the model before Sanic switches to the
'spawn' start method crashes the worker (torch's threads do not survive the switch). The
knowledge base is loaded before the port opens, so ``GET /health`` answering means the first
question will be fast.

Only Rasa may run actions: ``/webhook`` and ``/actions`` need the shared secret header
(askagency/secrets.py), and no CORS header is sent, so neither another process on the host or
container network nor a web page aimed at this port can open tickets or write "citizen"
messages into them.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import logging
import os
import sys
import time
import warnings
from urllib.parse import unquote

# Set before anything can import huggingface_hub or Rasa's telemetry helpers.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The model loader's "Loading weights" bar is not a log line (and breaks JSON logs).
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from rasa_sdk.endpoint import create_app  # noqa: E402
from rasa_sdk.executor import ActionExecutor  # noqa: E402
from sanic import Sanic, response  # noqa: E402
from sanic.request import Request  # noqa: E402

from actions import kb  # noqa: E402
from actions.spool_kinds import SPOOL_KINDS  # noqa: E402
from askagency import metrics  # noqa: E402
from askagency.channels import PLATFORM_CHANNELS, WEB_CHANNELS, platform_of  # noqa: E402
from askagency.config import get_settings  # noqa: E402
from askagency.conversation_ids import is_addressable  # noqa: E402
from askagency.logging_setup import configure_logging  # noqa: E402
from askagency.memory import release_free_memory  # noqa: E402
from askagency.numbers import ascii_int
from askagency.readiness import database_status  # noqa: E402
from askagency.secrets import ACTION_SECRET_HEADER, action_secret, private_umask  # noqa: E402
from askagency.spool import Spool, get_spool  # noqa: E402
from attachments import store as attachment_store  # noqa: E402
from attachments.sanitize import Limits, RejectCode, Rejected, sanitize  # noqa: E402
from knowledge_base import language  # noqa: E402

logger = logging.getLogger("actions.server")

# rasa 3.6 calling rasa-sdk 3.21 is measured to work (the whole test suite runs it); the SDK
# would repeat this warning in the log of every new server.
warnings.filterwarnings("ignore", message="Your versions of rasa and rasa_sdk might not be")


def warm_up_language_detector() -> None:
    try:
        detector = language.get_detector(get_settings().detect_languages)
        if detector is not None:
            detector.warm_up()
    except Exception as exc:  # detection then falls back to the channel's language
        logger.warning("language detector not available: %s: %s", type(exc).__name__, exc)


# Paths anyone may call: liveness and readiness probes (the launcher's and Kubernetes').
PUBLIC_PATHS = frozenset({"/health", "/ready"})
# Prometheus has no action secret: /metrics checks the metrics token instead (when set).
METRICS_PATH = "/metrics"


def require_secret(app: Sanic, secret: str) -> None:
    """Refuses (401) every request but the probes without the right :data:`ACTION_SECRET_HEADER`."""
    expected = secret.encode()

    @app.on_request
    async def check_secret(request: Request) -> response.HTTPResponse | None:
        if request.path in PUBLIC_PATHS or request.path == METRICS_PATH:
            return None
        given = (request.headers.get(ACTION_SECRET_HEADER) or "").encode()
        if not hmac.compare_digest(given, expected):
            logger.warning("refused %s %s: missing or wrong secret", request.method, request.path)
            return response.json({"error": "missing or wrong action-server secret"}, status=401)
        return None


def build_app(
    actions_package: str = "actions", warm_up: bool = True, secret: str | None = None
) -> Sanic:
    """The rasa-sdk Sanic app with our actions registered, the shared secret required (default:
    :func:`askagency.secrets.action_secret`) and a knowledge-base warm-up."""
    executor = ActionExecutor()
    executor.register_package(actions_package)
    app = create_app(executor, cors_origins="")  # Rasa calls server to server: no CORS
    require_secret(app, secret or action_secret(get_settings().data_dir))

    async def ready(_: Request) -> response.HTTPResponse:
        """200 when questions can be answered (an index is loaded and the database answers);
        ``index.last_error`` reports a newer index that failed to load while the old one
        keeps serving; ``spool`` counts the writes waiting for the database."""
        index = kb.status()
        database = await asyncio.to_thread(database_status)
        spooled = await asyncio.to_thread(get_spool().status)
        ok = bool(index["ok"]) and bool(database["ok"])
        body = {
            "status": "ready" if ok else "not_ready",
            "index": index,
            "database": database,
            "spool": spooled,
        }
        return response.json(body, status=200 if ok else 503)

    app.add_route(ready, "/ready", methods=["GET"])
    add_metrics(app, executor)
    add_attachment_upload(app)

    async def start_replayer(app_: Sanic) -> None:
        app_.add_task(replay_spool_forever(), name="spool-replayer")

    app.register_listener(start_replayer, "after_server_start")

    if warm_up:

        async def load_knowledge_base(_: Sanic) -> None:
            started = time.perf_counter()
            loaded = await asyncio.to_thread(kb.warm_up)
            # The language detector's models load on first use (about 3 s): not on a citizen.
            await asyncio.to_thread(warm_up_language_detector)
            release_free_memory()  # the loaders' freed temporaries: ~45 MB RSS (docs/scale.md)
            logger.info(
                "knowledge base warm-up %s in %.1f s",
                "done" if loaded else "skipped (not available yet)",
                time.perf_counter() - started,
            )

        app.register_listener(load_knowledge_base, "before_server_start")
    return app


# The Rasa channels store a file fetched from a messaging platform here (they run in Rasa's
# environment, which has neither Pillow nor the database models), then send the citizen's
# message with the returned id (askagency.bot_messages.METADATA_ATTACHMENTS).
ATTACHMENTS_PATH = "/attachments"
# The file's name on the platform (optional): printable ASCII, or UTF-8 percent-encoded (HTTP
# headers are Latin-1). attachments.store cleans it for display whatever it says.
ATTACHMENT_NAME_HEADER = "X-Attachment-Name"
UPLOAD_CHANNELS = frozenset(PLATFORM_CHANNELS + WEB_CHANNELS)
# Images decoded at once: a 40-megapixel photo takes a few hundred MB while it is re-encoded, and
# a burst of citizens' photos must not take the memory the knowledge base needs.
MAX_CONCURRENT_SANITIZE = 2


def _upload_error(status: int, code: str, message: str) -> response.HTTPResponse:
    return response.json({"error": code, "message": message}, status=status)


def add_attachment_upload(app: Sanic) -> None:
    """``POST /attachments?conversation_id=&channel=`` (behind the action secret): the body is
    the file. 201 ``{"id", "kind", "name"}``; 413/422 ``{"error": <RejectCode>, "message"}``;
    400 for a conversation id Rasa cannot address or a channel the id cannot belong to.

    The body is streamed: a declared Content-Length over the limit is refused before a byte is
    read, and an undeclared (chunked) body is cut off as soon as it passes the limit, so a
    huge upload never sits in memory. Decoding runs in a thread, off the event loop that
    serves every citizen's actions."""

    sanitizing = asyncio.Semaphore(MAX_CONCURRENT_SANITIZE)

    async def upload(request: Request) -> response.HTTPResponse:
        settings = get_settings()
        limits = Limits.from_settings(settings)
        conversation_id = request.args.get("conversation_id", "")
        channel = request.args.get("channel", "")
        if not conversation_id or not is_addressable(conversation_id):
            return _upload_error(400, "bad_conversation", "invalid conversation_id")
        if channel not in UPLOAD_CHANNELS or platform_of(conversation_id) != (
            channel if channel in PLATFORM_CHANNELS else None
        ):
            return _upload_error(400, "bad_channel", "channel does not match the conversation")
        too_large = _upload_error(
            413, RejectCode.TOO_LARGE.value, f"the file is larger than {limits.max_bytes} bytes"
        )
        declared = request.headers.get("content-length")
        declared_bytes = ascii_int(declared)
        if declared is not None and (declared_bytes is None or declared_bytes > limits.max_bytes):
            return too_large
        body = bytearray()
        while (chunk := await request.stream.read()) is not None:
            body.extend(chunk)
            if len(body) > limits.max_bytes:
                return too_large
        try:
            async with sanitizing:
                clean = await asyncio.to_thread(sanitize, bytes(body), limits)
        except Rejected as rejected:
            status = 413 if rejected.code is RejectCode.TOO_LARGE else 422
            return _upload_error(status, rejected.code.value, str(rejected))
        name = unquote(request.headers.get(ATTACHMENT_NAME_HEADER, ""))
        try:
            stored = await asyncio.to_thread(
                attachment_store.save_citizen_file,
                clean,
                conversation_id=conversation_id,
                channel=channel,
                name=name,
            )
        except Exception:  # noqa: BLE001 - the channel tells the citizen to try again
            logger.exception("could not store an attachment for a %s conversation", channel)
            return _upload_error(503, "unavailable", "the file could not be stored")
        return response.json(stored, status=201)

    app.add_route(upload, ATTACHMENTS_PATH, methods=["POST"], stream=True)


def add_metrics(app: Sanic, executor: ActionExecutor) -> None:
    """``GET /metrics`` (the metrics token when ``ASKAGENCY_METRICS_TOKEN`` is set: this port
    is internal, but not everything on its network is Prometheus), the action latency
    histogram, and the spool and index gauges read at scrape time."""
    known_actions = frozenset(executor.actions)

    async def serve_metrics(request: Request) -> response.HTTPResponse:
        token = get_settings().metrics_token
        if token and not metrics.bearer_ok(request.headers.get("authorization"), token):
            return response.json({"error": "missing or wrong metrics token"}, status=401)
        body = await asyncio.to_thread(metrics.render)
        return response.raw(body, content_type=metrics.CONTENT_TYPE_LATEST)

    app.add_route(serve_metrics, METRICS_PATH, methods=["GET"])

    @app.on_request
    async def start_timer(request: Request) -> None:
        if request.path == "/webhook":
            request.ctx.started = time.perf_counter()

    @app.on_response
    async def observe_action(request: Request, _response: response.HTTPResponse) -> None:
        started = getattr(request.ctx, "started", None)
        if started is None:
            return
        try:
            name = (request.json or {}).get("next_action")
        except Exception:  # noqa: BLE001 - a malformed body was already refused
            name = None
        # Only registered names: the label set stays small whatever a caller sends.
        label = name if name in known_actions else "unknown"
        metrics.ACTION_SECONDS.labels(action=label).observe(time.perf_counter() - started)

    metrics.register_gauge(
        "askagency_spool_depth",
        "Writes waiting in the spool for the database (askagency/spool.py).",
        lambda: get_spool().pending_count(),
    )
    metrics.register_gauge(
        "askagency_spool_dead_letters",
        "Spooled writes the database refused for good (see askagency spool).",
        lambda: get_spool().dead_count(),
    )
    metrics.register_gauge(
        "askagency_index_info",
        "1 for the index version answering questions (label version).",
        lambda: {(version,): 1.0} if (version := kb.status()["serving"]) else {},
        labels=("version",),
    )
    metrics.register_gauge(
        "askagency_index_loaded_timestamp_seconds",
        "When the serving index version was loaded (Unix time).",
        lambda: getattr(kb.current_handle(), "loaded_at", None),
    )
    metrics.register_gauge(
        "askagency_index_reloads",
        "Index versions loaded since the start (a publish adds one).",
        lambda: getattr(kb.current_handle(), "reloads", None),
    )
    metrics.register_gauge(
        "askagency_index_load_failing",
        "1 while a newer index failed to load and the previous one keeps serving.",
        lambda: 1.0 if kb.status()["last_error"] else 0.0,
    )


async def replay_spool_forever() -> None:
    """Writes spooled records to the database once it answers again, so recovery from an
    outage needs no restart. Idle while the spool is empty and the database was not seen
    failing."""
    settings = get_settings()
    spool = get_spool(settings)
    try:
        while True:
            await asyncio.sleep(settings.spool_retry_seconds)
            try:
                await asyncio.to_thread(replay_once, spool)
            except Exception:  # noqa: BLE001 - the replayer must outlive any one failure
                logger.exception(
                    "spool replay failed; retrying in %.0f s", settings.spool_retry_seconds
                )
    except asyncio.CancelledError:
        # Server shutdown: whatever is still spooled stays on disk for the next start.
        logger.debug("spool replayer stopped")


def replay_once(spool: Spool) -> None:
    """One replay pass; with nothing spooled, a database probe ends a noted outage."""
    if spool.pending_count():
        result = spool.replay(SPOOL_KINDS)
        if result.error and result.remaining:
            logger.debug("spool: %d writes still waiting (%s)", result.remaining, result.error)
    elif spool.down_since is not None and database_status()["ok"]:
        spool.note_recovery(0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    settings = get_settings()
    parser = argparse.ArgumentParser(description="AskAgency action server (rasa-sdk).")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=settings.action_server_port)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    parser.add_argument(
        "--no-warm-up", action="store_true", help="load the knowledge base on first question"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    private_umask()  # the spool, SQLite files and logs it creates: this user's only
    args = parse_args(argv)
    configure_logging(args.log_level, stream=sys.stdout)
    app = build_app(warm_up=not args.no_warm_up)
    logger.info("action server listening on http://%s:%d/webhook", args.host, args.port)
    app.run(
        host=args.host,
        port=args.port,
        single_process=True,
        access_log=False,
        motd=False,
    )


if __name__ == "__main__":
    main()
