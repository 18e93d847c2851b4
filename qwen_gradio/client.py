"""QwenClient: chat with a Qwen demo Space, sync or async, streamed or whole."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import ssl
import sys
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import httpx

from ._cache import SpaceCache, cache_enabled
from ._compat import close_connection, connect
from ._loop import LoopThread, run_in_thread
from ._transport import (
    TRANSPORTS,
    GradioClientJob,
    cancel_job,
    connect_direct,
    event_stream,
    join_queue,
    new_session_hash,
    transport_error,
)
from ._version import __version__
from ._warm import warm_http_imports
from .errors import (
    InvalidOptionError,
    QwenGradioError,
    SpaceUnavailableError,
    StreamClosedError,
    StreamTimeoutError,
)
from .messages import Conversation, Prompt, to_conversation
from .space import ChatOption, SpaceConnection, resolve_space_url
from .stream import QueueStatus, ReplyCompleted, ReplyState, StreamEvent, TextDelta

__all__ = ["AsyncEvents", "AsyncStream", "QwenClient", "Stream", "Timeouts"]

T = TypeVar("T")

warm_http_imports()

CANCEL_TIMEOUT = 5.0  # seconds a cancellation request may take
USER_AGENT = f"qwen_gradio/{__version__}"


@dataclass(frozen=True)
class Timeouts:
    """Limits, in seconds, on one reply (``None``: no limit).

    - ``connect``: reaching the Space and having it accept the job.
    - ``first_token``: from submitting to the first text (the queue wait included).
    - ``idle``: between two pieces of text.
    - ``total``: the whole reply.
    """

    connect: float | None = 10.0
    first_token: float | None = 300.0
    idle: float | None = 60.0
    total: float | None = 900.0

    @classmethod
    def of(cls, value: Timeouts | float | None) -> Timeouts:
        """Timeouts from a Timeouts, a number (the total limit) or None (the defaults)."""
        if value is None:
            return cls()
        if isinstance(value, Timeouts):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return cls(total=float(value))
        raise ValueError(f"timeout must be a positive number or Timeouts, not {value!r}")


class QwenClient:
    """A client for the Qwen2.5-Max Space, or any Space built like its demo.

    Parameters:
        space: a Space id ("owner/name") or URL; default ``$QWEN_GRADIO_SPACE``, else
            "Qwen/Qwen2.5-Max-Demo".
        hf_token: a Hugging Face token for private or duplicated Spaces; default ``$HF_TOKEN``.
            A token saved on this machine is never sent implicitly.
        proxy: an http(s) proxy URL used for every request.
        timeout: ``Timeouts``, or a number of seconds for the whole reply.
        options: values for the Space's extra chat inputs, by name or label (the Qwen2.5 demo's
            ``{"model_size": "32B"}``); see ``chat_options()``. Each call may override them.
        transport: "auto" (default: "direct" when the Space speaks sse_v3, else
            "gradio_client"), "direct" (qwen_gradio speaks the queue protocol itself: one delta
            per Space step, no polling), or "gradio_client" (jobs go through
            ``gradio_client.Client.submit``; all the protocols gradio_client speaks).
        cache: remember, on disk, what connecting learnt that a Space's config does not say (the
            names of its options), so a later process asks one request less; every use is
            validated against the config. Default: on, unless ``QWEN_GRADIO_NO_CACHE=1``.

    Example::

        with QwenClient() as client:
            for delta in client.stream("What is the capital of France?"):
                print(delta, end="", flush=True)

    The Space is contacted on first use: its config is fetched once and reused. Use the client as
    a context manager, or call ``close()``/``aclose()``, to release its connections and thread.
    """

    def __init__(
        self,
        space: str | None = None,
        *,
        hf_token: str | None = None,
        proxy: str | None = None,
        timeout: Timeouts | float | None = None,
        options: Mapping[str, Any] | None = None,
        transport: str = "auto",
        cache: bool | None = None,
    ) -> None:
        self.space_url = resolve_space_url(space)
        self.timeouts = Timeouts.of(timeout)
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, not {transport!r}")
        self.transport = transport
        self.options = _checked_options(options)
        self._hf_token = hf_token if hf_token is not None else os.environ.get("HF_TOKEN") or None
        self._proxy = proxy
        self._cache = SpaceCache() if cache_enabled(cache) else None
        self._headers = {"user-agent": USER_AGENT, "x-gradio-user": "api"}
        if self._hf_token:  # where gradio_client puts it (a Space's own auth uses Authorization)
            self._headers["x-hf-authorization"] = f"Bearer {self._hf_token}"
        self._connection: SpaceConnection | None = None
        self._connect_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = (
            weakref.WeakKeyDictionary()
        )
        self._runner = LoopThread()
        self._cancels: list[threading.Thread] = []
        self._cancels_lock = threading.Lock()
        self._closed = False
        self._finalizer = weakref.finalize(self, self._runner.stop)

    def __repr__(self) -> str:
        return f"QwenClient(space={self.space_url!r})"

    # -- connecting -------------------------------------------------------------------------

    def connect(self) -> SpaceConnection:
        """Connect to the Space now (otherwise done on first use); return what was learnt."""
        if self._connection is not None:
            return self._connection
        if self._closed:
            raise StreamClosedError("this QwenClient is closed")
        return self._runner.run(self.aconnect())

    async def aconnect(self) -> SpaceConnection:
        """Async twin of ``connect()``.

        The direct transport asks the Space for its config (and, for a Space with options,
        their names, unless the cache has them for exactly this chat event) over this loop's
        pool, without gradio_client. ``transport="gradio_client"``, or a Space whose protocol
        the direct transport does not speak, connects through gradio_client instead."""
        if self._connection is not None:
            return self._connection
        if self._closed:
            raise StreamClosedError("this QwenClient is closed")
        loop = asyncio.get_running_loop()
        lock = self._connect_locks.setdefault(loop, asyncio.Lock())
        async with lock:
            if self._connection is not None:
                return self._connection
            connection = None
            if self.transport != "gradio_client":
                http = await self._pool()
                timeout = httpx.Timeout(self.timeouts.connect)
                connection = await connect_direct(
                    http,
                    self.space_url,
                    timeout,
                    self._cache,
                    fallback=self.transport == "auto",
                )
            if connection is None:
                connection = await run_in_thread(self._connect_with_gradio_client)
            try:
                connection.endpoint.option_values(self.options)
            except InvalidOptionError:
                close_connection(connection)
                raise
            if self._connection is None:
                self._connection = connection
            elif connection is not self._connection:  # another loop connected first
                close_connection(connection)
        return self._connection

    def _connect_with_gradio_client(self) -> SpaceConnection:
        kwargs: dict[str, Any] = {"timeout": httpx.Timeout(self.timeouts.connect)}
        if self._proxy:
            kwargs["proxy"] = self._proxy
        return connect(
            self.space_url,
            hf_token=self._hf_token,
            httpx_kwargs=kwargs,
            user_agent=USER_AGENT,
        )

    def chat_options(self) -> tuple[ChatOption, ...]:
        """The Space's extra chat inputs (connects first): each with its name, component,
        allowed values and default. The Qwen2.5-Max Space has none."""
        return self.connect().endpoint.options

    async def _pool(self) -> httpx.AsyncClient:
        """The connection pool of the running event loop, closed when that loop shuts down its
        async generators (as ``asyncio.run`` does), or by ``aclose()``/``close()``."""
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None or pool[0].is_closed:
            conn = self._connection
            http = httpx.AsyncClient(
                headers=self._headers,
                cookies=conn.cookies if conn is not None else None,
                proxy=self._proxy,
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=20),
                verify=_tls(self.space_url, self._proxy),
            )
            keeper = _close_at_shutdown(http)
            await keeper.asend(None)  # now the loop's shutdown_asyncgens() will close it
            pool = self._pools[loop] = (http, keeper)
        return pool[0]

    # -- chatting ---------------------------------------------------------------------------

    def astream(
        self,
        messages: Prompt,
        *,
        system: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> AsyncStream:
        """Stream the reply to ``messages`` as text deltas (``async for``).

        ``messages`` is a prompt string or OpenAI-style messages; ``system`` is put before any
        system messages; ``options`` override the client's for this reply. Raises
        InvalidMessagesError at once for bad input; the job is submitted on the first iteration,
        after the options are checked against the Space's (InvalidOptionError).
        """
        if self._closed:
            raise StreamClosedError("this QwenClient is closed")
        return AsyncStream(self._job(to_conversation(messages, system), options))

    async def achat(
        self,
        messages: Prompt,
        *,
        system: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> str:
        """The whole reply to ``messages``."""
        async with self.astream(messages, system=system, options=options) as stream:
            return await stream.until_done()

    def stream(
        self,
        messages: Prompt,
        *,
        system: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Stream:
        """Stream the reply to ``messages`` as text deltas (``for``); see ``astream``."""
        if self._closed:
            raise StreamClosedError("this QwenClient is closed")
        job = self._job(to_conversation(messages, system), options)
        return Stream(AsyncStream(job), self._runner)

    def chat(
        self,
        messages: Prompt,
        *,
        system: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> str:
        """The whole reply to ``messages``."""
        with self.stream(messages, system=system, options=options) as stream:
            return stream.until_done()

    def _job(self, conversation: Conversation, options: Mapping[str, Any] | None) -> _Job:
        """A job for ``conversation``, with what it needs of this client."""
        return _Job(
            conversation,
            self.timeouts,
            {**self.options, **_checked_options(options)},
            connect=self.aconnect,
            pool=self._pool,
            cancel=self._cancel_in_background,
        )

    def _cancel_in_background(
        self, conn: SpaceConnection, session_hash: str, event_id: str
    ) -> threading.Thread:
        """Ask the Space to stop a job, from a short-lived thread with its own event loop and
        connection (same proxy, headers and cookies), so that closing a stream never waits on
        the network: it cannot then be cut short by an event loop that is shutting down, nor
        collide with other generators being closed at the same time. Ends within
        ``CANCEL_TIMEOUT``; not a daemon, so a process that exits right away still sends it.
        A job submitted through gradio_client is cancelled the same way, not with ``Job.cancel()``,
        whose second request (``/reset``) goes around the proxy; its threads end when the Space
        reports the job stopped."""
        proxy = self._proxy

        async def cancel() -> None:
            async with httpx.AsyncClient(
                headers=conn.headers, cookies=conn.cookies, proxy=proxy
            ) as http:
                await cancel_job(http, conn, session_hash, event_id, httpx.Timeout(CANCEL_TIMEOUT))

        def run() -> None:
            try:
                asyncio.run(asyncio.wait_for(cancel(), CANCEL_TIMEOUT))
            except Exception:  # best effort, like cancel_job itself
                pass

        thread = threading.Thread(target=run, name="qwen_gradio-cancel")
        thread.start()
        with self._cancels_lock:
            self._cancels = [t for t in self._cancels if t.is_alive()] + [thread]
        return thread

    def _join_cancels(self) -> None:
        """Wait for the cancellations in flight (each ends within ``CANCEL_TIMEOUT``)."""
        with self._cancels_lock:
            threads = list(self._cancels)
        for thread in threads:
            thread.join(CANCEL_TIMEOUT * 2)

    # -- closing ----------------------------------------------------------------------------

    async def _close_pool(self) -> None:
        """Close the running loop's connection pool."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool[1].aclose()

    def close(self) -> None:
        """Close connections, stop the sync API's thread, and wait until the Space has been
        asked to stop every job cancelled so far. Idempotent."""
        self._closed = True
        self._runner.stop(self._close_pool)
        self._pools.clear()
        self._join_cancels()
        if self._connection is not None:
            close_connection(self._connection)

    async def aclose(self) -> None:
        """Close this loop's connections, stop the sync API's thread, and wait until the Space
        has been asked to stop every job cancelled so far. Idempotent."""
        await self._close_pool()
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


_Pool = tuple[httpx.AsyncClient, AsyncGenerator[None, None]]


async def _close_at_shutdown(http: httpx.AsyncClient) -> AsyncGenerator[None, None]:
    """Holds ``http`` open; closing this generator (the loop's ``shutdown_asyncgens()``, or
    ``QwenClient.aclose()``) closes it."""
    try:
        yield
    finally:
        await http.aclose()


class AsyncStream:
    """One streamed reply: an async iterator of text deltas, closable, an async context manager.

    ``events()`` gives the typed events instead: ``QueueStatus`` while the job waits,
    ``TextDelta`` for new text, ``ReplyCompleted`` at the end. Closing the stream, cancelling the
    task reading it, or dropping it before the reply is complete cancels the job on the Space.
    Afterwards ``text`` holds the reply (so far, if it was cut short).
    """

    def __init__(self, job: _Job) -> None:
        self._job = job
        self._events: AsyncGenerator[StreamEvent, None] | None = None
        self._closed = False

    @property
    def conversation(self) -> Conversation:
        """What the Space is sent: the query, the earlier turns, the system prompt."""
        return self._job.conversation

    @property
    def session_hash(self) -> str:
        """The session this reply's job runs under (a fresh one per stream)."""
        return self._job.session_hash

    @property
    def event_id(self) -> str | None:
        """The job's id on the Space, once it has joined the queue."""
        return self._job.event_id

    @property
    def text(self) -> str:
        """The reply text received so far (all of it once the stream has ended)."""
        return self._job.state.text

    @property
    def rewrites(self) -> int:
        """How often the Space rewrote text it had already sent (see qwen_gradio.stream)."""
        return self._job.state.rewrites

    @property
    def completed(self) -> bool:
        """True once the Space has finished the reply."""
        return self._job.state.completed

    @property
    def status(self) -> QueueStatus | None:
        """The latest queue status the Space reported (None before any)."""
        return self._job.state.status

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> str:
        while True:
            event = await self.next_event()
            if isinstance(event, TextDelta):
                return event.delta

    def events(self) -> AsyncEvents:
        """The reply as typed events (``async for event in stream.events()``)."""
        return AsyncEvents(self)

    async def next_event(self) -> StreamEvent:
        """The next typed event; raises StopAsyncIteration after the last."""
        if self._closed:
            raise StreamClosedError("the stream is closed")
        if self._events is None:
            self._events = self._job.events()
            return await _untracked_anext(self._events)
        return await self._events.__anext__()

    async def until_done(self) -> str:
        """Read the rest of the reply; return all of its text."""
        async for _ in self:
            pass
        return self.text

    async def aclose(self) -> None:
        """Stop reading; cancel the job on the Space if the reply is not complete."""
        self._closed = True
        events, self._events = self._events, None
        if events is not None:
            await events.aclose()
        self._job.cancel_soon()

    def __del__(self) -> None:
        # Dropped before the reply was complete, perhaps after its event loop stopped.
        try:
            self._job.cancel_soon()
        except Exception:  # the interpreter may be shutting down
            pass

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class AsyncEvents:
    """``AsyncStream.events()``: the stream's typed events; closing it closes the stream."""

    def __init__(self, stream: AsyncStream) -> None:
        self._stream = stream

    def __aiter__(self) -> AsyncEvents:
        return self

    async def __anext__(self) -> StreamEvent:
        return await self._stream.next_event()

    async def aclose(self) -> None:
        await self._stream.aclose()


class _Job:
    """One job on the Space and its reply state, given what it needs of its client (connect, the
    loop's pool, a background cancel). Its ``events()`` generator holds no reference to the
    AsyncStream that owns it, so a stream that is dropped is freed (and its job cancelled) at
    once, not at the next cyclic garbage collection."""

    def __init__(
        self,
        conversation: Conversation,
        timeouts: Timeouts,
        options: Mapping[str, Any],
        *,
        connect: Callable[[], Awaitable[SpaceConnection]],
        pool: Callable[[], Awaitable[httpx.AsyncClient]],
        cancel: Callable[[SpaceConnection, str, str], object],
    ) -> None:
        self.conversation = conversation
        self.timeouts = timeouts
        self.options = options
        self.connect = connect
        self.pool = pool
        self.cancel = cancel
        self.session_hash = new_session_hash()
        self.event_id: str | None = None
        self.state = ReplyState(chatbot_output=1)  # the layout's own index is set on submitting
        self.submitted: tuple[SpaceConnection, asyncio.Future[str]] | None = None
        self.via: GradioClientJob | None = None  # transport="gradio_client"
        self.cancel_started = False

    def cancel_soon(self) -> None:
        """Cancel the job on the Space unless the reply is complete (once; never waits)."""
        if self.cancel_started or self.submitted is None or self.state.completed:
            return
        self.cancel_started = True
        conn, join = self.submitted
        send, session_hash = self.cancel, self.session_hash

        def cancel(join: asyncio.Future[str]) -> None:
            if not join.cancelled() and join.exception() is None:
                send(conn, session_hash, join.result())

        if join.done():
            cancel(join)
        else:  # the job is still joining the queue: cancel it once it has an id
            join.add_done_callback(cancel)

    def deadline(self, started: float, last_text: float | None) -> tuple[float | None, str]:
        """The next limit that applies while waiting for the reply's text, and its kind."""
        t = self.timeouts
        limits: list[tuple[float, str]] = []
        if t.total is not None:
            limits.append((started + t.total, "total"))
        if last_text is None and t.first_token is not None:
            limits.append((started + t.first_token, "first_token"))
        if last_text is not None and t.idle is not None:
            limits.append((last_text + t.idle, "idle"))
        return min(limits) if limits else (None, "")

    def connect_deadline(self, started: float) -> tuple[float | None, str]:
        """The limit on reaching the Space and having it accept the job."""
        t = self.timeouts
        limits = [(started + t.connect, "connect")] if t.connect is not None else []
        if t.total is not None:
            limits.append((started + t.total, "total"))
        return min(limits) if limits else (None, "")

    async def within(
        self, awaitable: Awaitable[T], deadline: tuple[float | None, str], waiting_for: str
    ) -> T:
        """``await awaitable``, raising StreamTimeoutError when ``deadline`` passes first."""
        when, kind = deadline
        try:
            async with asyncio.timeout_at(when):
                return await awaitable
        except TimeoutError:
            if when is None or asyncio.get_running_loop().time() < when:
                raise  # not ours
            limit = getattr(self.timeouts, kind)
            raise StreamTimeoutError(
                f"no {waiting_for} within the {kind} timeout ({limit} s)",
                kind=kind,
                partial_text=self.state.text,
            ) from None

    async def events(self) -> AsyncGenerator[StreamEvent, None]:
        """Submit the job and yield the reply's events. Every wait is bounded by a limit.

        One generator for both transports (a nested one would be closed by the loop at
        shutdown while this one's ``finally`` closes it too)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        accepted = "job accepted by the Space"
        conn = await self.within(self.connect(), self.connect_deadline(started), accepted)
        inputs = conn.endpoint.inputs(self.conversation, self.options)  # before any job is sent
        last_text: float | None = None
        try:
            if conn.transport == "gradio_client":
                state = self.state = ReplyState(
                    conn.endpoint.chatbot_output,
                    diffs=False,
                    quoted_errors=conn.endpoint.gradio_major == 4,
                )
                join: asyncio.Future[str] = loop.create_future()
                self.submitted = (conn, join)
                self.session_hash = conn.client.session_hash
                arrived = asyncio.Event()
                settle = _settle(join)

                def joined(event_id: str) -> None:  # the wait's limit changes: wake up
                    settle(event_id)
                    arrived.set()

                via = self.via = GradioClientJob(
                    conn, _threadsafe(loop, arrived.set), _threadsafe(loop, joined)
                )
                via.start(inputs)
                while not state.completed:
                    items = via.take()
                    if not items:
                        arrived.clear()
                        items = via.take()  # what came between the two looks
                    if not items:
                        if join.done():
                            self.event_id = join.result()
                            deadline = self.deadline(started, last_text)
                            await self.within(arrived.wait(), deadline, "reply text")
                        else:
                            deadline = self.connect_deadline(started)
                            await self.within(arrived.wait(), deadline, accepted)
                        continue
                    for item in items:
                        if isinstance(item, tuple):  # ("ended", error or None)
                            if isinstance(item[1], QwenGradioError):
                                item[1].partial_text = state.text
                                raise item[1]
                            break
                        for event in state.feed_message(item):  # type: ignore[arg-type]
                            if isinstance(event, TextDelta):
                                last_text = loop.time()
                            yield event
                    else:
                        continue
                    break  # the job ended
                if join.done() and not join.cancelled():
                    self.event_id = join.result()
            else:
                http = await self.pool()
                state = self.state = ReplyState(
                    conn.endpoint.chatbot_output, quoted_errors=conn.endpoint.gradio_major == 4
                )
                join = asyncio.ensure_future(
                    join_queue(
                        http, conn, inputs, self.session_hash, httpx.Timeout(self.timeouts.connect)
                    )
                )
                self.submitted = (conn, join)
                deadline = self.connect_deadline(started)
                self.event_id = await self.within(asyncio.shield(join), deadline, accepted)
                # The event stream's headers count against the first token: a front end that
                # takes the request and never answers cannot hang the reply.
                read_forever = httpx.Timeout(self.timeouts.connect, read=None)
                opening = event_stream(http, conn, self.session_hash, read_forever)
                async with contextlib.AsyncExitStack() as stack:
                    deadline = self.deadline(started, None)
                    opened = stack.enter_async_context(opening)
                    lines = await self.within(opened, deadline, "reply text")
                    while not (state.completed or state.ended):
                        deadline = self.deadline(started, last_text)
                        try:
                            line = await self.within(lines.__anext__(), deadline, "reply text")
                        except StopAsyncIteration:
                            break
                        except httpx.HTTPError as exc:
                            raise transport_error(exc, "reading the reply", state.text) from exc
                        for event in state.feed_line(line):
                            if isinstance(event, TextDelta):
                                last_text = loop.time()
                            yield event
            if not state.completed:
                raise SpaceUnavailableError(
                    "the Space ended the stream before the reply was complete",
                    partial_text=state.text,
                )
        finally:
            self.cancel_soon()


_TLS: ssl.SSLContext | None = None
_TLS_LOCK = threading.Lock()


def _tls(url: str, proxy: str | None) -> ssl.SSLContext:
    """The TLS context of a pool: httpx's default (certifi's CAs), made once per process and
    shared by every pool; a pool that can only speak plain HTTP (an http:// Space, no proxy)
    gets one that loads no CAs (loading them takes 20-35 ms, a noticeable part of a cold
    start)."""
    global _TLS
    if not url.startswith("https:") and proxy is None:
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # never used: nothing here speaks TLS
    with _TLS_LOCK:
        if _TLS is None:
            _TLS = httpx.create_ssl_context()
        return _TLS


def _threadsafe(loop: asyncio.AbstractEventLoop, fn: Callable[..., None]) -> Callable[..., None]:
    """``fn`` called on ``loop`` from any thread; nothing once the loop is closed."""

    def call(*args: Any) -> None:
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: no one is reading any more
            pass

    return call


def _settle(join: asyncio.Future[str]) -> Callable[[str], None]:
    """Settle ``join`` with the event id (even when nobody reads any more, so that a closed
    stream's job is still cancelled once it has an id)."""

    def settle(event_id: str) -> None:
        if not join.done():
            join.set_result(event_id)

    return settle


def _checked_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``options`` as a dict, if it is a mapping with string keys (values are checked against
    the Space's own once it is known)."""
    if options is None:
        return {}
    if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
        raise InvalidOptionError(
            f"options must map option names to values, not {type(options).__name__}"
        )
    return dict(options)


def _untracked_anext(events: AsyncGenerator[StreamEvent, None]) -> Awaitable[StreamEvent]:
    """``events.__anext__()`` for a stream's own event generator, which the running loop then
    does not track for ``shutdown_asyncgens()``: its AsyncStream is its one owner and closes it
    (or, once it is garbage, the loop's finalizer does). Were the loop to close it too, it could
    do so while an outer generator's ``finally`` is closing it, and print "aclose(): asynchronous
    generator is already running" at shutdown."""
    firstiter, finalizer = sys.get_asyncgen_hooks()
    sys.set_asyncgen_hooks(firstiter=None, finalizer=finalizer)
    try:
        return events.__anext__()
    finally:
        sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=finalizer)


_END = object()  # the reply ended
_CLOSED = object()  # the stream was closed while the pump ran


class _Pump:
    """Reads an AsyncStream on the loop thread and hands its events to a queue. It holds no
    reference to the sync Stream, so a Stream that is dropped is freed (and closes this)."""

    def __init__(self, inner: AsyncStream, out: queue.SimpleQueue[object]) -> None:
        self.inner = inner
        self.out = out
        self.task: asyncio.Task[Any] | None = None

    async def run(self) -> None:
        self.task = asyncio.current_task()
        try:
            async for event in self.inner.events():
                self.out.put(event)
        except asyncio.CancelledError:
            self.out.put(_CLOSED)
            raise
        except Exception as error:
            self.out.put(error)
        else:
            self.out.put(_END)


class Stream:
    """The sync twin of AsyncStream: an iterator of text deltas, ``events()`` for typed events,
    closable, a context manager.

    The async stream runs on the client's private loop thread and hands its events over through
    a queue, one cheap hand-over per event. Breaking out of the loop and dropping the stream,
    ``close()``, an exception (Ctrl-C included) while waiting, or garbage collection cancels an
    unfinished job on the Space. ``text``, ``status`` and ``completed`` describe what this
    stream has handed out.
    """

    def __init__(self, inner: AsyncStream, runner: LoopThread) -> None:
        self._inner = inner
        self._runner = runner
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._pump: _Pump | None = None
        self._finished = False
        self._closed = False
        self._text = ""
        self._status: QueueStatus | None = None
        self._completed = False

    @property
    def conversation(self) -> Conversation:
        """What the Space is sent: the query, the earlier turns, the system prompt."""
        return self._inner.conversation

    @property
    def session_hash(self) -> str:
        """The session this reply's job runs under (a fresh one per stream)."""
        return self._inner.session_hash

    @property
    def event_id(self) -> str | None:
        """The job's id on the Space, once it has joined the queue."""
        return self._inner.event_id

    @property
    def text(self) -> str:
        """The reply text handed out so far (all of it once the stream has ended)."""
        return self._text

    @property
    def status(self) -> QueueStatus | None:
        """The latest queue status handed out (None before any)."""
        return self._status

    @property
    def completed(self) -> bool:
        """True once the whole reply has been handed out."""
        return self._completed

    @property
    def rewrites(self) -> int:
        """How often the Space rewrote text it had already sent (see qwen_gradio.stream)."""
        return self._inner.rewrites

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> str:
        while True:
            event = self.next_event()
            if isinstance(event, TextDelta):
                return event.delta

    def events(self) -> Iterator[StreamEvent]:
        """The reply as typed events (``for event in stream.events()``)."""
        while True:
            try:
                yield self.next_event()
            except StopIteration:
                return

    def next_event(self) -> StreamEvent:
        """The next typed event; raises StopIteration after the last."""
        if self._closed:
            raise StreamClosedError("the stream is closed")
        if self._finished:
            raise StopIteration
        if self._pump is None:  # connecting too runs there, within the reply's limits
            self._pump = _Pump(self._inner, self._queue)
            self._runner.submit(self._pump.run())
        try:
            item = self._queue.get()
        except BaseException:  # Ctrl-C while waiting
            self.close()
            raise
        if item is _END:
            self._finished = True
            raise StopIteration
        if item is _CLOSED:
            raise StreamClosedError("the stream is closed")
        if isinstance(item, BaseException):
            self._finished = True
            self.close()
            raise item
        if isinstance(item, TextDelta):
            self._text = item.text
        elif isinstance(item, QueueStatus):
            self._status = item
        elif isinstance(item, ReplyCompleted):
            self._text, self._completed = item.text, True
        return item  # type: ignore[return-value]

    def until_done(self) -> str:
        """Read the rest of the reply; return all of its text."""
        for _ in self:
            pass
        return self._text

    async def _aclose(self) -> None:
        task = self._pump.task if self._pump else None
        if task is not None and not task.done():
            task.cancel()  # the pump's read is interrupted; closing the stream cancels the job
            await asyncio.wait({task})
        await self._inner.aclose()

    def close(self) -> None:
        """Stop reading; cancel the job on the Space if the reply is not complete."""
        if self._closed:
            return
        self._closed = True
        if self._runner.running:
            try:
                self._runner.run(self._aclose(), timeout=CANCEL_TIMEOUT * 2)
            except Exception:  # closing is best effort and must not raise
                pass

    def __del__(self) -> None:
        if not self._closed and self._runner.running:
            self._closed = True
            try:
                self._runner.submit(self._aclose())
            except RuntimeError:  # the loop is gone
                pass

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
