"""The ASGI app of ``qwen-gradio serve``: ``create_app(settings, options)`` and its routes."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._client.bridge import run_in_thread
from .._client.streams import AsyncStream
from .._core.shape import ReplyArguments
from ..client import QwenClient
from ..errors import QwenGradioError
from ..provider import Qwen_Qwen_2_5_Max
from ..routing import with_fleet
from ..settings import Settings
from ..tokens import load_tokenizer
from .deployment import GRACE, REQUEST_ID_HEADER, Drain, RequestLog
from .guard import LOOPBACK_HOSTS, Guard
from .keys import WINDOW, ApiKey, find_key, load_keys, retry_after
from .metrics import CountRequests, Metrics
from .replies import (
    SHUTTING_DOWN,
    SPACE_HEADER,
    ChatChunks,
    ResponseEvents,
    completion,
    streamed,
    streamed_response,
    whole,
)
from .responses import ResponseStore, ResponseWriter, input_messages, response_request
from .schema import (
    MAX_BODY,
    REFUSED_CHAT_FIELDS,
    ApiError,
    api_error,
    chat_request,
    check_model,
    json_body,
    read_body,
)

__all__ = [
    "API_KEY_ENV",
    "MAX_BODY",
    "MAX_REPLIES",
    "REFUSED_CHAT_FIELDS",
    "SPACE_HEADER",
    "ServeOptions",
    "create_app",
]

logger = logging.getLogger("qwen_gradio")

API_KEY_ENV = "QWEN_GRADIO_API_KEY"
API_KEYS_ENV = "QWEN_GRADIO_API_KEYS"  # JSON: {"name": "key"} or {"name": {"key", "rpm"}}
KEEPALIVE = 10.0  # seconds: how long a streamed request waits in the queue before its headers
MAX_REPLIES = 64  # replies at once, per process

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class ServeOptions:
    """How the server behaves (what it asks of the Space is ``Settings``).

    api_key: required as ``Authorization: Bearer <key>`` on every route (default
        ``$QWEN_GRADIO_API_KEY``; none: open).
    api_keys: several keys, each with a name and an optional rpm limit (``serve.keys``);
        with ``api_key`` too, that one is named "default".
    keepalive: seconds a streamed request may wait in the Space's queue before its headers go
        out (later errors are then error events), and between the comment lines that keep it
        alive.
    max_body: the largest request body accepted, in bytes (413 beyond it, before it is read).
    max_replies: replies in flight at once; one more request gets a 503 with ``Retry-After``.
    cors_origins: the browser origins allowed to call the API (CORS); none by default.
    grace: seconds the replies in flight may go on after a shutdown signal (``run``).
    """

    api_key: str | None = None
    api_keys: tuple[ApiKey, ...] = ()
    keepalive: float = KEEPALIVE
    max_body: int = MAX_BODY
    max_replies: int = MAX_REPLIES
    cors_origins: tuple[str, ...] = ()
    grace: float = GRACE
    allowed_hosts: tuple[str, ...] | None = LOOPBACK_HOSTS

    @classmethod
    def from_environment(cls) -> ServeOptions:
        """The options an ASGI server's ``qwen_gradio.serve:app`` runs with: the defaults, or
        ``QWEN_GRADIO_API_KEY``, ``QWEN_GRADIO_MAX_BODY``, ``QWEN_GRADIO_MAX_REPLIES``,
        ``QWEN_GRADIO_KEEPALIVE`` and ``QWEN_GRADIO_CORS_ORIGINS`` (comma-separated)."""
        env = os.environ

        def number(name: str, default: float, kind: type = int) -> Any:
            raw = env.get(name, "").strip()
            try:
                return kind(raw) if raw else default
            except ValueError:
                raise ValueError(f"{name} must be a number, not {raw!r}") from None

        origins = env.get("QWEN_GRADIO_CORS_ORIGINS", "")
        return cls(
            api_keys=environment_keys(),
            allowed_hosts=allowed_hosts(env.get("QWEN_GRADIO_ALLOWED_HOSTS", "").split(","), True),
            api_key=env.get(API_KEY_ENV) or None,
            keepalive=number("QWEN_GRADIO_KEEPALIVE", KEEPALIVE, float),
            max_body=number("QWEN_GRADIO_MAX_BODY", MAX_BODY),
            max_replies=number("QWEN_GRADIO_MAX_REPLIES", MAX_REPLIES),
            cors_origins=tuple(o.strip() for o in origins.split(",") if o.strip()),
        )

    def __post_init__(self) -> None:
        if self.keepalive <= 0 or self.grace < 0:
            raise ValueError("keepalive must be positive and grace not negative")
        if self.max_body < 1 or self.max_replies < 1:
            raise ValueError("max_body and max_replies must be at least 1")


class ReplySlots:
    """The replies in flight: their count, bounded; a request takes a slot before its body is
    read (a full server answers at once) and frees it when its reply is done."""

    def __init__(
        self, limit: int, drain: Drain, observe: Callable[[AsyncStream], None] | None = None
    ) -> None:
        self.limit, self.count, self.drain = limit, 0, drain
        self.observe = observe  # told of each reply a slot watched, once the slot is freed

    @contextmanager
    def slot(self) -> Iterator[Slot]:
        """A slot for one reply (503 when draining or full); freed on leaving, unless the
        reply's stream took it over (``Slot.hand_over``), which frees it when it ends."""
        if self.drain.draining:
            raise SHUTTING_DOWN
        if self.count >= self.limit:
            raise ApiError(
                503,
                f"this server is answering {self.limit} requests already; try again shortly",
                "server_error",
                code="server_overloaded",
                headers={"Retry-After": "1"},
            )
        self.count += 1
        slot = Slot(self)
        try:
            yield slot
        finally:
            if not slot.handed_over:
                slot.release()

    @contextmanager
    def more(self, count: int) -> Iterator[None]:
        """``count`` more places, for a request's extra replies (``n``), freed on leaving;
        503 when there are not that many free."""
        if count and self.count + count > self.limit:
            raise ApiError(
                503,
                f"this server cannot answer {count + 1} replies at once now; try again shortly",
                "server_error",
                code="server_overloaded",
                headers={"Retry-After": "1"},
            )
        self.count += count
        try:
            yield
        finally:
            self.count -= count


class Slot:
    """One reply's place among the replies in flight."""

    def __init__(self, slots: ReplySlots) -> None:
        self.slots, self.handed_over, self.released = slots, False, False
        self.streams: list[AsyncStream] = []  # the request's replies (its metrics)

    def release(self) -> None:
        if not self.released:  # once, whoever calls it
            self.released = True
            self.slots.count -= 1
            if self.slots.observe is not None:
                for stream in self.streams:
                    self.slots.observe(stream)

    def hand_over(self) -> Callable[[], None]:
        """The reply's stream frees the slot when it ends, not the request."""
        self.handed_over = True
        return self.release


class Api:
    """The server's routes, over one client: the models, health, chat completions and the
    Responses API, each behind the API key."""

    def __init__(self, client: QwenClient, options: ServeOptions) -> None:
        self.client, self.options = client, options
        key = options.api_key if options.api_key is not None else os.environ.get(API_KEY_ENV)
        self.keys = (*((ApiKey("default", key),) if key else ()), *options.api_keys)
        self.drain = Drain()
        self.replies = ReplySlots(options.max_replies, self.drain)
        self.metrics = Metrics(client, lambda: self.replies.count)
        self.replies.observe = self.metrics.observe
        self.store = ResponseStore(client.state)

    def routes(self) -> list[Route]:
        return [
            Route("/v1/models", self.guarded(self.models), methods=["GET"]),
            Route("/v1/models/{model:path}", self.guarded(self.model), methods=["GET"]),
            Route("/health", self.guarded(self.health), methods=["GET"]),
            Route("/v1/chat/completions", self.guarded(self.chat_completions), methods=["POST"]),
            Route("/v1/responses", self.guarded(self.responses), methods=["POST"]),
            Route("/metrics", self.guarded(self.metrics_page), methods=["GET"]),
        ]

    def middleware(self) -> list[Middleware]:
        options = self.options
        middleware = [
            Middleware(RequestLog),
            Middleware(CountRequests, metrics=self.metrics),
            Middleware(
                Guard, allowed_hosts=options.allowed_hosts, allowed_origins=options.cors_origins
            ),
        ]
        if self.options.cors_origins:
            middleware.append(
                Middleware(
                    CORSMiddleware,
                    allow_origins=list(self.options.cors_origins),
                    allow_methods=["GET", "POST"],
                    allow_headers=["authorization", "content-type", REQUEST_ID_HEADER],
                    expose_headers=[REQUEST_ID_HEADER, SPACE_HEADER, "retry-after"],
                )
            )
        return middleware

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.drain.event()  # made on the server's loop
        # the tokenizer (0.5 s) before any request: every reply's usage is counted
        await run_in_thread(load_tokenizer, name="qwen_gradio-tokenizer")
        yield
        self.drain.stop()
        await self.client.aclose()

    def guarded(self, endpoint: Endpoint) -> Endpoint:
        """``endpoint`` behind the API key, its ApiErrors as OpenAI's error JSON."""

        async def check(request: Request) -> Response:
            request_id = request.state.request_id
            try:
                if self.keys:
                    await self.authorized(request)
                return await endpoint(request)
            except ApiError as error:
                return error.response(request_id)

        return check

    async def authorized(self, request: Request) -> None:
        """ApiError unless the request names a key (401) that is under its limit (429, counted
        in the client's state: across the fleet when it is shared); the key's name goes to the
        access log."""
        key = find_key(self.keys, request.headers.get("authorization", ""))
        if key is None:
            raise ApiError(401, "a valid API key is required", code="invalid_api_key")
        request.scope["state"]["key_name"] = key.name
        wait = None if key.rpm is None else await self.client.state.hit(key.name, key.rpm, WINDOW)
        if wait is not None:
            raise ApiError(
                429,
                f"the key {key.name!r} is over its limit of {key.rpm} requests a minute",
                "rate_limit_error",
                code="rate_limit_exceeded",
                headers={"Retry-After": retry_after(wait)},
            )

    async def models(self, request: Request) -> Response:
        names = [*Qwen_Qwen_2_5_Max.models, *Qwen_Qwen_2_5_Max.model_aliases]
        return JSONResponse({"object": "list", "data": [_model(name) for name in names]})

    async def model(self, request: Request) -> Response:
        """One model (OpenAI's ``GET /v1/models/{model}``); 404 for one not served."""
        name = request.path_params["model"]
        check_model(name)
        return JSONResponse(_model(name))

    async def metrics_page(self, request: Request) -> Response:
        """Prometheus' text format (``serve.metrics``)."""
        return self.metrics.response()

    async def health(self, request: Request) -> Response:
        """Liveness, from what this process knows and its shared state reports (it asks no
        Space: it answers at once). ``in_flight`` is this process's replies on a Space,
        ``fleet_in_flight`` those of every process sharing the state."""
        state, members = self.client.state, self.client.members
        loads = await state.loads([m.url for m in members])
        now, wall, draining = time.monotonic(), time.time(), self.drain.draining
        described = []
        for member in members:
            fleet = with_fleet(member.health, loads.get(member.url), now, wall)
            described.append(
                {
                    "space": member.name,
                    "connected": member.connection is not None,
                    "cooling_down": fleet.cooling_until > now,
                    "in_flight": member.health.in_flight,
                    "fleet_in_flight": fleet.in_flight,
                }
            )
        body = {
            "status": "draining" if draining else "ok",
            "space": self.client.space_url,
            "spaces": [member.url for member in members],
            "members": described,
            "replies": self.replies.count,
            "state": {"url": state.url, "shared": state.shared},
            "pid": os.getpid(),
        }
        return JSONResponse(body, status_code=503 if draining else 200)

    def stream_of(
        self,
        slot: Slot,
        messages: Any,
        options: Any,
        system: str | None = None,
        asked: ReplyArguments | None = None,
    ) -> AsyncStream:
        """The reply's stream (``slot`` watches it for the metrics); bad messages, options or
        tools refused before any job."""
        try:
            stream = self.client.astream(messages, system=system, options=options, **(asked or {}))
        except QwenGradioError as error:
            raise api_error(error) from None
        slot.streams.append(stream)
        return stream

    async def chat_completions(self, request: Request) -> Response:
        with self.replies.slot() as slot:
            chat = chat_request(await read_body(request, self.options.max_body))
            reply_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
            if not chat.stream:
                n = chat.n or 1
                with self.replies.more(n - 1):  # n replies at once: n places

                    def streams() -> list[AsyncStream]:
                        return [
                            self.stream_of(slot, chat.messages, chat.options, asked=chat.asked())
                            for _ in range(n)
                        ]

                    return await whole(
                        request,
                        streams(),
                        self.drain,
                        lambda s, texts: completion(s, reply_id, created, chat.model, texts),
                        streams,
                    )
            stream = self.stream_of(slot, chat.messages, chat.options, asked=chat.asked())
            include_usage = bool(chat.stream_options and chat.stream_options.include_usage)
            render = ChatChunks(stream, reply_id, created, chat.model, include_usage)
            return await streamed(
                stream, render, self.options.keepalive, self.drain, slot.hand_over()
            )

    async def responses(self, request: Request) -> Response:
        with self.replies.slot() as slot:
            asked = response_request(json_body(await read_body(request, self.options.max_body)))
            check_model(asked.model)
            before = await self.store.before(asked.previous_response_id)
            messages = [*before, *input_messages(asked)]
            stream = self.stream_of(
                slot, messages, asked.options, asked.instructions, asked.asked()
            )
            writer = ResponseWriter(asked)

            async def remember(stream: AsyncStream) -> None:
                if asked.store:
                    reply: dict[str, Any] = {"role": "assistant", "content": stream.text}
                    if stream.tool_calls:
                        reply["tool_calls"] = [call.as_openai() for call in stream.tool_calls]
                    await self.store.keep(writer.id, [*messages, reply])

            answered: list[AsyncStream] = []

            def completed(streams: list[AsyncStream], texts: list[str]) -> dict[str, Any]:
                (stream,), (text,) = streams, texts
                answered.append(stream)
                reason = stream.finish_reason
                return writer.whole(text, stream.tool_calls, stream.usage, reason)

            def again() -> list[AsyncStream]:
                return [
                    self.stream_of(slot, messages, asked.options, asked.instructions, asked.asked())
                ]

            if not asked.stream:
                response = await whole(request, [stream], self.drain, completed, again)
                if response.status_code == 200:  # kept before the response goes out
                    await remember(answered[-1])
                return response
            render = ResponseEvents(stream, writer, remember)
            return streamed_response(
                stream, render, self.options.keepalive, self.drain, slot.hand_over()
            )


def environment_keys() -> tuple[ApiKey, ...]:
    """The keys ``QWEN_GRADIO_API_KEYS`` holds (JSON, ``serve.keys``), if any."""
    text = os.environ.get(API_KEYS_ENV, "").strip()
    return load_keys(text, API_KEYS_ENV) if text else ()


def allowed_hosts(given: Iterable[str], loopback: bool) -> tuple[str, ...] | None:
    """The ``Host`` names a server answers: bound to loopback, the loopback names and ``given``;
    elsewhere ``given`` (and the loopback names) or, with none given, any (None); ``*``: any."""
    names = tuple(name.strip() for name in given if name.strip())
    if "*" in names or (not loopback and not names):
        return None
    return (*LOOPBACK_HOSTS, *names)


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "qwen_gradio"}


async def _not_found(request: Request, error: Exception) -> Response:
    """A route or method this server does not have, in OpenAI's error JSON."""
    status = getattr(error, "status_code", 404)
    what = "method" if status == 405 else "route"
    message = f"this server has no {what} {request.method} {request.url.path}"
    code = "method_not_allowed" if status == 405 else "not_found"
    return ApiError(status, message, code=code).response(getattr(request.state, "request_id", None))


def create_app(
    settings: Settings | None = None,
    options: ServeOptions | None = None,
    *,
    api_key: str | None = None,
    keepalive: float | None = None,
) -> Starlette:
    """The ASGI app for the Space of ``settings`` (default: ``Settings.build()``, from the
    environment), behaving as ``options`` say (``api_key=`` and ``keepalive=`` are kept as
    shortcuts for those two fields). A request's own ``"options"`` object overrides the
    settings' options for its reply. ``app.state.drain`` (a ``Drain``) ends the replies in
    flight; ``app.state.client`` is the ``QwenClient``."""
    options = options or ServeOptions()
    if api_key is not None:
        options = dataclasses.replace(options, api_key=api_key)
    if keepalive is not None:
        options = dataclasses.replace(options, keepalive=keepalive)
    api = Api(QwenClient(settings=settings or Settings.build()), options)
    app = Starlette(
        routes=api.routes(),
        middleware=api.middleware(),
        lifespan=api.lifespan,
        exception_handlers={404: _not_found, 405: _not_found},
    )
    app.state.drain, app.state.client = api.drain, api.client
    return app
