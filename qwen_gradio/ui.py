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

import asyncio
import dataclasses
import inspect
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import gradio as gr

from ._client.streams import AsyncStream
from ._core.messages import DEFAULT_SYSTEM
from ._core.options import ChatOption
from ._core.reply import QueueStatus, ReplyCompleted, Retrying, StreamEvent, TextDelta
from .client import QwenClient
from .errors import QwenGradioError
from .settings import Settings
from .tokens import load_tokenizer, tokenizer_installed

__all__ = ["REPLICA", "build_ui", "close", "serve"]

from .replica import REPLICA  # --space replica: serve the bundled replica in this process

ERROR_TITLE = "The Space could not answer"
STOPPED_TITLE = "Stopped: this reply was cut short"
STOPPED_WAITING_TITLE = "Stopped before the Space answered"
ANY_SPACE = "Any (the pool chooses)"
TICK = 1.0  #: seconds between the updates of a wait's countdown
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
EXAMPLES = [
    "Explain the difference between a list and a tuple in Python.",
    "Write a haiku about autumn rain.",
    "What is the integral of x² from 0 to 1? Show the steps.",
    "Summarize the causes of the French Revolution in three bullet points.",
]
#: Screen-reader texts gradio 6.31 lacks (its status region read the key "common.complete").
TRANSLATIONS = {"en": {"common.complete": "Reply complete"}}
#: Narrow screens: the chat and its message box first, the saved chats after the settings.
PAGE_CSS = """
@media (max-width: 640px) {
  .qwen-saved-chats { order: 3; }
  .qwen-chat-area { order: 1; }
  .qwen-chat-area .examples .example:nth-child(n+3) { display: none; }
}
"""


def _fields(message: Any) -> dict[str, Any]:
    return message if isinstance(message, dict) else vars(message)


def _text(content: Any) -> str:
    """The text of a ChatInterface message's content (a string, or parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or "")
    if isinstance(content, list):
        return "".join(_text(part) for part in content)
    return ""


def _is_note(message: Any) -> bool:
    return bool((_fields(message).get("metadata") or {}).get("title"))


def to_messages(message: str, history: list[Any], system_prompt: str) -> list[dict[str, str]]:
    """ChatInterface's (message, history) as OpenAI-style messages for QwenClient. The page's
    own notes (messages with a metadata title: queue status, errors) are not conversation, nor
    is a message that got no answer (an error or Stop before any text, the Space down): it
    would reach the Space glued to the next one. A reply cut short answers with its text."""
    turns: list[dict[str, str]] = []
    for item in history:
        fields = _fields(item)
        role = fields.get("role")
        if role in ("user", "assistant") and not _is_note(item):
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


def note(title: str, text: str = "", pending: bool = False, duration: float | None = None) -> Any:
    """An assistant message shown as a note (a title, collapsed text): not part of the chat."""
    metadata: dict[str, Any] = {"title": title, "status": "pending" if pending else "done"}
    if duration is not None:
        metadata["duration"] = round(duration, 1)
    return gr.ChatMessage(role="assistant", content=text, metadata=metadata)  # type: ignore[arg-type]


def settled(history: list[Any]) -> list[Any]:
    """``history`` with no note left waiting: a reply's pending note (its spinner) outlives
    it when Stop, a closed tab or a lost connection ended it; it then says so. gradio keeps
    the chat's state from before the Stop, so this runs wherever a history comes back."""
    out = []
    for k, message in enumerate(history):
        fields = _fields(message)
        metadata = fields.get("metadata") or {}
        if metadata.get("title") and metadata.get("status") == "pending":
            after = history[k + 1] if k + 1 < len(history) else None
            answered = after is not None and _fields(after).get("role") == "assistant"
            title = STOPPED_TITLE if answered and not _is_note(after) else STOPPED_WAITING_TITLE
            message = {**fields, "metadata": {**metadata, "title": title, "status": "done"}}
        out.append(message)
    return out


def settings_text(system_prompt: str, options: Mapping[str, Any]) -> str:
    """What a reply was asked with, as its note shows it (and ``asked_with`` reads it back)."""
    quoted = "\n".join(f"> {line}" for line in system_prompt.splitlines() or [""])
    text = f"**System prompt**\n\n{quoted}"
    if options:
        text += f"\n\n**Options** `{json.dumps(dict(options), ensure_ascii=False)}`"
    return text


def asked_with(conversation: list[Any]) -> tuple[str, dict[str, Any]] | None:
    """The system prompt and options of a conversation's last reply (from its note); None if
    no reply says."""
    for message in reversed(conversation):
        lines = _text(_fields(message).get("content")).splitlines() if _is_note(message) else []
        if not lines or lines[0] != "**System prompt**":
            continue
        prompt = [line[2:] for line in lines[2:] if line.startswith("> ") or line == ">"]
        options: dict[str, Any] = {}
        if lines[-1].startswith("**Options** `"):
            options = json.loads(lines[-1][len("**Options** `") : -1])
        return "\n".join(prompt), options
    return None


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


def waiting_title(event: QueueStatus | Retrying, left: float, space: str, tries: int) -> str:
    """The note while a reply waits, ``left`` seconds of its wait to go: which Space (``space``
    names the Space of a pool; empty for a single one), which try, and a countdown (a queue's
    estimate, a retry's pause)."""
    if isinstance(event, Retrying):
        what = event.error.summary()
        where = f" on {event.space}" if space else ""
        again = "trying again" if event.next_space == event.space else f"trying {event.next_space}"
        return (
            f"{what[:1].upper()}{what[1:]}{where} (try {event.attempt} of {tries});"
            f" {again} in {max(left, 0):.0f} s…"
        )
    if event.started:
        return f"{space or 'The Space'} is working on your message…"
    rank = event.rank or 0
    where = "you are next" if rank == 0 else f"{rank} ahead of you"
    eta = f", about {left:.0f} s" if left >= 1 else ""
    queue = f"the queue of {space}" if space else "the Space's queue"
    return f"Waiting in {queue}: {where}{eta}…"


async def ticking(stream: AsyncStream, every: float) -> AsyncIterator[StreamEvent | None]:
    """``stream``'s events, and None each ``every`` seconds that none arrives (a countdown's
    tick). Closing this closes nothing: the caller closes the stream."""
    pending: asyncio.Future[StreamEvent] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(stream.next_event())
            done, _ = await asyncio.wait({pending}, timeout=every)
            if not done:
                yield None
                continue
            arrived, pending = pending, None
            try:
                yield arrived.result()
            except StopAsyncIteration:
                return
    finally:
        if pending is not None:  # let it end before the stream is closed
            pending.cancel()
            await asyncio.wait({pending})


class Reply:
    """One reply as the page shows it: a note above the text (waiting, writing, then which
    Space answered, how soon and how much, and what it was asked with), then the text."""

    def __init__(
        self, client: QwenClient, system_prompt: str, options: Mapping[str, Any], pool: bool
    ) -> None:
        self.asked = settings_text(system_prompt or DEFAULT_SYSTEM, options)
        self.tries = client.settings.attempts
        self.pool = pool  # the page's Spaces are a pool: notes name the Space
        self.started = time.monotonic()
        self.first_token: float | None = None
        self.waiting: tuple[QueueStatus | Retrying, float] | None = None

    def shown(self, stream: AsyncStream, event: StreamEvent | None) -> list[Any]:
        """The messages to show after ``event`` (None: a tick of the clock)."""
        now = time.monotonic()
        space = (stream.space or "") if self.pool else ""
        if isinstance(event, (QueueStatus, Retrying)):
            self.waiting = (event, now)
        if isinstance(event, TextDelta) and self.first_token is None:
            self.first_token = now - self.started
        if isinstance(event, ReplyCompleted):
            return [self.done(event, now), event.text]
        if stream.text or self.waiting is None:
            doing = "is writing…" if stream.text else "is asked…"
            return [note(f"{space or 'The Space'} {doing}", pending=True), stream.text]
        waited, since = self.waiting
        wait = waited.wait if isinstance(waited, Retrying) else (waited.eta or 0)
        why = waited.error.message if isinstance(waited, Retrying) else ""
        title = waiting_title(waited, wait - (now - since), space, self.tries)
        return [note(title, why, pending=True)]

    def done(self, event: ReplyCompleted, now: float) -> Any:
        """The reply's note once it is complete."""
        parts = [f"Answered by {event.space}" if self.pool else "Answered"]
        if self.first_token is not None:
            parts.append(f"first token in {self.first_token:.1f} s")
        if event.usage is not None:
            count = event.usage.completion_tokens
            parts.append(f"{count} token{'' if count == 1 else 's'}")
        return note(" · ".join(parts), self.asked, duration=now - self.started)


def chat_function(
    clients: PageClients, controls: list[tuple[ChatOption, Any]], pin: Any | None
) -> Any:
    """The page's chat function: streams the reply under a note that says how it goes (its
    countdowns updated each ``TICK``); its signature names each option's control as the
    Space names the option, and the pool's Space picker ``space``."""

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
        client = clients.pinned(values[len(controls)] if pin is not None else None)
        from_api = request is not None and request.headers.get("x-gradio-user") == "api"
        stream = client.astream(to_messages(message, history, system_prompt), options=chosen)
        reply = Reply(client, system_prompt, {**client.options, **chosen}, pin is not None)
        try:
            async for event in ticking(stream, TICK):
                if from_api:  # a Gradio client gets the text alone
                    if isinstance(event, TextDelta):
                        yield event.text
                else:
                    yield reply.shown(stream, event)
        except QwenGradioError as exc:
            if from_api:
                raise gr.Error(exc.message, print_exception=False) from None
            # In the page: keep the partial reply readable and say, in the Space's words, why
            # it stopped (an error status would cover the whole chat).
            shown = [note(f"{ERROR_TITLE}: {exc.message}", reply.asked)]
            yield [exc.partial_text, *shown] if exc.partial_text else shown
        finally:
            await stream.aclose()  # Stop, a closed tab or an error: cancel the job on the Space

    parameters = [option.name for option, _ in controls] + (["space"] if pin is not None else [])
    if parameters:  # the API (and gradio's docs page) name each control as the Space does
        signature = inspect.signature(chat)
        defaults = [option.default for option, _ in controls] + [ANY_SPACE]
        named = [
            inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default)
            for name, default in zip(parameters, defaults, strict=False)
        ]
        fixed = [p for p in signature.parameters.values() if p.kind != p.VAR_POSITIONAL]
        chat.__signature__ = signature.replace(parameters=[*fixed, *named])  # type: ignore[attr-defined]

    return chat


class PageClients:
    """The page's client for its Space (or pool), and one per Space of a pool made when a
    user pins that Space (so that each reply goes there)."""

    def __init__(self, client: QwenClient) -> None:
        self.client = client
        self._pinned: dict[str, QwenClient] = {}

    def names(self) -> list[str]:
        return [space.name for space in self.client.settings.spaces]

    def pinned(self, name: str | None) -> QwenClient:
        """The client for the Space ``name`` of the pool (None or ``ANY_SPACE``: the pool)."""
        spaces = {space.name: space for space in self.client.settings.spaces}
        if name is None or name not in spaces or len(spaces) == 1:
            return self.client
        if name not in self._pinned:
            settings = self.client.settings.replace(space=spaces[name])
            self._pinned[name] = QwenClient(settings=settings)
        return self._pinned[name]

    def close(self) -> None:
        for client in [self.client, *self._pinned.values()]:
            client.close()


class ChatPage(gr.ChatInterface):
    """gradio's ChatInterface, with its saved conversations kept right (gradio 6.31's list
    leaves out an emptied chat while opening them by their index in the whole list, so each
    click below an emptied chat opened the one before it) and no reply left waiting in them
    (``settled``). These override ChatInterface's private methods: ``tests/test_ui.py``
    walks each case in a browser."""

    def _save_conversation(
        self, index: int | None, conversation: list[Any], saved: list[list[Any]]
    ) -> tuple[int | None, list[list[Any]]]:
        if conversation:
            return super()._save_conversation(index, settled(conversation), saved)  # type: ignore[no-any-return]
        if index is not None and saved and index < len(saved):  # emptied (Undo): not a chat
            saved.pop(index)
        return None, saved

    def _load_conversation(self, index: int, conversations: list[list[Any]]) -> tuple[int, Any]:
        real = _listed(conversations)[index]
        return real, gr.Chatbot(value=settled(conversations[real]))

    async def _stream_fn(  # type: ignore[override]
        self, message: Any, history: list[Any], *args: Any
    ) -> AsyncIterator[Any]:
        async for output in super()._stream_fn(message, settled(history), *args):
            yield output


def _listed(conversations: list[list[Any]] | None) -> list[int]:
    """The index in ``conversations`` of each entry of the saved list (it skips empty ones)."""
    return [k for k, conversation in enumerate(conversations or []) if conversation]


def page_name(client: QwenClient) -> str:
    """What the page calls its Space: the Qwen2.5 demo "Qwen2.5-Max"; another Space named by
    its id, that name ("Qwen2.5-72B-Instruct-Demo" → "Qwen2.5-72B-Instruct"); a URL, the
    title the Space's page gives itself (else its host)."""
    first = client.settings.spaces[0].name
    if "://" not in first:
        name = first.rsplit("/", 1)[-1]
        return name[: -len("-demo")] if name.lower().endswith("-demo") else name
    try:
        title = str(client.connect().config.get("title") or "")
    except QwenGradioError:
        title = ""
    return title if title and title != "Gradio" else first.split("://", 1)[1]


def build_ui(
    client: QwenClient,
    *,
    space_label: str | None = None,
    options: tuple[ChatOption, ...] = (),
) -> Any:
    """The chat page (a ``gr.ChatInterface``) for ``client``'s Space; each of ``options`` (the
    Space's extra chat inputs, as ``client.chat_options()`` gives them) gets a control."""
    label = space_label or client.space_url
    name = page_name(client)
    clients = PageClients(client)
    controls = [(option, option_input(option)) for option in options]
    controls = [(option, control) for option, control in controls if control is not None]
    pin = None
    if len(clients.names()) > 1:
        pin = gr.Dropdown(
            [ANY_SPACE, *clients.names()], value=ANY_SPACE, label="Space", info="Where replies go."
        )
    system_box = gr.Textbox(
        value=DEFAULT_SYSTEM, label="System prompt", lines=2, info="Applies to your next message."
    )
    interface = ChatPage(
        chat_function(clients, controls, pin),
        chatbot=gr.Chatbot(
            label=name,
            scale=1,
            autoscroll=True,
            latex_delimiters=LATEX_DELIMITERS,
            placeholder=WELCOME,
            buttons=["copy", "copy_all"],  # no "share": it needs Hugging Face, offline it fails
        ),
        textbox=gr.Textbox(
            label="Message",
            show_label=False,
            placeholder="Type a message...",
            scale=7,
            submit_btn="Send",  # named: gradio's icon-only buttons have no accessible name
            stop_btn="Stop",
        ),
        editable=True,  # a sent message can be edited, and asked again from there
        examples=[[example] for example in EXAMPLES],  # shown on the empty page
        run_examples_on_click=False,  # into the message box (gradio saves no chat they start)
        additional_inputs=[system_box, *(c for _, c in controls), *([pin] if pin else [])],
        additional_inputs_accordion=gr.Accordion("Chat settings", open=True),
        title=f"{name} chat",
        description=f"Talking to the Space at **{label}** through qwen_gradio.",
        save_history=True,
        validator=not_blank,
        api_name="chat",
        fill_height=True,
        analytics_enabled=False,
    )
    for block, name in (
        (interface.chat_history_dataset, "saved-chats"),
        (interface.chatbot, "chat-area"),
    ):
        if block.parent is not None:  # their columns, styled for narrow screens (PAGE_CSS)
            block.parent.elem_classes = [f"qwen-{name}"]
    with interface:
        interface.textbox.stop(  # Stop: the reply's note says so
            stopped,
            [interface.chatbot],
            [interface.chatbot],
            api_visibility="undocumented",
            queue=False,
        )
        interface.chat_history_dataset.click(  # an opened chat brings back its settings
            _restored([option.name for option, _ in controls]),
            [interface.chat_history_dataset, interface.saved_conversations],
            [system_box, *(control for _, control in controls)],
            api_visibility="undocumented",
            queue=False,
        )
    interface.qwen_clients = clients  # type: ignore[attr-defined]
    return interface


def _restored(names: list[str]) -> Any:
    """A handler that gives the system prompt and the options (``names``) a saved chat's last
    reply was asked with (each left as it is where the chat does not say)."""

    def restore(index: int, conversations: list[list[Any]]) -> Any:
        listed = _listed(conversations)
        asked = asked_with(conversations[listed[index]]) if index < len(listed) else None
        if asked is None:
            return [gr.skip()] * (len(names) + 1) if names else gr.skip()
        system, options = asked
        values = [system, *(options.get(name, gr.skip()) for name in names)]
        return values if names else system  # (gradio takes one output's value as it is)

    return restore


def stopped(history: list[Any]) -> list[Any]:
    """The page when Stop is pressed: the reply's note says it was stopped (``settled``); a
    Stop before the reply had a note gets one."""
    if history and _fields(history[-1]).get("role") == "user":
        return [*history, note(STOPPED_WAITING_TITLE)]
    return settled(history)


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
    if tokenizer_installed():  # each reply's note counts its tokens: load it before the first
        load_tokenizer()
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
        css=PAGE_CSS,
        i18n=gr.I18n(**TRANSLATIONS),
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
    demo.qwen_clients.close()
    if demo.qwen_replica is not None:
        demo.qwen_replica.stop()
