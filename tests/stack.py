"""The real stack for end-to-end and browser tests: Rasa server (.venv-rasa), action
server, analytics consumer and console on free ports with a throw-away data directory,
fed through the real CLI. The client side (CLI runner, REST client, signed bodies, the Rasa
model) is bench/stack_client.py, shared with the benchmarks.

The fixtures are registered once, in tests/conftest.py, so every test package shares
ONE running stack per pytest session (starting one costs about a minute on 2 cores).
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from askagency.launcher import Stack
from bench.stack_client import (  # noqa: F401 (re-exported for the tests)
    RestClient,
    cli,
    ensure_rasa_model,
    signed_body,
)
from bench.throwaway import stack_config
from tests.platform_fake import PlatformFake, channel_settings


class ConsoleClient:
    """A staff member's HTTP session against the console (cookie + CSRF header)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.csrf = ""

    def login(self, username: str, password: str) -> None:
        form = urllib.parse.urlencode({"username": username, "password": password}).encode()
        self.opener.open(self.base_url + "/console/login", data=form, timeout=30).read()
        page = self.opener.open(self.base_url + "/console", timeout=30).read().decode()
        match = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert match, page[:300]
        self.csrf = match.group(1)

    @property
    def cookie(self) -> str:
        """The session as a ``Cookie`` header value, for tools outside this opener."""
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)

    def raw(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        request = urllib.request.Request(
            self.base_url + path,
            data=body,
            method=method,
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "X-CSRF-Token": self.csrf,
            },
        )
        try:
            with self.opener.open(request, timeout=120) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def call(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        data = None if body is None else json.dumps(body).encode()
        status, raw = self.raw(method, path, data)
        return status, json.loads(raw or b"null")


@pytest.fixture(scope="session")
def stack_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("askagency-stack")
    cli(data_dir, "kb", "load-sample")
    cli(data_dir, "kb", "build-index")
    return data_dir


# Every test client is on 127.0.0.1, and the web channels key clients by address (client_key),
# so they would all share one open-ticket cap: test stacks lift it. The cap itself is tested in
# tests/unit/handoff/test_flood.py.
NO_TICKET_CAP_ENV = {"ASKAGENCY_HANDOFF_MAX_OPEN_PER_CLIENT": "100000"}


@pytest.fixture(scope="session")
def platform_fake() -> Iterator[PlatformFake]:
    """The messaging platforms' send APIs the shared stack's channels talk to."""
    platforms = PlatformFake()
    platforms.start()
    yield platforms
    platforms.stop()


@pytest.fixture(scope="session")
def stack(stack_data_dir: Path, platform_fake: PlatformFake) -> Iterator[Stack]:
    """The shared stack, with every channel configured against ``platform_fake`` (one stack for
    the channels' tests too: a second one cost 40 s to start and 10 s to stop in CI)."""
    env = {**NO_TICKET_CAP_ENV, **channel_settings(platform_fake.url)}
    cfg = stack_config(stack_data_dir, model_path=ensure_rasa_model(), extra_env=env)
    with Stack(cfg) as running:
        yield running


@pytest.fixture(scope="session")
def rest(stack: Stack) -> RestClient:
    return RestClient(stack.cfg.rasa_url)


def custom_of(messages: list[dict]) -> list[dict]:
    """The machine-readable metadata of each bot message (our one-message contract)."""
    return [m.get("custom") or {} for m in messages]
