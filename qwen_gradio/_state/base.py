"""What every state is: the ``State`` a process uses, the ``StateStore`` a shared one is
kept in, and ``LocalState``, this process's own (the package says what is shared)."""

from __future__ import annotations

import collections
import importlib.util
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

from ..routing import SpaceLoad

__all__ = ["STALE", "STATE_ENV", "LocalState", "State", "StateStore", "check_state_url"]

STATE_ENV = "QWEN_GRADIO_STATE"
STALE = 60.0  # seconds: a process's replies in flight not rewritten for this long are not counted
SCHEMES = ("redis", "rediss", "unix", "valkey", "valkeys", "sqlite")


class State(Protocol):
    """The state one process reads and writes (``LocalState`` or ``SharedState``)."""

    url: str  # where it is kept: "local", or the store's URL (without a password)

    @property
    def shared(self) -> bool:
        """Whether other processes see it (False also while a store is away)."""
        ...

    async def loads(self, spaces: Sequence[str]) -> dict[str, SpaceLoad]:
        """What the other processes report of each Space (by URL); none for a local state."""
        ...

    def in_flight(self, space: str, count: int) -> None:
        """This process has ``count`` replies on ``space`` now."""

    def cooling(self, space: str, until: float) -> None:
        """``space`` failed here: not to be chosen before ``until`` (wall clock)."""

    def queue_wait(self, space: str, seconds: float | None) -> None:
        """``space``'s queue reported a wait of ``seconds``."""

    async def hit(self, name: str, limit: int, window: float) -> float | None:
        """Count a request of ``name`` if it had fewer than ``limit`` in the last ``window``
        seconds (None); else the seconds until it may try again (not counted)."""
        ...

    async def keep(self, key: str, value: str, ttl: float, limit: int) -> None:
        """Keep ``value`` under ``key`` for ``ttl`` seconds, with at most ``limit`` kept (the
        oldest forgotten first)."""

    async def kept(self, key: str) -> str | None:
        """The value kept under ``key``; None if it is not (or no longer) kept."""
        ...

    def close(self) -> None:
        """Let go of the store (idempotent)."""


class StateStore(Protocol):
    """A shared store, called on one thread at a time (``SharedState``'s), blocking, raising on
    any failure. ``process`` names the calling process's own entries."""

    def loads(self, spaces: Sequence[str], process: str, now: float) -> dict[str, SpaceLoad]: ...

    def in_flight(self, space: str, process: str, count: int, now: float) -> None: ...

    def cooling(self, space: str, until: float, now: float) -> None: ...

    def queue_wait(self, space: str, seconds: float | None, now: float) -> None: ...

    def hit(self, name: str, limit: int, window: float, now: float) -> float | None: ...

    def keep(self, key: str, value: str, ttl: float, limit: int, now: float) -> None: ...

    def kept(self, key: str, now: float) -> str | None: ...

    def close(self) -> None: ...


class LocalState:
    """This process's own state, in memory: nothing is learnt from others."""

    url = "local"
    shared = False

    def __init__(self) -> None:
        self._hits: dict[str, collections.deque[float]] = {}
        self._kept: OrderedDict[str, tuple[float, str]] = OrderedDict()

    async def loads(self, spaces: Sequence[str]) -> dict[str, SpaceLoad]:
        return {}

    def in_flight(self, space: str, count: int) -> None:
        pass

    def cooling(self, space: str, until: float) -> None:
        pass

    def queue_wait(self, space: str, seconds: float | None) -> None:
        pass

    async def hit(self, name: str, limit: int, window: float) -> float | None:
        now = time.monotonic()
        seen = self._hits.setdefault(name, collections.deque())
        while seen and seen[0] <= now - window:
            seen.popleft()
        if len(seen) >= limit:
            return max(seen[0] + window - now, 0.0)
        seen.append(now)
        return None

    async def keep(self, key: str, value: str, ttl: float, limit: int) -> None:
        self._kept[key] = (time.monotonic() + ttl, value)
        self._kept.move_to_end(key)
        while len(self._kept) > limit:
            self._kept.popitem(last=False)

    async def kept(self, key: str) -> str | None:
        found = self._kept.get(key)
        if found is None or found[0] <= time.monotonic():
            self._kept.pop(key, None)
            return None
        self._kept.move_to_end(key)
        return found[1]

    def close(self) -> None:
        pass


def check_state_url(url: str | None) -> str | None:
    """``url`` if it names a state (None or "local": this process's own); ValueError if not."""
    if url is None or not url.strip() or url.strip() == "local":
        return None
    url = url.strip()
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in SCHEMES:
        raise ValueError(
            f"a state is 'local', redis://host:port[/db], rediss://..., unix:///path or"
            f" sqlite:///path, not {url!r}"
        )
    if scheme == "sqlite" and not url.removeprefix("sqlite://").strip("/"):
        raise ValueError(f"a SQLite state names its file: sqlite:///path/state.db, not {url!r}")
    if scheme != "sqlite" and importlib.util.find_spec("redis") is None:
        raise ValueError(
            f"a state in Redis or Valkey needs redis-py: pip install 'qwen-gradio[state]'"
            f" ({url.split('://', 1)[0]}://...)"
        )
    return url
