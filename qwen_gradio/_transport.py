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
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

from ._cache import SpaceCache, fingerprint
from ._compat import stream_error, submit
from .errors import (
    InvalidSpaceError,
    QueueFullError,
    QwenGradioError,
    RateLimitedError,
    SpaceError,
    SpaceProtocolError,
    SpaceUnavailableError,
    StreamTimeoutError,
)
from .space import (
    SpaceConnection,
    chat_endpoint,
    check_gradio_config,
    new_session_hash,
    parameter_names_in,
)
from .stream import SSELineDecoder

__all__ = [
    "DIRECT_PROTOCOLS",
    "TRANSPORTS",
    "GradioClientJob",
    "cancel_job",
    "connect_direct",
    "event_stream",
    "join_queue",
    "new_session_hash",
]


TRANSPORTS = ("auto", "direct", "gradio_client")
DIRECT_PROTOCOLS = ("sse_v3",)  # what the direct transport speaks (gradio 4.44, 5 and 6 tested)


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


async def _get_json(http: httpx.AsyncClient, url: str, timeout: httpx.Timeout) -> Any:
    """GET ``url`` as JSON (None when the answer is not JSON); typed errors for the rest."""
    try:
        response = await http.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        if isinstance(exc, httpx.TimeoutException):
            raise StreamTimeoutError(f"connecting to {url} timed out", kind="connect") from exc
        raise SpaceUnavailableError(f"cannot reach the Space at {url}: {exc}") from exc
    if not response.is_success:
        raise _status_error(response, f"cannot load the Space at {url}")
    try:
        return response.json()
    except ValueError:
        return None


async def connect_direct(
    http: httpx.AsyncClient,
    url: str,
    timeout: httpx.Timeout,
    cache: SpaceCache | None,
    *,
    fallback: bool = True,
) -> SpaceConnection | None:
    """Connect for the direct transport, with no gradio_client: ``/config`` (validated before
    anything else is asked) and, only for a Space whose chat event has options, its API info for
    their names, unless ``cache`` holds them for exactly this event. For a Space that speaks a
    protocol the direct transport does not: None (connect through gradio_client then), or
    InvalidSpaceError without ``fallback``."""
    config = await _get_json(http, url + "config", timeout)
    if config is None:
        raise SpaceUnavailableError(
            f"{url} did not answer with a Gradio config: the Space may be sleeping, paused or"
            " building"
        )
    check_gradio_config(url, config)
    protocol = str(config.get("protocol", ""))
    if protocol not in DIRECT_PROTOCOLS:
        if fallback:
            return None
        raise InvalidSpaceError(
            f"{url} speaks the queue protocol {protocol!r}; transport='direct' speaks"
            f" {', '.join(DIRECT_PROTOCOLS)} only: use transport='gradio_client' or 'auto'"
        )
    endpoint = chat_endpoint(url, config)
    if endpoint.options:  # their names are in the API info, or in the cache for this event
        key = fingerprint(config, endpoint.fn_index)
        names = cache.names(url, key) if cache is not None else None
        if names is None:
            info = await _get_json(http, f"{url}{endpoint.api_prefix}info?serialize=False", timeout)
            if not isinstance(info, dict) or not isinstance(info.get("named_endpoints"), dict):
                raise SpaceProtocolError(
                    f"{url} answered its API info in a shape Gradio does not use"
                )
            names = parameter_names_in(info, endpoint.api_name, endpoint.input_count)
            if cache is not None:
                cache.store(url, key, names)
        endpoint = chat_endpoint(url, config, parameter_names=names)
    return SpaceConnection(
        url=url,
        endpoint=endpoint,
        headers=dict(http.headers),
        cookies={name: value for name, value in http.cookies.items() if value is not None},
        config=config,
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

    What gradio_client reports on its own threads becomes, in order: queue messages (dicts shaped
    like the event stream's: ``estimation``, ``process_starts``, ``process_generating`` with the
    whole output, ``process_completed``, ``queue_full``) and last ``("ended", error)`` with a
    QwenGradioError, or None when the job ended without one. ``take()`` hands over what has
    arrived; ``wake`` is called (from gradio_client's threads) when there is something. Each
    ``process_generating`` carries the whole output, so a reader that falls behind by
    ``MAX_PENDING`` of them gets the newest in place of the last one waiting: memory stays
    bounded (a few outputs, not every one), and a reader that keeps up sees every step.
    ``on_joined(event_id)`` is called once the Space has accepted the job.
    """

    MAX_PENDING = 16

    def __init__(
        self,
        conn: SpaceConnection,
        wake: Callable[[], None],
        on_joined: Callable[[str], None],
    ) -> None:
        self.conn = conn
        self.wake = wake
        self.on_joined = on_joined
        self.event_id: str | None = None
        self.job: Any = None
        self._lock = threading.Lock()
        self._items: list[object] = []

    def start(self, inputs: list[Any]) -> None:
        """Submit the job (returns at once; the request goes out from gradio_client's pool)."""
        self.job = submit(self.conn, inputs, self)
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


def _generating(item: object) -> bool:
    return isinstance(item, dict) and item.get("msg") == "process_generating"
