"""A real console process on a fresh, seeded data directory, without Rasa: for browser tests of
console pages (dashboard, locations) that need no bot."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from askagency.config import PROJECT_ROOT, embedded_database_url
from askagency.db import make_engine
from askagency.launcher import OFFLINE_ENV
from askagency.migrate import upgrade
from askagency.ports import free_port
from tests.browser.conftest import _wait_http


@contextlib.contextmanager
def standalone_console(data_dir: Path, seed: Callable[[Session], None]) -> Iterator[str]:
    """Migrates ``data_dir``'s database, runs ``seed`` in one committed transaction, starts
    ``python -m console`` on a free port and yields its base URL; stops it afterwards."""
    url = embedded_database_url(data_dir)
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        seed(session)
        session.commit()
    engine.dispose()
    port = free_port()
    log = data_dir / "console.log"
    env = {**os.environ, **OFFLINE_ENV, "ASKAGENCY_DATA_DIR": str(data_dir)}
    env.pop("ASKAGENCY_DATABASE_URL", None)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "console", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", proc, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def log_in_to_inbox(page: Any, base_url: str, username: str, password: str) -> None:
    """Logs ``username`` in on ``page`` through the console's login form; it lands on the inbox."""
    page.goto(f"{base_url}/console/login?next=/console/inbox")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name=re.compile("log in", re.I)).click()
    page.wait_for_url("**/console/inbox")
