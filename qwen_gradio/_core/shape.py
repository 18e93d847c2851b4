"""What a reply is asked to be besides text: tool calls, ``stop`` sequences, a token limit.

``ReplyShape`` says what was asked; a ``Shaper`` reads the Space's text as it streams (``feed``
each delta, ``finish`` at the end) and gives what the reader gets: text pieces and
``ToolCall`` values (``_core.tools``), with ``done`` set once the reply must end early (a stop
sequence, the limit) and ``finish_reason`` as OpenAI says it: "stop", "length" or
"tool_calls". ``raw`` is the Space's text up to where it was cut: what the model wrote, and so
what its usage counts. I/O-free; the token limit counts with the functions it is given.

- ``stop``: the text ends before the first match of any sequence; a suffix that may begin one is
  held back until the next delta says (never shown, never lost).
- ``max_tokens``: the reply is counted in Qwen's tokens as it streams and cut at exactly the
  limit.
- ``parallel_tool_calls`` false: the reply ends at its first call (later ones are never handed
  out). ``missed_call`` says when a finished reply is not the call ``tool_choice`` asks for.
- ``response_format`` (``json_object``, ``json_schema``): asked of the model after the system
  prompt (``JsonFormat.instruction``); a code fence around the reply is taken off as it streams;
  at the end ``invalid`` says why the text is not a JSON object (or does not follow the schema,
  checked with ``jsonschema``), None when it is.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

from ..errors import InvalidArgumentError
from .messages import Conversation, Prompt, to_conversation
from .tools import Tool, ToolCall, ToolCallParser, check_tool_choice, check_tools

__all__ = [
    "MAX_STOP",
    "REPLY_ARGUMENTS",
    "ReplyArguments",
    "ReplyShape",
    "Shaper",
    "check_stop",
    "missed_call",
    "shaped_request",
]

MAX_STOP = 4  # sequences, as OpenAI


class ReplyArguments(TypedDict, total=False):
    """What a reply can be asked besides its messages (OpenAI's names and meanings)."""

    tools: Sequence[Mapping[str, Any]] | None  # OpenAI function tools
    tool_choice: str | Mapping[str, Any] | None  # "none", "auto", "required", a function
    parallel_tool_calls: bool | None  # False: at most one call (asked in words)
    stop: str | Sequence[str] | None  # up to 4 sequences
    max_tokens: int | None  # the reply's limit in Qwen's tokens
    response_format: Mapping[str, Any] | None  # {"type": "json_object"}, json_schema, text


#: Their names, in the order ReplyArguments lists them.
REPLY_ARGUMENTS = tuple(ReplyArguments.__annotations__)
FENCE = "```"


@dataclass(frozen=True)
class JsonFormat:
    """A reply asked to be a JSON object (``schema`` None) or one that follows ``schema``."""

    schema: Mapping[str, Any] | None = None
    name: str = ""

    def instruction(self) -> str:
        """What the system prompt asks, after the rest of it."""
        text = "\n\nAnswer with one JSON object and nothing else: no text before or after it."
        if self.schema is not None:
            schema = json.dumps(self.schema, ensure_ascii=False)
            text += f" It must follow this JSON schema:\n{schema}"
        return text

    def problem(self, text: str) -> str | None:
        """Why ``text`` is not the JSON asked for; None when it is."""
        try:
            value = json.loads(text)
        except ValueError as error:
            return f"the reply is not JSON ({error})"
        if not isinstance(value, dict):
            return "the reply is JSON but not an object"
        if self.schema is None:
            return None
        import jsonschema  # the schema extra

        found = jsonschema.validators.validator_for(self.schema)(self.schema).iter_errors(value)
        errors = sorted(found, key=lambda e: list(e.absolute_path))
        if not errors:
            return None
        where = "/".join(str(p) for p in errors[0].absolute_path) or "the object"
        return (
            f"the reply does not follow the schema {self.name!r}: at {where}: {errors[0].message}"
        )


def check_response_format(value: Any) -> JsonFormat | None:
    """OpenAI's ``response_format`` as a JsonFormat (None for text), its schema checked."""
    if value is None:
        return None

    def invalid(message: str) -> InvalidArgumentError:
        return InvalidArgumentError(message, param="response_format")

    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return JsonFormat()
    if kind != "json_schema":
        raise invalid("response_format must be of type 'text', 'json_object' or 'json_schema'")
    spec = value.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    if not isinstance(schema, Mapping):
        raise invalid("response_format's json_schema needs a 'schema' object")
    try:
        import jsonschema
    except ImportError:
        raise invalid(
            "json_schema needs the schema extra: pip install 'qwen-gradio[schema]'"
        ) from None
    try:
        jsonschema.validators.validator_for(schema).check_schema(dict(schema))
    except jsonschema.SchemaError as error:
        raise invalid(
            f"response_format's schema is not a valid JSON schema: {error.message}"
        ) from None
    return JsonFormat(schema, str(spec.get("name") or "schema"))


def check_max_tokens(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        message = f"max_tokens must be a whole number of 1 or more, not {value!r}"
        raise InvalidArgumentError(message, param="max_tokens")
    return value


def shaped_request(
    messages: Prompt, system: str | None = None, **asked: Unpack[ReplyArguments]
) -> tuple[Conversation, ReplyShape]:
    """``messages`` and what else a reply is asked, checked: the Conversation the Space gets
    (tools rendered into it) and the ReplyShape its reply is read with."""
    tools = check_tools(asked.get("tools"))
    choice = check_tool_choice(asked.get("tool_choice"), tools)
    parallel = asked.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        message = "parallel_tool_calls must be true or false"
        raise InvalidArgumentError(message, param="parallel_tool_calls")
    conversation = to_conversation(messages, system, tools, choice, parallel)
    stop, limit = check_stop(asked.get("stop")), check_max_tokens(asked.get("max_tokens"))
    json_format = check_response_format(asked.get("response_format"))
    if json_format is not None:
        system_prompt = conversation.system + json_format.instruction()
        conversation = dataclasses.replace(conversation, system=system_prompt)
    return conversation, ReplyShape(tools, stop, limit, choice, json_format, parallel)


def check_stop(stop: Any) -> tuple[str, ...]:
    """``stop`` (a string or up to ``MAX_STOP`` strings) as a tuple, checked."""
    if stop is None:
        return ()
    sequences = [stop] if isinstance(stop, str) else stop
    if not isinstance(sequences, (list, tuple)) or not all(isinstance(s, str) for s in sequences):
        raise InvalidArgumentError("stop must be a string or a list of strings", param="stop")
    if len(sequences) > MAX_STOP:
        message = f"stop takes up to {MAX_STOP} sequences, not {len(sequences)}"
        raise InvalidArgumentError(message, param="stop")
    if any(not s for s in sequences):
        raise InvalidArgumentError("stop holds an empty string", param="stop")
    return tuple(sequences)


@dataclass(frozen=True)
class ReplyShape:
    """What a reply is asked to be: ``tools`` it may call (already rendered into the prompt),
    with ``tool_choice`` and ``parallel_tool_calls``, ``stop`` sequences, ``max_tokens``, a JSON
    format."""

    tools: tuple[Tool, ...] = ()
    stop: tuple[str, ...] = ()
    max_tokens: int | None = None
    tool_choice: str | None = field(default=None, compare=False)
    json: JsonFormat | None = None
    parallel_tool_calls: bool | None = field(default=None, compare=False)

    @property
    def active(self) -> bool:
        """Whether the reply needs shaping (else its text goes out as the Space sends it)."""
        calls = bool(self.tools) and self.tool_choice != "none"
        asked = bool(self.stop) or self.max_tokens is not None or self.json is not None
        return calls or asked


def missed_call(
    shape: ReplyShape | None, calls: Sequence[ToolCall], finish_reason: str | None
) -> str | None:
    """Why a finished reply is not the call ``shape.tool_choice`` asks for ("required", or a
    function's name); None when it is, when none is asked, or when the reply was cut at
    ``max_tokens`` (its ``finish_reason`` says so already)."""
    choice = shape.tool_choice if shape is not None else None
    if choice in (None, "auto", "none") or finish_reason == "length":
        return None
    names = [call.name for call in calls]
    if choice == "required":
        return None if names else "tool_choice is 'required', but the reply called no function"
    if choice in names:
        return None
    called = ", ".join(repr(name) for name in names) if names else "no function"
    return f"tool_choice asked for a call of {choice!r}, but the reply called {called}"


def _partial(text: str, sequences: Sequence[str]) -> int:
    """How many characters at the end of ``text`` may begin one of ``sequences``."""
    longest = 0
    for sequence in sequences:
        for size in range(min(len(sequence) - 1, len(text)), longest, -1):
            if sequence.startswith(text[-size:]):
                longest = size
                break
    return longest


class Shaper:
    """One reply's shaping (see the module's docstring)."""

    def __init__(
        self,
        shape: ReplyShape,
        count: Callable[[str], int] | None = None,
        cut: Callable[[str, int], str] | None = None,
    ) -> None:
        self.shape = shape
        self.raw = ""  # the Space's text kept (up to a cut)
        self.done = False
        self.finish_reason = "stop"
        self.shown = ""  # the text handed out
        self.invalid: str | None = None  # why the reply is not the JSON asked for
        self.calls: list[ToolCall] = []  # handed out
        self._held = ""  # may begin a stop sequence
        self._bytes = 0  # of raw, in UTF-8
        self._stops = shape.stop
        self._lead: str | None = "" if shape.json is not None else None  # a JSON reply's start
        self._count, self._cut = count, cut
        calls = shape.tools if shape.tool_choice != "none" else ()
        self._parser = ToolCallParser(calls) if calls else None
        self._one_call = shape.parallel_tool_calls is False

    def feed(self, delta: str) -> list[str | ToolCall]:
        """The pieces ``delta`` (new text from the Space) brings."""
        if self.done:
            return []
        text = self._held + self._unfenced(delta)
        self._held = ""
        stop = self._stops
        if stop:
            found = [i for i in (text.find(s) for s in stop) if i >= 0]
            if found:
                text, self.done = text[: min(found)], True
            else:
                keep = _partial(text, stop)
                text, self._held = text[: len(text) - keep], text[len(text) - keep :]
        if self.shape.json is not None:  # trailing whitespace: held back
            kept = text.rstrip()
            text, self._held = kept, text[len(kept) :] + self._held
        text = self._limited(text)
        pieces: list[str | ToolCall] = [text]
        if self._parser is not None:
            pieces = self._parser.feed(text)
        shown = self._shown(pieces)
        if self.done:
            shown += self.finish()
        return shown

    def finish(self) -> list[str | ToolCall]:
        """What is left once the reply has ended (or been cut)."""
        lead, self._lead = self._lead or "", None
        held, self._held = lead + self._held, ""
        if self.shape.json is not None:  # a JSON reply ends where its JSON does
            held = held.rstrip()
        held = self._limited(held)
        pieces: list[str | ToolCall] = []
        if self._parser is not None:
            pieces = self._parser.feed(held) + self._parser.finish()
        elif held:
            pieces = [held]
        shown = self._shown(pieces)
        if self.calls and self.finish_reason != "length":
            self.finish_reason = "tool_calls"
        if self.shape.json is not None and not self.calls:
            self.invalid = self.shape.json.problem(self.shown.strip())
        return shown

    def _shown(self, pieces: list[str | ToolCall]) -> list[str | ToolCall]:
        """The pieces handed out: none after the first call when only one is allowed (the
        reply is then done)."""
        kept: list[str | ToolCall] = []
        for piece in pieces:
            if self._one_call and self.calls:
                break
            if isinstance(piece, ToolCall):
                self.calls.append(piece)
                self.done = self.done or self._one_call
            elif piece:
                self.shown += piece
            else:
                continue
            kept.append(piece)
        return kept

    def _unfenced(self, text: str) -> str:
        """A JSON reply's text without the code fence a model may put around it: the fence's
        first line is dropped (held back until it is known), its closing one ends the reply."""
        if self._lead is None:
            return text
        lead = (self._lead + text).lstrip()
        if not lead or (len(lead) < len(FENCE) and FENCE.startswith(lead)):
            self._lead = lead
            return ""
        if not lead.startswith(FENCE):
            self._lead = None
            return lead
        line_end = lead.find("\n")
        if line_end < 0:
            self._lead = lead
            return ""
        self._lead, self._stops = None, (*self._stops, FENCE)
        return lead[line_end + 1 :]

    def _limited(self, text: str) -> str:
        """``text`` added to ``raw``, cut at the token limit (then ``done``, "length")."""
        limit = self.shape.max_tokens
        whole = self.raw + text
        count, cut = self._count, self._cut
        self._bytes += len(text.encode())  # a token is at least a byte: fewer is never over
        over = limit is not None and self._bytes > limit and count and count(whole) > limit
        if over and cut and limit is not None:
            whole = cut(whole, limit)
            text = whole[len(self.raw) :] if whole.startswith(self.raw) else ""
            self.done, self.finish_reason, self._held = True, "length", ""
        self.raw = whole if whole.startswith(self.raw) else self.raw + text
        return text
