"""Everything a client needs, as one frozen value built in one place.

``Settings.build()`` takes each setting from its argument, else the environment, else the
default; the CLI's flags (``qwen_gradio.cli.client_options``), ``serve``, ``ui``, ``batch`` and
both providers all build their settings here, so no front end re-lists or re-decides them.

============== =========================== ==================================================
setting        environment                 default
============== =========================== ==================================================
space          ``QWEN_GRADIO_SPACE``       "Qwen/Qwen2.5-Max-Demo"
hf_token       ``HF_TOKEN``                none (a token saved on the machine is never sent)
proxy          none                        none
timeouts       none                        connect 10 s, first token 300 s, idle 60 s,
                                           total 900 s
options        none                        the Space's own defaults
transport      none                        "auto"
cache          ``QWEN_GRADIO_NO_CACHE=1``  on
============== =========================== ==================================================
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ._cache import cache_enabled
from ._transports import TRANSPORTS
from .errors import InvalidOptionError
from .space import resolve_space_url

__all__ = ["HF_TOKEN_ENV", "Settings", "Timeouts", "checked_options"]

HF_TOKEN_ENV = "HF_TOKEN"


@dataclass(frozen=True)
class Timeouts:
    """Limits, in seconds, on one reply (``None``: no limit).

    - ``connect``: reaching the Space and having it accept the job.
    - ``first_token``: from submitting to the first text (the queue wait included).
    - ``idle``: between two pieces of text.
    - ``total``: the whole reply.
    """

    connect: float | None = 10.0
    first_token: float | None = 300.0
    idle: float | None = 60.0
    total: float | None = 900.0

    @classmethod
    def of(cls, value: Timeouts | float | None) -> Timeouts:
        """Timeouts from a Timeouts, a number (the total limit) or None (the defaults)."""
        if value is None:
            return cls()
        if isinstance(value, Timeouts):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return cls(total=float(value))
        raise ValueError(f"timeout must be a positive number or Timeouts, not {value!r}")


def checked_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``options`` as a dict, if it is a mapping with string keys (values are checked against
    the Space's own once it is known). Raises InvalidOptionError."""
    if options is None:
        return {}
    if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
        raise InvalidOptionError(
            f"options must map option names to values, not {type(options).__name__}"
        )
    return dict(options)


@dataclass(frozen=True)
class Settings:
    """What a QwenClient is: which Space, how to reach it, the limits of each reply.

    Build it with ``Settings.build(...)`` (arguments, then the environment, then defaults);
    ``replace(...)`` gives a copy with some settings changed.
    """

    space_url: str  # the Space's base URL, ending in "/"
    hf_token: str | None = field(default=None, repr=False)
    proxy: str | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    transport: str = "auto"
    cache: bool = True

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(
                f"transport must be one of {', '.join(TRANSPORTS)}, not {self.transport!r}"
            )
        object.__setattr__(self, "options", MappingProxyType(checked_options(self.options)))

    @classmethod
    def build(
        cls,
        space: str | None = None,
        *,
        hf_token: str | None = None,
        proxy: str | None = None,
        timeout: Timeouts | float | None = None,
        options: Mapping[str, Any] | None = None,
        transport: str | None = None,
        cache: bool | None = None,
    ) -> Settings:
        """Settings from arguments, else the environment, else the defaults (see the module's
        table). Raises ValueError (InvalidSpaceError, InvalidOptionError) for a wrong one."""
        return cls(
            space_url=resolve_space_url(space),
            hf_token=hf_token if hf_token is not None else os.environ.get(HF_TOKEN_ENV) or None,
            proxy=proxy or None,
            timeouts=Timeouts.of(timeout),
            options=checked_options(options),
            transport=transport or "auto",
            cache=cache_enabled(cache),
        )

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` (field names) applied."""
        return dataclasses.replace(self, **changes)
