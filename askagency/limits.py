"""Size limits shared by the configuration (askagency.config) and the Rasa channels, which
cannot import the configuration (different Python environment)."""

from __future__ import annotations

# Longest citizen message the assistant reads (askagency.config ``max_message_chars``).
MAX_MESSAGE_CHARS = 2000
# Largest web request body (REST webhook, socket.io packet). A 2,000-character message is at
# most ~24 kB of JSON even when every character is an escaped surrogate pair.
MAX_WEB_BODY_BYTES = 64 * 1024
# Largest request Rasa's HTTP server reads at all (Sanic's REQUEST_MAX_SIZE, default 100 MB);
# above MAX_WEB_BODY_BYTES so the token-protected HTTP API keeps working.
MAX_REQUEST_BYTES = 1024 * 1024
