"""Connecting cold: what the direct transport asks a Space, its on-disk cache, and what happens
when a Space changes under a cache (the right call and the exact reply, never a stale one)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from qwen_gradio import QueueFullError, QwenClient, Timeouts
from qwen_gradio._transports.cache import SpaceCache

from .conftest import ROOT, Replica, shared_replica
from .helpers import FaultyFrontEnd, replica_reply

MAX_REPLY = replica_reply("hi")


def paths_since(replica: Replica, before: int) -> list[str]:
    return [r["path"] for r in replica.requests()[before:]]


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv("QWEN_GRADIO_CACHE_DIR", str(directory))
    monkeypatch.delenv("QWEN_GRADIO_NO_CACHE", raising=False)
    return directory


@pytest.fixture
def front() -> Iterator[FaultyFrontEnd]:
    """One Space URL whose server a test can swap: the Space changing under a cache."""
    sized = shared_replica("gradio6", "qwen2.5")
    with FaultyFrontEnd(sized.url, lambda method, path: "forward") as server:
        yield server


def point(front: FaultyFrontEnd, replica: Replica) -> None:
    parts = urlsplit(replica.url)
    front.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)


def joins(front: FaultyFrontEnd) -> list[tuple[int, int]]:
    """(fn_index, number of inputs) of each job the front end passed on, in order."""
    calls = [json.loads(body) for path, body in front.bodies if path.endswith("/queue/join")]
    return [(call["fn_index"], len(call["data"])) for call in calls]


def cancelled(front: FaultyFrontEnd) -> list[int]:
    """The fn_index of each job the front end was asked to cancel."""
    bodies = [json.loads(body) for path, body in front.bodies if path.endswith("/cancel")]
    return [body["fn_index"] for body in bodies]


def test_a_space_never_seen_costs_one_request_before_the_job(
    replica6: Replica, cache_dir: Path
) -> None:
    before = len(replica6.requests())
    with QwenClient(replica6.url) as client:
        assert client.chat("hi") == MAX_REPLY
    assert paths_since(replica6, before) == [
        "/config",
        "/gradio_api/queue/join",
        "/gradio_api/queue/data",
    ]
    entry = json.loads(SpaceCache(cache_dir).path(replica6.url + "/").read_text())
    assert (entry["format"], entry["names"]) == (2, None)  # no options: no names to ask
    assert entry["config"]["dependencies"][0]["api_name"] == "model_chat"


def test_a_space_seen_before_gets_its_job_before_its_config_is_answered(
    front: FaultyFrontEnd, cache_dir: Path, replica6: Replica
) -> None:
    """With the cache, the job is sent first and its event stream opened while the config is
    asked: here the front end holds the config until the event stream has been asked for (a
    client that waited for the config first would never get that far)."""
    point(front, replica6)
    with QwenClient(front.url) as client:  # the first contact leaves the cache
        assert client.chat("hi") == MAX_REPLY
    streamed, released = threading.Event(), []

    def rule(method: str, path: str) -> str:
        if path == "/config":
            released.append(streamed.wait(30))
        elif "/queue/data" in path:
            streamed.set()
        return "forward"

    front.rule, front.bodies[:] = rule, []
    run = replica6.next_run()
    with QwenClient(front.url) as client:
        assert client.chat("hi again") == replica_reply("hi again")
    assert released == [True]
    assert joins(front) == [(0, 3)] and cancelled(front) == []
    assert replica6.wait(run)["query"] == "hi again"
    assert replica6.next_run() == run + 1  # one job: nothing sent twice


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_space_with_options_is_asked_its_api_info_once(
    front: FaultyFrontEnd, cache_dir: Path, mode: str
) -> None:
    sized = shared_replica("gradio6", "qwen2.5")
    before = len(sized.requests())
    with QwenClient(front.url) as client:
        assert client.chat("/options") == '{"model_size": "72B"}'
    assert "/gradio_api/info" in paths_since(sized, before)
    entry = json.loads(SpaceCache(cache_dir).path(front.url + "/").read_text())
    assert entry["names"] == ["query", "history", "system", "model_size"]
    before = len(sized.requests())
    if mode == "sync":
        with QwenClient(front.url, options={"model_size": "7B"}) as client:  # a later process
            assert client.chat("/options") == '{"model_size": "7B"}'
    else:

        async def chat() -> str:
            async with QwenClient(front.url, options={"model_size": "7B"}) as client:
                return await client.achat("/options")

        assert asyncio.run(chat()) == '{"model_size": "7B"}'
    assert sorted(paths_since(sized, before)) == [
        "/config",
        "/gradio_api/queue/data",
        "/gradio_api/queue/join",
    ]


def test_a_space_whose_chat_event_moved_gets_the_right_call(
    front: FaultyFrontEnd, cache_dir: Path, replica6: Replica
) -> None:
    """Cached: the Qwen2.5 layout (fn_index 3, four inputs). The Space becomes the demo's
    layout (fn_index 0, three inputs): the job sent from the cache is cancelled and sent again
    to fn_index 0, with three inputs, before any of its text is read; the cache learns it."""
    sized = shared_replica("gradio6", "qwen2.5")
    with QwenClient(front.url) as client:
        assert client.connect().endpoint.fn_index == 3
    point(front, replica6)
    front.bodies[:] = []
    sized_runs, run = sized.next_run(), replica6.next_run()
    with QwenClient(front.url) as client:
        with client.stream("hi") as stream:
            assert (stream.until_done(), stream.attempts) == (MAX_REPLY, 1)  # no retry
        assert (client.connect().endpoint.fn_index, client.chat_options()) == (0, ())
    assert joins(front) == [(3, 4), (0, 3)]
    assert cancelled(front) == [3]
    assert replica6.wait(run)["query"] == "hi"
    assert sized.next_run() == sized_runs  # nothing went to the old layout
    entry = json.loads(SpaceCache(cache_dir).path(front.url + "/").read_text())
    assert entry["names"] is None and entry["config"]["dependencies"][0]["api_name"] == "model_chat"


def test_a_space_whose_chat_event_gained_an_input_gets_the_right_call(
    front: FaultyFrontEnd, cache_dir: Path, replica6: Replica
) -> None:
    """A client that knew the demo's layout; the Space gains a model-size radio (and moves its
    chat event): the call sent the old way is cancelled, the new one has four inputs, the
    option at its default; the reply counts one attempt."""
    point(front, replica6)
    with QwenClient(front.url) as client:
        assert client.chat("hi") == MAX_REPLY
    sized = shared_replica("gradio6", "qwen2.5")
    point(front, sized)
    front.bodies[:] = []
    run = sized.next_run()
    with QwenClient(front.url) as client, client.stream("hi") as stream:
        assert stream.until_done() == (
            "This is the offline replica of Qwen2.5-Max (72B). You said: hi"
        )
        assert stream.attempts == 1
    assert sized.wait(run)["options"] == {"model_size": "72B"}
    assert joins(front) == [(0, 3), (3, 4)] and cancelled(front) == [0]


def test_an_option_the_cached_layout_lacks_is_checked_against_the_new_one(
    front: FaultyFrontEnd, cache_dir: Path, replica6: Replica
) -> None:
    """Cached: the demo's layout (no options). An option the Space has gained since is not
    refused on the cache's word: the config is asked, and the option goes to the new layout."""
    point(front, replica6)
    with QwenClient(front.url) as client:
        assert client.chat("hi") == MAX_REPLY
    point(front, shared_replica("gradio6", "qwen2.5"))
    front.bodies[:] = []
    with QwenClient(front.url, options={"model_size": "14B"}) as client:
        assert client.chat("/options") == '{"model_size": "14B"}'
    assert joins(front) == [(3, 4)]  # the refusal was the cache's: nothing sent the old way


def test_the_job_from_the_cache_is_used_only_once_the_config_is_in(
    front: FaultyFrontEnd, cache_dir: Path
) -> None:
    """Known Space; now its config is refused (the Space's front end failing): the job sent
    from the cache gives no text, each one is cancelled, and the error is the config's."""
    with QwenClient(front.url) as client:
        assert client.chat("/options") == '{"model_size": "72B"}'
    front.rule = lambda method, path: "queue_full" if path == "/config" else "forward"
    front.bodies[:] = []
    with (
        QwenClient(front.url, attempts=2, timeout=Timeouts(connect=5)) as client,
        pytest.raises(QueueFullError, match="/config") as caught,
    ):
        client.chat("/options")
    assert caught.value.partial_text == ""
    assert joins(front) == [(3, 4), (3, 4)]
    assert cancelled(front) == [3, 3]


def test_a_cache_entry_for_another_config_is_not_used(
    front: FaultyFrontEnd, cache_dir: Path
) -> None:
    """An entry whose fingerprint is not its config's (written for another one, or by hand) is
    ignored: the config is asked first, the API info again, and the entry replaced."""
    cache = SpaceCache(cache_dir)
    url = front.url + "/"
    with QwenClient(front.url) as client:
        client.connect()
    entry = json.loads(cache.path(url).read_text())
    entry["names"][-1] = "size_of_model"
    entry["fingerprint"] = "an older layout"
    cache.path(url).write_text(json.dumps(entry))
    front.bodies[:] = []
    with QwenClient(front.url) as client:
        assert [o.name for o in client.chat_options()] == ["model_size"]
    assert [path for path, _ in front.bodies] == ["/config", "/gradio_api/info?serialize=False"]
    entry = json.loads(cache.path(url).read_text())
    assert entry["names"][-1] == "model_size" and entry["fingerprint"] != "an older layout"


@pytest.mark.parametrize(
    "damage", ["not json {", '{"format": 2, "url": 7}', '{"format": 2, "config": []}', "", "[]"]
)
def test_a_corrupt_cache_is_ignored(
    front: FaultyFrontEnd, cache_dir: Path, damage: str, capfd: pytest.CaptureFixture[str]
) -> None:
    path = SpaceCache(cache_dir).path(front.url + "/")
    path.parent.mkdir(parents=True)
    path.write_text(damage)
    with QwenClient(front.url) as client:
        assert client.chat("/options", options={"model_size": "14B"}) == '{"model_size": "14B"}'
    assert json.loads(path.read_text())["names"][-1] == "model_size"  # rewritten
    assert capfd.readouterr() == ("", "")


def test_an_unwritable_cache_is_ignored(
    front: FaultyFrontEnd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("the cache directory cannot be made under a file")
    monkeypatch.setenv("QWEN_GRADIO_CACHE_DIR", str(blocker / "cache"))
    with QwenClient(front.url) as client:
        assert client.chat("/options") == '{"model_size": "72B"}'
    assert blocker.read_text().startswith("the cache directory")


def test_the_cache_can_be_turned_off(
    front: FaultyFrontEnd, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with QwenClient(front.url, cache=False) as client:
        assert client.chat("/options") == '{"model_size": "72B"}'
    assert not cache_dir.exists()
    monkeypatch.setenv("QWEN_GRADIO_NO_CACHE", "1")
    with QwenClient(front.url) as client:
        assert client.chat("/options") == '{"model_size": "72B"}'
    assert not cache_dir.exists()
    monkeypatch.delenv("QWEN_GRADIO_NO_CACHE")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "qwen_gradio",
            "chat",
            "--space",
            front.url,
            "--no-cache",
            "/options",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (0, '{"model_size": "72B"}\n')
    assert not cache_dir.exists()


def test_two_processes_starting_at_once_both_work(front: FaultyFrontEnd, cache_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "qwen_gradio", "chat", "--space", front.url, "/options"]
    processes = [
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=60) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0, 0]
    assert results == [('{"model_size": "72B"}\n', "")] * 4
    (entry,) = list(cache_dir.glob("*.json"))  # one whole entry; no temporary file left
    assert json.loads(entry.read_text())["names"][-1] == "model_size"
    assert not list(cache_dir.glob("*.tmp"))


def test_the_direct_transport_never_imports_gradio_client(replica6: Replica) -> None:
    code = (
        "import sys, qwen_gradio\n"
        f"with qwen_gradio.QwenClient({replica6.url!r}) as client: print(client.chat('/echo ok'))\n"
        "print('gradio_client' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "ok\nFalse\n", "")


def test_a_stream_closed_while_the_config_is_asked_cancels_its_job_and_the_ask(
    front: FaultyFrontEnd, cache_dir: Path
) -> None:
    """A known Space whose config never comes: closing the stream cancels the job sent from the
    cache, and closing the client stops the config request instead of waiting it out."""
    sized = shared_replica("gradio6", "qwen2.5")
    with QwenClient(front.url) as client:
        client.connect()
    front.rule = lambda method, path: "stall" if path == "/config" else "forward"
    front.bodies[:] = []
    run = sized.next_run()

    async def abandon() -> list[asyncio.Task[Any]]:
        client = QwenClient(front.url, timeout=Timeouts(connect=600))
        stream = client.astream("/slow 600 never read")
        reading = asyncio.ensure_future(stream.__anext__())  # waits for the config
        assert (await asyncio.to_thread(sized.started, run))["query"] == "/slow 600 never read"
        checks = list(client.members[0]._checks.values())
        reading.cancel()
        await asyncio.wait([reading])
        await stream.aclose()
        await client.aclose()
        return checks

    checks = asyncio.run(abandon())
    assert sized.wait(run)["outcome"] == "stopped"
    assert [task.cancelled() for task in checks] == [True]
    assert cancelled(front) == [3]
