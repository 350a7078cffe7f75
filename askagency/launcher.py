"""Starts the whole assistant (Rasa server, action server, console) as one command.

The same ``Stack`` is used by ``make run`` and by the end-to-end tests, so the
tests exercise exactly the processes, flags and environment a newcomer gets.
Each process writes to ``<log_dir>/<name>.log``; the launcher also echoes every
line to the terminal with a coloured name prefix so there is one place to look.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from askagency.config import PROJECT_ROOT, Settings, get_settings

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


def free_port() -> int:
    """A TCP port nobody listens on right now (for tests running several stacks)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServiceSpec:
    """How to start one process and how to know it is ready."""

    name: str
    argv: list[str]
    health_url: str
    env: dict[str, str] = field(default_factory=dict)
    ready_timeout_s: float = 180.0


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
    extra_env: dict[str, str] = field(default_factory=dict)

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
        )

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    @property
    def action_url(self) -> str:
        return f"http://127.0.0.1:{self.action_port}/webhook"

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.console_port}"


def console_available() -> bool:
    return (PROJECT_ROOT / "console" / "app.py").exists()


def analytics_port(cfg: StackConfig) -> int:
    """Health port of the analytics consumer: ASKAGENCY_ANALYTICS_PORT, else console port + 1."""
    configured = cfg.extra_env.get("ASKAGENCY_ANALYTICS_PORT") or os.environ.get(
        "ASKAGENCY_ANALYTICS_PORT"
    )
    return int(configured) if configured else cfg.console_port + 1


def service_specs(cfg: StackConfig) -> list[ServiceSpec]:
    """The processes of the embedded profile, in start order."""
    common = {
        **OFFLINE_ENV,
        "ASKAGENCY_DATA_DIR": str(cfg.data_dir),
        "ASKAGENCY_RASA_URL": cfg.rasa_url,
        "ASKAGENCY_RASA_TOKEN": cfg.rasa_token,
        "ASKAGENCY_ACTION_SERVER_PORT": str(cfg.action_port),
        "ASKAGENCY_CONSOLE_PORT": str(cfg.console_port),
        "ASKAGENCY_ACTION_URL": cfg.action_url,
        "ASKAGENCY_TRACKER_DB": str(cfg.data_dir / "rasa_tracker.db"),
        "ASKAGENCY_EVENTS_DB": str(cfg.data_dir / "rasa_events.db"),
        "PYTHONPATH": str(PROJECT_ROOT),
        **cfg.extra_env,
    }
    specs = [
        ServiceSpec(
            name="actions",
            argv=[sys.executable, "-m", "actions.server", "--port", str(cfg.action_port)],
            health_url=f"http://127.0.0.1:{cfg.action_port}/health",
            env=common,
        ),
        ServiceSpec(
            name="analytics",
            argv=[
                sys.executable,
                "-m",
                "analytics.consumer",
                "--health-port",
                str(analytics_port(cfg)),
            ],
            health_url=f"http://127.0.0.1:{analytics_port(cfg)}/health",
            env=common,
        ),
        ServiceSpec(
            name="rasa",
            argv=[
                str(RASA_VENV / "bin" / "rasa"),
                "run",
                "--enable-api",
                "--auth-token",
                cfg.rasa_token,
                "--interface",
                "127.0.0.1",
                "--port",
                str(cfg.rasa_port),
                "--credentials",
                str(PROJECT_ROOT / "bot" / "credentials.yml"),
                "--endpoints",
                str(PROJECT_ROOT / "bot" / "endpoints.yml"),
                "--model",
                str(cfg.model_path),
                "--cors",
                "*",
            ],
            health_url=f"http://127.0.0.1:{cfg.rasa_port}/",
            env=common,
        ),
    ]
    if cfg.with_console and console_available():
        specs.append(
            ServiceSpec(
                name="console",
                argv=[sys.executable, "-m", "console", "--port", str(cfg.console_port)],
                health_url=f"http://127.0.0.1:{cfg.console_port}/health",
                env=common,
            )
        )
    return specs


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback only)
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


class StartupError(RuntimeError):
    """A process exited or never became healthy; the message names it and its log."""


class Stack:
    """Owns the child processes; ``stop()`` always terminates every one of them."""

    def __init__(self, cfg: StackConfig, echo: Callable[[str], None] | None = None) -> None:
        self.cfg = cfg
        self.echo = echo
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._threads: list[threading.Thread] = []

    def log_path(self, name: str) -> Path:
        return self.cfg.log_dir / f"{name}.log"

    def start(self) -> None:
        self.cfg.log_dir.mkdir(parents=True, exist_ok=True)
        self.cfg.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            for spec in service_specs(self.cfg):
                self._spawn(spec)
            for spec in service_specs(self.cfg):
                self._wait_ready(spec)
        except BaseException:
            self.stop()
            raise

    def _spawn(self, spec: ServiceSpec) -> None:
        env = {**os.environ, **spec.env}
        proc = subprocess.Popen(
            spec.argv,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: Ctrl-C is handled by us, in order
        )
        self.procs[spec.name] = proc
        thread = threading.Thread(target=self._pump, args=(spec.name, proc), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _pump(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        """Copies a child's output to its log file and, when echoing, to the terminal."""
        assert proc.stdout is not None
        colour = COLOURS.get(name, "")
        with open(self.log_path(name), "ab", buffering=0) as log:
            for line in iter(proc.stdout.readline, b""):
                log.write(line)
                if self.echo:
                    text = line.decode("utf-8", "replace").rstrip()
                    self.echo(f"{colour}{name:>8}\033[0m | {text}")

    def _wait_ready(self, spec: ServiceSpec) -> None:
        deadline = time.monotonic() + spec.ready_timeout_s
        proc = self.procs[spec.name]
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StartupError(
                    f"{spec.name} exited with code {proc.returncode} during start; "
                    f"see {self.log_path(spec.name)}:\n{self.tail(spec.name)}"
                )
            if http_ok(spec.health_url):
                return
            time.sleep(0.5)
        raise StartupError(
            f"{spec.name} not ready at {spec.health_url} after {spec.ready_timeout_s:.0f} s; "
            f"see {self.log_path(spec.name)}:\n{self.tail(spec.name)}"
        )

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.log_path(name)
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, name: str | None = None, timeout: float = 15.0) -> None:
        """SIGTERM (the processes shut down cleanly), then SIGKILL what is left."""
        names = [name] if name else list(reversed(self.procs))
        for n in names:
            proc = self.procs.get(n)
            if proc and proc.poll() is None:
                with suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for n in names:
            proc = self.procs.get(n)
            if not proc:
                continue
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        for n in names:
            self.procs.pop(n, None)

    def restart(self, name: str) -> None:
        """Stops and starts one service again (used by fault tests)."""
        self.stop(name)
        spec = next(s for s in service_specs(self.cfg) if s.name == name)
        self._spawn(spec)
        self._wait_ready(spec)

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> int:
    cfg = StackConfig.from_settings()
    stack = Stack(cfg, echo=print)
    stop_event = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        stop_event.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    print(f"Starting AskAgency (logs in {cfg.log_dir}) ...")
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
    print("  Press Ctrl-C to stop.\n")
    while not stop_event.is_set():
        for name, proc in list(stack.procs.items()):
            if proc.poll() is not None:
                print(
                    f"\033[31m{name} exited ({proc.returncode}); stopping.\033[0m", file=sys.stderr
                )
                stop_event.set()
        stop_event.wait(1.0)
    print("Stopping ...")
    stack.stop()
    print("Stopped.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
