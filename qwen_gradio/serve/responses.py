"""OpenAI's Responses API for ``serve`` (``POST /v1/responses``): the request's shape, its input
items as chat messages, the ``response`` object and the streamed events, and the responses this
process made, kept (bounded) for ``previous_response_id``.

A response is one chat reply: ``input`` (a string, or message items whose content is a string
or text parts) after ``instructions`` (the system prompt) and, with ``previous_response_id``,
after the conversation that response ended. The stream is OpenAI's documented sequence:
``response.created``, ``response.in_progress``, ``response.output_item.added``,
``response.content_part.added``, ``response.output_text.delta``..., ``response.output_text.done``,
``response.content_part.done``, ``response.output_item.done``, ``response.completed`` (or
``response.failed``), each with its ``sequence_number``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import OrderedDict
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
    "tools",
    "tool_choice",
    "background",
    "prompt",
    "conversation",
    "reasoning",
)
STORED = 1000  # responses kept for previous_response_id, the oldest forgotten first


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
    metadata: dict[str, str] | None = None
    user: str | None = None
    options: dict[str, Any] | None = None  # qwen_gradio's own, as for chat completions


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


def input_messages(request: ResponseRequest) -> list[dict[str, str]]:
    """``input`` as chat messages (a ``developer`` message is a system message)."""
    if isinstance(request.input, str):
        return [{"role": "user", "content": request.input}]
    messages = []
    for k, item in enumerate(request.input):
        where = f"input[{k}]"
        if item.get("type", "message") != "message":
            raise ApiError(
                400,
                f"'{where}' is a {item.get('type')!r} item: this Space takes messages only",
                param=where,
            )
        role = item.get("role")
        if role not in ("user", "assistant", "system", "developer"):
            raise ApiError(400, f"'{where}.role' {role!r} is not a message role", param=where)
        content = _text_of(item.get("content"), where)
        messages.append({"role": "system" if role == "developer" else role, "content": content})
    return messages


class ResponseStore:
    """The conversations of the last ``STORED`` responses this process made."""

    def __init__(self, size: int = STORED) -> None:
        self.size = size
        self._kept: OrderedDict[str, list[dict[str, str]]] = OrderedDict()

    def before(self, response_id: str | None) -> list[dict[str, str]]:
        """The conversation ``response_id`` ended (none for None); 404 if not kept here."""
        if response_id is None:
            return []
        kept = self._kept.get(response_id)
        if kept is None:
            raise ApiError(
                404,
                f"Previous response with id '{response_id}' not found: this server keeps its"
                f" last {self.size} responses, and none made elsewhere.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        self._kept.move_to_end(response_id)
        return list(kept)

    def keep(self, response_id: str, conversation: list[dict[str, str]]) -> None:
        self._kept[response_id] = conversation
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)


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
    """One response's objects and events, in OpenAI's shapes."""

    def __init__(self, request: ResponseRequest) -> None:
        self.request = request
        self.id = f"resp_{uuid.uuid4().hex}"
        self.message_id = f"msg_{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.sequence = 0

    def message(self, text: str, status: str) -> dict[str, Any]:
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        return {
            "type": "message",
            "id": self.message_id,
            "status": status,
            "role": "assistant",
            "content": [part] if status == "completed" or text else [],
        }

    def response(
        self,
        status: str,
        text: str = "",
        usage: Usage | None = None,
        error: QwenGradioError | ApiError | None = None,
    ) -> dict[str, Any]:
        request = self.request
        output = [self.message(text, "completed")] if status == "completed" else []
        failed = None
        if error is not None:
            code = error.code if error.code is not None else type(error).__name__
            failed = {"code": code, "message": error.message}
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "model": request.model,
            "output": output,
            "output_text": text if status == "completed" else "",
            "instructions": request.instructions,
            "previous_response_id": request.previous_response_id,
            "error": failed,
            "incomplete_details": None,
            "parallel_tool_calls": False,
            "tool_choice": "none",
            "tools": [],
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_output_tokens": request.max_output_tokens,
            "metadata": request.metadata or {},
            "store": request.store,
            "text": {"format": {"type": "text"}},
            "usage": usage_object(usage),
        }

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

    def first_text(self) -> list[str]:
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        where = {"item_id": self.message_id, "output_index": 0, "content_index": 0}
        return [
            self.event(
                "response.output_item.added", output_index=0, item=self.message("", "in_progress")
            ),
            self.event("response.content_part.added", part=part, **where),
        ]

    def delta(self, text: str) -> str:
        where = {"item_id": self.message_id, "output_index": 0, "content_index": 0}
        return self.event("response.output_text.delta", delta=text, logprobs=[], **where)

    def closing(self, text: str, usage: Usage | None, started: bool) -> list[str]:
        where = {"item_id": self.message_id, "output_index": 0, "content_index": 0}
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        events = [] if started else self.first_text()
        return [
            *events,
            self.event("response.output_text.done", text=text, logprobs=[], **where),
            self.event("response.content_part.done", part=part, **where),
            self.event(
                "response.output_item.done", output_index=0, item=self.message(text, "completed")
            ),
            self.event("response.completed", response=self.response("completed", text, usage)),
        ]

    def failure(self, error: QwenGradioError | ApiError) -> str:
        return self.event("response.failed", response=self.response("failed", error=error))
