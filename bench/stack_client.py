"""Driving a running AskAgency stack from outside, as the benchmarks and the end-to-end tests do.

The real CLI in a subprocess against a data directory, the Rasa model (trained on demand), Rasa's
REST channel as a channel integration talks to it, and the body Rasa posts to the action server.
Shared by bench/ and tests/ (tests/stack.py adds the pytest fixtures); the benchmarks import no
test code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from askagency.config import PROJECT_ROOT
from askagency.conversation_token import SECRET_ENV, ConversationSigner
from askagency.launcher import OFFLINE_ENV

MODEL_DIR = PROJECT_ROOT / "var" / "models"

# Every stack a benchmark or test starts signs web conversations with this secret (the services
# inherit the environment), so a client may name its own REST senders and sign them, as an
# integration holding the secret may (askagency/conversation_token.py). Browsers get ids from the
# server as usual.
CONVERSATION_SECRET = "e2e-tests-conversation-secret-0123456789abcdef"
os.environ[SECRET_ENV] = CONVERSATION_SECRET
SIGNER = ConversationSigner(CONVERSATION_SECRET.encode())


def signed_body(sender: str, message: str, **extra: object) -> dict[str, object]:
    """A REST webhook body for ``sender`` carrying its conversation token."""
    return {"sender": sender, "token": SIGNER.token(sender), "message": message, **extra}


def cli(
    data_dir: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs ``askagency`` as a citizen's agency would, against ``data_dir`` (``env``: more
    settings, e.g. another database)."""
    proc = subprocess.run(
        [sys.executable, "-m", "agencyctl.cli", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **OFFLINE_ENV, "ASKAGENCY_DATA_DIR": str(data_dir), **(env or {})},
        capture_output=True,
        text=True,
        timeout=900,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"askagency {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def ensure_rasa_model() -> Path:
    """`make test` trains first; running pytest or a benchmark alone trains here if needed."""
    if not list(MODEL_DIR.glob("*.tar.gz")):
        subprocess.run(["make", "train"], cwd=PROJECT_ROOT, check=True, timeout=900)
    return MODEL_DIR


class RestClient:
    """Talks to Rasa's REST channel the way a channel integration does."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def post_raw(self, body: bytes, path: str = "/webhooks/rest/webhook") -> tuple[int, bytes]:
        req = urllib.request.Request(
            self.base_url + path, data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def send(self, sender: str, message: str, **metadata: object) -> list[dict]:
        """One message as ``sender`` (signed with the shared secret, see ``signed_body``)."""
        payload = signed_body(sender, message)
        if metadata:
            payload["metadata"] = metadata
        status, body = self.post_raw(json.dumps(payload).encode())
        assert status == 200, (status, body[:500])
        return json.loads(body)

    def new_conversation(self) -> tuple[str, str]:
        """``(conversation_id, token)`` issued by the server, as a client without the secret
        gets them."""
        status, body = self.post_raw(b"{}", "/webhooks/rest/session")
        assert status == 200, (status, body[:500])
        issued = json.loads(body)
        return issued["conversation_id"], issued["token"]


def action_call(
    action: str,
    text: str,
    intent: str,
    sender: str = "citizen-1",
    domain: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The body Rasa 3.6 posts to the action server's ``/webhook``: ``action`` for a new
    conversation whose latest message is ``text`` (``intent``); Rasa sends its whole ``domain``
    along in every call."""
    return {
        "next_action": action,
        "sender_id": sender,
        "version": "3.6.21",
        "domain": domain or {},
        "tracker": {
            "sender_id": sender,
            "slots": {},
            "latest_message": {
                "text": text,
                "intent": {"name": intent, "confidence": 0.9},
                "entities": [],
                "metadata": {"language": "en"},
            },
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        },
    }
