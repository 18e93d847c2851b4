"""The I/O-free core of a streamed reply: the Space's queue messages in, typed events out.

``ReplyState.feed_line(line)`` takes one line of the Space's event stream and returns the events
it brings, in order: ``QueueStatus`` (where the job waits), ``TextDelta`` (new reply text, with
the whole text so far) and, last, ``ReplyCompleted``. ``ReplyState.feed(message)`` does the work
for one decoded message (``estimation``, ``process_starts``, ``process_generating``,
``process_completed``, ...) and returns the text it adds. Each reply's ``Job`` drives one
``ReplyState`` (the streams read it; the sync one keeps what it handed out in a ``HandedOut``);
nothing here touches the network. Whatever the Space sends that its protocol
does not allow (malformed JSON, an impossible diff) raises SpaceProtocolError. Both transports
feed it: the direct one line by line (``feed_line``), the gradio_client one with messages made from
the Job's updates (``feed_message`` on a ``ReplyState(diffs=False)``, whose outputs come whole).

Each ``process_generating`` step carries the whole Chatbot history, first in full and then as
diffs; the state applies them in place and compares the assistant's text with what it had:

- the new text extends the old one: the delta is the added suffix (whitespace, newlines, repeated
  words and any Unicode included); an identical snapshot adds nothing;
- the Space rewrote earlier text (it does not extend the old one): the delta is the new text past
  the longest common prefix, ``rewrites`` counts it, and ``text`` is the Space's new text. So
  ``"".join(deltas) == text`` holds exactly when ``rewrites == 0``.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import (
    QueueFullError,
    QwenGradioError,
    RateLimitedError,
    SpaceError,
    SpaceProtocolError,
    SpaceUnavailableError,
)
from .space import assistant_text
from .tools import ToolCall

if TYPE_CHECKING:
    from ..tokens import Usage

__all__ = [
    "HandedOut",
    "QueueStatus",
    "ReplyCompleted",
    "ReplyState",
    "Retrying",
    "SSELineDecoder",
    "StreamEvent",
    "TextDelta",
    "apply_diff",
    "decode_sse_line",
    "error_for_message",
    "rewrote",
]

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


class SSELineDecoder:
    """Splits a server-sent-event stream into lines at CRLF, LF or CR only, as the SSE format
    says. (``str.splitlines``, and so httpx's ``aiter_lines``, also splits at U+0085, U+2028,
    form feeds and more, which a reply may hold: its JSON event would arrive cut in two.)"""

    _BREAK = re.compile(r"\r\n|\r|\n")

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, text: str) -> list[str]:
        """The lines ``text`` completes. A CR at its very end is held back: the next text may
        begin with the LF of a CRLF."""
        data = self._pending + text
        held = ""
        if data.endswith("\r"):
            data, held = data[:-1], "\r"
        *lines, rest = self._BREAK.split(data)
        self._pending = rest + held
        return lines

    def flush(self) -> list[str]:
        """What is left when the stream ends (a last line without a line break)."""
        lines = self._BREAK.split(self._pending) if self._pending else []
        self._pending = ""
        if lines and lines[-1] == "":
            lines.pop()
        return lines


@dataclass(frozen=True)
class TextDelta:
    """New reply text: ``delta`` is what this step adds, ``text`` the whole reply so far."""

    delta: str
    text: str


@dataclass(frozen=True)
class ReplyCompleted:
    """The reply is complete; ``text`` is all of it, ``space`` the Space that answered (as the
    pool names it), ``usage`` its token counts (``qwen_gradio.tokens``; None without the
    tokenizer), ``finish_reason`` OpenAI's: "stop" (the Space ended it, or a ``stop`` sequence
    did), "length" (``max_tokens``) or "tool_calls"; ``tool_calls`` the calls it made."""

    text: str
    space: str = field(default="", compare=False)
    usage: Usage | None = field(default=None, compare=False)
    finish_reason: str = field(default="stop", compare=False)
    tool_calls: tuple[ToolCall, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Retrying:
    """The reply is tried again, before any of its text arrived: ``space`` failed with
    ``error``; attempt ``attempt + 1`` goes to ``next_space`` in ``wait`` seconds."""

    space: str
    error: QwenGradioError
    wait: float
    attempt: int
    next_space: str

    def describe(self) -> str:
        """One line for people: "queue full on a/b; trying c/d in 2.0 s"."""
        again = "trying again" if self.next_space == self.space else f"trying {self.next_space}"
        return f"{self.error.summary()} on {self.space}; {again} in {self.wait:.1f} s"


StreamEvent = TextDelta | QueueStatus | ReplyCompleted | Retrying | ToolCall


def decode_sse_line(line: str) -> dict[str, Any] | None:
    """The JSON message of one server-sent-event ``data:`` line; None for any other line.

    Raises SpaceProtocolError for a data line that is not a JSON object."""
    if not line.startswith("data:"):
        return None
    try:
        message = json.loads(line[5:])
    except ValueError:
        error = f"the Space sent an event that is not JSON: {line[:80]!r}"
        raise SpaceProtocolError(error) from None
    if not isinstance(message, dict):
        raise SpaceProtocolError(f"the Space sent an event that is not an object: {line[:80]!r}")
    return message


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


def _unquoted(message: Any) -> Any:
    """``'boom'`` -> ``boom``: gradio 4 reports ``gr.Error("boom")`` as ``repr("boom")``."""
    if isinstance(message, str) and len(message) >= 2 and message[0] == message[-1] in "'\"":
        try:
            value = ast.literal_eval(message)
        except (ValueError, SyntaxError):
            return message
        return value if isinstance(value, str) else message
    return message


def _common_prefix_length(a: str, b: str) -> int:
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length


def rewrote(old: str, new: str) -> bool:
    """Whether text ``new`` rewrites text ``old`` (does not just extend it)."""
    return not new.startswith(old)


class HandedOut:
    """What a reader has been handed of a reply, event by event: the sync ``Stream``'s view,
    which lags the job's own ``ReplyState`` by the events still on their way to it."""

    def __init__(self) -> None:
        self.text = ""
        self.status: QueueStatus | None = None
        self.completed = False
        self.rewrites = 0
        self.usage: Usage | None = None
        self.tool_calls: list[ToolCall] = []
        self.finish_reason: str | None = None

    def take(self, event: StreamEvent) -> None:
        if isinstance(event, TextDelta):
            self.rewrites += rewrote(self.text, event.text)
            self.text = event.text
        elif isinstance(event, QueueStatus):
            self.status = event
        elif isinstance(event, ToolCall):
            self.tool_calls.append(event)
        elif isinstance(event, ReplyCompleted):
            self.text, self.completed, self.usage = event.text, True, event.usage
            self.finish_reason = event.finish_reason


class ReplyState:
    """One reply's progress: the Space's latest output, the assistant text, the queue status."""

    def __init__(
        self, chatbot_output: int | None = None, *, diffs: bool = True, quoted_errors: bool = False
    ) -> None:
        self.begin(chatbot_output, diffs=diffs, quoted_errors=quoted_errors)

    def begin(
        self, chatbot_output: int | None, *, diffs: bool = True, quoted_errors: bool = False
    ) -> None:
        """Start over, for a job on a Space whose Chatbot is output ``chatbot_output`` (None:
        not known yet, no text is read)."""
        self.chatbot_output = chatbot_output
        self.diffs = diffs  # False: every process_generating carries the whole output
        self.quoted_errors = quoted_errors  # gradio 4 sends an app error's message as its repr()
        self.usage: Usage | None = None  # the reply's token counts, set once it is complete
        self.text = ""
        self.rewrites = 0
        self.status: QueueStatus | None = None
        self.completed = False
        self.ended = False  # the Space closed the event stream
        self.tool_calls: list[ToolCall] = []  # (a reply read without tools makes none)
        self.finish_reason: str | None = None
        self._outputs: list[Any] | None = None

    def feed_line(self, line: str) -> list[StreamEvent]:
        """Take one line of the event stream; return the events it brings, in order."""
        try:
            message = decode_sse_line(line)
        except SpaceProtocolError as error:
            error.partial_text = self.text
            raise
        if message is None:
            return []
        return self.feed_message(message)

    def feed_message(self, message: dict[str, Any]) -> list[StreamEvent]:
        """Take one decoded queue message; return the events it brings, in order."""
        if message.get("msg") == "close_stream":
            self.ended = True
            return []
        status, completed = self.status, self.completed
        delta = self.feed(message)
        events: list[StreamEvent] = []
        if self.status is not status and self.status is not None:
            events.append(self.status)
        if delta:
            events.append(TextDelta(delta, self.text))
        if self.completed and not completed:
            events.append(ReplyCompleted(self.text))
        return events

    def feed(self, message: dict[str, Any]) -> str:
        """Take one queue message; return the text it adds ("" if none).

        Raises the matching QwenGradioError (carrying ``text`` so far) when the message reports
        a failure, and SpaceProtocolError when it is not one the protocol allows.
        """
        try:
            return self._feed(message)
        except QwenGradioError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
            raise SpaceProtocolError(
                f"the Space sent a {message.get('msg')!r} message the protocol does not allow:"
                f" {type(error).__name__}: {error}",
                partial_text=self.text,
            ) from None

    def _feed(self, message: dict[str, Any]) -> str:
        kind = message.get("msg")
        if kind == "process_generating":
            data = (message.get("output") or {}).get("data") or []
            if self._outputs is None or not self.diffs:
                self._outputs = list(data)
            else:
                for index, diff in enumerate(data):
                    if index < len(self._outputs):
                        self._outputs[index] = apply_diff(self._outputs[index], diff)
            return self._advance()
        if kind == "process_completed":
            output = message.get("output") or {}
            if not message.get("success", True):
                error = output.get("error")
                if self.quoted_errors:
                    error = _unquoted(error)
                raise error_for_message(error, self.text)
            if "data" in output:
                self._outputs = list(output["data"])
            self.completed, self.finish_reason = True, "stop"
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
        chatbot = self.chatbot_output
        if not self._outputs or chatbot is None or chatbot >= len(self._outputs):
            return ""
        new = assistant_text(self._outputs[chatbot])
        old = self.text
        if new == old:
            return ""
        self.text = new
        if not rewrote(old, new):
            return new[len(old) :]
        self.rewrites += 1
        return new[_common_prefix_length(old, new) :]
