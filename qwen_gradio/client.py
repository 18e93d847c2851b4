"""QwenClient: chat with a Qwen demo Space, sync or async, streamed or whole.

The client owns the Spaces of its pool (a ``Member`` each: its transport, made on first use, and
its health), the HTTP clients of the event loops it runs on, the sync API's loop thread, and the
background cancellations of abandoned jobs. Each reply is a ``Job`` (``_client.job``) read
through an ``AsyncStream`` or its sync twin ``Stream`` (``_client.streams``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import weakref
from collections.abc import Mapping
from typing import Any, Unpack

from ._client.bridge import LoopThread, run_in_thread
from ._client.cancels import CANCEL_TIMEOUT, Canceller
from ._client.job import Job
from ._client.member import Member, options_for
from ._client.streams import AsyncStream, Stream
from ._core.messages import Conversation, Prompt
from ._core.options import ChatOption
from ._core.shape import ReplyArguments, shaped_request
from ._core.space import SpaceConnection
from ._state import State, open_state
from ._transports import Transport
from ._transports.cache import SpaceCache
from ._transports.warm import warm_http_imports
from .errors import InvalidMessagesError, InvalidReplyError, QwenGradioError, StreamClosedError
from .settings import Settings, SettingsArguments, SpacesArgument, Timeouts, checked_options
from .tokens import check_fits, tokenizer_installed

__all__ = ["QwenClient", "shared_client"]

warm_http_imports()

logger = logging.getLogger("qwen_gradio")


class QwenClient:
    """A client for the Qwen2.5-Max Space, or any Space built like its demo.

    ``space`` is a Space id ("owner/name") or URL; default ``$QWEN_GRADIO_SPACE``, else
    "Qwen/Qwen2.5-Max-Demo". Or a pool: a list of them (or of ``Space``, which may carry its
    own token and options), tried in turn when one fails before a reply's first token
    (``qwen_gradio.routing`` says which Space gets each reply). The other settings come by
    keyword, as ``qwen_gradio.settings.SettingsArguments`` lists them (``hf_token``, ``proxy``,
    ``timeout``, ``options``, ``transport``, ``cache``, ``attempts``, ``max_input_tokens``;
    each from the environment, else its default, when left out), or whole as ``settings=``
    (a ``Settings``; then no other argument).

    Example::

        with QwenClient() as client:
            for delta in client.stream("What is the capital of France?"):
                print(delta, end="", flush=True)

    The Space is contacted on first use: its config is fetched once and reused (and remembered
    on disk, so that a later process sends its first job at once; ``cache=False``). Use the
    client as a context manager, or call ``close()``/``aclose()``, to release its connections
    and threads.
    """

    def __init__(
        self,
        space: SpacesArgument = None,
        *,
        settings: Settings | None = None,
        **arguments: Unpack[SettingsArguments],
    ) -> None:
        if settings is None:
            settings = Settings.build(space, **arguments)
        elif space is not None or arguments:
            raise TypeError("pass either settings= or the settings themselves, not both")
        self.settings = settings
        known = SpaceCache() if settings.cache else None
        self._members = tuple(Member(space, settings, known) for space in settings.spaces)
        #: What this process shares with others of the fleet (``settings.state``; local: none).
        self.state: State = open_state(settings.state)
        self._runner = LoopThread()
        self._canceller = Canceller(settings.proxy)
        self._joining: set[asyncio.Future[str]] = set()  # of abandoned jobs, on any loop
        self._closed = False
        self._finalizer = weakref.finalize(self, self._runner.stop)

    @property
    def space_url(self) -> str:
        """The Space's base URL, ending in "/"."""
        return self.settings.space_url

    @property
    def timeouts(self) -> Timeouts:
        return self.settings.timeouts

    @property
    def transport(self) -> str:
        """The transport asked for: "auto", "direct" or "gradio_client"."""
        return self.settings.transport

    @property
    def options(self) -> Mapping[str, Any]:
        """The options every reply gets unless the call overrides them."""
        return self.settings.options

    def __repr__(self) -> str:
        return f"QwenClient(space={self.space_url!r})"

    # -- connecting -------------------------------------------------------------------------

    @property
    def members(self) -> tuple[Member, ...]:
        """The Spaces of the pool (one for a single Space), each with what this process knows of
        it: ``name``, ``url``, ``connection`` (None before connecting) and ``health``."""
        return self._members

    def connect(self) -> SpaceConnection:
        """Connect to the (first) Space now (otherwise done on first use); return what was
        learnt. ``connect_all()`` connects every Space of a pool."""
        first = self._members[0].connection
        if first is not None:
            return first
        if self._closed:
            raise StreamClosedError("this QwenClient is closed")
        return self._runner.run(self.aconnect())

    async def aconnect(self) -> SpaceConnection:
        """Async twin of ``connect()``.

        The direct transport asks the Space for its config (and, for a Space with options,
        their names, unless the cache has them for exactly this chat event) over this loop's
        pool, without gradio_client; this waits for the config even when the cache knows the
        Space. ``transport="gradio_client"``, or a Space whose protocol the direct transport
        does not speak, connects through gradio_client instead."""
        return (await self._connected(self._members[0])).connection

    def connect_all(self) -> list[SpaceConnection | QwenGradioError]:
        """Connect to every Space of the pool; each one's connection, or the error it met."""
        if self._closed:
            raise StreamClosedError("this QwenClient is closed")
        return self._runner.run(self.aconnect_all())

    async def aconnect_all(self) -> list[SpaceConnection | QwenGradioError]:
        """Async twin of ``connect_all()``: every Space at once."""

        async def one(member: Member) -> SpaceConnection | QwenGradioError:
            try:
                return (await self._connected(member)).connection
            except QwenGradioError as error:
                return error

        return list(await asyncio.gather(*(one(m) for m in self._members)))

    async def _connected(self, member: Member, *, provisional: bool = False) -> Transport:
        """``member``'s transport, connected, with the client's options checked against it
        (a ``provisional`` one, made from the cache, is checked by each job instead)."""
        if self._closed:
            raise StreamClosedError("this QwenClient is closed")
        transport = await member.connected(provisional=provisional)
        if not provisional:
            self.options_for(member, self.options)
        return transport

    def options_for(self, member: Member, options: Mapping[str, Any]) -> dict[str, Any]:
        """The options ``member``'s replies get, checked (``_client.member.options_for``)."""
        return options_for(self._members, member, options)

    def chat_options(self) -> tuple[ChatOption, ...]:
        """The (first) Space's extra chat inputs (connects first): each with its name,
        component, allowed values and default. The Qwen2.5-Max Space has none."""
        return self.connect().endpoint.options

    # -- chatting ---------------------------------------------------------------------------

    def astream(
        self,
        messages: Prompt,
        *,
        system: str | None = None,
        options: Mapping[str, Any] | None = None,
        **asked: Unpack[ReplyArguments],
    ) -> AsyncStream:
        """Stream the reply to ``messages`` as text deltas (``async for``).

        ``messages`` is a prompt string or OpenAI-style messages (with ``tool_calls`` and
        ``tool`` results, in Qwen2.5's tool format); ``system`` is put before any system
        messages; ``options`` override the client's for this reply. ``tools``,
        ``tool_choice``, ``parallel_tool_calls``, ``stop`` and ``max_tokens`` mean what they
        mean to OpenAI (``ReplyArguments``): ``events()`` then also gives ``ToolCall`` events,
        and ``ReplyCompleted`` its ``finish_reason`` and ``tool_calls``. Raises
        InvalidMessagesError at once for bad input; the job is submitted on the first
        iteration, after the options are checked against the Space's (InvalidOptionError).
        """
        if self._closed:
            raise StreamClosedError("this QwenClient is closed")
        conversation, shape = shaped_request(messages, system, **asked)
        if shape.max_tokens is not None and not tokenizer_installed():
            raise InvalidMessagesError(
                "max_tokens counts the reply in Qwen's tokens: install the tokens extra"
                " (pip install 'qwen-gradio[tokens]')"
            )
        check_fits(conversation, self.settings.max_input_tokens)  # before any request
        return AsyncStream(self._job(conversation, options), shape)

    async def achat(
        self,
        messages: Prompt,
        *,
        system: str | None = None,
        options: Mapping[str, Any] | None = None,
        **asked: Unpack[ReplyArguments],
    ) -> str:
        """The whole reply to ``messages`` (its text; see ``astream``). A reply that is not the
        JSON ``response_format`` asks for is asked once more (InvalidReplyError after that); so is
        one without the call ``tool_choice`` asks for (the second is the answer, as it is)."""
        for again in (False, True):
            try:
                async with self.astream(messages, system=system, options=options, **asked) as s:
                    text = await s.until_done()
                    if again or s.missed_call is None:
                        return text
            except InvalidReplyError:
                if again:
                    raise
        raise AssertionError("unreachable")

    def stream(
        self,
        messages: Prompt,
        *,
        system: str | None = None,
        options: Mapping[str, Any] | None = None,
        **asked: Unpack[ReplyArguments],
    ) -> Stream:
        """Stream the reply to ``messages`` as text deltas (``for``); see ``astream``."""
        return self.sync_stream(self.astream(messages, system=system, options=options, **asked))

    def sync_stream(self, stream: AsyncStream) -> Stream:
        """``stream`` (one of this client's) read from sync code, on the client's loop thread."""
        return Stream(stream, self._runner)

    def chat(
        self,
        messages: Prompt,
        *,
        system: str | None = None,
        options: Mapping[str, Any] | None = None,
        **asked: Unpack[ReplyArguments],
    ) -> str:
        """The whole reply to ``messages`` (its text; see ``achat``)."""
        for again in (False, True):
            try:
                with self.stream(messages, system=system, options=options, **asked) as stream:
                    text = stream.until_done()
                    if again or stream.missed_call is None:
                        return text
            except InvalidReplyError:
                if again:
                    raise
        raise AssertionError("unreachable")

    def _job(self, conversation: Conversation, options: Mapping[str, Any] | None) -> Job:
        """A job for ``conversation``, with what it needs of this client."""
        return Job(conversation, {**self.options, **checked_options(options)}, pool=self)

    def _cancel_in_background(
        self, conn: SpaceConnection, session_hash: str, event_id: str, *, started: bool
    ) -> concurrent.futures.Future[None]:
        """Ask the Space to stop a job, in the background (``_client.cancels``): closing a
        stream never waits on the network. A job submitted through gradio_client is cancelled
        the same way, not with ``Job.cancel()``, whose second request (``/reset``) goes around
        the proxy; its threads end when the Space reports the job stopped."""
        return self._canceller.send(conn, session_hash, event_id, started=started)

    def _cancel_once_joined(self, join: asyncio.Future[str]) -> None:
        """An abandoned job is still joining the queue (its cancel goes once it has an id):
        closing the loop's connections waits for the join, or the Space would keep a job that nobody
        cancels."""
        self._joining.add(join)
        join.add_done_callback(self._joining.discard)

    async def _settle_joins(self) -> None:
        """Wait (within ``CANCEL_TIMEOUT``) for the joins of abandoned jobs on this loop."""
        loop = asyncio.get_running_loop()
        joining = [f for f in list(self._joining) if f.get_loop() is loop]
        if joining:
            await asyncio.wait(joining, timeout=CANCEL_TIMEOUT)

    def _join_cancels(self) -> None:
        """Wait for the cancellations in flight (each ends within ``CANCEL_TIMEOUT``)."""
        self._canceller.join()

    # -- closing ----------------------------------------------------------------------------

    async def _close_connections(self) -> None:
        """Close the running loop's connections, once its abandoned jobs have joined."""
        await self._settle_joins()
        for member in self._members:
            await member.close_http()

    def close(self) -> None:
        """Close connections, stop the sync API's thread, and wait until the Space has been
        asked to stop every job cancelled so far. Idempotent."""
        self._closed = True
        self._runner.stop(self._close_connections)
        self._canceller.close()
        for member in self._members:
            member.close()
        self.state.close()

    async def aclose(self) -> None:
        """Close this loop's connections, stop the sync API's thread, and wait until the Space
        has been asked to stop every job cancelled so far. Idempotent."""
        await self._close_connections()
        await run_in_thread(self._join_cancels, name="qwen_gradio-close")
        self.close()

    def __enter__(self) -> QwenClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> QwenClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


_shared: dict[Settings, QwenClient] = {}
_shared_lock = threading.Lock()


def shared_client(settings: Settings) -> QwenClient:
    """The process's one client for ``settings`` (made on first use), for front ends called
    once per reply with settings rather than a client (the providers, the llm plugin): a
    Space's config is fetched once, and its connections are pooled. Its async use starts no
    thread."""
    with _shared_lock:
        client = _shared.get(settings)
        if client is None or client._closed:
            client = _shared[settings] = QwenClient(settings=settings)
        return client
