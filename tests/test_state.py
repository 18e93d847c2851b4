"""The shared state's stores, each on its real engine (a SQLite file, a real Redis), called
as two processes would (two ``SharedState``s, each with its own process id), and what a
process does when its store is away and when it comes back."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qwen_gradio._state import LocalState, State, check_state_url, open_state
from qwen_gradio._state import shared as shared_module
from qwen_gradio._state.redis import RedisStore, redis_url
from qwen_gradio._state.sqlite import SqliteStore
from qwen_gradio.routing import Health, SpaceLoad, with_fleet
from qwen_gradio.settings import Settings

from .conftest import ROOT
from .helpers import RedisServer, free_port

SPACE = "https://qwen-qwen2-5-max-demo.hf.space/"
NOW = 1_800_000_000.0  # a wall-clock time, given to the stores as "now"


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    redis: RedisServer = request.getfixturevalue("redis_server")
    return redis.url


@pytest.fixture
def two(store_url: str) -> Iterator[tuple[State, State]]:
    """Two processes' states on one store."""
    first, second = open_state(store_url), open_state(store_url)
    yield first, second
    first.close()
    second.close()


def store_of(url: str) -> SqliteStore | RedisStore:
    if url.startswith("sqlite"):
        return SqliteStore(Path(url.removeprefix("sqlite://")))
    return RedisStore(url)


async def test_a_limit_is_counted_across_processes(two: tuple[State, State]) -> None:
    first, second = two
    waits = [await state.hit("ci", 3, 60.0) for state in (first, second, first, second)]
    assert waits[:3] == [None, None, None]
    assert waits[3] is not None and 59 < waits[3] <= 60  # the oldest of the three ends first
    assert await second.hit("alice", 3, 60.0) is None  # each name its own count


async def test_a_value_kept_by_one_is_read_by_the_other(two: tuple[State, State]) -> None:
    first, second = two
    await first.keep("response:1", '[{"role": "user"}]', 3600.0, 10)
    assert await second.kept("response:1") == '[{"role": "user"}]'
    assert await second.kept("response:2") is None
    assert first.shared and second.shared


def test_kept_values_are_bounded_and_expire(store_url: str) -> None:
    store = store_of(store_url)
    for k in range(5):
        store.keep(f"k{k}", f"v{k}", 3600.0, 3, NOW + k)
    assert [store.kept(f"k{k}", NOW + 5) for k in range(5)] == [None, None, "v2", "v3", "v4"]
    if isinstance(store, SqliteStore):  # Redis expires by its own clock: its TTL is read
        assert store.kept("k4", NOW + 4 + 3600.0) is None
    else:
        assert 0 < store.redis.pttl("qwen_gradio:kept:k4") <= 3_600_000
    store.close()


def test_loads_count_the_other_processes_in_flight_and_their_cooldowns(store_url: str) -> None:
    store = store_of(store_url)
    store.in_flight(SPACE, "p1", 2, NOW)
    store.in_flight(SPACE, "p2", 1, NOW - 120)  # a process that stopped writing long ago
    store.in_flight(SPACE, "p3", 4, NOW)
    store.cooling(SPACE, NOW + 30, NOW)
    store.queue_wait(SPACE, 7.5, NOW)
    loads = store.loads([SPACE, "https://other.hf.space/"], "p3", NOW)
    assert loads[SPACE].in_flight == 2  # p1's; p2 stale, p3 is the asker
    assert loads["https://other.hf.space/"] == SpaceLoad()
    if isinstance(store, SqliteStore):  # Redis keeps the cooldown by its own clock
        assert loads[SPACE].cooling_until == NOW + 30
    assert loads[SPACE].queue_wait == 7.5
    store.in_flight(SPACE, "p1", 0, NOW)
    assert store.loads([SPACE], "p3", NOW)[SPACE].in_flight == 0
    store.close()


def test_the_fleet_adds_to_what_this_process_knows() -> None:
    mine = Health(in_flight=1, cooling_until=0.0, queue_wait=2.0)
    fleet = SpaceLoad(in_flight=3, cooling_until=1_000.0 + 30, queue_wait=None)
    seen = with_fleet(mine, fleet, now=50.0, wall=1_000.0)
    assert (seen.in_flight, seen.cooling_until, seen.queue_wait) == (4, 80.0, 2.0)
    assert with_fleet(mine, SpaceLoad(cooling_until=999.0), 50.0, 1_000.0).cooling_until == 0.0


async def test_a_store_away_falls_back_and_comes_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing listens on the store's port at first: the process keeps its own state (one
    warning), a value it keeps there is still read; the store starts: the next call after
    ``RETRY`` uses it again (one line more)."""
    monkeypatch.setattr(shared_module, "RETRY", 0.0)
    redis = RedisServer(tmp_path)
    state = open_state(redis.url)
    caplog.set_level(logging.WARNING, "qwen_gradio")
    assert await state.hit("ci", 1, 60.0) is None
    assert await state.hit("ci", 1, 60.0) is not None  # counted here meanwhile
    await state.keep("response:away", "kept here", 60.0, 10)
    assert await state.kept("response:away") == "kept here"
    assert not state.shared
    assert await state.loads([SPACE]) == {}
    redis.start()
    try:
        assert await state.hit("ci", 1, 60.0) is None  # the store's own count: none yet
        assert state.shared
        assert await state.kept("response:away") == "kept here"  # still found here
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 2, lines
        assert "failed (ConnectionError" in lines[0] and "answers again" in lines[1]
        assert "password" not in redis_url("redis://user:password@host:6379/0")
    finally:
        state.close()
        redis.stop()


async def test_a_closed_state_answers_alone_and_leaves_no_thread(store_url: str) -> None:
    state = open_state(store_url)
    state.in_flight(SPACE, 1)
    await state.loads([SPACE])
    thread = state._thread  # type: ignore[attr-defined]
    state.close()
    state.close()
    assert not thread.is_alive()
    assert await state.hit("ci", 1, 60.0) is None  # answered by the local state
    assert await state.loads([SPACE]) == {}


def test_a_state_is_named_by_its_url(tmp_path: Path) -> None:
    assert isinstance(open_state(None), LocalState)
    assert isinstance(open_state("local"), LocalState)
    for wrong in ("ftp://host", "sqlite://", "redis"):
        with pytest.raises(ValueError, match=r"a state is|names its file"):
            check_state_url(wrong)
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert Settings.build("a/b", state=url).state == url
    assert Settings.build("a/b", state="local").state is None


def test_a_wrong_state_is_a_usage_error_before_any_request(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "qwen_gradio", "chat", "--state", "ftp://x", "hi"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2
    assert "a state is 'local', redis://" in done.stderr and "Traceback" not in done.stderr


def test_the_environment_names_the_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("QWEN_GRADIO_STATE", url)
    assert Settings.build("a/b").state == url
    named = f"redis://127.0.0.1:{free_port()}/0"
    assert Settings.build("a/b", state=named).state == named  # the argument first


async def test_a_long_reply_is_rewritten_while_it_lasts_and_cleared_at_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This process's entry is rewritten every ``REFRESH`` seconds (0 here: before each call),
    so that the others keep counting a reply longer than ``STALE``; closing clears it."""
    monkeypatch.setattr(shared_module, "REFRESH", 0.0)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    state = open_state(url)
    state.in_flight(SPACE, 1)
    await state.loads([SPACE])
    reader = SqliteStore(tmp_path / "state.db")
    (first,) = reader.db.execute("SELECT at FROM flight").fetchone()
    await state.loads([SPACE])  # a call: a rewrite comes before it
    (second,) = reader.db.execute("SELECT at FROM flight").fetchone()
    assert second > first
    state.close()
    assert reader.db.execute("SELECT COUNT(*) FROM flight").fetchone() == (0,)  # cleared
    reader.close()
