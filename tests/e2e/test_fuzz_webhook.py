"""Hypothesis fuzzing of Rasa's REST webhook on the real stack (our channel + Rasa + actions):
any body gets a 2xx/4xx, never a 500, and the bot keeps answering. Bounded by
``ASKAGENCY_FUZZ_EXAMPLES`` (default 5 -> 20 texts and 20 bodies; ``make fuzz`` raises it)."""

from __future__ import annotations

import json
import os
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from askagency.bot_messages import MessageType
from askagency.launcher import Stack
from tests.stack import RestClient, custom_of, signed_body

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXAMPLES = int(os.environ.get("ASKAGENCY_FUZZ_EXAMPLES", "5")) * 4
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
# Citizens' text: any Unicode (emoji, mixed scripts, control characters), long words, and the
# shapes that reach Rasa's intent shortcut.
TEXTS = (
    st.text(max_size=300)
    | st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=50).map(lambda t: "/" + t)
    | st.just("a" * 5000)
    | st.sampled_from(
        ["", "   ", "🧳✈️🔥", "صباح الخير can I bring 水", "\x00\x01\x02", "/ask_human{"]
    )
)


@FUZZ
@given(text=TEXTS)
def test_any_text_gets_a_reply_not_an_error(rest: RestClient, text: str) -> None:
    status, body = rest.post_raw(
        json.dumps(signed_body(f"fuzz-{uuid.uuid4().hex[:10]}", text)).encode()
    )
    assert status == 200, (status, body[:300], text[:80])
    assert isinstance(json.loads(body), list)


@FUZZ
@given(
    body=st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=40),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
        max_leaves=8,
    )
    | st.fixed_dictionaries(
        {"sender": st.one_of(st.text(max_size=30), st.integers(), st.none()), "message": st.text()},
        optional={
            "metadata": st.one_of(
                st.dictionaries(st.text(max_size=5), st.text(max_size=5)), st.text()
            )
        },
    )
)
def test_any_json_body_gets_2xx_or_4xx(rest: RestClient, body: object) -> None:
    status, raw = rest.post_raw(json.dumps(body).encode())
    assert status < 500, (status, raw[:300], body)


def test_bot_still_answers_after_fuzzing(stack: Stack, rest: RestClient) -> None:
    messages = rest.send(
        f"fuzz-after-{uuid.uuid4().hex[:8]}", "can I bring my laptop in my carry-on"
    )
    assert custom_of(messages)[0]["type"] == MessageType.FAQ_ANSWER
    assert stack.procs["rasa"].poll() is None and stack.procs["actions"].poll() is None
