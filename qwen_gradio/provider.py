"""gpt4free-compatible provider classes, and ``Qwen_Qwen_2_5_Max`` built on QwenClient.

The base classes keep the gpt4free semantics that matter to users: ``get_model`` (``""`` and
``"auto"`` mean the default, aliases resolve, anything else raises ModelNotSupportedError with no
network), ``create_async_generator`` (an async generator of text), and a sync
``create_completion`` built on it.

Unlike the original gpt4free provider, ``Qwen_Qwen_2_5_Max`` sends the conversation's turns to the
Space as real history; ``history="flatten"`` reproduces the original's single prompt instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any, ClassVar, cast

from ._client.streams import AsyncStream
from ._core.messages import Prompt, to_conversation
from ._core.shape import REPLY_ARGUMENTS, ReplyArguments
from ._core.space import DEFAULT_SPACE, new_session_hash, resolve_space_url
from .client import QwenClient, shared_client
from .errors import InvalidMessagesError, ModelNotSupportedError
from .settings import SETTING_NAMES, Settings, checked_options
from .tokens import tokenizer_installed

__all__ = [
    "AsyncGeneratorProvider",
    "AsyncResult",
    "ProviderModelMixin",
    "Qwen_Qwen_2_5_Max",
    "flatten_prompt",
    "generate_session_hash",
]


def generate_session_hash() -> str:
    """A unique session hash: the first 8 hex digits of one uuid4 and 4 of another."""
    return new_session_hash()


class AsyncResult:
    """What ``create_async_generator`` returns: iterate it (gpt4free), or await it and iterate
    its ``generator`` (the seed's spelling). Either way, text fragments as the Space emits them.
    """

    def __init__(self, generator: AsyncStream, client: QwenClient) -> None:
        self.generator = generator
        self.client = client  # whose loop thread reads it for sync callers

    def __aiter__(self) -> AsyncIterator[str]:
        return self.generator

    def __await__(self) -> Generator[Any, None, AsyncResult]:
        async def itself() -> AsyncResult:
            return self

        return itself().__await__()

    async def aclose(self) -> None:
        """Stop early; cancels the job on the Space."""
        await self.generator.aclose()


class ProviderModelMixin:
    """Model names: a default, a list, and aliases."""

    default_model: ClassVar[str] = ""
    models: ClassVar[list[str]] = []
    model_aliases: ClassVar[dict[str, str]] = {}

    @classmethod
    def get_models(cls) -> list[str]:
        return list(cls.models)

    @classmethod
    def get_model(cls, model: str | None, **kwargs: Any) -> str:
        """The model name to use; raises ModelNotSupportedError for an unknown one."""
        if not model or model == "auto":
            return cls.default_model
        if model in cls.models:
            return model
        if model in cls.model_aliases:
            return cls.model_aliases[model]
        raise ModelNotSupportedError(
            f"Model is not supported: {model!r} in {cls.__name__}."
            f" Valid models: {', '.join(cls.models + list(cls.model_aliases))}"
        )


class AsyncGeneratorProvider:
    """A provider whose core is an async generator of text fragments."""

    label: ClassVar[str] = ""
    url: ClassVar[str] = ""
    working: ClassVar[bool] = False
    supports_stream: ClassVar[bool] = True
    supports_system_message: ClassVar[bool] = False
    supports_message_history: ClassVar[bool] = False

    @classmethod
    def create_async_generator(
        cls, model: str, messages: Prompt, proxy: str | None = None, **kwargs: Any
    ) -> AsyncResult:
        raise NotImplementedError

    @classmethod
    def create_completion(
        cls, model: str, messages: Prompt, stream: bool = True, **kwargs: Any
    ) -> Iterator[str]:
        """A sync generator over ``create_async_generator``; with ``stream=False`` it yields the
        whole reply once. Works inside a running event loop too. Bad input raises at once."""
        result = cls.create_async_generator(model, messages, **kwargs)
        return _sync(result, stream)

    @classmethod
    async def create_async(cls, model: str, messages: Prompt, **kwargs: Any) -> str:
        """The whole reply."""
        return "".join(
            [part async for part in cls.create_async_generator(model, messages, **kwargs)]
        )


def _sync(result: AsyncResult, stream: bool) -> Iterator[str]:
    """Iterate an AsyncResult from sync code, on its client's loop thread (the sync bridge that
    ``QwenClient.stream`` uses)."""
    with result.client.sync_stream(result.generator) as reply:
        if stream:
            yield from reply
        else:
            yield reply.until_done()


def _asked(kwargs: dict[str, Any]) -> ReplyArguments:
    """What gpt4free passes besides the messages that the reply honours (``REPLY_ARGUMENTS``:
    tools, stop, response_format...); ``max_tokens`` only where Qwen's tokenizer is installed
    to count it (gpt4free users pass it often; without the tokens extra it is ignored)."""
    asked: dict[str, Any] = {
        name: kwargs[name] for name in REPLY_ARGUMENTS if kwargs.get(name) is not None
    }
    if "max_tokens" in asked and not tokenizer_installed():
        del asked["max_tokens"]
    return cast(ReplyArguments, asked)


def flatten_prompt(messages: Prompt) -> tuple[str, str]:
    """The original provider's (prompt, system): system messages joined into the system prompt,
    the rest formatted as "Role: content" lines ending in "Assistant:" (gpt4free's format_prompt).
    """
    conversation = to_conversation(messages)  # validates, and finds the system prompt
    if isinstance(messages, str):
        return messages, conversation.system
    dialogue = [m for m in messages if m["role"] != "system"]
    if len(dialogue) == 1:
        return str(dialogue[0]["content"]), conversation.system
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in dialogue]
    return "\n".join([*lines, "Assistant:"]), conversation.system


class Qwen_Qwen_2_5_Max(AsyncGeneratorProvider, ProviderModelMixin):  # gpt4free's name
    """Qwen2.5-Max through the Hugging Face Space ``Qwen/Qwen2.5-Max-Demo``.

    Example::

        async for part in Qwen_Qwen_2_5_Max.create_async_generator(
            model="qwen-qwen2-5-max", messages=[{"role": "user", "content": "Hi"}]
        ):
            print(part, end="")

    kwargs: ``settings=`` (a ``Settings``, whole), or the settings by name as ``QwenClient``
    takes them (``space=`` instead of the default Space, ``hf_token=``, ``timeout=``,
    ``transport=``, ...: ``qwen_gradio.settings.SettingsArguments``); ``options=`` (the Space's
    extra chat inputs for this reply, e.g. ``{"model_size": "32B"}``); ``history="flatten"``
    (one prompt, no history).

    ``model_spaces`` maps a model name to the Space that serves it and the options it needs, so a
    subclass can serve a family of Spaces built like the demo::

        class Qwen25(Qwen_Qwen_2_5_Max):
            label = "Qwen2.5 demo"
            default_model = "qwen-2.5-72b"
            models = ["qwen-2.5-72b", "qwen-2.5-7b"]
            model_aliases = {}
            model_spaces = {
                "qwen-2.5-72b": ("Qwen/Qwen2.5", {"model_size": "72B"}),
                "qwen-2.5-7b": ("Qwen/Qwen2.5", {"model_size": "7B"}),
            }
    """

    label: ClassVar[str] = "Qwen Qwen-2.5-Max"
    url: ClassVar[str] = resolve_space_url(DEFAULT_SPACE).rstrip("/")
    api_endpoint: ClassVar[str] = f"{url}/gradio_api/queue/join"
    working: ClassVar[bool] = True
    supports_stream: ClassVar[bool] = True
    supports_system_message: ClassVar[bool] = True
    supports_message_history: ClassVar[bool] = True
    default_model: ClassVar[str] = "qwen-qwen2-5-max"
    model_aliases: ClassVar[dict[str, str]] = {
        "qwen-2.5-max": default_model,
        "qwen-2-5-max": default_model,
    }
    models: ClassVar[list[str]] = [default_model]
    #: model name -> (Space id or URL, or None for the default; the options it needs)
    model_spaces: ClassVar[dict[str, tuple[str | None, dict[str, Any]]]] = {
        default_model: (None, {})
    }

    @classmethod
    def _client(cls, settings: Settings) -> QwenClient:
        """The process's client for these settings but options (each call passes its own)."""
        return shared_client(settings.replace(options={}))

    @classmethod
    def create_async_generator(
        cls, model: str, messages: Prompt, proxy: str | None = None, **kwargs: Any
    ) -> AsyncResult:
        """Stream the reply to ``messages`` as text fragments.

        Raises ModelNotSupportedError or InvalidMessagesError at once, before any request.
        """
        model = cls.get_model(model)
        if kwargs.get("media") or kwargs.get("images"):
            raise InvalidMessagesError("the Space takes text only: media and images are refused")
        model_space, model_options = cls.model_spaces.get(model, (None, {}))
        options = {**model_options, **checked_options(kwargs.pop("options", None))}
        settings = kwargs.pop("settings", None)
        named = {name: kwargs.pop(name) for name in SETTING_NAMES if name in kwargs}
        if proxy:
            named["proxy"] = proxy
        if settings is None:
            space = named.pop("space", None) or model_space
            settings = Settings.build(space, **named)
        elif not isinstance(settings, Settings):
            raise TypeError(f"settings must be a qwen_gradio.Settings, not {settings!r}")
        elif named:
            raise TypeError("pass either settings= or the settings themselves, not both")
        elif model_space is not None:  # the model names its own Space
            settings = settings.replace(space=model_space)
        history = kwargs.pop("history", "real")
        if history == "flatten":
            prompt, system = flatten_prompt(messages)
            conversation_input: Prompt = prompt
        elif history == "real":
            conversation_input, system = messages, None
        else:
            raise InvalidMessagesError(f"history must be 'real' or 'flatten', not {history!r}")
        client = cls._client(settings)
        asked = _asked(kwargs)
        # astream validates the input now; the stream itself is the iterator of text fragments
        stream = client.astream(conversation_input, system=system, options=options, **asked)
        return AsyncResult(stream, client)
