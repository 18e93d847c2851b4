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

from ._version import __version__
from .client import QwenClient
from .errors import (
    ContextLengthError,
    IncompatibleGradioClientError,
    InvalidMessagesError,
    InvalidOptionError,
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
from .messages import DEFAULT_SYSTEM, Conversation, to_conversation
from .options import ChatOption
from .provider import (
    AsyncGeneratorProvider,
    AsyncResult,
    ProviderModelMixin,
    Qwen_Qwen_2_5_Max,
    generate_session_hash,
)
from .settings import Settings, Space, Timeouts
from .space import DEFAULT_SPACE, ChatFormat, resolve_space_url
from .stream import QueueStatus, ReplyCompleted, Retrying, StreamEvent, TextDelta
from .streams import AsyncEvents, AsyncStream, Events, Stream
from .tokens import Usage

__all__ = [
    "DEFAULT_SPACE",
    "DEFAULT_SYSTEM",
    "AsyncEvents",
    "AsyncGeneratorProvider",
    "AsyncResult",
    "AsyncStream",
    "ChatFormat",
    "ChatOption",
    "ContextLengthError",
    "Conversation",
    "Events",
    "IncompatibleGradioClientError",
    "InvalidMessagesError",
    "InvalidOptionError",
    "InvalidSpaceError",
    "ModelNotSupportedError",
    "ProviderModelMixin",
    "QueueFullError",
    "QueueStatus",
    "QwenClient",
    "QwenGradioError",
    "Qwen_Qwen_2_5_Max",
    "RateLimitedError",
    "ReplyCompleted",
    "Retrying",
    "Settings",
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
    "Usage",
    "__version__",
    "generate_session_hash",
    "resolve_space_url",
    "to_conversation",
]

_logging.getLogger("qwen_gradio").addHandler(_logging.NullHandler())
