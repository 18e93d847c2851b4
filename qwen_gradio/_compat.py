"""The one place that relies on gradio_client's internals.

qwen_gradio asks gradio_client to *connect* to a Space: fetch its config and API info, read the
protocol and API prefix, build the request headers (the Hugging Face token goes in
``x-hf-authorization``) and collect the cookies the Space sets for session affinity. To do that
quietly it subclasses ``gradio_client.Client`` and overrides two private methods:

- ``_telemetry_thread``: a no-op. ``analytics_enabled=False`` alone does not turn telemetry off
  (gradio_client ORs it with ``GRADIO_ANALYTICS_ENABLED``, which defaults to "True").
- ``_get_config``: returns the config with ``connect_heartbeat`` off, so no heartbeat thread starts.

and, while one of ours is being built, it answers gradio_client's call of huggingface_hub's
``build_hf_headers`` (``gradio_client.client.build_hf_headers``) itself with just the token's
header: huggingface_hub >= 1.x would otherwise fetch ``https://huggingface.co/api/agent-harnesses``
for its user agent, with its own session (outside the proxy) and from a host the user never named.
Other callers of gradio_client are not affected (a context variable tells ours apart).

Streaming itself does not go through ``Client.submit``/``Job``: their 50 ms polling, 0.5 s async
bursts, per-Client session and kept-forever outputs are what qwen_gradio exists to avoid (see the
README's "Design" section). ``check_gradio_client()`` fails loudly on a version without the pieces
used here; the range below is the one the test suite runs against.
"""

from __future__ import annotations

import contextvars
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import (
    IncompatibleGradioClientError,
    InvalidSpaceError,
    QwenGradioError,
    RateLimitedError,
    SpaceProtocolError,
    SpaceUnavailableError,
    StreamTimeoutError,
)
from .space import ChatEndpoint, check_gradio_config

__all__ = ["TESTED_GRADIO_CLIENT", "SpaceConnection", "check_gradio_client", "connect"]

TESTED_GRADIO_CLIENT = (">=2.7.0", "<2.8")
_INIT_PARAMETERS = {
    "src",
    "token",
    "verbose",
    "download_files",
    "httpx_kwargs",
    "analytics_enabled",
    "headers",
}
_CLIENT_ATTRIBUTES = ("config", "headers", "cookies", "src", "protocol", "app_version")


@dataclass(frozen=True)
class SpaceConnection:
    """What connecting to a Space established; reused by every stream of a QwenClient."""

    url: str
    endpoint: ChatEndpoint
    headers: dict[str, str]
    cookies: dict[str, str]
    config: dict[str, Any]
    gradio_client_version: str


def check_gradio_client() -> str:
    """Return gradio_client's version; raise IncompatibleGradioClientError if it does not fit."""
    try:
        import gradio_client
        from gradio_client import Client
    except ImportError as exc:  # pragma: no cover - a dependency
        raise IncompatibleGradioClientError(f"gradio_client cannot be imported: {exc}") from exc
    version = getattr(gradio_client, "__version__", "") or "unknown"
    from gradio_client import client as client_module
    from gradio_client import exceptions, utils

    missing = [name for name in ("_telemetry_thread", "_get_config") if not hasattr(Client, name)]
    missing += [
        f"{module.__name__}.{name}"
        for module, name in (
            (exceptions, "AuthenticationError"),
            (utils, "TooManyRequestsError"),
            (client_module, "build_hf_headers"),
        )
        if not hasattr(module, name)
    ]
    missing += sorted(_INIT_PARAMETERS - set(inspect.signature(Client.__init__).parameters))
    if missing:
        low, high = TESTED_GRADIO_CLIENT
        raise IncompatibleGradioClientError(
            f"gradio_client {version} lacks {', '.join(missing)}, which qwen_gradio relies on;"
            f" install gradio_client{low},{high}"
        )
    return str(version)


_QUIET = contextvars.ContextVar("qwen_gradio_quiet_headers", default=False)


def _token_headers(token: str | bool | None = None, **_: Any) -> dict[str, str]:
    """The only header of huggingface_hub's that a Space needs: the token, if one was given."""
    return {"authorization": f"Bearer {token}"} if isinstance(token, str) and token else {}


def _install_quiet_headers() -> None:
    """Wrap gradio_client's ``build_hf_headers`` once: ours get ``_token_headers``, every other
    caller the original."""
    from gradio_client import client as client_module

    original = client_module.build_hf_headers
    if getattr(original, "_qwen_gradio", False):
        return

    def build_hf_headers(*args: Any, **kwargs: Any) -> dict[str, str]:
        if _QUIET.get():
            return _token_headers(*args, **kwargs)
        headers: dict[str, str] = original(*args, **kwargs)
        return headers

    wrapper: Callable[..., dict[str, str]] = build_hf_headers
    wrapper._qwen_gradio = True  # type: ignore[attr-defined]
    client_module.build_hf_headers = wrapper


def _client_class() -> type:
    from gradio_client import Client

    class QuietClient(Client):  # type: ignore[misc]
        """A gradio_client Client that sends no telemetry and starts no heartbeat thread."""

        def _telemetry_thread(self) -> None:
            return None

        def _get_config(self) -> dict[str, Any]:
            config: dict[str, Any] = super()._get_config()
            check_gradio_config(self.src, config)  # before gradio_client acts on it
            return {**config, "connect_heartbeat": False}

    return QuietClient


def connect(
    url: str,
    *,
    hf_token: str | None,
    httpx_kwargs: dict[str, Any],
    user_agent: str,
) -> SpaceConnection:
    """Connect to the Space at ``url`` through gradio_client (two requests: config, API info)."""
    import httpx

    version = check_gradio_client()  # before importing anything else of gradio_client's
    from gradio_client.exceptions import AuthenticationError
    from gradio_client.utils import TooManyRequestsError

    _install_quiet_headers()
    quiet = _QUIET.set(True)
    try:
        client = _client_class()(
            url,
            token=hf_token or False,  # False: never send a token saved on this machine
            verbose=False,
            download_files=False,
            httpx_kwargs=dict(httpx_kwargs),
            analytics_enabled=False,
            headers={"user-agent": user_agent},
        )
    except QwenGradioError:  # the config check above
        raise
    except httpx.TimeoutException as exc:
        raise StreamTimeoutError(f"connecting to {url} timed out", kind="connect") from exc
    except httpx.HTTPError as exc:
        raise SpaceUnavailableError(f"cannot reach the Space at {url}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise SpaceUnavailableError(
            f"{url} did not answer with a Gradio config: the Space may be sleeping, paused or"
            " building"
        ) from exc
    except TooManyRequestsError as exc:
        raise RateLimitedError(f"{url} refused the connection: {exc}") from exc
    except AuthenticationError as exc:
        raise SpaceUnavailableError(
            f"{url} needs credentials: pass hf_token= (or set HF_TOKEN) for a private Space"
        ) from exc
    except ValueError as exc:
        raise SpaceUnavailableError(f"cannot load the Space at {url}: {exc}") from exc
    except (KeyError, TypeError, AttributeError) as exc:  # API info of the wrong shape
        raise SpaceProtocolError(
            f"{url} answered its API info in a shape Gradio does not use: {exc!r}"
        ) from exc
    finally:
        _QUIET.reset(quiet)
    for attribute in _CLIENT_ATTRIBUTES:
        if not hasattr(client, attribute):  # pragma: no cover - guarded by the version test
            raise IncompatibleGradioClientError(
                f"gradio_client {version} has no Client.{attribute}"
            )
    try:
        endpoint = ChatEndpoint.from_config(client.config)
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidSpaceError(f"{url} is not a Space like Qwen2.5-Max-Demo: {exc}") from exc
    headers = {**client.headers, "user-agent": user_agent, "x-gradio-user": "api"}
    return SpaceConnection(
        url=client.src,
        endpoint=endpoint,
        headers=headers,
        cookies=dict(client.cookies),
        config=client.config,
        gradio_client_version=version,
    )
