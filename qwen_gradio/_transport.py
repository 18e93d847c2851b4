"""The two ways a job reaches the Space.

Direct (the default): the queue protocol over httpx. One job = one session hash: ``POST
{prefix}queue/join`` returns an ``event_id``; ``GET {prefix}queue/data?session_hash=...`` streams
that session's server-sent events until ``close_stream``; ``POST {prefix}cancel`` stops the job on
the Space (gradio >= 4.29).

Through gradio_client (``GradioClientJob``): ``Client.submit`` under the client's generated session
hash; the Job's updates become queue messages of the same shape, so one ``ReplyState`` reads both.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

from ._compat import SpaceConnection, stream_error, submit
from .errors import (
    QueueFullError,
    QwenGradioError,
    RateLimitedError,
    SpaceError,
    SpaceUnavailableError,
    StreamTimeoutError,
)
from .space import new_session_hash
from .stream import SSELineDecoder

__all__ = ["GradioClientJob", "cancel_job", "event_stream", "join_queue", "new_session_hash"]


def _url(conn: SpaceConnection, path: str) -> str:
    return f"{conn.url}{conn.endpoint.api_prefix}{path}"


def _status_error(response: httpx.Response, what: str) -> QwenGradioError:
    """The error for a refused HTTP request (the body is already read)."""
    code = response.status_code
    try:
        body = response.json()
        detail = body.get("detail") or body.get("error") or body.get("message") or ""
    except (ValueError, AttributeError):
        detail = ""
    detail = str(detail) if detail else response.text[:200].strip()
    message = f"{what}: HTTP {code}" + (f": {detail}" if detail else "")
    if code == 429:
        return RateLimitedError(message)
    if code == 503 and "queue" in detail.lower():
        return QueueFullError(message)
    if code in (400, 422):
        return SpaceError(message)
    if code in (401, 403, 404):
        return SpaceUnavailableError(
            message + " (a private or missing Space? pass hf_token= or set HF_TOKEN)"
        )
    return SpaceUnavailableError(message)


def transport_error(exc: httpx.HTTPError, what: str, partial_text: str = "") -> QwenGradioError:
    """The error for a failed connection or read."""
    if isinstance(exc, httpx.TimeoutException):  # reads of the reply itself are never limited
        return StreamTimeoutError(  # by httpx, so this is reaching the Space or its answer
            f"{what}: the Space did not answer within the connect timeout",
            kind="connect",
            partial_text=partial_text,
        )
    return SpaceUnavailableError(
        f"{what}: {type(exc).__name__}: {exc}".rstrip(": "), partial_text=partial_text
    )


async def join_queue(
    http: httpx.AsyncClient,
    conn: SpaceConnection,
    inputs: list[Any],
    session_hash: str,
    timeout: httpx.Timeout,
) -> str:
    """Put the chat job in the Space's queue; return its event id."""
    endpoint = conn.endpoint
    payload = {
        "data": inputs,
        "event_data": None,
        "fn_index": endpoint.fn_index,
        "trigger_id": endpoint.trigger_id,
        "session_hash": session_hash,
    }
    try:
        response = await http.post(_url(conn, "queue/join"), json=payload, timeout=timeout)
    except httpx.HTTPError as exc:
        raise transport_error(exc, f"joining the queue of {conn.url}") from exc
    if not response.is_success:
        raise _status_error(response, f"{conn.url} refused the job")
    try:
        return str(response.json()["event_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise SpaceUnavailableError(f"{conn.url} answered the join without an event id") from exc


@asynccontextmanager
async def event_stream(
    http: httpx.AsyncClient, conn: SpaceConnection, session_hash: str, timeout: httpx.Timeout
) -> AsyncIterator[AsyncIterator[str]]:
    """The lines of the session's event stream, closed on exit."""
    request = http.build_request(
        "GET", _url(conn, "queue/data"), params={"session_hash": session_hash}, timeout=timeout
    )
    try:
        response = await http.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise transport_error(exc, f"opening the event stream of {conn.url}") from exc
    try:
        if not response.is_success:
            await response.aread()
            raise _status_error(response, f"{conn.url} refused the event stream")
        yield _sse_lines(response)
    finally:
        await response.aclose()


async def _sse_lines(response: httpx.Response) -> AsyncIterator[str]:
    decoder = SSELineDecoder()
    async for text in response.aiter_text():
        for line in decoder.feed(text):
            yield line
    for line in decoder.flush():
        yield line


async def cancel_job(
    http: httpx.AsyncClient,
    conn: SpaceConnection,
    session_hash: str,
    event_id: str,
    timeout: httpx.Timeout,
) -> bool:
    """Ask the Space to stop the job; True if it accepted. Never raises."""
    payload = {
        "fn_index": conn.endpoint.fn_index,
        "session_hash": session_hash,
        "event_id": event_id,
    }
    try:
        response = await http.post(_url(conn, "cancel"), json=payload, timeout=timeout)
    except (httpx.HTTPError, RuntimeError):
        return False
    return response.is_success


class GradioClientJob:
    """One chat job submitted through ``gradio_client.Client.submit``.

    What gradio_client reports on its own threads is handed to ``deliver`` (which must be
    thread-safe) as: ``("joined", event_id)`` once the Space accepted the job; queue messages
    (dicts shaped like the event stream's: ``estimation``, ``process_starts``,
    ``process_generating`` with the whole output, ``process_completed``, ``queue_full``); and last
    ``("ended", error)`` with a QwenGradioError, or None when the job ended without one.
    """

    def __init__(self, conn: SpaceConnection, deliver: Callable[[object], None]) -> None:
        self.conn = conn
        self.deliver = deliver
        self.event_id: str | None = None
        self.job: Any = None

    def start(self, inputs: list[Any]) -> None:
        """Submit the job (returns at once; the request goes out from gradio_client's pool)."""
        self.job = submit(self.conn, inputs, self)
        self.job.add_done_callback(self._ended)

    def cancel(self) -> None:
        """Cancel the job as gradio_client does (``/cancel``); blocks on the network."""
        if self.job is not None:
            self.job.cancel()

    # -- what gradio_client calls (the JobSink protocol) --------------------------------

    def joined(self, event_id: str) -> None:
        self.event_id = event_id
        self.deliver(("joined", event_id))

    def put_nowait(self, update: Any) -> None:
        message = self._message(update)
        if message is not None:
            self.deliver(message)

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
        self.deliver(("ended", None if error is None else self._error(error)))

    def _error(self, error: BaseException) -> QwenGradioError:
        from gradio_client.exceptions import AppError, ValidationError
        from gradio_client.utils import QueueError, TooManyRequestsError

        url = self.conn.url
        if isinstance(error, QwenGradioError):
            return error
        if isinstance(error, QueueError):
            return QueueFullError(f"{url} refused the job: {error}")
        if isinstance(error, TooManyRequestsError):
            return RateLimitedError(str(error))
        if isinstance(error, httpx.HTTPStatusError):
            return _status_error(error.response, f"{url} refused the job")
        if isinstance(error, httpx.HTTPError):
            return transport_error(error, f"submitting to {url}")
        if isinstance(error, (AppError, ValidationError)):
            return SpaceError(str(error) or "the Space's app raised an error")
        if isinstance(error, concurrent.futures.CancelledError):
            cause = stream_error(self.conn)
            detail = f": {type(cause).__name__}: {cause}" if cause is not None else ""
            return SpaceUnavailableError(f"the event stream of {url} ended{detail}")
        return SpaceUnavailableError(f"gradio_client failed: {type(error).__name__}: {error}")
