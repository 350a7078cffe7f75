"""Rasa project files and the custom channel connectors that run inside ``.venv-rasa``."""
