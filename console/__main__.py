"""``python -m console --port 8080``: run the console web app."""

from __future__ import annotations

import argparse
import logging
import sys

from aiohttp import web

from askagency.config import get_settings
from askagency.logging_setup import configure_logging
from askagency.secrets import private_umask
from console.app import create_app


def main() -> None:
    private_umask()  # exports, SQLite files, index versions: this user's only
    settings = get_settings()
    parser = argparse.ArgumentParser(description="AskAgency console")
    parser.add_argument("--host", default=settings.console_host)
    parser.add_argument("--port", type=int, default=settings.console_port)
    args = parser.parse_args()
    # e.g. --host 0.0.0.0 in a container: the Secure-cookie default follows the real listener.
    settings = settings.for_console_host(args.host)
    configure_logging(stream=sys.stderr)
    # aiohttp's "Running on" banner through logging too, so JSON logs stay one object a line.
    web.run_app(
        create_app(settings),
        host=args.host,
        port=args.port,
        access_log=None,
        print=logging.getLogger("console").info,
    )


if __name__ == "__main__":
    main()
