"""Fuzzing the console's JSON API over real HTTP, on its own console process and throw-away data
directory (so random writes never touch the shared stack):

* schemathesis against /api/openapi.json, logged in as an admin (every operation reachable),
  check ``not_a_server_error``: no 500 for any generated request;
* hypothesis bodies (arbitrary JSON, wrong types, huge strings) on every JSON write route.

Bounded by ``ASKAGENCY_FUZZ_EXAMPLES`` (default 5 per operation in ``make test``; ``make fuzz``
raises it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from askagency.config import PROJECT_ROOT
from askagency.launcher import OFFLINE_ENV, http_ok
from askagency.ports import free_port
from tests.stack import ConsoleClient, cli

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXAMPLES = int(os.environ.get("ASKAGENCY_FUZZ_EXAMPLES", "5"))
ADMIN, PASSWORD = "fuzz-admin", "fuzz admin password"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleClient]:
    data_dir = tmp_path_factory.mktemp("fuzz-console")
    cli(data_dir, "kb", "load-sample")
    cli(data_dir, "kb", "build-index")  # /api/kb/try answers, publish is incremental
    os.environ["ASKAGENCY_NEW_PASSWORD"] = PASSWORD
    try:
        cli(data_dir, "users", "create", ADMIN, "--role", "admin")
    finally:
        os.environ.pop("ASKAGENCY_NEW_PASSWORD", None)
    port = free_port()
    env = {
        **os.environ,
        **OFFLINE_ENV,
        "ASKAGENCY_DATA_DIR": str(data_dir),
        "ASKAGENCY_ACTION_SERVER_PORT": str(free_port()),  # nothing there: reported, not fatal
        "ASKAGENCY_LOGIN_BURST": "1000",
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    log = open(data_dir / "console.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "console", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            if http_ok(base + "/ready"):
                break
            assert proc.poll() is None, (data_dir / "console.log").read_text()[-2000:]
            time.sleep(0.5)
        client = ConsoleClient(base)
        client.login(ADMIN, PASSWORD)
        client.data_dir = data_dir  # type: ignore[attr-defined]
        yield client
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


def test_schemathesis_finds_no_server_errors(console: ConsoleClient) -> None:
    report = Path(console.data_dir) / "schemathesis.txt"  # type: ignore[attr-defined]
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "st"),
            "run",
            console.base_url + "/api/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            str(EXAMPLES),
            "--seed",
            "1",
            "--request-timeout",
            "60",
            "--header",
            f"Cookie: {console.cookie}",
            "--header",
            f"X-CSRF-Token: {console.csrf}",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, **OFFLINE_ENV},
    )
    report.write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stdout + proc.stderr


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=50)
    | st.just("x" * 20_000),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
WRITE_ROUTES = [
    ("POST", "/api/kb/faqs"),
    ("PUT", "/api/kb/faqs/bags-liquids-carry-on"),
    ("POST", "/api/kb/faqs/bags-liquids-carry-on/status"),
    ("POST", "/api/kb/try"),
    ("POST", "/api/kb/unanswered/accept"),
    ("POST", "/api/kb/unanswered/dismiss"),
    ("POST", "/api/kb/import/preview"),
    ("POST", "/api/tickets/1/replies"),
    ("POST", "/api/tickets/1/close"),
]


@pytest.mark.parametrize(("method", "path"), WRITE_ROUTES)
def test_arbitrary_json_bodies_never_cause_a_500(
    console: ConsoleClient, method: str, path: str
) -> None:
    @settings(
        max_examples=EXAMPLES * 4,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(body=JSON_VALUES | st.binary(max_size=200).map(lambda b: {"_raw": b.hex()}))
    def run(body: Any) -> None:
        status, _ = console.raw(method, path, json.dumps(body).encode())
        assert status < 500, (method, path, body, status)

    run()
    for raw in (b"", b"{", b"\xff\xfe", b"[" * 5000):
        assert console.raw(method, path, raw)[0] < 500, (method, path, raw[:20])


HUGE = 2**64 + 1  # past any 64-bit row id
FUZZ_FINDINGS = [
    # `make fuzz` (60 examples per operation) found the first two as 500s on 2026-12-08.
    ("POST", "/api/tickets/%C2%B2/close", {"resolved": True}, 404),  # "²": isdigit, not int
    ("POST", "/api/kb/faqs/liquids-311-rule/restore", {"audit_id": HUGE}, 400),
    # The same two mistakes elsewhere: a Unicode digit int() reads ("٣" is 3), the ticket and
    # message ids of paths, and row ids in bodies beyond 64 bits.
    ("POST", "/api/tickets/%D9%A3/close", {"resolved": True}, 404),
    ("POST", f"/api/tickets/{HUGE}/close", {"resolved": True}, 404),
    ("POST", "/api/tickets/1/messages/%C2%B2/retry", None, 404),
    ("POST", f"/api/tickets/1/messages/{HUGE}/retry", None, 404),
    ("GET", "/console/inbox/%C2%B2", None, 404),
    ("GET", f"/console/inbox/{HUGE}", None, 404),
    ("POST", "/api/tickets/close-spam", {"ticket_ids": [HUGE]}, 400),
    ("POST", "/api/tickets/1/assign", {"agent_id": HUGE}, 400),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), FUZZ_FINDINGS)
def test_numbers_a_client_sends_are_client_errors(
    console: ConsoleClient, method: str, path: str, body: object, status: int
) -> None:
    """Ids in paths are ASCII digits within 64 bits (askagency.numbers.row_id), ids in bodies
    too (console.jsonapi.RowId): anything else names no row, a 4xx, never a 500."""
    data = None if body is None else json.dumps(body).encode()
    got, answer = console.raw(method, path, data)
    assert got == status, (method, path, got, answer[:300])
