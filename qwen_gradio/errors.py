"""The exceptions qwen_gradio raises, as one tree::

    QwenGradioError
    ├── SpaceUnavailableError      the Space cannot be reached, or is sleeping, paused or building
    ├── SpaceError                 the Space's app raised; ``message`` is the Space's own text
    ├── QueueFullError             the Space's queue refused the job
    ├── RateLimitedError           HTTP 429, or the Space ran out of (GPU) quota
    ├── StreamTimeoutError         connect, first-token, idle or total timeout
    ├── StreamClosedError          iterating a stream after it was closed
    ├── SpaceProtocolError         the Space answered what its protocol does not allow
    ├── IncompatibleGradioClientError   the installed gradio_client is not one qwen_gradio fits
    ├── InvalidSpaceError          (also a ValueError) not a Space id or URL, not a Gradio app,
    │                              or not built like the Qwen demo; nothing else is contacted
    ├── InvalidMessagesError       (also a ValueError) bad input, raised before any request
    │   └── ContextLengthError     longer than the model's context window (its token count)
    ├── InvalidOptionError         (also a ValueError) an option the Space does not have, or a
    │                              value it does not allow; raised before any job is sent
    └── ModelNotSupportedError     (also a ValueError) a model name the provider does not serve

Errors raised while a reply streams carry what arrived before them in ``partial_text``, so a reply
cut short is never lost.

Each class carries its policy, which every front end reads instead of keeping a table of its own:

============================== ========= ====== ==== ======================================
class                          retryable  HTTP  exit  OpenAI ``code`` (``type``)
============================== ========= ====== ==== ======================================
SpaceUnavailableError          yes        503    3    space_unavailable (server_error)
SpaceError                     no         502    4    SpaceError (server_error)
QueueFullError                 yes        503    5    queue_full (server_error)
RateLimitedError               yes        429    6    rate_limited (rate_limit_error)
StreamTimeoutError             connect    504    7    timeout_<kind> (server_error)
InvalidMessagesError           no         400    2    (invalid_request_error, param messages)
ContextLengthError             no         400    2    context_length_exceeded (param messages)
InvalidOptionError             no         400    2    (invalid_request_error, param options)
ModelNotSupportedError         no         404    2    model_not_found (param model)
anything else                  no         502    1    the class name (server_error)
============================== ========= ====== ==== ======================================

``retryable``: trying again later (or on another Space) can help: the Space was busy or away,
not wrong. ``retry_after``: the wait the Space stated, from its ``Retry-After`` header or its
message ("retry in 0:01:23"), else None; ``default_wait`` is what a server tells its own clients
to wait when the Space stated none.
"""

from __future__ import annotations

import re
from typing import ClassVar

__all__ = [
    "ContextLengthError",
    "IncompatibleGradioClientError",
    "InvalidArgumentError",
    "InvalidMessagesError",
    "InvalidOptionError",
    "InvalidReplyError",
    "InvalidSpaceError",
    "ModelNotSupportedError",
    "QueueFullError",
    "QwenGradioError",
    "RateLimitedError",
    "SpaceError",
    "SpaceProtocolError",
    "SpaceUnavailableError",
    "StreamClosedError",
    "StreamTimeoutError",
    "stated_wait",
]


class QwenGradioError(Exception):
    """Base class of every error qwen_gradio raises.

    ``partial_text`` is the reply text received before the error ("" when none was);
    ``retry_after`` the wait the Space stated, in seconds (None when it stated none).
    """

    #: Trying again later, or on another Space, can help.
    retryable: bool = False
    #: The HTTP status an OpenAI-compatible server answers with, before the first token.
    http_status: ClassVar[int] = 502
    #: OpenAI's error ``type``.
    error_type: ClassVar[str] = "server_error"
    #: The request field at fault, for errors of bad input.
    param: str | None = None
    #: The ``qwen-gradio`` command's exit code.
    exit_code: ClassVar[int] = 1
    #: The wait, in seconds, to advise when the Space stated none (None: advise none).
    default_wait: ClassVar[float | None] = None
    #: The name of gpt4free's matching error class in ``g4f.errors`` (None: none matches).
    g4f_error: ClassVar[str | None] = None

    def __init__(
        self, message: str, *, partial_text: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.partial_text = partial_text
        self._retry_after = retry_after

    @property
    def retry_after(self) -> float | None:
        """Seconds the Space said to wait before trying again: its ``Retry-After`` header, else
        the wait its message names ("retry in 0:01:23", "… 42 seconds"), else None."""
        if self._retry_after is not None:
            return self._retry_after
        return stated_wait(self.message)

    @property
    def code(self) -> str | None:
        """OpenAI's error ``code`` for this error (None for errors of bad input)."""
        return type(self).__name__

    #: What happened, in a few words, for a line about a retry ("queue full").
    what: ClassVar[str] = "failed"

    def summary(self) -> str:
        """A few words for people: "queue full", "rate limited", "unavailable"."""
        return self.what


def stated_wait(message: str) -> float | None:
    """The wait a message states, in seconds: "h:mm:ss", or a number of seconds."""
    clock = re.search(r"\b(\d+):(\d\d):(\d\d)\b", message)
    if clock:
        hours, minutes, seconds = (int(part) for part in clock.groups())
        return float(hours * 3600 + minutes * 60 + seconds)
    plain = re.search(r"\b(\d+(?:\.\d+)?)\s*(?:s|sec|secs|seconds?)\b", message)
    return float(plain.group(1)) if plain else None


def retry_after_header(value: str | None) -> float | None:
    """A ``Retry-After`` header's wait in seconds (the delay-seconds form; None otherwise)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # an HTTP date: rare from a Space, and not worth a clock
    return seconds if seconds >= 0 else None


class SpaceUnavailableError(QwenGradioError):
    """The Space could not be reached, or is not running (sleeping, paused, building)."""

    retryable = True
    http_status = 503
    exit_code = 3
    what = "unavailable"
    g4f_error = "ResponseStatusError"

    @property
    def code(self) -> str:
        return "space_unavailable"


class SpaceError(QwenGradioError):
    """The Space's app raised an error; ``message`` is the Space's own text."""

    exit_code = 4
    what = "app error"
    g4f_error = "ResponseError"


class QueueFullError(QwenGradioError):
    """The Space's queue is full and did not take the job."""

    retryable = True
    http_status = 503
    exit_code = 5
    what = "queue full"
    default_wait = 10.0
    g4f_error = "RateLimitError"

    @property
    def code(self) -> str:
        return "queue_full"


class RateLimitedError(QwenGradioError):
    """The Space refused the request for rate or quota reasons (HTTP 429, GPU quota)."""

    retryable = True
    http_status = 429
    error_type = "rate_limit_error"
    exit_code = 6
    what = "rate limited"
    default_wait = 60.0
    g4f_error = "RateLimitError"

    @property
    def code(self) -> str:
        return "rate_limited"


class StreamTimeoutError(QwenGradioError):
    """A timeout ran out; ``kind`` is "connect", "first_token", "idle" or "total"."""

    http_status = 504
    exit_code = 7
    what = "timed out"
    g4f_error = "TimeoutError"

    def __init__(self, message: str, *, kind: str, partial_text: str = "") -> None:
        super().__init__(message, partial_text=partial_text)
        self.kind = kind
        self.retryable = kind == "connect"  # the Space did not answer: another may

    @property
    def code(self) -> str:
        return f"timeout_{self.kind}"


class SpaceProtocolError(QwenGradioError):
    """The Space sent something its protocol does not allow (malformed JSON, an impossible
    diff, a message that is not an object): a broken or impostor Space, not a busy one."""

    g4f_error = "ResponseError"


class InvalidReplyError(QwenGradioError):
    """The reply is not what ``response_format`` asked for (JSON, or JSON that follows the
    schema); the message says why. A whole reply is asked once more before this is raised."""

    g4f_error = "ResponseError"

    @property
    def code(self) -> str:
        return "invalid_reply"


class StreamClosedError(QwenGradioError):
    """The stream was closed; it yields nothing more."""


class IncompatibleGradioClientError(QwenGradioError):
    """The installed gradio_client lacks what qwen_gradio relies on."""


class InvalidSpaceError(QwenGradioError, ValueError):
    """The Space given is not a Space id or URL, not a Gradio app, or has no chat endpoint like
    the Qwen demo's; raised before any job is sent."""


class InvalidMessagesError(QwenGradioError, ValueError):
    """The messages (or prompt) cannot be sent; raised before any request."""

    http_status = 400
    error_type = "invalid_request_error"
    exit_code = 2
    param = "messages"

    @property
    def code(self) -> str | None:
        return None


class InvalidArgumentError(InvalidMessagesError):
    """One of a reply's arguments besides its messages (``tools``, ``tool_choice``,
    ``parallel_tool_calls``, ``stop``, ``max_tokens``) cannot be used, ``param`` says which;
    raised before any request."""

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(message)
        self.param = param


class ContextLengthError(InvalidMessagesError):
    """The conversation is longer than the model takes: ``tokens`` (counted with Qwen's own
    tokenizer, ``qwen_gradio.tokens``) over ``limit``; raised before any request, as OpenAI
    refuses such a request."""

    def __init__(self, message: str, *, tokens: int, limit: int) -> None:
        super().__init__(message)
        self.tokens, self.limit = tokens, limit

    @property
    def code(self) -> str:
        return "context_length_exceeded"


class InvalidOptionError(QwenGradioError, ValueError):
    """An option (an extra input of the Space's chat event, such as a model-size radio) that the
    Space does not have, or a value it does not allow; raised before any job is sent."""

    http_status = 400
    error_type = "invalid_request_error"
    exit_code = 2
    param = "options"

    @property
    def code(self) -> str | None:
        return None


class ModelNotSupportedError(QwenGradioError, ValueError):
    """The provider does not serve this model name."""

    http_status = 404
    error_type = "invalid_request_error"
    exit_code = 2
    param = "model"
    g4f_error = "ModelNotFoundError"

    @property
    def code(self) -> str:
        return "model_not_found"
