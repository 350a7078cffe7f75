"""The launcher's process supervision with the real supervisord and small real programs (HTTP
servers with /ready, a program that cannot start): only the list of programs differs from the
stack (``service_specs`` is replaced), everything else is the code ``make run`` runs.

* a process killed with SIGKILL is restarted while the other keeps answering; the crash and the
  recovery are reported (launcher log, events); the console's view shows it running again;
* a process that keeps exiting while it starts is given up (FATAL), reported in the launcher
  log and in the console's health view (``process_states``), and the other keeps serving;
* ``stop()`` takes every process and supervisord down, ``stop(name)`` stays stopped;
* ``python -m askagency.launcher`` under SIGTERM stops everything and exits 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from askagency import launcher
from askagency.launcher import ServiceSpec, Stack, StackConfig, StartupError
from askagency.ports import free_port
from askagency.supervision import SOCKET_ENV, Program, process_states, render_config
from bench.throwaway import stack_config
from tests.console_helpers import login
from tests.unit.console.test_auth import client as client  # noqa: F401 (fixture)
from tests.unit.console.test_auth import users  # noqa: F401 (fixture)

SERVER = (
    "import http.server, os, sys\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = str(os.getpid()).encode()\n"
    "        self.send_response(200); self.end_headers(); self.wfile.write(body)\n"
    "    def log_message(self, *a): pass\n"
    "print('serving', flush=True)\n"
    "http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n"
)


def server_spec(name: str, port: int) -> ServiceSpec:
    return ServiceSpec(
        name=name,
        argv=[sys.executable, "-c", SERVER, str(port)],
        health_url=f"http://127.0.0.1:{port}/health",
        ready_url=f"http://127.0.0.1:{port}/ready",
        ready_timeout_s=30,
        # supervisord reaps a child up to ~1 s late (its select loop): a margin over that, so
        # an immediate exit is always a failed start.
        start_secs=3,
        start_retries=2,
    )


def pid_served(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as resp:
        return int(resp.read())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose.
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().split(")")[-1].split()[0] != "Z"


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")


@pytest.fixture
def cfg(tmp_path: Path) -> StackConfig:
    return stack_config(tmp_path / "data", "t", tmp_path / "model", with_console=False)


@pytest.fixture
def two_servers(
    cfg: StackConfig, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Stack, int, int]]:
    a, b = free_port(), free_port()
    monkeypatch.setattr(
        launcher, "service_specs", lambda _cfg: [server_spec("alpha", a), server_spec("beta", b)]
    )
    stack = Stack(cfg)
    stack.start()
    try:
        # Past start_secs: an exit from now on is a crash, not a failed start.
        for name in ("alpha", "beta"):
            wait_for(lambda n=name: stack.procs[n].state == "RUNNING", 10, f"{name} RUNNING")
        yield stack, a, b
    finally:
        stack.stop()


def test_a_killed_process_is_restarted_while_the_other_keeps_serving(
    two_servers: tuple[Stack, int, int],
) -> None:
    stack, a, b = two_servers
    old = stack.procs["alpha"].pid
    beta_pid = pid_served(b)
    assert old == pid_served(a)  # the pid supervisord reports is the server's own (exec)
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: any(e.kind == "recovered" for e in stack.events), 20, "alpha recovered")
    new = pid_served(a)
    assert new != old and stack.procs["alpha"].pid == new
    assert pid_served(b) == beta_pid, "the other process must not be restarted"
    # poll() keeps Popen's meaning for the tests that check a process survived something.
    assert stack.procs["beta"].poll() is None and stack.procs["alpha"].poll() is not None
    kinds = [(e.name, e.kind) for e in stack.events]
    assert kinds == [("alpha", "crashed"), ("alpha", "recovered")], kinds
    recovered = stack.events[-1]
    assert recovered.seconds is not None and recovered.seconds < 10
    log = (stack.cfg.log_dir / "launcher.log").read_text()
    assert "alpha crashed: terminated by SIGKILL" in log and "alpha recovered" in log
    view = process_states(stack.socket_path)  # ready, maybe not yet past start_secs
    if {p["name"]: p["state"] for p in view["processes"]}["alpha"] == "STARTING":
        assert "alpha is starting" in view["message"]
    wait_for(lambda: stack.procs["alpha"].state == "RUNNING", 10, "alpha RUNNING")
    view = process_states(stack.socket_path)
    assert view["ok"] and {p["name"]: p["state"] for p in view["processes"]} == {
        "alpha": "RUNNING",
        "beta": "RUNNING",
    }


def test_stop_one_stays_stopped_and_restart_brings_it_back(
    two_servers: tuple[Stack, int, int],
) -> None:
    stack, a, _b = two_servers
    old = stack.procs["alpha"].pid
    stack.stop("alpha")
    assert "alpha" not in stack.procs
    time.sleep(2 * Stack.POLL_S + 1)
    assert not alive(old)
    with pytest.raises(OSError):
        pid_served(a)
    view = process_states(stack.socket_path)
    assert not view["ok"] and "alpha was stopped" in view["message"]
    stack.restart("alpha")
    assert pid_served(a) == stack.procs["alpha"].pid != old
    assert stack.procs["alpha"].poll() is None
    assert not stack.events, "a stop or restart we asked for is not a crash"


def test_stop_takes_every_process_and_supervisord_down(cfg: StackConfig, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    a, b = free_port(), free_port()
    monkeypatch.setattr(
        launcher, "service_specs", lambda _cfg: [server_spec("alpha", a), server_spec("beta", b)]
    )
    with Stack(cfg) as stack:
        pids = [stack.procs["alpha"].pid, stack.procs["beta"].pid]
        supervisord = stack.supervisord
        assert supervisord is not None
    assert supervisord.poll() is not None
    assert not any(alive(pid) for pid in pids)
    assert not stack.socket_path.exists()


def crashy_spec(name: str, port: int, flag: Path) -> ServiceSpec:
    """Serves normally until ``flag`` exists; from then on every start exits with 3."""
    spec = server_spec(name, port)
    spec.argv = [
        sys.executable,
        "-c",
        f"import os, sys\nif os.path.exists({str(flag)!r}): sys.exit(3)\n" + SERVER,
        str(port),
    ]
    return spec


def test_a_process_that_keeps_failing_to_start_is_given_up_and_reported(
    cfg: StackConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag, other = cfg.data_dir / "broken", free_port()
    crashy = crashy_spec("gamma", free_port(), flag)
    monkeypatch.setattr(
        launcher, "service_specs", lambda _cfg: [server_spec("alpha", other), crashy]
    )
    with Stack(cfg) as stack:
        wait_for(lambda: stack.procs["gamma"].state == "RUNNING", 10, "gamma RUNNING")
        flag.write_text("x")
        os.kill(stack.procs["gamma"].pid, signal.SIGKILL)
        wait_for(lambda: any(e.kind == "fatal" for e in stack.events), 30, "gamma given up")
        assert stack.procs["gamma"].state == "FATAL"
        kinds = [e.kind for e in stack.events]
        # The crash, then start_retries + 1 failed starts (1 s, 2 s apart), then given up.
        assert kinds == ["crashed", "start_failed", "start_failed", "start_failed", "fatal"]
        log = (stack.cfg.log_dir / "launcher.log").read_text()
        assert "gamma fatal: GIVEN UP after 4 crashes" in log
        assert pid_served(other) == stack.procs["alpha"].pid, "alpha keeps serving"
        # What the console's health view gets (the launcher gives every program the socket).
        view = process_states(stack.socket_path)
        assert not view["ok"]
        assert (
            "gamma crashed repeatedly while starting and is no longer restarted"
            in (view["message"])
        )
        assert {p["name"]: p["state"] for p in view["processes"]}["gamma"] == "FATAL"
        env_file = stack.run_dir / "gamma.exec.json"
        assert SOCKET_ENV in env_file.read_text()
        assert oct(env_file.stat().st_mode & 0o777) == "0o600"


def test_a_program_that_never_starts_fails_the_start_clearly(
    cfg: StackConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = server_spec("delta", free_port())
    broken.argv = [sys.executable, "-c", "print('bad config: no model', flush=True); exit(2)"]
    monkeypatch.setattr(launcher, "service_specs", lambda _cfg: [broken])
    stack = Stack(cfg)
    with pytest.raises(StartupError) as err:
        stack.start()
    assert "delta exited 3 times during start" in str(err.value)
    assert "bad config: no model" in str(err.value)
    assert stack.supervisord is not None and stack.supervisord.poll() is not None


def test_no_supervisor_is_not_an_alert(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SOCKET_ENV, raising=False)
    assert process_states() == {"ok": True, "supervised": False, "processes": [], "message": None}


def test_an_unreachable_supervisor_is_an_alert(tmp_path: Path) -> None:
    view = process_states(tmp_path / "missing.sock")
    assert not view["ok"] and "does not answer" in view["message"]


def test_config_values_are_escaped(tmp_path: Path) -> None:
    program = Program(
        name="p",
        argv=["/bin/echo", "100%", "a b"],
        env={"PASSWORD": 'a"b,c%d'},
        log_file=tmp_path / "p%.log",
    )
    text = render_config([program], tmp_path / "s.sock", tmp_path, tmp_path, tmp_path)
    assert "stdout_logfile=" + str(tmp_path / "p%%.log") in text
    # Command line and environment go through the 0600 JSON file, never the config.
    assert "100%" not in text and 'a"b' not in text
    assert json.loads((tmp_path / "p.exec.json").read_text()) == {
        "argv": ["/bin/echo", "100%", "a b"],
        "env": {"PASSWORD": 'a"b,c%d'},
    }
    with pytest.raises(ValueError):
        render_config(
            [Program("q", ["/bin/true"], {}, tmp_path / "q.log")],
            tmp_path / "s\n.sock",
            tmp_path,
            tmp_path,
            tmp_path,
        )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_launcher_main_stops_everything_on_ctrl_c_and_sigterm(
    tmp_path: Path, signum: signal.Signals
) -> None:
    """``python -m askagency.launcher`` as ``make run`` starts it (with a stand-in for the
    stack's programs, see tests/supervised_main.py): Ctrl-C (SIGINT) or SIGTERM stops every
    process and supervisord, exit 0."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.supervised_main", str(tmp_path / "data"), str(port)],
        cwd=Path(launcher.PROJECT_ROOT),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(launcher.PROJECT_ROOT)},
    )
    try:
        wait_for(lambda: _answers(port), 30, "the stand-in server answers")
        served = pid_served(port)
        supervisord_pid = int((tmp_path / "data" / "run" / "supervisord.pid").read_text())
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = out.decode()
    assert proc.returncode == 0, text
    assert "AskAgency is running" in text and "Stopped." in text
    assert "serving" in text, "program output is echoed with its name"
    wait_for(lambda: not alive(served), 5, "the server is gone")
    wait_for(lambda: not alive(supervisord_pid), 5, "supervisord is gone")


def _answers(port: int) -> bool:
    try:
        pid_served(port)
        return True
    except OSError:
        return False


async def test_the_console_health_view_shows_a_process_given_up(
    cfg: StackConfig,
    monkeypatch: pytest.MonkeyPatch,
    client: TestClient,  # noqa: F811
) -> None:
    """The real console app asks the real supervisord (the socket the launcher hands every
    program): agents and editors get the message the banner (index_alert.js) shows."""
    flag = cfg.data_dir / "broken"
    monkeypatch.setattr(
        launcher, "service_specs", lambda _cfg: [crashy_spec("actions", free_port(), flag)]
    )
    json_headers = {"Accept": "application/json"}
    with Stack(cfg) as stack:
        monkeypatch.setenv(SOCKET_ENV, str(stack.socket_path))
        assert (await client.get("/api/health/processes", headers=json_headers)).status == 401
        await login(client, "agent")
        resp = await client.get("/api/health/processes", headers=json_headers)
        body = await resp.json()
        assert resp.status == 200 and body["supervised"], body
        assert [p["name"] for p in body["processes"]] == ["actions"]
        wait_for(lambda: stack.procs["actions"].state == "RUNNING", 10, "actions RUNNING")
        flag.write_text("x")
        os.kill(stack.procs["actions"].pid, signal.SIGKILL)
        wait_for(lambda: stack.procs["actions"].state == "FATAL", 30, "actions given up")
        body = await (await client.get("/api/health/processes", headers=json_headers)).json()
    assert body["ok"] is False
    assert body["processes"][0]["state"] == "FATAL"
    assert body["message"].startswith("Process alert: actions crashed repeatedly"), body
