"""How one reply becomes an HTTP response for ``serve``: read whole (``whole``), or streamed as
chat-completion chunks (``streamed``) or as Responses API events (``streamed_response``). Each
waits under its limits, ends its stream at a server shutdown (``SHUTDOWN``), and stops its job
on the Space when the client goes away."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from .._client.bridge import END, Pump
from .._client.streams import AsyncStream
from .._core.reply import QueueStatus, ReplyCompleted, Retrying, StreamEvent, TextDelta
from .._core.tools import ToolCall
from ..errors import InvalidReplyError, QwenGradioError
from .deployment import Drain
from .responses import ResponseWriter
from .schema import ApiError, api_error

__all__ = [
    "SHUTDOWN",
    "SHUTTING_DOWN",
    "SPACE_HEADER",
    "ChatChunks",
    "Renderer",
    "ResponseEvents",
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


Streams = list[AsyncStream]  # the replies of one request (``n`` of them)


async def whole(
    request: Request,
    streams: Streams,
    drain: Drain,
    body_of: Callable[[Streams, list[str]], dict[str, Any]],
    again: Callable[[], Streams] | None = None,
) -> Response:
    """Read the whole replies, at once (their jobs cancelled if the client goes away or the
    server stops, or one fails); the response is ``body_of(streams, texts)``. Replies that are
    not the JSON asked for, or miss the call ``tool_choice`` asks for, are asked once more,
    with ``again()``'s streams."""
    response = await _whole(request, streams, drain, body_of)
    if again is not None and isinstance(response, AskAgain):
        response = await _whole(request, again(), drain, body_of)
    return response.response if isinstance(response, AskAgain) else response


@dataclass
class AskAgain:
    """Replies read whole to ask once more: ``response`` is the answer if they are not (an
    error for a reply not the JSON asked for; the replies themselves for a missed call)."""

    response: Response


async def _whole(
    request: Request,
    streams: Streams,
    drain: Drain,
    body_of: Callable[[Streams, list[str]], dict[str, Any]],
) -> Response | AskAgain:
    replies: asyncio.Future[list[str]] = asyncio.ensure_future(_texts(streams))
    gone = asyncio.ensure_future(_disconnected(request))
    stopping = asyncio.ensure_future(drain.event().wait())
    try:
        waited: set[asyncio.Future[Any]] = {replies, gone, stopping}
        await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
        if not replies.done():  # the client went away, or the server stops: cancel the jobs
            replies.cancel()
            await asyncio.gather(replies, return_exceptions=True)  # before the streams close
            if stopping.done():
                return SHUTTING_DOWN.response(request.state.request_id)
            return Response(status_code=499)
        try:
            texts = list(replies.result())
        except QwenGradioError as error:
            failed = api_error(error).response(request.state.request_id)
            return AskAgain(failed) if isinstance(error, InvalidReplyError) else failed
    finally:
        for waiter in (gone, stopping):
            waiter.cancel()
        await asyncio.gather(gone, stopping, return_exceptions=True)
        await asyncio.gather(*(s.aclose() for s in streams))  # the others' jobs, if one failed
    spaces = ", ".join(dict.fromkeys(s.space or "" for s in streams))
    answer = JSONResponse(body_of(streams, texts), headers={SPACE_HEADER: spaces})
    return AskAgain(answer) if any(s.missed_call for s in streams) else answer


async def _texts(streams: Streams) -> list[str]:
    return list(await asyncio.gather(*(s.until_done() for s in streams)))


def completion(
    streams: Streams, reply_id: str, created: int, model: str, texts: list[str]
) -> dict[str, Any]:
    """The ``chat.completion`` of ``n`` replies: a choice each, their usage summed (the prompt
    counted once, as OpenAI counts it)."""
    choices = [_choice(k, s, text) for k, (s, text) in enumerate(zip(streams, texts, strict=True))]
    body: dict[str, Any] = {
        "id": reply_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
    }
    usages = [s.usage for s in streams if s.usage is not None]
    if len(usages) == len(streams):  # counted with Qwen's tokenizer (the serve extra)
        completion_tokens = sum(u.completion_tokens for u in usages)
        prompt_tokens = usages[0].prompt_tokens
        body["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
    return body


def _choice(index: int, stream: AsyncStream, text: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if stream.tool_calls:  # OpenAI's shape: no text is null
        message["content"] = text or None
        message["tool_calls"] = [call.as_openai() for call in stream.tool_calls]
    reason = stream.finish_reason or "stop"
    return {"index": index, "message": message, "logprobs": None, "finish_reason": reason}


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

    async def lines(self, render: Renderer, keepalive: float) -> AsyncIterator[str]:
        """The response's lines, as ``render`` writes them: its opening, a line (or none) per
        event, a comment line every ``keepalive`` seconds without one, then its end or its
        failure. The one pump loop of both stream shapes."""
        try:
            for line in render.opening():
                yield line
            while True:
                item = await self.next_or_keepalive(keepalive)
                if item is IDLE:
                    yield ": keep-alive\n\n"
                elif item is END:
                    await render.settle()
                    for line in render.end():
                        yield line
                    return
                elif item is SHUTDOWN or isinstance(item, QwenGradioError):
                    for line in render.failure(None if item is SHUTDOWN else item):  # type: ignore[arg-type]
                        yield line
                    return
                else:
                    for line in render.event(item):  # type: ignore[arg-type]
                        yield line
        finally:
            await self.finish()  # done, failed, or the client went away

    def response(self, render: Renderer, keepalive: float, headers: dict[str, str]) -> Response:
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **headers}
        return StreamingResponse(
            self.lines(render, keepalive),
            media_type="text/event-stream",
            headers=headers,
            background=BackgroundTask(self.finish),
        )


class Renderer(Protocol):
    """How one stream shape writes a reply's events as server-sent-event lines."""

    def opening(self) -> Iterable[str]: ...

    def event(self, event: StreamEvent) -> Iterable[str]: ...

    async def settle(self) -> None:
        """What must be done before the reply's last lines go out (the client may act on them
        at once)."""

    def end(self) -> Iterable[str]: ...

    def failure(self, error: QwenGradioError | None) -> Iterable[str]:
        """The reply failed with ``error``, or (None) the server is shutting down."""
        ...


@dataclass
class ChatChunks:
    """Chat completions' chunks: one per delta, ``finish_reason`` on the last, ``[DONE]``."""

    stream: AsyncStream
    reply_id: str
    created: int
    model: str
    include_usage: bool = False

    def opening(self) -> Iterable[str]:
        yield self.chunk({"role": "assistant", "content": ""}, None)

    def event(self, event: StreamEvent) -> Iterable[str]:
        if isinstance(event, (QueueStatus, Retrying)):
            yield f": {event.describe()}\n\n"
        elif isinstance(event, TextDelta):
            yield self.chunk({"content": event.delta}, None)
        elif isinstance(event, ToolCall):  # a whole call in one delta, by its index
            yield self.chunk({"tool_calls": [{"index": event.index, **event.as_openai()}]}, None)
        elif isinstance(event, ReplyCompleted):
            yield self.chunk({}, event.finish_reason)

    async def settle(self) -> None:
        pass

    def end(self) -> Iterable[str]:
        if self.include_usage:
            yield _usage_chunk(self.reply_id, self.created, self.model, self.stream)
        yield "data: [DONE]\n\n"

    def failure(self, error: QwenGradioError | None) -> Iterable[str]:
        if error is None:
            body = SHUTTING_DOWN.body()
            body["error"]["partial_text"] = self.stream.text
        else:  # mid-stream: an event OpenAI SDKs raise on
            body = api_error(error).body()
            body["error"]["partial_text"] = error.partial_text
        yield f"data: {json.dumps(body, ensure_ascii=False)}\n\n"
        if error is None:
            yield "data: [DONE]\n\n"

    def chunk(self, delta: dict[str, Any], finish: str | None) -> str:
        return _chunk(self.reply_id, self.created, self.model, delta, finish)


@dataclass
class ResponseEvents:
    """The Responses API's events (``serve.responses.ResponseWriter``); queue status as
    comments; a failure as ``response.failed``."""

    stream: AsyncStream
    writer: ResponseWriter
    remember: Callable[[AsyncStream], Awaitable[None]]

    def opening(self) -> Iterable[str]:
        return self.writer.opening()

    def event(self, event: StreamEvent) -> Iterable[str]:
        if isinstance(event, TextDelta):
            yield from self.writer.delta(event.delta)
        elif isinstance(event, ToolCall):
            yield from self.writer.call(event)
        elif isinstance(event, (QueueStatus, Retrying)):
            yield f": {event.describe()}\n\n"

    async def settle(self) -> None:
        await self.remember(self.stream)  # kept before response.completed goes out

    def end(self) -> Iterable[str]:
        return self.writer.closing(self.stream.usage, self.stream.finish_reason)

    def failure(self, error: QwenGradioError | None) -> Iterable[str]:
        yield self.writer.failure(SHUTTING_DOWN if error is None else error)


async def streamed(
    stream: AsyncStream,
    render: ChatChunks,
    keepalive: float,
    drain: Drain,
    release: Callable[[], None],
) -> Response:
    """Chat completions' stream. The headers wait for the first text or an error (or
    ``keepalive`` seconds in the queue), so that an error before the first token is an HTTP
    error."""
    pumped = _Pumped(stream, drain, release)
    early: list[object] = []
    try:
        while True:
            item = await pumped.next_item(keepalive)
            early.append(item)
            if not isinstance(item, (QueueStatus, Retrying)):  # still waiting for text
                break
    except TimeoutError:
        pass  # still queued: start the stream, keep it alive
    except BaseException:
        await pumped.finish()
        raise
    if early and (isinstance(early[-1], QwenGradioError) or early[-1] is SHUTDOWN):
        await pumped.finish()
        error = early[-1]
        return (SHUTTING_DOWN if error is SHUTDOWN else api_error(error)).response()  # type: ignore[arg-type]
    pumped.pending = early
    headers = {SPACE_HEADER: stream.space} if stream.space is not None else {}
    return pumped.response(render, keepalive, headers)  # the Space answering (or tried) now


def streamed_response(
    stream: AsyncStream,
    render: ResponseEvents,
    keepalive: float,
    drain: Drain,
    release: Callable[[], None],
) -> Response:
    """The Responses API's stream: its headers at once, errors as ``response.failed``."""
    return _Pumped(stream, drain, release).response(render, keepalive, {})


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
