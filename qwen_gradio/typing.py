"""Types for provider users, named as in gpt4free (``from qwen_gradio.typing import Messages``)."""

from __future__ import annotations

from ._core.messages import Message, Prompt
from .provider import AsyncResult

Messages = list[dict[str, str]]

__all__ = ["AsyncResult", "Message", "Messages", "Prompt"]
