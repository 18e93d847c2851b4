"""A small on-disk cache of what connecting to a Space learnt that its config does not say: the
names its API info gives the chat event's parameters (needed only for a Space with options).

One JSON file per Space URL in ``$QWEN_GRADIO_CACHE_DIR``, else ``$XDG_CACHE_HOME/qwen_gradio``,
else ``~/.cache/qwen_gradio``. An entry is used only when the chat event it was made for is
exactly the one the Space's config declares now (a fingerprint of the event and its input
components), so a changed Space costs one more request, never a wrong call. Files are written
whole (a temporary file, then a rename), so concurrent processes never read half of one; a
missing, corrupt or unwritable cache is ignored. ``QWEN_GRADIO_NO_CACHE=1`` or
``QwenClient(cache=False)`` turns it off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["CACHE_DIR_ENV", "NO_CACHE_ENV", "SpaceCache", "cache_enabled", "fingerprint"]

CACHE_DIR_ENV = "QWEN_GRADIO_CACHE_DIR"
NO_CACHE_ENV = "QWEN_GRADIO_NO_CACHE"
FORMAT = 1


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
    """What an entry is valid for: the chat event and the components it takes, as declared."""
    components = {c.get("id"): c for c in config.get("components", [])}
    dependency: dict[str, Any] = next(
        (d for k, d in enumerate(config.get("dependencies", [])) if d.get("id", k) == fn_index),
        {},
    )
    inputs = [
        {"type": components.get(i, {}).get("type"), "props": components.get(i, {}).get("props")}
        for i in dependency.get("inputs", [])
    ]
    shape = {"version": config.get("version"), "event": dependency, "inputs": inputs}
    return hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()


class SpaceCache:
    """Parameter names per Space URL, keyed by the chat event's fingerprint."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or default_directory()

    def path(self, url: str) -> Path:
        """The file that holds ``url``'s entry."""
        return self._path(url)

    def _path(self, url: str) -> Path:
        return self.directory / (hashlib.sha256(url.encode()).hexdigest()[:32] + ".json")

    def names(self, url: str, key: str) -> list[str | None] | None:
        """The parameter names stored for ``url`` under ``key``, or None."""
        try:
            entry = json.loads(self._path(url).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("format") != FORMAT:
            return None
        if entry.get("url") != url or entry.get("fingerprint") != key:
            return None
        names = entry.get("parameter_names")
        if not isinstance(names, list) or not all(n is None or isinstance(n, str) for n in names):
            return None
        return names

    def store(self, url: str, key: str, names: list[str | None]) -> None:
        """Remember ``names`` for ``url``; never raises."""
        entry = {"format": FORMAT, "url": url, "fingerprint": key, "parameter_names": names}
        with contextlib.suppress(OSError):
            self.directory.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    json.dump(entry, out)
                os.replace(temporary, self._path(url))
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
