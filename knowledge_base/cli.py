"""``askagency kb``: the knowledge-base command group.

The Typer app is defined here; the retrieval commands (build-index/search/evaluate) live in
``cli_index``, ``calibrate`` (thresholds from the KB's own wordings) in ``cli_calibrate``, the
store commands (import/export/stats/load-sample/migrate) in ``cli_store``, the location list
(``kb locations list/import/export``) in ``cli_locations`` and ``install-model`` in
``cli_model``, each added by that module's ``register``.
"""

from __future__ import annotations

import typer

from knowledge_base import cli_calibrate, cli_index, cli_locations, cli_model, cli_store

app = typer.Typer(no_args_is_help=True, help="FAQ knowledge base commands.")
cli_index.register(app)
cli_calibrate.register(app)
cli_store.register(app)
cli_locations.register(app)
cli_model.register(app)
