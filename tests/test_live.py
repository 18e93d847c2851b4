"""QwenClient against the replica Space (a real Gradio server), under both gradio generations."""

from __future__ import annotations

import asyncio
import gc
import json
import re
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from qwen_gradio import (
    QueueStatus,
    QwenClient,
    ReplyCompleted,
    SpaceError,
    SpaceUnavailableError,
    StreamClosedError,
    StreamTimeoutError,
    TextDelta,
    Timeouts,
)

from .conftest import Replica
from .helpers import assert_stopped_early

TOKENS = ["ha", " ha", " ha", " ", "  ", "你好", "，", "世界", " 👋🏽", " end."]


@pytest.fixture
def client(replica: Replica) -> Iterator[QwenClient]:
    with QwenClient(replica.url) as client:
        yield client


def sync_deltas(client: QwenClient, prompt: Any, **kwargs: Any) -> list[str]:
    return list(client.stream(prompt, **kwargs))


async def async_deltas(replica: Replica, prompt: Any, **kwargs: Any) -> list[str]:
    async with QwenClient(replica.url) as client:
        return [delta async for delta in client.astream(prompt, **kwargs)]


def both(replica: Replica, client: QwenClient, prompt: Any, **kwargs: Any) -> list[str]:
    """The deltas of the sync and of the async stream, which must be equal."""
    sync = sync_deltas(client, prompt, **kwargs)
    asynchronous = asyncio.run(async_deltas(replica, prompt, **kwargs))
    assert sync == asynchronous, "the sync and async streams differ"
    return sync


def test_connects_to_the_replica_in_its_generation(replica: Replica, client: QwenClient) -> None:
    endpoint = client.connect().endpoint
    assert endpoint.gradio_version == replica.gradio_version
    assert (endpoint.fn_index, endpoint.trigger_id) == (0, 11)
    expected = "tuples" if replica.generation == "gradio5" else "message_parts"
    assert endpoint.chat_format.value == expected


def test_one_delta_per_step_and_exact_text(replica: Replica, client: QwenClient) -> None:
    deltas = both(replica, client, "/tokens " + json.dumps(TOKENS))
    assert deltas == TOKENS
    assert client.chat("/tokens " + json.dumps(TOKENS)) == "".join(TOKENS)


def test_unicode_line_breaks_inside_a_reply(replica: Replica, client: QwenClient) -> None:
    # Not line breaks of the event stream: a reader splitting at them would cut events in two.
    tokens = ["a\u2028b", "\x85", "c\u2029", "\x0cd", "\x1ce"]
    assert both(replica, client, "/tokens " + json.dumps(tokens)) == tokens


def test_newline_only_steps(replica: Replica, client: QwenClient) -> None:
    deltas = both(replica, client, "/tokens " + json.dumps(["a", "\n", "\n\n", "b"]))
    assert "".join(deltas) == "a\n\n\nb"
    if replica.generation == "gradio5":
        assert deltas == ["a", "\n", "\n\n", "b"]
    else:  # gradio 6's Chatbot strips a message's trailing newlines: the Space sends no diff
        assert deltas == ["a", "\n\n\nb"]


def test_repeated_snapshot_yields_nothing(replica: Replica, client: QwenClient) -> None:
    assert both(replica, client, "/repeat x y") == ["x", " ", "y"]


def test_rewrite_is_counted_and_text_is_the_spaces(client: QwenClient) -> None:
    with client.stream("/rewrite") as stream:
        deltas = list(stream)
    assert deltas == ["Hello", " wor▌", "ld"]
    assert (stream.text, stream.rewrites, stream.completed) == ("Hello world", 1, True)


def test_system_prompt_reaches_the_space(replica: Replica, client: QwenClient) -> None:
    assert client.chat("/system") == "You are a helpful assistant."
    assert client.chat("/system", system="Be brief.") == "Be brief."
    messages = [
        {"role": "system", "content": "A"},
        {"role": "system", "content": "B"},
        {"role": "user", "content": "/system"},
    ]
    assert "".join(both(replica, client, messages)) == "A\nB"


def test_history_is_sent_as_real_turns(replica: Replica, client: QwenClient) -> None:
    messages = [
        {"role": "user", "content": "Hi 你好"},
        {"role": "assistant", "content": "Hello!\nHow can I help?"},
        {"role": "user", "content": "second"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "/history"},
    ]
    run = replica.next_run()
    reply = "".join(both(replica, client, messages))
    expected = [["Hi 你好", "Hello!\nHow can I help?"], ["second", "ok"]]
    assert json.loads(reply) == expected
    assert replica.wait(run)["history"] == expected
    assert replica.wait(run)["query"] == "/history"


def test_app_error_before_any_text(replica: Replica, client: QwenClient) -> None:
    with pytest.raises(SpaceError, match="quota of wisdom") as info:
        client.chat("/error quota of wisdom")
    assert info.value.partial_text == ""


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_app_error_mid_stream_keeps_the_partial_text(
    replica: Replica, client: QwenClient, mode: str
) -> None:
    received: list[str] = []

    async def consume() -> None:
        async with QwenClient(replica.url) as aclient:
            async for delta in aclient.astream("/fail 3 the model broke"):
                received.append(delta)

    with pytest.raises(SpaceError) as info:
        if mode == "sync":
            for delta in client.stream("/fail 3 the model broke"):
                received.append(delta)
        else:
            asyncio.run(consume())
    assert info.value.message == "the model broke"
    assert info.value.partial_text == "w1 w2 w3 " == "".join(received)


def test_streaming_granularity_in_lockstep(replica: Replica, client: QwenClient) -> None:
    """The Space sends token k+1 only after the test has received token k: batching deadlocks."""
    words = "one two three four five"
    client.settings = client.settings.replace(timeouts=Timeouts(idle=20))
    received = []
    with client.stream(f"/lockstep {words}") as stream:
        for delta in stream:
            received.append(delta)
            replica.release()
    assert received == ["one", " ", "two", " ", "three", " ", "four", " ", "five"]


async def test_async_streaming_granularity_in_lockstep(replica: Replica) -> None:
    received = []
    async with QwenClient(replica.url, timeout=Timeouts(idle=20)) as client:
        async for delta in client.astream("/lockstep a b c d"):
            received.append(delta)
            await asyncio.to_thread(replica.release)
    assert received == ["a", " ", "b", " ", "c", " ", "d"]


def test_queue_status_is_reported(client: QwenClient) -> None:
    with client.stream("/echo hi") as stream:
        events = list(stream.events())
    statuses = [e for e in events if isinstance(e, QueueStatus)]
    assert statuses and statuses[-1].started and stream.status == statuses[-1]
    assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta("hi", "hi")]
    assert events[-1] == ReplyCompleted("hi") and stream.completed


async def test_async_events_are_typed(client: QwenClient) -> None:
    async with client.astream("/echo a b") as stream:
        events = [event async for event in stream.events()]
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert [(d.delta, d.text) for d in deltas] == [("a", "a"), (" ", "a "), ("b", "a b")]
    assert events[-1] == ReplyCompleted("a b")
    assert all(isinstance(e, QueueStatus) for e in events[: events.index(deltas[0])])


# -- cancellation --------------------------------------------------------------------------


def test_break_cancels_the_job(replica: Replica, client: QwenClient) -> None:
    run = replica.next_run()
    stream = client.stream("/long 5000")
    for _ in stream:
        break
    stream.close()
    assert_stopped_early(replica.wait(run), 5000)
    with pytest.raises(StreamClosedError):
        next(stream)


def test_abandoned_stream_is_cancelled_when_collected(replica: Replica, client: QwenClient) -> None:
    run = replica.next_run()
    for _ in client.stream("/long 5000"):
        break  # the stream object is dropped here, unfinished
    gc.collect()
    assert_stopped_early(replica.wait(run), 5000)


def test_timeout_cancels_the_job_and_keeps_the_text(replica: Replica, client: QwenClient) -> None:
    run = replica.next_run()
    client.settings = client.settings.replace(timeouts=Timeouts(idle=0.5))
    with pytest.raises(StreamTimeoutError) as info:
        client.chat("/lockstep first second")  # nobody releases the second token
    assert info.value.kind == "idle"
    assert info.value.partial_text == "first"
    assert replica.wait(run)["outcome"] in ("stopped", "error")
    assert replica.wait(run)["tokens_sent"] == 1


def test_first_token_timeout(replica: Replica, client: QwenClient) -> None:
    run = replica.next_run()
    client.settings = client.settings.replace(timeouts=Timeouts(first_token=0.5))
    with pytest.raises(StreamTimeoutError) as info:
        client.chat("/slow 3 late")
    assert (info.value.kind, info.value.partial_text) == ("first_token", "")
    assert replica.wait(run)["tokens_sent"] == 0


def test_total_timeout(replica: Replica, client: QwenClient) -> None:
    client.settings = client.settings.replace(timeouts=Timeouts(total=1.0))
    with pytest.raises(StreamTimeoutError) as info:
        client.chat("/long 100000")
    assert info.value.kind == "total"
    assert info.value.partial_text.startswith("t0 t1 ")


async def test_cancelling_the_task_cancels_the_job(replica: Replica) -> None:
    run = replica.next_run()
    started = asyncio.Event()

    async def consume(client: QwenClient) -> None:
        async for _ in client.astream("/long 5000"):
            started.set()

    async with QwenClient(replica.url) as client:
        task = asyncio.create_task(consume(client))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert_stopped_early(await asyncio.to_thread(replica.wait, run), 5000)


async def test_async_break_and_aclose_cancel_the_job(replica: Replica) -> None:
    run = replica.next_run()
    async with QwenClient(replica.url) as client:
        async with client.astream("/long 5000") as stream:
            async for _ in stream:
                break
        assert stream.text and not stream.completed
    assert_stopped_early(await asyncio.to_thread(replica.wait, run), 5000)


# -- resources -----------------------------------------------------------------------------


def test_no_thread_left_after_close(replica: Replica, no_new_threads: None) -> None:
    client = QwenClient(replica.url)
    assert client.chat("/echo a b") == "a b"
    for _ in client.stream("/long 500"):
        break
    asyncio.run(client.achat("/echo c"))
    client.close()


def test_the_sync_api_works_inside_a_running_event_loop(client: QwenClient) -> None:
    async def cell() -> str:  # like a Jupyter cell: a loop is already running
        return client.chat("/echo from a notebook")

    assert asyncio.run(cell()) == "from a notebook"


async def test_many_concurrent_streams_on_one_client(replica: Replica) -> None:
    async with QwenClient(replica.url) as client:
        replies = await asyncio.gather(
            *(client.achat(f"/echo reply {i} " + "x " * (i % 5)) for i in range(24))
        )
    assert replies == [f"reply {i} " + "x " * (i % 5) for i in range(24)]


def test_concurrent_streams_use_their_own_sessions(client: QwenClient) -> None:
    streams = [client.stream(f"/echo {i}") for i in range(3)]
    assert len({s.session_hash for s in streams}) == 3
    assert all(re.fullmatch(r"[0-9a-f]{12}", s.session_hash) for s in streams)
    assert [s.until_done() for s in streams] == ["0", "1", "2"]


@pytest.mark.parametrize("transport", ["direct", "gradio_client"])
def test_nothing_but_the_space_is_contacted(
    replica: Replica, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    """Every socket the client opens goes to the Space: no telemetry, no hub look-up."""
    # huggingface_hub caches, per process, the registry it fetches from huggingface.co while
    # building request headers: forget it, so that a fetch would show here whatever ran before.
    from huggingface_hub.utils import _detect_agent

    monkeypatch.setattr(_detect_agent, "_registry", None, raising=False)
    targets: list[Any] = []
    recording = threading.Event()

    def audit(event: str, args: tuple[Any, ...]) -> None:
        if recording.is_set() and event in ("socket.connect", "socket.getaddrinfo"):
            targets.append(args[1] if event == "socket.connect" else args[:2])

    sys.addaudithook(audit)
    recording.set()
    try:
        with QwenClient(replica.url, transport=transport) as client:
            before = set(threading.enumerate())
            client.connect()
            started = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
            assert started == ["qwen_gradio-loop"]  # the sync API's; no telemetry or heartbeat
            assert client.chat("/echo hi") == "hi"
            for _ in client.stream("/long 3000"):
                break  # and the cancellation
    finally:
        recording.clear()
    port = int(replica.url.rsplit(":", 1)[1])
    hosts = {t[0] for t in targets}
    assert hosts <= {"127.0.0.1"}, targets
    assert {t[1] for t in targets} == {port}, targets


def test_unreachable_space() -> None:
    with QwenClient("http://127.0.0.1:9") as client, pytest.raises(SpaceUnavailableError):
        client.chat("hi")
