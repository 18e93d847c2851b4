"""The one bridge between sync and async code.

- ``LoopThread``: a private event loop on a background thread, which runs the sync API's
  coroutines. It lets the sync API share the async implementation (and its exact timeouts) and
  work from inside a running event loop, such as a Jupyter cell. It starts on first use and
  stops on ``stop()``.
- ``Pump``: reads an async stream's events on a loop and hands each to ``put`` (a thread-safe
  queue for the sync ``Stream``; an ``asyncio.Queue`` for ``serve``, which waits on it with a
  keep-alive limit), then ``END``, the error, or ``CLOSED``.
- ``run_in_thread``: await a blocking call on a short-lived thread of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["CLOSED", "END", "LoopThread", "Pump", "run_in_thread"]

logger = logging.getLogger("qwen_gradio")

END = object()  # the stream ended
CLOSED = object()  # the pump was cancelled: the stream was closed while it ran


class LoopThread:
    """An asyncio loop running on its own daemon thread."""

    def __init__(self, name: str = "qwen_gradio-loop") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop; return a future for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._start())

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result."""
        return self.submit(coro).result(timeout)

    def stop(self, cleanup: Callable[[], Coroutine[Any, Any, Any]] | None = None) -> None:
        """Run ``cleanup()`` on the loop (if given), let the streams still closing finish, shut
        down the loop's async generators, then stop the loop and join its thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(_shutdown(cleanup), loop).result(timeout=20)
        except Exception as exc:  # best effort: the loop stops regardless
            logger.debug("stopping %s: %r", self._name, exc)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not threading.current_thread():
            thread.join(timeout=10)
            loop.close()


async def _shutdown(cleanup: Callable[[], Coroutine[Any, Any, Any]] | None) -> None:
    """Run ``cleanup()``, let the loop's other tasks (streams being closed) finish for a while,
    cancel what is left, and close the loop's async generators: nothing is left pending."""
    if cleanup is not None:
        try:
            await asyncio.wait_for(cleanup(), 10)
        except Exception as exc:
            logger.debug("cleaning up before the loop stops: %r", exc)
    others = asyncio.all_tasks() - {asyncio.current_task()}
    if others:
        _, pending = await asyncio.wait(others, timeout=10)
        for task in pending:
            task.cancel()
        # gather retrieves every outcome, so none is reported as "never retrieved"
        await asyncio.gather(*others, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()


async def run_in_thread(fn: Callable[[], T], name: str = "qwen_gradio-connect") -> T:
    """Await ``fn()`` run on a short-lived thread of its own (no pool thread stays behind).
    Once it has answered, the thread is joined before this returns, so that no thread of ours
    is left running when the caller goes on (it has only to return by then)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def target() -> None:
        result, error = None, None
        try:
            result = fn()
        except BaseException as exc:
            error = exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop closed meanwhile: nobody is waiting
            pass

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    try:
        return await future
    finally:
        if not future.cancelled():
            thread.join()  # settling the future was its last act


class Pump:
    """Reads ``events`` on the running loop and hands each to ``put``; then ``END``, the
    exception that ended it, or ``CLOSED`` if the pump was cancelled. It holds no reference to
    whoever reads ``put``'s queue, so a reader that is dropped is freed (and closes this)."""

    def __init__(self, events: AsyncIterator[Any], put: Callable[[object], None]) -> None:
        self.events = events
        self.put = put
        self.task: asyncio.Task[Any] | None = None

    async def run(self) -> None:
        self.task = asyncio.current_task()
        try:
            async for event in self.events:
                self.put(event)
        except asyncio.CancelledError:
            self.put(CLOSED)
            raise
        except Exception as error:
            self.put(error)
        else:
            self.put(END)

    async def stop(self) -> None:
        """Cancel the pump, if it still runs, and wait until it has stopped."""
        task = self.task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
