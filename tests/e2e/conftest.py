"""End-to-end tests share the session stack registered in tests/conftest.py."""

from tests.stack import RestClient, cli, custom_of, ensure_rasa_model  # noqa: F401 (re-exported)
