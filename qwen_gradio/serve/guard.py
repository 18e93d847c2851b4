"""What keeps a web page from using a local ``serve``: ``Guard``, an ASGI middleware that refuses,
before any work, what only a browser's tricks send.

``serve`` holds the user's Hugging Face token and quota, bound to loopback and often without an
API key. A page on any site can make a browser send a "simple" cross-origin POST (no preflight:
``Content-Type: text/plain`` or a form type, with a JSON body) that starts a job, and through DNS
rebinding (a name that resolves to 127.0.0.1) read the answers. So, as Ollama and Jupyter do and
as the MCP spec asks of local servers:

- a request whose ``Host`` is not an allowed one is refused (403 ``host_not_allowed``): by
  default, bound to loopback, ``localhost``, ``127.0.0.1`` and ``[::1]`` only; ``--allowed-host``
  adds names (behind a reverse proxy), ``*`` allows any;
- a request with an ``Origin`` that is neither an allowed one (``--cors-origin``) nor the
  server's own is refused (403 ``origin_not_allowed``), preflights included;
- a POST whose body is not ``application/json`` is refused (415 ``unsupported_media_type``).

Each refusal is OpenAI's error JSON, and the access log has its line.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .schema import ApiError

__all__ = ["LOOPBACK_HOSTS", "Guard", "host_name"]

#: The names a loopback-bound server answers to by default.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def host_name(host: str) -> str:
    """A ``Host`` header's name, without its port, lower-cased (``[::1]:8000`` -> ``[::1]``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """ASGI middleware: the checks of the module's docstring, before the app sees a request.
    ``allowed_hosts`` None allows any ``Host``."""

    def __init__(
        self, app: Any, allowed_hosts: Iterable[str] | None, allowed_origins: Iterable[str]
    ) -> None:
        self.app = app
        self.hosts = None if allowed_hosts is None else {host_name(h) for h in allowed_hosts}
        self.origins = {origin.rstrip("/").lower() for origin in allowed_origins}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = self.refusal(scope)
        if refused is None:
            await self.app(scope, receive, send)
            return
        request_id = (scope.get("state") or {}).get("request_id")
        await refused.response(request_id)(scope, receive, send)

    def refusal(self, scope: dict[str, Any]) -> ApiError | None:
        """Why this request is refused, or None."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if self.hosts is not None and host_name(host) not in self.hosts:
            return ApiError(
                403,
                "this server does not answer to that Host (a page's DNS rebinding?): add it"
                " with --allowed-host",
                code="host_not_allowed",
            )
        origin = headers.get("origin")
        if origin is not None and not self._allowed_origin(origin, host, scope):
            return ApiError(
                403,
                "requests from this origin are not allowed (add it with --cors-origin)",
                code="origin_not_allowed",
            )
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        if scope["method"] == "POST" and kind != "application/json":
            return ApiError(
                415,
                "the request body must be JSON, sent as Content-Type: application/json",
                code="unsupported_media_type",
            )
        return None

    def _allowed_origin(self, origin: str, host: str, scope: dict[str, Any]) -> bool:
        origin = origin.rstrip("/").lower()
        own = f"{scope.get('scheme', 'http')}://{host.strip().lower()}"
        return origin in self.origins or "*" in self.origins or origin == own
