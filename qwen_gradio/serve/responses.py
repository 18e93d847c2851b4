"""OpenAI's Responses API for ``serve`` (``POST /v1/responses``): the request's shape, its input
items as chat messages, the ``response`` object and the streamed events, and the responses made,
kept (bounded, for a day) in the client's state for ``previous_response_id``.

A response is one chat reply: ``input`` (a string, or message items whose content is a string
or text parts, and a tool round's ``function_call`` and ``function_call_output`` items) after
``instructions`` (the system prompt) and, with ``previous_response_id``, after the conversation
that response ended. Function ``tools`` (the Responses API's flat shape) are those of chat
completions (``_core.tools``): calls come out as ``function_call`` output items. The stream is
OpenAI's documented sequence: ``response.created``, ``response.in_progress``, then for the
text ``response.output_item.added``, ``response.content_part.added``,
``response.output_text.delta``..., ``response.output_text.done``, ``response.content_part.done``,
``response.output_item.done``, and for each call ``response.output_item.added``,
``response.function_call_arguments.delta``, ``response.function_call_arguments.done``,
``response.output_item.done``; last ``response.completed`` (``response.incomplete`` when
``max_output_tokens`` cut it, ``response.failed`` on an error), each with its
``sequence_number``.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._core.shape import ReplyArguments
from .._core.tools import ToolCall
from .._state import State
from ..errors import QwenGradioError
from ..tokens import Usage
from .schema import ApiError, validation_error

__all__ = [
    "ResponseRequest",
    "ResponseStore",
    "ResponseWriter",
    "input_messages",
    "response_request",
]

#: Request fields the Space cannot honour: refused (400) when set.
REFUSED_RESPONSE_FIELDS = (
    "background",
    "prompt",
    "conversation",
    "reasoning",
)
STORED = 1000  # responses kept for previous_response_id, the oldest forgotten first
KEPT_FOR = 24 * 3600.0  # seconds a response is kept


class ResponseRequest(BaseModel):
    """The fields of OpenAI's Responses request that this server reads or checks."""

    model_config = ConfigDict(extra="allow", strict=True)

    model: str = Field(min_length=1)
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    stream: bool = False
    previous_response_id: str | None = None
    store: bool = True
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_output_tokens: int | None = Field(default=None, ge=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: dict[str, Any] | None = (
        None  # {"format": {"type": "text" | "json_object" | "json_schema"}}
    )
    metadata: dict[str, str] | None = None
    user: str | None = None
    options: dict[str, Any] | None = None  # qwen_gradio's own, as for chat completions

    def asked(self) -> ReplyArguments:
        """What the reply is asked besides its input, in chat completions' terms."""
        choice = self.tool_choice
        if isinstance(choice, dict) and choice.get("type") == "function":
            choice = {"type": "function", "function": {"name": choice.get("name")}}
        return ReplyArguments(
            tools=[_chat_tool(tool, k) for k, tool in enumerate(self.tools or [])] or None,
            tool_choice=choice,
            parallel_tool_calls=self.parallel_tool_calls,
            max_tokens=self.max_output_tokens,
            response_format=_chat_format((self.text or {}).get("format")),
        )


def _chat_format(given: Any) -> dict[str, Any] | None:
    """The Responses API's ``text.format`` (flat) as chat completions' ``response_format``."""
    if not isinstance(given, dict) or given.get("type") != "json_schema":
        return given if isinstance(given, dict) else None
    spec = {k: given[k] for k in ("name", "schema", "strict") if k in given}
    return {"type": "json_schema", "json_schema": spec}


def _chat_tool(tool: dict[str, Any], index: int) -> dict[str, Any]:
    """A Responses API function tool (flat) as chat completions' (nested); other kinds of
    tool (web search, files...) are refused."""
    if tool.get("type") != "function":
        message = f"'tools[{index}]' is a {tool.get('type')!r} tool: only function tools work here"
        raise ApiError(400, message, param=f"tools[{index}]")
    function = {k: tool[k] for k in ("name", "description", "parameters") if k in tool}
    return {"type": "function", "function": function}


def response_request(data: Any) -> ResponseRequest:
    """The validated request, or ApiError (400)."""
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    for name in REFUSED_RESPONSE_FIELDS:
        value = data.get(name)
        if value and value not in ("none", "auto"):
            raise ApiError(400, f"'{name}' is not supported by this Space", param=name)
    try:
        return ResponseRequest.model_validate(data)
    except ValidationError as invalid:
        raise validation_error(invalid) from None


def _text_of(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise ApiError(400, f"'{where}.content' must be a string or a list of parts", param=where)
    texts = []
    for k, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in ("input_text", "output_text", "text") or not isinstance(
            part.get("text"), str
        ):
            raise ApiError(
                400,
                f"'{where}.content[{k}]' is a {kind!r} part: this Space takes text only",
                param=f"{where}.content[{k}]",
            )
        texts.append(part["text"])
    return "".join(texts)


def input_messages(request: ResponseRequest) -> list[dict[str, Any]]:
    """``input`` as chat messages: a ``developer`` message is a system message; ``function_call``
    items join the assistant message before them as its ``tool_calls``, and each
    ``function_call_output`` is a ``tool`` message; ``reasoning`` items are left out."""
    if isinstance(request.input, str):
        return [{"role": "user", "content": request.input}]
    messages: list[dict[str, Any]] = []
    for k, item in enumerate(request.input):
        where = f"input[{k}]"
        kind = item.get("type", "message")
        if kind == "function_call":
            call = _input_call(item, where)
            last = messages[-1] if messages else None
            if last is None or last["role"] != "assistant":
                last = {"role": "assistant", "content": ""}
                messages.append(last)
            last.setdefault("tool_calls", []).append(call)
        elif kind == "function_call_output":
            output = item.get("output")
            content = output if isinstance(output, str) else _text_of(output, where)
            messages.append(
                {"role": "tool", "tool_call_id": item.get("call_id"), "content": content}
            )
        elif kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise ApiError(400, f"'{where}.role' {role!r} is not a message role", param=where)
            content = _text_of(item.get("content"), where)
            messages.append({"role": "system" if role == "developer" else role, "content": content})
        elif kind != "reasoning":
            raise ApiError(
                400,
                f"'{where}' is a {kind!r} item: this Space takes messages and function calls",
                param=where,
            )
    return messages


def _input_call(item: dict[str, Any], where: str) -> dict[str, Any]:
    name, arguments = item.get("name"), item.get("arguments", "{}")
    if not isinstance(name, str) or not isinstance(arguments, str):
        raise ApiError(400, f"'{where}' needs a 'name' and 'arguments' string", param=where)
    function = {"name": name, "arguments": arguments}
    return {"id": item.get("call_id") or item.get("id"), "type": "function", "function": function}


class ResponseStore:
    """The conversations of the last ``STORED`` responses, each for ``KEPT_FOR`` seconds, in
    the client's state: this process's own, or shared by every process naming the same state
    (``Settings.state``), so that any of them continues a response another made."""

    def __init__(self, state: State, size: int = STORED, kept_for: float = KEPT_FOR) -> None:
        self.state, self.size, self.kept_for = state, size, kept_for

    async def before(self, response_id: str | None) -> list[dict[str, Any]]:
        """The conversation ``response_id`` ended (none for None); 404 if it is not kept."""
        if response_id is None:
            return []
        kept = await self.state.kept(f"response:{response_id}")
        if kept is None:
            where = (
                f"the servers sharing {self.state.url} keep"
                if self.state.url != "local"
                else "this server keeps (no shared state: none made by another process)"
            )
            raise ApiError(
                404,
                f"Previous response with id '{response_id}' not found: {where} the last"
                f" {self.size} responses, for {self.kept_for / 3600:g} h.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        conversation: list[dict[str, Any]] = json.loads(kept)
        return conversation

    async def keep(self, response_id: str, conversation: list[dict[str, Any]]) -> None:
        text = json.dumps(conversation, ensure_ascii=False)
        await self.state.keep(f"response:{response_id}", text, self.kept_for, self.size)


def usage_object(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    }


class ResponseWriter:
    """One response's objects and events, in OpenAI's shapes: its output items (a message with
    the text, a ``function_call`` per call, in the order they came) as they are made."""

    def __init__(self, request: ResponseRequest) -> None:
        self.request = request
        self.id = f"resp_{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.sequence = 0
        self.output: list[dict[str, Any]] = []
        self.text = ""  # of the open message
        self.open: int | None = None  # the output index of the message being written

    # -- the objects ----------------------------------------------------------------------------

    def response(
        self,
        status: str,
        usage: Usage | None = None,
        error: QwenGradioError | ApiError | None = None,
    ) -> dict[str, Any]:
        """The response object; "incomplete" when ``max_output_tokens`` cut the reply."""
        request = self.request
        failed = None
        if error is not None:
            code = error.code if error.code is not None else type(error).__name__
            failed = {"code": code, "message": error.message}
        ended = status in ("completed", "incomplete")
        texts = [
            part["text"]
            for item in self.output
            if item["type"] == "message"
            for part in item["content"]
        ]
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "model": request.model,
            "output": list(self.output) if ended else [],
            "output_text": "".join(texts) if ended else "",
            "instructions": request.instructions,
            "previous_response_id": request.previous_response_id,
            "error": failed,
            "incomplete_details": (
                {"reason": "max_output_tokens"} if status == "incomplete" else None
            ),
            "parallel_tool_calls": request.parallel_tool_calls is not False,
            "tool_choice": request.tool_choice or ("auto" if request.tools else "none"),
            "tools": request.tools or [],
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_output_tokens": request.max_output_tokens,
            "metadata": request.metadata or {},
            "store": request.store,
            "text": request.text or {"format": {"type": "text"}},
            "usage": usage_object(usage),
        }

    def whole(
        self, text: str, calls: list[ToolCall], usage: Usage | None, reason: str | None
    ) -> dict[str, Any]:
        """The response of a reply read whole (of its last try, when it was asked again)."""
        message = (
            [_message(f"msg_{uuid.uuid4().hex}", text, "completed")] if text or not calls else []
        )
        self.output = message + [_function_call(call) for call in calls]
        return self.response(_status(reason), usage)

    # -- the stream ---------------------------------------------------------------------------

    def event(self, kind: str, **fields: Any) -> str:
        """One server-sent event of the stream."""
        body = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return f"event: {kind}\ndata: {json.dumps(body, ensure_ascii=False)}\n\n"

    def opening(self) -> list[str]:
        created = self.response("in_progress")
        return [
            self.event("response.created", response=created),
            self.event("response.in_progress", response=created),
        ]

    def delta(self, text: str) -> list[str]:
        """Events for new text (the message item opened first, if it is not)."""
        events = self._opened() if self.open is None else []
        self.text += text
        where = {"item_id": self.output[self.open]["id"], "output_index": self.open}  # type: ignore[index]
        events.append(
            self.event(
                "response.output_text.delta", delta=text, logprobs=[], content_index=0, **where
            )
        )
        return events

    def call(self, call: ToolCall) -> list[str]:
        """Events for a call: its item added, its arguments, done."""
        events = self._closed()
        item = _function_call(call)
        index = len(self.output)
        self.output.append(item)
        where = {"item_id": item["id"], "output_index": index}
        return [
            *events,
            self.event(
                "response.output_item.added",
                output_index=index,
                item={**item, "arguments": "", "status": "in_progress"},
            ),
            self.event("response.function_call_arguments.delta", delta=call.arguments, **where),
            self.event("response.function_call_arguments.done", arguments=call.arguments, **where),
            self.event("response.output_item.done", output_index=index, item=item),
        ]

    def closing(self, usage: Usage | None, reason: str | None) -> list[str]:
        """The last events: the message closed (an empty one if nothing came), the response."""
        events = self._opened() if not self.output else []
        events += self._closed()
        status = _status(reason)
        kind = "response.incomplete" if status == "incomplete" else "response.completed"
        return [*events, self.event(kind, response=self.response(status, usage))]

    def failure(self, error: QwenGradioError | ApiError) -> str:
        return self.event("response.failed", response=self.response("failed", error=error))

    def _opened(self) -> list[str]:
        self.open, self.text = len(self.output), ""
        item = _message(f"msg_{uuid.uuid4().hex}", "", "in_progress")
        self.output.append(item)
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        where = {"item_id": item["id"], "output_index": self.open, "content_index": 0}
        return [
            self.event("response.output_item.added", output_index=self.open, item=item),
            self.event("response.content_part.added", part=part, **where),
        ]

    def _closed(self) -> list[str]:
        if self.open is None:
            return []
        index, text = self.open, self.text
        item = self.output[index] = _message(self.output[index]["id"], text, "completed")
        part = item["content"][0]
        where = {"item_id": item["id"], "output_index": index, "content_index": 0}
        self.open = None
        return [
            self.event("response.output_text.done", text=text, logprobs=[], **where),
            self.event("response.content_part.done", part=part, **where),
            self.event("response.output_item.done", output_index=index, item=item),
        ]


def _status(reason: str | None) -> str:
    return "incomplete" if reason == "length" else "completed"


def _message(item_id: str, text: str, status: str) -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    content = [part] if status == "completed" or text else []
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _function_call(call: ToolCall) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": f"fc_{call.id.removeprefix('call_')}",
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments,
        "status": "completed",
    }
