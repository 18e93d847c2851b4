"""The cancel requests of a client's abandoned jobs, sent from one thread of their own.

Closing a stream never waits on the network: the cancellation goes to this thread's event loop,
so it cannot be cut short by a loop that is shutting down (``asyncio.run`` ending, a server
stopping), nor collide with the generators being closed there. One loop and one connection
HTTP client per Space (same proxy, headers and cookies as the job's) serve every cancellation: 50
streams dropped at once are 50 requests in flight together, not 50 threads, loops and TLS
contexts made one after another (``docs/performance.md``). Each request ends within
``CANCEL_TIMEOUT``; ``join()`` waits for those in flight (``QwenClient.close()`` does), and the
loop is stopped at exit even when the client is never closed, after them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import weakref

import httpx

from .._core.space import SpaceConnection
from .._transports.http import cancel_job, tls_context
from .bridge import LoopThread

__all__ = ["CANCEL_TIMEOUT", "Canceller"]

logger = logging.getLogger("qwen_gradio")

CANCEL_TIMEOUT = 5.0  # seconds a cancellation request may take

HttpKey = tuple[str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]


class Canceller:
    """Sends ``POST {prefix}cancel`` for abandoned jobs, in the background."""

    def __init__(self, proxy: str | None) -> None:
        self.proxy = proxy
        self._runner = LoopThread("qwen_gradio-cancel")
        self._http_clients: dict[HttpKey, httpx.AsyncClient] = {}
        self._pending: set[concurrent.futures.Future[None]] = set()
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(
            self, _stop, self._runner, self._pending, self._lock, self._http_clients
        )

    def send(
        self, conn: SpaceConnection, session_hash: str, event_id: str, *, started: bool = True
    ) -> concurrent.futures.Future[None]:
        """Ask ``conn``'s Space to stop the job (``started``: seen to start; see ``cancel_job``);
        returns at once (the future settles once the requests are answered, failed or timed
        out: never with an error)."""
        future = self._runner.submit(self._cancel(conn, session_hash, event_id, started))
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._settled)
        return future

    def _settled(self, future: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    async def _cancel(
        self, conn: SpaceConnection, session_hash: str, event_id: str, started: bool
    ) -> None:
        try:
            http = self._http(conn)
            timeout = httpx.Timeout(CANCEL_TIMEOUT)
            cancelling = cancel_job(http, conn, session_hash, event_id, timeout, started=started)
            await asyncio.wait_for(cancelling, CANCEL_TIMEOUT)
        except Exception as exc:  # best effort, like cancel_job itself
            logger.debug("cancelling %s on %s: %r", event_id, conn.url, exc)

    def _http(self, conn: SpaceConnection) -> httpx.AsyncClient:
        key = (conn.url, tuple(sorted(conn.headers.items())), tuple(sorted(conn.cookies.items())))
        http = self._http_clients.get(key)
        if http is None:
            http = self._http_clients[key] = httpx.AsyncClient(
                headers=conn.headers,
                cookies=conn.cookies,
                proxy=self.proxy,
                verify=tls_context(conn.url, self.proxy),  # shared: no CAs loaded per client
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=20),
            )
        return http

    def join(self, timeout: float = CANCEL_TIMEOUT * 2) -> None:
        """Wait until every cancellation sent so far has been answered (or given up)."""
        with self._lock:
            pending = list(self._pending)
        concurrent.futures.wait(pending, timeout=timeout)

    def close(self) -> None:
        """Wait for the cancellations in flight, then close the HTTP clients and stop the thread."""
        self._finalizer()


def _stop(
    runner: LoopThread,
    pending: set[concurrent.futures.Future[None]],
    lock: threading.Lock,
    http_clients: dict[HttpKey, httpx.AsyncClient],
) -> None:
    """Wait for the cancellations in flight, then close the HTTP clients on their loop, and
    stop it."""
    with lock:
        waiting = list(pending)
    concurrent.futures.wait(waiting, timeout=CANCEL_TIMEOUT * 2)

    async def close_clients() -> None:
        for http in list(http_clients.values()):
            await http.aclose()
        http_clients.clear()

    runner.stop(close_clients)
