"""The console's navigation, filtered by what the user's role may open."""

from __future__ import annotations

from dataclasses import dataclass

from askagency.staff import Role
from console.auth import CurrentUser, current_user


@dataclass(frozen=True)
class NavItem:
    href: str
    label: str
    roles: frozenset[Role]


NAV_ITEMS: list[NavItem] = [
    NavItem("/console/inbox", "Agent inbox", frozenset({Role.AGENT, Role.ADMIN})),
    NavItem("/console/kb", "Knowledge base", frozenset({Role.EDITOR, Role.VIEWER, Role.ADMIN})),
    NavItem("/console/dashboard", "Dashboard", frozenset({Role.VIEWER, Role.EDITOR, Role.ADMIN})),
]


def nav_for(user: CurrentUser | None, current_path: str, available: set[str]) -> list[dict]:
    """Items the user may open among the sections this build actually serves."""
    if user is None:
        return []
    return [
        {"href": i.href, "label": i.label, "active": current_path.startswith(i.href)}
        for i in NAV_ITEMS
        if i.href in available and user.role in i.roles
    ]


def page_context(request, **extra: object) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Common template context: the user, CSRF token and the navigation."""
    available = {r.canonical for r in request.app.router.resources() if hasattr(r, "canonical")}
    user = current_user(request)
    return {"user": user, "nav": nav_for(user, request.path, available), **extra}
