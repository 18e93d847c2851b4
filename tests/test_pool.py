"""A pool of Spaces: routing, retries and failover before the first token, against real
replicas on loopback and real front ends that fail as Spaces do (gone, queue full, rate limited,
a dropped event stream)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from click.testing import CliRunner

from qwen_gradio import (
    QueueFullError,
    QwenClient,
    RateLimitedError,
    ReplyCompleted,
    Retrying,
    Settings,
    Space,
    SpaceError,
    SpaceUnavailableError,
    TextDelta,
)
from qwen_gradio.cli import main
from qwen_gradio.routing import Health, choose, cooldown

from .conftest import Replica, shared_replica
from .helpers import FaultyFrontEnd, FrontEnd, assert_stopped_early, free_port, replica_reply

# -- the rule, as a pure function --------------------------------------------------------------


def test_choose_skips_cooling_members_then_prefers_idle_then_short_queues() -> None:
    members = [Health(), Health(), Health()]
    assert choose(members, now=0.0) == 0  # all alike: the pool's order
    members[0].in_flight = 1
    assert choose(members, now=0.0) == 1  # fewest in flight
    members[1].queue_wait, members[2].queue_wait = 12.0, 3.0
    assert choose(members, now=0.0) == 2  # then the shortest reported queue
    members[2].cooling_until = 10.0
    assert choose(members, now=5.0) == 1  # never one that cools down
    assert choose(members, now=10.0) == 2  # until its cooldown ends
    for member in members:
        member.cooling_until = 10.0
    assert choose(members, now=5.0) is None


def test_cooldown_honours_a_stated_wait_else_backs_off_with_full_jitter() -> None:
    assert cooldown(RateLimitedError("x", retry_after=7.0), failures=1) == 7.0
    assert cooldown(RateLimitedError("retry in 0:00:03"), failures=5) == 3.0
    assert cooldown(RateLimitedError("x", retry_after=10_000.0), failures=1) == 600.0  # capped
    error = SpaceUnavailableError("gone")
    assert cooldown(error, failures=1, base=1.0, cap=30.0, rand=lambda: 1.0) == 1.0
    assert cooldown(error, failures=4, base=1.0, cap=30.0, rand=lambda: 1.0) == 8.0
    assert cooldown(error, failures=9, base=1.0, cap=30.0, rand=lambda: 1.0) == 30.0
    assert cooldown(error, failures=3, base=1.0, cap=30.0, rand=lambda: 0.25) == 1.0


def test_a_pool_is_named_by_a_list_commas_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert [s.name for s in Settings.build(["a/b", "http://x:1"]).spaces] == ["a/b", "http://x:1"]
    assert [s.name for s in Settings.build("a/b, c/d").spaces] == ["a/b", "c/d"]
    monkeypatch.setenv("QWEN_GRADIO_SPACE", "a/b,c/d")
    assert [s.url for s in Settings.build().spaces] == [
        "https://a-b.hf.space/",
        "https://c-d.hf.space/",
    ]
    with pytest.raises(ValueError, match="named twice"):
        Settings.build(["a/b", "https://a-b.hf.space"])


# -- failover and retries, for real -------------------------------------------------------------


def dead_space() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


def events_of(client: QwenClient, prompt: Any) -> list[Any]:
    with client.stream(prompt) as stream:
        return list(stream.events())


async def async_events_of(client: QwenClient, prompt: Any) -> list[Any]:
    async with client.astream(prompt) as stream:
        return [event async for event in stream.events()]


@pytest.mark.parametrize("transport", ["direct", "gradio_client"])
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_dead_space_fails_over_to_the_next(
    replica6: Replica, kind: str, transport: str
) -> None:
    dead = dead_space()
    with QwenClient([dead, replica6.url], transport=transport) as client:
        if kind == "sync":
            events = events_of(client, "hello")
        else:
            events = await async_events_of(client, "hello")
    retries = [e for e in events if isinstance(e, Retrying)]
    assert len(retries) == 1
    (retry,) = retries
    assert (retry.space, retry.next_space, retry.attempt) == (dead, replica6.url, 1)
    assert isinstance(retry.error, SpaceUnavailableError) and retry.wait == 0.0
    text = "".join(e.delta for e in events if isinstance(e, TextDelta))
    assert text == replica_reply("hello")  # whole, and never sent twice
    assert events[-1] == ReplyCompleted(text) and events[-1].space == replica6.url


def test_a_full_queue_fails_over_and_the_full_member_cools_down(
    replica6: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The backoff's jitter is random; pinned so that the cooldown is 0.5 x 600 s, surely longer
    # than this test (the rule itself is tested above).
    monkeypatch.setattr("qwen_gradio._client.job.cooldown", partial(cooldown, rand=lambda: 0.5))

    def rule(method: str, path: str) -> str:
        return "queue_full" if path.endswith("queue/join") else "forward"

    with FaultyFrontEnd(replica6.url, rule) as full:
        settings = Settings.build([full.url, replica6.url]).replace(
            backoff=600.0, backoff_cap=600.0
        )
        c = QwenClient(settings=settings)
        first = events_of(c, "one")
        assert [type(e.error) for e in first if isinstance(e, Retrying)] == [QueueFullError]
        # The full Space is left alone for the pinned backoff (300 s), the test far shorter.
        assert c.members[0].health.cooling_until - time.monotonic() > 290
        second = events_of(c, "two")  # goes straight to the member that answered
        c.close()
        assert not [e for e in second if isinstance(e, Retrying)]
        assert second[-1].space == replica6.url
    joins = [p for _, p, action in full.seen if p.endswith("queue/join")]
    assert len(joins) == 1


def test_one_space_is_retried_after_the_wait_it_states(replica6: Replica) -> None:
    """A 429 that says "retry in 1 seconds": the same Space, after that wait."""
    refused: list[str] = []

    def rule(method: str, path: str) -> str:
        if path.endswith("queue/join") and not refused:
            refused.append(path)
            return "429"
        return "forward"

    with (
        FaultyFrontEnd(replica6.url, rule) as front,
        QwenClient(front.url) as client,
        client.stream("hello") as stream,
    ):
        events = list(stream.events())
        assert (stream.attempts, stream.space) == (2, front.url)
    (retry,) = [e for e in events if isinstance(e, Retrying)]
    assert isinstance(retry.error, RateLimitedError)
    assert (retry.wait, retry.next_space) == (1.0, front.url)
    assert retry.describe() == f"rate limited on {front.url}; trying again in 1.0 s"
    assert "".join(e.delta for e in events if isinstance(e, TextDelta)) == replica_reply("hello")


def cut_the_event_stream(method: str, path: str) -> str:
    """A front end that drops the event stream (after ``cut_after`` bytes), passing the rest."""
    return "cut" if "queue/data" in path else "forward"


@pytest.mark.parametrize(
    ("generation", "transport"),
    [
        ("gradio6", "direct"),
        ("gradio6", "gradio_client"),
        ("gradio5", "direct"),
        ("gradio4", "gradio_client"),
    ],
)
def test_a_job_dropped_before_its_first_token_is_cancelled_there(
    generation: str, transport: str, replica6: Replica
) -> None:
    """The Space took the job, then its event stream broke before any text: the job is
    cancelled on that Space (asked to stop: it never runs to its end there), and the reply
    comes from the next one."""
    dropping = shared_replica(generation)
    run = dropping.next_run()
    with (
        FaultyFrontEnd(dropping.url, cut_the_event_stream, cut_after=0) as cutting,
        QwenClient([cutting.url, replica6.url], transport=transport) as client,
    ):
        events = events_of(client, "/slow 3 late")
        client.close()  # waits until every cancellation has been sent
        assert len([p for _, p, _ in cutting.seen if p.endswith("/cancel")]) == 1
    assert [e.space for e in events if isinstance(e, Retrying)] == [cutting.url]
    assert events[-1] == ReplyCompleted("late") and events[-1].space == replica6.url
    # Stopped while it ran, or taken out of the queue before it started (gradio 5 drops the
    # job of a session whose event stream is gone): either way it never ran to its end.
    started = len(dropping.runs()) > run
    assert not started or dropping.wait(run)["outcome"] == "stopped"


def test_attempts_bound_the_tries() -> None:
    pool = [dead_space(), dead_space(), dead_space()]
    with QwenClient(pool, attempts=2) as client, client.stream("hello") as stream:
        with pytest.raises(SpaceUnavailableError):
            list(stream.events())
        assert stream.attempts == 2
    with QwenClient(dead_space(), attempts=1) as client, client.stream("hi") as stream:
        with pytest.raises(SpaceUnavailableError):
            list(stream)
        assert stream.attempts == 1  # 1: no retry


def test_never_after_the_first_token(replica6: Replica) -> None:
    """A reply cut off mid-way raises with its partial text: the text is never sent twice."""
    other = shared_replica("gradio6")
    run = replica6.next_run()
    with (
        FaultyFrontEnd(replica6.url, cut_the_event_stream, cut_after=3000) as cutting,
        QwenClient([cutting.url, other.url]) as client,
        client.stream("/long 5000") as stream,
    ):
        with pytest.raises(SpaceUnavailableError) as info:
            list(stream.events())
        assert stream.attempts == 1
    assert info.value.partial_text.startswith("t0 t1 ")
    assert_stopped_early(replica6.wait(run), 5000)


def test_app_errors_are_not_retried(replica6: Replica) -> None:
    other = shared_replica("gradio6")
    with (
        QwenClient([replica6.url, other.url]) as client,
        client.stream("/error the model broke") as stream,
    ):
        with pytest.raises(SpaceError, match="the model broke"):
            list(stream.events())
        assert stream.attempts == 1


def test_each_member_may_carry_its_own_options(replica6: Replica) -> None:
    sized = shared_replica("gradio6", "qwen2.5")
    pool = [Space(sized.url, options={"model_size": "7B"}), replica6.url]
    with QwenClient(pool) as client:
        assert client.chat("/options") == '{"model_size": "7B"}'
    with QwenClient([dead_space(), sized.url], options={"model_size": "14B"}) as client:
        assert client.chat("/options") == '{"model_size": "14B"}'  # only where it applies


# -- the front ends -------------------------------------------------------------------------


def test_the_cli_prints_one_line_per_retry(replica6: Replica) -> None:
    dead = dead_space()
    result = CliRunner().invoke(main, ["chat", "--space", dead, "--space", replica6.url, "hi"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == replica_reply("hi") + "\n"
    assert result.stderr == f"qwen-gradio: unavailable on {dead}; trying {replica6.url} in 0.0 s\n"


def test_info_shows_every_member(replica6: Replica) -> None:
    dead = dead_space()
    result = CliRunner().invoke(main, ["info", "--json", "--space", replica6.url, "--space", dead])
    assert result.exit_code == 0, result.stderr
    pool = json.loads(result.stdout)["pool"]
    assert pool[0]["space"] == replica6.url + "/" and pool[0]["gradio"]
    assert pool[1]["space"] == dead and pool[1]["error"]["type"] == "SpaceUnavailableError"


@pytest.fixture
def prompts(tmp_path: Any) -> Iterator[Any]:
    path = tmp_path / "in.jsonl"
    path.write_text('"first"\n"second"\n')
    yield path


def test_batch_records_the_space_and_attempts(replica6: Replica, prompts: Any) -> None:
    dead = dead_space()
    out = prompts.parent / "out.jsonl"
    args = ["batch", str(prompts), "-o", str(out), "--space", dead, "--space", replica6.url]
    result = CliRunner().invoke(main, [*args, "--concurrency", "1"])
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["text"] for line in lines] == [replica_reply("first"), replica_reply("second")]
    assert [line["space"] for line in lines] == [replica6.url, replica6.url]
    assert lines[0]["attempts"] == 2  # the dead Space, then the replica
    retries = sum(line["attempts"] - 1 for line in lines)  # the second: if it still cooled down
    assert f"{retries} retries" in result.stderr


def test_a_wait_longer_than_max_wait_fails_at_once_with_the_wait_stated() -> None:
    """A GPU quota that says "retry in 0:01:23": no reply holds its caller that long (30 s by
    default); the error says the wait instead, for the caller's own retry."""
    quota = json.dumps({"error": "You have exceeded your GPU quota. Retry in 0:01:23."})
    with (
        FrontEnd(lambda method, path: (429, "application/json", quota)) as front,
        QwenClient(front.url) as client,
        client.stream("hi") as stream,
    ):
        with pytest.raises(RateLimitedError) as info:
            list(stream.events())
        assert (info.value.retry_after, stream.attempts) == (83.0, 1)
