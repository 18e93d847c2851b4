"""What one Space is: where it lives, the chat endpoint its config declares, the history format it
speaks, and how a Conversation goes in and assistant text comes out. No I/O here.
"""

from __future__ import annotations

import enum
import os
import re
from dataclasses import dataclass
from typing import Any

from .errors import InvalidSpaceError
from .messages import Conversation

__all__ = [
    "DEFAULT_SPACE",
    "SPACE_ENV",
    "ChatEndpoint",
    "ChatFormat",
    "assistant_text",
    "check_gradio_config",
    "encode_history",
    "resolve_space_url",
]

DEFAULT_SPACE = "Qwen/Qwen2.5-Max-Demo"
SPACE_ENV = "QWEN_GRADIO_SPACE"
CHAT_API_NAME = "model_chat"

_SPACE_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def resolve_space_url(space: str | None = None) -> str:
    """The base URL (ending in "/") of a Space given by id ("owner/name") or URL.

    ``None`` means the ``QWEN_GRADIO_SPACE`` environment variable, else the Qwen2.5-Max Space.
    An id maps to ``https://<owner>-<name>.hf.space`` by Hugging Face's subdomain rule (lower
    case, "/", "." and "_" become "-"), with no hub API call. Anything else raises
    InvalidSpaceError (a ValueError).
    """
    space = space or os.environ.get(SPACE_ENV) or DEFAULT_SPACE
    space = space.strip()
    if space.startswith(("http://", "https://")):
        return space if space.endswith("/") else space + "/"
    if not _SPACE_ID.match(space):
        raise InvalidSpaceError(
            "space must be a Space id like 'Qwen/Qwen2.5-Max-Demo' or an http(s) URL,"
            f" not {space!r}"
        )
    subdomain = re.sub(r"[/._]", "-", space.lower())
    return f"https://{subdomain}.hf.space/"


def check_gradio_config(url: str, config: Any) -> None:
    """Raise InvalidSpaceError unless ``config`` (what ``url``'s /config answered) is a config of
    gradio 4 or later: the queue protocol qwen_gradio speaks. Checked before anything else is
    asked of the Space (gradio_client would send a config without a version to an outside
    service, taking it for gradio 3)."""
    if not isinstance(config, dict):
        raise InvalidSpaceError(f"{url} is not a Gradio app: its /config is not a JSON object")
    version = config.get("version")
    if not isinstance(version, str) or not version:
        raise InvalidSpaceError(f"{url} is not a Gradio app: its /config names no gradio version")
    major = version.split(".")[0]
    if not major.isdigit() or int(major) < 4:
        raise InvalidSpaceError(
            f"{url} runs gradio {version}; qwen_gradio speaks the queue protocol of gradio 4"
            " and later"
        )
    for key in ("components", "dependencies"):
        if not isinstance(config.get(key), list):
            raise InvalidSpaceError(f"{url} is not a Gradio app: its /config has no {key} list")


class ChatFormat(enum.Enum):
    """How a Space's Chatbot carries history."""

    TUPLES = "tuples"  # gradio 5 default: [[user, assistant], ...]
    MESSAGES = "messages"  # gradio 5 type="messages": [{"role", "content": str}, ...]
    MESSAGE_PARTS = "message_parts"  # gradio 6: content is [{"type": "text", "text": ...}]


@dataclass(frozen=True)
class ChatEndpoint:
    """The Space's chat event, as its config declares it."""

    fn_index: int
    trigger_id: int | None
    chatbot_output: int  # index of the Chatbot among the event's outputs
    chat_format: ChatFormat
    gradio_version: str
    protocol: str
    api_prefix: str  # e.g. "gradio_api/" (no leading slash, trailing slash)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ChatEndpoint:
        """Find the chat event (``/model_chat``) and read its layout from a Space's config.

        Raises ValueError when the config has no such event, or its inputs are not
        (text, Chatbot, text).
        """
        components = {c["id"]: c for c in config.get("components", [])}
        for index, dep in enumerate(config.get("dependencies", [])):
            if dep.get("api_name") == CHAT_API_NAME:
                fn_index = dep.get("id", index)
                break
        else:
            raise ValueError(f"the Space has no /{CHAT_API_NAME} endpoint")
        kinds = [components.get(i, {}).get("type") for i in dep["inputs"]]
        if kinds != ["textbox", "chatbot", "textbox"]:
            raise ValueError(
                f"/{CHAT_API_NAME} takes {kinds}, not (query, Chatbot history, system) as"
                " the Qwen demo template does"
            )
        chatbot_id = dep["inputs"][1]
        if chatbot_id not in dep["outputs"]:
            raise ValueError(f"/{CHAT_API_NAME} does not return its Chatbot")
        version = str(config.get("version", "0"))
        major = int(version.split(".")[0]) if version.split(".")[0].isdigit() else 0
        chatbot_type = components[chatbot_id].get("props", {}).get("type")
        if major >= 6:
            chat_format = ChatFormat.MESSAGE_PARTS
        elif chatbot_type == "messages":
            chat_format = ChatFormat.MESSAGES
        else:
            chat_format = ChatFormat.TUPLES
        targets = dep.get("targets") or []
        trigger = targets[0][0] if targets and isinstance(targets[0], (list, tuple)) else None
        prefix = str(config.get("api_prefix", "")).strip("/")
        return cls(
            fn_index=fn_index,
            trigger_id=trigger,
            chatbot_output=dep["outputs"].index(chatbot_id),
            chat_format=chat_format,
            gradio_version=version,
            protocol=str(config.get("protocol", "")),
            api_prefix=prefix + "/" if prefix else "",
        )

    def inputs(self, conversation: Conversation) -> list[Any]:
        """The event's input values: query, history in the Space's format, system."""
        return [
            conversation.query,
            encode_history(conversation.history, self.chat_format),
            conversation.system,
        ]


def encode_history(
    history: tuple[tuple[str | None, str | None], ...], chat_format: ChatFormat
) -> list[Any]:
    """Earlier turns in the history format the Space's Chatbot takes."""
    if chat_format is ChatFormat.TUPLES:
        return [[user, assistant] for user, assistant in history]
    encoded: list[dict[str, Any]] = []
    for user, assistant in history:
        for role, text in (("user", user), ("assistant", assistant)):
            if text is None:
                continue
            content: Any = text
            if chat_format is ChatFormat.MESSAGE_PARTS:
                content = [{"type": "text", "text": text}]
            encoded.append({"role": role, "content": content})
    return encoded


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text") or ""
            for part in content
            if isinstance(part, dict) and part.get("type", "text") == "text"
        )
    if isinstance(content, dict):  # a single part
        return str(content.get("text") or "")
    return ""


def assistant_text(history: Any) -> str:
    """The assistant's reply to the last user turn in a Chatbot value, in any format."""
    if not history:
        return ""
    last = history[-1]
    if isinstance(last, (list, tuple)):  # tuples: [user, assistant]
        reply = last[1] if len(last) > 1 else None
        return reply if isinstance(reply, str) else ""
    parts = []
    for message in reversed(history):
        if not isinstance(message, dict) or message.get("role") != "assistant":
            break
        parts.append(_message_text(message.get("content")))
    return "".join(reversed(parts))
