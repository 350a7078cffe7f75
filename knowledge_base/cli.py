"""``askagency kb``: the knowledge-base command group.

The Typer app is defined here; the store commands (import/export/stats) live in
``cli_store`` and the retrieval commands (build-index/search/evaluate) in
``cli_index``. Both register themselves on ``app`` when imported below.
"""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="FAQ knowledge base commands.")

from knowledge_base import cli_index, cli_store  # noqa: E402,F401  (registers commands)
