"""Where the project's files are: the source tree when running from a checkout (``make run``),
the current folder's ``var/`` when the package is installed from a wheel (``pip install .``),
since an installed package must not write into site-packages. Standard library only: Rasa's
environment imports it too (``askagency.opt_out``)."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
IN_SOURCE_TREE = (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "bot").is_dir()


def default_data_dir() -> Path:
    """The data folder when ``ASKAGENCY_DATA_DIR`` is not set."""
    return PROJECT_ROOT / "var" if IN_SOURCE_TREE else Path.cwd() / "var"


def embedded_database_url(data_dir: Path | str) -> str:
    """The embedded profile's SQLite database of a data folder (``database_url`` when unset)."""
    return f"sqlite:///{Path(data_dir) / 'askagency.db'}"
