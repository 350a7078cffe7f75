"""Custom Rasa input/output channels (loaded by ``rasa run`` inside ``.venv-rasa``).

They import only what rasa 3.6.21 ships. Every channel emits ONE client message per bot message:
``{"text", "buttons"?, "custom"?}`` (REST adds ``recipient_id``), with our metadata flat under
``custom`` (e.g. ``{"type": "faq_answer", "faq_id": ...}``).
"""
