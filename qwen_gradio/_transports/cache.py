"""A small on-disk cache of what connecting to a Space learnt: its config, and the names its API
info gives the chat event's parameters (asked only for a Space with options).

With an entry, a later process submits its first job at once, from the cached config, while it
asks the Space for its config in parallel (``_client.member``): its first token comes after
the join and the event stream, the round trips of a client that knows the Space by heart. Should
the config disagree (another chat event, other inputs, protocol or gradio version: the entry's
``fingerprint``), the job is cancelled and sent again the new way before any of its text is read,
so a wrong call never stands.

One JSON file per Space URL in ``$QWEN_GRADIO_CACHE_DIR``, else ``$XDG_CACHE_HOME/qwen_gradio``,
else ``~/.cache/qwen_gradio``. Files are written whole (a temporary file, then a rename), so
concurrent processes never read half of one; a missing, corrupt or unwritable cache is ignored.
``QWEN_GRADIO_NO_CACHE=1`` or ``QwenClient(cache=False)`` turns it off. No token is stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CACHE_DIR_ENV",
    "NO_CACHE_ENV",
    "CachedSpace",
    "SpaceCache",
    "cache_enabled",
    "fingerprint",
]

CACHE_DIR_ENV = "QWEN_GRADIO_CACHE_DIR"
NO_CACHE_ENV = "QWEN_GRADIO_NO_CACHE"
FORMAT = 2  # 1 held the parameter names only


def cache_enabled(setting: bool | None) -> bool:
    """``QwenClient(cache=...)``: None follows ``QWEN_GRADIO_NO_CACHE``."""
    if setting is not None:
        return setting
    return os.environ.get(NO_CACHE_ENV, "").lower() not in ("1", "true", "yes", "on")


def default_directory() -> Path:
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qwen_gradio"


def fingerprint(config: dict[str, Any], fn_index: int) -> str:
    """What a job's call depends on: the chat event and the components it takes, as declared,
    the queue protocol, the API prefix and gradio's version."""
    components = {c.get("id"): c for c in config.get("components", [])}
    dependency: dict[str, Any] = next(
        (d for k, d in enumerate(config.get("dependencies", [])) if d.get("id", k) == fn_index),
        {},
    )
    inputs = [
        {"type": components.get(i, {}).get("type"), "props": components.get(i, {}).get("props")}
        for i in dependency.get("inputs", [])
    ]
    shape = {
        "version": config.get("version"),
        "protocol": config.get("protocol"),
        "api_prefix": config.get("api_prefix"),
        "fn_index": fn_index,
        "event": dependency,
        "inputs": inputs,
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class CachedSpace:
    """One entry: the config as the Space last gave it, the fingerprint of its chat event, and
    the parameter names for exactly that event (None: never asked, the event has no options)."""

    config: dict[str, Any]
    fingerprint: str
    parameter_names: list[str | None] | None


class SpaceCache:
    """One ``CachedSpace`` per Space URL."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or default_directory()

    def path(self, url: str) -> Path:
        """The file that holds ``url``'s entry."""
        return self.directory / (hashlib.sha256(url.encode()).hexdigest()[:32] + ".json")

    def load(self, url: str) -> CachedSpace | None:
        """``url``'s entry, or None (none, another format, or not well formed)."""
        try:
            entry = json.loads(self.path(url).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("format") != FORMAT:
            return None
        config, key, names = entry.get("config"), entry.get("fingerprint"), entry.get("names")
        if entry.get("url") != url or not isinstance(config, dict) or not isinstance(key, str):
            return None
        if names is not None and (
            not isinstance(names, list) or not all(n is None or isinstance(n, str) for n in names)
        ):
            return None
        return CachedSpace(config, key, names)

    def store(self, url: str, entry: CachedSpace) -> None:
        """Remember ``entry`` for ``url``; never raises."""
        record = {
            "format": FORMAT,
            "url": url,
            "fingerprint": entry.fingerprint,
            "names": entry.parameter_names,
            "config": entry.config,
        }
        with contextlib.suppress(OSError):
            self.directory.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    json.dump(record, out)
                os.replace(temporary, self.path(url))
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
