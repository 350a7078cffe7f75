"""supervisord as the process supervisor of ``make run``: its configuration and its XML-RPC API.

Why supervisord (docs/scale.md, "Process supervision"): a crashed process must come back while
the others keep serving, a process that keeps crashing while it starts must stop being restarted
and say so, and stopping must take whole process groups down. supervisord (PyPI ``supervisor``,
pure Python, installed in ``.venv``) does all of that and is what operators already know; the
launcher only writes its configuration, starts the programs in order through the XML-RPC API
over a unix socket (mode 0700, no TCP port) and relays state changes. The console reads the same
API (:func:`process_states`) for its health view.

This module imports nothing from the feature packages and nothing from ``supervisor`` itself:
the client side is the standard library's XML-RPC over a unix socket, so the console can ask
even where the package is missing.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shlex
import socket
import sys
import tempfile
import xmlrpc.client
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Where the console finds the supervisor of its stack (set by the launcher for every program).
SOCKET_ENV = "ASKAGENCY_SUPERVISOR_SOCKET"
RPC_TIMEOUT_S = 5.0
# AF_UNIX paths are limited to 108 bytes on Linux (107 usable).
_MAX_SOCKET_PATH = 100

# supervisord's process states (supervisor.states.ProcessStates), by name.
RUNNING_STATES = frozenset({"STARTING", "RUNNING"})
CRASHED_STATES = frozenset({"BACKOFF", "EXITED", "FATAL", "UNKNOWN"})


@dataclass(frozen=True)
class Program:
    """One supervised program; the restart policy fields map 1:1 to supervisord's."""

    name: str
    argv: list[str]
    env: Mapping[str, str]
    log_file: Path
    # Alive this long after spawning = started; an exit before is a start failure (retried with
    # a growing delay: 1 s, 2 s, 3 s, ...) and after ``start_retries`` of them the program is
    # FATAL (no more restarts). An exit after it is a crash, restarted at once.
    start_secs: int = 5
    start_retries: int = 5
    stop_wait_secs: int = 15  # SIGTERM, then SIGKILL to the whole process group


def socket_path_for(run_dir: Path) -> Path:
    """``run_dir/supervisor.sock``, or a short path under the temp dir when that is too long."""
    path = run_dir / "supervisor.sock"
    if len(os.fsencode(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(os.fsencode(run_dir)).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"askagency-{digest}.sock"


def _ini(value: str | Path) -> str:
    """A value for supervisord's config: '%' starts its own expansions, so it is doubled."""
    text = str(value)
    if "\n" in text:
        raise ValueError(f"a newline cannot be written into the supervisord config: {text!r}")
    return text.replace("%", "%%")


def render_config(
    programs: list[Program],
    socket_path: Path,
    run_dir: Path,
    log_dir: Path,
    workdir: Path,
) -> str:
    """The supervisord configuration: programs never start by themselves (the launcher starts
    them in order), restart automatically after a crash, and stop as a process group.

    Each program's command line and environment go through a JSON file (mode 0600: tokens)
    and :mod:`askagency.envexec`, which ``exec``s the real command so the pid supervisord
    watches is the program's: supervisord's ``command=``/``environment=`` quoting cannot carry
    every value (a password with a quote, a newline)."""
    lines = [
        "[unix_http_server]",
        f"file={_ini(socket_path)}",
        "chmod=0700",
        "",
        "[supervisord]",
        "nodaemon=true",
        "silent=true",  # its log goes to the file only; the launcher relays what matters
        f"logfile={_ini(log_dir / 'supervisord.log')}",
        "logfile_maxbytes=10MB",
        "logfile_backups=3",
        f"pidfile={_ini(run_dir / 'supervisord.pid')}",
        f"childlogdir={_ini(log_dir)}",
        "identifier=askagency",
        "umask=077",  # its logs hold citizens' messages: readable by this user only
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
    ]
    for program in programs:
        spec_file = run_dir / f"{program.name}.exec.json"
        spec_file.touch(mode=0o600)
        spec_file.chmod(0o600)  # holds tokens and passwords
        spec_file.write_text(json.dumps({"argv": program.argv, "env": dict(program.env)}))
        command = [sys.executable, "-m", "askagency.envexec", str(spec_file)]
        lines += [
            f"[program:{program.name}]",
            f"command={_ini(shlex.join(command))}",
            f"directory={_ini(workdir)}",
            "autostart=false",
            "umask=077",  # databases, logs, exports: readable by this user only
            "autorestart=true",
            f"startsecs={program.start_secs}",
            f"startretries={program.start_retries}",
            "stopsignal=TERM",
            f"stopwaitsecs={program.stop_wait_secs}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={_ini(program.log_file)}",
            "stdout_logfile_maxbytes=50MB",
            "stdout_logfile_backups=5",
            "",
        ]
    return "\n".join(lines)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__()
        self._path = path
        self._timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        return _UnixConnection(self._path, self._timeout)


def rpc(socket_path: str | Path, timeout: float = RPC_TIMEOUT_S) -> Any:
    """A proxy for supervisord's XML-RPC API on ``socket_path`` (one per thread: not shared)."""
    return xmlrpc.client.ServerProxy(
        "http://localhost/RPC2", transport=_UnixTransport(str(socket_path), timeout)
    )


def describe(info: Mapping[str, Any]) -> str:
    """One sentence for staff about a program that is not running normally."""
    name, state = info["name"], info["statename"]
    if state == "FATAL":
        return (
            f"{name} crashed repeatedly while starting and is no longer restarted "
            f"(see logs/{name}.log); start it again after fixing the cause."
        )
    if state == "BACKOFF":
        return f"{name} crashed while starting; it is restarted after a growing delay."
    if state == "STARTING":
        return f"{name} is starting."
    if state in ("EXITED", "UNKNOWN"):
        return f"{name} is not running ({state}); {info.get('description') or ''}".rstrip("; ")
    if state == "STOPPED":
        return f"{name} was stopped."
    return f"{name}: {state}"


def process_states(socket_path: str | Path | None = None) -> dict[str, Any]:
    """What the console's health view shows: each supervised program's state, and one message
    for the banner when any is not running. ``supervised`` is false when no supervisor runs
    this process (started by hand), which is not an alert."""
    path = socket_path or os.environ.get(SOCKET_ENV)
    if not path:
        return {"ok": True, "supervised": False, "processes": [], "message": None}
    try:
        infos = rpc(path).supervisor.getAllProcessInfo()
    except (OSError, xmlrpc.client.Error, http.client.HTTPException) as exc:
        return {
            "ok": False,
            "supervised": True,
            "processes": [],
            "message": f"The process supervisor does not answer ({type(exc).__name__}).",
        }
    processes = [
        {
            "name": info["name"],
            "state": info["statename"],
            "pid": info["pid"] or None,
            # supervisord's own clock on both sides: no dependency on this process's clock.
            "uptime_s": max(0, info["now"] - info["start"]) if info["pid"] else None,
            "exit_status": info["exitstatus"] if info["stop"] else None,
        }
        for info in infos
    ]
    problems = [describe(info) for info in infos if info["statename"] != "RUNNING"]
    return {
        "ok": not problems,
        "supervised": True,
        "processes": processes,
        "message": ("Process alert: " + " ".join(problems)) if problems else None,
    }
