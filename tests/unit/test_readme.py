"""README.md is generated from docs/ (scripts/build_readme.py); these keep the two in step."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "build_readme.py"


def _builder():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("build_readme", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_is_up_to_date_with_docs() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_the_index_takes_each_pages_title_and_opening_sentence() -> None:
    page = "\n".join(
        [
            "# Title of the page",
            "",
            "*(a note)*",
            "",
            "First sentence, with a [link](x.md). Second sentence.",
            "still the first paragraph.",
            "",
            "## Part",
        ]
    )
    assert _builder().page_summary(page) == (
        "Title of the page",
        "First sentence, with a [link](x.md).",
    )


def test_the_readme_is_a_front_page_that_links_every_topic() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 300
    for name in _builder().TOPICS:
        assert f"](docs/{name})" in readme, name


def test_every_topic_page_is_in_the_readme() -> None:
    builder = _builder()
    on_disk = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert on_disk == set(builder.TOPICS)
