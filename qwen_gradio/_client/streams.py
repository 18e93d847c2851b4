"""The streams a reply is read through: ``AsyncStream`` (the one implementation) and its sync
twin ``Stream``, which reads it on the client's loop thread through ``qwen_gradio._client.bridge``.

Both are iterators of text deltas, with ``events()`` for typed events, closable, and context
managers. Closing a stream (or its ``events()`` iterator), breaking out of the loop and dropping
it, an exception (Ctrl-C included) while waiting, or garbage collection cancels an unfinished
job on the Space. ``text``, ``status``, ``completed`` and ``rewrites`` describe what the stream
has handed out: for the async stream, the reply state itself; for the sync one, the state as of
the last event it handed out (its loop thread may have read further).
"""

from __future__ import annotations

import logging
import queue
import sys
from collections import deque
from collections.abc import AsyncGenerator, Awaitable
from types import TracebackType

from .._core.messages import Conversation
from .._core.reply import HandedOut, QueueStatus, ReplyCompleted, ReplyState, StreamEvent, TextDelta
from .._core.shape import ReplyShape, Shaper, missed_call
from .._core.tools import ToolCall
from ..errors import InvalidReplyError, StreamClosedError
from ..tokens import Usage, count_text, first_tokens, usage_of
from .bridge import CLOSED, END, LoopThread, Pump
from .cancels import CANCEL_TIMEOUT
from .job import Job

__all__ = ["AsyncEvents", "AsyncStream", "Events", "Stream"]

logger = logging.getLogger("qwen_gradio")


class _ReplyView:
    """What both streams say of their reply, read from its job's state."""

    _job: Job
    _shape: ReplyShape | None

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

    def _seen(self) -> ReplyState | HandedOut:
        """Where the reply's text and status are read: the job's own state (the async stream
        hands events out as they come), or what the sync stream has handed out so far."""
        return self._job.state

    @property
    def text(self) -> str:
        """The reply's text so far (all of it once the stream has ended)."""
        return self._seen().text

    @property
    def rewrites(self) -> int:
        """How often the Space rewrote text it had already sent (see ``_core.reply``)."""
        return self._seen().rewrites

    @property
    def completed(self) -> bool:
        """True once the whole reply has come."""
        return self._seen().completed

    @property
    def status(self) -> QueueStatus | None:
        """The latest queue status the Space reported (None before any)."""
        return self._seen().status

    @property
    def usage(self) -> Usage | None:
        """The reply's token counts once it is complete (None before, or without the
        tokenizer: ``qwen_gradio.tokens``)."""
        return self._seen().usage

    @property
    def space(self) -> str | None:
        """The Space of the pool the reply went to (the last one tried; None before any)."""
        return self._job.space

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The tool calls the reply has made so far (a reply asked with ``tools``)."""
        return self._seen().tool_calls

    @property
    def finish_reason(self) -> str | None:
        """Why the reply ended, once it has: "stop", "length" (``max_tokens``) or
        "tool_calls" (OpenAI's words); None before."""
        return self._seen().finish_reason

    @property
    def attempts(self) -> int:
        """How many times the reply was tried (more than 1 after a ``Retrying``)."""
        return self._job.attempts

    @property
    def missed_call(self) -> str | None:
        """Once the reply is complete, why it is not the call ``tool_choice`` asked for
        ("required", a function); None when it is, or none was asked. ``chat`` and serve ask a
        whole reply that missed once more."""
        if not self.completed:
            return None
        return missed_call(self._shape, self.tool_calls, self.finish_reason)


class AsyncStream(_ReplyView):
    """One streamed reply: an async iterator of text deltas, closable, an async context manager.

    ``events()`` gives the typed events instead: ``QueueStatus`` while the job waits,
    ``TextDelta`` for new text, ``ReplyCompleted`` at the end. Closing the stream, cancelling the
    task reading it, or dropping it before the reply is complete cancels the job on the Space.
    Afterwards ``text`` holds the reply (so far, if it was cut short).
    """

    def __init__(self, job: Job, shape: ReplyShape | None = None) -> None:
        self._job = job
        self._shape = shape
        self._events: AsyncGenerator[StreamEvent, None] | None = None
        self._closed = False
        # A reply asked with tools, stop or max_tokens is read through a Shaper; its view is
        # what the stream hands out.
        self._shaper = Shaper(shape, count_text, first_tokens) if shape and shape.active else None
        self._shaped = HandedOut() if self._shaper is not None else None
        self._ready: deque[StreamEvent] = deque()
        self._cut = False  # the Shaper ended the reply: the job is cancelled
        self._visible = ""  # the text handed out or ready to be
        self._failure: InvalidReplyError | None = None  # the reply is not the JSON asked for

    def _seen(self) -> ReplyState | HandedOut:
        return self._shaped if self._shaped is not None else self._job.state

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> str:
        while True:
            event = await self.next_event()
            if isinstance(event, TextDelta):
                return event.delta

    def events(self) -> AsyncEvents:
        """The reply as typed events (``async for event in stream.events()``); closing this
        iterator closes the stream."""
        return AsyncEvents(self)

    async def next_event(self) -> StreamEvent:
        """The next typed event; raises StopAsyncIteration after the last."""
        if self._closed:
            raise StreamClosedError("the stream is closed")
        if self._shaper is None:  # the Space's events as they come (the common path)
            if self._events is None:
                self._events = self._job.events()
                return await _untracked_anext(self._events)
            return await self._events.__anext__()
        while not self._ready:
            if self._failure is not None:  # after the text it came with
                raise self._failure
            if self._cut:
                raise StopAsyncIteration
            self._ready.extend(self._shaped_events(await self._job_event()))
            if self._cut:  # a stop sequence or the limit: the Space stops writing now
                await self._end_job()
        event = self._ready.popleft()
        self._shaped.take(event)  # type: ignore[union-attr]  # set with the shaper
        return event

    async def _job_event(self) -> StreamEvent:
        if self._events is None:
            self._events = self._job.events()
            return await _untracked_anext(self._events)
        return await self._events.__anext__()

    def _shaped_events(self, event: StreamEvent) -> list[StreamEvent]:
        """What the reader gets for one of the job's events, through the Shaper."""
        shaper = self._shaper
        assert shaper is not None and self._shaped is not None
        if isinstance(event, TextDelta):
            pieces = shaper.feed(event.delta)
        elif isinstance(event, ReplyCompleted):
            pieces = shaper.finish()
        else:
            return [event]
        events: list[StreamEvent] = []
        for piece in pieces:
            if isinstance(piece, str):
                self._visible += piece
                events.append(TextDelta(piece, self._visible))
            else:
                events.append(piece)
        if shaper.invalid is not None:
            self._cut = shaper.done
            self._failure = InvalidReplyError(shaper.invalid, partial_text=self._visible)
        elif shaper.done or isinstance(event, ReplyCompleted):
            self._cut = shaper.done
            usage = usage_of(self._job.conversation, shaper.raw)
            calls = tuple(shaper.calls)
            space = self._job.space or ""
            reason = shaper.finish_reason
            events.append(ReplyCompleted(self._visible, space, usage, reason, calls))
        return events

    async def _end_job(self) -> None:
        """Stop the job (the reply was cut): close its events, cancel it on the Space."""
        events, self._events = self._events, None
        if events is not None:
            await events.aclose()
        self._job.cancel_soon()

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
        except Exception:  # the interpreter may be shutting down: nothing to log to
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


class Stream(_ReplyView):
    """The sync twin of AsyncStream: an iterator of text deltas, ``events()`` for typed events,
    closable, a context manager.

    The async stream runs on a loop thread (the client's) and hands its events over through a
    queue (``bridge.Pump``), one cheap hand-over per event. ``text``, ``status``,
    ``completed``, ``rewrites`` and ``usage`` describe what this stream has handed out.
    """

    def __init__(self, inner: AsyncStream, runner: LoopThread) -> None:
        self._inner = inner
        self._job, self._shape = inner._job, inner._shape
        self._runner = runner
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._pump: Pump | None = None
        self._finished = False
        self._closed = False
        self._handed_out = HandedOut()

    def _seen(self) -> HandedOut:
        return self._handed_out

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> str:
        while True:
            event = self.next_event()
            if isinstance(event, TextDelta):
                return event.delta

    def events(self) -> Events:
        """The reply as typed events (``for event in stream.events()``); closing this iterator
        closes the stream."""
        return Events(self)

    def next_event(self) -> StreamEvent:
        """The next typed event; raises StopIteration after the last."""
        if self._closed:
            raise StreamClosedError("the stream is closed")
        if self._finished:
            raise StopIteration
        if self._pump is None:  # connecting too runs there, within the reply's limits
            self._pump = Pump(self._inner.events(), self._queue.put)
            self._runner.submit(self._pump.run())
        try:
            item = self._queue.get()
        except BaseException:  # Ctrl-C while waiting
            self.close()
            raise
        if item is END:
            self._finished = True
            raise StopIteration
        if item is CLOSED:
            raise StreamClosedError("the stream is closed")
        if isinstance(item, BaseException):
            self._finished = True
            self.close()
            raise item
        event: StreamEvent = item  # type: ignore[assignment]  # what the pump puts: an event
        self._handed_out.take(event)
        return event

    def until_done(self) -> str:
        """Read the rest of the reply; return all of its text."""
        for _ in self:
            pass
        return self.text

    async def _aclose(self) -> None:
        if self._pump is not None:
            await self._pump.stop()  # its read is interrupted; closing the stream cancels the job
        await self._inner.aclose()

    def close(self) -> None:
        """Stop reading; cancel the job on the Space if the reply is not complete."""
        if self._closed:
            return
        self._closed = True
        if self._runner.running:
            try:
                self._runner.run(self._aclose(), timeout=CANCEL_TIMEOUT * 2)
            except Exception as exc:  # closing is best effort and must not raise
                logger.debug("closing a stream: %r", exc)

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


class Events:
    """``Stream.events()``: the stream's typed events; closing it closes the stream."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream

    def __iter__(self) -> Events:
        return self

    def __next__(self) -> StreamEvent:
        return self._stream.next_event()

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> Events:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
