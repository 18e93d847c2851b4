"""The gradio_client transport: jobs through ``gradio_client.Client.submit``.

What gradio_client reports on its own threads becomes, in order, queue messages of the event
stream's shape (``estimation``, ``process_starts``, ``process_generating`` with the whole output,
``process_completed``, ``queue_full``) and last the end of the job, with its error if it had
one; so one ``ReplyState`` (``diffs=False``) reads both transports. gradio_client's internals are
touched only in ``qwen_gradio._transports.gradio_client_internals``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any

import httpx

from .._core.space import SpaceConnection
from ..errors import (
    QwenGradioError,
    SpaceUnavailableError,
)
from .gradio_client_internals import (
    close_client,
    connect,
    gradio_client_error,
    stream_error,
    submit,
)

__all__ = ["GradioClientSink", "GradioClientSubmission", "GradioClientTransport"]


class GradioClientTransport:
    """A gradio_client ``Client`` connected to the Space (made on a short-lived thread)."""

    def __init__(self, connection: SpaceConnection, client: Any) -> None:
        self.connection = connection
        self.client = client

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        hf_token: str | None,
        proxy: str | None,
        connect_timeout: float | None,
        user_agent: str,
    ) -> GradioClientTransport:
        """Connect (blocking: run it on a thread of its own)."""
        kwargs: dict[str, Any] = {"timeout": httpx.Timeout(connect_timeout)}
        if proxy:
            kwargs["proxy"] = proxy
        connection, client = connect(
            url, hf_token=hf_token, httpx_kwargs=kwargs, user_agent=user_agent
        )
        return cls(connection, client)

    def submit(self, inputs: list[Any], session_hash: str) -> GradioClientSubmission:
        """Submit under the Client's own session hash (its jobs share one event stream)."""
        return GradioClientSubmission(self, inputs)

    def close(self) -> None:
        close_client(self.client)


class GradioClientSubmission:
    """One job submitted through gradio_client, read as queue messages."""

    diffs = False

    def __init__(self, transport: GradioClientTransport, inputs: list[Any]) -> None:
        loop = asyncio.get_running_loop()
        self.session_hash = str(transport.client.session_hash)
        self.join: asyncio.Future[str] = loop.create_future()
        self._arrived = asyncio.Event()
        self._pending: list[object] = []

        def joined(event_id: str) -> None:  # on the loop
            if not self.join.done():
                self.join.set_result(event_id)
            self._arrived.set()

        self.job = GradioClientSink(
            transport.connection,
            transport.client,
            _threadsafe(loop, self._arrived.set),
            _threadsafe(loop, joined),
        )
        self.job.start(inputs)

    async def _more(self) -> None:
        """Wait until something more has arrived; add it to ``_pending``."""
        while True:
            items = self.job.take()
            if not items:
                self._arrived.clear()
                items = self.job.take()  # what came between the two looks
            if items:
                self._pending.extend(items)
                return
            await self._arrived.wait()

    async def joined(self) -> str:
        while not self.join.done():
            ended = next((i for i in self._pending if isinstance(i, tuple)), None)
            if ended is not None:  # refused before joining (queue full, 429, unreachable)
                raise ended[1] or SpaceUnavailableError(
                    f"gradio_client ended the job before {self.job.conn.url} took it"
                )
            await self._more()
        return self.join.result()

    async def next_message(self) -> dict[str, Any] | None:
        if not self._pending:
            await self._more()
        item = self._pending.pop(0)
        if isinstance(item, tuple):  # ("ended", error or None)
            if isinstance(item[1], QwenGradioError):
                raise item[1]
            return None
        return item  # type: ignore[return-value]

    async def aclose(self) -> None:
        """Nothing to release: gradio_client's threads end when the job does."""


def _threadsafe(loop: asyncio.AbstractEventLoop, fn: Callable[..., None]) -> Callable[..., None]:
    """``fn`` called on ``loop`` from any thread; nothing once the loop is closed."""

    def call(*args: Any) -> None:
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: no one is reading any more
            pass

    return call


class GradioClientSink:
    """One chat job submitted through ``gradio_client.Client.submit``.

    ``take()`` hands over what has arrived; ``wake`` is called (from gradio_client's threads)
    when there is something. Each ``process_generating`` carries the whole output, so a reader
    that falls behind by ``MAX_PENDING`` of them gets the newest in place of the last one
    waiting: memory stays bounded (a few outputs, not every one), and a reader that keeps up
    sees every step. ``on_joined(event_id)`` is called once the Space has accepted the job.
    """

    MAX_PENDING = 16

    def __init__(
        self,
        conn: SpaceConnection,
        client: Any,
        wake: Callable[[], None],
        on_joined: Callable[[str], None],
    ) -> None:
        self.conn = conn
        self.client = client
        self.wake = wake
        self.on_joined = on_joined
        self.event_id: str | None = None
        self.job: Any = None
        self._lock = threading.Lock()
        self._items: list[object] = []

    def start(self, inputs: list[Any]) -> None:
        """Submit the job (returns at once; the request goes out from gradio_client's pool)."""
        self.job = submit(self.client, self.conn.endpoint.fn_index, inputs, self)
        self.job.add_done_callback(self._ended)

    def take(self) -> list[object]:
        """What has arrived since the last call, in order."""
        with self._lock:
            items, self._items = self._items, []
        return items

    def _put(self, item: object) -> None:
        with self._lock:
            last = self._items[-1] if self._items else None
            behind = len(self._items) >= self.MAX_PENDING
            if behind and _generating(item) and _generating(last):
                self._items[-1] = item  # a newer whole output supersedes one not yet taken
            else:
                self._items.append(item)
        self.wake()

    # -- what gradio_client calls (the JobSink protocol) --------------------------------

    def joined(self, event_id: str) -> None:
        self.event_id = event_id
        self.on_joined(event_id)

    def put_nowait(self, update: Any) -> None:
        message = self._message(update)
        if message is not None:
            self._put(message)

    def _message(self, update: Any) -> dict[str, Any] | None:
        if getattr(update, "type", None) == "output":
            if update.final:
                return {
                    "msg": "process_completed",
                    "success": bool(update.success),
                    "output": update.outputs,
                }
            outputs = update.outputs
            data = [outputs] if self.conn.endpoint.output_count == 1 else list(outputs)
            return {"msg": "process_generating", "output": {"data": data}}
        code = getattr(update.code, "value", update.code)
        if code == "IN_QUEUE":
            return {
                "msg": "estimation",
                "rank": update.rank,
                "queue_size": update.queue_size,
                "rank_eta": update.eta,
            }
        if code == "PROCESSING":
            return {"msg": "process_starts", "eta": update.eta}
        if code == "QUEUE_FULL":
            return {"msg": "queue_full"}
        return None

    def _ended(self, future: concurrent.futures.Future[Any]) -> None:
        error = None if future.cancelled() else future.exception()
        self._put(("ended", None if error is None else self._error(error)))

    def _error(self, error: BaseException) -> QwenGradioError:
        url = self.conn.url
        if isinstance(error, concurrent.futures.CancelledError):  # gradio_client's reader died
            cause = stream_error(self.client)
            detail = f": {type(cause).__name__}: {cause}" if cause is not None else ""
            return SpaceUnavailableError(f"the event stream of {url} ended{detail}")
        return gradio_client_error(error, url, "submitting to")


def _generating(item: object) -> bool:
    return isinstance(item, dict) and item.get("msg") == "process_generating"
