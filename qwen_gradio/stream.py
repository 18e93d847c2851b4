"""The I/O-free core of a streamed reply: the Space's queue messages in, text deltas out.

``ReplyState.feed(message)`` takes one decoded server-sent event of the Space's queue protocol
(``estimation``, ``process_starts``, ``process_generating``, ``process_completed``, ...) and returns
the new text it adds to the assistant's reply ("" when none). The sync and async streams both drive
one ``ReplyState`` each; nothing here touches the network.

Each ``process_generating`` step carries the whole Chatbot history, first in full and then as
diffs; the state applies them in place and compares the assistant's text with what it had:

- the new text extends the old one: the delta is the added suffix (whitespace, newlines, repeated
  words and any Unicode included); an identical snapshot adds nothing;
- the Space rewrote earlier text (it does not extend the old one): the delta is the new text past
  the longest common prefix, ``rewrites`` counts it, and ``text`` is the Space's new text. So
  ``"".join(deltas) == text`` holds exactly when ``rewrites == 0``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .errors import QueueFullError, RateLimitedError, SpaceError, SpaceUnavailableError
from .space import assistant_text

__all__ = ["QueueStatus", "ReplyState", "apply_diff", "decode_sse_line", "error_for_message"]

_RATE_LIMIT = re.compile(
    r"\b429\b|rate.?limit|too many requests|gpu quota|exceeded your .*quota|quota exceeded",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class QueueStatus:
    """Where the job stands in the Space's queue; ``rank`` 0 is next, ``eta`` in seconds."""

    rank: int | None
    queue_size: int | None
    eta: float | None
    started: bool = False  # the Space has started generating

    def describe(self) -> str:
        """A line for people: "Waiting in the Space's queue: 2 ahead of you, about 12 s…"."""
        if self.started:
            return "The Space is working on your message…"
        rank = self.rank or 0
        where = "you are next" if rank == 0 else f"{rank} ahead of you"
        eta = f", about {self.eta:.0f} s" if self.eta and self.eta >= 1 else ""
        return f"Waiting in the Space's queue: {where}{eta}…"


def decode_sse_line(line: str) -> dict[str, Any] | None:
    """The JSON message of one server-sent-event ``data:`` line; None for any other line."""
    if not line.startswith("data:"):
        return None
    return json.loads(line[5:])  # type: ignore[no-any-return]


def apply_diff(value: Any, diff: list[Any]) -> Any:
    """Apply gradio's output diff ``[[action, path, value], ...]`` in place; return the result."""
    for action, path, new in diff:
        if not path:
            if action == "replace":
                value = new
            elif action == "append":
                value = value + new
            else:
                raise ValueError(f"unsupported diff action {action!r} at the root")
            continue
        target = value
        for key in path[:-1]:
            target = target[key]
        key = path[-1]
        if action == "replace":
            target[key] = new
        elif action == "append":
            target[key] = target[key] + new
        elif action == "add":
            if isinstance(target, list):
                target.insert(int(key), new)
            else:
                target[key] = new
        elif action == "delete":
            del target[int(key) if isinstance(target, list) else key]
        else:
            raise ValueError(f"unknown diff action {action!r}")
    return value


def error_for_message(message: str | None, partial_text: str = "") -> SpaceError | RateLimitedError:
    """The error for an app failure the Space reported with ``message``."""
    if not message:
        return SpaceError(
            "the Space's app raised an error without a message (it does not show errors)",
            partial_text=partial_text,
        )
    if _RATE_LIMIT.search(message):
        return RateLimitedError(message, partial_text=partial_text)
    return SpaceError(message, partial_text=partial_text)


def _common_prefix_length(a: str, b: str) -> int:
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length


class ReplyState:
    """One reply's progress: the Space's latest output, the assistant text, the queue status."""

    def __init__(self, chatbot_output: int) -> None:
        self.chatbot_output = chatbot_output
        self.text = ""
        self.rewrites = 0
        self.status: QueueStatus | None = None
        self.completed = False
        self._outputs: list[Any] | None = None

    def feed(self, message: dict[str, Any]) -> str:
        """Take one queue message; return the text it adds ("" if none).

        Raises the matching QwenGradioError (carrying ``text`` so far) when the message reports
        a failure.
        """
        kind = message.get("msg")
        if kind == "process_generating":
            data = (message.get("output") or {}).get("data") or []
            if self._outputs is None:
                self._outputs = list(data)
            else:
                for index, diff in enumerate(data):
                    if index < len(self._outputs):
                        self._outputs[index] = apply_diff(self._outputs[index], diff)
            return self._advance()
        if kind == "process_completed":
            output = message.get("output") or {}
            if not message.get("success", True):
                raise error_for_message(output.get("error"), self.text)
            if "data" in output:
                self._outputs = list(output["data"])
            self.completed = True
            return self._advance()
        if kind == "estimation":
            self.status = QueueStatus(
                message.get("rank"), message.get("queue_size"), message.get("rank_eta")
            )
        elif kind == "process_starts":
            self.status = QueueStatus(0, None, message.get("eta"), started=True)
        elif kind == "queue_full":
            raise QueueFullError(
                "the Space's queue is full; try again later", partial_text=self.text
            )
        elif kind == "unexpected_error":
            raise error_for_message(message.get("message"), self.text)
        elif message.get("message") == "Server stopped unexpectedly.":
            raise SpaceUnavailableError("the Space stopped unexpectedly", partial_text=self.text)
        return ""

    def _advance(self) -> str:
        if not self._outputs or self.chatbot_output >= len(self._outputs):
            return ""
        new = assistant_text(self._outputs[self.chatbot_output])
        old = self.text
        if new == old:
            return ""
        self.text = new
        if new.startswith(old):
            return new[len(old) :]
        self.rewrites += 1
        return new[_common_prefix_length(old, new) :]
