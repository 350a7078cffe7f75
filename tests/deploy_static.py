"""Static readers for deploy/: Dockerfile instructions, .dockerignore, and the project modules an
entry point imports.

Why static: there is no Docker engine or cluster on the development machines, so `make test`
checks what can be checked without one (docs/scale.md, "Images and manifests"). The import graph
is read from the source with ``ast`` (every ``import`` anywhere in a module, functions included,
since the CLI imports its subcommands lazily), transitively within the project's packages.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: its keyword (upper case) and its argument text."""

    keyword: str
    args: str
    line: int


def dockerfile_instructions(text: str) -> list[Instruction]:
    """The instructions of ``text``, continuation lines joined, comments dropped."""
    out: list[Instruction] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, args = full.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start))
    return out


def copy_sources(instructions: list[Instruction]) -> list[str]:
    """The build-context paths that COPY/ADD instructions take (``--from`` stages excluded)."""
    sources: list[str] = []
    for ins in instructions:
        if ins.keyword not in ("COPY", "ADD"):
            continue
        parts = json.loads(ins.args) if ins.args.startswith("[") else shlex.split(ins.args)
        if any(p.startswith("--from") for p in parts):
            continue
        parts = [p for p in parts if not p.startswith("--")]
        sources.extend(p.rstrip("/").removeprefix("./") for p in parts[:-1])
    return sources


def dockerignore_patterns() -> list[str]:
    path = ROOT / ".dockerignore"
    lines = path.read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def ignored_by_dockerignore(relpath: str, patterns: list[str]) -> bool:
    """Whether Docker leaves ``relpath`` out of the build context: the last matching pattern
    wins, a pattern also matches everything under a matching directory, ``!`` re-includes."""
    parts = relpath.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.strip("/")
        if pat.startswith("**/"):
            hit = any(fnmatch.fnmatch(part, pat[3:]) for part in parts)
        else:
            hit = any(fnmatch.fnmatchcase(prefix, pat) for prefix in prefixes)
        if negate and fnmatch.fnmatchcase(relpath, pat):
            ignored = False
        elif hit and not negate:
            ignored = True
    return ignored


def project_packages() -> set[str]:
    """Top-level packages of the project (directories at the root with an ``__init__.py``)."""
    return {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}


def module_file(name: str) -> Path | None:
    """The source file of project module ``name``, or None when it is not a project module."""
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_names(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.add(base)
            # ``from pkg import sub`` imports the submodule pkg.sub when there is one.
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_closure(roots: list[str]) -> dict[str, Path]:
    """Every project module that importing ``roots`` runs, with its parent packages."""
    packages = project_packages()
    seen: dict[str, Path] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen or name.split(".")[0] not in packages:
            continue
        path = module_file(name)
        if path is None:
            continue
        seen[name] = path
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        todo.extend(_imported_names(path, name))
    return seen


def uncopied(modules: dict[str, Path], sources: list[str]) -> list[str]:
    """The modules whose file no COPY source covers (the source is the file or a parent)."""
    missing = []
    for name, path in sorted(modules.items()):
        rel = path.relative_to(ROOT).as_posix()
        if not any(rel == src or rel.startswith(src + "/") for src in sources):
            missing.append(f"{name} ({rel})")
    return missing


def tool(name: str) -> str | None:
    """``name`` from this interpreter's bin directory (the venv), else from PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.is_file() else shutil.which(name)
