"""handoff/rasa_api.py: which conversation ids reach Rasa's ``/conversations/<id>/...``.

Sanic 21 (Rasa 3.6) does not percent-decode that path part, so ids are sent unquoted and ids no
URL can carry are refused with a clear, permanent error (the real server's behaviour is tested
in tests/e2e/test_handoff_reserved_ids.py)."""

from __future__ import annotations

import pytest

from handoff.rasa_api import RasaError, conversation_path


@pytest.mark.parametrize(
    "conversation_id",
    ["+15551234567", "sms-15551234567", "a@b!$&'()*,;=:+c", "0f3c9e2a4b5d6e7f", "x~y_z.w"],
)
def test_reachable_ids_are_sent_as_they_are(conversation_id: str) -> None:
    assert conversation_path(conversation_id) == conversation_id


@pytest.mark.parametrize("conversation_id", ["", "a b", "a/b", "a?b", "a#b", "100%", "josé"])
def test_unreachable_ids_are_a_permanent_error(conversation_id: str) -> None:
    with pytest.raises(RasaError) as caught:
        conversation_path(conversation_id)
    assert caught.value.permanent and "cannot be addressed" in str(caught.value)
