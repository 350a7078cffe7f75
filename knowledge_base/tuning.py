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

from askagency.numbers import ascii_int
from knowledge_base.atomic_file import replace_atomically
from knowledge_base.evaluate import SweepRow
from knowledge_base.retriever import SCORING_VERSION

ENV_PREFIX = "ASKAGENCY_"
# The setting that records which embedding model, and which version of the retriever's scoring,
# the thresholds were measured with: "<model id>;scoring=<version>" (a bare model id, written
# before the version was recorded, stands for version 1).
THRESHOLDS_MODEL = "thresholds_model"
SCORING_MARK = ";scoring="


def thresholds_scale(model_id: str) -> str:
    """What ``--apply`` records for thresholds measured on an index of ``model_id`` now."""
    return f"{model_id}{SCORING_MARK}{SCORING_VERSION}"


def _recorded_scale(recorded: str) -> tuple[str, int]:
    model_id, mark, version = recorded.partition(SCORING_MARK)
    return model_id, (ascii_int(version) or 1) if mark else 1


def recommended_values(row: SweepRow) -> dict[str, float]:
    """The settings a sweep row stands for (suggest_threshold when the row has one: the
    recommended row)."""
    values = {
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
    if row.suggest_threshold is not None:
        values["suggest_threshold"] = round(row.suggest_threshold, 2)
    return values


def threshold_updates(
    values: Mapping[str, float],
    language: str | None,
    main_language: str,
    current_language_thresholds: Mapping[str, Mapping[str, float]],
) -> dict[str, Any]:
    """Settings fields for ``values`` measured on ``language``'s questions: the main language's
    are the fields themselves; another language's are merged into ``language_thresholds``."""
    if language in (None, "", main_language):
        return dict(values)
    merged: dict[str, dict[str, float]] = {
        lang: dict(v) for lang, v in current_language_thresholds.items()
    }
    merged.setdefault(str(language), {}).update(values)
    return {"language_thresholds": merged}


def recommendation_fields(row: SweepRow, settings: Any, language: str | None) -> dict[str, Any]:
    """The settings fields ``row``'s thresholds stand for, measured on ``language``'s questions
    (another language's merged into ``settings``' ``language_thresholds``): what ``--apply``
    writes, what ``kb evaluate`` prints and what a held-out half is measured at."""
    return threshold_updates(
        recommended_values(row),
        language,
        settings.default_language,
        getattr(settings, "language_thresholds", None) or {},
    )


def recommendation_env(row: SweepRow, settings: Any, language: str | None) -> dict[str, str]:
    """``ASKAGENCY_*`` name -> value of :func:`recommendation_fields`."""
    return {
        f"{ENV_PREFIX}{name.upper()}": (
            json.dumps(value, sort_keys=True) if isinstance(value, dict) else f"{value:g}"
        )
        for name, value in recommendation_fields(row, settings, language).items()
    }


def with_recommendation(settings: Any, row: SweepRow | None, language: str | None) -> Any | None:
    """``settings`` with ``row`` applied in memory (a pydantic model's copy), or ``None`` when
    there is no row (nothing met the sweep's limits)."""
    if row is None:
        return None
    return settings.model_copy(update=recommendation_fields(row, settings, language))


def target_env_file(given: Path | None) -> Path:
    """The settings file ``--apply`` writes: ``--env-file`` when given, else the one the settings
    read (``ASKAGENCY_ENV_FILE``, ./.env by default), else ./.env."""
    from askagency.config import settings_file

    return given or settings_file() or Path(".env")


def _quoted(value: str) -> str:
    return "'" + value + "'" if any(c in value for c in ' {}"#') else value


def env_lines(updates: Mapping[str, str]) -> list[str]:
    """``NAME=value`` lines as a settings file (and a shell) reads them: JSON values quoted."""
    return [f"{name}={_quoted(value)}" for name, value in updates.items()]


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
    out.extend(env_lines(pending))
    replace_atomically(path, lambda handle: handle.write("\n".join(out) + "\n"))
    return env_lines(updates)


def apply_recommendation(
    row: SweepRow,
    settings: Any,
    language: str | None,
    env_file: Path | str,
    model_id: str | None = None,
) -> list[str]:
    """Write ``row``'s thresholds into ``env_file`` for ``language``, and ``model_id`` (the
    embedding model they were measured with, with the scoring version: :func:`thresholds_scale`)
    as ``thresholds_model``; the lines written."""
    updates = recommendation_env(row, settings, language)
    if model_id:
        updates[f"{ENV_PREFIX}{THRESHOLDS_MODEL.upper()}"] = thresholds_scale(model_id)
    return update_env_file(env_file, updates)


def bundled_model_id() -> str:
    """``Embedder.model_id`` of the bundled model at the default sequence length: what the
    default thresholds were measured with."""
    from askagency.config import bundled_model_path
    from knowledge_base.embedder import DEFAULT_MAX_SEQ_LENGTH, model_fingerprint

    return f"{model_fingerprint(bundled_model_path())}-s{DEFAULT_MAX_SEQ_LENGTH}"


def thresholds_model_warning(settings: Any, index_model_id: str | None) -> str | None:
    """Why the thresholds may not fit an index built with ``index_model_id``, or None.

    A threshold is a point on one model's score scale: MiniLM's 0.70 is not mpnet's 0.70 (their
    development files chose 0.70 and 0.65). So when the index's model is not the one the
    thresholds were measured with (``thresholds_model``; the bundled model when unset), the
    bot answers more or fewer questions than was measured, and the warning says what to run.
    The same when they were measured with an earlier version of the retriever's scoring (an
    upgrade that changed it: the defaults move with it, an agency's own thresholds do not)."""
    if not index_model_id:
        return None
    recorded = getattr(settings, THRESHOLDS_MODEL, "")
    measured, version = (
        _recorded_scale(recorded) if recorded else (bundled_model_id(), SCORING_VERSION)
    )
    command = (
        "`askagency kb evaluate <your labelled questions.csv> --language <lang> --sweep "
        "--apply` (docs/quality.md)"
    )
    if measured != index_model_id:
        origin = "were measured with" if recorded else "are the defaults, for"
        return (
            f"the decision thresholds {origin} embedding model {measured}, but the index was "
            f"built with {index_model_id}: measure them for this model with {command}"
        )
    if version != SCORING_VERSION:
        return (
            f"the decision thresholds were measured with version {version} of the retriever's "
            f"scoring and this release scores FAQs with version {SCORING_VERSION}, which moves "
            f"every score: measure them again with {command}"
        )
    return None
