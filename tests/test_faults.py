"""Faults users meet, against real servers on loopback, each bounded (pytest-timeout).

A front end that takes a request and never answers, a connection cut mid-reply, a server that
is not a Gradio app, a Space that sends what its protocol does not allow, a Space killed and
restarted mid-reply, proxies set in the environment, and processes that never close their
client: every failure is a typed QwenGradioError with the text received so far, nothing hangs
past its limit, nothing but the Space (through the proxy) is contacted, and nothing is printed.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from qwen_gradio import (
    InvalidMessagesError,
    InvalidSpaceError,
    QwenClient,
    SpaceProtocolError,
    SpaceUnavailableError,
    StreamTimeoutError,
    Timeouts,
)
from qwen_gradio.client import _shared as shared_clients
from qwen_gradio.provider import Qwen_Qwen_2_5_Max

from .conftest import ROOT, Replica, start_replica
from .docs import example
from .helpers import FaultyFrontEnd, FrontEnd, RecordingProxy, assert_stopped_early

pytestmark = pytest.mark.timeout(60)

LONG = "".join(f"t{k} " for k in range(300))


def stall_when(fragment: str) -> Any:
    return lambda method, path: "stall" if fragment in path else "forward"


# -- nothing hangs past its limit ------------------------------------------------------------


@pytest.mark.parametrize(
    ("fragment", "timeouts", "kind"),
    [
        ("queue/data", Timeouts(first_token=1, total=30), "first_token"),  # no headers, ever
        ("queue/data", Timeouts(first_token=None, idle=None, total=1.5), "total"),
        ("queue/join", Timeouts(connect=1), "connect"),  # the job is never accepted
        ("/config", Timeouts(connect=1), "connect"),
        ("/config", Timeouts(connect=5, total=1), "total"),  # total bounds connecting too
    ],
)
def test_a_front_end_that_never_answers_ends_in_a_timeout(
    replica: Replica, fragment: str, timeouts: Timeouts, kind: str
) -> None:
    with (
        FaultyFrontEnd(replica.url, stall_when(fragment)) as front,
        QwenClient(front.url, timeout=timeouts) as client,
        pytest.raises(StreamTimeoutError) as info,
    ):
        client.chat("/echo hi")
    assert info.value.kind == kind and info.value.partial_text == ""
    assert any(action == "stall" for _, _, action in front.seen)


async def test_async_streams_are_bounded_too(replica: Replica) -> None:
    with FaultyFrontEnd(replica.url, stall_when("queue/data")) as front:
        async with QwenClient(front.url, timeout=Timeouts(first_token=1)) as client:
            with pytest.raises(StreamTimeoutError) as info:
                await client.achat("/echo hi")
    assert info.value.kind == "first_token"


def test_a_connection_cut_mid_reply_keeps_the_text_and_stops_the_job(replica: Replica) -> None:
    cut = lambda method, path: "cut" if "queue/data" in path else "forward"  # noqa: E731
    run = replica.next_run()
    with (
        FaultyFrontEnd(replica.url, cut, cut_after=6000) as front,
        QwenClient(front.url) as client,
    ):
        stream = client.stream("/long 300")
        received = []
        with pytest.raises(SpaceUnavailableError) as info:
            for delta in stream:
                received.append(delta)
        partial = info.value.partial_text
        assert partial and partial == "".join(received) and LONG.startswith(partial)
        assert len(partial) < len(LONG)
    outcome = replica.wait(run)
    assert_stopped_early(outcome, 300)


def test_a_space_killed_and_restarted_mid_reply(tmp_path: Path) -> None:
    space = start_replica(sys.executable, "faults-restart", delay=0.01)
    port = int(space.url.rsplit(":", 1)[1])
    try:
        with QwenClient(space.url) as client:
            stream = client.stream("/long 3000")
            received = [next(stream), next(stream)]
            assert space.process is not None
            space.process.kill()
            space.process.wait(timeout=10)
            with pytest.raises(SpaceUnavailableError) as info:
                for delta in stream:
                    received.append(delta)
            assert info.value.partial_text == "".join(received) and received[:2] == ["t0 ", "t1 "]
            space = start_replica(sys.executable, "faults-restart", delay=0.01, port=port)
            assert client.chat("/echo back again") == "back again"  # the same client goes on
    finally:
        if space.process is not None:
            space.process.kill()
            space.process.wait(timeout=10)


# -- what is not a Space, and a Space that breaks its protocol -------------------------------


def audit_hosts() -> tuple[list[Any], Any]:
    """Record every host and port this process opens a socket to (audit hooks stay installed,
    so the recorder is switched off by the caller)."""
    seen: list[Any] = []
    state = {"on": True}

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if state["on"] and event == "socket.connect":
            seen.append(args[1])

    sys.addaudithook(hook)
    return seen, state


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"hello": "world"}, "names no gradio version"),
        ([1, 2, 3], "not a JSON object"),
        ({"version": "5.13.1"}, "no components list"),
        ({"version": "3.30.0", "components": [], "dependencies": []}, "runs gradio 3.30.0"),
    ],
)
def test_a_server_that_is_not_a_gradio_app_is_refused_contacting_nobody_else(
    config: Any, fragment: str
) -> None:
    body = json.dumps(config)
    seen, recorder = audit_hosts()
    try:
        with (
            FrontEnd(lambda method, path: (200, "application/json", body)) as front,
            QwenClient(front.url) as client,
            pytest.raises(InvalidSpaceError, match=fragment) as info,
        ):
            client.chat("hi")
    finally:
        recorder["on"] = False
    assert isinstance(info.value, ValueError)
    assert {address[1] for address in seen} == {front.server_address[1]}  # only the front end


def test_an_api_info_of_the_wrong_shape_is_a_protocol_error() -> None:
    config = json.dumps({"version": "5.13.1", "components": [], "dependencies": []})

    def route(method: str, path: str) -> tuple[int, str, str]:
        return 200, "application/json", config if path.startswith("/config") else "{}"

    with (
        FrontEnd(route) as front,
        QwenClient(front.url) as client,
        pytest.raises(SpaceProtocolError, match="API info"),
    ):
        client.chat("hi")


@pytest.fixture(scope="module")
def layout(replica6: Replica) -> tuple[str, str]:
    """The replica's config and API info, for a scripted Space of the same layout."""
    config = httpx.get(f"{replica6.url}/config", timeout=10).text
    info = httpx.get(f"{replica6.url}/gradio_api/info?serialize=False", timeout=10).text
    return config, info


def assistant(text: str) -> list[Any]:
    parts = [{"type": "text", "text": text}]
    return ["", [{"role": "user", "content": parts}, {"role": "assistant", "content": parts}], ""]


@pytest.mark.parametrize(
    "bad_line",
    [
        "data: {not json",
        "data: [1, 2]",
        'data: {"msg": "process_generating", "output": {"data": [[], [["append", [7, "content",'
        ' 0, "text"], "x"]], []]}, "success": true}',
        'data: {"msg": "process_generating", "output": ["not", "an", "object"], "success": true}',
    ],
)
def test_a_space_that_breaks_its_protocol(layout: tuple[str, str], bad_line: str) -> None:
    config, info = layout
    first = {"msg": "process_generating", "output": {"data": assistant("Hel")}, "success": True}
    events = "\n\n".join([f"data: {json.dumps(first)}", bad_line, ""])

    def route(method: str, path: str) -> tuple[int, str, str]:
        if path.startswith("/config"):
            return 200, "application/json", config
        if "/info" in path:
            return 200, "application/json", info
        if "queue/join" in path:
            return 200, "application/json", json.dumps({"event_id": "e1"})
        if "queue/data" in path:
            return 200, "text/event-stream", events
        return 200, "application/json", "{}"

    with FrontEnd(route) as front, QwenClient(front.url) as client:
        received = []
        with pytest.raises(SpaceProtocolError) as info_:
            for delta in client.stream("hi"):
                received.append(delta)
    assert received == ["Hel"] and info_.value.partial_text == "Hel"


# -- bad text, proxies in the environment ----------------------------------------------------


def test_text_that_is_not_unicode_is_refused_before_any_request() -> None:
    undecodable = b"caf\xe9 menu".decode("utf-8", errors="surrogateescape")
    with QwenClient("http://127.0.0.1:9") as client:  # nothing listens: a request would fail
        with pytest.raises(InvalidMessagesError, match="not Unicode text"):
            client.chat(undecodable)
        with pytest.raises(InvalidMessagesError, match="system"):
            client.chat("hi", system=undecodable)
        with pytest.raises(InvalidMessagesError, match=r"messages\[1\]"):
            client.chat(
                [{"role": "user", "content": "a"}, {"role": "user", "content": undecodable}]
            )


@pytest.fixture
def proxies() -> Iterator[tuple[RecordingProxy, RecordingProxy]]:
    with RecordingProxy() as chosen, RecordingProxy() as from_environment:
        yield chosen, from_environment


def test_the_proxy_argument_wins_over_the_environment(
    replica6: Replica,
    proxies: tuple[RecordingProxy, RecordingProxy],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chosen, environment = proxies
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, environment.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with QwenClient(replica6.url, proxy=chosen.url) as client:
        for _ in client.stream("/long 3000"):
            break  # the cancellation goes through the chosen proxy too
        assert client.chat("/echo proxied") == "proxied"
    assert environment.seen == []
    paths = [line.split(" ")[1].split("?")[0] for line in chosen.seen]
    assert all(path.startswith(replica6.url) for path in paths)
    assert any(path.endswith("/cancel") for path in paths)


# -- processes that never close their client print nothing -----------------------------------


def readme_errors_example() -> str:
    """The docs' errors example, as written: it never closes its client."""
    return example("docs/python.md", 'QwenClient().chat("Hello")')


UNCLOSED = {
    "the docs' errors example": readme_errors_example() + "print(text)\n",
    "a with block around a listed stream": """
        from qwen_gradio import QwenClient

        with QwenClient() as client:
            print(list(client.stream("/echo hi")))
    """,
    "an async loop left with break": """
        import asyncio
        from qwen_gradio import QwenClient

        async def main():
            async for delta in QwenClient().astream("/long 3000"):
                print(delta)
                break

        asyncio.run(main())
    """,
    "the provider, sync, three times": """
        from qwen_gradio.provider import Qwen_Qwen_2_5_Max

        for _ in range(3):
            print(list(Qwen_Qwen_2_5_Max.create_completion("", "/echo x")))
    """,
}


@pytest.mark.parametrize("name", sorted(UNCLOSED))
def test_unclosed_clients_print_nothing_on_stderr(
    replica6: Replica, tmp_path: Path, name: str
) -> None:
    script = tmp_path / "example.py"
    script.write_text(textwrap.dedent(UNCLOSED[name]))
    env = {**os.environ, "QWEN_GRADIO_SPACE": replica6.url, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-W", "always::ResourceWarning", str(script)]
    first_run = replica6.next_run()
    # Several at once: the noise this guards against showed in about half of the runs.
    runs = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    for process in runs:
        out, err = process.communicate(timeout=50)
        assert (process.returncode, err) == (0, ""), err
        assert out.strip()
    if "break" in name:  # the jobs they dropped were cancelled on the Space
        for run in range(first_run, first_run + len(runs)):
            assert replica6.wait(run)["outcome"] == "stopped"


def count_pools(monkeypatch: pytest.MonkeyPatch) -> list[httpx.AsyncClient]:
    """Every connection pool qwen_gradio opens from now on (these tests cancel nothing, so none
    is the canceller's)."""
    opened: list[httpx.AsyncClient] = []

    class CountedClient(httpx.AsyncClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if "limits" in kwargs:  # a pool of qwen_gradio's, not another library's client
                opened.append(self)

    monkeypatch.setattr(httpx, "AsyncClient", CountedClient)
    return opened


def test_the_sync_provider_reuses_one_pool_and_closes_it(
    replica6: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sync provider calls run on their client's loop thread (the sync bridge QwenClient.stream
    uses): one pool serves them all, and closing the client closes it."""
    shared_clients.clear()
    opened = count_pools(monkeypatch)
    for _ in range(3):
        assert list(Qwen_Qwen_2_5_Max.create_completion("", "/echo x", space=replica6.url)) == ["x"]
    assert len(opened) == 1 and not opened[0].is_closed
    (client,) = shared_clients.values()
    client.close()
    shared_clients.clear()
    assert opened[0].is_closed


def test_a_client_used_across_event_loops_closes_each_loops_pool(
    replica6: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = count_pools(monkeypatch)
    client = QwenClient(replica6.url)
    for _ in range(2):  # asyncio.run: a loop of its own each time, shut down after
        assert asyncio.run(client.achat("/echo again")) == "again"
    assert len(opened) == 2 and all(pool.is_closed for pool in opened)

    async def on_one_loop() -> None:
        assert await client.achat("/echo here") == "here"
        assert not opened[-1].is_closed  # kept for this loop's next reply
        await client.aclose()

    asyncio.run(on_one_loop())
    assert len(opened) == 3 and opened[-1].is_closed
