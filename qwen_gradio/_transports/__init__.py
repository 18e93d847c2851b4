"""How a job reaches a Space: one small protocol, one module per transport.

A ``Transport`` is what connecting to a Space produced (the ``SpaceConnection``, the facts) plus
whatever live objects its jobs need. Its ``submit()`` puts one job in the Space's queue and
returns a ``Submission``, which the reply reads message by message::

    transport = await connect_transport(...)             # GET /config (and the API info)
    submission = transport.submit(inputs, session_hash)  # POST queue/join, at once
    event_id = await submission.joined()                 # the Space took the job
    while (message := await submission.next_message()) is not None:
        ...                                              # ReplyState.feed_message(message)
    await submission.aclose()

A closed or abandoned job is cancelled with ``cancel_job`` (``http.py``), the same request for
every transport. The job (``_client.job``) bounds every wait; a transport sets none of its
own but the connect limit of single requests.

- ``direct.py`` (the default): the queue protocol over httpx, no gradio_client.
- ``gradio_client.py``: jobs through ``gradio_client.Client.submit``, for the protocols the direct
  transport does not speak.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from .._core.space import SpaceConnection

__all__ = ["DIRECT_PROTOCOLS", "TRANSPORTS", "Submission", "Transport"]

TRANSPORTS = ("auto", "direct", "gradio_client")
DIRECT_PROTOCOLS = ("sse_v3",)  # what the direct transport speaks (gradio 4.44, 5 and 6 tested)


class Submission(Protocol):
    """One job in a Space's queue."""

    #: The session the job runs under.
    session_hash: str
    #: Whether outputs arrive as diffs of the previous one (else whole, each time).
    diffs: bool
    #: Settled with the job's event id once the Space has accepted it (or with the error that
    #: refused it). Settled even when nobody reads any more, so a dropped job is still cancelled.
    join: asyncio.Future[str]

    async def joined(self) -> str:
        """Wait until the Space has accepted the job; its event id. Cancelling the wait does
        not cancel the join."""
        ...

    async def next_message(self) -> dict[str, Any] | None:
        """The next decoded queue message of this job; None once the Space closed the stream."""
        ...

    async def aclose(self) -> None:
        """Release what reading took (connections, threads); the job itself is not cancelled."""
        ...


class Transport(Protocol):
    """A connected Space and the way its jobs reach it."""

    #: What connecting learnt; no live objects.
    connection: SpaceConnection

    def submit(self, inputs: list[Any], session_hash: str) -> Submission:
        """Put the chat job in the Space's queue under ``session_hash`` (returns at once)."""
        ...

    def close(self) -> None:
        """Let the transport's threads end (the client closes the connection pools)."""
        ...
