"""Which Space of a pool gets the next reply, and how long a member that failed cools down.
No I/O here: the client keeps each member's ``Health`` and asks ``choose()``.

The rule, in order: a member that is cooling down is never chosen; of the others, the one with
the fewest replies in flight; then the one whose queue last reported the shortest wait (a member
that reported none counts as no wait); then the first in the pool's order. With a shared state
(``Settings.state``), what the other processes report of a member (``SpaceLoad``) is added to
this process's own knowledge (``with_fleet``) before choosing: their replies in flight, the
longest cooldown any of them set, the last queue wait any of them saw.

A member that failed before its first token cools down for the wait it stated (its
``Retry-After``, or the wait its message names, at most ``MAX_STATED_WAIT``), else for a
full-jitter exponential backoff: a random wait between 0 and ``base * 2**(failures - 1)``,
capped at ``cap``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import QwenGradioError

__all__ = ["MAX_STATED_WAIT", "Health", "SpaceLoad", "choose", "cooldown", "with_fleet"]

MAX_STATED_WAIT = 600.0  # the longest stated wait honoured, in seconds


@dataclass
class Health:
    """What this process knows of one member of a pool."""

    in_flight: int = 0  # replies of this process on it now
    cooling_until: float = 0.0  # a clock time before which it is not chosen
    queue_wait: float | None = None  # the wait its queue last reported, in seconds
    failures: int = 0  # failures in a row (reset by a reply that starts)
    retried: int = 0  # replies that failed here before their first token, and were tried again
    failed_over: int = 0  # of those, tried again on another member


@dataclass(frozen=True)
class SpaceLoad:
    """What the other processes sharing a state report of one member."""

    in_flight: int = 0  # their replies on it now
    cooling_until: float = 0.0  # a wall-clock time (``time.time()``) before which it is not chosen
    queue_wait: float | None = None  # the wait its queue last reported to any of them


def with_fleet(health: Health, load: SpaceLoad | None, now: float, wall: float) -> Health:
    """``health`` (``now`` on the monotonic clock) with what the fleet reports (``wall``: the
    same instant on the wall clock)."""
    if load is None:
        return health
    cooling = now + (load.cooling_until - wall) if load.cooling_until > wall else 0.0
    return Health(
        in_flight=health.in_flight + load.in_flight,
        cooling_until=max(health.cooling_until, cooling),
        queue_wait=load.queue_wait if load.queue_wait is not None else health.queue_wait,
        failures=health.failures,
    )


def choose(members: Sequence[Health], now: float) -> int | None:
    """The index of the member the next reply goes to; None while every one cools down."""
    ready = [i for i, health in enumerate(members) if health.cooling_until <= now]
    if not ready:
        return None
    return min(ready, key=lambda i: (members[i].in_flight, members[i].queue_wait or 0.0, i))


def cooldown(
    error: QwenGradioError,
    failures: int,
    *,
    base: float = 1.0,
    cap: float = 30.0,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds a member cools down after its ``failures``-th failure in a row, ``error``."""
    stated = error.retry_after
    if stated is not None:
        return min(max(stated, 0.0), MAX_STATED_WAIT)
    return float(rand() * min(cap, base * 2 ** max(failures - 1, 0)))
