"""One reply's job: connect, submit, feed each queue message to the I/O-free ``ReplyState``,
every wait under the reply's limits; cancel it on the Space when it is abandoned."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

from ._transports import Submission, Transport
from .errors import QwenGradioError, SpaceUnavailableError, StreamTimeoutError
from .messages import Conversation
from .settings import Timeouts
from .space import SpaceConnection, new_session_hash
from .stream import ReplyState, StreamEvent, TextDelta

__all__ = ["Job"]

T = TypeVar("T")
Deadline = tuple[float | None, str]  # (loop time, the limit's kind)
ACCEPTED = "job accepted by the Space"


class Job:
    """One job on the Space and its reply state, given what it needs of its client (connect,
    a background cancel). Its ``events()`` generator holds no reference to the AsyncStream that
    owns it, so a stream that is dropped is freed (and its job cancelled) at once, not at the
    next cyclic garbage collection."""

    def __init__(
        self,
        conversation: Conversation,
        timeouts: Timeouts,
        options: Mapping[str, Any],
        *,
        connect: Callable[[], Awaitable[Transport]],
        cancel: Callable[[SpaceConnection, str, str], object],
    ) -> None:
        self.conversation = conversation
        self.timeouts = timeouts
        self.options = options
        self.connect = connect
        self.cancel = cancel
        self.session_hash = new_session_hash()
        self.event_id: str | None = None
        self.state = ReplyState(chatbot_output=1)  # the layout's own index is set on submitting
        self.submitted: tuple[SpaceConnection, Submission] | None = None
        self.cancel_started = False

    def cancel_soon(self) -> None:
        """Cancel the job on the Space unless the reply is complete (once; never waits)."""
        if self.cancel_started or self.submitted is None or self.state.completed:
            return
        self.cancel_started = True
        conn, submission = self.submitted
        send, session_hash = self.cancel, submission.session_hash

        def cancel(join: asyncio.Future[str]) -> None:
            if not join.cancelled() and join.exception() is None:
                send(conn, session_hash, join.result())

        if submission.join.done():
            cancel(submission.join)
        else:  # the job is still joining the queue: cancel it once it has an id
            submission.join.add_done_callback(cancel)

    def deadline(self, started: float, last_text: float | None) -> Deadline:
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

    def connect_deadline(self, started: float) -> Deadline:
        """The limit on reaching the Space and having it accept the job."""
        t = self.timeouts
        limits = [(started + t.connect, "connect")] if t.connect is not None else []
        if t.total is not None:
            limits.append((started + t.total, "total"))
        return min(limits) if limits else (None, "")

    async def within(self, awaitable: Awaitable[T], deadline: Deadline, waiting_for: str) -> T:
        """``await awaitable``, raising StreamTimeoutError when ``deadline`` passes first, and
        giving any error the reply's text so far."""
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
        except QwenGradioError as error:
            error.partial_text = error.partial_text or self.state.text
            raise

    async def events(self) -> AsyncGenerator[StreamEvent, None]:
        """Submit the job and yield the reply's events. Every wait is bounded by a limit."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        transport = await self.within(self.connect(), self.connect_deadline(started), ACCEPTED)
        conn = transport.connection
        inputs = conn.endpoint.inputs(self.conversation, self.options)  # before any job is sent
        submission = transport.submit(inputs, self.session_hash)
        self.session_hash = submission.session_hash
        self.submitted = (conn, submission)
        state = self.state = ReplyState(
            conn.endpoint.chatbot_output,
            diffs=submission.diffs,
            quoted_errors=conn.endpoint.gradio_major == 4,
        )
        last_text: float | None = None
        try:
            joined = submission.joined()
            self.event_id = await self.within(joined, self.connect_deadline(started), ACCEPTED)
            while not (state.completed or state.ended):
                deadline = self.deadline(started, last_text)
                message = await self.within(submission.next_message(), deadline, "reply text")
                if message is None:
                    break
                try:
                    events = state.feed_message(message)
                except QwenGradioError as error:
                    error.partial_text = error.partial_text or state.text
                    raise
                for event in events:
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
            await submission.aclose()
