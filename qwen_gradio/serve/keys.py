"""API keys for a team: several, each with a name (what the access log shows; never the key)
and an optional requests-per-minute limit.

Keys come as JSON, from a file (``--api-keys FILE``) or the environment
(``QWEN_GRADIO_API_KEYS``): ``{"alice": "sk-...", "ci": {"key": "sk-...", "rpm": 30}}``. A
request's ``Authorization: Bearer KEY`` is compared with every key in constant time. Over its
limit, a key's request is a 429 ``rate_limit_exceeded`` with ``Retry-After`` (a minute's
sliding window, counted in the client's state: across every process sharing it).
"""

from __future__ import annotations

import hmac
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["WINDOW", "ApiKey", "find_key", "load_keys", "retry_after"]

WINDOW = 60.0  # seconds: "per minute"


@dataclass(frozen=True)
class ApiKey:
    """One key: its ``name``, the ``key`` itself (never shown), its ``rpm`` limit (None: none)."""

    name: str
    key: str = field(repr=False)
    rpm: int | None = None


def load_keys(text: str, where: str = "the API keys") -> tuple[ApiKey, ...]:
    """The keys of ``text`` (the JSON of the module's docstring); ValueError naming ``where``
    and what is wrong."""
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ValueError(f"{where} is not JSON: {error}") from None
    if not isinstance(data, Mapping) or not data:
        raise ValueError(f'{where} must be a JSON object of names: {{"alice": "sk-..."}}')
    keys = []
    for name, value in data.items():
        spec: Any = {"key": value} if isinstance(value, str) else value
        key, rpm = (spec.get("key"), spec.get("rpm")) if isinstance(spec, Mapping) else (None, None)
        if not isinstance(key, str) or len(key) < 8:
            raise ValueError(f"{where}: {name!r} needs a key of 8 characters or more")
        if rpm is not None and (isinstance(rpm, bool) or not isinstance(rpm, int) or rpm < 1):
            raise ValueError(f"{where}: {name!r} has an rpm that is not a whole number above 0")
        keys.append(ApiKey(str(name), key, rpm))
    if len({k.key for k in keys}) != len(keys):
        raise ValueError(f"{where}: two names share one key")
    return tuple(keys)


def find_key(keys: tuple[ApiKey, ...], authorization: str) -> ApiKey | None:
    """The key an ``Authorization`` header names (compared with each, in constant time)."""
    given = authorization.encode()
    found = None
    for key in keys:
        if hmac.compare_digest(given, f"Bearer {key.key}".encode()):
            found = key
    return found


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
