"""The two transports side by side, on the replica under gradio 4.44, 5 and 6.

``transport="direct"`` speaks the queue protocol itself; ``transport="gradio_client"`` submits
through ``gradio_client.Client.submit``. For every kind of reply both must give the same text, the
same typed errors with the same partial text, and cancel the Space's job when closed. Also here:
the template variant with a model-size radio (options), and the choice made by ``"auto"``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from qwen_gradio import (
    InvalidOptionError,
    InvalidSpaceError,
    QwenClient,
    QwenGradioError,
    SpaceError,
    SpaceUnavailableError,
    StreamTimeoutError,
    TextDelta,
    Timeouts,
)

from .conftest import Replica
from .helpers import FaultyFrontEnd, RecordingProxy, assert_stopped_early

TRANSPORTS = ["direct", "gradio_client"]
TRICKY = ["ha", " ha", " ", "  ", "你好", "，", "世界", " 👋🏽", "\u2028", "x\x85y", "\t", " end."]

# Each query: what the Space is asked, and whether it ends in an error.
QUERIES = {
    "plain": "What is the capital of France?",
    "tricky": "/tokens " + json.dumps(TRICKY),
    "long": "/long 400",
    "repeat": "/repeat one two three",
    "rewrite": "/rewrite",
    "history": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "answer"},
        {"role": "user", "content": "/history"},
    ],
    "error before text": "/error out of cheese",
    "error mid reply": "/fail 5 the GPU went away",
}


def outcome(replica: Replica, transport: str, prompt: Any) -> dict[str, Any]:
    """Everything a user can observe of one reply, streamed through ``transport``."""
    deltas: list[str] = []
    error: QwenGradioError | None = None
    with QwenClient(replica.url, transport=transport) as client:
        assert client.connect().transport == transport
        stream = client.stream(prompt)
        try:
            deltas.extend(stream)
        except QwenGradioError as exc:
            error = exc
        rewrites = stream.rewrites
    return {
        "text": stream.text,
        "joined": "".join(deltas),
        "rewrites": rewrites,
        "deltas": len(deltas),
        "error": None if error is None else (type(error), error.message, error.partial_text),
    }


@pytest.mark.parametrize("query", list(QUERIES))
def test_both_transports_give_the_same_reply(replica_any: Replica, query: str) -> None:
    direct = outcome(replica_any, "direct", QUERIES[query])
    via_gradio_client = outcome(replica_any, "gradio_client", QUERIES[query])
    for key in ("text", "joined", "rewrites", "error"):
        assert direct[key] == via_gradio_client[key], key
    if query.startswith("error"):
        assert direct["error"] is not None and direct["error"][0] is SpaceError
        assert direct["error"][1] in ("out of cheese", "the GPU went away")  # not quoted (gradio 4)
        assert direct["error"][2] == ("w1 w2 w3 w4 w5 " if query == "error mid reply" else "")
    else:
        assert direct["error"] is None and direct["text"]


def test_the_direct_transport_yields_one_delta_per_space_step(replica_any: Replica) -> None:
    result = outcome(replica_any, "direct", "/long 400")
    assert result["deltas"] == 400
    assert result["text"] == "".join(f"t{k} " for k in range(400))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_closing_a_stream_stops_the_job_on_the_space(replica_any: Replica, transport: str) -> None:
    run = replica_any.next_run()
    with QwenClient(replica_any.url, transport=transport) as client:
        stream = client.stream("/long 5000")
        for count, _ in enumerate(stream, 1):
            if count == 3:
                break
        stream.close()
        assert stream.text == "t0 t1 t2 "
        ended = replica_any.wait(run)
    assert_stopped_early(ended, 5000)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_cancelling_the_task_stops_the_job(replica: Replica, transport: str) -> None:
    run = replica.next_run()
    async with QwenClient(replica.url, transport=transport) as client:
        first = asyncio.Event()

        async def read() -> None:
            async for _ in client.astream("/long 5000"):
                first.set()

        task = asyncio.create_task(read())
        await first.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    ended = await asyncio.to_thread(replica.wait, run)
    assert ended["outcome"] == "stopped"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_same_timeouts(replica: Replica, transport: str) -> None:
    run = replica.next_run()
    limits = Timeouts(first_token=0.5)
    with (
        QwenClient(replica.url, transport=transport, timeout=limits) as client,
        pytest.raises(StreamTimeoutError) as caught,
    ):
        client.chat("/slow 30 never in time")
    assert caught.value.kind == "first_token" and caught.value.partial_text == ""
    assert replica.wait(run)["outcome"] == "stopped"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_request_goes_through_the_proxy(replica6: Replica, transport: str) -> None:
    before = len(replica6.requests())
    with RecordingProxy() as proxy:
        with QwenClient(replica6.url, proxy=proxy.url, transport=transport) as client:
            assert client.chat("/echo via the proxy") == "via the proxy"
            for _ in client.stream("/long 3000"):
                break  # a cancelled job: the cancel is proxied too
        reached = [f"{r['method']} {replica6.url}{r['path']}" for r in replica6.requests()]
    proxied = sorted(line.split("?")[0] for line in proxy.seen)
    assert proxied == sorted(reached[before:])
    assert any(line.endswith("/gradio_api/cancel") for line in proxied)


def test_gradio_client_keeps_only_the_latest_output(replica6: Replica) -> None:
    """A gradio_client Job keeps every intermediate output (the whole history each time); ours
    keeps the latest one, so a long reply's memory does not grow with each step."""
    with QwenClient(replica6.url, transport="gradio_client") as client:
        stream = client.stream("/long 1500")
        assert stream.until_done().endswith("t1499 ")
        assert stream._job.submitted is not None
        _, submission = stream._job.submitted
        job = submission.job.job  # what gradio_client's Job holds is the point
        assert len(job.outputs()) == 1


def test_a_killed_space_is_a_typed_error_and_prints_nothing(
    capfd: pytest.CaptureFixture[str], no_new_threads: None
) -> None:
    """gradio_client's event-stream reader prints a traceback when its connection breaks; ours
    reports the break as SpaceUnavailableError with the text so far."""
    import sys

    from .conftest import start_replica

    space = start_replica(sys.executable, "transports-kill", delay=0.01)
    assert space.process is not None
    try:
        with QwenClient(space.url, transport="gradio_client") as client:
            stream = client.stream("/long 3000")
            for count, _ in enumerate(stream, 1):
                if count == 5:
                    space.process.kill()
                    space.process.wait()
                    break
            with pytest.raises(SpaceUnavailableError) as caught:
                stream.until_done()
        assert caught.value.partial_text.startswith("t0 t1 t2 t3 t4 ")
    finally:
        space.process.kill()
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_no_thread_is_left_after_close(
    replica6: Replica, transport: str, no_new_threads: None
) -> None:
    with QwenClient(replica6.url, transport=transport) as client:
        assert client.chat("/echo done") == "done"
        for _ in client.stream("/long 3000"):
            break


# -- the template variant: a model-size radio, the chat event at fn_index 3 --------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_model_size_radio_is_an_option(sized_replica: Replica, transport: str) -> None:
    with QwenClient(sized_replica.url, transport=transport) as client:
        endpoint = client.connect().endpoint
        assert endpoint.fn_index == 3 and endpoint.input_count == 4
        (option,) = client.chat_options()
        assert (option.name, option.label, option.component) == (
            "model_size",
            "Model size",
            "radio",
        )
        assert [value for _, value in option.choices or ()] == ["72B", "32B", "14B", "7B"]
        assert option.default == "72B"
        run = sized_replica.next_run()
        assert json.loads(client.chat("/options")) == {"model_size": "72B"}
        assert json.loads(client.chat("/options", options={"Model size": "14B"})) == {
            "model_size": "14B"
        }
        assert sized_replica.wait(run + 1)["options"] == {"model_size": "14B"}


def test_options_set_per_client_and_overridden_per_call(sized_replica: Replica) -> None:
    with QwenClient(sized_replica.url, options={"model_size": "32B"}) as client:
        assert client.chat("hello").endswith("(32B). You said: hello")
        assert client.chat("hello", options={"model_size": "7B"}).endswith("(7B). You said: hello")
        assert client.chat("hello").endswith("(32B). You said: hello")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_wrong_option_is_refused_before_any_job(sized_replica: Replica, transport: str) -> None:
    runs = sized_replica.next_run()
    joins = sum(r["path"].endswith("queue/join") for r in sized_replica.requests())
    with QwenClient(sized_replica.url, transport=transport) as client:
        with pytest.raises(InvalidOptionError, match="allowed: 72B, 32B, 14B, 7B"):
            client.chat("hi", options={"model_size": "1B"})
        with pytest.raises(InvalidOptionError, match="no option 'temperature'"):
            client.chat("hi", options={"temperature": 0.3})
    with pytest.raises(InvalidOptionError, match="allowed: 72B"):
        QwenClient(sized_replica.url, options={"model_size": "1B"}).connect()
    with pytest.raises(InvalidOptionError, match="must map option names"):
        QwenClient(sized_replica.url, options=["72B"])  # type: ignore[arg-type]
    assert sized_replica.next_run() == runs
    assert sum(r["path"].endswith("queue/join") for r in sized_replica.requests()) == joins


def test_the_demo_itself_has_no_options(replica6: Replica) -> None:
    with QwenClient(replica6.url) as client:
        assert client.chat_options() == ()
        with pytest.raises(InvalidOptionError, match="its options: none"):
            client.chat("hi", options={"model_size": "72B"})


# -- "auto": direct where the Space speaks sse_v3, gradio_client for any other protocol ---------


@pytest.fixture
def older_protocol_space(replica6: Replica) -> Iterator[str]:
    """The replica behind a front end whose config names the protocol ``sse_v2.1`` (gradio 4.2x):
    everything else is forwarded as it is. (The replica behind it still speaks sse_v3, which
    gradio_client reads in the same way; what this checks is the choice of transport.)"""

    def rewrite(path: str, body: bytes) -> bytes:
        config = json.loads(body)
        config["protocol"] = "sse_v2.1"
        return json.dumps(config).encode()

    def rule(method: str, path: str) -> str:
        return "rewrite" if path.split("?")[0] == "/config" else "forward"

    with FaultyFrontEnd(replica6.url, rule, rewrite=rewrite) as front:
        yield front.url


def test_auto_uses_gradio_client_for_a_protocol_direct_does_not_speak(
    older_protocol_space: str,
) -> None:
    with QwenClient(older_protocol_space) as client:
        assert client.connect().transport == "gradio_client"
        events = list(client.stream("/echo still streamed").events())
    assert [e.delta for e in events if isinstance(e, TextDelta)] == ["still", " ", "streamed"]
    with pytest.raises(InvalidSpaceError, match=r"'sse_v2\.1'.*transport='gradio_client'"):
        QwenClient(older_protocol_space, transport="direct").connect()


def test_an_unknown_transport_is_refused() -> None:
    with pytest.raises(ValueError, match="transport must be one of auto, direct, gradio_client"):
        QwenClient("http://127.0.0.1:9/", transport="websocket")
