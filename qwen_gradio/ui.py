"""A local web chat page that re-exposes a Qwen demo Space: ``qwen-gradio ui``.

A ``gr.ChatInterface`` streams each reply through ``QwenClient.astream`` with the whole
conversation as real history, and a system-prompt box that applies to the next message. The Stop
button cancels the job on the Space and marks the reply as cut short; retry, undo and clear are
ChatInterface's own; conversations
are saved in the browser. While the Space queues the request the reply shows the queue position.
Errors appear as the Space's own text. A Space with options (the Qwen2.5 demo's model size) gets
a control for each, beside the system prompt. The chat endpoint stays callable by any Gradio
client as ``/chat`` with ``(message, system_prompt, *options)``.

This module and the replica import gradio (the ``ui`` extra). The page
loads nothing from outside this machine: no analytics, and system fonts instead of web fonts.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import threading
from collections.abc import AsyncIterator
from typing import Any

import gradio as gr

from ._core.messages import DEFAULT_SYSTEM
from ._core.options import ChatOption
from ._core.reply import QueueStatus, Retrying, TextDelta
from .client import QwenClient
from .errors import QwenGradioError
from .settings import Settings

__all__ = ["REPLICA", "build_ui", "close", "serve"]

from .replica import REPLICA  # --space replica: serve the bundled replica in this process

ERROR_TITLE = "The Space could not answer"
STOPPED_TITLE = "Stopped: the reply was cut short here"
STOPPED_WAITING_TITLE = "Stopped before the Space answered"
#: Math as Qwen writes it: $$...$$ and \[...\] on a line of their own, $...$ and \(...\)
#: inline (gradio's default renders only $$...$$).
LATEX_DELIMITERS: list[dict[str, str | bool]] = [
    {"left": "$$", "right": "$$", "display": True},
    {"left": "\\[", "right": "\\]", "display": True},
    {"left": "$", "right": "$", "display": False},
    {"left": "\\(", "right": "\\)", "display": False},
]
WELCOME = (
    "**Ask anything.** Replies stream from the Space as it writes them; the system prompt"
    " below applies to your next message. Edit a message of yours to ask it again."
)


def _text(content: Any) -> str:
    """The text of a ChatInterface message's content (a string, or parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or "")
    if isinstance(content, list):
        return "".join(_text(part) for part in content)
    return ""


def to_messages(message: str, history: list[Any], system_prompt: str) -> list[dict[str, str]]:
    """ChatInterface's (message, history) as OpenAI-style messages for QwenClient. The page's
    own notes (messages with a metadata title: queue status, errors) are not conversation, nor
    is a message that got no answer (an error or Stop before any text, the Space down): it
    would reach the Space glued to the next one. A reply cut short answers with its text."""
    turns: list[dict[str, str]] = []
    for item in history:
        fields = item if isinstance(item, dict) else vars(item)
        if (fields.get("metadata") or {}).get("title"):
            continue
        role = fields.get("role")
        if role in ("user", "assistant"):
            turns.append({"role": str(role), "content": _text(fields.get("content"))})
    answered = [
        turn
        for k, turn in enumerate(turns)
        if turn["role"] == "assistant" or (k + 1 < len(turns) and turns[k + 1]["role"] != "user")
    ]
    system = {"role": "system", "content": system_prompt or DEFAULT_SYSTEM}
    return [system, *answered, {"role": "user", "content": message}]


def not_blank(message: str) -> Any:
    """ChatInterface's validator: an empty or blank message is refused before the chat runs
    (a note on the page, which stays usable)."""
    return gr.validate(bool(message and message.strip()), "Type a message first.")


def option_input(option: ChatOption) -> Any:
    """A page control for one of the Space's options (its own component type), or None."""
    label = option.label or option.name
    if option.component == "checkbox":
        return gr.Checkbox(value=bool(option.default), label=label)
    if option.choices is not None:
        kind = gr.Radio if option.component == "radio" else gr.Dropdown
        return kind(
            choices=[(shown, value) for shown, value in option.choices],
            value=option.default,
            label=label,
        )
    low, high = option.minimum, option.maximum
    if option.component == "slider" and low is not None and high is not None:
        return gr.Slider(low, high, value=option.default, label=label)
    if option.component in ("slider", "number"):
        return gr.Number(value=option.default, label=label)
    if option.component == "textbox":
        return gr.Textbox(value=option.default or "", label=label)
    return None  # another kind of input: the Space's default is sent


def space_options(client: QwenClient) -> tuple[ChatOption, ...]:
    """The Space's options, each starting at the client's value for it (``--option``) else the
    Space's default; none if the Space cannot be reached now (the chat then says why)."""
    try:
        endpoint = client.connect().endpoint
    except QwenGradioError:
        return ()
    start = endpoint.option_values(client.options)  # checked when the client connected
    return tuple(dataclasses.replace(o, default=start[o.name]) for o in endpoint.options)


def note(title: str, text: str = "", pending: bool = False) -> Any:
    """An assistant message shown as a note (a title, collapsed text): not part of the chat."""
    metadata = {"title": title, **({"status": "pending"} if pending else {})}
    return gr.ChatMessage(role="assistant", content=text, metadata=metadata)  # type: ignore[arg-type]


def chat_function(client: QwenClient, controls: list[tuple[ChatOption, Any]]) -> Any:
    """The page's chat function: streams the reply, notes while the job waits or when it
    fails; its signature names each option's control as the Space names the option."""

    async def chat(
        message: str,
        history: list[Any],
        system_prompt: str,
        request: gr.Request | None = None,
        *values: Any,
    ) -> AsyncIterator[Any]:
        if not message or not message.strip():
            raise gr.Error("Type a message first.", print_exception=False)
        chosen = {option.name: value for (option, _), value in zip(controls, values, strict=False)}
        stream = client.astream(to_messages(message, history, system_prompt), options=chosen)
        try:
            async for event in stream.events():
                if isinstance(event, (QueueStatus, Retrying)):  # still waiting for text
                    if not stream.text:
                        yield note(event.describe(), pending=True)
                elif isinstance(event, TextDelta):
                    yield event.text
        except QwenGradioError as exc:
            if request is not None and request.headers.get("x-gradio-user") == "api":
                raise gr.Error(exc.message, print_exception=False) from None  # API: an error
            # In the page: keep the partial reply readable and say, in the Space's words, why
            # it stopped (an error status would cover the whole chat).
            reply = [note(f"{ERROR_TITLE}: {exc.message}")]
            if exc.partial_text:
                reply.insert(0, gr.ChatMessage(role="assistant", content=exc.partial_text))
            yield reply  # (no toast besides: gradio titles every warning toast "Warning")
        finally:
            await stream.aclose()  # Stop, a closed tab or an error: cancel the job on the Space

    if controls:  # the API (and gradio's docs page) name each option as the Space does
        signature = inspect.signature(chat)
        named = [
            inspect.Parameter(
                option.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=option.default
            )
            for option, _ in controls
        ]
        fixed = [p for p in signature.parameters.values() if p.kind != p.VAR_POSITIONAL]
        chat.__signature__ = signature.replace(parameters=[*fixed, *named])  # type: ignore[attr-defined]

    return chat


def build_ui(
    client: QwenClient,
    *,
    space_label: str | None = None,
    options: tuple[ChatOption, ...] = (),
) -> Any:
    """The chat page (a ``gr.ChatInterface``) for ``client``'s Space; each of ``options`` (the
    Space's extra chat inputs, as ``client.chat_options()`` gives them) gets a control."""
    label = space_label or client.space_url
    controls = [(option, option_input(option)) for option in options]
    controls = [(option, control) for option, control in controls if control is not None]

    chat = chat_function(client, controls)
    system_box = gr.Textbox(
        value=DEFAULT_SYSTEM,
        label="System prompt",
        lines=2,
        info="Applies to your next message.",
    )
    interface = gr.ChatInterface(
        chat,
        chatbot=gr.Chatbot(
            label="Qwen2.5-Max",
            scale=1,
            autoscroll=True,
            latex_delimiters=LATEX_DELIMITERS,
            placeholder=WELCOME,
            buttons=["copy", "copy_all"],  # no "share": it needs Hugging Face, offline it fails
        ),
        editable=True,  # a sent message can be edited, and asked again from there
        additional_inputs=[system_box, *(control for _, control in controls)],
        additional_inputs_accordion=gr.Accordion(
            "System prompt" + (" and options" if controls else ""), open=True
        ),
        title="Qwen2.5-Max chat",
        description=f"Talking to the Space at **{label}** through qwen_gradio.",
        save_history=True,
        validator=not_blank,
        api_name="chat",
        fill_height=True,
        analytics_enabled=False,
    )

    with interface:  # Stop: a note under the reply (see _marked_stopped)
        interface.textbox.stop(
            _marked_stopped,
            [interface.chatbot],
            [interface.chatbot],
            api_visibility="undocumented",
            queue=False,
        )
    return interface


def _marked_stopped(history: list[Any]) -> list[Any]:
    """Stop cut the reply short: say so under it (a note, not part of the conversation); a
    Stop while the Space had not answered yet replaces the waiting note (its spinner)."""
    last = history[-1] if history else None
    fields = (last if isinstance(last, dict) else vars(last)) if last is not None else {}
    metadata = fields.get("metadata") or {}
    if fields.get("role") != "assistant":
        return [*history, note(STOPPED_WAITING_TITLE)] if history else history
    if metadata.get("status") == "pending":
        return [*history[:-1], note(STOPPED_WAITING_TITLE)]
    if not metadata.get("title"):
        return [*history, note(STOPPED_TITLE)]
    return history


def local_theme() -> Any:
    """gradio's default theme with system fonts: the page fetches no web fonts."""
    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "monospace"],
    )


def serve(
    settings: Settings | str | None = None,
    *,
    replica: bool = False,
    host: str = "127.0.0.1",
    port: int | None = None,
    replica_delay: float = 0.03,
    prevent_thread_lock: bool = False,
) -> Any:
    """Serve the chat page for the Space of ``settings`` (a Space id or URL is taken as
    ``Settings.build(space)``; None: from the environment). ``replica=True`` (or the Space
    "replica") first starts the bundled replica in-process and chats with it.

    Returns the launched app (with ``prevent_thread_lock``), else blocks until interrupted.
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if settings == REPLICA:
        settings, replica = None, True
    if not isinstance(settings, Settings):
        settings = Settings.build(settings)
    server, label = None, None
    if replica:
        from .replica import ReplicaServer

        server = ReplicaServer(delay=replica_delay).start()
        settings = settings.replace(space=server.url)
        label = f"{server.url} (the offline replica)"
    client = QwenClient(settings=settings)
    demo = build_ui(client, space_label=label, options=space_options(client))
    demo.queue(default_concurrency_limit=None)
    demo.qwen_client, demo.qwen_replica = client, server
    demo.launch(
        server_name=host,
        server_port=port,
        prevent_thread_lock=True,
        show_error=True,
        quiet=True,  # gradio's banner would suggest launch(share=True), which this page lacks
        theme=local_theme(),
    )
    if prevent_thread_lock:
        return demo
    print(f"Chat page for {label or client.space_url} at {demo.local_url} (Ctrl-C to stop)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        close(demo)
    return demo


def close(demo: Any) -> None:
    """Stop a page started by ``serve``, its client, and its replica if it has one."""
    demo.close()
    demo.qwen_client.close()
    if demo.qwen_replica is not None:
        demo.qwen_replica.stop()
