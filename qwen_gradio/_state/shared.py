"""``SharedState``: a ``StateStore`` shared with other processes, called on a thread of its own,
falling back to this process's ``LocalState`` while the store is away.

Writes are queued and never awaited (a write for a Space already queued is not queued twice:
it writes the latest value when its turn comes); reads wait at most ``READ_LIMIT``. The first
failure logs one warning and turns the state local; every ``RETRY`` seconds the next call tries
the store again, and the first that succeeds logs that it is back. What this process did
meanwhile stays in its local state (a response kept while the store was away is still found
here). The thread also rewrites this process's replies in flight every ``REFRESH`` seconds:
the store forgets the entries of a process that stopped writing (``STALE``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..routing import SpaceLoad
from .base import STALE, LocalState, StateStore

__all__ = ["READ_LIMIT", "REFRESH", "RETRY", "SharedState"]

logger = logging.getLogger("qwen_gradio")

READ_LIMIT = 1.0  # seconds a read waits for the store before this process answers alone
RETRY = 2.0  # seconds between tries of a store that failed
REFRESH = STALE / 3  # seconds between rewrites of this process's replies in flight

T = TypeVar("T")
_Call = tuple[Callable[[], Any], concurrent.futures.Future[Any] | None]


class SharedState:
    """A store every process naming ``url`` shares (``make()`` opens it, on the thread)."""

    def __init__(self, url: str, make: Callable[[], StateStore]) -> None:
        self.url = url
        self.process = uuid.uuid4().hex[:12]  # this process's entries in the store
        self.local = LocalState()
        self._make = make
        self._store: StateStore | None = None
        self._away_since: float | None = None  # monotonic time of the failure, while away
        self._retry_at = 0.0
        self._counts: dict[str, int] = {}  # this process's replies in flight, by Space
        self._waits: dict[str, float | None] = {}
        self._queued: set[tuple[str, str]] = set()  # writes waiting for the thread
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"SharedState({self.url!r})"

    @property
    def shared(self) -> bool:
        """Whether the store answered last time (False while it is away)."""
        return self._away_since is None

    # -- the thread ------------------------------------------------------------------------

    def _submit(
        self, call: Callable[[], Any], future: concurrent.futures.Future[Any] | None
    ) -> None:
        with self._lock:
            if self._closed:
                if future is not None:
                    future.set_exception(RuntimeError("the state is closed"))
                return
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name="qwen_gradio-state", daemon=True
                )
                self._thread.start()
        self._calls.put((call, future))

    def _work(self) -> None:
        refresh_at = time.monotonic() + REFRESH
        while True:
            if time.monotonic() >= refresh_at:  # however busy the thread is
                refresh_at = time.monotonic() + REFRESH
                with contextlib.suppress(_Away):
                    self._guarded(self._refresh)
            try:
                item = self._calls.get(timeout=max(refresh_at - time.monotonic(), 0.0))
            except queue.Empty:
                continue
            if item is None:
                break
            call, future = item
            if future is not None and not future.set_running_or_notify_cancel():
                continue
            try:
                result = self._guarded(call)
            except BaseException as error:  # a read's caller falls back; a write is dropped
                if future is not None:
                    future.set_exception(error)
                continue
            if future is not None:
                future.set_result(result)
        if self._store is not None:
            try:
                self._store.close()
            except Exception as error:  # closing a store that is away: nothing to lose
                logger.debug("closing the state %s: %r", self.url, error)

    def _guarded(self, call: Callable[[], T]) -> T:
        """``call()`` on the store; its failure turns the state local (logged once)."""
        now = time.monotonic()
        if self._away_since is not None and now < self._retry_at:
            raise _Away
        try:
            if self._store is None:
                self._store = self._make()
            result = call()
        except _Away:
            raise
        except Exception as error:
            self._retry_at = now + RETRY
            if self._away_since is None:
                self._away_since = now
                logger.warning(
                    "the shared state %s failed (%s); this process keeps its own state until"
                    " it answers again",
                    self.url,
                    _brief(error),
                )
            raise _Away from None
        if self._away_since is not None:
            logger.warning(
                "the shared state %s answers again (away %.1f s)",
                self.url,
                now - self._away_since,
            )
            self._away_since = None
            try:
                self._refresh()  # what this process has in flight, at once
            except Exception as error:  # the next call finds out, and logs it
                logger.debug("rewriting the replies in flight to %s: %r", self.url, error)
        return result

    def _refresh(self) -> None:
        if self._store is None:
            return
        wall = time.time()
        for space, count in list(self._counts.items()):
            if count:
                self._store.in_flight(space, self.process, count, wall)

    async def _read(self, call: Callable[[], T], fallback: Callable[[], Any]) -> T:
        """``call()`` on the thread, or ``fallback()`` (awaited if need be) when the store is
        away or slow."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._submit(call, future)
        try:
            async with asyncio.timeout(READ_LIMIT):
                return await asyncio.wrap_future(future)
        except (_Away, TimeoutError, RuntimeError):
            future.cancel()
            result = fallback()
            return await result if asyncio.iscoroutine(result) else result  # type: ignore[no-any-return]

    def _write(self, what: str, space: str, call: Callable[[], None]) -> None:
        """Queue ``call`` unless a write of ``what`` for ``space`` is queued already."""
        key = (what, space)
        if key in self._queued:
            return
        self._queued.add(key)

        def write() -> None:
            self._queued.discard(key)
            call()

        self._submit(write, None)

    # -- State -----------------------------------------------------------------------------

    async def loads(self, spaces: Sequence[str]) -> dict[str, SpaceLoad]:
        def read() -> dict[str, SpaceLoad]:
            assert self._store is not None
            return self._store.loads(spaces, self.process, time.time())

        return await self._read(read, dict)

    def in_flight(self, space: str, count: int) -> None:
        self._counts[space] = count
        self._write(
            "flight",
            space,
            lambda: self._stored().in_flight(space, self.process, self._counts[space], time.time()),
        )

    def cooling(self, space: str, until: float) -> None:
        self._submit(lambda: self._stored().cooling(space, until, time.time()), None)

    def queue_wait(self, space: str, seconds: float | None) -> None:
        if space in self._waits and self._waits[space] == seconds:
            return
        self._waits[space] = seconds
        self._write(
            "wait",
            space,
            lambda: self._stored().queue_wait(space, self._waits[space], time.time()),
        )

    async def hit(self, name: str, limit: int, window: float) -> float | None:
        def read() -> float | None:
            return self._stored().hit(name, limit, window, time.time())

        return await self._read(read, lambda: self.local.hit(name, limit, window))

    async def keep(self, key: str, value: str, ttl: float, limit: int) -> None:
        def write() -> None:
            self._stored().keep(key, value, ttl, limit, time.time())

        await self._read(write, lambda: self.local.keep(key, value, ttl, limit))

    async def kept(self, key: str) -> str | None:
        def read() -> str | None:
            return self._stored().kept(key, time.time())

        found = await self._read(read, lambda: None)
        return found if found is not None else await self.local.kept(key)

    def _stored(self) -> StateStore:
        assert self._store is not None
        return self._store

    def close(self) -> None:
        """Clear this process's entries, then stop the thread (it closes the store)."""
        with self._lock:
            if self._closed:
                return
            thread = self._thread
        if thread is not None:
            for space, count in list(self._counts.items()):
                if count:
                    self.in_flight(space, 0)
        with self._lock:
            self._closed = True
        self._calls.put(None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=READ_LIMIT * 2)


class _Away(Exception):
    """The store is away: answer from the local state."""


def _brief(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
