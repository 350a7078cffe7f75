"""``python -m tests.supervised_main DATA_DIR PORT``: the launcher's ``main()`` (what
``make run`` runs) with one small HTTP server instead of the stack's programs, so
tests/unit/askagency/test_supervision.py can check signals and output without loading Rasa."""

from __future__ import annotations

import os
import sys

from askagency import launcher
from askagency.config import get_settings
from tests.unit.askagency.test_supervision import server_spec

if __name__ == "__main__":
    data_dir, port = sys.argv[1], int(sys.argv[2])
    os.environ["ASKAGENCY_DATA_DIR"] = data_dir
    get_settings.cache_clear()
    launcher.service_specs = lambda _cfg: [server_spec("web", port)]  # type: ignore[assignment]
    raise SystemExit(launcher.main([]))
