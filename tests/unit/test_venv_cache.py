"""scripts/venv-cache.sh: an environment saved from one checkout is restored into another only
when its inputs are the same, with its scripts pointing at the new folder, its files shared by
hard links, and the cached copy untouched by the restore."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "venv-cache.sh"


def run(action: str, venv: Path, inputs: list[Path], cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), action, str(venv), sys.executable, *map(str, inputs)],
        env={**os.environ, "XDG_CACHE_HOME": str(cache)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    """A small venv (no pip) with a console script, as pip would write it."""
    venv = tmp_path / "first" / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    script = venv / "bin" / "hello"
    script.write_text(f"#!{venv}/bin/python\nprint('hello from', __import__('sys').prefix)\n")
    script.chmod(0o755)
    (venv / "lib" / "data.txt").write_text("installed")
    return venv


def test_saved_then_restored_into_another_checkout(installed: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    inputs = [tmp_path / "requirements.txt"]
    inputs[0].write_text("somepackage==1.0\n")
    saved = run("save", installed, inputs, cache)
    assert saved.returncode == 0, saved.stderr
    restored_to = tmp_path / "second" / ".venv"
    restored = run("restore", restored_to, inputs, cache)
    assert restored.returncode == 0, restored.stderr

    out = subprocess.run([str(restored_to / "bin" / "hello")], capture_output=True, text=True)
    assert out.stdout.strip() == f"hello from {restored_to}"
    assert (restored_to / "bin" / "hello").read_text().startswith(f"#!{restored_to}/bin/python")
    activate = (restored_to / "bin" / "activate").read_text()
    assert str(restored_to) in activate and str(installed) not in activate
    assert not (restored_to / ".complete").exists() and not (restored_to / ".origin").exists()
    # Shared by hard links; the cached script still names the folder it was installed in.
    assert os.stat(restored_to / "lib" / "data.txt").st_nlink == 3
    [cached] = (cache / "askagency" / "venvs").iterdir()
    assert (cached / "bin" / "hello").read_text().startswith(f"#!{installed}/bin/python")
    assert (cached / ".origin").read_text().strip() == str(installed)


def test_other_inputs_restore_nothing(installed: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    inputs = [tmp_path / "requirements.txt"]
    inputs[0].write_text("somepackage==1.0\n")
    assert run("save", installed, inputs, cache).returncode == 0
    inputs[0].write_text("somepackage==1.1\n")
    assert run("restore", tmp_path / "second" / ".venv", inputs, cache).returncode == 1
    assert not (tmp_path / "second" / ".venv").exists()


def test_an_unfinished_save_is_never_restored(installed: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    inputs = [tmp_path / "requirements.txt"]
    inputs[0].write_text("x\n")
    assert run("save", installed, inputs, cache).returncode == 0
    [cached] = (cache / "askagency" / "venvs").iterdir()
    (cached / ".complete").unlink()  # as if the save had been cut short
    assert run("restore", tmp_path / "second" / ".venv", inputs, cache).returncode == 1


def test_saving_keeps_the_two_latest_of_its_own_name_only(installed: Path, tmp_path: Path) -> None:
    """Saving a third .venv drops the oldest .venv, never .venv-rasa's copy (whose name starts
    the same: pruning '.venv-*' once took it, and a fresh clone installed Rasa's again)."""
    cache = tmp_path / "cache"
    venvs = cache / "askagency" / "venvs"
    requirements = tmp_path / "requirements.txt"
    rasa = installed.parent / ".venv-rasa"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(rasa)], check=True)
    requirements.write_text("rasa\n")
    assert run("save", rasa, [requirements], cache).returncode == 0
    [rasa_copy] = venvs.iterdir()
    os.utime(rasa_copy, (1, 1))  # the oldest of all
    saved: list[str] = []
    for version in range(3):
        requirements.write_text(f"app=={version}\n")
        assert run("save", installed, [requirements], cache).returncode == 0
        [new] = {p.name for p in venvs.iterdir()} - {rasa_copy.name, *saved}
        os.utime(venvs / new, (10 + version, 10 + version))
        saved.append(new)
    assert {p.name for p in venvs.iterdir()} == {rasa_copy.name, saved[1], saved[2]}


PROJECT = SCRIPT.parents[1]
INSTALL = PROJECT / "scripts" / "install-env.sh"


def test_make_setup_restores_what_it_saved_under_the_same_inputs(
    installed: Path, tmp_path: Path
) -> None:
    """scripts/install-env.sh (make setup) looks the cache up with the inputs it saves under:
    the kind's requirement and constraint files and itself, read from the project folder. A
    restored Rasa environment needs no pip (this small venv has none, so an install would fail)."""
    cache = tmp_path / "cache"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    inputs = ["requirements-rasa.txt", "constraints-rasa.txt", "scripts/install-env.sh"]
    save = [str(SCRIPT), "save", str(installed), sys.executable, *inputs]
    subprocess.run(["bash", *save], cwd=PROJECT, env=env, check=True, timeout=120)
    target = tmp_path / "clone" / installed.name  # the cache keeps environments by folder name
    done = subprocess.run(
        ["bash", str(INSTALL), "rasa", str(target), sys.executable],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "restored" in done.stdout
    hello = subprocess.run([str(target / "bin" / "hello")], capture_output=True, text=True)
    assert hello.stdout.strip() == f"hello from {target}"


def test_an_unknown_kind_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", str(INSTALL), "ruby", str(tmp_path / "v"), sys.executable],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "unknown kind 'ruby'" in done.stderr
    assert not (tmp_path / "v").exists()
