"""One Space of a client's pool, connected: its transport (made once, whichever loop asks
first), a connection pool per event loop, and its health (``qwen_gradio.routing``)."""

from __future__ import annotations

import asyncio
import ssl
import threading
import weakref
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import httpx

from ._bridge import run_in_thread
from ._cache import SpaceCache
from ._transports import Transport
from ._transports.direct import DirectTransport, connect_direct
from ._version import __version__
from .errors import StreamClosedError
from .routing import Health
from .settings import Settings, Space
from .space import SpaceConnection

__all__ = ["USER_AGENT", "Member"]

USER_AGENT = f"qwen_gradio/{__version__}"

_Pool = tuple[httpx.AsyncClient, AsyncGenerator[None, None]]


class Member:
    """One Space of the pool and what this process holds for it."""

    def __init__(self, space: Space, settings: Settings, cache: SpaceCache | None) -> None:
        self.space = space
        self.name = space.name
        self.url = space.url
        self.settings = settings
        self.hf_token = space.hf_token if space.hf_token is not None else settings.hf_token
        self.health = Health()
        self.closed = False
        self._cache = cache
        self._headers = {"user-agent": USER_AGENT, "x-gradio-user": "api"}
        if self.hf_token:  # where gradio_client puts it (a Space's own auth: Authorization)
            self._headers["x-hf-authorization"] = f"Bearer {self.hf_token}"
        self.transport: Transport | None = None
        self._connect_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return f"Member({self.name!r})"

    @property
    def connection(self) -> SpaceConnection | None:
        """What connecting learnt (None before it)."""
        return self.transport.connection if self.transport is not None else None

    def options_for(self, options: Mapping[str, Any], *, pooled: bool) -> dict[str, Any]:
        """The options this member's replies get: its own over ``options``, checked against its
        chat event (InvalidOptionError). In a pool, an option this Space does not have is left
        out (another member may have it); alone, it is an error."""
        chosen = {**options, **self.space.options}
        conn = self.connection
        if conn is None:
            return chosen
        endpoint = conn.endpoint
        if pooled:
            chosen = {
                k: v for k, v in chosen.items() if any(o.matches(str(k)) for o in endpoint.options)
            }
        endpoint.option_values(chosen)  # checked here, before any job
        return chosen

    async def connected(self) -> Transport:
        """The transport, connecting first if need be (once, whichever loop asks)."""
        if self.transport is not None:
            return self.transport
        if self.closed:
            raise StreamClosedError("this QwenClient is closed")
        loop = asyncio.get_running_loop()
        lock = self._connect_locks.setdefault(loop, asyncio.Lock())
        async with lock:
            if self.transport is not None:
                return self.transport
            transport = await self._connect()
            if self.transport is None:
                self.transport = transport
            elif transport is not self.transport:  # another loop connected first
                transport.close()
        return self.transport

    async def _connect(self) -> Transport:
        s = self.settings
        if s.transport != "gradio_client":
            http = await self.pool()
            connection = await connect_direct(
                http,
                self.url,
                httpx.Timeout(s.timeouts.connect),
                self._cache,
                fallback=s.transport == "auto",
            )
            if connection is not None:
                return DirectTransport(connection, self.pool, s.timeouts.connect)
        from ._transports.gradio_client import GradioClientTransport

        def connect() -> Transport:
            return GradioClientTransport.connect(
                self.url,
                hf_token=self.hf_token,
                proxy=s.proxy,
                connect_timeout=s.timeouts.connect,
                user_agent=USER_AGENT,
            )

        return await run_in_thread(connect)

    async def pool(self) -> httpx.AsyncClient:
        """The connection pool of the running event loop, closed when that loop shuts down its
        async generators (as ``asyncio.run`` does), or by ``close_pool()``."""
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None or pool[0].is_closed:
            conn = self.connection
            http = httpx.AsyncClient(
                headers=self._headers,
                cookies=conn.cookies if conn is not None else None,
                proxy=self.settings.proxy,
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=20),
                verify=_tls(self.url, self.settings.proxy),
            )
            keeper = _close_at_shutdown(http)
            await keeper.asend(None)  # now the loop's shutdown_asyncgens() will close it
            pool = self._pools[loop] = (http, keeper)
        return pool[0]

    async def close_pool(self) -> None:
        """Close the running loop's connection pool."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool[1].aclose()

    def close(self) -> None:
        """Forget the pools (their loops close them) and let the transport's threads end."""
        self.closed = True
        self._pools.clear()
        if self.transport is not None:
            self.transport.close()


async def _close_at_shutdown(http: httpx.AsyncClient) -> AsyncGenerator[None, None]:
    """Holds ``http`` open; closing this generator (the loop's ``shutdown_asyncgens()``, or
    ``close_pool()``) closes it."""
    try:
        yield
    finally:
        await http.aclose()


_TLS: ssl.SSLContext | None = None
_TLS_LOCK = threading.Lock()


def _tls(url: str, proxy: str | None) -> ssl.SSLContext:
    """The TLS context of a pool: httpx's default (certifi's CAs), made once per process and
    shared by every pool; a pool that can only speak plain HTTP (an http:// Space, no proxy)
    gets one that loads no CAs (loading them takes 20-35 ms, a noticeable part of a cold
    start)."""
    global _TLS
    if not url.startswith("https:") and proxy is None:
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # never used: nothing here speaks TLS
    with _TLS_LOCK:
        if _TLS is None:
            _TLS = httpx.create_ssl_context()
        return _TLS
