"""Everything a client needs, as one frozen value built in one place.

``Settings.build()`` takes each setting from its argument, else the environment, else the
default; the CLI's flags (``qwen_gradio.cli.client_options``), ``serve``, ``ui``, ``batch`` and
both providers all build their settings here, so no front end re-lists or re-decides them.

============== =========================== ==================================================
setting        environment                 default
============== =========================== ==================================================
space(s)       ``QWEN_GRADIO_SPACE``       "Qwen/Qwen2.5-Max-Demo" (several: "a/b,c/d")
hf_token       ``HF_TOKEN``                none (a token saved on the machine is never sent)
proxy          none                        none
timeouts       none                        connect 10 s, first token 300 s, idle 60 s,
                                           total 900 s
options        none                        the Space's own defaults
transport      none                        "auto"
cache          ``QWEN_GRADIO_NO_CACHE=1``  on
attempts       none                        3 tries per reply, before its first token
max_wait       none                        30 s: a retry that would wait longer fails at once
max_input_     ``QWEN_GRADIO_MAX_INPUT_``  30,720 (Qwen2.5-Max's); 0: no limit; a longer
tokens         ``TOKENS``                  prompt is refused before any request
state          ``QWEN_GRADIO_STATE``       "local": this process's own; redis://... or
                                           sqlite:///path: shared with every process naming
                                           it (Spaces' load and cooldowns; ``_state``)
============== =========================== ==================================================
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypedDict, Unpack

from ._core.space import DEFAULT_SPACE, SPACE_ENV, resolve_space_url
from ._state import STATE_ENV, check_state_url
from ._transports import TRANSPORTS
from ._transports.cache import cache_enabled
from .errors import InvalidOptionError, InvalidSpaceError
from .tokens import MAX_INPUT_TOKENS

__all__ = [
    "HF_TOKEN_ENV",
    "MAX_INPUT_TOKENS_ENV",
    "SETTING_NAMES",
    "Settings",
    "SettingsArguments",
    "Space",
    "Timeouts",
    "checked_options",
    "spaces_of",
]

HF_TOKEN_ENV = "HF_TOKEN"
MAX_INPUT_TOKENS_ENV = "QWEN_GRADIO_MAX_INPUT_TOKENS"


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
class Space:
    """One Space of a pool: an id ("owner/name") or URL, and what it needs of its own: its token
    (default: the settings' ``hf_token``) and options (over the settings' options), such as the
    Qwen2.5 demo's ``{"model_size": "72B"}``. ``url`` is its base URL."""

    space: str
    hf_token: str | None = field(default=None, repr=False)
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    url: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", resolve_space_url(self.space))
        object.__setattr__(self, "options", MappingProxyType(checked_options(self.options)))

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuilt(self)

    @property
    def name(self) -> str:
        """The Space as the user named it (an id, or a URL)."""
        return self.space.strip().rstrip("/") if "://" in self.space else self.space.strip()


SpacesArgument = str | Space | Sequence[str | Space] | None


def _rebuilt(value: Any) -> tuple[Any, ...]:
    """How ``value`` (a frozen dataclass holding read-only mappings, which do not pickle) is
    pickled, e.g. to the workers of ``serve --workers``: made anew from its fields."""
    fields = {
        f.name: dict(v) if isinstance(v := getattr(value, f.name), MappingProxyType) else v
        for f in dataclasses.fields(value)
        if f.init
    }
    return (_made, (type(value), fields))


def _made(kind: Any, fields: dict[str, Any]) -> Any:
    return kind(**fields)


def spaces_of(value: SpacesArgument) -> tuple[Space, ...]:
    """The pool that ``value`` names: a Space, an id or URL (several separated by commas), or a
    list of them; None means ``$QWEN_GRADIO_SPACE`` (likewise), else the Qwen2.5-Max Space."""
    if value is None:
        value = os.environ.get(SPACE_ENV) or DEFAULT_SPACE
    items = [value] if isinstance(value, (str, Space)) else list(value)
    spaces: list[Space] = []
    for item in items:
        if isinstance(item, Space):
            spaces.append(item)
        elif isinstance(item, str):
            spaces.extend(Space(part.strip()) for part in item.split(",") if part.strip())
        else:
            raise InvalidSpaceError(f"a Space is an id, a URL or a qwen_gradio.Space, not {item!r}")
    if not spaces:
        raise InvalidSpaceError("no Space given")
    urls = [space.url for space in spaces]
    if len(set(urls)) != len(urls):
        raise InvalidSpaceError(f"a Space is named twice in the pool: {', '.join(urls)}")
    return tuple(spaces)


def _max_input_tokens(value: int | None) -> int | None:
    """The argument, else ``$QWEN_GRADIO_MAX_INPUT_TOKENS``, else Qwen2.5-Max's limit; 0: none."""
    if value is None:
        raw = os.environ.get(MAX_INPUT_TOKENS_ENV, "").strip()
        if not raw:
            return MAX_INPUT_TOKENS
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(
                f"{MAX_INPUT_TOKENS_ENV} must be a whole number, not {raw!r}"
            ) from None
    return value or None


class SettingsArguments(TypedDict, total=False):
    """The settings a caller names, besides the Space(s): the one list of them. ``QwenClient``,
    ``Settings.build``, the providers' keyword arguments and the llm plugin's options take these
    names; the CLI has a flag for each (a test holds them to it). None (or leaving one out)
    means: from the environment, else the default (the module's table)."""

    hf_token: str | None  # a Hugging Face token for private or duplicated Spaces
    proxy: str | None  # an http(s) proxy URL, for every request
    timeout: Timeouts | float | None  # Timeouts, or seconds for the whole reply
    options: Mapping[str, Any] | None  # the Space's extra chat inputs, by name or label
    transport: str | None  # "auto", "direct" or "gradio_client"
    cache: bool | None  # the on-disk cache of what connecting learnt
    attempts: int | None  # tries per reply, before its first token
    max_input_tokens: int | None  # the longest prompt sent, in Qwen's tokens (0: no limit)
    state: str | None  # where the Spaces' load and cooldowns are shared: "local", redis://...


#: Every setting a caller names: the Space(s), then the rest.
SETTING_NAMES = ("space", *SettingsArguments.__annotations__)

#: How each named setting becomes ``Settings``' field: (field, value from the argument or None).
_RESOLVE: dict[str, tuple[str, Any]] = {
    "hf_token": (
        "hf_token",
        lambda v: v if v is not None else os.environ.get(HF_TOKEN_ENV) or None,
    ),
    "proxy": ("proxy", lambda v: v or None),
    "timeout": ("timeouts", lambda v: Timeouts.of(v)),
    "options": ("options", lambda v: checked_options(v)),
    "transport": ("transport", lambda v: v or "auto"),
    "cache": ("cache", lambda v: cache_enabled(v)),
    "attempts": ("attempts", lambda v: 3 if v is None else v),
    "max_input_tokens": ("max_input_tokens", lambda v: _max_input_tokens(v)),
    "state": ("state", lambda v: check_state_url(v or os.environ.get(STATE_ENV))),
}


@dataclass(frozen=True)
class Settings:
    """What a QwenClient is: which Space, how to reach it, the limits of each reply.

    Build it with ``Settings.build(...)`` (arguments, then the environment, then defaults);
    ``replace(...)`` gives a copy with some settings changed.
    """

    spaces: tuple[Space, ...]  # the pool: one Space, or several that can stand in for another
    hf_token: str | None = field(default=None, repr=False)
    proxy: str | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    transport: str = "auto"
    cache: bool = True
    attempts: int = 3  # tries per reply, before its first token (1: no retry)
    backoff: float = 1.0  # seconds: the first full-jitter backoff's ceiling, doubling after each
    backoff_cap: float = 30.0  # the longest backoff
    max_wait: float = 30.0  # the longest wait before a retry; longer: the reply fails at once
    #: The longest prompt sent, in tokens (Qwen's tokenizer; None: no limit): longer ones are
    #: refused before any request (``qwen_gradio.tokens``). Default: Qwen2.5-Max's input limit.
    max_input_tokens: int | None = MAX_INPUT_TOKENS
    #: Where what the client learns of its Spaces (replies in flight, cooldowns, queue waits) is
    #: shared with other processes (``qwen_gradio._state``); None: this process's own.
    state: str | None = None

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(
                f"transport must be one of {', '.join(TRANSPORTS)}, not {self.transport!r}"
            )
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise ValueError(f"attempts must be a whole number, not {self.attempts!r}")
        if not 1 <= self.attempts <= 100:
            raise ValueError(f"attempts must be between 1 and 100, not {self.attempts}")
        if not self.spaces:
            raise InvalidSpaceError("no Space given")
        if self.max_input_tokens is not None and (
            isinstance(self.max_input_tokens, bool)
            or not isinstance(self.max_input_tokens, int)
            or self.max_input_tokens < 1
        ):
            raise ValueError(
                f"max_input_tokens must be a whole number from 1, or None, not"
                f" {self.max_input_tokens!r}"
            )
        object.__setattr__(self, "options", MappingProxyType(checked_options(self.options)))
        object.__setattr__(self, "state", check_state_url(self.state))

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuilt(self)

    @property
    def space_url(self) -> str:
        """The first Space's base URL, ending in "/" (the only one, for a single Space)."""
        return self.spaces[0].url

    @classmethod
    def build(
        cls, space: SpacesArgument = None, **arguments: Unpack[SettingsArguments]
    ) -> Settings:
        """Settings from arguments (``SettingsArguments``), else the environment, else the
        defaults (see the module's table). ``space`` is one Space (an id, a URL, a ``Space``) or
        a pool of them (a list, or ids and URLs separated by commas). Raises TypeError for a
        name that is no setting, ValueError (InvalidSpaceError, InvalidOptionError) for a
        wrong value."""
        unknown = set(arguments) - set(_RESOLVE)
        if unknown:
            raise TypeError(f"not a setting: {', '.join(sorted(unknown))}")
        given: dict[str, Any] = dict(arguments)
        fields = {field: resolve(given.get(name)) for name, (field, resolve) in _RESOLVE.items()}
        return cls(spaces=spaces_of(space), **fields)

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` (field names) applied; ``space=`` takes what ``build``'s
        ``space`` does."""
        if "space" in changes:
            changes["spaces"] = spaces_of(changes.pop("space"))
        return dataclasses.replace(self, **changes)
