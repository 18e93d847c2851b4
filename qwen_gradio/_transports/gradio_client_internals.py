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

By default streaming does not go through ``Client.submit``/``Job``: their 50 ms polling, 0.5 s
async bursts, per-Client session and kept-forever outputs are what the direct transport avoids (see
docs/design.md, "The transports"). ``transport="gradio_client"`` does submit through
``Client.submit`` (``submit()`` below), and for it ``QuietClient`` overrides three more methods:

- ``new_helper``: the job's ``Communicator`` hands every update (queue status, each output, the
  final one) to qwen_gradio's sink, and keeps only the latest output instead of every one (a Job
  otherwise holds each full intermediate output: hundreds of MB for a long reply);
- ``send_data``: tells the sink the job's event id once the Space has accepted it;
- ``stream_messages``: a broken event stream is remembered for the error qwen_gradio raises
  instead of being printed as a traceback from gradio_client's reader thread (it calls
  ``traceback.print_exc``, which is wrapped once to stay quiet for our readers only).

``gradio_client_error()`` is where gradio_client's exceptions become ours (for connecting and for
jobs alike). ``check_gradio_client()`` fails loudly on a version without the pieces used here;
the range below is the one the test suite runs against.
"""

from __future__ import annotations

import contextvars
import inspect
import json
import traceback
from collections.abc import Callable
from typing import Any, Protocol

from .._core.space import SpaceConnection, chat_endpoint, check_gradio_config, new_session_hash
from ..errors import (
    IncompatibleGradioClientError,
    QueueFullError,
    QwenGradioError,
    RateLimitedError,
    SpaceError,
    SpaceProtocolError,
    SpaceUnavailableError,
)
from .http import no_config_error, status_error, transport_error

__all__ = [
    "TESTED_GRADIO_CLIENT",
    "JobSink",
    "check_gradio_client",
    "close_client",
    "connect",
    "gradio_client_error",
    "stream_error",
    "submit",
]


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
_CLIENT_ATTRIBUTES = (
    "config",
    "headers",
    "cookies",
    "src",
    "protocol",
    "app_version",
    "session_hash",
    "_info",
    "executor",
    "helper_executor",
    "stream_executor",
)
_CLIENT_METHODS = ("_telemetry_thread", "_get_config", "new_helper", "send_data", "stream_messages")


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

    missing = [name for name in _CLIENT_METHODS if not hasattr(Client, name)]
    missing += [
        f"{module.__name__}.{name}"
        for module, name in (
            (exceptions, "AuthenticationError"),
            (exceptions, "AppError"),
            (utils, "TooManyRequestsError"),
            (utils, "QueueError"),
            (utils, "Communicator"),
            (client_module, "build_hf_headers"),
        )
        if not hasattr(module, name)
    ]
    communicator = getattr(utils, "Communicator", None)
    fields = getattr(communicator, "__dataclass_fields__", {})
    missing += [
        f"Communicator.{name}" for name in ("job", "updates", "event_id") if name not in fields
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
_QUIET_READER = contextvars.ContextVar("qwen_gradio_quiet_reader", default=False)


class JobSink(Protocol):
    """Where a job submitted through gradio_client reports (called from its threads)."""

    def joined(self, event_id: str) -> None: ...

    def put_nowait(self, update: Any) -> None: ...  # gradio_client's StatusUpdate/OutputUpdate


_SINK: contextvars.ContextVar[JobSink | None] = contextvars.ContextVar(
    "qwen_gradio_job_sink", default=None
)


class _LatestOutput(list):  # type: ignore[type-arg]
    """A Job's outputs list that keeps only the latest output."""

    def append(self, item: Any) -> None:
        self[:] = [item]


def _install_quiet_traceback() -> None:
    """Wrap ``traceback.print_exc`` once: silent inside our clients' event-stream readers (whose
    errors reach the reply as typed errors), the original everywhere else."""
    original = traceback.print_exc
    if getattr(original, "_qwen_gradio", False):
        return

    def print_exc(*args: Any, **kwargs: Any) -> None:
        if not _QUIET_READER.get():
            original(*args, **kwargs)

    print_exc._qwen_gradio = True  # type: ignore[attr-defined]
    traceback.print_exc = print_exc


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

        def new_helper(self, fn_index: int, headers: dict[str, str] | None = None) -> Any:
            helper = super().new_helper(fn_index, headers=headers)
            sink = _SINK.get()
            if sink is not None:
                helper.updates = sink
                helper.job.outputs = _LatestOutput()
            return helper

        def send_data(self, *args: Any, **kwargs: Any) -> Any:
            event_id = super().send_data(*args, **kwargs)
            sink = _SINK.get()  # submit() runs the job in a copy of the submitting context
            if sink is not None:
                sink.joined(str(event_id))
            return event_id

        def stream_messages(self, *args: Any, **kwargs: Any) -> None:
            quiet = _QUIET_READER.set(True)
            try:
                super().stream_messages(*args, **kwargs)
            except BaseException as exc:
                self.qwen_gradio_stream_error = exc
                raise
            finally:
                _QUIET_READER.reset(quiet)

    return QuietClient


def submit(client: Any, fn_index: int, inputs: list[Any], sink: JobSink) -> Any:
    """Submit the chat job through ``client.submit``; return its Job. Every update goes to
    ``sink``; the Job keeps only the latest output."""
    token = _SINK.set(sink)
    try:
        return client.submit(*inputs, fn_index=fn_index)
    finally:
        _SINK.reset(token)


def stream_error(client: Any) -> BaseException | None:
    """The error that ended the client's event-stream reader, if one did."""
    return getattr(client, "qwen_gradio_stream_error", None)


def close_client(client: Any) -> None:
    """Let a Client's threads end (jobs in flight end as they are cancelled)."""
    for name in ("executor", "helper_executor", "stream_executor"):
        executor = getattr(client, name, None)
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


def connect(
    url: str,
    *,
    hf_token: str | None,
    httpx_kwargs: dict[str, Any],
    user_agent: str,
) -> tuple[SpaceConnection, Any]:
    """Connect to the Space at ``url`` through gradio_client (two requests: config, API info),
    for jobs submitted through it (``transport="gradio_client"``, chosen or needed): what was
    learnt, and the connected ``Client``."""
    import httpx

    version = check_gradio_client()  # before importing anything else of gradio_client's
    _install_quiet_headers()
    _install_quiet_traceback()
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
            _skip_components=False,  # every output, as the Space sends it
        )
    except Exception as exc:
        raise gradio_client_error(exc, url, "cannot load the Space at") from exc
    finally:
        _QUIET.reset(quiet)
    for attribute in _CLIENT_ATTRIBUTES:
        if not hasattr(client, attribute):  # pragma: no cover - guarded by the version test
            raise IncompatibleGradioClientError(
                f"gradio_client {version} has no Client.{attribute}"
            )
    endpoint = chat_endpoint(url, client.config, client._info)
    client.session_hash = new_session_hash()  # its jobs share one event stream, as ever
    # The reader's wait for the next message is bounded by qwen_gradio, not by httpx.
    limit = httpx_kwargs.get("timeout")
    limit = limit.connect if isinstance(limit, httpx.Timeout) else limit
    client.httpx_kwargs = {**client.httpx_kwargs, "timeout": httpx.Timeout(limit, read=None)}
    headers = {**client.headers, "user-agent": user_agent, "x-gradio-user": "api"}
    connection = SpaceConnection(
        url=client.src,
        endpoint=endpoint,
        headers=headers,
        cookies=dict(client.cookies),
        config=client.config,
        gradio_client_version=version,
        transport="gradio_client",
    )
    return connection, client


def gradio_client_error(error: BaseException, url: str, what: str) -> QwenGradioError:
    """The qwen_gradio error for what gradio_client raised while ``what`` (e.g. "cannot load
    the Space at") ``url``: connecting, or a job. Ours pass through."""
    import httpx
    from gradio_client.exceptions import AppError, AuthenticationError, ValidationError
    from gradio_client.utils import QueueError, TooManyRequestsError

    if isinstance(error, QwenGradioError):
        return error
    if isinstance(error, httpx.HTTPStatusError):
        return status_error(error.response, f"{what} {url}")
    if isinstance(error, httpx.HTTPError):
        return transport_error(error, f"{what} {url}")
    if isinstance(error, json.JSONDecodeError):  # a page, not a config: asleep or building
        return no_config_error(url)
    if isinstance(error, QueueError):
        return QueueFullError(f"{url} refused the job: {error}")
    if isinstance(error, TooManyRequestsError):
        return RateLimitedError(f"{url} refused the request: {error}")
    if isinstance(error, AuthenticationError):
        return SpaceUnavailableError(
            f"{url} needs credentials: pass hf_token= (or set HF_TOKEN) for a private Space"
        )
    if isinstance(error, (AppError, ValidationError)):
        return SpaceError(str(error) or "the Space's app raised an error")
    if isinstance(error, ValueError):
        return SpaceUnavailableError(f"{what} {url}: {error}")
    if isinstance(error, (KeyError, TypeError, AttributeError)):  # API info of the wrong shape
        return SpaceProtocolError(
            f"{url} answered its API info in a shape Gradio does not use: {error!r}"
        )
    return SpaceUnavailableError(f"gradio_client failed: {type(error).__name__}: {error}")
