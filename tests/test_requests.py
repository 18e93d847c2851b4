"""What the client sends, and to whom: reuse, tokens, proxies, a quiet console, refusals."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from qwen_gradio import (
    InvalidSpaceError,
    QueueFullError,
    QueueStatus,
    QwenClient,
    RateLimitedError,
    SpaceError,
    SpaceUnavailableError,
)
from qwen_gradio.replica import ReplicaServer

from .conftest import Replica
from .helpers import FrontEnd, RecordingProxy


def new_requests(replica: Replica, before: int) -> list[dict[str, str]]:
    return replica.requests()[before:]


@pytest.mark.parametrize(("transport", "infos"), [("direct", 0), ("gradio_client", 1)])
def test_the_config_is_fetched_once_per_client(
    replica6: Replica, transport: str, infos: int
) -> None:
    """The direct transport asks for the config alone (the API info only names options, and the
    demo has none); gradio_client asks for both."""
    before = len(replica6.requests())
    with QwenClient(replica6.url, transport=transport) as client:
        for i in range(3):
            assert client.chat(f"/echo {i}") == str(i)
    paths = [r["path"] for r in new_requests(replica6, before)]
    assert paths.count("/config") == 1
    assert paths.count("/gradio_api/info") == infos
    assert paths.count("/gradio_api/queue/join") == 3


def test_a_token_is_sent_only_when_given(
    replica6: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    before = len(replica6.requests())
    with QwenClient(replica6.url) as client:
        client.chat("/echo anonymous")
    assert {r["authorization"] for r in new_requests(replica6, before)} == {None}

    before = len(replica6.requests())
    with QwenClient(replica6.url, hf_token="hf_argument") as client:
        client.chat("/echo with a token")
    sent = new_requests(replica6, before)
    assert {r["authorization"] for r in sent} == {"Bearer hf_argument"}
    assert {r["path"] for r in sent} >= {
        "/config",
        "/gradio_api/queue/join",
        "/gradio_api/queue/data",
    }

    monkeypatch.setenv("HF_TOKEN", "hf_environment")
    before = len(replica6.requests())
    with QwenClient(replica6.url) as client:
        client.chat("/echo env")
    assert {r["authorization"] for r in new_requests(replica6, before)} == {"Bearer hf_environment"}


def test_every_request_goes_through_the_proxy(replica6: Replica) -> None:
    before = len(replica6.requests())
    with RecordingProxy() as proxy, QwenClient(replica6.url, proxy=proxy.url) as client:
        for delta in client.stream("/long 3000"):  # a cancelled job: the cancel is proxied too
            assert delta == "t0 "
            break
        assert client.chat("/echo via the proxy") == "via the proxy"
    reached = [f"{r['method']} {replica6.url}{r['path']}" for r in new_requests(replica6, before)]
    proxied = [line.split("?")[0] for line in proxy.seen]
    assert sorted(proxied) == sorted(reached)
    assert any(line.endswith("/gradio_api/cancel") for line in proxied)


def test_nothing_is_printed(replica6: Replica, capfd: pytest.CaptureFixture[str]) -> None:
    with QwenClient(replica6.url) as client:
        client.chat("/echo quiet")
        for _ in client.stream("/long 3000"):
            break
        with pytest.raises(SpaceError):
            client.chat("/fail 2 loud")
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


@pytest.fixture
def busy_replica() -> Iterator[ReplicaServer]:
    """A replica that runs one job at a time and lets one more wait."""
    with ReplicaServer(concurrency_limit=1, max_queue=1) as server:
        yield server


def test_a_full_queue_is_reported(busy_replica: ReplicaServer) -> None:
    with QwenClient(busy_replica.url) as client:
        running = client.stream("/lockstep one two")
        assert next(running) == "one"  # holds the only slot
        waiting = client.stream("/echo waiting")
        status = waiting.next_event()  # joined: it waits in the queue
        assert isinstance(status, QueueStatus) and not status.started
        with pytest.raises(QueueFullError, match="Queue is full"):
            client.chat("/echo refused")
        running.close()
        waiting.close()


def test_a_sleeping_space_is_unavailable() -> None:
    page = "<html><body>This Space is sleeping due to inactivity.</body></html>"
    with (
        FrontEnd(lambda method, path: (200, "text/html", page)) as front,
        QwenClient(front.url) as client,
        pytest.raises(SpaceUnavailableError, match="sleeping, paused or building"),
    ):
        client.chat("hi")


def test_rate_limits_are_typed() -> None:
    body = json.dumps({"error": "Too many requests"})
    with (
        FrontEnd(lambda method, path: (429, "application/json", body)) as front,
        QwenClient(front.url) as client,
        pytest.raises(RateLimitedError),
    ):
        client.chat("hi")


def test_a_space_unlike_the_demo_is_refused() -> None:
    config = json.dumps({"version": "5.13.1", "components": [], "dependencies": []})

    def route(method: str, path: str) -> tuple[int, str, str]:
        if path.startswith("/config"):
            return 200, "application/json", config
        return 200, "application/json", json.dumps({"named_endpoints": {}, "unnamed_endpoints": {}})

    with (
        FrontEnd(route) as front,
        QwenClient(front.url) as client,
        pytest.raises(InvalidSpaceError, match="model_chat"),
    ):
        client.chat("hi")
