"""A private event loop on a background thread, which runs the sync API's coroutines.

It lets the sync API share the async implementation (and its exact timeouts) and work from inside
a running event loop, such as a Jupyter cell. It starts on first use and stops on ``stop()``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["LoopThread", "run_in_thread"]


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
        except Exception:  # best effort: the loop stops regardless
            pass
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
        except Exception:
            pass
    others = asyncio.all_tasks() - {asyncio.current_task()}
    if others:
        _, pending = await asyncio.wait(others, timeout=10)
        for task in pending:
            task.cancel()
        # gather retrieves every outcome, so none is reported as "never retrieved"
        await asyncio.gather(*others, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()


async def run_in_thread(fn: Callable[[], T], name: str = "qwen_gradio-connect") -> T:
    """Await ``fn()`` run on a short-lived thread of its own (no pool thread stays behind)."""
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

    threading.Thread(target=target, name=name, daemon=True).start()
    return await future
