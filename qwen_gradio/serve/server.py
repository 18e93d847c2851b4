"""uvicorn, as ``serve`` runs it (imported only when serving): ``run``, with a server that
drains on a signal as ``deployment`` says."""

from __future__ import annotations

import asyncio
import math
from types import FrameType
from typing import Any

import uvicorn

from .deployment import GRACE, Drain

__all__ = ["DrainingServer", "run", "server_config"]


class DrainingServer(uvicorn.Server):
    """uvicorn's server, draining ``drain`` on a signal: new requests refused at once, the
    replies in flight ended after ``grace`` seconds; a second signal ends them now."""

    def __init__(self, config: uvicorn.Config, drain: Drain, grace: float) -> None:
        super().__init__(config)
        self.drain, self.grace = drain, grace
        self.loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: Any = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets=sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit:  # a second signal: no more grace
            self.force_exit = True
            if self.loop is not None:
                self.loop.call_soon_threadsafe(self.drain.stop)
            return
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.drain.begin, self.grace)
        super().handle_exit(sig, frame)


def server_config(app: Any, host: str, port: int, grace: float) -> uvicorn.Config:
    """uvicorn's settings for ``app``: the access log is ``RequestLog``'s, not uvicorn's."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        server_header=False,
        access_log=False,  # RequestLog's lines instead, with the request id and duration
        timeout_graceful_shutdown=math.ceil(grace) + 1,  # a backstop: replies end at grace
    )


def run(app: Any, drain: Drain, *, host: str, port: int, grace: float = GRACE) -> bool:
    """Serve ``app`` with uvicorn until a signal, draining as the module says; True if a second
    signal forced the exit."""
    server = DrainingServer(server_config(app, host, port, grace), drain, grace)
    server.run()
    return bool(server.force_exit)
