"""``python -m console --port 8080``: run the console web app."""

from __future__ import annotations

import argparse
import logging

from aiohttp import web

from askagency.config import get_settings
from console.app import create_app


def main() -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(description="AskAgency console")
    parser.add_argument("--host", default=settings.console_host)
    parser.add_argument("--port", type=int, default=settings.console_port)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    web.run_app(create_app(settings), host=args.host, port=args.port, access_log=None)


if __name__ == "__main__":
    main()
