"""Tools in Qwen2.5's own format: OpenAI ``tools`` in, the model's ``<tool_call>`` blocks out.

Qwen2.5's chat template (``tokenizer_config.json`` of the Qwen2.5 instruct models; the
"Hermes-style" tool use of Qwen's function-calling docs, which vLLM's ``hermes`` parser reads)
renders tools and calls as text, and the Space takes text: a system prompt, earlier turns and a
query. So this module renders what the template renders, word for word:

- the system prompt, then ``TOOLS_HEADER``, each tool as one JSON line (``json.dumps`` of the
  OpenAI tool object, as the template's ``tojson``), and ``TOOLS_FOOTER``;
- an assistant's calls as ``<tool_call>\\n{"name": ..., "arguments": ...}\\n</tool_call>`` blocks,
  one per line, after its text;
- tool results as one user turn of ``<tool_response>\\n...\\n</tool_response>`` blocks.

``tool_choice`` and ``parallel_tool_calls`` have no place in the template: they are asked for
in words after it (``choice_text``); "none" leaves the tools out. ``ToolCallParser`` reads the
streamed reply back into text and ``ToolCall`` values (see its docstring for what it accepts).
Nothing here does I/O.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidArgumentError, InvalidMessagesError

__all__ = [
    "CALL_CLOSE",
    "CALL_OPEN",
    "TOOLS_FOOTER",
    "TOOLS_HEADER",
    "Tool",
    "ToolCall",
    "ToolCallParser",
    "assistant_turn",
    "check_tool_choice",
    "check_tools",
    "tool_results_turn",
    "tools_system",
]

TOOLS_HEADER = (
    "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
TOOLS_FOOTER = (
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments"
    " within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)
CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
RESPONSE_OPEN, RESPONSE_CLOSE = "<tool_response>", "</tool_response>"
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_FENCE = re.compile(r"^```[A-Za-z]*\s*\n?(.*?)\n?\s*```$", re.DOTALL)


@dataclass(frozen=True)
class Tool:
    """One declared function: its name and the OpenAI tool object as given."""

    name: str
    spec: Mapping[str, Any]


@dataclass(frozen=True)
class ToolCall:
    """A call the model made: ``index`` in its reply, an ``id``, the function's ``name`` and its
    ``arguments`` as a JSON string (OpenAI's shape)."""

    index: int
    id: str
    name: str
    arguments: str

    def as_openai(self) -> dict[str, Any]:
        """OpenAI's ``tool_calls`` item."""
        function = {"name": self.name, "arguments": self.arguments}
        return {"id": self.id, "type": "function", "function": function}


def _invalid(param: str, message: str) -> InvalidArgumentError:
    return InvalidArgumentError(message, param=param)


def check_tools(tools: Any) -> tuple[Tool, ...]:
    """OpenAI ``tools`` (``{"type": "function", "function": {"name", "description",
    "parameters"}}``; the bare function object is taken too), checked."""
    if tools is None:
        return ()
    if not isinstance(tools, (list, tuple)):
        raise _invalid("tools", f"tools must be a list, not {type(tools).__name__}")
    checked: list[Tool] = []
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        if not isinstance(tool, Mapping):
            raise _invalid("tools", f"{where} must be a dict, not {type(tool).__name__}")
        if tool.get("type", "function") != "function":
            raise _invalid(
                "tools",
                f"{where} is a {tool.get('type')!r} tool: only function tools can be called",
            )
        function = tool.get("function", tool)
        name = function.get("name") if isinstance(function, Mapping) else None
        if not isinstance(name, str) or not _NAME.match(name):
            raise _invalid(
                "tools",
                f"{where} needs a function name of letters, digits, '_', '-', '.' or ':'"
                " (up to 64)",
            )
        if any(t.name == name for t in checked):
            raise _invalid("tools", f"{where}: the function {name!r} is declared twice")
        spec = tool if "function" in tool else {"type": "function", "function": dict(tool)}
        checked.append(Tool(name, spec))
    return tuple(checked)


def check_tool_choice(choice: Any, tools: Sequence[Tool]) -> str | None:
    """``tool_choice`` as one word, or the name of the one function to call: None (no
    tools), "none", "auto" (the default), "required" or a declared function's name."""
    if choice is None:
        return "auto" if tools else None
    if isinstance(choice, Mapping):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else choice.get("name")
        if not isinstance(name, str):
            raise _invalid("tool_choice", "tool_choice names no function")
        if name not in {t.name for t in tools}:
            raise _invalid(
                "tool_choice", f"tool_choice names {name!r}, which tools does not declare"
            )
        return name
    if choice not in ("none", "auto", "required"):
        raise _invalid(
            "tool_choice",
            f"tool_choice must be 'none', 'auto', 'required' or a function, not {choice!r}",
        )
    if choice == "required" and not tools:
        raise _invalid("tool_choice", "tool_choice is 'required' but tools declares none")
    return str(choice)


def choice_text(choice: str | None, parallel: bool | None) -> str:
    """``tool_choice`` and ``parallel_tool_calls`` asked for in words (the template has no
    place for them)."""
    text = ""
    if choice == "required":
        text += "\n\nIn this reply, call one or more of these functions."
    elif choice not in (None, "auto", "none"):
        text += f"\n\nIn this reply, call the function {choice}."
    if parallel is False:
        text += "\n\nCall at most one function in this reply."
    return text


def tools_system(
    system: str, tools: Sequence[Tool], choice: str | None, parallel: bool | None = None
) -> str:
    """The system prompt as Qwen2.5's template renders it with ``tools`` (none for "none")."""
    if not tools or choice == "none":
        return system
    lines = "".join("\n" + json.dumps(tool.spec, ensure_ascii=False) for tool in tools)
    return system + TOOLS_HEADER + lines + TOOLS_FOOTER + choice_text(choice, parallel)


def _arguments_json(arguments: Any) -> str:
    """A call's arguments as the template writes them: the object as JSON (OpenAI's JSON
    string is parsed first, as Qwen's docs do before applying the template)."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return json.dumps(arguments, ensure_ascii=False)  # as the template: a string
    return json.dumps(arguments, ensure_ascii=False)


def assistant_turn(content: str, tool_calls: Sequence[Mapping[str, Any]], where: str) -> str:
    """An assistant message with ``tool_calls`` as the template renders it."""
    blocks = []
    for number, call in enumerate(tool_calls):
        function = call.get("function", call) if isinstance(call, Mapping) else None
        name = function.get("name") if isinstance(function, Mapping) else None
        if not isinstance(name, str) or not name:
            raise InvalidMessagesError(f"{where}['tool_calls'][{number}] has no function name")
        arguments = _arguments_json(function.get("arguments", {}))
        blocks.append(f'{CALL_OPEN}\n{{"name": "{name}", "arguments": {arguments}}}\n{CALL_CLOSE}')
    return (content + "\n" if content else "") + "\n".join(blocks)


def tool_results_turn(results: Sequence[str]) -> str:
    """Consecutive tool results as the template renders them: one user turn."""
    return "\n".join(f"{RESPONSE_OPEN}\n{result}\n{RESPONSE_CLOSE}" for result in results)


def _new_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def parse_call(text: str, tools: Sequence[Tool]) -> tuple[str, str] | None:
    """The (name, arguments JSON) of one call's JSON, or None if it is not a call of a declared
    tool. Tolerant where models slip: a code fence around the JSON, ``arguments`` given as a
    JSON string, ``parameters`` for ``arguments``, none at all (``{}``)."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        call = json.loads(body)
    except ValueError:
        return None
    if not isinstance(call, dict) or call.get("name") not in {t.name for t in tools}:
        return None
    arguments = call.get("arguments", call.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return None
    if not isinstance(arguments, dict):
        return None
    return str(call["name"]), json.dumps(arguments, ensure_ascii=False)


def _held_back(text: str, tag: str) -> int:
    """How many characters at the end of ``text`` may begin ``tag`` (held back, not shown)."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class ToolCallParser:
    """Reads a streamed reply into text and tool calls (``feed`` each new piece of text,
    ``finish`` at the end; each returns text strings and ``ToolCall`` values, in order).

    Text streams until a ``<tool_call>`` begins; a suffix that may begin the tag (and trailing
    whitespace) is held back until the next piece says (never shown, never lost); the text
    before a call ends without trailing whitespace. A block's JSON becomes a call when it
    names a declared tool (``parse_call``); any other block stays text, tags and all. A reply
    that is nothing but such a JSON object (or one in a code fence) is a call too: while a reply
    starts as one might, it is held back until it ends. Whitespace between and after calls is
    dropped; other text after a call is text. A block not closed when the reply ends is a call
    if its JSON is one.
    """

    def __init__(self, tools: Sequence[Tool]) -> None:
        self.tools = tuple(tools)
        self.calls: list[ToolCall] = []
        self._pending = ""  # not handed out yet
        self._in_call = False
        self._started = False  # some non-blank text has come
        self._bare = False  # the reply starts as a bare JSON call might: held back
        self._gap = ""  # the whitespace before the open block

    def feed(self, text: str) -> list[str | ToolCall]:
        self._pending += text
        if not self._started and self._pending.strip():
            self._started = True
            self._bare = self._pending.lstrip()[:1] in ("{", "`")
        out: list[str | ToolCall] = []
        while not self._bare:
            if self._in_call:
                end = self._pending.find(CALL_CLOSE)
                if end < 0:
                    break
                body, self._pending = self._pending[:end], self._pending[end + len(CALL_CLOSE) :]
                self._in_call = False
                out.append(self._call(body, closed=True))
                continue
            start = self._pending.find(CALL_OPEN)
            if start >= 0:
                before = self._pending[:start]
                out.append(before.rstrip())
                self._gap = before[len(before.rstrip()) :]  # back if the block is no call
                self._pending = self._pending[start + len(CALL_OPEN) :]
                self._in_call = True
                continue
            keep = _held_back(self._pending, CALL_OPEN)  # and trailing whitespace: a call's
            shown = self._pending[: len(self._pending) - keep].rstrip()  # text ends before it
            out.append(shown)
            self._pending = self._pending[len(shown) :]
            break
        return self._tidy(out)

    def finish(self) -> list[str | ToolCall]:
        """What is left when the reply ends."""
        pending, self._pending = self._pending, ""
        if self._bare:
            self._bare = False
            parsed = parse_call(pending, self.tools)
            if parsed is not None:
                return [self._made(*parsed)]
            return self._tidy([]) + self.feed(pending) + self.finish()
        if self._in_call:
            self._in_call = False
            return self._tidy([self._call(pending, closed=False)])
        return self._tidy([pending])

    def _call(self, body: str, *, closed: bool) -> str | ToolCall:
        parsed = parse_call(body, self.tools)
        if parsed is None:
            return self._gap + CALL_OPEN + body + (CALL_CLOSE if closed else "")
        return self._made(*parsed)

    def _made(self, name: str, arguments: str) -> ToolCall:
        call = ToolCall(len(self.calls), _new_id(), name, arguments)
        self.calls.append(call)
        return call

    def _tidy(self, items: list[str | ToolCall]) -> list[str | ToolCall]:
        """Drop empty text, and blank text once a call has been made."""
        return [
            item
            for item in items
            if not isinstance(item, str) or (item and (not self.calls or item.strip()))
        ]
