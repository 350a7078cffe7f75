"""Starts the whole assistant (Rasa server, action server, console) as one command.

The same ``Stack`` is used by ``make run`` and by the end-to-end tests, so the
tests exercise exactly the processes, flags and environment a newcomer gets.
The processes run under supervisord (askagency/supervision.py): a crashed one is restarted
while the others keep serving, one that keeps crashing while it starts is given up and
reported; the launcher starts them in order, waits for each one's readiness, relays crashes
and recoveries (``<log_dir>/launcher.log``) and stops everything on Ctrl-C or SIGTERM.
Each process writes to ``<log_dir>/<name>.log``; the launcher also echoes every
line to the terminal with a coloured name prefix so there is one place to look.

Two profiles, same code: ``embedded`` (default: SQLite everywhere, one process of each kind)
and ``scale`` (``--profile scale``, see deploy/ and docs/scale.md): PostgreSQL for the KB,
analytics and Rasa's tracker store, a Redis lock store, the RabbitMQ event broker, N Rasa
replicas and M action servers behind HAProxy (askagency/loadbalancer.py, deploy/haproxy/), which
listens on the ports the embedded profile uses, so channels and Rasa do not notice the
difference; the console reaches Rasa's API on a loopback-only port of the same balancer.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import xmlrpc.client
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from askagency import loadbalancer
from askagency.clock import now_utc
from askagency.config import DEFAULT_AMQP_EXCHANGE, PROJECT_ROOT, Settings, get_settings
from askagency.loadbalancer import BalancerPorts
from askagency.native_threads import thread_env
from askagency.ports import free_port
from askagency.secrets import (
    ACTION_SECRET_ENV,
    RASA_TOKEN_SECRET,
    WeakSecretError,
    action_secret,
    check_api_token,
    private_umask,
)
from askagency.supervision import (
    RPC_TIMEOUT_S,
    RUNNING_STATES,
    SOCKET_ENV,
    Program,
    render_config,
    rpc,
    socket_path_for,
)

RASA_VENV = PROJECT_ROOT / ".venv-rasa"
OFFLINE_ENV = {
    "RASA_TELEMETRY_ENABLED": "false",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONUNBUFFERED": "1",
}
COLOURS = {
    "rasa": "\033[35m",
    "actions": "\033[36m",
    "analytics": "\033[34m",
    "console": "\033[33m",
}
EMBEDDED_ENDPOINTS = PROJECT_ROOT / "bot" / "endpoints.yml"
# What the action servers' balancer forwards: Rasa's action calls and the probes.
SCALE_ENDPOINTS = PROJECT_ROOT / "bot" / "endpoints.scale.yml"


@dataclass
class ServiceSpec:
    """How to start one process and how to know it is ready."""

    name: str
    argv: list[str]
    health_url: str
    env: dict[str, str] = field(default_factory=dict)
    ready_timeout_s: float = 180.0
    # ``/ready`` (its dependencies answer) where the process has one; the launcher waits for it
    # instead of plain liveness so the first request after start does not fail.
    ready_url: str | None = None
    # Restart policy (supervisord, askagency/supervision.py): alive ``start_secs`` after a spawn
    # counts as started; ``start_retries`` failed starts in a row (1 s, 2 s, ... apart) and the
    # process is given up (FATAL, reported). A crash after a good start restarts it at once.
    start_secs: int = 5
    start_retries: int = 5

    @property
    def wait_url(self) -> str:
        return self.ready_url or self.health_url


@dataclass
class ScaleConfig:
    """Infrastructure and replica ports of the scale profile.

    ``from_env`` reads the variables bot/endpoints.scale.yml and deploy/scale.env use, so the
    launcher, Rasa, docker-compose and the tests agree on one set of names.
    """

    database_url: str  # KB, analytics, handoff tables (SQLAlchemy URL, PostgreSQL)
    rasa_ports: list[int]  # one per Rasa replica, behind HAProxy on StackConfig.rasa_port
    action_ports: list[int]  # one per action server, behind HAProxy on StackConfig.action_port
    rasa_api_port: int = 5006  # HAProxy's loopback-only frontend to Rasa's HTTP API (console)
    lb_stats_port: int = 8404  # HAProxy's loopback /stats and /metrics
    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    pg_user: str = "postgres"
    pg_password: str = ""
    tracker_db: str = "askagency_tracker"  # Rasa's tracker store database
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    rabbitmq_host: str = "127.0.0.1"
    rabbitmq_port: int = 5672
    rabbitmq_user: str = "guest"
    rabbitmq_password: str = "guest"
    amqp_queue: str = "askagency_events"
    amqp_exchange: str = DEFAULT_AMQP_EXCHANGE

    def __post_init__(self) -> None:
        if not self.rasa_ports or not self.action_ports:
            raise ValueError("the scale profile needs at least one Rasa and one action server")
        if not self.database_url.startswith("postgresql"):
            raise ValueError(f"the scale profile stores in PostgreSQL, got {self.database_url!r}")
        if not self.tracker_db.replace("_", "").isalnum() or not self.tracker_db.islower():
            # Rasa creates it with an unquoted CREATE DATABASE.
            raise ValueError(
                f"tracker database name must be lower-case [a-z0-9_]: {self.tracker_db}"
            )

    @classmethod
    def from_env(
        cls,
        rasa_replicas: int = 2,
        action_replicas: int = 2,
        environ: dict[str, str] | None = None,
    ) -> ScaleConfig:
        env = dict(os.environ if environ is None else environ)
        host = env.get("ASKAGENCY_PG_HOST", "127.0.0.1")
        port = int(env.get("ASKAGENCY_PG_PORT", "5432"))
        user = env.get("ASKAGENCY_PG_USER", "postgres")
        password = env.get("ASKAGENCY_PG_PASSWORD", "")
        auth = f"{user}:{password}" if password else user
        default_url = f"postgresql+psycopg://{auth}@{host}:{port}/askagency"
        database_url = env.get("ASKAGENCY_DATABASE_URL", "")
        return cls(
            database_url=database_url if database_url.startswith("postgresql") else default_url,
            rasa_ports=[free_port() for _ in range(rasa_replicas)],
            action_ports=[free_port() for _ in range(action_replicas)],
            rasa_api_port=int(env.get("ASKAGENCY_RASA_API_PORT", "5006")),
            lb_stats_port=int(env.get("ASKAGENCY_LB_STATS_PORT", "8404")),
            pg_host=host,
            pg_port=port,
            pg_user=user,
            pg_password=password,
            tracker_db=env.get("ASKAGENCY_PG_DB", "askagency_tracker"),
            redis_host=env.get("ASKAGENCY_REDIS_HOST", "127.0.0.1"),
            redis_port=int(env.get("ASKAGENCY_REDIS_PORT", "6379")),
            rabbitmq_host=env.get("ASKAGENCY_RABBITMQ_HOST", "127.0.0.1"),
            rabbitmq_port=int(env.get("ASKAGENCY_RABBITMQ_PORT", "5672")),
            rabbitmq_user=env.get("ASKAGENCY_RABBITMQ_USER", "guest"),
            rabbitmq_password=env.get("ASKAGENCY_RABBITMQ_PASSWORD", "guest"),
            amqp_queue=env.get("ASKAGENCY_AMQP_QUEUE", "askagency_events"),
            amqp_exchange=env.get("ASKAGENCY_AMQP_EXCHANGE", DEFAULT_AMQP_EXCHANGE),
        )

    @property
    def amqp_url(self) -> str:
        return (
            f"amqp://{self.rabbitmq_user}:{self.rabbitmq_password}@"
            f"{self.rabbitmq_host}:{self.rabbitmq_port}/%2F"
        )

    def env(self) -> dict[str, str]:
        """What every process of the profile gets: Rasa reads the ``PG``/``REDIS``/``RABBITMQ``
        values through endpoints.scale.yml, our processes read the ``ASKAGENCY_`` settings."""
        return {
            "ASKAGENCY_DATABASE_URL": self.database_url,
            "ASKAGENCY_EVENT_BROKER": "rabbitmq",
            "ASKAGENCY_AMQP_URL": self.amqp_url,
            "ASKAGENCY_AMQP_QUEUE": self.amqp_queue,
            "ASKAGENCY_AMQP_EXCHANGE": self.amqp_exchange,
            "ASKAGENCY_PG_HOST": self.pg_host,
            "ASKAGENCY_PG_PORT": str(self.pg_port),
            "ASKAGENCY_PG_DB": self.tracker_db,
            "ASKAGENCY_PG_USER": self.pg_user,
            "ASKAGENCY_PG_PASSWORD": self.pg_password,
            "ASKAGENCY_REDIS_HOST": self.redis_host,
            "ASKAGENCY_REDIS_PORT": str(self.redis_port),
            "ASKAGENCY_RABBITMQ_HOST": self.rabbitmq_host,
            "ASKAGENCY_RABBITMQ_PORT": str(self.rabbitmq_port),
            "ASKAGENCY_RABBITMQ_USER": self.rabbitmq_user,
            "ASKAGENCY_RABBITMQ_PASSWORD": self.rabbitmq_password,
        }


@dataclass
class StackConfig:
    """Ports and paths of one running stack; defaults come from Settings."""

    data_dir: Path
    rasa_port: int
    action_port: int
    console_port: int
    rasa_token: str
    model_path: Path
    log_dir: Path
    with_console: bool = True
    # Where channels reach Rasa: Rasa's own interface in the embedded profile (anything but
    # loopback needs a strong token and a proxy that forwards only the public paths); HAProxy's
    # public frontend in the scale profile, whose replicas listen on loopback.
    rasa_interface: str = "127.0.0.1"
    # Rasa's --cors: the widget's origins; empty = the console's own (loopback) origin.
    cors_origins: list[str] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)
    # Health port of the analytics consumer; None: ASKAGENCY_ANALYTICS_PORT, else console + 1.
    analytics_port: int | None = None
    scale: ScaleConfig | None = None  # None: the embedded profile

    @property
    def profile(self) -> str:
        return "embedded" if self.scale is None else "scale"

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> StackConfig:
        settings = settings or get_settings()
        rasa_port = int(settings.rasa_url.rsplit(":", 1)[-1].split("/")[0])
        return cls(
            data_dir=settings.data_dir,
            rasa_port=rasa_port,
            action_port=settings.action_server_port,
            console_port=settings.console_port,
            rasa_token=settings.rasa_token,
            model_path=settings.rasa_model_dir,
            log_dir=settings.data_dir / "logs",
            rasa_interface=settings.rasa_interface,
            cors_origins=settings.cors_origins(),
        )

    def rasa_cors(self) -> list[str]:
        """Origins for Rasa's --cors (never "*")."""
        if self.cors_origins:
            return list(self.cors_origins)
        return [
            f"http://127.0.0.1:{self.console_port}",
            f"http://localhost:{self.console_port}",
        ]

    @property
    def rasa_url(self) -> str:
        """Where channels post: Rasa, or the scale profile's public balancer."""
        return f"http://127.0.0.1:{self.rasa_port}"

    @property
    def rasa_api_url(self) -> str:
        """Rasa's HTTP API (token-protected): Rasa itself, or the balancer's loopback-only
        frontend in the scale profile (the public one forwards only channels)."""
        if self.scale is not None:
            return f"http://127.0.0.1:{self.scale.rasa_api_port}"
        return self.rasa_url

    def balancer_ports(self) -> BalancerPorts:
        assert self.scale is not None, "only the scale profile has a load balancer"
        return BalancerPorts(
            bind=f"{self.rasa_interface}:{self.rasa_port}",
            rasa_api_port=self.scale.rasa_api_port,
            actions_port=self.action_port,
            stats_port=self.scale.lb_stats_port,
        )

    @property
    def action_url(self) -> str:
        return f"http://127.0.0.1:{self.action_port}/webhook"

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.console_port}"


def analytics_port(cfg: StackConfig) -> int:
    """Health port of the analytics consumer: ASKAGENCY_ANALYTICS_PORT, else console port + 1."""
    configured = cfg.extra_env.get("ASKAGENCY_ANALYTICS_PORT") or os.environ.get(
        "ASKAGENCY_ANALYTICS_PORT"
    )
    if cfg.analytics_port is not None:
        return cfg.analytics_port
    return int(configured) if configured else cfg.console_port + 1


def _common_env(cfg: StackConfig) -> dict[str, str]:
    return {
        **OFFLINE_ENV,
        # glibc gives each thread that allocates its own malloc arena (up to 8 per core); the
        # action server's lookup threads each kept one with freed pages. With 2 arenas its RSS
        # after 320 concurrent turns was 878-883 MB instead of 916 MB (docs/scale.md).
        "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2"),
        # One thread for OpenBLAS/OpenMP in each program: spinning pools took the cores the
        # other programs needed (askagency/native_threads.py).
        **thread_env(os.environ),
        "ASKAGENCY_DATA_DIR": str(cfg.data_dir),
        "ASKAGENCY_RASA_URL": cfg.rasa_api_url,
        "ASKAGENCY_RASA_TOKEN": cfg.rasa_token,
        "ASKAGENCY_ACTION_SERVER_PORT": str(cfg.action_port),
        "ASKAGENCY_CONSOLE_PORT": str(cfg.console_port),
        "ASKAGENCY_ACTION_URL": cfg.action_url,
        # Rasa sends it to the action servers, which refuse calls without it.
        ACTION_SECRET_ENV: action_secret(cfg.data_dir, {**os.environ, **cfg.extra_env}),
        "ASKAGENCY_TRACKER_DB": str(cfg.data_dir / "rasa_tracker.db"),
        "ASKAGENCY_EVENTS_DB": str(cfg.data_dir / "rasa_events.db"),
        "PYTHONPATH": str(PROJECT_ROOT),
        **(cfg.scale.env() if cfg.scale else {}),
        **cfg.extra_env,
    }


def _actions_spec(name: str, port: int, env: dict[str, str]) -> ServiceSpec:
    return ServiceSpec(
        name=name,
        argv=[sys.executable, "-m", "actions.server", "--port", str(port)],
        health_url=f"http://127.0.0.1:{port}/health",
        ready_url=f"http://127.0.0.1:{port}/ready",
        env=env,
    )


def _analytics_spec(cfg: StackConfig, env: dict[str, str]) -> ServiceSpec:
    argv = [sys.executable, "-m", "analytics.consumer", "--health-port", str(analytics_port(cfg))]
    if cfg.scale:
        argv += ["--source", "rabbitmq"]
    return ServiceSpec(
        name="analytics",
        argv=argv,
        health_url=f"http://127.0.0.1:{analytics_port(cfg)}/health",
        ready_url=f"http://127.0.0.1:{analytics_port(cfg)}/ready",
        env=env,
    )


def _rasa_spec(
    cfg: StackConfig, name: str, port: int, endpoints: Path, env: dict[str, str]
) -> ServiceSpec:
    # bot.serve passes ASKAGENCY_RASA_TOKEN (in ``env``, not in argv: `ps` shows argv to every
    # local user) to `rasa run --auth-token`, after refusing a weak one.
    return ServiceSpec(
        name=name,
        argv=[
            str(RASA_VENV / "bin" / "python"),
            "-m",
            "bot.serve",
            "run",
            "--enable-api",
            "--interface",
            # Scale replicas are reached through the balancer only.
            cfg.rasa_interface if cfg.scale is None else "127.0.0.1",
            "--port",
            str(port),
            "--credentials",
            str(PROJECT_ROOT / "bot" / "credentials.yml"),
            "--endpoints",
            str(endpoints),
            "--model",
            str(cfg.model_path),
            "--cors",
            *cfg.rasa_cors(),
        ],
        health_url=f"http://127.0.0.1:{port}/",
        env=env,
        # N replicas load their models at the same time on the same cores.
        ready_timeout_s=180.0 if endpoints == EMBEDDED_ENDPOINTS else 420.0,
        start_secs=20,  # a model that fails to load exits within seconds: that is a failed start
    )


def _balancer_spec(cfg: StackConfig) -> ServiceSpec:
    """HAProxy in front of the replicas (deploy/haproxy/haproxy.cfg, written into the run folder
    by :func:`prepare_balancer`). Ready when its public ``/health`` says a Rasa replica is up."""
    ports = cfg.balancer_ports()
    run_dir = cfg.data_dir / "run"
    return ServiceSpec(
        name="lb",
        argv=loadbalancer.command(
            [run_dir / f"haproxy-{t.name}" for t in loadbalancer.SCALE_CONFIGS]
        ),
        health_url=ports.health_url,
        env={**ports.env(run_dir)},
        ready_timeout_s=60.0,
        start_secs=2,
    )


def prepare_balancer(cfg: StackConfig) -> None:
    """Writes HAProxy's configuration for this stack's replicas and has HAProxy check it."""
    assert cfg.scale is not None
    run_dir = cfg.data_dir / "run"
    upstreams = {
        "rasa": [
            loadbalancer.Upstream(f"rasa-{i}", port)
            for i, port in enumerate(cfg.scale.rasa_ports, 1)
        ],
        "actions": [
            loadbalancer.Upstream(f"actions-{i}", port)
            for i, port in enumerate(cfg.scale.action_ports, 1)
        ],
    }
    try:
        configs = loadbalancer.write_configs(upstreams, run_dir, loadbalancer.SCALE_CONFIGS)
        loadbalancer.check_config(configs, cfg.balancer_ports().env(run_dir))
    except loadbalancer.LoadBalancerError as exc:
        raise StartupError(str(exc)) from exc


def _console_spec(cfg: StackConfig, env: dict[str, str]) -> ServiceSpec:
    return ServiceSpec(
        name="console",
        argv=[sys.executable, "-m", "console", "--port", str(cfg.console_port)],
        health_url=f"http://127.0.0.1:{cfg.console_port}/health",
        ready_url=f"http://127.0.0.1:{cfg.console_port}/ready",
        env=env,
    )


def service_specs(cfg: StackConfig) -> list[ServiceSpec]:
    """The processes of the stack's profile, in start order."""
    env = _common_env(cfg)
    if cfg.scale is None:
        specs = [
            _actions_spec("actions", cfg.action_port, env),
            _analytics_spec(cfg, env),
            _rasa_spec(cfg, "rasa", cfg.rasa_port, EMBEDDED_ENDPOINTS, env),
        ]
    else:
        scale = cfg.scale
        specs = [
            *(
                _actions_spec(f"actions-{i}", port, env)
                for i, port in enumerate(scale.action_ports, 1)
            ),
            _analytics_spec(cfg, env),
            *(
                _rasa_spec(cfg, f"rasa-{i}", port, SCALE_ENDPOINTS, env)
                for i, port in enumerate(scale.rasa_ports, 1)
            ),
            # After the replicas: its readiness is "a Rasa replica passes the checks".
            _balancer_spec(cfg),
        ]
    if cfg.with_console:
        specs.append(_console_spec(cfg, env))
    return specs


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback only)
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


class StartupError(RuntimeError):
    """A process exited or never became healthy; the message names it and its log."""


def _check_tcp(what: str, host: str, port: int) -> None:
    try:
        with socket.create_connection((host, port), timeout=3):
            return
    except OSError as exc:
        raise StartupError(f"{what} is not reachable at {host}:{port}: {exc}") from exc


def ensure_database(scale: ScaleConfig, name: str) -> None:
    """Creates database ``name`` on the profile's PostgreSQL server when it does not exist."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from askagency.db import make_engine

    admin_url = make_url(scale.database_url).set(database="postgres")
    engine = make_engine(admin_url.render_as_string(hide_password=False))
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()


def prepare_scale(scale: ScaleConfig) -> None:
    """Before any process starts: the services answer, both databases exist, the app schema is
    at head. A missing service is reported by name instead of as a replica's crash loop."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from askagency.migrate import upgrade

    _check_tcp("PostgreSQL", scale.pg_host, scale.pg_port)
    _check_tcp("Redis (lock store)", scale.redis_host, scale.redis_port)
    _check_tcp("RabbitMQ (event broker)", scale.rabbitmq_host, scale.rabbitmq_port)
    app_db = make_url(scale.database_url).database or "askagency"
    try:
        ensure_database(scale, app_db)
        ensure_database(scale, scale.tracker_db)
        upgrade(scale.database_url)
    except SQLAlchemyError as exc:
        raise StartupError(f"PostgreSQL preparation failed: {exc}") from exc


# The lines of supervisord's log the launcher relays (supervisor/process.py writes them).
SUPERVISORD_EVENT = re.compile(
    r" (?:INFO|WARN|CRIT|ERRO) (?P<what>spawned|success|exited|gave up): "
    r"'?(?P<name>[\w.-]+)'? ?\(?(?P<detail>.*?)\)?$"
)


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


@dataclass
class SupervisionEvent:
    """One state change the launcher relayed (also in ``<log_dir>/launcher.log``)."""

    name: str
    kind: str  # "crashed", "start_failed", "fatal", "recovered"
    text: str
    at: float  # time.monotonic()
    seconds: float | None = None  # "recovered": from the crash seen to ready again


class ProcessHandle:
    """A supervised process as tests and benchmarks knew it from ``subprocess.Popen``:
    ``pid`` (the current one: it changes when supervisord restarts the process), ``args`` (its
    command line) and ``poll()``: None while it runs and has not crashed since this handle was
    made (by ``start()`` or ``restart()``), so "the process survived this" stays checkable
    although supervisord hides a crash by restarting."""

    def __init__(self, stack: Stack, spec: ServiceSpec) -> None:
        self._stack = stack
        self.name = spec.name
        self.args = spec.argv
        self._events_seen = len(stack.events)

    def info(self) -> dict[str, Any]:
        return self._stack.info(self.name)

    @property
    def pid(self) -> int:
        return int(self.info()["pid"])

    @property
    def state(self) -> str:
        return str(self.info()["statename"])

    def crashes(self) -> list[SupervisionEvent]:
        """The crashes and failed starts reported since this handle was made."""
        return [
            e
            for e in self._stack.events[self._events_seen :]
            if e.name == self.name and e.kind in ("crashed", "start_failed", "fatal")
        ]

    def poll(self) -> int | None:
        info = self.info()
        if info["statename"] in RUNNING_STATES and not self.crashes():
            return None
        return int(info["exitstatus"]) or -1

    @property
    def returncode(self) -> int | None:
        return self.poll()


class Stack:
    """The processes of one stack under a supervisord of its own (askagency/supervision.py).

    ``start()`` writes the supervisord configuration under ``<data_dir>/run``, starts
    supervisord, starts the programs in order and waits for each one's readiness URL; from then
    on supervisord restarts a crashed process while the others keep serving, and a monitor
    thread reports every crash, give-up (FATAL) and recovery to ``<log_dir>/launcher.log``, to
    ``echo`` and to :attr:`events`. ``stop()`` always takes every process down.
    """

    POLL_S = 0.5

    def __init__(self, cfg: StackConfig, echo: Callable[[str], None] | None = None) -> None:
        self.cfg = cfg
        self.echo = echo
        self.procs: dict[str, ProcessHandle] = {}
        self.specs: dict[str, ServiceSpec] = {}
        self.events: list[SupervisionEvent] = []
        # Seconds from the start of start() until each process was ready (the drill compares
        # a restart with a first start).
        self.ready_after_s: dict[str, float] = {}
        self.run_dir = cfg.data_dir / "run"
        self.socket_path = socket_path_for(self.run_dir)
        self.supervisord: subprocess.Popen[bytes] | None = None
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []

    def log_path(self, name: str) -> Path:
        return self.cfg.log_dir / f"{name}.log"

    def rpc(self, timeout: float = RPC_TIMEOUT_S) -> Any:
        """supervisord's XML-RPC namespace ``supervisor`` (a new connection per call)."""
        return rpc(self.socket_path, timeout).supervisor

    def info(self, name: str) -> dict[str, Any]:
        return dict(self.rpc().getProcessInfo(name))

    def start(self) -> None:
        try:
            check_api_token(self.cfg.rasa_token, self.cfg.rasa_interface)
        except WeakSecretError as exc:
            raise StartupError(f"refusing to start Rasa: {exc}") from exc
        # Conversations, tickets and logs live here: the user's own, like the spool.
        for folder in (self.cfg.data_dir, self.cfg.log_dir):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            with suppress(OSError):
                os.chmod(folder, 0o700)
        if self.cfg.scale is not None:
            prepare_scale(self.cfg.scale)
            prepare_balancer(self.cfg)
        try:
            specs = service_specs(self.cfg)
            self.specs = {spec.name: spec for spec in specs}
            began = time.monotonic()
            self._start_thread(self._monitor, _size(self.cfg.log_dir / "supervisord.log"))
            self._launch_supervisord(specs)
            for spec in specs:  # all load in parallel; readiness is awaited in order
                if self.echo:
                    self._start_thread(self._follow, spec.name, _size(self.log_path(spec.name)))
                self.rpc().startProcess(spec.name, False)
                self.procs[spec.name] = ProcessHandle(self, spec)
            for spec in specs:
                self._wait_ready(spec)
                self.ready_after_s[spec.name] = time.monotonic() - began
        except BaseException:
            self.stop()
            raise

    def _start_thread(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _launch_supervisord(self, specs: list[ServiceSpec]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.socket_path.exists():
            with suppress(OSError, xmlrpc.client.Error, http.client.HTTPException):
                self.rpc(timeout=2).getState()
                raise StartupError(
                    f"a supervisord already runs this stack ({self.socket_path}): another "
                    "launcher uses this data directory. Stop it with Ctrl-C, or, if its "
                    f"launcher was killed, with: kill $(cat {self.run_dir / 'supervisord.pid'})"
                )
            self.socket_path.unlink()  # left over from a launcher that was killed
        programs = [
            Program(
                name=spec.name,
                argv=spec.argv,
                env={**spec.env, SOCKET_ENV: str(self.socket_path)},
                log_file=self.log_path(spec.name),
                start_secs=spec.start_secs,
                start_retries=spec.start_retries,
            )
            for spec in specs
        ]
        conf = self.run_dir / "supervisord.conf"
        conf.write_text(
            render_config(programs, self.socket_path, self.run_dir, self.cfg.log_dir, PROJECT_ROOT)
        )
        out_path = self.cfg.log_dir / "supervisord.out"
        with open(os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as out:
            self.supervisord = subprocess.Popen(
                [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(conf)],
                cwd=PROJECT_ROOT,
                env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the launcher only; it stops in order
                umask=0o077,  # its own log and socket: this user only
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.supervisord.poll() is not None:
                raise StartupError(
                    f"supervisord exited with code {self.supervisord.returncode}; "
                    f"see {out_path}:\n{out_path.read_text(errors='replace')[-2000:]}"
                )
            with suppress(OSError, xmlrpc.client.Error, http.client.HTTPException):
                if self.rpc(timeout=2).getState()["statename"] == "RUNNING":
                    return
            time.sleep(0.2)
        raise StartupError(f"supervisord did not answer on {self.socket_path} within 30 s")

    def _wait_ready(self, spec: ServiceSpec) -> None:
        deadline = time.monotonic() + spec.ready_timeout_s
        while time.monotonic() < deadline:
            if self.info(spec.name)["statename"] == "FATAL":
                raise StartupError(
                    f"{spec.name} exited {spec.start_retries + 1} times during start; "
                    f"see {self.log_path(spec.name)}:\n{self.tail(spec.name)}"
                )
            if http_ok(spec.wait_url):
                return
            time.sleep(0.5)
        raise StartupError(
            f"{spec.name} not ready at {spec.wait_url} after {spec.ready_timeout_s:.0f} s; "
            f"see {self.log_path(spec.name)}:\n{self.tail(spec.name)}"
        )

    def _report(self, event: SupervisionEvent, colour: str) -> None:
        self.events.append(event)
        stamp = now_utc().isoformat(timespec="seconds")
        with open(self.cfg.log_dir / "launcher.log", "a", encoding="utf-8") as log:
            log.write(f"{stamp} {event.name} {event.kind}: {event.text}\n")
        if self.echo:
            self.echo(f"{colour}{'launcher':>8} | {event.name}: {event.text}\033[0m")

    def _monitor(self, offset: int) -> None:
        """Relays supervisord's state changes, read from its own log (``supervisord.log``, from
        ``offset``): every exit nobody asked for (a crash, or a failed start when the process had
        not yet stayed up ``start_secs``), a process given up (FATAL), and the recovery time
        once the restarted process answers its readiness URL again. The log has each event,
        in order; polling the XML-RPC state would merge events that happen between two polls."""
        path = self.cfg.log_dir / "supervisord.log"
        crashes: dict[str, int] = {}
        starting: set[str] = set()
        recovering: dict[str, float] = {}
        handle = None
        pending = b""
        while True:
            closing = self._closing.wait(self.POLL_S)
            if handle is None and path.exists():
                handle = open(path, "rb")  # noqa: SIM115 (kept open while following)
                handle.seek(offset)
            if handle is not None:
                with suppress(OSError):
                    if os.stat(path).st_ino != os.fstat(handle.fileno()).st_ino:
                        pending += handle.read()  # the rest of the rotated file first
                        handle.close()
                        handle = open(path, "rb")  # noqa: SIM115 (rotated: the new file)
                pending += handle.read()
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                match = SUPERVISORD_EVENT.search(raw.decode("utf-8", "replace"))
                if not match or match["name"] not in self.specs:
                    continue
                what, name, detail = match["what"], match["name"], match["detail"]
                if what == "spawned":
                    starting.add(name)
                elif what == "success":
                    starting.discard(name)
                elif what == "exited":
                    crashes[name] = crashes.get(name, 0) + 1
                    recovering.setdefault(name, time.monotonic())
                    during_start = name in starting
                    starting.discard(name)
                    self._report(
                        SupervisionEvent(
                            name,
                            "start_failed" if during_start else "crashed",
                            f"{detail.split(';')[0]}{' while starting' if during_start else ''}"
                            f"; restarting (crash {crashes[name]} since the start)",
                            time.monotonic(),
                        ),
                        "\033[31m",
                    )
                elif what == "gave up":
                    recovering.pop(name, None)
                    self._report(
                        SupervisionEvent(
                            name,
                            "fatal",
                            f"GIVEN UP after {crashes.get(name, 0)} crashes: it keeps exiting "
                            f"while starting. See {self.log_path(name)}:\n{self.tail(name, 8)}",
                            time.monotonic(),
                        ),
                        "\033[1;31m",
                    )
            if closing:
                break
            for name, since in list(recovering.items()):
                # Ready can come before supervisord's ``startsecs`` have passed.
                if http_ok(self.specs[name].wait_url, timeout=1.0):
                    seconds = time.monotonic() - since
                    del recovering[name]
                    self._report(
                        SupervisionEvent(
                            name,
                            "recovered",
                            f"ready again {seconds:.1f} s after the crash",
                            time.monotonic(),
                            seconds,
                        ),
                        "\033[32m",
                    )
        if handle is not None:
            handle.close()

    def _follow(self, name: str, offset: int) -> None:
        """Echoes a program's log file (supervisord writes it) to the terminal from ``offset``
        (its size before the start); follows supervisord's rotation."""
        path = self.log_path(name)
        colour = COLOURS.get(name.split("-")[0], "")
        handle = None
        while not self._closing.is_set():
            if handle is None:
                if not path.exists():
                    time.sleep(0.2)
                    continue
                handle = open(path, "rb")  # noqa: SIM115 (kept open while following)
                handle.seek(offset)
            line = handle.readline()
            if line and self.echo:
                text = line.decode("utf-8", "replace").rstrip()
                self.echo(f"{colour}{name:>8}\033[0m | {text}")
                continue
            with suppress(OSError):
                if os.stat(path).st_ino != os.fstat(handle.fileno()).st_ino:
                    handle.close()
                    handle, offset = None, 0  # rotated: the new file from its start
                    continue
            time.sleep(0.2)
        if handle is not None:
            handle.close()

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.log_path(name)
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def supervisor_alive(self) -> bool:
        return self.supervisord is not None and self.supervisord.poll() is None

    def _stop_one(self, name: str, timeout: float) -> None:
        try:
            self.rpc(timeout=timeout + 10).stopProcess(name, True)
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" not in fault.faultString and "BAD_NAME" not in fault.faultString:
                raise

    def stop(self, name: str | None = None, timeout: float = 15.0) -> None:
        """One process (it stays stopped: supervisord restarts only crashes), or everything
        in reverse start order and then supervisord. SIGTERM to the process group, SIGKILL
        after ``stop_wait_secs``."""
        if name is not None:
            if self.supervisor_alive():
                self._stop_one(name, timeout)
            self.procs.pop(name, None)
            return
        self._closing.set()
        if self.supervisord is None:
            return
        if self.supervisord.poll() is None:
            with suppress(OSError, xmlrpc.client.Error, http.client.HTTPException):
                for n in reversed(list(self.specs)):
                    self._stop_one(n, timeout)
            with suppress(OSError, xmlrpc.client.Error, http.client.HTTPException):
                self.rpc().shutdown()
            try:
                self.supervisord.wait(timeout + 15)
            except subprocess.TimeoutExpired:
                # SIGTERM makes supervisord stop its programs (as groups) and exit.
                with suppress(ProcessLookupError):
                    os.killpg(self.supervisord.pid, signal.SIGTERM)
                try:
                    self.supervisord.wait(timeout + 15)
                except subprocess.TimeoutExpired:
                    with suppress(ProcessLookupError):
                        os.killpg(self.supervisord.pid, signal.SIGKILL)
                    self.supervisord.wait(5)
        for thread in self._threads:
            thread.join(timeout=5)
        self.procs.clear()

    def restart(self, name: str) -> None:
        """Stops and starts one service again and waits until it is ready (fault tests)."""
        self.stop(name)
        spec = self.specs[name]
        self.rpc().startProcess(name, False)
        self.procs[name] = ProcessHandle(self, spec)
        self._wait_ready(spec)

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Start AskAgency (all processes).")
    parser.add_argument("--profile", choices=("embedded", "scale"), default="embedded")
    parser.add_argument("--rasa-replicas", type=int, default=2, help="scale profile only")
    parser.add_argument("--action-servers", type=int, default=2, help="scale profile only")
    parser.add_argument(
        "--prepare-only",
        action="store_true",
        help="scale profile: check the services, create the databases, migrate, and exit",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    private_umask()
    try:
        cfg = StackConfig.from_settings()
    except ValueError as exc:  # e.g. widget_origins ["*"], an unreadable token file
        print(f"\033[31mconfiguration error:\033[0m {exc}", file=sys.stderr)
        return 1
    if args.profile == "scale":
        cfg.scale = ScaleConfig.from_env(args.rasa_replicas, args.action_servers)
        if args.prepare_only:
            try:
                prepare_scale(cfg.scale)
            except StartupError as exc:
                print(f"\033[31mscale profile not ready:\033[0m {exc}", file=sys.stderr)
                return 1
            print("scale profile: services reachable, databases ready")
            return 0
    stack = Stack(cfg, echo=lambda line: print(line, flush=True))
    stop_event = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        stop_event.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    print(f"Starting AskAgency, {cfg.profile} profile (logs in {cfg.log_dir}) ...")
    try:
        stack.start()
    except StartupError as exc:
        print(f"\n\033[31mstart failed:\033[0m {exc}", file=sys.stderr)
        return 1
    print("\n\033[32mAskAgency is running.\033[0m")
    print(f"  REST webhook : {cfg.rasa_url}/webhooks/rest/webhook")
    if "console" in stack.procs:
        print(f"  Demo page    : {cfg.console_url}/")
        print(f"  Console      : {cfg.console_url}/console")
    secret = cfg.data_dir / "secrets" / RASA_TOKEN_SECRET
    if secret.exists() and secret.read_text().strip() == cfg.rasa_token:
        print(f"  Rasa API     : {cfg.rasa_api_url} (token in {secret}, mode 0600)")
    if cfg.scale is not None:
        print(
            f"  Balancer     : HAProxy, stats {cfg.balancer_ports().stats_csv_url[:-4]}, "
            f"Prometheus http://127.0.0.1:{cfg.scale.lb_stats_port}/metrics"
        )
    print(f"  Supervisor   : {stack.socket_path} (crashed processes are restarted)")
    print("  Press Ctrl-C to stop.\n", flush=True)
    code = 0
    while not stop_event.wait(1.0):
        if not stack.supervisor_alive():
            print("\033[31msupervisord exited; stopping.\033[0m", file=sys.stderr)
            code = 1
            break
    print("Stopping ...", flush=True)
    stack.stop()
    print("Stopped.", flush=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
