"""The I/O-free core: diffs, snapshots → deltas, and errors reported by the Space."""

from __future__ import annotations

from typing import Any

import pytest

from qwen_gradio import QueueFullError, RateLimitedError, SpaceError, SpaceUnavailableError
from qwen_gradio._core.reply import (
    QueueStatus,
    ReplyState,
    SSELineDecoder,
    apply_diff,
    decode_sse_line,
)


def generating(data: list[Any]) -> dict[str, Any]:
    return {"msg": "process_generating", "output": {"data": data}, "success": True}


def completed(data: list[Any]) -> dict[str, Any]:
    return {"msg": "process_completed", "output": {"data": data}, "success": True}


def parts(text: str) -> list[dict[str, str]]:
    return [{"type": "text", "text": text}]


def test_apply_diff_actions() -> None:
    value: Any = {"a": [1, 2], "s": "x"}
    value = apply_diff(
        value, [["append", ["s"], "yz"], ["add", ["a", 1], 9], ["delete", ["a", 0], None]]
    )
    assert value == {"a": [9, 2], "s": "xyz"}
    assert apply_diff("ab", [["append", [], "c"]]) == "abc"
    assert apply_diff("ab", [["replace", [], "new"]]) == "new"
    with pytest.raises(ValueError):
        apply_diff([], [["explode", [0], 1]])


def test_tuples_diffs_give_one_delta_per_step() -> None:
    state = ReplyState(chatbot_output=1)
    history = [["hi", "ha"]]
    deltas = [state.feed(generating(["", history, "sys"]))]
    for token in [" ", "ha", " ", "ha", "", "你好👋"]:
        deltas.append(state.feed(generating([[], [["append", [0, 1], token]], []])))
    deltas.append(state.feed(completed(["", [["hi", "ha ha ha你好👋"]], "sys"])))
    assert deltas == ["ha", " ", "ha", " ", "ha", "", "你好👋", ""]
    assert state.text == "ha ha ha你好👋" and state.completed and state.rewrites == 0


def test_message_parts_and_earlier_turns() -> None:
    state = ReplyState(chatbot_output=1)
    history = [
        {"role": "user", "content": parts("u1")},
        {"role": "assistant", "content": parts("old reply")},
        {"role": "user", "content": parts("q")},
        {"role": "assistant", "content": parts("new")},
    ]
    assert state.feed(generating(["", history, "s"])) == "new"
    assert (
        state.feed(generating([[], [["append", [3, "content", 0, "text"], " one"]], []])) == " one"
    )
    assert state.text == "new one"


def test_rewrite_yields_the_text_past_the_common_prefix() -> None:
    state = ReplyState(chatbot_output=0)
    deltas = [state.feed(generating([[["q", "Hello"]]]))]
    for snapshot in ["Hello wor▌", "Hello world"]:
        deltas.append(state.feed(generating([[["replace", [], [["q", snapshot]]]]])))
    assert deltas == ["Hello", " wor▌", "ld"]
    assert state.rewrites == 1 and state.text == "Hello world"


def test_identical_snapshot_yields_nothing() -> None:
    state = ReplyState(chatbot_output=0)
    assert state.feed(generating([[["q", "a"]]])) == "a"
    assert state.feed(generating([[]])) == ""
    assert state.feed(generating([[["replace", [0, 1], "a"]]])) == ""


def test_queue_status_is_tracked() -> None:
    state = ReplyState(chatbot_output=0)
    state.feed({"msg": "estimation", "rank": 3, "queue_size": 5, "rank_eta": 12.5})
    assert state.status == QueueStatus(3, 5, 12.5)
    state.feed({"msg": "process_starts", "eta": 1.0})
    assert state.status is not None and state.status.started


def test_app_error_keeps_the_partial_text() -> None:
    state = ReplyState(chatbot_output=0)
    state.feed(generating([[["q", "w1 w2"]]]))
    with pytest.raises(SpaceError, match="boom") as info:
        state.feed({"msg": "process_completed", "success": False, "output": {"error": "boom"}})
    assert info.value.partial_text == "w1 w2"


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"msg": "process_completed", "success": False, "output": {"error": None}}, SpaceError),
        (
            {
                "msg": "process_completed",
                "success": False,
                "output": {"error": "You have exceeded your GPU quota (60s left)."},
            },
            RateLimitedError,
        ),
        ({"msg": "unexpected_error", "message": "Too many requests"}, RateLimitedError),
        ({"msg": "queue_full"}, QueueFullError),
        ({"msg": "x", "message": "Server stopped unexpectedly."}, SpaceUnavailableError),
    ],
)
def test_failures_map_to_the_error_tree(message: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        ReplyState(chatbot_output=0).feed(message)


def test_decode_sse_line() -> None:
    assert decode_sse_line('data: {"msg": "heartbeat"}') == {"msg": "heartbeat"}
    assert decode_sse_line("") is None
    assert decode_sse_line(": comment") is None


def test_sse_lines_break_only_at_cr_lf_and_crlf() -> None:
    decoder = SSELineDecoder()
    chunks = ["data: a\u2028b\x85c\x0cd\r", "\ndata: e\r", "data: f\n\n", "data: g"]
    lines = [line for chunk in chunks for line in decoder.feed(chunk)] + decoder.flush()
    assert lines == ["data: a\u2028b\x85c\x0cd", "data: e", "data: f", "", "data: g"]


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_sse_lines_do_not_depend_on_chunking(size: int) -> None:
    stream = 'data: {"x": "\u2028"}\r\n\r\ndata: 2\rdata: 3\n\ndata: 4\r'
    decoder = SSELineDecoder()
    chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
    lines = [line for chunk in chunks for line in decoder.feed(chunk)] + decoder.flush()
    assert lines == ['data: {"x": "\u2028"}', "", "data: 2", "data: 3", "", "data: 4"]
