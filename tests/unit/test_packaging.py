"""The wheel is a working install, not only the editable checkout: it carries the templates,
static files, glossaries, sample KB, migrations and alembic.ini, and its ``askagency`` command
loads the sample KB and reports it from a folder outside the source tree (data in ``./var``).

The wheel is installed with ``--no-deps`` into a fresh venv that sees the project venv's
dependencies through a path file (installing torch again would take minutes); the test checks
that the project's own modules come from the new venv, not from the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (
    "askagency/alembic.ini",
    "askagency/migrations/env.py",
    "askagency/migrations/script.py.mako",
    "askagency/migrations/versions/0001_knowledge_base.py",
    "agencyctl/cli.py",
    "console/templates/kb_list.html",
    "console/static/widget/askagency-widget.js",
    "console/static/vendor/chart.umd.min.js",
    "knowledge_base/glossaries/es-en.tsv",
    "knowledge_base/sample/faqs.jsonl",
)


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False, **kwargs)


@pytest.mark.slow
def test_wheel_installs_and_its_command_works_outside_the_checkout(tmp_path: Path) -> None:
    built = _run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(tmp_path / "dist")],
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = (tmp_path / "dist").glob("askagency-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert not [name for name in SHIPPED if name not in names]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "askagency = agencyctl.cli:app" in zipfile.ZipFile(wheel).read(entry_points).decode()

    venv = tmp_path / "venv"
    assert _run([sys.executable, "-m", "venv", "--without-pip", str(venv)]).returncode == 0
    python = venv / "bin" / "python"
    installed = _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
         str(wheel)],
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-2000:]
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
                .stdout.strip())  # fmt: skip
    # The project venv's packages (torch, sqlalchemy, ...) after the wheel's own.
    (site / "zz_project_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")

    work = tmp_path / "agency"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASKAGENCY_")}
    env.pop("PYTHONPATH", None)
    where = _run([str(python), "-c", "import askagency, console; print(askagency.__file__)"],
                 cwd=work, env=env)  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout + where.stderr
    command = str(venv / "bin" / "askagency")
    loaded = _run([command, "kb", "load-sample"], cwd=work, env=env)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    stats = _run([command, "kb", "stats"], cwd=work, env=env)
    assert stats.returncode == 0, stats.stdout + stats.stderr
    faqs = sum(
        1
        for name in ("faqs.jsonl", "faqs_es.jsonl")
        for line in (ROOT / "knowledge_base" / "sample" / name).read_text().splitlines()
        if line.strip()
    )
    assert f"Knowledge base: {faqs} FAQs" in stats.stdout, stats.stdout
    assert (work / "var" / "askagency.db").is_file()  # the data folder is the current one's
