"""What one Space is: where it lives, the chat endpoint its config declares (with any extra
inputs, its options), the history format it speaks, and how a Conversation goes in and assistant
text comes out. No I/O here.
"""

from __future__ import annotations

import enum
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidMessagesError, InvalidOptionError, InvalidSpaceError
from .messages import DEFAULT_SYSTEM, Conversation
from .options import ChatOption, snake

__all__ = [
    "DEFAULT_SPACE",
    "SPACE_ENV",
    "ChatEndpoint",
    "ChatFormat",
    "SpaceConnection",
    "assistant_text",
    "chat_endpoint",
    "check_gradio_config",
    "decode_history",
    "encode_history",
    "gradio_major",
    "new_session_hash",
    "parameter_names_in",
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


def new_session_hash() -> str:
    """A fresh session hash: 8 hex digits of one uuid4 and 4 of another (12 lowercase hex)."""
    return uuid.uuid4().hex[:8] + uuid.uuid4().hex[:4]


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
    if gradio_major(version) < 4:
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


def _kinds(components: dict[Any, Any], dep: dict[str, Any]) -> list[Any]:
    return [components.get(i, {}).get("type") for i in dep.get("inputs", [])]


def _is_chat(components: dict[Any, Any], dep: dict[str, Any]) -> bool:
    """Whether an event takes a text box and a Chatbot, and returns that Chatbot."""
    chatbots = [i for i in dep.get("inputs", []) if _type(components, i) == "chatbot"]
    return (
        len(chatbots) == 1
        and chatbots[0] in dep.get("outputs", [])
        and "textbox" in _kinds(components, dep)
    )


def _chat_event(
    components: dict[Any, Any], dependencies: list[dict[str, Any]]
) -> tuple[int, dict[str, Any]]:
    """The chat event (its fn_index and itself): the one named ``/model_chat``, else the first
    that takes a text box and a Chatbot and returns the Chatbot. Raises ValueError."""
    deps = [(dep.get("id", index), dep) for index, dep in enumerate(dependencies)]
    named = [(i, d) for i, d in deps if d.get("api_name") == CHAT_API_NAME]
    candidates = named or [(i, d) for i, d in deps if _is_chat(components, d)]
    if not candidates:
        raise ValueError(
            f"the Space has no /{CHAT_API_NAME} endpoint, nor any event that takes a text box"
            " and a Chatbot and returns the Chatbot"
        )
    fn_index, dep = candidates[0]
    if not _is_chat(components, dep):
        raise ValueError(
            f"/{CHAT_API_NAME} takes {_kinds(components, dep)}, not a query text box and a"
            " Chatbot history as the Qwen demo template does"
        )
    return fn_index, dep


def _option_name(
    components: dict[Any, Any], component_id: int, position: int, names: list[str | None]
) -> str:
    """An option's name: the API info's, else its label's, else ``input_{position}``."""
    label = (components.get(component_id, {}).get("props") or {}).get("label") or ""
    return names[position] or snake(str(label)) or f"input_{position}"


@dataclass(frozen=True)
class ChatEndpoint:
    """The Space's chat event, as its config and API info declare it."""

    fn_index: int
    trigger_id: int | None
    chatbot_output: int  # index of the Chatbot among the event's outputs
    chat_format: ChatFormat
    gradio_version: str
    protocol: str
    api_prefix: str  # e.g. "gradio_api/" (no leading slash, trailing slash)
    api_name: str | None = CHAT_API_NAME
    input_count: int = 3
    output_count: int = 3
    query_input: int = 0
    history_input: int = 1
    system_input: int | None = 2
    options: tuple[ChatOption, ...] = ()

    @classmethod
    def from_config(
        cls,
        config: dict[str, Any],
        info: dict[str, Any] | None = None,
        *,
        parameter_names: list[str | None] | None = None,
    ) -> ChatEndpoint:
        """Find the chat event in a Space's config and read its layout.

        The chat event is the one named ``/model_chat``, else the first event that takes a text
        box and a Chatbot and returns that Chatbot. Its first text box before the Chatbot is the
        query, the next text box the system prompt (a Space may have none); every other input
        is an option (``ChatOption``), named as the API info (or ``parameter_names``, what an
        earlier API info said) names it, else after its label. Raises ValueError when the Space
        has no such event.
        """
        components = {c["id"]: c for c in config.get("components", [])}
        fn_index, dep = _chat_event(components, config["dependencies"])
        inputs: list[int] = list(dep["inputs"])
        history_input = next(k for k, i in enumerate(inputs) if _type(components, i) == "chatbot")
        texts = [k for k, i in enumerate(inputs) if _type(components, i) == "textbox"]
        query_input = next((k for k in texts if k < history_input), texts[0])
        system_input = next((k for k in texts if k > query_input), None)
        names = (
            parameter_names
            if parameter_names is not None and len(parameter_names) == len(inputs)
            else parameter_names_in(info, dep.get("api_name"), len(inputs))
        )
        options = tuple(
            ChatOption.from_component(
                components.get(i, {}), k, _option_name(components, i, k, names)
            )
            for k, i in enumerate(inputs)
            if k not in (query_input, history_input, system_input)
        )
        chatbot_id = inputs[history_input]
        version = str(config.get("version", "0"))
        major = gradio_major(version)
        chatbot_type = (components[chatbot_id].get("props") or {}).get("type")
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
            api_name=dep.get("api_name"),
            input_count=len(inputs),
            output_count=len(dep["outputs"]),
            query_input=query_input,
            history_input=history_input,
            system_input=system_input,
            options=options,
        )

    @property
    def gradio_major(self) -> int:
        """The major version of the Space's gradio (0 if unknown)."""
        return gradio_major(self.gradio_version)

    def has_option(self, name: str) -> bool:
        """Whether the chat event has an option of this name or label."""
        return any(option.matches(name) for option in self.options)

    @property
    def cancel_keeps_waiting_jobs(self) -> bool:
        """Whether the Space's ``/cancel`` leaves a job that still waits in its queue there (to
        run later): gradio before 6 does (gradio-app/gradio#13333, in gradio 6 from 2026-05)."""
        return self.gradio_major < 6

    def option_values(self, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Every option's value, by name: those given (by name or label, checked), else the
        Space's defaults. Raises InvalidOptionError for an unknown option or a wrong value."""
        values = {option.name: option.default for option in self.options}
        for key, value in (options or {}).items():
            option = next((o for o in self.options if o.matches(str(key))), None)
            if option is None:
                have = "; ".join(o.describe() for o in self.options) or "none"
                raise InvalidOptionError(
                    f"the Space's chat has no option {key!r}; its options: {have}"
                )
            values[option.name] = option.check(value)
        return values

    def inputs(
        self, conversation: Conversation, options: Mapping[str, Any] | None = None
    ) -> list[Any]:
        """The event's input values: query, history in the Space's format, system, options.

        Raises InvalidOptionError for a wrong option, InvalidMessagesError for a system prompt
        given to a Space that takes none."""
        values: list[Any] = [None] * self.input_count
        values[self.query_input] = conversation.query
        values[self.history_input] = encode_history(conversation.history, self.chat_format)
        if self.system_input is not None:
            values[self.system_input] = conversation.system
        elif conversation.system != DEFAULT_SYSTEM:
            raise InvalidMessagesError("this Space's chat takes no system prompt")
        chosen = self.option_values(options)
        for option in self.options:
            values[option.position] = chosen[option.name]
        return values


def chat_endpoint(
    url: str,
    config: dict[str, Any],
    info: dict[str, Any] | None = None,
    *,
    parameter_names: list[str | None] | None = None,
) -> ChatEndpoint:
    """``ChatEndpoint.from_config``, raising InvalidSpaceError (naming ``url``) for a Space that
    is not built like the demo."""
    try:
        return ChatEndpoint.from_config(config, info, parameter_names=parameter_names)
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidSpaceError(f"{url} is not a Space like Qwen2.5-Max-Demo: {exc}") from exc


def _type(components: dict[Any, dict[str, Any]], component_id: Any) -> Any:
    return components.get(component_id, {}).get("type")


def parameter_names_in(info: dict[str, Any] | None, api_name: Any, count: int) -> list[str | None]:
    """The event's parameter names from the Space's API info, when it lists one per input."""
    parameters = ((info or {}).get("named_endpoints") or {}).get(f"/{api_name}", {})
    parameters = parameters.get("parameters") if isinstance(parameters, dict) else None
    if not isinstance(parameters, list) or len(parameters) != count:
        return [None] * count
    return [
        str(p["parameter_name"]) if isinstance(p, dict) and p.get("parameter_name") else None
        for p in parameters
    ]


def gradio_major(version: str) -> int:
    """The major version of a gradio version string (0 if it has none)."""
    major = version.split(".")[0]
    return int(major) if major.isdigit() else 0


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


def decode_history(value: Any) -> list[tuple[str | None, str | None]]:
    """A Chatbot value, in any format, as (user, assistant) turns: ``encode_history``'s
    inverse (a turn may lack either side)."""
    if not value:
        return []
    if isinstance(value[0], (list, tuple)):
        return [(pair[0], pair[1]) for pair in value]
    turns: list[tuple[str | None, str | None]] = []
    for message in value:
        text = _message_text(message.get("content"))
        if message.get("role") == "user":
            turns.append((text, None))
        elif turns and turns[-1][1] is None:
            turns[-1] = (turns[-1][0], text)
        else:
            turns.append((None, text))
    return turns


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


@dataclass(frozen=True)
class SpaceConnection:
    """What connecting to a Space established; reused by every stream of a QwenClient."""

    url: str
    endpoint: ChatEndpoint
    headers: dict[str, str]
    cookies: dict[str, str]
    config: dict[str, Any]
    gradio_client_version: str = ""  # of a connection made through gradio_client
    transport: str = "direct"  # "direct" | "gradio_client"
