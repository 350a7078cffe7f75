"""Apply the thresholds ``askagency kb evaluate --sweep`` recommends, in one command.

Why a settings file: the decision thresholds are settings (``ASKAGENCY_*`` in the environment
or in the ``.env`` file the settings read), so an agency's calibration must survive restarts
and be visible in one place. ``--apply`` rewrites only the threshold lines of that file and
keeps every other line (comments, secrets, other settings) as it was.

The main language's thresholds are ``ASKAGENCY_ANSWER_THRESHOLD`` etc.; another language's go
into ``ASKAGENCY_LANGUAGE_THRESHOLDS`` (JSON, merged with the languages already there).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from knowledge_base.atomic_file import replace_atomically
from knowledge_base.evaluate import SweepRow

ENV_PREFIX = "ASKAGENCY_"


def recommended_values(row: SweepRow) -> dict[str, float]:
    """The settings a sweep row stands for."""
    return {
        "answer_threshold": round(row.answer_threshold, 2),
        "clarify_threshold": round(row.clarify_threshold, 2),
        "answer_confidence": round(row.answer_confidence, 2),
        "answer_confidence_floor": round(
            row.clarify_threshold
            if row.answer_confidence_floor is None
            else row.answer_confidence_floor,
            2,
        ),
    }


def env_updates(
    values: Mapping[str, float],
    language: str | None,
    main_language: str,
    current_language_thresholds: Mapping[str, Mapping[str, float]],
) -> dict[str, str]:
    """``ASKAGENCY_*`` name -> value for ``values`` measured on ``language``'s questions."""
    if language in (None, "", main_language):
        return {f"{ENV_PREFIX}{name.upper()}": f"{value:g}" for name, value in values.items()}
    merged: dict[str, dict[str, float]] = {
        lang: dict(v) for lang, v in current_language_thresholds.items()
    }
    merged.setdefault(str(language), {}).update(values)
    return {f"{ENV_PREFIX}LANGUAGE_THRESHOLDS": json.dumps(merged, sort_keys=True)}


def _quoted(value: str) -> str:
    return "'" + value + "'" if any(c in value for c in ' {}"#') else value


def update_env_file(path: Path | str, updates: Mapping[str, str]) -> list[str]:
    """Set ``updates`` in the dotenv file ``path`` (created if missing), replacing existing
    assignments of those names and appending the others; written atomically. Returns the
    lines written for the updated names."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    pending = dict(updates)
    out: list[str] = []
    for line in lines:
        name = line.split("=", 1)[0].strip().removeprefix("export ").strip()
        if "=" in line and not line.lstrip().startswith("#") and name in updates:
            if name in pending:
                out.append(f"{name}={_quoted(pending.pop(name))}")
            continue  # a second assignment of the same name would override ours
        out.append(line)
    out.extend(f"{name}={_quoted(value)}" for name, value in pending.items())
    replace_atomically(path, lambda handle: handle.write("\n".join(out) + "\n"))
    return [f"{name}={_quoted(value)}" for name, value in updates.items()]


def apply_recommendation(
    row: SweepRow, settings: Any, language: str | None, env_file: Path | str
) -> list[str]:
    """Write ``row``'s thresholds into ``env_file`` for ``language``; the lines written."""
    updates = env_updates(
        recommended_values(row),
        language,
        settings.default_language,
        getattr(settings, "language_thresholds", None) or {},
    )
    return update_env_file(env_file, updates)
