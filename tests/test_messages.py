"""messages → (query, history, system): the documented rules, and typed errors for bad input."""

from __future__ import annotations

from typing import Any

import pytest

from qwen_gradio import (
    DEFAULT_SYSTEM,
    Conversation,
    InvalidMessagesError,
    QwenClient,
    to_conversation,
)


def test_prompt_string_is_one_user_message() -> None:
    conv = to_conversation("hi")
    assert (conv.query, conv.history, conv.system) == ("hi", (), DEFAULT_SYSTEM)


def test_system_messages_join_with_newline_after_the_system_argument() -> None:
    conv = to_conversation(
        [
            {"role": "system", "content": "one"},
            {"role": "user", "content": "q"},
            {"role": "system", "content": "two"},
            {"role": "user", "content": "q2"},
        ],
        system="first",
    )
    assert conv.system == "first\none\ntwo"
    assert conv.query == "q\n\nq2"


def test_empty_system_falls_back_to_the_default() -> None:
    conv = to_conversation([{"role": "system", "content": ""}, {"role": "user", "content": "q"}])
    assert conv.system == DEFAULT_SYSTEM


def test_turns_become_history_pairs() -> None:
    conv = to_conversation(
        [
            {"role": "user", "content": "u1"},
            {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "u2", "name": "bob"},
            {"role": "assistant", "content": "a2"},
            {"role": "user", "content": "q"},
        ]
    )
    assert conv.history == (("u1", "a1"), ("u2", "a2"))
    assert conv.query == "q"


def test_consecutive_messages_merge_and_empty_ones_drop() -> None:
    conv = to_conversation(
        [
            {"role": "assistant", "content": "greeting"},
            {"role": "user", "content": "u1"},
            {"role": "user", "content": ""},
            {"role": "user", "content": "u1b"},
            {"role": "assistant", "content": "a1"},
            {"role": "assistant", "content": "a1b"},
            {"role": "user", "content": "q"},
        ]
    )
    assert conv.history == ((None, "greeting"), ("u1\n\nu1b", "a1\n\na1b"))


def test_content_may_be_a_list_of_text_parts() -> None:
    conv = to_conversation(
        [
            {"role": "system", "content": [{"type": "text", "text": "Sys"}]},
            {"role": "user", "content": [{"type": "text", "text": "u1"}]},
            {"role": "assistant", "content": "a1"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "q, "}, {"type": "text", "text": "2"}],
            },
        ]
    )
    assert conv == Conversation("q, 2", (("u1", "a1"),), "Sys")


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        ([], "empty"),
        ({"role": "user", "content": "x"}, "not dict"),
        (None, "not NoneType"),
        (["hello"], "must be a dict"),
        ([{"role": "user"}], "no 'content'"),
        ([{"role": "user", "content": 5}], "must be a string"),
        ([{"role": "user", "content": None}], "must be a string"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}], "text only"),
        ([{"role": "user", "content": ["x"]}], r"\[0\] must be a dict"),
        ([{"role": "user", "content": [{"type": "text"}]}], "no 'text' string"),
        ([{"role": "user", "content": []}], "empty"),
        ([{"role": "robot", "content": "x"}], "role 'robot'"),
        ([{"content": "x"}], "role None"),
        ([{"role": "system", "content": "s"}], "no user message"),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "ends with"),
        ([{"role": "user", "content": "   "}], "empty"),
        ("", "empty"),
    ],
)
def test_bad_input_raises_a_typed_error(messages: Any, fragment: str) -> None:
    with pytest.raises(InvalidMessagesError, match=fragment) as info:
        to_conversation(messages)
    assert isinstance(info.value, ValueError)


def test_bad_input_is_refused_before_any_request() -> None:
    # Nothing listens on port 9: a request would raise SpaceUnavailableError, not this.
    client = QwenClient("http://127.0.0.1:9")
    with pytest.raises(InvalidMessagesError):
        client.stream([])
    with pytest.raises(InvalidMessagesError):
        client.astream([{"role": "user", "content": 1}])
    with pytest.raises(InvalidMessagesError):
        client.chat("   ")
    client.close()
