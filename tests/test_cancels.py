"""Abandoned jobs are stopped on the Space, on every gradio generation, also when they still
wait in its queue and also when the client closes right after dropping them.

gradio before 6.x's fix (#13333), the real Space's 5.x among them, leaves a job that waits in
its queue there when asked to cancel it; the job then runs to its end later, on the Space's
quota. These tests use replicas of their own: one whose single slot a job holds (so the next
job waits), and one that runs 64 jobs at once, 0.2 s between tokens (the storm).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterator
from typing import Any

import pytest

from qwen_gradio import QwenClient

from .conftest import Replica, generation_python, start_replica
from .helpers import FaultyFrontEnd

STORM_STREAMS = 50
STORM_WITHIN = 2.5  # seconds: each stream is dropped at a random moment within this
STORM_TOKENS = 30  # 6 s of reply at 0.2 s a token: none ends on its own during the storm


def dedicated_replica(generation: str, name: str, **kwargs: Any) -> Iterator[Replica]:
    python = generation_python(generation)
    if python is None:
        pytest.skip(f"no Python with {generation}")
    replica = start_replica(python, f"{generation}-{name}", **kwargs)
    yield replica
    assert replica.process is not None
    replica.process.kill()
    replica.process.wait(timeout=10)


@pytest.fixture(scope="module", params=["gradio5", "gradio4", "gradio6"])
def single_slot(request: pytest.FixtureRequest) -> Iterator[Replica]:
    """A replica that runs one job at a time: the next one waits in its queue."""
    yield from dedicated_replica(request.param, "single-slot", concurrency=1)


@pytest.fixture(scope="module", params=["gradio5", "gradio6"])
def roomy(request: pytest.FixtureRequest) -> Iterator[Replica]:
    """A replica that runs 64 jobs at once, 0.2 s between tokens."""
    yield from dedicated_replica(request.param, "roomy", delay=0.2, concurrency=64)


def hold_joins(method: str, path: str) -> str:
    return "hold" if path.endswith("queue/join") else "forward"


async def read_all(client: QwenClient, prompt: str) -> str:
    async with client.astream(prompt) as stream:
        return await stream.until_done()


def assert_only_the_sentinel_ran_after(replica: Replica, runs_before: list[dict[str, Any]]) -> None:
    """One more reply, through a new client, once the Space has a free slot: a job still
    waiting in the queue would have run before it (the queue is first come, first served).
    Every run seen before is as it was (nothing generated since), and the only new run is
    that reply."""
    with QwenClient(replica.url, cache=False) as client:
        assert client.chat("/echo sentinel") == "sentinel"
    runs = replica.runs()

    def without_end(run: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in run.items() if k not in ("outcome", "ended_at")}

    # Nothing generated since (the same tokens sent); a run that gradio 6 had left suspended
    # ("running") may have been closed since ("stopped", seen once in CI), nothing else moved.
    assert [without_end(r) for r in runs[: len(runs_before)]] == list(map(without_end, runs_before))
    for before, after in zip(runs_before, runs, strict=False):
        assert after["outcome"] in (
            before["outcome"],
            "stopped" if before["outcome"] == "running" else None,
        )
    assert [r["query"] for r in runs[len(runs_before) :]] == ["/echo sentinel"]


async def test_a_job_dropped_while_it_joins_a_busy_queue_never_runs(
    single_slot: Replica,
) -> None:
    """The Space's one slot is busy; a reply is dropped while its job joins the queue (before
    its event stream is open), and its client closed: the job is taken out of the queue, on
    every gradio (gradio 4 and 5 keep a waiting job when asked to cancel it, and ran it to its
    end once the slot was free)."""
    first = single_slot.next_run()
    with FaultyFrontEnd(single_slot.url, hold_joins) as front:
        async with QwenClient(single_slot.url, cache=False) as holder:
            holding = asyncio.create_task(read_all(holder, "/lockstep a b c"))
            await asyncio.to_thread(single_slot.started, first)  # the slot is taken
            async with QwenClient(front.url, cache=False) as client:
                waiting = asyncio.create_task(read_all(client, "/long 30"))
                await asyncio.to_thread(front.wait_for_request, "queue/join")
                waiting.cancel()  # dropped while its join is held: no event stream yet
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting
                front.gate.set()  # the join reaches the Space: the job waits in its queue
            # closed: the job has joined, and every cancellation has been answered
            holding.cancel()  # now the slot is freed
            with contextlib.suppress(asyncio.CancelledError):
                await holding
    assert single_slot.wait(first)["outcome"] == "stopped"
    runs = single_slot.runs()
    assert len(runs) == first + 1, runs[first:]  # the dropped job never started
    assert_only_the_sentinel_ran_after(single_slot, runs)


async def test_a_storm_of_dropped_streams_then_a_closed_client_leaves_nothing_running(
    roomy: Replica,
) -> None:
    """50 streams of a 30-token reply, each dropped at a random moment within 2.5 s, then the
    client closes at once: on the real Space's gradio every job that started was stopped by
    then; on any, none starts later and nothing generates after the client is gone."""
    first = roomy.next_run()
    rng = random.Random(25)

    async def drop_later(task: asyncio.Task[str], after: float) -> None:
        await asyncio.sleep(after)  # the storm's random moment, not a synchronisation
        task.cancel()

    async with QwenClient(roomy.url, cache=False) as client:
        tasks = [
            asyncio.create_task(read_all(client, f"/long {STORM_TOKENS}"))
            for _ in range(STORM_STREAMS)
        ]
        await asyncio.gather(*(drop_later(t, rng.uniform(0, STORM_WITHIN)) for t in tasks))
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results), results
    runs = roomy.runs()
    assert runs[first:], "no job started"
    outcomes = [(r["index"], r["outcome"], r["tokens_sent"]) for r in runs[first:]]
    if roomy.generation == "gradio5":  # the real Space's: every job stopped by now
        assert {r["outcome"] for r in runs[first:]} == {"stopped"}, outcomes
    else:
        # gradio 6 sometimes ends a run by closing its own wrapper of the app's generator,
        # which leaves the app's generator suspended, never resumed ("running", its tokens
        # frozen: the check below) rather than closed; no job goes on generating
        assert {r["outcome"] for r in runs[first:]} <= {"stopped", "running"}, outcomes
    assert all(r["tokens_sent"] < STORM_TOKENS for r in runs[first:])
    assert_only_the_sentinel_ran_after(roomy, runs)
