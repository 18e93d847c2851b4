"""The Space's queue protocol over httpx: join, read the event stream, cancel.

One job = one session hash: ``POST {prefix}queue/join`` returns an ``event_id``; ``GET
{prefix}queue/data?session_hash=...`` streams that session's server-sent events until
``close_stream``; ``POST {prefix}cancel`` stops the job on the Space (gradio >= 4.29).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from ._compat import SpaceConnection
from .errors import (
    QueueFullError,
    QwenGradioError,
    RateLimitedError,
    SpaceError,
    SpaceUnavailableError,
    StreamTimeoutError,
)
from .stream import SSELineDecoder

__all__ = ["cancel_job", "event_stream", "join_queue", "new_session_hash"]


def new_session_hash() -> str:
    """A fresh session hash: 8 hex digits of one uuid4 and 4 of another (12 lowercase hex)."""
    return uuid.uuid4().hex[:8] + uuid.uuid4().hex[:4]


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
