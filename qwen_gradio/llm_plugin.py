"""The ``llm`` plugin (``pip install 'qwen-gradio[llm]'``): ``llm -m qwen2.5-max "..."`` streams
through ``QwenClient`` directly, sync and async (``llm``'s Python API).

The conversation llm keeps (``-c``, ``--cid``) reaches the Space as real history, ``-s`` as the
system prompt. Options (``-o name value``): ``space`` (an id or URL; several separated by
commas: a pool), ``hf_token``, ``proxy``, ``attempts``, and any of the Space's own chat options
(``-o model_size 32B``); unset, the client's settings come from the environment as everywhere
(``QWEN_GRADIO_SPACE``, ``HF_TOKEN``...). Each response records its token counts (Qwen's
tokenizer, when installed); a failure is an ``llm.ModelError`` with the Space's message.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import llm
from pydantic import ConfigDict, Field

from ._client.streams import AsyncStream, Stream
from ._core.reply import TextDelta
from ._core.tools import ToolCall
from .client import QwenClient, shared_client
from .errors import QwenGradioError
from .settings import Settings

__all__ = ["MODEL_ID", "AsyncQwenModel", "QwenModel", "register_models"]

MODEL_ID = "qwen2.5-max"
ALIASES = ("qwen-2.5-max", "qwen")
SETTINGS_OPTIONS = ("space", "hf_token", "proxy", "attempts")


class QwenOptions(llm.Options):
    """The client's settings, and any of the Space's own chat options (extra names)."""

    model_config = ConfigDict(extra="allow")

    space: str | None = Field(
        default=None, description="Space id or URL (several, comma-separated: a pool)"
    )
    hf_token: str | None = Field(default=None, description="Hugging Face token")
    proxy: str | None = Field(default=None, description="http(s) proxy URL")
    attempts: int | None = Field(default=None, description="tries per reply before its text")


def _client(options: QwenOptions) -> QwenClient:
    """The process's client for these settings (llm runs one prompt per process; a Python
    program making many keeps one pool)."""
    named = {name: getattr(options, name) for name in SETTINGS_OPTIONS if name != "space"}
    return shared_client(Settings.build(options.space, **named))


def _space_options(options: QwenOptions) -> dict[str, Any]:
    return dict(options.model_extra or {})


def _messages(prompt: Any) -> list[dict[str, Any]]:
    """The chain llm sends this turn (history, tool calls and results included), as OpenAI-style
    messages."""
    from llm.parts import TextPart, ToolCallPart, ToolResultPart

    messages: list[dict[str, Any]] = []
    for message in prompt.messages:
        if message.role not in ("system", "user", "assistant", "tool"):
            raise llm.ModelError(f"qwen2.5-max takes no {message.role} messages")
        if any(not isinstance(p, (TextPart, ToolCallPart, ToolResultPart)) for p in message.parts):
            raise llm.ModelError("qwen2.5-max takes text and tools only (no attachments)")
        for result in (p for p in message.parts if isinstance(p, ToolResultPart)):
            content = result.output if result.exception is None else f"Error: {result.exception}"
            messages.append(
                {"role": "tool", "tool_call_id": result.tool_call_id, "content": content}
            )
        if message.role == "tool":
            continue
        text = "".join(p.text for p in message.parts if isinstance(p, TextPart))
        turn: dict[str, Any] = {"role": message.role, "content": text}
        calls = [p for p in message.parts if isinstance(p, ToolCallPart)]
        if calls:
            turn["tool_calls"] = [_openai_call(call) for call in calls]
        messages.append(turn)
    return messages


def _openai_call(call: Any) -> dict[str, Any]:
    function = {"name": call.name, "arguments": json.dumps(call.arguments)}
    return {"id": call.tool_call_id, "type": "function", "function": function}


def _tools(prompt: Any) -> list[dict[str, Any]] | None:
    """llm's tools for this prompt, as OpenAI's function tools (None: no tools)."""
    tools = [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description or "",
                "parameters": tool.input_schema or {"type": "object", "properties": {}},
            },
        }
        for tool in prompt.tools or []
    ]
    return tools or None


def _called(response: Any, call: ToolCall) -> None:
    """Hand one of the reply's tool calls to llm, which runs it."""
    arguments = json.loads(call.arguments)
    response.add_tool_call(llm.ToolCall(name=call.name, arguments=arguments, tool_call_id=call.id))


def _record_usage(stream: Stream | AsyncStream, response: Any) -> None:
    if stream.usage is not None:
        response.set_usage(input=stream.usage.prompt_tokens, output=stream.usage.completion_tokens)
    if stream.space:
        response.response_json = {"space": stream.space, "attempts": stream.attempts}


class QwenModel(llm.Model):
    """Qwen2.5-Max through its Hugging Face Space (or a pool of Spaces like it)."""

    model_id = MODEL_ID
    can_stream = True
    supports_tools = True
    Options = QwenOptions  # type: ignore[assignment]  # llm's way: a subclass of Options

    def execute(self, prompt: Any, stream: bool, response: Any, conversation: Any) -> Iterator[str]:
        options = prompt.options
        try:
            client = _client(options)
            messages, space_options = _messages(prompt), _space_options(options)
            with client.stream(messages, options=space_options, tools=_tools(prompt)) as reply:
                for event in reply.events():
                    if isinstance(event, TextDelta):
                        yield event.delta
                    elif isinstance(event, ToolCall):
                        _called(response, event)
                _record_usage(reply, response)
        except QwenGradioError as error:
            raise llm.ModelError(f"{type(error).__name__}: {error.message}") from error


class AsyncQwenModel(llm.AsyncModel):
    """The async twin of QwenModel (``llm.get_async_model("qwen2.5-max")``)."""

    model_id = MODEL_ID
    can_stream = True
    supports_tools = True
    Options = QwenOptions  # type: ignore[assignment]  # llm's way: a subclass of Options

    async def execute(
        self, prompt: Any, stream: bool, response: Any, conversation: Any
    ) -> AsyncGenerator[str, None]:
        options = prompt.options
        try:
            client = _client(options)
            messages, space_options = _messages(prompt), _space_options(options)
            async with client.astream(
                messages, options=space_options, tools=_tools(prompt)
            ) as reply:
                async for event in reply.events():
                    if isinstance(event, TextDelta):
                        yield event.delta
                    elif isinstance(event, ToolCall):
                        _called(response, event)
                _record_usage(reply, response)
        except QwenGradioError as error:
            raise llm.ModelError(f"{type(error).__name__}: {error.message}") from error


@llm.hookimpl
def register_models(register: Any) -> None:
    """llm's hook: the model, sync and async, with its aliases."""
    register(QwenModel(), AsyncQwenModel(), aliases=ALIASES)
