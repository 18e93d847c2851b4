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
    ├── InvalidOptionError         (also a ValueError) an option the Space does not have, or a
    │                              value it does not allow; raised before any job is sent
    └── ModelNotSupportedError     (also a ValueError) a model name the provider does not serve

Errors raised while a reply streams carry what arrived before them in ``partial_text``, so a reply
cut short is never lost.
"""

from __future__ import annotations

import re

__all__ = [
    "IncompatibleGradioClientError",
    "InvalidMessagesError",
    "InvalidOptionError",
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

    ``partial_text`` is the reply text received before the error ("" when none was).
    """

    def __init__(self, message: str, *, partial_text: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.partial_text = partial_text

    @property
    def retry_after(self) -> float | None:
        """Seconds the Space said to wait before trying again ("retry in 0:01:23", "… 42
        seconds"), or None when its message names no wait."""
        return stated_wait(self.message)


def stated_wait(message: str) -> float | None:
    """The wait a message states, in seconds: "h:mm:ss", or a number of seconds."""
    clock = re.search(r"\b(\d+):(\d\d):(\d\d)\b", message)
    if clock:
        hours, minutes, seconds = (int(part) for part in clock.groups())
        return float(hours * 3600 + minutes * 60 + seconds)
    plain = re.search(r"\b(\d+(?:\.\d+)?)\s*(?:s|sec|secs|seconds?)\b", message)
    return float(plain.group(1)) if plain else None


class SpaceUnavailableError(QwenGradioError):
    """The Space could not be reached, or is not running (sleeping, paused, building)."""


class SpaceError(QwenGradioError):
    """The Space's app raised an error; ``message`` is the Space's own text."""


class QueueFullError(QwenGradioError):
    """The Space's queue is full and did not take the job."""


class RateLimitedError(QwenGradioError):
    """The Space refused the request for rate or quota reasons (HTTP 429, GPU quota)."""


class StreamTimeoutError(QwenGradioError):
    """A timeout ran out; ``kind`` is "connect", "first_token", "idle" or "total"."""

    def __init__(self, message: str, *, kind: str, partial_text: str = "") -> None:
        super().__init__(message, partial_text=partial_text)
        self.kind = kind


class SpaceProtocolError(QwenGradioError):
    """The Space sent something its protocol does not allow (malformed JSON, an impossible
    diff, a message that is not an object): a broken or impostor Space, not a busy one."""


class StreamClosedError(QwenGradioError):
    """The stream was closed; it yields nothing more."""


class IncompatibleGradioClientError(QwenGradioError):
    """The installed gradio_client lacks what qwen_gradio relies on."""


class InvalidSpaceError(QwenGradioError, ValueError):
    """The Space given is not a Space id or URL, not a Gradio app, or has no chat endpoint like
    the Qwen demo's; raised before any job is sent."""


class InvalidMessagesError(QwenGradioError, ValueError):
    """The messages (or prompt) cannot be sent; raised before any request."""


class InvalidOptionError(QwenGradioError, ValueError):
    """An option (an extra input of the Space's chat event, such as a model-size radio) that the
    Space does not have, or a value it does not allow; raised before any job is sent."""


class ModelNotSupportedError(QwenGradioError, ValueError):
    """The provider does not serve this model name."""
