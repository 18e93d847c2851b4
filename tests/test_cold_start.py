"""Connecting cold: what the direct transport asks a Space, its on-disk cache, and what happens
when a Space changes under a cache (the right call and the exact reply, never a stale one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from qwen_gradio import QwenClient
from qwen_gradio._cache import SpaceCache

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


def test_the_demo_costs_one_request_before_the_job(replica6: Replica, cache_dir: Path) -> None:
    before = len(replica6.requests())
    with QwenClient(replica6.url) as client:
        assert client.chat("hi") == MAX_REPLY
    assert paths_since(replica6, before) == [
        "/config",
        "/gradio_api/queue/join",
        "/gradio_api/queue/data",
    ]
    assert not cache_dir.exists()  # nothing to remember: the demo has no options


def test_a_space_with_options_is_asked_its_api_info_once(
    front: FaultyFrontEnd, cache_dir: Path
) -> None:
    sized = shared_replica("gradio6", "qwen2.5")
    before = len(sized.requests())
    with QwenClient(front.url) as client:
        assert client.chat("/options") == '{"model_size": "72B"}'
    assert "/gradio_api/info" in paths_since(sized, before)
    entry = json.loads(SpaceCache(cache_dir).path(front.url + "/").read_text())
    assert entry["parameter_names"] == ["query", "history", "system", "model_size"]
    before = len(sized.requests())
    with QwenClient(front.url, options={"model_size": "7B"}) as client:  # a later process
        assert client.chat("/options") == '{"model_size": "7B"}'
    assert paths_since(sized, before) == [
        "/config",
        "/gradio_api/queue/join",
        "/gradio_api/queue/data",
    ]


def test_a_space_whose_chat_event_moved_gets_the_right_call(
    front: FaultyFrontEnd, cache_dir: Path, replica6: Replica
) -> None:
    """Cached: the Qwen2.5 layout (fn_index 3, four inputs). The Space becomes the demo's
    layout (fn_index 0, three inputs): the job goes to fn_index 0, with three inputs."""
    sized = shared_replica("gradio6", "qwen2.5")
    with QwenClient(front.url) as client:
        assert client.connect().endpoint.fn_index == 3
    assert SpaceCache(cache_dir).path(front.url + "/").exists()
    point(front, replica6)
    sized_runs, run = sized.next_run(), replica6.next_run()
    with QwenClient(front.url) as client:
        assert client.chat("hi") == MAX_REPLY
        assert (client.connect().endpoint.fn_index, client.chat_options()) == (0, ())
    assert replica6.wait(run)["query"] == "hi"
    assert sized.next_run() == sized_runs  # nothing went to the old layout


def test_a_space_whose_chat_event_gained_an_input_gets_the_right_call(
    front: FaultyFrontEnd, cache_dir: Path, replica6: Replica
) -> None:
    """A client that knew the demo's layout; the Space gains a model-size radio (and moves its
    chat event): a new client sends four inputs to fn_index 3, the option at its default."""
    point(front, replica6)
    with QwenClient(front.url) as client:
        assert client.chat("hi") == MAX_REPLY
    sized = shared_replica("gradio6", "qwen2.5")
    point(front, sized)
    run = sized.next_run()
    with QwenClient(front.url) as client:
        assert client.chat("hi") == "This is the offline replica of Qwen2.5-Max (72B). You said: hi"
    assert sized.wait(run)["options"] == {"model_size": "72B"}


def test_a_cache_entry_for_another_layout_is_not_used(
    front: FaultyFrontEnd, cache_dir: Path
) -> None:
    """An entry whose fingerprint is not this chat event's (here: wrong names stored for an
    older layout) is ignored: the API info is asked again and the entry replaced."""
    cache = SpaceCache(cache_dir)
    url = front.url + "/"
    cache.store(url, "an older layout", ["query", "history", "system", "size_of_model"])
    with QwenClient(front.url) as client:
        assert [o.name for o in client.chat_options()] == ["model_size"]
    entry = json.loads(cache.path(url).read_text())
    assert (
        entry["parameter_names"][-1] == "model_size" and entry["fingerprint"] != "an older layout"
    )


@pytest.mark.parametrize("damage", ["not json {", '{"format": 1, "url": 7}', "", "[]"])
def test_a_corrupt_cache_is_ignored(
    front: FaultyFrontEnd, cache_dir: Path, damage: str, capfd: pytest.CaptureFixture[str]
) -> None:
    path = SpaceCache(cache_dir).path(front.url + "/")
    path.parent.mkdir(parents=True)
    path.write_text(damage)
    with QwenClient(front.url) as client:
        assert client.chat("/options", options={"model_size": "14B"}) == '{"model_size": "14B"}'
    assert json.loads(path.read_text())["parameter_names"][-1] == "model_size"  # rewritten
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
    assert json.loads(entry.read_text())["parameter_names"][-1] == "model_size"
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
