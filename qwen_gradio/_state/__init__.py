"""What the processes of a fleet share (``Settings.state``): the load and cooldown of each Space,
the per-key request counts of ``serve``, and its stored responses.

``open_state(url)`` gives a ``State``: ``LocalState`` (this process's own, in memory) for None
or "local"; else a ``SharedState`` over a store that every process naming the same URL shares:
Redis or Valkey (``redis://``, ``rediss://``, ``unix://``; the ``state`` extra, redis-py) or a
SQLite file (``sqlite:///path``: no server, the processes of one machine). A shared state is
written behind (nothing a reply does waits for a write) and read with a short limit; a store
that fails falls back to the local state with one log line, and is tried again every
``RETRY`` seconds until it answers (``shared``).
"""

from __future__ import annotations

from .base import STALE, STATE_ENV, LocalState, State, StateStore, check_state_url

__all__ = [
    "STALE",
    "STATE_ENV",
    "LocalState",
    "State",
    "StateStore",
    "check_state_url",
    "open_state",
]


def open_state(url: str | None) -> State:
    """The state ``url`` names (``check_state_url``); its store is reached on first use."""
    url = check_state_url(url)
    if url is None:
        return LocalState()
    from .shared import SharedState

    if url.startswith("sqlite://"):
        from .sqlite import SqliteStore, sqlite_path

        return SharedState(url, lambda: SqliteStore(sqlite_path(url)))
    from .redis import RedisStore, redis_url

    return SharedState(redis_url(url), lambda: RedisStore(url))
