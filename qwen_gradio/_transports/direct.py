"""The direct transport: the queue protocol over httpx, without gradio_client.

Connecting is one ``GET /config`` (validated before anything else is asked) and, only for a
Space whose chat event has options, its API info for their names, unless the on-disk cache
holds them for exactly this event. With a cache entry, ``cached_connection`` makes the
connection with no request at all, and ``agrees`` tells whether the config the Space gives
later is still the one cached. One job = one session hash: ``POST {prefix}queue/join`` returns
an ``event_id``; ``GET {prefix}queue/data?session_hash=...`` streams that session's server-sent
events until ``close_stream``; ``POST {prefix}cancel`` stops the job (``http.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from .._core.reply import SSELineDecoder, decode_sse_line
from .._core.space import (
    ChatEndpoint,
    SpaceConnection,
    chat_endpoint,
    check_gradio_config,
    parameter_names_in,
)
from ..errors import InvalidSpaceError, SpaceProtocolError, SpaceUnavailableError
from . import DIRECT_PROTOCOLS
from .cache import CachedSpace, SpaceCache, fingerprint
from .http import api_url, get_json, no_config_error, status_error, transport_error

__all__ = [
    "DirectSubmission",
    "DirectTransport",
    "agrees",
    "cached_connection",
    "connect_direct",
    "fetch_config",
]

HttpClientOf = Callable[[], Awaitable[httpx.AsyncClient]]  # the running loop's


async def fetch_config(http: httpx.AsyncClient, url: str, timeout: httpx.Timeout) -> dict[str, Any]:
    """The Space's config, checked to be a gradio 4+ app's."""
    config = await get_json(http, url + "config", timeout)
    if config is None:
        raise no_config_error(url)
    check_gradio_config(url, config)
    return dict(config)


async def connect_direct(
    http: httpx.AsyncClient,
    url: str,
    timeout: httpx.Timeout,
    cache: SpaceCache | None,
    *,
    fallback: bool = True,
    config: dict[str, Any] | None = None,
) -> SpaceConnection | None:
    """What the Space is, asked without gradio_client (its ``config`` when already fetched).
    For a Space that speaks a protocol the direct transport does not: None (connect through
    gradio_client then), or InvalidSpaceError without ``fallback``."""
    if config is None:
        config = await fetch_config(http, url, timeout)
    protocol = str(config.get("protocol", ""))
    if protocol not in DIRECT_PROTOCOLS:
        if fallback:
            return None
        raise InvalidSpaceError(
            f"{url} speaks the queue protocol {protocol!r}; transport='direct' speaks"
            f" {', '.join(DIRECT_PROTOCOLS)} only: use transport='gradio_client' or 'auto'"
        )
    endpoint = chat_endpoint(url, config)
    key = fingerprint(config, endpoint.fn_index)
    known = cache.load(url) if cache is not None else None
    names = known.parameter_names if known is not None and known.fingerprint == key else None
    if endpoint.options:  # their names are in the API info, or in the cache for this event
        if names is None:
            info = await get_json(http, f"{url}{endpoint.api_prefix}info?serialize=False", timeout)
            if not isinstance(info, dict) or not isinstance(info.get("named_endpoints"), dict):
                raise SpaceProtocolError(
                    f"{url} answered its API info in a shape Gradio does not use"
                )
            names = parameter_names_in(info, endpoint.api_name, endpoint.input_count)
        endpoint = chat_endpoint(url, config, parameter_names=names)
    entry = CachedSpace(config, key, names)
    if cache is not None and entry != known:  # written while the first job is on its way
        asyncio.get_running_loop().call_soon(cache.store, url, entry)
    return _connection(http, url, config, endpoint)


def cached_connection(
    http: httpx.AsyncClient, url: str, cache: SpaceCache
) -> SpaceConnection | None:
    """The connection the cache's entry for ``url`` makes, without a request; None without a
    usable entry (none, or one that no longer reads as a Space like the demo)."""
    known = cache.load(url)
    if known is None or str(known.config.get("protocol", "")) not in DIRECT_PROTOCOLS:
        return None
    try:
        check_gradio_config(url, known.config)
        endpoint = chat_endpoint(url, known.config, parameter_names=known.parameter_names)
    except InvalidSpaceError:
        return None
    if fingerprint(known.config, endpoint.fn_index) != known.fingerprint:
        return None  # written for another config (or by hand)
    if endpoint.options and known.parameter_names is None:
        return None
    return _connection(http, url, known.config, endpoint)


def agrees(connection: SpaceConnection, config: dict[str, Any]) -> bool:
    """Whether a job called as ``connection`` says is still right for a Space whose config is
    now ``config``: the same chat event, inputs, protocol, prefix and gradio version."""
    try:
        fn_index = chat_endpoint(connection.url, config).fn_index
    except InvalidSpaceError:
        return False
    return fingerprint(config, fn_index) == fingerprint(
        connection.config, connection.endpoint.fn_index
    )


def _connection(
    http: httpx.AsyncClient, url: str, config: dict[str, Any], endpoint: ChatEndpoint
) -> SpaceConnection:
    return SpaceConnection(
        url=url,
        endpoint=endpoint,
        headers=dict(http.headers),
        cookies={name: value for name, value in http.cookies.items() if value is not None},
        config=config,
    )


class DirectTransport:
    """Jobs over the running loop's HTTP client (``http()``)."""

    def __init__(
        self, connection: SpaceConnection, http: HttpClientOf, connect_timeout: float | None
    ):
        self.connection = connection
        self.http = http
        self.connect_timeout = connect_timeout

    def submit(self, inputs: list[Any], session_hash: str) -> DirectSubmission:
        return DirectSubmission(self, inputs, session_hash)

    def close(self) -> None:
        """Nothing to do: the pools belong to the client."""


class DirectSubmission:
    """One job: the join request (started at once), then the session's event stream."""

    diffs = True

    def __init__(self, transport: DirectTransport, inputs: list[Any], session_hash: str) -> None:
        self.transport = transport
        self.session_hash = session_hash
        self.join: asyncio.Future[str] = asyncio.ensure_future(self._join(inputs))
        self._stack = contextlib.AsyncExitStack()
        self._lines: AsyncIterator[str] | None = None

    async def _join(self, inputs: list[Any]) -> str:
        """Put the chat job in the Space's queue; return its event id."""
        conn, http = self.transport.connection, await self.transport.http()
        endpoint = conn.endpoint
        payload = {
            "data": inputs,
            "event_data": None,
            "fn_index": endpoint.fn_index,
            "trigger_id": endpoint.trigger_id,
            "session_hash": self.session_hash,
        }
        timeout = httpx.Timeout(self.transport.connect_timeout)
        try:
            response = await http.post(api_url(conn, "queue/join"), json=payload, timeout=timeout)
        except httpx.HTTPError as exc:
            raise transport_error(exc, f"joining the queue of {conn.url}") from exc
        if not response.is_success:
            raise status_error(response, f"{conn.url} refused the job")
        try:
            return str(response.json()["event_id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise SpaceUnavailableError(
                f"{conn.url} answered the join without an event id"
            ) from exc

    async def joined(self) -> str:
        return await asyncio.shield(self.join)

    async def next_message(self) -> dict[str, Any] | None:
        if self._lines is None:
            self._lines = await self._open()
        while True:
            try:
                line = await self._lines.__anext__()
            except StopAsyncIteration:
                return None
            except httpx.HTTPError as exc:
                raise transport_error(exc, "reading the reply") from exc
            message = decode_sse_line(line)
            if message is not None:
                return message

    async def _open(self) -> AsyncIterator[str]:
        """Open the session's event stream. Its headers count against the caller's first-token
        limit: a front end that takes the request and never answers cannot hang the reply."""
        conn, http = self.transport.connection, await self.transport.http()
        read_forever = httpx.Timeout(self.transport.connect_timeout, read=None)
        request = http.build_request(
            "GET",
            api_url(conn, "queue/data"),
            params={"session_hash": self.session_hash},
            timeout=read_forever,
        )
        try:
            response = await http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise transport_error(exc, f"opening the event stream of {conn.url}") from exc
        self._stack.push_async_callback(response.aclose)
        if not response.is_success:
            await response.aread()
            raise status_error(response, f"{conn.url} refused the event stream")
        return _sse_lines(response)

    async def aclose(self) -> None:
        lines, self._lines = self._lines, None
        if lines is not None:
            await lines.aclose()  # type: ignore[attr-defined]
        await self._stack.aclose()


async def _sse_lines(response: httpx.Response) -> AsyncIterator[str]:
    decoder = SSELineDecoder()
    async for text in response.aiter_text():
        for line in decoder.feed(text):
            yield line
    for line in decoder.flush():
        yield line
