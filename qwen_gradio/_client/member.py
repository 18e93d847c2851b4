"""One Space of a client's pool, connected: its transport (made once, whichever loop asks
first), an HTTP client (its connections) per event loop, and its health (``routing``).

A transport made from the on-disk cache is *unconfirmed* until the Space's own config, asked in
parallel with the first job (``confirmation()``), agrees with it; if it does not, the member's
transport is made anew from that config, and the job that went out the old way is sent again
(``qwen_gradio._client.job``)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import weakref
from collections.abc import AsyncGenerator, Awaitable, Mapping, Sequence
from typing import Any

import httpx

from .._core.space import SpaceConnection
from .._transports import Transport
from .._transports.cache import SpaceCache
from .._transports.direct import (
    DirectTransport,
    agrees,
    cached_connection,
    connect_direct,
    fetch_config,
)
from .._transports.http import tls_context
from .._version import __version__
from ..errors import InvalidOptionError, StreamClosedError
from ..routing import Health
from ..settings import Settings, Space
from .bridge import run_in_thread

__all__ = ["USER_AGENT", "Member", "options_for"]

logger = logging.getLogger("qwen_gradio")

USER_AGENT = f"qwen_gradio/{__version__}"

_HttpClient = tuple[httpx.AsyncClient, AsyncGenerator[None, None]]


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
        #: Whether ``transport`` was made from the config the Space gave this process (else
        #: from the cache, until ``confirmation()`` settles it).
        self.confirmed = False
        self._checks: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, asyncio.Task[Transport]
        ] = weakref.WeakKeyDictionary()
        self._connect_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._http_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _HttpClient] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return f"Member({self.name!r})"

    @property
    def connection(self) -> SpaceConnection | None:
        """What connecting learnt (None before it)."""
        return self.transport.connection if self.transport is not None else None

    async def connected(self, *, provisional: bool = False) -> Transport:
        """The transport, connecting first if need be (once, whichever loop asks). One made
        from the cache is returned at once only when ``provisional``; otherwise once the Space's
        config has confirmed it (or the one made from that config)."""
        if self.transport is None:
            if self.closed:
                raise StreamClosedError("this QwenClient is closed")
            loop = asyncio.get_running_loop()
            lock = self._connect_locks.setdefault(loop, asyncio.Lock())
            async with lock:
                if self.transport is None:
                    transport, confirmed = await self._connect()
                    if self.transport is None:
                        self.transport, self.confirmed = transport, confirmed
                    elif transport is not self.transport:  # another loop connected first
                        transport.close()
        assert self.transport is not None
        check = None if provisional else self.confirmation(self.transport)
        return self.transport if check is None else await check

    def confirmation(self, transport: Transport) -> Awaitable[Transport] | None:
        """None if ``transport`` is the member's, confirmed; else what gives the transport to
        use once the Space's config has been asked (one request per loop, shared by every job
        that waits for it; a failed one is asked again by the next)."""
        if transport is self.transport and self.confirmed:
            return None
        loop = asyncio.get_running_loop()
        if transport is not self.transport:  # replaced since: the new one is the one
            done: asyncio.Future[Transport] = loop.create_future()
            done.set_result(self.transport or transport)
            return done
        task = self._checks.get(loop)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = self._checks[loop] = loop.create_task(self._confirm(transport))
            task.add_done_callback(_retrieved)
        return asyncio.shield(task)

    async def _confirm(self, transport: Transport) -> Transport:
        """Ask the Space for its config; keep ``transport`` if it agrees, else make a new one."""
        http = await self.http()
        timeout = httpx.Timeout(self.settings.timeouts.connect)
        config = await fetch_config(http, self.url, timeout)
        if transport is not self.transport:
            return self.transport or transport
        old = transport.connection
        if agrees(old, config):
            cookies = {k: v for k, v in http.cookies.items() if v is not None}
            transport.connection = dataclasses.replace(old, config=config, cookies=cookies)
            if config != old.config and self._cache is not None:  # refresh the rest of it
                await connect_direct(http, self.url, timeout, self._cache, config=config)
            self.confirmed = True
            return transport
        logger.info("%s changed since it was cached; calling it the new way", self.name)
        fresh, _ = await self._connect(config)
        if transport is self.transport:
            self.transport, self.confirmed = fresh, True
            transport.close()
        else:
            fresh.close()
        return self.transport or fresh

    async def _connect(self, config: dict[str, Any] | None = None) -> tuple[Transport, bool]:
        """A new transport (from ``config`` if given, else the cache's, else the Space's), and
        whether it was made from the Space's own config."""
        s = self.settings
        if s.transport != "gradio_client":
            http = await self.http()
            if config is None and self._cache is not None:
                known = cached_connection(http, self.url, self._cache)
                if known is not None:
                    return DirectTransport(known, self.http, s.timeouts.connect), False
            connection = await connect_direct(
                http,
                self.url,
                httpx.Timeout(s.timeouts.connect),
                self._cache,
                fallback=s.transport == "auto",
                config=config,
            )
            if connection is not None:
                return DirectTransport(connection, self.http, s.timeouts.connect), True
        from .._transports.gradio_client import GradioClientTransport

        def connect() -> Transport:
            return GradioClientTransport.connect(
                self.url,
                hf_token=self.hf_token,
                proxy=s.proxy,
                connect_timeout=s.timeouts.connect,
                user_agent=USER_AGENT,
            )

        return await run_in_thread(connect), True

    async def http(self) -> httpx.AsyncClient:
        """The connection pool of the running event loop, closed when that loop shuts down its
        async generators (as ``asyncio.run`` does), or by ``close_http()``."""
        loop = asyncio.get_running_loop()
        pool = self._http_clients.get(loop)
        if pool is None or pool[0].is_closed:
            conn = self.connection
            http = httpx.AsyncClient(
                headers=self._headers,
                cookies=conn.cookies if conn is not None else None,
                proxy=self.settings.proxy,
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=20),
                verify=tls_context(self.url, self.settings.proxy),
            )
            keeper = _close_at_shutdown(http)
            await keeper.asend(None)  # now the loop's shutdown_asyncgens() will close it
            pool = self._http_clients[loop] = (http, keeper)
        return pool[0]

    async def close_http(self) -> None:
        """Stop the running loop's config check, if one is still asking, and close its
        connection pool."""
        check = self._checks.pop(asyncio.get_running_loop(), None)
        if check is not None and not check.done():
            check.cancel()
            await asyncio.wait([check])
        pool = self._http_clients.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool[1].aclose()

    def close(self) -> None:
        """Forget the pools (their loops close them) and let the transport's threads end."""
        self.closed = True
        self._http_clients.clear()
        if self.transport is not None:
            self.transport.close()


def _retrieved(task: asyncio.Task[Transport]) -> None:
    """A check nobody waits for any more still has its outcome read (no warning at exit)."""
    if not task.cancelled() and task.exception() is not None:
        logger.debug("asking for the config failed: %r", task.exception())


async def _close_at_shutdown(http: httpx.AsyncClient) -> AsyncGenerator[None, None]:
    """Holds ``http`` open; closing this generator (the loop's ``shutdown_asyncgens()``, or
    ``close_http()``) closes it."""
    try:
        yield
    finally:
        await http.aclose()


def options_for(
    members: Sequence[Member], member: Member, options: Mapping[str, Any]
) -> dict[str, Any]:
    """The options ``member``'s replies get: its Space's own over ``options``, checked against
    its chat event once it is connected (InvalidOptionError), before any job. In a pool, an
    option this Space does not have is left out (another member may have it), and one that no
    Space of the pool has is refused once every Space is connected; alone, it is an error."""
    chosen = {**options, **member.space.options}
    conn = member.connection
    pooled = len(members) > 1
    if conn is not None:
        endpoint = conn.endpoint
        if pooled:
            chosen = {k: v for k, v in chosen.items() if endpoint.has_option(str(k))}
        endpoint.option_values(chosen)  # checked here, before any job
    if pooled and all(m.connection is not None for m in members):
        for key in options:
            if not any(m.connection and m.connection.endpoint.has_option(key) for m in members):
                names = ", ".join(m.name for m in members)
                raise InvalidOptionError(f"no Space of the pool ({names}) has an option {key!r}")
    return chosen
