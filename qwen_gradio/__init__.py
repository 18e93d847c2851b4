"""qwen_gradio: chat with Qwen2.5-Max, and Spaces built like its demo, from Python.

>>> from qwen_gradio import QwenClient
>>> with QwenClient() as client:                                    # doctest: +SKIP
...     print(client.chat("What is the capital of France?"))

``import qwen_gradio`` imports neither gradio nor gradio_client; the default (direct) transport
never needs gradio_client, which is imported only for ``transport="gradio_client"`` or a Space
whose protocol the direct transport does not speak.

Nothing is logged unless the application configures the ``qwen_gradio`` logger: failures that
are handled in the background (a cancellation the Space refused, a loop that would not stop in
time) are logged there at DEBUG level.
"""

import logging as _logging

from ._client.streams import AsyncEvents, AsyncStream, Events, Stream
from ._core.messages import DEFAULT_SYSTEM, Conversation, to_conversation
from ._core.options import ChatOption
from ._core.reply import QueueStatus, ReplyCompleted, Retrying, StreamEvent, TextDelta
from ._core.shape import ReplyArguments
from ._core.space import DEFAULT_SPACE, ChatFormat, resolve_space_url
from ._core.tools import ToolCall
from ._version import __version__
from .client import QwenClient
from .errors import (
    ContextLengthError,
    IncompatibleGradioClientError,
    InvalidArgumentError,
    InvalidMessagesError,
    InvalidOptionError,
    InvalidReplyError,
    InvalidSpaceError,
    ModelNotSupportedError,
    QueueFullError,
    QwenGradioError,
    RateLimitedError,
    SpaceError,
    SpaceProtocolError,
    SpaceUnavailableError,
    StreamClosedError,
    StreamTimeoutError,
)
from .settings import Settings, SettingsArguments, Space, Timeouts
from .tokens import Usage

__all__ = [
    "DEFAULT_SPACE",
    "DEFAULT_SYSTEM",
    "AsyncEvents",
    "AsyncStream",
    "ChatFormat",
    "ChatOption",
    "ContextLengthError",
    "Conversation",
    "Events",
    "IncompatibleGradioClientError",
    "InvalidArgumentError",
    "InvalidMessagesError",
    "InvalidOptionError",
    "InvalidReplyError",
    "InvalidSpaceError",
    "ModelNotSupportedError",
    "QueueFullError",
    "QueueStatus",
    "QwenClient",
    "QwenGradioError",
    "RateLimitedError",
    "ReplyArguments",
    "ReplyCompleted",
    "Retrying",
    "Settings",
    "SettingsArguments",
    "Space",
    "SpaceError",
    "SpaceProtocolError",
    "SpaceUnavailableError",
    "Stream",
    "StreamClosedError",
    "StreamEvent",
    "StreamTimeoutError",
    "TextDelta",
    "Timeouts",
    "ToolCall",
    "Usage",
    "__version__",
    "resolve_space_url",
    "to_conversation",
]

_logging.getLogger("qwen_gradio").addHandler(_logging.NullHandler())

#: gpt4free's shapes, importable here before 0.4: they live in ``qwen_gradio.provider`` now.
_MOVED_TO_PROVIDER = frozenset(
    {
        "AsyncGeneratorProvider",
        "AsyncResult",
        "ProviderModelMixin",
        "Qwen_Qwen_2_5_Max",
        "generate_session_hash",
    }
)


def __getattr__(name: str) -> object:
    """The provider's names, still importable from here, with a DeprecationWarning."""
    if name in _MOVED_TO_PROVIDER:
        import warnings

        from . import provider

        warnings.warn(
            f"import {name} from qwen_gradio.provider (the package's root holds the library)",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(provider, name)
    raise AttributeError(f"module 'qwen_gradio' has no attribute {name!r}")
