"""One reply's job: choose a Space of the pool, connect, submit, feed each queue message to the
I/O-free ``ReplyState``, every wait under the reply's limits; before the first token, try again
where retrying can help; cancel it on the Space when it is abandoned.

A job on a connection made from the cache goes out at once; before any of its messages is read,
the Space's config (asked meanwhile) must agree with the cache, else the job is cancelled and
sent again the new way (``Stale``), which is not one of the reply's attempts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Mapping
from typing import Any, Protocol, TypeVar

from .._core.messages import Conversation
from .._core.reply import QueueStatus, ReplyCompleted, ReplyState, Retrying, StreamEvent, TextDelta
from .._core.space import SpaceConnection, new_session_hash
from .._state import LocalState, State
from .._transports import Submission, Transport
from ..errors import (
    QwenGradioError,
    SpaceProtocolError,
    SpaceUnavailableError,
    StreamTimeoutError,
)
from ..routing import choose, cooldown, with_fleet
from ..settings import Settings
from ..tokens import usage_of
from .member import Member

__all__ = ["Job"]

T = TypeVar("T")
Deadline = tuple[float | None, str]  # (loop time, the limit's kind)
ACCEPTED = "job accepted by the Space"


class Pool(Protocol):
    """What a job needs of its client: the pool's members, connected on demand, the options
    each gets, and a background cancel."""

    settings: Settings
    state: State

    @property
    def members(self) -> tuple[Member, ...]: ...

    async def _connected(self, member: Member, *, provisional: bool = False) -> Transport: ...

    def options_for(self, member: Member, options: Mapping[str, Any]) -> dict[str, Any]: ...

    def _cancel_in_background(
        self, conn: SpaceConnection, session_hash: str, event_id: str, *, started: bool
    ) -> object: ...

    def _cancel_once_joined(self, join: asyncio.Future[str]) -> None: ...


class Stale(Exception):
    """The job went out as the cache said and the Space's config now says otherwise: send it
    again, on the member's new transport."""


class Job:
    """One reply's job on a Space of the pool, tried again on another (or the same, later)
    when it fails before its first token, and its reply state. Its ``events()`` generator holds
    no reference to the AsyncStream that owns it, so a stream that is dropped is freed (and its
    job cancelled) at once, not at the next cyclic garbage collection."""

    def __init__(
        self, conversation: Conversation, options: Mapping[str, Any], *, pool: Pool
    ) -> None:
        self.conversation = conversation
        self.timeouts = pool.settings.timeouts
        self.options = options
        self.pool = pool
        self.session_hash = new_session_hash()
        self.event_id: str | None = None
        self.space: str | None = None  # the member the reply went to (the last one tried)
        self.attempts = 0
        self.created = time.monotonic()  # with first_text: the time to the first token
        self.first_text: float | None = None
        self.resent = 0  # jobs sent again because the cache's call was out of date
        self.state = ReplyState()  # begun for each attempt's Space as it submits
        self.submitted: tuple[SpaceConnection, Submission] | None = None
        self.cancel_started = False

    def cancel_soon(self) -> None:
        """Cancel the job on the Space unless the reply is complete (once; never waits)."""
        if self.cancel_started or self.submitted is None or self.state.completed:
            return
        self.cancel_started = True
        conn, submission = self.submitted
        send, session_hash = self.pool._cancel_in_background, submission.session_hash
        status = self.state.status
        started = bool(self.state.text) or (status is not None and status.started)

        def cancel(join: asyncio.Future[str]) -> None:
            if not join.cancelled() and join.exception() is None:
                send(conn, session_hash, join.result(), started=started)

        if submission.join.done():
            cancel(submission.join)
        else:  # the job is still joining the queue: cancel it once it has an id
            submission.join.add_done_callback(cancel)
            self.pool._cancel_once_joined(submission.join)  # closing waits for it

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

    def connect_deadline(self, tried: float, started: float) -> Deadline:
        """The limit on reaching the Space and having it accept the job: the connect limit from
        this attempt's start, the first-token and total limits from the reply's."""
        t = self.timeouts
        limits = [(tried + t.connect, "connect")] if t.connect is not None else []
        if t.first_token is not None:
            limits.append((started + t.first_token, "first_token"))
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

    async def _choose(self, now: float) -> tuple[Member, float]:
        """The member the next attempt goes to, and how long from ``now`` (monotonic) to wait
        before it (until the first one's cooldown ends, when every member cools down). With a
        shared state, what the other processes report counts too (``routing.with_fleet``)."""
        members, state = self.pool.members, self.pool.state
        healths = [m.health for m in members]
        if not isinstance(state, LocalState):
            loads = await state.loads([m.url for m in members])
            wall = time.time() + (now - time.monotonic())  # ``now`` on the wall clock
            fleet = zip(healths, members, strict=True)
            healths = [with_fleet(h, loads.get(m.url), now, wall) for h, m in fleet]
        index = choose(healths, now)
        if index is not None:
            return members[index], 0.0
        soonest = min(range(len(members)), key=lambda i: healths[i].cooling_until)
        return members[soonest], max(healths[soonest].cooling_until - now, 0.0)

    def _in_flight(self, member: Member, change: int) -> None:
        member.health.in_flight += change
        self.pool.state.in_flight(member.url, member.health.in_flight)

    async def events(self) -> AsyncGenerator[StreamEvent, None]:
        """Submit the job and yield the reply's events; on a failure before the first token
        that retrying can help (``QwenGradioError.retryable``), cancel it there, let that member
        cool down, yield ``Retrying`` and try again, up to ``settings.attempts`` tries in all.
        Every wait is bounded by a limit of the reply's."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        settings = self.pool.settings
        member, wait = await self._choose(time.monotonic())
        if wait > settings.max_wait:  # all cool down for long: ask again (they may say why)
            wait = 0.0
        while True:
            if wait > 0:
                await self.within(asyncio.sleep(wait), self.deadline(started, None), "reply text")
            self.attempts += 1
            self.space = member.name
            self.cancel_started = False
            failed: QwenGradioError | None = None
            self._in_flight(member, 1)
            attempt = self._attempt(member, started)
            try:
                async for event in attempt:
                    yield event
                return
            except Stale:
                failed = None
            except QwenGradioError as error:
                if self.state.text or not error.retryable:
                    raise
                now = time.monotonic()
                self._cool_down(member, error, now)  # also after the last try: it did fail
                if self.attempts >= settings.attempts:
                    raise
                failed = error
            finally:
                self._in_flight(member, -1)
                await attempt.aclose()  # closed here, not by the loop at its shutdown
                self.cancel_soon()
                if self.submitted is not None:
                    await self.submitted[1].aclose()
            if failed is None:  # sent the old way: again, now, the new way (not an attempt)
                self.resent += 1
                if self.resent > 1:  # the new way is confirmed: it cannot be stale again
                    raise SpaceProtocolError(f"{member.name} changed again while connecting")
                self.attempts -= 1
                wait = 0.0
                continue
            tried = member
            member, wait = await self._choose(now)
            if wait > settings.max_wait:  # nothing free soon: say so now, with the wait stated
                raise failed
            tried.health.retried += 1
            tried.health.failed_over += member is not tried
            yield Retrying(tried.name, failed, wait, self.attempts, member.name)

    def _cool_down(self, member: Member, error: QwenGradioError, now: float) -> None:
        """``member`` failed before the reply's first text: not chosen again for a while."""
        settings, health = self.pool.settings, member.health
        health.failures += 1
        pause = cooldown(error, health.failures, base=settings.backoff, cap=settings.backoff_cap)
        health.cooling_until = now + pause
        if pause > 0:
            self.pool.state.cooling(member.url, time.time() + pause)

    async def _attempt(self, member: Member, started: float) -> AsyncGenerator[StreamEvent, None]:
        """One try on ``member``: connect, submit, read until the reply is complete."""
        loop = asyncio.get_running_loop()
        tried = loop.time()
        self.submitted = None
        connect_limit = self.connect_deadline(tried, started)
        connecting = self.pool._connected(member, provisional=True)
        transport = await self.within(connecting, connect_limit, ACCEPTED)
        submission, message = await self._first_message(member, transport, connect_limit, started)
        state = self.state
        last_text: float | None = None
        while message is not None:
            try:
                events = state.feed_message(message)
            except QwenGradioError as error:
                error.partial_text = error.partial_text or state.text
                raise
            for event in events:
                if isinstance(event, TextDelta):
                    if last_text is None:
                        member.health.failures = 0
                        if self.first_text is None:
                            self.first_text = time.monotonic()
                    last_text = loop.time()
                elif isinstance(event, QueueStatus) and not event.started:
                    member.health.queue_wait = event.eta
                    self.pool.state.queue_wait(member.url, event.eta)
                elif isinstance(event, ReplyCompleted):
                    usage = usage_of(self.conversation, event.text)  # counted when read
                    event = ReplyCompleted(event.text, member.name, usage)
                    state.usage = usage
                yield event
            if state.completed or state.ended:
                break
            deadline = self.deadline(started, last_text)
            message = await self.within(submission.next_message(), deadline, "reply text")
        if not state.completed:
            raise SpaceUnavailableError(
                "the Space ended the stream before the reply was complete",
                partial_text=state.text,
            )

    async def _first_message(
        self, member: Member, transport: Transport, connect_limit: Deadline, started: float
    ) -> tuple[Submission, dict[str, Any] | None]:
        """Submit the job and read its first message. On a transport made from the cache, the
        Space's config is asked meanwhile (the job goes first), and the message is used only
        once the config agrees; else ``Stale``, as for an error while the config disagrees (a
        refusal of a call the Space no longer takes)."""
        conn = transport.connection
        check: Awaitable[Transport] | None = None
        try:
            options = self.pool.options_for(member, self.options)
            inputs = conn.endpoint.inputs(self.conversation, options)  # before any job is sent
            submission = transport.submit(inputs, new_session_hash())
            check = member.confirmation(transport)
            self.session_hash = submission.session_hash
            self.submitted = (conn, submission)
            self.state.begin(
                conn.endpoint.chatbot_output,
                diffs=submission.diffs,
                quoted_errors=conn.endpoint.gradio_major == 4,
            )
            self.event_id = await self.within(submission.joined(), connect_limit, ACCEPTED)
            first_limit = self.deadline(started, None)

            async def reading() -> dict[str, Any] | None:
                return await self.within(submission.next_message(), first_limit, "reply text")

            if check is None:
                return submission, await reading()
            first = asyncio.ensure_future(reading())
            try:
                await self._confirmed(transport, check, connect_limit)
                return submission, await first
            finally:
                if not first.done():
                    first.cancel()
                await asyncio.wait([first])
                if not first.cancelled():
                    first.exception()  # read: raised above, or of no interest after Stale
        except QwenGradioError as error:
            check = check or member.confirmation(transport)
            if check is not None:
                await self._confirmed(transport, check, connect_limit, instead=error)
            raise

    async def _confirmed(
        self,
        transport: Transport,
        check: Awaitable[Transport],
        deadline: Deadline,
        instead: QwenGradioError | None = None,
    ) -> None:
        """Wait until the Space's config has been asked; raise Stale if ``transport`` is not the
        right one any more. If asking fails: its error, or ``instead`` when given (the job's
        own)."""
        try:
            right = await self.within(check, deadline, "config from the Space")
        except QwenGradioError:
            if instead is not None:
                return
            raise
        if right is not transport:
            raise Stale
