"""The import-linter contract of the Rasa channels (pyproject.toml) covers every module.

Why: the contract names what bot/ must not import, and a module added later would be allowed by
default. Every module of ``askagency`` and ``actions`` must be either one the channels use today
(standard library only, so it runs in Rasa's Python 3.10 environment) or forbidden to them.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CONTRACT = "The Rasa channels import only what runs in Rasa's environment"
# What bot/ imports today, directly or through each other.
RASA_SAFE = {
    "actions.messages",
    "askagency.bot_messages",
    "askagency.channels",
    "askagency.location_codes",
    "askagency.client_address",
    "askagency.clock",
    "askagency.conversation_ids",
    "askagency.conversation_token",
    "askagency.limits",
    "askagency.numbers",
    "askagency.opt_out",
    "askagency.paths",
    "askagency.rasa_events",
    "askagency.secrets",
}


def _contract() -> dict[str, object]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    return next(c for c in contracts if c["name"] == CONTRACT)


def _modules(package: str) -> set[str]:
    return {
        f"{package}.{path.stem}"
        for path in (ROOT / package).glob("*.py")
        if path.stem not in ("__init__", "__main__")
    }


def test_every_module_is_rasa_safe_or_forbidden_to_the_channels() -> None:
    forbidden = set(_contract()["forbidden_modules"])  # type: ignore[arg-type]
    modules = _modules("askagency") | _modules("actions")
    unlisted = modules - RASA_SAFE - forbidden
    assert not unlisted, (
        f"add {sorted(unlisted)} to the forbidden modules of {CONTRACT!r} in pyproject.toml "
        "(or, if bot/ needs it and it uses only the standard library, to RASA_SAFE here)"
    )
    assert not RASA_SAFE & forbidden
    assert not RASA_SAFE - modules, sorted(RASA_SAFE - modules)
