"""The one place where a failed request becomes a qwen_gradio error, and the requests both
transports share (``get_json``, ``cancel_job``), and the TLS contexts of every pool."""

from __future__ import annotations

import logging
import ssl
import threading
from typing import Any

import httpx

from .._core.space import SpaceConnection
from ..errors import (
    QueueFullError,
    QwenGradioError,
    RateLimitedError,
    SpaceError,
    SpaceUnavailableError,
    StreamTimeoutError,
    retry_after_header,
)

__all__ = [
    "api_url",
    "cancel_job",
    "drop_event_stream",
    "get_json",
    "no_config_error",
    "status_error",
    "tls_context",
    "transport_error",
]

logger = logging.getLogger("qwen_gradio")


def api_url(conn: SpaceConnection, path: str) -> str:
    """The URL of one of the Space's API routes (``queue/join``, ``cancel``, ...)."""
    return f"{conn.url}{conn.endpoint.api_prefix}{path}"


def status_error(response: httpx.Response, what: str) -> QwenGradioError:
    """The error for a refused HTTP request (its body already read); ``retry_after`` from the
    ``Retry-After`` header, else from the message."""
    code = response.status_code
    try:
        body = response.json()
        detail = body.get("detail") or body.get("error") or body.get("message") or ""
    except (ValueError, AttributeError):
        detail = ""
    detail = str(detail) if detail else response.text[:200].strip()
    message = f"{what}: HTTP {code}" + (f": {detail}" if detail else "")
    wait = retry_after_header(response.headers.get("retry-after"))
    if code == 429:
        return RateLimitedError(message, retry_after=wait)
    if code == 503 and "queue" in detail.lower():
        return QueueFullError(message, retry_after=wait)
    if code in (400, 422):
        return SpaceError(message)
    if code in (401, 403, 404):
        return SpaceUnavailableError(
            message + " (a private or missing Space? pass hf_token= or set HF_TOKEN)"
        )
    return SpaceUnavailableError(message, retry_after=wait)


def transport_error(exc: httpx.HTTPError, what: str, partial_text: str = "") -> QwenGradioError:
    """The error for a failed connection or read (``what`` says what was being done)."""
    if isinstance(exc, httpx.TimeoutException):  # reads of the reply itself are never limited
        return StreamTimeoutError(  # by httpx, so this is reaching the Space or its answer
            f"{what}: the Space did not answer within the connect timeout",
            kind="connect",
            partial_text=partial_text,
        )
    return SpaceUnavailableError(
        f"{what}: {type(exc).__name__}: {exc}".rstrip(": "), partial_text=partial_text
    )


def no_config_error(url: str) -> SpaceUnavailableError:
    """The error for a Space whose ``/config`` is not JSON (an HTML page: asleep, paused or
    building)."""
    return SpaceUnavailableError(
        f"{url} did not answer with a Gradio config: the Space may be sleeping, paused or building"
    )


async def get_json(http: httpx.AsyncClient, url: str, timeout: httpx.Timeout) -> Any:
    """GET ``url`` as JSON (None when the answer is not JSON); typed errors for the rest."""
    try:
        response = await http.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        raise transport_error(exc, f"cannot reach the Space at {url}") from exc
    if not response.is_success:
        raise status_error(response, f"cannot load the Space at {url}")
    try:
        return response.json()
    except ValueError:
        return None


async def cancel_job(
    http: httpx.AsyncClient,
    conn: SpaceConnection,
    session_hash: str,
    event_id: str,
    timeout: httpx.Timeout,
    *,
    started: bool = True,
) -> bool:
    """Ask the Space to stop the job; True if it accepted. Never raises: a failure is logged.

    A job not seen to start (``started=False``) may still wait in the Space's queue, where
    gradio before 6 (the real Space's 5.x among them) keeps it when asked to cancel it, and runs
    it to its end later (``ChatEndpoint.cancel_keeps_waiting_jobs``). What those do drop is the
    waiting jobs of a session whose event stream disconnects: there the stream is opened and
    dropped first, then the job cancelled, in that order (a cancel that came first would end
    the stream the normal way, and the waiting job would stay). gradio 6 takes a waiting job
    out of its queue on ``/cancel`` alone (there a dropped stream would not stop a running job
    as surely: its run is left suspended, never closed)."""
    if not started and conn.endpoint.cancel_keeps_waiting_jobs:
        await drop_event_stream(http, conn, session_hash, timeout)
    payload = {
        "fn_index": conn.endpoint.fn_index,
        "session_hash": session_hash,
        "event_id": event_id,
    }
    try:
        response = await http.post(api_url(conn, "cancel"), json=payload, timeout=timeout)
    except (httpx.HTTPError, RuntimeError) as exc:
        logger.debug("cancelling %s on %s failed: %r", event_id, conn.url, exc)
        return False
    if not response.is_success:
        logger.debug("%s refused to cancel %s: HTTP %s", conn.url, event_id, response.status_code)
    return response.is_success


async def drop_event_stream(
    http: httpx.AsyncClient, conn: SpaceConnection, session_hash: str, timeout: httpx.Timeout
) -> None:
    """Open the session's event stream and close it once the Space has begun to answer (its
    head read: the Space's stream loop is running, so it sees the disconnect). Never raises."""
    request = http.build_request(
        "GET",
        api_url(conn, "queue/data"),
        params={"session_hash": session_hash},
        timeout=timeout,
    )
    try:
        response = await http.send(request, stream=True)
        await response.aclose()
    except (httpx.HTTPError, RuntimeError) as exc:
        logger.debug("dropping the stream of %s on %s failed: %r", session_hash, conn.url, exc)


_TLS: ssl.SSLContext | None = None
_TLS_LOCK = threading.Lock()
# For a pool that can only speak plain HTTP; made at import, as aiohttp makes its own (1 ms).
_PLAIN_TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def tls_context(url: str, proxy: str | None) -> ssl.SSLContext:
    """The TLS context of a pool: httpx's default (certifi's CAs), made once per process and
    shared by every pool; a pool that can only speak plain HTTP (an http:// Space, no proxy)
    gets one that loads no CAs (loading them takes 20-35 ms, a noticeable part of a cold
    start)."""
    global _TLS
    if not url.startswith("https:") and proxy is None:
        return _PLAIN_TLS  # never used: nothing here speaks TLS
    with _TLS_LOCK:
        if _TLS is None:
            _TLS = httpx.create_ssl_context()
        return _TLS
