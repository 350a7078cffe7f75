"""``python -m bot.serve run ...``: ``rasa run`` with the API token kept out of the command line.

Rasa 3.6 takes its HTTP API token only as ``rasa run --auth-token TOKEN`` (rasa/cli/arguments/
run.py; no environment variable, no endpoints/credentials key), and a command line is readable
by every local user (``ps``, /proc/PID/cmdline). This wrapper, run with Rasa's own Python, reads
the token from ``ASKAGENCY_RASA_TOKEN`` or else from the data folder's generated secret
(askagency/secrets.py, the same function the console and action server use), checks it against
the interface Rasa will listen on, and hands it to Rasa's CLI in this process's ``sys.argv``,
which does not change the process's visible command line.

It also refuses ``--auth-token`` on its own command line and ``--cors *``, and sets a private
umask, so Rasa's SQLite tracker and event files are readable by their user only.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from askagency.secrets import (
    RASA_TOKEN_ENV,
    RASA_TOKEN_SECRET,
    WeakSecretError,
    check_api_token,
    load_or_create_secret,
    private_umask,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RASA_DEFAULT_INTERFACE = "0.0.0.0"  # what `rasa run` binds without --interface


def option_values(argv: list[str], *names: str) -> list[str]:
    """The values following the last of ``names`` (``--cors a b``) or in ``--name=value``."""
    values: list[str] = []
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name:
                values = []
                for value in argv[i + 1 :]:
                    if value.startswith("-"):
                        break
                    values.append(value)
            elif arg.startswith(name + "="):
                values = [arg.split("=", 1)[1]]
    return values


def resolve_token(environ: dict[str, str]) -> str:
    """``ASKAGENCY_RASA_TOKEN``, else the data folder's generated token."""
    token = environ.get(RASA_TOKEN_ENV, "").strip()
    if token:
        return token
    data_dir = Path(environ.get("ASKAGENCY_DATA_DIR") or PROJECT_ROOT / "var")
    return load_or_create_secret(data_dir, RASA_TOKEN_SECRET)


def rasa_argv(argv: list[str], environ: dict[str, str]) -> list[str]:
    """Rasa's argv for ``argv`` (this wrapper's arguments), or WeakSecretError/ValueError."""
    if any(a in ("-t", "--auth-token") or a.startswith("--auth-token=") for a in argv):
        raise ValueError(
            "do not pass --auth-token: it would be visible in `ps`; set ASKAGENCY_RASA_TOKEN "
            "or let the generated token in <data_dir>/secrets/ be used"
        )
    if "*" in option_values(argv, "--cors"):
        raise ValueError(
            "--cors '*' lets every web page use Rasa; list the widget's origins instead"
        )
    if argv[:1] != ["run"]:
        raise ValueError("usage: python -m bot.serve run [rasa run options]")
    interface = (option_values(argv, "-i", "--interface") or [RASA_DEFAULT_INTERFACE])[0]
    token = resolve_token(environ)
    check_api_token(token, interface)
    # One argument: a generated token may start with "-", which argparse would take for an
    # option ("--auth-token: expected one argument": Rasa would not start).
    return ["rasa", *argv, f"--auth-token={token}"]


def main() -> None:
    private_umask()
    try:
        sys.argv = rasa_argv(sys.argv[1:], dict(os.environ))
    except (WeakSecretError, ValueError) as exc:
        print(f"bot.serve: refusing to start Rasa: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
