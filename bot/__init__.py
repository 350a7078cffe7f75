"""Rasa project files and the custom channel connectors that run inside ``.venv-rasa``."""

import importlib.util as _importlib_util

if _importlib_util.find_spec("rasa") is not None:
    # Inside a Rasa process (our channels and NLU component import this package): hot-path fix
    # found by profiling, see bot/rasa_speedups.py.
    from bot import rasa_speedups as _rasa_speedups

    _rasa_speedups.install()
