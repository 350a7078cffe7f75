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


def test_topic_page_becomes_a_level_two_section_with_root_links() -> None:
    page = "\n".join(
        [
            "# Title",
            "See ![shot](screenshots/a.png), [sec](security.md#abuse), [top](#x),",
            "[code](../bot/lock_store.py) and [web](https://example.org/a.md).",
            "## Part",
            "```bash",
            "# a shell comment, not a heading; [kept](screenshots/b.png)",
            "```",
            "#### Deep",
        ]
    )
    assert _builder().topic_section(page).split("\n") == [
        "## Title",
        "See ![shot](docs/screenshots/a.png), [sec](docs/security.md#abuse), [top](#x),",
        "[code](bot/lock_store.py) and [web](https://example.org/a.md).",
        "### Part",
        "```bash",
        "# a shell comment, not a heading; [kept](screenshots/b.png)",
        "```",
        "##### Deep",
    ]


def test_every_topic_page_is_in_the_readme() -> None:
    builder = _builder()
    on_disk = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert on_disk == set(builder.TOPICS)
