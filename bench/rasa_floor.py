"""A stock Rasa 3.6 assistant: the floor AskAgency's turn latency is compared with (issue 19).

What `rasa init` would give an agency that wrote one trivial custom action: Rasa's default
pipeline and policies (``recipe: default.v1`` with no pipeline or policies listed, so Rasa fills
in its suggested configuration), the default in-memory tracker store, no event broker, and a
rasa-sdk action server with one action that answers "ok". bench/bench_e2e.py times a custom
action turn and a greeting on it in the same run as AskAgency's own turns, so the ratio does not
depend on how busy the machine was.

The trained model is cached in var/bench/rasa-floor/ under a hash of the project files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RASA_BIN = ROOT / ".venv-rasa" / "bin"
CACHE = ROOT / "var" / "bench" / "rasa-floor"

FILES = {
    "config.yml": "recipe: default.v1\nassistant_id: floor\nlanguage: en\n",
    "credentials.yml": "rest:\n",
    "domain.yml": """version: "3.1"
intents:
  - greet
  - ask
responses:
  utter_greet:
    - text: "Hello! Ask me anything."
actions:
  - action_answer
session_config:
  session_expiration_time: 60
  carry_over_slots_to_new_session: true
""",
    "data/nlu.yml": """version: "3.1"
nlu:
  - intent: greet
    examples: |
      - hello
      - hi
      - hey there
      - good morning
      - good evening
      - hi there
      - hello, anyone there?
      - hey
  - intent: ask
    examples: |
      - can I bring my laptop in my carry-on
      - are liquids allowed in hand luggage
      - what ID do I need to fly
      - can I take a lighter on the plane
      - how early should I arrive
      - is a power bank allowed in checked bags
      - can I bring food through security
      - do I need to take off my shoes
""",
    "data/rules.yml": """version: "3.1"
rules:
  - rule: greet
    steps:
      - intent: greet
      - action: utter_greet
  - rule: answer
    steps:
      - intent: ask
      - action: action_answer
""",
    "actions/__init__.py": "",
    "actions/actions.py": """from rasa_sdk import Action


class ActionAnswer(Action):
    def name(self):
        return "action_answer"

    def run(self, dispatcher, tracker, domain):
        dispatcher.utter_message(text="ok")
        return []
""",
}


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for name in sorted(FILES):
        digest.update(name.encode() + b"\0" + FILES[name].encode() + b"\0")
    return digest.hexdigest()[:16]


def project() -> Path:
    """The project folder with a trained model (trained once per version of FILES)."""
    folder = CACHE / _fingerprint()
    model = folder / "models" / "floor.tar.gz"
    if model.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    for name, text in FILES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
    subprocess.run(  # noqa: S603 (Rasa's own CLI)
        [str(RASA_BIN / "rasa"), "train", "--fixed-model-name", "floor", "--quiet"],
        cwd=folder,
        env=env,
        check=True,
        capture_output=True,
    )
    return folder


def _wait(url: str, process: subprocess.Popen[bytes], timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (loopback)
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


@contextmanager
def running(rasa_port: int, action_port: int) -> Iterator[str]:
    """The stock assistant and its action server; yields Rasa's base URL."""
    folder = project()
    (folder / "endpoints.yml").write_text(
        f"action_endpoint:\n  url: http://127.0.0.1:{action_port}/webhook\n"
    )
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
    logs = folder / "logs"
    logs.mkdir(exist_ok=True)
    commands = [
        [str(RASA_BIN / "rasa"), "run", "actions", "--port", str(action_port)],
        [
            str(RASA_BIN / "rasa"),
            "run",
            "--port",
            str(rasa_port),
            "--interface",
            "127.0.0.1",
            "--model",
            "models/floor.tar.gz",
            "--endpoints",
            "endpoints.yml",
        ],
    ]
    processes = []
    try:
        for i, argv in enumerate(commands):
            log = open(logs / f"{i}.log", "wb")  # noqa: SIM115 (closed with the process)
            processes.append(
                (
                    subprocess.Popen(  # noqa: S603
                        argv, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT
                    ),
                    log,
                )
            )
        _wait(f"http://127.0.0.1:{action_port}/health", processes[0][0])
        _wait(f"http://127.0.0.1:{rasa_port}/", processes[1][0])
        yield f"http://127.0.0.1:{rasa_port}"
    finally:
        for process, log in processes:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()


if __name__ == "__main__":
    print(project(), file=sys.stderr)
