"""``qwen-gradio batch``: many prompts through one QwenClient, resumable, with retries and progress.

Input is JSON Lines: each line a JSON string (one prompt) or an object with ``messages``
(OpenAI-style) or ``prompt``, an optional ``id`` (default: the line number, from 1) and, as
OpenAI names them, any of ``tools``, ``tool_choice``, ``parallel_tool_calls``, ``stop``,
``max_tokens`` and ``response_format``; blank lines are skipped. Every line is checked before
any request (``BatchInputError`` names the line).

Output is JSON Lines too, one line per prompt, written whole and flushed as soon as its reply
completes, so the lines come in completion order; ``index`` is the input line number::

    {"id": 7, "index": 7, "text": "...", "error": null, "finish_reason": "stop",
     "space": "Qwen/Qwen2.5-Max-Demo", "attempts": 1, "usage": null, "queue_seconds": 0.4,
     "generation_seconds": 3.2}

A reply that calls tools has ``"tool_calls"`` too (OpenAI's shape) and ``finish_reason``
``"tool_calls"``.

``usage`` holds the token counts when asked for (``usage=True``, ``--usage``), else null.

A failed prompt has ``"error": {"type": "SpaceError", "message": "..."}`` and ``text`` holds what
arrived before the error. Rerunning with the same output file appends: ids already answered
without an error are skipped, failed ones are tried again (an unfinished last line, from a
killed run, is cut off first). Retries are the client's own (``Settings.attempts``, on another
Space of the pool or later; before a reply's first token only): ``space`` is the Space that
answered, or the last one tried, and ``attempts`` how many times the prompt was tried.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, cast

from ._client.bridge import run_in_thread
from ._client.streams import AsyncStream
from ._core.messages import Prompt
from ._core.reply import QueueStatus, Retrying, TextDelta
from ._core.shape import REPLY_ARGUMENTS, ReplyArguments, shaped_request
from .client import QwenClient
from .errors import (
    InvalidMessagesError,
    QwenGradioError,
)
from .tokens import load_tokenizer

__all__ = [
    "BatchInputError",
    "BatchItem",
    "BatchOutputError",
    "Progress",
    "Summary",
    "answered_ids",
    "read_items",
    "run_batch",
]


logger = logging.getLogger("qwen_gradio")


class BatchInputError(InvalidMessagesError):
    """A line of the batch input cannot be sent; ``line`` is its number (from 1)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


class BatchOutputError(QwenGradioError):
    """The output cannot be written (a full disk, a file gone read-only). The lines written
    before stay whole; a rerun with the same output (once there is room), or another, answers
    only the rest."""

    exit_code = 1


@dataclass(frozen=True)
class BatchItem:
    """One prompt of the input: its line number, id and messages."""

    index: int
    id: Any
    messages: Prompt
    asked: ReplyArguments = field(default_factory=lambda: ReplyArguments())


def read_items(lines: Iterator[str] | list[str]) -> list[BatchItem]:
    """The prompts of JSON Lines input, every line checked (BatchInputError for the first bad
    one), ids unique."""
    items: list[BatchItem] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BatchInputError(number, f"not JSON ({exc.msg})") from None
        asked = ReplyArguments()
        if isinstance(value, str):
            item_id: Any = number
            messages: Any = value
        elif isinstance(value, dict):
            item_id = value.get("id", number)
            if not isinstance(item_id, (str, int)) or isinstance(item_id, bool):
                raise BatchInputError(number, "'id' must be a string or an integer")
            if "messages" in value:
                messages = value["messages"]
            elif "prompt" in value:
                messages = value["prompt"]
            else:
                raise BatchInputError(number, "an object needs 'messages' or 'prompt'")
            asked = cast(ReplyArguments, {k: value[k] for k in REPLY_ARGUMENTS if k in value})
        else:
            raise BatchInputError(number, "a line is a JSON string or an object")
        try:
            shaped_request(messages, **asked)
        except InvalidMessagesError as error:
            raise BatchInputError(number, error.message) from None
        key = json.dumps(item_id)
        if key in seen:
            raise BatchInputError(number, f"the id {item_id!r} is used twice")
        seen.add(key)
        items.append(BatchItem(number, item_id, messages, asked))
    return items


def answered_ids(path: Path) -> set[str]:
    """The ids (as JSON) that ``path``, an earlier run's output, holds an answer for. An
    unfinished last line (a killed run) is cut off the file."""
    if not path.exists():
        return set()
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        with path.open("r+b") as out:
            out.truncate(len(complete))
    answered = set()
    for line in complete.decode("utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("error") is None and "id" in record:
            answered.add(json.dumps(record["id"]))
    return answered


@dataclass
class Summary:
    """How a batch went."""

    total: int = 0
    skipped: int = 0  # answered by an earlier run
    answered: int = 0
    failed: int = 0
    retries: int = 0
    interrupted: bool = False
    seconds: float = 0.0

    def line(self) -> str:
        state = "interrupted" if self.interrupted else "done"
        return (
            f"batch {state}: {self.answered} answered, {self.failed} failed,"
            f" {self.skipped} skipped (answered before), {self.retries} retries,"
            f" of {self.total} prompts in {self.seconds:.1f} s"
        )


@dataclass
class Progress:
    """Progress on ``stream`` (stderr): a tqdm bar on a terminal, else a plain line every
    ``interval`` seconds. Counts what is done, failed and in flight, and the queue position."""

    total: int
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    interval: float = 5.0
    done: int = 0
    failed: int = 0
    in_flight: int = 0
    rank: int | None = None
    _bar: Any = None
    _last_line: float = 0.0
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.stream.isatty():
            from tqdm import tqdm  # type: ignore[import-untyped]

            # A terminal that reports no width (some ptys) would get an empty bar from tqdm:
            # shutil falls back to $COLUMNS, then 80.
            width = shutil.get_terminal_size().columns
            self._bar = tqdm(
                total=self.total, file=self.stream, unit="prompt", leave=True, ncols=width
            )

    def queued(self, status: QueueStatus) -> None:
        self.rank = None if status.started else status.rank
        self._show()

    def started(self) -> None:
        self.in_flight += 1
        self._show()

    def finished(self, ok: bool) -> None:
        self.in_flight -= 1
        self.done += ok
        self.failed += not ok
        self._show(force=self.done + self.failed == self.total)
        if self._bar is not None:
            self._bar.update(1)  # drawn with the counts just set

    def _show(self, force: bool = False) -> None:
        where = "" if self.rank is None else f", queue position {self.rank}"
        state = f"{self.done} done, {self.failed} failed, {self.in_flight} in flight{where}"
        if self._bar is not None:
            self._bar.set_postfix_str(state, refresh=False)
            return
        now = time.monotonic()
        if not force and now - self._last_line < self.interval:
            return
        self._last_line = now
        finished = self.done + self.failed
        elapsed = now - self._started
        rate = finished / elapsed if elapsed > 0 else 0.0
        eta = f", ETA {(self.total - finished) / rate:.0f} s" if rate and finished else ""
        self.stream.write(f"batch: {finished}/{self.total}, {state}, {rate:.2f}/s{eta}\n")
        self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _record(
    item: BatchItem, stream: AsyncStream, error: QwenGradioError | None, **timing: Any
) -> str:
    body: dict[str, Any] = {"id": item.id, "index": item.index, "text": stream.text}
    body["error"] = (
        None if error is None else {"type": type(error).__name__, "message": error.message}
    )
    body["finish_reason"] = stream.finish_reason
    if stream.tool_calls:
        body["tool_calls"] = [call.as_openai() for call in stream.tool_calls]
    body.update(timing)
    return json.dumps(body, ensure_ascii=False) + "\n"


async def _answer(
    item: BatchItem, stream: AsyncStream, progress: Progress, summary: Summary, usage: bool
) -> tuple[str, QwenGradioError | None]:
    """Read one prompt's reply: its output line, and the error that cut it short (if any)."""
    begun = time.monotonic()
    generating: float | None = None
    error: QwenGradioError | None = None
    try:
        async with stream:
            async for event in stream.events():
                if isinstance(event, QueueStatus):
                    progress.queued(event)
                    if event.started and generating is None:
                        generating = time.monotonic()
                elif isinstance(event, Retrying):  # the client tries again
                    summary.retries += 1
                    generating = None
                elif isinstance(event, TextDelta) and generating is None:
                    generating = time.monotonic()
    except QwenGradioError as exc:
        error = exc
    ended = time.monotonic()
    generating = generating or ended
    line = _record(
        item,
        stream,
        error,
        space=stream.space,
        attempts=stream.attempts,
        usage=stream.usage.as_dict() if usage and stream.usage is not None else None,
        queue_seconds=round(generating - begun, 3),
        generation_seconds=round(ended - generating, 3),
    )
    return line, error


async def run_batch(
    client: QwenClient,
    items: list[BatchItem],
    output: Path,
    *,
    concurrency: int = 4,
    system: str | None = None,
    options: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    summary: Summary | None = None,
    usage: bool = False,
) -> Summary:
    """Answer ``items`` (skipping those ``output`` already answers), appending a line to
    ``output`` as each completes; at most ``concurrency`` jobs at once; with ``usage``, each
    line's token counts (the tokenizer is loaded first, on a thread). Cancelling the task
    (Ctrl-C under ``asyncio.run``) cancels the jobs in flight on the Space, marks ``summary``
    (fill your own to read it then) interrupted and re-raises; every line written stays whole."""
    answered = answered_ids(output)
    todo = [item for item in items if json.dumps(item.id) not in answered]
    summary = summary if summary is not None else Summary()
    summary.total, summary.skipped = len(items), len(items) - len(todo)
    progress = progress or Progress(len(todo))
    slots = asyncio.Semaphore(concurrency)
    started = time.monotonic()
    if usage:  # loaded before any reply: no reply's deltas wait for it
        await run_in_thread(load_tokenizer, name="qwen_gradio-tokenizer")

    async def answer(item: BatchItem, out: TextIO) -> None:
        async with slots:
            progress.started()
            stream = client.astream(item.messages, system=system, options=options, **item.asked)
            line, error = await _answer(item, stream, progress, summary, usage)
            try:
                out.write(line)
                out.flush()  # one whole line per write: a kill never leaves half of one
            except OSError as exc:
                raise BatchOutputError(
                    f"cannot write {output}: {exc.strerror or exc}; the"
                    f" {summary.answered + summary.failed} lines before stay, and a rerun"
                    " answers only the rest"
                ) from None
            if error is None:
                summary.answered += 1
            else:
                summary.failed += 1
            progress.finished(error is None)

    output.parent.mkdir(parents=True, exist_ok=True)
    out = output.open("a", encoding="utf-8")
    tasks = [asyncio.ensure_future(answer(item, out)) for item in todo]
    try:
        await asyncio.gather(*tasks)
    except (asyncio.CancelledError, BatchOutputError) as stopped:
        summary.interrupted = isinstance(stopped, asyncio.CancelledError)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # each closes its stream
        raise
    finally:
        summary.seconds = time.monotonic() - started
        progress.close()
        try:
            out.close()
        except OSError as exc:  # what a full disk left in the buffer: the error is said already
            logger.debug("closing %s: %r", output, exc)
    return summary
