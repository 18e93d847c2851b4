"""What a deployed ``serve`` needs around the API itself: a request id and one access-log line
per request (``RequestLog``), the server's log on stderr, and a shutdown that drains (``Drain``;
``serve.server.run`` runs uvicorn with it).

On SIGTERM or Ctrl-C, the server stops accepting connections at once and lets the replies in
flight go on for the grace period; then each one still running is ended (a streamed one with an
OpenAI error event and ``data: [DONE]``, a whole one with a 503) and its job cancelled on the
Space; the process exits once they have ended. A second signal skips what is left of the grace
period. Under another ASGI server, its own graceful shutdown applies.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

__all__ = [
    "ACCESS_LOGGER",
    "GRACE",
    "REQUEST_ID_HEADER",
    "Drain",
    "RequestLog",
    "log_to_stderr",
]

ACCESS_LOGGER = "qwen_gradio.access"
REQUEST_ID_HEADER = "x-request-id"  # OpenAI's name for it
GRACE = 10.0  # seconds the replies in flight may go on after a signal

_GIVEN_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
access_log = logging.getLogger(ACCESS_LOGGER)
qwen_log = logging.getLogger("qwen_gradio")

ASGIApp = Callable[..., Any]


def printable(text: str) -> str:
    """``text`` as it may go into a log line: each character that is not printable (a line
    break a request smuggles in, any control character), a quote or a backslash as ``\\xNN``."""
    return "".join(c if c.isprintable() and c not in '"\\' else f"\\x{ord(c):02x}" for c in text)


class RequestLog:
    """ASGI middleware: every response gets an ``x-request-id`` (the client's own, if it sent
    a well-formed one, else a new ``req_...``), also at ``scope["state"]["request_id"]`` for
    the app; once the response has ended, one line on the ``qwen_gradio.access`` logger:
    client, request line (as sent, still percent-encoded, with ``printable``'s escapes: a
    request cannot forge a line), status, bytes, milliseconds, request id, and the name of the
    API key it used (``key=alice``; never the key)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(REQUEST_ID_HEADER.encode(), b"").decode()
        request_id = given if _GIVEN_ID.fullmatch(given) else f"req_{uuid.uuid4().hex}"
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status, size = 0, 0

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k != REQUEST_ID_HEADER.encode()
                ]
                message = {**message, "headers": [*headers, (b"x-request-id", request_id.encode())]}
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            client = scope.get("client")
            where = f"{client[0]}:{client[1]}" if client else "-"
            target = scope.get("raw_path") or scope["path"].encode("utf-8", "replace")
            if scope.get("query_string"):
                target += b"?" + scope["query_string"]
            key = scope["state"].get("key_name")
            access_log.info(
                '%s "%s %s" %s %d %.0fms %s%s',
                where,
                printable(scope["method"]),
                printable(target.decode("latin-1")),
                status or "-",
                size,
                (time.perf_counter() - started) * 1000,
                request_id,
                f" key={printable(key)}" if key else "",
            )


class Drain:
    """The server's shutdown, as the app sees it: ``draining`` once a signal came (new requests
    are refused), then ``stopping`` once the grace period is over (the replies in flight end)."""

    def __init__(self) -> None:
        self.draining = False
        self.stopping: asyncio.Event | None = None
        self._listeners: set[Callable[[], None]] = set()

    def event(self) -> asyncio.Event:
        """``stopping``, made on the running loop on first use."""
        if self.stopping is None:
            self.stopping = asyncio.Event()
        return self.stopping

    def listen(self, stop: Callable[[], None]) -> Callable[[], None]:
        """Call ``stop()`` when the grace period ends; returns what unregisters it."""
        self._listeners.add(stop)
        return lambda: self._listeners.discard(stop)

    def begin(self, grace: float) -> None:
        """On the loop: refuse new requests now, end the replies in flight after ``grace``."""
        if self.draining:
            return
        self.draining = True
        asyncio.get_running_loop().call_later(grace, self.stop)

    def stop(self) -> None:
        """End every reply in flight now."""
        self.draining = True
        self.event().set()
        for stop in list(self._listeners):
            stop()


def log_to_stderr(access: bool) -> None:
    """The server's log on stderr, each line with its time: qwen_gradio's warnings (a shared
    state that fails or comes back, a worker that ended) and, if ``access``, the access log."""
    formatter = logging.Formatter("%(asctime)s %(message)s")
    for logger, level, wanted in (
        (access_log, logging.INFO, access),
        (qwen_log, logging.WARNING, True),
    ):
        if wanted and not any(getattr(h, "qwen_gradio", False) for h in logger.handlers):
            handler = logging.StreamHandler()
            handler.setFormatter(formatter)
            handler.qwen_gradio = True  # type: ignore[attr-defined]
            logger.addHandler(handler)
            logger.setLevel(level)
    access_log.propagate = False  # its lines once, through its own handler
