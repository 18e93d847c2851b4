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

from collections.abc import AsyncGenerator, Iterator
from typing import Any

import llm
from pydantic import ConfigDict, Field

from ._client.streams import AsyncStream, Stream
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


def _messages(prompt: Any) -> list[dict[str, str]]:
    """The chain llm sends this turn (history included), as OpenAI-style messages."""
    from llm.parts import TextPart

    messages = []
    for message in prompt.messages:
        if message.role not in ("system", "user", "assistant"):
            raise llm.ModelError(f"qwen2.5-max takes no {message.role} messages")
        text = "".join(p.text for p in message.parts if isinstance(p, TextPart))
        if any(not isinstance(p, TextPart) for p in message.parts):
            raise llm.ModelError("qwen2.5-max takes text only (no attachments or tools)")
        messages.append({"role": message.role, "content": text})
    return messages


def _record_usage(stream: Stream | AsyncStream, response: Any) -> None:
    if stream.usage is not None:
        response.set_usage(input=stream.usage.prompt_tokens, output=stream.usage.completion_tokens)
    if stream.space:
        response.response_json = {"space": stream.space, "attempts": stream.attempts}


class QwenModel(llm.Model):
    """Qwen2.5-Max through its Hugging Face Space (or a pool of Spaces like it)."""

    model_id = MODEL_ID
    can_stream = True
    Options = QwenOptions  # type: ignore[assignment]  # llm's way: a subclass of Options

    def execute(self, prompt: Any, stream: bool, response: Any, conversation: Any) -> Iterator[str]:
        options = prompt.options
        try:
            client = _client(options)
            with client.stream(_messages(prompt), options=_space_options(options)) as reply:
                yield from reply
                _record_usage(reply, response)
        except QwenGradioError as error:
            raise llm.ModelError(f"{type(error).__name__}: {error.message}") from error


class AsyncQwenModel(llm.AsyncModel):
    """The async twin of QwenModel (``llm.get_async_model("qwen2.5-max")``)."""

    model_id = MODEL_ID
    can_stream = True
    Options = QwenOptions  # type: ignore[assignment]  # llm's way: a subclass of Options

    async def execute(
        self, prompt: Any, stream: bool, response: Any, conversation: Any
    ) -> AsyncGenerator[str, None]:
        options = prompt.options
        try:
            client = _client(options)
            async with client.astream(_messages(prompt), options=_space_options(options)) as reply:
                async for delta in reply:
                    yield delta
                _record_usage(reply, response)
        except QwenGradioError as error:
            raise llm.ModelError(f"{type(error).__name__}: {error.message}") from error


@llm.hookimpl
def register_models(register: Any) -> None:
    """llm's hook: the model, sync and async, with its aliases."""
    register(QwenModel(), AsyncQwenModel(), aliases=ALIASES)
