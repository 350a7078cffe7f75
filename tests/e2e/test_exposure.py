"""What the running stack exposes (security review H3, L9, L11, L12), against the real Rasa,
console and HAProxy with deploy/haproxy/haproxy.cfg (``python -m askagency.loadbalancer``):

* Rasa's HTTP API takes the data folder's generated token, not the published
  ``askagency-dev-token``; the token is in a 0600 file and not on any command line;
* a CORS preflight from a foreign site is not allowed (it was ``--cors "*"``);
* the public balancer forwards the webhooks and socket.io to the real Rasa and answers 404 for
  the HTTP API, ``/`` and ``/version``, whatever token or path trick comes with the request;
* databases and logs the stack creates are readable by their user only.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from askagency.config import PROJECT_ROOT, Settings
from askagency.launcher import OFFLINE_ENV, Stack, http_ok
from askagency.ports import free_port
from tests.stack import RestClient

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def request(
    url: str, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_rasa_api_refuses_the_published_default_token(stack: Stack) -> None:
    """H3 live test: ``GET /conversations/x/tracker?token=askagency-dev-token`` answered 200 on
    a default ``make run``; the stack is started as make run starts it (token from Settings)."""
    assert stack.cfg.rasa_token == Settings(data_dir=stack.cfg.data_dir).rasa_token
    base = f"{stack.cfg.rasa_url}/conversations/sms-15551234567/tracker"
    status, _headers, _body = request(f"{base}?token=askagency-dev-token")
    assert status in (401, 403), status
    status, _headers, _body = request(f"{base}?token={stack.cfg.rasa_token}")
    assert status == 200  # the generated token is the one Rasa checks


def test_token_file_is_private_and_not_on_any_command_line(stack: Stack) -> None:
    """L11: ``ps aux | grep auth-token`` showed the token to every local user."""
    secret = stack.cfg.data_dir / "secrets" / "rasa_token"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(secret.parent.stat().st_mode) == 0o700
    token = stack.cfg.rasa_token.encode()
    for name, proc in stack.procs.items():
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        assert token not in cmdline and b"--auth-token" not in cmdline, name


def test_cors_preflight_from_a_foreign_site_is_not_allowed(stack: Stack) -> None:
    """H3 live test: a preflight from https://evil.example was answered with that origin."""
    url = f"{stack.cfg.rasa_url}/conversations/x/tracker"
    for origin in ("https://evil.example", "null"):
        _status, headers, _body = request(
            url,
            "OPTIONS",
            {"Origin": origin, "Access-Control-Request-Method": "GET"},
        )
        allowed = headers.get("Access-Control-Allow-Origin")
        assert allowed not in (origin, "*"), (origin, headers)
    # The console's own page (the demo widget) still may.
    own = stack.cfg.console_url
    _status, headers, _body = request(
        f"{stack.cfg.rasa_url}/webhooks/rest/webhook",
        "OPTIONS",
        {"Origin": own, "Access-Control-Request-Method": "POST"},
    )
    assert headers.get("Access-Control-Allow-Origin") == own, headers


@pytest.fixture(scope="module")
def public_balancer(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """HAProxy's public frontend in front of the real Rasa, started as docs/channels.md tells
    an agency to expose the channels of ``make run``."""
    port = free_port()
    run_dir = tmp_path_factory.mktemp("public-balancer")
    log = open(run_dir / "haproxy.log", "wb")  # noqa: SIM115 (closed in finally)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "askagency.loadbalancer",
            "--listen",
            f"127.0.0.1:{port}",
            "--rasa-port",
            str(stack.cfg.rasa_port),
            "--run-dir",
            str(run_dir),
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, **OFFLINE_ENV, "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not http_ok(url + "/health"):
            assert proc.poll() is None and time.monotonic() < deadline, (
                "HAProxy did not start: " + (run_dir / "haproxy.log").read_text()
            )
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


def test_public_balancer_forwards_channels_and_hides_the_rasa_api(
    stack: Stack, public_balancer: str
) -> None:
    token = stack.cfg.rasa_token
    refused = [
        ("GET", f"/conversations/x/tracker?token={token}"),
        ("POST", f"/conversations/x/trigger_intent?token={token}&output_channel=latest"),
        ("GET", f"/status?token={token}"),
        ("GET", f"/model?token={token}"),
        ("DELETE", f"/model?token={token}"),
        ("GET", "/version"),
        ("GET", "/"),
        ("GET", f"/webhooks/../conversations/x/tracker?token={token}"),
        ("GET", f"/webhooks/rest/%2e%2e/%2e%2e/conversations/x/tracker?token={token}"),
    ]
    for method, path in refused:
        status, headers, body = request(public_balancer + path, method)
        assert status == 404, (method, path, status, body[:200])
        assert b"Rasa" not in body and "Server" not in headers
    # Rasa is really there: the same paths answer directly on its (loopback) listener.
    assert request(f"{stack.cfg.rasa_url}/version")[0] == 200
    # The channels go through: a citizen's REST turn and the widget's socket.io handshake.
    replies = RestClient(public_balancer).send(f"exposure-{uuid.uuid4().hex[:8]}", "hello")
    assert replies and replies[0].get("text"), replies
    status, _headers, body = request(public_balancer + "/socket.io/?EIO=4&transport=polling")
    assert status == 200 and b"sid" in body, body[:200]
    # Its own health answer names no upstream.
    status, _headers, body = request(public_balancer + "/health")
    assert status == 200 and str(stack.cfg.rasa_port).encode() not in body


def test_console_exposes_no_versions_or_api_map(stack: Stack) -> None:
    """L9 on the running console: version-less Server header, /api/openapi.json needs a login,
    /ready says ok and nothing more."""
    status, headers, _body = request(stack.cfg.console_url + "/health")
    assert status == 200 and headers.get("Server") == "askagency", headers
    status, _headers, _body = request(
        stack.cfg.console_url + "/api/openapi.json", headers={"Accept": "application/json"}
    )
    assert status == 401
    status, _headers, body = request(stack.cfg.console_url + "/ready")
    assert json.loads(body) == {"status": "ready", "database": {"ok": True}}


def test_data_and_logs_are_private(stack: Stack) -> None:
    """L11: var/*.db and var/logs/*.log were created with the default umask (0644)."""
    data_dir = stack.cfg.data_dir
    files = [*data_dir.glob("*.db"), *(data_dir / "logs").glob("*.log")]
    names = {f.name for f in files}
    assert {"rasa_tracker.db", "rasa_events.db", "rasa.log", "console.log"} <= names, names
    loose = {str(f): oct(f.stat().st_mode) for f in files if f.stat().st_mode & 0o077}
    assert loose == {}
    for folder in (data_dir, data_dir / "logs"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
