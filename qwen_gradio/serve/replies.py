"""How one reply becomes an HTTP response for ``serve``: read whole (``whole``), or streamed as
chat-completion chunks (``streamed``) or as Responses API events (``streamed_response``). Each
waits under its limits, ends its stream at a server shutdown (``SHUTDOWN``), and stops its job
on the Space when the client goes away."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from .._client.bridge import END, Pump
from .._client.streams import AsyncStream
from .._core.reply import QueueStatus, ReplyCompleted, Retrying, StreamEvent, TextDelta
from ..errors import QwenGradioError
from .deployment import Drain
from .responses import ResponseWriter
from .schema import ApiError, api_error

__all__ = [
    "SHUTDOWN",
    "SHUTTING_DOWN",
    "SPACE_HEADER",
    "completion",
    "streamed",
    "streamed_response",
    "whole",
]

logger = logging.getLogger("qwen_gradio")

#: The response header naming the Space of the pool that answered.
SPACE_HEADER = "X-Qwen-Gradio-Space"
SHUTDOWN = object()  # put in a stream's queue when the grace period ends
IDLE = object()  # no event for a while: a comment line keeps the connection alive

SHUTTING_DOWN = ApiError(
    503,
    "this server is shutting down; try again (another server may answer)",
    "server_error",
    code="server_shutting_down",
    headers={"Retry-After": "1", "Connection": "close"},
)


async def _disconnected(request: Request) -> None:
    """Return once the client has gone away."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def whole(
    request: Request,
    stream: AsyncStream,
    drain: Drain,
    body_of: Callable[[str], dict[str, Any]],
) -> Response:
    """Read the whole reply (the job cancelled if the client goes away or the server stops);
    the response is ``body_of(text)``."""
    reply = asyncio.ensure_future(stream.until_done())
    gone = asyncio.ensure_future(_disconnected(request))
    stopping = asyncio.ensure_future(drain.event().wait())
    try:
        await asyncio.wait({reply, gone, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not reply.done():  # the client went away, or the server stops: cancel the job
            reply.cancel()
            await asyncio.gather(reply, return_exceptions=True)  # before the stream closes
            if stopping.done():
                return SHUTTING_DOWN.response(request.state.request_id)
            return Response(status_code=499)
        try:
            text = reply.result()
        except QwenGradioError as error:
            return api_error(error).response(request.state.request_id)
    finally:
        for waiter in (gone, stopping):
            waiter.cancel()
        await asyncio.gather(gone, stopping, return_exceptions=True)
        await stream.aclose()
    return JSONResponse(body_of(text), headers={SPACE_HEADER: stream.space or ""})


def completion(stream: AsyncStream, reply_id: str, created: int, model: str, text: str) -> Any:
    message = {"role": "assistant", "content": text}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
    body: dict[str, Any] = {
        "id": reply_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [choice],
    }
    if stream.usage is not None:  # counted with Qwen's tokenizer (the serve extra brings it)
        body["usage"] = stream.usage.as_dict()
    return body


class _Pumped:
    """A reply's events pumped into a queue on the running loop (``Pump``), with a server
    shutdown put in it too (``SHUTDOWN``); ``finish()`` stops the pump (cancelling the job
    unless it is done) and frees the reply's place: when the stream ends, and after the
    response, even one whose stream never started."""

    def __init__(self, stream: AsyncStream, drain: Drain, release: Callable[[], None]) -> None:
        self.stream, self.release = stream, release
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self.running = asyncio.create_task(Pump(stream.events(), self.queue.put_nowait).run())
        self.unlisten = drain.listen(lambda: self.queue.put_nowait(SHUTDOWN))
        self.pending: list[object] = []  # items read already, to hand out first

    async def next_item(self, timeout: float) -> object:
        """The next event, ``END``, an error or ``SHUTDOWN``; TimeoutError after ``timeout``."""
        return _checked(await asyncio.wait_for(self.queue.get(), timeout))

    async def next_or_keepalive(self, keepalive: float) -> object:
        """What ``pending`` holds first, then the next item; ``IDLE`` after ``keepalive``
        seconds without one."""
        if self.pending:
            return self.pending.pop(0)
        try:
            return await self.next_item(keepalive)
        except TimeoutError:
            return IDLE

    async def finish(self) -> None:
        self.unlisten()
        await _stop(self.running, self.stream)
        self.release()


async def streamed(
    stream: AsyncStream,
    reply_id: str,
    created: int,
    model: str,
    keepalive: float,
    drain: Drain,
    release: Callable[[], None],
    *,
    include_usage: bool = False,
) -> Response:
    """Wait for the first text or an error (or ``keepalive`` seconds in the queue) before the
    headers go out, so that an error before the first token is an HTTP error. With
    ``include_usage``, a last chunk before ``[DONE]`` carries the usage (``choices`` empty)."""
    pumped = _Pumped(stream, drain, release)
    finish, next_item = pumped.finish, pumped.next_item
    early: list[object] = []
    try:
        while True:
            item = await next_item(keepalive)
            early.append(item)
            if not isinstance(item, (QueueStatus, Retrying)):  # still waiting for text
                break
    except TimeoutError:
        pass  # still queued: start the stream, keep it alive
    except BaseException:
        await finish()
        raise
    if early and (isinstance(early[-1], QwenGradioError) or early[-1] is SHUTDOWN):
        await finish()
        error = early[-1]
        return (SHUTTING_DOWN if error is SHUTDOWN else api_error(error)).response()  # type: ignore[arg-type]

    async def events() -> AsyncIterator[str]:
        try:
            yield _chunk(reply_id, created, model, {"role": "assistant", "content": ""}, None)
            pumped.pending = early
            while True:
                item = await pumped.next_or_keepalive(keepalive)
                if item is IDLE:
                    yield ": keep-alive\n\n"
                    continue
                if item is END:
                    if include_usage:
                        yield _usage_chunk(reply_id, created, model, stream)
                    yield "data: [DONE]\n\n"
                    return
                if item is SHUTDOWN:
                    body = SHUTTING_DOWN.body()
                    body["error"]["partial_text"] = stream.text
                    yield f"data: {json.dumps(body, ensure_ascii=False)}\n\n"
                    yield "data: [DONE]\n\n"
                    return
                if isinstance(item, QwenGradioError):  # mid-stream: an event OpenAI SDKs raise on
                    body = api_error(item).body()
                    body["error"]["partial_text"] = item.partial_text
                    yield f"data: {json.dumps(body, ensure_ascii=False)}\n\n"
                    return
                yield _event_line(item, reply_id, created, model)  # type: ignore[arg-type]
        finally:
            await finish()  # done, failed, or the client went away

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    if stream.space is not None:  # the Space of the pool answering (or being tried) now
        headers[SPACE_HEADER] = stream.space
    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers=headers,
        background=BackgroundTask(finish),
    )


def streamed_response(
    stream: AsyncStream,
    writer: ResponseWriter,
    keepalive: float,
    drain: Drain,
    release: Callable[[], None],
    remember: Callable[[str], None],
) -> Response:
    """The Responses API's event stream for one reply (``qwen_gradio.serve.responses``): its headers
    at once, errors as ``response.failed``, comment lines while the Space queues."""
    pumped = _Pumped(stream, drain, release)
    finish = pumped.finish

    async def events() -> AsyncIterator[str]:
        try:
            for line in writer.opening():
                yield line
            started = False
            while True:
                item = await pumped.next_or_keepalive(keepalive)
                if item is IDLE:
                    yield ": keep-alive\n\n"
                    continue
                if item is END:
                    remember(stream.text)
                    for line in writer.closing(stream.text, stream.usage, started):
                        yield line
                    return
                if item is SHUTDOWN or isinstance(item, QwenGradioError):
                    yield writer.failure(SHUTTING_DOWN if item is SHUTDOWN else item)  # type: ignore[arg-type]
                    return
                if isinstance(item, TextDelta):
                    if not started:
                        started = True
                        for line in writer.first_text():
                            yield line
                    yield writer.delta(item.delta)
                elif isinstance(item, (QueueStatus, Retrying)):
                    yield f": {item.describe()}\n\n"
        finally:
            await finish()

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(
        events(), media_type="text/event-stream", headers=headers, background=BackgroundTask(finish)
    )


def _usage_chunk(reply_id: str, created: int, model: str, stream: AsyncStream) -> str:
    """OpenAI's last chunk of a stream asked for ``include_usage``: no choices, the usage."""
    body = {
        "id": reply_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
        "usage": stream.usage.as_dict() if stream.usage is not None else None,
    }
    return f"data: {json.dumps(body)}\n\n"


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
