"""Imports httpx makes lazily, made when qwen_gradio is imported instead.

httpx imports httpcore when its first client is made, and anyio's modules (its asyncio backend
among them) on the first request: about 30 ms that a cold process would otherwise spend between
deciding to connect and sending its first request, on the path to the first token (measured by
``bench/cold.py``; ``import qwen_gradio`` grows by as much, still well under gradio_client's).
"""

from __future__ import annotations

import contextlib
import importlib

__all__ = ["warm_http_imports"]

_MODULES = (
    "httpcore",
    "anyio.abc",
    "anyio.lowlevel",
    "anyio.streams.tls",
    "anyio.to_thread",
    "anyio._backends._asyncio",  # anyio's own lazy import of its asyncio backend
)


def warm_http_imports() -> None:
    """Import what httpx would import on first use; any that is missing is skipped."""
    for name in _MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
