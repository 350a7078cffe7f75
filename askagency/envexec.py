"""``python -m askagency.envexec SPEC_JSON``: replaces itself with the command of SPEC_JSON
(``{"argv": [...], "env": {...}}``), its environment extended by ``env``.

supervisord starts every program through this (askagency/supervision.py): its own
``command=``/``environment=`` settings cannot quote every value, and ``exec`` keeps the pid
supervisord watches the program's own.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: python -m askagency.envexec SPEC_JSON")
    with open(argv[0], encoding="utf-8") as fh:
        spec = json.load(fh)
    command = [str(a) for a in spec["argv"]]
    env = {**os.environ, **{str(k): str(v) for k, v in spec["env"].items()}}
    os.execve(command[0], command, env)


if __name__ == "__main__":
    main(sys.argv[1:])
