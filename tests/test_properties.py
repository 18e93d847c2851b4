"""Property: any input either streams from the Space or is refused, before any request, with
InvalidMessagesError (hypothesis generates the inputs, odd text and odd shapes included)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qwen_gradio import InvalidMessagesError, QwenClient, to_conversation

from .conftest import Replica

# Text of every kind: any code point, lone surrogates (undecodable bytes) included.
text = st.text(st.characters(codec=None), max_size=12)
part = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": text}),
    st.fixed_dictionaries({"type": st.sampled_from(["image_url", "input_audio"])}),
    text,
)
content = st.one_of(text, st.lists(part, max_size=3), st.none(), st.integers())
message = st.one_of(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "user", "assistant", "tool", ""]), "content": content}
    ),
    st.fixed_dictionaries({"role": st.just("user")}),
    text,
)
prompt = st.one_of(text, st.lists(message, max_size=5))


def is_command(query: str) -> bool:
    """Replies scripted by the replica (a slow or held reply, a tool round's answer) are not
    what this tests."""
    return query.lstrip().startswith(("/", "<tool_response>")) or "\n/" in query


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(messages=prompt)
def test_any_input_streams_or_is_refused_before_a_request(replica6: Replica, messages: Any) -> None:
    try:
        conversation = to_conversation(messages)
    except InvalidMessagesError:
        # Refused by the client too, before any request: nothing listens on port 9.
        with QwenClient("http://127.0.0.1:9") as nowhere, pytest.raises(InvalidMessagesError):
            nowhere.chat(messages)
        return
    if is_command(conversation.query):
        return
    run = replica6.next_run()
    with QwenClient(replica6.url) as client:
        reply = client.chat(messages)
    received = replica6.wait(run)
    assert received["query"] == conversation.query and received["outcome"] == "completed"
    assert reply.startswith("This is the offline replica of Qwen2.5-Max. You said:")
