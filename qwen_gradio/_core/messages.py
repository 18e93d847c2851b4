"""OpenAI-style messages → the Space's (query, history, system), validated before any request.

The rules:

- A plain string is one user message.
- ``system`` messages, wherever they stand, join with "\\n" into the system prompt. With none (or
  only empty ones) the Space's default, "You are a helpful assistant.", is used. A ``system=``
  argument comes first, before any system messages.
- The last message must be a user message with some non-blank text: it is the query. A
  conversation that ends with an assistant message is refused (the Space cannot continue a reply).
- Earlier user/assistant messages become the history, as (user, assistant) turns. Consecutive
  messages of one role are joined with a blank line ("\\n\\n"); empty ones are dropped. An
  assistant message with no user message before it becomes a turn with no user text (``None``).
- ``content`` is a string, or a list of OpenAI-style text parts (``{"type": "text", "text": ...}``)
  whose texts are joined as they are; any other part (an image) is refused.
- Text must be Unicode: a lone surrogate (undecodable bytes read with ``surrogateescape``) is
  refused, never sent altered.
- ``developer`` messages are system messages (OpenAI's newer name).
- Tools, in Qwen2.5's own format (``_core.tools``): ``tools=`` are rendered into the system
  prompt as Qwen2.5's chat template does; an assistant message's ``tool_calls`` (its
  ``content`` may then be empty or None) become ``<tool_call>`` blocks after its text; a run of
  ``tool`` messages becomes one user turn of ``<tool_response>`` blocks, and may end the
  conversation (the query is then the tool results).
- Extra keys (``name``, ``time``, ...) are ignored. Anything else raises InvalidMessagesError.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidMessagesError
from .tools import Tool, assistant_turn, tool_results_turn, tools_system

__all__ = ["DEFAULT_SYSTEM", "Conversation", "Message", "Prompt", "to_conversation"]

DEFAULT_SYSTEM = "You are a helpful assistant."
ROLES = ("system", "developer", "user", "assistant", "tool")

Message = Mapping[str, Any]
Prompt = str | Sequence[Message]


@dataclass(frozen=True)
class Conversation:
    """What the Space's chat endpoint takes: the query, the earlier turns, the system prompt."""

    query: str
    history: tuple[tuple[str | None, str | None], ...]
    system: str


def _check(messages: Any) -> list[tuple[str, str]]:
    if isinstance(messages, str):
        _check_text(messages, "the prompt")
        return [("user", messages)]
    if not isinstance(messages, (list, tuple)):
        raise InvalidMessagesError(
            f"messages must be a string or a list of messages, not {type(messages).__name__}"
        )
    if not messages:
        raise InvalidMessagesError("messages is empty: give at least one user message")
    checked = []
    answering = False  # a tool message answers the assistant's tool_calls before it
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidMessagesError(
                f"messages[{index}] must be a dict with 'role' and 'content',"
                f" not {type(message).__name__}"
            )
        role = message.get("role")
        if role not in ROLES:
            raise InvalidMessagesError(
                f"messages[{index}] has role {role!r}; expected one of {', '.join(ROLES)}"
            )
        if role == "tool" and not answering:
            raise InvalidMessagesError(
                f"messages[{index}] is a tool result with no assistant 'tool_calls' before it"
            )
        calls = message.get("tool_calls") if role == "assistant" else None
        if role != "tool":
            answering = bool(calls)
        if "content" not in message and not calls:
            raise InvalidMessagesError(f"messages[{index}] has no 'content'")
        content = message.get("content")
        if content is None and calls:
            content = ""
        if isinstance(content, (list, tuple)):
            content = _text_of_parts(content, index)
        elif not isinstance(content, str):
            raise InvalidMessagesError(
                f"messages[{index}]['content'] must be a string or a list of text parts,"
                f" not {type(content).__name__}"
            )
        _check_text(content, f"messages[{index}]['content']")
        if calls:
            if not isinstance(calls, (list, tuple)):
                raise InvalidMessagesError(f"messages[{index}]['tool_calls'] must be a list")
            content = assistant_turn(content, calls, f"messages[{index}]")
        checked.append(("system" if role == "developer" else role, content))
    return _tool_turns(checked)


def _tool_turns(checked: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Each run of tool results as the one user turn Qwen2.5's template makes of it."""
    turns: list[tuple[str, str]] = []
    results: list[str] = []
    for role, content in [*checked, ("", "")]:
        if role == "tool":
            results.append(content)
            continue
        if results:
            turns.append(("user", tool_results_turn(results)))
            results = []
        if role:
            turns.append((role, content))
    return turns


def _check_text(text: str, where: str) -> None:
    """Refuse text that cannot travel as UTF-8 JSON: lone surrogates, as text decoded with
    ``errors="surrogateescape"`` (file names, undecodable bytes from stdin) holds."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidMessagesError(
            f"{where} holds {text[error.start : error.end]!r} at position {error.start}, which is"
            " not Unicode text (a lone surrogate, as undecodable bytes become); decode the bytes"
            " with a real encoding or errors='replace'"
        ) from None


def _text_of_parts(parts: Sequence[Any], index: int) -> str:
    """The text of OpenAI-style content parts (``{"type": "text", "text": ...}``), joined."""
    texts = []
    for number, part in enumerate(parts):
        where = f"messages[{index}]['content'][{number}]"
        if not isinstance(part, Mapping):
            raise InvalidMessagesError(f"{where} must be a dict, not {type(part).__name__}")
        if part.get("type") != "text":
            raise InvalidMessagesError(
                f"{where} is a {part.get('type')!r} part: the Space takes text only"
            )
        text = part.get("text")
        if not isinstance(text, str):
            raise InvalidMessagesError(f"{where} has no 'text' string")
        texts.append(text)
    return "".join(texts)


def to_conversation(
    messages: Prompt,
    system: str | None = None,
    tools: Sequence[Tool] = (),
    tool_choice: str | None = None,
    parallel_tool_calls: bool | None = None,
) -> Conversation:
    """Validate ``messages`` and turn them into a Conversation; ``tools`` (checked by
    ``_core.tools.check_tools``, with ``tool_choice`` checked by ``check_tool_choice``) go into
    the system prompt.

    Raises InvalidMessagesError for anything the Space cannot be sent.
    """
    if system is not None and not isinstance(system, str):
        raise InvalidMessagesError(f"system must be a string, not {type(system).__name__}")
    if system:
        _check_text(system, "system")
    checked = _check(messages)
    systems = [system] if system else []
    systems += [content for role, content in checked if role == "system" and content]
    dialogue = [(role, content) for role, content in checked if role != "system"]

    if not dialogue:
        raise InvalidMessagesError("messages has no user message")
    if dialogue[-1][0] != "user":
        raise InvalidMessagesError(
            "the last message must be from the user; the conversation ends with an"
            " assistant message"
        )

    # Merge runs of one role, dropping empty messages.
    merged: list[tuple[str, str]] = []
    for role, content in dialogue:
        if not content:
            continue
        if merged and merged[-1][0] == role:
            merged[-1] = (role, f"{merged[-1][1]}\n\n{content}")
        else:
            merged.append((role, content))
    if not merged or merged[-1][0] != "user" or not merged[-1][1].strip():
        raise InvalidMessagesError("the last user message is empty")

    query = merged.pop()[1]
    history: list[tuple[str | None, str | None]] = []
    for role, content in merged:
        if role == "user":
            history.append((content, None))
        elif history and history[-1][1] is None:
            history[-1] = (history[-1][0], content)
        else:
            history.append((None, content))
    prompt = tools_system(
        "\n".join(systems) or DEFAULT_SYSTEM, tools, tool_choice, parallel_tool_calls
    )
    return Conversation(query, tuple(history), prompt)
