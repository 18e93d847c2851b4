"""An OpenAI-compatible HTTP API over the Space: ``qwen-gradio serve``, or any ASGI server with
``qwen_gradio.serve:app`` (``pip install 'qwen-gradio[serve]'``).

- ``GET /v1/models``: the provider's model and its aliases; ``GET /health``: liveness.
- ``POST /v1/chat/completions``: OpenAI's request, and exactly the shapes OpenAI clients parse:
  a ``chat.completion`` object, or with ``"stream": true`` an event stream of
  ``chat.completion.chunk`` objects (a first chunk with the role, one chunk per Space delta, a
  last one with ``finish_reason: "stop"``, then ``data: [DONE]``), one ``id`` per reply. An
  ``"options"`` object (OpenAI SDKs: ``extra_body={"options": {...}}``) sets the Space's extra
  chat inputs for that reply, such as the Qwen2.5 demo's ``model_size``.

The conversation reaches the Space as real history and system prompt (qwen_gradio's message
rules). Bad input is refused with OpenAI's error JSON (400, 404) before any job is sent. Space
errors before the first token are HTTP errors (429 with ``Retry-After``, 503, 504, 502); after
it, an error event in the shape OpenAI's SDKs raise on. While a streamed request waits in the
Space's queue, comment lines keep the connection alive; a client that goes away cancels the job.
The server keeps no per-conversation state: run as many processes as you like.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ._bridge import END, Pump
from .client import QwenClient
from .errors import ModelNotSupportedError, QwenGradioError
from .provider import Qwen_Qwen_2_5_Max
from .settings import Settings
from .stream import QueueStatus, ReplyCompleted, Retrying, StreamEvent, TextDelta
from .streams import AsyncStream

__all__ = ["API_KEY_ENV", "SPACE_HEADER", "UNSUPPORTED", "create_app"]

logger = logging.getLogger("qwen_gradio")

API_KEY_ENV = "QWEN_GRADIO_API_KEY"
#: The response header naming the Space of the pool that answered.
SPACE_HEADER = "X-Qwen-Gradio-Space"
#: Request fields that change what a reply is and that the Space cannot honour: refused (400).
UNSUPPORTED = ("tools", "functions", "tool_choice", "function_call", "audio", "prediction")
KEEPALIVE = 10.0  # seconds: how long a streamed request waits in the queue before its headers

Endpoint = Callable[[Request], Awaitable[Response]]


class ApiError(Exception):
    """An OpenAI-style error response."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind
        self.code, self.param, self.headers = code, param, headers or {}

    def body(self) -> dict[str, Any]:
        error = {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}
        return {"error": error}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def api_error(error: QwenGradioError) -> ApiError:
    """The HTTP error for a qwen_gradio error met before the reply's first token: its status,
    type, code and param are the error class's own (``qwen_gradio.errors``), with a
    ``Retry-After`` of the wait the Space stated (at least 1 s), else the class's default."""
    wait = error.retry_after if error.retry_after is not None else error.default_wait
    headers = {"Retry-After": str(max(1, math.ceil(wait)))} if wait is not None else None
    return ApiError(
        error.http_status,
        error.message,
        error.error_type,
        code=error.code,
        param=error.param,
        headers=headers,
    )


def _chunk(
    reply_id: str, created: int, model: str, delta: dict[str, Any], finish: str | None
) -> str:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    body = {
        "id": reply_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [choice],
    }
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


class ChatRequest:
    """A validated ``/v1/chat/completions`` body."""

    def __init__(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise ApiError(400, "'model' is required: a string", param="model")
        try:
            Qwen_Qwen_2_5_Max.get_model(model)
        except ModelNotSupportedError as error:
            raise api_error(error) from None
        if body.get("n") not in (None, 1):
            raise ApiError(400, "'n' must be 1: the Space gives one reply per job", param="n")
        for field in UNSUPPORTED:
            if body.get(field):
                raise ApiError(400, f"'{field}' is not supported by this Space", param=field)
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise ApiError(400, "'stream' must be true or false", param="stream")
        options = body.get("options")  # qwen_gradio's own field (extra_body in OpenAI's SDKs)
        if options is not None and not isinstance(options, dict):
            raise ApiError(
                400, "'options' must be an object: option name -> value", param="options"
            )
        self.model, self.stream, self.options = model, stream, options
        self.messages: Any = body.get("messages")  # checked by the client's message rules


def create_app(
    settings: Settings | None = None,
    *,
    api_key: str | None = None,
    keepalive: float = KEEPALIVE,
) -> Starlette:
    """The ASGI app for the Space of ``settings`` (default: ``Settings.build()``, from the
    environment). ``api_key`` (default ``$QWEN_GRADIO_API_KEY``) makes every route require
    ``Authorization: Bearer <key>``; ``keepalive`` is how long a streamed request may wait in the
    Space's queue before its headers go out (later errors are then error events), and the gap
    between the comment lines that keep it alive. A request's own ``"options"`` object
    overrides the settings' options for its reply."""
    client = QwenClient(settings=settings or Settings.build())
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
    expected = f"Bearer {key}".encode() if key else None

    def guarded(endpoint: Endpoint) -> Endpoint:
        async def check(request: Request) -> Response:
            if expected is not None:
                given = request.headers.get("authorization", "").encode()
                if not hmac.compare_digest(given, expected):
                    return ApiError(
                        401, "a valid API key is required", code="invalid_api_key"
                    ).response()
            try:
                return await endpoint(request)
            except ApiError as error:
                return error.response()

        return check

    async def models(request: Request) -> Response:
        names = [*Qwen_Qwen_2_5_Max.models, *Qwen_Qwen_2_5_Max.model_aliases]
        data = [
            {"id": n, "object": "model", "created": 0, "owned_by": "qwen_gradio"} for n in names
        ]
        return JSONResponse({"object": "list", "data": data})

    async def health(request: Request) -> Response:
        spaces = [member.url for member in client.members]
        return JSONResponse({"status": "ok", "space": client.space_url, "spaces": spaces})

    async def chat_completions(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "the request body is not valid JSON") from None
        chat = ChatRequest(body)
        try:
            stream = client.astream(chat.messages, options=chat.options)
        except QwenGradioError as error:  # bad messages or options: refused before any job
            raise api_error(error) from None
        reply_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if not chat.stream:
            return await _whole(request, stream, reply_id, created, chat.model)
        return await _streamed(stream, reply_id, created, chat.model, keepalive)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    routes = [
        Route("/v1/models", guarded(models), methods=["GET"]),
        Route("/health", guarded(health), methods=["GET"]),
        Route("/v1/chat/completions", guarded(chat_completions), methods=["POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


async def _disconnected(request: Request) -> None:
    """Return once the client has gone away."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _whole(
    request: Request, stream: AsyncStream, reply_id: str, created: int, model: str
) -> Response:
    reply = asyncio.ensure_future(stream.until_done())
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({reply, gone}, return_when=asyncio.FIRST_COMPLETED)
        if not reply.done():  # the client went away: cancel the job on the Space
            reply.cancel()
            return Response(status_code=499)
        try:
            text = reply.result()
        except QwenGradioError as error:
            return api_error(error).response()
    finally:
        gone.cancel()
        await stream.aclose()
    message = {"role": "assistant", "content": text}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
    body = {
        "id": reply_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [choice],
    }
    return JSONResponse(body, headers={SPACE_HEADER: stream.space or ""})


async def _streamed(
    stream: AsyncStream, reply_id: str, created: int, model: str, keepalive: float
) -> Response:
    """Wait for the first text or an error (or ``keepalive`` seconds in the queue) before the
    headers go out, so that an error before the first token is an HTTP error."""
    queue: asyncio.Queue[object] = asyncio.Queue()
    pump = Pump(stream.events(), queue.put_nowait)
    running = asyncio.create_task(pump.run())
    early: list[object] = []
    try:
        while True:
            item = _checked(await asyncio.wait_for(queue.get(), keepalive))
            early.append(item)
            if not isinstance(item, (QueueStatus, Retrying)):  # still waiting for text
                break
    except TimeoutError:
        pass  # still queued: start the stream, keep it alive
    if early and isinstance(early[-1], QwenGradioError):
        await _stop(running, stream)
        return api_error(early[-1]).response()

    async def events() -> AsyncIterator[str]:
        try:
            yield _chunk(reply_id, created, model, {"role": "assistant", "content": ""}, None)
            pending = list(early)
            while True:
                if pending:
                    item = pending.pop(0)
                else:
                    try:
                        item = _checked(await asyncio.wait_for(queue.get(), keepalive))
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                if item is END:
                    yield "data: [DONE]\n\n"
                    return
                if isinstance(item, QwenGradioError):  # mid-stream: an event OpenAI SDKs raise on
                    body = api_error(item).body()
                    body["error"]["partial_text"] = item.partial_text
                    yield f"data: {json.dumps(body, ensure_ascii=False)}\n\n"
                    return
                yield _event_line(item, reply_id, created, model)  # type: ignore[arg-type]
        finally:
            await _stop(running, stream)  # done, failed, or the client went away

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    if stream.space is not None:  # the Space of the pool answering (or being tried) now
        headers[SPACE_HEADER] = stream.space
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def _event_line(event: StreamEvent, reply_id: str, created: int, model: str) -> str:
    if isinstance(event, QueueStatus):
        return f": {event.describe()}\n\n"
    if isinstance(event, Retrying):
        return f": {event.describe()}\n\n"
    if isinstance(event, TextDelta):
        return _chunk(reply_id, created, model, {"content": event.delta}, None)
    assert isinstance(event, ReplyCompleted)
    return _chunk(reply_id, created, model, {}, "stop")


def _checked(item: object) -> object:
    """A pumped item, with an exception that is not qwen_gradio's (a bug) logged and reported
    as a server error rather than lost."""
    if isinstance(item, Exception) and not isinstance(item, QwenGradioError):
        logger.error("a reply failed", exc_info=item)
        return QwenGradioError(f"internal error: {type(item).__name__}: {item}")
    return item


async def _stop(pump: asyncio.Task[None], stream: AsyncStream) -> None:
    pump.cancel()
    await asyncio.gather(pump, return_exceptions=True)
    await stream.aclose()


def __getattr__(name: str) -> Any:
    """``qwen_gradio.serve:app`` for ASGI servers, configured from the environment
    (``QWEN_GRADIO_SPACE``, ``QWEN_GRADIO_API_KEY``, ``HF_TOKEN``)."""
    if name == "app":
        app = create_app()
        globals()["app"] = app
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
