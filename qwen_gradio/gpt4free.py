"""``Qwen_Qwen_2_5_Max`` as a real gpt4free provider: for g4f's ``Client``, ``AsyncClient``,
``ChatCompletion`` and API server (``pip install 'qwen-gradio[g4f]'``).

Example::

    from g4f.client import Client
    from qwen_gradio.gpt4free import Qwen_Qwen_2_5_Max

    client = Client(provider=Qwen_Qwen_2_5_Max)
    print(client.chat.completions.create(model="qwen-2.5-max", messages=[...]).choices[0])

This module imports gpt4free (``import qwen_gradio`` does not). Its class subclasses gpt4free's own
``AsyncGeneratorProvider`` and ``ProviderModelMixin`` and delegates every reply to the standalone
``qwen_gradio.provider.Qwen_Qwen_2_5_Max``: one chunk per Space token, then a ``FinishReason``.
Errors are raised as classes that are both the qwen_gradio error and the gpt4free error a g4f
user catches (each error class names its counterpart in ``g4f_error``), with the Space's message
and ``partial_text`` kept.

``register()`` makes gpt4free resolve the name "Qwen_Qwen_2_5_Max" to this class (its API server,
``Client(provider="Qwen_Qwen_2_5_Max")``), replacing the broken class of that name which
gpt4free 0.5.x ships; ``python -m qwen_gradio.gpt4free`` starts gpt4free's API server with it.
"""

from __future__ import annotations

import argparse
import os
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

try:
    from g4f import errors as g4f_errors
    from g4f.providers import response as g4f_response
    from g4f.providers.base_provider import AsyncGeneratorProvider, ProviderModelMixin
    from g4f.providers.response import FinishReason, ProviderInfo
except ImportError as exc:  # pragma: no cover - exercised where gpt4free is absent
    raise ImportError(
        f"qwen_gradio.gpt4free needs gpt4free: pip install 'qwen-gradio[g4f]' ({exc})"
    ) from exc

from . import errors
from ._client.streams import AsyncStream
from ._core.messages import Prompt
from ._core.reply import TextDelta
from ._core.space import SPACE_ENV, resolve_space_url
from ._core.tools import ToolCall
from .provider import Qwen_Qwen_2_5_Max as Standalone

__all__ = [
    "G4fReply",
    "Qwen_Qwen_2_5_Max",
    "as_g4f_error",
    "gpt4free_provider",
    "main",
    "register",
]

_COMBINED: dict[type[errors.QwenGradioError], type[errors.QwenGradioError] | None] = {}


def _combined(kind: type[errors.QwenGradioError]) -> type[errors.QwenGradioError] | None:
    """The class that is both ``kind`` and its gpt4free counterpart (``kind.g4f_error``, a name
    in ``g4f.errors``), named like ``kind``; None when gpt4free has no counterpart."""
    if kind not in _COMBINED:
        g4f_kind = getattr(g4f_errors, kind.g4f_error or "", None)
        if not isinstance(g4f_kind, type) or not issubclass(g4f_kind, Exception):
            _COMBINED[kind] = None
        else:
            _COMBINED[kind] = type(kind.__name__, (kind, g4f_kind), {"__module__": __name__})
    return _COMBINED[kind]


def as_g4f_error(error: errors.QwenGradioError) -> errors.QwenGradioError:
    """``error`` as an instance that gpt4free's handlers recognise too (same message, same
    ``partial_text`` and attributes); errors with no gpt4free counterpart are returned as is."""
    kind = _combined(type(error))
    if kind is None:
        return error
    converted = kind.__new__(kind)
    converted.__dict__.update(error.__dict__)
    converted.args = error.args
    return converted


class Qwen_Qwen_2_5_Max(AsyncGeneratorProvider, ProviderModelMixin):  # type: ignore[misc]
    """Qwen2.5-Max through the Space ``Qwen/Qwen2.5-Max-Demo``, as a gpt4free provider.

    Takes the standalone provider's keyword arguments: ``space=``, ``hf_token=``, ``timeout=``,
    ``history="flatten"``, ``options=``, ``transport=``, ``proxy=``, and what a reply honours
    as OpenAI names it: ``tools``, ``tool_choice``, ``stop``, ``response_format``,
    ``max_tokens`` (with Qwen's tokenizer installed). With tools, gpt4free 8.8 hands them to
    this provider (``supports_native_tools``) rather than emulating them: the reply's calls
    come as one ``ToolCalls`` chunk, before ``FinishReason("tool_calls")``. Other extras
    (``api_key``, ``conversation``, ...) are handled by gpt4free or ignored.
    ``gpt4free_provider()`` makes one for another standalone provider class.
    """

    standalone: ClassVar[type[Standalone]] = Standalone  # the provider every call goes to
    label: ClassVar[str] = Standalone.label
    url: ClassVar[str] = Standalone.url
    api_endpoint: ClassVar[str] = Standalone.api_endpoint
    working: ClassVar[bool] = Standalone.working
    supports_native_tools: ClassVar[bool] = True  # gpt4free 8.8 passes tools through
    supports_stream: ClassVar[bool] = Standalone.supports_stream
    supports_system_message: ClassVar[bool] = Standalone.supports_system_message
    supports_message_history: ClassVar[bool] = Standalone.supports_message_history
    default_model: ClassVar[str] = Standalone.default_model
    model_aliases: ClassVar[dict[str, str]] = Standalone.model_aliases
    models: ClassVar[list[str]] = Standalone.models

    @classmethod
    def get_models(cls, **kwargs: Any) -> list[str]:
        return cls.standalone.get_models()

    @classmethod
    def get_model(cls, model: str | None, **kwargs: Any) -> str:
        """The model name to use; an unknown one raises ``ModelNotSupportedError``, which is
        also gpt4free's ``ModelNotFoundError``."""
        try:
            return cls.standalone.get_model(model)
        except errors.QwenGradioError as error:
            raise as_g4f_error(error).with_traceback(error.__traceback__) from None

    @classmethod
    def create_async_generator(
        cls, model: str, messages: Prompt, proxy: str | None = None, **kwargs: Any
    ) -> G4fReply:
        """Stream the reply: a ``ProviderInfo`` (this provider and the model), then text chunks
        as the Space emits them, then ``FinishReason("stop")``. Bad input raises at once."""
        try:
            result = cls.standalone.create_async_generator(model, messages, proxy=proxy, **kwargs)
        except errors.QwenGradioError as error:
            raise as_g4f_error(error).with_traceback(error.__traceback__) from None
        info = ProviderInfo(**cls.get_dict(), model=cls.standalone.get_model(model))
        return G4fReply(info, result.generator)


_COPIED = (
    "label",
    "url",
    "api_endpoint",
    "working",
    "supports_stream",
    "supports_system_message",
    "supports_message_history",
    "default_model",
    "model_aliases",
    "models",
)


def gpt4free_provider(standalone: type[Standalone]) -> type[Qwen_Qwen_2_5_Max]:
    """A gpt4free provider for a subclass of the standalone provider (one that maps its models
    to other Spaces of the template with ``model_spaces``), named like it::

        Qwen25 = gpt4free_provider(MyQwen25)   # then Client(provider=Qwen25), register(Qwen25)
    """
    attributes = {name: getattr(standalone, name) for name in _COPIED}
    return type(
        standalone.__name__,
        (Qwen_Qwen_2_5_Max,),
        {**attributes, "standalone": standalone, "__module__": standalone.__module__},
    )


class G4fReply:
    """The async iterator ``create_async_generator`` returns: text chunks, then the reply's
    tool calls (one ``ToolCalls`` chunk, where gpt4free has the class) and its
    ``FinishReason``. ``aclose()`` (or dropping it) before the end cancels the job on the
    Space. A class rather than an async generator, so that the event loop's shutdown never
    closes it while gpt4free's generators do."""

    def __init__(self, info: ProviderInfo, stream: AsyncStream) -> None:
        self._ready: list[Any] = [info]  # handed out first, in order
        self._stream = stream
        self._calls: list[dict[str, Any]] = []
        self._done = False

    def __aiter__(self) -> G4fReply:
        return self

    async def __anext__(self) -> Any:
        if self._ready:
            return self._ready.pop(0)
        if self._done:
            raise StopAsyncIteration
        try:
            while True:
                event = await self._stream.next_event()
                if isinstance(event, TextDelta):
                    return event.delta
                if isinstance(event, ToolCall):
                    self._calls.append(event.as_openai())
        except StopAsyncIteration:
            self._done = True
            calls = getattr(g4f_response, "ToolCalls", None)  # (gpt4free 0.5.x has none)
            if self._calls and calls is not None:
                self._ready.append(FinishReason(self._stream.finish_reason or "stop"))
                return calls(self._calls)
            return FinishReason(self._stream.finish_reason or "stop")
        except errors.QwenGradioError as error:
            self._done = True
            raise as_g4f_error(error).with_traceback(error.__traceback__) from None

    async def aclose(self) -> None:
        self._done = True
        await self._stream.aclose()


def register(provider: type = Qwen_Qwen_2_5_Max) -> None:
    """Make gpt4free resolve ``provider``'s name to it: ``Client(provider="Qwen_Qwen_2_5_Max")``,
    ``ChatCompletion.create(provider=...)`` and ``"provider"`` in API server requests. Replaces
    gpt4free 0.5.x's built-in class of the same name. Idempotent."""
    import g4f.Provider as registry

    name = provider.__name__
    loader = getattr(registry, "ProviderLoader", None)
    if loader is not None:  # gpt4free 6.x and later: a lazy loader with a cache of loaded classes
        loader.loaded[name] = provider
        loader.loaded[name.lower().replace("-", "").replace("_", "")] = provider
        if name not in loader.names:
            loader.names.append(name)
        return
    # gpt4free 0.5.x: a module-level map (ProviderUtils.convert is the same dict) and a list
    registry.__map__[name] = provider
    registry.__providers__[:] = [p for p in registry.__providers__ if p.__name__ != name]
    registry.__providers__.append(provider)
    setattr(registry, name, provider)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m qwen_gradio.gpt4free``: gpt4free's OpenAI-compatible API server, serving this
    provider by name and as its default."""
    parser = argparse.ArgumentParser(
        prog="python -m qwen_gradio.gpt4free",
        description="gpt4free's API server with the qwen_gradio provider Qwen_Qwen_2_5_Max.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=1337, help="port (default: 1337)")
    parser.add_argument("--space", help=f"Space id or URL (default: ${SPACE_ENV} or the real one)")
    args = parser.parse_args(argv)
    if args.space:
        try:
            resolve_space_url(args.space)
        except ValueError as error:
            parser.error(str(error))
        os.environ[SPACE_ENV] = args.space
    from g4f import debug

    with warnings.catch_warnings():  # g4f 0.5's API module uses names Starlette deprecated
        warnings.simplefilter("ignore")
        from g4f.api import AppConfig, run_api

    debug.version_check = False  # it would look the latest version up on the network
    register()
    AppConfig.set_config(provider=Qwen_Qwen_2_5_Max.__name__)
    run_api(host=args.host, port=args.port)


if __name__ == "__main__":
    main()
