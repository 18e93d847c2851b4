"""The state in Redis or Valkey (redis-py, the ``state`` extra), shared by every process and
machine that names it.

Keys, under ``qwen_gradio:``: per Space (by URL) a hash of each process's replies in flight
(``flight:``, "count wall-time"), its cooldown (``cool:``, expiring when it ends) and last queue
wait (``wait:``, a minute); per API key name a sorted set of its requests' times (``hits:``);
each stored value (``kept:``) with its expiry, and their index by time (``kept``) that bounds
their number. The two that check and write at once (a request under its limit, a value kept
within the bound) are Lua scripts, atomic on the server.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from ..routing import SpaceLoad
from .base import STALE

__all__ = ["RedisStore", "redis_url"]

PREFIX = "qwen_gradio:"
TIMEOUT = 0.5  # seconds: connecting, and each command

# KEYS[1] the name's requests; ARGV: now (ms), window (ms), limit, a unique member
_HIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(tonumber(first[2]) + tonumber(ARGV[2]) - tonumber(ARGV[1]))
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return false
"""

# KEYS[1] the index, KEYS[2] the value's key; ARGV: key, value, ttl (ms), now (ms), limit, prefix
_KEEP = """
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[4]) - tonumber(ARGV[3]))
local extra = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[5])
if extra > 0 then
  for _, old in ipairs(redis.call('ZRANGE', KEYS[1], 0, extra - 1)) do
    redis.call('DEL', ARGV[6] .. old)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, extra - 1)
end
return 1
"""


def redis_url(url: str) -> str:
    """``url`` as it may be shown: its password left out."""
    scheme, rest = url.split("://", 1)
    if "@" in rest.split("/", 1)[0]:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}://{rest}"


class RedisStore:
    """A ``StateStore`` in Redis (blocking redis-py, one connection: one thread calls it)."""

    def __init__(self, url: str) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        url = url.replace("valkey", "redis", 1) if url.startswith("valkey") else url
        self.redis: Any = redis.Redis.from_url(
            url,
            socket_timeout=TIMEOUT,
            socket_connect_timeout=TIMEOUT,
            retry=Retry(NoBackoff(), 0),  # a failure is handled above: no retries here
            decode_responses=True,
            client_name="qwen_gradio",
        )
        self.redis.ping()
        self._hit = self.redis.register_script(_HIT)
        self._keep = self.redis.register_script(_KEEP)

    def loads(self, spaces: Sequence[str], process: str, now: float) -> dict[str, SpaceLoad]:
        pipe = self.redis.pipeline(transaction=False)
        for space in spaces:
            pipe.hgetall(f"{PREFIX}flight:{space}")
            pipe.get(f"{PREFIX}cool:{space}")
            pipe.get(f"{PREFIX}wait:{space}")
        found = pipe.execute()
        loads = {}
        for i, space in enumerate(spaces):
            flights, cool, wait = found[3 * i : 3 * i + 3]
            in_flight = 0
            for owner, entry in flights.items():
                count, at = entry.split()
                if owner != process and now - float(at) < STALE:
                    in_flight += int(count)
            loads[space] = SpaceLoad(
                in_flight=in_flight,
                cooling_until=float(cool) if cool else 0.0,
                queue_wait=float(wait) if wait else None,
            )
        return loads

    def in_flight(self, space: str, process: str, count: int, now: float) -> None:
        key = f"{PREFIX}flight:{space}"
        if count:
            self.redis.hset(key, process, f"{count} {now:.3f}")
        else:
            self.redis.hdel(key, process)

    def cooling(self, space: str, until: float, now: float) -> None:
        ms = int((until - now) * 1000)
        if ms > 0:
            self.redis.set(f"{PREFIX}cool:{space}", f"{until:.3f}", px=ms)

    def queue_wait(self, space: str, seconds: float | None, now: float) -> None:
        if seconds is None:
            self.redis.delete(f"{PREFIX}wait:{space}")
        else:
            self.redis.set(f"{PREFIX}wait:{space}", f"{seconds:.3f}", ex=60)

    def hit(self, name: str, limit: int, window: float, now: float) -> float | None:
        args: list[str | int] = [int(now * 1000), int(window * 1000), limit, uuid.uuid4().hex]
        wait = self._hit(keys=[f"{PREFIX}hits:{name}"], args=args)
        return None if wait is None else max(float(wait) / 1000, 0.0)

    def keep(self, key: str, value: str, ttl: float, limit: int, now: float) -> None:
        prefix = f"{PREFIX}kept:"
        args: list[str | int] = [key, value, int(ttl * 1000), int(now * 1000), limit, prefix]
        self._keep(keys=[f"{PREFIX}kept", prefix + key], args=args)

    def kept(self, key: str, now: float) -> str | None:
        value = self.redis.get(f"{PREFIX}kept:{key}")
        return value if isinstance(value, str) else None

    def close(self) -> None:
        self.redis.close()
