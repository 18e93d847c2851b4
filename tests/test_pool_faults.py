"""Three Spaces at once, failing the ways free Spaces fail: one killed mid-reply and started
again (refusing connections meanwhile), one whose queue is full, one rate-limited with a
stated wait. Real replicas (of each gradio generation, through each transport, read sync or
async) behind real front ends; the clock that cooldowns are measured on is the one thing
injected, so that "after the cooldown" needs no sleeping test."""

from __future__ import annotations

import asyncio
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import pytest

from qwen_gradio import (
    QueueFullError,
    QwenClient,
    QwenGradioError,
    RateLimitedError,
    Retrying,
    Settings,
    SpaceUnavailableError,
    StreamEvent,
    TextDelta,
)
from qwen_gradio.routing import cooldown

from .conftest import Replica, generation_python, shared_replica, start_replica
from .helpers import FaultyFrontEnd, free_port, replica_reply

# (gradio generation of the killed Space, transport, how the replies are read): each
# generation through each transport, sync and async both covered by each transport.
SCENARIOS = [
    ("gradio6", "direct", "sync"),
    ("gradio6", "gradio_client", "async"),
    ("gradio5", "direct", "async"),
    ("gradio5", "gradio_client", "sync"),
    ("gradio4", "direct", "sync"),
    ("gradio4", "gradio_client", "async"),
]


@dataclass
class Reply:
    """What one reply gave: its events, the error that ended it, where it went, its tries."""

    events: list[StreamEvent] = field(default_factory=list)
    error: QwenGradioError | None = None
    space: str | None = None
    attempts: int = 0

    @property
    def text(self) -> str:
        return "".join(e.delta for e in self.events if isinstance(e, TextDelta))

    @property
    def retries(self) -> list[tuple[str, type[QwenGradioError]]]:
        return [(e.space, type(e.error)) for e in self.events if isinstance(e, Retrying)]


def ask(
    client: QwenClient, prompt: str, mode: str, on_text: Callable[[], None] | None = None
) -> Reply:
    """Read the reply to ``prompt`` (sync, or async on an event loop of its own), calling
    ``on_text`` at its first text."""
    reply = Reply()

    def seen(event: StreamEvent) -> None:
        if on_text is not None and isinstance(event, TextDelta) and not reply.text:
            on_text()
        reply.events.append(event)

    if mode == "sync":
        with client.stream(prompt) as stream:
            try:
                for event in stream.events():
                    seen(event)
            except QwenGradioError as error:
                reply.error = error
            reply.space, reply.attempts = stream.space, stream.attempts
        return reply

    async def read() -> None:
        async with client.astream(prompt) as stream:
            try:
                async for event in stream.events():
                    seen(event)
            except QwenGradioError as error:
                reply.error = error
            reply.space, reply.attempts = stream.space, stream.attempts

    asyncio.run(read())
    return reply


class Clock:
    """The clocks of ``qwen_gradio._client.job`` (monotonic, and the wall clock a shared state's
    cooldowns are kept on), which a test can move forward together."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.ahead

    def time(self) -> float:
        return time.time() + self.ahead


@pytest.mark.parametrize(("generation", "transport", "mode"), SCENARIOS)
def test_three_spaces_through_a_kill_a_full_queue_a_rate_limit_and_a_restart(
    generation: str, transport: str, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = generation_python(generation)
    if python is None:
        pytest.skip(f"no Python with {generation} here")
    clock = Clock()
    monkeypatch.setattr(
        "qwen_gradio._client.job.time",
        types.SimpleNamespace(monotonic=clock.monotonic, time=clock.time),
    )
    # The backoff's jitter pinned: 0.5 x 600 s. (Patching ``random.random`` did nothing: the
    # default argument had bound the function already; 1 run in ~600 cooled a member < 1 s.)
    monkeypatch.setattr("qwen_gradio._client.job.cooldown", partial(cooldown, rand=lambda: 0.5))
    port = free_port()
    killed: Replica | None = start_replica(python, f"{generation}-killed", port=port)
    upstream = shared_replica(generation)
    full, limit = [True], [1]  # a full queue; how many jobs get a 429 from now on
    limited: list[float] = []  # when each job reached the rate-limited Space

    def queue_full(method: str, path: str) -> str:
        return "queue_full" if path.endswith("queue/join") and full[0] else "forward"

    def rate_limited(method: str, path: str) -> str:
        if not path.endswith("queue/join"):
            return "forward"
        limited.append(time.monotonic())
        if limit[0] > 0:
            limit[0] -= 1
            return "429"  # "retry in 1 seconds"
        return "forward"

    try:
        with (
            FaultyFrontEnd(upstream.url, queue_full) as q,
            FaultyFrontEnd(upstream.url, rate_limited) as r,
        ):
            k = killed.url
            settings = Settings.build([k, q.url, r.url], transport=transport).replace(
                backoff=600.0, backoff_cap=600.0
            )
            with QwenClient(settings=settings) as client:
                # 1. All well: the first Space of the pool answers.
                one = ask(client, "one", mode)
                assert (one.text, one.space, one.attempts, one.error) == (
                    replica_reply("one"),
                    k,
                    1,
                    None,
                )

                # 2. Killed mid-reply: the text so far is kept, never asked again elsewhere.
                def kill() -> None:
                    assert killed is not None and killed.process is not None
                    killed.process.kill()
                    killed.process.wait(timeout=10)

                cut = ask(client, "/long 5000", mode, on_text=kill)
                assert isinstance(cut.error, SpaceUnavailableError), cut.error
                assert cut.text.startswith("t0 ") and cut.error.partial_text == cut.text
                assert (cut.space, cut.attempts, cut.retries) == (k, 1, [])

                # 3. Gone, full, rate-limited: three tries (in the order of the queue waits
                # each reported), then the last one's error.
                bounded = ask(client, "two", mode)
                assert bounded.error is not None and (bounded.text, bounded.attempts) == ("", 3)
                assert {*bounded.retries, (bounded.space, type(bounded.error))} == {
                    (k, SpaceUnavailableError),
                    (q.url, QueueFullError),
                    (r.url, RateLimitedError),
                }
                # Pinned backoff: the two cool for 300 s (the test is far shorter), r for 1 s.
                cooling = {m.name: m.health.cooling_until for m in client.members}
                assert min(cooling[k], cooling[q.url]) - clock.monotonic() > 290

                # 4. Every Space cools down; the rate-limited one for the 1 s it stated, the
                # others for their backoff (300 s): the reply waits for that one, no sooner.
                waited = ask(client, "three", mode)
                assert (waited.text, waited.space, waited.retries) == (
                    replica_reply("three"),
                    r.url,
                    [],
                )
                assert limited[1] - limited[0] >= 1.0

                # 5. Past every cooldown, the killed Space still refuses (not started yet);
                # the others answer.
                clock.ahead += 1000.0
                full[0] = False
                back = ask(client, "four", mode)
                assert (back.text, back.error) == (replica_reply("four"), None)
                assert back.space in (q.url, r.url)
                assert back.retries in ([], [(k, SpaceUnavailableError)])

                # 6. Started again on its port, while the others fail again: once its
                # cooldown is over, it answers.
                killed = start_replica(python, f"{generation}-restarted", port=port)
                clock.ahead += 1000.0
                full[0], limit[0] = True, 1
                again = ask(client, "five", mode)
                assert (again.text, again.space, again.error) == (replica_reply("five"), k, None)
                assert {space for space, _ in again.retries} <= {q.url, r.url}
                assert [run["query"] for run in killed.runs()] == ["five"]
    finally:
        if killed is not None and killed.process is not None:
            killed.process.kill()
            killed.process.wait(timeout=10)
