"""The one place where a failed request becomes a qwen_gradio error, and the requests both
transports share (``get_json``, ``cancel_job``), and the TLS contexts of every pool."""

from __future__ import annotations

import logging
import ssl
import threading
from typing import Any

import httpx

from ..errors import (
    QueueFullError,
    QwenGradioError,
    RateLimitedError,
    SpaceError,
    SpaceUnavailableError,
    StreamTimeoutError,
    retry_after_header,
)
from ..space import SpaceConnection

__all__ = [
    "api_url",
    "cancel_job",
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
) -> bool:
    """Ask the Space to stop the job; True if it accepted. Never raises: a failure is logged."""
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
