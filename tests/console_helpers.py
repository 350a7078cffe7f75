"""Console accounts and logging in, for tests (aiohttp ``TestClient`` or ``ClientSession``).

One place for the login form post and the CSRF token the console puts in every page's
``<meta name="csrf-token">``; the tests that exercise login itself (failures, lock-out, cookies)
post the form themselves. :func:`add_staff_account` makes an account row for tests that never
log in.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

PASSWORD = "correct horse battery"
CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')


async def csrf_token(http: Any, url: Callable[[str], Any] = str) -> str:
    """The CSRF token of the logged-in session (from the console home page)."""
    resp = await http.get(url("/console"))
    page = await resp.text()
    match = CSRF_META.search(page)
    assert match, page[:500]
    return match.group(1)


async def login(
    http: Any, username: str, password: str = PASSWORD, url: Callable[[str], Any] = str
) -> str:
    """Logs ``username`` in on ``http`` (its cookie jar keeps the session); returns the CSRF
    token for state-changing calls. ``url`` makes a full URL for a bare ``ClientSession``."""
    resp = await http.post(
        url("/console/login"),
        data={"username": username, "password": password, "next": "/console"},
        allow_redirects=False,
    )
    body = await resp.text()
    assert resp.status == 302, (resp.status, body[:500])
    return await csrf_token(http, url)


def add_staff_account(session: Session, username: str, role: str, display_name: str = "") -> int:
    """A console account without a real password hash (these tests never log in: argon2 is
    slow); returns its id."""
    from askagency.staff import User

    user = User(
        username=username,
        display_name=display_name or username.title(),
        password_hash="not-used",
        role=role,
        languages=["en"],
        active=True,
        failed_logins=0,
    )
    session.add(user)
    session.flush()
    return int(user.id)
